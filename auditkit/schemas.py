"""The canonical frames: every loader ends in one of these, every check starts from them.

Each frame is a :class:`FrameSchema`: an ordered tuple of :class:`Column`, each with a pandas
dtype, a unit (carried in the column name too: ``duration_ms``, ``size_bytes``) and a
description. Timestamps are UTC. Rows keep where they came from (``source_file``,
``source_line``) so a finding can cite its evidence.

:func:`conform` is the loader boundary: it adds missing optional columns, casts every column to
its canonical dtype, puts canonical columns first (format-specific extras follow) and raises
:class:`~auditkit.errors.SchemaError` when a required column is missing. Documentation of every
frame is generated from these definitions (``docs/frames.md``) and a test keeps them in step.

Example::

    >>> from auditkit.schemas import QUERY_EVENTS
    >>> QUERY_EVENTS.column("duration_ms").unit
    'ms'
"""

from __future__ import annotations

import contextlib
import contextvars
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

from auditkit.errors import SchemaError

__all__ = [
    "CACHE_EVENTS",
    "CACHE_KEYS",
    "CACHE_KEY_FAMILIES",
    "CACHE_STATS",
    "COLUMN_STATS",
    "FRAMES",
    "LOAD_FAILURES",
    "LOAD_SAMPLES",
    "PLAN_NODES",
    "QUERY_EVENTS",
    "REQUESTS",
    "SCHEMA_COLUMNS",
    "SCHEMA_INDEXES",
    "SCHEMA_TABLES",
    "SERVER_EVENTS",
    "SERVER_SETTINGS",
    "SERVER_STATUS",
    "STATEMENT_STATS",
    "Column",
    "FrameSchema",
    "cast",
    "conform",
    "count_out_of_range",
    "empty",
    "frames_markdown",
    "out_of_range_counts",
]

TEXT: Final = "string"
FLOAT: Final = "float64"
INT: Final = "Int64"
BOOL: Final = "boolean"
TS: Final = "datetime64[ns, UTC]"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a canonical frame."""

    name: str
    dtype: str
    description: str
    unit: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class FrameSchema:
    """A canonical frame: its name, what one row is, and its columns in order."""

    name: str
    row: str
    columns: tuple[Column, ...]
    _by_name: Mapping[str, Column] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    @property
    def names(self) -> list[str]:
        """Column names in canonical order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """The column called ``name``; ``KeyError`` if the frame has none."""
        return self._by_name[name]

    def dtypes(self) -> dict[str, str]:
        """``{column: dtype}`` for use with ``DataFrame.astype``."""
        return {c.name: c.dtype for c in self.columns}


def _cols(*specs: tuple[str, str, str] | tuple[str, str, str, str]) -> tuple[Column, ...]:
    out = []
    for spec in specs:
        name, dtype, desc = spec[0], spec[1], spec[2]
        flags = spec[3] if len(spec) == 4 else ""
        unit = ""
        for suffix, u in (("_ms", "ms"), ("_bytes", "bytes"), ("_per_s", "1/s"), ("_kb", "kB")):
            if name.endswith(suffix):
                unit = u
        out.append(Column(name, dtype, desc, unit=unit, required="required" in flags))
    return tuple(out)


_PROVENANCE = (
    (
        "source_file",
        TEXT,
        "File the row was read from (path relative to the client folder when known).",
    ),
    ("source_line", INT, "1-based line (or record) number in source_file where the row starts."),
)

QUERY_EVENTS = FrameSchema(
    "query_events",
    "one executed statement",
    _cols(
        ("ts", TS, "When the statement finished (or was logged), UTC."),
        (
            "duration_ms",
            FLOAT,
            "Execution time in milliseconds; NaN when the source does not time it.",
            "required",
        ),
        (
            "sql",
            TEXT,
            "The statement as logged, literals included (reports redact them by default).",
            "required",
        ),
        (
            "fingerprint",
            TEXT,
            "Normalised statement: literals, numbers and bind parameters as ?; IN/VALUES lists collapsed.",
        ),
        ("fingerprint_id", TEXT, "Stable 16-hex-digit id of the fingerprint."),
        ("params", TEXT, "Bound parameters as logged (Django args, PostgreSQL DETAIL parameters)."),
        (
            "database",
            TEXT,
            "Database name (or Django connection alias when the source has no database).",
        ),
        ("user", TEXT, "Database user."),
        ("application", TEXT, "Client application name."),
        ("client", TEXT, "Client host or address."),
        ("pid", INT, "Server backend process id, or the client process id for client-side logs."),
        ("thread", TEXT, "Client thread name or id, when the source logs it."),
        ("session_id", TEXT, "Server session identifier (PostgreSQL %c) when present."),
        ("query_id", TEXT, "Server query identifier (PostgreSQL queryid, %Q) when logged."),
        ("request_id", TEXT, "Id of the HTTP request that issued the statement."),
        ("trace_id", TEXT, "Trace id (hex) of the request that issued the statement."),
        ("span_id", TEXT, "Span id (hex) of the statement, from traces."),
        ("endpoint", TEXT, "Endpoint (route or view) that issued the statement."),
        ("rows", INT, "Rows returned or affected, when the source reports them."),
        ("lock_ms", FLOAT, "Time spent waiting for locks, milliseconds (MySQL Lock_time)."),
        ("rows_examined", INT, "Rows examined (MySQL Rows_examined)."),
        (
            "source_format",
            TEXT,
            "Format the row came from (django_log, postgres_stderr, mysql_slow, …).",
        ),
        *_PROVENANCE,
    ),
)

STATEMENT_STATS = FrameSchema(
    "statement_stats",
    "one normalised statement, aggregated (the query profile)",
    _cols(
        ("rank", INT, "1 for the statement with the largest total time."),
        ("fingerprint_id", TEXT, "Stable id of the fingerprint.", "required"),
        ("fingerprint", TEXT, "Normalised statement.", "required"),
        ("calls", INT, "Number of executions.", "required"),
        ("total_ms", FLOAT, "Total execution time, milliseconds.", "required"),
        ("share", FLOAT, "Fraction of the total time of all statements (0–1)."),
        ("mean_ms", FLOAT, "Mean execution time, milliseconds."),
        ("min_ms", FLOAT, "Fastest execution, milliseconds."),
        ("max_ms", FLOAT, "Slowest execution, milliseconds."),
        ("stddev_ms", FLOAT, "Population standard deviation of execution time, milliseconds."),
        ("p50_ms", FLOAT, "Median execution time, milliseconds."),
        ("p95_ms", FLOAT, "95th percentile execution time, milliseconds."),
        ("p99_ms", FLOAT, "99th percentile execution time, milliseconds."),
        (
            "percentiles_exact",
            BOOL,
            "True when percentiles come from every sample, False when from a sketch (±1 %).",
        ),
        ("rows", INT, "Rows returned or affected, summed."),
        ("shared_blks_hit", INT, "Shared buffer hits (pg_stat_statements)."),
        ("shared_blks_read", INT, "Shared blocks read (pg_stat_statements)."),
        ("first_seen", TS, "First execution seen, UTC."),
        ("last_seen", TS, "Last execution seen, UTC."),
        ("sample_sql", TEXT, "The slowest execution's statement text."),
        ("query_id", TEXT, "pg_stat_statements queryid, when the source has it."),
        ("database", TEXT, "Database (the most frequent one when several)."),
        ("user", TEXT, "User (the most frequent one when several)."),
        ("sources", TEXT, "Files the statement was seen in, comma separated."),
        # MySQL / MariaDB: performance_schema statement digests, sys views, the slow log
        (
            "rows_examined",
            INT,
            "Rows the server read to run the statement, summed (MySQL SUM_ROWS_EXAMINED); ≫ rows means a scan.",
        ),
        (
            "lock_ms",
            FLOAT,
            "Time waiting for table locks, summed, milliseconds (MySQL SUM_LOCK_TIME).",
        ),
        (
            "no_index_used",
            INT,
            "Executions that read a table without any index (MySQL SUM_NO_INDEX_USED).",
        ),
        (
            "full_scans",
            INT,
            "Executions whose first table was read by a full scan (MySQL SUM_SELECT_SCAN).",
        ),
        (
            "full_joins",
            INT,
            "Executions that joined a table without an index on the join (MySQL SUM_SELECT_FULL_JOIN).",
        ),
        ("tmp_tables", INT, "Internal temporary tables created (MySQL SUM_CREATED_TMP_TABLES)."),
        (
            "tmp_disk_tables",
            INT,
            "Internal temporary tables written to disk (MySQL SUM_CREATED_TMP_DISK_TABLES).",
        ),
        (
            "sort_merge_passes",
            INT,
            "Merge passes of sorts that spilled (MySQL SUM_SORT_MERGE_PASSES).",
        ),
        ("dialect", TEXT, "SQL dialect of the statements: postgres, mysql or mariadb."),
    ),
)

SERVER_EVENTS = FrameSchema(
    "server_events",
    "one database server event that is not a timed statement",
    _cols(
        ("ts", TS, "When the event was logged, UTC."),
        (
            "kind",
            TEXT,
            "error, lock_wait, deadlock, temp_file, checkpoint, autovacuum, autoanalyze, connection, disconnection, statement, other.",
            "required",
        ),
        ("severity", TEXT, "Server severity (LOG, ERROR, FATAL, PANIC, WARNING, …)."),
        ("sqlstate", TEXT, "SQLSTATE error code when logged."),
        ("message", TEXT, "The server message.", "required"),
        ("detail", TEXT, "DETAIL / HINT / CONTEXT lines joined."),
        ("statement", TEXT, "STATEMENT logged with the event."),
        ("database", TEXT, "Database name."),
        ("user", TEXT, "Database user."),
        ("pid", INT, "Server process id."),
        (
            "duration_ms",
            FLOAT,
            "Duration carried by the event (lock wait, session time, checkpoint), milliseconds.",
        ),
        ("size_bytes", INT, "Size carried by the event (temporary file), bytes."),
        ("relation", TEXT, "Table the event concerns (autovacuum, lock wait)."),
        ("source_format", TEXT, "Format the row came from."),
        *_PROVENANCE,
    ),
)

SERVER_SETTINGS = FrameSchema(
    "server_settings",
    "one configuration setting of a database or application server (pg_settings, SHOW VARIABLES, gunicorn and uWSGI start-up lines)",
    _cols(
        ("name", TEXT, "Setting name (max_connections, shared_buffers, work_mem, …).", "required"),
        ("setting", TEXT, "Value as the server reports it, in its unit.", "required"),
        ("unit", TEXT, "Unit of setting (8kB, kB, ms, …), empty for plain numbers."),
        (
            "value",
            FLOAT,
            "Numeric value in base units: bytes for sizes, milliseconds for times; NaN when not numeric.",
        ),
        ("source", TEXT, "Where the value comes from (default, configuration file, …)."),
        ("ts", TS, "When the settings were read, UTC (NaT when unknown)."),
        (
            "server",
            TEXT,
            "Server the settings belong to, when known (postgres, mysql, gunicorn, uwsgi, or a host name).",
        ),
        *_PROVENANCE,
    ),
)

PLAN_NODES = FrameSchema(
    "plan_nodes",
    "one node of one query plan",
    _cols(
        (
            "plan_id",
            TEXT,
            "Identifies the plan within the load (file name and ordinal).",
            "required",
        ),
        ("node_id", INT, "Node number within the plan, 0 for the root, depth first.", "required"),
        ("parent_id", INT, "node_id of the parent, <NA> for the root."),
        ("depth", INT, "Depth in the tree, 0 for the root."),
        ("node_type", TEXT, "Node type (Seq Scan, Index Scan, Hash Join, …).", "required"),
        ("relation", TEXT, "Table scanned, when the node scans one."),
        ("alias", TEXT, "Alias of the scanned relation."),
        ("index_name", TEXT, "Index used, when the node uses one."),
        ("join_type", TEXT, "Join type (Inner, Left, Semi, Anti, …)."),
        ("startup_cost", FLOAT, "Planner startup cost."),
        ("total_cost", FLOAT, "Planner total cost."),
        ("plan_rows", FLOAT, "Rows the planner expected per loop."),
        ("plan_width", INT, "Average row width the planner expected, bytes."),
        ("actual_startup_ms", FLOAT, "Measured time to first row, per loop, milliseconds."),
        ("actual_total_ms", FLOAT, "Measured time to last row, per loop, milliseconds."),
        ("actual_rows", FLOAT, "Rows produced per loop (fractional from PostgreSQL 18)."),
        ("loops", FLOAT, "Number of times the node ran."),
        (
            "exclusive_ms",
            FLOAT,
            "Time spent in this node alone, all loops, children subtracted, milliseconds.",
        ),
        ("rows_removed_by_filter", FLOAT, "Rows removed by the node's filter, per loop."),
        ("rows_removed_by_index_recheck", FLOAT, "Rows removed by index recheck, per loop."),
        ("filter", TEXT, "Filter condition."),
        ("index_cond", TEXT, "Index condition."),
        ("join_filter", TEXT, "Join filter / hash / merge condition."),
        ("sort_key", TEXT, "Sort key."),
        ("sort_method", TEXT, "Sort method (quicksort, external merge, top-N heapsort)."),
        ("sort_space_kb", FLOAT, "Sort memory or disk used, kB."),
        ("hash_batches", INT, "Hash batches used."),
        ("heap_fetches", FLOAT, "Heap fetches of an index-only scan."),
        ("shared_hit_blocks", FLOAT, "Shared buffers hit."),
        ("shared_read_blocks", FLOAT, "Shared blocks read."),
        ("temp_written_blocks", FLOAT, "Temporary blocks written."),
        ("never_executed", BOOL, "True when the node was never executed."),
        ("statement", TEXT, "Statement the plan belongs to, when known."),
        ("dialect", TEXT, "postgres, mysql, mariadb or sqlite."),
        *_PROVENANCE,
    ),
)

REQUESTS = FrameSchema(
    "requests",
    "one HTTP request, transaction or root span",
    _cols(
        ("ts", TS, "When the request started, UTC."),
        ("request_id", TEXT, "Request id (or trace id when the source has none).", "required"),
        ("trace_id", TEXT, "Trace id, hex."),
        ("endpoint", TEXT, "Route or view name."),
        ("method", TEXT, "HTTP method."),
        ("status", INT, "HTTP status code."),
        ("duration_ms", FLOAT, "Wall-clock duration, milliseconds."),
        ("db_ms", FLOAT, "Time in database calls, milliseconds."),
        ("db_calls", INT, "Number of database calls."),
        ("cache_hits", INT, "Cache hits during the request."),
        ("cache_misses", INT, "Cache misses during the request."),
        ("service", TEXT, "Service or application name."),
        ("inferred", BOOL, "True when the request was reconstructed by heuristic, not read."),
        ("source_format", TEXT, "Format the row came from."),
        ("cache_ms", FLOAT, "Time in cache operations during the request, milliseconds."),
        (
            "cpu_ms",
            FLOAT,
            "CPU time of the thread that served the request (time.thread_time), milliseconds.",
        ),
        ("mail_ms", FLOAT, "Time spent sending e-mail (Django e-mail backends), milliseconds."),
        (
            "http_ms",
            FLOAT,
            "Time waiting on outbound HTTP calls (http.client, urllib3, requests), milliseconds.",
        ),
        ("route", TEXT, "URL pattern the request resolved to (Django route template)."),
        ("url_name", TEXT, "Name of the URL pattern (namespace:name), when it has one."),
        ("view", TEXT, "Dotted path of the view function or class."),
        ("kind", TEXT, "http for a web request, task for a background task (Celery)."),
        (
            "upstream_ms",
            FLOAT,
            "Time the proxy waited on the application (nginx $upstream_response_time, summed over retries), milliseconds.",
        ),
        ("upstream_addr", TEXT, "Application server the proxy sent the request to."),
        (
            "upstream_status",
            TEXT,
            "Status the application returned to the proxy (per try, comma separated).",
        ),
        (
            "cache_status",
            TEXT,
            "Proxy or CDN cache outcome as the log spells it, upper case (HIT, MISS, BYPASS, EXPIRED, DYNAMIC, STALE, …).",
        ),
        ("response_bytes", INT, "Response body size, bytes."),
        ("path", TEXT, "Request path without the query string, when the source gives it."),
        *_PROVENANCE,
    ),
)

CACHE_EVENTS = FrameSchema(
    "cache_events",
    "one cache operation",
    _cols(
        ("ts", TS, "When the operation ran, UTC."),
        ("op", TEXT, "get, set, delete, get_many, …", "required"),
        ("key", TEXT, "Cache key (may be redacted in reports)."),
        ("key_prefix", TEXT, "Key with variable parts replaced, to group similar keys."),
        ("hit", BOOL, "True on a hit, False on a miss, <NA> for writes."),
        ("duration_ms", FLOAT, "Operation time, milliseconds."),
        ("endpoint", TEXT, "Endpoint that issued the operation."),
        ("request_id", TEXT, "Request that issued the operation."),
        (
            "ttl_s",
            FLOAT,
            "Time to live given by a write, seconds; NaN when none was given or the key never expires.",
        ),
        ("trace_id", TEXT, "Trace the operation belongs to, hex."),
        ("cache", TEXT, "Django cache alias (default, sessions, …) or the cache's name."),
        ("backend", TEXT, "Backend: redis, memcached, locmem, database, file, …"),
        ("value_bytes", INT, "Size of the value read or written, bytes."),
        ("key_count", INT, "Keys the operation touched (get_many, set_many, delete_many)."),
        ("pid", INT, "Process id."),
        ("thread", TEXT, "Thread name or id."),
        ("source_format", TEXT, "Format the row came from."),
        ("key_hits", INT, "Keys a multi-key read (get_many) found."),
        ("error", TEXT, "Exception the operation raised (a failed call: neither hit nor miss)."),
        *_PROVENANCE,
    ),
)

CACHE_STATS = FrameSchema(
    "cache_stats",
    "one metric of one cache server at one time",
    _cols(
        ("ts", TS, "When the statistics were taken, UTC (NaT when unknown)."),
        ("server", TEXT, "Server name or address.", "required"),
        ("engine", TEXT, "redis, valkey, memcached, …"),
        ("section", TEXT, "INFO section or stats group."),
        ("metric", TEXT, "Metric name as the server names it.", "required"),
        (
            "value",
            FLOAT,
            "Numeric value; cumulative counters are kept raw, rates are derived.",
            "required",
        ),
        ("text", TEXT, "The raw value when it is not numeric."),
        *_PROVENANCE,
    ),
)

LOAD_SAMPLES = FrameSchema(
    "load_samples",
    "one load-test interval (or one endpoint's aggregate)",
    _cols(
        ("ts", TS, "Interval timestamp, UTC."),
        ("users", FLOAT, "Concurrent users."),
        ("rps", FLOAT, "Requests per second."),
        ("failures_per_s", FLOAT, "Failures per second."),
        ("p50_ms", FLOAT, "Median response time, milliseconds."),
        ("p95_ms", FLOAT, "95th percentile response time, milliseconds."),
        ("p99_ms", FLOAT, "99th percentile response time, milliseconds."),
        ("endpoint", TEXT, "Endpoint name, or Aggregated."),
        ("method", TEXT, "HTTP method."),
        ("requests", INT, "Requests in the interval (cumulative in Locust history)."),
        ("failures", INT, "Failures in the interval (cumulative in Locust history)."),
        *_PROVENANCE,
    ),
)

LOAD_FAILURES = FrameSchema(
    "load_failures",
    "one kind of failure seen by a load test, with its count",
    _cols(
        ("endpoint", TEXT, "Endpoint name.", "required"),
        ("method", TEXT, "HTTP method (or request type)."),
        ("error", TEXT, "The error as the load tool reports it.", "required"),
        ("occurrences", INT, "How many times it happened."),
        *_PROVENANCE,
    ),
)

SCHEMA_TABLES = FrameSchema(
    "schema_tables",
    "one table with its size and access statistics",
    _cols(
        ("schema", TEXT, "Schema (namespace)."),
        ("table", TEXT, "Table name.", "required"),
        ("rows_estimate", FLOAT, "Estimated live rows."),
        ("size_bytes", INT, "Heap size, bytes."),
        ("total_size_bytes", INT, "Heap, indexes and TOAST, bytes."),
        ("seq_scan", INT, "Sequential scans since the statistics reset."),
        ("seq_tup_read", INT, "Rows read by sequential scans."),
        ("idx_scan", INT, "Index scans since the statistics reset."),
        ("n_tup_ins", INT, "Rows inserted."),
        ("n_tup_upd", INT, "Rows updated."),
        ("n_tup_del", INT, "Rows deleted."),
        ("n_dead_tup", INT, "Dead rows."),
        ("model", TEXT, "Django model (app_label.Model) mapped to the table, when known."),
        (
            "rows_read",
            INT,
            "Rows read from the table by any access path (MySQL performance_schema COUNT_READ).",
        ),
        ("index_size_bytes", INT, "All indexes of the table, bytes (MySQL INDEX_LENGTH)."),
        ("engine", TEXT, "Storage engine (InnoDB, MyISAM, Aria, …)."),
        ("dialect", TEXT, "Database the export came from: postgres, mysql or mariadb."),
        (
            "heap_blks_read",
            INT,
            "Table blocks read from disk or the OS cache (pg_statio_user_tables).",
        ),
        ("heap_blks_hit", INT, "Table blocks found in shared buffers."),
        ("idx_blks_read", INT, "Blocks of the table's indexes read from disk or the OS cache."),
        ("idx_blks_hit", INT, "Blocks of the table's indexes found in shared buffers."),
        ("toast_blks_read", INT, "TOAST blocks read from disk or the OS cache."),
        ("toast_blks_hit", INT, "TOAST blocks found in shared buffers."),
        *_PROVENANCE,
    ),
)

SCHEMA_INDEXES = FrameSchema(
    "schema_indexes",
    "one index",
    _cols(
        ("schema", TEXT, "Schema (namespace)."),
        ("table", TEXT, "Table the index belongs to.", "required"),
        ("index", TEXT, "Index name.", "required"),
        ("columns", TEXT, "Indexed columns or expressions, comma separated, in order."),
        ("definition", TEXT, "CREATE INDEX statement (pg_indexes.indexdef)."),
        ("method", TEXT, "Access method (btree, hash, gin, gist, brin)."),
        ("unique", BOOL, "Unique index."),
        ("primary", BOOL, "Primary key."),
        ("predicate", TEXT, "WHERE clause of a partial index."),
        ("size_bytes", INT, "Index size, bytes."),
        ("idx_scan", INT, "Scans since the statistics reset."),
        (
            "index_reads",
            INT,
            "Rows read through the index since the server started or the statistics were truncated (MySQL performance_schema COUNT_READ; 0 = unused).",
        ),
        (
            "index_writes",
            INT,
            "Rows inserted, updated or deleted through the index in the same window (MySQL COUNT_WRITE): its upkeep.",
        ),
        (
            "redundant_to",
            TEXT,
            "Index that makes this one redundant (its columns are a prefix of it), as the server reports it (MySQL sys.schema_redundant_indexes).",
        ),
        (
            "foreign_key",
            TEXT,
            "Foreign-key constraint whose columns this index leads with: InnoDB needs such an index, so it cannot be dropped while it is the only one.",
        ),
        ("dialect", TEXT, "Database the export came from: postgres, mysql or mariadb."),
        (
            "idx_blks_read",
            INT,
            "Index blocks read from disk or the OS cache (pg_statio_user_indexes).",
        ),
        ("idx_blks_hit", INT, "Index blocks found in shared buffers."),
        *_PROVENANCE,
    ),
)

SCHEMA_COLUMNS = FrameSchema(
    "schema_columns",
    "one Django model field (or table column) with its relations",
    _cols(
        ("app_label", TEXT, "Django app label."),
        ("model", TEXT, "Django model name."),
        ("table", TEXT, "Database table.", "required"),
        ("field", TEXT, "Model field name."),
        ("column", TEXT, "Database column."),
        ("field_type", TEXT, "Django field class."),
        ("fk_to", TEXT, "Related table for foreign keys, one-to-one and many-to-many fields."),
        ("related_name", TEXT, "Accessor name on the related model (reverse relation)."),
        ("through", TEXT, "Through table of a many-to-many field."),
        ("db_index", BOOL, "Field declares an index (db_index, unique or FK)."),
        (
            "inferred",
            BOOL,
            "True when guessed from Django naming conventions, not read from a model dump.",
        ),
        *_PROVENANCE,
    ),
)

# --- indexing: per-column planner statistics (pg_stats) ------------------------------------
# Added for the index advisor (issue 4): the selectivity of a column orders the equality
# columns of a composite index and sizes a candidate. Kept apart from schema_columns, which
# describes Django fields, because one row here is one *table column* as the planner sees it.

COLUMN_STATS = FrameSchema(
    "column_stats",
    "one table column with the planner's statistics for it (pg_stats)",
    _cols(
        ("schema", TEXT, "Schema (namespace)."),
        ("table", TEXT, "Table name.", "required"),
        ("column", TEXT, "Column name.", "required"),
        ("inherited", BOOL, "True for statistics that include inheritance children."),
        ("null_frac", FLOAT, "Fraction of rows whose value is NULL (0–1)."),
        ("avg_width", INT, "Average stored width of the column's values, bytes."),
        (
            "n_distinct",
            FLOAT,
            "Distinct values: positive = a count, negative = minus the fraction of rows.",
        ),
        (
            "correlation",
            FLOAT,
            "Correlation between physical row order and the column's order (-1–1).",
        ),
        (
            "most_common_freqs",
            TEXT,
            "Frequencies of the most common values, as exported (values themselves are not kept).",
        ),
        *_PROVENANCE,
    ),
)

# --- MySQL / MariaDB server status, memcached key families and keys (issue 16) ------------

SERVER_STATUS = FrameSchema(
    "server_status",
    "one status counter or system variable of one database server at one snapshot (SHOW GLOBAL STATUS / VARIABLES, pg_stat_database and the other cumulative PostgreSQL views)",
    _cols(
        ("ts", TS, "When the snapshot was taken, UTC (NaT when the export does not say)."),
        ("server", TEXT, "Server name or address (the file name when the export does not say)."),
        ("engine", TEXT, "mysql, mariadb or percona, when the variables tell."),
        (
            "kind",
            TEXT,
            "status (a SHOW GLOBAL STATUS counter or gauge) or variable (a setting).",
            "required",
        ),
        (
            "name",
            TEXT,
            "Name as the server spells it (Connections, Innodb_buffer_pool_reads, max_connections, …).",
            "required",
        ),
        (
            "value",
            FLOAT,
            "Numeric value (counters kept cumulative, as the server reports them); NaN when not numeric.",
        ),
        ("text", TEXT, "The value as the server printed it."),
        ("snapshot", INT, "Ordinal of the snapshot within its file, from 1."),
        (
            "uptime_s",
            FLOAT,
            "The server's Uptime at this snapshot, seconds: the clock of deltas when the export has no time stamps.",
        ),
        (
            "counter",
            BOOL,
            "True for a cumulative counter (deltas and rates make sense), False for a gauge or text; <NA> for variables.",
        ),
        (
            "view",
            TEXT,
            "Where the counter comes from: SHOW GLOBAL STATUS, pg_stat_database, pg_stat_bgwriter, pg_stat_checkpointer, pg_stat_archiver, …",
        ),
        (
            "database",
            TEXT,
            "Database the counter belongs to (pg_stat_database rows), empty for server-wide counters.",
        ),
        *_PROVENANCE,
    ),
)

CACHE_KEY_FAMILIES = FrameSchema(
    "cache_key_families",
    "one key family (key prefix) of one cache server, with its counts, at one time",
    _cols(
        ("ts", TS, "When the statistics were taken, UTC (NaT when unknown)."),
        ("server", TEXT, "Server name or address."),
        ("engine", TEXT, "memcached, redis, …"),
        (
            "key_prefix",
            TEXT,
            "The family: memcached's own prefix (the key up to the first delimiter, 'stats detail') or the key with its variable parts replaced (from a key dump).",
            "required",
        ),
        ("gets", INT, "Reads of keys of the family (memcached 'get' count, cumulative)."),
        ("hits", INT, "Reads that found the key."),
        ("misses", INT, "Reads that did not find it (gets − hits)."),
        ("sets", INT, "Writes."),
        ("deletes", INT, "Deletes."),
        ("hit_ratio", FLOAT, "hits / gets (0–1); NaN without reads."),
        ("keys", INT, "Keys of the family held at the time (from a key dump)."),
        ("size_bytes", INT, "Bytes the family's items take (from a key dump)."),
        (
            "never_fetched_keys",
            INT,
            "Keys written and never read since (memcached fetch=no): wasted writes.",
        ),
        ("no_expiry_keys", INT, "Keys without an expiry time."),
        (
            "median_ttl_s",
            FLOAT,
            "Median time to live the keys were given, seconds, when the dump time is known.",
        ),
        ("source_format", TEXT, "Format the row came from (memcached_detail, memcached_metadump)."),
        *_PROVENANCE,
    ),
)

CACHE_KEYS = FrameSchema(
    "cache_keys",
    "one key held by a cache server, with its metadata (never its value)",
    _cols(
        ("ts", TS, "When the keys were dumped, UTC (NaT when unknown)."),
        ("server", TEXT, "Server name or address."),
        ("engine", TEXT, "memcached, redis, …"),
        ("key", TEXT, "The key, decoded (may be redacted in reports).", "required"),
        (
            "key_prefix",
            TEXT,
            "Key with its variable parts (numbers, hex, UUIDs, e-mail addresses) replaced.",
        ),
        ("expires_at", TS, "When the key expires, UTC; NaT when it never does."),
        ("last_access", TS, "Last read or write, UTC."),
        (
            "ttl_s",
            FLOAT,
            "Seconds left to live at dump time; NaN when it never expires or the dump time is unknown.",
        ),
        ("size_bytes", INT, "Item size, bytes (key, value and overhead)."),
        ("fetched", BOOL, "True when the key was read since it was written."),
        ("slab_class", INT, "memcached slab class holding the item."),
        *_PROVENANCE,
    ),
)

FRAMES: dict[str, FrameSchema] = {
    f.name: f
    for f in (
        QUERY_EVENTS,
        STATEMENT_STATS,
        SERVER_EVENTS,
        SERVER_SETTINGS,
        PLAN_NODES,
        REQUESTS,
        CACHE_EVENTS,
        CACHE_STATS,
        LOAD_SAMPLES,
        LOAD_FAILURES,
        SCHEMA_TABLES,
        SCHEMA_INDEXES,
        SCHEMA_COLUMNS,
        COLUMN_STATS,
        SERVER_STATUS,
        CACHE_KEY_FAMILIES,
        CACHE_KEYS,
    )
}


def empty(schema: FrameSchema) -> pd.DataFrame:
    """An empty frame with every canonical column at its dtype."""
    return pd.DataFrame({c.name: pd.Series(dtype=c.dtype) for c in schema.columns})


#: out-of-range values :func:`conform` set to null, by column, for the load in progress
_OUT_OF_RANGE: contextvars.ContextVar[Counter[str] | None] = contextvars.ContextVar(
    "auditkit_out_of_range", default=None
)

_INT_MAX = 2**63 - 1


@contextlib.contextmanager
def out_of_range_counts() -> Iterator[Counter[str]]:
    """Count, by column, the values :func:`conform` nulls because they are out of range.

    A value no canonical dtype can hold — MySQL's ``18446744073709551615`` (an unsigned
    counter that went below zero), an infinite or 20-digit duration, a timestamp in the year
    9999 — becomes null rather than failing the file; the loader base class reports the counts
    in the parse report (:class:`~auditkit.loaders.base.Loader`).
    """
    counts: Counter[str] = Counter()
    token = _OUT_OF_RANGE.set(counts)
    try:
        yield counts
    finally:
        _OUT_OF_RANGE.reset(token)


def count_out_of_range(column: str, n: int) -> None:
    """Count ``n`` values of ``column`` a loader set to null because they were out of range."""
    counts = _OUT_OF_RANGE.get()
    if n and counts is not None:
        counts[column] += n


def _to_ts(series: pd.Series, column: str) -> pd.Series:
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series):
        ts = (
            series if isinstance(series.dtype, pd.DatetimeTZDtype) else series.dt.tz_localize("UTC")
        )
        ts = ts.dt.tz_convert("UTC")
    else:
        try:
            ts = pd.to_datetime(series, utc=True, errors="coerce", format="mixed")
        except (OverflowError, ValueError, TypeError):  # out of bounds for the parser itself
            ts = pd.Series(
                [_one_ts(v) for v in series], index=series.index, dtype="datetime64[us, UTC]"
            )
    if str(ts.dtype) == TS:
        return ts
    # the instants a ``datetime64[ns]`` can hold
    lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    bad = ts.notna() & ((ts < lo) | (ts > hi))
    if bad.any():
        count_out_of_range(column, int(bad.sum()))
        ts = ts.mask(bad)
    return ts.astype(TS)


def _one_ts(value: object) -> pd.Timestamp | None:
    try:
        ts = pd.to_datetime(value, utc=True, errors="coerce")  # type: ignore[call-overload]
    except (OverflowError, ValueError, TypeError):
        return None
    return None if ts is pd.NaT else ts


def _to_int(series: pd.Series, column: str) -> pd.Series:
    try:
        num = pd.to_numeric(series, errors="coerce")
    except (OverflowError, ValueError, TypeError):  # integers past float range, mixed types
        num = pd.Series(series.to_numpy(dtype=object), index=series.index, dtype=object)
    if num.dtype == np.int64 or str(num.dtype) == INT:
        return num.astype(INT)
    if num.dtype == np.uint64 or num.dtype == object:
        # beyond int64 (an unsigned underflow) or beyond any machine integer: exact checks
        values = [_exact_int(v) for v in num]
        bad = sum(1 for v, o in zip(values, num, strict=True) if v is None and pd.notna(o))
        count_out_of_range(column, bad)
        return pd.Series(pd.array(values, dtype=INT), index=series.index)
    floats = num.astype(FLOAT)
    beyond = floats.notna() & (~np.isfinite(floats) | (floats.abs() >= 2.0**63))
    if beyond.any():
        count_out_of_range(column, int(beyond.sum()))
        floats = floats.mask(beyond)
    return floats.round().astype(INT)


def _exact_int(value: object) -> int | None:
    if value is None or value is pd.NA:
        return None
    try:
        number = round(value) if isinstance(value, float) else int(value)  # type: ignore[call-overload]
    except (OverflowError, ValueError, TypeError):
        return None
    return number if -_INT_MAX - 1 <= number <= _INT_MAX else None


def _one_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return float("inf") if not str(value).startswith("-") else float("-inf")
    except (ValueError, TypeError):
        return float("nan")


def _to_float(series: pd.Series, column: str) -> pd.Series:
    try:
        num = pd.to_numeric(series, errors="coerce")
    except (OverflowError, ValueError, TypeError):  # integers past float range: infinite
        num = pd.Series([_one_float(v) for v in series], index=series.index, dtype="float64")
    with np.errstate(over="ignore", invalid="ignore"):
        floats = num.astype(FLOAT)
    bad = np.isinf(floats)
    if bad.any():
        count_out_of_range(column, int(bad.sum()))
        floats = floats.mask(bad)
    return floats


def cast(series: pd.Series, dtype: str, column: str = "") -> pd.Series:
    """``series`` as ``dtype`` the way :func:`conform` casts a column of that dtype.

    Out-of-range values become null and are counted under ``column``.
    """
    if str(series.dtype) == dtype:
        if dtype == FLOAT and np.isinf(series).any():
            return _to_float(series, column)
        return series
    if dtype == TS:
        # one resolution everywhere (pandas may parse to µs): frames concatenate and compare
        return _to_ts(series, column)
    if dtype == FLOAT:
        return _to_float(series, column)
    if dtype == INT:
        return _to_int(series, column)
    if dtype == BOOL:
        return series.astype(BOOL)
    if dtype == TEXT:
        return series.astype(TEXT)
    return series.astype(pd.api.types.pandas_dtype(dtype))


def null_column(dtype: str, n: int) -> pd.Series:
    """A column of ``n`` nulls built from typed buffers (no Python object per row)."""
    if dtype == FLOAT:
        return pd.Series(np.full(n, np.nan))
    if dtype == TS:
        return pd.Series(np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")).dt.tz_localize(
            "UTC"
        )
    if dtype == INT:
        return pd.Series(pd.arrays.IntegerArray(np.zeros(n, dtype="int64"), np.ones(n, dtype=bool)))
    if dtype == BOOL:
        return pd.Series(pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool)))
    if dtype == TEXT:
        return pd.Series(pd.array(pa.nulls(n, pa.large_string()), dtype=TEXT))
    return pd.Series([pd.NA] * n, dtype=dtype)


def conform(df: pd.DataFrame | Mapping[str, Iterable[object]], schema: FrameSchema) -> pd.DataFrame:
    """Return ``df`` in the canonical shape of ``schema``.

    Missing optional columns are added as nulls, columns are cast to their canonical dtype,
    canonical columns come first in order and any extra columns follow unchanged. A value its
    dtype cannot hold (an integer past int64, an infinite float, a timestamp outside
    1677–2262) becomes null and is counted (see :func:`out_of_range_counts`).
    Raises :class:`SchemaError` naming the missing required columns.
    """
    frame = df if isinstance(df, pd.DataFrame) else pd.DataFrame(dict(df))
    missing = [c.name for c in schema.columns if c.required and c.name not in frame.columns]
    if missing and len(frame):
        raise SchemaError(
            f"{schema.name} frame lacks required {'column' if len(missing) == 1 else 'columns'} {', '.join(missing)}",
            hint=f"a {schema.name} row is {schema.row}; see docs/frames.md",
        )
    n = len(frame)
    out: dict[str, pd.Series] = {}
    for col in schema.columns:
        series = frame[col.name] if col.name in frame.columns else None
        if series is None or (n and str(series.dtype) != col.dtype and series.isna().all()):
            out[col.name] = null_column(col.dtype, n)  # nothing to cast (a wide frame's many)
        else:
            out[col.name] = cast(series, col.dtype, col.name).reset_index(drop=True)
    for extra in frame.columns:
        if extra not in out:
            out[str(extra)] = frame[extra].reset_index(drop=True)
    return pd.DataFrame(out)


def frames_markdown() -> str:
    """Markdown documentation of every canonical frame (written to ``docs/frames.md``)."""
    lines = [
        "# Canonical frames",
        "",
        "Generated from `auditkit/schemas.py` by `auditkit.schemas.frames_markdown()`; a test keeps",
        "this file in step with the code. Units are in column names; timestamps are UTC.",
        "",
    ]
    for schema in FRAMES.values():
        lines += [f"## `{schema.name}`", "", f"One row is {schema.row}.", ""]
        lines += ["| column | dtype | required | description |", "|---|---|---|---|"]
        for c in schema.columns:
            lines.append(
                f"| `{c.name}` | {c.dtype} | {'yes' if c.required else ''} | {c.description} |"
            )
        lines.append("")
    return "\n".join(lines)
