"""Plan checks: what a query plan says about a statement, node by node.

Pure functions over the ``plan_nodes`` frame (any source: PostgreSQL EXPLAIN in any format,
auto_explain, MySQL and MariaDB plans). Each flag is one function, listed in :data:`PLAN_CHECKS`
in the order they run, returning ``plan_<flag>`` findings that point at the node (``plan_id``,
``node_id``, source file and line) and at the statement (its fingerprint):

================== =============================================================================
check              a node is flagged when
================== =============================================================================
plan_time_share    its exclusive time is at least a band of the plan's time (10/40/90 %)
plan_misestimate   actual rows differ from the estimate by a band factor (10×/100×/1000×)
plan_rows_removed  its filter removes a band fraction of the rows it reads (50/90 %)
plan_hash_batches  a hash spilled into more than ``hash_batches`` batches
plan_sort_disk     a sort ran on disk (external sort / merge)
plan_heap_fetches  an index-only scan still fetched many heap rows
plan_nested_loop   the inner side of a nested loop ran a band number of times
plan_seq_scan      a sequential scan read a band number of rows (with a filter, or very many)
================== =============================================================================

Bands and limits are the ``plan`` family of :mod:`auditkit.config` (from PEV2 and
explain.depesz.com); three bands map to low/medium/high severity, two to low/medium (rows
removed) or medium/high (loops, rows read). Nodes faster than ``min_node_ms`` (exclusive time,
all loops) are not reported for time-based flags. A plan without timing (EXPLAIN without
ANALYZE) is judged on costs where ``use_cost_without_timing`` allows, with evidence of strength
``statistics``; a measured plan's evidence is ``validated``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

import pandas as pd

from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Recommendation,
    Severity,
    Subject,
    plural,
)

__all__ = [
    "PLAN_CHECKS",
    "plan_checks",
    "plan_hash_batches",
    "plan_heap_fetches",
    "plan_misestimate",
    "plan_nested_loop",
    "plan_rows_removed",
    "plan_seq_scan",
    "plan_sort_disk",
    "plan_time_share",
]


# --------------------------------------------------------------------------------------------
# one plan, prepared
# --------------------------------------------------------------------------------------------
def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``df`` as dicts keyed by column name."""
    return cast(list[dict[str, Any]], df.to_dict("records"))


def _f(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _s(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


@dataclass
class _Plan:
    """One plan's nodes with what every check needs: total time, exclusive time or cost."""

    plan_id: str
    nodes: list[dict[str, Any]]
    timed: bool
    total: float  # total time (ms) when timed, else root total cost
    statement: str | None
    fingerprint: str | None
    fingerprint_id: str | None
    children: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def weight(self, node: Mapping[str, Any]) -> float | None:
        """Exclusive time (all loops, ms) when timed, else exclusive cost."""
        if self.timed:
            return _f(node.get("exclusive_ms"))
        cost = _f(node.get("total_cost"))
        if cost is None:
            return None
        kids = sum(
            _f(c.get("total_cost")) or 0.0 for c in self.children.get(int(node["node_id"]), [])
        )
        return max(cost - kids, 0.0)


def _plans(plan_nodes: pd.DataFrame) -> list[_Plan]:
    from auditkit.sql.fingerprint import fingerprint, fingerprint_id

    out: list[_Plan] = []
    if len(plan_nodes) == 0:
        return out
    # one conversion of the whole frame: per-plan to_dict is slow on wide frames
    grouped: dict[str, list[dict[str, Any]]] = {}
    for rec in _records(plan_nodes):
        grouped.setdefault(str(rec["plan_id"]), []).append(rec)
    for plan_id, recs in grouped.items():
        nodes = sorted(recs, key=lambda r: int(r["node_id"]))
        children: dict[int, list[dict[str, Any]]] = {}
        for n in nodes:
            parent = n.get("parent_id")
            if (
                parent is not None
                and parent is not pd.NA
                and not (isinstance(parent, float) and math.isnan(parent))
            ):
                children.setdefault(int(parent), []).append(n)
        root = nodes[0]
        timed = any(_f(n.get("actual_total_ms")) is not None for n in nodes)
        if timed:
            execution = _f(root.get("execution_ms"))
            total = execution or (_f(root.get("actual_total_ms")) or 0.0) * (
                _f(root.get("loops")) or 1.0
            )
            if not total:
                total = sum(_f(n.get("exclusive_ms")) or 0.0 for n in nodes)
        else:
            total = _f(root.get("total_cost")) or 0.0
        statement = next((_s(n.get("statement")) for n in nodes if _s(n.get("statement"))), None)
        fp = fingerprint(statement) if statement else None
        out.append(
            _Plan(
                str(plan_id),
                nodes,
                timed,
                total,
                statement,
                fp,
                fingerprint_id(fp) if fp else None,
                children,
            )
        )
    return out


def _band(
    value: float, bands: Iterable[float], severities: tuple[Severity, ...]
) -> Severity | None:
    """The severity of the highest band ``value`` reaches (None below the first)."""
    sev = None
    for limit, s in zip(bands, severities, strict=False):
        if value >= limit:
            sev = s
    return sev


_LMH = (Severity.LOW, Severity.MEDIUM, Severity.HIGH)
_LM = (Severity.LOW, Severity.MEDIUM)
_MH = (Severity.MEDIUM, Severity.HIGH)


def _as_tuple(v: Any) -> tuple[float, ...]:
    return tuple(float(x) for x in v) if isinstance(v, list | tuple) else (float(v),)


def _finding(
    check: str,
    plan: _Plan,
    node: Mapping[str, Any],
    severity: Severity,
    title: str,
    summary: str,
    metrics: Mapping[str, Any],
    recommendation: Recommendation,
) -> Finding:
    node_id = int(node["node_id"])
    node_type = _s(node.get("node_type")) or "?"
    item = {
        "plan_id": plan.plan_id,
        "node_id": node_id,
        "node_type": node_type,
        "relation": _s(node.get("relation")),
        "index_name": _s(node.get("index_name")),
        "filter": (_s(node.get("filter")) or "")[:300] or None,
        "index_cond": (_s(node.get("index_cond")) or "")[:300] or None,
        "sort_key": (_s(node.get("sort_key")) or "")[:300] or None,
        "exclusive_ms": _f(node.get("exclusive_ms")),
        "plan_total": round(plan.total, 3) if plan.total else None,
        "timed": plan.timed,
        "source_file": _s(node.get("source_file")),
        "source_line": _f(node.get("source_line")),
    }
    return Finding(
        check=check,
        severity=severity,
        title=title,
        summary=summary,
        subject=Subject(
            table=_s(node.get("relation")),
            index=_s(node.get("index_name")),
            expression=f"node {node_id}: {node_type}",
            fingerprint=plan.fingerprint,
            fingerprint_id=plan.fingerprint_id,
            file=_s(node.get("source_file")),
        ),
        metrics={"plan_id": plan.plan_id, "node_id": node_id, "node_type": node_type, **metrics},
        recommendation=recommendation,
        evidence=Evidence(
            EvidenceStrength.VALIDATED if plan.timed else EvidenceStrength.STATISTICS,
            ({k: v for k, v in item.items() if v is not None},),
            note=None if plan.timed else "plan without timing: estimates and costs only",
        ),
        chapter="indexing",
        statements=(plan.fingerprint_id,) if plan.fingerprint_id else (),
    )


def _where(node: Mapping[str, Any]) -> str:
    rel = _s(node.get("relation"))
    idx = _s(node.get("index_name"))
    text = _s(node.get("node_type")) or "node"
    if idx:
        text += f" using {idx}"
    if rel:
        text += f" on {rel}"
    return text


def _under_limit(plan: _Plan) -> set[int]:
    """Ids of Limit nodes and of every node below one."""
    out: set[int] = set()

    def mark(node_id: int) -> None:
        out.add(node_id)
        for child in plan.children.get(node_id, []):
            mark(int(child["node_id"]))

    for n in plan.nodes:
        if (_s(n.get("node_type")) or "") == "Limit":
            mark(int(n["node_id"]))
    return out


def _fast(plan: _Plan, node: Mapping[str, Any], t: Mapping[str, Any]) -> bool:
    """True for a timed node below ``min_node_ms`` (not worth a time-based finding)."""
    if not plan.timed:
        return False
    w = plan.weight(node)
    return w is not None and w < float(t["min_node_ms"])


# --------------------------------------------------------------------------------------------
# the checks, one per flag
# --------------------------------------------------------------------------------------------
def plan_time_share(plan: _Plan, t: Mapping[str, Any]) -> list[Finding]:
    """The node that takes the largest share of the plan's time (or cost): where to look first.

    One finding per plan, for its heaviest node, when that node reaches the first band; the
    runner-up nodes are named in the summary.
    """
    if (
        not plan.total
        or len(plan.nodes) < 2
        or (not plan.timed and not t["use_cost_without_timing"])
    ):
        return []
    weighed = [
        (w, n) for n in plan.nodes if (w := plan.weight(n)) is not None and not _fast(plan, n, t)
    ]
    if not weighed:
        return []
    weighed.sort(key=lambda wn: -wn[0])
    w, node = weighed[0]
    share = w / plan.total
    sev = _band(share, _as_tuple(t["time_share"]), _LMH)
    if sev is None:
        return []
    unit = "ms" if plan.timed else "cost units"
    others = ", ".join(
        f"{_where(n)} {v / plan.total:.0%}" for v, n in weighed[1:3] if v / plan.total >= 0.05
    )
    return [
        _finding(
            "plan_time_share",
            plan,
            node,
            sev,
            f"{_where(node)} takes {share:.0%} of the plan",
            f"{_where(node)} accounts for {w:,.1f} {unit} of {plan.total:,.1f} {unit} ({share:.0%}) in plan {plan.plan_id}: "
            "this is where to look first." + (f" Next: {others}." if others else ""),
            {
                "share": round(share, 4),
                "exclusive": round(w, 3),
                "plan_total": round(plan.total, 3),
                "timed": plan.timed,
            },
            Recommendation(
                "Work on this node first: the other flags on it (scans, estimates, spills) say how."
            ),
        )
    ]


def plan_misestimate(plan: _Plan, t: Mapping[str, Any]) -> list[Finding]:
    """Nodes whose actual rows (per loop) differ from the planner's estimate by a band factor."""
    if not plan.timed:
        return []
    limited = _under_limit(plan)
    out = []
    for node in plan.nodes:
        if node.get("never_executed") is True:
            continue
        est, act = _f(node.get("plan_rows")), _f(node.get("actual_rows"))
        if est is None or act is None:
            continue
        factor = max(act, 1.0) / max(est, 1.0)
        under = factor >= 1
        if not under and int(node["node_id"]) in limited:
            continue  # a LIMIT stopped the node early: fewer rows than planned is expected
        factor = factor if under else 1 / factor
        sev = _band(factor, _as_tuple(t["misestimate"]), _LMH)
        if sev is None:
            continue
        rel = _s(node.get("relation"))
        what = "under-estimated" if under else "over-estimated"
        sql = f'ANALYZE "{rel}";' if rel else None
        out.append(
            _finding(
                "plan_misestimate",
                plan,
                node,
                sev,
                f"{_where(node)}: rows {what} {factor:,.0f}×",
                f"The planner expected {plural(est, 'row')} per loop from {_where(node)} and got {act:,.0f} "
                f"({factor:,.0f}× {what}); plans built on such estimates pick the wrong join and scan methods.",
                {
                    "plan_rows": est,
                    "actual_rows": act,
                    "factor": round(factor, 1),
                    "direction": "under" if under else "over",
                },
                Recommendation(
                    "Refresh statistics (ANALYZE); if estimates stay wrong, raise the column's statistics target "
                    "(ALTER TABLE … ALTER COLUMN … SET STATISTICS 1000) or add extended statistics for correlated "
                    "columns (CREATE STATISTICS … (dependencies, ndistinct) ON a, b FROM t).",
                    sql=sql,
                ),
            )
        )
    return out


def plan_rows_removed(plan: _Plan, t: Mapping[str, Any]) -> list[Finding]:
    """Nodes that read many rows only to discard most of them with their filter."""
    out = []
    bands = _as_tuple(t["rows_removed"])
    for node in plan.nodes:
        removed, kept = _f(node.get("rows_removed_by_filter")), _f(node.get("actual_rows"))
        if removed is None or kept is None or removed <= 0 or _fast(plan, node, t):
            continue
        loops = _f(node.get("loops")) or 1.0
        frac = removed / (removed + kept)
        sev = _band(frac, bands, _LM)
        if sev is None or removed * loops < 100:
            continue
        filt = _s(node.get("filter")) or "its filter"
        out.append(
            _finding(
                "plan_rows_removed",
                plan,
                node,
                sev,
                f"{_where(node)} discards {frac:.0%} of the rows it reads",
                f"{_where(node)} read {plural((removed + kept) * loops, 'row')} and its filter removed "
                f"{removed * loops:,.0f} of them ({frac:.0%}).",
                {
                    "rows_removed": removed * loops,
                    "rows_kept": kept * loops,
                    "fraction": round(frac, 4),
                    "filter": filt[:300],
                },
                Recommendation(
                    "An index whose leading columns are the filter's columns lets the database read only the rows it "
                    "keeps (see the missing_index findings for this table)."
                ),
            )
        )
    return out


_DEFAULT_WORK_MEM = "SET LOCAL work_mem = '64MB';"


def plan_hash_batches(plan: _Plan, t: Mapping[str, Any]) -> list[Finding]:
    """Hash nodes that spilled to disk in several batches."""
    out = []
    for node in plan.nodes:
        batches = _f(node.get("hash_batches"))
        if batches is None or batches <= float(t["hash_batches"]):
            continue
        original = _f(node.get("original_hash_batches"))
        peak = _f(node.get("peak_memory_kb"))
        grew = original is not None and original < batches
        sev = Severity.MEDIUM if batches >= 8 or grew else Severity.LOW
        need_mb = math.ceil((peak or 0) * batches / 1024) if peak else None
        sql = f"SET LOCAL work_mem = '{max(need_mb, 8)}MB';" if need_mb else None
        out.append(
            _finding(
                "plan_hash_batches",
                plan,
                node,
                sev,
                f"{_where(node)} spilled to disk in {batches:.0f} batches",
                f"The hash table did not fit in work_mem and was split into {batches:.0f} batches"
                + (f" (planned {original:.0f}: the estimate was too low)" if grew else "")
                + "; each extra batch writes and re-reads part of both inputs.",
                {
                    "hash_batches": batches,
                    "original_hash_batches": original,
                    "peak_memory_kb": peak,
                },
                Recommendation(
                    "Raise work_mem for this statement only (SET LOCAL inside its transaction; in Django run it with "
                    "connection.cursor() inside transaction.atomic()), or reduce the rows hashed with a more selective "
                    "predicate. Fix row misestimates on the hashed side first.",
                    sql=sql,
                    django=(
                        "from django.db import connection, transaction\n\nwith transaction.atomic():\n"
                        "    with connection.cursor() as cursor:\n"
                        f"        cursor.execute({(sql or _DEFAULT_WORK_MEM).rstrip(';')!r})\n"
                        "    ...  # the query, in the same transaction"
                    ),
                ),
            )
        )
    return out


def plan_sort_disk(plan: _Plan, t: Mapping[str, Any]) -> list[Finding]:
    """Sorts that spilled to disk (external sort or merge)."""
    out = []
    for node in plan.nodes:
        method = (_s(node.get("sort_method")) or "").lower()
        space_type = (_s(node.get("sort_space_type")) or "").lower()
        if "external" not in method and space_type != "disk":
            continue
        kb = _f(node.get("sort_space_kb"))
        mb = math.ceil(kb * 2 / 1024) if kb else None
        sev = (
            Severity.MEDIUM if (kb or 0) >= 64 * 1024 or not _fast(plan, node, t) else Severity.LOW
        )
        out.append(
            _finding(
                "plan_sort_disk",
                plan,
                node,
                sev,
                f"{_where(node)} sorted on disk" + (f" ({kb / 1024:,.1f} MB)" if kb else ""),
                f"The sort used {_s(node.get('sort_method')) or 'an external sort'}"
                + (f" with {kb:,.0f} kB on disk" if kb else "")
                + ": it did not fit in work_mem.",
                {
                    "sort_method": _s(node.get("sort_method")),
                    "sort_space_kb": kb,
                    "sort_key": _s(node.get("sort_key")),
                },
                Recommendation(
                    "An index providing the sort order removes the sort (ORDER BY columns after the equality columns); "
                    "otherwise raise work_mem for this statement (SET LOCAL) to about twice the disk space used.",
                    sql=f"SET LOCAL work_mem = '{max(mb, 8)}MB';" if mb else None,
                ),
            )
        )
    return out


def plan_heap_fetches(plan: _Plan, t: Mapping[str, Any]) -> list[Finding]:
    """Index-only scans that still visit the heap (visibility map not up to date)."""
    out = []
    for node in plan.nodes:
        fetches = _f(node.get("heap_fetches"))
        if fetches is None or "Index Only Scan" not in (_s(node.get("node_type")) or ""):
            continue
        loops = _f(node.get("loops")) or 1.0
        rows = (_f(node.get("actual_rows")) or 0.0) * loops
        total = fetches * (loops if fetches < rows else 1.0)
        if total < float(t["heap_fetches"]) or (
            rows and total < float(t["heap_fetches_ratio"]) * rows
        ):
            continue
        rel = _s(node.get("relation"))
        out.append(
            _finding(
                "plan_heap_fetches",
                plan,
                node,
                Severity.MEDIUM if rows and total >= 0.5 * rows else Severity.LOW,
                f"{_where(node)} fetched {total:,.0f} heap rows",
                f"The index-only scan returned {plural(rows, 'row')} but had to visit the table for {total:,.0f} of them: "
                "the visibility map is stale, so the index-only scan is barely cheaper than an index scan.",
                {"heap_fetches": total, "rows": rows},
                Recommendation(
                    "VACUUM the table, and make autovacuum visit it more often (lower autovacuum_vacuum_scale_factor "
                    "or autovacuum_vacuum_insert_scale_factor for this table).",
                    sql=(
                        f'VACUUM (ANALYZE) "{rel}";\nALTER TABLE "{rel}" SET (autovacuum_vacuum_scale_factor = 0.02);'
                        if rel
                        else None
                    ),
                ),
            )
        )
    return out


def plan_nested_loop(plan: _Plan, t: Mapping[str, Any]) -> list[Finding]:
    """Nested loops whose inner side ran a very large number of times."""
    out = []
    bands = _as_tuple(t["nested_loop_loops"])
    for node in plan.nodes:
        if "Nested Loop" not in (_s(node.get("node_type")) or ""):
            continue
        kids = plan.children.get(int(node["node_id"]), [])
        if len(kids) < 2:
            continue
        inner = next(
            (k for k in kids if (_s(k.get("parent_relationship")) or "") == "Inner"), kids[-1]
        )
        loops = _f(inner.get("loops"))
        if loops is None:
            outer_rows = _f(kids[0].get("plan_rows"))
            loops = outer_rows if not plan.timed else None
        if loops is None:
            continue
        sev = _band(loops, bands, _MH)
        if sev is None:
            continue
        inner_what = _where(inner)
        out.append(
            _finding(
                "plan_nested_loop",
                plan,
                node,
                sev,
                f"Nested loop ran {inner_what} {loops:,.0f} times",
                f"The inner side ({inner_what}) of the nested loop ran {loops:,.0f} times, once per outer row. "
                "Each run is cheap; the count is not.",
                {
                    "inner_loops": loops,
                    "inner_node_id": int(inner["node_id"]),
                    "inner_node_type": _s(inner.get("node_type")),
                },
                Recommendation(
                    "If the inner side is a scan without an index on the join key, add that index; if the outer row count "
                    "was under-estimated, fix the statistics so the planner picks a hash join. In Django, a loop issuing "
                    "one query per row is the same shape one level up (see the N+1 findings)."
                ),
            )
        )
    return out


def plan_seq_scan(plan: _Plan, t: Mapping[str, Any]) -> list[Finding]:
    """Sequential scans of large tables, usually with a selective filter."""
    out = []
    bands = _as_tuple(t["seq_scan_rows"])
    for node in plan.nodes:
        if "Seq Scan" not in (_s(node.get("node_type")) or ""):
            continue
        loops = _f(node.get("loops")) or 1.0
        if plan.timed:
            kept = _f(node.get("actual_rows")) or 0.0
            read = (kept + (_f(node.get("rows_removed_by_filter")) or 0.0)) * loops
        else:
            kept = _f(node.get("plan_rows")) or 0.0
            read = kept * loops
        filt = _s(node.get("filter"))
        sev = _band(read, bands, _MH)
        if sev is None or (not filt and read < bands[-1]) or _fast(plan, node, t):
            continue
        selective = filt and read and kept * loops / read < 0.1
        out.append(
            _finding(
                "plan_seq_scan",
                plan,
                node,
                sev,
                f"Sequential scan of {_s(node.get('relation')) or 'a table'} reading {read:,.0f} rows",
                f"{_where(node)} read {plural(read, 'row')}"
                + (f" to keep {kept * loops:,.0f} with its filter" if filt else "")
                + (" — a selective filter that an index could serve." if selective else "."),
                {
                    "rows_read": read,
                    "rows_kept": kept * loops,
                    "filter": (filt or "")[:300],
                    "loops": loops,
                },
                Recommendation(
                    "Index the filter's columns (see the missing_index findings for this table), or, for a full read "
                    "that is needed, make sure it is not repeated per request."
                ),
            )
        )
    return out


#: every plan check, in the order they run
PLAN_CHECKS: tuple[Callable[[_Plan, Mapping[str, Any]], list[Finding]], ...] = (
    plan_time_share,
    plan_misestimate,
    plan_rows_removed,
    plan_hash_batches,
    plan_sort_disk,
    plan_heap_fetches,
    plan_nested_loop,
    plan_seq_scan,
)


def _shape(plan: _Plan) -> tuple[Any, ...]:
    """What makes two captures the same plan: the statement and the nodes, without timings."""
    return (
        plan.fingerprint,
        tuple(
            (
                _s(n.get("node_type")),
                _s(n.get("relation")),
                _s(n.get("index_name")),
                _f(n.get("plan_rows")),
            )
            for n in plan.nodes
        ),
    )


def _with_twins(f: Finding, twins: list[str]) -> Finding:
    if not twins:
        return f
    note = f"the same plan was also captured as {', '.join(twins[:5])}"
    ev = replace(f.evidence, note=f"{f.evidence.note}; {note}" if f.evidence.note else note)
    return replace(f, evidence=ev, metrics={**f.metrics, "plans_alike": 1 + len(twins)})


def plan_checks(
    plan_nodes: pd.DataFrame,
    config: AuditConfig | None = None,
    *,
    checks: Iterable[Callable[[_Plan, Mapping[str, Any]], list[Finding]]] = PLAN_CHECKS,
) -> list[Finding]:
    """Every ``plan_<flag>`` finding of every plan in ``plan_nodes``, most severe first."""
    cfg = config or AuditConfig()
    t = cfg.thresholds("plan")
    out: list[Finding] = []
    alike: dict[tuple[Any, ...], list[str]] = {}
    for plan in _plans(plan_nodes):
        # the same plan captured twice (two formats, two runs) is judged once
        shape = _shape(plan)
        alike.setdefault(shape, []).append(plan.plan_id)
        if len(alike[shape]) > 1:
            continue
        for check in checks:
            out += check(plan, t)
    twins = {ids[0]: ids[1:] for ids in alike.values() if len(ids) > 1}
    if twins:
        out = [_with_twins(f, twins.get(str(f.metrics.get("plan_id")), [])) for f in out]
    return sorted(out, key=lambda f: (-int(f.severity), f.check, f.title))
