"""Catalog exports, the Django model dump and the read-only PostgreSQL collector.

The fixtures in ``tests/fixtures/catalog`` are real exports: ``psql \\copy … CSV HEADER`` and
``json_agg`` output of a PostgreSQL 15 database migrated by ``tests/django_project``, MariaDB
10.11 ``SHOW INDEX`` / ``information_schema.STATISTICS`` from ``mariadb -B`` and the model dump
written by ``manage.py auditkit_dump_models``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import auditkit
from auditkit.errors import CollectorError, InputError
from auditkit.loaders.django_models import infer_models
from auditkit.schemas import FRAMES

CATALOG = Path(__file__).parent / "fixtures" / "catalog"
MINE = (
    "pg_indexes",
    "pg_stat_tables",
    "pg_stat_indexes",
    "pg_relation_sizes",
    "pg_stats",
    "mysql_indexes",
    "django_models",
)

#: fixture → (format, frame, rows)
EXPECTED = {
    "pg_indexes.csv": ("pg_indexes", "schema_indexes", 17),
    "pg_indexes.json": ("pg_indexes", "schema_indexes", 17),
    "pg_stat_user_tables.csv": ("pg_stat_tables", "schema_tables", 6),
    "pg_stat_user_tables.jsonl": ("pg_stat_tables", "schema_tables", 6),
    "pg_stat_user_indexes.csv": ("pg_stat_indexes", "schema_indexes", 17),
    "pg_stats.csv": ("pg_stats", "column_stats", 13),
    "mysql_show_index.tsv": ("mysql_indexes", "schema_indexes", 6),
    "mysql_statistics.tsv": ("mysql_indexes", "schema_indexes", 6),
    "django_models.json": ("django_models", "schema_columns", 21),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_is_detected_and_loaded(name: str) -> None:
    fmt, frame, rows = EXPECTED[name]
    path = CATALOG / name
    assert auditkit.detect(path).format == fmt
    result = auditkit.load(path)
    report = result.report
    assert report.read == report.parsed + report.skipped_total
    assert result.primary == frame and len(result.frame) == rows
    assert list(result.frame.columns[: len(FRAMES[frame].names)]) == FRAMES[frame].names


def test_pg_indexes_definition_is_parsed() -> None:
    df = auditkit.load(CATALOG / "pg_indexes.csv").frame.set_index("index")
    like = df.loc["shop_customer_slug_ff81e9d2_like"]
    assert (
        like["columns"] == "slug"
        and like["opclasses"] == "varchar_pattern_ops"
        and not like["unique"]
    )
    assert df.loc["shop_order_tags_order_id_tag_id_2fbdacc8_uniq", "columns"] == "order_id, tag_id"
    assert df.loc["shop_order_pkey", "primary"] and df.loc["shop_order_pkey", "unique"]
    assert (
        not df.loc["shop_customer_slug_key", "primary"]
        and df.loc["shop_customer_slug_key", "unique"]
    )
    assert set(df["method"]) == {"btree"}
    # the JSON export gives the same rows
    js = auditkit.load(CATALOG / "pg_indexes.json").frame.set_index("index")
    assert js.sort_index()["columns"].tolist() == df.sort_index()["columns"].tolist()


def test_statistics_and_sizes() -> None:
    tables = auditkit.load(CATALOG / "pg_stat_user_tables.csv").frame.set_index("table")
    assert (
        tables.loc["shop_order", "seq_scan"] == 60 and tables.loc["shop_customer", "idx_scan"] == 60
    )
    idx = auditkit.load(CATALOG / "pg_stat_user_indexes.csv").frame.set_index("index")
    assert (
        idx.loc["shop_order_total_idx", "idx_scan"] == 0
        and idx.loc["shop_order_customer_dup", "idx_scan"] == 30
    )
    sizes = auditkit.load(CATALOG / "relation_sizes.csv")
    t = sizes.frames["schema_tables"].set_index("table")
    i = sizes.frames["schema_indexes"].set_index("index")
    assert t.loc["shop_order", "size_bytes"] == 8626176
    # pg_size_pretty totals are read back to bytes
    assert t.loc["django_content_type", "total_size_bytes"] == 40 * 1024
    assert i.loc["shop_order_total_idx", "size_bytes"] > 0
    assert sizes.report.read == len(t) + len(i)


def test_pg_stats_keeps_no_values() -> None:
    df = auditkit.load(CATALOG / "pg_stats.csv").frame
    row = df[(df["table"] == "shop_customer") & (df["column"] == "country")].iloc[0]
    assert row["n_distinct"] == 5 and row["avg_width"] == 3
    assert "most_common_vals" not in df and "histogram_bounds" not in df


def test_mysql_show_index_and_information_schema_agree() -> None:
    show = auditkit.load(CATALOG / "mysql_show_index.tsv").frame.set_index("index")
    info = auditkit.load(CATALOG / "mysql_statistics.tsv").frame.set_index("index")
    assert show.loc["shop_order_ak_status_created", "columns"] == "status, created_at DESC"
    assert show.loc["shop_order_ak_note_prefix", "columns"] == "note(20)"
    assert show.loc["PRIMARY", "primary"] and show.loc["shop_order_ak_reference_uniq", "unique"]
    assert not show.loc["shop_order_ak_customer_dup", "unique"]
    assert show.sort_index()["columns"].tolist() == info.sort_index()["columns"].tolist()
    assert set(info["schema"]) == {"test"}


def test_sniffers_claim_only_their_files(peer_data: Path) -> None:
    from auditkit.loaders.registry import all_loaders
    from auditkit.loaders.stream import read_head

    loaders = all_loaders()
    for path in sorted(peer_data.rglob("*")):
        if not path.is_file():
            continue
        head = read_head(path).decode("utf-8", "replace")
        claimed = [m for m in MINE if loaders[m].sniff(head, path) > 0]
        assert not claimed, f"{path.name} claimed by {claimed}"
    # and each catalog export is claimed by exactly one of them
    for name in EXPECTED:
        path = CATALOG / name
        head = read_head(path).decode("utf-8", "replace")
        assert [m for m in MINE if loaders[m].sniff(head, path) > 0] == [EXPECTED[name][0]]


def test_a_file_of_another_view_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "indexes.csv"
    bad.write_text("schemaname,tablename,indexname,tablespace,indexdef\npublic,t,i,,not an index\n")
    with pytest.raises(InputError, match="no usable records"):
        auditkit.load(bad)


# -- the Django model dump --------------------------------------------------------------------
def test_model_dump_frames() -> None:
    result = auditkit.load(CATALOG / "django_models.json")
    cols = result.frames["schema_columns"]
    fk = cols[(cols["table"] == "shop_order") & (cols["field"] == "customer")].iloc[0]
    assert (
        fk["column"] == "customer_id"
        and fk["fk_to"] == "shop_customer"
        and fk["related_name"] == "orders"
    )
    assert fk["related_model"] == "shop.Customer" and not fk["inferred"]
    m2m = cols[(cols["field"] == "tags") & (cols["table"] == "shop_order")].iloc[0]
    assert m2m["through"] == "shop_order_tags" and m2m["through_source_column"] == "order_id"
    through = cols[cols["table"] == "shop_order_tags"]
    assert set(through["column"]) == {"order_id", "tag_id"}
    tables = result.frames["schema_tables"].set_index("table")
    assert (
        tables.loc["shop_order", "model"] == "shop.Order"
        and tables.loc["shop_order", "latest_migration"] == "0001_initial"
    )
    idx = result.frames["schema_indexes"].set_index("index")
    # Django's own names for the indexes it creates
    assert idx.loc["shop_order_customer_id_f638df20", "declared_by"].startswith("ForeignKey")
    assert idx.loc["shop_customer_slug_ff81e9d2_like", "opclasses"] == "varchar_pattern_ops"
    assert idx.loc["shop_order_customer_dup", "declared_by"] == "Meta.indexes of Order"
    assert idx.loc["shop_order_tags_order_id_tag_id_2fbdacc8_uniq", "unique"]
    assert set(result.frames["schema_indexes"]["origin"]) == {"django_models"}
    # every declared index exists under that name in the real catalog, except PostgreSQL's own
    # names for primary keys and inline unique constraints, which are predicted
    catalog = set(auditkit.load(CATALOG / "pg_indexes.csv").frame["index"])
    predicted = set(result.frames["schema_indexes"].query("name_inferred == True")["index"])
    assert set(idx.index) - predicted <= catalog


def test_model_dump_version_is_checked(tmp_path: Path) -> None:
    p = tmp_path / "models.json"
    p.write_text('{"format": "auditkit.django_models", "version": 99, "apps": {}}')
    with pytest.raises(InputError, match="version 99"):
        auditkit.load(p)


def test_infer_models_from_catalog_names() -> None:
    idx = auditkit.load(CATALOG / "pg_indexes.csv").frame
    tables = auditkit.load(CATALOG / "pg_stat_user_tables.csv").frame
    cols = infer_models(tables, idx, seen_columns=[("shop_order", "reference")])
    assert cols["inferred"].all()
    fk = cols[(cols["table"] == "shop_order") & (cols["column"] == "customer_id")].iloc[0]
    assert (
        fk["field"] == "customer" and fk["fk_to"] == "shop_customer" and fk["app_label"] == "shop"
    )
    assert (
        fk["model"] == "Order" and fk["db_index"]
    )  # Django's automatic FK index, recognised by digest
    ref = cols[(cols["table"] == "shop_order") & (cols["column"] == "reference")].iloc[0]
    assert not ref["db_index"]
    m2m = cols[(cols["table"] == "shop_order") & (cols["field"] == "tags")].iloc[0]
    assert m2m["through"] == "shop_order_tags"


# -- the live collector -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def scratch_db(postgres_dsn: str) -> Iterator[str]:
    """A uniquely named database with a table, an index and some statistics."""
    name = f"auditkit_collect_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = postgres_dsn.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE item (id bigserial PRIMARY KEY, code text NOT NULL, qty int)"
            )
            conn.execute("CREATE INDEX item_code_idx ON item (code)")
            conn.execute(
                "INSERT INTO item (code, qty) SELECT 'c' || g, g FROM generate_series(1, 5000) g"
            )
            conn.execute("ANALYZE item")
            conn.execute("SELECT * FROM item WHERE code = 'c10'")
        yield dsn
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_collector_writes_what_the_loaders_read(
    scratch_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditkit.collect.postgres import collect_postgres

    monkeypatch.setenv("AUDITKIT_TEST_COLLECT_DSN", scratch_db)
    result = collect_postgres("AUDITKIT_TEST_COLLECT_DSN", tmp_path)
    assert result.rows["pg_indexes.csv"] == 2 and result.rows["pg_stat_user_tables.csv"] == 1
    assert "pg_stat_statements.csv" in result.skipped or "pg_stat_statements.csv" in result.rows
    for path in result.files:
        assert scratch_db not in path.read_text(encoding="utf-8"), "the DSN must never be written"
    client = auditkit.load_client(tmp_path)
    statuses = {f.path: (f.status, f.format) for f in client.files}
    assert statuses["pg_indexes.csv"] == ("loaded", "pg_indexes")
    assert statuses["pg_stat_user_tables.csv"] == ("loaded", "pg_stat_tables")
    assert statuses["pg_stat_user_indexes.csv"] == ("loaded", "pg_stat_indexes")
    assert statuses["pg_relation_sizes.csv"] == ("loaded", "pg_relation_sizes")
    assert statuses["pg_stats.csv"] == ("loaded", "pg_stats")
    assert statuses["collect_postgres.md"][0] == "documentation"
    tables = client.frame("schema_tables").groupby("table").first()
    assert tables.loc["item", "rows_estimate"] == 5000 and tables.loc["item", "size_bytes"] > 0
    idx = client.frame("schema_indexes").groupby("index").first()
    assert idx.loc["item_pkey", "primary"] and idx.loc["item_code_idx", "columns"] == "code"
    assert idx.loc["item_code_idx", "size_bytes"] > 0 and "collected_at" in idx.columns
    stats = client.frame("column_stats")
    assert set(stats["column"]) == {"id", "code", "qty"}


@pytest.mark.postgres
def test_collector_connection_cannot_write(
    scratch_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditkit.collect.postgres import connect_read_only

    monkeypatch.setenv("AUDITKIT_TEST_COLLECT_DSN", scratch_db)
    with connect_read_only("AUDITKIT_TEST_COLLECT_DSN") as conn:
        assert conn.execute("SHOW transaction_read_only").fetchone()[0] == "on"
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE should_not_exist (id int)")
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT to_regclass('should_not_exist')").fetchone()[0] is None


def test_collector_needs_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from auditkit.collect.postgres import collect_postgres

    monkeypatch.delenv("AUDITKIT_UNSET_DSN", raising=False)
    with pytest.raises(CollectorError, match="AUDITKIT_UNSET_DSN is not set"):
        collect_postgres("AUDITKIT_UNSET_DSN", tmp_path)


def test_collector_error_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from auditkit.collect.postgres import collect_postgres

    monkeypatch.setenv(
        "AUDITKIT_BAD_DSN", "postgresql://someone:s3cret-pw@127.0.0.1:1/nodb?connect_timeout=2"
    )
    with pytest.raises(CollectorError) as info:
        collect_postgres("AUDITKIT_BAD_DSN", tmp_path)
    assert "s3cret-pw" not in str(info.value) and "AUDITKIT_BAD_DSN" in str(info.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.postgres
def test_collector_exports_pg_stat_statements_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import REQUIRE_SERVICES

    from auditkit.collect.postgres import collect_postgres
    from devtools.postgres import ThrowawayPostgres, available

    reason = available()
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(f"cannot start a private PostgreSQL cluster: {reason}")
        pytest.skip(f"cannot start a private PostgreSQL cluster: {reason}")
    with ThrowawayPostgres() as pg:  # pg_stat_statements preloaded and created
        pg.execute("CREATE TABLE k (id int PRIMARY KEY, v text)")
        pg.execute("INSERT INTO k SELECT g, 'v' || g FROM generate_series(1, 100) g")
        pg.execute("SELECT v FROM k WHERE id = 42")
        monkeypatch.setenv("AUDITKIT_TEST_PGSS_DSN", pg.dsn)
        result = collect_postgres("AUDITKIT_TEST_PGSS_DSN", tmp_path)
    assert (
        result.rows["pg_stat_statements.csv"] > 0 and "pg_stat_statements.csv" not in result.skipped
    )
    client = auditkit.load_client(tmp_path)
    fmt = {f.path: (f.status, f.format) for f in client.files}["pg_stat_statements.csv"]
    assert fmt == ("loaded", "pgss_csv")
    stats = client.frame("statement_stats")
    assert stats["fingerprint"].str.contains("from k where id = ?", regex=False).any()
