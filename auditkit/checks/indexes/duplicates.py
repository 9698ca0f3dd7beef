"""Duplicate and redundant indexes: indexes another index already provides.

*Identical*: same table, method, keys (operator classes and order), predicate and INCLUDE
columns; the one kept is the primary key, else a unique or constraint index, else the one
Django declares for a field, else the most scanned. *Redundant*: a non-unique btree index whose
keys are a leading prefix of another valid btree index with the same predicate (that index
serves every lookup the shorter one serves). ``subject.expression`` says which. Indexes of
Django's own tables are listed in one informational finding.

On MySQL/MariaDB, ``sys.schema_redundant_indexes`` (``redundant_to``) is used when exported: an
index the server reports redundant to another is a redundant prefix even where the exported
definitions do not show it (InnoDB appends the primary key to every secondary index). PRIMARY
is never proposed, and a foreign key's index is dropped only for one that leads with the same
columns (the longer index then serves the constraint).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from auditkit.analysis.catalog import (
    Catalog,
    IndexInfo,
    TableInfo,
    as_number,
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
from auditkit.findings import Evidence, EvidenceStrength, Finding, Severity, Subject
from auditkit.sql.fingerprint import Dialect

__all__ = ["duplicate_indexes", "duplicates"]


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
    from auditkit.checks.indexes.unused import _inputs

    catalog, code = _inputs(schema_indexes, schema_tables, schema_columns)
    return duplicates(catalog, code, config, dialect=dialect)


def duplicates(
    catalog: Catalog,
    code: CodeMap,
    config: AuditConfig | None = None,
    *,
    dialect: Dialect = "postgres",
) -> list[Finding]:
    """``duplicate_index`` findings over a combined catalog (see the module docstring)."""
    from auditkit.checks.indexes.unused import django_indexes_note

    cfg = config or AuditConfig()
    t = cfg.thresholds("index")
    tables = catalog.tables
    indexes = physical(catalog.indexes)
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
                sigs.setdefault(signature(ix), []).append(ix)
        for same in sigs.values():
            if len(same) < 2:
                continue
            keep = sorted(same, key=keep_rank)[0]
            for ix in same:
                if ix is keep or ix.primary or ix.constraint in ("p", "u", "x"):
                    continue
                flagged.add((table, ix.name))
                out.append(_dup_finding(ix, keep, "identical", info, code, dialect, t))
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
                out.append(_dup_finding(ix, host, "redundant prefix", info, code, dialect, t))
        # what the server itself reports redundant (MySQL sys.schema_redundant_indexes), when
        # the definitions above did not already tell: it knows InnoDB's implicit key suffix
        names = {i.name: i for i in group}
        for ix in group:
            dominant = names.get(ix.redundant_to or "")
            if (
                dominant is None
                or dominant is ix
                or (table, ix.name) in flagged
                or (table, dominant.name) in flagged
                or ix.primary
                or (ix.unique and not (dominant.unique and dominant.key_names == ix.key_names))
            ):
                continue
            flagged.add((table, ix.name))
            out.append(_dup_finding(ix, dominant, "redundant prefix", info, code, dialect, t))
    owned = [f for f in out if code.is_django(str(f.subject.table))]
    out = [f for f in out if not code.is_django(str(f.subject.table))]
    if owned:
        by_name = {(i.table, i.name): i for i in indexes}
        out.append(
            django_indexes_note(
                [by_name[(str(f.subject.table), str(f.subject.index))] for f in owned],
                "duplicate_index",
                catalog.window,
            )
        )
    return sorted(
        out, key=lambda f: (-int(f.severity), -(as_number(f.metrics.get("size_bytes")) or 0.0))
    )


def _dup_finding(
    ix: IndexInfo,
    other: IndexInfo,
    kind: str,
    info: TableInfo | None,
    code: CodeMap,
    dialect: Dialect,
    t: Mapping[str, Any],
) -> Finding:
    overhead, writes = write_overhead(info)
    if kind == "identical":
        title = f"Duplicate index {ix.name} on {ix.table}"
        summary = (
            f"{ix.label()} is identical to {other.label()}: the planner needs only one. "
            f"It takes {size_text(ix.size_bytes)} and {overhead}."
        )
    else:
        title = f"Redundant index {ix.name} on {ix.table}"
        summary = (
            f"{ix.label()} is a leading prefix of {other.label()}, which serves every lookup it serves. "
            f"It takes {size_text(ix.size_bytes)} and {overhead}."
        )
    if ix.redundant_to == other.name:
        summary += " The server's sys.schema_redundant_indexes reports the same."
    if ix.declared_by:
        summary += f" Declared by {ix.declared_by}."
    sev = of_size(ix.size_bytes, t)
    if "many-to-many" in (ix.declared_by or ""):
        sev = Severity.INFO
    why = f"Drop {ix.name}; keep {other.name}."
    model = code.model(ix.table)
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
            "app_label": ix.app_label or model.app_label,
            "model": ix.model or model.name,
            "latest_migration": model.latest_migration,
        },
        recommendation=drop_recommendation(ix, code, dialect, why),
        action=None
        if sev == Severity.INFO
        else f"Drop the index {ix.name} on {ix.model or model.name}: {other.name} already serves every lookup it serves.",
        evidence=Evidence(
            EvidenceStrength.STATISTICS if ix.definition else EvidenceStrength.PATTERN,
            (
                {"index": ix.name, "definition": ix.definition},
                {"index": other.name, "definition": other.definition},
            ),
        ),
        chapter="indexing",
    )
