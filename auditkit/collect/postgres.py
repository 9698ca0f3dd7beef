"""Read-only live collection from PostgreSQL: the catalog and statistics files the loaders read.

:func:`collect_postgres` connects with the DSN held in an environment variable (the DSN itself
is never stored, logged or written), opens a transaction that cannot write —
``default_transaction_read_only=on`` for the session and ``SET TRANSACTION READ ONLY`` on the
transaction — and writes, into ``out_dir``:

=========================== ==================================================== ==================
file                        content                                              loader
=========================== ==================================================== ==================
pg_indexes.csv              pg_indexes + indisprimary/indisunique/indisvalid,    pg_indexes
                            constraint_type
pg_stat_user_tables.csv     pg_stat_user_tables + reltuples, stats_reset,        pg_stat_tables
                            collected_at
pg_stat_user_indexes.csv    pg_stat_user_indexes + stats_reset, collected_at     pg_stat_indexes
pg_relation_sizes.csv       size of every user table and index                   pg_relation_sizes
pg_stats.csv                pg_stats without value lists (no client data)        pg_stats
pg_stat_statements.csv      pg_stat_statements, when installed and readable      (query profile)
collect_postgres.md         when, server version, statistics reset, what was     (documentation)
                            skipped and why
=========================== ==================================================== ==================

``stats_reset`` is the database's statistics reset time (``pg_stat_database``): the window the
scan counts cover, stated by the unused-index check. ``pg_stats`` is exported without
``most_common_vals`` and ``histogram_bounds``, which hold real column values.

Example::

    $ export CLIENT_PG_DSN='postgresql://auditor@db.example/app'
    >>> collect_postgres("CLIENT_PG_DSN", "data/acme/postgres")   # doctest: +SKIP
    CollectionResult(files=[…], skipped={…})
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditkit.errors import CollectorError

__all__ = [
    "QUERIES",
    "CollectionResult",
    "collect_postgres",
    "connect_read_only",
    "dsn_from_env",
    "scrub_secrets",
]

_USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"

#: file name → query. Each runs in the same read-only transaction (one consistent snapshot).
QUERIES: dict[str, str] = {
    "pg_indexes.csv": f"""
        SELECT x.schemaname, x.tablename, x.indexname, x.tablespace, x.indexdef,
               i.indisprimary, i.indisunique, i.indisvalid, con.contype AS constraint_type
        FROM pg_indexes x
        JOIN pg_namespace n ON n.nspname = x.schemaname
        JOIN pg_class c ON c.relname = x.indexname AND c.relnamespace = n.oid
        JOIN pg_index i ON i.indexrelid = c.oid
        LEFT JOIN pg_constraint con ON con.conindid = c.oid AND con.contype IN ('p', 'u', 'x')
        WHERE {_USER_SCHEMAS}
        ORDER BY x.schemaname, x.tablename, x.indexname""",
    "pg_stat_user_tables.csv": """
        SELECT s.*, c.reltuples, d.stats_reset, now() AS collected_at
        FROM pg_stat_user_tables s
        JOIN pg_class c ON c.oid = s.relid
        CROSS JOIN (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()) d
        ORDER BY s.schemaname, s.relname""",
    "pg_stat_user_indexes.csv": """
        SELECT s.*, d.stats_reset, now() AS collected_at
        FROM pg_stat_user_indexes s
        CROSS JOIN (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()) d
        ORDER BY s.schemaname, s.relname, s.indexrelname""",
    "pg_relation_sizes.csv": f"""
        SELECT n.nspname AS schemaname, c.relname, c.relkind, t.relname AS table_name,
               pg_relation_size(c.oid) AS size_bytes, pg_total_relation_size(c.oid) AS total_size_bytes
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_index i ON i.indexrelid = c.oid
        LEFT JOIN pg_class t ON t.oid = i.indrelid
        WHERE c.relkind IN ('r', 'p', 'm', 'i', 'I') AND {_USER_SCHEMAS}
        ORDER BY n.nspname, c.relname""",
    "pg_stats.csv": """
        SELECT schemaname, tablename, attname, inherited, null_frac, avg_width, n_distinct,
               correlation, most_common_freqs
        FROM pg_stats
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE 'pg_toast%'
        ORDER BY schemaname, tablename, attname""",
    "pg_stat_statements.csv": """
        SELECT s.*, d.datname, r.rolname
        FROM pg_stat_statements s
        LEFT JOIN pg_database d ON d.oid = s.dbid
        LEFT JOIN pg_roles r ON r.oid = s.userid
        ORDER BY s.calls DESC""",
}

#: files that may be missing without failing the collection (extension absent, no privilege)
OPTIONAL = {"pg_stat_statements.csv", "pg_stats.csv"}


@dataclass
class CollectionResult:
    """What :func:`collect_postgres` wrote, and what it skipped and why."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    server_version: str = ""
    stats_reset: str | None = None
    collected_at: str = ""


def dsn_from_env(name: str) -> str:
    """The DSN held by environment variable ``name``; a CollectorError naming it when unset."""
    value = os.environ.get(name)
    if not value:
        raise CollectorError(
            f"environment variable {name} is not set",
            hint=f"export {name}='postgresql://user@host/db' (the DSN is read from the environment only, never stored)",
        )
    return value


def scrub_secrets(text: str, dsn: str) -> str:
    """An error message with any password (and the DSN itself) blanked out."""
    text = text.replace(dsn, "<dsn>")
    text = re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.I)
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)


@contextlib.contextmanager
def connect_read_only(
    dsn_env: str, *, application_name: str = "auditkit-collector"
) -> Iterator[Any]:
    """A psycopg connection that cannot write, inside a READ ONLY transaction.

    The session runs with ``default_transaction_read_only=on``, the connection is marked
    read-only, and the open transaction starts with ``SET TRANSACTION READ ONLY``; any write
    fails with ``ReadOnlySqlTransaction``. The transaction is rolled back on exit.
    """
    import psycopg

    dsn = dsn_from_env(dsn_env)
    try:
        conn = psycopg.connect(
            dsn,
            options="-c default_transaction_read_only=on -c statement_timeout=60000",
            application_name=application_name,
            autocommit=False,
        )
    except psycopg.Error as exc:
        raise CollectorError(
            f"cannot connect with the DSN in ${dsn_env}: {scrub_secrets(str(exc).strip(), dsn)}",
            hint="check the DSN, the network and that the user may log in",
        ) from None
    try:
        conn.read_only = True
        conn.execute("SET TRANSACTION READ ONLY")
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.rollback()
        conn.close()


def collect_postgres(dsn_env: str, out_dir: str | Path) -> CollectionResult:
    """Write the catalog and statistics exports of the database named by ``$dsn_env``.

    Read-only (see the module docstring); one snapshot for every file. Optional sources
    (pg_stat_statements, pg_stats) that are missing or not readable are skipped with the reason,
    recorded in ``collect_postgres.md`` and in the result.
    """
    import psycopg

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = CollectionResult(out)
    with connect_read_only(dsn_env) as conn:
        info = conn.execute(
            "SELECT current_setting('server_version'), now(), "
            "(SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()), "
            "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')"
        ).fetchone()
        assert info is not None
        result.server_version = str(info[0])
        result.collected_at = info[1].astimezone(UTC).isoformat(timespec="seconds")
        result.stats_reset = (
            info[2].astimezone(UTC).isoformat(timespec="seconds") if info[2] else None
        )
        has_pgss = bool(info[3])
        for name, query in QUERIES.items():
            if name == "pg_stat_statements.csv" and not has_pgss:
                result.skipped[name] = (
                    "the pg_stat_statements extension is not installed in this database"
                )
                continue
            conn.execute("SAVEPOINT auditkit_export")
            try:
                cur = conn.execute(query)
                header = [d.name for d in cur.description or []]
                rows = cur.fetchall()
            except psycopg.Error as exc:
                conn.execute("ROLLBACK TO SAVEPOINT auditkit_export")
                reason = str(exc).strip().splitlines()[0]
                if name in OPTIONAL:
                    result.skipped[name] = reason
                    continue
                raise CollectorError(f"reading {name[:-4]} failed: {reason}") from None
            conn.execute("RELEASE SAVEPOINT auditkit_export")
            path = out / name
            _write_csv(path, header, rows)
            result.files.append(path)
            result.rows[name] = len(rows)
    notes = out / "collect_postgres.md"
    notes.write_text(_notes(result), encoding="utf-8")
    result.files.append(notes)
    return result


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat()
    if isinstance(v, list | tuple):
        return "{" + ",".join("" if x is None else str(x) for x in v) + "}"
    return v


def _write_csv(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow([_cell(v) for v in row])
    tmp.replace(path)


def _notes(result: CollectionResult) -> str:
    lines = [
        "# PostgreSQL collection",
        "",
        f"- collected at: {result.collected_at} (UTC), read-only transaction",
        f"- server version: {result.server_version}",
        f"- statistics reset: {result.stats_reset or 'never (since the cluster was created)'}",
        "",
        "| file | rows |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {n} |" for name, n in result.rows.items()]
    if result.skipped:
        lines += ["", "Skipped:", ""]
        lines += [f"- {name}: {why}" for name, why in result.skipped.items()]
    return "\n".join(lines) + "\n"
