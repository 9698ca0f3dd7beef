"""Database catalog and statistics exports: PostgreSQL ``pg_*`` views and MySQL index listings.

A consultant is handed these as CSV (``\\copy (SELECT …) TO 'x.csv' CSV HEADER``, a GUI's
"export as CSV", ``mysql -B`` tab-separated output) or JSON (an array of row objects, or one
object per line, e.g. ``SELECT json_agg(t) FROM pg_indexes t``). Every format here is
recognised by its *header*: the column names of the view it exports, so a sniffer never claims
another CSV file.

=================== ========================================== ===================================
format              required columns                           frame
=================== ========================================== ===================================
pg_indexes          tablename, indexname, indexdef             schema_indexes (columns, method,
                                                               unique, predicate from indexdef)
pg_stat_tables      relname, seq_scan, n_tup_ins (no           schema_tables
                    indexrelname)
pg_stat_indexes     relname, indexrelname, idx_scan            schema_indexes (idx_scan)
pg_relation_sizes   relname + a size column (see below)        schema_tables / schema_indexes
pg_stats            tablename, attname, null_frac, n_distinct  column_stats
mysql_indexes       SHOW INDEX (Key_name, Seq_in_index,        schema_indexes (one row per index)
                    Column_name) or information_schema
                    .STATISTICS (INDEX_NAME, SEQ_IN_INDEX,
                    COLUMN_NAME)
=================== ========================================== ===================================

``pg_stat_user_tables`` and ``pg_stat_all_tables`` share a format (system schemas are skipped,
counted); so do the ``…_indexes`` views. Extra columns written by auditkit's collector
(:mod:`auditkit.collect.postgres`) are understood when present: ``indisprimary``,
``indisunique``, ``indisvalid`` and ``constraint_type`` on pg_indexes (otherwise a primary key is
recognised by PostgreSQL's ``_pkey`` naming), ``reltuples`` on pg_stat_user_tables (row count
surviving a statistics reset), and ``stats_reset``/``collected_at`` on the
statistics views (kept as extra columns: the statistics window of the unused-index check).

Sizes (``pg_relation_sizes``): one row per relation, with ``relname`` and any of
``size_bytes``/``pg_relation_size``/``relation_size`` and ``total_size_bytes``/
``pg_total_relation_size``/``total_relation_size``; ``relkind`` (``r``, ``p``, ``m`` tables,
``i``, ``I`` indexes) or ``kind`` (``table``/``index``) tells tables from indexes (tables when
absent), and ``table_name`` names an index's table. PostgreSQL pretty sizes (``16 kB``) are
read too. The collector writes::

    SELECT n.nspname AS schemaname, c.relname, c.relkind, t.relname AS table_name,
           pg_relation_size(c.oid) AS size_bytes, pg_total_relation_size(c.oid) AS total_size_bytes
    FROM pg_class c JOIN pg_namespace n ON … LEFT JOIN pg_index i ON i.indexrelid = c.oid
    LEFT JOIN pg_class t ON t.oid = i.indrelid WHERE c.relkind IN ('r','p','m','i','I') …

Several exports describe the same table or index (pg_indexes gives its definition,
pg_stat_user_indexes its scans, the sizes export its size): each loader fills the columns it
knows and leaves the others null; the index checks combine the rows per relation.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.loaders import _json
from auditkit.loaders._psql_tables import psql_tables
from auditkit.loaders._records import BadRecord, Row, csv_records
from auditkit.loaders.base import Loader, nothing_parsed
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text
from auditkit.schemas import FRAMES, conform, empty

__all__ = [
    "MySQLIndexesLoader",
    "PgIndexesLoader",
    "PgRelationSizesLoader",
    "PgStatIndexesLoader",
    "PgStatTablesLoader",
    "PgStatsLoader",
    "mysql_index_rows",
    "read_records",
    "records_from_text",
]

_SYSTEM_SCHEMAS = {
    "pg_catalog",
    "information_schema",
    "pg_toast",
    "mysql",
    "performance_schema",
    "sys",
}
_NULLS = {"", "null", "\\n", "<null>", "none", "nan"}
_DELIMITERS = ",\t;|"
_JSON_KEY = compile_later(r'"([A-Za-z_][A-Za-z0-9_]*)"\s*:')


# --------------------------------------------------------------------------------------------
# reading CSV / JSON records
# --------------------------------------------------------------------------------------------
def _header_keys(head: str) -> set[str]:
    """Lower-cased column names of a CSV header line, of the first JSON record or of the first
    psql table in ``head``."""
    text = head.lstrip("\ufeff").lstrip()
    psql = _psql_header(text)
    if psql is not None:
        return {c.lower() for c in psql}
    if text.startswith("[") or text.startswith("{"):
        first = text[: text.find("}") + 1] if "}" in text else text
        return {k.lower() for k in _JSON_KEY.findall(first)}
    line = text.split("\n", 1)[0]
    delim = max(_DELIMITERS, key=line.count)
    if line.count(delim) == 0:
        return set()
    return {c.strip().strip('"').strip().lower() for c in next(csv.reader([line], delimiter=delim))}


def read_records(path: str | Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """The column names and the records (line number, lower-cased name → value) of an export.

    CSV with a header (delimiter , TAB ; or |, quoted fields may span lines), a JSON array of
    objects, a JSON object holding one such array, JSON lines, or psql output (aligned, border
    2 or expanded ``\\x``; the first result table of the file). Values are strings from CSV and
    psql (nulls as None), JSON values as they are.
    """
    text, _bad = read_text(path)
    return records_from_text(text)


def records_from_text(text: str) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """:func:`read_records` on text already read."""
    text = text.lstrip("\ufeff")
    stripped = text.lstrip()
    if _psql_header(stripped) is not None:
        return _psql_records(text)
    if stripped.startswith("[") or stripped.startswith("{"):
        return _json_records(text)
    return _csv_records(text)


_PSQL_RULE = compile_later(r"^\s*\+?-+(?:\+-+)+\+?\s*$|^\s*-+\s*$")
_PSQL_RECORD = compile_later(r"^\s*-\[ RECORD 1 \]-*(?:\+-*)?\s*$")


def _psql_header(text: str) -> list[str] | None:
    """The column names when ``text`` starts (after psql's echo or a title) with a psql table."""
    lines = text.split("\n", 40)[:40]
    for i, line in enumerate(lines[:-1]):
        nxt = lines[i + 1]
        if _PSQL_RECORD.match(line):
            names = [ln.split("|", 1)[0].strip() for ln in lines[i + 1 :] if "|" in ln]
            return [n for n in names if n] or None
        if "|" in line and " | " in line.strip("|") and _PSQL_RULE.match(nxt) and "+" in nxt:
            return [c.strip() for c in line.strip().strip("|").split("|")]
        if line.strip().startswith("+-") and i + 2 < len(lines) and lines[i + 1].startswith("|"):
            return [c.strip() for c in lines[i + 1].strip().strip("|").split("|")]
    return None


def _psql_records(text: str) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    tables = [t for t in psql_tables(text, text_column="indexdef") if t.columns]
    if not tables:
        return [], iter(())
    table = tables[0]
    header = [c.strip().lower() for c in table.columns]

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for line, values in zip(table.lines, table.rows, strict=False):
            yield (
                line,
                {
                    h: (None if v is None or v.strip().lower() in _NULLS else v.strip())
                    for h, v in zip(header, values, strict=False)
                },
            )

    return header, rows()


def _csv_records(text: str) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    top = text.split("\n", 1)[0]
    delim = max(_DELIMITERS, key=top.count)
    records = csv_records(text, delim)
    first = next(records, None)
    if not isinstance(first, Row):
        return [], iter(())
    header = [h.strip().lower() for h in first.values]

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for got in records:
            if isinstance(got, BadRecord):
                yield got.line, {"__bad__": got.reason, "__excerpt__": got.excerpt}
                continue
            start, values = got.line, got.values
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) == 1 and re.fullmatch(r"\(\d+ rows?\)", values[0].strip()):
                continue  # psql footer
            rec: dict[str, Any] = {
                h: (None if v.strip().lower() in _NULLS else v)
                for h, v in zip(header, values, strict=False)
            }
            if len(values) != len(header):
                rec["__width__"] = len(values)
            yield start, rec

    return header, rows()


def _json_records(text: str) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    stripped = text.strip()
    records: list[tuple[int, Any]] = []
    try:
        data = _json.loads(stripped)
        if isinstance(data, dict):
            arrays = [v for v in data.values() if isinstance(v, list)]
            data = arrays[0] if len(arrays) == 1 else [data]
        records = [(i + 1, r) for i, r in enumerate(data if isinstance(data, list) else [data])]
    except json.JSONDecodeError:
        for i, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append((i, _json.loads(line)))
                except json.JSONDecodeError:
                    records.append((i, line))
    header: list[str] = []
    for _, r in records:
        if isinstance(r, dict):
            header = [str(k).lower() for k in r]
            break

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for line, r in records:
            if isinstance(r, dict):
                yield line, {str(k).lower(): v for k, v in r.items()}
            else:
                yield line, {"__invalid__": str(r)[:160]}

    return header, rows()


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------
def _first(rec: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        v = rec.get(n)
        if v is not None and not (isinstance(v, str) and v.strip().lower() in _NULLS):
            return v
    return None


def _bool(v: Any) -> bool | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("t", "true", "1", "yes", "y", "on"):
        return True
    if s in ("f", "false", "0", "no", "n", "off"):
        return False
    return None


_SIZE = compile_later(r"^\s*(-?\d+(?:\.\d+)?)\s*(bytes|b|kb|mb|gb|tb|pb)?\s*$", re.I)
_UNITS = {
    "b": 1,
    "bytes": 1,
    "kb": 1024,
    "mb": 1024**2,
    "gb": 1024**3,
    "tb": 1024**4,
    "pb": 1024**5,
}


def _size(v: Any) -> int | None:
    """Bytes from a number or a pg_size_pretty text ('16 kB', '8192 bytes')."""
    if v is None:
        return None
    if isinstance(v, int | float):
        return int(v)
    m = _SIZE.match(str(v))
    if not m:
        return None
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# the loaders
# --------------------------------------------------------------------------------------------
class _CatalogLoader(Loader):
    """A CSV/JSON export of one catalog view: recognised by its header, read row by row."""

    #: header names (lower case) that must all be present — any one set of the tuple
    required: ClassVar[tuple[frozenset[str], ...]] = ()
    #: header names whose presence means a sibling view, not this one
    forbidden: ClassVar[frozenset[str]] = frozenset()

    def sniff(self, head: str, path: Path) -> float:
        keys = _header_keys(head)
        if not keys or keys & self.forbidden:
            return 0.0
        return 0.95 if any(req <= keys for req in self.required) else 0.0

    def row(self, rec: Mapping[str, Any]) -> dict[str, Any] | str:
        """Canonical rows (frame name → a row, or a list of rows) for one record, or a skip
        reason."""
        raise NotImplementedError

    def complete(
        self, rows: dict[str, list[dict[str, Any]]], path: str | Path, options: Mapping[str, Any]
    ) -> None:
        """Fill what needs the whole file (time stamps, snapshot ordinals); default: nothing."""

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        report = ParseReport(str(path), self.name)
        header, records = read_records(path)
        if header and not any(req <= set(header) for req in self.required):
            wanted = " + ".join(sorted(self.required[0]))
            report.warn(f"header lacks {wanted}: is this a {self.name} export?")
        rows: dict[str, list[dict[str, Any]]] = {}
        last = 0
        for line, rec in records:
            last = line
            if "__invalid__" in rec:
                report.skip(line, "not a JSON object", rec["__invalid__"])
                continue
            if "__bad__" in rec:
                report.skip(line, rec["__bad__"], rec["__excerpt__"])
                continue
            if rec.get("__width__") is not None:
                report.skip(
                    line,
                    "wrong number of fields",
                    ",".join(str(v) for v in rec.values() if v is not None),
                )
                continue
            out = self.row(rec)
            if isinstance(out, str):
                report.skip(line, out, ",".join(str(v) for v in rec.values() if v is not None))
                continue
            report.ok()
            for frame_name, produced in out.items():
                for values in produced if isinstance(produced, list) else [produced]:
                    values.setdefault("source_file", str(path))
                    values.setdefault("source_line", line)
                    rows.setdefault(frame_name, []).append(values)
        report.lines = last
        self.complete(rows, path, options)
        frames = self.frames_from(rows, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        if report.parsed == 0:
            raise nothing_parsed(self, path, report)
        return LoadResult(self.name, frames, report, primary=self.frame)

    def frames_from(
        self, rows: dict[str, list[dict[str, Any]]], report: ParseReport
    ) -> dict[str, pd.DataFrame]:
        frames: dict[str, pd.DataFrame] = {}
        for name, recs in rows.items():
            frames[name] = conform(pd.DataFrame(recs), FRAMES[name])
            report.events[name] = len(frames[name])
        if self.frame not in frames:
            frames[self.frame] = empty(FRAMES[self.frame])
            report.events[self.frame] = 0
        return frames


def _schema_of(rec: Mapping[str, Any]) -> str | None:
    value = _first(rec, "schemaname", "schema", "table_schema", "nspname")
    return None if value is None else str(value)


def user_relation(rec: Mapping[str, Any], *, index: bool = False) -> dict[str, Any] | str:
    """The ``schema`` and ``table`` (with ``index``: and ``index``) a statistics row is about
    (``relname``, ``indexrelname``), or why the row is skipped: a system schema, no name."""
    schema = _schema_of(rec)
    if schema in _SYSTEM_SCHEMAS:
        return "system schema"
    table = _first(rec, "relname")
    if not index:
        return "no relname" if table is None else {"schema": schema, "table": str(table)}
    name = _first(rec, "indexrelname")
    if table is None or name is None:
        return "no table or index name"
    return {"schema": schema, "table": str(table), "index": str(name)}


@register
class PgIndexesLoader(_CatalogLoader):
    """PostgreSQL ``pg_indexes`` (schemaname, tablename, indexname, tablespace, indexdef)."""

    name = "pg_indexes"
    frame = "schema_indexes"
    description = "PostgreSQL pg_indexes export (CSV or JSON)"
    expected = "a CSV/JSON export of pg_indexes with columns tablename, indexname, indexdef"
    required = (frozenset({"tablename", "indexname", "indexdef"}),)

    def row(self, rec: Mapping[str, Any]) -> dict[str, dict[str, Any]] | str:
        schema = _schema_of(rec)
        if schema in _SYSTEM_SCHEMAS:
            return "system schema"
        indexdef = _first(rec, "indexdef")
        table, index = _first(rec, "tablename"), _first(rec, "indexname")
        if table is None or index is None:
            return "no table or index name"
        # imported here: sqlglot costs a tenth of a second that loading other formats (a
        # digest of a server log) should not pay
        from auditkit.sql.analyze import parse_index_definition

        parsed = parse_index_definition(str(indexdef)) if indexdef else None
        if indexdef and parsed is None:
            return "indexdef is not a CREATE INDEX statement"
        primary = _bool(_first(rec, "indisprimary", "primary"))
        constraint = _first(rec, "constraint_type", "contype")
        if primary is None:
            primary = constraint == "p" if constraint is not None else str(index).endswith("_pkey")
        unique = _bool(_first(rec, "indisunique", "unique"))
        values: dict[str, Any] = {
            "schema": schema,
            "table": str(table),
            "index": str(index),
            "columns": parsed.columns if parsed else None,
            "definition": str(indexdef) if indexdef else None,
            "method": parsed.method if parsed else None,
            "unique": unique if unique is not None else (parsed.unique if parsed else None),
            "primary": primary,
            "predicate": parsed.predicate if parsed else None,
        }
        if parsed and any(k.opclass for k in parsed.keys):
            values["opclasses"] = ", ".join(k.opclass or "" for k in parsed.keys)
        if parsed and parsed.include:
            values["include"] = ", ".join(parsed.include)
        valid = _bool(_first(rec, "indisvalid", "valid"))
        if valid is not None:
            values["valid"] = valid
        if constraint is not None:
            values["constraint_type"] = str(constraint)
        size = _size(_first(rec, "size_bytes", "index_size_bytes"))
        if size is not None:
            values["size_bytes"] = size
        return {"schema_indexes": values}


def _rows(rec: Mapping[str, Any]) -> float | None:
    """Live rows: pg_class.reltuples when exported and known (the planner's own figure; -1 for
    a table never analysed), else n_live_tup (zeroed by a statistics reset, and briefly double
    counted after an ANALYZE in the inserting session)."""
    rel = _num(_first(rec, "reltuples"))
    if rel is not None and rel >= 0:
        return rel
    return _num(_first(rec, "n_live_tup"))


def _stats_extras(rec: Mapping[str, Any], values: dict[str, Any]) -> None:
    for extra in ("stats_reset", "collected_at"):
        v = _first(rec, extra)
        if v is not None:
            values[extra] = str(v)


@register
class PgStatTablesLoader(_CatalogLoader):
    """``pg_stat_user_tables`` / ``pg_stat_all_tables``: scans, writes, live and dead rows."""

    name = "pg_stat_tables"
    frame = "schema_tables"
    description = "PostgreSQL pg_stat_user_tables / pg_stat_all_tables export (CSV or JSON)"
    expected = "a CSV/JSON export of pg_stat_user_tables with columns relname, seq_scan, n_tup_ins"
    required = (frozenset({"relname", "seq_scan", "n_tup_ins"}),)
    forbidden = frozenset({"indexrelname", "indexrelid"})

    def row(self, rec: Mapping[str, Any]) -> dict[str, dict[str, Any]] | str:
        relation = user_relation(rec)
        if isinstance(relation, str):
            return relation
        values: dict[str, Any] = {
            **relation,
            "rows_estimate": _rows(rec),
            "seq_scan": _num(_first(rec, "seq_scan")),
            "seq_tup_read": _num(_first(rec, "seq_tup_read")),
            "idx_scan": _num(_first(rec, "idx_scan")),
            "n_tup_ins": _num(_first(rec, "n_tup_ins")),
            "n_tup_upd": _num(_first(rec, "n_tup_upd")),
            "n_tup_del": _num(_first(rec, "n_tup_del")),
            "n_dead_tup": _num(_first(rec, "n_dead_tup")),
        }
        hot = _num(_first(rec, "n_tup_hot_upd"))
        if hot is not None:
            values["n_tup_hot_upd"] = hot
        for extra in ("last_analyze", "last_autoanalyze", "last_vacuum", "last_autovacuum"):
            v = _first(rec, extra)
            if v is not None:
                values[extra] = str(v)
        _stats_extras(rec, values)
        return {"schema_tables": values}


@register
class PgStatIndexesLoader(_CatalogLoader):
    """``pg_stat_user_indexes`` / ``pg_stat_all_indexes``: scans per index."""

    name = "pg_stat_indexes"
    frame = "schema_indexes"
    description = "PostgreSQL pg_stat_user_indexes / pg_stat_all_indexes export (CSV or JSON)"
    expected = (
        "a CSV/JSON export of pg_stat_user_indexes with columns relname, indexrelname, idx_scan"
    )
    required = (frozenset({"relname", "indexrelname", "idx_scan"}),)

    def row(self, rec: Mapping[str, Any]) -> dict[str, dict[str, Any]] | str:
        relation = user_relation(rec, index=True)
        if isinstance(relation, str):
            return relation
        values: dict[str, Any] = {
            **relation,
            "idx_scan": _num(_first(rec, "idx_scan")),
        }
        for extra in ("idx_tup_read", "idx_tup_fetch"):
            v = _num(_first(rec, extra))
            if v is not None:
                values[extra] = v
        last = _first(rec, "last_idx_scan")
        if last is not None:
            values["last_idx_scan"] = str(last)
        size = _size(_first(rec, "size_bytes", "index_size_bytes", "pg_relation_size"))
        if size is not None:
            values["size_bytes"] = size
        _stats_extras(rec, values)
        return {"schema_indexes": values}


_SIZE_NAMES = (
    "size_bytes",
    "pg_relation_size",
    "relation_size",
    "relation_size_bytes",
    "size",
    "pg_size_pretty",
)
_TABLE_SIZE_NAMES = ("table_size", "table_size_bytes", "heap_size", "data_size")
_INDEX_SIZE_NAMES = ("index_size", "index_size_bytes")
_INDEXES_SIZE_NAMES = ("indexes_size", "indexes_size_bytes", "pg_indexes_size", "total_index_size")
_TOTAL_NAMES = (
    "total_size_bytes",
    "pg_total_relation_size",
    "total_relation_size",
    "total_relation_size_bytes",
    "total_size",
    "total_bytes",
)
#: columns naming the relation (a table unless the row says index), an index, a table
_RELATION_NAMES = ("relname", "relation", "name", "relation_name", "object_name")
_INDEX_NAMES = ("index_name", "indexname", "indexrelname")
_TABLE_NAMES = ("table_name", "tablename", "table")
_ALL_SIZES = (
    _SIZE_NAMES + _TABLE_SIZE_NAMES + _INDEX_SIZE_NAMES + _INDEXES_SIZE_NAMES + _TOTAL_NAMES
)


def _size_header_sets() -> tuple[frozenset[str], ...]:
    sets = [
        frozenset({n, s})
        for n in ("relname", "relation", *_TABLE_NAMES, *_INDEX_NAMES)
        for s in _ALL_SIZES
    ]
    # psql \dt+ / \di+ and listings naming relations 'name': only with a type or schema beside
    sets += [frozenset({"name", "type", "size"}), frozenset({"schema", "name", "size"})]
    return tuple(sets)


@register
class PgRelationSizesLoader(_CatalogLoader):
    """Table and index sizes, in the column sets people export them with.

    ``pg_relation_size`` / ``pg_total_relation_size`` per relation (the collector's
    ``relname, relkind, table_name, size_bytes, total_size_bytes``), listings with
    ``table_name``/``index_name`` and ``table_size``/``index_size``/``indexes_size``/
    ``total_size``, the PostgreSQL wiki's ``relation, total_size``, psql ``\\dt+`` and ``\\di+``
    (``Name``, ``Type``, ``Table``, ``Size``); sizes in bytes or as ``pg_size_pretty`` text
    (``16 kB``). A relation is an index when ``relkind``/``kind``/``type`` says so or when the
    row names an index; ``schema.name`` in one column is split.
    """

    name = "pg_relation_sizes"
    frame = "schema_tables"
    description = "PostgreSQL table and index sizes (pg_relation_size, pg_size_pretty listings, \\dt+ / \\di+)"
    expected = (
        "a CSV/JSON/psql export naming relations (relname, relation, table_name or index_name) "
        "with a size column (size_bytes, pg_relation_size, table_size, index_size, total_size, …)"
    )
    required = _size_header_sets()
    forbidden = frozenset(
        {"seq_scan", "idx_scan", "indexdef", "heap_blks_read", "idx_blks_read", "indkey"}
    )

    def row(self, rec: Mapping[str, Any]) -> dict[str, Any] | str:
        schema = _schema_of(rec)
        index = _first(rec, *_INDEX_NAMES)
        name = index if index is not None else _first(rec, *_RELATION_NAMES, *_TABLE_NAMES)
        if name is None:
            return "no relation name"
        text = str(name).strip()
        if "." in text and not text.startswith('"'):
            prefix, _, text = text.rpartition(".")
            schema = schema or prefix
        if schema in _SYSTEM_SCHEMAS:
            return "system schema"
        kind = str(_first(rec, "relkind", "kind", "type") or ("i" if index is not None else "r"))
        kind = kind.strip().lower()
        size = _size(_first(rec, *_SIZE_NAMES))
        total = _size(_first(rec, *_TOTAL_NAMES))
        if kind in ("i", "index", "partitioned index", "ii"):
            table = (
                _first(rec, *_TABLE_NAMES, "indrelname")
                if index is None
                else _first(rec, *_TABLE_NAMES, "relname", "indrelname")
            )
            own = size if size is not None else _size(_first(rec, *_INDEX_SIZE_NAMES))
            return {
                "schema_indexes": {
                    "schema": schema,
                    "table": None if table is None else str(table),
                    "index": text,
                    "size_bytes": own if own is not None else total,
                }
            }
        if kind in ("r", "p", "m", "table", "partitioned table", "materialized view"):
            heap = size if size is not None else _size(_first(rec, *_TABLE_SIZE_NAMES))
            values: dict[str, Any] = {
                "schema": schema,
                "table": text,
                "size_bytes": heap,
                "total_size_bytes": total,
            }
            indexes = _size(_first(rec, *_INDEXES_SIZE_NAMES, *_INDEX_SIZE_NAMES))
            if indexes is not None:
                values["index_size_bytes"] = indexes
            return {"schema_tables": values}
        return f"relkind {kind!r} is neither a table nor an index"


@register
class PgStatsLoader(_CatalogLoader):
    """``pg_stats``: the planner's per-column statistics (null fraction, width, distinct values).

    Most-common values and histogram bounds are real data (possibly personal data): they are
    not kept; their frequencies are.
    """

    name = "pg_stats"
    frame = "column_stats"
    description = "PostgreSQL pg_stats export (CSV or JSON)"
    expected = (
        "a CSV/JSON export of pg_stats with columns tablename, attname, null_frac, n_distinct"
    )
    required = (frozenset({"tablename", "attname", "null_frac", "n_distinct"}),)

    def row(self, rec: Mapping[str, Any]) -> dict[str, dict[str, Any]] | str:
        schema = _schema_of(rec)
        if schema in _SYSTEM_SCHEMAS:
            return "system schema"
        table, column = _first(rec, "tablename"), _first(rec, "attname")
        if table is None or column is None:
            return "no table or column name"
        freqs = _first(rec, "most_common_freqs")
        return {
            "column_stats": {
                "schema": schema,
                "table": str(table),
                "column": str(column),
                "inherited": _bool(_first(rec, "inherited")),
                "null_frac": _num(_first(rec, "null_frac")),
                "avg_width": _num(_first(rec, "avg_width")),
                "n_distinct": _num(_first(rec, "n_distinct")),
                "correlation": _num(_first(rec, "correlation")),
                "most_common_freqs": None
                if freqs is None
                else (json.dumps(freqs) if isinstance(freqs, list) else str(freqs)),
            }
        }


@register
class MySQLIndexesLoader(_CatalogLoader):
    """MySQL/MariaDB ``SHOW INDEX`` or ``information_schema.STATISTICS``: one row per index column.

    Rows are grouped into one ``schema_indexes`` row per index (columns in ``Seq_in_index``
    order; functional key parts from ``Expression``; a ``Sub_part`` prefix length is kept as
    ``col(10)``). ``PRIMARY`` is the primary key; ``Non_unique = 0`` a unique index;
    ``Cardinality`` is kept as an extra column.
    """

    name = "mysql_indexes"
    frame = "schema_indexes"
    dialect = "mysql"
    description = (
        "MySQL/MariaDB SHOW INDEX or information_schema.STATISTICS export (CSV, TSV or JSON)"
    )
    expected = "SHOW INDEX output (Table, Non_unique, Key_name, Seq_in_index, Column_name, …) as CSV/TSV/JSON"
    required = (
        frozenset({"table", "key_name", "seq_in_index", "column_name"}),
        frozenset({"table_name", "index_name", "seq_in_index", "column_name"}),
    )

    def row(self, rec: Mapping[str, Any]) -> dict[str, dict[str, Any]] | str:
        table = _first(rec, "table", "table_name")
        index = _first(rec, "key_name", "index_name")
        seq = _num(_first(rec, "seq_in_index"))
        if table is None or index is None or seq is None:
            return "no table, index or position"
        schema = _first(rec, "table_schema", "index_schema")
        if schema in _SYSTEM_SCHEMAS:
            return "system schema"
        column = _first(rec, "column_name")
        expression = _first(rec, "expression")
        if column is None and expression is None:
            return "no column or expression"
        sub = _num(_first(rec, "sub_part"))
        key = (
            f"({expression})"
            if column is None
            else (f"{column}({int(sub)})" if sub else str(column))
        )
        non_unique = _bool(_first(rec, "non_unique"))
        return {
            "schema_indexes": {
                "schema": None if schema is None else str(schema),
                "table": str(table),
                "index": str(index),
                "_seq": int(seq),
                "_key": key,
                "_desc": str(_first(rec, "collation") or "A").upper() == "D",
                "method": str(_first(rec, "index_type") or "BTREE").lower(),
                "unique": None if non_unique is None else not non_unique,
                "primary": str(index).upper() == "PRIMARY",
                "cardinality": _num(_first(rec, "cardinality")),
            }
        }

    def frames_from(
        self, rows: dict[str, list[dict[str, Any]]], report: ParseReport
    ) -> dict[str, pd.DataFrame]:
        parts = pd.DataFrame(rows.get("schema_indexes", []))
        if len(parts):
            rows = {"schema_indexes": mysql_index_rows(parts)}
        return super().frames_from(rows, report)


def mysql_index_rows(parts: pd.DataFrame) -> list[dict[str, Any]]:
    """One ``schema_indexes`` row per index from rows of one key part each.

    ``parts`` holds what :meth:`MySQLIndexesLoader.row` returns (``_seq`` position, ``_key``
    text, ``_desc`` flag and the index's attributes), from SHOW INDEX, STATISTICS or a parsed
    ``SHOW CREATE TABLE``; extra attributes of the first part (``foreign_key``…) are kept.
    """
    parts = parts.sort_values(["table", "index", "_seq"], kind="stable")
    out: list[dict[str, Any]] = []
    for (_, _), g in parts.groupby(["table", "index"], sort=False, dropna=False):
        first = g.iloc[0]
        keys = [k + (" DESC" if d else "") for k, d in zip(g["_key"], g["_desc"], strict=True)]
        row: dict[str, Any] = {
            str(k): v for k, v in first.items() if not str(k).startswith("_") and k != "cardinality"
        }
        row.update(
            {
                "columns": ", ".join(keys),
                "definition": _mysql_definition(first, keys),
                "cardinality": g["cardinality"].max() if "cardinality" in g else None,
                "source_line": int(g["source_line"].min()),
                "dialect": "mysql",
            }
        )
        out.append(row)
    return out


def _mysql_definition(first: pd.Series, keys: list[str]) -> str:
    def quoted(key: str) -> str:
        desc = key.endswith(" DESC")
        name = key[: -len(" DESC")] if desc else key
        if not name.startswith("("):
            m = re.fullmatch(r"(.+?)(\(\d+\))?", name)
            name = f"`{m.group(1)}`{m.group(2) or ''}" if m else f"`{name}`"
        return name + (" DESC" if desc else "")

    cols = ", ".join(quoted(k) for k in keys)
    if first["primary"]:
        return f"ALTER TABLE `{first['table']}` ADD PRIMARY KEY ({cols})"
    method = str(first["method"]).lower()
    kind = "UNIQUE " if first["unique"] else ""
    if method in ("fulltext", "spatial"):
        kind = f"{method.upper()} "
    using = f" USING {method.upper()}" if method in ("btree", "hash") else ""
    return f"CREATE {kind}INDEX `{first['index']}` ON `{first['table']}` ({cols}){using}"
