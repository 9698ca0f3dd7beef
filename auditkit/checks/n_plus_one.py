"""N+1 and duplicate queries, and where database time goes per endpoint.

Within one request (or trace):

* **N+1** — one fingerprint executed at least ``min_repeats`` times with *different* parameters
  (literal text or bound parameters differ): a loop issuing one query per row. Interpreted the
  Django way by :func:`auditkit.sql.django_orm.orm_fix` into the exact ``select_related`` /
  ``prefetch_related`` / ``only`` change.
* **duplicate** — the same statement with the same parameters at least
  ``duplicate_min_repeats`` times: the same data fetched again.

Thresholds come from the ``n_plus_one`` family of :mod:`auditkit.config` (presets: ``default``,
``sentry``, ``scout``, ``django_zeal``, ``debug_toolbar``). Statements without a request or
trace id are grouped into requests by :func:`auditkit.requests.infer_requests` (pid/thread and
time gaps) and the findings say so (evidence strength ``inferred``).

Impact per (endpoint, fingerprint): requests affected, queries per request, wasted queries and
milliseconds per request (the repeats beyond the first), requests per second over the observed
window, and the total time the fix saves. Findings are ranked by that saving.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from auditkit.config import AuditConfig
from auditkit.findings import Evidence, EvidenceStrength, Finding, Recommendation, Severity, Subject
from auditkit.sql.django_orm import orm_fix

__all__ = [
    "duplicate_queries",
    "endpoint_db_time",
    "n_plus_one",
    "requests_of",
    "statement_endpoints",
]

_NO_ENDPOINT = "(unknown endpoint)"


def requests_of(
    events: pd.DataFrame, config: AuditConfig | None = None
) -> tuple[pd.DataFrame, bool]:
    """Events with a ``request_key`` column (request id, else trace id, else inferred).

    Returns the frame and whether the grouping was inferred by heuristic.
    """
    cfg = config or AuditConfig()
    df = events.copy()
    key = (
        df["request_id"].astype("string")
        if "request_id" in df
        else pd.Series(pd.NA, index=df.index, dtype="string")
    )
    if "trace_id" in df:
        key = key.fillna(df["trace_id"].astype("string"))
    inferred = False
    if key.isna().all() and len(df):
        from auditkit.requests import attach_requests, infer_requests

        reqs = infer_requests(df, gap_ms=cfg.thresholds("requests")["gap_ms"])
        df = attach_requests(df, reqs)
        key = df["request_id"].astype("string")
        inferred = True
    df["request_key"] = key
    df["endpoint"] = (
        df["endpoint"].astype("string")
        if "endpoint" in df
        else pd.Series(pd.NA, index=df.index, dtype="string")
    ).fillna(_NO_ENDPOINT)
    order = [c for c in ("request_key", "ts", "source_line") if c in df]
    df = df[df["request_key"].notna()].sort_values(order, kind="stable").reset_index(drop=True)
    df["variant"] = (
        df["sql"].astype("string").fillna("")
        + "\x00"
        + (df["params"].astype("string").fillna("") if "params" in df else "")
    )
    return df, inferred


def _window_s(df: pd.DataFrame) -> float:
    if "ts" not in df or df["ts"].isna().all():
        return math.nan
    span = (df["ts"].max() - df["ts"].min()).total_seconds()
    return span if span > 0 else math.nan


def _severity(wasted_ms: float, repeats: float, t: dict[str, Any]) -> Severity:
    if wasted_ms >= t["high_wasted_ms"] or repeats >= t["high_repeats"]:
        return Severity.HIGH
    if wasted_ms >= t["medium_wasted_ms"] or repeats >= t["medium_repeats"]:
        return Severity.MEDIUM
    return Severity.LOW


def n_plus_one(
    events: pd.DataFrame,
    config: AuditConfig | None = None,
    models: pd.DataFrame | None = None,
) -> list[Finding]:
    """N+1 findings, one per (endpoint, repeated fingerprint), with the ORM fix and savings."""
    cfg = config or AuditConfig()
    t = cfg.thresholds("n_plus_one")
    df, inferred = requests_of(events, cfg)
    if len(df) == 0:
        return []
    dur = pd.to_numeric(df["duration_ms"], errors="coerce").fillna(0.0)
    df = df.assign(_ms=dur)
    per = (
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
    # reads only: a loop of INSERTs is a bulk_create question, not a relation walked row by row
    reads = per["fingerprint"].str.match(r"^\(?\s*(select|with)\b", na=False)
    hits = per[
        reads
        & (per["n"] >= t["min_repeats"])
        & (per["variants"] >= 2)
        & (per["ms"] >= t["min_total_ms"])
    ]
    if len(hits) == 0:
        return []
    window = _window_s(df)
    endpoint_requests = df.groupby("endpoint")["request_key"].nunique()
    findings = []
    for (endpoint, fid), group in hits.groupby(["endpoint", "fingerprint_id"], sort=False):
        fp = str(group["fingerprint"].iloc[0])
        sample_key = group.sort_values("n", ascending=False)["request_key"].iloc[0]
        req = df[df["request_key"] == sample_key]
        first_pos = int((req["fingerprint_id"] == fid).to_numpy().argmax())
        earlier = list(
            dict.fromkeys(req["fingerprint"].iloc[:first_pos].astype(str).tolist()[::-1])
        )
        fix = orm_fix(fp, earlier, models)
        n_req = len(group)
        repeats = float(group["n"].mean())
        wasted_q = float((group["n"] - 1).mean())
        wasted_ms_total = float((group["ms"] * (group["n"] - 1) / group["n"]).sum())
        wasted_ms_req = wasted_ms_total / n_req
        rps = endpoint_requests.get(endpoint, n_req) / window if window == window else math.nan
        impact = wasted_ms_total / (window / 3600.0) if window == window else None
        first_row = req.iloc[first_pos]
        strength = (
            EvidenceStrength.INFERRED if (inferred or fix.inferred) else EvidenceStrength.PATTERN
        )
        note = []
        if inferred:
            note.append(
                "requests were reconstructed from process/thread and time gaps (no request ids in the source)"
            )
        if fix.inferred:
            note.append(
                "model and field names follow Django's naming conventions (no model dump given)"
            )
        what = {
            "forward_fk": "a foreign key followed in a loop",
            "reverse_fk": "a reverse relation read in a loop",
            "many_to_many": "a many-to-many relation read in a loop",
            "deferred_field": "a deferred field loaded row by row",
        }.get(fix.relation, "a query repeated in a loop")
        findings.append(
            Finding(
                check="n_plus_one",
                severity=_severity(wasted_ms_req, repeats, t),
                title=(
                    f"N+1 on {endpoint}: {fix.model}.{fix.field} ({what})"
                    if fix.model and fix.field
                    else f"N+1 on {endpoint}: a query on {_table_of(fp) or 'a table'} repeated per row"
                ),
                summary=(
                    f"{endpoint} runs this query {repeats:.0f} times per request on average "
                    f"({n_req} of {endpoint_requests.get(endpoint, n_req)} requests); {fix.explanation}"
                ),
                subject=Subject(
                    endpoint=str(endpoint),
                    fingerprint=fp,
                    fingerprint_id=str(fid),
                    table=_table_of(fp),
                ),
                metrics={
                    "requests_affected": n_req,
                    "requests_total": int(endpoint_requests.get(endpoint, n_req)),
                    "queries_per_request": round(repeats, 2),
                    "wasted_queries_per_request": round(wasted_q, 2),
                    "wasted_ms_per_request": round(wasted_ms_req, 3),
                    "requests_per_s": None if rps != rps else round(float(rps), 4),
                    "total_saved_ms": round(wasted_ms_total, 3),
                    "relation": fix.relation,
                },
                recommendation=Recommendation(
                    summary=f"Load the related rows with the list query instead of once per row: {fix.code}"
                    if fix.code
                    else "Load the related rows together with the list query (select_related / prefetch_related).",
                    django=fix.code or None,
                ),
                evidence=Evidence(
                    strength=strength,
                    items=(
                        *(
                            {"request_id": str(k), "executions": int(n)}
                            for k, n in zip(
                                group["request_key"].head(5), group["n"].head(5), strict=True
                            )
                        ),
                        {
                            "source_file": str(first_row.get("source_file")),
                            "source_line": _int(first_row.get("source_line")),
                        },
                    ),
                    note="; ".join(note) or None,
                ),
                impact_ms=impact,
                chapter="queries",
            )
        )
    return sorted(findings, key=lambda f: -(f.metrics.get("total_saved_ms") or 0))  # type: ignore[operator]


def duplicate_queries(events: pd.DataFrame, config: AuditConfig | None = None) -> list[Finding]:
    """Reads repeated with identical parameters within one request: one finding per endpoint.

    Transaction control, savepoints, DDL and writes are left out (they repeat by nature or
    are another question); the finding lists the most duplicated statements of the endpoint.
    """
    cfg = config or AuditConfig()
    t = cfg.thresholds("n_plus_one")
    df, inferred = requests_of(events, cfg)
    if len(df) == 0:
        return []
    df = df.assign(_ms=pd.to_numeric(df["duration_ms"], errors="coerce").fillna(0.0))
    df = df[df["fingerprint"].str.match(r"^\(?\s*(select|with)\b", na=False)]
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
    window = _window_s(df)
    endpoint_requests = df.groupby("endpoint")["request_key"].nunique()
    out = []
    for endpoint, group in hits.groupby("endpoint", sort=False):
        n_req = group["request_key"].nunique()
        per_req = group.groupby("request_key")["wasted"].sum()
        wasted_ms_total = float(group["wasted_ms"].sum())
        top = (
            group.groupby(["fingerprint_id", "fingerprint"])[["wasted", "wasted_ms"]]
            .sum()
            .sort_values("wasted", ascending=False)
            .head(5)
            .reset_index()
        )
        out.append(
            Finding(
                check="duplicate_query",
                severity=Severity.MEDIUM if per_req.mean() >= t["medium_repeats"] else Severity.LOW,
                title=f"Duplicate queries on {endpoint}: {per_req.mean():.0f} per request",
                summary=(
                    f"{len(top)} statement(s) run again with the same parameters in {n_req} of "
                    f"{int(endpoint_requests.get(endpoint, n_req))} request(s) of {endpoint}, "
                    f"{per_req.mean():.1f} repeats per request: the first result could be reused."
                ),
                subject=Subject(
                    endpoint=str(endpoint),
                    fingerprint=str(top["fingerprint"].iloc[0]),
                    fingerprint_id=str(top["fingerprint_id"].iloc[0]),
                    table=_table_of(str(top["fingerprint"].iloc[0])),
                ),
                metrics={
                    "requests_affected": int(n_req),
                    "duplicates_per_request": round(float(per_req.mean()), 2),
                    "statements_duplicated": int(group["fingerprint_id"].nunique()),
                    "total_saved_ms": round(wasted_ms_total, 3),
                },
                recommendation=Recommendation(
                    summary="Keep the first result (a variable, functools.cached_property, or select_related on the queryset that "
                    "already holds the row) instead of querying again.",
                    django="from functools import cached_property\n\n@cached_property\ndef author(self):\n    return Author.objects.get(pk=self.author_id)",
                ),
                evidence=Evidence(
                    strength=EvidenceStrength.INFERRED if inferred else EvidenceStrength.PATTERN,
                    items=tuple(
                        {
                            "fingerprint_id": str(r.fingerprint_id),
                            "fingerprint": str(r.fingerprint),
                            "repeats": int(r.wasted),
                        }
                        for r in top.itertuples()
                    ),
                    note="requests were reconstructed from process/thread and time gaps"
                    if inferred
                    else None,
                ),
                impact_ms=wasted_ms_total / (window / 3600.0) if window == window else None,
                chapter="queries",
            )
        )
    return out


def endpoint_db_time(
    events: pd.DataFrame, config: AuditConfig | None = None, top_statements: int = 3
) -> pd.DataFrame:
    """Per endpoint: requests, statements and DB time per request, and the costliest fingerprints."""
    df, inferred = requests_of(events, config)
    cols = [
        "endpoint",
        "requests",
        "statements",
        "db_ms",
        "statements_per_request",
        "db_ms_per_request",
        "top_fingerprints",
        "inferred",
    ]
    if len(df) == 0:
        return pd.DataFrame(columns=cols)
    df = df.assign(_ms=pd.to_numeric(df["duration_ms"], errors="coerce").fillna(0.0))
    g = df.groupby("endpoint")
    out = pd.DataFrame(
        {
            "requests": g["request_key"].nunique(),
            "statements": g.size(),
            "db_ms": g["_ms"].sum(),
        }
    )
    out["statements_per_request"] = out["statements"] / out["requests"]
    out["db_ms_per_request"] = out["db_ms"] / out["requests"]
    tops = (
        df.groupby(["endpoint", "fingerprint"])["_ms"]
        .sum()
        .reset_index()
        .sort_values("_ms", ascending=False)
    )
    out["top_fingerprints"] = tops.groupby("endpoint")["fingerprint"].apply(
        lambda s: list(s.head(top_statements))
    )
    out["inferred"] = inferred
    return out.sort_values("db_ms", ascending=False).reset_index()[cols]


def statement_endpoints(events: pd.DataFrame) -> pd.DataFrame:
    """Per fingerprint, the endpoints that issue it with their calls and time (attribution)."""
    if len(events) == 0 or "endpoint" not in events:
        return pd.DataFrame(
            columns=["fingerprint_id", "fingerprint", "endpoint", "calls", "total_ms"]
        )
    df = events.assign(
        endpoint=events["endpoint"].astype("string").fillna(_NO_ENDPOINT),
        _ms=pd.to_numeric(events["duration_ms"], errors="coerce").fillna(0.0),
    )
    out = (
        df.groupby(["fingerprint_id", "fingerprint", "endpoint"])
        .agg(calls=("_ms", "size"), total_ms=("_ms", "sum"))
        .reset_index()
    )
    return out.sort_values(["total_ms"], ascending=False).reset_index(drop=True)


def _table_of(fp: str) -> str | None:
    from auditkit.sql.django_orm import statement_shape

    shape = statement_shape(fp)
    return shape.table if shape else None


def _int(v: Any) -> int | None:
    try:
        return None if v is None or pd.isna(v) else int(v)
    except (TypeError, ValueError):
        return None


def check_n_plus_one(client: Any, config: AuditConfig) -> list[Finding]:
    """The queries-chapter check: N+1 and duplicate queries of a client's request-tied events."""
    events = client.query_events("requests")
    if len(events) == 0:
        return []
    models = client.frame("schema_columns") if client.has("schema_columns") else None
    return n_plus_one(events, config, models) + duplicate_queries(events, config)
