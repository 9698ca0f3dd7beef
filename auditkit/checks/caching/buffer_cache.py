"""PostgreSQL's shared buffers below ``pg_buffer_min_hit_ratio``, naming the tables, indexes and
statements that read most blocks from outside."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from auditkit.checks.caching._common import (
    frame_rows,
)
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Recommendation,
    Severity,
    Subject,
)

__all__ = ["buffer_cache_findings"]


def buffer_cache_findings(
    frames: Mapping[str, pd.DataFrame], config: AuditConfig | None = None
) -> list[Finding]:
    """PostgreSQL's shared buffers below the bar, naming what reads most from outside them."""
    t = (config or AuditConfig()).thresholds("cache")
    bar = float(t["pg_buffer_min_hit_ratio"])
    basis = next(
        (k for k in ("databases", "tables", "statements") if k in frames and len(frames[k])), None
    )
    if basis is None:
        return []
    df = frames[basis]
    hit, read = float(df["hit"].sum()), float(df["read"].sum())
    if hit + read <= 0:
        return []
    ratio = hit / (hit + read)
    if ratio >= bar:
        return []
    named = []
    tables = frames.get("tables")
    if tables is not None and len(tables):
        worst = tables[tables["read"] > 0].head(3)
        named.append(
            "tables reading most blocks from outside shared buffers: "
            + ", ".join(
                f"{r.table} ({int(r.read):,} blocks, {r.hit_ratio:.1%} hit)"
                for r in frame_rows(worst)
            )
        )
    indexes = frames.get("indexes")
    if indexes is not None and len(indexes):
        worst = indexes[indexes["read"] > 0].head(3)
        if len(worst):
            named.append(
                "indexes: "
                + ", ".join(f"{r.index} ({int(r.read):,} blocks)" for r in frame_rows(worst))
            )
    statements = frames.get("statements")
    fids: tuple[str, ...] = ()
    if statements is not None and len(statements):
        worst = statements[statements["read"] > 0].head(3)
        fids = tuple(str(x) for x in worst["fingerprint_id"])
    source = {
        "databases": "pg_stat_database",
        "tables": "pg_statio_user_tables",
        "statements": "pg_stat_statements",
    }[basis]
    return [
        Finding(
            check="low_cache_hit_ratio",
            severity=Severity.MEDIUM if ratio >= bar - 0.04 else Severity.HIGH,
            title=f"PostgreSQL buffer cache hit ratio {ratio:.1%} (below {bar:.0%})",
            summary=(
                f"{int(read):,} blocks were read from disk or the OS cache for {int(hit):,} found in "
                f"shared buffers ({source}): the working set does not fit in memory."
                + (" " + "; ".join(named) + "." if named else "")
            ),
            subject=Subject(expression="PostgreSQL shared_buffers"),
            metrics={
                "hit_ratio": round(ratio, 4),
                "blocks_hit": int(hit),
                "blocks_read": int(read),
                "threshold": bar,
                "basis": source,
            },
            statements=fids,
            recommendation=Recommendation(
                summary=(
                    "Give PostgreSQL more memory (shared_buffers about a quarter of the machine's "
                    "memory, effective_cache_size about three quarters) or shrink the working set of "
                    "the tables named: indexes that avoid sequential scans, archiving cold rows."
                ),
            ),
            evidence=Evidence(
                strength=EvidenceStrength.STATISTICS, note=f"block counters of {source}"
            ),
            chapter="caching",
        )
    ]
