"""MySQL/MariaDB statistics exports written by the real server and the real ``mysql`` client.

A private MariaDB (``devtools.mariadb``: performance_schema is a start-up option, off on the
shared server) runs a small workload on a database of its own; every view is then exported in
every shape the client writes — ``-B`` TSV, ``-t`` tabular, ``-E`` vertical, ``-vvv`` transcripts
with the statement echoed, several result sets in one file, JSON lines built by the server's
``JSON_OBJECT`` and CSV written by ``SELECT … INTO OUTFILE`` — and read back with exact counts
(the server's own ``COUNT(*)`` of the same rows).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import auditkit
from auditkit.errors import AuditkitError
from auditkit.loaders.detect import detect
from auditkit.loaders.mysql_stats import digest_delta, digest_sql, status_delta
from tests.conftest import REQUIRE_SERVICES

DB = "ak_stats"


def _author(i: int) -> str:
    city = "NULL" if i % 10 == 0 else f"'c{i % 7}'"
    return f"('n{i}', 'a{i}@x.org', {city})"


WORKLOAD = f"""
CREATE DATABASE {DB};
USE {DB};
CREATE TABLE author (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(40), email VARCHAR(80),
  city VARCHAR(40), KEY author_city (city), KEY author_name (name), KEY author_name_city (name, city));
CREATE TABLE book (id INT PRIMARY KEY AUTO_INCREMENT, author_id INT, title VARCHAR(80),
  CONSTRAINT book_author_fk FOREIGN KEY (author_id) REFERENCES author (id));
INSERT INTO author (name, email, city) VALUES {", ".join(_author(i) for i in range(200))};
INSERT INTO book (author_id, title) SELECT id, CONCAT('t', id) FROM author;
ANALYZE TABLE author, book;
""" + "".join(f"SELECT `id` FROM `author` WHERE `email` = 'a{i}@x.org';\n" for i in range(20)) + "".join(
    f"SELECT * FROM author WHERE name = 'n{i}';\n" for i in range(10)
)
#: view → (query, filter for the server's own count)
VIEWS = {
    "index_usage": (
        "SELECT * FROM performance_schema.table_io_waits_summary_by_index_usage",
        f"OBJECT_SCHEMA = '{DB}'",
    ),
    "table_io": ("SELECT * FROM performance_schema.table_io_waits_summary_by_table", f"OBJECT_SCHEMA = '{DB}'"),
    "digest": (
        "SELECT * FROM performance_schema.events_statements_summary_by_digest",
        f"SCHEMA_NAME = '{DB}'",
    ),
    "unused": ("SELECT * FROM sys.schema_unused_indexes", f"object_schema = '{DB}'"),
    "redundant": ("SELECT * FROM sys.schema_redundant_indexes", f"table_schema = '{DB}'"),
    "full_scans": ("SELECT * FROM sys.x$statements_with_full_table_scans", f"db = '{DB}'"),
    "full_scans_formatted": ("SELECT * FROM sys.statements_with_full_table_scans", f"db = '{DB}'"),
    "statistics": ("SELECT * FROM information_schema.STATISTICS", f"TABLE_SCHEMA = '{DB}'"),
    "tables": ("SELECT * FROM information_schema.TABLES", f"TABLE_SCHEMA = '{DB}'"),
    "innodb_index_stats": ("SELECT * FROM mysql.innodb_index_stats", f"database_name = '{DB}'"),
    "innodb_table_stats": ("SELECT * FROM mysql.innodb_table_stats", f"database_name = '{DB}'"),
    "status": ("SELECT * FROM information_schema.GLOBAL_STATUS", "1 = 1"),
}
SHAPES = {"batch": ("-B",), "tabular": ("-t",), "vertical": ("-E",), "transcript": ("-t", "-vvv")}


@pytest.fixture(scope="module")
def server() -> Iterator[object]:
    from devtools.mariadb import ThrowawayMariaDB, available

    reason = available()
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(reason + " (required in CI)")
        pytest.skip(reason)
    with ThrowawayMariaDB() as db:  # secure_file_priv is empty: INTO OUTFILE may write anywhere
        db.run(WORKLOAD)
        yield db


@pytest.fixture(scope="module")
def exports(server: object, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Every view in every shape, plus the server's own row count of each (taken right after)."""
    db = server
    folder = tmp_path_factory.mktemp("mysql_exports")
    out: dict[str, object] = {"folder": folder, "counts": {}}
    for view, (query, where) in VIEWS.items():
        sql = f"{query} WHERE {where}"
        for shape, opts in SHAPES.items():
            (folder / f"{view}.{shape}.txt").write_text(db.run(sql + ";", *opts))  # type: ignore[attr-defined]
        cols = db.run(  # type: ignore[attr-defined]
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) = "
            f"'{query.split()[-1]}' ORDER BY ORDINAL_POSITION;",
            "-N",
            "-B",
        ).split()
        pairs = ", ".join(f"'{c}', `{c}`" for c in cols)
        (folder / f"{view}.jsonl").write_text(
            db.run(f"SELECT JSON_OBJECT({pairs}) FROM {query.split()[-1]} WHERE {where};", "-N", "-B", "-r")  # type: ignore[attr-defined]
        )
        csv_path = folder / f"{view}.csv"
        header = ", ".join(f"'{c}'" for c in cols)
        db.run(  # type: ignore[attr-defined]
            f"SELECT {header} UNION ALL SELECT {', '.join(f'`{c}`' for c in cols)} FROM {query.split()[-1]} "
            f"WHERE {where} INTO OUTFILE '{csv_path}' FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' "
            "LINES TERMINATED BY '\\n';"
        )
        count = db.run(f"SELECT COUNT(*) FROM {query.split()[-1]} WHERE {where};", "-N", "-B")  # type: ignore[attr-defined]
        out["counts"][view] = int(count.strip())  # type: ignore[index]
    # several result sets in one file: SHOW INDEX of every table, SHOW CREATE TABLE of both
    for shape, opts in SHAPES.items():
        (folder / f"show_index.{shape}.txt").write_text(
            db.run(f"SHOW INDEX FROM {DB}.author; SHOW INDEX FROM {DB}.book;", *opts)  # type: ignore[attr-defined]
        )
        (folder / f"show_create.{shape}.txt").write_text(
            db.run(f"SHOW CREATE TABLE {DB}.author; SHOW CREATE TABLE {DB}.book;", *opts)  # type: ignore[attr-defined]
        )
        (folder / f"variables.{shape}.txt").write_text(db.run("SHOW GLOBAL VARIABLES;", *opts))  # type: ignore[attr-defined]
    out["variables"] = int(
        db.run("SELECT COUNT(*) FROM information_schema.GLOBAL_VARIABLES;", "-N", "-B").strip()  # type: ignore[attr-defined]
    )
    return out


def _load(path: Path) -> auditkit.LoadResult:  # type: ignore[name-defined]
    result = auditkit.load(path)
    result.report.check()
    return result


EXPECTED_FRAME = {
    "index_usage": None,  # indexes + one table row per table (the no-index row)
    "table_io": "schema_tables",
    "digest": "statement_stats",
    "unused": "schema_indexes",
    "redundant": "schema_indexes",
    "full_scans": "statement_stats",
    "full_scans_formatted": "statement_stats",
    "statistics": "schema_indexes",
    "tables": "schema_tables",
    "innodb_index_stats": "schema_indexes",
    "innodb_table_stats": "schema_tables",
    "status": "server_status",
}


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("shape", [*SHAPES, "jsonl", "csv"])
def test_every_view_in_every_shape(exports: dict[str, object], view: str, shape: str) -> None:
    folder: Path = exports["folder"]  # type: ignore[assignment]
    path = folder / (f"{view}.{shape}.txt" if shape in SHAPES else f"{view}.{shape}")
    count = exports["counts"][view]  # type: ignore[index]
    assert count > 0, f"the workload left {view} empty"
    fmt = detect(path).format
    assert fmt == ("mysql_indexes" if view == "statistics" and shape in ("batch", "jsonl", "csv") else "mysql_stats")
    result = _load(path)
    assert result.report.read == result.report.parsed == count, result.report.summary()
    frame = EXPECTED_FRAME[view]
    if frame is not None:
        assert result.frame is result.frames[frame]
        if view in ("statistics", "innodb_index_stats"):
            assert len(result.frame) == 6  # 4 author indexes, book PRIMARY and its FK index
        else:
            assert len(result.frame) == count


def _frames(exports: dict[str, object], view: str, shape: str = "tabular") -> dict[str, pd.DataFrame]:
    folder: Path = exports["folder"]  # type: ignore[assignment]
    return _load(folder / f"{view}.{shape}.txt").frames


def test_index_usage_shows_reads_and_full_scans(exports: dict[str, object]) -> None:
    frames = _frames(exports, "index_usage")
    ix = frames["schema_indexes"].set_index("index")
    # never read: the composite twin of author_name; inserts are counted on the no-index row
    assert ix.loc["author_name_city", "index_reads"] == 0 and ix.loc["author_name_city", "index_writes"] == 0
    # 10 lookups by name read one row each through author_name
    assert ix.loc["author_name", "index_reads"] == 10
    # INSERT … SELECT id FROM author scanned the smallest covering index: 200 reads
    assert ix.loc["author_city", "index_reads"] == 200
    assert (ix["dialect"] == "mysql").all()
    tables = frames["schema_tables"].set_index("table")
    # 20 lookups by e-mail read all 200 rows each, without an index
    assert tables.loc["author", "seq_tup_read"] >= 20 * 200


def test_digest_statistics(exports: dict[str, object]) -> None:
    stats = _frames(exports, "digest", "batch")["statement_stats"]
    by_email = stats[stats["fingerprint"].str.contains("`email` = ?", regex=False)].iloc[0]
    assert by_email["calls"] == 20 and by_email["rows"] == 20
    assert by_email["rows_examined"] == 20 * 200
    assert by_email["no_index_used"] == 20 and by_email["full_scans"] == 20
    assert by_email["total_ms"] > 0 and by_email["mean_ms"] == pytest.approx(by_email["total_ms"] / 20, rel=1e-3)
    assert len(by_email["query_id"]) == 32 and by_email["database"] == DB
    # the digest fingerprints like the statement as Django writes it (identifiers quoted)
    from auditkit.sql.fingerprint import fingerprint

    django_sql = "SELECT `id` FROM `author` WHERE `email` = 'a1@x.org'"
    assert by_email["fingerprint"] == fingerprint(django_sql, "mysql")


def test_sys_views(exports: dict[str, object]) -> None:
    unused = _frames(exports, "unused")["schema_indexes"]
    assert set(unused["index"]) == {"author_name_city", "book_author_fk"}
    assert (unused["index_reads"] == 0).all()
    redundant = _frames(exports, "redundant")["schema_indexes"].set_index("index")
    assert redundant.loc["author_name", "redundant_to"] == "author_name_city"
    assert "DROP INDEX `author_name`" in redundant.loc["author_name", "drop_sql"]
    raw = _frames(exports, "full_scans")["statement_stats"]
    formatted = _frames(exports, "full_scans_formatted")["statement_stats"]
    a = raw.set_index("query_id")["total_ms"]
    b = formatted.set_index("query_id")["total_ms"]
    # sys formats latencies with 2 decimals in the largest unit ('786.03 us'): 1 % agrees
    assert ((a - b.reindex(a.index)).abs() <= 0.01 * a + 1e-6).all()


def test_catalog_views(exports: dict[str, object]) -> None:
    tables = _frames(exports, "tables")["schema_tables"].set_index("table")
    assert tables.loc["author", "engine"] == "InnoDB"
    assert tables.loc["author", "size_bytes"] > 0 and tables.loc["author", "index_size_bytes"] > 0
    sizes = _frames(exports, "innodb_index_stats")["schema_indexes"]
    assert (sizes["size_bytes"] % 16384 == 0).all() and (sizes["size_bytes"] > 0).all()
    stats = _frames(exports, "innodb_table_stats")["schema_tables"].set_index("table")
    assert stats.loc["author", "rows_estimate"] == 200


@pytest.mark.parametrize("shape", list(SHAPES))
def test_show_index_and_create_table_many_tables(exports: dict[str, object], shape: str) -> None:
    index = _frames(exports, "show_index", shape)["schema_indexes"]
    create = _frames(exports, "show_create", shape)["schema_indexes"]
    assert len(index) == len(create) == 6
    merged = index.set_index(["table", "index"])["columns"].sort_index()
    assert merged.equals(create.set_index(["table", "index"])["columns"].sort_index())
    fk = create.set_index("index")
    assert fk.loc["book_author_fk", "foreign_key"] == "book_author_fk"
    assert pd.isna(fk.loc["author_city", "foreign_key"])
    assert fk.loc["author_name_city", "definition"] == (
        "CREATE INDEX `author_name_city` ON `author` (`name`, `city`) USING BTREE"
    )


@pytest.mark.parametrize("shape", list(SHAPES))
def test_variables_feed_server_settings(exports: dict[str, object], shape: str) -> None:
    result = _load(exports["folder"] / f"variables.{shape}.txt")  # type: ignore[operator]
    settings = result.frames["server_settings"].set_index("name")
    assert len(settings) == exports["variables"]
    assert settings.loc["max_connections", "value"] == 151
    assert settings.loc["innodb_buffer_pool_size", "value"] == 32 * 1024 * 1024
    assert settings.loc["long_query_time", "value"] == 10_000.0  # seconds → ms
    status = result.frames["server_status"]
    assert (status["kind"] == "variable").all() and status["engine"].eq("mariadb").all()
    # 'no limit' settings at 2^64-1 are not numbers, and the report says so
    assert math.isnan(settings.loc["max_binlog_cache_size", "value"])
    assert any("18446744073709551615" in w for w in result.report.warnings)


def test_digest_and_status_deltas_between_snapshots(server: object, tmp_path: Path) -> None:
    db = server
    q = f"SELECT * FROM performance_schema.events_statements_summary_by_digest WHERE SCHEMA_NAME = '{DB}';"
    (tmp_path / "before.txt").write_text(
        "-- 2030-01-01T10:00:00Z\n" + db.run(q + "SHOW GLOBAL STATUS;", "-t", "-vvv")  # type: ignore[attr-defined]
    )
    db.run("".join(f"SELECT id FROM author WHERE email = 'a{i}@x.org';\n" for i in range(7)), database=DB)  # type: ignore[attr-defined]
    (tmp_path / "after.txt").write_text(
        "-- 2030-01-01T10:01:00Z\n" + db.run(q + "SHOW GLOBAL STATUS;", "-t", "-vvv")  # type: ignore[attr-defined]
    )
    before, after = _load(tmp_path / "before.txt"), _load(tmp_path / "after.txt")
    delta, messages = digest_delta(before.frames["statement_stats"], after.frames["statement_stats"])
    assert messages == []
    row = delta[delta["fingerprint"].str.contains("`email` = ?", regex=False)].iloc[0]
    assert row["calls"] == 7 and row["rows_examined"] == 7 * 200 and row["no_index_used"] == 7
    assert len(delta) == 1  # nothing else ran in the database
    status = pd.concat([before.frames["server_status"], after.frames["server_status"]])
    rates, notes = status_delta(status)
    assert notes == []
    r = rates.set_index("name")
    assert r.loc["Com_select", "delta"] >= 7 and r.loc["Com_select", "interval_s"] == 60.0
    assert r.loc["Com_select", "rate_per_s"] == pytest.approx(r.loc["Com_select", "delta"] / 60)
    assert not r.loc["Threads_connected", "counter"] and pd.isna(r.loc["Threads_connected", "delta"])


def test_digest_text_as_sql() -> None:
    assert digest_sql("SELECT `a` . `b` FROM `t` WHERE `c` IN (...) ") == "SELECT `a`.`b` FROM `t` WHERE `c` IN (...)"
    assert digest_sql("INSERT INTO `t` ( `a` , `b` ) VALUES (...) /* , ... */ ") == "INSERT INTO `t` (`a`, `b`) VALUES (?)"


# -- robustness: no traceback, a parse report that says what happened ---------------------------
ROWS = "OBJECT_SCHEMA\tOBJECT_NAME\tINDEX_NAME\tCOUNT_STAR\tCOUNT_READ\tCOUNT_WRITE\tCOUNT_FETCH\tSUM_TIMER_READ\n"


def test_underflow_nulls_and_backslash_n(tmp_path: Path) -> None:
    p = tmp_path / "usage.tsv"
    p.write_text(
        ROWS
        + "shop\tt\tia\t1\t18446744073709551615\t0\t1\t5000000000\n"
        + "shop\tt\tib\t\\N\t\\N\tNULL\t0\t\n"
        + "shop\tt\tic\t3\t3\t0\n"
    )
    result = _load(p)
    ix = result.frames["schema_indexes"].set_index("index")
    assert pd.isna(ix.loc["ia", "index_reads"]) and ix.loc["ia", "read_ms"] == 5.0  # ps → ms
    assert pd.isna(ix.loc["ib", "index_reads"]) and pd.isna(ix.loc["ib", "index_writes"])
    assert result.report.skipped == {"6 fields, the header has 8": 1}
    assert any("COUNT_READ" in w for w in result.report.warnings)


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x01\x02\xff" * 100, ROWS.encode()[:60], b"+----+\n| Variable_name |\n", "Variable_name\tValue\nUptime\t\xe9".encode("latin-1")],
)
def test_bad_input_raises_a_clear_error_or_reads(tmp_path: Path, content: bytes) -> None:
    from auditkit.loaders.registry import get_loader

    p = tmp_path / "x.txt"
    p.write_bytes(content)
    try:
        result = get_loader("mysql_stats").load(p)
    except AuditkitError as exc:
        assert str(p) in str(exc) or "x.txt" in str(exc)
    else:
        result.report.check()
        assert result.report.warnings  # the mis-encoded byte is reported
