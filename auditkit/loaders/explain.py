"""EXPLAIN plans of PostgreSQL, MySQL/MariaDB and SQLite → the ``plan_nodes`` frame.

Seven formats, one frame. Every loader reads the whole (small) file with
:func:`~auditkit.loaders.stream.read_text` — so compressed files and bad bytes work — finds
every plan in it, and returns one row per plan node, depth first (``node_id`` 0 is the root).
A file holding several plans gives several ``plan_id`` s, ``<file name>#<n>`` from 1 in file
order. A *record* of the parse report is one plan: ``read == parsed + skipped`` counts plans,
and a plan that cannot be read is skipped with its line number and what was expected, while
the good plans of the file are kept. A file with no readable plan raises
:class:`~auditkit.errors.NothingParsedError` naming the file, the line and the reason.

Formats
-------

``explain_pg_text``, ``explain_pg_json``, ``explain_pg_xml``, ``explain_pg_yaml``
    PostgreSQL 9.x–18 ``EXPLAIN`` in each format, with any option set (ANALYZE, BUFFERS,
    VERBOSE, SETTINGS, WAL, TIMING OFF, COSTS OFF, SERIALIZE, MEMORY), auto_explain JSON
    (``Query Text`` + ``Plan``, one object or one per line), bare or as psql printed it
    (aligned, unaligned, expanded ``\\x``, border 2, Unicode frames with ``↵``, ``+``
    continuations, DBeaver and pgAdmin copies), hard-wrapped copies, psql transcripts and
    pg_regress ``.out`` files (many plans, each with the SQL before it as its statement).
    ``node_type`` is what the structured formats call a node (``Hash Join`` with
    ``join_type`` Left, ``Aggregate`` with ``strategy`` Hashed), ``label`` what the text format
    prints (``Hash Left Join``, ``HashAggregate``), so text and JSON plans read alike. The four
    share one reader — a transcript may mix formats — and the name only records which format
    dominates the file.
``explain_mysql``
    MySQL/MariaDB traditional EXPLAIN: the mysql client's boxed table, TAB-separated
    (``mysql -B``, mysqltest ``.result``), and ``\\G`` vertical rows. One node per row:
    ``node_type`` is the access type (ALL, ref, range, index_merge…, ``NULL`` when no table is
    read), ``relation`` the table, ``index_name`` the key, ``plan_rows`` the rows estimate,
    ``filter`` and ``extra`` the Extra column. The rows of one EXPLAIN have no tree: they are
    nodes in the order MySQL prints them (its join order), all at depth 0 without a parent.
``explain_mysql_json``
    ``EXPLAIN FORMAT=JSON`` version 1 (``query_block`` nesting, ``end_markers_in_json``
    comments allowed), MySQL 8.4 ``EXPLAIN ANALYZE FORMAT=JSON`` version 2 (iterator tree) and
    MariaDB ``ANALYZE FORMAT=JSON`` (``r_rows``, ``r_loops``, ``r_total_time_ms``,
    ``r_table_time_ms``). Table accesses get the traditional access type as ``node_type``
    and JSON flags become the Extra words in ``extra``, so every MySQL format reads alike.
    mysqltest transcripts and client sessions mixing traditional and JSON output are read whole
    by both MySQL loaders.
``explain_sqlite``
    SQLite ``EXPLAIN QUERY PLAN``: the sqlite3 shell's tree (``QUERY PLAN`` / ``|--SCAN t``)
    and the raw rows (``id|parent|notused|detail``, or space separated as Django's
    ``QuerySet.explain()`` prints them).

Exclusive time
--------------

``exclusive_ms`` is the time spent in a node itself, over all its loops:

1. a node's *inclusive* time (``inclusive_ms``) is ``actual_total_ms × loops`` (0 when never
   executed). Below a Gather or Gather Merge it is divided by ``workers launched + 1``
   (planned when launched is unknown), as pev2 does: each worker and the leader report their
   own loops, so the product counts every process;
2. ``exclusive_ms`` = inclusive − the inclusive times of the node's children, except
   InitPlans and CTEs (PostgreSQL reports CTEs as InitPlans): they run once, and their time is
   counted in the node that first needs their value, not in the node they hang under;
3. a CTE's inclusive time is taken off the CTE Scans that read it, in proportion to their
   inclusive times; an InitPlan's off the first node (depth first, outside the InitPlan) whose
   expressions use its output (``$1``, ``(InitPlan 1)``), or off the node it hangs under when no
   node names it (PostgreSQL ≤ 9.0 prints no numbers);
4. MariaDB reports a table's own time (``r_table_time_ms + r_other_time_ms``) and a sort's own
   time directly: those are its exclusive times. Every result is clamped at 0, and is missing
   when the plan was not run with ANALYZE (or with TIMING OFF).

So, for a plan without parallel workers, the exclusive times of all nodes add up to the root's
inclusive time.

Extra columns
-------------

Besides the canonical ``plan_nodes`` columns every frame carries the columns listed in
:data:`~auditkit.loaders._explain_nodes.EXTRA_COLUMNS` (plan-level ``plan_format``,
``planning_ms``, ``execution_ms``…, and node-level ``label``, ``parent_relationship``,
``subplan_name``, join conditions, hash, memoize, parallel, I/O, WAL, MySQL columns, and a
``properties`` JSON object with everything else the source printed). ``fingerprint_id`` of
the statement joins plans to query events and statement statistics.

Plans nested deeper than :data:`~auditkit.loaders._explain_nodes.MAX_DEPTH` levels (no real
plan comes close) are skipped as ``plan too deep`` rather than exhausting the stack.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, ClassVar

from auditkit.errors import NothingParsedError
from auditkit.lazy_re import compile_later
from auditkit.loaders._explain_mysql import read_mysql, sniff_mysql, statement_beside
from auditkit.loaders._explain_nodes import (
    EXTRA_COLUMNS,
    MAX_DEPTH,
    Failure,
    Plan,
    PlanParseError,
    plans_frame,
)
from auditkit.loaders._explain_pg_struct import (
    documents_from_json,
    documents_from_xml,
    documents_from_yaml,
    plans_from_document,
)
from auditkit.loaders._explain_pg_text import parse_text_plans
from auditkit.loaders._explain_psql import Chunk, scan_postgres
from auditkit.loaders._explain_sqlite import read_sqlite, sniff_sqlite
from auditkit.loaders.base import Loader
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text

__all__ = [
    "EXTRA_COLUMNS",
    "ExplainMysqlJsonLoader",
    "ExplainMysqlLoader",
    "ExplainPgJsonLoader",
    "ExplainPgTextLoader",
    "ExplainPgXmlLoader",
    "ExplainPgYamlLoader",
    "ExplainSqliteLoader",
    "Failure",
    "read_plans",
]


_REASONS = {
    "text": "malformed text plan",
    "json": "invalid JSON plan",
    "xml": "invalid XML plan",
    "yaml": "invalid YAML plan",
}


def _read_chunk(chunk: Chunk) -> list[Plan]:
    body = "\n".join(s for _, s in chunk.lines)
    first = chunk.lines[0][0] if chunk.lines else chunk.line
    if chunk.kind == "text":
        if chunk.rows is not None and chunk.physical < chunk.rows:
            raise PlanParseError(
                f"line {first}: the plan is cut short: psql's footer counts {chunk.rows} rows, {chunk.physical} are here",
                first,
                f"{chunk.rows} plan lines",
            )
        return parse_text_plans(chunk.lines, chunk.statement)
    if chunk.kind == "json":
        docs = documents_from_json(body, first)
    elif chunk.kind == "xml":
        docs = documents_from_xml(body, first)
    else:
        docs = documents_from_yaml(body, first)
    plans: list[Plan] = []
    for doc in docs:
        plans += plans_from_document(doc, chunk.kind, first, chunk.statement)
    return plans


def _read_postgres(text: str) -> tuple[list[Plan], list[Failure]]:
    plans: list[Plan] = []
    failures: list[Failure] = []
    for chunk in scan_postgres(text):
        if not chunk.kind:
            continue
        try:
            plans += _read_chunk(chunk)
        except RecursionError:
            start = chunk.lines[0][0] if chunk.lines else chunk.line
            failures.append(
                Failure(
                    start,
                    "plan too deep",
                    f"line {start}: the plan is nested deeper than {MAX_DEPTH} levels",
                )
            )
        except PlanParseError as exc:
            reason = _REASONS[chunk.kind]
            if "cut short" in exc.message:
                reason = "truncated plan"
            start = chunk.lines[0][0] if chunk.lines else chunk.line
            failures.append(Failure(start, reason, str(exc), exc.line or start))
    return plans, failures


def read_plans(text: str, family: str) -> tuple[list[Plan], list[Failure]]:
    """Every plan of ``family`` (postgres, mysql, sqlite) in ``text``, and the plans that failed.

    Plans come in file order; failures carry the line where the bad plan starts.
    """
    readers = {"postgres": _read_postgres, "mysql": read_mysql, "sqlite": read_sqlite}
    if family not in readers:
        raise ValueError(f"unknown plan family {family!r}")
    try:
        plans, failures = readers[family](text)
    except RecursionError:  # a hostile document nested beyond Python's stack
        return [], [
            Failure(1, "plan too deep", f"the plan is nested deeper than {MAX_DEPTH} levels")
        ]
    kept = []
    for plan in plans:
        if plan.depth() > MAX_DEPTH:
            failures.append(
                Failure(
                    plan.line,
                    "plan too deep",
                    f"line {plan.line}: the plan is nested deeper than {MAX_DEPTH} levels",
                )
            )
        else:
            kept.append(plan)
    failures.sort(key=lambda f: f.line)
    return kept, failures


# -- sniffing --------------------------------------------------------------------------------

# a server log line: a timestamp (ISO, syslog, bracketed) before a severity, as in
# "2024-01-01 10:00:00.123 UTC [123] LOG:  duration: 1.2 ms  plan:" (auto_explain output)
_LOG_LINE = compile_later(
    r"^(?:\S*\s*)?(?:\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\[\d{4}-\d\d-\d\d)"
    r".*\b(?:LOG|STATEMENT|DETAIL|ERROR|WARNING|FATAL|HINT|CONTEXT|NOTICE|INFO|DEBUG\d?):\s",
    re.M,
)
_PGSS_HEADER = compile_later(r"^.*\bcalls\b.*\|.*\bquery\b.*$|^.*\bquery\b.*\|.*\bcalls\b.*$", re.M)
_PG_STRONG = compile_later(
    r"\(cost=[\dN.]+\.\.[\dN.]+ rows=|\(actual (?:time|rows)=|\"Node Type\"|<Node-Type>|Node Type: \"|^\s*QUERY PLAN\s*$",
    re.M,
)


def _postgres_profile(head: str) -> tuple[dict[str, int], float]:
    """(plans per format in ``head``, confidence that the head is PostgreSQL plans)."""
    if not _PG_STRONG.search(head):
        return {}, 0.0
    counts: dict[str, int] = {}
    for chunk in scan_postgres(head):
        if not chunk.kind:
            continue
        body = "\n".join(s for _, s in chunk.lines[:400])
        if chunk.kind == "json" and '"Node Type"' not in body:
            continue
        if chunk.kind == "text" and not (chunk.header or _PG_STRONG.search(body)):
            continue
        counts[chunk.kind] = counts.get(chunk.kind, 0) + 1
    plans = sum(counts.values())
    if not plans:
        return {}, 0.0
    confidence = 0.95
    pgss = len(_PGSS_HEADER.findall(head))
    if pgss:
        confidence *= plans / (plans + pgss)
    # a server log that carries auto_explain plans belongs to the log loaders
    log_lines = len(_LOG_LINE.findall(head))
    first = next((line for line in head.split("\n") if line.strip()), "")
    if log_lines >= 3 or (log_lines and _LOG_LINE.match(first)):
        confidence = min(confidence, 0.3)
    return counts, confidence


class _ExplainLoader(Loader):
    """Common load path of the plan loaders: read, find plans, report, build the frame."""

    frame = "plan_nodes"
    family: ClassVar[str] = "postgres"

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        report = ParseReport(str(path), self.name)
        text, bad = read_text(path)
        report.lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        report.bytes = len(text.encode("utf-8", errors="replace"))
        for line in bad:
            report.warn(f"invalid UTF-8 replaced with U+FFFD on line {line}")
        plans, failures = read_plans(text, self.family)
        for failure in failures:
            report.skip(failure.line, failure.reason, failure.detail)
        report.ok(len(plans))
        report.check()
        if not plans:
            raise self._nothing(path, report, failures, text)
        beside = statement_beside(path)
        for plan in plans:  # a plan exported alone: its statement is in the .sql file beside it
            if beside and not plan.fields.get("statement"):
                plan.fields["statement"] = beside
        name = Path(path).name
        frame = plans_frame([(f"{name}#{i}", p) for i, p in enumerate(plans, 1)], str(path))
        report.events[self.frame] = len(frame)
        report.elapsed_s = time.perf_counter() - start
        return LoadResult(self.name, {self.frame: frame}, report, primary=self.frame)

    def _nothing(
        self, path: str | Path, report: ParseReport, failures: list[Failure], text: str
    ) -> NothingParsedError:
        if not text.strip():
            message, hint, line = (
                "the file is empty",
                "export the plan with EXPLAIN and save its output",
                None,
            )
        elif failures:
            first = failures[0]
            message = f"no readable plan: {first.detail}"
            hint = (
                f"{len(failures)} plan(s) could not be read; the first starts at line {first.line}"
                " — is the plan complete (not cut off by a pager or a copy)?"
            )
            line = first.at or first.line
        else:
            message = f"no {self.description} found"
            hint = "is this the right format? Name the format explicitly if detection picked this one by mistake"
            line = None
        err = NothingParsedError(
            message, path=path, expected=self.expected, report=report, hint=hint
        )
        err.line = line
        return err


@register
class ExplainPgTextLoader(_ExplainLoader):
    """PostgreSQL EXPLAIN, text format (bare, psql-framed, transcripts, pg_regress output)."""

    name = "explain_pg_text"
    description = "PostgreSQL EXPLAIN plan (text format)"
    expected = "an EXPLAIN plan such as 'Seq Scan on t  (cost=0.00..35.50 rows=2550 width=4)' with '->' child nodes"
    kind: ClassVar[str] = "text"

    def sniff(self, head: str, path: Path) -> float:
        counts, confidence = _postgres_profile(head)
        if not counts:
            return 0.0
        dominant = max(counts, key=lambda k: (counts[k], k == "text"))
        return confidence if dominant == self.kind else confidence * 0.5


@register
class ExplainPgJsonLoader(ExplainPgTextLoader):
    """PostgreSQL EXPLAIN (FORMAT JSON), auto_explain JSON, psql-framed JSON."""

    name = "explain_pg_json"
    description = "PostgreSQL EXPLAIN plan (JSON format)"
    expected = 'EXPLAIN (FORMAT JSON) output: [{"Plan": {"Node Type": …}}] or an auto_explain object with "Plan"'
    kind = "json"


@register
class ExplainPgXmlLoader(ExplainPgTextLoader):
    """PostgreSQL EXPLAIN (FORMAT XML)."""

    name = "explain_pg_xml"
    description = "PostgreSQL EXPLAIN plan (XML format)"
    expected = (
        'EXPLAIN (FORMAT XML) output: <explain xmlns="http://www.postgresql.org/2009/explain">…'
    )
    kind = "xml"


@register
class ExplainPgYamlLoader(ExplainPgTextLoader):
    """PostgreSQL EXPLAIN (FORMAT YAML)."""

    name = "explain_pg_yaml"
    description = "PostgreSQL EXPLAIN plan (YAML format)"
    expected = "EXPLAIN (FORMAT YAML) output: '- Plan:' followed by 'Node Type: …'"
    kind = "yaml"


@register
class ExplainMysqlLoader(_ExplainLoader):
    """MySQL/MariaDB traditional EXPLAIN: boxed table, TAB-separated, or ``\\G`` vertical."""

    name = "explain_mysql"
    dialect = "mysql"
    family = "mysql"
    description = "MySQL EXPLAIN output (traditional table)"
    expected = "an EXPLAIN table with the columns id, select_type, table, type, possible_keys, key, key_len, ref, rows, Extra"

    def sniff(self, head: str, path: Path) -> float:
        tabular, json_plans = sniff_mysql(head)
        if not tabular:
            return 0.0
        return 0.9 if tabular > json_plans else 0.6


@register
class ExplainMysqlJsonLoader(_ExplainLoader):
    """MySQL EXPLAIN FORMAT=JSON (v1, v2) and MariaDB ANALYZE FORMAT=JSON."""

    name = "explain_mysql_json"
    dialect = "mysql"
    family = "mysql"
    description = "MySQL/MariaDB EXPLAIN FORMAT=JSON plan"
    expected = 'EXPLAIN FORMAT=JSON output: {"query_block": {…}} (v1, MariaDB) or {"operation": …, "inputs": […]} (v2)'

    def sniff(self, head: str, path: Path) -> float:
        tabular, json_plans = sniff_mysql(head)
        if not json_plans:
            return 0.0
        return 0.9 if json_plans >= tabular else 0.6


@register
class ExplainSqliteLoader(_ExplainLoader):
    """SQLite EXPLAIN QUERY PLAN (shell tree or raw rows)."""

    name = "explain_sqlite"
    family = (
        "sqlite"  # (``dialect`` stays the fingerprinting default: SQLite quotes like PostgreSQL)
    )
    description = "SQLite EXPLAIN QUERY PLAN output"
    expected = "'QUERY PLAN' followed by '|--SCAN t' lines, or rows 'id|parent|notused|detail'"

    def sniff(self, head: str, path: Path) -> float:
        return sniff_sqlite(head)
