"""The audit: every check run once over a client's frames, symptoms folded into root causes.

:func:`audit` is the one call that makes findings. It derives the frames the checks share
(:class:`~auditkit.analysis.Analysis`), runs the ordered registry of checks
(:data:`auditkit.checks.REGISTRY`) — noting, for each check whose inputs are missing, what it
would need —, validates index candidates against the database's planner when a live database
is given, folds symptoms into the causes that explain them (:mod:`auditkit.checks.fold`) and
ranks the result. ``findings.json``, the executive summary and every chapter page render from
the :class:`Audit` it returns, so they cannot disagree.

    >>> import auditkit
    >>> result = auditkit.audit(auditkit.load_client("data/sample"))   # doctest: +SKIP
    >>> [f.check for f in result.actions]                              # doctest: +SKIP
    ['cache_candidate', 'n_plus_one', ...]

:meth:`Audit.save` writes the audit — findings, notes and the derived frames the pages display —
into a folder (JSON and Parquet, never pickle), and :meth:`Audit.load` reads it back, so report
notebooks display what was computed once instead of computing it again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from auditkit.checks import CHAPTERS, REGISTRY
from auditkit.config import PRESETS, AuditConfig
from auditkit.findings import Finding, rank

if TYPE_CHECKING:
    from auditkit.analysis import Analysis
    from auditkit.checks.indexes.ddl import MigrationFile
    from auditkit.client import ClientData
    from auditkit.compare import Comparison, Snapshot
    from auditkit.report.redact import Redactor

__all__ = ["ACTIONS", "WARM_IMPORTS", "Audit", "Gap", "audit", "warm_imports"]

#: findings the action plan lists at most
ACTIONS = 7
#: version of findings.json (2: finding ids, the shared impact unit, symptoms, actions, gaps;
#: 3: statements and endpoints, and since_previous with each finding's change when the run was
#: given the previous audit of the client)
SCHEMA_VERSION = 3


@dataclass(frozen=True)
class Gap:
    """A check that could not run: what it would have needed."""

    check: str
    chapter: str
    needs: str
    #: what to switch on in the client's own database and application so the check runs
    how: str = ""

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass
class Audit:
    """The result of :func:`audit`: root-cause findings, ranked, and what the pages display."""

    client: str
    findings: list[Finding]
    gaps: list[Gap] = field(default_factory=list)
    #: what the audit knows about its inputs and sources, in sentences
    notes: list[str] = field(default_factory=list)
    #: derived frames the report displays (profile, endpoints, …), by name
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: facts about the workload: source, window, totals (see :meth:`workload_facts`)
    workload: dict[str, Any] = field(default_factory=dict)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: live-database validation: None (not attempted) or a sentence saying what happened
    validation: str | None = None
    #: per threshold family: the preset and values the checks used
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- views --------------------------------------------------------------------------------
    def chapter(self, name: str) -> list[Finding]:
        """The findings of one chapter, ranked."""
        return [f for f in self.findings if f.chapter == name]

    def chapter_gaps(self, name: str) -> list[Gap]:
        return [g for g in self.gaps if g.chapter == name]

    @property
    def actions(self) -> list[Finding]:
        """The action plan: the findings that save the most time (or carry the most risk),
        those with an action sentence, at most :data:`ACTIONS`."""
        from auditkit.findings import Severity

        with_action = [f for f in self.findings if f.action and f.severity >= Severity.MEDIUM]
        ordered = sorted(
            with_action,
            key=lambda f: (-(f.impact.weight if f.impact else 0.0), -int(f.severity)),
        )
        return ordered[:ACTIONS]

    @property
    def migrations(self) -> list[MigrationFile]:
        """One migration per app holding every index change the findings recommend."""
        from auditkit.checks.indexes.ddl import migrations_for

        return migrations_for(
            f
            for f in self.findings
            if f.check in ("missing_index", "unused_index", "duplicate_index")
        )

    # -- findings.json ----------------------------------------------------------------------------
    def document(
        self,
        redactor: Redactor | None = None,
        *,
        version: str | None = None,
        status: str = "complete",
        chapters: Mapping[str, Mapping[str, Any]] | None = None,
        previous: Snapshot | Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``findings.json`` document (schema: ``auditkit/findings.schema.json``).

        ``previous`` — the client's previous audit (its findings.json document, or a
        :class:`~auditkit.compare.Snapshot`) — adds ``since_previous``, this document compared
        with it by :func:`auditkit.compare.compare`, and each finding's ``change``. The
        comparison is made on the document as written (redacted), so its finding ids are the
        ones another tool reads.
        """
        from auditkit import __version__
        from auditkit.compare import document_sections

        shown = [redactor.finding(f) if redactor else f for f in self.findings]
        per_chapter: dict[str, Any] = {}
        for name in CHAPTERS:
            found = [f for f in shown if f.chapter == name]
            per_chapter[name] = {
                "status": "complete",
                "findings": len(found),
                **(dict((chapters or {}).get(name, {}))),
            }
        text = (lambda s: redactor.text(s)) if redactor else (lambda s: s)
        sections = document_sections(self)
        if redactor is not None:  # fingerprints hold no literal values; the redactor agrees
            for row in sections["statements"]:
                if "fingerprint" in row:
                    row["fingerprint"] = redactor.sql(row["fingerprint"])
        doc = {
            "schema_version": SCHEMA_VERSION,
            "client": self.client,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "auditkit_version": version or __version__,
            "status": status,
            "workload": {k: v for k, v in self.workload.items() if v is not None},
            "actions": [f.id for f in self.actions],
            "findings": [f.to_dict() for f in rank(shown)],
            "gaps": [g.to_dict() for g in self.gaps],
            "notes": [text(n) for n in self.notes],
            "migrations": [
                {"app": m.app_label, "path": m.path, "operations": m.operations}
                for m in self.migrations
            ],
            "chapters": per_chapter,
            **sections,
        }
        if previous is not None:
            from auditkit.compare import compare

            doc.update(_since_previous(doc, compare(previous, doc), redactor))
        return doc

    # -- save / load ----------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the audit into ``folder`` (``audit.json`` and ``frames/*.parquet``)."""
        root = Path(folder)
        (root / "frames").mkdir(parents=True, exist_ok=True)
        doc = self.document()
        doc["validation"] = self.validation
        doc["thresholds"] = self.thresholds
        (root / "audit.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        for name, df in self.frames.items():
            _to_parquet(df, root / "frames" / f"{name}.parquet")
        return root

    @classmethod
    def load(cls, folder: str | Path) -> Audit:
        """Read an audit written by :meth:`save`."""
        root = Path(folder)
        doc = json.loads((root / "audit.json").read_text(encoding="utf-8"))
        frames = {p.stem: pd.read_parquet(p) for p in sorted((root / "frames").glob("*.parquet"))}
        return cls(
            client=doc["client"],
            findings=[Finding.from_dict(f) for f in doc.get("findings", [])],
            gaps=[
                Gap(**{k: v for k, v in g.items() if k in Gap.__dataclass_fields__})
                for g in doc.get("gaps", [])
            ],
            notes=list(doc.get("notes", [])),
            frames=frames,
            workload=dict(doc.get("workload", {})),
            generated_at=datetime.fromisoformat(doc["generated_at"]),
            validation=doc.get("validation"),
            thresholds=dict(doc.get("thresholds", {})),
        )


def _since_previous(
    doc: Mapping[str, Any], previous: Comparison, redactor: Redactor | None
) -> dict[str, Any]:
    """``since_previous`` and each finding's ``change``, for findings.json (schema 3)."""
    section = previous.to_dict(full=False)
    if redactor is not None:
        section = redactor.value(section)
    changes = {c.id: c.change for c in previous.findings}
    findings = [{**f, "change": changes.get(f["id"], "new")} for f in doc["findings"]]
    return {"findings": findings, "since_previous": section}


def _to_parquet(df: pd.DataFrame, path: Path) -> None:
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(
                lambda v: v if v is None or isinstance(v, str) else json.dumps(v, default=str)
            )
    out.columns = [str(c) for c in out.columns]
    out.to_parquet(path, index=False)


def _run_checks(analysis: Analysis, config: AuditConfig) -> tuple[list[Finding], list[Gap]]:
    from auditkit.checks.data_quality import how_to_collect, software_of

    found: list[Finding] = []
    gaps: list[Gap] = []
    software: frozenset[str] | None = None
    for spec in REGISTRY:
        if not spec.available(analysis):
            if spec.needs:
                if software is None:
                    software = software_of(
                        (f.format for f in analysis.files if f.status == "loaded"),
                        analysis.dialect if not analysis.workload.empty else None,
                    )
                gaps.append(
                    Gap(spec.name, spec.chapter, spec.needs, how_to_collect(spec.name, software))
                )
            continue
        args = [getattr(analysis, name) for name in spec.reads]
        for f in spec.run(*args, config=config):
            found.append(f if f.chapter else dataclasses.replace(f, chapter=spec.chapter))
    return found, gaps


#: what an audit imports on its first use, beyond the checks themselves: the capacity fit's
#: SciPy, the figures' plotly, sqlglot's SQL writers, the analyses some checks reach for
WARM_IMPORTS = (
    "scipy.optimize",
    "sqlglot.generators",
    "auditkit.analysis",
    "auditkit.analysis.deployment",
    "auditkit.analysis.load",
    "auditkit.analysis.scaling",
    "auditkit.analysis.work",
    "auditkit.checks.fold",
    "auditkit.report.figures_indexing",
)


def warm_imports() -> None:
    """Import :data:`WARM_IMPORTS` ahead of an audit, e.g. in a thread while the client loads
    on worker processes, so that :func:`audit` does not pay for them (about half a second)."""
    from importlib import import_module

    for name in WARM_IMPORTS:
        try:
            import_module(name)
        except ImportError:  # an optional part missing: the audit says so when it gets there
            continue


def audit(
    client: ClientData,
    config: AuditConfig | None = None,
    *,
    dsn: str | None = None,
) -> Audit:
    """Audit a loaded client folder (see the module docstring).

    ``config`` defaults to the client's own (its ``audit.yaml``). ``dsn`` is a live database
    to validate index candidates against, read-only (never displayed or stored).
    """
    from auditkit.analysis import Analysis
    from auditkit.checks.fold import fold

    cfg = config or client.config
    analysis = Analysis.of(client, cfg)
    findings, gaps = _run_checks(analysis, cfg)
    validation = None
    if dsn:
        from auditkit.checks.indexes import validate_with_hypopg

        findings = validate_with_hypopg(findings, dsn, analysis.profile, cfg)
        outcomes = {
            str(f.metrics.get("validation"))
            for f in findings
            if f.check == "missing_index" and f.metrics.get("validation")
        }
        validation = "; ".join(sorted(outcomes)) or "validated against the planner"
    wl = analysis.workload
    roots = fold(
        findings,
        wl.profile,
        cfg,
        total_ms=wl.db_ms,
        window_s=wl.window_s,
        source=wl.label,
    )
    notes = list(client.notes)
    if not wl.empty:
        notes.insert(0, wl.describe())
    from auditkit.analysis.scaling import scaling_frames

    frames = display_frames(analysis)
    frames.update(scaling_frames(analysis, roots))
    return Audit(
        client=client.name,
        findings=rank(roots),
        gaps=gaps,
        notes=notes,
        frames=frames,
        workload=workload_facts(analysis),
        validation=validation,
        thresholds={
            family: {"preset": cfg.preset(family), "values": _jsonable(cfg.thresholds(family))}
            for family in PRESETS
        },
    )


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def workload_facts(analysis: Analysis) -> dict[str, Any]:
    """The workload in figures, for findings.json and the report's header."""
    wl = analysis.workload
    return {
        "source": wl.source,
        "label": wl.label,
        "start": wl.start.isoformat() if wl.start is not None else None,
        "end": wl.end.isoformat() if wl.end is not None else None,
        "window_s": wl.window_s,
        "db_ms": round(wl.db_ms, 3),
        "statements": wl.calls if not wl.empty else 0,
        "statement_groups": len(wl.profile),
        "requests": int(analysis.statements["request_key"].nunique())
        if len(analysis.statements) and "request_key" in analysis.statements
        else None,
        "requests_inferred": bool(analysis.statements.attrs.get("inferred")),
        "tied_to_requests": wl.tied_to_requests,
        "maintenance_statements": wl.maintenance[0],
        "maintenance_ms": round(wl.maintenance[1], 3),
    }


def display_frames(analysis: Analysis) -> dict[str, pd.DataFrame]:
    """The derived frames the report pages display, computed here once."""
    from auditkit.analysis.cache import display_frames as cache_frames
    from auditkit.report.figures_indexing import table_time_frame

    wl = analysis.workload
    frames: dict[str, pd.DataFrame] = {
        "profile": wl.profile.head(200).reset_index(drop=True),
        "endpoints": analysis.endpoints,
        "inventory": _inventory(analysis.files),
        "skipped": _skipped(analysis.files),
    }
    if len(wl.events):
        frames["durations"] = pd.DataFrame(
            {
                "duration_ms": pd.to_numeric(wl.events["duration_ms"], errors="coerce")
                .dropna()
                .astype("float32")
            }
        )
    if len(wl.profile):
        frames["table_time"] = table_time_frame(wl.profile, analysis=analysis.sql)
    for name in ("cache_stats", "load_samples"):
        df = analysis.frame(name)
        if len(df):
            frames[name] = df.reset_index(drop=True)
    physical = [i for i in analysis.catalog.indexes if not i.declared_only]
    if physical:
        frames["indexes"] = pd.DataFrame(
            {
                "table": [i.table for i in physical],
                "index": [i.name for i in physical],
                "columns": [", ".join(k.label() for k in i.keys) for i in physical],
                "size_bytes": [i.size_bytes for i in physical],
                "idx_scan": [i.idx_scan for i in physical],
            }
        )
    req = analysis.request_times
    if len(req) and req["duration_ms"].notna().any():
        cols = [c for c in ("endpoint", "method", "duration_ms", "db_ms", "ts") if c in req]
        frames["requests"] = req[cols].reset_index(drop=True)
    ev = analysis.cache_events
    if len(ev):
        frames["cache_events"] = ev.reset_index(drop=True)
    frames.update(cache_frames(analysis))
    return frames


def _format_label(name: str | None) -> str | None:
    """A format as a reader knows it (the loader's description), not its code name."""
    if not name:
        return None
    from auditkit.errors import ConfigError
    from auditkit.loaders.registry import get_loader

    try:
        return get_loader(name).description or name
    except ConfigError:
        return "audit settings" if name == "audit.yaml" else name


def _inventory(files: Iterable[Any]) -> pd.DataFrame:
    rows = []
    for f in files:
        r = f.report
        rows.append(
            {
                "file": f.path,
                "format": _format_label(f.format),
                "status": f.status,
                "size_bytes": f.size_bytes,
                "read": r.read if r else None,
                "parsed": r.parsed if r else None,
                "skipped": r.skipped_total if r else None,
                "events": sum(r.events.values()) if r else None,
                "note": f.error or ("; ".join(r.warnings[:2]) if r and r.warnings else None),
            }
        )
    cols = ["file", "format", "status", "size_bytes", "read", "parsed", "skipped", "events", "note"]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("size_bytes", "read", "parsed", "skipped", "events"):
        df[c] = df[c].astype("Int64")
    return df


def _skipped(files: Iterable[Any], per_reason: int = 3) -> pd.DataFrame:
    rows = []
    for f in files:
        r = f.report
        if r is None or not r.skipped_total:
            continue
        for reason, count in r.skipped.most_common():
            samples = [s for s in r.samples if s.reason == reason]
            rows.append(
                {
                    "file": f.path,
                    "reason": reason,
                    "records": count,
                    "first_lines": ", ".join(str(s.line) for s in samples[:per_reason]),
                    "excerpt": samples[0].excerpt if samples else "",
                }
            )
    return pd.DataFrame(rows, columns=["file", "reason", "records", "first_lines", "excerpt"])
