"""Cache-hit analysis: how well the caches work, and what should be cached.

* :func:`cache_hit_ratios` — hit ratio per cache server from ``cache_stats`` (Redis
  ``keyspace_hits``/``keyspace_misses``, memcached ``get_hits``/``get_misses``). With two
  snapshots of one server the ratio is over the interval between them (the audit window);
  with one, it is since the server started, and the finding says so.
* :func:`low_cache_hit_ratio` — findings for caches below ``min_hit_ratio``, and for
  PostgreSQL's shared buffers below ``pg_buffer_min_hit_ratio`` (pgHero's 99 %) when
  ``pg_stat_statements`` block counts are available.
* :func:`cache_candidates` — reads that run again and again *with the same parameters*
  across requests: their result could be cached (``cache.get_or_set``).

Thresholds: the ``cache`` family of :mod:`auditkit.config`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, cast

import pandas as pd

from auditkit.config import AuditConfig
from auditkit.findings import Evidence, EvidenceStrength, Finding, Recommendation, Severity, Subject

__all__ = ["cache_candidates", "cache_hit_ratios", "check_caching", "low_cache_hit_ratio"]

_COUNTERS = {
    "redis": ("keyspace_hits", "keyspace_misses"),
    "valkey": ("keyspace_hits", "keyspace_misses"),
    "pika": ("keyspace_hits", "keyspace_misses"),
    "memcached": ("get_hits", "get_misses"),
}


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
        keys = ["source_file"]
        per = snaps.pivot_table(index=keys, columns="metric", values="value", aggfunc="first")
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
    """A row of :func:`cache_hit_ratios` from ``itertuples()`` (pandas-stubs types its fields as any scalar)."""

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
        out.append(
            Finding(
                check="low_cache_hit_ratio",
                severity=severity,
                title=f"{r.engine} cache hit ratio {r.hit_ratio:.0%}",
                summary=(
                    f"{int(r.hits)} hits and {int(r.misses)} misses {r.window} on {r.server}: most lookups miss, so "
                    "the cache adds a round trip without saving the work behind it."
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
                    summary="Check that keys are stable (no timestamps or per-user parts that make every key new), that "
                    "timeouts are long enough for the data, and that the cache is large enough (evicted_keys).",
                    django='from django.core.cache import cache\n\nvalue = cache.get_or_set(f"book:{book_id}:summary", compute, timeout=600)',
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
                    summary=f"Statements read {int(read)} blocks from disk for {int(hit)} found in shared buffers: the working set does not fit in memory.",
                    subject=Subject(expression="PostgreSQL shared_buffers"),
                    metrics={
                        "hit_ratio": round(ratio, 4),
                        "blocks_hit": int(hit),
                        "blocks_read": int(read),
                        "threshold": t["pg_buffer_min_hit_ratio"],
                    },
                    recommendation=Recommendation(
                        summary="Give PostgreSQL more memory (shared_buffers ≈ 25 % of RAM, effective_cache_size ≈ 75 %) or "
                        "shrink the working set: indexes that avoid sequential scans, archiving cold rows.",
                        sql="ALTER SYSTEM SET shared_buffers = '4GB';  -- needs a restart; size it to the machine",
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
    """Reads repeated with identical parameters across requests: their results could be cached."""
    t = (config or AuditConfig()).thresholds("cache")
    if len(events) == 0:
        return []
    df = events[events["fingerprint"].str.match(r"^\(?\s*(select|with)\b", na=False)]
    if len(df) == 0:
        return []
    variant = (
        df["sql"].astype("string").fillna("") + "\x00" + df["params"].astype("string").fillna("")
    )
    dur = pd.to_numeric(df["duration_ms"], errors="coerce").fillna(0.0)
    g = pd.DataFrame(
        {
            "fid": df["fingerprint_id"],
            "fp": df["fingerprint"],
            "variant": variant,
            "ms": dur,
            "endpoint": df["endpoint"].astype("string"),
        }
    )
    agg = g.groupby("fid").agg(
        calls=("variant", "size"),
        variants=("variant", "nunique"),
        ms=("ms", "sum"),
        fp=("fp", "first"),
        endpoints=("endpoint", lambda s: sorted(s.dropna().unique())[:3]),
    )
    agg["repeat_ratio"] = 1 - agg["variants"] / agg["calls"]
    # a statement run several times inside one request is a loop (N+1: select_related, the
    # queries chapter), not a caching candidate
    key = df["request_id"].astype("string") if "request_id" in df else None
    if key is not None and key.notna().any():
        per_request = (
            g.assign(req=key.to_numpy()).dropna(subset=["req"]).groupby(["fid", "req"]).size()
        )
        looped = per_request.groupby(level="fid").median() > 1
        agg = agg[~agg.index.isin(looped[looped].index)]
    picked = agg[
        (agg["calls"] >= t["candidate_min_calls"])
        & (agg["repeat_ratio"] >= t["candidate_min_repeat_ratio"])
    ]
    picked = (
        picked.assign(saved=picked["ms"] * picked["repeat_ratio"])
        .sort_values("saved", ascending=False)
        .head(top or int(t["candidate_top"]))
    )
    out = []
    for fid, r in picked.iterrows():
        endpoints = [str(e) for e in r["endpoints"]]
        saved = float(r["ms"]) * float(r["repeat_ratio"])
        where = ", ".join(endpoints) if endpoints else "its callers"
        table = _table(str(r["fp"]))
        out.append(
            Finding(
                check="cache_candidate",
                severity=Severity.MEDIUM
                if saved >= t["candidate_medium_saved_ms"]
                else Severity.LOW,
                title=(
                    f"Cacheable read{' on ' + table if table else ''}: "
                    f"{int(r['calls'])} calls, {r['repeat_ratio']:.0%} repeats"
                ),
                summary=(
                    f"The same statement with the same parameters ran {int(r['calls'])} times as only "
                    f"{int(r['variants'])} distinct queries, from {where}: caching its result would save about "
                    f"{saved / 1000:.1f} s of database time in the observed window."
                ),
                subject=Subject(
                    fingerprint=str(r["fp"]),
                    fingerprint_id=str(fid),
                    endpoint=endpoints[0] if endpoints else None,
                ),
                metrics={
                    "calls": int(r["calls"]),
                    "distinct": int(r["variants"]),
                    "repeat_ratio": round(float(r["repeat_ratio"]), 4),
                    "total_ms": round(float(r["ms"]), 3),
                    "saved_ms": round(saved, 3),
                },
                recommendation=Recommendation(
                    summary="Cache the result with a key made of the parameters and a timeout that matches how fresh it must "
                    "be; invalidate on write (post_save signal) where staleness is not acceptable.",
                    django=(
                        "from django.core.cache import cache\n\n"
                        "def top_books():\n"
                        '    return cache.get_or_set("top-books", lambda: list(Book.objects.order_by("-sold")[:10]), 300)'
                    ),
                ),
                evidence=Evidence(
                    strength=EvidenceStrength.PATTERN, items=({"fingerprint_id": str(fid)},)
                ),
                impact_ms=saved,
                chapter="caching",
            )
        )
    return out


def _table(fp: str) -> str | None:
    from auditkit.sql.django_orm import statement_shape

    shape = statement_shape(fp)
    return shape.table if shape else None


def check_caching(client: Any, config: AuditConfig) -> list[Finding]:
    """The caching-chapter check."""
    stats = client.frame("statement_stats") if client.has("statement_stats") else None
    out = low_cache_hit_ratio(client.frame("cache_stats"), config, stats)
    return out + cache_candidates(client.query_events("requests"), config)
