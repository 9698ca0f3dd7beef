"""What a statement needs of an index: keys per table reference, and whether an index serves them.

Per table reference of a parsed statement (:mod:`auditkit.sql.analyze`): the equality, range,
sort and expression keys it needs, ordered **equality → range → sort** and explained per column
(:func:`_needs_of_scope`), with MySQL's key-prefix rule for TEXT columns; and how far an
existing index covers them by its leading columns (:func:`_coverage`). The candidates built
from these needs are :mod:`auditkit.checks.indexes.candidates`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from auditkit.analysis.catalog import (
    ColumnStats,
    IndexInfo,
    TableInfo,
    as_text,
    records,
)
from auditkit.analysis.code import CodeMap
from auditkit.checks.indexes.ddl import CandidateKey
from auditkit.findings import plural
from auditkit.sql.analyze import IndexKey
from auditkit.sql.fingerprint import Dialect

_EQ_ROLES = ("eq", "null", "in")
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


@dataclass
class _Need:
    table: str
    keys: list[CandidateKey]
    explanation: list[str]
    fingerprint_id: str
    dropped: list[str] = field(default_factory=list)


def _opclass(table: str, column: str, expression: bool, code: CodeMap) -> str:
    if expression:
        return "text_pattern_ops"
    ftype = code.field_type(table, column)
    if ftype == "TextField":
        return "text_pattern_ops"
    return "varchar_pattern_ops" if ftype in _VARCHAR_TYPES or ftype is None else "text_pattern_ops"


def _key_of(
    u: Mapping[str, Any], role: str, code: CodeMap, *, descending: bool = False
) -> CandidateKey:
    expr = as_text(u.get("expression_sql"))
    opclass = None
    if role == "like":
        opclass = _opclass(str(u["table"]), str(u["column"]), expr is not None, code)
    return CandidateKey(
        key=str(u["key"]),
        column=str(u["column"]),
        role=role,
        expression_sql=expr,
        function=as_text(u.get("function")),
        unit=as_text(u.get("unit")),
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
    elif k.role == "like" and not k.opclass:
        text = f"{name} — LIKE 'prefix%' (Django __startswith/__istartswith): the index seeks to the prefix"
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
    if k.prefix:
        text += (
            f"; MySQL indexes a TEXT column only by a prefix: its first {k.prefix} characters "
            "(at most 767 bytes in utf8mb4 on every row format), enough to tell most values apart"
        )
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
    stats: Mapping[tuple[str, str], ColumnStats], table: str, k: CandidateKey
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
    code: CodeMap,
    stats: Mapping[tuple[str, str], ColumnStats],
    tables: Mapping[str, TableInfo],
    t: Mapping[str, Any],
    pks: Mapping[str, set[str]],
    dialect: Dialect = "postgres",
) -> list[_Need]:
    needs: list[_Need] = []
    limit = bool(scope_uses["limit"].iloc[0])
    order_rows = scope_uses[scope_uses["role"] == "order"]
    order_aliases = set(order_rows["alias"].dropna())
    for alias, uses in scope_uses.groupby("alias", sort=False, dropna=False):
        table = str(uses["table"].iloc[0])
        recs = records(uses)
        eq = _unique_keys(
            [_key_of(u, str(u["role"]), code) for u in recs if u["role"] in _EQ_ROLES]
        )
        like = _unique_keys(
            [
                _key_of(u, "like", code)
                for u in recs
                if u["role"] == "like" and u.get("pattern") in ("prefix", "exact", "unknown")
            ]
        )
        ranges = _unique_keys([_key_of(u, "range", code) for u in recs if u["role"] == "range"])
        joins = _unique_keys([_key_of(u, "join", code) for u in recs if u["role"] == "join"])
        orders = [
            _key_of(u, "order", code, descending=bool(u["descending"]))
            for u in sorted(
                (u for u in recs if u["role"] == "order"), key=lambda u: u["position"] or 0
            )
        ]
        groups = [
            _key_of(u, "group", code)
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
        if (
            dialect == "mysql"
            and seek
            and rng is None
            and sort
            and all(k.role == "order" and k.column in pks.get(table, {"id"}) for k in sort)
            and len({k.descending for k in sort}) == 1
        ):
            # InnoDB ends every secondary index with the primary key: rows with equal keys
            # already come out in primary-key order, either way round
            dropped.append(
                f"ORDER BY {', '.join(k.label() for k in sort)} (InnoDB appends the primary key to "
                "every secondary index, so the equality keys already deliver rows in that order)"
            )
            sort = []
        rows_left = _rows_after(table, seek, stats, tables)
        if sort and seek and rows_left is not None and rows_left <= t["sort_skip_rows"]:
            dropped.append(
                f"ORDER BY/GROUP BY {', '.join(k.label() for k in sort)} (equality leaves ~{plural(rows_left, 'row')} per value: sorting them is cheap)"
            )
            sort = []
        keys = seek + ([rng] if rng else []) + sort
        if not seek and rng is None and not (sort and limit and sort[0].role == "order"):
            keys = []
        keys = _dedupe(keys)[: int(t["max_columns"])]
        if dialect == "mysql":
            keys = [_mysql_key(k, table, code, t) for k in keys]
            eq = [_mysql_key(k, table, code, t) for k in eq]
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


#: Django fields MySQL stores as TEXT/BLOB: an index on them needs a key prefix length
_MYSQL_TEXT_TYPES = {"TextField", "BinaryField", "JSONField"}


def _mysql_key(k: CandidateKey, table: str, code: CodeMap, t: Mapping[str, Any]) -> CandidateKey:
    """A key in MySQL's terms: no operator class (a plain index serves LIKE 'x%'), and a prefix
    length for a TEXT column, which MySQL cannot index whole (error 1170)."""
    prefix = None
    if k.expression_sql is None and code.field_type(table, k.column) in _MYSQL_TEXT_TYPES:
        prefix = int(t["mysql_text_prefix_chars"])
    return replace(k, opclass=None, prefix=prefix)


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
    stats: Mapping[tuple[str, str], ColumnStats],
    tables: Mapping[str, TableInfo],
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
        # PostgreSQL needs a pattern-ops index for LIKE 'x%'; MySQL's plain index serves it
        return ikey.pattern_ops if need_key.opclass else not ikey.pattern_ops
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
