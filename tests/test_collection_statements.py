"""Statements of monitoring and collection are not the client's workload.

A consultant's collector, a monitoring agent and a driver's connection set-up run ``SHOW``,
``SET``, ``EXPLAIN`` and reads of the system schemas on the audited server; the server log and
the slow log record them beside the application's statements. Counted, they would become slow
statements, N+1s and shares of time the application never spent.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import auditkit
from auditkit.analysis import Analysis
from auditkit.analysis.workload import choose_workload, without_collection
from auditkit.sql.statement_kind import is_collection_statement, reads_system_schema

ROOT = Path(__file__).parents[1]
MYSQL_CLIENT = Path(__file__).parent / "fixtures" / "mysql_client"


@pytest.mark.parametrize(
    "sql",
    [
        "SHOW GLOBAL STATUS",
        "SHOW server_version",
        "SET NAMES utf8mb4",
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "SET statement_timeout = ?",
        "SELECT @@SQL_AUTO_IS_NULL",
        "EXPLAIN (ANALYZE, BUFFERS) SELECT 1",
        "ANALYZE FORMAT=JSON SELECT * FROM `shop_customer`",
        "SAVEPOINT auditkit_read",
        "RELEASE SAVEPOINT auditkit_read",
        "SELECT s.*, now() AS collected_at FROM pg_statio_user_tables s",
        "SELECT s.calls, s.total_exec_time FROM pg_stat_statements s JOIN pg_database d ON true",
        "SELECT c.relname FROM pg_catalog.pg_class c, pg_catalog.pg_namespace n WHERE ?",
        "SELECT version(), current_setting(?)::int, (SELECT stats_reset FROM pg_stat_database)",
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = ?",
        "SELECT * FROM `performance_schema`.`events_statements_summary_by_digest`",
        "SELECT user, host FROM mysql.user",
        "SELECT * FROM sys.statements_with_full_table_scans",
        "WITH l AS (SELECT * FROM pg_locks) SELECT COUNT(*) FROM l",
    ],
)
def test_collection_statements(sql: str) -> None:
    assert is_collection_statement(sql)


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT "library_member"."id" FROM "library_member" WHERE "library_member"."card" = ?',
        'UPDATE "orders_order" SET "status" = ? WHERE "orders_order"."id" = ?',
        "SELECT COUNT(*) AS `__count` FROM `shop_order` WHERE `shop_order`.`customer_id` = ?",
        'SELECT EXTRACT(YEAR FROM "created") FROM "blog_post"',
        "SELECT c.relname FROM pg_class c, blog_post p WHERE ?",
        "WITH x AS (SELECT * FROM blog_post) SELECT * FROM x",
        'SAVEPOINT "s140_x1"',
        "COMMIT",
        "SELECT 1",
        'SELECT 1 FROM ONLY "public"."library_author" x WHERE "id" OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x',
    ],
)
def test_application_statements(sql: str) -> None:
    assert not is_collection_statement(sql)


def test_a_collector_session_is_left_out_whole() -> None:
    # what the collector's own session looks like in a server log: a read-only transaction,
    # savepoints named for it, catalog reads; the application's session beside it
    rows = [
        (7, "BEGIN READ ONLY"),
        (7, "SELECT s.*, now() AS collected_at FROM pg_stat_user_tables s"),
        (7, "DEALLOCATE ALL"),
        (7, "ROLLBACK"),
        (9, "BEGIN"),
        (9, 'SELECT "blog_post"."id" FROM "blog_post"'),
        (9, "SET TIME ZONE ?"),
        (9, "COMMIT"),
    ]
    events = pd.DataFrame(
        {
            "pid": [p for p, _ in rows],
            "fingerprint": [s for _, s in rows],
            "sql": [s for _, s in rows],
            "source_file": "postgresql.log",
            "duration_ms": 1.0,
        }
    )
    kept, dropped = without_collection(events)
    assert kept["fingerprint"].tolist() == [
        "BEGIN",
        'SELECT "blog_post"."id" FROM "blog_post"',
        "COMMIT",
    ]
    assert int(dropped.sum()) == 5
    by_name = without_collection(events.assign(pid=None, application="auditkit-collector"))[0]
    assert len(by_name) == 0


def test_the_server_log_workload_leaves_the_collector_out() -> None:
    """The sample's PostgreSQL log holds the collector's exports (pg_stat_* reads, savepoints):
    timed by that log alone, the workload counts none of them."""
    analysis = Analysis.of(auditkit.load_client(ROOT / "data" / "sample"))
    events = analysis.frame("query_events")
    server = events[events["source_format"] == "postgres_stderr"]
    assert server["fingerprint"].astype(str).str.contains("pg_stat_user_tables").any()
    workload = choose_workload(server)
    assert workload.collection[0] > 0
    fps = workload.profile["fingerprint"].astype(str)
    assert not fps.map(is_collection_statement).any()
    assert not fps.str.contains("auditkit_read|pg_stat_|version\\(\\)", regex=True).any()
    assert "left out" in workload.describe()
    # every source is cut the same way: pg_stat_statements too
    assert not analysis.pg_stat_statements["fingerprint"].astype(str).map(reads_system_schema).any()


def test_the_mysql_workload_and_findings_leave_collection_out() -> None:
    """The MariaDB shop's slow log records SHOW GLOBAL STATUS, SET NAMES, the session set-up
    and an information_schema read: none is workload, a slow statement or an N+1."""
    client = auditkit.load_client(MYSQL_CLIENT)
    analysis = Analysis.of(client)
    raw = analysis.frame("query_events")
    assert raw["fingerprint"].astype(str).map(is_collection_statement).sum() >= 5
    workload = analysis.workload
    assert workload.source == "mysql"
    assert not workload.profile["fingerprint"].astype(str).map(is_collection_statement).any()
    assert workload.collection[0] >= 5
    kept = raw[~raw["fingerprint"].astype(str).map(is_collection_statement)]
    assert workload.calls <= len(kept)
    audit = auditkit.audit(client)
    for f in audit.findings:
        if f.subject.fingerprint:
            assert not is_collection_statement(f.subject.fingerprint), f.title
