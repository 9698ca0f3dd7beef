"""Cache-hit analysis: how well the caches work, and what should be cached.

* :func:`cache_hit_ratios` — hit ratio per cache server from ``cache_stats`` (Redis
  ``keyspace_hits``/``keyspace_misses``, memcached ``get_hits``/``get_misses``). With two
  snapshots of one server the ratio is over the interval between them (the audit window);
  with one, it is since the server started, and the finding says so.
* :func:`low_cache_hit_ratio` — findings for caches below ``min_hit_ratio``, and for
  PostgreSQL's shared buffers below ``pg_buffer_min_hit_ratio`` (pgHero's 99 %) when
  ``pg_stat_statements`` block counts are available. Judged by the ratio (the rule of this
  check, documented in ``docs/findings.md``): high below half the threshold, else medium.
* :func:`cache_candidates` — reads that run again and again *with the same parameters* across
  requests, costly enough that a cache round trip is cheaper: their result could be cached. Not
  a statement repeated inside one request (that is an N+1 or a duplicate: the ORM fixes it),
  nor a read cheaper than ``candidate_min_mean_ms``, nor the per-request lookups of Django's own
  session and user tables, nor a saving below ``candidate_min_share`` of all database time.
  The saving assumes results may be ``candidate_ttl_s`` old: each distinct statement then runs
  once per such period instead of on every request. A statement an index makes cheap is the
  index's business first (:mod:`auditkit.checks.fold` lets the index finding take it).

Thresholds: the ``cache`` family of :mod:`auditkit.config`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Protocol, cast

import pandas as pd

from auditkit.analysis.code import CodeMap
from auditkit.checks.severity import of_impact
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Impact,
    Recommendation,
    Severity,
    Subject,
    duration_text,
)
from auditkit.schemas import QUERY_EVENTS, conform
from auditkit.sql.django_orm import statement_shape

__all__ = ["cache_candidates", "cache_hit_ratios", "cacheable_reads", "low_cache_hit_ratio"]

_COUNTERS = {
    "redis": ("keyspace_hits", "keyspace_misses"),
    "valkey": ("keyspace_hits", "keyspace_misses"),
    "pika": ("keyspace_hits", "keyspace_misses"),
    "memcached": ("get_hits", "get_misses"),
}
_READ = r"^\(?\s*(select|with)\b"


def cache_hit_ratios(stats: pd.DataFrame) -> pd.DataFrame:
    """Per server: hits, misses and hit ratio over the audit window (or since start)."""
    cols = ["server", "engine", "hits", "misses", "hit_ratio", "window", "snapshots"]
    if len(stats) == 0:
        return pd.DataFrame(columns=cols)
    rows = []
    for server, g in stats.groupby("server", sort=False):
        engine = str(g["engine"].dropna().iloc[0]) if g["engine"].notna().any() else "redis"
        hit_name, miss_name = _COUNTERS.get(engine, _COUNTERS["redis"])
        snaps = g[g["metric"].isin([hit_name, miss_name])]
        if len(snaps) == 0:
            continue
        per = snaps.pivot_table(
            index=["source_file"], columns="metric", values="value", aggfunc="first"
        )
        if hit_name not in per or miss_name not in per:
            continue
        times = snaps.groupby("source_file")["ts"].first()
        per = per.join(times).sort_values(["ts", hit_name], na_position="first")
        if len(per) >= 2:
            first, last = per.iloc[0], per.iloc[-1]
            hits, misses = last[hit_name] - first[hit_name], last[miss_name] - first[miss_name]
            window = "between snapshots"
            if hits < 0 or misses < 0:  # restarted between snapshots: the last one counts alone
                hits, misses, window = last[hit_name], last[miss_name], "since the restart"
        else:
            hits, misses, window = (
                per.iloc[0][hit_name],
                per.iloc[0][miss_name],
                "since server start",
            )
        total = hits + misses
        rows.append(
            {
                "server": server,
                "engine": engine,
                "hits": hits,
                "misses": misses,
                "hit_ratio": hits / total if total else float("nan"),
                "window": window,
                "snapshots": len(per),
            }
        )
    return pd.DataFrame(rows, columns=cols)


class _HitRatioRow(Protocol):
    """A row of :func:`cache_hit_ratios` from ``itertuples()``."""

    server: str
    engine: str
    hits: float
    misses: float
    hit_ratio: float
    window: str
    snapshots: int


def low_cache_hit_ratio(
    stats: pd.DataFrame,
    config: AuditConfig | None = None,
    statement_stats: pd.DataFrame | None = None,
) -> list[Finding]:
    """Caches that miss more than they should."""
    t = (config or AuditConfig()).thresholds("cache")
    out = []
    for r in cast("Iterable[_HitRatioRow]", cache_hit_ratios(stats).itertuples()):
        if r.hit_ratio != r.hit_ratio or r.hit_ratio >= t["min_hit_ratio"]:
            continue
        severity = Severity.HIGH if r.hit_ratio < t["min_hit_ratio"] / 2 else Severity.MEDIUM
        engine = str(r.engine).capitalize() if r.engine != "memcached" else "memcached"
        out.append(
            Finding(
                check="low_cache_hit_ratio",
                severity=severity,
                title=f"{engine} cache hit ratio {r.hit_ratio:.0%}",
                summary=(
                    f"{int(r.hits):,} hits and {int(r.misses):,} misses {r.window} on {r.server}: "
                    f"{1 - r.hit_ratio:.0%} of lookups miss, and each miss adds a round trip to the "
                    "cache on top of the work the cache was meant to save."
                ),
                subject=Subject(expression=f"{r.engine} {r.server}"),
                metrics={
                    "hit_ratio": round(float(r.hit_ratio), 4),
                    "hits": int(r.hits),
                    "misses": int(r.misses),
                    "threshold": t["min_hit_ratio"],
                    "snapshots": int(r.snapshots),
                },
                recommendation=Recommendation(
                    summary=(
                        "Find the keys that miss: keys that embed a per-user, per-session or "
                        "per-object part that is rarely read again, timeouts shorter than the time "
                        "between two reads of a key, or evictions (evicted_keys) when the cache is "
                        "too small. Server counters cannot tell which; the capture app's cache "
                        "events (or the cache's key statistics) name the key families."
                    ),
                ),
                evidence=Evidence(
                    strength=EvidenceStrength.STATISTICS, note=f"counters {r.window}"
                ),
                chapter="caching",
            )
        )
    if (
        statement_stats is not None
        and len(statement_stats)
        and statement_stats["shared_blks_hit"].notna().any()
    ):
        hit = float(statement_stats["shared_blks_hit"].sum())
        read = float(statement_stats["shared_blks_read"].fillna(0).sum())
        ratio = hit / (hit + read) if hit + read else float("nan")
        if ratio == ratio and ratio < t["pg_buffer_min_hit_ratio"]:
            out.append(
                Finding(
                    check="low_cache_hit_ratio",
                    severity=Severity.MEDIUM,
                    title=f"PostgreSQL buffer cache hit ratio {ratio:.1%}",
                    summary=(
                        f"Statements read {int(read):,} blocks from disk for {int(hit):,} found in "
                        "shared buffers: the working set does not fit in memory."
                    ),
                    subject=Subject(expression="PostgreSQL shared_buffers"),
                    metrics={
                        "hit_ratio": round(ratio, 4),
                        "blocks_hit": int(hit),
                        "blocks_read": int(read),
                        "threshold": t["pg_buffer_min_hit_ratio"],
                    },
                    recommendation=Recommendation(
                        summary=(
                            "Give PostgreSQL more memory (shared_buffers about a quarter of the "
                            "machine's memory, effective_cache_size about three quarters) or shrink "
                            "the working set: indexes that avoid sequential scans, archiving cold rows."
                        ),
                    ),
                    evidence=Evidence(
                        strength=EvidenceStrength.STATISTICS,
                        note="pg_stat_statements block counters",
                    ),
                    chapter="caching",
                )
            )
    return out


def cache_candidates(
    events: pd.DataFrame, config: AuditConfig | None = None, top: int | None = None
) -> list[Finding]:
    """Cache candidates of raw query events (see the module docstring)."""
    from auditkit.analysis.code import joins_of, tables_of
    from auditkit.analysis.requests import request_statements
    from auditkit.analysis.workload import choose_workload

    if len(events) == 0:
        return []
    events = conform(events, QUERY_EVENTS)
    fps = events["fingerprint"].dropna().astype(str).tolist()
    tables, seen = tables_of(fps)
    code = CodeMap.build(
        pd.DataFrame({"table": [], "inferred": []}),
        tables=tables,
        joins=joins_of(fps),
        seen_columns=seen,
    )
    workload = choose_workload(events)
    statements = (
        request_statements(events, config)
        if "request_id" in events and events["request_id"].notna().any()
        else events.assign(
            request_key=pd.Series(pd.NA, index=events.index, dtype="string"),
            _ms=pd.to_numeric(events["duration_ms"], errors="coerce").fillna(0.0),
        )
    )
    return cacheable_reads(
        statements,
        code,
        config,
        total_ms=workload.db_ms or float(statements["_ms"].sum()),
        window_s=workload.window_s,
        source=workload.label,
        top=top,
    )


def cacheable_reads(
    statements: pd.DataFrame,
    code: CodeMap,
    config: AuditConfig | None = None,
    *,
    total_ms: float,
    window_s: float | None,
    source: str | None,
    table_writes: Mapping[str, int] | None = None,
    top: int | None = None,
) -> list[Finding]:
    """``cache_candidate`` findings: one per statement worth caching, on the endpoint that
    runs it most (see the module docstring).

    ``table_writes`` (rows-changing statements per table in the window) keeps out row lists
    whose tables change more often than a cached copy would live: such a cache serves stale
    rows. Aggregates (GROUP BY, COUNT, SUM…) over many rows tolerate a few changes and stay in.
    """
    cfg = config or AuditConfig()
    t = cfg.thresholds("cache")
    if len(statements) == 0:
        return []
    df = statements[statements["fingerprint"].astype("string").str.match(_READ, na=False)]
    if len(df) == 0:
        return []
    variant = (
        df["sql"].astype("string").fillna("") + "\x00" + df["params"].astype("string").fillna("")
        if "params" in df
        else df["sql"].astype("string").fillna("")
    )
    g = pd.DataFrame(
        {
            "fid": df["fingerprint_id"],
            "fp": df["fingerprint"],
            "variant": variant,
            "ms": pd.to_numeric(df["duration_ms"], errors="coerce").fillna(0.0),
            "endpoint": df["endpoint"].astype("string"),
            "req": df.get("request_key", pd.NA),
        }
    )
    # a statement run several times inside one request of an endpoint is a loop (N+1) or a
    # duplicate there: the ORM fixes it, not a cache
    if g["req"].notna().any():
        per_request = g.dropna(subset=["req"]).groupby(["fid", "endpoint", "req"]).size()
        looped = per_request.groupby(level=["fid", "endpoint"]).median() > 1
        bad = {k for k, v in looped.items() if v}
        keep = [(f, e) not in bad for f, e in zip(g["fid"], g["endpoint"], strict=True)]
        g = g[keep]
    agg = g.groupby("fid").agg(
        calls=("variant", "size"),
        variants=("variant", "nunique"),
        ms=("ms", "sum"),
        fp=("fp", "first"),
    )
    agg["mean_ms"] = agg["ms"] / agg["calls"]
    agg["repeat_ratio"] = 1 - agg["variants"] / agg["calls"]
    picked = agg[
        (agg["calls"] >= t["candidate_min_calls"])
        & (agg["repeat_ratio"] >= t["candidate_min_repeat_ratio"])
        & (agg["mean_ms"] >= t["candidate_min_mean_ms"])
    ]
    rows = []
    ttl = float(t["candidate_ttl_s"])
    periods = max(1, math.ceil(window_s / ttl)) if window_s else 1
    for fid, r in picked.iterrows():
        shape = statement_shape(str(r["fp"]))
        tables = [tb for tb in (shape.tables if shape else ()) if tb]
        if tables and all(code.is_django(tb) for tb in tables):
            continue  # the session and user lookups of every request
        aggregate = bool(shape and (shape.aggregates or "group by" in str(r["fp"])))
        writes = sum((table_writes or {}).get(tb, 0) for tb in tables)
        if not aggregate and writes >= periods:
            continue  # its rows change within every cache period: a cached copy would be stale
        per_variant = g[g["fid"] == fid].groupby("variant")["ms"].agg(["size", "sum"])
        needed = per_variant["size"].clip(upper=periods)
        saved = float((per_variant["sum"] * (1 - needed / per_variant["size"])).sum())
        if saved <= 0 or (total_ms and saved / total_ms < t["candidate_min_share"]):
            continue
        rows.append((str(fid), r, tables, saved, aggregate))
    rows.sort(key=lambda x: -x[3])
    out = []
    for fid, r, tables, saved, aggregate in rows[: top or int(t["candidate_top"])]:
        eps = g[g["fid"] == fid]
        busiest = eps["endpoint"].dropna().value_counts()
        endpoint = str(busiest.index[0]) if len(busiest) else None
        requests = int(eps["req"].nunique()) if eps["req"].notna().any() else None
        models = list(
            dict.fromkeys(code.model(tb).name for tb in tables if code.many_to_many(tb) is None)
        )
        impact = Impact.of(
            saved,
            total_ms,
            window_s=window_s,
            requests=requests,
            source=source,
            basis="estimated",
            note=(
                f"each distinct statement run once per {duration_text(ttl * 1000)} instead of on every "
                f"request, assuming results that old are acceptable"
            ),
        )
        where = f"{endpoint}" if endpoint else "its callers"
        what = ", ".join(models) if models else "its tables"
        out.append(
            Finding(
                check="cache_candidate",
                severity=of_impact(impact, cfg),
                title=f"Cache the read on {what} behind {where}",
                summary=(
                    f"The same statement ran {int(r['calls']):,} times with only {int(r['variants'])} "
                    f"distinct set(s) of parameters ({duration_text(float(r['mean_ms']))} each), once per "
                    f"request on {where}: its result is recomputed for every visitor."
                ),
                subject=Subject(
                    fingerprint=str(r["fp"]),
                    fingerprint_id=fid,
                    endpoint=endpoint,
                ),
                metrics={
                    "calls": int(r["calls"]),
                    "distinct": int(r["variants"]),
                    "repeat_ratio": round(float(r["repeat_ratio"]), 4),
                    "mean_ms": round(float(r["mean_ms"]), 3),
                    "total_ms": round(float(r["ms"]), 3),
                    "saved_ms": round(saved, 3),
                    "ttl_s": ttl,
                    "aggregate": aggregate,
                },
                recommendation=Recommendation(
                    summary=(
                        f"Cache the result of this read of {what} on {where} for up to "
                        f"{duration_text(ttl * 1000)}: cache_page on the view when the whole response "
                        "is the same for every visitor, otherwise cache.get_or_set around the query, "
                        "keyed on its parameters. Clear the key when the underlying rows change if "
                        "stale results are not acceptable."
                    ),
                ),
                evidence=Evidence(
                    strength=EvidenceStrength.PATTERN, items=({"fingerprint_id": fid},)
                ),
                impact=impact,
                chapter="caching",
                statements=(fid,),
                action=f"Cache the {what} read on {where}: {impact.phrase()}.",
            )
        )
    return out
