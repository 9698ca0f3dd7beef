"""The plan model shared by every EXPLAIN reader: nodes, plans, times, and the frame.

Each reader (PostgreSQL text, JSON/XML/YAML, MySQL tabular and JSON, SQLite) turns its input
into :class:`Plan` objects — a tree of :class:`PlanNode` whose ``fields`` are already named
after ``plan_nodes`` columns — and :func:`plans_frame` flattens them depth first into the
canonical frame. Keeping one model means the exclusive-time rules (:func:`compute_times`) are
written once and hold for every dialect.

Timing conventions follow PostgreSQL: ``actual_total_ms`` and ``actual_rows`` are *per loop*;
a node's time over all loops is ``actual_total_ms × loops``. Sources that report totals
(MariaDB ``r_table_time_ms``) are divided by their loop count on the way in, and a source that
reports a node's own time directly sets :attr:`PlanNode.self_ms`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.schemas import PLAN_NODES, cast, conform, null_column
from auditkit.sql.fingerprint import Dialect, fingerprint, fingerprint_id

__all__ = [
    "EXTRA_COLUMNS",
    "Failure",
    "MAX_DEPTH",
    "Plan",
    "PlanNode",
    "PlanParseError",
    "compute_times",
    "plans_frame",
    "to_float",
]

#: Columns the plan loaders add after the canonical ``plan_nodes`` ones: (name, dtype, description).
#: Plan-level values (``plan_format`` … ``settings``) are repeated on every node of the plan.
EXTRA_COLUMNS: tuple[tuple[str, str, str], ...] = (
    (
        "plan_format",
        "string",
        "How the plan was written: text, json, xml, yaml (PostgreSQL); tabular, vertical, json, json_v2 (MySQL); mariadb_json; eqp (SQLite).",
    ),
    (
        "planning_ms",
        "float64",
        "Planning time of the plan, milliseconds (PostgreSQL Planning Time; MariaDB query_optimization).",
    ),
    (
        "execution_ms",
        "float64",
        "Execution time of the plan as the server reported it (Execution Time / Total runtime), milliseconds.",
    ),
    ("jit_ms", "float64", "JIT compilation time (JIT Timing Total), milliseconds."),
    (
        "trigger_ms",
        "float64",
        "Time spent in triggers, summed over the plan's triggers, milliseconds.",
    ),
    ("query_id", "string", "Query identifier printed with the plan (PostgreSQL Query Identifier)."),
    (
        "fingerprint_id",
        "string",
        "Fingerprint id of the statement, to join plans to query events and statement stats.",
    ),
    (
        "settings",
        "string",
        "Non-default planner settings printed with the plan (EXPLAIN SETTINGS).",
    ),
    (
        "label",
        "string",
        "The node as the text format names it: 'Hash Left Join', 'Parallel Seq Scan', 'HashAggregate', MySQL's operation text.",
    ),
    (
        "parent_relationship",
        "string",
        "How the node feeds its parent: Outer, Inner, InitPlan, SubPlan, Member, Subquery… (MySQL: the JSON key that holds it).",
    ),
    (
        "subplan_name",
        "string",
        "Name of the sub-plan the node starts: 'InitPlan 1 (returns $0)', 'SubPlan 2', 'CTE name'.",
    ),
    ("schema", "string", "Schema of the scanned relation, when printed (VERBOSE) or known."),
    ("cte_name", "string", "CTE read by a CTE Scan (or WorkTable Scan)."),
    ("function_name", "string", "Function read by a Function Scan."),
    ("parallel_aware", "boolean", "True for a parallel-aware node (text: 'Parallel …')."),
    ("strategy", "string", "Aggregate or SetOp strategy: Plain, Sorted, Hashed, Mixed."),
    ("partial_mode", "string", "Partial aggregation step: Partial, Finalize, Simple."),
    (
        "operation",
        "string",
        "ModifyTable operation (Insert, Update, Delete, Merge) or SetOp command.",
    ),
    ("scan_direction", "string", "Index scan direction: Forward, Backward, NoMovement."),
    ("recheck_cond", "string", "Recheck condition of a bitmap heap scan."),
    ("hash_cond", "string", "Hash condition of a hash join."),
    ("merge_cond", "string", "Merge condition of a merge join."),
    ("one_time_filter", "string", "One-time filter (a condition evaluated once)."),
    ("group_key", "string", "Grouping key of an aggregate or group node."),
    ("presorted_key", "string", "Presorted key of an incremental sort."),
    ("rows_removed_by_join_filter", "float64", "Rows removed by the join filter, per loop."),
    ("sort_space_type", "string", "Where the sort ran: Memory or Disk."),
    ("hash_buckets", "Int64", "Hash buckets used."),
    ("original_hash_buckets", "Int64", "Hash buckets planned (before the hash table grew)."),
    ("original_hash_batches", "Int64", "Hash batches planned (before spilling to more batches)."),
    ("peak_memory_kb", "float64", "Peak memory of a hash or memoize node, kB."),
    ("cache_key", "string", "Cache key of a Memoize node."),
    ("cache_hits", "float64", "Memoize cache hits."),
    ("cache_misses", "float64", "Memoize cache misses."),
    ("cache_evictions", "float64", "Memoize cache evictions."),
    ("cache_overflows", "float64", "Memoize cache overflows."),
    ("workers_planned", "Int64", "Parallel workers planned (Gather, Gather Merge)."),
    ("workers_launched", "Int64", "Parallel workers launched (Gather, Gather Merge)."),
    ("shared_dirtied_blocks", "float64", "Shared blocks dirtied."),
    ("shared_written_blocks", "float64", "Shared blocks written."),
    ("local_hit_blocks", "float64", "Local buffers hit."),
    ("local_read_blocks", "float64", "Local blocks read."),
    ("local_dirtied_blocks", "float64", "Local blocks dirtied."),
    ("local_written_blocks", "float64", "Local blocks written."),
    ("temp_read_blocks", "float64", "Temporary blocks read."),
    (
        "io_read_ms",
        "float64",
        "Time reading blocks (I/O Timings, all scopes summed), milliseconds.",
    ),
    (
        "io_write_ms",
        "float64",
        "Time writing blocks (I/O Timings, all scopes summed), milliseconds.",
    ),
    ("wal_records", "float64", "WAL records generated."),
    ("wal_fpi", "float64", "WAL full-page images generated."),
    ("wal_bytes", "float64", "WAL bytes generated."),
    ("exact_heap_blocks", "float64", "Exact heap blocks of a bitmap heap scan."),
    ("lossy_heap_blocks", "float64", "Lossy heap blocks of a bitmap heap scan."),
    ("subplans_removed", "Int64", "Partitions pruned at run time (Subplans Removed)."),
    ("index_searches", "float64", "Index searches (PostgreSQL 18)."),
    ("output", "string", "Output column list (VERBOSE)."),
    (
        "inclusive_ms",
        "float64",
        "Time in the node and its children over all loops (parallel nodes: per process), milliseconds; see exclusive_ms.",
    ),
    ("select_id", "Int64", "MySQL SELECT id the node belongs to."),
    ("select_type", "string", "MySQL select_type (SIMPLE, PRIMARY, DERIVED, DEPENDENT SUBQUERY…)."),
    ("possible_keys", "string", "MySQL indexes the optimizer considered, comma separated."),
    ("key_len", "string", "MySQL key length used."),
    ("ref", "string", "MySQL columns or constants compared with the index."),
    (
        "filtered",
        "float64",
        "MySQL estimated percentage of rows kept by the table condition (0–100).",
    ),
    ("extra", "string", "MySQL Extra column as printed."),
    ("partitions", "string", "MySQL partitions read."),
    (
        "properties",
        "string",
        "Every other property of the node as the source printed it, a JSON object.",
    ),
)

#: plans nested deeper than this are refused (real plans stay far below; recursion stays safe)
MAX_DEPTH = 300

_EXTRA_DTYPES = {name: dtype for name, dtype, _ in EXTRA_COLUMNS}
_PLAN_LEVEL = (
    "plan_format",
    "planning_ms",
    "execution_ms",
    "jit_ms",
    "trigger_ms",
    "query_id",
    "fingerprint_id",
    "settings",
    "statement",
    "dialect",
)

_NUMBER = compile_later(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")


@dataclass(frozen=True, slots=True)
class Failure:
    """A plan that could not be read: the line where it starts, why (a stable reason), the
    detail (naming the exact line), and that exact line (``at``)."""

    line: int
    reason: str
    detail: str
    at: int | None = None


class PlanParseError(ValueError):
    """A plan could not be read: ``line`` points at the problem, ``expected`` says what should be there."""

    def __init__(self, message: str, line: int | None = None, expected: str = "") -> None:
        self.message = message
        self.line = line
        self.expected = expected
        super().__init__(message + (f"; expected {expected}" if expected else ""))


def to_float(value: Any) -> float | None:
    """A number from a plan value: ``12``, ``"1.5"``, ``"50kB"`` → float; masked ``N`` and junk → None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if text.endswith("kB"):
        text = text[:-2]
    if _NUMBER.match(text):
        return float(text)
    return None


@dataclass(eq=False)
class PlanNode:
    """One node: its type, its frame fields, its children in plan order, and where it starts."""

    node_type: str
    fields: dict[str, Any] = field(default_factory=dict)
    children: list[PlanNode] = field(default_factory=list)
    line: int | None = None
    #: the node's own time over all loops when the source reports it directly (MariaDB)
    self_ms: float | None = None
    #: time in the node and its children over all loops; derived by :func:`compute_times`
    inclusive_ms: float | None = None
    #: exclusive time; derived by :func:`compute_times`
    exclusive_ms: float | None = None
    #: properties not mapped to a column, kept as the ``properties`` JSON
    properties: dict[str, Any] = field(default_factory=dict)

    def walk(self) -> Iterator[PlanNode]:
        """This node and its descendants, depth first, in plan order."""
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def relationship(self) -> str | None:
        value = self.fields.get("parent_relationship")
        return str(value) if value is not None else None

    @property
    def is_initplan(self) -> bool:
        """True for an InitPlan (which includes PostgreSQL CTEs): run once, charged elsewhere."""
        return self.relationship == "InitPlan"

    @property
    def cte_defined(self) -> str | None:
        """The CTE this node computes (``CTE name`` sub-plan), if any."""
        name = self.fields.get("subplan_name")
        if self.is_initplan and isinstance(name, str) and name.startswith("CTE "):
            return name[4:].strip().strip('"')
        return None


@dataclass(eq=False)
class Plan:
    """One plan: its root node, the plan-level fields (statement, timings, format), its first line.

    ``siblings`` are further top-level nodes for plans that are lists rather than trees
    (MySQL's traditional EXPLAIN, SQLite's query plan): they get no parent and depth 0.
    """

    root: PlanNode
    dialect: str
    plan_format: str
    line: int
    fields: dict[str, Any] = field(default_factory=dict)
    siblings: list[PlanNode] = field(default_factory=list)

    def top(self) -> list[PlanNode]:
        """The top-level nodes: the root, then any siblings."""
        return [self.root, *self.siblings]

    def nodes(self) -> Iterator[PlanNode]:
        """Every node, depth first from the root, then from each sibling."""
        for top in self.top():
            yield from top.walk()

    def depth(self) -> int:
        """The depth of the deepest node (0 for a lone root), computed without recursion."""
        deepest = 0
        stack = [(n, 0) for n in self.top()]
        while stack:
            node, d = stack.pop()
            deepest = max(deepest, d)
            if d <= MAX_DEPTH:
                stack.extend((c, d + 1) for c in node.children)
        return deepest


# -- times -----------------------------------------------------------------------------------

_PARAM_REF = compile_later(r"\$\d+")
_RETURNS = compile_later(r"\(returns ([^)]*)\)")
_INITPLAN_NUM = compile_later(r"^InitPlan\s+(\d+)")
_TEXT_FIELDS = (
    "filter",
    "index_cond",
    "join_filter",
    "hash_cond",
    "merge_cond",
    "recheck_cond",
    "one_time_filter",
    "output",
    "sort_key",
    "group_key",
    "presorted_key",
    "cache_key",
)


def _node_inclusive(node: PlanNode, divisor: float) -> float | None:
    if node.fields.get("never_executed") is True:
        return 0.0
    if node.inclusive_ms is not None:
        return node.inclusive_ms
    total = to_float(node.fields.get("actual_total_ms"))
    loops = to_float(node.fields.get("loops"))
    if total is None:
        return None
    if loops is None:
        loops = 1.0
    return total * loops / divisor


def _workers(node: PlanNode) -> float | None:
    launched = to_float(node.fields.get("workers_launched"))
    planned = to_float(node.fields.get("workers_planned"))
    return launched if launched is not None else planned


def _assign_inclusive(node: PlanNode, workers: float | None) -> None:
    node.inclusive_ms = _node_inclusive(node, (workers or 0.0) + 1.0)
    mine = _workers(node)
    for child in node.children:
        if child.relationship in ("InitPlan", "SubPlan"):
            # sub-plans run in the process that evaluates them, not spread over workers
            _assign_inclusive(child, None)
        else:
            _assign_inclusive(child, mine if mine is not None else workers)


def _contribution(child: PlanNode) -> float:
    """What a child adds to its parent's time: its inclusive time, or its own time plus its children's."""
    if child.inclusive_ms is not None:
        return child.inclusive_ms
    own = child.self_ms or 0.0
    return own + sum(_contribution(g) for g in child.children if not g.is_initplan)


def _references(node: PlanNode, tokens: list[str]) -> bool:
    for name in _TEXT_FIELDS:
        value = node.fields.get(name)
        if not isinstance(value, str):
            continue
        for token in tokens:
            if token.startswith("$"):
                if any(m.group(0) == token for m in _PARAM_REF.finditer(value)):
                    return True
            elif token in value:
                return True
    return False


def _initplan_tokens(node: PlanNode) -> list[str]:
    name = str(node.fields.get("subplan_name") or "")
    tokens: list[str] = []
    m = _RETURNS.search(name)
    if m:
        tokens += [t.strip() for t in m.group(1).split(",") if t.strip().startswith("$")]
    n = _INITPLAN_NUM.match(name)
    if n:
        tokens.append(f"(InitPlan {n.group(1)})")
    return tokens


def compute_times(plan: Plan) -> None:
    """Fill ``inclusive_ms`` and ``exclusive_ms`` of every node of ``plan``.

    The rule (documented for users in :mod:`auditkit.loaders.explain`):

    1. *inclusive* = ``actual_total_ms × loops`` (0 when never executed); under a Gather or
       Gather Merge it is divided by ``workers launched + 1`` (planned when launched is
       unknown), as pev2 does, because every process reports its own loops. Sub-plans are not
       divided.
    2. *exclusive* = inclusive − the inclusive time of every child except InitPlans (and CTEs,
       which PostgreSQL reports as InitPlans): those run once and their time shows up in the
       node that first needs their value, not in the node they hang under.
    3. A CTE's time is taken off the CTE Scans that read it, shared in proportion to their
       inclusive times; an InitPlan's time is taken off the first node (depth first, outside the
       InitPlan) whose expressions use its output (``$n`` or ``(InitPlan n)``), or off the node
       it hangs under when no node names it.
    4. A node whose source reports its own time directly (MariaDB) keeps that time; nodes
       without timing contribute their children's times. Results are clamped at 0.
    """
    for top in plan.top():
        _assign_inclusive(top, None)
    all_nodes = list(plan.nodes())
    extra_charge: dict[int, float] = {}
    parents: dict[int, PlanNode] = {}
    for n in all_nodes:
        for c in n.children:
            parents[id(c)] = n
    # CTEs: charge their time to the CTE Scans that read them
    for n in all_nodes:
        cte = n.cte_defined
        if cte is None or not n.inclusive_ms:
            continue
        scans = [
            s for s in all_nodes if s.fields.get("cte_name") == cte and s.node_type == "CTE Scan"
        ]
        weights = [s.inclusive_ms or 0.0 for s in scans]
        total = sum(weights)
        if not scans:
            continue
        for s, w in zip(scans, weights, strict=True):
            share = n.inclusive_ms * (w / total if total else 1.0 / len(scans))
            extra_charge[id(s)] = extra_charge.get(id(s), 0.0) + share
    # InitPlans (not CTEs): charge to the first node that uses their output
    for n in all_nodes:
        if not n.is_initplan or n.cte_defined is not None or not n.inclusive_ms:
            continue
        inside = {id(x) for x in n.walk()}
        tokens = _initplan_tokens(n)
        target = None
        if tokens:
            target = next(
                (x for x in all_nodes if id(x) not in inside and _references(x, tokens)), None
            )
        if target is None:
            target = parents.get(id(n))
        if target is not None:
            extra_charge[id(target)] = extra_charge.get(id(target), 0.0) + n.inclusive_ms
    for n in all_nodes:
        if n.self_ms is not None:
            n.exclusive_ms = max(0.0, n.self_ms)
            continue
        if n.inclusive_ms is None:
            n.exclusive_ms = None
            continue
        children = sum(_contribution(c) for c in n.children if not c.is_initplan)
        value = n.inclusive_ms - children - extra_charge.get(id(n), 0.0)
        n.exclusive_ms = max(0.0, value) if not math.isnan(value) else None


# -- the frame -------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _round(value: float | None) -> float | None:
    """Derived times to the nanosecond: plans print microseconds, sums must not show float noise."""
    return None if value is None else round(value, 6)


def _visit(
    rows: list[dict[str, Any]],
    plan_id: str,
    plan: Plan,
    node: PlanNode,
    parent: int | None,
    depth: int,
    counter: list[int],
    source_file: str,
) -> None:
    """Append the row of ``node`` and its descendants (depth first) to ``rows``."""
    node_id = counter[0]
    counter[0] += 1
    row: dict[str, Any] = dict(node.fields)
    row.update(
        plan_id=plan_id,
        node_id=node_id,
        parent_id=parent,
        depth=depth,
        node_type=node.node_type,
        exclusive_ms=_round(node.exclusive_ms),
        inclusive_ms=_round(node.inclusive_ms),
        source_file=source_file,
        source_line=node.line if node.line is not None else plan.line,
        dialect=plan.dialect,
        plan_format=plan.plan_format,
    )
    for key in _PLAN_LEVEL:
        value = plan.fields.get(key)
        if value is not None and row.get(key) is None:
            row[key] = value
    if node.properties:
        row["properties"] = json.dumps(_jsonable(node.properties), ensure_ascii=False)
    rows.append(row)
    for child in node.children:
        _visit(rows, plan_id, plan, child, node_id, depth + 1, counter, source_file)


def plans_frame(plans: list[tuple[str, Plan]], source_file: str) -> pd.DataFrame:
    """The ``plan_nodes`` frame of ``plans`` (``[(plan_id, plan)…]``), extra columns included.

    Node ids are depth-first positions, 0 for the root. Plan-level fields are repeated on every
    node so any row can be grouped or filtered by plan without a join.
    """
    rows: list[dict[str, Any]] = []
    for plan_id, plan in plans:
        compute_times(plan)
        statement = plan.fields.get("statement")
        if (
            isinstance(statement, str)
            and statement.strip()
            and not plan.fields.get("fingerprint_id")
        ):
            dialect: Dialect = "mysql" if plan.dialect in ("mysql", "mariadb") else "postgres"
            plan.fields["fingerprint_id"] = fingerprint_id(fingerprint(statement, dialect))
        counter = [0]
        for top in plan.top():
            _visit(rows, plan_id, plan, top, None, 0, counter, source_file)
    columns = PLAN_NODES.names + [name for name, _, _ in EXTRA_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    unknown = sorted({k for r in rows for k in r} - set(columns))
    if unknown:  # a reader set a field no schema knows: a bug, but never lose the data
        frame = frame.join(pd.DataFrame(rows)[unknown])
    frame = frame.astype({"never_executed": "object"})
    out = conform(frame, PLAN_NODES)
    extra = {name: _cast(out[name], dtype) for name, dtype in _EXTRA_DTYPES.items()}
    return out.assign(**extra)


def _cast(series: pd.Series, dtype: str) -> pd.Series:
    if len(series) and str(series.dtype) != dtype and series.isna().all():
        return null_column(dtype, len(series))
    if dtype == "float64":
        return pd.to_numeric(series, errors="coerce").astype("float64")
    if dtype == "Int64":
        return cast(series, "Int64", str(series.name or ""))
    if dtype == "boolean":
        return series.astype("boolean")
    return series.astype("string")
