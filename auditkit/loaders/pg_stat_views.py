"""PostgreSQL cumulative statistics views and ``pg_index`` details, as CSV, JSON or psql output.

Every format here is recognised by the columns of the view it exports (as in
:mod:`auditkit.loaders.pg_catalog`, whose reader it shares: ``psql --csv`` or ``\\copy … CSV
HEADER``, a JSON array such as ``json_agg`` output, one JSON object per line from
``row_to_json``, and psql's aligned, border-2 or expanded ``\\x`` tables).

===================== ============================================ ==================================
format                required columns                             frame
===================== ============================================ ==================================
pg_statio_tables      relname, heap_blks_read, heap_blks_hit       ``schema_tables``: ``heap_blks_*``,
                                                                   ``idx_blks_*``, ``toast_blks_*``
                                                                   (``tidx_blks_*`` kept as extras)
pg_statio_indexes     relname, indexrelname, idx_blks_read,        ``schema_indexes``:
                      idx_blks_hit                                 ``idx_blks_read``/``_hit``
pg_stat_database      datname, xact_commit, blks_hit               ``server_status``, one row per
                                                                   counter and database
pg_stat_bgwriter      buffers_clean, maxwritten_clean,             ``server_status`` (server-wide)
                      buffers_alloc
pg_stat_checkpointer  num_timed, num_requested, buffers_written    ``server_status`` (PostgreSQL 17+)
pg_stat_archiver      archived_count, failed_count                 ``server_status``
pg_index              indkey with indisunique or indisprimary      ``schema_indexes``: unique,
                                                                   primary, valid; ``indkey`` extra
===================== ============================================ ==================================

``server_status`` rows (long format, the frame MySQL's SHOW GLOBAL STATUS feeds): ``kind`` =
``status``, ``name`` = the view's column, ``value`` (NaN for text and time stamps, whose text is
kept), ``view`` = the view, ``database`` = ``datname`` (pg_stat_database only), ``engine`` =
``postgres``, ``counter`` = True for cumulative counters and False for gauges
(``numbackends``) and text (``stats_reset``, ``last_archived_wal``…), ``ts`` = the export's
``collected_at`` (else the UTC time in a file name such as the collector's
``snapshots/pg_stat_database-20260101T120000Z.csv``, else option ``ts``), ``snapshot`` = the
ordinal of that time within the file. The ``stats_reset`` row is kept (as text) because
:func:`auditkit.counters.status_delta` detects a statistics reset between two snapshots by it.

A folder holding one view at several times is a series of snapshots: the statio rows describe
the same tables at every time (the analyses combine rows per relation, first file first), and
the delta of ``server_status`` between two snapshots is :func:`auditkit.counters.status_delta`.

``pg_index`` detail: a ``SELECT * FROM pg_index`` names tables and indexes by oid only, which
cannot be joined to anything: such rows are skipped with a reason saying to export
``indexrelid::regclass`` and ``indrelid::regclass``. The key columns are read from a
``columns`` (or ``attnames``) column when the export joined ``pg_attribute``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.loaders.pg_catalog import (
    _SYSTEM_SCHEMAS,
    _bool,
    _CatalogLoader,
    _first,
    _num,
    user_relation,
)
from auditkit.loaders.registry import register

__all__ = [
    "PgIndexDetailLoader",
    "PgStatArchiverLoader",
    "PgStatBgwriterLoader",
    "PgStatCheckpointerLoader",
    "PgStatDatabaseLoader",
    "PgStatioIndexesLoader",
    "PgStatioTablesLoader",
    "VIEW_FORMATS",
]

#: PostgreSQL view name → the format that reads its export (for audit.yaml ``map: … as:``)
VIEW_FORMATS: dict[str, str] = {
    "pg_stat_statements": "pgss_csv",
    "pg_stat_user_tables": "pg_stat_tables",
    "pg_stat_all_tables": "pg_stat_tables",
    "pg_stat_user_indexes": "pg_stat_indexes",
    "pg_stat_all_indexes": "pg_stat_indexes",
    "pg_statio_user_tables": "pg_statio_tables",
    "pg_statio_all_tables": "pg_statio_tables",
    "pg_statio_user_indexes": "pg_statio_indexes",
    "pg_statio_all_indexes": "pg_statio_indexes",
    "pg_indexes": "pg_indexes",
    "pg_index": "pg_index",
    "pg_stats": "pg_stats",
    "pg_settings": "pg_settings",
    "pg_stat_database": "pg_stat_database",
    "pg_stat_bgwriter": "pg_stat_bgwriter",
    "pg_stat_checkpointer": "pg_stat_checkpointer",
    "pg_stat_archiver": "pg_stat_archiver",
}

_STAMP = compile_later(r"(\d{8}T\d{6}Z)")
#: columns that are text or times, never numbers
_TEXT = frozenset({"stats_reset", "checksum_last_failure", "collected_at"})
#: columns that are levels now (sizes, ages), not counters, in any view
_GAUGE_SUFFIXES = ("_size", "size_bytes", "wraparound")
_BLOCKS = ("heap_blks", "idx_blks", "toast_blks", "tidx_blks")


def _schema(rec: Mapping[str, Any]) -> str | None:
    v = _first(rec, "schemaname", "schema", "nspname")
    return None if v is None else str(v)


@register
class PgStatioTablesLoader(_CatalogLoader):
    """``pg_statio_user_tables`` / ``pg_statio_all_tables``: buffer-cache blocks per table."""

    name = "pg_statio_tables"
    frame = "schema_tables"
    description = "PostgreSQL pg_statio_user_tables export (CSV, JSON or psql)"
    expected = (
        "an export of pg_statio_user_tables with columns relname, heap_blks_read, heap_blks_hit"
    )
    required = (frozenset({"relname", "heap_blks_read", "heap_blks_hit"}),)
    forbidden = frozenset({"indexrelname", "seq_scan"})

    def row(self, rec: Mapping[str, Any]) -> dict[str, Any] | str:
        values = user_relation(rec)
        if isinstance(values, str):
            return values
        for prefix in _BLOCKS:
            for suffix in ("read", "hit"):
                col = f"{prefix}_{suffix}"
                if col in rec:
                    values[col] = _num(rec.get(col))
        return {"schema_tables": _collected(rec, values)}


@register
class PgStatioIndexesLoader(_CatalogLoader):
    """``pg_statio_user_indexes`` / ``pg_statio_all_indexes``: buffer-cache blocks per index."""

    name = "pg_statio_indexes"
    frame = "schema_indexes"
    description = "PostgreSQL pg_statio_user_indexes export (CSV, JSON or psql)"
    expected = "an export of pg_statio_user_indexes with columns relname, indexrelname, idx_blks_read, idx_blks_hit"
    required = (frozenset({"relname", "indexrelname", "idx_blks_read", "idx_blks_hit"}),)
    forbidden = frozenset({"idx_scan"})

    def row(self, rec: Mapping[str, Any]) -> dict[str, Any] | str:
        values = user_relation(rec, index=True)
        if isinstance(values, str):
            return values
        values["idx_blks_read"] = _num(rec.get("idx_blks_read"))
        values["idx_blks_hit"] = _num(rec.get("idx_blks_hit"))
        return {"schema_indexes": _collected(rec, values)}


def _collected(rec: Mapping[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the row's ``collected_at``, when it has one."""
    collected = _first(rec, "collected_at")
    if collected is not None:
        values["collected_at"] = str(collected)
    return values


def _utc(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(str(value))
    except (ValueError, TypeError, OverflowError):
        return None
    if ts is pd.NaT:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class _StatusViewLoader(_CatalogLoader):
    """A cumulative statistics view: every column of a row becomes one ``server_status`` row."""

    frame = "server_status"
    #: the view's name, written to ``server_status.view``
    view: ClassVar[str] = ""
    #: columns that are not values of the row (identifiers, the snapshot time)
    keys: ClassVar[frozenset[str]] = frozenset({"collected_at"})
    #: numeric columns that are levels now, not cumulative counters
    gauges: ClassVar[frozenset[str]] = frozenset()

    def database(self, rec: Mapping[str, Any]) -> str | None:
        return None

    def row(self, rec: Mapping[str, Any]) -> dict[str, Any] | str:
        db = self.database(rec)
        ts = _utc(_first(rec, "collected_at"))
        out: list[dict[str, Any]] = []
        for name, raw in rec.items():
            if name in self.keys or name.startswith("__"):
                continue
            text = "" if raw is None else str(raw)
            # WAL file names and times are text even when they look like numbers
            value = None if name in _TEXT or name.startswith("last_") else _num(raw)
            out.append(
                {
                    "ts": ts,
                    "engine": "postgres",
                    "kind": "status",
                    "name": name,
                    "value": value,
                    "text": text,
                    "counter": value is not None
                    and name not in self.gauges
                    and not name.endswith(_GAUGE_SUFFIXES),
                    "view": self.view,
                    "database": db,
                }
            )
        if not out:
            return "no statistics columns"
        return {"server_status": out}

    def complete(
        self, rows: dict[str, list[dict[str, Any]]], path: str | Path, options: Mapping[str, Any]
    ) -> None:
        """Time stamps from the file name or option ``ts`` when rows have none; snapshots."""
        status = rows.get("server_status", [])
        stamp = _STAMP.search(Path(path).name)
        fallback = _utc(options.get("ts")) or (
            _utc(pd.Timestamp(stamp.group(1).replace("Z", ""))) if stamp else None
        )
        server = options.get("server")
        for r in status:
            if r["ts"] is None:
                r["ts"] = fallback
            r["server"] = server
        times = sorted({r["ts"] for r in status if r["ts"] is not None})
        ordinal = {t: i + 1 for i, t in enumerate(times)}
        for r in status:
            r["snapshot"] = ordinal.get(r["ts"], 1)


@register
class PgStatDatabaseLoader(_StatusViewLoader):
    """``pg_stat_database``: transactions, blocks read and hit, rows, temp files per database."""

    name = "pg_stat_database"
    view = "pg_stat_database"
    description = "PostgreSQL pg_stat_database export (CSV, JSON or psql) → server_status"
    expected = "an export of pg_stat_database with columns datname, xact_commit, blks_hit"
    required = (frozenset({"datname", "xact_commit", "blks_hit"}),)
    forbidden = frozenset({"relname", "query"})
    keys = frozenset({"collected_at", "datid", "datname"})
    gauges = frozenset({"numbackends"})

    def database(self, rec: Mapping[str, Any]) -> str | None:
        # the row with datname NULL (datid 0) counts shared objects: server-wide
        name = _first(rec, "datname")
        return None if name is None else str(name)


@register
class PgStatBgwriterLoader(_StatusViewLoader):
    """``pg_stat_bgwriter``: the background writer (and, before PostgreSQL 17, checkpoints)."""

    name = "pg_stat_bgwriter"
    view = "pg_stat_bgwriter"
    description = "PostgreSQL pg_stat_bgwriter export (CSV, JSON or psql) → server_status"
    expected = (
        "an export of pg_stat_bgwriter with columns buffers_clean, maxwritten_clean, buffers_alloc"
    )
    required = (frozenset({"buffers_clean", "maxwritten_clean", "buffers_alloc"}),)


@register
class PgStatCheckpointerLoader(_StatusViewLoader):
    """``pg_stat_checkpointer`` (PostgreSQL 17+): timed and requested checkpoints, buffers."""

    name = "pg_stat_checkpointer"
    view = "pg_stat_checkpointer"
    description = "PostgreSQL 17+ pg_stat_checkpointer export (CSV, JSON or psql) → server_status"
    expected = (
        "an export of pg_stat_checkpointer with columns num_timed, num_requested, buffers_written"
    )
    required = (frozenset({"num_timed", "num_requested", "buffers_written"}),)


@register
class PgStatArchiverLoader(_StatusViewLoader):
    """``pg_stat_archiver``: WAL files archived and failed."""

    name = "pg_stat_archiver"
    view = "pg_stat_archiver"
    description = "PostgreSQL pg_stat_archiver export (CSV, JSON or psql) → server_status"
    expected = "an export of pg_stat_archiver with columns archived_count, failed_count"
    required = (frozenset({"archived_count", "failed_count"}),)


_OID = compile_later(r"^\d+$")


def _qualified(value: Any) -> tuple[str | None, str | None]:
    """``public.t`` → ('public', 't'); ``"My T"`` unquoted; None stays None."""
    if value is None:
        return None, None
    text = str(value).strip()
    schema, _, name = text.rpartition(".") if '"' not in text else ("", "", text)
    return (schema or None), name.strip('"')


@register
class PgIndexDetailLoader(_CatalogLoader):
    """``pg_index`` rows (indisunique, indisprimary, indkey…) with table and index names."""

    name = "pg_index"
    frame = "schema_indexes"
    description = (
        "PostgreSQL pg_index detail export (indisunique, indisprimary, indkey) as CSV, JSON or psql"
    )
    expected = (
        "an export of pg_index with indkey, indisunique/indisprimary and the names of the index "
        "and its table (indexrelid::regclass, indrelid::regclass)"
    )
    required = (
        frozenset({"indkey", "indisunique"}),
        frozenset({"indkey", "indisprimary"}),
    )
    forbidden = frozenset({"indexdef"})

    def row(self, rec: Mapping[str, Any]) -> dict[str, Any] | str:
        index = _first(rec, "index", "index_name", "indexname", "indexrelname", "indexrelid")
        table = _first(rec, "table", "table_name", "tablename", "relname", "indrelid")
        if index is None or table is None:
            return "no index or table name"
        if _OID.match(str(index)) or _OID.match(str(table)):
            return (
                "index or table given as an oid (export indexrelid::regclass, indrelid::regclass)"
            )
        schema, index_name = _qualified(index)
        table_schema, table_name = _qualified(table)
        schema = _schema(rec) or schema or table_schema
        if schema in _SYSTEM_SCHEMAS:
            return "system schema"
        values: dict[str, Any] = {
            "schema": schema,
            "table": table_name,
            "index": index_name,
            "unique": _bool(_first(rec, "indisunique")),
            "primary": _bool(_first(rec, "indisprimary")),
            "indkey": None if rec.get("indkey") is None else str(rec.get("indkey")),
        }
        columns = _first(rec, "columns", "attnames", "column_names", "key_columns")
        if columns is not None:
            text = ", ".join(columns) if isinstance(columns, list) else str(columns)
            values["columns"] = ", ".join(
                c.strip().strip('"') for c in text.strip("{}").split(",") if c.strip()
            )
        valid = _bool(_first(rec, "indisvalid"))
        if valid is not None:
            values["valid"] = valid
        return {"schema_indexes": values}
