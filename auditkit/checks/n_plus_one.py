"""N+1 and duplicate queries: statements repeated within one request.

Within one request (or trace):

* **N+1** — one read repeated at least ``min_repeats`` times: a loop issuing one query per
  row. Interpreted the Django way by :func:`auditkit.sql.django_orm.orm_fix`: a forward foreign
  key (``select_related``) — whether the rows point at different parents or all at the same one
  —, a reverse foreign key or many-to-many relation (``prefetch_related``), a count, existence
  test or aggregate per row (``annotate``), a deferred field (``only``). A repeated read that
  walks no relation counts only when its parameters differ between repeats. The root cause is
  the list queryset of the page, so every relation one endpoint's list walks row by row is
  **one** finding, fixed by **one** queryset change naming them all:
  ``Post.objects.select_related("author").prefetch_related("tags")``.
* **duplicate** — the same read with the same parameters at least ``duplicate_min_repeats``
  times in a request and not part of an N+1: the same data fetched again. One finding per
  endpoint, naming the models read twice (and the code that reads them when the capture app
  recorded the stack).

Impact (the shared unit): the time of the repeats beyond what the fix leaves, summed over the
window, per affected request and as a share of all database time. Thresholds: the
``n_plus_one`` family of :mod:`auditkit.config` (presets ``default``, ``sentry``, ``scout``,
``django_zeal``, ``debug_toolbar``). Requests reconstructed from process, thread and time gaps
(no request ids in the source) make the evidence ``inferred``, and the finding says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from auditkit.analysis.code import CodeMap, joins_of, tables_of
from auditkit.analysis.requests import endpoint_table, request_statements
from auditkit.analysis.workload import Workload, choose_workload
from auditkit.checks.severity import of_impact
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Impact,
    Recommendation,
    Subject,
    plural,
)
from auditkit.schemas import QUERY_EVENTS, conform
from auditkit.sql.django_orm import OrmFix, orm_fix, statement_shape

__all__ = [
    "duplicate_queries",
    "duplicates_per_request",
    "endpoint_db_time",
    "n_plus_one",
    "n_plus_ones",
]

_READ = r"^\(?\s*(select|with)\b"
#: relations whose repeats are a loop even with the same parameters (one parent for every row)
_WALKS = {"forward_fk", "reverse_fk", "many_to_many", "count", "exists", "aggregate"}
_WHAT = {
    "forward_fk": "a foreign key followed per row",
    "reverse_fk": "a reverse relation read per row",
    "many_to_many": "a many-to-many relation read per row",
    "count": "a count computed per row",
    "exists": "an existence test per row",
    "aggregate": "an aggregate computed per row",
    "deferred_field": "a deferred field loaded per row",
    "unknown": "a query repeated per row",
}


def _inputs(
    events: pd.DataFrame, config: AuditConfig | None, models: pd.DataFrame | None
) -> tuple[pd.DataFrame, CodeMap, Workload]:
    """The statements by request, the code map and the workload of raw query events."""
    events = conform(events, QUERY_EVENTS)
    workload = choose_workload(events)
    fps = events["fingerprint"].dropna().astype(str).tolist() if "fingerprint" in events else []
    tables, seen = tables_of(fps)
    code = CodeMap.build(
        models if models is not None else pd.DataFrame({"table": [], "inferred": []}),
        tables=tables,
        joins=joins_of(fps),
        seen_columns=seen,
    )
    statements = request_statements(workload.events if len(workload.events) else events, config)
    return statements, code, workload


def n_plus_one(
    events: pd.DataFrame,
    config: AuditConfig | None = None,
    models: pd.DataFrame | None = None,
) -> list[Finding]:
    """N+1 findings of raw query events (``models``: a ``schema_columns`` frame, if any)."""
    statements, code, workload = _inputs(events, config, models)
    return n_plus_ones(statements, code, workload, config)


def duplicate_queries(
    events: pd.DataFrame, config: AuditConfig | None = None, models: pd.DataFrame | None = None
) -> list[Finding]:
    """Duplicate-query findings of raw query events."""
    statements, code, workload = _inputs(events, config, models)
    return duplicates_per_request(statements, code, workload, config)


def endpoint_db_time(events: pd.DataFrame, config: AuditConfig | None = None) -> pd.DataFrame:
    """Per endpoint: requests, statements and database time per request (raw query events)."""
    return endpoint_table(request_statements(events, config))


@dataclass
class _Walk:
    """One repeated fingerprint on one endpoint, interpreted."""

    fid: str
    fingerprint: str
    fix: OrmFix
    per_request: pd.DataFrame  # request_key, n, ms


@dataclass
class _Group:
    endpoint: str
    walks: list[_Walk] = field(default_factory=list)


def _window(workload: Workload, statements: pd.DataFrame) -> float | None:
    if workload.window_s:
        return workload.window_s
    ts = statements["ts"].dropna() if "ts" in statements else pd.Series(dtype=object)
    if len(ts) < 2:
        return None
    span = (ts.max() - ts.min()).total_seconds()
    return span if span > 0 else None


def _repeats(statements: pd.DataFrame) -> pd.DataFrame:
    df = statements[statements["fingerprint"].astype("string").str.match(_READ, na=False)]
    return (
        df.groupby(["request_key", "fingerprint_id"], sort=False)
        .agg(
            n=("variant", "size"),
            variants=("variant", "nunique"),
            ms=("_ms", "sum"),
            endpoint=("endpoint", "first"),
            fingerprint=("fingerprint", "first"),
        )
        .reset_index()
    )


def _context(statements: pd.DataFrame, request: str, fid: str) -> tuple[list[str], list[str]]:
    """The request's distinct fingerprints before the first ``fid`` (most recent first), and all."""
    req = statements[statements["request_key"] == request]
    fps = req["fingerprint"].astype(str).tolist()
    first = int((req["fingerprint_id"] == fid).to_numpy().argmax())
    return list(dict.fromkeys(fps[:first][::-1])), list(dict.fromkeys(fps))


def _walks(
    statements: pd.DataFrame, code: CodeMap, t: dict[str, Any]
) -> tuple[list[_Group], set[tuple[str, str]]]:
    """N+1 walks grouped by (endpoint, list model); and the (endpoint, fid) pairs they hold.

    Where requests were reconstructed from time gaps, a batch job's loop looks like one long
    request: only repeats that walk a relation the ORM can load with the list count then.
    """
    inferred = bool(statements.attrs.get("inferred"))
    per = _repeats(statements)
    per = per[(per["n"] >= t["min_repeats"]) & (per["ms"] >= t["min_total_ms"])]
    groups: dict[tuple[str, str], _Group] = {}
    taken: set[tuple[str, str]] = set()
    for (endpoint, fid), rows in per.groupby(["endpoint", "fingerprint_id"], sort=False):
        fp = str(rows["fingerprint"].iloc[0])
        sample = str(rows.sort_values("n", ascending=False)["request_key"].iloc[0])
        earlier, context = _context(statements, sample, str(fid))
        fix = orm_fix(fp, earlier, code, context=context)
        loop = (
            fix.relation in _WALKS
            or (not inferred and fix.relation != "unknown" and bool((rows["variants"] >= 2).any()))
            or (not inferred and bool((rows["variants"] >= 2).any()))
        )
        if not loop:
            continue
        walk = _Walk(str(fid), fp, fix, rows[["request_key", "n", "ms"]])
        key = (
            str(endpoint),
            fix.model.table if fix.model is not None and fix.method else f"fid:{fid}",
        )
        groups.setdefault(key, _Group(str(endpoint))).walks.append(walk)
        taken.add((str(endpoint), str(fid)))
    return [part for g in groups.values() for part in _by_requests(g)], taken


def _by_requests(group: _Group) -> list[_Group]:
    """Split a group into walks that happen in the same requests: one list queryset is walked
    in the requests that show it (this matters where the endpoint is unknown)."""
    parts: list[tuple[set[str], _Group]] = []
    for w in group.walks:
        reqs = set(w.per_request["request_key"].astype(str))
        host = next((p for p in parts if p[0] & reqs), None)
        if host is None:
            parts.append((reqs, _Group(group.endpoint, [w])))
        else:
            host[0].update(reqs)
            host[1].walks.append(w)
    return [g for _, g in parts]


def _queryset(walks: Sequence[_Walk]) -> tuple[str, list[str], int]:
    """One queryset change for every walk of a list: code, imports, queries it leaves."""
    model = walks[0].fix.model
    assert model is not None
    calls: dict[str, list[str]] = {}
    imports: list[str] = []
    for w in walks:
        if w.fix.method and w.fix.argument:
            args = calls.setdefault(w.fix.method, [])
            if w.fix.method == "only":
                for a in w.fix.argument.split(", "):
                    if a not in args:
                        args.append(a)
            elif w.fix.argument not in args:
                args.append(w.fix.argument)
        imports += [i for i in w.fix.imports if i not in imports]
    order = ("select_related", "prefetch_related", "annotate", "only")
    chain = "".join(f".{m}({', '.join(calls[m])})" for m in order if m in calls)
    remaining = 1 + len(calls.get("prefetch_related", []))
    return f"{model.manager}{chain}", imports, remaining


def n_plus_ones(
    statements: pd.DataFrame,
    code: CodeMap,
    workload: Workload,
    config: AuditConfig | None = None,
) -> list[Finding]:
    """N+1 findings: one per endpoint and list queryset (see the module docstring)."""
    cfg = config or AuditConfig()
    t = cfg.thresholds("n_plus_one")
    if len(statements) == 0:
        return []
    inferred_requests = bool(statements.attrs.get("inferred"))
    groups, _ = _walks(statements, code, t)
    window = _window(workload, statements)
    total_db = workload.db_ms or float(statements["_ms"].sum())
    requests_per_endpoint = statements.groupby("endpoint")["request_key"].nunique()
    findings = []
    for g in groups:
        all_rows = pd.concat([w.per_request for w in g.walks])
        per_req = all_rows.groupby("request_key").agg(n=("n", "sum"), ms=("ms", "sum"))
        wasted_rows = pd.concat(
            [
                w.per_request.assign(
                    w=w.per_request["ms"] * (w.per_request["n"] - 1) / w.per_request["n"]
                )
                for w in g.walks
            ]
        )
        n_req = int(per_req.shape[0])
        saved = float(wasted_rows["w"].sum())
        queries = float(per_req["n"].mean())
        fixable = g.walks[0].fix.method is not None and g.walks[0].fix.model is not None
        if fixable:
            code_line, imports, remaining = _queryset(g.walks)
        else:
            code_line, imports, remaining = "", [], 1
        impact = Impact.of(
            saved,
            total_db,
            window_s=window,
            requests=n_req,
            source=workload.label,
            note=f"the repeated statements' time beyond one per request, over {plural(n_req, 'request')}",
        )
        inferred_names = any(w.fix.inferred for w in g.walks)
        model = g.walks[0].fix.model
        relations = [w.fix.relation for w in g.walks]
        names = [
            f"{model.name}.{w.fix.field}" if model is not None and w.fix.field else w.fix.relation
            for w in g.walks
        ]
        what = _WHAT[relations[0]] if len(set(relations)) == 1 else "relations read per row"
        endpoint = g.endpoint
        req_total = int(requests_per_endpoint.get(endpoint, n_req))
        repeated_table = _table(g.walks[0].fingerprint)
        title = (
            f"N+1 on {endpoint}: {', '.join(names)} ({what})"
            if fixable
            else f"N+1 on {endpoint}: a query on {repeated_table or 'a table'} repeated per row"
        )
        note = []
        if inferred_requests:
            note.append(
                "requests were reconstructed from process/thread and time gaps (no request ids in the source)"
            )
        if inferred_names:
            note.append(
                "model and field names follow Django's naming conventions (no model dump was given)"
            )
        explanation = " ".join(dict.fromkeys(w.fix.explanation for w in g.walks))
        summary = (
            f"{endpoint} runs {queries:.0f} queries per request in a loop "
            f"({n_req} of {req_total} requests): {explanation}"
        )
        if fixable:
            rec = Recommendation(
                summary=(
                    f"Load the relations with the {model.name if model else ''} list that {endpoint} "
                    f"shows, in the view or the function that builds that queryset: "
                    f"{queries:.0f} queries per request become {remaining}."
                    + (
                        " Names follow Django's conventions; check them against the model."
                        if inferred_names
                        else ""
                    )
                ),
                django="\n".join([*imports, code_line]) if imports else code_line,
            )
        else:
            rec = Recommendation(summary=explanation)
        first = g.walks[0]
        first_request = str(
            first.per_request.sort_values("n", ascending=False)["request_key"].iloc[0]
        )
        src = statements[
            (statements["request_key"] == first_request)
            & (statements["fingerprint_id"] == first.fid)
        ].iloc[0]
        items: list[dict[str, Any]] = [
            {"request_id": str(k), "executions": int(v)}
            for k, v in per_req["n"].sort_values(ascending=False).head(5).items()
        ]
        items += [{"fingerprint_id": w.fid, "fingerprint": w.fingerprint[:300]} for w in g.walks]
        items.append(
            {
                "source_file": _str(src.get("source_file")),
                "source_line": _int(src.get("source_line")),
            }
        )
        action = None
        if fixable and model is not None:
            loaded = ", ".join(str(w.fix.field) for w in g.walks if w.fix.field)
            action = (
                f"Load {loaded} together with the {model.name} list on {endpoint} "
                f"({queries:.0f} queries become {remaining} per page): {impact.phrase()}."
            )
        findings.append(
            Finding(
                check="n_plus_one",
                severity=of_impact(impact, cfg),
                title=title,
                summary=summary,
                subject=Subject(
                    endpoint=endpoint,
                    table=model.table if (fixable and model is not None) else repeated_table,
                    fingerprint_id=first.fid if len(g.walks) == 1 else None,
                    fingerprint=first.fingerprint if len(g.walks) == 1 else None,
                ),
                metrics={
                    "requests_affected": n_req,
                    "requests_total": req_total,
                    "queries_per_request": round(queries, 2),
                    "wasted_queries_per_request": round(
                        float((per_req["n"] - len(g.walks)).mean()), 2
                    ),
                    "total_saved_ms": round(saved, 3),
                    "relation": ", ".join(dict.fromkeys(relations)),
                },
                recommendation=rec,
                evidence=Evidence(
                    strength=EvidenceStrength.INFERRED
                    if (inferred_requests or inferred_names)
                    else EvidenceStrength.PATTERN,
                    items=tuple(items),
                    note="; ".join(note) or None,
                ),
                impact=impact,
                chapter="queries",
                statements=tuple(w.fid for w in g.walks),
                action=action,
            )
        )
    return sorted(findings, key=lambda f: -(f.impact.weight if f.impact else 0.0))


def duplicates_per_request(
    statements: pd.DataFrame,
    code: CodeMap,
    workload: Workload,
    config: AuditConfig | None = None,
) -> list[Finding]:
    """Reads repeated with identical parameters within one request and not part of an N+1:
    one finding per endpoint, naming the models read again.

    Transaction control, savepoints, DDL and writes are left out (they repeat by nature or are
    another question).
    """
    cfg = config or AuditConfig()
    t = cfg.thresholds("n_plus_one")
    if len(statements) == 0 or statements.attrs.get("inferred"):
        # without request ids a batch job's loop cannot be told from one request
        return []
    inferred = False
    _, taken = _walks(statements, code, t)
    df = statements[statements["fingerprint"].astype("string").str.match(_READ, na=False)]
    keep = [
        (str(e), str(f)) not in taken
        for e, f in zip(df["endpoint"].tolist(), df["fingerprint_id"].tolist(), strict=True)
    ]
    df = df[keep]
    per = (
        df.groupby(["request_key", "fingerprint_id", "variant"], sort=False)
        .agg(
            n=("variant", "size"),
            ms=("_ms", "sum"),
            endpoint=("endpoint", "first"),
            fingerprint=("fingerprint", "first"),
        )
        .reset_index()
    )
    hits = per[per["n"] >= t["duplicate_min_repeats"]].copy()
    if len(hits) == 0:
        return []
    hits["wasted"] = hits["n"] - 1
    hits["wasted_ms"] = hits["ms"] * (hits["n"] - 1) / hits["n"]
    window = _window(workload, statements)
    total_db = workload.db_ms or float(statements["_ms"].sum())
    endpoint_requests = statements.groupby("endpoint")["request_key"].nunique()
    has_stack = "stack" in statements and statements["stack"].notna().any()
    out = []
    for endpoint, group in hits.groupby("endpoint", sort=False):
        n_req = int(group["request_key"].nunique())
        per_req = group.groupby("request_key")["wasted"].sum()
        saved = float(group["wasted_ms"].sum())
        top = (
            group.groupby(["fingerprint_id", "fingerprint"])[["wasted", "wasted_ms"]]
            .sum()
            .sort_values("wasted", ascending=False)
            .head(5)
            .reset_index()
        )
        models = list(
            dict.fromkeys(
                code.model(shape.table).name
                for shape in (statement_shape(str(fp)) for fp in top["fingerprint"])
                if shape is not None and shape.table
            )
        )
        impact = Impact.of(
            saved,
            total_db,
            window_s=window,
            requests=n_req,
            source=workload.label,
            note="the time of the repeated reads beyond the first",
        )
        where = ""
        if has_stack:
            sites = (
                statements[
                    (statements["endpoint"] == endpoint)
                    & statements["fingerprint_id"].isin(top["fingerprint_id"])
                ]["stack"]
                .dropna()
                .astype(str)
                .map(lambda s: s.strip().splitlines()[-1] if s.strip() else "")
            )
            sites = [s for s in dict.fromkeys(sites) if s][:3]
            if sites:
                where = f" The reads come from {', '.join(sites)}."
        what = ", ".join(models) if models else "the same rows"
        out.append(
            Finding(
                check="duplicate_query",
                severity=of_impact(impact, cfg),
                title=f"Duplicate queries on {endpoint}: {what} read again with the same arguments",
                summary=(
                    f"{plural(len(top), 'statement')} run again with the same parameters in {n_req} of "
                    f"{plural(int(endpoint_requests.get(endpoint, n_req)), 'request')} of {endpoint}, "
                    f"{per_req.mean():.1f} repeats per request: the first result could be reused."
                    + where
                ),
                subject=Subject(
                    endpoint=str(endpoint),
                    fingerprint=str(top["fingerprint"].iloc[0]),
                    fingerprint_id=str(top["fingerprint_id"].iloc[0]),
                    table=_table(str(top["fingerprint"].iloc[0])),
                ),
                metrics={
                    "requests_affected": n_req,
                    "duplicates_per_request": round(float(per_req.mean()), 2),
                    "statements_duplicated": int(group["fingerprint_id"].nunique()),
                    "total_saved_ms": round(saved, 3),
                },
                recommendation=Recommendation(
                    summary=(
                        f"Read {what} once per request on {endpoint} and reuse it: keep the first "
                        "result in a variable, or load it in a functools.cached_property of the "
                        "object that needs it, instead of querying again." + where
                    ),
                ),
                evidence=Evidence(
                    strength=EvidenceStrength.INFERRED if inferred else EvidenceStrength.PATTERN,
                    items=tuple(
                        {
                            "fingerprint_id": str(r.fingerprint_id),
                            "fingerprint": str(r.fingerprint)[:300],
                            "repeats": int(r.wasted),
                        }
                        for r in top.itertuples()
                    ),
                    note="requests were reconstructed from process/thread and time gaps"
                    if inferred
                    else None,
                ),
                impact=impact,
                chapter="queries",
                statements=tuple(str(f) for f in top["fingerprint_id"]),
                action=f"Reuse {what} instead of reading it again on {endpoint}: {impact.phrase()}.",
            )
        )
    return out


def _table(fp: str) -> str | None:
    shape = statement_shape(fp)
    return shape.table if shape else None


def _str(v: Any) -> str | None:
    return None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)


def _int(v: Any) -> int | None:
    try:
        return None if v is None or pd.isna(v) else int(v)
    except (TypeError, ValueError):
        return None
