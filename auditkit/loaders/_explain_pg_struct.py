"""PostgreSQL ``EXPLAIN (FORMAT JSON | XML | YAML)`` → :class:`~auditkit.loaders._explain_nodes.Plan`.

The three structured formats carry the same properties under the same names (XML writes
``Node-Type`` for ``Node Type`` and ``I-O-Read-Time`` for ``I/O Read Time``), so each is
decoded into nested dicts and lists and read by one function. A document may be:

* EXPLAIN's own output: a list holding one object with ``Plan`` (and ``Planning Time``,
  ``Execution Time``, ``Triggers``, ``JIT``, ``Settings``, ``Planning``…);
* an auto_explain JSON object: ``Query Text`` + ``Plan`` (the statement comes with it);
* a bare node object (``Node Type`` at the top), as tools export a single plan;
* several of those in a list, or one per line (JSON Lines): each is a plan.

Every option set is understood (ANALYZE, BUFFERS, VERBOSE, SETTINGS, WAL, SERIALIZE,
MEMORY, TIMING OFF); properties without a column go to ``properties``. pg_regress masks
numbers as ``N``/``N.N``, which is not JSON; such values are read as missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

from auditkit.lazy_re import compile_later
from auditkit.loaders import _json
from auditkit.loaders._explain_nodes import Plan, PlanNode, PlanParseError, to_float

__all__ = [
    "documents_from_json",
    "documents_from_xml",
    "documents_from_yaml",
    "plans_from_document",
]

_MASKED = compile_later(r"(:\s*|[\[,]\s*)(?:-?N(?:\.N)?|xxx)(?=\s*[,}\]\n])")


def _key(name: str) -> str:
    """Canonical property key: case, spaces, dashes and slashes ignored (XML and JSON agree)."""
    return re.sub(r"[\s\-/_]", "", name).lower()


def documents_from_json(text: str, first_line: int = 1) -> list[Any]:
    """The JSON value(s) in ``text``: one document, or one per line (JSON Lines).

    Raises :class:`PlanParseError` with the line of the syntax error.
    """
    try:
        return [_json.loads(text)]
    except json.JSONDecodeError as exc:
        error = exc
    fixed = _MASKED.sub(lambda m: m.group(1) + "null", text)
    if fixed != text:
        try:
            return [_json.loads(fixed)]
        except json.JSONDecodeError as exc:
            error = exc
    if '""' in text:  # pgAdmin doubles every quote
        try:
            return [_json.loads(text.replace('""', '"'))]
        except json.JSONDecodeError:
            pass
    if error.msg == "Extra data":
        docs = []
        for i, row in enumerate(text.split("\n")):
            if row.strip():
                try:
                    docs.append(_json.loads(row))
                except json.JSONDecodeError as exc:
                    raise PlanParseError(
                        f"line {first_line + i}: invalid JSON ({exc.msg})",
                        first_line + i,
                        "one JSON plan per line",
                    ) from None
        return docs
    line = first_line + error.lineno - 1
    where = "the plan is cut short" if error.pos >= len(text.rstrip()) - 1 else error.msg
    raise PlanParseError(
        f"line {line}: invalid JSON plan ({where} at column {error.colno})",
        line,
        "a complete EXPLAIN (FORMAT JSON) document",
    )


def _tag(elem: ElementTree.Element) -> str:
    return elem.tag.split("}", 1)[-1]


def _xml_to_obj(elem: ElementTree.Element) -> Any:
    """A non-Plan XML element as text, list (repeated or ``Item`` children) or dict."""
    children = list(elem)
    if not children:
        return (elem.text or "").strip()
    tags = [_tag(c) for c in children]
    if (len(children) > 1 and len(set(tags)) == 1) or tags[0] in ("Item", "Worker", "Trigger"):
        return [_xml_to_obj(c) for c in children]
    return {t.replace("-", " "): _xml_to_obj(c) for t, c in zip(tags, children, strict=True)}


def documents_from_xml(text: str, first_line: int = 1) -> list[Any]:
    """The ``<explain>`` document in ``text`` as dicts (one per ``<Query>``)."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise PlanParseError(
            "XML with a DOCTYPE or entities is refused", first_line, "EXPLAIN (FORMAT XML) output"
        )
    try:
        root = ElementTree.fromstring(text.strip())
    except ElementTree.ParseError as exc:
        line = first_line + exc.position[0] - 1
        raise PlanParseError(
            f"line {line}: invalid XML plan ({exc})",
            line,
            "a complete EXPLAIN (FORMAT XML) document",
        ) from None
    queries = [q for q in root if _tag(q) == "Query"]
    docs: list[Any] = []
    for q in queries or [root]:
        doc: dict[str, Any] = {}
        for c in q:
            tag = _tag(c)
            if tag == "Plan":
                doc["Plan"] = _xml_plan(c)
            else:
                doc[tag.replace("-", " ")] = _xml_to_obj(c)
        docs.append(doc)
    return docs


def _xml_plan(elem: ElementTree.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in elem:
        tag = _tag(c)
        if tag == "Plans":
            out["Plans"] = [_xml_plan(p) for p in c]
        else:
            out[tag.replace("-", " ")] = _xml_to_obj(c)
    return out


def documents_from_yaml(text: str, first_line: int = 1) -> list[Any]:
    """The YAML document in ``text``."""
    import yaml  # only YAML plans need it: not a cost of every command that detects formats

    try:
        return [yaml.safe_load(text)]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + (mark.line if mark is not None else 0)
        raise PlanParseError(
            f"line {line}: invalid YAML plan ({getattr(exc, 'problem', exc)})",
            line,
            "a complete EXPLAIN (FORMAT YAML) document",
        ) from None


# -- documents → plans -----------------------------------------------------------------------

_TEXT = {
    "relationname": "relation",
    "schema": "schema",
    "alias": "alias",
    "indexname": "index_name",
    "jointype": "join_type",
    "filter": "filter",
    "indexcond": "index_cond",
    "joinfilter": "join_filter",
    "hashcond": "hash_cond",
    "mergecond": "merge_cond",
    "recheckcond": "recheck_cond",
    "onetimefilter": "one_time_filter",
    "sortmethod": "sort_method",
    "sortspacetype": "sort_space_type",
    "parentrelationship": "parent_relationship",
    "subplanname": "subplan_name",
    "ctename": "cte_name",
    "functionname": "function_name",
    "strategy": "strategy",
    "partialmode": "partial_mode",
    "operation": "operation",
    "scandirection": "scan_direction",
    "cachekey": "cache_key",
}
_LISTS = {
    "sortkey": "sort_key",
    "groupkey": "group_key",
    "presortedkey": "presorted_key",
    "output": "output",
}
_NUMBERS = {
    "startupcost": "startup_cost",
    "totalcost": "total_cost",
    "planrows": "plan_rows",
    "planwidth": "plan_width",
    "actualstartuptime": "actual_startup_ms",
    "actualtotaltime": "actual_total_ms",
    "actualrows": "actual_rows",
    "actualloops": "loops",
    "rowsremovedbyfilter": "rows_removed_by_filter",
    "rowsremovedbyindexrecheck": "rows_removed_by_index_recheck",
    "rowsremovedbyjoinfilter": "rows_removed_by_join_filter",
    "sortspaceused": "sort_space_kb",
    "hashbuckets": "hash_buckets",
    "originalhashbuckets": "original_hash_buckets",
    "hashbatches": "hash_batches",
    "originalhashbatches": "original_hash_batches",
    "peakmemoryusage": "peak_memory_kb",
    "hashaggbatches": "hash_batches",
    "heapfetches": "heap_fetches",
    "sharedhitblocks": "shared_hit_blocks",
    "sharedreadblocks": "shared_read_blocks",
    "shareddirtiedblocks": "shared_dirtied_blocks",
    "sharedwrittenblocks": "shared_written_blocks",
    "localhitblocks": "local_hit_blocks",
    "localreadblocks": "local_read_blocks",
    "localdirtiedblocks": "local_dirtied_blocks",
    "localwrittenblocks": "local_written_blocks",
    "tempreadblocks": "temp_read_blocks",
    "tempwrittenblocks": "temp_written_blocks",
    "walrecords": "wal_records",
    "walfpi": "wal_fpi",
    "walbytes": "wal_bytes",
    "exactheapblocks": "exact_heap_blocks",
    "lossyheapblocks": "lossy_heap_blocks",
    "subplansremoved": "subplans_removed",
    "indexsearches": "index_searches",
    "workersplanned": "workers_planned",
    "workerslaunched": "workers_launched",
    "cachehits": "cache_hits",
    "cachemisses": "cache_misses",
    "cacheevictions": "cache_evictions",
    "cacheoverflows": "cache_overflows",
}
_IO_READ = {"ioreadtime", "sharedioreadtime", "localioreadtime", "tempioreadtime"}
_IO_WRITE = {"iowritetime", "sharediowritetime", "localiowritetime", "tempiowritetime"}
_AGG_LABEL = {
    "Plain": "Aggregate",
    "Sorted": "GroupAggregate",
    "Hashed": "HashAggregate",
    "Mixed": "MixedAggregate",
}


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _joined(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(_joined(v) or "" for v in value)
    return str(value)


def label_for(node_type: str, fields: dict[str, Any], props: dict[str, Any]) -> str:
    """The text format's name of a node described by structured properties."""
    label = node_type
    jt = fields.get("join_type")
    if node_type == "Aggregate":
        label = _AGG_LABEL.get(str(fields.get("strategy")), "Aggregate")
        if fields.get("partial_mode") in ("Partial", "Finalize"):
            label = f"{fields['partial_mode']} {label}"
    elif node_type == "SetOp":
        label = "HashSetOp" if fields.get("strategy") == "Hashed" else "SetOp"
        command = props.get("Command") or fields.get("operation")
        if command:
            label += f" {command}"
    elif node_type == "ModifyTable" and fields.get("operation"):
        label = str(fields["operation"])
    elif node_type == "Nested Loop" and jt and jt != "Inner":
        label = f"Nested Loop {jt} Join"
    elif node_type in ("Hash Join", "Merge Join") and jt and jt != "Inner":
        label = f"{node_type.split()[0]} {jt} Join"
    elif (
        node_type in ("Index Scan", "Index Only Scan")
        and fields.get("scan_direction") == "Backward"
    ):
        label = f"{node_type} Backward"
    elif node_type == "Custom Scan" and props.get("Custom Plan Provider"):
        label = f"Custom Scan ({props['Custom Plan Provider']})"
    elif node_type == "Foreign Scan" and fields.get("operation") not in (None, "Select"):
        label = f"Foreign {fields['operation']}"
    if _bool(props.get("Async Capable")):
        label = "Async " + label
    if fields.get("parallel_aware"):
        label = "Parallel " + label
    return label


def node_from_dict(obj: dict[str, Any], line: int | None = None) -> PlanNode:
    """One structured node (and its ``Plans``) as a :class:`PlanNode`."""
    node_type = str(obj.get("Node Type") or obj.get("Node-Type") or "")
    if not node_type:
        raise PlanParseError(
            "a plan node has no 'Node Type'", line, "every node to have a 'Node Type'"
        )
    fields: dict[str, Any] = {}
    props: dict[str, Any] = {}
    children: list[PlanNode] = []
    io_read: float | None = None
    io_write: float | None = None
    for name, value in obj.items():
        k = _key(name)
        if k == "nodetype":
            continue
        if k == "plans":
            for child in value or []:
                if not isinstance(child, dict):
                    raise PlanParseError(
                        "'Plans' holds something that is not a node", line, "a list of node objects"
                    )
                children.append(node_from_dict(child, line))
        elif k in _TEXT:
            fields[_TEXT[k]] = None if value is None else str(value)
        elif k in _LISTS:
            fields[_LISTS[k]] = _joined(value)
        elif k in _NUMBERS:
            fields[_NUMBERS[k]] = to_float(value)
            if to_float(value) is None and value not in (None, ""):
                props[name] = value
        elif k in _IO_READ:
            v = to_float(value)
            io_read = (
                (io_read or 0.0) + (v or 0.0) if v is not None or io_read is not None else None
            )
        elif k in _IO_WRITE:
            v = to_float(value)
            io_write = (
                (io_write or 0.0) + (v or 0.0) if v is not None or io_write is not None else None
            )
        elif k == "parallelaware":
            fields["parallel_aware"] = _bool(value)
        else:
            props[name] = value
    if io_read is not None:
        fields["io_read_ms"] = io_read
    if io_write is not None:
        fields["io_write_ms"] = io_write
    if "Command" in props and "operation" not in fields:
        fields["operation"] = str(props["Command"])
    analyzed = "loops" in fields or "actual_rows" in fields
    if analyzed:
        loops = fields.get("loops")
        fields["never_executed"] = loops == 0.0 if loops is not None else None
    if fields.get("relation") and not fields.get("alias"):
        fields["alias"] = fields["relation"]
    fields["label"] = label_for(node_type, fields, props)
    node = PlanNode(node_type, fields, children, line=line, properties=props)
    return node


def _plan_level(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in doc.items():
        k = _key(name)
        if k == "planningtime":
            out["planning_ms"] = to_float(value)
        elif k in ("executiontime", "totalruntime"):
            out["execution_ms"] = to_float(value)
        elif k == "querytext":
            out["statement"] = str(value).strip() or None
        elif k == "queryidentifier":
            out["query_id"] = str(value)
        elif k == "settings" and isinstance(value, dict):
            out["settings"] = ", ".join(f"{a} = '{b}'" for a, b in value.items())
        elif k == "triggers" and isinstance(value, list):
            times = [to_float(t.get("Time")) for t in value if isinstance(t, dict)]
            if any(t is not None for t in times):
                out["trigger_ms"] = sum(t for t in times if t is not None)
        elif k == "jit" and isinstance(value, dict):
            timing = value.get("Timing")
            if isinstance(timing, dict):
                total = timing.get("Total")
                out["jit_ms"] = to_float(total.get("Total") if isinstance(total, dict) else total)
    return out


def _plan_objects(doc: Any) -> Iterator[dict[str, Any]]:
    if isinstance(doc, list):
        for item in doc:
            yield from _plan_objects(item)
    elif isinstance(doc, dict):
        if "Plan" in doc and isinstance(doc["Plan"], dict):
            yield doc
        elif "Node Type" in doc or "Node-Type" in doc:
            yield {"Plan": doc}
        elif len(doc) == 1 and isinstance(next(iter(doc.values())), dict | list):
            # wrappers such as {"QUERY PLAN": [...]} (a JSON export of the psql result)
            yield from _plan_objects(next(iter(doc.values())))


def plans_from_document(
    doc: Any, plan_format: str, line: int, statement: str | None = None
) -> list[Plan]:
    """Every plan in a decoded structured document. Raises when there is none."""
    plans = []
    for obj in _plan_objects(doc):
        root = node_from_dict(obj["Plan"], line)
        fields = _plan_level(obj)
        if not fields.get("statement"):
            fields["statement"] = statement
        plans.append(Plan(root, "postgres", plan_format, line, fields))
    if not plans:
        raise PlanParseError(
            f"line {line}: the {plan_format.upper()} document holds no plan",
            line,
            "an object with a 'Plan' key (EXPLAIN output) or a node with 'Node Type'",
        )
    return plans
