"""What kind of statement this is, read from its text: the workload's, or the auditor's own.

No parsing: these run on every fingerprint of a workload before it is analysed.

* :func:`is_system_relation` — a database's own catalog or statistics relation.
* :func:`reads_system_schema` — a read of those catalogs and nothing of the application's.
* :func:`is_collection_statement` — what a monitoring tool or auditkit's collector issues
  (SHOW, session SET, EXPLAIN, catalog reads, the collector's sessions).
* :func:`is_schema_change` and :func:`is_maintenance_statement` — what a migration or a DBA
  runs: DDL, ``django_migrations``, VACUUM/ANALYZE/TRUNCATE/GRANT…

:mod:`auditkit.analysis.workload` leaves these out of the workload, once.
"""

from __future__ import annotations

import re

from auditkit.lazy_re import compile_later
from auditkit.sql.analyze import split_top_level

__all__ = [
    "COLLECTOR_APPLICATIONS",
    "is_collection_statement",
    "is_maintenance_statement",
    "is_schema_change",
    "is_system_relation",
    "reads_system_schema",
]

_SYSTEM = compile_later(
    r"^(?:pg_|sqlite_)|^(?:information_schema|performance_schema|mysql|sys)$", re.I
)


def is_system_relation(name: str) -> bool:
    """True for a relation of the database's own catalogs (``pg_class``, ``pg_stat_statements``,
    ``information_schema``, ``sqlite_master``…): never a target for index advice."""
    return bool(_SYSTEM.match(name))


#: schemas of the database's own catalogs and statistics, in any dialect
_SYSTEM_SCHEMAS = frozenset(
    {"pg_catalog", "information_schema", "performance_schema", "mysql", "sys", "pg_toast"}
)
_COMMENT = compile_later(r"/\*.*?\*/|--[^\n]*", re.S)
_IDENT = r'(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*)'
#: a relation after FROM or JOIN: optional schema, then name
_RELATION = compile_later(
    rf"\b(from|join)\s+(?:only\s+|lateral\s+)?(?!\()({_IDENT}(?:\s*\.\s*{_IDENT})?)", re.I
)
#: what ends a FROM list's comma-separated items
_FROM_END = compile_later(
    r"\b(?:where|group|order|limit|having|window|union|intersect|except|join|inner|left|right"
    r"|full|cross|natural|on|using|for|returning)\b|[();]",
    re.I,
)
_FROM_ITEM = compile_later(rf"^\s*({_IDENT}(?:\s*\.\s*{_IDENT})?)")
#: the name of a common table expression (WITH name AS (…), name AS (…))
_CTE = compile_later(
    rf"(?:\bwith(?:\s+recursive)?|,)\s*({_IDENT})\s+as\s+(?:not\s+)?(?:materialized\s+)?\(", re.I
)
#: functions that read the server's own state rather than application data
_SYSTEM_FUNCTION = compile_later(
    r"\b(?:pg_\w+|version|current_setting|set_config|current_user|session_user|current_database"
    r"|current_schema|database|connection_id|hypopg\w*|txid_\w+)\s*\(|@@",
    re.I,
)
_SELECT = compile_later(r"^\s*(?:select|with|values|table)\b", re.I)
#: statements a monitoring tool or a session's set-up issues, never the application's work:
#: SHOW, SET of a session setting (``SET NAMES``, ``SET SESSION TRANSACTION …``, ``SET
#: statement_timeout``), EXPLAIN (a consultant's plan capture), and the savepoints auditkit's
#: own collector wraps each read in
_COLLECTION_COMMAND = compile_later(
    r"^\s*(?:show|set|explain|describe|desc|analyze\s+format|(?:savepoint|release(?:\s+savepoint)?"
    r"|rollback\s+to(?:\s+savepoint)?)\s+auditkit_\w*)\b",
    re.I,
)
#: the application names auditkit's collectors connect with
COLLECTOR_APPLICATIONS = frozenset({"auditkit-collector"})


def _unquote_ident(name: str) -> str:
    name = name.strip()
    if name[:1] in '"`[' and len(name) > 1:
        return name[1:-1]
    return name


def reads_system_schema(sql: str) -> bool:
    """True when ``sql`` reads only the database's own catalogs and statistics.

    Every relation it reads is a system one — schema ``pg_catalog``, ``information_schema``,
    ``performance_schema``, ``mysql`` or ``sys``, or a name of :func:`is_system_relation`
    (``pg_stat_statements``, ``pg_stat_user_tables``, ``pg_class``…) — or it reads no relation
    and calls the server's own functions (``SELECT version()``, ``SELECT @@sql_auto_is_null``).
    A statement that also reads one application table is the application's.

    >>> reads_system_schema("SELECT * FROM pg_stat_user_tables s")
    True
    >>> reads_system_schema("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?")
    True
    >>> reads_system_schema('SELECT c.relname FROM pg_class c JOIN "app_book" b ON true')
    False
    """
    text = _COMMENT.sub(" ", sql)
    if not _SELECT.match(text):
        return False
    refs: list[str] = []
    for m in _RELATION.finditer(text):
        refs.append(m.group(2))
        if m.group(1).lower() == "from":  # FROM a, b, c: the items after the first
            tail = text[m.end() :]
            end = _FROM_END.search(tail)
            for item in (tail[: end.start()] if end else tail).split(",")[1:]:
                first = _FROM_ITEM.match(item)
                if first:
                    refs.append(first.group(1))
    ctes = {_unquote_ident(m.group(1)).lower() for m in _CTE.finditer(text)}
    relations = [
        parts
        for ref in refs
        if (parts := [_unquote_ident(p) for p in re.split(r"\s*\.\s*", ref.strip(), maxsplit=1)])
        and not (len(parts) == 1 and parts[0].lower() in ctes)
    ]
    if not relations:
        return bool(_SYSTEM_FUNCTION.search(text))
    for parts in relations:
        if len(parts) == 2:
            schema, name = parts
            if schema.lower() in _SYSTEM_SCHEMAS or is_system_relation(name):
                continue
            return False
        name = parts[0]
        if name.lower() in ("lateral", "only", "unnest", "generate_series"):
            continue
        if not is_system_relation(name) or name.lower() in _SYSTEM_SCHEMAS:
            return False
    return True


def is_collection_statement(sql: str, application: str | None = None) -> bool:
    """True when ``sql`` is a statement of monitoring or collection, not the client's workload.

    That is a statement of auditkit's own collector (its ``application`` name, or the
    ``auditkit_…`` savepoints it reads under), a ``SHOW``, a ``SET`` of a session setting, an
    ``EXPLAIN``, or a read of the system schemas only (:func:`reads_system_schema`). They
    are what a monitoring agent, a consultant or a driver's connection set-up runs: counted in the
    workload they would become slow statements, N+1s and shares of time the application never
    spent.

    >>> is_collection_statement("SHOW GLOBAL STATUS")
    True
    >>> is_collection_statement("SET NAMES utf8mb4")
    True
    >>> is_collection_statement('SELECT "app_book"."id" FROM "app_book"')
    False
    """
    if application and application in COLLECTOR_APPLICATIONS:
        return True
    text = _COMMENT.sub(" ", sql).lstrip()
    if _COLLECTION_COMMAND.match(text):
        return True
    return reads_system_schema(text)


#: a change to the schema: what a migration (Django's schema editor, a dump being restored, a
#: DBA) runs — never a temporary table or view, which applications create as they work
_SCHEMA_CHANGE = compile_later(
    r"^\s*(?:create|alter|drop|rename|comment\s+on)\b"
    r"(?!\s+(?:(?:global|local)\s+)?(?:or\s+replace\s+)?(?:temp|temporary)\b)",
    re.I,
)
#: statements that maintain the database rather than serve the application: statistics and
#: storage upkeep, a restore's table locks, privileges, and the constraint checks Django's
#: schema editor and test runner force
_MAINTENANCE_COMMAND = compile_later(
    r"^\s*(?:truncate|vacuum|reindex|cluster|optimize\s+(?:no_write_to_binlog\s+|local\s+)?table"
    r"|check\s+table|repair\s+table|flush\s+tables|(?:un)?lock\s+tables|grant|revoke"
    r"|set\s+constraints|analyze(?!\s+(?:format|select|insert|update|delete|with)\b))\b",
    re.I,
)
#: the table where Django records the migrations it applied
_MIGRATIONS_TABLE = compile_later(r"\bdjango_migrations\b", re.I)


def _parts(sql: str) -> list[str]:
    """The statements of ``sql`` (Django's schema editor sends some two at a time), comments
    removed."""
    text = _COMMENT.sub(" ", sql)
    return [p for p in split_top_level(text, ";") if p.strip()] if ";" in text else [text]


def is_schema_change(sql: str) -> bool:
    """True when ``sql`` changes the schema or keeps Django's record of migrations: ``CREATE``,
    ``ALTER``, ``DROP``, ``RENAME`` or ``COMMENT ON`` (of anything but a temporary table or
    view), a read or write of ``django_migrations``, or Django's schema editor filling a new
    column (``UPDATE … WHERE col IS NULL; SET CONSTRAINTS ALL IMMEDIATE``).

    Such a statement marks its session as a migration: the statements around it (the
    transactions, the introspection, ``post_migrate``'s content types and permissions) are the
    migration's too — see :func:`auditkit.analysis.workload.without_maintenance`.

    >>> is_schema_change('ALTER TABLE "shop_order" ADD COLUMN "note" text NULL')
    True
    >>> is_schema_change('SELECT "django_migrations"."app" FROM "django_migrations"')
    True
    >>> is_schema_change("CREATE TEMPORARY TABLE batch (id int)")
    False
    >>> is_schema_change('UPDATE "shop_order" SET "note" = ? WHERE "note" IS NULL')
    False
    """
    if _MIGRATIONS_TABLE.search(sql):
        return True
    parts = _parts(sql)
    if any(_SCHEMA_CHANGE.match(p) for p in parts):
        return True
    return len(parts) > 1 and any(re.match(r"\s*set\s+constraints\b", p, re.I) for p in parts)


def is_maintenance_statement(sql: str) -> bool:
    """True when ``sql`` maintains the database rather than serves the application: a schema
    change or migration bookkeeping (:func:`is_schema_change`), ``VACUUM``, ``ANALYZE`` of a
    table, ``REINDEX``, ``CLUSTER``, ``TRUNCATE``, ``OPTIMIZE``/``CHECK``/``REPAIR TABLE``,
    ``FLUSH TABLES``, ``LOCK``/``UNLOCK TABLES``, ``GRANT``/``REVOKE``, ``SET CONSTRAINTS``.

    >>> is_maintenance_statement("VACUUM ANALYZE shop_order")
    True
    >>> is_maintenance_statement("ANALYZE FORMAT=JSON SELECT 1")
    False
    >>> is_maintenance_statement("COMMIT")
    False
    """
    return is_schema_change(sql) or any(_MAINTENANCE_COMMAND.match(p) for p in _parts(sql))
