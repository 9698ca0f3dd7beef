"""The index advisor: indexes to add and to drop, with the SQL, the Django change and migrations.

One module per concept: :mod:`.candidates` (indexes the workload needs), built on :mod:`.needs`
(the keys a statement needs and whether an index serves them) and :mod:`.mysql_facts` (MySQL's
own evidence), :mod:`.unused` and
:mod:`.duplicates` (indexes to drop), :mod:`.ddl` (DDL, ``Meta.indexes`` entries, one migration
per app) and :mod:`.hypopg` (validation against the database's planner, read-only). The catalog
they read is :mod:`auditkit.analysis.catalog`; the client's model names come from
:mod:`auditkit.analysis.code`. Thresholds: the ``index`` family of :mod:`auditkit.config`.
"""

from __future__ import annotations

from auditkit.checks.indexes.candidates import CandidateKey, candidates, index_candidates
from auditkit.checks.indexes.ddl import MigrationFile, migrations_for
from auditkit.checks.indexes.duplicates import duplicate_indexes, duplicates
from auditkit.checks.indexes.hypopg import validate_with_hypopg, validation_plans
from auditkit.checks.indexes.unused import unused, unused_indexes

__all__ = [
    "CandidateKey",
    "MigrationFile",
    "candidates",
    "duplicate_indexes",
    "duplicates",
    "index_candidates",
    "migrations_for",
    "unused",
    "unused_indexes",
    "validate_with_hypopg",
    "validation_plans",
]
