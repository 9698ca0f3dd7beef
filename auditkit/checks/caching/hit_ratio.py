"""``low_cache_hit_ratio`` over every cache layer: key families, servers and the buffer cache, one
finding per cause (a server's low ratio that the families explain is their symptom)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pandas as pd

from auditkit.analysis.cache import (
    buffer_cache,
    key_families,
    server_snapshots,
    server_summary,
)
from auditkit.analysis.code import CodeMap
from auditkit.checks.caching.buffer_cache import buffer_cache_findings
from auditkit.checks.caching.key_families import key_family_findings
from auditkit.checks.caching.servers import server_findings
from auditkit.config import AuditConfig
from auditkit.findings import (
    Finding,
)

__all__ = ["low_cache_hit_ratio"]


def low_cache_hit_ratio(
    stats: pd.DataFrame,
    config: AuditConfig | None = None,
    statement_stats: pd.DataFrame | None = None,
    *,
    events: pd.DataFrame | None = None,
    statements: pd.DataFrame | None = None,
    code: CodeMap | None = None,
    requests: pd.DataFrame | None = None,
    key_family_stats: pd.DataFrame | None = None,
    buffers: Mapping[str, pd.DataFrame] | None = None,
    total_ms: float | None = None,
    window_s: float | None = None,
    source: str | None = None,
) -> list[Finding]:
    """Every cache layer that misses more than it should, one finding per cause."""
    ev = events if events is not None else pd.DataFrame()
    families = key_families(ev, key_family_stats)
    fam_findings = key_family_findings(
        families,
        ev,
        statements,
        code,
        config,
        requests=requests,
        total_ms=total_ms,
        window_s=window_s,
        source=source,
    )
    servers = server_summary(server_snapshots(stats))
    explaining = [f for f in fam_findings if f.metrics.get("hit_ratio") is not None]
    out = server_findings(servers, families, config, explained=bool(explaining))
    if explaining:
        # the server's low ratio is the families' symptom: it joins the family that misses most
        symptoms = [
            f
            for f in server_findings(servers, families, config)
            if not str(f.subject.expression).startswith("evictions")
        ]
        if symptoms:
            top = max(explaining, key=lambda f: int(f.metrics.get("misses") or 0))
            folded = dataclasses.replace(
                top,
                evidence=dataclasses.replace(
                    top.evidence,
                    symptoms=top.evidence.symptoms
                    + tuple(
                        {"check": s.check, "title": s.title, "summary": s.summary} for s in symptoms
                    ),
                ),
            )
            fam_findings = [folded if f is top else f for f in fam_findings]
    out += fam_findings
    frames = (
        dict(buffers)
        if buffers is not None
        else buffer_cache(
            pd.DataFrame(),
            pd.DataFrame(),
            statement_stats if statement_stats is not None else pd.DataFrame(),
            pd.DataFrame(),
        )
    )
    return out + buffer_cache_findings(frames, config)
