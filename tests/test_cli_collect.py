"""``auditkit collect``: the collectors on the command line (credentials from the environment)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditkit.cli import cli

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def database(postgres_dsn: str) -> Iterator[str]:
    name = f"auditkit_cli_collect_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = postgres_dsn.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            conn.execute("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g")
            conn.execute("ANALYZE t")
        yield dsn
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_collect_postgres(database: str, tmp_path: Path) -> None:
    out = tmp_path / "pg"
    result = CliRunner().invoke(
        cli,
        ["collect", "postgres", "--dsn-env", "AK_CLI_DSN", "--out", str(out), "--every", "200ms", "--count", "2"],
        env={"AK_CLI_DSN": database},
    )
    assert result.exit_code == 0, result.output
    assert "pg_stat_user_tables.csv" in result.output and database not in result.output
    assert (out / "pg_indexes.csv").is_file() and (out / "pg_stats.csv").is_file()
    assert len(list((out / "snapshots").glob("pg_stat_user_tables-*.csv"))) == 1


def test_collect_redis(redis_url: str, tmp_path: Path) -> None:
    out = tmp_path / "redis"
    result = CliRunner().invoke(
        cli,
        ["collect", "redis", "--url-env", "AK_CLI_REDIS", "--out", str(out), "--every", "100ms", "--count", "2"],
        env={"AK_CLI_REDIS": redis_url},
    )
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("info-*.txt"))) == 2 and (out / "redis_config.json").is_file()


def test_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["collect", "redis", "--url-env", "X", "--out", str(tmp_path), "--every", "soon"])
    assert bad.exit_code == 2 and "not an interval" in bad.output
    both = runner.invoke(
        cli, ["collect", "memcached", "--url-env", "X", "--server", "h:1", "--out", str(tmp_path)]
    )
    assert both.exit_code == 2 and "exactly one" in both.output
    unset = runner.invoke(cli, ["collect", "postgres", "--dsn-env", "AK_UNSET_VAR", "--out", str(tmp_path)], env={"AK_UNSET_VAR": ""})
    assert unset.exit_code == 1 and "AK_UNSET_VAR is not set" in unset.output
