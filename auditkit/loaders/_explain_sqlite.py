"""SQLite ``EXPLAIN QUERY PLAN`` → :class:`~auditkit.loaders._explain_nodes.Plan`.

Two shapes:

* the sqlite3 shell's tree (3.24+)::

      QUERY PLAN
      |--SCAN t1
      `--SEARCH t2 USING INDEX t2_x (x=?)

  where each level of nesting indents by three characters (``|  `` or spaces);
* the raw rows ``id, parent, notused, detail`` as a program prints them: ``2|0|0|SCAN t1``
  (the shell's list mode), TAB separated, or space separated as Django's
  ``QuerySet.explain()`` does (``2 0 0 SCAN t1``). Rows whose parent is not an earlier row
  (SQLite before 3.24 printed ``selectid|order|from|detail``) are top level.

``node_type`` is the operation (SCAN, SEARCH, USE TEMP B-TREE, CO-ROUTINE, MATERIALIZE,
COMPOUND QUERY, SCALAR SUBQUERY…), ``label`` the whole detail text; a SCAN or SEARCH gives
``relation`` and ``alias`` (``AS x``), ``index_name`` (``USING [COVERING] INDEX i``, ``INTEGER
PRIMARY KEY``, ``AUTOMATIC INDEX``) and ``index_cond`` (the ``(x=? AND y>?)`` part). SQLite
estimates no costs and measures no times: those columns stay empty.
"""

from __future__ import annotations

import re
from typing import Any

from auditkit.lazy_re import compile_later
from auditkit.loaders._explain_nodes import Failure, Plan, PlanNode
from auditkit.loaders._explain_psql import statement_from

__all__ = ["parse_detail", "read_sqlite", "sniff_sqlite"]

_TREE_LINE = compile_later(r"^(?P<pad>(?:[|` ]  )*)(?P<branch>[|`]--)(?P<detail>.+)$")
_RAW_ROW = compile_later(
    r"^\s*(?P<id>\d+)(?P<sep>[|\t ])(?P<parent>\d+)(?P=sep)(?P<notused>\d+)(?P=sep)(?P<detail>\S.*?)\s*$"
)
_OPERATIONS = (
    "SCAN",
    "SEARCH",
    "USE TEMP B-TREE",
    "CO-ROUTINE",
    "MATERIALIZE",
    "COMPOUND QUERY",
    "LEFT-MOST SUBQUERY",
    "UNION ALL",
    "UNION USING TEMP B-TREE",
    "INTERSECT USING TEMP B-TREE",
    "EXCEPT USING TEMP B-TREE",
    "CORRELATED SCALAR SUBQUERY",
    "SCALAR SUBQUERY",
    "CORRELATED LIST SUBQUERY",
    "LIST SUBQUERY",
    "MULTI-INDEX OR",
    "INDEX",
    "BLOOM FILTER ON",
    "RIGHT-JOIN",
    "EXECUTE",
    "SUBQUERY",
)
_KNOWN = compile_later(
    r"^(?:" + "|".join(re.escape(o) for o in sorted(_OPERATIONS, key=len, reverse=True)) + r")\b"
)
_SCAN = compile_later(
    r"^(?P<op>SCAN|SEARCH)\s+(?:TABLE\s+)?(?P<rel>\"[^\"]+\"|\S+)(?:\s+AS\s+(?P<alias>\"[^\"]+\"|\S+))?"
    r"(?:\s+USING\s+(?P<using>INTEGER PRIMARY KEY|PRIMARY KEY|(?:AUTOMATIC\s+)?(?:PARTIAL\s+)?(?:COVERING\s+)?INDEX(?:\s+(?P<idx>(?!\()\S+))?))?"
    r"(?:\s+\((?P<cond>.*)\))?"
)


def parse_detail(detail: str, line: int) -> PlanNode:
    """One EXPLAIN QUERY PLAN detail string as a node."""
    text = detail.strip()
    known = _KNOWN.match(text)
    node_type = known.group(0) if known else text.split()[0]
    fields: dict[str, Any] = {"label": text}
    m = _SCAN.match(text)
    if m and m.group("rel") not in ("CONSTANT", "SUBQUERY"):
        rel = m.group("rel").strip('"')
        fields["relation"] = rel
        fields["alias"] = (m.group("alias") or rel).strip('"')
        using = m.group("using")
        if using:
            if m.group("idx"):
                fields["index_name"] = m.group("idx")
            elif "AUTOMATIC" in using:
                fields["index_name"] = "AUTOMATIC INDEX"
            else:
                fields["index_name"] = using
        if m.group("cond"):
            fields["index_cond"] = m.group("cond")
    return PlanNode(node_type, fields, line=line)


def _plan(tops: list[PlanNode], statement: str | None, line: int) -> Plan:
    return Plan(tops[0], "sqlite", "eqp", line, {"statement": statement}, siblings=tops[1:])


def read_sqlite(text: str) -> tuple[list[Plan], list[Failure]]:
    """Every EXPLAIN QUERY PLAN in ``text``, in file order."""
    lines = text.split("\n")
    n = len(lines)
    plans: list[Plan] = []
    failures: list[Failure] = []
    i = 0
    last_end = 0
    while i < n:
        line = lines[i].rstrip()
        if line.strip() == "QUERY PLAN" and i + 1 < n and _TREE_LINE.match(lines[i + 1].rstrip()):
            stmt = statement_from(lines[last_end:i])
            stack: list[tuple[int, PlanNode]] = []
            tops: list[PlanNode] = []
            j = i + 1
            while j < n and (m := _TREE_LINE.match(lines[j].rstrip())):
                depth = len(m.group("pad")) // 3
                node = parse_detail(m.group("detail"), j + 1)
                while stack and stack[-1][0] >= depth:
                    stack.pop()
                if stack:
                    stack[-1][1].children.append(node)
                elif depth == 0:
                    tops.append(node)
                else:
                    failures.append(
                        Failure(
                            j + 1,
                            "malformed query plan",
                            f"line {j + 1}: indented without a parent line",
                        )
                    )
                    break
                stack.append((depth, node))
                j += 1
            if tops:
                plans.append(_plan(tops, stmt, i + 1))
            last_end = i = j
            continue
        if _RAW_ROW.match(line) and _KNOWN.match(_RAW_ROW.match(line).group("detail")):  # type: ignore[union-attr]
            stmt = statement_from(lines[last_end:i])
            by_id: dict[str, PlanNode] = {}
            tops = []
            j = i
            while j < n and (m := _RAW_ROW.match(lines[j].rstrip())):
                node = parse_detail(m.group("detail"), j + 1)
                parent = by_id.get(m.group("parent"))
                if parent is not None and m.group("parent") != m.group("id"):
                    parent.children.append(node)
                else:
                    tops.append(node)
                by_id[m.group("id")] = node
                j += 1
            plans.append(_plan(tops, stmt, i + 1))
            last_end = i = j
            continue
        i += 1
    return plans, failures


def sniff_sqlite(head: str) -> float:
    """Confidence that ``head`` holds SQLite query plans."""
    if re.search(
        r"^QUERY PLAN\s*\n(?:[|` ]  )*[|`]--(?:SCAN|SEARCH|USE|CO-ROUTINE|MATERIALIZE|COMPOUND|SCALAR|CORRELATED|LIST|MULTI)",
        head,
        re.M,
    ):
        return 0.9
    rows = [
        m
        for m in (_RAW_ROW.match(x) for x in head.split("\n")[:200])
        if m and _KNOWN.match(m.group("detail"))
    ]
    if rows and any(m.group("detail").startswith(("SCAN", "SEARCH")) for m in rows):
        return 0.8
    return 0.0
