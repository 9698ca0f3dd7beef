"""The chapter object's common part: the audit it displays, its frames and findings, and the
one-liners every chapter notebook calls (inputs, thresholds, findings); the chapters' constants.

The views of each chapter are mixins over :class:`ChapterBase` in their own modules
(:mod:`.chapter_queries`, :mod:`.chapter_indexing`, :mod:`.chapter_caching`,
:mod:`.chapter_scaling`); :class:`auditkit.report.notebook.Chapter` combines them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from auditkit.checks import REGISTRY
from auditkit.config import AuditConfig, load_config
from auditkit.errors import ConfigError
from auditkit.findings import CHECK_NAMES, Finding
from auditkit.report.html import (
    HtmlBlock,
    findings_html,
    note_html,
)
from auditkit.report.redact import Redactor

if TYPE_CHECKING:
    from auditkit.auditing import Audit


_PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent
#: the repository's notebooks folder (relative data folders are also tried from here)
NOTEBOOKS_DIR = _PACKAGE_ROOT / "notebooks"
#: fewest points a chart over time or load needs to mean something
MIN_POINTS = 3


@dataclass(frozen=True)
class ChapterInfo:
    """A chapter: its notebook, title, and what its inputs are called when missing."""

    name: str
    notebook: str
    title: str
    needs: str


CHAPTER_INFO: dict[str, ChapterInfo] = {
    c.name: c
    for c in (
        ChapterInfo("overview", "00_overview", "Executive summary", "any input file"),
        ChapterInfo(
            "queries",
            "10_queries",
            "Queries",
            "a query log (Django, PostgreSQL or MySQL) or a pg_stat_statements export",
        ),
        ChapterInfo(
            "indexing",
            "20_indexing",
            "Indexing",
            "timed statements, EXPLAIN plans, or index and table statistics",
        ),
        ChapterInfo(
            "caching",
            "30_caching",
            "Caching",
            "cache statistics (Redis or memcached), cache events, or statements with parameters",
        ),
        ChapterInfo(
            "scaling",
            "40_scaling",
            "Scaling",
            "a load test, request timings, or the server's connection settings",
        ),
    )
}

#: how a threshold family reads, from its values
_THRESHOLDS: dict[str, str] = {
    "slow_query": (
        "A statement counts as slow when it averages at least {min_mean_ms:g} ms per execution"
        " or takes at least {min_share:.0%} of all database time (and {min_share_ms:g} ms in"
        " all); at most {top} are listed."
    ),
    "n_plus_one": (
        "A loop is reported when one statement runs at least {min_repeats} times in a request;"
        " a read repeated with the same values at least {duplicate_min_repeats} times is a"
        " duplicate."
    ),
    "index": (
        "Candidates come from statements run at least {min_calls} times on tables of at least"
        " {min_table_rows:,} rows; an index unused means at most {unused_max_scans} scans in the"
        " statistics window; a hypothetical index must cut the planner's cost by"
        " {min_cost_reduction:.0%} to be confirmed."
    ),
    "plan": (
        "Plan nodes are flagged from {time_share[0]:.0%} of the plan's time, row estimates off by"
        " {misestimate[0]:g}× or more, filters discarding {rows_removed[0]:.0%} of the rows read,"
        " and sequential scans of {seq_scan_rows[0]:,} rows or more."
    ),
    "cache": (
        "A cache should answer at least {min_hit_ratio:.0%} of lookups (PostgreSQL's buffer cache"
        " {pg_buffer_min_hit_ratio:.0%}); a read is worth caching when it repeats with the same"
        " values at least {candidate_min_calls} times, costs {candidate_min_mean_ms:g} ms or more,"
        " and caching it for {candidate_ttl_s:g} s saves {candidate_min_share:.0%} of database"
        " time or more."
    ),
    "capacity": (
        "Latency degrades at the first load step whose 95th percentile reaches"
        " {p95_degradation:g}× that of the first step, or where more than {max_failure_rate:.0%}"
        " of requests fail; steps count after {step_warmup_s:g} s of warm-up when {step_min_s:g} s"
        " or more remain; plans keep {headroom:.0%} of the model's peak and target the observed"
        " peak × {growth:g}."
    ),
}


def resolve_data_dir(data_dir: str | Path) -> Path:
    """The client folder ``data_dir`` names, wherever the notebook runs from.

    An absolute path is taken as is. A relative one is tried from the working directory
    (papermill run from anywhere), then from the repository's ``notebooks/`` folder (the
    default ``../data/sample`` in JupyterLab), then from the repository root.
    """
    p = Path(data_dir).expanduser()
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, NOTEBOOKS_DIR / p, _PACKAGE_ROOT / p]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    raise ConfigError(
        f"client folder {str(data_dir)!r} not found",
        hint="pass data_dir= the folder of client files",
    )


def _block(html: str, text: str = "") -> HtmlBlock:
    return HtmlBlock(html, text)


def _note(text: str, kind: str = "info") -> HtmlBlock:
    return HtmlBlock(note_html(text, kind), text)


class ChapterBase:
    """What every chapter shares: the audit it displays, its frames, findings and links, and the
    one-liners of every chapter notebook. :class:`auditkit.report.notebook.Chapter` adds the
    chapters' views; build one with :func:`auditkit.report.notebook.chapter`."""

    def __init__(
        self,
        name: str,
        data_dir: str | Path | None = None,
        *,
        audit_dir: str | Path | None = None,
        audit: Audit | None = None,
        client_name: str | None = None,
        presets: Mapping[str, str] | None = None,
        show_literals: bool = False,
        link_suffix: str = ".ipynb",
        dsn_env: str | None = None,
    ) -> None:
        if name not in CHAPTER_INFO:
            raise ConfigError(
                f"unknown chapter {name!r}", hint=f"chapters: {', '.join(CHAPTER_INFO)}"
            )
        self.info = CHAPTER_INFO[name]
        self.name = name
        self.audit_dir = Path(audit_dir) if audit_dir else None
        self.data_dir = (
            resolve_data_dir(data_dir) if data_dir and not audit_dir and audit is None else None
        )
        self.client_name = client_name
        base = load_config(self.data_dir) if self.data_dir else AuditConfig()
        self.config: AuditConfig = base.with_presets(**dict(presets or {}))
        self.show_literals = bool(show_literals)
        self.link_suffix = link_suffix
        self.dsn_env = dsn_env
        self.redactor = Redactor.from_env(self.show_literals, [dsn_env] if dsn_env else [])
        self._shown: set[str] = set()
        if audit is not None:
            self.__dict__["audit"] = audit

    def __repr__(self) -> str:
        return f"<Chapter {self.name}>"

    # -- the audit -------------------------------------------------------------------------------
    @cached_property
    def audit(self) -> Audit:
        """The audit this chapter displays: the run's, or computed here from ``data_dir``."""
        from auditkit.auditing import Audit, audit
        from auditkit.client import load_client

        if self.audit_dir is not None:
            return Audit.load(self.audit_dir)
        if self.data_dir is None:
            raise ConfigError("a chapter needs data_dir= or audit_dir=")
        client = load_client(self.data_dir, self.config, name=self.client_name)
        return audit(client, self.config, dsn=self.live_dsn())

    def live_dsn(self) -> str | None:
        """The DSN from the environment variable ``dsn_env`` names (never displayed)."""
        return os.environ.get(self.dsn_env) if self.dsn_env else None

    def frame(self, name: str) -> pd.DataFrame:
        """A derived frame of the audit (empty when the inputs did not give it)."""
        return self.audit.frames.get(name, pd.DataFrame())

    def findings(self, *checks: str) -> list[Finding]:
        """This chapter's findings (only those of ``checks`` when given; ``plan_*`` for every
        plan check)."""
        return [f for f in self.audit.chapter(self.name) if not checks or _matches(f.check, checks)]

    def link(self, chapter: str) -> str:
        """The page of ``chapter`` as seen from this one ('' for this very page)."""
        if chapter == self.name:
            return ""
        return CHAPTER_INFO[chapter].notebook + self.link_suffix

    @property
    def _links(self) -> dict[str, str]:
        return {name: self.link(name) for name in CHAPTER_INFO}

    # -- common one-liners -----------------------------------------------------------------------
    def inputs(self) -> HtmlBlock:
        """What this chapter rests on, and what it could not do for want of data."""
        a = self.audit
        gaps = a.chapter_gaps(self.name)
        ran = [
            s for s in REGISTRY if s.chapter == self.name and s.name not in {g.check for g in gaps}
        ]
        parts = []
        if self.name in ("queries", "indexing") and a.notes:
            parts.append(note_html(self.redactor.text(a.notes[0])))
        if not ran:
            parts.append(
                note_html(
                    f"No {self.info.needs} was provided, so this chapter has nothing to report.",
                    "missing",
                )
            )
        for g in gaps:
            name = CHECK_NAMES.get(g.check, g.check)
            how = f" {g.how}" if g.how else ""
            parts.append(note_html(f"{name}: not measured — it needs {g.needs}.{how}", "missing"))
        html = "".join(parts) or note_html("Every check of this chapter ran.")
        return _block(html, re.sub(r"<[^>]+>", " ", html).strip())

    def thresholds(self, family: str) -> HtmlBlock:
        """The thresholds the audit used for ``family``, in a sentence, with their preset."""
        used = self.audit.thresholds.get(family)
        values = used["values"] if used else self.config.thresholds(family)
        preset = used["preset"] if used else self.config.preset(family)
        sentence = threshold_words(_THRESHOLDS.get(family, "").format(**values))
        if family == "n_plus_one" and values.get("min_total_ms"):
            sentence += f" The repeats must add up to {values['min_total_ms']:g} ms or more."
        return _note(f"{sentence} (Preset: {preset}.)")

    def show(self, *checks: str, empty: str | None = None) -> HtmlBlock:
        """The findings of ``checks`` as cards, or a sentence saying none was found."""
        self._shown.update(checks or {"*"})
        found = self.findings(*checks)
        if not found:
            names = ", ".join(CHECK_NAMES.get(c, c).lower() for c in checks if not c.endswith("*"))
            text = empty or f"Nothing to report: the data provided shows no {names or 'problem'}."
            if any(g.check in checks for g in self.audit.chapter_gaps(self.name)):
                text = "Not measured: the inputs this needs were not provided (see above)."
            return _note(text)
        return _block(findings_html(found, redactor=self.redactor), f"{len(found)} findings")

    def other_findings(self) -> HtmlBlock | None:
        """Findings no earlier section showed, under a heading of their own (nothing when none)."""
        if "*" in self._shown:
            return None
        found = [f for f in self.findings() if not _matches(f.check, tuple(self._shown))]
        if not found:
            return None
        html = '<h2 id="other-findings">Other findings</h2>' + findings_html(
            found, redactor=self.redactor
        )
        return _block(html, f"{len(found)} findings")


def threshold_words(sentence: str) -> str:
    """A thresholds sentence whose words follow its numbers: "at least 1 times" reads "at least
    once", "at most 1 scans" "at most 1 scan", "at most 0 scans" "no scans".

    >>> threshold_words("run at least 1 times; at most 0 scans; at least 1 rows")
    'run at least once; no scans; at least 1 row'
    """
    sentence = re.sub(r"\bat least 1 times\b", "at least once", sentence)
    sentence = re.sub(r"\b(at (?:least|most)) 1 (\w+)s\b", r"\1 1 \2", sentence)
    return re.sub(r"\bat most 0 (\w+)", r"no \1", sentence)


def _find_previous(previous: str | Path, audit_dir: Path | None) -> Path:
    """The previous audit ``previous`` names: absolute, or relative to the working directory,
    the saved audit (the runner puts it there) or the notebooks folder."""
    p = Path(previous).expanduser()
    if p.is_absolute():
        return p
    bases = [Path.cwd(), *([audit_dir] if audit_dir else []), NOTEBOOKS_DIR, _PACKAGE_ROOT]
    for base in bases:
        if (base / p).exists():
            return base / p
    raise ConfigError(
        f"previous audit {str(previous)!r} not found",
        hint="pass previous= the previous report folder or its findings.json",
    )


def _matches(check: str, wanted: tuple[str, ...]) -> bool:
    return check in wanted or (check.startswith("plan_") and "plan_*" in wanted)
