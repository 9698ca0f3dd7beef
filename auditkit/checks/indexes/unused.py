"""Unused indexes: indexes the workload did not scan in the statistics window.

An index costs space and every write to its table; one that no statement scanned since the
statistics were reset is a candidate to drop. Primary keys, unique and constraint-backing
indexes are never proposed (they enforce something), nor indexes of small tables, nor an
identical twin of an index that is kept (:mod:`auditkit.checks.indexes.duplicates` reports
those). An invalid index (a failed ``CREATE INDEX CONCURRENTLY``) is always reported. Indexes
Django creates on its own tables are listed in one informational finding: no client drops them.
Severity follows the index's size (:func:`auditkit.checks.severity.of_size`).

MySQL and MariaDB have no scan counter: ``performance_schema`` counts the rows read through
each index (``COUNT_READ``) since the server started or the table was truncated, and an index
read by no row in that window is unused (``sys.schema_unused_indexes`` lists the same). The
window is stated from the server's ``Uptime``. Besides PRIMARY and UNIQUE keys, the index InnoDB
needs for a foreign key — the only one leading with its columns — is never proposed
(:func:`foreign_key_needs`); the DDL is ``ALTER TABLE … DROP INDEX …, ALGORITHM=INPLACE,
LOCK=NONE``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from auditkit.analysis.catalog import (
    Catalog,
    IndexInfo,
    as_number,
    is_like_twin,
    keep_rank,
    physical,
    signature,
    size_text,
    write_overhead,
)
from auditkit.analysis.code import CodeMap
from auditkit.checks.indexes.ddl import drop_recommendation
from auditkit.checks.severity import of_size
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Recommendation,
    Severity,
    Subject,
    plural,
)
from auditkit.sql.fingerprint import Dialect

__all__ = ["foreign_key_needs", "unused", "unused_indexes"]


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
    catalog, code = _inputs(schema_indexes, schema_tables, schema_columns)
    return unused(catalog, code, config, dialect=dialect)


def _inputs(
    schema_indexes: pd.DataFrame,
    schema_tables: pd.DataFrame | None,
    schema_columns: pd.DataFrame | None,
) -> tuple[Catalog, CodeMap]:
    tables = schema_tables if schema_tables is not None else pd.DataFrame(columns=["table"])
    code = CodeMap.build(
        schema_columns
        if schema_columns is not None
        else pd.DataFrame(columns=["table", "inferred"]),
        tables,
        schema_indexes,
    )
    return Catalog.build(schema_indexes, tables, None, code), code


def unused(
    catalog: Catalog,
    code: CodeMap,
    config: AuditConfig | None = None,
    *,
    dialect: Dialect = "postgres",
) -> list[Finding]:
    """``unused_index`` findings over a combined catalog (see the module docstring)."""
    cfg = config or AuditConfig()
    t = cfg.thresholds("index")
    tables = catalog.tables
    indexes = physical(catalog.indexes)
    window = catalog.window
    out: list[Finding] = []
    django_owned: list[IndexInfo] = []
    fk_columns = {(table, column) for table, column, _ in code.foreign_keys()}
    for ix in indexes:
        if ix.usage is None and ix.valid:
            continue
        if ix.primary or ix.unique or ix.constraint in ("p", "u", "x"):
            continue
        if foreign_key_needs(ix, indexes, fk_columns):
            continue
        info = tables.get(ix.table)
        if ix.valid:
            if ix.usage is not None and ix.usage > t["unused_max_scans"]:
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
                and signature(o) == signature(ix)
                and keep_rank(o) < keep_rank(ix)
            ]
            if twin or _redundant_prefix(ix, indexes):
                continue
        if code.is_django(ix.table):
            django_owned.append(ix)
            continue
        overhead, writes = write_overhead(info, ix)
        if not ix.valid:
            title = f"Drop invalid index {ix.name} on {ix.table}"
            summary = (
                f"{ix.label()} is INVALID (left by a failed CREATE INDEX CONCURRENTLY): the planner never "
                f"uses it, yet every write still maintains it. {size_text(ix.size_bytes)}; {overhead}."
            )
            sev = Severity.MEDIUM
        else:
            title = f"Unused index {ix.name} on {ix.table}"
            summary = (
                f"{ix.label()} {ix.usage_text()} {window}. It takes {size_text(ix.size_bytes)} "
                f"and {overhead}."
            )
            if ix.declared_by and ("ForeignKey" in ix.declared_by):
                summary += (
                    " It is Django's automatic foreign-key index: deleting or updating referenced rows "
                    "(ON DELETE CASCADE) looks rows up through it, so make sure that never happens at scale."
                )
            sev = of_size(ix.size_bytes, t)
        why = (
            f"Drop {ix.name}: unused {window}; it costs {size_text(ix.size_bytes)} and write time."
        )
        recommendation = drop_recommendation(ix, code, dialect, why)
        if ix.valid and is_like_twin(ix):
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
        elif "many-to-many" in (ix.declared_by or ""):
            # the auto-created through table's index: no model of the client's declares it
            sev = Severity.INFO
        model = code.model(ix.table)
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
                    "index_reads": ix.index_reads,
                    "size_bytes": ix.size_bytes,
                    "table_writes": writes,
                    "window": window,
                    "declared_by": ix.declared_by,
                    "valid": ix.valid,
                    "app_label": ix.app_label or model.app_label,
                    "model": ix.model or model.name,
                    "latest_migration": model.latest_migration,
                },
                recommendation=recommendation,
                evidence=Evidence(
                    EvidenceStrength.STATISTICS,
                    (
                        {
                            "index": ix.name,
                            "definition": ix.definition,
                            "idx_scan": ix.idx_scan,
                            "index_reads": ix.index_reads,
                        },
                    ),
                    note=window,
                ),
                chapter="indexing",
                action=None
                if sev == Severity.INFO
                else f"Drop the unused index {ix.name} on {ix.model or model.name}: it costs "
                f"{size_text(ix.size_bytes)} and write time, and no statement used it {window}.",
            )
        )
    if django_owned:
        out.append(django_indexes_note(django_owned, "unused_index", window))
    return sorted(
        out, key=lambda f: (-int(f.severity), -(as_number(f.metrics.get("size_bytes")) or 0.0))
    )


def _redundant_prefix(ix: IndexInfo, indexes: Iterable[IndexInfo]) -> bool:
    """True when duplicate_indexes reports ``ix`` as a redundant prefix of another index (by
    their keys, or as the server's sys.schema_redundant_indexes says): one finding per index."""
    if ix.unique or ix.method != "btree":
        return False
    for o in indexes:
        if o is ix or o.table != ix.table or not o.valid:
            continue
        if ix.redundant_to == o.name:
            return True
        if (
            o.method == "btree"
            and len(o.keys) > len(ix.keys)
            and (o.predicate or "") == (ix.predicate or "")
            and all(
                (a.key, a.opclass, a.descending) == (b.key, b.opclass, b.descending)
                for a, b in zip(ix.keys, o.keys, strict=False)
            )
        ):
            return True
    return False


def foreign_key_needs(
    ix: IndexInfo, indexes: Iterable[IndexInfo], fk_columns: set[tuple[str, str]]
) -> bool:
    """True when InnoDB needs ``ix`` for a foreign key: a MySQL/MariaDB index that leads with a
    FOREIGN KEY's columns (SHOW CREATE TABLE names the constraint; else a foreign key of the
    model dump or Django's conventions) and is the only index of its table that does. InnoDB
    refuses to drop it (error 1553), so it is not proposed."""
    if not ix.is_mysql or not ix.keys or not ix.keys[0].column:
        return False
    lead = ix.keys[0].column
    if ix.foreign_key is None and (ix.table, lead) not in fk_columns:
        return False
    return not any(
        o is not ix and o.table == ix.table and o.valid and o.keys and o.keys[0].column == lead
        for o in indexes
    )


def django_indexes_note(indexes: Iterable[IndexInfo], check: str, window: str) -> Finding:
    """One informational finding for indexes of Django's own tables: nothing to do."""
    items = list(indexes)
    names = ", ".join(sorted(i.name for i in items))
    what = "unused" if check == "unused_index" else "duplicate or redundant"
    return Finding(
        check=check,
        severity=Severity.INFO,
        title=f"{plural(len(items), what + ' index', what + ' indexes')} on Django's own tables",
        summary=(
            f"{names}: Django creates these on the tables of its own apps (auth, contenttypes, "
            f"sessions, admin…) and its migrations keep them; they are {what} {window} "
            "but cost little, and no migration of yours can drop them for good."
            if check == "unused_index"
            else f"{names}: Django creates these on the tables of its own apps (auth, "
            "contenttypes, sessions, admin…) and its migrations keep them; they duplicate others "
            "but cost little, and no migration of yours can drop them for good."
        ),
        subject=Subject(expression="Django's own tables"),
        metrics={
            "indexes": len(items),
            "size_bytes": sum(i.size_bytes or 0 for i in items) or None,
        },
        recommendation=Recommendation(
            summary="Nothing to do: leave Django's own indexes as they are."
        ),
        evidence=Evidence(
            EvidenceStrength.STATISTICS,
            tuple({"index": i.name, "table": i.table, "idx_scan": i.idx_scan} for i in items[:20]),
        ),
        chapter="indexing",
    )
