"""The database catalog as the checks see it: indexes, tables and column statistics, combined.

Several exports describe one index (its definition from ``pg_indexes``, its scans from
``pg_stat_user_indexes``, its size from a sizes export) and one table (``pg_stat_user_tables``,
sizes, a model dump): :func:`existing_indexes` and :func:`table_infos` combine the rows per
index and per table. Rows of a Django model dump (``origin = django_models``) are
*declarations*: they tell which model and field an index belongs to, and stand in for the
catalog only for tables the catalog does not describe.

Also here: what the advisor needs to compare indexes (:func:`signature`, :func:`keep_rank`),
the statistics window in words (:func:`stats_window`), and facts for drop advice
(:func:`size_text`, :func:`write_overhead`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import pandas as pd

from auditkit.analysis.code import CodeMap, django_indexes
from auditkit.django.naming import auto_index_name, is_auto_index_name
from auditkit.sql.analyze import IndexDefinition, IndexKey, parse_index_definition, split_top_level

__all__ = [
    "Catalog",
    "ColumnStats",
    "IndexInfo",
    "TableInfo",
    "as_flag",
    "as_number",
    "as_text",
    "column_stats",
    "declared_by_name",
    "existing_indexes",
    "infer_distinct",
    "is_like_twin",
    "keep_rank",
    "mysql_window",
    "physical",
    "records",
    "signature",
    "size_text",
    "stats_window",
    "table_infos",
    "write_overhead",
]

_ORIGIN_DUMP = "django_models"


@dataclass(frozen=True)
class IndexInfo:
    """One index as the checks see it: its keys parsed, its statistics and Django origin."""

    table: str
    name: str
    keys: tuple[IndexKey, ...]
    method: str = "btree"
    unique: bool = False
    primary: bool = False
    predicate: str | None = None
    include: tuple[str, ...] = ()
    schema: str | None = None
    definition: str | None = None
    size_bytes: float | None = None
    idx_scan: float | None = None
    valid: bool = True
    constraint: str | None = None
    declared_by: str | None = None
    app_label: str | None = None
    model: str | None = None
    fields: tuple[str, ...] = ()
    stats_reset: str | None = None
    collected_at: str | None = None
    declared_only: bool = False
    #: MySQL/MariaDB performance_schema: rows read and written through the index in the window
    index_reads: float | None = None
    index_writes: float | None = None
    #: the FOREIGN KEY constraint(s) whose columns the index leads with (SHOW CREATE TABLE)
    foreign_key: str | None = None
    #: the index that makes this one redundant, as the server reports it (sys)
    redundant_to: str | None = None
    #: the database the export came from: postgres, mysql or mariadb (None when unknown)
    dialect: str | None = None

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(k.key for k in self.keys)

    @property
    def usage(self) -> float | None:
        """How much the workload used the index: scans (PostgreSQL ``idx_scan``), else rows
        read through it (MySQL performance_schema ``COUNT_READ``); None when not exported."""
        return self.idx_scan if self.idx_scan is not None else self.index_reads

    @property
    def is_mysql(self) -> bool:
        return self.dialect in ("mysql", "mariadb")

    def usage_text(self) -> str:
        """The usage in words: "scanned 3 times" or "read 0 rows through it"."""
        from auditkit.findings import plural

        if self.idx_scan is None and self.index_reads is not None:
            return f"had {plural(int(self.index_reads), 'row')} read through it"
        scans = int(self.idx_scan or 0)
        return "was never scanned" if scans == 0 else f"was scanned {plural(scans, 'time')}"

    def label(self) -> str:
        return f"{self.name} ({', '.join(k.label() for k in self.keys)})"

    @property
    def qualified(self) -> str:
        return f'"{self.schema}"."{self.name}"' if self.schema else f'"{self.name}"'


def _coalesce(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per ``keys``: the first non-null value of every column."""
    if len(df) == 0:
        return df
    # groupby().first() skips nulls column by column, which is exactly what combining wants
    return df.groupby(keys, sort=False, dropna=False).first().reset_index()


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``df`` as dicts keyed by column name."""
    return cast(list[dict[str, Any]], df.to_dict("records"))


def as_text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
        return None
    s = str(v)
    return s if s and s.lower() != "nan" else None


def as_number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def as_flag(v: Any) -> bool:
    return (
        v is True
        or (isinstance(v, str) and v.lower() in ("t", "true"))
        or (v is not pd.NA and v == 1 and not isinstance(v, str))
    )


def _keys_from_columns(columns: str, opclasses: str | None) -> tuple[IndexKey, ...]:
    parts = split_top_level(columns)
    ops = [o.strip() or None for o in (opclasses or "").split(",")] if opclasses else []
    keys = []
    for i, part in enumerate(parts):
        op = ops[i] if i < len(ops) else None
        desc = part.upper().endswith(" DESC")
        part = re.sub(r"\s+(?:DESC|ASC)$", "", part, flags=re.I).strip()
        if part.startswith("(") and part.endswith(")"):
            keys.append(IndexKey(None, part[1:-1], op, desc))
        elif re.fullmatch(r'"?[\w$]+"?', part):
            keys.append(IndexKey(part.strip('"'), None, op, desc))
        else:
            m = re.fullmatch(r"([\w$]+)\(\d+\)", part)  # MySQL prefix key
            keys.append(
                IndexKey(m.group(1), None, op, desc) if m else IndexKey(None, part, op, desc)
            )
    return tuple(keys)


def _info(rec: Mapping[str, Any], declared_only: bool) -> IndexInfo | None:
    table, name = as_text(rec.get("table")), as_text(rec.get("index"))
    if table is None or name is None:
        return None
    definition = as_text(rec.get("definition"))
    parsed: IndexDefinition | None = parse_index_definition(definition) if definition else None
    if parsed is not None:
        keys, method, unique = parsed.keys, parsed.method, parsed.unique
        predicate, include = parsed.predicate, parsed.include
    else:
        cols = as_text(rec.get("columns"))
        if cols is None:
            return None
        keys = _keys_from_columns(cols, as_text(rec.get("opclasses")))
        method = (as_text(rec.get("method")) or "btree").lower()
        unique = as_flag(rec.get("unique"))
        predicate = as_text(rec.get("predicate"))
        inc = as_text(rec.get("include"))
        include = tuple(c.strip() for c in inc.split(",")) if inc else ()
    u = rec.get("unique")
    if u is not None and u is not pd.NA and not (isinstance(u, float) and math.isnan(u)):
        unique = as_flag(u)
    valid = rec.get("valid")
    fields = as_text(rec.get("fields"))
    return IndexInfo(
        table=table,
        name=name,
        keys=keys,
        method=method,
        unique=unique,
        primary=as_flag(rec.get("primary")),
        predicate=predicate,
        include=include,
        schema=as_text(rec.get("schema")),
        definition=definition,
        size_bytes=as_number(rec.get("size_bytes")),
        idx_scan=as_number(rec.get("idx_scan")),
        valid=not (valid is False or (isinstance(valid, str) and valid.lower() in ("f", "false"))),
        constraint=as_text(rec.get("constraint_type")),
        declared_by=as_text(rec.get("declared_by")),
        app_label=as_text(rec.get("app_label")),
        model=as_text(rec.get("model")),
        fields=tuple(f.strip() for f in fields.split(",")) if fields else (),
        stats_reset=as_text(rec.get("stats_reset")),
        collected_at=as_text(rec.get("collected_at")),
        declared_only=declared_only,
        index_reads=as_number(rec.get("index_reads")),
        index_writes=as_number(rec.get("index_writes")),
        foreign_key=as_text(rec.get("foreign_key")),
        redundant_to=as_text(rec.get("redundant_to")),
        dialect=as_text(rec.get("dialect")),
    )


def declared_by_name(ix: IndexInfo, code: CodeMap) -> IndexInfo:
    """``ix`` with the field that declares it when no model dump said so but its name is the
    one Django gives a field's index: ``db_index=True`` or a foreign key's automatic index
    (on MySQL named after its FOREIGN KEY constraint). Marked as inferred."""
    if ix.declared_by or ix.primary or len(ix.keys) != 1 or not ix.keys[0].column:
        return ix
    column = ix.keys[0].column
    fk = {(t, c): target for t, c, target in code.foreign_keys()}
    target = fk.get((ix.table, column))
    suffix = is_auto_index_name(ix.name, ix.table, [column])
    if suffix is None and target is not None:
        to_column = code.primary_key(target)
        if ix.name == auto_index_name(ix.table, [column], f"_fk_{target}_{to_column}"):
            suffix = ""
    if suffix != "" or ix.unique:
        return ix
    model = code.model(ix.table)
    field = code.field_name(ix.table, column)
    by = (
        f"ForeignKey {model.name}.{field} (automatic index)"
        if target is not None
        else f"db_index=True on {model.name}.{field}"
    )
    return replace(ix, declared_by=by + " (inferred from Django's index name)", fields=(field,))


def existing_indexes(schema_indexes: pd.DataFrame) -> list[IndexInfo]:
    """The indexes of the database, rows of several exports combined per table and name.

    Declarations from a Django model dump are merged into the catalog rows of the same index
    (adding ``declared_by``, model and fields); a declared index whose table the catalog does
    not describe is kept as ``declared_only``.
    """
    if len(schema_indexes) == 0:
        return []
    df = schema_indexes
    origin = (
        df["origin"].astype("string")
        if "origin" in df
        else pd.Series(pd.NA, index=df.index, dtype="string")
    )
    dump = df[origin == _ORIGIN_DUMP]
    catalog = df[origin.isna() | (origin != _ORIGIN_DUMP)]
    if len(catalog) and catalog["table"].isna().any():
        # a sizes export may name an index without its table: index names are unique per
        # schema in PostgreSQL, so another export's row tells the table
        known = (
            catalog.dropna(subset=["table"]).drop_duplicates("index").set_index("index")["table"]
        )
        catalog = catalog.assign(table=catalog["table"].fillna(catalog["index"].map(known)))
    out: list[IndexInfo] = []
    catalog_tables: set[str] = set()
    declared = [
        d for d in (_info(r, True) for r in records(_coalesce(dump, ["table", "index"]))) if d
    ]
    by_name = {(d.table, d.name): d for d in declared}
    by_keys: dict[tuple[str, tuple[str, ...]], IndexInfo] = {}
    for d in declared:
        by_keys.setdefault((d.table, d.key_names), d)
    infos = [
        i for i in (_info(r, False) for r in records(_coalesce(catalog, ["table", "index"]))) if i
    ]
    catalog_names = {(i.table, i.name) for i in infos}
    for info in infos:
        catalog_tables.add(info.table)
        decl = by_name.get((info.table, info.name))
        if decl is None:
            # a declaration under a name the catalog does not have (PostgreSQL's own name for an
            # inline unique constraint, say) is matched by its keys
            cand = by_keys.get((info.table, info.key_names))
            if cand is not None and (cand.table, cand.name) not in catalog_names:
                decl = cand
        if decl is not None:
            info = replace(
                info,
                declared_by=decl.declared_by,
                app_label=decl.app_label,
                model=decl.model,
                fields=decl.fields,
            )
        out.append(info)
    for d in declared:
        if d.table not in catalog_tables:
            out.append(d)
    return out


@dataclass
class TableInfo:
    table: str
    rows: float | None = None
    size_bytes: float | None = None
    seq_scan: float | None = None
    seq_tup_read: float | None = None
    idx_scan: float | None = None
    writes: float | None = None
    updates_non_hot: float | None = None
    index_writes: float | None = None
    app_label: str | None = None
    model: str | None = None
    latest_migration: str | None = None
    inferred: bool = True
    stats_reset: str | None = None
    collected_at: str | None = None
    #: rows read from the table by any access path (MySQL performance_schema COUNT_READ)
    rows_read: float | None = None


def table_infos(schema_tables: pd.DataFrame) -> dict[str, TableInfo]:
    out: dict[str, TableInfo] = {}
    if len(schema_tables) == 0:
        return out
    for rec in records(_coalesce(schema_tables, ["table"])):
        table = as_text(rec.get("table"))
        if table is None:
            continue
        ins, upd, dele = (as_number(rec.get(c)) for c in ("n_tup_ins", "n_tup_upd", "n_tup_del"))
        writes = (
            None
            if ins is None and upd is None and dele is None
            else (ins or 0) + (upd or 0) + (dele or 0)
        )
        hot = as_number(rec.get("n_tup_hot_upd"))
        model = as_text(rec.get("model"))
        app, _, cls = (model or "").partition(".")
        rows = as_number(rec.get("rows_estimate"))
        out[table] = TableInfo(
            table=table,
            rows=rows,
            size_bytes=as_number(rec.get("size_bytes")),
            seq_scan=as_number(rec.get("seq_scan")),
            seq_tup_read=as_number(rec.get("seq_tup_read")),
            idx_scan=as_number(rec.get("idx_scan")),
            writes=writes,
            updates_non_hot=None if upd is None else upd - (hot or 0),
            index_writes=None if writes is None else (ins or 0) + ((upd or 0) - (hot or 0)),
            app_label=app or None,
            model=cls or None,
            latest_migration=as_text(rec.get("latest_migration")),
            inferred=model is None,
            stats_reset=as_text(rec.get("stats_reset")),
            collected_at=as_text(rec.get("collected_at")),
            rows_read=as_number(rec.get("rows_read")),
        )
    return out


@dataclass
class ColumnStats:
    distinct: float | None = None  # absolute number of distinct values
    width: float | None = None


def column_stats(
    column_stats: pd.DataFrame | None, tables: Mapping[str, TableInfo]
) -> dict[tuple[str, str], ColumnStats]:
    out: dict[tuple[str, str], ColumnStats] = {}
    if column_stats is None or len(column_stats) == 0:
        return out
    df = column_stats
    if "inherited" in df:
        df = df[~df["inherited"].fillna(False).astype(bool)]
    for rec in records(_coalesce(df, ["table", "column"])):
        table, col = as_text(rec.get("table")), as_text(rec.get("column"))
        if table is None or col is None:
            continue
        nd = as_number(rec.get("n_distinct"))
        rows = tables[table].rows if table in tables else None
        distinct = None
        if nd is not None:
            distinct = nd if nd > 0 else (-nd * rows if rows else None)
        out[(table, col)] = ColumnStats(distinct, as_number(rec.get("avg_width")))
    return out


def infer_distinct(
    cstats: dict[tuple[str, str], ColumnStats],
    tables: Mapping[str, TableInfo],
    indexes: Sequence[IndexInfo],
    code: CodeMap,
) -> None:
    """Distinct counts pg_stats did not give: a unique column has one value per row, a foreign
    key at most one per row of the table it points to."""
    for ix in indexes:
        if ix.unique and len(ix.keys) == 1 and ix.keys[0].column and not ix.predicate:
            key = (ix.table, ix.keys[0].column)
            rows = tables[ix.table].rows if ix.table in tables else None
            if rows and (key not in cstats or cstats[key].distinct is None):
                cstats[key] = ColumnStats(rows, cstats[key].width if key in cstats else None)
    for table, column, target in code.foreign_keys():
        key = (table, column)
        rows, target_rows = (tables[t].rows if t in tables else None for t in (table, target))
        if target_rows and (key not in cstats or cstats[key].distinct is None):
            distinct = min(target_rows, rows) if rows else target_rows
            cstats[key] = ColumnStats(distinct, cstats[key].width if key in cstats else None)


def stats_window(indexes: Iterable[IndexInfo], tables: Mapping[str, TableInfo]) -> str:
    """The window the index and table counters cover, in words ("since the statistics reset on
    2026-05-01 10:00 UTC (3.2 days)")."""
    resets = [i.stats_reset for i in indexes if i.stats_reset] + [
        ti.stats_reset for ti in tables.values() if ti.stats_reset
    ]
    collected = [i.collected_at for i in indexes if i.collected_at] + [
        ti.collected_at for ti in tables.values() if ti.collected_at
    ]
    if not resets:
        return "since the statistics were last reset (reset time not exported)"
    start = pd.to_datetime(min(resets), utc=True, errors="coerce", format="mixed")
    end = (
        pd.to_datetime(max(collected), utc=True, errors="coerce", format="mixed")
        if collected
        else None
    )
    if pd.isna(start):
        return f"since the statistics reset ({min(resets)})"
    text = f"since the statistics reset on {start:%Y-%m-%d %H:%M} UTC"
    if end is not None and not pd.isna(end):
        seconds = (end - start).total_seconds()
        if seconds >= 86400:
            text += f" ({seconds / 86400:.1f} days)"
        elif seconds >= 3600:
            text += f" ({seconds / 3600:.1f} hours)"
        elif seconds >= 60:
            text += f" ({seconds / 60:.0f} minutes)"
        elif seconds > 0:
            text += " (under a minute)"
    return text


def mysql_window(server_status: pd.DataFrame | None) -> str:
    """The window MySQL/MariaDB performance_schema counters cover, in words.

    They count from the server's start or the last ``TRUNCATE`` of their table, whichever is
    later; the server's ``Uptime`` (SHOW GLOBAL STATUS) gives the first, nothing exported gives
    the second, so the text says both.
    """
    tail = ", or since performance_schema was last truncated if that was later (the exports do not say)"
    if server_status is None or len(server_status) == 0 or "name" not in server_status:
        return (
            "since the server started" + tail + "; the server's Uptime was not exported "
            "(SHOW GLOBAL STATUS tells it)"
        )
    rows = server_status[
        (server_status["kind"].astype("string") == "status")
        & (server_status["name"].astype("string").str.lower() == "uptime")
    ]
    values = pd.to_numeric(rows["value"], errors="coerce")
    rows = rows[values.notna()]
    if len(rows) == 0:
        return "since the server started" + tail + "; its Uptime was not exported"
    pos = int(pd.to_numeric(rows["value"], errors="coerce").to_numpy().argmax())
    last = rows.iloc[pos]
    uptime = float(last["value"])
    engines = (
        set(server_status["engine"].dropna().astype(str)) if "engine" in server_status else set()
    )
    version = server_status[server_status["name"].astype("string").str.lower() == "version"]
    mariadb = (
        "mariadb" in engines
        or version["text"].astype("string").str.contains("mariadb", case=False, na=False).any()
    )
    server = "MariaDB" if mariadb else "the MySQL server"
    ts = last.get("ts")
    span = (
        f"{uptime / 86400:.1f} days"
        if uptime >= 86400
        else f"{uptime / 3600:.1f} hours"
        if uptime >= 3600
        else f"{uptime / 60:.0f} minutes"
        if uptime >= 120
        else f"{uptime:.0f} seconds"
    )
    if ts is not None and not pd.isna(ts):
        start = pd.Timestamp(ts) - pd.Timedelta(seconds=uptime)
        return f"since {server} started on {start:%Y-%m-%d %H:%M} UTC ({span} of uptime)" + tail
    return f"since {server} started ({span} of uptime at the status snapshot)" + tail


def size_text(b: float | None) -> str:
    """A size for a sentence: "1.3 MB", or "unknown size"."""
    if b is None:
        return "unknown size"
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if b < 1024 or unit == "TB":
            return f"{b:,.0f} {unit}" if unit == "bytes" else f"{b:,.1f} {unit}"
        b /= 1024
    return f"{b:,.1f} TB"


def write_overhead(
    info: TableInfo | None, index: IndexInfo | None = None
) -> tuple[str, float | None]:
    """Rows whose write also wrote each index of the table: inserts and non-HOT updates; for a
    MySQL index whose own writes performance_schema counted (``COUNT_WRITE``), those."""
    if (info is None or info.writes is None) and index is not None and index.index_writes:
        # performance_schema counts inserts against the table's no-index row, so an index's own
        # COUNT_WRITE (updates and deletes through it) is a floor, used only without the table's
        w = index.index_writes
        return f"at least {w:,.0f} row writes went through it (performance_schema)", w
    if info is None or info.writes is None:
        export = (
            "performance_schema table_io_waits_summary_by_table"
            if index is not None and index.is_mysql
            else "pg_stat_user_tables"
        )
        return f"its write cost is unknown (no {export} export)", None
    # deletes do not touch indexes (vacuum does) and HOT updates skip them: count inserts and
    # the other updates when the export tells them apart
    w = info.index_writes if info.index_writes is not None else info.writes
    return f"{w:,.0f} row writes on {info.table} since the reset also wrote this index", w


def physical(indexes: Sequence[IndexInfo]) -> list[IndexInfo]:
    return [i for i in indexes if not i.declared_only]


def is_like_twin(ix: IndexInfo) -> bool:
    """Django's automatic ``…_like`` (varchar/text_pattern_ops) index of a CharField/TextField."""
    if ix.declared_by and "LIKE twin" in ix.declared_by:
        return True
    cols = [k.column for k in ix.keys if k.column]
    return (
        len(cols) == 1
        and all(k.pattern_ops for k in ix.keys)
        and is_auto_index_name(ix.name, ix.table, cols) == "_like"
    )


def signature(ix: IndexInfo) -> tuple[Any, ...]:
    return (
        ix.method,
        tuple((k.key, k.opclass, k.descending) for k in ix.keys),
        ix.predicate or "",
        ix.include,
    )


def keep_rank(ix: IndexInfo) -> tuple[int, int, int, float, str]:
    """Sort key choosing which of identical indexes to keep (smallest first)."""
    declared = ix.declared_by or ""
    by_field = any(w in declared for w in ("ForeignKey", "db_index", "unique", "many-to-many"))
    return (
        0 if ix.primary else 1,
        0 if (ix.unique or ix.constraint) else 1,
        0 if by_field else 1,
        -(ix.idx_scan or 0.0),
        ix.name,
    )


@dataclass
class Catalog:
    """The catalog combined: indexes (with the keys a model dump or Django's conventions imply
    where no export describes a table), tables, column statistics and the counters' window."""

    indexes: list[IndexInfo]
    tables: dict[str, TableInfo]
    columns: dict[tuple[str, str], ColumnStats]
    window: str

    @classmethod
    def build(
        cls,
        schema_indexes: pd.DataFrame,
        schema_tables: pd.DataFrame,
        column_stats_frame: pd.DataFrame | None = None,
        code: CodeMap | None = None,
        server_status: pd.DataFrame | None = None,
    ) -> Catalog:
        """``server_status`` (SHOW GLOBAL STATUS) dates MySQL performance_schema counters."""
        tables = table_infos(schema_tables)
        indexes = existing_indexes(schema_indexes)
        cstats = column_stats(column_stats_frame, tables)
        if code is not None:
            infer_distinct(cstats, tables, indexes, code)
            indexes = [declared_by_name(i, code) for i in indexes]
        mysql = any(i.index_reads is not None for i in indexes) and not any(
            i.stats_reset for i in indexes
        )
        window = mysql_window(server_status) if mysql else stats_window(indexes, tables)
        return cls(indexes, tables, cstats, window)

    def of(self, table: str) -> list[IndexInfo]:
        """The indexes of ``table``."""
        return [i for i in self.indexes if i.table == table]

    @property
    def has_table_stats(self) -> bool:
        """True when table access statistics (pg_stat_user_tables or the like) were exported."""
        return any(t.seq_scan is not None for t in self.tables.values())

    @property
    def empty(self) -> bool:
        return not self.indexes and not self.tables

    def with_keys_of(
        self, code: CodeMap, tables: Iterable[str], dialect: str = "postgres"
    ) -> list[IndexInfo]:
        """Every index, plus for each of ``tables`` that no export describes the indexes Django's
        own apps create (from the shipped dump of ``django.contrib``) and the primary key and
        unique constraints ``code`` knows (a model dump, or ``id`` — or a multi-table child's
        ``<parent>_ptr_id``, or a key named after its table — by convention): no advice may
        propose an index those already provide.

        On MySQL/MariaDB (``dialect`` ``mysql``), InnoDB indexes every FOREIGN KEY's columns
        itself, creating the index when none leads with them (Django leaves it to InnoDB): each
        foreign key a model dump declares gets that index, ``db_index=False`` or not, on tables
        the server's catalog does not describe."""
        out = list(self.indexes)
        described = {i.table for i in self.indexes}
        tables = list(dict.fromkeys(tables))
        wanted = [t for t in tables if t not in described]
        django: dict[str, list[IndexInfo]] = {}
        for info in existing_indexes(django_indexes()):
            django.setdefault(info.table, []).append(info)
        for table in wanted:
            # Django's own apps: every index its migrations create, foreign keys' included
            have = {tuple(k.column for k in i.keys) for i in django.get(table, [])}
            out.extend(django.get(table, []))
            pk = code.primary_key(table)
            for key in code.unique_keys(table):
                if key in have:
                    continue
                out.append(
                    IndexInfo(
                        table=table,
                        name=f"{table}_pkey" if key == (pk,) else f"{table}_{'_'.join(key)}_key",
                        keys=tuple(IndexKey(c, None, None, False) for c in key),
                        unique=True,
                        primary=key == (pk,),
                        declared_by="primary key" if key == (pk,) else "unique constraint",
                        declared_only=True,
                    )
                )
        if dialect == "mysql":
            out.extend(_innodb_foreign_key_indexes(code, tables, out))
        return out


def _innodb_foreign_key_indexes(
    code: CodeMap, tables: Iterable[str], indexes: Sequence[IndexInfo]
) -> list[IndexInfo]:
    """The indexes InnoDB creates for the foreign keys of ``tables`` a model dump declares
    (never the ones only Django's naming suggests), where no index leads with the column: named
    after the constraint, as InnoDB names them. A table the server's own catalog describes
    (SHOW INDEX, information_schema) lists that index already — or has no such constraint."""
    wanted = set(tables) - {i.table for i in indexes if not i.declared_only}
    leading = {(i.table, i.keys[0].column) for i in indexes if i.keys and i.keys[0].column}
    out: list[IndexInfo] = []
    for table, column, target in code.foreign_keys():
        if table not in wanted or (table, column) in leading or code.column_inferred(table, column):
            continue
        leading.add((table, column))
        suffix = f"_fk_{target}_{code.primary_key(target)}"
        out.append(
            IndexInfo(
                table=table,
                name=auto_index_name(table, [column], suffix),
                keys=(IndexKey(column, None, None, False),),
                declared_by=f"FOREIGN KEY {code.model(table).name}.{code.field_name(table, column)}"
                " (InnoDB's automatic index)",
                declared_only=True,
                dialect="mysql",
            )
        )
    return out
