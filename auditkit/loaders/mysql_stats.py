"""MySQL / MariaDB statistics exports: performance_schema, sys, information_schema, SHOW.

One loader, ``mysql_stats``, reads every result set of a file in any shape the ``mysql``
client or an export writes (:mod:`auditkit.loaders._mysql_results`: tabular ``+---+``,
``\\G`` vertical, ``-B`` TAB-separated, CSV, JSON; several result sets per file, each
introduced by its statement or a ``--`` comment and maybe a time stamp), recognises each result
set by its columns and maps it onto the canonical frames:

=============================================== ====================================================
result set (recognised by its columns)          frame and columns
=============================================== ====================================================
performance_schema                              ``schema_indexes``: ``index_reads`` (COUNT_READ),
``table_io_waits_summary_by_index_usage``       ``index_writes`` (COUNT_WRITE), extras
                                                ``index_fetches``, ``read_ms``/``write_ms``; the
                                                row without an index (INDEX_NAME NULL) →
                                                ``schema_tables.seq_tup_read``: rows read by full
                                                scans
``table_io_waits_summary_by_table``             ``schema_tables``: ``rows_read``, ``n_tup_ins``/
                                                ``_upd``/``_del`` (COUNT_INSERT/UPDATE/DELETE)
``events_statements_summary_by_digest``         ``statement_stats``: ``query_id`` = DIGEST,
                                                ``database`` = SCHEMA_NAME, calls, times (timers in
                                                picoseconds → ms), ``rows`` = sent + affected,
                                                ``rows_examined``, ``no_index_used``,
                                                ``full_scans``, ``full_joins``, temp tables, sort
                                                merge passes, first/last seen, MySQL 8 quantiles →
                                                ``p95_ms``/``p99_ms`` and QUERY_SAMPLE_TEXT →
                                                ``sample_sql``; DIGEST_TEXT fingerprinted like logged
                                                statements so digests join the slow log
sys ``schema_unused_indexes``                   ``schema_indexes`` with ``index_reads`` =
                                                ``index_writes`` = 0 (the view lists indexes
                                                without any I/O)
sys ``schema_redundant_indexes``                ``schema_indexes``: ``redundant_to``, extras
                                                ``dominant_columns``, ``drop_sql``
sys ``statements_with_full_table_scans``        ``statement_stats`` (formatted latencies such as
(and ``x$…``)                                   ``1.23 ms`` read back to ms)
information_schema ``STATISTICS``, SHOW INDEX   ``schema_indexes`` (one row per index; see
                                                :func:`~auditkit.loaders.pg_catalog.mysql_index_rows`)
information_schema ``TABLES``, SHOW TABLE       ``schema_tables``: ``rows_estimate`` (TABLE_ROWS),
STATUS                                          ``size_bytes`` (DATA_LENGTH), ``index_size_bytes``,
                                                ``total_size_bytes``, ``engine``
``mysql.innodb_index_stats`` /                  ``schema_indexes.size_bytes`` (pages × page size),
``innodb_table_stats``                          ``schema_tables`` rows and sizes
SHOW CREATE TABLE                               ``schema_indexes`` (every key, MySQL DDL,
                                                ``foreign_key`` for indexes a FOREIGN KEY needs) and
                                                ``schema_tables.engine``
SHOW GLOBAL STATUS (or GLOBAL_STATUS)           ``server_status`` rows, kind ``status``, one
                                                snapshot per result set
SHOW GLOBAL VARIABLES (or GLOBAL_VARIABLES)     ``server_status`` rows, kind ``variable``, and
                                                ``server_settings`` (sizes in bytes, times in ms)
=============================================== ====================================================

Status and variables are told apart by the statement or comment before them, else by their
names (``Uptime``, ``Questions`` are status; ``max_connections``, ``version`` are variables).

Numbers. performance_schema timers are picoseconds. Values in the last 2⁴⁰ below 2⁶⁴ (the
unsigned underflow ``18446744073709551615`` some servers report) are not numbers: they become
NaN and the parse report says how many there were. NULL, ``\\N`` and empty cells are missing
values. Times (FIRST_SEEN, …) are read in ``tz`` (default UTC: the server's time zone).

:func:`digest_delta` subtracts two digest snapshots (like :func:`~auditkit.loaders.
pg_stat_statements.pgss_delta`); :func:`status_delta` (from :mod:`auditkit.counters`, shared
with PostgreSQL's cumulative views) gives the delta, interval and rate of every status counter
between two snapshots.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.counters import status_delta
from auditkit.lazy_re import compile_later
from auditkit.loaders._mysql_results import ResultSet, read_result_sets
from auditkit.loaders.base import Loader, nothing_parsed
from auditkit.loaders.pg_catalog import MySQLIndexesLoader, mysql_index_rows
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text
from auditkit.schemas import FRAMES, STATEMENT_STATS, conform, empty
from auditkit.sql.fingerprint import fingerprint_many

__all__ = [
    "MySQLStatsLoader",
    "digest_delta",
    "digest_sql",
    "is_counter",
    "status_delta",
    "view_of",
]

#: values at or above this are an unsigned underflow (2⁶⁴ − 2⁴⁰), not a count
_UNDERFLOW = 2**64 - 2**40
_PS_PER_MS = 1e9
_SYSTEM_SCHEMAS = {"mysql", "performance_schema", "sys", "information_schema"}
_DEFAULT_PAGE = 16384

#: status names that are gauges (a level now), not cumulative counters
_GAUGE = compile_later(
    r"^(?:Threads_(?:connected|running|cached)|Open_|Max_used_|Innodb_buffer_pool_(?:pages_(?:data|dirty|free|"
    r"misc|total|old|latched)|bytes_(?:data|dirty))|Innodb_page_size|Innodb_row_lock_(?:current_waits|"
    r"time_avg|time_max)|Innodb_(?:data|os_log)_pending|Innodb_num_open_files|Innodb_history_list_length|"
    r"Key_blocks_(?:not_flushed|unused|used)|Uptime|Memory_used|Prepared_stmt_count|Qcache_(?:free_|"
    r"queries_in_cache|total_blocks)|Slaves?_(?:open_temp_tables|connected|running)|Tc_log_(?:max_pages_used|"
    r"page_size)|Last_query_cost|Rpl_|Ssl_|Current_tls|Compression|Threadpool_(?:threads|idle_threads)|"
    r"Innodb_mem_|Innodb_.*_status$|Slave_heartbeat_period|Innodb_buffer_pool_resize_status|"
    r"Innodb_redo_log_|Innodb_undo_tablespaces_|Resource_group_|Innodb_system_rows_|Acl_cache_items_count|"
    r"Global_connection_memory|Innodb_instant_alter_column|Mysqlx_(?:sessions|worker_threads|address|port|"
    r"socket)|Caching_sha2_password_rsa_public_key|Rsa_public_key|Tls_|Secondary_engine_)",
    re.I,
)
_STATUS_MARKERS = {"uptime", "questions", "com_select", "threads_connected", "connections"}
_VARIABLE_MARKERS = {"max_connections", "version", "datadir", "innodb_buffer_pool_size", "port"}
_SIZE_VARS = compile_later(r"(?:_size|_buffer_size|_length|_packet|_limit|_bytes)$")
_SECOND_VARS = compile_later(r"(?:^long_query_time$|_timeout$|^flush_time$)")
_MS_VARS = compile_later(r"^(?:max_execution_time|max_statement_time_ms)$")

# digest / sys columns → statement_stats columns (timers in picoseconds)
_DIGEST_COUNTS = {
    "count_star": "calls",
    "sum_rows_examined": "rows_examined",
    "sum_no_index_used": "no_index_used",
    "sum_select_scan": "full_scans",
    "sum_select_full_join": "full_joins",
    "sum_created_tmp_tables": "tmp_tables",
    "sum_created_tmp_disk_tables": "tmp_disk_tables",
    "sum_sort_merge_passes": "sort_merge_passes",
    "sum_rows_sent": "rows_sent",
    "sum_rows_affected": "rows_affected",
    "sum_no_good_index_used": "no_good_index_used",
    "sum_errors": "errors",
    "sum_warnings": "warnings",
    "sum_select_full_range_join": "full_range_joins",
    "sum_select_range": "range_selects",
    "sum_select_range_check": "range_checks",
    "sum_sort_range": "sort_ranges",
    "sum_sort_rows": "sort_rows",
    "sum_sort_scan": "sort_scans",
    "count_secondary": "secondary_calls",
}
_DIGEST_TIMERS = {
    "sum_timer_wait": "total_ms",
    "min_timer_wait": "min_ms",
    "avg_timer_wait": "mean_ms",
    "max_timer_wait": "max_ms",
    "sum_lock_time": "lock_ms",
    "quantile_95": "p95_ms",
    "quantile_99": "p99_ms",
    "quantile_999": "p999_ms",
    "sum_cpu_time": "cpu_ms",
    "query_sample_timer_wait": "sample_ms",
}
#: statement_stats columns (canonical or extra) that add up across snapshots
_ADDITIVE = (
    "calls",
    "total_ms",
    "rows",
    "rows_examined",
    "lock_ms",
    "no_index_used",
    "full_scans",
    "full_joins",
    "tmp_tables",
    "tmp_disk_tables",
    "sort_merge_passes",
    "rows_sent",
    "rows_affected",
    "no_good_index_used",
    "errors",
    "warnings",
    "full_range_joins",
    "range_selects",
    "range_checks",
    "sort_ranges",
    "sort_rows",
    "sort_scans",
    "cpu_ms",
    "secondary_calls",
)


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------
class _Numbers:
    """Reads numbers from cells and counts the unsigned underflows it meets, per column."""

    def __init__(self) -> None:
        self.underflows: dict[str, int] = {}

    def num(self, value: Any, column: str = "") -> float | None:
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            f = float(value)
        else:
            s = str(value).strip()
            if not s or s.upper() in ("NULL", "\\N"):
                return None
            try:
                f = float(s)
            except ValueError:
                return None
        if math.isnan(f) or math.isinf(f):
            return None
        if f >= _UNDERFLOW:
            self.underflows[column] = self.underflows.get(column, 0) + 1
            return None
        return f

    def ps_ms(self, value: Any, column: str = "") -> float | None:
        f = self.num(value, column)
        return None if f is None else f / _PS_PER_MS


def _text(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value)
    return None if s.strip().upper() in ("", "NULL", "\\N") else s


_LATENCY = compile_later(r"^\s*(-?\d+(?:\.\d+)?)\s*(ps|ns|us|µs|ms|s|m|min|h|d|w)?\s*$")
_LATENCY_MS = {
    "ps": 1e-9,
    "ns": 1e-6,
    "us": 1e-3,
    "µs": 1e-3,
    "ms": 1.0,
    "s": 1e3,
    "m": 6e4,
    "min": 6e4,
    "h": 3.6e6,
    "d": 8.64e7,
    "w": 6.048e8,
}


def _latency_ms(value: Any, numbers: _Numbers, column: str) -> float | None:
    """sys's formatted latency (``786.03 us``, ``1.20 s``, ``2.01 m``) or raw picoseconds (x$ views)."""
    if value is None:
        return None
    m = _LATENCY.match(str(value))
    if not m:
        return None
    if m.group(2) is None:  # x$ views: raw picoseconds
        return numbers.ps_ms(m.group(1), column)
    return float(m.group(1)) * _LATENCY_MS[m.group(2)]


def digest_sql(text: str) -> str:
    """A digest text (``SELECT `a` . `b` FROM `t` WHERE `c` = ?``) as plain SQL for fingerprinting.

    The server spaces every token; the fingerprint of a logged statement does not. ``(...)``
    lists become ``(?)`` and the ``/* , ... */`` marker of a multi-row VALUES goes, so a digest
    fingerprints like the statements it stands for.
    """
    s = re.sub(r"/\* , \.\.\. \*/", "", text)
    s = re.sub(r"\s*\.\s*", ".", s)
    s = re.sub(r"\(\s+", "(", s)
    s = re.sub(r"\s+\)", ")", s)
    s = re.sub(r"\s+,", ",", s)
    s = re.sub(r"(?i)\bVALUES \(\.\.\.\)", "VALUES (?)", s)
    s = s.replace("?, ...", "?")
    return s.strip()


# --------------------------------------------------------------------------------------------
# recognising result sets
# --------------------------------------------------------------------------------------------
def _has(names: set[str], *wanted: str) -> bool:
    return all(w in names for w in wanted)


def view_of(rs: ResultSet) -> str | None:
    """Which view or statement ``rs`` comes from (by its columns), or None."""
    n = rs.names
    if n == {"object_schema", "object_name", "index_name"}:
        return "schema_unused_indexes"
    if _has(n, "object_schema", "object_name", "index_name", "count_read"):
        return "index_usage"
    if _has(n, "object_schema", "object_name", "count_read", "count_write"):
        return "table_io"
    if _has(n, "digest_text", "count_star", "sum_timer_wait"):
        return "digest"
    if _has(n, "redundant_index_name", "dominant_index_name"):
        return "schema_redundant_indexes"
    if _has(n, "query", "exec_count", "no_index_used_count"):
        return "statements_with_full_table_scans"
    if _has(n, "table_name", "index_name", "seq_in_index", "column_name") or _has(
        n, "table", "key_name", "seq_in_index", "column_name"
    ):
        return "index_columns"
    if _has(n, "table_schema", "table_name", "table_rows", "data_length", "index_length"):
        return "tables"
    if _has(n, "name", "engine", "rows", "data_length", "index_length"):
        return "table_status"
    if _has(n, "database_name", "table_name", "index_name", "stat_name", "stat_value"):
        return "innodb_index_stats"
    if _has(n, "database_name", "table_name", "n_rows", "clustered_index_size"):
        return "innodb_table_stats"
    if _has(n, "table", "create table"):
        return "create_table"
    if len(n) == 2 and "variable_name" in n and n & {"value", "variable_value"}:
        return "status_or_variables"
    return None


def _status_kind(rs: ResultSet) -> str:
    said = f"{rs.statement or ''} {rs.comment or ''}".lower()
    if re.search(r"\bstatus\b", said) and "variables" not in said:
        return "status"
    if re.search(r"\bvariables\b", said):
        return "variable"
    names = {str(r[0]).lower() for r in rs.rows if r and r[0] is not None}
    return (
        "status" if len(names & _STATUS_MARKERS) >= len(names & _VARIABLE_MARKERS) else "variable"
    )


def is_counter(name: str, value: float | None) -> bool:
    """True when status variable ``name`` is a cumulative counter (deltas and rates make sense)."""
    return value is not None and not _GAUGE.match(name)


# --------------------------------------------------------------------------------------------
# the loader
# --------------------------------------------------------------------------------------------
Rows = dict[str, list[dict[str, Any]]]


class _File:
    """State while reading one file: rows per frame, the report, numbers, options."""

    def __init__(self, path: str, report: ParseReport, options: Mapping[str, Any]) -> None:
        self.path = path
        self.report = report
        self.rows: Rows = {}
        self.numbers = _Numbers()
        self.tz = str(options.get("tz") or "UTC")
        self.server = options.get("server")
        self.dialect = str(options.get("dialect") or "mysql")
        self.page_size = options.get("page_size")
        self.snapshot = 0
        self.index_parts: list[dict[str, Any]] = []

    def add(self, frame: str, row: dict[str, Any], line: int) -> None:
        row.setdefault("source_file", self.path)
        row.setdefault("source_line", line)
        self.rows.setdefault(frame, []).append(row)

    def ts(self, value: Any) -> pd.Timestamp | None:
        text = _text(value)
        if text is None:
            return None
        try:
            t = pd.Timestamp(text)
        except (ValueError, OverflowError):
            return None
        if t.tzinfo is None:
            try:
                t = t.tz_localize(self.tz)
            except Exception:
                return None
        return t.tz_convert("UTC")


def _index_usage(f: _File, rec: dict[str, Any], line: int) -> str | None:
    schema, table = _text(rec.get("object_schema")), _text(rec.get("object_name"))
    if table is None:
        return "no OBJECT_NAME"
    if schema in _SYSTEM_SCHEMAS:
        return "system schema"
    num = f.numbers
    index = _text(rec.get("index_name"))
    reads = num.num(rec.get("count_read"), "COUNT_READ")
    if index is None:  # I/O without an index: full table scans (and every insert)
        f.add(
            "schema_tables",
            {"schema": schema, "table": table, "seq_tup_read": reads, "dialect": f.dialect},
            line,
        )
        return None
    f.add(
        "schema_indexes",
        {
            "schema": schema,
            "table": table,
            "index": index,
            "primary": index.upper() == "PRIMARY",
            "index_reads": reads,
            "index_writes": num.num(rec.get("count_write"), "COUNT_WRITE"),
            "index_fetches": num.num(rec.get("count_fetch"), "COUNT_FETCH"),
            "read_ms": num.ps_ms(rec.get("sum_timer_read"), "SUM_TIMER_READ"),
            "write_ms": num.ps_ms(rec.get("sum_timer_write"), "SUM_TIMER_WRITE"),
            "dialect": f.dialect,
        },
        line,
    )
    return None


def _table_io(f: _File, rec: dict[str, Any], line: int) -> str | None:
    schema, table = _text(rec.get("object_schema")), _text(rec.get("object_name"))
    if table is None:
        return "no OBJECT_NAME"
    if schema in _SYSTEM_SCHEMAS:
        return "system schema"
    num = f.numbers
    f.add(
        "schema_tables",
        {
            "schema": schema,
            "table": table,
            "rows_read": num.num(rec.get("count_read"), "COUNT_READ"),
            "n_tup_ins": num.num(rec.get("count_insert"), "COUNT_INSERT"),
            "n_tup_upd": num.num(rec.get("count_update"), "COUNT_UPDATE"),
            "n_tup_del": num.num(rec.get("count_delete"), "COUNT_DELETE"),
            "read_ms": num.ps_ms(rec.get("sum_timer_read"), "SUM_TIMER_READ"),
            "write_ms": num.ps_ms(rec.get("sum_timer_write"), "SUM_TIMER_WRITE"),
            "dialect": f.dialect,
        },
        line,
    )
    return None


def _digest(f: _File, rec: dict[str, Any], line: int) -> str | None:
    num = f.numbers
    calls = num.num(rec.get("count_star"), "COUNT_STAR")
    text = _text(rec.get("digest_text"))
    if calls is None:
        return "COUNT_STAR is not a number"
    if text is None:
        # the row of statements beyond performance_schema_digests_size (DIGEST NULL)
        return "no DIGEST_TEXT (statements beyond performance_schema_digests_size)"
    row: dict[str, Any] = {
        "query_id": _text(rec.get("digest")),
        "database": _text(rec.get("schema_name")),
        "digest_text": text,
        "first_seen": f.ts(rec.get("first_seen")),
        "last_seen": f.ts(rec.get("last_seen")),
        "sample_sql": _text(rec.get("query_sample_text")),
        "dialect": f.dialect,
    }
    for col, target in _DIGEST_COUNTS.items():
        if col in rec:
            row[target] = num.num(rec.get(col), col.upper())
    for col, target in _DIGEST_TIMERS.items():
        if col in rec:
            row[target] = num.ps_ms(rec.get(col), col.upper())
    if "query_sample_seen" in rec:
        row["sample_seen"] = f.ts(rec.get("query_sample_seen"))
    for col in ("max_controlled_memory", "max_total_memory"):
        if col in rec:
            row[col.replace("max_", "max_") + "_bytes"] = num.num(rec.get(col), col.upper())
    sent, affected = row.get("rows_sent"), row.get("rows_affected")
    row["rows"] = None if sent is None and affected is None else (sent or 0) + (affected or 0)
    f.add("statement_stats", row, line)
    return None


def _unused(f: _File, rec: dict[str, Any], line: int) -> str | None:
    schema, table, index = (
        _text(rec.get(k)) for k in ("object_schema", "object_name", "index_name")
    )
    if table is None or index is None:
        return "no table or index name"
    f.add(
        "schema_indexes",
        {
            "schema": schema,
            "table": table,
            "index": index,
            "index_reads": 0,
            "index_writes": 0,
            "sys_view": "schema_unused_indexes",
            "dialect": f.dialect,
        },
        line,
    )
    return None


def _redundant(f: _File, rec: dict[str, Any], line: int) -> str | None:
    table, index = _text(rec.get("table_name")), _text(rec.get("redundant_index_name"))
    if table is None or index is None:
        return "no table or index name"
    non_unique = f.numbers.num(rec.get("redundant_index_non_unique"))
    columns = _text(rec.get("redundant_index_columns"))
    f.add(
        "schema_indexes",
        {
            "schema": _text(rec.get("table_schema")),
            "table": table,
            "index": index,
            "columns": None
            if columns is None
            else ", ".join(c.strip() for c in columns.split(",")),
            "unique": None if non_unique is None else non_unique == 0,
            "redundant_to": _text(rec.get("dominant_index_name")),
            "dominant_columns": _text(rec.get("dominant_index_columns")),
            "drop_sql": _text(rec.get("sql_drop_index")),
            "sys_view": "schema_redundant_indexes",
            "dialect": f.dialect,
        },
        line,
    )
    return None


def _full_scans(f: _File, rec: dict[str, Any], line: int) -> str | None:
    num = f.numbers
    calls = num.num(rec.get("exec_count"), "exec_count")
    query = _text(rec.get("query"))
    if calls is None or query is None:
        return "no exec_count or query"
    f.add(
        "statement_stats",
        {
            "query_id": _text(rec.get("digest")),
            "database": _text(rec.get("db")),
            "digest_text": query,
            "truncated": " ... " in query,
            "calls": calls,
            "total_ms": _latency_ms(rec.get("total_latency"), num, "total_latency"),
            "no_index_used": num.num(rec.get("no_index_used_count"), "no_index_used_count"),
            "no_good_index_used": num.num(
                rec.get("no_good_index_used_count"), "no_good_index_used_count"
            ),
            "no_index_used_pct": num.num(rec.get("no_index_used_pct")),
            "rows": num.num(rec.get("rows_sent"), "rows_sent"),
            "rows_examined": num.num(rec.get("rows_examined"), "rows_examined"),
            "first_seen": f.ts(rec.get("first_seen")),
            "last_seen": f.ts(rec.get("last_seen")),
            "sys_view": "statements_with_full_table_scans",
            "dialect": f.dialect,
        },
        line,
    )
    return None


def _index_columns(f: _File, rec: dict[str, Any], line: int) -> str | None:
    out = _INDEX_READER.row(rec)
    if isinstance(out, str):
        return out
    part = out["schema_indexes"]
    part["source_file"], part["source_line"] = f.path, line
    f.index_parts.append(part)
    return None


def _tables(f: _File, rec: dict[str, Any], line: int) -> str | None:
    table = _text(rec.get("table_name", rec.get("name")))
    if table is None:
        return "no table name"
    schema = _text(rec.get("table_schema"))
    if schema in _SYSTEM_SCHEMAS:
        return "system schema"
    num = f.numbers
    data = num.num(rec.get("data_length"), "DATA_LENGTH")
    index = num.num(rec.get("index_length"), "INDEX_LENGTH")
    row: dict[str, Any] = {
        "schema": schema,
        "table": table,
        "rows_estimate": num.num(rec.get("table_rows", rec.get("rows")), "TABLE_ROWS"),
        "size_bytes": data,
        "index_size_bytes": index,
        "total_size_bytes": None if data is None and index is None else (data or 0) + (index or 0),
        "engine": _text(rec.get("engine")),
        "data_free_bytes": num.num(rec.get("data_free"), "DATA_FREE"),
        "avg_row_bytes": num.num(rec.get("avg_row_length"), "AVG_ROW_LENGTH"),
        "table_type": _text(rec.get("table_type")),
        "dialect": f.dialect,
    }
    f.add("schema_tables", row, line)
    return None


def _innodb_index_stats(f: _File, rec: dict[str, Any], line: int) -> str | None:
    table, index = _text(rec.get("table_name")), _text(rec.get("index_name"))
    stat = _text(rec.get("stat_name"))
    if table is None or index is None or stat is None:
        return "no table, index or statistic name"
    schema = _text(rec.get("database_name"))
    if schema in _SYSTEM_SCHEMAS:
        return "system schema"
    value = f.numbers.num(rec.get("stat_value"), "stat_value")
    row: dict[str, Any] = {"schema": schema, "table": table, "index": index, "dialect": f.dialect}
    if stat == "size":
        row["_pages"] = value
    elif stat == "n_leaf_pages":
        row["leaf_pages"] = value
    elif stat.startswith("n_diff_pfx"):
        row["cardinality"] = value
    else:
        row["_other"] = stat
    f.add("_innodb_index_stats", row, line)
    return None


def _innodb_table_stats(f: _File, rec: dict[str, Any], line: int) -> str | None:
    table = _text(rec.get("table_name"))
    if table is None:
        return "no table name"
    schema = _text(rec.get("database_name"))
    if schema in _SYSTEM_SCHEMAS:
        return "system schema"
    num = f.numbers
    f.add(
        "_innodb_table_stats",
        {
            "schema": schema,
            "table": table,
            "rows_estimate": num.num(rec.get("n_rows"), "n_rows"),
            "_clustered_pages": num.num(rec.get("clustered_index_size")),
            "_other_pages": num.num(rec.get("sum_of_other_index_sizes")),
            "dialect": f.dialect,
        },
        line,
    )
    return None


_KEY_LINE = compile_later(
    r"^\s*(?:(?P<primary>PRIMARY KEY)|(?:(?P<kind>UNIQUE|FULLTEXT|SPATIAL|VECTOR)\s+)?(?:KEY|INDEX)\s+"
    r"`(?P<name>(?:[^`]|``)+)`)\s*(?:USING\s+(?P<using1>\w+)\s*)?\((?P<cols>.*)\)"
    r"(?:\s+USING\s+(?P<using2>\w+))?(?P<rest>.*?),?\s*$"
)
_FK_LINE = compile_later(
    r"^\s*CONSTRAINT\s+`(?P<name>(?:[^`]|``)+)`\s+FOREIGN KEY\s+\((?P<cols>[^)]*)\)\s+REFERENCES\s+"
    r"(?P<ref>`[^`]+`(?:\.`[^`]+`)?)\s*\((?P<refcols>[^)]*)\)"
)
_ENGINE = compile_later(r"\)\s*ENGINE=(\w+)")


def _split_keys(cols: str) -> list[tuple[str, bool]]:
    """``(`a`,`b`(10) DESC,((lower(`c`))))`` → [('a', False), ('b(10)', True), ('(lower(`c`))', False)]."""
    out: list[tuple[str, bool]] = []
    depth, start = 0, 0
    parts = []
    in_quote = False
    for k, ch in enumerate(cols):
        if ch == "`":
            in_quote = not in_quote
        elif not in_quote and ch == "(":
            depth += 1
        elif not in_quote and ch == ")":
            depth -= 1
        elif not in_quote and ch == "," and depth == 0:
            parts.append(cols[start:k])
            start = k + 1
    parts.append(cols[start:])
    for p in parts:
        p = p.strip()
        desc = bool(re.search(r"\s+DESC$", p, re.I))
        p = re.sub(r"\s+(?:ASC|DESC)$", "", p, flags=re.I)
        m = re.fullmatch(r"`((?:[^`]|``)+)`(\(\d+\))?", p)
        out.append((m.group(1).replace("``", "`") + (m.group(2) or "") if m else p, desc))
    return out


def _create_table(f: _File, rec: dict[str, Any], line: int) -> str | None:
    table, ddl = _text(rec.get("table")), _text(rec.get("create table"))
    if table is None or ddl is None:
        return "no table name or CREATE TABLE text"
    if not ddl.lstrip().upper().startswith("CREATE"):
        return "not a CREATE TABLE statement"
    keys: list[dict[str, Any]] = []
    fks: list[tuple[str, list[str]]] = []
    for text in ddl.split("\n"):
        m = _KEY_LINE.match(text)
        if m:
            name = "PRIMARY" if m.group("primary") else m.group("name").replace("``", "`")
            kind = (m.group("kind") or "").upper()
            using = (m.group("using1") or m.group("using2") or "").lower()
            method = kind.lower() if kind in ("FULLTEXT", "SPATIAL", "VECTOR") else using or "btree"
            keys.append(
                {
                    "table": table,
                    "index": name,
                    "primary": name == "PRIMARY",
                    "unique": name == "PRIMARY" or kind == "UNIQUE",
                    "method": method,
                    "_keys": _split_keys(m.group("cols")),
                }
            )
            continue
        fk = _FK_LINE.match(text)
        if fk:
            cols = [c for c, _ in _split_keys(fk.group("cols"))]
            fks.append((fk.group("name").replace("``", "`"), cols))
    for key in keys:
        names = [k for k, _ in key["_keys"]]
        needed = [fk for fk, cols in fks if names[: len(cols)] == cols]
        for seq, (k, desc) in enumerate(key["_keys"], start=1):
            part = {
                "schema": None,
                "table": table,
                "index": key["index"],
                "_seq": seq,
                "_key": k,
                "_desc": desc,
                "method": key["method"],
                "unique": key["unique"],
                "primary": key["primary"],
                "foreign_key": ", ".join(needed) or None,
                "source_file": f.path,
                "source_line": line,
            }
            f.index_parts.append(part)
    engine = _ENGINE.search(ddl)
    f.add(
        "schema_tables",
        {"table": table, "engine": engine.group(1) if engine else None, "dialect": f.dialect},
        line,
    )
    return None


_SETTING_UNIT = {"bytes": "B", "s": "s", "ms": "ms"}


def _status_set(f: _File, rs: ResultSet, report: ParseReport) -> None:
    kind = _status_kind(rs)
    f.snapshot += 1
    records = rs.records()
    value_key = "value" if "value" in rs.names else "variable_value"
    uptime = next(
        (
            f.numbers.num(r.get(value_key))
            for r in records
            if str(r.get("variable_name") or "").lower() == "uptime"
        ),
        None,
    )
    variables = {str(r.get("variable_name") or "").lower(): r.get(value_key) for r in records}
    if kind == "variable":
        version = f"{variables.get('version') or ''} {variables.get('version_comment') or ''}"
        if "mariadb" in version.lower():
            f.dialect = "mariadb"
        if variables.get("innodb_page_size") and not f.page_size:
            f.page_size = f.numbers.num(variables["innodb_page_size"])
    engine = (
        "mariadb"
        if f.dialect == "mariadb"
        else "percona"
        if "percona" in str(variables.get("version_comment") or "").lower()
        else None
    )
    server = f.server or _text(variables.get("hostname"))
    for line, rec in zip(rs.lines, records, strict=True):
        name = _text(rec.get("variable_name"))
        if name is None:
            report.skip(line, "no Variable_name", str(rec)[:160])
            continue
        raw = rec.get(value_key)
        value = f.numbers.num(raw, name)
        text = "" if raw is None else str(raw)
        f.add(
            "server_status",
            {
                "ts": rs.ts,
                "server": server,
                "engine": engine,
                "kind": kind,
                "name": name,
                "value": value,
                "text": text,
                "snapshot": f.snapshot,
                "uptime_s": uptime,
                "counter": is_counter(name, value) if kind == "status" else None,
            },
            line,
        )
        if kind == "variable":
            unit, base = _setting_unit(name, value)
            f.add(
                "server_settings",
                {
                    "name": name,
                    "setting": text,
                    "unit": unit,
                    "value": base,
                    "source": "SHOW GLOBAL VARIABLES",
                    "ts": rs.ts,
                    "server": server,
                },
                line,
            )
        report.ok()


def _setting_unit(name: str, value: float | None) -> tuple[str | None, float | None]:
    """Unit and value in base units (bytes, milliseconds) of a MySQL system variable."""
    if value is None:
        return None, None
    low = name.lower()
    if _MS_VARS.match(low):
        return "ms", value
    if _SECOND_VARS.search(low):
        return "s", value * 1000.0
    if _SIZE_VARS.search(low) and "max_connect" not in low and not low.endswith("_limit"):
        return "B", value
    return None, value


_ROW_READERS: dict[str, Callable[[_File, dict[str, Any], int], str | None]] = {
    "index_usage": _index_usage,
    "table_io": _table_io,
    "digest": _digest,
    "schema_unused_indexes": _unused,
    "schema_redundant_indexes": _redundant,
    "statements_with_full_table_scans": _full_scans,
    "index_columns": _index_columns,
    "tables": _tables,
    "table_status": _tables,
    "innodb_index_stats": _innodb_index_stats,
    "innodb_table_stats": _innodb_table_stats,
    "create_table": _create_table,
}
_INDEX_READER = MySQLIndexesLoader()


def _sniff_score(head: str) -> float:
    try:
        sets, _ = read_result_sets(head)
    except Exception:
        return 0.0
    views = [(rs, view_of(rs)) for rs in sets]
    known = [(rs, v) for rs, v in views if v is not None]
    if not known:
        return 0.0
    plain = len(sets) == 1 and sets[0].style in ("csv", "batch", "json")
    if plain and known[0][1] == "index_columns":
        return 0.9  # a plain SHOW INDEX / STATISTICS export: mysql_indexes reads it the same
    return 0.97


@register
class MySQLStatsLoader(Loader):
    """MySQL/MariaDB performance_schema, sys and information_schema exports and SHOW output."""

    name = "mysql_stats"
    frame = "schema_indexes"
    dialect = "mysql"
    description = (
        "MySQL/MariaDB performance_schema, sys, information_schema and SHOW exports "
        "(tabular, \\G, TSV, CSV or JSON; several result sets per file)"
    )
    expected = (
        "mysql client output or a CSV/TSV/JSON export of a performance_schema, sys or "
        "information_schema view, SHOW INDEX, SHOW CREATE TABLE or SHOW GLOBAL STATUS/VARIABLES"
    )

    def sniff(self, head: str, path: Path) -> float:
        return _sniff_score(head)

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        text, bad = read_text(path)
        report = ParseReport.for_text(path, self.name, text, bad)
        f = _File(str(path), report, options)
        sets, stray = read_result_sets(text, raw=bool(options.get("raw")))
        if stray:
            lines = text.split("\n")  # once: a file may hold thousands of stray lines
            for line in stray:
                report.skip(line, "line outside any result set", lines[line - 1][:160])
        # variables first: they tell the dialect and the InnoDB page size for the rest
        order = sorted(range(len(sets)), key=lambda k: 0 if _is_variables(sets[k]) else 1)
        primary: str | None = None
        for k in order:
            rs = sets[k]
            for line, reason, excerpt in rs.bad:
                report.skip(line, reason, excerpt)
            if rs.footer_rows is not None and rs.footer_rows != len(rs.rows) + len(rs.bad):
                report.warn(
                    f"result set at line {rs.first_line}: the client counted {rs.footer_rows} rows, "
                    f"{len(rs.rows)} were read"
                )
            view = view_of(rs)
            if view is None:
                cols = ", ".join(rs.columns[:6])
                for line in rs.lines:
                    report.skip(line, f"result set auditkit does not read ({cols})")
                continue
            if view == "status_or_variables":
                _status_set(f, rs, report)
                primary = primary or "server_status"
                continue
            reader = _ROW_READERS[view]
            for line, rec in zip(rs.lines, rs.records(), strict=True):
                why = reader(f, rec, line)
                if why is None:
                    report.ok()
                else:
                    report.skip(line, why, "\t".join(str(v) for v in rec.values())[:160])
            primary = primary or _FRAME_OF[view]
        for column, count in sorted(f.numbers.underflows.items()):
            report.warn(
                f"{count} value(s) of {column} at the unsigned 64-bit limit (18446744073709551615: an "
                "underflow in a counter, 'no limit' in a setting) were read as unknown"
            )
        frames = _frames(f)
        for name, df in frames.items():
            report.events[name] = len(df)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        if report.parsed == 0:
            raise nothing_parsed(self, path, report)
        primary = primary if primary in frames else next(iter(frames), self.frame)
        if primary not in frames:
            frames[primary] = empty(FRAMES[primary])
        return LoadResult(self.name, frames, report, primary=primary)


_FRAME_OF = {
    "index_usage": "schema_indexes",
    "table_io": "schema_tables",
    "digest": "statement_stats",
    "schema_unused_indexes": "schema_indexes",
    "schema_redundant_indexes": "schema_indexes",
    "statements_with_full_table_scans": "statement_stats",
    "index_columns": "schema_indexes",
    "tables": "schema_tables",
    "table_status": "schema_tables",
    "innodb_index_stats": "schema_indexes",
    "innodb_table_stats": "schema_tables",
    "create_table": "schema_indexes",
}


def _is_variables(rs: ResultSet) -> bool:
    return view_of(rs) == "status_or_variables" and _status_kind(rs) == "variable"


def _frames(f: _File) -> dict[str, pd.DataFrame]:
    rows = dict(f.rows)
    if f.index_parts:
        for part in f.index_parts:
            part.setdefault("cardinality", None)
        grouped = mysql_index_rows(pd.DataFrame(f.index_parts))
        for row in grouped:
            row["dialect"] = f.dialect
            if row.get("foreign_key") is not None and not isinstance(row["foreign_key"], str):
                row["foreign_key"] = None
        rows.setdefault("schema_indexes", []).extend(grouped)
    page = float(f.page_size or _DEFAULT_PAGE)
    stats = rows.pop("_innodb_index_stats", [])
    if stats:
        df = pd.DataFrame(stats)
        agg: dict[str, Any] = {"source_file": "first", "source_line": "min", "dialect": "first"}
        for col, how in (("_pages", "max"), ("leaf_pages", "max"), ("cardinality", "max")):
            if col in df:
                agg[col] = how
        g = (
            df.groupby(["schema", "table", "index"], dropna=False, sort=False)
            .agg(agg)
            .reset_index()
        )
        if "_pages" in g:
            g["size_bytes"] = g["_pages"] * page
        rows.setdefault("schema_indexes", []).extend(
            {str(k): v for k, v in r.items()}
            for r in g.drop(columns=[c for c in ("_pages",) if c in g]).to_dict("records")
        )
    tstats = rows.pop("_innodb_table_stats", [])
    for r in tstats:
        clustered, other = r.pop("_clustered_pages", None), r.pop("_other_pages", None)
        r["size_bytes"] = None if clustered is None else clustered * page
        r["index_size_bytes"] = None if other is None else other * page
        if clustered is not None or other is not None:
            r["total_size_bytes"] = ((clustered or 0) + (other or 0)) * page
        rows.setdefault("schema_tables", []).append(r)
    frames: dict[str, pd.DataFrame] = {}
    for name, recs in rows.items():
        df = pd.DataFrame(recs)
        if name == "statement_stats":
            df = _statement_frame(df)
        elif name == "server_status":
            df["counter"] = df["counter"].astype("boolean")
        frames[name] = conform(df, FRAMES[name])
    return frames


def _statement_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Fingerprints of digest texts, mean times, rank and share."""
    sql = df["digest_text"].fillna("").map(digest_sql)
    fps, ids = fingerprint_many(sql, "mysql")
    df["fingerprint"], df["fingerprint_id"] = fps.to_numpy(), ids.to_numpy()
    if "mean_ms" not in df:
        df["mean_ms"] = np.nan
    calls = pd.to_numeric(df["calls"], errors="coerce")
    df["mean_ms"] = pd.to_numeric(df["mean_ms"], errors="coerce").fillna(
        pd.to_numeric(df["total_ms"], errors="coerce") / calls.where(calls > 0)
    )
    total = pd.to_numeric(df["total_ms"], errors="coerce")
    df["rank"] = total.rank(ascending=False, method="first")
    grand = total.sum(min_count=1)
    df["share"] = total / grand if grand and grand > 0 else np.nan
    for col in _ADDITIVE:
        if col in df and col not in STATEMENT_STATS.names:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


# --------------------------------------------------------------------------------------------
# snapshots
# --------------------------------------------------------------------------------------------
def digest_delta(before: pd.DataFrame, after: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """What ran between two digest snapshots (``statement_stats`` from ``mysql_stats``).

    Rows are matched on digest and schema (``query_id``, ``database``). Counters and summed
    times are subtracted; ``mean_ms`` is recomputed; ``max_ms``/``min_ms`` are kept only when the
    second snapshot shows a new extreme. A row whose ``calls`` went down or whose ``first_seen``
    moved was reset in between (``TRUNCATE``, eviction from a full digest table): its second
    values are taken whole and ``reset`` marks it. Digests without calls in between are left out.
    Returns the delta frame, ranked, and messages for the data-quality section.
    """
    messages: list[str] = []
    keys = ["query_id", "database"]
    b = before.drop_duplicates(subset=keys, keep="last").set_index(keys)
    a = after.drop_duplicates(subset=keys, keep="last").set_index(keys)
    both = a.index.intersection(b.index)
    delta = a.copy()
    reset = pd.Series(False, index=a.index)
    if len(both):
        fewer = a.loc[both, "calls"].astype("float64") < b.loc[both, "calls"].astype("float64")
        moved = (
            (a.loc[both, "first_seen"] != b.loc[both, "first_seen"])
            & a.loc[both, "first_seen"].notna()
            & b.loc[both, "first_seen"].notna()
        )
        was_reset = fewer | moved
        reset.loc[both] = was_reset.to_numpy()
        if was_reset.any():
            messages.append(
                f"{int(was_reset.sum())} digest(s) were reset between the snapshots (calls went down or "
                "FIRST_SEEN moved): their second-snapshot values are used as the delta"
            )
        same = both[~was_reset.to_numpy()]
        for col in _ADDITIVE:
            if col in a and col in b:
                delta.loc[same, col] = a.loc[same, col].astype("float64") - b.loc[same, col].astype(
                    "float64"
                )
        if "max_ms" in a and "max_ms" in b:
            delta.loc[same, "max_ms"] = a.loc[same, "max_ms"].where(
                a.loc[same, "max_ms"] > b.loc[same, "max_ms"]
            )
        if "min_ms" in a and "min_ms" in b:
            delta.loc[same, "min_ms"] = a.loc[same, "min_ms"].where(
                a.loc[same, "min_ms"] < b.loc[same, "min_ms"]
            )
    gone = b.index.difference(a.index)
    if len(gone):
        messages.append(
            f"{len(gone)} digest(s) of the first snapshot are missing from the second (the digest "
            "table was truncated or is full: check performance_schema_digests_size)"
        )
    delta["reset"] = reset.astype("boolean")
    delta = delta.reset_index()
    calls = pd.to_numeric(delta["calls"], errors="coerce")
    delta = delta[calls.fillna(0) > 0].reset_index(drop=True)
    calls = pd.to_numeric(delta["calls"], errors="coerce")
    delta["mean_ms"] = pd.to_numeric(delta["total_ms"], errors="coerce") / calls
    total = pd.to_numeric(delta["total_ms"], errors="coerce")
    delta["rank"] = total.rank(ascending=False, method="first")
    grand = total.sum(min_count=1)
    delta["share"] = total / grand if grand and grand > 0 else np.nan
    out = conform(delta, STATEMENT_STATS)
    return out.sort_values("rank", kind="stable").reset_index(drop=True), messages
