"""Read-only live collection from PostgreSQL: the statistics, catalog and plans the loaders read.

:func:`collect_postgres` connects with the DSN held in an environment variable (the DSN is never
stored, logged or written, and every text written is scrubbed of passwords) and reads, in
read-only transactions, what an audit needs. Every statement it sends passes
:func:`check_read_only` first, which refuses anything but reading: the collector never creates
an extension, an object or a row, never changes a setting beyond its own session, and takes no
lock that outlives its transaction.

Guarantees, in layers:

* the session runs with ``default_transaction_read_only = on``, ``statement_timeout``,
  ``lock_timeout`` and ``idle_in_transaction_session_timeout``; each snapshot is one
  ``READ ONLY`` transaction, always rolled back;
* :func:`check_read_only` refuses any statement that is not a read of our own (SELECT, SHOW,
  session SET, savepoints), a plan-only ``EXPLAIN`` (with ``PREPARE``/``DEALLOCATE`` for generic
  plans), or — only when asked — ``EXPLAIN ANALYZE`` of a plain SELECT without parameters,
  locking clause, ``INTO`` or administrative function call;
* what a least-privilege role (``pg_monitor``) may not read is skipped with the reason (in the
  result and in ``collect_postgres.md``), never written as an empty file or raised.

Files (``<view>.csv`` keep the view's own column names, plus ``collected_at``):

============================== ===================================================== ==========================
file                           content                                               loader
============================== ===================================================== ==========================
pg_stat_statements.csv         pg_stat_statements (+ datname, rolname)              pgss_csv
pg_stat_user_tables.csv        pg_stat_user_tables (+ reltuples, stats_reset)        pg_stat_tables
pg_stat_user_indexes.csv       pg_stat_user_indexes (+ stats_reset)                  pg_stat_indexes
pg_statio_user_tables.csv      pg_statio_user_tables                                 pg_statio_tables
pg_statio_user_indexes.csv     pg_statio_user_indexes                                pg_statio_indexes
pg_stat_database.csv           pg_stat_database                                      pg_stat_database
pg_indexes.csv                 pg_indexes + pg_index details (indisunique,           pg_indexes
                               indisprimary, indkey, …), access method, constraint
pg_relation_sizes.csv          size of every user table and index                    pg_relation_sizes
pg_stats.csv                   pg_stats without value lists (no client data)         pg_stats
pg_settings.csv                pg_settings (server_version included; commands and    pg_settings
                               connection strings redacted)
pg_explain.json                EXPLAIN (FORMAT JSON) of the top statements, one      explain_pg_json
                               auto_explain-style object per line
collect_postgres.md            when, server version, what was skipped and why        (documentation)
============================== ===================================================== ==========================

With ``count > 1`` snapshots are taken ``every_s`` apart: the statistics views of every snapshot
but the last go to ``snapshots/<view>-<UTC time>.csv`` and the last snapshot, the catalog and
the plans to the plain names, so that file names order the snapshots (the first and the last
``pg_stat_statements`` give the audit window's delta) and the plain files hold the latest
counters.

Example::

    $ export CLIENT_PG_DSN='postgresql://auditor@db.example/app'
    >>> collect_postgres("CLIENT_PG_DSN", "data/acme/postgres", every_s=60, count=5)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditkit.errors import CollectorError
from auditkit.lazy_re import compile_later

__all__ = [
    "CATALOG",
    "QUERIES",
    "STATISTICS",
    "CollectionResult",
    "check_read_only",
    "collect_postgres",
    "connect_read_only",
    "dsn_from_env",
    "scrub_secrets",
]

_USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"
_STATS_RESET = "(SELECT stats_reset FROM pg_stat_database WHERE datname = current_database())"

#: cumulative statistics: one file per snapshot
STATISTICS: dict[str, str] = {
    "pg_stat_statements.csv": """
        SELECT s.*, d.datname, r.rolname, now() AS collected_at
        FROM pg_stat_statements s
        LEFT JOIN pg_database d ON d.oid = s.dbid
        LEFT JOIN pg_roles r ON r.oid = s.userid
        ORDER BY s.calls DESC""",
    "pg_stat_user_tables.csv": f"""
        SELECT s.*, c.reltuples, {_STATS_RESET} AS stats_reset, now() AS collected_at
        FROM pg_stat_user_tables s
        JOIN pg_class c ON c.oid = s.relid
        ORDER BY s.schemaname, s.relname""",
    "pg_stat_user_indexes.csv": f"""
        SELECT s.*, {_STATS_RESET} AS stats_reset, now() AS collected_at
        FROM pg_stat_user_indexes s
        ORDER BY s.schemaname, s.relname, s.indexrelname""",
    "pg_statio_user_tables.csv": """
        SELECT s.*, now() AS collected_at FROM pg_statio_user_tables s
        ORDER BY s.schemaname, s.relname""",
    "pg_statio_user_indexes.csv": """
        SELECT s.*, now() AS collected_at FROM pg_statio_user_indexes s
        ORDER BY s.schemaname, s.relname, s.indexrelname""",
    "pg_stat_database.csv": """
        SELECT s.*, now() AS collected_at FROM pg_stat_database s
        ORDER BY s.datname NULLS FIRST""",
}

#: the catalog and settings: once, with the last snapshot
CATALOG: dict[str, str] = {
    "pg_indexes.csv": f"""
        SELECT x.schemaname, x.tablename, x.indexname, x.tablespace, x.indexdef,
               i.indisprimary, i.indisunique, i.indisvalid, con.contype AS constraint_type,
               am.amname, i.indnatts, i.indnkeyatts, i.indisexclusion, i.indimmediate,
               i.indisclustered, i.indisready, i.indislive, i.indkey::text AS indkey,
               i.indoption::text AS indoption, i.indpred IS NOT NULL AS partial,
               i.indexprs IS NOT NULL AS expression
        FROM pg_indexes x
        JOIN pg_namespace n ON n.nspname = x.schemaname
        JOIN pg_class c ON c.relname = x.indexname AND c.relnamespace = n.oid
        JOIN pg_index i ON i.indexrelid = c.oid
        JOIN pg_am am ON am.oid = c.relam
        LEFT JOIN pg_constraint con ON con.conindid = c.oid AND con.contype IN ('p', 'u', 'x')
        WHERE {_USER_SCHEMAS}
        ORDER BY x.schemaname, x.tablename, x.indexname""",
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
    "pg_settings.csv": """
        SELECT name, setting, unit, category, context, vartype, source, min_val, max_val,
               boot_val, reset_val, pending_restart
        FROM pg_settings ORDER BY name""",
}

#: every query by file name (the statistics, then the catalog)
QUERIES: dict[str, str] = {**STATISTICS, **CATALOG}

#: settings whose values may hold credentials or commands: written as "[redacted]"
_SECRET_SETTINGS = compile_later(r"conninfo|command|password|passphrase|secret|_key$", re.I)

#: EXPLAIN: statements worth a plan, by their first keyword
_PLANNABLE = compile_later(r"^\s*(select|with|insert|update|delete|merge|values|table)\b", re.I)
_PARAM = compile_later(r"\$(\d+)")
_LOCKING = compile_later(r"\bfor\s+(?:no\s+key\s+)?(?:update|share|key\s+share)\b", re.I)
_WRITING = compile_later(r"\b(insert|update|delete|merge|into|copy|call|do|lock|truncate)\b", re.I)
_ADMIN_CALL = compile_later(
    r"\b(pg_\w+|set_config|lo_\w+|dblink\w*|nextval|setval|txid_\w+|query_to_xml\w*)\s*\(", re.I
)

# -- the read-only guard ----------------------------------------------------------------------
_COMMENTS = compile_later(r"^(?:\s+|--[^\n]*\n?|/\*.*?\*/)*", re.S)
_SESSION_SET = compile_later(
    r"^set\s+(?:local\s+)?(statement_timeout|lock_timeout|idle_in_transaction_session_timeout"
    r"|plan_cache_mode|application_name)\b|^set\s+transaction\s+read\s+only\b",
    re.I,
)


def _strip(sql: str) -> str:
    return _COMMENTS.sub("", sql, count=1)


def plain_select(sql: str) -> bool:
    """True for a SELECT (or WITH … SELECT) that cannot write, lock or call an admin function."""
    text = _strip(sql)
    first = text.split(None, 1)[0].lower() if text.split() else ""
    if first not in ("select", "with", "values", "table"):
        return False
    return not (_WRITING.search(text) or _LOCKING.search(text) or _ADMIN_CALL.search(text))


def check_read_only(sql: str) -> None:
    """Raise :class:`CollectorError` unless ``sql`` only reads (see the module docstring)."""
    text = _strip(sql)
    words = text.split(None, 2)
    first = words[0].lower() if words else ""
    ok = False
    if first in ("select", "show", "savepoint", "release", "deallocate"):
        ok = first != "select" or not re.search(r"\binto\b", text, re.I)
    elif first == "rollback":
        ok = True
    elif first == "set":
        ok = bool(_SESSION_SET.match(text))
    elif first == "prepare":
        body = re.match(r"^prepare\s+auditkit_\w+(?:\s*\([^)]*\))?\s+as\s+(.*)$", text, re.I | re.S)
        ok = bool(body and _PLANNABLE.match(body.group(1)))
    elif first == "explain":
        options = re.match(r"^explain\s*\(([^)]*)\)\s*(.*)$", text, re.I | re.S)
        if options:
            flags, target = options.group(1).lower(), options.group(2)
            analyze = re.search(r"\banalyze\b(?!\s+(?:false|off|0)\b)", flags) is not None
            if analyze:
                ok = plain_select(target) and not _PARAM.search(target)
            else:
                ok = bool(_PLANNABLE.match(target)) or bool(
                    re.match(r"^execute\s+auditkit_\w+", target, re.I)
                )
    if not ok:
        shown = " ".join(text.split())[:60]
        raise CollectorError(
            f"refusing to send {shown!r}: the PostgreSQL collector only reads",
            hint="it sends SELECT, SHOW, session SET, savepoints and plan-only EXPLAIN",
        )


# -- results ----------------------------------------------------------------------------------
@dataclass
class CollectionResult:
    """What :func:`collect_postgres` wrote, and what it skipped and why."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    server_version: str = ""
    server_version_num: int = 0
    stats_reset: str | None = None
    collected_at: str = ""
    snapshots: int = 0
    plans: int = 0


def dsn_from_env(name: str) -> str:
    """The DSN held by environment variable ``name``; a CollectorError naming it when unset."""
    value = os.environ.get(name)
    if not value:
        raise CollectorError(
            f"environment variable {name} is not set",
            hint=f"export {name}='postgresql://user@host/db' (the DSN is read from the environment only, never stored)",
        )
    return value


def scrub_secrets(text: str, dsn: str = "") -> str:
    """``text`` with the DSN, passwords and tokens replaced (see auditkit.report.redact)."""
    from auditkit.report.redact import scrub_secrets as scrub

    return scrub(text, [dsn] if dsn else [])


class _Session:
    """A psycopg connection whose every statement passes :func:`check_read_only`."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sent: list[str] = []

    def execute(self, sql: str, params: Any = None) -> Any:
        check_read_only(sql)
        self.sent.append(sql)
        return self.conn.execute(sql, params)

    def rollback(self) -> None:
        self.conn.rollback()


@contextlib.contextmanager
def connect_read_only(
    dsn_env: str,
    *,
    application_name: str = "auditkit-collector",
    statement_timeout_ms: int = 30_000,
    lock_timeout_ms: int = 1_000,
) -> Iterator[Any]:
    """A psycopg connection that cannot write, inside a READ ONLY transaction.

    The session runs with ``default_transaction_read_only=on``, ``statement_timeout``,
    ``lock_timeout`` and ``idle_in_transaction_session_timeout``; the connection is marked
    read-only (psycopg begins every transaction with ``BEGIN READ ONLY``). Any write fails with
    ``ReadOnlySqlTransaction``. The transaction is rolled back on exit.
    """
    import psycopg

    dsn = dsn_from_env(dsn_env)
    options = (
        f"-c default_transaction_read_only=on -c statement_timeout={int(statement_timeout_ms)}"
        f" -c lock_timeout={int(lock_timeout_ms)} -c idle_in_transaction_session_timeout=300000"
    )
    try:
        conn = psycopg.connect(
            dsn, options=options, application_name=application_name, autocommit=False
        )
    except psycopg.Error as exc:
        raise CollectorError(
            f"cannot connect with the DSN in ${dsn_env}: {scrub_secrets(str(exc).strip(), dsn)}",
            hint="check the DSN, the network and that the user may log in",
        ) from None
    try:
        conn.read_only = True
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.rollback()
        conn.close()


# -- collection -------------------------------------------------------------------------------
def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def collect_postgres(
    dsn_env: str,
    out_dir: str | Path,
    *,
    every_s: float = 60.0,
    count: int = 1,
    explain_top: int = 20,
    explain_analyze: bool = False,
    statement_timeout_ms: int = 30_000,
    lock_timeout_ms: int = 1_000,
    progress: Callable[[str], None] | None = None,
) -> CollectionResult:
    """Write statistics, catalog and plans of the database named by ``$dsn_env`` (read-only).

    ``count`` snapshots ``every_s`` seconds apart (see the module docstring for the files);
    ``explain_top`` statements of pg_stat_statements (by total time) get an EXPLAIN — a generic
    plan where the server supports one — and, with ``explain_analyze``, EXPLAIN ANALYZE when
    they are plain SELECTs without parameters. What cannot be read is skipped with the reason.
    """
    import psycopg

    if count < 1:
        raise CollectorError("count must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = CollectionResult(out)
    say = progress or (lambda message: None)
    dsn = dsn_from_env(dsn_env)
    with connect_read_only(
        dsn_env, statement_timeout_ms=statement_timeout_ms, lock_timeout_ms=lock_timeout_ms
    ) as conn:
        session = _Session(conn)
        start = time.monotonic()
        for tick in range(count):
            if tick:
                time.sleep(max(0.0, start + tick * every_s - time.monotonic()))
            last = tick == count - 1
            try:
                _snapshot(session, result, out, last=last, dsn=dsn)
                if last and explain_top > 0:
                    _explain(session, result, out, explain_top, explain_analyze, dsn)
            except psycopg.Error as exc:
                raise CollectorError(
                    f"reading PostgreSQL failed: {scrub_secrets(str(exc).strip().splitlines()[0], dsn)}"
                ) from None
            finally:
                session.rollback()
            result.snapshots += 1
            say(f"snapshot {tick + 1}/{count} at {result.collected_at}")
    notes = out / "collect_postgres.md"
    notes.write_text(scrub_secrets(_notes(result, count, every_s), dsn), encoding="utf-8")
    result.files.append(notes)
    return result


def _snapshot(
    session: _Session, result: CollectionResult, out: Path, *, last: bool, dsn: str
) -> None:
    """One read-only transaction: the statistics views (and, on the last, the catalog)."""
    info = session.execute(
        "SELECT version(), current_setting('server_version_num')::int, now(), "
        f"{_STATS_RESET}, "
        "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'), "
        "current_user, pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')"
    ).fetchone()
    assert info is not None
    result.server_version = str(info[0])
    result.server_version_num = int(info[1])
    moment: datetime = info[2]
    result.collected_at = moment.astimezone(UTC).isoformat(timespec="seconds")
    result.stats_reset = info[3].astimezone(UTC).isoformat(timespec="seconds") if info[3] else None
    has_pgss, role, read_all_stats = bool(info[4]), str(info[5]), bool(info[6])
    tables = True
    queries = dict(STATISTICS)
    if last:
        queries.update(CATALOG)
    for name, query in queries.items():
        if name == "pg_stat_statements.csv" and not has_pgss:
            result.skipped[name] = (
                "the pg_stat_statements extension is not installed in this database (auditkit "
                "never installs it: ask for shared_preload_libraries = 'pg_stat_statements' and "
                "CREATE EXTENSION pg_stat_statements)"
            )
            continue
        header, rows, error = _read(session, query)
        if error is not None:
            result.skipped[name] = f"not readable by role {role}: {error}"
            continue
        if name == "pg_stat_user_tables.csv":
            tables = bool(rows)
        if not rows:
            result.skipped[name] = _why_empty(name, role, tables)
            continue
        if name == "pg_settings.csv":
            rows = _redacted_settings(header, rows)
        if name == "pg_stat_statements.csv":
            hidden = _scrub_queries(header, rows, dsn)
            if hidden:
                result.notes.append(
                    f"pg_stat_statements: the text of {hidden} {'statement' if hidden == 1 else 'statements'} is hidden from role "
                    f"{role}"
                    + ("" if read_all_stats else " (grant it pg_read_all_stats or pg_monitor)")
                )
        path = out / name if last else out / "snapshots" / f"{name[:-4]}-{_stamp(moment)}.csv"
        _write_csv(path, header, rows)
        result.files.append(path)
        result.rows[name if last else str(path.relative_to(out))] = len(rows)


def _read(session: _Session, query: str) -> tuple[list[str], list[tuple[Any, ...]], str | None]:
    """Run ``query`` under a savepoint: (header, rows, None) or ([], [], why it failed)."""
    import psycopg

    session.execute("SAVEPOINT auditkit_read")
    try:
        cur = session.execute(query)
        header = [d.name for d in cur.description or []]
        rows = cur.fetchall()
    except psycopg.Error as exc:
        session.execute("ROLLBACK TO SAVEPOINT auditkit_read")
        return [], [], str(exc).strip().splitlines()[0]
    session.execute("RELEASE SAVEPOINT auditkit_read")
    return header, rows, None


def _why_empty(name: str, role: str, tables: bool) -> str:
    if name == "pg_stats.csv" and tables:
        return (
            f"no rows visible to role {role}: pg_stats shows only columns the role may SELECT "
            "(grant SELECT on the tables, or run as their owner), and only of analysed tables"
        )
    if name == "pg_stat_statements.csv":
        return "no statements recorded yet (just reset?)"
    return "no rows (no user tables or indexes in this database?)"


def _redacted_settings(header: list[str], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    name_at = header.index("name")
    value_cols = [i for i, h in enumerate(header) if h in ("setting", "boot_val", "reset_val")]
    out = []
    for row in rows:
        if _SECRET_SETTINGS.search(str(row[name_at])):
            row = tuple(
                "[redacted]" if i in value_cols and v not in (None, "") else v
                for i, v in enumerate(row)
            )
        out.append(row)
    return out


def _scrub_queries(header: list[str], rows: list[tuple[Any, ...]], dsn: str) -> int:
    """Scrub passwords from query texts in place; return how many texts were hidden."""
    if "query" not in header:
        return 0
    at = header.index("query")
    hidden = 0
    for i, row in enumerate(rows):
        text = row[at]
        if text == "<insufficient privilege>":
            hidden += 1
        elif isinstance(text, str):
            rows[i] = (*row[:at], scrub_secrets(text, dsn), *row[at + 1 :])
    return hidden


# -- plans ------------------------------------------------------------------------------------
def _top_statements(session: _Session, limit: int) -> list[tuple[str, str]]:
    """(queryid, query) of this database's statements with the largest total time."""
    cols = {
        r[0]
        for r in session.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'pg_stat_statements'::regclass "
            "AND attnum > 0"
        ).fetchall()
    }
    total = "total_exec_time" if "total_exec_time" in cols else "total_time"
    toplevel = "AND toplevel" if "toplevel" in cols else ""
    rows = session.execute(
        f"SELECT queryid::text, query FROM pg_stat_statements "
        f"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) {toplevel} "
        f"ORDER BY {total} DESC LIMIT %s",
        (limit * 5,),
    ).fetchall()
    out = []
    for queryid, query in rows:
        if isinstance(query, str) and _PLANNABLE.match(_strip(query)):
            out.append((queryid, query))
        if len(out) >= limit:
            break
    return out


def _explain(
    session: _Session, result: CollectionResult, out: Path, top: int, analyze: bool, dsn: str
) -> None:
    """EXPLAIN (FORMAT JSON) the top statements into ``pg_explain.json`` (see the docstring)."""
    import psycopg

    if "pg_stat_statements.csv" in result.skipped:
        result.skipped["pg_explain.json"] = "no pg_stat_statements to choose statements from"
        return
    version = result.server_version_num
    try:
        candidates = _top_statements(session, top)
    except psycopg.Error as exc:
        session.rollback()
        result.skipped["pg_explain.json"] = (
            f"cannot read pg_stat_statements: {str(exc).splitlines()[0]}"
        )
        return
    lines: list[str] = []
    failures: list[str] = []
    for n, (queryid, query) in enumerate(candidates, 1):
        text = _strip(query).rstrip().rstrip(";")
        params = max((int(m) for m in _PARAM.findall(text)), default=0)
        kind = "generic" if params else "plain"
        do_analyze = analyze and not params and plain_select(text)
        session.execute("SAVEPOINT auditkit_explain")
        try:
            if do_analyze:
                doc = _one(session, f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {text}")
                kind = "analyze"
            elif not params:
                doc = _one(session, f"EXPLAIN (FORMAT JSON) {text}")
            elif version >= 160000:
                doc = _one(session, f"EXPLAIN (FORMAT JSON, GENERIC_PLAN) {text}")
            elif version >= 120000:
                session.execute(f"PREPARE auditkit_p{n} AS {text}")
                session.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                nulls = ", ".join(["NULL"] * params)
                doc = _one(session, f"EXPLAIN (FORMAT JSON) EXECUTE auditkit_p{n}({nulls})")
                session.execute(f"DEALLOCATE auditkit_p{n}")
            else:
                raise CollectorError("generic plans need PostgreSQL 12 or later")
        except (psycopg.Error, CollectorError) as exc:
            session.execute("ROLLBACK TO SAVEPOINT auditkit_explain")
            reason = str(exc).strip().splitlines()[0]
            failures.append(f"queryid {queryid}: {scrub_secrets(reason, dsn)}")
            continue
        session.execute("ROLLBACK TO SAVEPOINT auditkit_explain")  # nothing of it is kept
        plan = doc[0] if isinstance(doc, list) and doc else doc
        if not isinstance(plan, dict) or "Plan" not in plan:
            failures.append(f"queryid {queryid}: EXPLAIN returned no plan")
            continue
        record = {
            "Query Text": scrub_secrets(text, dsn),
            **plan,
            "auditkit": {"queryid": queryid, "plan": kind, "collected_at": result.collected_at},
        }
        lines.append(json.dumps(record, default=str))
        if analyze and not do_analyze:
            reason = "has parameters" if params else "is not a plain SELECT"
            failures.append(f"queryid {queryid}: not analysed: the statement {reason}")
    if lines:
        path = out / "pg_explain.json"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result.files.append(path)
        result.rows["pg_explain.json"] = len(lines)
        result.plans = len(lines)
    elif candidates:
        result.skipped["pg_explain.json"] = "no statement could be explained"
    else:
        result.skipped["pg_explain.json"] = "no plannable statement in pg_stat_statements"
    result.notes.extend(f"EXPLAIN {f}" for f in failures)


def _one(session: _Session, sql: str) -> Any:
    row = session.execute(sql).fetchone()
    value = row[0] if row else None
    return json.loads(value) if isinstance(value, str) else value


# -- files ------------------------------------------------------------------------------------
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow([_cell(v) for v in row])
    tmp.replace(path)


def _notes(result: CollectionResult, count: int, every_s: float) -> str:
    lines = [
        "# PostgreSQL collection",
        "",
        f"- collected at: {result.collected_at} (UTC), read-only transactions, rolled back",
        f"- snapshots: {result.snapshots} of {count}"
        + (f", every {every_s:g} s" if count > 1 else ""),
        f"- server: {result.server_version}",
        f"- statistics reset: {result.stats_reset or 'never (since the cluster was created)'}",
        f"- plans: {result.plans}",
        "",
        "| file | rows |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {n} |" for name, n in result.rows.items()]
    if result.skipped:
        lines += ["", "Not collected:", ""]
        lines += [f"- {name}: {why}" for name, why in result.skipped.items()]
    if result.notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"
