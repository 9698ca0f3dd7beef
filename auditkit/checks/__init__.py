"""Checks: pure functions from a loaded client to findings, grouped by report chapter.

A check is a callable ``check(client, config) -> list[Finding]``: it reads canonical frames
from :class:`~auditkit.client.ClientData`, thresholds from :class:`~auditkit.config.AuditConfig`,
and returns :class:`~auditkit.findings.Finding` objects with ids from
:data:`auditkit.findings.CHECKS`. It never renders HTML and never touches files.

:data:`CHAPTERS` is the registry: chapter name → ordered tuple of checks. Notebooks call
:func:`run_chapter`; a chapter with no checks yet simply yields no findings. A new check module
adds its callable to the tuple of its chapter here.

Example::

    >>> from auditkit.checks import CHAPTERS, run_chapter
    >>> sorted(CHAPTERS)
    ['caching', 'indexing', 'overview', 'queries', 'scaling']
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable

from auditkit.checks.caching import check_caching
from auditkit.checks.capacity import check_scaling
from auditkit.checks.data_quality import data_quality
from auditkit.checks.indexes import check_indexing
from auditkit.checks.n_plus_one import check_n_plus_one
from auditkit.checks.plans import check_plans
from auditkit.checks.server_events import check_server_events
from auditkit.checks.slow_queries import check_slow_queries
from auditkit.client import ClientData
from auditkit.config import AuditConfig
from auditkit.errors import ConfigError
from auditkit.findings import Finding

__all__ = ["CHAPTERS", "Check", "available", "run_chapter"]

#: the signature every check has
Check = Callable[[ClientData, AuditConfig], list[Finding]]

#: chapter → its checks, in the order they run
CHAPTERS: dict[str, tuple[Check, ...]] = {
    "overview": (data_quality,),
    "queries": (check_slow_queries, check_n_plus_one, check_server_events),
    "indexing": (check_indexing, check_plans),
    "caching": (check_caching,),
    "scaling": (check_scaling,),
}


def run_chapter(
    chapter: str, client: ClientData, config: AuditConfig | None = None
) -> list[Finding]:
    """Run every check of ``chapter`` on ``client`` and return their findings, chapter set.

    ``config`` defaults to the client's own (its audit.yaml). An unknown chapter is a
    :class:`~auditkit.errors.ConfigError` naming the known ones.
    """
    try:
        checks = CHAPTERS[chapter]
    except KeyError:
        raise ConfigError(
            f"unknown chapter {chapter!r}", hint=f"chapters: {', '.join(CHAPTERS)}"
        ) from None
    cfg = config or client.config
    out: list[Finding] = []
    for check in checks:
        for finding in check(client, cfg):
            out.append(
                finding if finding.chapter else dataclasses.replace(finding, chapter=chapter)
            )
    return out


def available(check: str) -> bool:
    """True when the module ``auditkit.checks.<check>`` exists (the check is implemented)."""
    return importlib.util.find_spec(f"{__name__}.{check}") is not None
