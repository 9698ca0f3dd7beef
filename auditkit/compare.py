"""Re-audits: what changed between two audits of the same client.

A consultant's second visit starts with one question: did the fixes work? :func:`compare` takes
two audits — :class:`~auditkit.auditing.Audit` objects, ``findings.json`` documents, report
folders or ``findings.json`` files — and says, for every finding, whether it is

* ``new`` — in the new audit only;
* ``resolved`` — in the old audit only (with a note when it was *not observed* rather than fixed:
  its endpoint got no traffic, or its check lacked the data to run);
* ``worse`` / ``better`` — in both, and its measured impact grew or shrank by more than
  :data:`MIN_CHANGE` (and by more than the noise floor of its unit);
* ``persisting`` — in both, about the same.

Findings are matched by :attr:`auditkit.findings.Finding.id` (the check and its subject, never
the wording), so audits written by different auditkit versions compare as long as their findings
carry ids; a ``findings.json`` without them (version 1) is refused with an
:class:`~auditkit.errors.InputError` that says so.

**Normalisation.** Two audits rarely observe the same window or the same traffic, so totals are
never compared. A finding's impact is compared per affected request when both audits know it
(``db_ms_per_request``, ``response_ms_per_request``), else per hour of the observed window
(``db_ms_per_hour``); only when neither audit knows its window are totals compared, and the
comparison says so. Statements (by fingerprint id) and endpoints (by route) are compared on calls,
total and mean time and share, normalised the same way (per request of the whole workload, else
per hour). :attr:`Comparison.caveats` states, in sentences, when the windows, the traffic, the
timing source or the auditkit version differ.

    >>> from auditkit.compare import compare
    >>> result = compare("reports/acme-2026-01", "reports/acme")     # doctest: +SKIP
    >>> [(c.change, c.title) for c in result.findings]               # doctest: +SKIP
    [('resolved', 'N+1 queries on /books/'), ('new', ...), ...]

The comparison is pure: it reads what the audits hold and computes nothing about the client.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from auditkit.errors import InputError
from auditkit.findings import CHECK_NAMES, Severity, duration_text

if TYPE_CHECKING:
    from auditkit.auditing import Audit

__all__ = [
    "CHANGES",
    "INPUT_CHECKS",
    "COMPARISON_VERSION",
    "MIN_CHANGE",
    "Comparison",
    "FindingChange",
    "Snapshot",
    "compare",
    "compare_endpoints",
    "compare_findings",
    "compare_statements",
    "document_sections",
    "load_document",
    "snapshot",
]

#: what a finding can have become, in the order reports list them
CHANGES = ("new", "worse", "resolved", "better", "persisting")
#: version of the comparison object (``auditkit compare --json``, ``since_previous``)
COMPARISON_VERSION = 1
#: a measured impact must move by this fraction of its old value to count as better or worse
MIN_CHANGE = 0.25
#: …and by at least this much in its unit (the noise floor of timings)
NOISE_FLOOR: dict[str, float] = {
    "db_ms_per_request": 1.0,
    "response_ms_per_request": 10.0,
    "db_ms_per_hour": 1000.0,
    "db_ms": 10.0,
}
#: windows whose lengths differ by more than this fraction are "different windows"
WINDOW_TOLERANCE = 0.10
#: request rates that differ by more than this fraction are "different traffic"
TRAFFIC_TOLERANCE = 0.25
#: statements and endpoints kept in findings.json (largest total time first)
STATEMENTS_KEPT = 100
ENDPOINTS_KEPT = 500

#: the impact measures a finding can be compared on, in order of preference, with their words
_MEASURES: dict[str, str] = {
    "db_ms_per_request": "database time per affected request",
    "response_ms_per_request": "response time per request",
    "db_ms_per_hour": "database time per hour of the observed window",
    "db_ms": "database time over the observed window (windows unknown: totals)",
}
_STATEMENT_COLUMNS = ("fingerprint_id", "fingerprint", "calls", "total_ms", "mean_ms", "share")
_ENDPOINT_COLUMNS = (
    "endpoint",
    "requests",
    "statements",
    "db_ms",
    "statements_per_request",
    "db_ms_per_request",
    "response_p95_ms",
)


# -- one side ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """What a comparison needs of one audit, whichever form it came in."""

    client: str
    generated_at: str | None
    auditkit_version: str | None
    schema_version: int | None
    workload: Mapping[str, Any]
    #: finding dicts (the findings.json shape), each with its ``id``
    findings: tuple[Mapping[str, Any], ...]
    #: checks that could not run for want of data
    gaps: Mapping[str, str] = field(default_factory=dict)
    #: the query profile: fingerprint_id, fingerprint, calls, total_ms, mean_ms, share
    statements: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: whether ``statements`` lists every statement group (False: only the top ones)
    statements_complete: bool = True
    #: per route: requests, statements, db_ms, per-request figures
    endpoints: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: where it came from, for messages ("reports/acme/findings.json", "the audit")
    origin: str = "the audit"
    #: whether the source holds statement and endpoint figures at all (findings.json 2 does not)
    has_statements: bool = True
    has_endpoints: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Who and when, for the comparison object."""
        return {
            "client": self.client,
            "generated_at": self.generated_at,
            "auditkit_version": self.auditkit_version,
            "schema_version": self.schema_version,
            "workload": {k: v for k, v in self.workload.items() if v is not None},
            "findings": len(self.findings),
        }


def snapshot(source: Audit | Mapping[str, Any] | Snapshot | str | Path) -> Snapshot:
    """One side of a comparison from an :class:`~auditkit.auditing.Audit`, a ``findings.json``
    document (a mapping), a report folder, a saved audit folder or a ``findings.json`` file.

    Raises :class:`~auditkit.errors.InputError` when the file is missing, is not JSON, is not a
    ``findings.json`` document, or holds findings without ids (findings.json version 1).
    """
    from auditkit.auditing import Audit

    if isinstance(source, Snapshot):
        return source
    if isinstance(source, Audit):
        return _from_audit(source)
    if isinstance(source, Mapping):
        return _from_document(source, origin="the document")
    return _from_path(Path(source))


def _from_audit(a: Audit) -> Snapshot:
    doc = a.document()
    return Snapshot(
        client=a.client,
        generated_at=doc["generated_at"],
        auditkit_version=doc["auditkit_version"],
        schema_version=doc["schema_version"],
        workload=dict(a.workload),
        findings=tuple(doc["findings"]),
        gaps={g.check: g.needs for g in a.gaps},
        statements=_statements_frame(a.frames.get("profile")),
        statements_complete=_complete(a.workload, a.frames.get("profile")),
        endpoints=_endpoints_frame(a.frames.get("endpoints")),
        has_statements="profile" in a.frames,
        has_endpoints="endpoints" in a.frames,
    )


def load_document(source: str | Path) -> tuple[dict[str, Any], Path]:
    """The findings.json document of a report folder, a saved audit folder or a findings.json
    file, checked to be comparable (every finding carries an id), and the file it came from.

    Raises :class:`~auditkit.errors.InputError` as :func:`snapshot` does.
    """
    path = Path(source)
    if path.is_dir():
        for name in ("findings.json", "audit.json"):
            if (path / name).is_file():
                return load_document(path / name)
        raise InputError(
            "no findings.json in this folder",
            path=path,
            hint="give a report folder written by `auditkit run`, or a findings.json file",
        )
    if not path.is_file():
        raise InputError("not found", path=path, hint="give a report folder or a findings.json")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("not a text file", path=path, hint="give a findings.json") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not JSON ({exc.msg})", path=path, line=exc.lineno, hint="give a findings.json"
        ) from None
    if not isinstance(doc, dict):
        raise InputError(
            "not a findings.json document (a JSON object)",
            path=path,
            hint="give a findings.json written by `auditkit run`",
        )
    _check_document(doc, path)
    return doc, path


def _from_path(path: Path) -> Snapshot:
    doc, file = load_document(path)
    return _from_document(doc, origin=str(file), path=file)


def _check_document(doc: Mapping[str, Any], path: Path | None) -> None:
    """Refuse what cannot be compared: not a findings.json, or findings without ids."""
    findings = doc.get("findings")
    if not isinstance(findings, list) or "client" not in doc:
        raise InputError(
            "not a findings.json document: expected an object with 'client' and a 'findings' list",
            path=path,
            hint="give a findings.json written by `auditkit run`",
        )
    version = doc.get("schema_version")
    without_id = [f for f in findings if not (isinstance(f, Mapping) and f.get("id"))]
    if without_id:
        written = doc.get("auditkit_version") or "an unknown version"
        shape = f"findings.json version {version}" if version else "findings.json version 1"
        raise InputError(
            f"{len(without_id)} of {len(findings)} findings carry no id (written by auditkit "
            f"{written}, {shape}): without the finding identity this audit cannot be compared",
            path=path,
            hint="finding ids appeared in findings.json version 2; audit that client folder again "
            "with this auditkit (`auditkit run DATA_DIR`) and compare the new report",
        )


def _from_document(doc: Mapping[str, Any], *, origin: str, path: Path | None = None) -> Snapshot:
    _check_document(doc, path)
    findings = list(doc["findings"])
    version = doc.get("schema_version")
    profile = doc.get("statements")
    workload = dict(doc.get("workload") or {})
    statements = _statements_frame(pd.DataFrame(profile) if profile else None)
    return Snapshot(
        client=str(doc["client"]),
        generated_at=doc.get("generated_at"),
        auditkit_version=doc.get("auditkit_version"),
        schema_version=int(version) if isinstance(version, int) else None,
        workload=workload,
        findings=tuple(findings),
        gaps={
            str(g.get("check")): str(g.get("needs", ""))
            for g in doc.get("gaps") or []
            if isinstance(g, Mapping)
        },
        statements=statements,
        statements_complete=_complete(workload, statements),
        endpoints=_endpoints_frame(
            pd.DataFrame(doc["endpoints"]) if doc.get("endpoints") else None
        ),
        origin=origin,
        has_statements="statements" in doc,
        has_endpoints="endpoints" in doc,
    )


def _statements_frame(df: pd.DataFrame | None) -> pd.DataFrame:
    cols = list(_STATEMENT_COLUMNS)
    if df is None or len(df) == 0 or "fingerprint_id" not in df:
        return pd.DataFrame(columns=cols)
    out = df[[c for c in cols if c in df]].copy()
    for c in cols:
        if c not in out:
            out[c] = None
    out = out.dropna(subset=["fingerprint_id"])
    out["fingerprint_id"] = out["fingerprint_id"].astype(str)
    # one row per fingerprint id (a profile merged from several databases may repeat one)
    agg = out.groupby("fingerprint_id", sort=False).agg(
        fingerprint=("fingerprint", "first"),
        calls=("calls", "sum"),
        total_ms=("total_ms", "sum"),
        share=("share", "sum"),
    )
    agg["mean_ms"] = agg["total_ms"] / agg["calls"].where(agg["calls"] > 0)
    return _floats(agg.reset_index()[cols], cols[2:])


def _endpoints_frame(df: pd.DataFrame | None) -> pd.DataFrame:
    cols = list(_ENDPOINT_COLUMNS)
    if df is None or len(df) == 0 or "endpoint" not in df:
        return pd.DataFrame(columns=cols)
    out = df[[c for c in cols if c in df]].copy()
    for c in cols:
        if c not in out:
            out[c] = None
    out = out.dropna(subset=["endpoint"])
    out["endpoint"] = out["endpoint"].astype(str)
    return _floats(out.drop_duplicates("endpoint").reset_index(drop=True)[cols], cols[1:])


def _floats(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Numbers as float64 with NaN for missing, whichever source (frame or JSON) they came from."""
    for c in columns:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df


def _complete(workload: Mapping[str, Any], statements: pd.DataFrame | None) -> bool:
    groups = workload.get("statement_groups")
    if statements is None or groups is None:
        return statements is None or len(statements) < STATEMENTS_KEPT
    return len(statements) >= int(groups)


def document_sections(a: Audit) -> dict[str, list[dict[str, Any]]]:
    """The ``statements`` and ``endpoints`` sections of findings.json: what a later audit is
    compared against (the top :data:`STATEMENTS_KEPT` statements by total time; every route)."""
    stm = _statements_frame(a.frames.get("profile"))
    stm = stm.sort_values("total_ms", ascending=False, kind="stable").head(STATEMENTS_KEPT)
    ep = _endpoints_frame(a.frames.get("endpoints"))
    ep = ep.sort_values("db_ms", ascending=False, kind="stable").head(ENDPOINTS_KEPT)
    return {"statements": _records(stm), "endpoints": _records(ep)}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for rec in df.to_dict("records"):
        rows.append({str(k): _num(v) for k, v in rec.items() if _num(v) is not None})
    return rows


def _num(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return None
        return float(f"{v:.10g}")  # ten significant digits: shares stay exact enough
    return v


# -- the comparison ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FindingChange:
    """One finding across two audits."""

    id: str
    check: str
    title: str
    change: str
    severity: str | None
    previous_severity: str | None
    #: the impact measure compared (a key of the finding's impact), its old and new values
    measure: str | None = None
    old: float | None = None
    new: float | None = None
    #: why a resolved finding may not be fixed (endpoint without traffic, check without data)
    note: str | None = None
    #: the finding (the new audit's; the old one's when resolved), findings.json shape
    finding: Mapping[str, Any] = field(default_factory=dict)

    @property
    def delta(self) -> float | None:
        if self.old is None or self.new is None:
            return None
        return self.new - self.old

    @property
    def ratio(self) -> float | None:
        if self.old is None or self.new is None or not self.old:
            return None
        return self.new / self.old

    def impact_change(self) -> dict[str, Any] | None:
        """The change in the measured impact, JSON-ready (None when nothing was measured)."""
        if self.measure is None:
            return None
        out: dict[str, Any] = {
            "measure": self.measure,
            "meaning": _MEASURES[self.measure],
            "old": _num(self.old),
            "new": _num(self.new),
        }
        if self.delta is not None:
            out["change"] = _num(self.delta)
        if self.ratio is not None:
            out["ratio"] = _num(self.ratio)
        return out

    def to_dict(self, *, full: bool = True) -> dict[str, Any]:
        """The finding with its ``change`` (``full``: the whole finding; else the essentials)."""
        base: dict[str, Any] = (
            dict(self.finding)
            if full
            else {
                "id": self.id,
                "check": self.check,
                "title": self.title,
            }
        )
        if not full and self.severity:
            base["severity"] = self.severity
        base["change"] = self.change
        if self.previous_severity is not None:
            base["previous_severity"] = self.previous_severity
        impact = self.impact_change()
        if impact is not None:
            base["impact_change"] = impact
        if self.note:
            base["change_note"] = self.note
        return base

    def sentence(self) -> str:
        """The change in words: "N+1 queries on /books/: resolved (saved 196 ms of database
        time per affected request)"."""
        what = {
            "new": "new",
            "resolved": "resolved",
            "persisting": "persisting",
            "better": "better",
            "worse": "worse",
        }[self.change]
        text = f"{self.title}: {what}"
        figure = self.figure()
        if figure:
            text += f" ({figure})"
        if self.note:
            text += f" — {self.note}"
        return text

    def figure(self) -> str:
        """The change in what the finding costs, in words ("" when nothing was measured)."""
        if self.measure is None:
            if self.previous_severity and self.severity and self.previous_severity != self.severity:
                return f"severity {self.previous_severity} → {self.severity}"
            return ""
        unit = {
            "db_ms_per_request": "of database time per affected request",
            "response_ms_per_request": "of response time per request",
            "db_ms_per_hour": "of database time per hour",
            "db_ms": "of database time in the window",
        }[self.measure]
        if self.change == "new" and self.new is not None:
            return f"costs {duration_text(self.new)} {unit}"
        if self.change == "resolved" and self.old is not None:
            return f"it cost {duration_text(self.old)} {unit}"
        if self.old is not None and self.new is not None:
            pct = f", {self.ratio - 1:+.0%}" if self.ratio is not None else ""
            return f"{duration_text(self.old)} → {duration_text(self.new)} {unit}{pct}"
        return ""


@dataclass
class Comparison:
    """The result of :func:`compare` (see the module docstring)."""

    old: Snapshot
    new: Snapshot
    findings: list[FindingChange]
    #: how statements and endpoints are normalised: per_request, per_hour or total
    basis: str
    #: what makes the two audits hard to compare, in sentences
    caveats: list[str]
    #: statements by fingerprint id (see :func:`compare_statements`)
    statements: pd.DataFrame
    #: endpoints by route (see :func:`compare_endpoints`)
    endpoints: pd.DataFrame

    @property
    def counts(self) -> dict[str, int]:
        """Findings per change, every change present (0 when none)."""
        out = dict.fromkeys(CHANGES, 0)
        for c in self.findings:
            out[c.change] += 1
        return out

    @property
    def unchanged(self) -> bool:
        """True when every finding persists unchanged."""
        return all(c.change == "persisting" for c in self.findings)

    def of(self, change: str) -> list[FindingChange]:
        """The findings with this change."""
        return [c for c in self.findings if c.change == change]

    def headline(self) -> str:
        """One sentence: "Since the audit of 2026-01-10: 3 resolved, 1 new, 2 persisting."."""
        when = (self.old.generated_at or "")[:10]
        counts = self.counts
        parts = [f"{counts[c]} {c}" for c in CHANGES if counts[c]]
        what = ", ".join(parts) if parts else "no findings in either audit"
        since = f"Since the audit of {when}" if when else "Since the previous audit"
        return f"{since}: {what}."

    def to_dict(self, *, full: bool = True) -> dict[str, Any]:
        """The comparison as one JSON-ready object: ``findings`` each carry their ``change``."""
        return {
            "comparison_version": COMPARISON_VERSION,
            "client": self.new.client,
            "previous": self.old.to_dict(),
            "current": self.new.to_dict(),
            "basis": self.basis,
            "caveats": list(self.caveats),
            "counts": self.counts,
            "findings": [c.to_dict(full=full) for c in self.findings],
            "statements": _records(self.statements),
            "endpoints": _records(self.endpoints),
        }

    def lines(self, top: int = 10) -> list[str]:
        """The comparison for a terminal."""
        out = [
            f"{self.new.client}: {self.old.generated_at or '?'} (auditkit "
            f"{self.old.auditkit_version or '?'}) → {self.new.generated_at or '?'} (auditkit "
            f"{self.new.auditkit_version or '?'})",
            self.headline(),
        ]
        out += [f"  note: {c}" for c in self.caveats]
        for change in CHANGES:
            items = self.of(change)
            if not items:
                continue
            out.append("")
            out.append(f"{change.upper()} ({len(items)})")
            shown = items if change != "persisting" else items[:top]
            out += [f"  - {c.sentence()}" for c in shown]
            if len(shown) < len(items):
                out.append(f"  … and {len(items) - len(shown)} more")
        unit = {"per_request": "per request", "per_hour": "per hour", "total": "in total"}[
            self.basis
        ]
        ep = self.endpoints
        if len(ep):
            out += ["", "ENDPOINTS (database time and statements per request)"]
            for r in ep.head(top).to_dict("records"):
                out.append(f"  {_endpoint_line(r)}")
        st = self.statements
        if len(st):
            out += ["", f"STATEMENTS (database time {unit}; mean per call)"]
            for r in st.head(top).to_dict("records"):
                out.append(f"  {_statement_line(r)}")
        return out


def _fmt_ms(v: Any) -> str:
    return "-" if _num(v) is None else duration_text(float(v))


def _endpoint_line(r: Mapping[Any, Any]) -> str:
    status = r["status"]
    return (
        f"{status:<6} {r['endpoint']}: {_fmt_ms(r.get('db_ms_per_request_old'))} → "
        f"{_fmt_ms(r.get('db_ms_per_request_new'))} per request, statements per request "
        f"{_count(r.get('statements_per_request_old'))} → "
        f"{_count(r.get('statements_per_request_new'))}"
    )


def _statement_line(r: Mapping[Any, Any]) -> str:
    fp = str(r.get("fingerprint") or "")
    fp = fp if len(fp) <= 70 else fp[:69] + "…"
    return (
        f"{r['status']:<6} {r['fingerprint_id']}: {_fmt_ms(r.get('time_old'))} → "
        f"{_fmt_ms(r.get('time_new'))}, mean {_fmt_ms(r.get('mean_ms_old'))} → "
        f"{_fmt_ms(r.get('mean_ms_new'))}  {fp}"
    )


def _count(v: Any) -> str:
    v = _num(v)
    return "-" if v is None else f"{float(v):,.1f}".removesuffix(".0")


def compare(
    old: Audit | Mapping[str, Any] | Snapshot | str | Path,
    new: Audit | Mapping[str, Any] | Snapshot | str | Path,
    *,
    min_change: float = MIN_CHANGE,
    min_requests: int | None = None,
) -> Comparison:
    """Compare two audits of one client (see the module docstring).

    ``min_change`` is the relative change of a finding's measured impact beyond which it is
    ``better`` or ``worse`` (:data:`MIN_CHANGE`), on top of :data:`NOISE_FLOOR`; a cost per
    request measured over fewer than ``min_requests`` requests is not judged (see
    :func:`compare_findings`).
    """
    a, b = snapshot(old), snapshot(new)
    basis, caveats = _basis(a, b)
    return Comparison(
        old=a,
        new=b,
        findings=compare_findings(a, b, min_change=min_change, min_requests=min_requests),
        basis=basis,
        caveats=caveats,
        statements=compare_statements(a, b, basis),
        endpoints=compare_endpoints(a, b),
    )


# -- findings ----------------------------------------------------------------------------------
#: checks whose findings are about the files given, not the application: never new or resolved
INPUT_CHECKS = frozenset({"data_quality"})


def compare_findings(
    old: Snapshot,
    new: Snapshot,
    *,
    min_change: float = MIN_CHANGE,
    min_requests: int | None = None,
) -> list[FindingChange]:
    """Every finding of either audit with its change: new and worse first, then resolved,
    better, persisting; within a change, the new audit's order (severity, then time saved).

    A cost per request measured over fewer than ``min_requests`` requests on either side
    (default: the severity rule's ``min_requests``, :mod:`auditkit.config`) is too noisy to call
    better or worse: the finding persists, with a note saying so."""
    if min_requests is None:
        from auditkit.config import AuditConfig

        min_requests = int(AuditConfig().thresholds("severity")["min_requests"])
    before = {str(f["id"]): f for f in old.findings if f.get("check") not in INPUT_CHECKS}
    after = {str(f["id"]): f for f in new.findings if f.get("check") not in INPUT_CHECKS}
    out: list[FindingChange] = []
    for fid, f in after.items():
        prev = before.get(fid)
        if prev is None:
            measure, value = _single_measure(f.get("impact"))
            out.append(_change(f, "new", None, measure, None, value))
            continue
        measure, o, n = _measure(prev.get("impact"), f.get("impact"))
        change, note = _judge(measure, o, n, prev, f, min_change, min_requests)
        out.append(_change(f, change, prev, measure, o, n, note=note))
    for fid, f in before.items():
        if fid in after:
            continue
        measure, value = _single_measure(f.get("impact"))
        out.append(_change(f, "resolved", f, measure, value, None, note=_not_observed(f, new)))
    order = {c: i for i, c in enumerate(CHANGES)}
    return sorted(out, key=lambda c: order[c.change])  # stable: keeps each audit's ranking


def _change(
    f: Mapping[str, Any],
    change: str,
    prev: Mapping[str, Any] | None,
    measure: str | None,
    old: float | None,
    new: float | None,
    *,
    note: str | None = None,
) -> FindingChange:
    return FindingChange(
        id=str(f["id"]),
        check=str(f.get("check", "")),
        title=str(f.get("title", "")),
        change=change,
        severity=None if change == "resolved" else f.get("severity"),
        previous_severity=prev.get("severity") if prev is not None else None,
        measure=measure,
        old=old,
        new=new,
        note=note,
        finding=f,
    )


def _value(impact: Mapping[str, Any] | None, key: str) -> float | None:
    if not impact:
        return None
    v = impact.get(key)
    if v is None and key == "db_ms_per_hour" and impact.get("db_ms") is not None:
        w = impact.get("window_s")
        v = float(impact["db_ms"]) / (float(w) / 3600.0) if w else None
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _measure(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> tuple[str | None, float | None, float | None]:
    """The first measure both impacts hold (per request, then per hour, then totals only when
    neither knows its window)."""
    for key in _MEASURES:
        if key == "db_ms" and (_value(old, "window_s") or _value(new, "window_s")):
            continue
        o, n = _value(old, key), _value(new, key)
        if o is not None and n is not None:
            return key, o, n
    # measured in one audit only: show what is known, on the first measure either holds
    for key in _MEASURES:
        o, n = _value(old, key), _value(new, key)
        if o is not None or n is not None:
            return key, o, n
    return None, None, None


def _single_measure(impact: Mapping[str, Any] | None) -> tuple[str | None, float | None]:
    for key in _MEASURES:
        v = _value(impact, key)
        if v is not None:
            return key, v
    return None, None


def _judge(
    measure: str | None,
    old: float | None,
    new: float | None,
    prev: Mapping[str, Any],
    cur: Mapping[str, Any],
    min_change: float,
    min_requests: int,
) -> tuple[str, str | None]:
    """The change of a finding in both audits, and why it is not judged when it is not."""
    if measure is not None and old is not None and new is not None:
        floor = max(NOISE_FLOOR.get(measure, 0.0), min_change * abs(old))
        if abs(new - old) <= floor:
            return "persisting", None
        if measure.endswith("_per_request"):
            counts = [_value(prev.get("impact"), "requests"), _value(cur.get("impact"), "requests")]
            if any(c is not None and c < min_requests for c in counts):
                seen = " and ".join(f"{c:,.0f}" for c in counts if c is not None)
                return "persisting", (
                    f"too few requests ({seen}; {min_requests} needed) to tell a change of cost "
                    "from noise"
                )
        return ("worse" if new > old else "better"), None
    # nothing measured on both sides (an unused index, a capacity limit): severity decides
    try:
        before = Severity.parse(prev.get("severity", "info"))
        after = Severity.parse(cur.get("severity", "info"))
    except Exception:  # an unknown severity word from another version: no verdict
        return "persisting", None
    if after > before:
        return "worse", None
    if after < before:
        return "better", None
    return "persisting", None


def _not_observed(f: Mapping[str, Any], new: Snapshot) -> str | None:
    """Why a finding absent from the new audit may not be fixed, or None."""
    check = str(f.get("check", ""))
    if check in new.gaps:
        needs = new.gaps[check]
        return (
            f"not measured in the new audit ({CHECK_NAMES.get(check, check)} needs {needs}): "
            "not observed rather than fixed"
        )
    endpoint = (f.get("subject") or {}).get("endpoint")
    if endpoint and len(new.endpoints) and endpoint not in set(new.endpoints["endpoint"]):
        return f"{endpoint} received no request in the new audit: not observed rather than fixed"
    return None


# -- workloads, statements, endpoints --------------------------------------------------------------
def _window(s: Snapshot) -> float | None:
    w = s.workload.get("window_s")
    return float(w) if isinstance(w, int | float) and w > 0 else None


def _requests(s: Snapshot) -> float | None:
    r = s.workload.get("requests")
    return float(r) if isinstance(r, int | float) and r > 0 else None


def _basis(old: Snapshot, new: Snapshot) -> tuple[str, list[str]]:
    caveats: list[str] = []
    wo, wn = _window(old), _window(new)
    ro, rn = _requests(old), _requests(new)
    if ro and rn:
        basis = "per_request"
    elif wo and wn:
        basis = "per_hour"
    else:
        basis = "total"
    if wo and wn and abs(wn - wo) > WINDOW_TOLERANCE * max(wo, wn):
        caveats.append(
            f"The observed windows differ ({duration_text(wo * 1000)} before, "
            f"{duration_text(wn * 1000)} now): times are compared per request and per hour, "
            "never as totals."
        )
    elif not (wo and wn):
        caveats.append(
            "The observed window of "
            + ("neither audit" if not (wo or wn) else "one audit")
            + " is known: "
            + (
                "statement times are compared per request."
                if basis == "per_request"
                else "totals are compared as they are, and may differ only because the windows do."
            )
        )
    if ro and rn and wo and wn:
        rate_o, rate_n = ro / wo * 3600, rn / wn * 3600
        if abs(rate_n - rate_o) > TRAFFIC_TOLERANCE * max(rate_o, rate_n):
            caveats.append(
                f"Traffic differs ({rate_o:,.0f} requests per hour before, {rate_n:,.0f} now): "
                "compare times per request; per-hour figures follow the traffic."
            )
    so, sn = old.workload.get("source"), new.workload.get("source")
    if so and sn and so != sn:
        caveats.append(
            f"Times come from different sources ({old.workload.get('label') or so} before, "
            f"{new.workload.get('label') or sn} now): small changes may be the sources', not the "
            "application's."
        )
    if (
        old.auditkit_version
        and new.auditkit_version
        and (old.auditkit_version != new.auditkit_version)
    ):
        caveats.append(
            f"The audits were made by different auditkit versions ({old.auditkit_version} and "
            f"{new.auditkit_version}); findings are matched by their ids, which do not depend on "
            "wording, but a check that changed between the versions may show as resolved and new."
        )
    if old.client != new.client:
        caveats.append(f"The audits name different clients ({old.client!r} and {new.client!r}).")
    for what, has in (
        ("statement", old.has_statements and new.has_statements),
        ("endpoint", old.has_endpoints and new.has_endpoints),
    ):
        if not has:
            which = (
                "the previous audit"
                if not (old.has_statements if what == "statement" else old.has_endpoints)
                else "the new audit"
            )
            caveats.append(
                f"The findings.json of {which} holds no {what} figures (written before "
                f"findings.json version 3): {what}s are not compared, findings are."
            )
    if (
        old.has_statements
        and new.has_statements
        and not (old.statements_complete and new.statements_complete)
    ):
        caveats.append(
            "Only the top statements of "
            + ("the old audit" if not old.statements_complete else "the new audit")
            + (
                " (and the other)"
                if not (old.statements_complete or new.statements_complete)
                else ""
            )
            + " are kept: a statement missing from one side may be below its top list, not gone."
        )
    if _input_notes(old) != _input_notes(new):
        caveats.append(
            "The two audits read different sets of files (their data-quality notes differ): "
            "those notes describe the inputs, not the application, and are not compared."
        )
    return basis, caveats


def _input_notes(snap: Snapshot) -> set[str]:
    return {str(f.get("title", "")) for f in snap.findings if f.get("check") in INPUT_CHECKS}


def _per(s: Snapshot, basis: str) -> float | None:
    """What a total is divided by to be compared: requests, hours, or 1 (totals)."""
    if basis == "per_request":
        return _requests(s)
    if basis == "per_hour":
        w = _window(s)
        return w / 3600.0 if w else None
    return 1.0


def compare_statements(old: Snapshot, new: Snapshot, basis: str) -> pd.DataFrame:
    """Statements of either audit by fingerprint id: calls, total time, mean time and share on
    each side, with ``calls_*`` and ``time_*`` normalised by ``basis`` (per request of the whole
    workload, per hour, or totals) and ``status``: ``both``, ``new``, ``gone`` (``entered`` /
    ``left`` when the other side lists only its top statements). Largest change first."""
    a, b = old.statements, new.statements
    if not (old.has_statements and new.has_statements):  # one side cannot say: no comparison
        a = b = a.iloc[0:0]
    cols = [
        "fingerprint_id",
        "fingerprint",
        "status",
        "calls_old",
        "calls_new",
        "time_old",
        "time_new",
        "time_change",
        "total_ms_old",
        "total_ms_new",
        "mean_ms_old",
        "mean_ms_new",
        "share_old",
        "share_new",
    ]
    if len(a) == 0 and len(b) == 0:
        return pd.DataFrame(columns=cols)
    m = a.merge(b, on="fingerprint_id", how="outer", suffixes=("_old", "_new"), indicator=True)
    m["fingerprint"] = m["fingerprint_new"].where(
        m["fingerprint_new"].notna(), m["fingerprint_old"]
    )
    m["status"] = (
        m["_merge"]
        .map(
            {
                "both": "both",
                "right_only": "new" if old.statements_complete else "entered",
                "left_only": "gone" if new.statements_complete else "left",
            }
        )
        .astype(str)
    )
    po, pn = _per(old, basis), _per(new, basis)
    for side, per in (("old", po), ("new", pn)):
        total = pd.to_numeric(m[f"total_ms_{side}"], errors="coerce")
        calls = pd.to_numeric(m[f"calls_{side}"], errors="coerce")
        present = m["status"].isin(["both", "gone" if side == "old" else "new"])
        complete = old.statements_complete if side == "old" else new.statements_complete
        # a statement absent from a complete profile ran 0 times there
        fill = present | complete
        m[f"time_{side}"] = (total.fillna(0.0) / per).where(fill) if per else None
        m[f"calls_{side}"] = (calls.fillna(0.0) / per).where(fill) if per else None
        m[f"total_ms_{side}"] = total
    m["time_change"] = pd.to_numeric(m["time_new"], errors="coerce") - pd.to_numeric(
        m["time_old"], errors="coerce"
    )
    size = pd.to_numeric(m["time_new"], errors="coerce").fillna(
        pd.to_numeric(m["time_old"], errors="coerce")
    )
    m = m.assign(_order=m["time_change"].abs().fillna(0.0), _size=size.fillna(0.0))
    m = m.sort_values(["_order", "_size"], ascending=False, kind="stable")
    return m[cols].reset_index(drop=True)


def compare_endpoints(old: Snapshot, new: Snapshot) -> pd.DataFrame:
    """Endpoints of either audit by route: requests (and per hour when the windows are known),
    database time and statements per request, the 95th percentile of response time, and
    ``status`` (``both``, ``new``, ``gone``). Largest change in database time per request first."""
    a, b = old.endpoints, new.endpoints
    if not (old.has_endpoints and new.has_endpoints):  # one side cannot say: no comparison
        a = b = a.iloc[0:0]
    measures = [c for c in _ENDPOINT_COLUMNS if c != "endpoint"]
    cols = ["endpoint", "status"]
    for c in measures:
        cols += [f"{c}_old", f"{c}_new"]
    cols += ["requests_per_hour_old", "requests_per_hour_new", "db_ms_per_request_change"]
    if len(a) == 0 and len(b) == 0:
        return pd.DataFrame(columns=cols)
    m = a.merge(b, on="endpoint", how="outer", suffixes=("_old", "_new"), indicator=True)
    m["status"] = m["_merge"].map({"both": "both", "right_only": "new", "left_only": "gone"})
    m["status"] = m["status"].astype(str)
    for side, s in (("old", old), ("new", new)):
        w = _window(s)
        req = pd.to_numeric(m[f"requests_{side}"], errors="coerce")
        m[f"requests_per_hour_{side}"] = req / (w / 3600.0) if w else None
    m["db_ms_per_request_change"] = pd.to_numeric(
        m["db_ms_per_request_new"], errors="coerce"
    ) - pd.to_numeric(m["db_ms_per_request_old"], errors="coerce")
    per_request = pd.to_numeric(m["db_ms_per_request_new"], errors="coerce").fillna(
        pd.to_numeric(m["db_ms_per_request_old"], errors="coerce")
    )
    order = m["db_ms_per_request_change"].abs().fillna(per_request)
    size = pd.to_numeric(m["db_ms_new"], errors="coerce").fillna(
        pd.to_numeric(m["db_ms_old"], errors="coerce")
    )
    m = m.assign(_order=order.fillna(0.0), _size=size.fillna(0.0))
    m = m.sort_values(["_order", "_size"], ascending=False, kind="stable")
    return m[cols].reset_index(drop=True)
