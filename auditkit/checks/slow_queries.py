"""Slow statements: what stands out in the query profile, by time per call or share of the total.

Works on any ``statement_stats`` frame — the workload's profile (:mod:`auditkit.analysis.
workload`) or a ``pg_stat_statements`` export. Thresholds come from the ``slow_query`` family of
:mod:`auditkit.config` (``default``; ``pghero``: ≥ 20 ms mean over ≥ 100 calls). A statement is
reported when its mean reaches ``min_mean_ms`` or its share of all statement time reaches
``min_share`` with at least ``min_share_ms`` in all (and it ran at least ``min_calls`` times); at most ``top`` are reported, by total
time.

A finding's title names what is slow — the statement's kind and its tables, the main one
first — and why, in the report's number style: "Slow SELECT on shop_order: 37 % of all database
time", "Slow UPDATE on pgbench_branches: 148.5 ms per call on average", "Slow COMMIT: …".

A slow statement is a *symptom*: when a root cause explains it (a missing index, an N+1, work
worth caching), :mod:`auditkit.checks.fold` makes it that cause's evidence. Alone, its impact is
the time at stake — all of its time, the most a fix could save — and its severity follows from
that by the shared rule. Findings carry fingerprints, never literal values.

The advice depends on what was sent: a statement whose plan is among the plans received is not
asked for one again; otherwise the plan is asked for in the database's own words —
``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL, ``EXPLAIN ANALYZE`` on MySQL 8 and
``ANALYZE FORMAT=JSON`` on MariaDB.
"""

from __future__ import annotations

import math
import re
from typing import cast

import pandas as pd

from auditkit.analysis.requests import NO_ENDPOINT
from auditkit.checks.severity import of_impact
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Impact,
    Recommendation,
    Subject,
    duration_text,
    percent_text,
    plural,
)
from auditkit.lazy_re import compile_later
from auditkit.sql.analyze import (
    StatementAnalysis,
    WorkloadAnalysis,
    analyze_sql,
)
from auditkit.sql.django_orm import statement_shape
from auditkit.sql.fingerprint import Dialect
from auditkit.sql.statement_kind import is_system_relation

__all__ = ["slow_queries", "slow_statements"]


def _window_s(stats: pd.DataFrame) -> float | None:
    if "first_seen" not in stats or stats["first_seen"].isna().all():
        return None
    span = (stats["last_seen"].max() - stats["first_seen"].min()).total_seconds()
    return span if span > 0 else None


def slow_queries(
    stats: pd.DataFrame,
    config: AuditConfig | None = None,
    endpoints: pd.DataFrame | None = None,
    *,
    source: str = "query log",
    plan_nodes: pd.DataFrame | None = None,
    dialect: str = "postgres",
) -> list[Finding]:
    """Findings for the statements of ``stats`` that stand out. ``endpoints`` is the attribution
    table of :func:`auditkit.analysis.requests.statement_endpoints` (fingerprint → endpoints)."""
    if len(stats) == 0:
        return []
    total = float(pd.to_numeric(stats["total_ms"], errors="coerce").fillna(0).sum())
    return slow_statements(
        stats,
        endpoints,
        config,
        total_ms=total,
        window_s=_window_s(stats),
        source=source,
        plan_nodes=plan_nodes,
        dialect=dialect,
    )


def _planned(plan_nodes: pd.DataFrame | None) -> set[str]:
    """Fingerprint ids of the statements whose plan was sent."""
    if plan_nodes is None or len(plan_nodes) == 0 or "fingerprint_id" not in plan_nodes:
        return set()
    return set(plan_nodes["fingerprint_id"].dropna().astype(str))


def _advice(fingerprint: str, planned: bool, dialect: str) -> Recommendation:
    """What to do with a slow statement no cause explains, in the database's own words."""
    if planned:
        return Recommendation(
            summary=(
                "No cause was found in the data for this statement's time, and its plan, among "
                "the plans received, shows no scan, misestimate or sort the audit flags: the time "
                "comes from how often it runs and how many rows it reads and returns. Check "
                "whether each page needs it (cache it, or fetch fewer rows and columns)."
            )
        )
    if dialect == "mysql":
        return Recommendation(
            summary=(
                "No cause was found in the data for this statement's time. Run it with real values "
                "in place of ? under EXPLAIN ANALYZE (MySQL 8.0.18 and later) or ANALYZE "
                "FORMAT=JSON (MariaDB) — both execute it, so use a replica for writes — look for "
                "full scans (type ALL), filesorts and temporary tables, and send the plan with the "
                "next export so the audit can judge it."
            ),
            sql=(
                f"EXPLAIN ANALYZE\n{fingerprint};\n-- MariaDB: ANALYZE FORMAT=JSON {fingerprint};"
            ),
        )
    return Recommendation(
        summary=(
            "No cause was found in the data for this statement's time. Run it with real values in "
            "place of ? under EXPLAIN (ANALYZE, BUFFERS) — it executes the statement, so use a "
            "replica for writes — look for sequential scans, misestimates and sorts on disk, and "
            "send the plan with the next export so the audit can judge it."
        ),
        sql=f"EXPLAIN (ANALYZE, BUFFERS)\n{fingerprint};",
    )


#: statement kinds a title names by their keyword (anything else is a "statement")
_KEYWORD = compile_later(
    r"select|insert|update|delete|merge|replace|values|call|copy|commit|rollback|begin|create"
    r"|alter|drop|truncate|vacuum|analyze|set|show|explain|load|lock|unlock|flush|do|grant"
    r"|revoke|refresh|reindex|cluster|listen|notify|prepare|execute|deallocate|savepoint|release"
)
#: tables a title names before it counts the rest
_TITLE_TABLES = 2


def _what(fingerprint: str, dialect: str, analysis: StatementAnalysis | None) -> str:
    """What a statement is, for a title: its kind and the tables it reads or writes, the main
    one first ("SELECT on shop_order and shop_customer", "UPDATE on pgbench_branches",
    "COMMIT")."""
    a = analysis if analysis is not None else analyze_sql(fingerprint, cast(Dialect, dialect))
    head = re.match(r"\s*\(*\s*([A-Za-z]+)", fingerprint)
    word = head.group(1).lower() if head else ""
    if a.kind in ("select", "insert", "update", "delete", "merge"):
        kind = a.kind.upper() if word != "replace" else "REPLACE"
    else:
        kind = word.upper() if _KEYWORD.fullmatch(word) else "statement"
    tables = [t for t in a.tables if not is_system_relation(t)]
    if a.ok and tables:
        shape = statement_shape(fingerprint, dialect)
        main = shape.table if shape is not None and shape.table in tables else tables[0]
        tables = [main, *[t for t in tables if t != main]]
    if not tables:
        return kind
    if len(tables) <= _TITLE_TABLES:
        names = " and ".join(tables)
    else:
        names = f"{tables[0]} and {plural(len(tables) - 1, 'other table')}"
    return f"{kind} on {names}"


def slow_statements(
    profile: pd.DataFrame,
    statement_endpoints: pd.DataFrame | None,
    config: AuditConfig | None = None,
    *,
    total_ms: float | None = None,
    window_s: float | None = None,
    source: str | None = None,
    plan_nodes: pd.DataFrame | None = None,
    dialect: str = "postgres",
    analysis: WorkloadAnalysis | None = None,
) -> list[Finding]:
    """``slow_query`` findings over the workload's profile (see the module docstring).
    ``plan_nodes`` are the plans received (none is asked for again); ``dialect`` words the
    EXPLAIN advice (``postgres`` or ``mysql``). Titles name the statement's kind and tables
    ("Slow SELECT on shop_order: 37 % of all database time"), from ``analysis`` (the workload
    parsed once) when given."""
    planned = _planned(plan_nodes)
    cfg = config or AuditConfig()
    t = cfg.thresholds("slow_query")
    if len(profile) == 0:
        return []
    df = profile.copy()
    grand = total_ms or float(df["total_ms"].sum())
    share = df["total_ms"] / grand if grand else pd.Series(0.0, index=df.index)
    df = df.assign(share_of_total=share)
    mean = pd.to_numeric(df["mean_ms"], errors="coerce")
    min_share = math.inf if t["min_share"] is None else t["min_share"]
    material = df["total_ms"] >= t.get("min_share_ms", 0.0)
    picked = df[
        ((mean >= t["min_mean_ms"]) | ((df["share_of_total"] >= min_share) & material))
        & (df["calls"] >= t["min_calls"])
    ]
    picked = picked.sort_values("total_ms", ascending=False).head(int(t["top"]))
    strength = (
        EvidenceStrength.STATISTICS if source == "pg_stat_statements" else EvidenceStrength.PATTERN
    )
    out = []
    for row in picked.itertuples(index=False):
        r = row._asdict()
        m, sh, calls = float(r["mean_ms"]), float(r["share_of_total"]), int(r["calls"])
        where: list[str] = []
        requests = None
        if statement_endpoints is not None and len(statement_endpoints):
            e = statement_endpoints[
                (statement_endpoints["fingerprint_id"] == r["fingerprint_id"])
                & (statement_endpoints["endpoint"].astype("string") != NO_ENDPOINT).fillna(False)
            ]
            where = [f"{x.endpoint} ({int(x.calls):,} calls)" for x in e.head(3).itertuples()]
            if "requests" in e and e["requests"].notna().any():
                requests = int(e["requests"].sum())
        why = []
        if m >= t["min_mean_ms"]:
            why.append(f"{m:,.1f} ms per call on average")
        if sh >= min_share:
            why.append(f"{percent_text(sh)} of all database time")
        impact = Impact.of(
            float(r["total_ms"]),
            grand,
            window_s=window_s,
            requests=requests,
            source=source,
            basis="at stake",
        )
        fid = str(r["fingerprint_id"])
        what = _what(
            str(r["fingerprint"]),
            dialect,
            analysis.statements.get(fid) if analysis is not None else None,
        )
        out.append(
            Finding(
                check="slow_query",
                severity=of_impact(impact, cfg),
                title=f"Slow {what}: {why[0]}" if why else f"Slow {what}",
                summary=(
                    f"Ran {plural(calls, 'time')}, {duration_text(float(r['total_ms']))} in total: "
                    + " and ".join(why)
                    + (f". Issued by {', '.join(where)}." if where else ".")
                ),
                subject=Subject(
                    fingerprint=str(r["fingerprint"]), fingerprint_id=str(r["fingerprint_id"])
                ),
                metrics={
                    "calls": calls,
                    "total_ms": round(float(r["total_ms"]), 3),
                    "share": round(sh, 4),
                    "mean_ms": round(m, 3),
                    "p95_ms": None if pd.isna(r.get("p95_ms")) else round(float(r["p95_ms"]), 3),
                    "max_ms": None if pd.isna(r.get("max_ms")) else round(float(r["max_ms"]), 3),
                    "rows": None if pd.isna(r.get("rows")) else int(r["rows"]),
                    "rank": None if pd.isna(r.get("rank")) else int(r["rank"]),
                },
                recommendation=_advice(
                    str(r["fingerprint"]), str(r["fingerprint_id"]) in planned, dialect
                ),
                evidence=Evidence(
                    strength=strength,
                    items=({"fingerprint_id": str(r["fingerprint_id"]), "source": source},),
                ),
                impact=impact,
                chapter="queries",
                statements=(str(r["fingerprint_id"]),),
                action=None,
            )
        )
    return out
