"""Cache servers: per instance (restarts and statistics resets never averaged across), evictions
(memory against ``maxmemory`` and the eviction policy; memcached items evicted before anyone read
them), and a low hit ratio that no key-family finding explains."""

from __future__ import annotations

import pandas as pd

from auditkit.analysis.cache import (
    server_snapshots,
    server_summary,
)
from auditkit.checks.caching._common import (
    bytes_text,
    engine_name,
    frame_rows,
    number_of,
    ratio_severity,
)
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Recommendation,
    Severity,
    Subject,
    duration_text,
    plural,
)

__all__ = ["cache_hit_ratios", "server_findings"]


def cache_hit_ratios(stats: pd.DataFrame) -> pd.DataFrame:
    """Per server instance: hits, misses and hit ratio over the audit window (differences of
    consecutive snapshots, never across a restart), or since start with one snapshot.

    Columns: server (the instance), engine, hits, misses, hit_ratio, window, snapshots.
    """
    cols = ["server", "engine", "hits", "misses", "hit_ratio", "window", "snapshots"]
    summary = server_summary(server_snapshots(stats))
    if len(summary) == 0:
        return pd.DataFrame(columns=cols)
    window = [
        b if b == "between snapshots" else ("since the restart" if r else "since server start")
        for b, r in zip(summary["basis"], summary["restarts"] + summary["resets"], strict=True)
    ]
    return pd.DataFrame(
        {
            "server": summary["instance"],
            "engine": summary["engine"],
            "hits": summary["hits"],
            "misses": summary["misses"],
            "hit_ratio": summary["hit_ratio"],
            "window": window,
            "snapshots": summary["snapshots"],
        }
    )[cols]


def server_findings(
    servers: pd.DataFrame,
    families: pd.DataFrame | None = None,
    config: AuditConfig | None = None,
    *,
    explained: bool = False,
) -> list[Finding]:
    """Evictions and low hit ratios of cache server instances (see the module docstring).

    ``explained`` is True when key-family findings name the keys that miss: the server's low
    ratio is then their symptom, not a finding of its own.
    """
    t = (config or AuditConfig()).thresholds("cache")
    out: list[Finding] = []
    for r in frame_rows(servers):
        restarts = int(r.restarts) + int(r.resets)
        seen = (
            f"{plural(restarts, 'restart or statistics reset', 'restarts or statistics resets')} "
            "were seen and not averaged across"
            if restarts
            else ""
        )
        window = (
            f"over {duration_text(float(r.window_s) * 1000)} between snapshots"
            if r.basis == "between snapshots" and r.window_s == r.window_s
            else "since the server started (one snapshot per run: not the audit window)"
        )
        engine = engine_name(r.engine)
        evictions = float(r.evictions) if r.evictions == r.evictions else 0.0
        unfetched = (
            float(r.evicted_unfetched) if r.evicted_unfetched == r.evicted_unfetched else 0.0
        )
        if evictions >= t["min_evictions"]:
            policy = r.policy or "the server's policy"
            mem = (
                f"{bytes_text(float(r.used_memory))} used of maxmemory {bytes_text(float(r.maxmemory))}"
                if r.maxmemory == r.maxmemory and float(r.maxmemory) > 0
                else f"{bytes_text(float(r.used_memory))} used"
            )
            evicted_reads = 0
            if families is not None and len(families) and "miss_evicted" in families:
                evicted_reads = int(families["miss_evicted"].fillna(0).sum())
            rate = (
                f" ({r.evictions_per_s:.2f} per second)"
                if r.evictions_per_s == r.evictions_per_s
                else ""
            )
            summary = (
                f"{engine} {r.instance} evicted {int(evictions):,} keys {window}{rate} to make room: "
                f"{mem}, eviction policy {policy}."
            )
            if unfetched:
                summary += f" {int(unfetched):,} of them had never been read."
            if evicted_reads:
                summary += f" {evicted_reads:,} reads in the cache events missed a key evicted before its timeout."
            if seen:
                summary += f" {seen}."
            out.append(
                Finding(
                    check="low_cache_hit_ratio",
                    severity=Severity.MEDIUM,
                    title=f"{engine} {r.instance} evicts keys: the cache is too small for what is written to it",
                    summary=summary,
                    subject=Subject(expression=f"evictions {r.instance}"),
                    metrics={
                        "evictions": int(evictions),
                        "evictions_per_s": number_of(r.evictions_per_s),
                        "evicted_unfetched": number_of(r.evicted_unfetched),
                        "used_memory_bytes": number_of(r.used_memory),
                        "maxmemory_bytes": number_of(r.maxmemory),
                        "policy": r.policy,
                        "restarts": restarts,
                        "evicted_reads": evicted_reads,
                    },
                    recommendation=Recommendation(
                        summary=(
                            f"Give {r.instance} more memory (maxmemory), or write less to it: drop "
                            "the key families whose writes are never read, shorten the timeouts of "
                            "the largest families. With allkeys-lru or allkeys-lfu the keys read least "
                            "go first; volatile-* policies evict only keys with a timeout."
                        )
                    ),
                    evidence=Evidence(
                        strength=EvidenceStrength.STATISTICS, note=f"counters {window}"
                    ),
                    chapter="caching",
                )
            )
        ratio = float(r.hit_ratio) if r.hit_ratio == r.hit_ratio else float("nan")
        if ratio != ratio or ratio >= t["min_hit_ratio"] or explained:
            continue
        out.append(
            Finding(
                check="low_cache_hit_ratio",
                severity=ratio_severity(ratio, t["min_hit_ratio"]),
                title=f"{engine} cache hit ratio {ratio:.0%}",
                summary=(
                    f"{int(r.hits):,} hits and {int(r.misses):,} misses {window} on {r.instance}: "
                    f"{1 - ratio:.0%} of lookups miss, and each miss adds a round trip to the cache "
                    "on top of the work the cache was meant to save."
                    + (f" {seen}." if seen else "")
                ),
                subject=Subject(expression=f"{r.engine} {r.instance}"),
                metrics={
                    "hit_ratio": round(ratio, 4),
                    "hits": int(r.hits),
                    "misses": int(r.misses),
                    "threshold": t["min_hit_ratio"],
                    "snapshots": int(r.snapshots),
                    "restarts": restarts,
                    "window_s": number_of(r.window_s),
                },
                recommendation=Recommendation(
                    summary=(
                        "Server counters do not say which keys miss. The capture app's cache "
                        "events (or a logging cache wrapper, or memcached's stats detail dump) name "
                        "the key families and the cause of each miss: keys read only once, "
                        "timeouts shorter than the time between two reads, evictions."
                    ),
                ),
                evidence=Evidence(strength=EvidenceStrength.STATISTICS, note=f"counters {window}"),
                chapter="caching",
            )
        )
    return out
