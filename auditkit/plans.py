"""Reading plan frames: one line per plan, and two plans of one statement side by side.

Both functions take ``plan_nodes`` frames (any dialect) as the EXPLAIN loaders return them:

* :func:`plan_summary` — one row per plan: what it is (root node, statement), how big
  (nodes, cost, rows), how long (total, planning, execution time), where the time goes
  (the node with the most exclusive time) and what it reads (tables, indexes);
* :func:`compare_plans` — a before/after view of two plans of the same statement, as an
  index change produces: per table, how it is read (node types, index), rows and cost and
  time on each side; per operation (sort, hash join, aggregate…), how many and how long;
  and the plan as a whole. The index advisor uses it to show what a new index changes.

Example::

    >>> from auditkit import load
    >>> before = load("before.json").frame                      # doctest: +SKIP
    >>> after = load("after.json").frame                        # doctest: +SKIP
    >>> compare_plans(before, after)[["item", "a_access", "b_access", "cost_change"]]  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, cast

import pandas as pd

from auditkit.errors import ConfigError
from auditkit.sql.fingerprint import fingerprint

__all__ = ["COMPARE_COLUMNS", "SUMMARY_COLUMNS", "compare_plans", "plan_summary"]

#: columns of :func:`plan_summary`, in order
SUMMARY_COLUMNS = (
    "plan_id",
    "dialect",
    "plan_format",
    "statement",
    "fingerprint_id",
    "root_node_type",
    "root_label",
    "node_count",
    "total_cost",
    "plan_rows",
    "actual_rows",
    "total_ms",
    "planning_ms",
    "execution_ms",
    "slowest_node_id",
    "slowest_node",
    "slowest_exclusive_ms",
    "relations",
    "indexes",
    "source_file",
    "source_line",
)

#: columns of :func:`compare_plans`, in order
COMPARE_COLUMNS = (
    "item_type",
    "item",
    "a_access",
    "b_access",
    "a_index",
    "b_index",
    "a_count",
    "b_count",
    "a_rows",
    "b_rows",
    "rows_change",
    "a_cost",
    "b_cost",
    "cost_change",
    "a_ms",
    "b_ms",
    "time_change_ms",
    "changed",
)


def _value(row: pd.Series, column: str) -> Any:
    value = row.get(column) if column in row.index else None
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _join(values: Iterable[Any]) -> str | None:
    seen: list[str] = []
    for v in values:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            continue
        s = str(v)
        if s not in seen:
            seen.append(s)
    return ", ".join(seen) if seen else None


def _top_level(g: pd.DataFrame) -> pd.DataFrame:
    return g[g["parent_id"].isna()]


def _sum_or_none(values: pd.Series) -> float | None:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return float(numbers.sum()) if len(numbers) else None


def plan_summary(nodes: pd.DataFrame) -> pd.DataFrame:
    """One row per plan of a ``plan_nodes`` frame (see :data:`SUMMARY_COLUMNS`).

    ``total_ms`` is the execution time the server reported when it did, else the root's
    inclusive time (for MySQL's and SQLite's flat plans, the top-level nodes' summed);
    ``slowest_node`` names the node with the largest ``exclusive_ms``; ``relations`` and
    ``indexes`` list the tables and indexes the plan reads, in plan order.
    """
    rows: list[dict[str, Any]] = []
    if len(nodes) == 0:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    for plan_id, g in nodes.groupby("plan_id", sort=False):
        g = g.sort_values("node_id")
        root = g.iloc[0]
        tops = _top_level(g)
        execution = _value(root, "execution_ms")
        inclusive = _sum_or_none(tops["inclusive_ms"]) if "inclusive_ms" in g else None
        excl = pd.to_numeric(g["exclusive_ms"], errors="coerce")
        slowest: pd.Series | None = (
            g.iloc[int(excl.fillna(float("-inf")).to_numpy().argmax())]
            if excl.notna().any()
            else None
        )
        rows.append(
            {
                "plan_id": plan_id,
                "dialect": _value(root, "dialect"),
                "plan_format": _value(root, "plan_format"),
                "statement": _value(root, "statement"),
                "fingerprint_id": _value(root, "fingerprint_id"),
                "root_node_type": _value(root, "node_type"),
                "root_label": _value(root, "label") or _value(root, "node_type"),
                "node_count": len(g),
                "total_cost": _sum_or_none(tops["total_cost"]),
                "plan_rows": _value(root, "plan_rows"),
                "actual_rows": _value(root, "actual_rows"),
                "total_ms": execution if execution is not None else inclusive,
                "planning_ms": _value(root, "planning_ms"),
                "execution_ms": execution,
                "slowest_node_id": None if slowest is None else int(slowest["node_id"]),
                "slowest_node": None if slowest is None else _describe(slowest),
                "slowest_exclusive_ms": None if slowest is None else float(slowest["exclusive_ms"]),
                "relations": _join(g["relation"]),
                "indexes": _join(g["index_name"]),
                "source_file": _value(root, "source_file"),
                "source_line": _value(root, "source_line"),
            }
        )
    out = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    for col in ("node_count", "slowest_node_id", "source_line"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("Int64")
    for col in (
        "total_cost",
        "plan_rows",
        "actual_rows",
        "total_ms",
        "planning_ms",
        "execution_ms",
        "slowest_exclusive_ms",
    ):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    return out


def _describe(node: pd.Series) -> str:
    label = _value(node, "label") or _value(node, "node_type")
    relation = _value(node, "relation")
    index = _value(node, "index_name")
    text = str(label)
    if relation and str(relation) not in text:
        text += f" on {relation}"
    if index and str(index) not in text:
        text += f" using {index}"
    return text


def _one_plan(nodes: pd.DataFrame, name: str) -> pd.DataFrame:
    if len(nodes) == 0:
        raise ConfigError(
            f"compare_plans: plan {name} is empty", hint="pass the plan_nodes rows of one plan"
        )
    ids = nodes["plan_id"].unique()
    if len(ids) != 1:
        raise ConfigError(
            f"compare_plans: plan {name} holds {len(ids)} plans ({', '.join(map(str, ids[:3]))}…)",
            hint="select one plan first, e.g. nodes[nodes.plan_id == '…#1']",
        )
    return nodes.sort_values("node_id").reset_index(drop=True)


def _rows_out(node: pd.Series) -> float | None:
    """Rows a node produced over all loops (actual when analyzed, else the estimate)."""
    actual = _value(node, "actual_rows")
    loops = _value(node, "loops")
    if actual is not None:
        return float(actual) * (float(loops) if loops is not None else 1.0)
    planned = _value(node, "plan_rows")
    return float(planned) if planned is not None else None


def _table_of(nodes: pd.DataFrame) -> dict[int, str]:
    """node_id → the table it reads: its own relation, or (index-only nodes such as Bitmap
    Index Scan) the nearest ancestor's."""
    by_id = nodes.set_index("node_id")
    out: dict[int, str] = {}
    for _, node in nodes.iterrows():
        relation = _value(node, "relation")
        if relation is None and _value(node, "index_name") is not None:
            parent = _value(node, "parent_id")
            while parent is not None and relation is None:
                p = cast(pd.Series, by_id.loc[int(parent)])
                relation = _value(p, "relation")
                parent = _value(p, "parent_id")
        if relation is not None:
            out[int(node["node_id"])] = str(relation)
    return out


def _relations(nodes: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per table: the nodes that read it and, from the topmost of them, rows and cost."""
    tables = _table_of(nodes)
    groups: dict[str, list[pd.Series]] = {}
    for _, node in nodes.iterrows():
        table = tables.get(int(node["node_id"]))
        if table is not None:
            groups.setdefault(table, []).append(node)
    result: dict[str, dict[str, Any]] = {}
    for table, group in groups.items():
        # the nodes reading this table whose parent does not: a Bitmap Heap Scan, not its index scan
        tops = [n for n in group if tables.get(int(_value(n, "parent_id") or -1)) != table]
        result[table] = {
            "access": " + ".join(str(_value(n, "label") or _value(n, "node_type")) for n in group),
            "index": _join(_value(n, "index_name") for n in group),
            "count": len(tops),
            "rows": _sum_optional(_rows_out(n) for n in tops),
            "cost": _sum_optional(_value(n, "total_cost") for n in tops),
            "ms": _sum_optional(_value(n, "exclusive_ms") for n in group),
        }
    return result


def _sum_optional(values: Iterable[Any]) -> float | None:
    numbers = [
        float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))
    ]
    return sum(numbers) if numbers else None


def _operations(nodes: pd.DataFrame, tables: dict[int, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for _, node in nodes.iterrows():
        if int(node["node_id"]) in tables:
            continue
        name = str(_value(node, "label") or _value(node, "node_type"))
        entry = out.setdefault(name, {"count": 0, "rows": [], "cost": [], "ms": []})
        entry["count"] += 1
        entry["rows"].append(_rows_out(node))
        entry["cost"].append(_value(node, "total_cost"))
        entry["ms"].append(_value(node, "exclusive_ms"))
    return {
        k: {
            "count": v["count"],
            "rows": _sum_optional(v["rows"]),
            "cost": _sum_optional(v["cost"]),
            "ms": _sum_optional(v["ms"]),
        }
        for k, v in out.items()
    }


def _change(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _row(
    item_type: str, item: str, a: dict[str, Any] | None, b: dict[str, Any] | None
) -> dict[str, Any]:
    a = a or {}
    b = b or {}
    row = {
        "item_type": item_type,
        "item": item,
        "a_access": a.get("access"),
        "b_access": b.get("access"),
        "a_index": a.get("index"),
        "b_index": b.get("index"),
        "a_count": a.get("count", 0),
        "b_count": b.get("count", 0),
        "a_rows": a.get("rows"),
        "b_rows": b.get("rows"),
        "rows_change": _change(a.get("rows"), b.get("rows")),
        "a_cost": a.get("cost"),
        "b_cost": b.get("cost"),
        "cost_change": _change(a.get("cost"), b.get("cost")),
        "a_ms": a.get("ms"),
        "b_ms": b.get("ms"),
        "time_change_ms": _change(a.get("ms"), b.get("ms")),
    }
    row["changed"] = (
        row["a_access"] != row["b_access"]
        or row["a_index"] != row["b_index"]
        or row["a_count"] != row["b_count"]
        or (row["rows_change"] or 0) != 0
        or (row["cost_change"] or 0) != 0
    )
    return row


def _plan_item(nodes: pd.DataFrame, summary: pd.Series) -> dict[str, Any]:
    root = nodes.iloc[0]
    rows = _value(root, "actual_rows")
    return {
        "access": summary["root_label"],
        "index": _value(summary, "indexes"),
        "count": int(summary["node_count"]),
        "rows": rows if rows is not None else _value(root, "plan_rows"),
        "cost": _value(summary, "total_cost"),
        "ms": _value(summary, "total_ms"),
    }


def compare_plans(a_nodes: pd.DataFrame, b_nodes: pd.DataFrame) -> pd.DataFrame:
    """Two plans of the same statement side by side (``a`` before, ``b`` after).

    One ``plan`` row (root node, total cost, root rows, total time), one ``relation`` row per
    table either plan reads (how: node labels joined with ``+``; which indexes; rows out of the
    scan over all loops; the scan's cost; exclusive time of its nodes), and one ``operation``
    row per other kind of node (how many, rows, cost, exclusive time). ``*_change`` columns are
    ``b − a``; ``changed`` flags rows where access, index, count, rows or cost differ.

    ``frame.attrs["same_statement"]`` tells whether the two statements have the same
    fingerprint (None when a plan does not carry its statement). Raises
    :class:`~auditkit.errors.ConfigError` unless each frame holds exactly one plan.
    """
    a = _one_plan(a_nodes, "a")
    b = _one_plan(b_nodes, "b")
    sa: pd.Series = plan_summary(a).iloc[0]
    sb: pd.Series = plan_summary(b).iloc[0]
    rows = [_row("plan", "plan", _plan_item(a, sa), _plan_item(b, sb))]
    ra, rb = _relations(a), _relations(b)
    for table in list(dict.fromkeys([*ra, *rb])):
        rows.append(_row("relation", table, ra.get(table), rb.get(table)))
    oa, ob = _operations(a, _table_of(a)), _operations(b, _table_of(b))
    for name in list(dict.fromkeys([*oa, *ob])):
        rows.append(_row("operation", name, oa.get(name), ob.get(name)))
    out = pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
    for col in ("a_count", "b_count"):
        out[col] = out[col].astype("Int64")
    for col in (
        "a_rows",
        "b_rows",
        "rows_change",
        "a_cost",
        "b_cost",
        "cost_change",
        "a_ms",
        "b_ms",
        "time_change_ms",
    ):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    out["changed"] = out["changed"].astype("boolean")
    statements = (sa["statement"], sb["statement"])
    if all(isinstance(s, str) and s.strip() for s in statements):
        out.attrs["same_statement"] = fingerprint(statements[0]) == fingerprint(statements[1])
    else:
        out.attrs["same_statement"] = None
    return out
