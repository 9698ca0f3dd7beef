"""Index candidates: the indexes the workload needs and no existing index provides.

From the workload's statements (``statement_stats``), each distinct statement parsed once
(:mod:`auditkit.sql.analyze`), per table reference: the equality, range, sort and expression
keys it needs, ordered **equality → range → sort** and explained per column; skipped when an
existing index already serves them by its leading columns — Django's automatic foreign-key
indexes, unique constraints and primary keys included, and where no catalog was exported the
keys a model dump, Django's own apps or Django's ``id`` default imply; an expression
(``UPPER(email)`` from ``__iexact``) gets an expression index and a ``LIKE 'x%'`` a pattern-ops
index — never a plain index that the planner could not use.

Each candidate is a ``missing_index`` Finding: its :class:`~auditkit.findings.Impact` (half of
its statements' time, an estimate stated as such, until the planner validates it — see
:mod:`auditkit.checks.indexes.hypopg`), the ``CREATE INDEX CONCURRENTLY`` statement, the
``models.Index(...)`` entry for the model's ``Meta.indexes`` and the migration operation
(:mod:`auditkit.checks.indexes.ddl`), all in the client's model and field names.

Thresholds are the ``index`` family of :mod:`auditkit.config` (presets ``default``, ``dexter``,
``pghero``, ``powa``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from auditkit.analysis.catalog import (
    Catalog,
    ColumnStats,
    IndexInfo,
    TableInfo,
    as_number,
    as_text,
    records,
)
from auditkit.analysis.code import CodeMap, joins_of
from auditkit.checks.indexes.ddl import (
    CandidateKey,
    ddl_statement,
    index_name,
    meta_index_entry,
    migration_operation,
)
from auditkit.checks.severity import of_impact
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Impact,
    Recommendation,
    Subject,
    plural,
)
from auditkit.sql.analyze import IndexKey, WorkloadAnalysis, analyze_workload, is_system_relation
from auditkit.sql.fingerprint import Dialect

__all__ = ["CandidateKey", "candidates", "index_candidates", "narrow"]

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
    """``missing_index`` findings for the workload in ``stats`` (a ``statement_stats`` frame),
    straight from canonical frames.

    ``column_stats`` (pg_stats) orders equality columns by selectivity and sizes candidates;
    ``events`` (query events with ``endpoint``) names the endpoints a candidate helps;
    ``plan_nodes`` supplies plan evidence. The audit calls :func:`candidates` with the frames
    it derived once; this builds them from the raw frames.
    """
    from auditkit.analysis.requests import statement_endpoints

    if len(stats) == 0:
        return []
    fps = stats["fingerprint"].dropna().astype(str).tolist()
    wa = analysis or analyze_workload(stats, dialect, known_columns=_known_columns(schema_columns))
    seen = (
        {(str(a), str(b)) for a, b in zip(wa.uses["table"], wa.uses["column"], strict=False)}
        if len(wa.uses)
        else set()
    )
    code = CodeMap.build(
        schema_columns,
        schema_tables,
        schema_indexes,
        tables={t for t, _ in seen},
        joins=joins_of(fps),
        seen_columns=seen,
    )
    catalog = Catalog.build(schema_indexes, schema_tables, column_stats, code)
    endpoints = statement_endpoints(events) if events is not None and len(events) else None
    return candidates(
        stats,
        catalog,
        code,
        config,
        plan_nodes=plan_nodes,
        statement_endpoints=endpoints,
        dialect=dialect,
        analysis=wa,
    )


def candidates(
    profile: pd.DataFrame,
    catalog: Catalog,
    code: CodeMap,
    config: AuditConfig | None = None,
    *,
    plan_nodes: pd.DataFrame | None = None,
    statement_endpoints: pd.DataFrame | None = None,
    total_ms: float | None = None,
    window_s: float | None = None,
    source: str | None = None,
    dialect: Dialect = "postgres",
    analysis: WorkloadAnalysis | None = None,
    digests: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
) -> list[Finding]:
    """``missing_index`` findings for the workload's ``profile`` (a ``statement_stats`` frame).

    On MySQL/MariaDB, ``digests`` (``events_statements_summary_by_digest``, the delta of its
    snapshots) and ``events`` (the slow log's statements) add the server's own evidence to a
    candidate: executions that used no index or scanned in full, rows examined against rows
    sent; EXPLAIN plans (``plan_nodes``) add the full scan (access type ``ALL`` or ``index``),
    filesort and temporary tables.

    ``total_ms`` (all database time of the window, default: the profile's) and ``window_s``
    (default: the profile's first to last execution) put each saving in the shared impact
    unit, timed by ``source``. ``statement_endpoints`` (fingerprint → endpoints with calls and
    requests) names the pages a candidate helps. Findings come back ranked, most valuable
    first; already-covered lookups yield none.
    """
    cfg = config or AuditConfig()
    t = cfg.thresholds("index")
    if len(profile) == 0:
        return []
    work = profile[
        (profile["calls"].fillna(0) >= t["min_calls"])
        & (profile["total_ms"].fillna(0) >= t["min_total_ms"])
    ]
    if len(work) == 0:
        return []
    wa = analysis or analyze_workload(work, dialect)
    uses = (
        wa.uses[wa.uses["fingerprint_id"].isin(set(work["fingerprint_id"].astype(str)))]
        if len(wa.uses)
        else wa.uses
    )
    tables = catalog.tables
    cstats = catalog.columns
    indexes = catalog.with_keys_of(code, uses["table"].astype(str).unique() if len(uses) else [])
    by_table: dict[str, list[IndexInfo]] = {}
    for i in indexes:
        by_table.setdefault(i.table, []).append(i)
    pks = {i.table: {k.column for k in i.keys if k.column} for i in indexes if i.primary}

    found: dict[tuple[str, tuple[Any, ...]], _Candidate] = {}
    texts = dict(
        zip(work["fingerprint_id"].astype(str), work["fingerprint"].astype(str), strict=False)
    )
    if len(uses):
        for (fid, _scope), scope_uses in uses.groupby(["fingerprint_id", "scope"], sort=False):
            for need in _needs_of_scope(
                str(fid), scope_uses, code, cstats, tables, t, pks, dialect
            ):
                if is_system_relation(need.table) or _mysql_system(
                    texts.get(need.fingerprint_id, ""), need.table
                ):
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
                    continue
                key = (need.table, tuple(k.ident for k in need.keys))
                cand = found.get(key)
                if cand is None:
                    cand = found[key] = _Candidate(need.table, need.keys, need.explanation)
                cand.fids[need.fingerprint_id] = None
                cand.dropped += [d for d in need.dropped if d not in cand.dropped]
                if prefix is not None:
                    cand.extends.add(prefix.name)
    merged = _merge_prefixes(list(found.values()))
    grand = total_ms if total_ms else float(profile["total_ms"].fillna(0).sum())
    window = window_s if window_s else _window_s(profile)
    return _findings(
        merged,
        work,
        catalog,
        by_table,
        code,
        plan_nodes,
        statement_endpoints,
        cfg,
        dialect,
        grand,
        window,
        source,
        mysql_facts(digests, events, work) if dialect == "mysql" else {},
    )


def _mysql_system(fingerprint: str, table: str) -> bool:
    """True when ``fingerprint`` reads ``table`` from a MySQL/MariaDB system schema
    (performance_schema, information_schema, sys, mysql): the consultant's own exports in a slow
    log, never a target for index advice."""
    return bool(
        re.search(
            rf"\b(?:performance_schema|information_schema|sys|mysql)`?\s*\.\s*`?{re.escape(table)}\b",
            fingerprint,
            re.I,
        )
    )


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
def _window_s(stats: pd.DataFrame) -> float | None:
    if "first_seen" not in stats or stats["first_seen"].isna().all():
        return None
    span = (stats["last_seen"].max() - stats["first_seen"].min()).total_seconds()
    return span if span > 0 else None


def _estimate_size(
    table: str,
    keys: Sequence[CandidateKey],
    tables: Mapping[str, TableInfo],
    cstats: Mapping[tuple[str, str], ColumnStats],
    code: CodeMap,
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
            else _TYPE_WIDTH.get(code.field_type(table, k.column) or "", 16)
        )
        if k.function in ("date_trunc",):
            w = 8
        elif k.function == "date":
            w = 4
        width += w
    tuple_bytes = 8 + math.ceil((width + (1 if len(keys) > 1 else 0)) / 8) * 8 + 4
    pages = math.ceil(info.rows * tuple_bytes / (_PAGE * _FILL)) + 1
    return float(pages * _PAGE * 1.01)


def _endpoints_of(
    statement_endpoints: pd.DataFrame | None, fids: Sequence[str]
) -> tuple[list[str], int | None]:
    """The endpoints that issue ``fids`` (busiest first) and the requests that ran them."""
    if statement_endpoints is None or len(statement_endpoints) == 0:
        return [], None
    rows = statement_endpoints[statement_endpoints["fingerprint_id"].isin(list(fids))]
    rows = rows[rows["endpoint"].notna()]
    if len(rows) == 0:
        return [], None
    order = rows.groupby("endpoint")["calls"].sum().sort_values(ascending=False)
    requests = None
    if "requests" in rows and rows["requests"].notna().any():
        requests = int(rows.groupby("endpoint")["requests"].max().sum())
    return [str(e) for e in order.index], requests


def _plan_evidence(
    plan_nodes: pd.DataFrame | None, table: str, columns: Iterable[str]
) -> list[dict[str, Any]]:
    if plan_nodes is None or len(plan_nodes) == 0 or "relation" not in plan_nodes:
        return []
    kind = plan_nodes["node_type"].astype("string")
    nodes = plan_nodes[
        (plan_nodes["relation"].astype("string") == table)
        & (kind.str.contains("Seq Scan", na=False) | kind.isin(_MYSQL_FULL_SCANS))
    ]
    out = []
    cols = [c for c in columns if c]
    roots = plan_nodes[plan_nodes["node_id"] == 0].drop_duplicates("plan_id").set_index("plan_id")
    for rec in records(nodes):
        filt = as_text(rec.get("filter")) or ""
        if not any(re.search(rf"\b{re.escape(c)}\b", filt) for c in cols):
            continue
        plan_id = as_text(rec.get("plan_id"))
        total = None
        if plan_id in roots.index:
            root = roots.loc[plan_id]
            total = as_number(root.get("execution_ms")) if "execution_ms" in roots else None
            total = total or (
                (as_number(root.get("actual_total_ms")) or 0.0)
                * (as_number(root.get("loops")) or 1.0)
            )
        out.append(
            {
                "plan_id": plan_id,
                "node_id": as_number(rec.get("node_id")),
                "node_type": as_text(rec.get("node_type")),
                "filter": filt[:200],
                "rows_removed_by_filter": as_number(rec.get("rows_removed_by_filter")),
                "replaced_ms": _replaced_ms(plan_nodes, plan_id, rec),
                "plan_total_ms": total or None,
                "source_file": as_text(rec.get("source_file")),
            }
        )
    return out


#: MySQL EXPLAIN access types that read a whole table: a table scan, a full index scan
_MYSQL_FULL_SCANS = ("ALL", "index")

#: nodes an index scan makes unnecessary above the scan it replaces
_REPLACED_ABOVE = ("Sort", "Incremental Sort", "Gather", "Gather Merge", "Materialize")


def _replaced_ms(
    plan_nodes: pd.DataFrame, plan_id: str | None, scan: Mapping[str, Any]
) -> float | None:
    """Time of the plan part an index replaces: the scan, plus the sorts and gathers right above
    it (an index delivers the rows in order without a parallel scan), all loops included."""
    nodes = plan_nodes[plan_nodes["plan_id"].astype("string") == plan_id].set_index("node_id")
    node = dict(scan)
    while True:
        parent = node.get("parent_id")
        if parent is None or parent is pd.NA or (isinstance(parent, float) and math.isnan(parent)):
            break
        if int(parent) not in nodes.index:
            break
        up: dict[str, Any] = {str(k): v for k, v in nodes.loc[int(parent)].to_dict().items()}
        if (as_text(up.get("node_type")) or "") not in _REPLACED_ABOVE:
            break
        node = {**up, "node_id": int(parent)}
    ms = as_number(node.get("actual_total_ms"))
    return None if ms is None else ms * (as_number(node.get("loops")) or 1.0)


def _plan_fraction(plan_items: Sequence[Mapping[str, Any]], cap: float) -> float | None:
    """The largest share of a measured plan's time spent in a sequential scan the candidate
    replaces (None without a timed plan)."""
    shares = [
        float(p["replaced_ms"]) / float(p["plan_total_ms"])
        for p in plan_items
        if p.get("replaced_ms") and p.get("plan_total_ms")
    ]
    return min(max(shares), cap) if shares else None


def _short(fp: str, n: int = 300) -> str:
    return fp if len(fp) <= n else fp[: n - 1] + "…"


def _write_tradeoff(
    info: TableInfo | None, existing: Sequence[IndexInfo], t: Mapping[str, Any]
) -> tuple[str | None, float | None]:
    if info is None or info.writes is None:
        return None, None
    reads = (info.seq_scan or 0) + (info.idx_scan or 0)
    what = "scans"
    if info.seq_scan is None and info.idx_scan is None and info.rows_read is not None:
        reads, what = info.rows_read, "rows read"  # MySQL performance_schema counts rows
    ratio = info.writes / reads if reads else (math.inf if info.writes else 0.0)
    n = len([i for i in existing if not i.declared_only])
    if info.writes and ratio >= t["write_heavy_ratio"]:
        return (
            f"Write cost: {info.table} took {info.writes:,.0f} row writes against {reads:,.0f} {what} since the "
            f"statistics reset; every insert (and every update that changes an indexed column) also writes "
            f"this index, on top of the {plural(n, 'existing one', 'existing ones')} — weigh the read saving against that."
        ), ratio
    if info.writes:
        return (
            f"Write cost: {info.writes:,.0f} row writes since the reset ({plural(n, 'existing index', 'existing indexes')}); "
            "the read saving outweighs it."
        ), ratio
    return None, ratio


_KIND_WORDS = {
    "expression": "an expression index",
    "composite": "a composite index",
    "plain": "an index",
    "pattern_ops": "a pattern-ops index",
}


def _findings(
    cands: list[_Candidate],
    stats: pd.DataFrame,
    catalog: Catalog,
    by_table: Mapping[str, list[IndexInfo]],
    code: CodeMap,
    plan_nodes: pd.DataFrame | None,
    statement_endpoints: pd.DataFrame | None,
    cfg: AuditConfig,
    dialect: Dialect,
    grand: float,
    window_s: float | None,
    source: str | None,
    mysql: Mapping[str, Mapping[str, float]] | None = None,
) -> list[Finding]:
    t = cfg.thresholds("index")
    by_fid = stats.drop_duplicates("fingerprint_id").set_index("fingerprint_id")
    mysql = mysql or {}
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
        pattern = any(k.opclass for k in c.keys)
        kind = (
            "expression"
            if any(k.expression_sql is not None for k in c.keys)
            else "pattern_ops"
            if pattern
            else "composite"
            if len(c.keys) > 1
            else "plain"
        )
        info = catalog.tables.get(c.table)
        model = code.model(c.table)
        name = index_name(c.table, c.keys)
        plan_items = _plan_evidence(plan_nodes, c.table, cols)
        endpoints, requests = _endpoints_of(statement_endpoints, fids)
        write_note, write_ratio = _write_tradeoff(info, by_table.get(c.table, []), t)
        size = _estimate_size(c.table, c.keys, catalog.tables, catalog.columns, code)
        fraction = _plan_fraction(plan_items, float(t["max_plan_saving"]))
        saving = total * (fraction if fraction is not None else float(t["assumed_saving"]))
        impact = Impact.of(
            saving,
            grand,
            window_s=window_s,
            requests=requests,
            source=source,
            basis="estimated",
            note=(
                f"{fraction:.0%} of the {total:,.0f} ms its {plural(len(fids), 'statement')} took: the share "
                "of the measured plan spent in the scan (and the sort above it) the index replaces"
                if fraction is not None
                else f"{t['assumed_saving']:.0%} of the {total:,.0f} ms its {plural(len(fids), 'statement')} "
                "took, assumed until the database's planner confirms the index (a live database "
                "validates it)"
            ),
        )
        ddl = ddl_statement(c.table, c.keys, name, dialect)
        entry = None if model.django else meta_index_entry(c.table, c.keys, name, code)
        operation = migration_operation(model.name.lower(), entry, ddl, name, dialect)
        keys_text = ", ".join(k.label() for k in c.keys)
        fields_text = ", ".join(
            k.label().replace(k.column, code.field_name(c.table, k.column), 1) for k in c.keys
        )
        summary = [_lead(len(fids), calls, total, share, c.table, keys_text, endpoints)]
        server_text, server_metrics = _mysql_text(fids, mysql)
        if server_text:
            summary.append(server_text)
        sorts = _mysql_sorts(plan_nodes, fids) if dialect == "mysql" else []
        if sorts and any(k.role in ("order", "group") for k in c.keys):
            summary.append(
                f"EXPLAIN shows {_list(sorts)}; the index delivers the rows in order instead."
            )
        elif sorts:
            summary.append(f"EXPLAIN also shows {_list(sorts)}.")
        if c.extends:
            summary.append(
                f"Existing {', '.join(sorted(c.extends))} serves only the equality part; this index extends it."
            )
        if write_note:
            summary.append(write_note)
        if model.inferred:
            summary.append(
                "Model and field names are inferred from Django's table naming (no model dump was given)."
            )
        evidence_items: list[dict[str, Any]] = [
            {
                "fingerprint_id": f,
                "fingerprint": _short(str(by_fid.at[f, "fingerprint"])),
                "calls": int(as_number(by_fid.at[f, "calls"]) or 0),
                "total_ms": round(as_number(by_fid.at[f, "total_ms"]) or 0.0, 3),
                "endpoints": ", ".join(_endpoints_of(statement_endpoints, [f])[0][:5]) or None,
                "requests": _endpoints_of(statement_endpoints, [f])[1],
            }
            for f in fids
        ]
        evidence_items += [{"plan_node": p} for p in plan_items]
        strength = (
            EvidenceStrength.STATISTICS
            if (plan_items or catalog.has_table_stats or server_metrics)
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
            "endpoints": len(endpoints),
            "estimated_size_bytes": size,
            "table_rows": info.rows if info else None,
            "table_seq_scans": info.seq_scan if info else None,
            "plan_seq_scans": len(plan_items),
            "write_ratio": write_ratio,
            "keys": keys_text,
            "kind": kind,
            "index_name": name,
            "explanation": " | ".join(c.explanation),
            "endpoint_list": ", ".join(endpoints[:10]) if endpoints else None,
            "app_label": model.app_label,
            "model": model.name,
            "inferred_model": model.inferred,
            "latest_migration": model.latest_migration,
            "django_table": model.django,
            **server_metrics,
        }
        online = "online" if dialect == "mysql" else "concurrently"
        if model.django:
            django_text = None
            rec_summary = (
                f"{c.table} belongs to Django's own {model.app_label} app, so no model of yours can "
                f"declare the index: create {name} {online} with the SQL, from a migration of one "
                "of your apps (the RunSQL operation below). " + "; ".join(c.explanation) + "."
            )
        else:
            imports = [i for i in entry[1] if i != "from django.db import models"] if entry else []
            django_text = None if entry is None else "\n".join([*imports, entry[0]])
            how = (
                "online (ALGORITHM=INPLACE, LOCK=NONE: reads and writes go on while it builds)"
                if dialect == "mysql"
                else "concurrently (no write lock)"
            )
            rec_summary = (
                f"Create {name} {how}, and add the entry to "
                f"{model.name}.Meta.indexes so Django's state matches. "
                + "; ".join(c.explanation)
                + "."
            )
            if entry is None:
                what = "key prefix length" if any(k.prefix for k in c.keys) else "expression"
                rec_summary = (
                    f"Create {name} {online} with the SQL, from a migration (RunSQL below): its "
                    f"{what} has no Django equivalent, so no Meta.indexes entry declares it. "
                    + "; ".join(c.explanation)
                    + "."
                )
        metrics["fields"] = fields_text
        action = _action(kind, model.name, fields_text, _main(statement_endpoints, fids), impact)
        out.append(
            Finding(
                check="missing_index",
                severity=of_impact(impact, cfg),
                title=f"Add {_KIND_WORDS[kind]} on {c.table} ({keys_text})",
                summary=" ".join(summary),
                subject=Subject(
                    table=c.table,
                    columns=cols,
                    index=name,
                    expression=kind,
                ),
                metrics=metrics,
                recommendation=Recommendation(
                    summary=rec_summary, sql=ddl, django=django_text, migration=operation
                ),
                evidence=Evidence(strength=strength, items=tuple(evidence_items), note=note),
                impact=impact,
                chapter="indexing",
                statements=tuple(fids),
                action=action,
            )
        )
    return sorted(
        out, key=lambda f: (-int(f.severity), -(f.impact.weight if f.impact else 0.0), f.title)
    )


def _lead(
    statements: int,
    calls: int,
    total: float,
    share: float,
    table: str,
    keys_text: str,
    endpoints: Sequence[str],
) -> str:
    text = (
        f"{plural(statements, 'statement')} ({plural(calls, 'execution')}, {total:,.0f} ms, "
        f"{share:.1%} of all database time) "
        + ("filters or sorts" if statements == 1 else "filter or sort")
        + f" {table} on {keys_text}; no existing index serves "
        + ("it." if statements == 1 else "them.")
    )
    if not endpoints:
        return text
    return text + f" {'It runs' if statements == 1 else 'They run'} on {_list(endpoints)}."


def _main(statement_endpoints: pd.DataFrame | None, fids: Sequence[str]) -> list[str]:
    """The endpoints that carry most of the statements' time: the busiest, plus the next when
    the busiest has less than half of it."""
    if statement_endpoints is None or len(statement_endpoints) == 0:
        return []
    rows = statement_endpoints[statement_endpoints["fingerprint_id"].isin(list(fids))]
    per = rows.groupby("endpoint")["total_ms"].sum().sort_values(ascending=False)
    if len(per) == 0 or not per.sum():
        return []
    top = [str(per.index[0])]
    if per.iloc[0] < per.sum() / 2 and len(per) > 1:
        top.append(str(per.index[1]))
    return top


def _action(
    kind: str, model: str, fields_text: str, endpoints: Sequence[str], impact: Impact
) -> str:
    where = f" for {_list(list(endpoints)[:2])}" if endpoints else ""
    return f"Add {_KIND_WORDS[kind]} on {model} ({fields_text}){where}: {impact.phrase()}."


def narrow(
    finding: Finding, drop: Iterable[str], config: AuditConfig | None = None
) -> Finding | None:
    """``finding`` (a ``missing_index``) without the statements ``drop`` — another cause takes
    them, e.g. a result cached as a whole — with its figures recomputed; None when none is left.
    """
    gone = set(drop)
    stmts = [i for i in finding.evidence.items if "fingerprint_id" in i]
    keep = [i for i in stmts if i["fingerprint_id"] not in gone]
    if not keep:
        return None
    if len(keep) == len(stmts):
        return finding
    old_total = sum(float(i.get("total_ms") or 0.0) for i in stmts)
    total = sum(float(i.get("total_ms") or 0.0) for i in keep)
    calls = sum(int(i.get("calls") or 0) for i in keep)
    factor = total / old_total if old_total else 0.0
    counted = [i.get("requests") for i in keep]
    requests = sum(int(r) for r in counted if r) if all(counted) else None
    endpoints = list(
        dict.fromkeys(
            e.strip() for i in keep for e in str(i.get("endpoints") or "").split(",") if e.strip()
        )
    )
    impact = finding.impact
    if impact is not None:
        impact = replace(
            impact,
            db_ms=round((impact.db_ms or 0.0) * factor, 3),
            db_share=round(impact.db_share * factor, 5) if impact.db_share is not None else None,
            db_ms_per_request=round((impact.db_ms or 0.0) * factor / requests, 3)
            if requests
            else None,
            requests=requests,
            note=(
                f"{(impact.db_ms or 0.0) / old_total:.0%} of the {total:,.0f} ms its "
                f"{plural(len(keep), 'remaining statement')} took; the statements another cause "
                "removes (a result cached as a whole) are left out"
                if old_total
                else impact.note
            ),
        )
    m = dict(finding.metrics)
    lead = _lead(
        len(keep),
        calls,
        total,
        float(m.get("share") or 0.0) * factor,
        str(finding.subject.table),
        str(m.get("keys")),
        endpoints,
    )
    rest = finding.summary.split("no existing index serves them.", 1)[-1]
    rest = re.sub(r"^\s*They run on [^.]*\.", "", rest)
    m.update(
        statements=len(keep),
        calls=calls,
        total_ms=round(total, 3),
        share=round(float(m.get("share") or 0.0) * factor, 4),
        endpoints=len(endpoints),
        endpoint_list=", ".join(endpoints[:10]) or None,
    )
    items = tuple(
        i
        for i in finding.evidence.items
        if "fingerprint_id" not in i or i["fingerprint_id"] not in gone
    )
    action = (
        _action(
            str(m.get("kind")),
            str(m.get("model")),
            str(m.get("fields")),
            [
                e.strip()
                for e in str(
                    max(keep, key=lambda i: float(i.get("total_ms") or 0.0)).get("endpoints") or ""
                ).split(",")[:1]
                if e.strip()
            ],
            impact,
        )
        if impact is not None and finding.action
        else finding.action
    )
    return replace(
        finding,
        summary=(lead + rest).strip(),
        metrics=m,
        evidence=replace(finding.evidence, items=items),
        impact=impact,
        severity=of_impact(impact, config),
        statements=tuple(i["fingerprint_id"] for i in keep),
        action=action,
    )


def _list(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------------------------
# MySQL / MariaDB: the server's own evidence
# --------------------------------------------------------------------------------------------
def _num_sum(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(df[col], errors="coerce").groupby(df["fingerprint_id"]).sum(min_count=1)


def _squash(fingerprint: Any) -> str:
    return re.sub(r"[\s`]+", "", str(fingerprint)).lower()


def mysql_facts(
    digests: pd.DataFrame | None,
    events: pd.DataFrame | None,
    profile: pd.DataFrame | None = None,
) -> dict[str, dict[str, float]]:
    """Per fingerprint id, what the MySQL/MariaDB server counted about its executions:
    performance_schema digests (``digest_calls``, ``no_index_used``, ``full_scans``,
    ``rows_examined``, ``rows_sent``) and the slow log (``slow_calls``, ``slow_full_scans``,
    ``slow_rows_examined``, ``slow_rows_sent``, ``slow_filesorts``, ``slow_tmp_disk``).

    A digest whose text differs from the logged statement's only in spacing (MariaDB writes
    ``COUNT (*)``) is keyed by the fingerprint id of ``profile``'s statement."""
    out: dict[str, dict[str, float]] = {}

    def put(fid: Any, key: str, value: Any) -> None:
        v = as_number(value)
        if v is not None:
            out.setdefault(str(fid), {})[key] = v

    if digests is not None and len(digests) and "fingerprint_id" in digests:
        d = digests[digests["fingerprint_id"].notna()]
        if profile is not None and len(profile) and "fingerprint" in d:
            by_text = {
                _squash(fp): str(fid)
                for fp, fid in zip(profile["fingerprint"], profile["fingerprint_id"], strict=False)
            }
            d = d.assign(
                fingerprint_id=[
                    by_text.get(_squash(fp), str(fid))
                    for fp, fid in zip(d["fingerprint"], d["fingerprint_id"], strict=False)
                ]
            )
        for col, key in (
            ("calls", "digest_calls"),
            ("no_index_used", "no_index_used"),
            ("full_scans", "full_scans"),
            ("rows_examined", "rows_examined"),
            ("rows", "rows_sent"),
        ):
            if col in d:
                for fid, v in _num_sum(d, col).items():
                    put(fid, key, v)
    if events is not None and len(events) and "rows_examined" in events:
        e = events[events["fingerprint_id"].notna() & events["rows_examined"].notna()]
        if len(e):
            for fid, v in e.groupby("fingerprint_id").size().items():
                put(fid, "slow_calls", v)
            for col, key in (
                ("rows_examined", "slow_rows_examined"),
                ("rows", "slow_rows_sent"),
            ):
                if col in e:
                    for fid, v in _num_sum(e, col).items():
                        put(fid, key, v)
            for col, key in (
                ("full_scan", "slow_full_scans"),
                ("filesort", "slow_filesorts"),
                ("tmp_table_on_disk", "slow_tmp_disk"),
            ):
                if col in e:
                    flags = e[col].astype("boolean").fillna(False).astype("float64")
                    for fid, v in flags.groupby(e["fingerprint_id"]).sum().items():
                        put(fid, key, v)
    return out


def _mysql_text(
    fids: Sequence[str], facts: Mapping[str, Mapping[str, float]]
) -> tuple[str, dict[str, float]]:
    """The server's evidence for a candidate's statements, in words and as metrics."""
    keys = (
        "digest_calls",
        "no_index_used",
        "full_scans",
        "rows_examined",
        "rows_sent",
        "slow_calls",
        "slow_full_scans",
        "slow_rows_examined",
        "slow_rows_sent",
        "slow_filesorts",
    )
    total: dict[str, float] = {}
    for f in fids:
        for k in keys:
            if k in facts.get(f, {}):
                total[k] = total.get(k, 0.0) + facts[f][k]
    parts = []
    calls = total.get("digest_calls")
    if calls:
        scans = max(total.get("no_index_used", 0.0), total.get("full_scans", 0.0))
        text = f"performance_schema counted {plural(int(calls), 'execution')}"
        if scans:
            text += f", {scans:,.0f} of them without an index"
        if "rows_examined" in total and "rows_sent" in total:
            text += (
                f"; they examined {total['rows_examined']:,.0f} rows to send "
                f"{total['rows_sent']:,.0f}"
            )
        parts.append(text)
    slow = total.get("slow_calls")
    if slow:
        text = f"the slow log shows {plural(int(slow), 'execution')}"
        if total.get("slow_full_scans"):
            text += f", {total['slow_full_scans']:,.0f} of them full scans"
        if "slow_rows_examined" in total and "slow_rows_sent" in total:
            text += (
                f" (Rows_examined {total['slow_rows_examined']:,.0f} against Rows_sent "
                f"{total['slow_rows_sent']:,.0f})"
            )
        if total.get("slow_filesorts"):
            text += f", {total['slow_filesorts']:,.0f} with a filesort"
        parts.append(text)
    if not parts:
        return "", {}
    return "On the server, " + "; ".join(parts) + ".", {f"mysql_{k}": v for k, v in total.items()}


def _mysql_sorts(plan_nodes: pd.DataFrame | None, fids: Sequence[str]) -> list[str]:
    """Filesorts and temporary tables in the MySQL EXPLAIN plans of ``fids``."""
    if plan_nodes is None or len(plan_nodes) == 0 or "fingerprint_id" not in plan_nodes:
        return []
    nodes = plan_nodes[plan_nodes["fingerprint_id"].isin(list(fids))]
    found: list[str] = []
    kinds = set(nodes["node_type"].dropna().astype(str))
    extra = " ".join(nodes["extra"].dropna().astype(str)) if "extra" in nodes else ""
    if "filesort" in kinds or "Using filesort" in extra:
        found.append("a filesort")
    if "temporary_table" in kinds or "Using temporary" in extra:
        found.append("a temporary table")
    return found
