"""The index advisor: indexes to add (with DDL, ``Meta.indexes`` and a migration), and to drop.

Pure functions over canonical frames; nothing here connects to a database except
:func:`validate_with_hypopg`, which only plans statements inside a read-only transaction.

* :func:`index_candidates` — from the workload (``statement_stats``), each distinct statement
  parsed once (:mod:`auditkit.sql.analyze`), per table reference: the equality, range, sort and
  expression keys it needs, ordered **equality → range → sort** and explained per column;
  skipped when an existing index already serves them by its leading columns (Django's
  automatic foreign-key indexes and unique constraints included); an expression
  (``UPPER(email)`` from ``__iexact``) gets an expression index and a ``LIKE 'x%'`` a pattern-ops
  index — never a plain index that the planner could not use. Candidates are weighted by the
  time of their statements and by plan evidence (sequential scans filtering on those columns);
  write-heavy tables get the trade-off stated. Each is a ``missing_index`` Finding with a
  ``CREATE INDEX CONCURRENTLY`` statement, the ``models.Index(...)`` entry for ``Meta.indexes``
  and a complete migration using ``AddIndexConcurrently`` (``atomic = False``).
* :func:`validate_with_hypopg` — re-plans the affected statements with each candidate created
  as a HypoPG hypothetical index; keeps the candidates that cut the cost by the preset's
  ``min_cost_reduction`` and records before/after costs (evidence strength ``validated``).
* :func:`unused_indexes`, :func:`duplicate_indexes` — ``unused_index`` and ``duplicate_index``
  Findings (identical, or a redundant prefix of another index of the same kind), with size,
  write overhead, ``DROP INDEX CONCURRENTLY`` and the Django change.
* :func:`check_indexing` — the chapter check over a loaded client.

Thresholds are the ``index`` family of :mod:`auditkit.config` (presets ``default``, ``dexter``,
``pghero``, ``powa``).

Several catalog exports describe one index (its definition from ``pg_indexes``, its scans from
``pg_stat_user_indexes``, its size from the sizes export): rows are combined per table and
index name. Rows of a Django model dump (``origin = django_models``) are *declarations*: they
tell which model and field an index belongs to, and stand in for the catalog only for tables
the catalog does not describe.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import pandas as pd

from auditkit.config import AuditConfig
from auditkit.django.naming import is_auto_index_name, meta_index_name
from auditkit.findings import Evidence, EvidenceStrength, Finding, Recommendation, Severity, Subject
from auditkit.sql.analyze import (
    IndexDefinition,
    IndexKey,
    WorkloadAnalysis,
    analyze_workload,
    is_system_relation,
    parse_index_definition,
    split_top_level,
)
from auditkit.sql.fingerprint import Dialect

__all__ = [
    "CandidateKey",
    "IndexInfo",
    "check_indexing",
    "combined_migration",
    "duplicate_indexes",
    "existing_indexes",
    "index_candidates",
    "unused_indexes",
    "validate_with_hypopg",
    "validation_plans",
]

_EQ_ROLES = ("eq", "null", "in")
_ORIGIN_DUMP = "django_models"
_PAGE = 8192
_FILL = 0.9
_TYPE_WIDTH = {
    "AutoField": 4,
    "BigAutoField": 8,
    "SmallAutoField": 2,
    "IntegerField": 4,
    "BigIntegerField": 8,
    "SmallIntegerField": 2,
    "PositiveIntegerField": 4,
    "PositiveBigIntegerField": 8,
    "ForeignKey": 8,
    "OneToOneField": 8,
    "DateTimeField": 8,
    "DateField": 4,
    "TimeField": 8,
    "BooleanField": 1,
    "FloatField": 8,
    "DecimalField": 8,
    "UUIDField": 16,
    "DurationField": 8,
}
_VARCHAR_TYPES = {
    "CharField",
    "EmailField",
    "SlugField",
    "URLField",
    "FilePathField",
    "FileField",
    "ImageField",
}


# --------------------------------------------------------------------------------------------
# the catalog, combined
# --------------------------------------------------------------------------------------------
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

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(k.key for k in self.keys)

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


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``df`` as dicts keyed by column name."""
    return cast(list[dict[str, Any]], df.to_dict("records"))


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
        return None
    s = str(v)
    return s if s and s.lower() != "nan" else None


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _flag(v: Any) -> bool:
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
    table, name = _text(rec.get("table")), _text(rec.get("index"))
    if table is None or name is None:
        return None
    definition = _text(rec.get("definition"))
    parsed: IndexDefinition | None = parse_index_definition(definition) if definition else None
    if parsed is not None:
        keys, method, unique = parsed.keys, parsed.method, parsed.unique
        predicate, include = parsed.predicate, parsed.include
    else:
        cols = _text(rec.get("columns"))
        if cols is None:
            return None
        keys = _keys_from_columns(cols, _text(rec.get("opclasses")))
        method = (_text(rec.get("method")) or "btree").lower()
        unique = _flag(rec.get("unique"))
        predicate = _text(rec.get("predicate"))
        inc = _text(rec.get("include"))
        include = tuple(c.strip() for c in inc.split(",")) if inc else ()
    u = rec.get("unique")
    if u is not None and u is not pd.NA and not (isinstance(u, float) and math.isnan(u)):
        unique = _flag(u)
    valid = rec.get("valid")
    fields = _text(rec.get("fields"))
    return IndexInfo(
        table=table,
        name=name,
        keys=keys,
        method=method,
        unique=unique,
        primary=_flag(rec.get("primary")),
        predicate=predicate,
        include=include,
        schema=_text(rec.get("schema")),
        definition=definition,
        size_bytes=_num(rec.get("size_bytes")),
        idx_scan=_num(rec.get("idx_scan")),
        valid=not (valid is False or (isinstance(valid, str) and valid.lower() in ("f", "false"))),
        constraint=_text(rec.get("constraint_type")),
        declared_by=_text(rec.get("declared_by")),
        app_label=_text(rec.get("app_label")),
        model=_text(rec.get("model")),
        fields=tuple(f.strip() for f in fields.split(",")) if fields else (),
        stats_reset=_text(rec.get("stats_reset")),
        collected_at=_text(rec.get("collected_at")),
        declared_only=declared_only,
    )


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
        d for d in (_info(r, True) for r in _records(_coalesce(dump, ["table", "index"]))) if d
    ]
    by_name = {(d.table, d.name): d for d in declared}
    by_keys: dict[tuple[str, tuple[str, ...]], IndexInfo] = {}
    for d in declared:
        by_keys.setdefault((d.table, d.key_names), d)
    infos = [
        i for i in (_info(r, False) for r in _records(_coalesce(catalog, ["table", "index"]))) if i
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
class _TableInfo:
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


def _tables(schema_tables: pd.DataFrame) -> dict[str, _TableInfo]:
    out: dict[str, _TableInfo] = {}
    if len(schema_tables) == 0:
        return out
    for rec in _records(_coalesce(schema_tables, ["table"])):
        table = _text(rec.get("table"))
        if table is None:
            continue
        ins, upd, dele = (_num(rec.get(c)) for c in ("n_tup_ins", "n_tup_upd", "n_tup_del"))
        writes = (
            None
            if ins is None and upd is None and dele is None
            else (ins or 0) + (upd or 0) + (dele or 0)
        )
        hot = _num(rec.get("n_tup_hot_upd"))
        model = _text(rec.get("model"))
        app, _, cls = (model or "").partition(".")
        rows = _num(rec.get("rows_estimate"))
        out[table] = _TableInfo(
            table=table,
            rows=rows,
            size_bytes=_num(rec.get("size_bytes")),
            seq_scan=_num(rec.get("seq_scan")),
            seq_tup_read=_num(rec.get("seq_tup_read")),
            idx_scan=_num(rec.get("idx_scan")),
            writes=writes,
            updates_non_hot=None if upd is None else upd - (hot or 0),
            index_writes=None if writes is None else (ins or 0) + ((upd or 0) - (hot or 0)),
            app_label=app or None,
            model=cls or None,
            latest_migration=_text(rec.get("latest_migration")),
            inferred=model is None,
            stats_reset=_text(rec.get("stats_reset")),
            collected_at=_text(rec.get("collected_at")),
        )
    return out


@dataclass
class _Django:
    """Tables → models and columns → fields, from a model dump or inferred."""

    tables: dict[str, tuple[str, str, bool]] = field(
        default_factory=dict
    )  # table → (app, Model, inferred)
    fields: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, column) → field
    types: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, column) → field type
    latest: dict[str, str] = field(default_factory=dict)  # app → latest migration
    fk: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, column) → target table
    auto_created: set[str] = field(default_factory=set)

    @classmethod
    def build(
        cls,
        schema_columns: pd.DataFrame,
        tables: Mapping[str, _TableInfo],
        indexes: Sequence[IndexInfo],
        seen: Iterable[tuple[str, str]],
    ) -> _Django:
        from auditkit.loaders.django_models import infer_models

        d = cls()
        cols = schema_columns
        if len(cols) == 0 or cols["inferred"].fillna(False).all():
            idx_rows = pd.DataFrame(
                [
                    {
                        "table": i.table,
                        "index": i.name,
                        "columns": ", ".join(k.column or f"({k.expression})" for k in i.keys),
                        "unique": i.unique,
                    }
                    for i in indexes
                ]
            )
            tab_rows = pd.DataFrame({"table": list(tables)})
            cols = (
                pd.concat(
                    [cols, infer_models(tab_rows, idx_rows, seen_columns=seen)], ignore_index=True
                )
                if len(cols)
                else infer_models(tab_rows, idx_rows, seen_columns=seen)
            )
        for rec in _records(cols):
            table, app, model = (
                _text(rec.get("table")),
                _text(rec.get("app_label")),
                _text(rec.get("model")),
            )
            if table is None:
                continue
            inferred = bool(rec.get("inferred") is True)
            if app and model and (table not in d.tables or (d.tables[table][2] and not inferred)):
                d.tables[table] = (app, model, inferred)
            column, fname = _text(rec.get("column")), _text(rec.get("field"))
            if column and fname and ((table, column) not in d.fields or not inferred):
                d.fields[(table, column)] = fname
                ftype = _text(rec.get("field_type"))
                if ftype:
                    d.types[(table, column)] = ftype
            target = _text(rec.get("fk_to"))
            if column and target and _text(rec.get("through")) is None:
                d.fk[(table, column)] = target
        for t in tables.values():
            if t.model and t.app_label:
                d.tables[t.table] = (t.app_label, t.model, False)
                if t.latest_migration:
                    d.latest.setdefault(t.app_label, t.latest_migration)
        return d

    def model_of(self, table: str) -> tuple[str, str, bool]:
        if table in self.tables:
            return self.tables[table]
        app, _, rest = table.partition("_")
        return (app or table, (rest or table).replace("_", " ").title().replace(" ", ""), True)

    def field_of(self, table: str, column: str) -> str:
        if (table, column) in self.fields:
            return self.fields[(table, column)]
        return column[:-3] if column.endswith("_id") and column != "id" else column


@dataclass
class _ColStats:
    distinct: float | None = None  # absolute number of distinct values
    width: float | None = None


def _column_stats(
    column_stats: pd.DataFrame | None, tables: Mapping[str, _TableInfo]
) -> dict[tuple[str, str], _ColStats]:
    out: dict[tuple[str, str], _ColStats] = {}
    if column_stats is None or len(column_stats) == 0:
        return out
    df = column_stats
    if "inherited" in df:
        df = df[~df["inherited"].fillna(False).astype(bool)]
    for rec in _records(_coalesce(df, ["table", "column"])):
        table, col = _text(rec.get("table")), _text(rec.get("column"))
        if table is None or col is None:
            continue
        nd = _num(rec.get("n_distinct"))
        rows = tables[table].rows if table in tables else None
        distinct = None
        if nd is not None:
            distinct = nd if nd > 0 else (-nd * rows if rows else None)
        out[(table, col)] = _ColStats(distinct, _num(rec.get("avg_width")))
    return out


def _infer_distinct(
    cstats: dict[tuple[str, str], _ColStats],
    tables: Mapping[str, _TableInfo],
    indexes: Sequence[IndexInfo],
    django: _Django,
) -> None:
    """Distinct counts pg_stats did not give: a unique column has one value per row, a foreign
    key at most one per row of the table it points to."""
    for ix in indexes:
        if ix.unique and len(ix.keys) == 1 and ix.keys[0].column and not ix.predicate:
            key = (ix.table, ix.keys[0].column)
            rows = tables[ix.table].rows if ix.table in tables else None
            if rows and (key not in cstats or cstats[key].distinct is None):
                cstats[key] = _ColStats(rows, cstats[key].width if key in cstats else None)
    for (table, column), target in django.fk.items():
        key = (table, column)
        rows, target_rows = (tables[t].rows if t in tables else None for t in (table, target))
        if target_rows and (key not in cstats or cstats[key].distinct is None):
            distinct = min(target_rows, rows) if rows else target_rows
            cstats[key] = _ColStats(distinct, cstats[key].width if key in cstats else None)


# --------------------------------------------------------------------------------------------
# candidates
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CandidateKey:
    """One key of a proposed index."""

    key: str  # normal form (column name or expression key)
    column: str  # the underlying column
    role: str  # eq | in | null | range | like | order | group | join
    expression_sql: str | None = None
    function: str | None = None
    unit: str | None = None
    opclass: str | None = None
    descending: bool = False

    def ddl(self) -> str:
        text = f'"{self.column}"' if self.expression_sql is None else f"({self.expression_sql})"
        if self.opclass:
            text += f" {self.opclass}"
        if self.descending:
            text += " DESC"
        return text

    def label(self) -> str:
        text = self.column if self.expression_sql is None else self.expression_sql.replace('"', "")
        if self.opclass:
            text += f" {self.opclass}"
        if self.descending:
            text += " DESC"
        return text

    @property
    def ident(self) -> tuple[str, str | None, bool]:
        return (self.key, self.opclass, self.descending)


@dataclass
class _Need:
    table: str
    keys: list[CandidateKey]
    explanation: list[str]
    fingerprint_id: str
    dropped: list[str] = field(default_factory=list)


def _opclass(table: str, column: str, expression: bool, django: _Django) -> str:
    if expression:
        return "text_pattern_ops"
    ftype = django.types.get((table, column))
    if ftype == "TextField":
        return "text_pattern_ops"
    return "varchar_pattern_ops" if ftype in _VARCHAR_TYPES or ftype is None else "text_pattern_ops"


def _key_of(
    u: Mapping[str, Any], role: str, django: _Django, *, descending: bool = False
) -> CandidateKey:
    expr = _text(u.get("expression_sql"))
    opclass = None
    if role == "like":
        opclass = _opclass(str(u["table"]), str(u["column"]), expr is not None, django)
    return CandidateKey(
        key=str(u["key"]),
        column=str(u["column"]),
        role=role,
        expression_sql=expr,
        function=_text(u.get("function")),
        unit=_text(u.get("unit")),
        opclass=opclass,
        descending=descending,
    )


def _describe(k: CandidateKey, limit: bool) -> str:
    name = k.label()
    if k.role in ("eq", "null"):
        text = f"{name} — equality ({'IS NULL' if k.role == 'null' else '='}): leads the index, so the scan seeks straight to the matching rows"
    elif k.role == "in":
        text = f"{name} — IN list: one index seek per value"
    elif k.role == "join":
        text = f"{name} — join key: each lookup from the other table becomes an index seek"
    elif k.role == "range":
        text = f"{name} — range (<, >, BETWEEN): after the equality columns, the index reads one contiguous slice"
    elif k.role == "like":
        text = (
            f"{name} — LIKE 'prefix%' (Django __startswith/__istartswith): only a pattern-ops index serves LIKE "
            "unless the database collation is C"
        )
    elif k.role == "order":
        text = f"{name} — sort (ORDER BY): rows come out of the index already ordered" + (
            ", so LIMIT stops early and no sort is needed" if limit else ", so no sort is needed"
        )
    else:
        text = f"{name} — GROUP BY: grouped rows come out of the index together"
    if k.expression_sql is not None and k.role != "like":
        fn = (k.function or "expression").upper()
        hint = (
            " (Django __iexact)"
            if k.function == "upper"
            else " (Django Trunc/__date)"
            if k.function in ("date_trunc", "date")
            else ""
        )
        text += f"; the statement compares {fn}({k.column}){hint}, so only an index on that same expression can serve it"
    return text


def _distinct(
    stats: Mapping[tuple[str, str], _ColStats], table: str, k: CandidateKey
) -> float | None:
    s = stats.get((table, k.column))
    if s is None or s.distinct is None:
        return None
    if k.function == "date_trunc" or k.function == "date":
        return None
    return s.distinct


def _needs_of_scope(
    fid: str,
    scope_uses: pd.DataFrame,
    django: _Django,
    stats: Mapping[tuple[str, str], _ColStats],
    tables: Mapping[str, _TableInfo],
    t: Mapping[str, Any],
    pks: Mapping[str, set[str]],
) -> list[_Need]:
    needs: list[_Need] = []
    limit = bool(scope_uses["limit"].iloc[0])
    order_rows = scope_uses[scope_uses["role"] == "order"]
    order_aliases = set(order_rows["alias"].dropna())
    for alias, uses in scope_uses.groupby("alias", sort=False, dropna=False):
        table = str(uses["table"].iloc[0])
        recs = _records(uses)
        eq = _unique_keys(
            [_key_of(u, str(u["role"]), django) for u in recs if u["role"] in _EQ_ROLES]
        )
        like = _unique_keys(
            [
                _key_of(u, "like", django)
                for u in recs
                if u["role"] == "like" and u.get("pattern") in ("prefix", "exact", "unknown")
            ]
        )
        ranges = _unique_keys([_key_of(u, "range", django) for u in recs if u["role"] == "range"])
        joins = _unique_keys([_key_of(u, "join", django) for u in recs if u["role"] == "join"])
        orders = [
            _key_of(u, "order", django, descending=bool(u["descending"]))
            for u in sorted(
                (u for u in recs if u["role"] == "order"), key=lambda u: u["position"] or 0
            )
        ]
        groups = [
            _key_of(u, "group", django)
            for u in sorted(
                (u for u in recs if u["role"] == "group"), key=lambda u: u["position"] or 0
            )
        ]
        dropped: list[str] = []
        # equality keys: plain equality before IN, the most selective first when pg_stats tells
        eq.sort(key=lambda k: (k.role == "in", -(_distinct(stats, table, k) or 0.0)))
        seek: list[CandidateKey] = list(eq)
        rng: CandidateKey | None = None
        if like:
            rng = like[0]
            dropped += [f"{k.label()} (a second LIKE: a btree seeks on one)" for k in like[1:]]
        if ranges:
            if rng is None:
                rng = ranges[0]
                dropped += [
                    f"{k.label()} (a second range: a btree seeks on one range)" for k in ranges[1:]
                ]
            else:
                dropped += [
                    f"{k.label()} (range after a LIKE prefix: the index cannot seek on both)"
                    for k in ranges
                ]
        sort: list[CandidateKey] = []
        if orders and order_aliases == {alias} and not any(k.role == "in" for k in eq):
            if rng is None or (orders[0].key == rng.key and rng.role == "range"):
                sort = list(orders)
                if rng is not None:
                    sort = sort[1:] if len(sort) > 1 else []
                    rng = replace(rng, descending=orders[0].descending)
            else:
                dropped.append(
                    f"ORDER BY {', '.join(k.label() for k in orders)} (after a range on another column the index order cannot serve the sort)"
                )
        elif groups and rng is None and seek and not orders:
            sort = groups
        if (
            len(sort) >= 2
            and sort[-1].column in pks.get(table, {"id"})
            and sort[-1].role == "order"
        ):
            dropped.append(
                f"ORDER BY … {sort[-1].label()} (a tie-breaker on the primary key: an Incremental Sort "
                f"orders the few rows sharing a {sort[-2].label()} value)"
            )
            sort = sort[:-1]
        rows_left = _rows_after(table, seek, stats, tables)
        if sort and seek and rows_left is not None and rows_left <= t["sort_skip_rows"]:
            dropped.append(
                f"ORDER BY/GROUP BY {', '.join(k.label() for k in sort)} (equality leaves ~{rows_left:.0f} row(s) per value: sorting them is cheap)"
            )
            sort = []
        keys = seek + ([rng] if rng else []) + sort
        if not seek and rng is None and not (sort and limit and sort[0].role == "order"):
            keys = []
        keys = _dedupe(keys)[: int(t["max_columns"])]
        if keys:
            needs.append(
                _Need(table, keys, [_describe(k, limit) for k in keys], fid, dropped=dropped)
            )
        # a join key needs an index on the side that is looked up: a table reached only through
        # the join (no predicate or sort of its own); the driving table is filtered, not probed
        own = bool(eq or like or ranges or orders)
        for j in joins:
            if own or j.column in pks.get(table, {"id"}):
                continue
            jkeys = _dedupe([*eq, j])[: int(t["max_columns"])]
            needs.append(_Need(table, jkeys, [_describe(k, limit) for k in jkeys], fid))
    return needs


def _unique_keys(keys: list[CandidateKey]) -> list[CandidateKey]:
    seen: set[tuple[str, str | None]] = set()
    out = []
    for k in keys:
        if (k.key, k.opclass) not in seen:
            seen.add((k.key, k.opclass))
            out.append(k)
    return out


def _dedupe(keys: list[CandidateKey]) -> list[CandidateKey]:
    seen: set[str] = set()
    out = []
    for k in keys:
        if k.key not in seen:
            seen.add(k.key)
            out.append(k)
    return out


def _rows_after(
    table: str,
    seek: list[CandidateKey],
    stats: Mapping[tuple[str, str], _ColStats],
    tables: Mapping[str, _TableInfo],
) -> float | None:
    """Estimated rows per value of the equality keys (None when statistics are missing)."""
    rows = tables[table].rows if table in tables else None
    eqs = [k for k in seek if k.role in ("eq", "null")]
    if not rows or not eqs:
        return None
    best = 1.0
    for k in eqs:
        d = _distinct(stats, table, k)
        if d is None:
            return None
        best = max(best, d)
    return max(rows / best, 1.0)


def _matches(need_key: CandidateKey, ikey: IndexKey) -> bool:
    if need_key.key != ikey.key:
        return False
    if need_key.role == "like":
        return ikey.pattern_ops
    if need_key.role in ("range", "order", "group"):
        return not ikey.pattern_ops
    return True  # equality works with either operator class


def _coverage(
    need: _Need, index: IndexInfo, rows_left: float | None, sort_skip_rows: float
) -> str | None:
    """'full' when ``index`` serves ``need`` by its leading keys, 'prefix' when it serves the
    equality part only, None otherwise."""
    if index.method != "btree" or index.predicate or not index.valid:
        return None
    keys = need.keys
    ik = index.keys
    n_eq = sum(1 for k in keys if k.role in _EQ_ROLES or k.role == "join")
    if n_eq > len(ik) and not index.unique:
        return None
    if index.unique and ik and all(any(_matches(k, i) for k in keys[:n_eq]) for i in ik):
        return "full"  # a unique index on some of the equality keys: at most one row
    lead = ik[:n_eq]
    eq_keys = keys[:n_eq]
    if not all(any(_matches(k, i) for i in lead) for k in eq_keys):
        return None
    rest = keys[n_eq:]
    if not rest:
        return "full"
    if n_eq and index.unique and len(ik) == n_eq:
        return "full"  # a unique index on the equality keys: at most one row
    tail = ik[n_eq:]
    directions: set[bool] = set()
    ok = len(tail) >= len(rest)
    if ok:
        for k, i in zip(rest, tail, strict=False):
            if not _matches(k, i):
                ok = False
                break
            if k.role == "order":
                directions.add(k.descending == i.descending)
        ok = ok and len(directions) <= 1
    if ok:
        return "full"
    if (
        n_eq
        and rows_left is not None
        and rows_left <= sort_skip_rows
        and all(k.role in ("order", "group") for k in rest)
    ):
        return "full"
    return "prefix" if n_eq else None


@dataclass
class _Candidate:
    table: str
    keys: list[CandidateKey]
    explanation: list[str]
    fids: dict[str, None] = field(default_factory=dict)
    extends: set[str] = field(default_factory=set)
    dropped: list[str] = field(default_factory=list)
    served: list[str] = field(default_factory=list)

    @property
    def ident(self) -> tuple[tuple[str, str | None, bool], ...]:
        return tuple(k.ident for k in self.keys)


def index_candidates(
    stats: pd.DataFrame,
    schema_tables: pd.DataFrame,
    schema_indexes: pd.DataFrame,
    schema_columns: pd.DataFrame,
    plan_nodes: pd.DataFrame | None = None,
    config: AuditConfig | None = None,
    *,
    column_stats: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    dialect: Dialect = "postgres",
    analysis: WorkloadAnalysis | None = None,
) -> list[Finding]:
    """``missing_index`` findings for the workload in ``stats`` (a ``statement_stats`` frame).

    ``column_stats`` (pg_stats) orders equality columns by selectivity and sizes candidates;
    ``events`` (query events with ``endpoint``) names the endpoints a candidate helps;
    ``plan_nodes`` supplies plan evidence. ``analysis`` reuses a :func:`analyze_workload` result.
    Findings come back ranked, most valuable first; already-covered lookups yield none.
    """
    cfg = config or AuditConfig()
    t = cfg.thresholds("index")
    if len(stats) == 0:
        return []
    work = stats[
        (stats["calls"].fillna(0) >= t["min_calls"])
        & (stats["total_ms"].fillna(0) >= t["min_total_ms"])
    ]
    if len(work) == 0:
        return []
    tables = _tables(schema_tables)
    indexes = [i for i in existing_indexes(schema_indexes)]
    by_table: dict[str, list[IndexInfo]] = {}
    for i in indexes:
        by_table.setdefault(i.table, []).append(i)
    known = _known_columns(schema_columns)
    wa = analysis or analyze_workload(work, dialect, known_columns=known)
    uses = (
        wa.uses[wa.uses["fingerprint_id"].isin(set(work["fingerprint_id"].astype(str)))]
        if len(wa.uses)
        else wa.uses
    )
    seen = (
        {(str(a), str(b)) for a, b in zip(uses["table"], uses["column"], strict=False)}
        if len(uses)
        else set()
    )
    django = _Django.build(schema_columns, tables, indexes, seen)
    cstats = _column_stats(column_stats, tables)
    _infer_distinct(cstats, tables, indexes, django)
    pks = {i.table: {k.column for k in i.keys if k.column} for i in indexes if i.primary}

    candidates: dict[tuple[str, tuple[Any, ...]], _Candidate] = {}
    covered: dict[str, list[str]] = {}
    if len(uses):
        for (fid, _scope), scope_uses in uses.groupby(["fingerprint_id", "scope"], sort=False):
            for need in _needs_of_scope(str(fid), scope_uses, django, cstats, tables, t, pks):
                if is_system_relation(need.table):
                    continue
                info = tables.get(need.table)
                if info is not None and info.rows is not None and info.rows < t["min_table_rows"]:
                    continue
                rows_left = _rows_after(
                    need.table, [k for k in need.keys if k.role in _EQ_ROLES], cstats, tables
                )
                full, prefix = None, None
                for ix in by_table.get(need.table, []):
                    cov = _coverage(need, ix, rows_left, t["sort_skip_rows"])
                    if cov == "full":
                        full = ix
                        break
                    if cov == "prefix" and prefix is None:
                        prefix = ix
                if full is not None:
                    covered.setdefault(full.name, []).append(need.fingerprint_id)
                    continue
                key = (need.table, tuple(k.ident for k in need.keys))
                cand = candidates.get(key)
                if cand is None:
                    cand = candidates[key] = _Candidate(need.table, need.keys, need.explanation)
                cand.fids[need.fingerprint_id] = None
                cand.dropped += [d for d in need.dropped if d not in cand.dropped]
                if prefix is not None:
                    cand.extends.add(prefix.name)
    merged = _merge_prefixes(list(candidates.values()))
    return _findings(merged, work, tables, by_table, django, cstats, plan_nodes, events, t, dialect)


def _known_columns(schema_columns: pd.DataFrame) -> dict[str, set[str]]:
    known: dict[str, set[str]] = {}
    if len(schema_columns) == 0:
        return known
    for table, column in zip(schema_columns["table"], schema_columns["column"], strict=False):
        if isinstance(table, str) and isinstance(column, str):
            known.setdefault(table, set()).add(column)
    return known


def _merge_prefixes(cands: list[_Candidate]) -> list[_Candidate]:
    """A candidate whose keys (with operator classes and directions) are a leading prefix of
    another's on the same table is served by that one: a btree serves any prefix of its keys."""
    cands = sorted(cands, key=lambda c: -len(c.keys))
    kept: list[_Candidate] = []
    for c in cands:
        host = next(
            (
                k
                for k in kept
                if k.table == c.table
                and len(k.keys) > len(c.keys)
                and k.ident[: len(c.keys)] == c.ident
            ),
            None,
        )
        if host is not None:
            for fid in c.fids:
                host.fids.setdefault(fid, None)
            host.served.append(", ".join(k.label() for k in c.keys))
            host.extends |= c.extends
            continue
        kept.append(c)
    return kept


# --------------------------------------------------------------------------------------------
# findings
# --------------------------------------------------------------------------------------------
def _window_hours(stats: pd.DataFrame) -> float | None:
    if "first_seen" not in stats or stats["first_seen"].isna().all():
        return None
    span = (stats["last_seen"].max() - stats["first_seen"].min()).total_seconds() / 3600.0
    return span if span > 0 else None


def _estimate_size(
    table: str,
    keys: Sequence[CandidateKey],
    tables: Mapping[str, _TableInfo],
    cstats: Mapping[tuple[str, str], _ColStats],
    django: _Django,
) -> float | None:
    """Rough btree size: rows × (tuple header + aligned key width + line pointer) / fill factor."""
    info = tables.get(table)
    if info is None or not info.rows:
        return None
    width = 0.0
    for k in keys:
        s = cstats.get((table, k.column))
        w = (
            s.width
            if s and s.width
            else _TYPE_WIDTH.get(django.types.get((table, k.column), ""), 16)
        )
        if k.function in ("date_trunc",):
            w = 8
        elif k.function == "date":
            w = 4
        width += w
    tuple_bytes = 8 + math.ceil((width + (1 if len(keys) > 1 else 0)) / 8) * 8 + 4
    pages = math.ceil(info.rows * tuple_bytes / (_PAGE * _FILL)) + 1
    return float(pages * _PAGE * 1.01)


def _endpoint_map(events: pd.DataFrame | None) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    if (
        events is None
        or len(events) == 0
        or "endpoint" not in events
        or "fingerprint_id" not in events
    ):
        return out
    df = events.dropna(subset=["endpoint", "fingerprint_id"])
    for fid, ep in zip(df["fingerprint_id"], df["endpoint"], strict=False):
        out.setdefault(str(fid), set()).add(str(ep))
    return out


def _plan_evidence(
    plan_nodes: pd.DataFrame | None, table: str, columns: Iterable[str]
) -> list[dict[str, Any]]:
    if plan_nodes is None or len(plan_nodes) == 0 or "relation" not in plan_nodes:
        return []
    nodes = plan_nodes[
        (plan_nodes["relation"].astype("string") == table)
        & plan_nodes["node_type"].astype("string").str.contains("Seq Scan", na=False)
    ]
    out = []
    cols = [c for c in columns if c]
    for rec in _records(nodes):
        filt = _text(rec.get("filter")) or ""
        if not any(re.search(rf"\b{re.escape(c)}\b", filt) for c in cols):
            continue
        out.append(
            {
                "plan_id": _text(rec.get("plan_id")),
                "node_id": _num(rec.get("node_id")),
                "node_type": _text(rec.get("node_type")),
                "filter": filt[:200],
                "rows_removed_by_filter": _num(rec.get("rows_removed_by_filter")),
                "actual_total_ms": _num(rec.get("actual_total_ms")),
                "source_file": _text(rec.get("source_file")),
            }
        )
    return out


def _bump(sev: Severity, by: int) -> Severity:
    return Severity(max(Severity.LOW, min(Severity.HIGH, int(sev) + by)))


def _findings(
    cands: list[_Candidate],
    stats: pd.DataFrame,
    tables: Mapping[str, _TableInfo],
    by_table: Mapping[str, list[IndexInfo]],
    django: _Django,
    cstats: Mapping[tuple[str, str], _ColStats],
    plan_nodes: pd.DataFrame | None,
    events: pd.DataFrame | None,
    t: Mapping[str, Any],
    dialect: Dialect,
) -> list[Finding]:
    grand = float(stats["total_ms"].fillna(0).sum()) or 0.0
    hours = _window_hours(stats)
    by_fid = stats.drop_duplicates("fingerprint_id").set_index("fingerprint_id")
    endpoints = _endpoint_map(events)
    has_table_stats = any(ti.seq_scan is not None for ti in tables.values())
    out: list[Finding] = []
    for c in cands:
        fids = [f for f in c.fids if f in by_fid.index]
        if not fids:
            continue
        rows = by_fid.loc[fids]
        total = float(rows["total_ms"].fillna(0).sum())
        calls = int(rows["calls"].fillna(0).sum())
        share = total / grand if grand else 0.0
        cols = tuple(dict.fromkeys(k.column for k in c.keys))
        exprs = [k for k in c.keys if k.expression_sql is not None]
        kind = "expression" if exprs else ("composite" if len(c.keys) > 1 else "plain")
        info = tables.get(c.table)
        app, model, inferred_model = django.model_of(c.table)
        name = _index_name(c, django)
        plan_items = _plan_evidence(plan_nodes, c.table, cols)
        eps = sorted(set().union(*(endpoints.get(f, set()) for f in fids))) if endpoints else []
        sev = (
            Severity.HIGH
            if share >= t["high_share"]
            else Severity.MEDIUM
            if share >= t["medium_share"]
            else Severity.LOW
        )
        if plan_items:
            sev = _bump(sev, 1)
        write_note, write_ratio = _write_tradeoff(info, by_table.get(c.table, []), t)
        if write_note and write_ratio is not None and write_ratio >= t["write_heavy_ratio"]:
            sev = _bump(sev, -1)
        size = _estimate_size(c.table, c.keys, tables, cstats, django)
        saving = total * float(t["assumed_saving"])
        impact = saving / hours if hours else saving
        ddl = _ddl(c, name, dialect)
        django_entry, imports = _django_index(c, name, django)
        entry_ok = not django_entry.startswith("#")
        op = _MigrationOp(
            model.lower(), django_entry if entry_ok else None, tuple(imports), ddl, name
        )
        migration = _migration(app, [op], django.latest.get(app), dialect)
        pattern = any(k.opclass for k in c.keys)
        what = {
            "expression": "an expression index",
            "composite": "a composite index",
            "plain": "an index",
        }[kind]
        if pattern and kind != "expression":
            what = "a pattern-ops index"
        keys_text = ", ".join(k.label() for k in c.keys)
        summary_parts = [
            f"{len(fids)} statement(s), {calls} call(s), {total:,.0f} ms ({share:.1%} of statement time) "
            f"filter or sort {c.table} on {keys_text}; no existing index serves them."
        ]
        if c.extends:
            summary_parts.append(
                f"Existing {', '.join(sorted(c.extends))} serves only the equality part; this index extends it."
            )
        if write_note:
            summary_parts.append(write_note)
        if inferred_model:
            summary_parts.append(
                "Model and field names are inferred from Django's table naming (no model dump)."
            )
        evidence_items: list[dict[str, Any]] = [
            {
                "fingerprint_id": f,
                "fingerprint": _short(str(by_fid.at[f, "fingerprint"])),
                "calls": int(_num(by_fid.at[f, "calls"]) or 0),
                "total_ms": round(_num(by_fid.at[f, "total_ms"]) or 0.0, 3),
            }
            for f in fids
        ]
        evidence_items += [{"plan_node": p} for p in plan_items]
        strength = (
            EvidenceStrength.STATISTICS
            if (plan_items or has_table_stats)
            else EvidenceStrength.PATTERN
        )
        note = "; ".join(c.explanation)
        if c.dropped:
            note += ". Left out: " + "; ".join(c.dropped)
        if c.served:
            note += ". Also serves the lookups on " + "; ".join(c.served)
        metrics: dict[str, Any] = {
            "statements": len(fids),
            "calls": calls,
            "total_ms": round(total, 3),
            "share": round(share, 4),
            "endpoints": len(eps),
            "estimated_size_bytes": size,
            "table_rows": info.rows if info else None,
            "table_seq_scans": info.seq_scan if info else None,
            "plan_seq_scans": len(plan_items),
            "write_ratio": write_ratio,
            "keys": keys_text,
            "kind": "pattern_ops" if pattern and kind != "expression" else kind,
            "index_name": name,
            "explanation": " | ".join(c.explanation),
            "estimated_saving_ms": round(saving, 3),
            "endpoint_list": ", ".join(eps[:10]) if eps else None,
            "app_label": app,
            "model": model,
            "inferred_model": inferred_model,
            "latest_migration": django.latest.get(app),
        }
        out.append(
            Finding(
                check="missing_index",
                severity=sev,
                title=f"Add {what} on {c.table} ({keys_text})",
                summary=" ".join(summary_parts),
                subject=Subject(
                    table=c.table,
                    columns=cols,
                    index=name,
                    expression=kind,
                    fingerprint_id=fids[0] if len(fids) == 1 else None,
                ),
                metrics=metrics,
                recommendation=Recommendation(
                    summary=(
                        f"Create {name} concurrently (no write lock), then add the Meta.indexes entry to "
                        f"{model} so Django's state matches. " + "; ".join(c.explanation) + "."
                    ),
                    sql=ddl,
                    django=django_entry
                    if not imports
                    else "\n".join(imports) + "\n" + django_entry,
                    migration=migration,
                ),
                evidence=Evidence(strength=strength, items=tuple(evidence_items), note=note),
                impact_ms=impact,
                chapter="indexing",
            )
        )
    return sorted(out, key=lambda f: (-int(f.severity), -(f.impact_ms or 0.0), f.title))


def _short(fp: str, n: int = 300) -> str:
    return fp if len(fp) <= n else fp[: n - 1] + "…"


def _write_tradeoff(
    info: _TableInfo | None, existing: Sequence[IndexInfo], t: Mapping[str, Any]
) -> tuple[str | None, float | None]:
    if info is None or info.writes is None:
        return None, None
    reads = (info.seq_scan or 0) + (info.idx_scan or 0)
    ratio = info.writes / reads if reads else (math.inf if info.writes else 0.0)
    n = len([i for i in existing if not i.declared_only])
    if info.writes and ratio >= t["write_heavy_ratio"]:
        return (
            f"Write cost: {info.table} took {info.writes:,.0f} row writes against {reads:,.0f} scans since the "
            f"statistics reset; every insert (and every update that changes an indexed column) also writes "
            f"this index, on top of the {n} existing one(s) — weigh the read saving against that."
        ), ratio
    if info.writes:
        return (
            f"Write cost: {info.writes:,.0f} row writes since the reset ({n} existing index(es)); "
            "the read saving outweighs it."
        ), ratio
    return None, ratio


# --------------------------------------------------------------------------------------------
# DDL, Django, migrations
# --------------------------------------------------------------------------------------------
def _index_name(c: _Candidate, django: _Django) -> str:
    cols = []
    for k in c.keys:
        base = k.column if k.expression_sql is None else f"{k.column}_{(k.function or 'expr')[:5]}"
        if k.opclass:
            base += "_pattern"
        cols.append(("-" if k.descending else "") + base)
    return meta_index_name(c.table, cols)


def _ddl(c: _Candidate, name: str, dialect: Dialect) -> str:
    keys = ", ".join(k.ddl() for k in c.keys)
    if dialect == "mysql":
        keys = keys.replace('"', "`")
        return f"CREATE INDEX `{name}` ON `{c.table}` ({keys}) ALGORITHM=INPLACE LOCK=NONE;"
    return f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{c.table}" ({keys});'


def _django_expression(k: CandidateKey, field_name: str) -> tuple[str, list[str]] | None:
    f = json.dumps(field_name)
    if k.function == "upper":
        return f"Upper({f})", ["from django.db.models.functions import Upper"]
    if k.function == "lower":
        return f"Lower({f})", ["from django.db.models.functions import Lower"]
    if k.function == "date_trunc" and k.unit:
        return f"Trunc({f}, {json.dumps(k.unit)})", ["from django.db.models.functions import Trunc"]
    if k.function == "date":
        return f"TruncDate({f})", ["from django.db.models.functions import TruncDate"]
    return None


def _django_index(c: _Candidate, name: str, django: _Django) -> tuple[str, list[str]]:
    """The ``models.Index(...)`` entry (and the imports it needs)."""
    fields = [django.field_of(c.table, k.column) for k in c.keys]
    if not any(k.expression_sql for k in c.keys):
        names = [("-" if k.descending else "") + f for k, f in zip(c.keys, fields, strict=True)]
        args = f"fields={json.dumps(names)}, name={json.dumps(name)}"
        if any(k.opclass for k in c.keys):
            args += f", opclasses={json.dumps([k.opclass or '' for k in c.keys])}"
        return f"models.Index({args})", []
    parts: list[str] = []
    imports: list[str] = []
    for k, f in zip(c.keys, fields, strict=True):
        if k.expression_sql is None:
            expr = f"F({json.dumps(f)})"
            imports.append("from django.db.models import F")
        else:
            rendered = _django_expression(k, f)
            if rendered is None:
                return (
                    f"# {k.expression_sql} has no Django expression equivalent here: create the index with "
                    f"migrations.RunSQL (see the migration) instead of Meta.indexes"
                ), []
            expr, imp = rendered
            imports += imp
        if k.descending:
            expr += ".desc()"
        if k.opclass:
            expr = f"OpClass({expr}, name={json.dumps(k.opclass)})"
            imports.append("from django.contrib.postgres.indexes import OpClass")
        parts.append(expr)
    return f"models.Index({', '.join(parts)}, name={json.dumps(name)})", sorted(set(imports))


@dataclass(frozen=True)
class _MigrationOp:
    """One index a migration adds: the Meta.indexes entry (None → RunSQL with ``ddl``)."""

    model_name: str
    entry: str | None
    imports: tuple[str, ...]
    ddl: str
    name: str


def _migration(app: str, ops: Sequence[_MigrationOp], latest: str | None, dialect: Dialect) -> str:
    """A complete migration file adding the indexes of ``ops`` to app ``app``."""
    if latest:
        dep_line = f"        ({json.dumps(app)}, {json.dumps(latest)}),\n"
    else:
        dep_line = f'        ({json.dumps(app)}, "XXXX_latest"),  # replace with {app}\'s latest migration\n'
    number = _next_number(latest) if latest else "XXXX"
    suffix = ops[0].name if len(ops) == 1 else "auditkit_indexes"
    imports = {"from django.db import migrations, models"}
    lines: list[str] = []
    postgres = dialect == "postgres"
    for op in ops:
        if op.entry is None:
            create = op.ddl.replace(" IF NOT EXISTS", "").rstrip(";")
            drop = (
                f'DROP INDEX CONCURRENTLY IF EXISTS "{op.name}"'
                if postgres
                else f"DROP INDEX `{op.name}`"
            )
            lines.append(
                f"        migrations.RunSQL(\n            sql={json.dumps(create)},\n"
                f"            reverse_sql={json.dumps(drop)},\n        ),\n"
            )
            continue
        imports |= set(op.imports)
        kind = "AddIndexConcurrently" if postgres else "migrations.AddIndex"
        lines.append(
            f"        {kind}(\n            model_name={json.dumps(op.model_name)},\n"
            f"            index={op.entry},\n        ),\n"
        )
    if postgres and any(op.entry is not None for op in ops):
        imports.add("from django.contrib.postgres.operations import AddIndexConcurrently")
    header = (
        f"# Generated by auditkit. Save as {app}/migrations/{number}_{suffix}.py and add the same\n"
        "# models.Index entries to the models' Meta.indexes, so that makemigrations finds nothing to do.\n"
    )
    contrib = sorted(i for i in imports if i.startswith("from django.contrib"))
    rest = sorted(i for i in imports if not i.startswith("from django.contrib"))
    atomic = (
        "    # CREATE INDEX CONCURRENTLY cannot run inside a transaction\n    atomic = False\n\n"
        if postgres
        else ""
    )
    return (
        f"{header}" + "\n".join(contrib + rest) + "\n\n\nclass Migration(migrations.Migration):\n"
        f"{atomic}    dependencies = [\n{dep_line}    ]\n\n    operations = [\n{''.join(lines)}    ]\n"
    )


def _next_number(name: str) -> str:
    m = re.match(r"(\d+)_", name)
    return f"{int(m.group(1)) + 1:04d}" if m else "XXXX"


def _op_of(finding: Finding) -> _MigrationOp | None:
    rec = finding.recommendation
    if finding.check != "missing_index" or rec is None or not rec.sql:
        return None
    lines = (rec.django or "").splitlines()
    imports = tuple(ln for ln in lines if ln.startswith("from "))
    entry = next((ln for ln in lines if ln.startswith("models.Index")), None)
    model = str(finding.metrics.get("model") or "")
    return _MigrationOp(model.lower(), entry, imports, rec.sql, str(finding.subject.index))


def combined_migration(
    findings: Sequence[Finding],
    *,
    dependency: tuple[str, str] | None = None,
    dialect: Dialect = "postgres",
) -> dict[str, str]:
    """One migration per app adding the index of every ``missing_index`` finding (app → file text).

    Each finding's own ``recommendation.migration`` depends on the app's latest migration;
    applying several of them would leave the app with two leaf migrations, so this puts them in
    one. ``dependency`` ``(app, migration)`` overrides the latest migration of that app.
    """
    per_app: dict[str, list[_MigrationOp]] = {}
    latest: dict[str, str | None] = {}
    for f in findings:
        op = _op_of(f)
        if op is None:
            continue
        app = str(f.metrics.get("app_label") or "")
        per_app.setdefault(app, []).append(op)
        latest.setdefault(app, _text(f.metrics.get("latest_migration")))
    if dependency is not None and dependency[0] in latest:
        latest[dependency[0]] = dependency[1]
    return {app: _migration(app, ops, latest[app], dialect) for app, ops in per_app.items()}


# --------------------------------------------------------------------------------------------
# validation with HypoPG
# --------------------------------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"%\([A-Za-z0-9_]+\)s|%s|\$\d+|\?")


def _explainable(row: Mapping[str, Any], generic: bool) -> tuple[str, bool] | None:
    """(SQL, needs GENERIC_PLAN) for a statement row, or None when it cannot be planned."""
    sample = _text(row.get("sample_sql"))
    fp = _text(row.get("fingerprint"))
    for text in (sample, fp):
        if text is None:
            continue
        probe = re.sub(r"'(?:[^']|'')*'", "''", text)
        if not _PLACEHOLDER.search(probe) and "(...)" not in probe:
            return text.strip().rstrip(";"), False
    if generic:
        base = sample or fp
        if base is None:
            return None
        taken = [int(n) for n in re.findall(r"\$(\d+)", base)]
        counter = iter(range(max(taken, default=0) + 1, 100_000))
        sql = re.sub(r"\(\.\.\.\)", "(?)", base)
        sql = _PLACEHOLDER.sub(
            lambda m: m.group(0) if m.group(0).startswith("$") else f"${next(counter)}", sql
        )
        return sql.strip().rstrip(";"), True
    return None


def _plan_summary(plan: Mapping[str, Any]) -> tuple[float, str, set[str]]:
    """(total cost, one-line node path, index names used) of an EXPLAIN (FORMAT JSON) plan."""
    root = plan["Plan"]
    names: set[str] = set()
    parts: list[str] = []

    def walk(node: Mapping[str, Any], depth: int) -> None:
        label = str(node.get("Node Type"))
        if node.get("Index Name"):
            names.add(str(node["Index Name"]))
            label += f" using {node['Index Name']}"
        if node.get("Relation Name"):
            label += f" on {node['Relation Name']}"
        parts.append(("  " * depth) + label)
        for child in node.get("Plans") or []:
            walk(child, depth + 1)

    walk(root, 0)
    return float(root.get("Total Cost") or 0.0), " > ".join(p.strip() for p in parts), names


def validate_with_hypopg(
    candidates: Sequence[Finding],
    dsn: str | None,
    statements: pd.DataFrame,
    config: AuditConfig | None = None,
    *,
    keep_rejected: bool = False,
) -> list[Finding]:
    """Confirm candidates with hypothetical indexes (HypoPG) and before/after planner costs.

    Inside one READ ONLY transaction (``default_transaction_read_only=on``; HypoPG writes
    nothing), each candidate is created with ``hypopg_create_index`` and every statement it is
    meant to help is planned with ``EXPLAIN`` (no ANALYZE) before and after. A statement without
    literals is planned with ``EXPLAIN (GENERIC_PLAN)`` on PostgreSQL 16+ and otherwise from its
    ``sample_sql``. A candidate is kept when the call-weighted cost falls by at least the
    preset's ``min_cost_reduction`` and the planner uses the index; it then carries the costs and
    plan shapes as evidence of strength ``validated``. Rejected candidates are dropped (or, with
    ``keep_rejected``, returned at severity info with the reason). Without ``dsn``, or when
    HypoPG is not installed in the database, the candidates come back unchanged with a note
    saying so (strength stays ``statistics`` or ``pattern``).
    """
    cfg = config or AuditConfig()
    t = cfg.thresholds("index")
    cands = [c for c in candidates if c.check == "missing_index"]
    others = [c for c in candidates if c.check != "missing_index"]
    if not cands:
        return list(candidates)
    if not dsn:
        return [_noted(c, "not validated: no database was given") for c in cands] + others
    import psycopg

    by_fid = (
        statements.drop_duplicates("fingerprint_id").set_index("fingerprint_id")
        if len(statements)
        else pd.DataFrame()
    )
    out: list[Finding] = []
    try:
        conn = psycopg.connect(
            dsn,
            options="-c default_transaction_read_only=on -c statement_timeout=30000",
            autocommit=False,
            application_name="auditkit-hypopg",
            connect_timeout=10,
        )
    except psycopg.Error as exc:
        from auditkit.collect.postgres import scrub_secrets

        # never the DSN: the reason only, with any password blanked
        reason = scrub_secrets(
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, dsn
        )
        return [
            _noted(c, f"not validated: cannot connect to the database ({reason})") for c in cands
        ] + others
    with conn:
        conn.read_only = True
        conn.execute("SET TRANSACTION READ ONLY")
        row = conn.execute(
            "SELECT current_setting('server_version_num')::int, "
            "(SELECT extversion FROM pg_extension WHERE extname = 'hypopg')"
        ).fetchone()
        assert row is not None
        version, hypopg = int(row[0]), row[1]
        if hypopg is None:
            note = (
                "not validated: the HypoPG extension is not installed in this database "
                "(CREATE EXTENSION hypopg, as its owner, enables what-if validation); advice rests on statistics"
            )
            return [_noted(c, note) for c in cands] + others
        generic = version >= 160000
        for cand in cands:
            checked = _validate_one(conn, cand, by_fid, generic, t, keep_rejected)
            if checked is not None:
                out.append(checked)
        with contextlib.suppress(Exception):
            conn.execute("SELECT hypopg_reset()")
        conn.rollback()
    return out + others


_LIMIT = re.compile(r"(?is)\s+LIMIT\s+(?:\d+|\$\d+|ALL)(?:\s+OFFSET\s+(?:\d+|\$\d+))?\s*$")


def _savepoint(conn: Any, sql: str, params: tuple[Any, ...] | None = None) -> Any:
    """The first row of ``sql``, run under a savepoint; the error text when it fails."""
    conn.execute("SAVEPOINT auditkit_hypo")
    try:
        row = conn.execute(sql, params).fetchone()
    except Exception as exc:
        conn.execute("ROLLBACK TO SAVEPOINT auditkit_hypo")
        return str(exc).strip().splitlines()[0][:160]
    conn.execute("RELEASE SAVEPOINT auditkit_hypo")
    return row


def _explain(conn: Any, sql: str, generic: bool) -> dict[str, Any] | str:
    """The EXPLAIN (FORMAT JSON) plan of ``sql`` (no ANALYZE), or the error text."""
    explain = "EXPLAIN (FORMAT JSON, GENERIC_PLAN) " if generic else "EXPLAIN (FORMAT JSON) "
    row = _savepoint(conn, explain + sql)
    return row if isinstance(row, str) else row[0][0]


def validation_plans(finding: Finding) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(fingerprint id, plan before, plan after) as ``plan_nodes`` frames, for each statement a
    :func:`validate_with_hypopg` finding re-planned — ready for :func:`auditkit.plans.compare_plans`.

    The plans travel inside the finding (evidence items), so this needs no database.
    """
    from auditkit.loaders._explain_nodes import plans_frame
    from auditkit.loaders.explain import read_plans

    out: list[tuple[str, pd.DataFrame, pd.DataFrame]] = []
    for item in finding.evidence.items:
        if "plan_before_json" not in item or "plan_after_json" not in item:
            continue
        frames = []
        for side in ("before", "after"):
            plans, _failures = read_plans(str(item[f"plan_{side}_json"]), "postgres")
            frames.append(
                plans_frame(
                    [(f"{item['fingerprint_id']}#{side}", p) for p in plans[:1]], f"hypopg:{side}"
                )
            )
        out.append((str(item["fingerprint_id"]), frames[0], frames[1]))
    return out


def _noted(f: Finding, note: str) -> Finding:
    ev = replace(f.evidence, note=(f.evidence.note + ". " if f.evidence.note else "") + note)
    return replace(f, evidence=ev, metrics={**f.metrics, "validation": note.split(":")[0]})


def _validate_one(
    conn: Any,
    cand: Finding,
    by_fid: pd.DataFrame,
    generic: bool,
    t: Mapping[str, Any],
    keep_rejected: bool,
) -> Finding | None:
    fids = [i["fingerprint_id"] for i in cand.evidence.items if "fingerprint_id" in i]
    sql_ddl = (cand.recommendation.sql if cand.recommendation else None) or ""
    hypo_ddl = re.sub(r"\s+CONCURRENTLY", "", sql_ddl, flags=re.I)
    hypo_ddl = re.sub(r'\s+IF NOT EXISTS\s+"[^"]*"', "", hypo_ddl, flags=re.I).rstrip(";")
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    total_before = total_after = 0.0
    used = False
    size = None
    # every statement planned as logged and, when it has a LIMIT, without it: the planner costs a
    # LIMIT as if matching rows were spread evenly, which hides the search a selective lookup
    # does (a LIMIT 1 over an ordered scan looks cheap however many rows it must read)
    targets: list[tuple[str, str, str, bool, float]] = []  # fid, variant, sql, generic, calls
    for fid in fids:
        if fid not in by_fid.index:
            skipped.append(f"{fid}: not in the statements given")
            continue
        row = by_fid.loc[fid].to_dict()
        target = _explainable(row, generic)
        if target is None:
            skipped.append(
                f"{fid}: no literals to plan with (PostgreSQL 16's GENERIC_PLAN would be needed)"
            )
            continue
        sql, gen = target
        calls = float(row.get("calls") or 1)
        targets.append((fid, "as logged", sql, gen, calls))
        unlimited = _LIMIT.sub("", sql)
        if unlimited != sql:
            targets.append((fid, "without LIMIT", unlimited, gen, calls))
    before = {(fid, v): _explain(conn, sql, gen) for fid, v, sql, gen, _ in targets}
    hypo = _savepoint(
        conn, "SELECT indexrelid, indexname FROM hypopg_create_index(%s)", (hypo_ddl,)
    )
    if isinstance(hypo, str):
        return _noted(cand, f"not validated: HypoPG could not create the index ({hypo})")
    after = {(fid, v): _explain(conn, sql, gen) for fid, v, sql, gen, _ in targets}
    size_row = _savepoint(conn, "SELECT hypopg_relation_size(%s)", (hypo[0],))
    size = float(size_row[0]) if not isinstance(size_row, str) else None
    _savepoint(conn, "SELECT hypopg_drop_index(%s)", (hypo[0],))
    per_fid: dict[str, list[dict[str, Any]]] = {}
    for fid, variant, _sql, gen, calls in targets:
        b, a = before[(fid, variant)], after[(fid, variant)]
        if isinstance(b, str) or isinstance(a, str):
            skipped.append(f"{fid} ({variant}): {b if isinstance(b, str) else a}")
            continue
        cost_b, path_b, _ = _plan_summary(b)
        cost_a, path_a, names = _plan_summary(a)
        per_fid.setdefault(fid, []).append(
            {
                "fingerprint_id": fid,
                "variant": variant,
                "calls": calls,
                "cost_before": round(cost_b, 2),
                "cost_after": round(cost_a, 2),
                "uses_index": any(str(hypo[1]) in n for n in names),
                "plan_before": path_b[:300],
                "plan_after": path_a[:300],
                "generic_plan": gen,
                "_plans": (b, a),
            }
        )
    for _fid, variants in per_fid.items():
        usable = [v for v in variants if v["uses_index"] and v["cost_before"] > 0]
        best = (
            max(usable, key=lambda v: 1 - v["cost_after"] / v["cost_before"])
            if usable
            else variants[0]
        )
        used |= bool(usable)
        calls = float(best.pop("calls"))
        for v in variants:
            v.pop("calls", None)
            plans = v.pop("_plans")
            v["chosen"] = v is best
            if v is best:
                # the two plans themselves, compact, for a before/after comparison offline
                v["plan_before_json"] = json.dumps([plans[0]], separators=(",", ":"))
                v["plan_after_json"] = json.dumps([plans[1]], separators=(",", ":"))
        total_before += best["cost_before"] * calls
        total_after += (best["cost_after"] if best["uses_index"] else best["cost_before"]) * calls
        results += variants
    if not results:
        return _noted(
            cand, "not validated: " + "; ".join(skipped[:3] or ["no statement could be planned"])
        )
    reduction = 1.0 - total_after / total_before if total_before > 0 else 0.0
    metrics = {
        **cand.metrics,
        "cost_before": round(total_before, 2),
        "cost_after": round(total_after, 2),
        "cost_reduction": round(reduction, 4),
        "validation": "hypopg",
    }
    if size is not None:
        metrics["estimated_size_bytes"] = size
    items = tuple(i for i in cand.evidence.items if "fingerprint_id" not in i) + tuple(results)
    if used and reduction >= t["min_cost_reduction"]:
        total_ms = float(cand.metrics.get("total_ms") or 0.0)
        hours_factor = (
            cand.impact_ms / (total_ms * float(t["assumed_saving"]))
            if cand.impact_ms and total_ms
            else 1.0
        )
        note = (
            f"HypoPG: the planner uses the hypothetical index and the statements' cost falls from "
            f"{total_before:,.0f} to {total_after:,.0f} (−{reduction:.0%}, call-weighted)"
        )
        without_limit = [
            r["fingerprint_id"]
            for r in results
            if r.get("chosen") and r["variant"] == "without LIMIT"
        ]
        if without_limit:
            note += (
                f"; {len(without_limit)} statement(s) compared without their LIMIT, whose cost assumes matching "
                "rows are spread evenly and so hides the search"
            )
        if skipped:
            note += f"; not planned: {'; '.join(skipped[:3])}"
        sev = (
            _bump(cand.severity, 1)
            if reduction >= 0.9 and cand.severity < Severity.HIGH
            else cand.severity
        )
        return replace(
            cand,
            severity=sev,
            metrics=metrics,
            evidence=Evidence(
                EvidenceStrength.VALIDATED, items, note + ". " + (cand.evidence.note or "")
            ),
            impact_ms=total_ms * reduction * hours_factor,
        )
    reason = (
        "the planner does not use the hypothetical index"
        if not used
        else f"cost falls by only {reduction:.0%} (< {t['min_cost_reduction']:.0%})"
    )
    if not keep_rejected:
        return None
    return replace(
        cand,
        severity=Severity.INFO,
        title=f"Not confirmed: {cand.title}",
        metrics=metrics,
        evidence=Evidence(EvidenceStrength.VALIDATED, items, f"HypoPG: {reason}"),
        impact_ms=0.0,
    )


# --------------------------------------------------------------------------------------------
# unused and duplicate indexes
# --------------------------------------------------------------------------------------------
def _window(indexes: Iterable[IndexInfo], tables: Mapping[str, _TableInfo]) -> str:
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
        days = (end - start).total_seconds() / 86400
        text += (
            f" ({days:.1f} days)"
            if days >= 1
            else f" ({(end - start).total_seconds() / 3600:.1f} hours)"
        )
    return text


def _drop_recommendation(
    ix: IndexInfo, django: _Django, dialect: Dialect, why: str
) -> Recommendation:
    sql = (
        f"DROP INDEX CONCURRENTLY IF EXISTS {ix.qualified};"
        if dialect == "postgres"
        else f"ALTER TABLE `{ix.table}` DROP INDEX `{ix.name}`;"
    )
    app, model, inferred = django.model_of(ix.table)
    if ix.app_label and ix.model:
        app, model, inferred = ix.app_label, ix.model, False
    declared = ix.declared_by or ""
    dep = (app, django.latest[app]) if app in django.latest else None
    dep_line = (
        f"({json.dumps(dep[0])}, {json.dumps(dep[1])})"
        if dep
        else f'({json.dumps(app)}, "XXXX_latest")'
    )
    create = ix.definition or ""
    create = re.sub(
        r"^CREATE (UNIQUE )?INDEX ",
        lambda m: f"CREATE {m.group(1) or ''}INDEX CONCURRENTLY ",
        create,
    )
    if declared.startswith("Meta.indexes"):
        django_change = (
            f"Remove models.Index(..., name={json.dumps(ix.name)}) from {model}.Meta.indexes."
        )
        migration = (
            "# Generated by auditkit: drop an index declared in Meta.indexes without locking writes.\n"
            "from django.contrib.postgres.operations import RemoveIndexConcurrently\n"
            "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
            "    atomic = False\n\n"
            f"    dependencies = [\n        {dep_line},\n    ]\n\n"
            f"    operations = [\n        RemoveIndexConcurrently(model_name={json.dumps(model.lower())}, name={json.dumps(ix.name)}),\n    ]\n"
        )
    else:
        if "ForeignKey" in declared or "db_index" in declared:
            field_name = (
                ix.fields[0] if ix.fields else django.field_of(ix.table, ix.keys[0].column or "")
            )
            django_change = (
                f"Set db_index=False on {model}.{field_name}. makemigrations then writes an AlterField "
                "that drops the index inside a transaction (locking writes); the migration below drops "
                "it concurrently and records the same state change — paste the field's full definition."
            )
            state = (
                f"            state_operations=[\n                # migrations.AlterField(model_name={json.dumps(model.lower())}, "
                f"name={json.dumps(field_name)}, field=<the field, with db_index=False>),\n            ],\n"
            )
        elif "many-to-many" in declared:
            django_change = (
                "Django creates this index for an auto-created many-to-many through table; removing it "
                "needs an explicit through model. The SQL below drops it, but a later migration of the "
                "field could recreate it."
            )
            state = ""
        elif declared:
            django_change = (
                f"Declared by {declared}: change that declaration, then apply the migration below."
            )
            state = ""
        else:
            django_change = (
                "Not declared by any model (created by hand or by RunSQL): drop it with the migration below "
                "(or the SQL directly)."
            )
            state = ""
        migration = (
            "# Generated by auditkit: drop an index concurrently (no write lock).\n"
            "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
            "    atomic = False\n\n"
            f"    dependencies = [\n        {dep_line},\n    ]\n\n"
            "    operations = [\n        migrations.SeparateDatabaseAndState(\n"
            "            database_operations=[\n                migrations.RunSQL(\n"
            f"                    sql={json.dumps(sql)},\n"
            f"                    reverse_sql={json.dumps(create + ';' if create else _NO_REVERSE)},\n"
            "                ),\n            ],\n" + state + "        ),\n    ]\n"
        )
    if inferred:
        django_change += " (Model name inferred from Django's table naming.)"
    return Recommendation(
        summary=why,
        sql=sql,
        django=django_change,
        migration=migration if dialect == "postgres" else None,
    )


#: reverse SQL of a drop whose definition was not exported
_NO_REVERSE = "SELECT 1; -- the index definition was not exported: recreate it by hand"


def _size_text(b: float | None) -> str:
    if b is None:
        return "unknown size"
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if b < 1024 or unit == "TB":
            return f"{b:,.0f} {unit}" if unit == "bytes" else f"{b:,.1f} {unit}"
        b /= 1024
    return f"{b:,.1f} TB"


def _size_severity(size: float | None, t: Mapping[str, Any]) -> Severity:
    if size is None:
        return Severity.LOW
    if size >= t["unused_high_bytes"]:
        return Severity.HIGH
    if size >= t["unused_medium_bytes"]:
        return Severity.MEDIUM
    return Severity.LOW


def _write_overhead(info: _TableInfo | None) -> tuple[str, float | None]:
    """Rows whose write also wrote each index of the table: inserts and non-HOT updates."""
    if info is None or info.writes is None:
        return "its write cost is unknown (no pg_stat_user_tables export)", None
    # deletes do not touch indexes (vacuum does) and HOT updates skip them: count inserts and
    # the other updates when the export tells them apart
    w = info.index_writes if info.index_writes is not None else info.writes
    return f"{w:,.0f} row writes on {info.table} since the reset also wrote this index", w


def _physical(indexes: Sequence[IndexInfo]) -> list[IndexInfo]:
    return [i for i in indexes if not i.declared_only]


def unused_indexes(
    schema_indexes: pd.DataFrame,
    schema_tables: pd.DataFrame | None = None,
    config: AuditConfig | None = None,
    *,
    schema_columns: pd.DataFrame | None = None,
    dialect: Dialect = "postgres",
) -> list[Finding]:
    """``unused_index`` findings: indexes scanned at most ``unused_max_scans`` times.

    Primary keys, unique indexes and constraint-backing indexes are excluded (they enforce
    something), as are indexes of tables smaller than ``min_table_rows`` and indexes with an
    identical twin that is the one to keep (:func:`duplicate_indexes` reports those). The statistics
    window is stated; an invalid index (a failed ``CREATE INDEX CONCURRENTLY``) is always
    reported.
    """
    cfg = config or AuditConfig()
    t = cfg.thresholds("index")
    tables = _tables(schema_tables if schema_tables is not None else pd.DataFrame())
    indexes = _physical(existing_indexes(schema_indexes))
    django = _Django.build(
        schema_columns if schema_columns is not None else pd.DataFrame(columns=["inferred"]),
        tables,
        indexes,
        [],
    )
    window = _window(indexes, tables)
    out: list[Finding] = []
    for ix in indexes:
        if ix.idx_scan is None and ix.valid:
            continue
        if ix.primary or ix.unique or ix.constraint in ("p", "u", "x"):
            continue
        info = tables.get(ix.table)
        if ix.valid:
            if ix.idx_scan is not None and ix.idx_scan > t["unused_max_scans"]:
                continue
            if (
                info is not None
                and info.rows is not None
                and info.rows < t["min_table_rows"]
                and (ix.size_bytes or 0) < t["unused_medium_bytes"]
            ):
                continue
            # an identical twin that is kept: duplicate_indexes reports this one
            twin = [
                o
                for o in indexes
                if o is not ix
                and o.table == ix.table
                and o.valid
                and _signature(o) == _signature(ix)
                and _keep_rank(o) < _keep_rank(ix)
            ]
            if twin:
                continue
        overhead, writes = _write_overhead(info)
        if not ix.valid:
            title = f"Drop invalid index {ix.name} on {ix.table}"
            summary = (
                f"{ix.label()} is INVALID (left by a failed CREATE INDEX CONCURRENTLY): the planner never "
                f"uses it, yet every write still maintains it. {_size_text(ix.size_bytes)}; {overhead}."
            )
            sev = Severity.MEDIUM
        else:
            scans = int(ix.idx_scan or 0)
            title = f"Unused index {ix.name} on {ix.table}"
            summary = (
                f"{ix.label()} was scanned {scans} time(s) {window}. It takes {_size_text(ix.size_bytes)} "
                f"and {overhead}."
            )
            if ix.declared_by and ("ForeignKey" in ix.declared_by):
                summary += (
                    " It is Django's automatic foreign-key index: deleting or updating referenced rows "
                    "(ON DELETE CASCADE) looks rows up through it, so make sure that never happens at scale."
                )
            sev = _size_severity(ix.size_bytes, t)
        why = (
            f"Drop {ix.name}: unused {window}; it costs {_size_text(ix.size_bytes)} and write time."
        )
        recommendation = _drop_recommendation(ix, django, dialect, why)
        if ix.valid and _is_like_twin(ix):
            # Django's automatic varchar_pattern_ops twin: informational, not a drop
            title = (
                f"Unused LIKE index {ix.name} on {ix.table} (Django's automatic pattern-ops twin)"
            )
            summary += (
                " Django creates this index for every indexed or unique CharField/TextField on "
                "PostgreSQL; only LIKE 'prefix%' lookups (__startswith) use it."
            )
            sev = Severity.INFO
            recommendation = Recommendation(
                summary=(
                    "Nothing to drop by hand: removing it means changing the field (no db_index, or a "
                    "field type Django gives no LIKE index); a later AlterField would recreate a dropped one."
                ),
                django=f"Only if no __startswith/__contains lookup needs it: change the field behind {ix.name}.",
            )
        out.append(
            Finding(
                check="unused_index",
                severity=sev,
                title=title,
                summary=summary,
                subject=Subject(
                    table=ix.table, index=ix.name, columns=tuple(k.column or k.key for k in ix.keys)
                ),
                metrics={
                    "idx_scan": ix.idx_scan,
                    "size_bytes": ix.size_bytes,
                    "table_writes": writes,
                    "window": window,
                    "declared_by": ix.declared_by,
                    "valid": ix.valid,
                },
                recommendation=recommendation,
                evidence=Evidence(
                    EvidenceStrength.STATISTICS,
                    ({"index": ix.name, "definition": ix.definition, "idx_scan": ix.idx_scan},),
                    note=window,
                ),
                impact_ms=None,
                chapter="indexing",
            )
        )
    return sorted(
        out, key=lambda f: (-int(f.severity), -(_num(f.metrics.get("size_bytes")) or 0.0))
    )


def _is_like_twin(ix: IndexInfo) -> bool:
    """Django's automatic ``…_like`` (varchar/text_pattern_ops) index of a CharField/TextField."""
    if ix.declared_by and "LIKE twin" in ix.declared_by:
        return True
    cols = [k.column for k in ix.keys if k.column]
    return (
        len(cols) == 1
        and all(k.pattern_ops for k in ix.keys)
        and is_auto_index_name(ix.name, ix.table, cols) == "_like"
    )


def _signature(ix: IndexInfo) -> tuple[Any, ...]:
    return (
        ix.method,
        tuple((k.key, k.opclass, k.descending) for k in ix.keys),
        ix.predicate or "",
        ix.include,
    )


def _keep_rank(ix: IndexInfo) -> tuple[int, int, int, float, str]:
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


def duplicate_indexes(
    schema_indexes: pd.DataFrame,
    schema_tables: pd.DataFrame | None = None,
    config: AuditConfig | None = None,
    *,
    schema_columns: pd.DataFrame | None = None,
    dialect: Dialect = "postgres",
) -> list[Finding]:
    """``duplicate_index`` findings: identical indexes, and redundant prefixes of another index.

    *Identical*: same table, method, keys (operator classes and order), predicate and INCLUDE
    columns; the one kept is the primary key, else a unique or constraint index, else the one
    Django declares for a field, else the most scanned. *Redundant*: a non-unique btree index
    whose keys are a leading prefix of another valid btree index with the same predicate (that
    index serves every lookup the shorter one serves). ``subject.expression`` says which.
    """
    cfg = config or AuditConfig()
    t = cfg.thresholds("index")
    tables = _tables(schema_tables if schema_tables is not None else pd.DataFrame())
    indexes = _physical(existing_indexes(schema_indexes))
    django = _Django.build(
        schema_columns if schema_columns is not None else pd.DataFrame(columns=["inferred"]),
        tables,
        indexes,
        [],
    )
    out: list[Finding] = []
    flagged: set[tuple[str, str]] = set()
    by_table: dict[str, list[IndexInfo]] = {}
    for ix in indexes:
        by_table.setdefault(ix.table, []).append(ix)
    for table, group in by_table.items():
        info = tables.get(table)
        sigs: dict[tuple[Any, ...], list[IndexInfo]] = {}
        for ix in group:
            if ix.valid:
                sigs.setdefault(_signature(ix), []).append(ix)
        for same in sigs.values():
            if len(same) < 2:
                continue
            keep = sorted(same, key=_keep_rank)[0]
            for ix in same:
                if ix is keep or ix.primary or ix.constraint in ("p", "u", "x"):
                    continue
                flagged.add((table, ix.name))
                out.append(_dup_finding(ix, keep, "identical", info, django, dialect, t))
        for ix in group:
            if (
                (table, ix.name) in flagged
                or ix.unique
                or ix.primary
                or ix.method != "btree"
                or not ix.valid
            ):
                continue
            longer = [
                o
                for o in group
                if o is not ix
                and o.valid
                and o.method == "btree"
                and len(o.keys) > len(ix.keys)
                and (o.predicate or "") == (ix.predicate or "")
                and (table, o.name) not in flagged
                and all(
                    (a.key, a.opclass, a.descending) == (b.key, b.opclass, b.descending)
                    for a, b in zip(ix.keys, o.keys, strict=False)
                )
            ]
            if longer:
                host = sorted(longer, key=lambda o: (len(o.keys), o.name))[0]
                flagged.add((table, ix.name))
                out.append(_dup_finding(ix, host, "redundant prefix", info, django, dialect, t))
    return sorted(
        out, key=lambda f: (-int(f.severity), -(_num(f.metrics.get("size_bytes")) or 0.0))
    )


def _dup_finding(
    ix: IndexInfo,
    other: IndexInfo,
    kind: str,
    info: _TableInfo | None,
    django: _Django,
    dialect: Dialect,
    t: Mapping[str, Any],
) -> Finding:
    overhead, writes = _write_overhead(info)
    if kind == "identical":
        title = f"Duplicate index {ix.name} on {ix.table}"
        summary = (
            f"{ix.label()} is identical to {other.label()}: the planner needs only one. "
            f"It takes {_size_text(ix.size_bytes)} and {overhead}."
        )
    else:
        title = f"Redundant index {ix.name} on {ix.table}"
        summary = (
            f"{ix.label()} is a leading prefix of {other.label()}, which serves every lookup it serves. "
            f"It takes {_size_text(ix.size_bytes)} and {overhead}."
        )
    if ix.declared_by:
        summary += f" Declared by {ix.declared_by}."
    sev = _size_severity(ix.size_bytes, t)
    if "many-to-many" in (ix.declared_by or ""):
        sev = Severity.INFO
    why = f"Drop {ix.name}; keep {other.name}."
    return Finding(
        check="duplicate_index",
        severity=sev,
        title=title,
        summary=summary,
        subject=Subject(
            table=ix.table,
            index=ix.name,
            columns=tuple(k.column or k.key for k in ix.keys),
            expression=kind,
        ),
        metrics={
            "size_bytes": ix.size_bytes,
            "idx_scan": ix.idx_scan,
            "kept_index": other.name,
            "kept_idx_scan": other.idx_scan,
            "table_writes": writes,
            "declared_by": ix.declared_by,
        },
        recommendation=_drop_recommendation(ix, django, dialect, why),
        evidence=Evidence(
            EvidenceStrength.STATISTICS if ix.definition else EvidenceStrength.PATTERN,
            (
                {"index": ix.name, "definition": ix.definition},
                {"index": other.name, "definition": other.definition},
            ),
        ),
        chapter="indexing",
    )


# --------------------------------------------------------------------------------------------
# the chapter check
# --------------------------------------------------------------------------------------------
def check_indexing(client: Any, config: AuditConfig) -> list[Finding]:
    """The indexing-chapter check over a loaded client: candidates, unused and duplicate indexes.

    Candidates need a query profile; unused and duplicate indexes need catalog exports. Plan
    evidence and endpoints are used when the client has them. (Validation with HypoPG needs a
    live database: call :func:`validate_with_hypopg` with the chapter's DSN.)
    """
    out: list[Finding] = []
    tables = client.frame("schema_tables")
    indexes = client.frame("schema_indexes")
    columns = client.frame("schema_columns")
    profile, _source = client.query_profile()
    if len(profile):
        events = client.query_events("requests")
        dialect: Dialect = "mysql" if "mysql_slow" in client.sources("query_events") else "postgres"
        out += index_candidates(
            profile,
            tables,
            indexes,
            columns,
            client.frame("plan_nodes"),
            config,
            column_stats=client.frame("column_stats"),
            events=events,
            dialect=dialect,
        )
    if len(indexes):
        out += unused_indexes(indexes, tables, config, schema_columns=columns)
        out += duplicate_indexes(indexes, tables, config, schema_columns=columns)
    return out
