"""PostgreSQL ``EXPLAIN`` text format → :class:`~auditkit.loaders._explain_nodes.Plan`.

A text plan is a tree drawn with indentation::

    Limit  (cost=186.82..186.82 rows=1 width=359) (actual time=1352.355..1352.405 rows=50 loops=1)
      ->  Sort  (cost=…) (actual time=…)
            Sort Key: s.last_updated_date
            Sort Method:  top-N heapsort  Memory: 50kB
            ->  Seq Scan on markets  (cost=…)
      SubPlan 1
        ->  Aggregate  (…)
    Planning Time: 0.094 ms
    Execution Time: 0.375 ms

The first line is the root; every other node starts with ``->``; a node's details follow it
two columns right of its name; ``InitPlan n (returns $0)``, ``SubPlan n`` and ``CTE name``
headers (and the unnumbered ``InitPlan``/``SubPlan`` of PostgreSQL ≤ 9.0) introduce sub-plans;
lines at the root's indentation are plan-level (Planning/Execution Time, ``Total runtime`` of
≤ 9.3, Planning:, JIT:, Trigger …, Query Identifier, Settings). Every version from 9.x to 18
is read: costs on or off, ANALYZE with or without TIMING, ``(never executed)``, fractional
rows (``rows=1.00``), and numbers masked as ``N`` by pg_regress filters (read as missing).

Copies that were hard-wrapped at a fixed width (a terminal, a mail client) are re-joined first:
a line continues the previous one when the previous line has unclosed parentheses, when it
starts left of the root (psql prints every row one column in), when it starts with ``(cost=``
or ``(actual``, or when it closes a parenthesis before opening one.
"""

from __future__ import annotations

import re
from typing import Any

from auditkit.lazy_re import compile_later
from auditkit.loaders._explain_nodes import Plan, PlanNode, PlanParseError, to_float

__all__ = [
    "closes_first",
    "looks_like_node_line",
    "node_info",
    "paren_balance",
    "parse_text_plans",
    "unwrap_lines",
]

_NUM = r"(?:-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|N(?:\.N)?|NaN|-?Infinity)"
_COST = rf"\(cost=(?P<sc>{_NUM})\.\.(?P<tc>{_NUM})\s+rows=(?P<pr>{_NUM})\s+width=(?P<pw>{_NUM})\)"
_ACTUAL = rf"\(actual(?:\s+time=(?P<as>{_NUM})\.\.(?P<at>{_NUM}))?\s+rows=(?P<ar>{_NUM})\s+loops=(?P<al>{_NUM})\)"
_NEVER = r"\(never\s+executed\)"
_NODE_LINE = compile_later(
    rf"^(?P<indent>\s*)(?P<arrow>->\s+)?(?P<head>.*?)\s*(?:{_COST})?\s*(?:{_ACTUAL}|(?P<never>{_NEVER}))?\s*$"
)
_HAS_INFO = compile_later(rf"{_COST}|{_ACTUAL}|{_NEVER}")
_SUBPLAN = compile_later(r"^(?P<kind>InitPlan|SubPlan)(?:\s+\d+)?(?:\s+\(returns [^)]*\))?\s*$")
_CTE = compile_later(r"^CTE\s+(?P<name>\S.*?)\s*$")
_KEY_VALUE = compile_later(r"^(?P<key>[A-Za-z][\w /&()\-]*?):(?:\s+(?P<value>.*?))?\s*$")
_TRIGGER = compile_later(
    rf"^Trigger\s+(?P<name>.+?):\s+time=(?P<time>{_NUM})\s+calls=(?P<calls>{_NUM})\s*$"
)
_MS = compile_later(rf"^(?P<n>{_NUM})\s*ms\b")

# node names PostgreSQL prints (explain.c), used to recognise a plan when costs are off
_NODE_NAMES = (
    "Result",
    "ProjectSet",
    "Insert",
    "Update",
    "Delete",
    "Merge",
    "Append",
    "Merge Append",
    "Recursive Union",
    "BitmapAnd",
    "BitmapOr",
    "Nested Loop",
    "Merge Join",
    "Hash Join",
    "Merge Left Join",
    "Merge Right Join",
    "Merge Full Join",
    "Merge Semi Join",
    "Merge Anti Join",
    "Hash Left Join",
    "Hash Right Join",
    "Hash Full Join",
    "Hash Semi Join",
    "Hash Anti Join",
    "Hash Right Semi Join",
    "Hash Right Anti Join",
    "Seq Scan",
    "Sample Scan",
    "Gather",
    "Gather Merge",
    "Index Scan",
    "Index Only Scan",
    "Bitmap Index Scan",
    "Bitmap Heap Scan",
    "Tid Scan",
    "Tid Range Scan",
    "Subquery Scan",
    "Function Scan",
    "Table Function Scan",
    "Values Scan",
    "CTE Scan",
    "Named Tuplestore Scan",
    "WorkTable Scan",
    "Foreign Scan",
    "Foreign Insert",
    "Foreign Update",
    "Foreign Delete",
    "Custom Scan",
    "Materialize",
    "Memoize",
    "Sort",
    "Incremental Sort",
    "Group",
    "Aggregate",
    "GroupAggregate",
    "HashAggregate",
    "MixedAggregate",
    "WindowAgg",
    "Unique",
    "SetOp",
    "HashSetOp",
    "LockRows",
    "Limit",
    "Hash",
)
_NODE_NAME = compile_later(
    r"^(?:Parallel |Async )*(?:Partial |Finalize )?(?:"
    + "|".join(re.escape(n) for n in sorted(_NODE_NAMES, key=len, reverse=True))
    + r")(?:\b|$)"
)

_JOIN = compile_later(
    r"^(?P<alg>Hash|Merge) (?:(?P<jt>Left|Right|Full|Semi|Anti|Right Semi|Right Anti) )?Join$"
)
_NESTLOOP = compile_later(
    r"^Nested Loop(?: (?P<jt>Left|Right|Full|Semi|Anti|Right Semi|Right Anti) Join)?$"
)
_INDEX = compile_later(
    r"^(?P<kind>Index Scan|Index Only Scan)(?P<back> Backward)? using (?P<idx>.+?) on (?P<rel>.+)$"
)
_BITMAP_INDEX = compile_later(r"^Bitmap Index Scan on (?P<idx>.+)$")
_MODIFY = compile_later(r"^(?P<op>Insert|Update|Delete|Merge) on (?P<rel>.+)$")
_AGG = compile_later(
    r"^(?P<pm>Partial |Finalize )?(?P<agg>Aggregate|GroupAggregate|HashAggregate|MixedAggregate)$"
)
_SETOP = compile_later(
    r"^(?P<so>SetOp|HashSetOp)(?: (?P<cmd>Intersect All|Intersect|Except All|Except))?$"
)
_REL_SCAN = compile_later(
    r"^(?P<kind>Seq Scan|Sample Scan|Bitmap Heap Scan|Tid Scan|Tid Range Scan|Foreign Scan"
    r"|Foreign Insert|Foreign Update|Foreign Delete) on (?P<rel>.+)$"
)
_FUNC_SCAN = compile_later(r"^(?P<kind>Function Scan|Table Function Scan) on (?P<rest>.+)$")
_CTE_SCAN = compile_later(
    r"^(?P<kind>CTE Scan|WorkTable Scan|Named Tuplestore Scan) on (?P<rest>.+)$"
)
_SUBQUERY = compile_later(r"^Subquery Scan(?: on)? (?P<alias>.+)$")
_VALUES = compile_later(r"^Values Scan on (?P<alias>.+)$")
_CUSTOM = compile_later(r"^Custom Scan \((?P<name>[^)]*)\)(?: on (?P<rel>.+))?$")
_HEAD_START = compile_later(r"^[A-Z][A-Za-z]")
_STRATEGY = {
    "Aggregate": "Plain",
    "GroupAggregate": "Sorted",
    "HashAggregate": "Hashed",
    "MixedAggregate": "Mixed",
}
_TOP_LEVEL = compile_later(
    r"^(?:Planning(?:\s+Time)?|Execution\s+Time|Total\s+runtime|JIT|Trigger\b|Query\s+Identifier"
    r"|Settings|Serialization|Query\s+Text|Planning\s+time|Execution\s+time)",
    re.I,
)


def _tokens(text: str) -> list[str]:
    """Split on spaces outside double quotes (identifiers may be quoted and hold spaces)."""
    out: list[str] = []
    cur = ""
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            cur += ch
        elif ch == " " and not quoted:
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if len(name) >= 2 and name[0] == name[-1] == '"' else name


def _split_schema(qualified: str) -> tuple[str | None, str]:
    """``public.t`` → (``public``, ``t``); dots inside double quotes are not separators."""
    quoted = False
    for i, ch in enumerate(qualified):
        if ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            return _unquote(qualified[:i]), _unquote(qualified[i + 1 :])
    return None, _unquote(qualified)


def _relation_alias(text: str) -> dict[str, Any]:
    toks = _tokens(text.strip())
    if not toks:
        return {}
    schema, rel = _split_schema(toks[0])
    alias = _unquote(toks[1]) if len(toks) > 1 else rel
    out: dict[str, Any] = {"relation": rel, "alias": alias}
    if schema:
        out["schema"] = schema
    return out


def parse_head(head: str) -> tuple[str, dict[str, Any]]:
    """A node's name as the text format prints it → (JSON node type, fields).

    ``label`` keeps the printed name without its relation ('Parallel Index Scan Backward');
    the node type is what the structured formats call the node, so text and JSON plans of the
    same query agree ('Hash Left Join' → Hash Join, join type Left).
    """
    fields: dict[str, Any] = {}
    rest = head.strip()
    prefixes = ""
    while True:
        if rest.startswith("Parallel "):
            fields["parallel_aware"] = True
            prefixes += "Parallel "
            rest = rest[len("Parallel ") :]
        elif rest.startswith("Async "):
            prefixes += "Async "
            rest = rest[len("Async ") :]
        else:
            break
    label = rest
    node_type = rest
    if m := _INDEX.match(rest):
        node_type = m.group("kind")
        label = node_type + (m.group("back") or "")
        fields["index_name"] = _unquote(m.group("idx"))
        fields["scan_direction"] = "Backward" if m.group("back") else "Forward"
        fields.update(_relation_alias(m.group("rel")))
    elif m := _BITMAP_INDEX.match(rest):
        node_type = label = "Bitmap Index Scan"
        fields["index_name"] = _unquote(m.group("idx").strip())
    elif m := _MODIFY.match(rest):
        node_type, label = "ModifyTable", m.group("op")
        fields["operation"] = m.group("op")
        fields.update(_relation_alias(m.group("rel")))
    elif m := _JOIN.match(rest):
        node_type = f"{m.group('alg')} Join"
        fields["join_type"] = m.group("jt") or "Inner"
    elif m := _NESTLOOP.match(rest):
        node_type = "Nested Loop"
        fields["join_type"] = m.group("jt") or "Inner"
    elif m := _AGG.match(rest):
        node_type = "Aggregate"
        fields["strategy"] = _STRATEGY[m.group("agg")]
        fields["partial_mode"] = (m.group("pm") or "Simple").strip()
    elif m := _SETOP.match(rest):
        node_type = "SetOp"
        fields["strategy"] = "Hashed" if m.group("so") == "HashSetOp" else "Sorted"
        if m.group("cmd"):
            fields["operation"] = m.group("cmd")
    elif m := _REL_SCAN.match(rest):
        node_type = label = m.group("kind")
        if node_type.startswith("Foreign ") and node_type != "Foreign Scan":
            fields["operation"] = node_type.split()[1]
            node_type = "Foreign Scan"
        fields.update(_relation_alias(m.group("rel")))
    elif m := _FUNC_SCAN.match(rest):
        node_type = label = m.group("kind")
        toks = _tokens(m.group("rest"))
        schema, fn = _split_schema(toks[0]) if toks else (None, "")
        fields["function_name"] = fn
        if schema:
            fields["schema"] = schema
        fields["alias"] = _unquote(toks[1]) if len(toks) > 1 else fn
    elif m := _CTE_SCAN.match(rest):
        node_type = label = m.group("kind")
        toks = _tokens(m.group("rest"))
        name = _unquote(toks[0]) if toks else ""
        fields["cte_name"] = name
        fields["alias"] = _unquote(toks[1]) if len(toks) > 1 else name
    elif m := _SUBQUERY.match(rest):
        node_type = label = "Subquery Scan"
        fields["alias"] = _unquote(m.group("alias").strip())
    elif m := _VALUES.match(rest):
        node_type = label = "Values Scan"
        fields["alias"] = _unquote(m.group("alias").strip())
    elif m := _CUSTOM.match(rest):
        node_type = "Custom Scan"
        label = f"Custom Scan ({m.group('name')})"
        fields["properties_custom_provider"] = m.group("name")
        if m.group("rel"):
            fields.update(_relation_alias(m.group("rel")))
    fields["label"] = (prefixes + label).strip()
    return node_type, fields


def node_info(line: str) -> re.Match[str] | None:
    """The node-line match of ``line`` (head, costs, actuals), or None."""
    return _NODE_LINE.match(line)


def looks_like_node_line(line: str, *, costs_off: bool = False) -> bool:
    """True when ``line`` is a plan node: it carries costs or actuals, or (``costs_off``) starts
    with ``->`` or with a node name PostgreSQL prints."""
    stripped = line.strip()
    if not stripped:
        return False
    if _HAS_INFO.search(stripped):
        head = stripped.split("(", 1)[0].strip().removeprefix("->").strip()
        return bool(_HEAD_START.match(head)) and ":" not in head
    if costs_off:
        body = stripped.removeprefix("->").strip()
        return stripped.startswith("->") or (bool(_NODE_NAME.match(body)) and ":" not in body)
    return False


#: a quoted literal, or an unclosed one running to the end of the text
_QUOTED = compile_later(r"'[^']*'?")


def paren_balance(text: str) -> int:
    """Opened minus closed parentheses outside quoted literals (C-speed: lines can be MBs)."""
    if "'" in text:
        text = _QUOTED.sub("", text)
    return text.count("(") - text.count(")")


def closes_first(text: str) -> bool:
    close = text.find(")")
    opening = text.find("(")
    return close != -1 and (opening == -1 or close < opening)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def unwrap_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Re-join lines of a plan that was hard-wrapped at a fixed width (see the module docstring)."""
    out: list[tuple[int, str]] = []
    root_indent: int | None = None
    for number, line in lines:
        if not line.strip():
            out.append((number, line))
            continue
        if root_indent is None:
            root_indent = _indent(line)
            out.append((number, line))
            continue
        prev = out[-1][1] if out else ""
        stripped = line.strip()
        join = bool(prev.strip()) and (
            paren_balance(prev) > 0
            or _indent(line) < root_indent
            or stripped.startswith(("(cost=", "(actual", "(never"))
            or (closes_first(stripped) and not stripped.startswith("->"))
        )
        if join:
            out[-1] = (out[-1][0], prev + line)
        else:
            out.append((number, line))
    return out


# -- property lines --------------------------------------------------------------------------

_PAIRS_SPLIT = compile_later(r"\s{2,}")
_KV_EQ = compile_later(
    rf"(?<![a-z])(?P<k>[a-z][a-z ]{{0,40}}?)=(?P<v>{_NUM})"
)  # linear: lines can be MBs


def _pairs(text: str) -> list[tuple[str, str]]:
    """``"quicksort  Memory: 25kB"`` after the first key → [("", "quicksort"), ("Memory", "25kB")]."""
    out: list[tuple[str, str]] = []
    for part in _PAIRS_SPLIT.split(text.strip()):
        if ": " in part:
            k, v = part.split(": ", 1)
            out.append((k.strip(), v.strip()))
        elif out and out[-1][0] != "":
            out[-1] = (out[-1][0], out[-1][1] + " " + part)
        else:
            out.append(("", part.strip()))
    return out


def _kb(value: str) -> float | None:
    return to_float(value.strip().split()[0]) if value.strip() else None


def _buffers(node: PlanNode, value: str) -> None:
    for scope in value.split(","):
        words = scope.strip().split()
        if not words:
            continue
        where = words[0]
        for m in _KV_EQ.finditer(scope):
            kind = m.group("k").strip().split()[-1]
            number = to_float(m.group("v"))
            column = {
                ("shared", "hit"): "shared_hit_blocks",
                ("shared", "read"): "shared_read_blocks",
                ("shared", "dirtied"): "shared_dirtied_blocks",
                ("shared", "written"): "shared_written_blocks",
                ("local", "hit"): "local_hit_blocks",
                ("local", "read"): "local_read_blocks",
                ("local", "dirtied"): "local_dirtied_blocks",
                ("local", "written"): "local_written_blocks",
                ("temp", "read"): "temp_read_blocks",
                ("temp", "written"): "temp_written_blocks",
            }.get((where, kind))
            if column:
                node.fields[column] = number


def _io_timings(node: PlanNode, value: str) -> None:
    read = write = 0.0
    seen = False
    for m in _KV_EQ.finditer(value):
        kind = m.group("k").strip().split()[-1]
        number = to_float(m.group("v"))
        if number is None:
            continue
        seen = True
        if kind == "read":
            read += number
        elif kind == "write":
            write += number
    if seen:
        node.fields["io_read_ms"] = read
        node.fields["io_write_ms"] = write


def _set_property(node: PlanNode, key: str, value: str) -> None:
    k = key.lower()
    simple = {
        "filter": "filter",
        "index cond": "index_cond",
        "recheck cond": "recheck_cond",
        "join filter": "join_filter",
        "hash cond": "hash_cond",
        "merge cond": "merge_cond",
        "one-time filter": "one_time_filter",
        "sort key": "sort_key",
        "presorted key": "presorted_key",
        "cache key": "cache_key",
        "output": "output",
    }
    numbers = {
        "rows removed by filter": "rows_removed_by_filter",
        "rows removed by index recheck": "rows_removed_by_index_recheck",
        "rows removed by join filter": "rows_removed_by_join_filter",
        "heap fetches": "heap_fetches",
        "workers planned": "workers_planned",
        "workers launched": "workers_launched",
        "subplans removed": "subplans_removed",
        "index searches": "index_searches",
    }
    if k in simple:
        node.fields[simple[k]] = value
    elif k in numbers:
        node.fields[numbers[k]] = to_float(value)
    elif k == "group key":
        prev = node.fields.get("group_key")
        node.fields["group_key"] = f"{prev}; {value}" if prev else value
    elif k == "sort method":
        pairs = _pairs(value)
        node.fields["sort_method"] = pairs[0][1] if pairs else value
        for pk, pv in pairs[1:]:
            if pk in ("Memory", "Disk"):
                node.fields["sort_space_type"] = pk
                node.fields["sort_space_kb"] = _kb(pv)
    elif k in ("full-sort groups", "pre-sorted groups"):
        node.properties[key] = value
        for pk, pv in _pairs(value):
            if pk in ("Sort Method", "Sort Methods") and "sort_method" not in node.fields:
                node.fields["sort_method"] = pv
            elif pk == "Peak Memory" and "sort_space_kb" not in node.fields:
                node.fields["sort_space_kb"] = _kb(pv)
                node.fields["sort_space_type"] = "Memory"
            elif pk == "Peak Disk":
                node.fields["sort_space_kb"] = _kb(pv)
                node.fields["sort_space_type"] = "Disk"
    elif k == "buckets":
        for pk, pv in _pairs(f"Buckets: {value}"):
            m = re.match(rf"({_NUM})(?:\s*\(originally ({_NUM})\))?", pv)
            if pk == "Buckets" and m:
                node.fields["hash_buckets"] = to_float(m.group(1))
                node.fields["original_hash_buckets"] = to_float(m.group(2) or m.group(1))
            elif pk == "Batches" and m:
                node.fields["hash_batches"] = to_float(m.group(1))
                node.fields["original_hash_batches"] = to_float(m.group(2) or m.group(1))
            elif pk == "Memory Usage":
                node.fields["peak_memory_kb"] = _kb(pv)
    elif k == "batches":  # HashAggregate: "Batches: 1  Memory Usage: 32kB  Disk Usage: 0kB"
        for pk, pv in _pairs(f"Batches: {value}"):
            if pk == "Batches":
                node.fields["hash_batches"] = to_float(pv)
            elif pk == "Memory Usage":
                node.fields["peak_memory_kb"] = _kb(pv)
            else:
                node.properties[pk] = pv
    elif k == "hits":
        for pk, pv in _pairs(f"Hits: {value}"):
            column = {
                "Hits": "cache_hits",
                "Misses": "cache_misses",
                "Evictions": "cache_evictions",
                "Overflows": "cache_overflows",
            }.get(pk)
            if column:
                node.fields[column] = to_float(pv)
            elif pk == "Memory Usage":
                node.fields["peak_memory_kb"] = _kb(pv)
    elif k == "heap blocks":
        for m in _KV_EQ.finditer(value):
            if m.group("k").strip() == "exact":
                node.fields["exact_heap_blocks"] = to_float(m.group("v"))
            elif m.group("k").strip() == "lossy":
                node.fields["lossy_heap_blocks"] = to_float(m.group("v"))
    elif k == "buffers":
        _buffers(node, value)
    elif k == "i/o timings":
        _io_timings(node, value)
    elif k == "wal":
        for m in _KV_EQ.finditer(value):
            column = {"records": "wal_records", "fpi": "wal_fpi", "bytes": "wal_bytes"}.get(
                m.group("k").strip()
            )
            if column:
                node.fields[column] = to_float(m.group("v"))
    elif re.match(r"worker \d+$", k):
        node.properties.setdefault("Workers", []).append(value)
    else:
        node.properties[key] = value if value else True


def _ms(value: str) -> float | None:
    m = _MS.match(value.strip())
    return to_float(m.group("n")) if m else to_float(value)


# -- the parser ------------------------------------------------------------------------------


class _Frame:
    __slots__ = ("col", "header", "node")

    def __init__(self, col: int, node: PlanNode | None = None, header: str | None = None) -> None:
        self.col = col
        self.node = node
        self.header = header


def _new_node(match: re.Match[str], number: int, arrow: bool) -> tuple[PlanNode, int]:
    head = match.group("head")
    node_type, fields = parse_head(head)
    provider = fields.pop("properties_custom_provider", None)
    node = PlanNode(node_type, fields, line=number)
    if provider:
        node.properties["Custom Plan Provider"] = provider
    if match.group("sc") is not None:
        fields["startup_cost"] = to_float(match.group("sc"))
        fields["total_cost"] = to_float(match.group("tc"))
        fields["plan_rows"] = to_float(match.group("pr"))
        fields["plan_width"] = to_float(match.group("pw"))
    if match.group("never"):
        fields.update(
            never_executed=True,
            actual_rows=0.0,
            loops=0.0,
            actual_total_ms=0.0,
            actual_startup_ms=0.0,
        )
    elif match.group("ar") is not None:
        fields["actual_rows"] = to_float(match.group("ar"))
        fields["loops"] = to_float(match.group("al"))
        fields["never_executed"] = False
        if match.group("at") is not None:
            fields["actual_startup_ms"] = to_float(match.group("as"))
            fields["actual_total_ms"] = to_float(match.group("at"))
    text_col = match.end("indent") + (
        len(match.group("arrow")) if arrow and match.group("arrow") else 0
    )
    return node, text_col


def parse_text_plans(lines: list[tuple[int, str]], statement: str | None = None) -> list[Plan]:
    """Parse one block of text-format plan lines (``[(line number, text)…]``) into plans.

    Usually one plan; a block that holds several plans one after the other (a second root
    line with costs at the first root's indentation) gives several. Raises
    :class:`PlanParseError` naming the line when the block is not a readable plan.
    """
    lines = [(n, line.expandtabs(8).rstrip()) for n, line in lines]
    lines = unwrap_lines(lines)
    plans: list[Plan] = []
    stack: list[_Frame] = []
    plan: Plan | None = None
    root_indent = 0
    section: str | None = None
    query_text: list[str] = []
    in_query_text = False
    for number, line in lines:
        if not line.strip():
            continue
        stripped = line.strip()
        indent = _indent(line)
        if plan is None:
            if stripped.lower().startswith("query text:"):
                in_query_text = True
                query_text = [stripped.split(":", 1)[1].strip()]
                continue
            m = _NODE_LINE.match(line)
            if m is None or not m.group("head") or not looks_like_node_line(line, costs_off=True):
                if in_query_text:
                    query_text.append(stripped)
                    continue
                raise PlanParseError(
                    f"line {number}: '{stripped[:80]}' is not a plan node",
                    number,
                    "a root node line such as 'Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)'",
                )
            if m.group("head").startswith("->") or m.group("arrow"):
                raise PlanParseError(
                    f"line {number}: the plan starts with a child node ('->'); its root line is missing",
                    number,
                    "the root node on the first line of the plan",
                )
            node, col = _new_node(m, number, arrow=False)
            root_indent = indent
            stmt = " ".join(query_text).strip() if query_text else statement
            plan = Plan(node, "postgres", "text", number, {"statement": stmt or None})
            plans.append(plan)
            stack = [_Frame(col, node)]
            section = None
            in_query_text = False
            continue
        # a node below the root
        if stripped.startswith("->"):
            m = _NODE_LINE.match(line)
            if m is None or not m.group("head"):
                raise PlanParseError(
                    f"line {number}: node line without a node name", number, "'->  Node Name …'"
                )
            if paren_balance(stripped) > 0:
                raise PlanParseError(
                    f"line {number}: node line is cut short (unclosed parenthesis): '{stripped[:80]}'",
                    number,
                    "a complete node line ending in ')'",
                )
            arrow_col = indent
            while stack and stack[-1].col >= arrow_col:
                stack.pop()
            if not stack:
                raise PlanParseError(
                    f"line {number}: node is not indented under any other node",
                    number,
                    "child nodes ('->') indented right of their parent",
                )
            header = stack[-1].header if stack[-1].node is None else None
            parent_frame = next(f for f in reversed(stack) if f.node is not None)
            node, col = _new_node(m, number, arrow=True)
            if header is not None:
                node.fields["subplan_name"] = header
                node.fields["parent_relationship"] = (
                    "SubPlan" if header.startswith("SubPlan") else "InitPlan"
                )
            else:
                kids = [
                    c
                    for c in parent_frame.node.children  # type: ignore[union-attr]
                    if c.fields.get("parent_relationship") not in ("InitPlan", "SubPlan")
                ]
                node.fields["parent_relationship"] = _relationship(parent_frame.node, len(kids))  # type: ignore[arg-type]
            parent_frame.node.children.append(node)  # type: ignore[union-attr]
            stack.append(_Frame(col, node))
            section = None
            continue
        # a second plan in the same block
        if indent <= root_indent and _HAS_INFO.search(stripped) and not _TOP_LEVEL.match(stripped):
            m = _NODE_LINE.match(line)
            if m and m.group("head") and ":" not in m.group("head"):
                node, col = _new_node(m, number, arrow=False)
                plan = Plan(node, "postgres", "text", number, {"statement": None})
                plans.append(plan)
                stack = [_Frame(col, node)]
                section = None
                continue
        # sub-plan headers
        sub = _SUBPLAN.match(stripped)
        cte = _CTE.match(stripped) if sub is None else None
        if (sub or cte) and indent > root_indent:
            while stack and stack[-1].col >= indent:
                stack.pop()
            if stack:
                stack.append(_Frame(indent, header=stripped if sub else f"CTE {cte.group('name')}"))  # type: ignore[union-attr]
                section = None
                continue
        # plan-level lines and their sections (some copies indent them: ' Total runtime' under
        # a root at column 0)
        if indent <= root_indent or (
            _TOP_LEVEL.match(stripped) and (_KEY_VALUE.match(stripped) or _TRIGGER.match(stripped))
        ):
            stack = []
            section = _top_level(plan, stripped)
            continue
        while stack and stack[-1].col >= indent:
            stack.pop()
        if not stack or stack[-1].node is None:
            if section is not None or not stack:
                _section_line(plan, section, stripped)
                continue
            raise PlanParseError(
                f"line {number}: '{stripped[:80]}' follows a sub-plan header but is not a node",
                number,
                "a '->' node line under InitPlan/SubPlan/CTE",
            )
        node = stack[-1].node
        kv = _KEY_VALUE.match(stripped)
        if kv:
            _set_property(node, kv.group("key"), kv.group("value") or "")
        elif node.node_type == "ModifyTable" and _MODIFY.match(stripped):
            node.properties.setdefault("Result Relations", []).append(stripped)
        else:
            node.properties.setdefault("unparsed", []).append(stripped)
    if not plans:
        raise PlanParseError(
            "no plan node found", lines[0][0] if lines else None, "a text-format EXPLAIN plan"
        )
    for p in plans:
        _zero_fill(p, _BLOCK_COLUMNS)
        _zero_fill(p, ("io_read_ms", "io_write_ms"))
    return plans


_BLOCK_COLUMNS = (
    "shared_hit_blocks",
    "shared_read_blocks",
    "shared_dirtied_blocks",
    "shared_written_blocks",
    "local_hit_blocks",
    "local_read_blocks",
    "local_dirtied_blocks",
    "local_written_blocks",
    "temp_read_blocks",
    "temp_written_blocks",
)


def _zero_fill(plan: Plan, columns: tuple[str, ...]) -> None:
    """The text format omits zero counters (and a node's whole Buffers line when all are
    zero): once any node of the plan prints them, the option was on and missing ones are 0."""
    nodes = list(plan.nodes())
    if not any(c in n.fields for n in nodes for c in columns):
        return
    for n in nodes:
        for c in columns:
            n.fields.setdefault(c, 0.0)


def _relationship(parent: PlanNode, index: int) -> str:
    """Outer/Inner for the first two children of joins and most nodes; Member for appends."""
    if parent.node_type in ("Append", "Merge Append", "BitmapAnd", "BitmapOr", "Recursive Union"):
        return "Member"
    if parent.node_type == "Subquery Scan":
        return "Subquery"
    return "Outer" if index == 0 else "Inner"


def _top_level(plan: Plan, text: str) -> str | None:
    """Record a plan-level line; return the section it opens (Planning:, JIT:), if any."""
    trig = _TRIGGER.match(text)
    if trig:
        t = to_float(trig.group("time"))
        if t is not None:
            plan.fields["trigger_ms"] = (plan.fields.get("trigger_ms") or 0.0) + t
        return None
    kv = _KEY_VALUE.match(text)
    if not kv:
        return None
    key, value = kv.group("key").lower(), (kv.group("value") or "")
    if key == "planning time":
        plan.fields["planning_ms"] = _ms(value)
    elif key in ("execution time", "total runtime"):
        plan.fields["execution_ms"] = _ms(value)
    elif key == "query identifier":
        plan.fields["query_id"] = value
    elif key == "settings":
        plan.fields["settings"] = value
    elif key == "query text":
        plan.fields["statement"] = value
    elif not value:
        return key  # "planning", "jit", …
    return None


def _section_line(plan: Plan, section: str | None, text: str) -> None:
    if section == "jit":
        kv = _KEY_VALUE.match(text)
        if kv and kv.group("key").lower() == "timing":
            m = re.search(rf"Total ({_NUM}) ms", kv.group("value") or "")
            if m:
                plan.fields["jit_ms"] = to_float(m.group(1))
