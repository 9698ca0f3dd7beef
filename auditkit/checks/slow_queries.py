"""Slow statements: what stands out in the query profile, by time per call or share of the total.

Works on any ``statement_stats`` frame — a profile built from logs
(:func:`auditkit.query_profile`) or a ``pg_stat_statements`` export. Thresholds come from the
``slow_query`` family of :mod:`auditkit.config` (``default``; ``pghero``: ≥ 20 ms mean over
≥ 100 calls). A statement is reported when its mean reaches ``min_mean_ms`` or its share of
all statement time reaches ``min_share`` (and it ran at least ``min_calls`` times); at most
``top`` are reported, by total time. Findings carry fingerprints, never literal values.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from auditkit.config import AuditConfig
from auditkit.findings import Evidence, EvidenceStrength, Finding, Recommendation, Severity, Subject

__all__ = ["slow_queries"]


def _window_hours(stats: pd.DataFrame) -> float:
    if "first_seen" not in stats or stats["first_seen"].isna().all():
        return math.nan
    span = (stats["last_seen"].max() - stats["first_seen"].min()).total_seconds() / 3600.0
    return span if span > 0 else math.nan


def slow_queries(
    stats: pd.DataFrame,
    config: AuditConfig | None = None,
    endpoints: pd.DataFrame | None = None,
    *,
    source: str = "query log",
) -> list[Finding]:
    """Findings for the statements that stand out. ``endpoints`` is the attribution table
    from :func:`auditkit.checks.n_plus_one.statement_endpoints` (fingerprint → endpoints)."""
    cfg = config or AuditConfig()
    t = cfg.thresholds("slow_query")
    if len(stats) == 0:
        return []
    df = stats.copy()
    grand = float(df["total_ms"].sum())
    share = (
        df["share"]
        if "share" in df and df["share"].notna().any()
        else df["total_ms"] / grand
        if grand
        else 0.0
    )
    df = df.assign(share_of_total=share)
    mean = pd.to_numeric(df["mean_ms"], errors="coerce")
    min_share = math.inf if t["min_share"] is None else t["min_share"]
    picked = df[
        ((mean >= t["min_mean_ms"]) | (df["share_of_total"] >= min_share))
        & (df["calls"] >= t["min_calls"])
    ]
    picked = picked.sort_values("total_ms", ascending=False).head(int(t["top"]))
    hours = _window_hours(df)
    strength = (
        EvidenceStrength.STATISTICS if source == "pg_stat_statements" else EvidenceStrength.PATTERN
    )
    out = []
    for row in picked.itertuples(index=False):
        r = row._asdict()
        m, sh = float(r["mean_ms"]), float(r["share_of_total"])
        high = m >= t["high_mean_ms"] or sh >= t["high_share"]
        severity = (
            Severity.HIGH
            if high
            else Severity.MEDIUM
            if (m >= t["min_mean_ms"] and sh >= min_share)
            else Severity.LOW
        )
        where = []
        if endpoints is not None and len(endpoints):
            e = endpoints[endpoints["fingerprint_id"] == r["fingerprint_id"]].head(3)
            where = [f"{x.endpoint} ({int(x.calls)} calls)" for x in e.itertuples()]
        why = []
        if m >= t["min_mean_ms"]:
            why.append(f"{m:.1f} ms per call on average")
        if sh >= min_share:
            why.append(f"{sh:.0%} of all statement time")
        metrics = {
            "calls": int(r["calls"]),
            "total_ms": round(float(r["total_ms"]), 3),
            "share": round(sh, 4),
            "mean_ms": round(m, 3),
            "p95_ms": None if pd.isna(r.get("p95_ms")) else round(float(r["p95_ms"]), 3),
            "max_ms": None if pd.isna(r.get("max_ms")) else round(float(r["max_ms"]), 3),
            "rows": None if pd.isna(r.get("rows")) else int(r["rows"]),
        }
        out.append(
            Finding(
                check="slow_query",
                severity=severity,
                title=f"Slow statement #{int(r['rank']) if pd.notna(r.get('rank')) else ''}: {why[0] if why else ''}".strip(),
                summary=(
                    f"Ran {int(r['calls'])} times, {float(r['total_ms']) / 1000:.2f} s in total: "
                    + " and ".join(why)
                    + (f". Issued by {', '.join(where)}." if where else ".")
                ),
                subject=Subject(
                    fingerprint=str(r["fingerprint"]), fingerprint_id=str(r["fingerprint_id"])
                ),
                metrics=metrics,
                recommendation=Recommendation(
                    summary=(
                        "Read its plan (EXPLAIN (ANALYZE, BUFFERS)) for sequential scans, misestimates and sorts on "
                        "disk; see the indexing chapter for an index that serves its predicates. When it runs once per "
                        "row of a list, it is an N+1 (queries chapter); when its result rarely changes, cache it."
                    ),
                    sql=f"EXPLAIN (ANALYZE, BUFFERS)\n{r['fingerprint']};",
                ),
                evidence=Evidence(
                    strength=strength,
                    items=({"fingerprint_id": str(r["fingerprint_id"]), "source": source},),
                ),
                impact_ms=float(r["total_ms"]) / hours if hours == hours else float(r["total_ms"]),
                chapter="queries",
            )
        )
    return out


def check_slow_queries(client: Any, config: AuditConfig) -> list[Finding]:
    """The queries-chapter check: slow statements of the client's query profile."""
    from auditkit.checks.n_plus_one import statement_endpoints

    profile, source = client.query_profile()
    if len(profile) == 0:
        return []
    tied = client.query_events("requests")
    endpoints = statement_endpoints(tied) if len(tied) and tied["endpoint"].notna().any() else None
    return slow_queries(profile, config, endpoints, source=source)
