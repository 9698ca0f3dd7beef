"""auditkit's statement groups against PostgreSQL's own: pg_stat_statements on a real server.

A Django-shaped workload runs against a private PostgreSQL cluster
(:class:`devtools.postgres.ThrowawayPostgres`: ``pg_stat_statements`` preloaded, every statement
logged with its duration). Then the server log is read with auditkit's ``postgres_stderr``
loader and grouped by fingerprint, pg_stat_statements is read with SQL, and the two are
compared:

* every pg_stat_statements entry, fingerprinted from its query text, is exactly one logged
  group (same fingerprint, same ``fingerprint_id``);
* every logged group is counted by at least one entry, and the entries' ``calls`` add up to
  the number of executions logged in the group — per group and in total.

The workload is what Django sends: quoted identifiers (``"app_book"."id"``), ``IN`` lists of
1 to 30 items, ``bulk_create``'s multi-row ``INSERT … VALUES … RETURNING``, ``SAVEPOINT
"s<thread>_x<n>"`` / ``RELEASE`` / ``ROLLBACK TO`` (``transaction.atomic`` and
``get_or_create``), booleans, ``None``, negative numbers, strings with quotes and backslashes,
datetimes, ``LIMIT``/``OFFSET`` written into the SQL, sqlcommenter comments, a raw multi-line
statement, and ``BEGIN``/``COMMIT``. It runs twice: with client-side interpolation (psycopg's
``ClientCursor``: literals in the SQL, as Django sends them through psycopg2) and with
server-side ``$n`` parameters (psycopg 3's default; ``executemany``; statements prepared after
five executions, logged as ``parse``/``bind``/``execute``).

Documented differences, each asserted below so that a change shows:

1. **Many entries, one group** — pg_stat_statements (before PostgreSQL 18 for ``IN``) keeps
   one entry per ``IN``-list length and per ``VALUES`` row count, one per literal-vs-parameter
   form of a statement (a constant and a ``$n`` are different parse trees), and one per
   savepoint name (utility statements are not normalised). auditkit merges each into one
   group: the statement a Django developer wrote once. The calls still add up.
2. **Failed statements** are counted by neither: pg_stat_statements records a statement when
   it completes, and the log has no ``duration:`` line for it, only ``ERROR:`` with
   ``STATEMENT:`` (a ``server_events`` row). The ``get_or_create`` race is asserted as such.
3. **Extended protocol**: ``parse`` and ``bind`` log lines are not executions; the loader
   marks them in ``phase`` and only ``execute``/``statement`` rows are counted.
4. **The test's own statements** (resetting and reading pg_stat_statements, the log markers of
   ``sync_log``) run in database ``postgres`` and are excluded; the workload has its own
   database.
5. **Statements the server runs itself**: the referential-integrity checks of foreign keys
   (``SELECT 1 FROM ONLY "public"."app_author" x WHERE "id" OPERATOR(pg_catalog.=) $1 FOR KEY
   SHARE OF x``) are counted by pg_stat_statements with ``track = all`` — as top-level
   statements when Django's ``DEFERRABLE INITIALLY DEFERRED`` constraints fire at ``COMMIT`` —
   but no client sent them, so the log has none. They are set apart (:data:`RI_CHECK`).
6. **Statements pg_stat_statements does not track**: ``DEALLOCATE`` (before PostgreSQL 17),
   which psycopg sends to drop the statements it prepared, is logged but never counted
   (:func:`untracked_statements`).
7. **Not exercised, because Django never sends them**: pg_stat_statements also merges
   statements that differ only in column aliases or in the quoting of an identifier
   (``"app_book"`` vs ``app_book``, one relation), which auditkit keeps apart.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import REQUIRE_SERVICES

from auditkit.sql.fingerprint import fingerprint, fingerprint_id
from devtools.postgres import ThrowawayPostgres, available

psycopg = pytest.importorskip("psycopg")
from psycopg.conninfo import make_conninfo  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DATABASE = "workload"
PREFIX = "%m [%p] %q%u@%d "
SEED = 20240601
#: a foreign-key check the server issues itself (difference 5)
RI_CHECK = re.compile(r"^SELECT \$?\d+ FROM ONLY \S+ x WHERE .* FOR (?:KEY )?SHARE OF x$", re.S)

SCHEMA = """
CREATE TABLE "app_author" (
    "id" bigserial PRIMARY KEY,
    "name" varchar(100) NOT NULL,
    "email" varchar(254) NOT NULL UNIQUE,
    "is_active" boolean NOT NULL
);
CREATE TABLE "app_book" (
    "id" bigserial PRIMARY KEY,
    "title" varchar(200) NOT NULL,
    "author_id" bigint NOT NULL REFERENCES "app_author" ("id") DEFERRABLE INITIALLY DEFERRED,
    "price" numeric(8, 2) NOT NULL,
    "pages" integer NOT NULL,
    "published" timestamp with time zone NULL,
    "is_available" boolean NOT NULL,
    "note" text NULL
);
CREATE INDEX "app_book_author_id_idx" ON "app_book" ("author_id");
"""

BOOK_COLUMNS = (
    '"app_book"."id", "app_book"."title", "app_book"."author_id", "app_book"."price", '
    '"app_book"."pages", "app_book"."published", "app_book"."is_available", "app_book"."note"'
)
TITLES = ("Dune", "O'Brien's \"Best\"", "C:\\temp\\notes", "50% off -- not a comment", "ünïcødé ✓")
CONTROLLERS = ("book_list", "book_detail", "author_detail")


# -- the workload ------------------------------------------------------------------------------


@dataclass
class Workload:
    """What the workload did that the assertions need to know."""

    in_lengths: dict[str, set[int]] = field(default_factory=dict)  # mode -> IN-list lengths
    values_rows: dict[str, set[int]] = field(default_factory=dict)  # mode -> bulk_create sizes
    savepoints: dict[str, set[str]] = field(default_factory=dict)  # statement -> names
    failed: int = 0  # statements that raised (unique violations)


def _placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


class DjangoLike:
    """Sends the statements Django's ORM would, through one psycopg connection."""

    def __init__(self, conn: Any, mode: str, rng: random.Random, record: Workload) -> None:
        self.conn = conn
        self.cur = conn.cursor()
        self.mode = mode
        self.rng = rng
        self.record = record
        self.savepoint_counter = 0
        self.author_ids: list[int] = []
        self.book_ids: list[int] = []

    def comment(self, sql: str) -> str:
        """sqlcommenter (django-google-sqlcommenter) appends one comment per request."""
        controller = self.rng.choice(CONTROLLERS)
        return f"{sql} /*controller='{controller}',framework='django%%3A4.2',route='books/'*/"  # %% : params follow

    def run(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        self.cur.execute(sql, params)
        return self.cur.fetchall() if self.cur.description else []

    # -- transaction.atomic ------------------------------------------------------------------
    def savepoint(self) -> str:
        self.savepoint_counter += 1
        name = f"s{threading.get_ident()}_x{self.savepoint_counter}"
        self.savepoint_statement("SAVEPOINT", name)
        return name

    def savepoint_statement(self, statement: str, name: str) -> None:
        self.record.savepoints.setdefault(statement, set()).add(name)
        self.run(f'{statement} "{name}"')

    # -- the ORM calls -----------------------------------------------------------------------
    def create_authors(self, n: int) -> None:
        for i in range(n):
            name = self.savepoint()
            rows = self.run(
                'INSERT INTO "app_author" ("name", "email", "is_active") VALUES (%s, %s, %s) '
                'RETURNING "app_author"."id"',
                (f"Author {i}", f"a{i}.{self.mode}@example.com", i % 3 != 0),
            )
            self.author_ids.append(rows[0][0])
            self.savepoint_statement("RELEASE SAVEPOINT", name)

    def bulk_create_books(self, rows: int) -> None:
        self.record.values_rows.setdefault(self.mode, set()).add(rows)
        params: list[Any] = []
        for _ in range(rows):
            params += [
                self.rng.choice(TITLES),
                self.rng.choice(self.author_ids),
                Decimal(self.rng.choice(["9.99", "-1.50", "0.00", "120.25"])),
                self.rng.choice([-1, 0, 320, 1024]),
                self.rng.choice([None, dt.datetime(2024, 5, 17, 9, 30, tzinfo=dt.UTC)]),
                self.rng.random() < 0.5,
                self.rng.choice([None, "it's \\ fine", "plain"]),
            ]
        ids = self.run(
            'INSERT INTO "app_book" ("title", "author_id", "price", "pages", "published", '
            '"is_available", "note") VALUES '
            + ", ".join(f"({_placeholders(7)})" for _ in range(rows))
            + ' RETURNING "app_book"."id"',
            params,
        )
        self.book_ids += [r[0] for r in ids]

    def get_book(self) -> None:
        self.run(
            self.comment(
                f'SELECT {BOOK_COLUMNS} FROM "app_book" WHERE "app_book"."id" = %s LIMIT 21'
            ),
            (self.rng.choice(self.book_ids),),
        )

    def prefetch_books(self, length: int) -> None:
        self.record.in_lengths.setdefault(self.mode, set()).add(length)
        ids = [self.rng.choice(self.author_ids) for _ in range(length)]
        self.run(
            f'SELECT {BOOK_COLUMNS} FROM "app_book" '
            f'WHERE "app_book"."author_id" IN ({_placeholders(length)})',
            ids,
        )

    def page(self, number: int) -> None:
        # Django writes LIMIT/OFFSET into the SQL text, never as parameters
        self.run(
            f'SELECT {BOOK_COLUMNS} FROM "app_book" INNER JOIN "app_author" ON '
            '("app_book"."author_id" = "app_author"."id") '
            'WHERE ("app_book"."is_available" = %s AND "app_author"."is_active" AND '
            '"app_book"."pages" > %s) ORDER BY "app_book"."published" DESC NULLS LAST '
            f"LIMIT 20 OFFSET {20 * number}",
            (self.rng.random() < 0.7, -1),
        )

    def search(self, term: str) -> None:
        self.run(
            'SELECT COUNT(*) AS "__count" FROM "app_book" '
            'WHERE UPPER("app_book"."title"::text) LIKE UPPER(%s)',
            (f"%{term}%",),
        )

    def exists(self) -> None:
        self.run(
            'SELECT 1 AS "a" FROM "app_book" WHERE ("app_book"."note" IS NULL '
            'AND "app_book"."price" < %s) LIMIT 1',
            (Decimal("-0.5"),),
        )

    def annotate(self) -> None:
        self.run(
            'SELECT "app_author"."id", "app_author"."name", COUNT("app_book"."id") AS "n" '
            'FROM "app_author" LEFT OUTER JOIN "app_book" ON ("app_author"."id" = '
            '"app_book"."author_id") GROUP BY "app_author"."id" HAVING COUNT("app_book"."id") > %s',
            (self.rng.choice([0, 1, 2]),),
        )

    def update_note(self) -> None:
        self.run(
            'UPDATE "app_book" SET "note" = %s, "is_available" = %s WHERE "app_book"."id" = %s',
            (
                self.rng.choice([None, "sold out", "O'Reilly"]),
                False,
                self.rng.choice(self.book_ids),
            ),
        )

    def update_many(self) -> None:
        """QuerySet.update() in a loop the way a careless view does it: executemany."""
        self.cur.executemany(
            'UPDATE "app_book" SET "pages" = ("app_book"."pages" + %s) WHERE "app_book"."id" = %s',
            [(self.rng.choice([-2, 3]), b) for b in self.rng.sample(self.book_ids, 5)],
        )

    def get_or_create_race(self) -> None:
        """get_or_create losing a race: INSERT fails in a savepoint, then the SELECT."""
        name = self.savepoint()
        try:
            self.run(
                'INSERT INTO "app_author" ("name", "email", "is_active") VALUES (%s, %s, %s) '
                'RETURNING "app_author"."id"',
                ("Dup", f"a0.{self.mode}@example.com", True),
            )
        except psycopg.errors.UniqueViolation:
            self.record.failed += 1
            self.savepoint_statement("ROLLBACK TO SAVEPOINT", name)
        self.run(
            'SELECT "app_author"."id", "app_author"."name" FROM "app_author" '
            'WHERE "app_author"."email" = %s LIMIT 21',
            (f"a0.{self.mode}@example.com",),
        )

    def raw_report(self) -> None:
        """A hand-written multi-line statement with a leading comment (cursor.execute)."""
        self.run(
            "-- monthly report\n"
            'SELECT date_trunc(\'month\', "published") AS "month",\n'
            '       SUM("price")\n'
            '  FROM "app_book"\n'
            ' WHERE "published" >= %s\n'
            " GROUP BY 1",
            (dt.datetime(2024, 1, 1, tzinfo=dt.UTC),),
        )

    def delete_some(self) -> None:
        victims = self.rng.sample(self.book_ids, 3)
        self.run('DELETE FROM "app_book" WHERE "app_book"."id" IN (%s, %s, %s)', victims)
        self.book_ids = [b for b in self.book_ids if b not in victims]


def run_workload(dsn: str, mode: str, record: Workload) -> None:
    """One "process" of a Django site: requests in transactions, in ``mode`` binding."""
    rng = random.Random(f"{SEED}-{mode}")
    cursor_factory = psycopg.ClientCursor if mode == "client" else psycopg.Cursor
    with psycopg.connect(dsn, cursor_factory=cursor_factory) as conn:
        orm = DjangoLike(conn, mode, rng, record)
        with conn.transaction():
            orm.create_authors(12)
        for rows in (1, 2, 3, 5, 8, 13, 5, 2):
            orm.bulk_create_books(rows)
            conn.commit()  # each request commits (psycopg opened the transaction: BEGIN)
        lengths = list(range(1, 31))
        rng.shuffle(lengths)
        for request, length in enumerate(lengths):
            orm.get_book()
            orm.prefetch_books(length)
            orm.page(request % 4)
            orm.search(rng.choice(["dune", "o'brien", "100%"]))
            orm.exists()
            if request % 3 == 0:
                orm.update_note()
                orm.annotate()
            if request % 5 == 0:
                orm.update_many()
                orm.get_or_create_race()
            if request % 10 == 0:
                orm.raw_report()
                orm.delete_some()
            conn.commit()
        conn.rollback()  # an explicit ROLLBACK of an empty transaction is not sent


# -- running it --------------------------------------------------------------------------------


@dataclass
class Comparison:
    """The two sides, after the workload: logged executions and pg_stat_statements rows."""

    log: pd.DataFrame  # query events of the workload database, executions only
    all_log: pd.DataFrame  # every query event of the workload database (all phases)
    server_events: pd.DataFrame
    pgss: pd.DataFrame  # query, calls, toplevel, fingerprint, fingerprint_id
    internal: pd.DataFrame  # entries of statements the server ran itself (difference 5)
    workload: Workload
    server_version_num: int


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    reason = available()
    if reason:
        message = f"cannot start a private PostgreSQL cluster: {reason}"
        if REQUIRE_SERVICES:
            pytest.fail(message + " (required in CI)")
        pytest.skip(message)
    with ThrowawayPostgres() as pg:
        yield pg


@pytest.fixture(scope="module")
def comparison(cluster: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory) -> Comparison:
    pg = cluster
    pg.execute(f'CREATE DATABASE "{DATABASE}"')
    dsn = make_conninfo(pg.dsn, dbname=DATABASE)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement.encode())
    pg.execute("SELECT pg_stat_statements_reset()")
    start_marker = pg.sync_log()

    record = Workload()
    for mode in ("client", "server"):
        run_workload(dsn, mode, record)

    end_marker = pg.sync_log()
    version = int(pg.execute("SHOW server_version_num")[0][0])
    rows = pg.execute(
        "SELECT s.query, s.calls, s.toplevel FROM pg_stat_statements s "
        "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s",
        (DATABASE,),
    )
    everything = pd.DataFrame(rows, columns=["query", "calls", "toplevel"])
    internal = everything["query"].str.match(RI_CHECK)
    pgss = everything[~internal].reset_index(drop=True)
    pgss["fingerprint"] = [fingerprint(q) for q in pgss["query"]]
    pgss["fingerprint_id"] = [fingerprint_id(f) for f in pgss["fingerprint"]]

    from auditkit.loaders.registry import get_loader

    log_path = Path(tmp_path_factory.mktemp("pgss")) / "postgresql.log"
    log_path.write_bytes(pg.log_path.read_bytes())  # a stable copy: the server keeps logging
    result = get_loader("postgres_stderr").load(log_path, prefix=PREFIX)
    result.report.check()
    events = result.frames["query_events"]
    marks = events[events["sql"].isin([start_marker, end_marker])]["source_line"]
    assert len(marks) == 2, "both log markers must be in the log"
    first, last = int(marks.min()), int(marks.max())
    window = events[
        (events["source_line"] > first)
        & (events["source_line"] < last)
        & (events["database"] == DATABASE)
    ]
    server = result.frames.get("server_events", pd.DataFrame())
    if len(server):
        server = server[(server["source_line"] > first) & (server["source_line"] < last)]
    executions = window[window["phase"].isin(["execute", "statement"])]
    return Comparison(executions, window, server, pgss, everything[internal], record, version)


# -- the proof ---------------------------------------------------------------------------------


def test_workload_was_logged_and_counted(comparison: Comparison) -> None:
    c = comparison
    assert len(c.log) > 500, "the workload should have produced hundreds of executions"
    assert c.pgss["toplevel"].all(), "no nested statements in this workload"
    assert set(c.all_log["phase"]) >= {"statement", "parse", "bind", "execute"}
    assert c.log["fingerprint"].notna().all()


def test_every_pgss_entry_is_exactly_one_logged_group(comparison: Comparison) -> None:
    groups = comparison.log.groupby("fingerprint")["fingerprint_id"].unique()
    # a group is one fingerprint with one id
    assert all(len(ids) == 1 for ids in groups), "a fingerprint with several ids"
    ids = {fp: ids[0] for fp, ids in groups.items()}
    unmatched = comparison.pgss[~comparison.pgss["fingerprint"].isin(ids.keys())]
    assert unmatched.empty, "pg_stat_statements entries with no logged group:\n" + "\n".join(
        f"  {q!r}\n    -> {f!r}"
        for q, f in zip(unmatched["query"], unmatched["fingerprint"], strict=True)
    )
    for fp, fid in zip(
        comparison.pgss["fingerprint"], comparison.pgss["fingerprint_id"], strict=True
    ):
        assert ids[fp] == fid


def test_every_logged_group_is_counted_and_calls_add_up(comparison: Comparison) -> None:
    logged = comparison.log.groupby("fingerprint").size()
    counted = comparison.pgss.groupby("fingerprint")["calls"].sum()
    untracked = untracked_statements(comparison.server_version_num)
    missing = set(logged.index) - set(counted.index)
    assert missing == untracked, f"logged groups pg_stat_statements did not count: {missing}"
    logged = logged.drop(sorted(untracked))
    diff = pd.DataFrame({"log": logged, "pgss": counted}).fillna(0).astype(int)
    wrong = diff[diff["log"] != diff["pgss"]]
    assert wrong.empty, f"calls do not add up:\n{wrong.to_string()}"
    assert int(comparison.pgss["calls"].sum()) == int(logged.sum())


def untracked_statements(server_version_num: int) -> set[str]:
    """Difference 6: logged statements pg_stat_statements does not track (by fingerprint)."""
    # psycopg sends DEALLOCATE ALL to drop its prepared statements; pgss ignores DEALLOCATE
    # (like PREPARE and EXECUTE, whose inner statement it counts instead) before version 17
    return {"deallocate all"} if server_version_num < 170000 else set()


def _entries_of(comparison: Comparison, sql: str) -> pd.DataFrame:
    fp = fingerprint(sql)
    return comparison.pgss[comparison.pgss["fingerprint"] == fp]


def test_documented_merge_in_lists(comparison: Comparison) -> None:
    """Difference 1: one pgss entry per IN-list length and binding form; one auditkit group."""
    c = comparison
    entries = _entries_of(
        c, f'SELECT {BOOK_COLUMNS} FROM "app_book" WHERE "app_book"."author_id" IN (%s)'
    )
    lengths = c.workload.in_lengths
    assert lengths["client"] == lengths["server"] == set(range(1, 31))
    if c.server_version_num < 180000:  # PostgreSQL 18 squashes IN lists itself
        assert len(entries) == len(lengths["client"]) + len(lengths["server"])
    assert int(entries["calls"].sum()) == 60


def test_documented_merge_values_rows(comparison: Comparison) -> None:
    """Difference 1: one pgss entry per VALUES row count and binding form; one auditkit group."""
    c = comparison
    entries = _entries_of(
        c,
        'INSERT INTO "app_book" ("title", "author_id", "price", "pages", "published", '
        f'"is_available", "note") VALUES ({_placeholders(7)}) RETURNING "app_book"."id"',
    )
    sizes = c.workload.values_rows
    assert len(entries) == len(sizes["client"]) + len(sizes["server"])
    assert int(entries["calls"].sum()) == 16


def test_documented_merge_savepoints(comparison: Comparison) -> None:
    """Difference 1: utility statements are not normalised; every savepoint name is an entry."""
    c = comparison
    names = c.workload.savepoints
    assert len(names["SAVEPOINT"]) > 10
    for statement in ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"):
        entries = _entries_of(c, f'{statement} "s1_x1"')
        assert len(entries) == len(names[statement]), statement
        assert len(set(entries["fingerprint_id"])) == 1
    rollback = _entries_of(c, 'ROLLBACK TO SAVEPOINT "s1_x1"')
    assert int(rollback["calls"].sum()) == c.workload.failed


def test_documented_failed_statements_counted_by_neither(comparison: Comparison) -> None:
    """Difference 2: the losing get_or_create INSERT is an error event, not an execution."""
    c = comparison
    assert c.workload.failed == 12  # 6 per binding mode
    errors = c.server_events[c.server_events["kind"] == "error"]
    assert len(errors) == c.workload.failed
    assert errors["message"].str.contains("duplicate key value violates unique constraint").all()
    insert = fingerprint(
        'INSERT INTO "app_author" ("name", "email", "is_active") VALUES (%s, %s, %s) '
        'RETURNING "app_author"."id"'
    )
    # 24 authors created; the failed INSERTs are in neither count
    assert int((c.log["fingerprint"] == insert).sum()) == 24
    assert int(c.pgss.loc[c.pgss["fingerprint"] == insert, "calls"].sum()) == 24


def test_documented_server_internal_statements(comparison: Comparison) -> None:
    """Difference 5: foreign-key checks are counted by pgss, never logged, and set apart."""
    internal = comparison.internal
    assert len(internal) >= 1 and int(internal["calls"].sum()) > 0
    assert internal["query"].str.contains('"app_author"').all()
    logged = comparison.all_log["sql"].str.contains("FOR KEY SHARE OF x", regex=False)
    assert not logged.any()


def test_documented_extended_protocol_phases(comparison: Comparison) -> None:
    """Difference 3: parse/bind lines are logged with durations but are not executions."""
    phases = Counter(comparison.all_log["phase"])
    assert phases["parse"] > 0 and phases["bind"] >= phases["execute"] > 0
    # psycopg prepares a statement after five executions: named statements appear
    names = comparison.log["statement_name"].dropna().unique()
    assert any(str(n).startswith("_pg3_") for n in names)
