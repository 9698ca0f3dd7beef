"""MySQL and MariaDB EXPLAIN → :class:`~auditkit.loaders._explain_nodes.Plan`.

Three shapes of the traditional output are found anywhere in a file (a mysql client session,
a mysqltest ``.result``, a bare copy):

* the mysql client's boxed table (``+----+`` borders, ``| id | select_type | … |``), where a
  cell may be wider than its column (``| NULL | UNION RESULT |``);
* TAB-separated rows under an ``id<TAB>select_type<TAB>…`` header (``mysql -B``, mysqltest);
* ``\\G`` vertical rows (``*************************** 1. row ***``, ``key: value``).

Each row is one node, in the order printed (MySQL's join order), all top level: ``node_type``
is the access type (``NULL`` when the row reads no table), ``relation`` the table,
``index_name`` the key, ``plan_rows`` the rows estimate, ``filter`` (and ``extra``) the Extra
column. MariaDB's ANALYZE adds ``r_rows`` (→ ``actual_rows``) and ``r_filtered``.

JSON plans are read whether they stand alone or sit in a transcript after an ``EXPLAIN``
line, in a boxed ``| EXPLAIN |`` cell or in a ``\\G`` ``EXPLAIN: {`` row:

* version 1 (MySQL 5.6–8.x ``FORMAT=JSON``, MariaDB): ``query_block`` and the operations
  nested in it (``nested_loop``, ``ordering_operation``, ``grouping_operation``,
  ``duplicates_removal``, ``materialized_from_subquery``, ``union_result``, MariaDB
  ``filesort``, ``temporary_table``, ``subquery_cache``…) become a tree; subquery lists
  (``attached_subqueries``, ``subqueries``, ``query_specifications``…) become children whose
  ``parent_relationship`` is the list's name. ``/* cost_info */`` end markers
  (``end_markers_in_json=on``) are removed outside strings first. A table's ``node_type`` is its
  ``access_type``; other nodes are named by their JSON key. MariaDB ANALYZE: ``r_loops`` →
  ``loops``, ``r_rows`` → ``actual_rows``, a block's ``r_total_time_ms`` → its time (per loop
  in ``actual_total_ms``), a table's ``r_table_time_ms + r_other_time_ms`` and a filesort's
  ``r_total_time_ms`` → their own (exclusive) time; ``query_optimization.r_total_time_ms`` →
  ``planning_ms``.
* version 2 (MySQL 8.4 ``explain_json_format_version=2``, with or without ANALYZE): the
  iterator tree (``operation``, ``inputs``). Table accesses get the traditional access type
  as ``node_type`` so checks read every MySQL format alike (table scan → ``ALL``, index
  lookup → ``ref``/``eq_ref``, range scan → ``range``, index scan → ``index``); other
  iterators are named by ``access_type`` (``nested_loop``, ``hash_join``, ``filter``,
  ``sort``, ``limit``…). ``operation`` is kept as ``label``; ``actual_first_row_ms`` /
  ``actual_last_row_ms`` / ``actual_rows`` are per loop, as in PostgreSQL.

Plans exported in bulk — a folder of ``q17.json`` (``EXPLAIN FORMAT=JSON``), ``q17.analyze.json``
(MariaDB ``ANALYZE FORMAT=JSON``) or ``q17.txt`` (tabular) files, each beside the statement it
explains in ``q17.sql`` — carry no statement of their own: :func:`statement_beside` reads it from
the ``.sql`` file, so the plan gets the statement's fingerprint and joins the slow log and the
digests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from auditkit.lazy_re import compile_later
from auditkit.loaders import _json
from auditkit.loaders._explain_nodes import Failure, Plan, PlanNode, PlanParseError, to_float
from auditkit.loaders._explain_psql import find_json_end, statement_from, strip_explain
from auditkit.loaders.stream import read_text

__all__ = [
    "plans_from_json_text",
    "read_mysql",
    "sniff_mysql",
    "statement_beside",
    "strip_json_comments",
]

_BORDER = compile_later(r"^\+[-+]+\+\s*$")
_BOX_ROW = compile_later(r"^\|(?P<inner>.*)\|\s*$")
_TAB_HEADER = compile_later(r"^id\tselect_type\t")
_TAB_ROW = compile_later(r"^(?:\d+|NULL)\t")
_VERTICAL = compile_later(r"^\*{5,} (?P<n>\d+)\. row \*{5,}\s*$")
_VERTICAL_KV = compile_later(r"^\s*(?P<k>[A-Za-z_][\w ]*?):(?: (?P<v>.*))?$")
_JSON_START = compile_later(r"^(?:\|\s*|EXPLAIN:\s*|\s*)\{")
_SELECT_PREFIX = compile_later(r"^/\* select#\d+ \*/\s*")
_TRADITIONAL = ("id", "select_type", "table", "type")


#: a JSON string (to its closing quote, or the end of a damaged text) or a ``/* … */`` comment
_STRING_OR_COMMENT = compile_later(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|/\*.*?(?:\*/|\Z)', re.S)


def strip_json_comments(text: str) -> str:
    """Remove ``/* … */`` comments outside JSON strings (MySQL's end markers)."""
    if "/*" not in text:
        return text
    return _STRING_OR_COMMENT.sub(lambda m: m.group(0) if m.group(0)[0] == '"' else "", text)


# -- traditional rows ------------------------------------------------------------------------


def _null(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip()
    return None if v in ("", "NULL") else v


def _row_node(row: dict[str, str], line: int) -> PlanNode:
    get = {k.strip().lower(): v for k, v in row.items()}
    access = _null(get.get("type")) or "NULL"
    table = _null(get.get("table"))
    extra = _null(get.get("extra"))
    fields: dict[str, Any] = {
        "select_id": to_float(_null(get.get("id"))),
        "select_type": _null(get.get("select_type")),
        "relation": table,
        "alias": table,
        "partitions": _null(get.get("partitions")),
        "possible_keys": _null(get.get("possible_keys")),
        "index_name": _null(get.get("key")),
        "key_len": _null(get.get("key_len")),
        "ref": _null(get.get("ref")),
        "plan_rows": to_float(_null(get.get("rows"))),
        "filtered": to_float(_null(get.get("filtered"))),
        "extra": extra,
        "filter": extra,
        "label": f"{access} on {table}" if table else access,
    }
    props: dict[str, Any] = {}
    if "r_rows" in get:
        fields["actual_rows"] = to_float(_null(get["r_rows"]))
    for k, v in get.items():
        if k not in (
            "id",
            "select_type",
            "table",
            "partitions",
            "type",
            "possible_keys",
            "key",
            "key_len",
            "ref",
            "rows",
            "filtered",
            "extra",
            "r_rows",
        ):
            props[k] = _null(v)
    return PlanNode(access, fields, line=line, properties=props)


def _rows_plan(
    rows: list[tuple[int, dict[str, str]]], plan_format: str, statement: str | None
) -> Plan:
    nodes = [_row_node(r, n) for n, r in rows]
    dialect = "mariadb" if any(k.strip().lower() == "r_rows" for k in rows[0][1]) else "mysql"
    return Plan(
        nodes[0], dialect, plan_format, rows[0][0], {"statement": statement}, siblings=nodes[1:]
    )


def _cells(inner: str) -> list[str]:
    return [c.strip() for c in inner.split("|")]


# -- JSON ------------------------------------------------------------------------------------

_V1_NODE_KEYS = {
    "query_block",
    "table",
    "nested_loop",
    "ordering_operation",
    "grouping_operation",
    "duplicates_removal",
    "filesort",
    "temporary_table",
    "materialized_from_subquery",
    "union_result",
    "windowing",
    "buffer_result",
    "subquery_cache",
    "read_sorted_file",
    "block-nl-join",
    "materialized",
    "expression_cache",
    "insert_from",
    "update",
    "delete",
    "replace_into",
    "insert",
}
_V1_LIST_KEYS = {
    "attached_subqueries",
    "subqueries",
    "optimized_away_subqueries",
    "order_by_subqueries",
    "group_by_subqueries",
    "having_subqueries",
    "select_list_subqueries",
    "update_value_subqueries",
    "query_specifications",
}


def _joined(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _v1_node(key: str, obj: Any, line: int) -> PlanNode:
    if not isinstance(obj, dict):
        if isinstance(obj, list):  # nested_loop / duplicates_removal: a list of wrapped nodes
            node = PlanNode(key, {"label": key}, line=line)
            for item in obj:
                node.children.append(_v1_unwrap(item, line, None))
            return node
        raise PlanParseError(
            f"'{key}' holds {type(obj).__name__}, not an object", line, "a JSON object"
        )
    node_type = str(obj.get("access_type") or "NULL") if key == "table" else key
    fields: dict[str, Any] = {"extra": _extra(obj)}
    props: dict[str, Any] = {}
    node = PlanNode(node_type, fields, line=line, properties=props)
    for k, v in obj.items():
        if k in _V1_NODE_KEYS and isinstance(v, dict | list):
            node.children.append(_v1_node(k, v, line))
        elif k in _V1_LIST_KEYS and isinstance(v, list):
            for item in v:
                node.children.append(_v1_unwrap(item, line, k))
        elif isinstance(v, dict):
            for sub_k, sub_v in v.items():
                props[f"{k}.{sub_k}"] = sub_v
        else:
            props[k] = v
    _v1_fields(node, key, props)
    return node


def _v1_unwrap(item: Any, line: int, relationship: str | None) -> PlanNode:
    if not isinstance(item, dict):
        raise PlanParseError("a subquery or join member is not an object", line, "a JSON object")
    keys = [k for k in item if k in _V1_NODE_KEYS]
    if not keys:
        raise PlanParseError(
            f"a list item has none of {sorted(_V1_NODE_KEYS)[:4]}…", line, "a wrapped plan node"
        )
    node = _v1_node(keys[0], item[keys[0]], line)
    for k, v in item.items():
        if k != keys[0] and not isinstance(v, dict | list):
            node.properties[k] = v
        elif k != keys[0]:
            node.children.append(
                _v1_node(k, v, line)
            ) if k in _V1_NODE_KEYS else node.properties.setdefault(k, v)
    if relationship:
        node.fields["parent_relationship"] = relationship
    return node


def _v1_fields(node: PlanNode, key: str, props: dict[str, Any]) -> None:
    f = node.fields
    pop = props.pop
    if key == "table":
        f["relation"] = pop("table_name", None)
        f["alias"] = f["relation"]
        f["index_name"] = pop("key", None)
        f["possible_keys"] = _joined(pop("possible_keys", None))
        f["key_len"] = _joined(pop("key_length", None))
        f["ref"] = _joined(pop("ref", None))
        f["partitions"] = _joined(pop("partitions", None))
        rows = pop("rows_examined_per_scan", None)
        if rows is None:
            rows = pop("rows", None)
        f["plan_rows"] = to_float(rows)
        f["filtered"] = to_float(pop("filtered", None))
        f["filter"] = pop("attached_condition", None)
        f["index_cond"] = pop("index_condition", None)
        read = to_float(props.get("cost_info.read_cost"))
        evaluate = to_float(props.get("cost_info.eval_cost"))
        if read is not None or evaluate is not None:
            f["total_cost"] = (read or 0.0) + (evaluate or 0.0)
        props.pop("access_type", None)
        f["label"] = f"{node.node_type} on {f['relation']}" if f["relation"] else node.node_type
    else:
        f["label"] = key
        if key == "query_block":
            f["select_id"] = to_float(props.get("select_id"))
            props.pop("select_id", None)
            f["total_cost"] = to_float(props.get("cost_info.query_cost"))
    if "cost" in props and f.get("total_cost") is None:
        f["total_cost"] = to_float(pop("cost"))
    if "sort_key" in props:
        f["sort_key"] = str(pop("sort_key"))
    # MariaDB ANALYZE
    loops = to_float(props.get("r_loops"))
    if loops is not None:
        f["loops"] = loops
        props.pop("r_loops")
    if "r_rows" in props:
        f["actual_rows"] = to_float(pop("r_rows"))
    table_ms = to_float(props.get("r_table_time_ms"))
    other_ms = to_float(props.get("r_other_time_ms"))
    total_ms = to_float(props.get("r_total_time_ms"))
    if key == "table" and (table_ms is not None or other_ms is not None):
        own = (table_ms or 0.0) + (other_ms or 0.0)
        node.self_ms = own
        f["actual_total_ms"] = own / loops if loops else own
    elif key == "query_block" and total_ms is not None:
        node.inclusive_ms = total_ms
        f["actual_total_ms"] = total_ms / loops if loops else total_ms
    elif key in ("filesort", "window", "windowing") and total_ms is not None:
        node.self_ms = total_ms
    if loops is not None:
        f["never_executed"] = loops == 0.0


def _inherit_select_id(root: PlanNode) -> None:
    """Give every node the select id of its enclosing query_block (as the traditional rows do)."""
    stack: list[tuple[PlanNode, Any]] = [(root, None)]
    while stack:
        node, current = stack.pop()
        if node.fields.get("select_id") is not None:
            current = node.fields["select_id"]
        else:
            node.fields["select_id"] = current
        stack.extend((child, current) for child in node.children)


# JSON flags → the words the traditional Extra column prints, so checks read both alike
_EXTRA_FLAGS = (
    ("message", None),
    ("using_index", "Using index"),
    ("index_condition", "Using index condition"),
    ("attached_condition", "Using where"),
    ("using_MRR", "Using MRR"),
    ("using_temporary_table", "Using temporary"),
    ("using_filesort", "Using filesort"),
    ("first_match", "FirstMatch({})"),
    ("using_join_buffer", "Using join buffer ({})"),
    ("const_row_not_found", "const row not found"),
)


def _extra(obj: dict[str, Any]) -> str | None:
    words = []
    for key, text in _EXTRA_FLAGS:
        value = obj.get(key)
        if value in (None, False, ""):
            continue
        words.append(str(value) if text is None else text.format(value))
    return "; ".join(words) if words else None


def _v2_type(obj: dict[str, Any]) -> str:
    access = str(obj.get("access_type") or "")
    operation = str(obj.get("operation") or "")
    if access == "table":
        return "ALL"
    if access == "index":
        kind = str(obj.get("index_access_type") or "")
        if kind == "index_lookup":
            return "eq_ref" if operation.startswith("Single-row") else "ref"
        return {
            "index_range_scan": "range",
            "index_scan": "index",
            "full_text_search": "fulltext",
        }.get(kind, kind or "index")
    if access == "join":
        return {"nested_loop": "nested_loop", "hash": "hash_join"}.get(
            str(obj.get("join_algorithm")), "join"
        )
    return access or operation.split(":")[0].strip() or "operation"


def _v2_node(obj: Any, line: int) -> PlanNode:
    if not isinstance(obj, dict):
        raise PlanParseError("an iterator is not an object", line, "a JSON object with 'operation'")
    fields: dict[str, Any] = {
        "label": obj.get("operation"),
        "relation": obj.get("table_name"),
        "alias": obj.get("alias") or obj.get("table_name"),
        "schema": obj.get("schema_name"),
        "index_name": obj.get("index_name"),
        "plan_rows": to_float(obj.get("estimated_rows")),
        "total_cost": to_float(obj.get("estimated_total_cost")),
        "startup_cost": to_float(obj.get("estimated_first_row_cost")),
        "actual_rows": to_float(obj.get("actual_rows")),
        "loops": to_float(obj.get("actual_loops")),
        "actual_startup_ms": to_float(obj.get("actual_first_row_ms")),
        "actual_total_ms": to_float(obj.get("actual_last_row_ms")),
        "filter": obj.get("condition"),
        "index_cond": _joined(obj.get("lookup_condition") or obj.get("ranges")),
        "join_type": obj.get("join_type"),
    }
    if fields["loops"] is not None:
        fields["never_executed"] = fields["loops"] == 0.0
    mapped = {
        "operation",
        "table_name",
        "alias",
        "schema_name",
        "index_name",
        "estimated_rows",
        "estimated_total_cost",
        "estimated_first_row_cost",
        "actual_rows",
        "actual_loops",
        "actual_first_row_ms",
        "actual_last_row_ms",
        "condition",
        "lookup_condition",
        "ranges",
        "join_type",
        "inputs",
        "query",
    }
    props = {
        k: v
        for k, v in obj.items()
        if k not in mapped and not (isinstance(v, list) and v and isinstance(v[0], dict))
    }
    node = PlanNode(_v2_type(obj), fields, line=line, properties=props)
    for k, v in obj.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for child in v:
                c = _v2_node(child, line)
                if k != "inputs":
                    c.fields["parent_relationship"] = k
                node.children.append(c)
    return node


def plans_from_json_text(text: str, line: int, statement: str | None = None) -> list[Plan]:
    """The plan(s) in one MySQL/MariaDB JSON document (comments allowed)."""
    cleaned = strip_json_comments(text)
    try:
        doc = _json.loads(cleaned)
    except json.JSONDecodeError as exc:
        at = line + exc.lineno - 1
        cut = exc.pos >= len(cleaned.rstrip()) - 1
        raise PlanParseError(
            f"line {at}: invalid JSON plan ({'the plan is cut short' if cut else exc.msg} at column {exc.colno})",
            at,
            "a complete EXPLAIN FORMAT=JSON document",
        ) from None
    docs = doc if isinstance(doc, list) else [doc]
    plans = []
    for d in docs:
        if not isinstance(d, dict):
            raise PlanParseError(
                f"line {line}: the JSON document is not an object", line, "a JSON object"
            )
        fields: dict[str, Any] = {"statement": statement}
        if "query_block" in d:
            root = _v1_node("query_block", d["query_block"], line)
            mariadb = any(k.startswith("r_") for n in root.walk() for k in n.properties) or any(
                n.fields.get("loops") is not None for n in root.walk()
            )
            opt = d.get("query_optimization")
            if isinstance(opt, dict):
                fields["planning_ms"] = to_float(opt.get("r_total_time_ms"))
                mariadb = True
            if root.inclusive_ms is not None:
                fields["execution_ms"] = root.inclusive_ms
            _inherit_select_id(root)
            plans.append(
                Plan(
                    root,
                    "mariadb" if mariadb else "mysql",
                    "mariadb_json" if mariadb else "json",
                    line,
                    fields,
                )
            )
        elif "operation" in d or "query_plan" in d:
            body = d.get("query_plan", d)
            root = _v2_node(body, line)
            query = d.get("query") or (body.get("query") if isinstance(body, dict) else None)
            if query:
                fields["statement"] = _SELECT_PREFIX.sub("", str(query))
            plans.append(Plan(root, "mysql", "json_v2", line, fields))
        else:
            raise PlanParseError(
                f"line {line}: the JSON document holds no MySQL plan",
                line,
                "'query_block' (FORMAT=JSON v1, MariaDB) or 'operation' (v2)",
            )
    return plans


# -- the file --------------------------------------------------------------------------------


def read_mysql(text: str) -> tuple[list[Plan], list[Failure]]:
    """Every MySQL plan in ``text`` and the failures, in file order."""
    lines = text.split("\n")
    n = len(lines)
    plans: list[Plan] = []
    failures: list[Failure] = []
    i = 0
    last_end = 0

    def statement(upto: int) -> str | None:
        return statement_from(lines[last_end:upto])

    while i < n:
        line = lines[i]
        # boxed table
        if (
            _BORDER.match(line)
            and i + 2 < n
            and _BOX_ROW.match(lines[i + 1])
            and _BORDER.match(lines[i + 2])
        ):
            header = _cells(_BOX_ROW.match(lines[i + 1]).group("inner"))  # type: ignore[union-attr]
            lower = [h.lower() for h in header]
            j = i + 3
            if all(c in lower for c in _TRADITIONAL):
                rows: list[tuple[int, dict[str, str]]] = []
                while j < n and not _BORDER.match(lines[j]):
                    m = _BOX_ROW.match(lines[j].rstrip())
                    if m:
                        cells = _cells(m.group("inner"))
                        if len(cells) != len(header):
                            failures.append(
                                Failure(
                                    j + 1,
                                    "malformed EXPLAIN row",
                                    f"line {j + 1}: {len(cells)} cells for {len(header)} columns",
                                )
                            )
                        else:
                            rows.append((j + 1, dict(zip(header, cells, strict=True))))
                    j += 1
                if j >= n:
                    failures.append(
                        Failure(
                            i + 1,
                            "truncated plan",
                            f"line {i + 1}: the EXPLAIN table has no closing border",
                        )
                    )
                elif rows:
                    plans.append(_rows_plan(rows, "tabular", statement(i)))
                last_end = j + 1
                i = j + 1
                continue
            if lower == ["explain"]:
                end = find_json_end(lines, j)
                if end is not None:
                    body = [lines[k] for k in range(j, end + 1)]
                    body[0] = body[0].lstrip("| ")
                    body[-1] = body[-1].rstrip().rstrip("|").rstrip()
                    _json_plans(body, j + 1, statement(i), plans, failures)
                    last_end = end + 1
                    i = end + 1
                    continue
        # TAB-separated table
        if _TAB_HEADER.match(line):
            header = line.rstrip("\n").split("\t")
            rows = []
            j = i + 1
            while j < n and lines[j].count("\t") == len(header) - 1 and _TAB_ROW.match(lines[j]):
                rows.append((j + 1, dict(zip(header, lines[j].split("\t"), strict=True))))
                j += 1
            if rows:
                plans.append(_rows_plan(rows, "tabular", statement(i)))
            else:
                failures.append(
                    Failure(
                        i + 1, "truncated plan", f"line {i + 1}: an EXPLAIN header without rows"
                    )
                )
            last_end = j
            i = j
            continue
        # \G vertical rows
        m = _VERTICAL.match(line)
        if m and m.group("n") == "1":
            stmt = statement(i)
            rows = []
            j = i
            while j < n and _VERTICAL.match(lines[j]):
                k = j + 1
                record: dict[str, str] = {}
                while k < n and not _VERTICAL.match(lines[k]):
                    kv = _VERTICAL_KV.match(lines[k])
                    if not kv:
                        break
                    if kv.group("k").strip() == "EXPLAIN" and (kv.group("v") or "").strip() == "{":
                        end = find_json_end(lines, k)
                        if end is not None:
                            body = [lines[x] for x in range(k, end + 1)]
                            body[0] = "{"
                            _json_plans(body, k + 1, stmt, plans, failures)
                            k = end + 1
                            break
                    record[kv.group("k").strip()] = kv.group("v") or ""
                    k += 1
                if record:
                    rows.append((j + 1, record))
                j = k
            # a \G result that is not an EXPLAIN (no id/select_type) is passed over
            if rows and all(c in {r.lower() for r in rows[0][1]} for c in ("id", "select_type")):
                plans.append(_rows_plan(rows, "vertical", stmt))
            last_end = j
            i = j
            continue
        # JSON document
        if _JSON_START.match(line):
            end = find_json_end(lines, i)
            body = [lines[k] for k in range(i, (end if end is not None else n - 1) + 1)]
            body[0] = body[0].strip().lstrip("|").strip()
            if body[0].startswith("EXPLAIN:"):
                body[0] = body[0][len("EXPLAIN:") :].strip()
            if end == i and body[0].rstrip().endswith("|"):  # a one-line document in a boxed cell
                body[0] = body[0].rstrip().rstrip("|").rstrip()
            looks = any(
                tok in "\n".join(body[:60])
                for tok in ('"query_block"', '"operation"', '"query_plan"', '"select_id"')
            )
            if looks:
                if end is None:
                    failures.append(
                        Failure(
                            i + 1,
                            "truncated plan",
                            f"line {i + 1}: the JSON plan is cut short (no closing brace)",
                        )
                    )
                    break
                _json_plans(body, i + 1, statement(i), plans, failures)
                last_end = end + 1
                i = end + 1
                continue
        i += 1
    return plans, failures


def _json_plans(
    body: list[str], line: int, statement: str | None, plans: list[Plan], failures: list[Failure]
) -> None:
    try:
        plans.extend(plans_from_json_text("\n".join(body), line, statement))
    except RecursionError:
        failures.append(
            Failure(line, "plan too deep", f"line {line}: the plan is nested too deep to read")
        )
    except PlanParseError as exc:
        reason = "truncated plan" if "cut short" in exc.message else "invalid JSON plan"
        failures.append(Failure(line, reason, str(exc), exc.line or line))


def sniff_mysql(head: str) -> tuple[int, int]:
    """(traditional EXPLAIN tables, JSON plans) seen in ``head``."""
    tabular = len(re.findall(r"^id\tselect_type\t", head, re.M))
    tabular += len(re.findall(r"^\|\s*id\s*\|\s*select_type\s*\|", head, re.M))
    if re.search(r"^\*{5,} 1\. row \*{5,}", head, re.M) and re.search(
        r"^\s*select_type: ", head, re.M
    ):
        tabular += 1
    json_plans = len(
        re.findall(r'^(?:\|\s)?\s{0,2}\{?\s*"query_(?:block|optimization)"\s*:\s*\{', head, re.M)
    )
    if re.search(r'"operation"\s*:', head) and re.search(r'"access_type"\s*:', head):
        json_plans += 1
    return tabular, json_plans


def statement_beside(path: str | Path) -> str | None:
    """The statement in the ``.sql`` file beside plan file ``path``, or None.

    ``q17.json`` and ``q17.analyze.json`` both look for ``q17.analyze.sql`` then ``q17.sql``; a
    leading ``EXPLAIN …``/``ANALYZE …`` and the closing ``;`` are removed. Files over 1 MiB,
    files that are themselves the plan, and files holding no statement give None.
    """
    p = Path(path)
    stem = p.name
    candidates = []
    while "." in stem:
        stem = stem.rsplit(".", 1)[0]
        candidates.append(p.with_name(f"{stem}.sql"))
    for sql_path in candidates:
        if sql_path == p or not sql_path.is_file() or sql_path.stat().st_size > 1 << 20:
            continue
        text, _bad = read_text(sql_path)
        lines = [
            ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("--", "#"))
        ]
        sql = re.sub(r"(?:;|\\[Gg])\s*$", "", "\n".join(lines).strip())
        if not sql or re.search(r"^\s*(?:\+-|\|\s*id\s*\||\{)", text, re.M):
            continue  # empty, or an EXPLAIN result saved as .sql: not a statement
        return strip_explain(sql) or None
    return None
