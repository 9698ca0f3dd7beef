"""PostgreSQL cumulative statistics views, pg_index details and size listings.

The committed fixtures (``tests/fixtures/pg_views``, see its SOURCES.md) were written by ``psql``
against a private PostgreSQL 15 cluster by ``tests/pg_views_fixtures.py``; the live tests run the
same script, and ``auditkit collect postgres``, against a fresh private cluster, so the loaders
are held to what the installed server and psql write today.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import auditkit
from auditkit.counters import status_delta
from auditkit.errors import NothingParsedError
from auditkit.schemas import FRAMES

VIEWS = Path(__file__).parent / "fixtures" / "pg_views"

#: fixture → (format, frame, rows)
EXPECTED = {
    "pg_stat_database.csv": ("pg_stat_database", "server_status", 26),
    "pg_stat_database.txt": ("pg_stat_database", "server_status", 26),
    "pg_stat_database-expanded.txt": ("pg_stat_database", "server_status", 26),
    "pg_stat_bgwriter.csv": ("pg_stat_bgwriter", "server_status", 11),
    "pg_stat_bgwriter.txt": ("pg_stat_bgwriter", "server_status", 11),
    "pg_stat_archiver.csv": ("pg_stat_archiver", "server_status", 7),
    "pg_stat_archiver.txt": ("pg_stat_archiver", "server_status", 7),
    "pg_stat_checkpointer.csv": ("pg_stat_checkpointer", "server_status", 9),
    "pg_statio_user_tables.csv": ("pg_statio_tables", "schema_tables", 2),
    "pg_statio_user_tables.json": ("pg_statio_tables", "schema_tables", 2),
    "pg_statio_user_tables.txt": ("pg_statio_tables", "schema_tables", 2),
    "pg_statio_user_indexes.csv": ("pg_statio_indexes", "schema_indexes", 5),
    "pg_statio_user_indexes.jsonl": ("pg_statio_indexes", "schema_indexes", 5),
    "pg_statio_user_indexes.txt": ("pg_statio_indexes", "schema_indexes", 5),
    "pg_index_detail.csv": ("pg_index", "schema_indexes", 5),
    "relation_sizes_pretty.txt": ("pg_relation_sizes", "schema_tables", 2),
    "table_sizes.csv": ("pg_relation_sizes", "schema_tables", 2),
    "index_sizes.json": ("pg_relation_sizes", "schema_indexes", 5),
    "dt_plus.txt": ("pg_relation_sizes", "schema_tables", 2),
    "di_plus.txt": ("pg_relation_sizes", "schema_indexes", 5),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_is_detected_and_loaded(name: str) -> None:
    fmt, frame, rows = EXPECTED[name]
    path = VIEWS / name
    assert auditkit.detect(path).format == fmt
    result = auditkit.load(path)
    report = result.report
    assert report.read == report.parsed + report.skipped_total and report.skipped_total == 0
    df = result.frames[frame]
    assert len(df) == rows
    assert list(df.columns[: len(FRAMES[frame].names)]) == FRAMES[frame].names


def test_every_shape_of_one_view_gives_the_same_rows() -> None:
    """CSV, aligned and expanded psql output of pg_stat_database: same names, kinds, flags."""
    frames = [
        auditkit.load(VIEWS / n).frame.set_index("name")
        for n in ("pg_stat_database.csv", "pg_stat_database.txt", "pg_stat_database-expanded.txt")
    ]
    for df in frames:
        assert set(df["view"]) == {"pg_stat_database"} and set(df["engine"]) == {"postgres"}
        assert set(df["database"]) == {"postgres"} and set(df["kind"]) == {"status"}
        assert df["ts"].notna().all() and str(df["ts"].dt.tz) == "UTC"
        assert df.loc["xact_commit", "counter"] and not df.loc["numbackends", "counter"]
        assert df.loc["blks_hit", "value"] > df.loc["blks_read", "value"] > 0
        assert math.isnan(df.loc["stats_reset", "value"]) and not df.loc["stats_reset", "counter"]
        assert "datid" not in df.index and "datname" not in df.index
    assert list(frames[0].index) == list(frames[1].index) == list(frames[2].index)


def test_statio_fills_the_block_columns() -> None:
    tables = auditkit.load(VIEWS / "pg_statio_user_tables.json").frame.set_index("table")
    csv = auditkit.load(VIEWS / "pg_statio_user_tables.csv").frame.set_index("table")
    book = tables.loc["library_book"]
    assert book["heap_blks_hit"] == 16702 and book["heap_blks_read"] == 78
    assert book["idx_blks_hit"] == 47285 and book["toast_blks_read"] == 0
    assert book["tidx_blks_hit"] == 0  # kept as an extra
    assert csv.loc["library_author", "heap_blks_hit"] > 0
    indexes = auditkit.load(VIEWS / "pg_statio_user_indexes.txt").frame.set_index("index")
    assert indexes.loc["library_book_isbn_uniq", "table"] == "library_book"
    assert indexes.loc["library_book_isbn_uniq", "idx_blks_read"] == 33
    assert indexes["idx_blks_hit"].notna().all() and indexes["idx_scan"].isna().all()


def test_server_wide_views() -> None:
    bg = auditkit.load(VIEWS / "pg_stat_bgwriter.txt").frame.set_index("name")
    assert bg.loc["buffers_alloc", "value"] == 647 and bg.loc["buffers_alloc", "counter"]
    assert bg["database"].isna().all() and set(bg["view"]) == {"pg_stat_bgwriter"}
    assert bg.loc["stats_reset", "text"].startswith("2026-12-05 07:44:54")
    arch = auditkit.load(VIEWS / "pg_stat_archiver.csv").frame.set_index("name")
    assert arch.loc["archived_count", "counter"] and not arch.loc["last_archived_wal", "counter"]
    cp = auditkit.load(VIEWS / "pg_stat_checkpointer.csv").frame.set_index("name")
    assert cp.loc["num_timed", "value"] == 412 and cp.loc["buffers_written", "counter"]


def test_pg_index_detail_and_oids_only() -> None:
    idx = auditkit.load(VIEWS / "pg_index_detail.csv").frame.set_index("index")
    assert (
        idx.loc["library_book_isbn_uniq", "unique"]
        and not idx.loc["library_book_isbn_uniq", "primary"]
    )
    assert (
        idx.loc["library_author_pkey", "primary"]
        and idx.loc["library_book_pkey", "table"] == "library_book"
    )
    assert idx.loc["library_book_author_id_idx", "columns"] == "author_id"
    assert idx.loc["library_book_isbn_uniq", "indkey"] == "4"
    with pytest.raises(NothingParsedError) as err:
        auditkit.load(VIEWS / "pg_index_oids.csv")
    assert "indexrelid::regclass" in str(err.value) and "pg_index_oids.csv" in str(err.value)


def test_size_listings_in_other_column_sets() -> None:
    pretty = auditkit.load(VIEWS / "relation_sizes_pretty.txt").frame.set_index("table")
    assert pretty.loc["library_book", "total_size_bytes"] == 1200 * 1024
    assert pretty.loc["library_book", "schema"] == "public"
    sizes = auditkit.load(VIEWS / "table_sizes.csv").frame.set_index("table")
    assert sizes.loc["library_author", "size_bytes"] == 32 * 1024
    assert sizes.loc["library_author", "index_size_bytes"] == 80 * 1024
    assert sizes.loc["library_author", "total_size_bytes"] == 144 * 1024
    di = auditkit.load(VIEWS / "di_plus.txt").frames["schema_indexes"].set_index("index")
    assert di.loc["library_book_isbn_uniq", "size_bytes"] == 264 * 1024
    assert di.loc["library_book_isbn_uniq", "table"] == "library_book"
    js = auditkit.load(VIEWS / "index_sizes.json").frames["schema_indexes"].set_index("index")
    assert js.loc["library_book_isbn_uniq", "size_bytes"] == 270336  # the same index, in bytes
    dt = auditkit.load(VIEWS / "dt_plus.txt").frame.set_index("table")
    assert dt.loc["library_book", "size_bytes"] == 640 * 1024


def test_delta_between_snapshot_files() -> None:
    client = auditkit.load_client(VIEWS / "delta")
    assert {f.format for f in client.files} == {"pg_stat_database", "pg_statio_tables"}
    delta, messages = status_delta(client.frame("server_status"))
    assert messages == []
    d = delta.set_index("name")
    assert d.loc["xact_commit", "delta"] == 50 and d.loc["blks_hit", "delta"] == 139843 - 123864
    assert d.loc["xact_commit", "interval_s"] == pytest.approx(2.668)
    assert d.loc["xact_commit", "rate_per_s"] == pytest.approx(50 / 2.668)
    assert pd.isna(d.loc["numbackends", "delta"]) and not d["reset"].any()
    assert set(d["database"]) == {"postgres"} and set(d["view"]) == {"pg_stat_database"}
    # the statio snapshots describe the same two tables, both kept with their file
    tables = client.frame("schema_tables")
    assert len(tables) == 4 and tables["source_file"].str.startswith("pg_statio_user_tables-").all()


def _status(
    rows: list[tuple[str, str, float | None, str, bool]], ts: str, file: str
) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "ts": pd.Timestamp(ts),
                "kind": "status",
                "name": name,
                "value": value,
                "text": text,
                "counter": counter,
                "view": "pg_stat_database",
                "database": db,
                "snapshot": 1,
                "uptime_s": None,
                "server": None,
                "source_file": file,
            }
            for db, name, value, text, counter in rows
        ]
    )


def test_delta_detects_a_statistics_reset_and_counters_going_down() -> None:
    before = _status(
        [
            ("app", "xact_commit", 1000, "1000", True),
            ("app", "stats_reset", None, "", False),
            ("other", "xact_commit", 50, "50", True),
        ],
        "2026-01-01T10:00:00Z",
        "a.csv",
    )
    after = _status(
        [
            ("app", "xact_commit", 40, "40", True),
            ("app", "stats_reset", None, "2026-01-01 10:04:00+00", False),
            ("other", "xact_commit", 20, "20", True),
        ],
        "2026-01-01T10:05:00Z",
        "b.csv",
    )
    delta, messages = status_delta(pd.concat([before, after]))
    d = delta.set_index(["database", "name"])
    assert d.loc[("app", "xact_commit"), "delta"] == 40 and d.loc[("app", "xact_commit"), "reset"]
    assert d.loc[("app", "xact_commit"), "interval_s"] == 60.0  # since the reset
    assert (
        d.loc[("other", "xact_commit"), "delta"] == 20 and d.loc[("other", "xact_commit"), "reset"]
    )
    assert math.isnan(d.loc[("other", "xact_commit"), "interval_s"])
    assert any("database app: statistics were reset" in m for m in messages)
    assert any("database other: counters went down" in m for m in messages)


# -- live: psql and the collector against a private cluster ------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    from conftest import REQUIRE_SERVICES

    from devtools.postgres import ThrowawayPostgres, available

    reason = available()
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(f"cannot start a private PostgreSQL cluster: {reason}")
        pytest.skip(f"cannot start a private PostgreSQL cluster: {reason}")
    with ThrowawayPostgres({"autovacuum": False, "logging_collector": False}) as pg:
        yield pg


def test_psql_output_of_this_server_loads(cluster: object, tmp_path: Path) -> None:
    from pg_views_fixtures import _psql, _snapshot, write_fixtures

    pg = cluster
    folder = write_fixtures(pg, tmp_path / "views")
    for name, (fmt, frame, _rows) in EXPECTED.items():
        path = folder / name
        if not path.exists():  # pg_stat_checkpointer needs PostgreSQL 17
            continue
        result = auditkit.load(path)
        assert result.format == fmt, name
        assert len(result.frames[frame]) > 0 and result.report.skipped_total == 0, name
    # a statistics reset between two snapshots is told apart from traffic
    pg.execute("SELECT pg_stat_reset()")  # type: ignore[attr-defined]
    pg.execute("SELECT count(*) FROM library_book")  # type: ignore[attr-defined]
    import time

    time.sleep(1.1)
    _snapshot(pg, folder, "29991231T235959Z")
    assert "stats_reset" in _psql(
        pg, "--csv", sql="SELECT stats_reset FROM pg_stat_database LIMIT 1"
    )
    client = auditkit.load_client(folder / "delta")
    delta, messages = status_delta(client.frame("server_status"))
    d = delta.set_index("name")
    assert d["reset"].all() and any("statistics were reset" in m for m in messages), messages
    assert d.loc["xact_commit", "delta"] == d.loc["xact_commit", "after"] > 0


def test_collector_files_load_with_their_loaders(
    cluster: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from auditkit.collect.postgres import collect_postgres

    pg = cluster
    pg.execute("CREATE TABLE IF NOT EXISTS shelf (id int PRIMARY KEY, label text)")  # type: ignore[attr-defined]
    pg.execute(
        "INSERT INTO shelf SELECT g, 's' || g FROM generate_series(1, 300) g ON CONFLICT DO NOTHING"
    )  # type: ignore[attr-defined]
    monkeypatch.setenv("AUDITKIT_TEST_PG_VIEWS", pg.dsn)  # type: ignore[attr-defined]

    def traffic() -> None:  # between the two snapshots: ten committed transactions
        time.sleep(0.3)
        for i in range(10):
            pg.execute(f"SELECT label FROM shelf WHERE id = {i + 1}")  # type: ignore[attr-defined]

    worker = threading.Thread(target=traffic)
    worker.start()
    collect_postgres("AUDITKIT_TEST_PG_VIEWS", tmp_path, every_s=2.0, count=2, explain_top=0)
    worker.join()
    client = auditkit.load_client(tmp_path)
    status = {f.path: (f.status, f.format) for f in client.files}
    assert status["pg_statio_user_tables.csv"] == ("loaded", "pg_statio_tables")
    assert status["pg_statio_user_indexes.csv"] == ("loaded", "pg_statio_indexes")
    assert status["pg_stat_database.csv"] == ("loaded", "pg_stat_database")
    snaps = [p for p in status if p.startswith("snapshots/pg_stat_database-")]
    assert len(snaps) == 1 and status[snaps[0]] == ("loaded", "pg_stat_database")
    assert not [f for f in client.files if f.status in ("error", "unrecognised")], (
        client.inventory()
    )
    tables = client.frame("schema_tables")
    shelf = tables[(tables["table"] == "shelf") & tables["heap_blks_hit"].notna()]
    assert len(shelf) == 2  # the snapshot and the latest file
    delta, _messages = status_delta(client.frame("server_status"))
    mine = delta[delta["database"] == "postgres"].set_index("name")
    assert mine.loc["xact_commit", "delta"] >= 10 and mine.loc["xact_commit", "interval_s"] >= 1.9


MINE = (
    "pg_statio_tables",
    "pg_statio_indexes",
    "pg_stat_database",
    "pg_stat_bgwriter",
    "pg_stat_checkpointer",
    "pg_stat_archiver",
    "pg_index",
    "pg_relation_sizes",
)


def test_sniffers_claim_only_their_files(peer_data: Path) -> None:
    from auditkit.loaders.registry import all_loaders
    from auditkit.loaders.stream import read_head

    loaders = all_loaders()
    for path in sorted(peer_data.rglob("*")):
        if path.is_file():
            head = read_head(path).decode("utf-8", "replace")
            claimed = [m for m in MINE if loaders[m].sniff(head, path) > 0]
            assert not claimed, f"{path.name} claimed by {claimed}"
    # each fixture is claimed by exactly one loader of all
    for name in EXPECTED:
        path = VIEWS / name
        head = read_head(path).decode("utf-8", "replace")
        claimed = [n for n, loader in loaders.items() if loader.sniff(head, path) > 0]
        assert claimed == [EXPECTED[name][0]], name


def test_datadog_agent_snapshot_of_statistics_queries(peer_data: Path) -> None:
    """The Datadog postgres check's recorded queries and results (see MANIFEST.md)."""
    path = peer_data / "datadog-integrations-core/postgres/tests/snapshots/1.requests.json"
    assert auditkit.detect(path).format == "pg_query_results"
    result = auditkit.load(path)
    report = result.report
    assert report.read == 28 and report.parsed == 3 and report.skipped_total == 25
    assert report.skipped["pg_stat_database without the columns of its export"] == 2
    status = result.frame
    db = status[status["view"] == "pg_stat_database"]
    assert db["database"].nunique() == 106
    pg = db[db["database"] == "postgres"].set_index("name")
    assert pg.loc["xact_commit", "value"] == 124 and pg.loc["blks_read", "value"] == 125
    assert pg.loc["blks_hit", "value"] == 8668 and pg.loc["blks_hit", "counter"]
    assert not pg.loc["pg_database_size", "counter"] and not pg.loc["wraparound", "counter"]
    bg = status[status["view"] == "pg_stat_bgwriter"].set_index("name")
    assert bg.loc["checkpoints_req", "value"] == 214 and bg.loc["buffers_alloc", "value"] == 2020
    assert bg.loc["checkpoint_write_time", "value"] == 337.0
    arch = status[status["view"] == "pg_stat_archiver"].set_index("name")
    assert arch.loc["failed_count", "value"] == 0 and arch.loc["failed_count", "counter"]


def test_wal_names_and_times_are_text() -> None:
    arch = auditkit.load(VIEWS / "pg_stat_archiver.txt").frame.set_index("name")
    for name in ("last_archived_wal", "last_archived_time", "stats_reset"):
        assert math.isnan(arch.loc[name, "value"]) and not arch.loc[name, "counter"]


def test_delta_of_every_database_of_two_agent_snapshots(peer_data: Path) -> None:
    """106 databases × 17 counters: one series per database, each with its own delta."""
    path = peer_data / "datadog-integrations-core/postgres/tests/snapshots/1.requests.json"
    first = auditkit.load(path, ts="2026-01-01T10:00:00Z").frame
    second = auditkit.load(path, ts="2026-01-01T10:02:00Z").frame
    second["source_file"] = "later.json"
    second.loc[second["name"] == "xact_commit", "value"] += 60
    delta, messages = status_delta(pd.concat([first, second], ignore_index=True))
    assert messages == []
    commits = delta[delta["name"] == "xact_commit"]
    assert len(commits) == 106 and (commits["delta"] == 60).all()
    assert (commits["rate_per_s"] == 0.5).all() and not commits["reset"].any()
    size = delta[(delta["name"] == "pg_database_size") & (delta["database"] == "postgres")].iloc[0]
    assert pd.isna(size["delta"]) and size["after"] == 7741955  # a gauge: both values, no delta
