"""Findings: what a check concludes, in one model, with no HTML.

A check is a pure function from canonical frames (and config) to a list of :class:`Finding`.
Each finding carries a stable ``check`` id from :data:`CHECKS` (the vocabulary, documented
here and in ``docs/findings.md``), a :class:`Severity`, a title and summary, the
:class:`Subject` it is about, the ``metrics`` behind it, a :class:`Recommendation` (prose plus
ready SQL and Django code) and :class:`Evidence` with its strength.

Every run writes ``findings.json`` (schema: ``auditkit/findings.schema.json``) with
:func:`findings_document`; :func:`load_findings` reads one back.

Example::

    >>> f = Finding(check="slow_query", severity=Severity.HIGH, title="Slow statement",
    ...             summary="…", subject=Subject(fingerprint="select …"))
    >>> Finding.from_dict(f.to_dict()) == f
    True
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditkit.errors import ConfigError

__all__ = [
    "CHECKS",
    "Evidence",
    "EvidenceStrength",
    "Finding",
    "Recommendation",
    "Severity",
    "Subject",
    "findings_document",
    "findings_frame",
    "load_findings",
    "rank",
]


class Severity(enum.IntEnum):
    """How urgent a finding is. Ordered: ``Severity.CRITICAL > Severity.INFO``."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[str(value).upper()]
        except KeyError:
            raise ConfigError(
                f"unknown severity {value!r}",
                hint=f"use one of {', '.join(s.name.lower() for s in cls)}",
            ) from None

    def __str__(self) -> str:
        return self.name.lower()


class EvidenceStrength(enum.StrEnum):
    """How strong the proof is, strongest first."""

    #: measured by the database itself (hypothetical index re-planned, EXPLAIN ANALYZE)
    VALIDATED = "validated"
    #: derived from server statistics (pg_stat_*, pg_stat_statements)
    STATISTICS = "statistics"
    #: recognised from patterns in logs or traces
    PATTERN = "pattern"
    #: reconstructed by heuristic (inferred requests, inferred model names)
    INFERRED = "inferred"


#: The check vocabulary: stable ids and what each means. A test fails when a check emits an id
#: that is not here, or when docs/findings.md does not document one.
CHECKS: dict[str, str] = {
    "slow_query": "A statement whose total or per-call time stands out in the workload.",
    "n_plus_one": "The same statement repeated with different parameters within one request: a loop issuing one query per row.",
    "duplicate_query": "The same statement with the same parameters repeated within one request.",
    "missing_index": "Predicates, joins or sorts not served by an index; subject.expression says plain, composite or expression.",
    "unused_index": "An index with few or no scans since the statistics reset, costing writes and space.",
    "duplicate_index": "An index identical to another, or a redundant prefix of one (subject.expression says which).",
    "plan_time_share": "A plan node that takes a large share of the plan's execution time.",
    "plan_misestimate": "A plan node whose actual rows differ from the planner's estimate by a large factor.",
    "plan_rows_removed": "A plan node that reads many rows only to discard most of them with a filter.",
    "plan_hash_batches": "A hash node that spilled to disk in several batches.",
    "plan_sort_disk": "A sort that spilled to disk.",
    "plan_heap_fetches": "An index-only scan that still visits the heap (visibility map not current).",
    "plan_nested_loop": "A nested loop whose inner side runs a very large number of times.",
    "plan_seq_scan": "A sequential scan of a large table, usually with a selective filter.",
    "cache_candidate": "A statement or endpoint whose results repeat and would benefit from caching.",
    "low_cache_hit_ratio": "A cache (Redis, memcached, Django cache, PostgreSQL buffers) missing more often than it should.",
    "http_cache": "Responses that could carry HTTP caching headers or be served from a page cache.",
    "capacity_limit": "The load level at which latency or errors degrade: the system's current ceiling.",
    "connection_budget": "Database connections needed at peak versus what the server allows.",
    "background_task_candidate": "Slow work inside a request that could run in a background task.",
    "data_quality": "An input that could not be fully used: skipped records, unknown files, missing data.",
    "server_errors": "Errors, deadlocks or lock waits logged by the database server.",
    "temp_files": "Statements that spill to temporary files (work_mem too small for them).",
}


@dataclass(frozen=True, slots=True)
class Subject:
    """What a finding is about. Only the fields that apply are set."""

    endpoint: str | None = None
    table: str | None = None
    columns: tuple[str, ...] | None = None
    index: str | None = None
    expression: str | None = None
    fingerprint: str | None = None
    fingerprint_id: str | None = None
    file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if v is not None}
        if "columns" in d:
            d["columns"] = list(d["columns"])
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Subject:
        d = dict(data)
        if d.get("columns") is not None:
            d["columns"] = tuple(d["columns"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def label(self) -> str:
        """A short human label: 'table app_book (author_id)' or the endpoint or fingerprint."""
        parts = []
        if self.endpoint:
            parts.append(self.endpoint)
        if self.table:
            cols = f" ({', '.join(self.columns)})" if self.columns else ""
            parts.append(f"{self.table}{cols}")
        if self.index:
            parts.append(f"index {self.index}")
        if not parts and self.fingerprint:
            fp = self.fingerprint
            parts.append(fp if len(fp) <= 80 else fp[:77] + "…")
        if not parts and self.file:
            parts.append(self.file)
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What to do: prose, and ready-to-use code (SQL DDL, Django ORM or settings, migration)."""

    summary: str
    sql: str | None = None
    django: str | None = None
    migration: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recommendation:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Evidence:
    """The rows that prove a finding and how strong that proof is.

    ``items`` are small JSON-ready dicts (a sample statement, a plan node, request ids,
    ``source_file``/``source_line``), never whole frames.
    """

    strength: EvidenceStrength = EvidenceStrength.PATTERN
    items: tuple[Mapping[str, Any], ...] = ()
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"strength": str(self.strength), "items": [dict(i) for i in self.items]}
        if self.note:
            d["note"] = self.note
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        return cls(
            strength=EvidenceStrength(data.get("strength", "pattern")),
            items=tuple(data.get("items", ())),
            note=data.get("note"),
        )


_CHECK_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Finding:
    """One conclusion of one check. See the module docstring."""

    check: str
    severity: Severity
    title: str
    summary: str
    subject: Subject = field(default_factory=Subject)
    metrics: Mapping[str, float | int | str | None] = field(default_factory=dict)
    recommendation: Recommendation | None = None
    evidence: Evidence = field(default_factory=Evidence)
    #: estimated time saved, milliseconds per hour of the observed workload (for ranking)
    impact_ms: float | None = None
    chapter: str | None = None

    def __post_init__(self) -> None:
        if self.check not in CHECKS and not (
            self.check.startswith("plan_") and _CHECK_ID.match(self.check)
        ):
            raise ConfigError(
                f"unknown check id {self.check!r}",
                hint="add it to auditkit.findings.CHECKS and docs/findings.md",
            )
        object.__setattr__(self, "severity", Severity.parse(self.severity))

    # -- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "check": self.check,
            "severity": str(self.severity),
            "title": self.title,
            "summary": self.summary,
            "subject": self.subject.to_dict(),
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "recommendation": (self.recommendation or Recommendation(summary="")).to_dict(),
            "evidence": self.evidence.to_dict(),
        }
        if self.impact_ms is not None:
            d["impact_ms"] = _json_number(self.impact_ms)
        if self.chapter:
            d["chapter"] = self.chapter
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        rec = data.get("recommendation") or None
        return cls(
            check=data["check"],
            severity=Severity.parse(data["severity"]),
            title=data["title"],
            summary=data["summary"],
            subject=Subject.from_dict(data.get("subject", {})),
            metrics=dict(data.get("metrics", {})),
            recommendation=Recommendation.from_dict(rec) if rec and rec.get("summary") else None,
            evidence=Evidence.from_dict(data.get("evidence", {})),
            impact_ms=data.get("impact_ms"),
            chapter=data.get("chapter"),
        )

    # -- display -----------------------------------------------------------------------------
    def __str__(self) -> str:
        return f"[{self.severity}] {self.check}: {self.title}"

    def _repr_html_(self) -> str:
        from auditkit.report.html import finding_html

        return finding_html(self, redact=False)


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def rank(findings: Iterable[Finding]) -> list[Finding]:
    """Severity first, then estimated impact, then title — the order of every report."""
    return sorted(
        findings, key=lambda f: (-int(f.severity), -(f.impact_ms or 0.0), f.check, f.title)
    )


def findings_document(
    findings: Iterable[Finding],
    client: str,
    *,
    version: str | None = None,
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """The ``findings.json`` document for one client (see findings.schema.json)."""
    from auditkit import __version__

    return {
        "client": client,
        "generated_at": (generated_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "auditkit_version": version or __version__,
        "findings": [f.to_dict() for f in rank(findings)],
    }


def load_findings(path: str | Path) -> list[Finding]:
    """Read the findings of a ``findings.json`` file back into Finding objects."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [Finding.from_dict(f) for f in data.get("findings", [])]


def findings_frame(findings: Iterable[Finding]) -> Any:
    """Findings as a DataFrame (severity, check, title, subject label, impact) for display."""
    import pandas as pd

    rows = [
        {
            "severity": str(f.severity),
            "check": f.check,
            "title": f.title,
            "subject": f.subject.label(),
            "impact_ms_per_h": f.impact_ms,
            "strength": str(f.evidence.strength),
            "summary": f.summary,
        }
        for f in rank(findings)
    ]
    return pd.DataFrame(
        rows,
        columns=["severity", "check", "title", "subject", "impact_ms_per_h", "strength", "summary"],
    )
