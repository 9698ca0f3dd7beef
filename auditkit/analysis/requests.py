"""Statements by request and by endpoint: the per-request view the checks share.

The workload's statements (:mod:`auditkit.analysis.workload`) are grouped into requests by
:func:`request_statements`: by request id, else trace id, else — for a plain query log — by
process/thread and time gaps (:func:`auditkit.requests.infer_requests`), in which case the
grouping is marked inferred. Statements that carry a request id but no endpoint get the
endpoint of the request with that id from any requests source (an access log, traces), so a
query log with ids and an access log with routes join up.

From there, :func:`statement_endpoints` says which endpoints issue each statement (with calls,
time and requests), and :func:`endpoint_table` what each endpoint costs per request — in the
database (from the statements) and in all (from the requests frame, when there is one).
"""

from __future__ import annotations

import pandas as pd

from auditkit.config import AuditConfig

__all__ = [
    "NO_ENDPOINT",
    "attach_endpoints",
    "endpoint_table",
    "one_per_request",
    "request_statements",
    "statement_endpoints",
]

#: the endpoint of statements no source ties to one
NO_ENDPOINT = "(unknown endpoint)"

#: what makes one record of a request richer than another (the capture app or a trace over an
#: access log): the view it resolved to and the time it spent in the database
_RICHER = ("route", "view", "db_ms", "db_calls", "cpu_ms")


def one_per_request(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per request id.

    An access log and the capture app (or a trace) describe the same request under the same
    id; counting both would double every request. The richer record is kept (it names the
    view and the database time), its gaps filled from the others (the proxy's upstream time,
    the response size). Rows without a request id are kept as they are.
    """
    if len(requests) == 0 or "request_id" not in requests:
        return requests
    ids = requests["request_id"]
    shared = ids.notna() & ids.duplicated(keep=False)
    if not shared.any():
        return requests
    richer = [c for c in _RICHER if c in requests]
    rank = requests.loc[shared, richer].notna().sum(axis=1) if richer else 0
    part = requests[shared].assign(_rank=rank).sort_values("_rank", ascending=False, kind="stable")
    merged = part.groupby("request_id", sort=False).first().reset_index()[requests.columns]
    out = pd.concat([requests[~shared], merged.astype(requests.dtypes)], ignore_index=True)
    return out.sort_values("ts", kind="stable", ignore_index=True) if "ts" in out else out


def attach_endpoints(events: pd.DataFrame, requests: pd.DataFrame | None) -> pd.DataFrame:
    """Fill missing endpoints of statements from a requests frame with the same request ids."""
    if (
        requests is None
        or len(requests) == 0
        or len(events) == 0
        or "request_id" not in events
        or events["endpoint"].notna().all()
    ):
        return events
    known = requests.dropna(subset=["request_id", "endpoint"]).drop_duplicates("request_id")
    if len(known) == 0:
        return events
    by_id = known.set_index("request_id")["endpoint"]
    filled = events["request_id"].map(by_id)
    out = events.copy()
    out["endpoint"] = out["endpoint"].fillna(filled).astype("string")
    if "method" in known and "method" not in out:
        out["method"] = out["request_id"].map(known.set_index("request_id")["method"])
    return out


def request_statements(
    events: pd.DataFrame,
    config: AuditConfig | None = None,
    requests: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The statements with a ``request_key`` (request id, else trace id, else inferred), the
    endpoint of their request and a ``variant`` (statement text and parameters), ordered by
    request and time. ``attrs["inferred"]`` says whether requests were reconstructed.
    """
    cfg = config or AuditConfig()
    df = attach_endpoints(events, requests).copy()
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
    ).fillna(NO_ENDPOINT)
    order = [c for c in ("request_key", "ts", "source_line") if c in df]
    df = df[df["request_key"].notna()].sort_values(order, kind="stable").reset_index(drop=True)
    df["variant"] = (
        df["sql"].astype("string").fillna("")
        + "\x00"
        + (df["params"].astype("string").fillna("") if "params" in df else "")
    )
    df["_ms"] = pd.to_numeric(df["duration_ms"], errors="coerce").fillna(0.0)
    df.attrs["inferred"] = inferred
    return df


def statement_endpoints(events: pd.DataFrame) -> pd.DataFrame:
    """Per fingerprint and endpoint: calls, total time and the requests that ran it."""
    cols = ["fingerprint_id", "fingerprint", "endpoint", "calls", "total_ms", "requests"]
    if len(events) == 0 or "endpoint" not in events:
        return pd.DataFrame(columns=cols)
    column = "request_key" if "request_key" in events else "request_id"
    key = (
        events[column].astype("string")
        if column in events
        else pd.Series(pd.NA, index=events.index, dtype="string")
    )
    ms = (
        pd.to_numeric(events["duration_ms"], errors="coerce").fillna(0.0)
        if "duration_ms" in events
        else pd.Series(0.0, index=events.index)
    )
    df = events.assign(
        endpoint=events["endpoint"].astype("string").fillna(NO_ENDPOINT), _ms=ms, _req=key
    )
    if "fingerprint" not in df:
        df = df.assign(fingerprint=pd.Series(pd.NA, index=df.index, dtype="string"))
    out = (
        df.groupby(["fingerprint_id", "fingerprint", "endpoint"], dropna=False)
        .agg(calls=("_ms", "size"), total_ms=("_ms", "sum"), requests=("_req", "nunique"))
        .reset_index()
    )
    return out.sort_values("total_ms", ascending=False).reset_index(drop=True)[cols]


def endpoint_table(statements: pd.DataFrame, requests: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per endpoint: requests, statements and database time per request; with a requests frame,
    the response time (median, p95) and the share of it spent in the database.

    Columns: endpoint, requests, statements, db_ms, statements_per_request,
    db_ms_per_request, response_p50_ms, response_p95_ms, db_share_of_response.
    """
    cols = [
        "endpoint",
        "requests",
        "statements",
        "db_ms",
        "statements_per_request",
        "db_ms_per_request",
        "response_p50_ms",
        "response_p95_ms",
        "db_share_of_response",
    ]
    if len(statements) == 0:
        return pd.DataFrame(columns=cols)
    g = statements.groupby("endpoint")
    out = pd.DataFrame(
        {
            "requests": g["request_key"].nunique(),
            "statements": g.size(),
            "db_ms": g["_ms"].sum(),
        }
    )
    out["statements_per_request"] = out["statements"] / out["requests"]
    out["db_ms_per_request"] = out["db_ms"] / out["requests"]
    out["response_p50_ms"] = float("nan")
    out["response_p95_ms"] = float("nan")
    out["db_share_of_response"] = float("nan")
    if requests is not None and len(requests) and requests["duration_ms"].notna().any():
        r = requests.dropna(subset=["duration_ms"])
        r = r.assign(endpoint=r["endpoint"].astype("string").fillna(NO_ENDPOINT))
        rg = r.groupby("endpoint")["duration_ms"]
        # requests that ran no statement count too (a page served from the cache)
        seen = rg.size().reindex(out.index).fillna(0).to_numpy()
        out["requests"] = out["requests"].clip(lower=seen).astype(int)
        out["statements_per_request"] = out["statements"] / out["requests"]
        out["db_ms_per_request"] = out["db_ms"] / out["requests"]
        out["response_p50_ms"] = rg.median().reindex(out.index).to_numpy()
        out["response_p95_ms"] = rg.quantile(0.95).reindex(out.index).to_numpy()
        out["db_share_of_response"] = (
            out["db_ms_per_request"] / rg.mean().reindex(out.index).to_numpy()
        ).clip(upper=1.0)
    out = out.reset_index().rename(columns={"index": "endpoint"})
    return out.sort_values("db_ms", ascending=False, kind="stable").reset_index(drop=True)[cols]
