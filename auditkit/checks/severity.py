"""Severity: one documented rule over measured impact.

Every finding whose fix saves time gets its severity from :func:`of_impact`, over the shared
:class:`~auditkit.findings.Impact` unit, with the ``severity`` thresholds of
:mod:`auditkit.config`:

* **high** — the fix saves at least ``high_share`` (10 %) of all database time in the observed
  window, or ``high_ms_per_request`` (100 ms) of database time per affected request, or
  ``high_response_ms`` (1 s) of response time per request;
* **medium** — likewise with ``medium_share`` (2 %), ``medium_ms_per_request`` (20 ms) or
  ``medium_response_ms`` (250 ms);
* **low** — any measured saving below that;
* **info** — no measurable saving.

Per-request savings count only when at least ``min_requests`` requests were affected: a page
requested twice does not make a finding high; shares count only when the saving reaches
``min_share_ms`` (100 ms) in the window: half of a nearly idle database's time is no high finding. An estimated saving (an index not validated
against the planner) is judged like a measured one; its impact says it is an estimate.

Findings that save no time are judged by what they risk, each by a rule of its own (documented
in ``docs/findings.md``): unused and duplicate indexes by their size (:func:`of_size`),
connection budgets and capacity by how close the limit is, data quality by how much of the
input was lost, server errors by their kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditkit.config import AuditConfig
from auditkit.findings import Impact, Severity

__all__ = ["of_impact", "of_size"]


def of_impact(impact: Impact | None, config: AuditConfig | None = None) -> Severity:
    """The severity the shared rule gives ``impact`` (see the module docstring)."""
    if impact is None:
        return Severity.INFO
    t = (config or AuditConfig()).thresholds("severity")
    share = impact.db_share or 0.0
    if (impact.db_ms or 0.0) < t.get("min_share_ms", 0.0):
        share = 0.0
    enough = (impact.requests or 0) >= t["min_requests"]
    per_request = (impact.db_ms_per_request or 0.0) if enough else 0.0
    response = (impact.response_ms_per_request or 0.0) if enough else 0.0
    if (
        share >= t["high_share"]
        or per_request >= t["high_ms_per_request"]
        or response >= t["high_response_ms"]
    ):
        return Severity.HIGH
    if (
        share >= t["medium_share"]
        or per_request >= t["medium_ms_per_request"]
        or response >= t["medium_response_ms"]
    ):
        return Severity.MEDIUM
    if (impact.db_ms or 0.0) > 0 or (impact.response_ms_per_request or 0.0) > 0:
        return Severity.LOW
    return Severity.INFO


def of_size(size_bytes: float | None, thresholds: Mapping[str, Any]) -> Severity:
    """An index worth dropping, by the space and write work it costs (the ``index`` family's
    ``unused_high_bytes``/``unused_medium_bytes``); low when its size is unknown."""
    if size_bytes is None:
        return Severity.LOW
    if size_bytes >= thresholds["unused_high_bytes"]:
        return Severity.HIGH
    if size_bytes >= thresholds["unused_medium_bytes"]:
        return Severity.MEDIUM
    return Severity.LOW
