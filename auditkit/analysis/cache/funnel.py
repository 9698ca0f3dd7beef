"""The caching funnel: per endpoint, what the CDN, the Django cache and the buffer cache each
absorb, and where the time goes when they do not."""

from __future__ import annotations

from typing import Any

import pandas as pd

from auditkit.analysis.cache.http import CDN_HITS
from auditkit.analysis.cache.keys import miss_causes

__all__ = ["funnel"]


def funnel(
    requests: pd.DataFrame,
    events: pd.DataFrame,
    statement_endpoints: pd.DataFrame,
    statement_stats: pd.DataFrame,
) -> pd.DataFrame:
    """Per endpoint, what each layer absorbs and where the time goes when it does not.

    Columns: ``endpoint``, ``requests``, ``cdn_hit_ratio`` (requests the CDN or proxy answered,
    among those with a known outcome), ``cache_reads``, ``cache_hit_ratio`` (Django cache reads
    that hit), ``buffer_hit_ratio`` (the endpoint's statements' shared-buffer hits, from
    ``pg_stat_statements`` blocks per call weighted by the endpoint's calls), ``response_ms``,
    ``db_ms``, ``cache_ms`` (medians per request), ``other_ms`` (the rest). NaN where the
    data does not say.
    """
    cols = [
        "endpoint",
        "requests",
        "cdn_hit_ratio",
        "cache_reads",
        "cache_hit_ratio",
        "buffer_hit_ratio",
        "response_ms",
        "db_ms",
        "cache_ms",
        "other_ms",
    ]
    parts: dict[str, dict[str, Any]] = {}

    def row(ep: str) -> dict[str, Any]:
        return parts.setdefault(ep, {"endpoint": ep})

    if len(requests) and "endpoint" in requests:
        req = requests[requests["endpoint"].notna()]
        for ep, g in req.groupby("endpoint", sort=False):
            r = row(str(ep))
            r["requests"] = len(g)
            if "cache_status" in g and g["cache_status"].notna().any():
                st = g["cache_status"].dropna().astype(str).str.upper()
                r["cdn_hit_ratio"] = float(st.isin(CDN_HITS).mean())
            for c, name in (
                ("duration_ms", "response_ms"),
                ("db_ms", "db_ms"),
                ("cache_ms", "cache_ms"),
            ):
                if c in g and g[c].notna().any():
                    r[name] = float(pd.to_numeric(g[c], errors="coerce").median())
    if len(events) and "endpoint" in events:
        reads = miss_causes(events)
        for ep, g in reads.dropna(subset=["endpoint"]).groupby("endpoint", sort=False):
            r = row(str(ep))
            r["cache_reads"] = len(g)
            r["cache_hit_ratio"] = float(g["hit"].mean())
    if len(statement_endpoints) and len(statement_stats) and "shared_blks_hit" in statement_stats:
        per_call = statement_stats.set_index("fingerprint_id")
        calls = pd.to_numeric(per_call["calls"], errors="coerce").where(lambda c: c > 0)
        hit_pc = pd.to_numeric(per_call["shared_blks_hit"], errors="coerce") / calls
        read_pc = pd.to_numeric(per_call["shared_blks_read"], errors="coerce") / calls
        se = statement_endpoints.assign(
            _hit=statement_endpoints["fingerprint_id"].map(hit_pc.groupby(level=0).first())
            * statement_endpoints["calls"],
            _read=statement_endpoints["fingerprint_id"].map(read_pc.groupby(level=0).first())
            * statement_endpoints["calls"],
        ).dropna(subset=["_hit"])
        for ep, g in se.groupby("endpoint", sort=False):
            total = g["_hit"].sum() + g["_read"].fillna(0).sum()
            if total > 0:
                row(str(ep))["buffer_hit_ratio"] = float(g["_hit"].sum() / total)
    out = pd.DataFrame(list(parts.values()), columns=cols)
    if len(out):
        known = out[["db_ms", "cache_ms"]].fillna(0).sum(axis=1)
        out["other_ms"] = (out["response_ms"] - known).clip(lower=0)
    return out.sort_values(
        "requests", ascending=False, na_position="last", kind="stable"
    ).reset_index(drop=True)
