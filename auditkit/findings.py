"""Findings: what a check concludes, in one model, with no HTML.

A check is a pure function from canonical frames (and config) to a list of :class:`Finding`.
Each finding carries a stable ``check`` id from :data:`CHECKS` (the vocabulary, documented
here and in ``docs/findings.md``), a :class:`Severity`, a title and summary, the
:class:`Subject` it is about, the ``metrics`` behind it, a :class:`Recommendation` (prose plus
ready SQL and Django code), :class:`Evidence` with its strength and the symptoms it explains,
and its :class:`Impact`: the time its fix saves, in one unit across all checks.

A finding's :attr:`Finding.id` is its identity — the check and its subject, independent of
wording, severity and run — so the same problem has the same id in every audit of a client.

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
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditkit.errors import ConfigError
from auditkit.lazy_re import compile_later

__all__ = [
    "CHECKS",
    "CHECK_NAMES",
    "Evidence",
    "EvidenceStrength",
    "Finding",
    "Impact",
    "Recommendation",
    "Severity",
    "Subject",
    "duration_text",
    "findings_document",
    "findings_frame",
    "load_findings",
    "percent_text",
    "plural",
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
    "connection_churn": "A new database connection opened for every request (CONN_MAX_AGE = 0, no pool).",
    "background_task_candidate": "Slow work inside a request that could run in a background task.",
    "worker_failures": "Application-server workers timed out, killed or crashed under a request, or a listen queue full.",
    "data_quality": "An input that could not be fully used: skipped records, unknown files, missing data.",
    "server_errors": "Errors, deadlocks or lock waits logged by the database server.",
    "temp_files": "Statements that spill to temporary files (work_mem too small for them).",
}


#: what each check is called on a page (the id is for tools; people read these)
CHECK_NAMES: dict[str, str] = {
    "slow_query": "Slow statement",
    "n_plus_one": "N+1 queries",
    "duplicate_query": "Duplicate queries",
    "missing_index": "Missing index",
    "unused_index": "Unused index",
    "duplicate_index": "Duplicate index",
    "plan_time_share": "Plan: time spent in one node",
    "plan_misestimate": "Plan: row estimate off",
    "plan_rows_removed": "Plan: rows read and discarded",
    "plan_hash_batches": "Plan: hash spilled to disk",
    "plan_sort_disk": "Plan: sort on disk",
    "plan_heap_fetches": "Plan: heap fetches",
    "plan_nested_loop": "Plan: nested loop",
    "plan_seq_scan": "Plan: sequential scan",
    "cache_candidate": "Worth caching",
    "low_cache_hit_ratio": "Cache hit ratio",
    "http_cache": "HTTP caching",
    "capacity_limit": "Capacity",
    "connection_budget": "Connection budget",
    "connection_churn": "Connection churn",
    "background_task_candidate": "Work to move out of the request",
    "worker_failures": "Application-server workers",
    # registry entries that emit several check ids: what their gaps are called
    "plans": "Query plans",
    "mysql_server": "MySQL/MariaDB server counters",
    "data_quality": "Data quality",
    "server_errors": "Server errors",
    "temp_files": "Temporary files",
}


@dataclass(frozen=True, slots=True)
class Impact:
    """The time a finding's fix saves, in the unit every check shares.

    Database time is measured over the audit's observed window by one timing source for the
    whole audit (``source``: the Django query log, a server log, ``pg_stat_statements``…; see
    :mod:`auditkit.analysis.workload`). ``db_ms`` is the total saved in the window, ``db_share``
    that saving as a fraction of all database time in the window, ``db_ms_per_request`` the
    saving per affected request. Work moved out of the request (a background task) saves
    response time rather than database time: ``response_ms_per_request``.

    ``basis`` says how the saving was obtained: ``measured`` (the time of statements that the fix
    removes), ``estimated`` (a documented assumption, e.g. half of a statement's time for an
    index not yet validated), or ``validated`` (the database's own planner, with and without a
    hypothetical index). ``note`` says it in words.
    """

    db_ms: float | None = None
    db_share: float | None = None
    db_ms_per_request: float | None = None
    response_ms_per_request: float | None = None
    requests: int | None = None
    window_s: float | None = None
    source: str | None = None
    basis: str = "measured"
    note: str | None = None

    @property
    def db_ms_per_hour(self) -> float | None:
        """Database time saved per hour of the observed workload."""
        if self.db_ms is None or not self.window_s:
            return None
        return self.db_ms / (self.window_s / 3600.0)

    @property
    def weight(self) -> float:
        """What ranks findings of one severity: milliseconds saved in the window (database
        time, or response time for work moved out of requests)."""
        db = self.db_ms or 0.0
        response = (self.response_ms_per_request or 0.0) * (self.requests or 0)
        return max(db, response)

    @classmethod
    def of(
        cls,
        saved_ms: float,
        total_ms: float | None,
        *,
        window_s: float | None = None,
        requests: int | None = None,
        source: str | None = None,
        basis: str = "measured",
        note: str | None = None,
    ) -> Impact:
        """Database time ``saved_ms`` in a window whose database time is ``total_ms``."""
        return cls(
            db_ms=round(float(saved_ms), 3),
            db_share=round(saved_ms / total_ms, 5) if total_ms else None,
            db_ms_per_request=round(saved_ms / requests, 3) if requests else None,
            requests=requests,
            window_s=window_s,
            source=source,
            basis=basis,
            note=note,
        )

    def phrase(self) -> str:
        """The saving in words: "saves 48 ms of database time per request (21 % of all
        database time)"; estimates say so, and an upper bound (``basis`` "at stake": all of a
        statement's time, the most a fix could save) says "saves at most"."""
        est = {"estimated": "an estimated ", "at stake": "at most "}.get(self.basis, "")
        parts = []
        if self.response_ms_per_request:
            parts.append(
                f"answers {est}{duration_text(self.response_ms_per_request)} sooner per request"
            )
        if self.db_ms:
            if self.db_ms_per_request and self.requests:
                text = f"saves {est}{duration_text(self.db_ms_per_request)} of database time per request"
                if self.db_share is not None:
                    text += f" ({percent_text(self.db_share)} of all database time)"
            elif self.db_share is not None:
                text = f"saves {est}{percent_text(self.db_share)} of all database time"
            else:
                text = f"saves {est}{duration_text(self.db_ms)} of database time"
            parts.append(text)
        return " and ".join(parts) or "saves no measurable time"

    def to_dict(self) -> dict[str, Any]:
        d = {k: _json_number(v) for k, v in asdict(self).items() if v is not None}
        per_hour = self.db_ms_per_hour
        if per_hour is not None:
            d["db_ms_per_hour"] = _json_number(per_hour)
        d["text"] = self.phrase()
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Impact:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


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

    def key(self) -> dict[str, Any]:
        """What identifies the subject: every field but the fingerprint's text when its id is
        known (the text's wording may change between auditkit versions, its id may not)."""
        d = self.to_dict()
        if "fingerprint_id" in d:
            d.pop("fingerprint", None)
        return d

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
    ``source_file``/``source_line``), never whole frames. ``symptoms`` are the findings of other
    checks that this one explains (a slow statement, a plan's sequential scan), folded into it
    by :mod:`auditkit.checks.fold`: each a dict with their ``check``, ``title``, ``summary``,
    ``severity`` and ``id``.
    """

    strength: EvidenceStrength = EvidenceStrength.PATTERN
    items: tuple[Mapping[str, Any], ...] = ()
    note: str | None = None
    symptoms: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"strength": str(self.strength), "items": [dict(i) for i in self.items]}
        if self.note:
            d["note"] = self.note
        if self.symptoms:
            d["symptoms"] = [dict(s) for s in self.symptoms]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        return cls(
            strength=EvidenceStrength(data.get("strength", "pattern")),
            items=tuple(data.get("items", ())),
            note=data.get("note"),
            symptoms=tuple(data.get("symptoms", ())),
        )


_CHECK_ID = compile_later(r"^[a-z][a-z0-9_]*$")


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
    #: the time the fix saves (None: the finding saves no measurable time, e.g. an unused index)
    impact: Impact | None = None
    chapter: str | None = None
    #: fingerprint ids of the statements the finding is about (what symptoms are matched on)
    statements: tuple[str, ...] = ()
    #: the change in one sentence a manager understands (the action plan's line)
    action: str | None = None

    def __post_init__(self) -> None:
        if self.check not in CHECKS and not (
            self.check.startswith("plan_") and _CHECK_ID.match(self.check)
        ):
            raise ConfigError(
                f"unknown check id {self.check!r}",
                hint="add it to auditkit.findings.CHECKS and docs/findings.md",
            )
        object.__setattr__(self, "severity", Severity.parse(self.severity))

    @property
    def id(self) -> str:
        """The finding's identity: its check and subject, stable across runs and wording.

        ``n_plus_one:3f2a…`` — the check, then a digest of :meth:`Subject.key`. Two audits of
        the same client give the same id to the same problem, whatever its severity or figures.
        """
        key = json.dumps([self.check, self.subject.key()], sort_keys=True, default=str)
        return f"{self.check}:{hashlib.blake2b(key.encode('utf-8'), digest_size=8).hexdigest()}"

    # -- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "check": self.check,
            "severity": str(self.severity),
            "title": self.title,
            "summary": self.summary,
            "subject": self.subject.to_dict(),
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "recommendation": (self.recommendation or Recommendation(summary="")).to_dict(),
            "evidence": self.evidence.to_dict(),
        }
        if self.impact is not None:
            d["impact"] = self.impact.to_dict()
        if self.chapter:
            d["chapter"] = self.chapter
        if self.statements:
            d["statements"] = list(self.statements)
        if self.action:
            d["action"] = self.action
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
            impact=Impact.from_dict(data["impact"]) if data.get("impact") else None,
            chapter=data.get("chapter"),
            statements=tuple(data.get("statements", ())),
            action=data.get("action"),
        )

    # -- display -----------------------------------------------------------------------------
    def __str__(self) -> str:
        return f"[{self.severity}] {self.check}: {self.title}"

    def _repr_html_(self) -> str:
        from auditkit.report.html import finding_html

        return finding_html(self, redact=False)


def plural(n: float, singular: str, many: str | None = None) -> str:
    """``1 statement``, ``2 statements``, ``1,234 calls`` (``many`` for irregular plurals)."""
    word = singular if n == 1 else (many or singular + "s")
    return f"{n:,.0f} {word}"


def duration_text(ms: float) -> str:
    """Milliseconds for a sentence: "0.4 ms", "48 ms", "1.2 s", "3.5 min"."""
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    if ms < 7_200_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def percent_text(share: float) -> str:
    """A fraction for a sentence: "21 %", "2.5 %", "0.3 %", "< 0.1 %"."""
    pct = share * 100
    if pct >= 10:
        return f"{pct:.0f} %"
    if pct >= 0.1:
        return f"{pct:.1f} %"
    return "< 0.1 %"


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def rank(findings: Iterable[Finding]) -> list[Finding]:
    """Severity first, then the time saved, then check and title — the order of every report."""
    return sorted(
        findings,
        key=lambda f: (-int(f.severity), -(f.impact.weight if f.impact else 0.0), f.check, f.title),
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
            "saved_ms": f.impact.db_ms if f.impact else None,
            "share": f.impact.db_share if f.impact else None,
            "strength": str(f.evidence.strength),
            "summary": f.summary,
        }
        for f in rank(findings)
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "severity",
            "check",
            "title",
            "subject",
            "saved_ms",
            "share",
            "strength",
            "summary",
        ],
    )
