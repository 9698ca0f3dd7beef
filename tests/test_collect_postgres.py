"""The PostgreSQL collector against a private throwaway cluster: it reads everything the audit
needs, loads into the canonical frames, and changes nothing — no row, no object, no lasting
lock — while the database's own workload inserts, updates and deletes. A pg_monitor-only role
collects what it may and is told what it may not; every statement is checked by the guard.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import auditkit
from auditkit.collect.postgres import check_read_only, collect_postgres, plain_select
from auditkit.errors import CollectorError

psycopg = pytest.importorskip("psycopg")

SCHEMA = """
CREATE TABLE customer (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, city text);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customer (id),
    status text NOT NULL,
    total numeric(10, 2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE INDEX orders_open_idx ON orders (created_at) WHERE status = 'open';
INSERT INTO customer (email, city)
    SELECT 'c' || g || '@example.com', 'city' || (g % 20) FROM generate_series(1, 2000) g;
INSERT INTO orders (customer_id, status, total)
    SELECT 1 + g % 2000, CASE WHEN g % 7 = 0 THEN 'open' ELSE 'paid' END, g % 500
    FROM generate_series(1, 20000) g;
ANALYZE;
CREATE ROLE auditor LOGIN IN ROLE pg_monitor;
"""

#: the catalog fingerprint: every object, column, index, constraint, role, extension, function
CATALOG_SUM = """
SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
    SELECT concat_ws(':', 'c', oid, relname, relkind, relnamespace) FROM pg_class
    UNION ALL SELECT concat_ws(':', 'a', attrelid, attname, atttypid, attnum) FROM pg_attribute
    UNION ALL SELECT concat_ws(':', 'i', indexrelid, indrelid, indkey) FROM pg_index
    UNION ALL SELECT concat_ws(':', 'k', oid, conname) FROM pg_constraint
    UNION ALL SELECT concat_ws(':', 'r', oid, rolname) FROM pg_roles
    UNION ALL SELECT concat_ws(':', 'e', oid, extname) FROM pg_extension
    UNION ALL SELECT concat_ws(':', 'p', oid, proname) FROM pg_proc
    UNION ALL SELECT concat_ws(':', 'n', oid, nspname) FROM pg_namespace
    UNION ALL SELECT concat_ws(':', 'd', oid, datname) FROM pg_database
) t(x)
"""
DATA_SUM = """
SELECT (SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM customer c),
       (SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o),
       (SELECT last_value FROM orders_id_seq), (SELECT last_value FROM customer_id_seq)
"""
WRITES = """
SELECT sum(n_tup_ins), sum(n_tup_upd), sum(n_tup_del) FROM pg_stat_user_tables
"""


def _workload(dsn: str) -> None:
    """The application's traffic: reads and writes with bound parameters (server-side)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(1, 60):
            conn.execute("SELECT id, email FROM customer WHERE id = %s", (i,))
            conn.execute("SELECT * FROM orders WHERE customer_id = %s", (i,))
            conn.execute("SELECT count(*) FROM orders WHERE status = %s", ("open",))
            conn.execute(
                "INSERT INTO orders (customer_id, status, total) VALUES (%s, %s, %s)",
                (i, "open", 10),
            )
            conn.execute("UPDATE orders SET status = %s WHERE id = %s", ("paid", i))
            conn.execute("DELETE FROM orders WHERE id = %s", (20000 + i,))
        conn.execute("SELECT city, count(*) FROM customer GROUP BY city ORDER BY 2 DESC")


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    from conftest import REQUIRE_SERVICES

    from devtools.postgres import ThrowawayPostgres, available

    reason = available()
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(f"cannot start a private PostgreSQL cluster: {reason}")
        pytest.skip(f"cannot start a private PostgreSQL cluster: {reason}")
    settings = {"autovacuum": False, "logging_collector": False, "log_min_duration_statement": -1}
    with ThrowawayPostgres(settings) as pg:
        pg.execute(SCHEMA)
        _workload(pg.dsn)
        yield pg


def _sums(dsn: str) -> tuple[object, ...]:
    with psycopg.connect(dsn) as conn:
        catalog = conn.execute(CATALOG_SUM).fetchone()
        data = conn.execute(DATA_SUM).fetchone()
        writes = conn.execute(WRITES).fetchone()
    return (catalog, data, writes)


def _all_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file())


def test_collect_reads_everything_and_changes_nothing(
    cluster: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = cluster
    dsn: str = pg.dsn  # type: ignore[attr-defined]
    monkeypatch.setenv("AUDITKIT_TEST_PG_COLLECT", dsn)
    before = _sums(dsn)
    result = collect_postgres(
        "AUDITKIT_TEST_PG_COLLECT",
        tmp_path,
        every_s=0.5,
        count=2,
        explain_top=25,
        explain_analyze=True,
        lock_timeout_ms=500,
    )
    after = _sums(dsn)
    assert before == after, "the collection changed a row, an object or a counter"
    with psycopg.connect(dsn) as conn:
        lingering = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'auditkit-collector'"
        ).fetchone()
        advisory = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
        others = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE pid <> pg_backend_pid() AND relation IS NOT NULL"
        ).fetchone()
    assert lingering == (0,) and advisory == (0,) and others == (0,)

    assert result.snapshots == 2 and result.plans >= 5
    assert not result.skipped, result.skipped
    written = {str(p.relative_to(tmp_path)) for p in result.files}
    assert {
        "pg_stat_statements.csv",
        "pg_stat_user_tables.csv",
        "pg_stat_user_indexes.csv",
        "pg_statio_user_tables.csv",
        "pg_statio_user_indexes.csv",
        "pg_stat_database.csv",
        "pg_indexes.csv",
        "pg_relation_sizes.csv",
        "pg_stats.csv",
        "pg_settings.csv",
        "pg_explain.json",
        "collect_postgres.md",
    } <= written
    assert len([w for w in written if w.startswith("snapshots/")]) == 6
    assert dsn not in _all_text(tmp_path)

    client = auditkit.load_client(tmp_path)
    status = {f.path: (f.status, f.format) for f in client.files}
    assert status["pg_stat_statements.csv"] == ("loaded", "pgss_csv")
    first = next(p for p in status if p.startswith("snapshots/pg_stat_statements-"))
    assert status[first] == ("loaded", "pgss_csv")
    assert status["pg_stat_user_tables.csv"] == ("loaded", "pg_stat_tables")
    assert status["pg_stat_user_indexes.csv"] == ("loaded", "pg_stat_indexes")
    assert status["pg_indexes.csv"] == ("loaded", "pg_indexes")
    assert status["pg_relation_sizes.csv"] == ("loaded", "pg_relation_sizes")
    assert status["pg_stats.csv"] == ("loaded", "pg_stats")
    assert status["pg_settings.csv"] == ("loaded", "pg_settings")
    assert status["pg_explain.json"] == ("loaded", "explain_pg_json")
    assert status["collect_postgres.md"][0] == "documentation"
    assert not [f for f in client.files if f.status == "error"], client.inventory()

    settings = client.frame("server_settings").set_index("name")
    assert settings.loc["server_version_num", "value"] >= 120000
    assert settings.loc["shared_buffers", "value"] > 0
    indexes = client.frame("schema_indexes")
    partial = indexes[indexes["index"] == "orders_open_idx"].iloc[0]
    assert partial["predicate"] and partial["columns"] == "created_at"
    plans = client.frame("plan_nodes")
    statements = set(plans["statement"].dropna())
    assert any("$1" in s and "customer_id" in s for s in statements)  # a generic plan
    assert any(s.lower().startswith("delete") for s in statements), (statements, result.notes)
    assert plans["actual_total_ms"].notna().any()  # the parameterless SELECT was analysed
    stats = client.results["pg_stat_statements.csv"].frames["statement_stats"]
    update = stats[stats["fingerprint"].str.startswith("update orders set status")]
    assert update["calls"].sum() == 59


def test_snapshots_give_the_window_of_a_live_workload(
    cluster: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    pg = cluster
    dsn: str = pg.dsn  # type: ignore[attr-defined]
    monkeypatch.setenv("AUDITKIT_TEST_PG_LIVE", dsn)

    def traffic() -> None:
        time.sleep(0.4)  # after the first snapshot
        _workload(dsn)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        result = collect_postgres("AUDITKIT_TEST_PG_LIVE", tmp_path, every_s=2.5, count=2, explain_top=0)
    finally:
        worker.join()
    assert result.snapshots == 2
    client = auditkit.load_client(tmp_path)
    profile, source = client.query_profile()
    assert source == "pg_stat_statements"
    by_fp = profile.set_index("fingerprint")["calls"]
    assert by_fp["update orders set status = ? where id = ?"] == 59  # the window's calls only
    assert by_fp["delete from orders where id = ?"] == 59


def test_monitor_role_collects_what_it_may(
    cluster: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = cluster
    dsn = pg.dsn.replace("postgresql://postgres@", "postgresql://auditor@")  # type: ignore[attr-defined]
    monkeypatch.setenv("AUDITKIT_TEST_PG_MONITOR", dsn)
    result = collect_postgres("AUDITKIT_TEST_PG_MONITOR", tmp_path, explain_top=5)
    assert "pg_stats.csv" in result.skipped and "may SELECT" in result.skipped["pg_stats.csv"]
    assert not (tmp_path / "pg_stats.csv").exists()
    # the application's tables cannot be planned by a role without SELECT on them
    assert any("permission denied for table" in n for n in result.notes), result.notes
    if (tmp_path / "pg_explain.json").exists():
        plans = (tmp_path / "pg_explain.json").read_text()
        assert "FROM orders" not in plans and "FROM customer" not in plans
    for name in ("pg_stat_statements.csv", "pg_stat_user_tables.csv", "pg_settings.csv", "pg_indexes.csv"):
        assert (tmp_path / name).is_file(), name
    notes = (tmp_path / "collect_postgres.md").read_text()
    assert "pg_stats.csv" in notes and "auditor" in notes


def test_missing_pg_stat_statements_is_noted_not_installed(
    cluster: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = cluster
    pg.execute("CREATE DATABASE plain")  # type: ignore[attr-defined]
    dsn = pg.dsn.replace("/postgres?", "/plain?")  # type: ignore[attr-defined]
    monkeypatch.setenv("AUDITKIT_TEST_PG_PLAIN", dsn)
    result = collect_postgres("AUDITKIT_TEST_PG_PLAIN", tmp_path)
    assert "not installed" in result.skipped["pg_stat_statements.csv"]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone() == (0,)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1)",
        "UPDATE t SET a = 1",
        "DELETE FROM t",
        "CREATE EXTENSION pg_stat_statements",
        "CREATE TABLE x (a int)",
        "DROP TABLE t",
        "TRUNCATE t",
        "VACUUM t",
        "ANALYZE t",
        "COPY t TO STDOUT",
        "DO $$ BEGIN END $$",
        "CALL p()",
        "GRANT SELECT ON t TO x",
        "SELECT * INTO newtable FROM t",
        "SET default_transaction_read_only = off",
        "SET ROLE postgres",
        "RESET ALL",
        "LOCK TABLE t",
        "EXPLAIN ANALYZE DELETE FROM t",
        "EXPLAIN (ANALYZE, FORMAT JSON) DELETE FROM t",
        "EXPLAIN (ANALYZE) SELECT * FROM t WHERE id = $1",
        "EXPLAIN (ANALYZE) SELECT * FROM t FOR UPDATE",
        "EXPLAIN (ANALYZE) SELECT pg_advisory_lock(1)",
        "EXPLAIN (ANALYZE) WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "PREPARE x AS SELECT 1",
        "/* hello */ INSERT INTO t VALUES (1)",
        "COMMIT",
    ],
)
def test_guard_refuses(sql: str) -> None:
    with pytest.raises(CollectorError, match="only reads"):
        check_read_only(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM pg_stat_user_tables",
        "SHOW server_version",
        "SET LOCAL plan_cache_mode = force_generic_plan",
        "SAVEPOINT auditkit_read",
        "ROLLBACK TO SAVEPOINT auditkit_read",
        "EXPLAIN (FORMAT JSON) DELETE FROM t WHERE id = $1",
        "EXPLAIN (FORMAT JSON, GENERIC_PLAN) UPDATE t SET a = $1",
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT city, count(*) FROM customer GROUP BY city",
        "PREPARE auditkit_p1 AS SELECT * FROM t WHERE id = $1",
        "EXPLAIN (FORMAT JSON) EXECUTE auditkit_p1(NULL)",
        "DEALLOCATE auditkit_p1",
    ],
)
def test_guard_allows_reads(sql: str) -> None:
    check_read_only(sql)


def test_plain_select() -> None:
    assert plain_select("SELECT a FROM t WHERE b = 1")
    assert not plain_select("SELECT nextval('s')")
    assert not plain_select("WITH x AS (UPDATE t SET a = 1 RETURNING a) SELECT * FROM x")
