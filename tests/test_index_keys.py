"""Index advice only where the keys are known.

Django's conventions (an ``id`` primary key, indexed foreign keys) hold for the tables Django's
ORM writes SQL for; a table that only hand-written SQL names — pgbench's, a legacy schema keyed
on ``address_id`` — has keys no convention tells, and an index proposed on it is as likely as not
its primary key. Without an export of its indexes such a table gets no proposal but one
data-quality line asking for them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd

import auditkit
from auditkit.analysis.code import CodeMap
from auditkit.checks.indexes import index_candidates
from auditkit.findings import Finding
from auditkit.schemas import (
    SCHEMA_COLUMNS,
    SCHEMA_INDEXES,
    SCHEMA_TABLES,
    STATEMENT_STATS,
    conform,
    empty,
)
from auditkit.sql.django_orm import orm_tables
from auditkit.sql.fingerprint import Dialect, fingerprint, fingerprint_id

PGBENCH = "pgbadger/t/fixtures/light.postgres.log.bz2"
SAKILA = "percona-toolkit/src/go/pt-secure-collect/testdata/slow_80.log"


def _stats(statements: list[str], dialect: Dialect = "postgres") -> pd.DataFrame:
    rows = []
    for sql in statements:
        fp = fingerprint(sql, dialect=dialect)
        rows.append(
            {
                "fingerprint_id": fingerprint_id(fp),
                "fingerprint": fp,
                "calls": 40,
                "total_ms": 400.0,
                "sample_sql": sql,
            }
        )
    return conform(pd.DataFrame(rows), STATEMENT_STATS)


def _keys_unknown(findings: list[Finding]) -> list[Finding]:
    return [
        f
        for f in findings
        if f.check == "data_quality" and f.subject.expression == "index keys unknown"
    ]


def _sakila_queries(peer_data: Path) -> list[str]:
    """The SELECTs of the Sakila sample database's views, as its slow log recorded them."""
    events = auditkit.load(peer_data / SAKILA).frame
    views = events[events["sql"].str.match(r"(?is)\s*create\s.*?\bview\s", na=False)]
    return [re.sub(r"(?is)^\s*create\s.*?\bview\s+\S+\s+as\s+", "", s) for s in views["sql"]]


def test_orm_tables_are_the_ones_django_writes_sql_for() -> None:
    assert orm_tables(
        [
            'SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."customer_id" = ?',
            "SELECT `blog_post`.`id` FROM `blog_post` WHERE `blog_post`.`slug` = ?",
            "UPDATE pgbench_branches SET bbalance = bbalance + ? WHERE bid = ?",
            "SELECT a.address FROM address a WHERE a.address_id = ?",
            'INSERT INTO "legacy" ("a") VALUES (?)',
        ]
    ) == {"shop_order", "blog_post"}


def test_pgbench_tables_get_no_index_and_one_request_for_pg_indexes(
    peer_data: Path, tmp_path: Path
) -> None:
    """pgbadger's pgbench log: ``WHERE bid = ?`` is pgbench_branches' primary key, which a
    guess of ``id`` used to miss."""
    folder = tmp_path / "pgbench"
    folder.mkdir()
    shutil.copy(peer_data / PGBENCH, folder)
    result = auditkit.audit(auditkit.load_client(folder))
    assert [f.title for f in result.findings if f.check == "missing_index"] == []
    (line,) = _keys_unknown(result.findings)
    assert line.metrics["tables"] == 3
    for table in ("pgbench_branches", "pgbench_tellers", "pgbench_accounts"):
        assert table in line.summary
    assert line.recommendation is not None
    assert "pg_indexes" in line.recommendation.summary
    assert "SHOW INDEX" not in line.recommendation.summary
    assert float(line.metrics["total_ms"] or 0) > 0
    # a data-quality line, not a finding of the indexing chapter's own
    assert line.severity == auditkit.Severity.INFO
    assert "(s)" not in line.summary + line.title


def test_sakila_without_its_schema_gets_no_index_on_its_primary_keys(peer_data: Path) -> None:
    """Sakila's own queries join on ``address.address_id``, ``city.city_id``…: primary keys,
    which a guess of ``id`` took for unindexed columns."""
    st = _stats(_sakila_queries(peer_data), "mysql")
    assert len(st) >= 5
    found = index_candidates(
        st, empty(SCHEMA_TABLES), empty(SCHEMA_INDEXES), empty(SCHEMA_COLUMNS), dialect="mysql"
    )
    assert [f.title for f in found if f.check == "missing_index"] == []
    (line,) = _keys_unknown(found)
    listed = str(line.metrics["table_list"]).split(", ")
    assert {"address", "city", "rental", "payment"} <= set(listed)
    assert line.metrics["tables"] == len(listed)
    assert line.recommendation is not None and "SHOW INDEX" in line.recommendation.summary
    assert "pg_indexes" not in line.recommendation.summary


def test_sakila_with_its_schema_is_advised_on_what_its_indexes_miss(
    peer_data: Path, tmp_path: Path
) -> None:
    """The same queries with the tables' SHOW CREATE TABLE (the slow log's own CREATE TABLE
    statements, as the mysql client prints them): every key is known, every join is served by a
    primary key or a foreign key's index, so nothing is proposed and nothing is asked for."""
    events = auditkit.load(peer_data / SAKILA).frame
    creates = events[
        (events["database"] == "sakila")
        & events["sql"].str.match(r"(?is)\s*create table `", na=False)
    ]["sql"]
    assert len(creates) >= 14
    text = "".join(
        "*************************** 1. row ***************************\n"
        f"       Table: {re.search(r'`([^`]+)`', sql).group(1)}\n"  # type: ignore[union-attr]
        f"Create Table: {sql.strip().rstrip(';')}\n1 row in set (0.00 sec)\n\n"
        for sql in creates
    )
    path = tmp_path / "show_create_table.txt"
    path.write_text(text)
    catalog = auditkit.load(path).frames["schema_indexes"]
    st = _stats(_sakila_queries(peer_data), "mysql")
    found = index_candidates(
        st, empty(SCHEMA_TABLES), catalog, empty(SCHEMA_COLUMNS), dialect="mysql"
    )
    assert found == [], [f.title for f in found]
    # a lookup the schema does not serve is still proposed: film.rating has no index
    st = _stats(
        ["SELECT film.title FROM film WHERE film.rating = 'PG' AND film.length > 90"], "mysql"
    )
    (f,) = index_candidates(
        st, empty(SCHEMA_TABLES), catalog, empty(SCHEMA_COLUMNS), dialect="mysql"
    )
    assert f.check == "missing_index" and f.subject.table == "film"
    assert f.subject.columns == ("rating", "length")


def test_a_key_named_after_its_table_is_its_primary_key() -> None:
    """Django's SQL over a legacy table (``db_table = "address"``, ``address_id`` as the
    primary key): the key named after the table is not indexed again, the other lookups are."""
    code = CodeMap.build(empty(SCHEMA_COLUMNS), seen_columns=[("address", "address_id")])
    assert code.primary_key("address") == "address_id"
    assert code.foreign_key("address", "address_id") is None
    assert code.primary_key("shop_order") == "id"
    st = _stats(
        [
            'SELECT "address"."address_id", "address"."district" FROM "address" '
            'WHERE "address"."address_id" = 12',
            'SELECT "address"."address_id" FROM "address" WHERE "address"."district" = \'Alberta\'',
        ]
    )
    found = index_candidates(
        st,
        conform(pd.DataFrame([{"table": "address", "rows_estimate": 60_000}]), SCHEMA_TABLES),
        empty(SCHEMA_INDEXES),
        empty(SCHEMA_COLUMNS),
    )
    assert [(f.check, f.subject.table, f.subject.columns) for f in found] == [
        ("missing_index", "address", ("district",))
    ]


def _mysql_dump(tmp_path: Path) -> Path:
    """A model dump of a small Django app on MySQL whose foreign key opts out of Django's index
    (``db_index=False``): InnoDB creates one for its constraint anyway."""
    pk = {
        "name": "id",
        "column": "id",
        "type": "BigAutoField",
        "internal_type": "BigAutoField",
        "null": False,
        "unique": True,
        "db_index": False,
        "primary_key": True,
    }
    doc = {
        "format": "auditkit.django_models",
        "version": 1,
        "generated_at": "2026-12-05T00:00:00+00:00",
        "django_version": "5.2.1",
        "database": {"alias": "default", "vendor": "mysql"},
        "apps": {
            "fleet": {
                "name": "fleet",
                "latest_migrations": ["0003_trip_vehicle"],
                "models": {
                    "Vehicle": {
                        "db_table": "fleet_vehicle",
                        "managed": True,
                        "proxy": False,
                        "pk": "id",
                        "parents": [],
                        "fields": [pk],
                    },
                    "Trip": {
                        "db_table": "fleet_trip",
                        "managed": True,
                        "proxy": False,
                        "pk": "id",
                        "parents": [],
                        "fields": [
                            pk,
                            {
                                "name": "vehicle",
                                "column": "vehicle_id",
                                "type": "ForeignKey",
                                "internal_type": "ForeignKey",
                                "null": False,
                                "unique": False,
                                "db_index": False,
                                "primary_key": False,
                                "relation": "foreign_key",
                                "related": {
                                    "model": "fleet.Vehicle",
                                    "table": "fleet_vehicle",
                                    "field": "id",
                                    "column": "id",
                                },
                            },
                            {
                                "name": "started",
                                "column": "started",
                                "type": "DateTimeField",
                                "internal_type": "DateTimeField",
                                "null": False,
                                "unique": False,
                                "db_index": False,
                                "primary_key": False,
                            },
                        ],
                    },
                },
            }
        },
    }
    path = tmp_path / "models.json"
    path.write_text(json.dumps(doc))
    return path


def test_innodb_indexes_every_foreign_key_a_model_dump_declares(tmp_path: Path) -> None:
    frames = auditkit.load(_mysql_dump(tmp_path)).frames
    sql = (
        "SELECT `fleet_trip`.`id`, `fleet_trip`.`started` FROM `fleet_trip` "
        "WHERE `fleet_trip`.`vehicle_id` = 3"
    )
    catalog = (empty(SCHEMA_TABLES), frames["schema_indexes"], frames["schema_columns"])
    assert index_candidates(_stats([sql], "mysql"), *catalog, dialect="mysql") == []
    # PostgreSQL creates no index a field opts out of: there the lookup needs one
    st = _stats([sql.replace("`", '"')])
    (f,) = index_candidates(st, *catalog, dialect="postgres")
    assert f.subject.columns == ("vehicle_id",) and f.metrics["model"] == "Trip"
