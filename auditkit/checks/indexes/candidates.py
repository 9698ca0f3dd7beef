"""Index candidates: the indexes the workload needs and no existing index provides.

From the workload's statements (``statement_stats``), each distinct statement parsed once
(:mod:`auditkit.sql.analyze`), per table reference: the equality, range, sort and expression
keys it needs, ordered **equality → range → sort** and explained per column; skipped when an
existing index already serves them by its leading columns — Django's automatic foreign-key
indexes, unique constraints and primary keys included, and where no catalog was exported the
keys a model dump, Django's own apps or Django's ``id`` default imply (and on MySQL, InnoDB's
own index on every foreign key); an expression (``UPPER(email)`` from ``__iexact``) gets an
expression index and a ``LIKE 'x%'`` a pattern-ops index — never a plain index that the
planner could not use. Django's conventions are assumed only for the tables Django's ORM
wrote the SQL of: a table that only hand-written SQL names, with no export describing it, gets
no proposal but a ``data_quality`` finding asking for its index definitions.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from auditkit.checks.indexes.mysql_facts import _mysql_sorts, _mysql_text, mysql_facts
from auditkit.checks.indexes.needs import (
    _EQ_ROLES,
    _FILL,
    _PAGE,
    _TYPE_WIDTH,
    _coverage,
    _needs_of_scope,
    _rows_after,
)
from auditkit.checks.severity import of_impact
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Impact,
    Recommendation,
    Severity,
    Subject,
    duration_text,
    percent_text,
    plural,
)
from auditkit.sql.analyze import WorkloadAnalysis, analyze_workload
from auditkit.sql.django_orm import orm_tables
from auditkit.sql.fingerprint import Dialect
from auditkit.sql.statement_kind import is_system_relation

__all__ = ["CandidateKey", "candidates", "index_candidates", "narrow"]

#: tables named in the data-quality line on tables whose keys are unknown (the rest counted)
_SHOWN_TABLES = 8


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
    software: frozenset[str] | None = None,
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

    No index is proposed on a table whose keys are unknown — no export describes its indexes
    and its SQL is not Django's ORM's (see :func:`_keys_known`): one ``data_quality`` finding
    lists those tables instead and says what to export (``software``, the programs behind the
    inputs as :func:`~auditkit.checks.data_quality.software_of` tells them, words it).
    """
    cfg = config or AuditConfig()
    t = cfg.thresholds("index")
    if len(profile) == 0:
        return []
    # a statement group with no measured time (every duration 0 or missing) has nothing an
    # index could save: proposing one would be advice without evidence
    spent = pd.to_numeric(profile["total_ms"], errors="coerce").fillna(0)
    work = profile[
        (profile["calls"].fillna(0) >= t["min_calls"]) & (spent >= t["min_total_ms"]) & (spent > 0)
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
    indexes = catalog.with_keys_of(
        code, uses["table"].astype(str).unique() if len(uses) else [], dialect
    )
    known = _keys_known(profile, catalog, code)
    withheld: dict[str, dict[str, None]] = {}  # table → its statements
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
                if not known(need.table):
                    withheld.setdefault(need.table, {})[need.fingerprint_id] = None
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
    found_list = _findings(
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
    if withheld:
        found_list.append(_keys_unknown(withheld, work, grand, dialect, software))
    return found_list


def _keys_known(profile: pd.DataFrame, catalog: Catalog, code: CodeMap) -> Callable[[str], bool]:
    """Whether the advisor knows enough of a table's keys to propose an index on it.

    It does when an export describes the table's indexes (pg_indexes, SHOW INDEX, a model
    dump's declarations), when a model dump or an export maps the table to a model (Django's
    own apps included), or when the statements name it the way Django's ORM writes SQL
    (:func:`~auditkit.sql.django_orm.orm_tables`): Django's conventions then tell its primary
    key. A table only hand-written SQL names (pgbench's ``pgbench_branches``, a legacy
    ``address`` keyed on ``address_id``) has keys no convention tells: an index proposed on it
    could well be its primary key."""
    described = {i.table for i in catalog.indexes}
    orm = orm_tables(profile["fingerprint"].tolist()) if len(profile) else frozenset()
    return lambda table: table in described or table in orm or not code.model(table).inferred


def _keys_unknown(
    withheld: Mapping[str, Mapping[str, None]],
    work: pd.DataFrame,
    grand: float,
    dialect: Dialect,
    software: frozenset[str] | None,
) -> Finding:
    """The data-quality line for the tables no index was proposed on: whose keys are unknown."""
    from auditkit.checks.data_quality import how_to_collect, software_of

    fids = list(dict.fromkeys(f for per in withheld.values() for f in per))
    ms = pd.to_numeric(work["total_ms"], errors="coerce").fillna(0.0)
    ms_of = dict(zip(work["fingerprint_id"].astype(str), ms, strict=False))
    total = sum(ms_of.get(f, 0.0) for f in fids)
    calls_of = dict(
        zip(
            work["fingerprint_id"].astype(str),
            pd.to_numeric(work["calls"], errors="coerce").fillna(0),
            strict=False,
        )
    )
    calls = int(sum(calls_of.get(f, 0) for f in fids))
    by_time = sorted(withheld, key=lambda tb: -sum(ms_of.get(f, 0.0) for f in withheld[tb]))
    shown = by_time[:_SHOWN_TABLES]
    names = (
        _list(shown)
        if len(by_time) <= _SHOWN_TABLES
        else ", ".join(shown) + f" and {plural(len(by_time) - len(shown), 'other')}"
    )
    software = software if software is not None else software_of((), dialect)
    if dialect == "mysql":
        software = software | {"mysql"}
    elif not software & {"postgres", "mysql"}:
        software = software | {"postgres"}
    share = f", {percent_text(total / grand)} of all database time" if grand else ""
    one, them = len(by_time) == 1, "it" if len(by_time) == 1 else "them"
    return Finding(
        check="data_quality",
        severity=Severity.INFO,
        title=f"No index advice on {plural(len(by_time), 'table')} whose keys are unknown",
        summary=(
            f"{plural(len(fids), 'statement')} ({plural(calls, 'execution')}, "
            f"{duration_text(total)}{share}) "
            + ("filters, joins or sorts" if len(fids) == 1 else "filter, join or sort")
            + f" on {names}. "
            + ("Its" if len(fids) == 1 else "Their")
            + " SQL is not written by Django's ORM (no quoted, table-qualified column names) "
            + "and no export describes "
            + ("this table's primary key" if one else "these tables' primary keys")
            + " and indexes, so the audit cannot tell which lookups an existing "
            + f"index already serves — the primary key among them — and proposes no index on {them}."
        ),
        subject=Subject(expression="index keys unknown"),
        metrics={
            "tables": len(by_time),
            "statements": len(fids),
            "calls": calls,
            "total_ms": round(total, 3),
            "table_list": ", ".join(by_time),
        },
        recommendation=Recommendation(
            f"Send the index definitions of {'this table' if one else 'these tables'} so the "
            f"audit can propose indexes on {them} too. " + how_to_collect("index_keys", software)
        ),
        evidence=Evidence(
            EvidenceStrength.PATTERN,
            tuple({"table": tb, "statements": len(withheld[tb])} for tb in by_time),
        ),
        chapter="indexing",
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
