"""The MySQL / MariaDB / Percona slow query log loader against real logs.

Every slow log of the peer-data corpus is loaded and held to the event count its manifest
gives (``grep -c '^# Query_time' FILE``); field values named by the manifest are checked on the
files that carry them. Permissively licensed samples live in ``tests/fixtures/mysql`` (see
SOURCES.md) and run without the corpus; percona-toolkit's GPL samples are read from peer-data.
Odd inputs (truncated, binary, mis-encoded, CRLF, tiny blocks) are crafted in ``tmp_path``.
"""

from __future__ import annotations

import gzip
import math
import re
from pathlib import Path

import pandas as pd
import pytest

import auditkit.loaders  # noqa: F401  (registers every loader)
from auditkit.errors import NothingParsedError
from auditkit.loaders.detect import detect
from auditkit.loaders.mysql_slow import MySQLSlowLoader, last_time, last_use, learn_offset
from auditkit.loaders.registry import get_loader
from auditkit.loaders.result import LoadResult

PT = "percona-toolkit/t/lib/samples/slowlogs"
GO = "percona-go-mysql/test/slow-logs"
BEATS = "beats/filebeat/module/mysql/slowlog/test"

#: peer-data path → events, as the manifest states them
EXPECTED: dict[str, int] = {
    f"{PT}/microslow001.txt": 2,
    f"{PT}/mysql5.7.log": 2,
    f"{PT}/slow-pt-243.txt": 2,
    f"{PT}/slow001.txt": 2,
    f"{PT}/slow002.txt": 8,
    f"{PT}/slow005.txt": 1,
    f"{PT}/slow006.txt": 6,
    f"{PT}/slow008.txt": 3,
    f"{PT}/slow009.txt": 2001,
    f"{PT}/slow015.txt": 0,
    f"{PT}/slow017.txt": 1,
    f"{PT}/slow020.txt": 3,
    f"{PT}/slow022.txt": 6,
    f"{PT}/slow023.txt": 1,
    f"{PT}/slow027.txt": 1,
    f"{PT}/slow031.txt": 1,
    f"{PT}/slow032.txt": 1,
    f"{PT}/slow035.txt": 2,
    f"{PT}/slow036.txt": 1,
    f"{PT}/slow039.txt.gz": 1,
    f"{PT}/slow041.txt": 2,
    f"{PT}/slow044.txt": 2,
    f"{PT}/slow045.txt": 2,
    f"{PT}/slow046.txt": 1,
    f"{PT}/slow047.txt": 1,
    f"{PT}/slow056.txt": 2,
    f"{PT}/slow059.txt": 3,
    f"{PT}/slow060.txt": 1,
    f"{PT}/slow061.txt": 1,
    "percona-toolkit/src/go/pt-secure-collect/testdata/slow_80.log": 310,
    f"{GO}/mariadb102-with-explain.log": 1,
    f"{GO}/slow013.log": 5,
    f"{GO}/slow014.log": 4,
    f"{GO}/slow015.log": 2,
    f"{GO}/slow019.log": 4,
    f"{GO}/slow024.log": 3,
    f"{GO}/slow025.log": 3,
    f"{GO}/slow026.log": 1,
    f"{GO}/slow027.log": 1,
    f"{BEATS}/mysql-ubuntu-8.0.15.log": 2,
    f"{BEATS}/percona-ubuntu-8.0.15.log": 2,
    f"{BEATS}/mariadb-explain.log": 1,
}

#: server start banners in each file that has any (skipped, counted)
BANNERS = {
    f"{PT}/mysql5.7.log": 2,
    f"{PT}/slow-pt-243.txt": 1,
    f"{PT}/slow001.txt": 1,
    f"{PT}/slow031.txt": 1,
    f"{PT}/slow060.txt": 1,
    f"{PT}/slow061.txt": 1,
    "percona-toolkit/src/go/pt-secure-collect/testdata/slow_80.log": 1,
    f"{GO}/mariadb102-with-explain.log": 1,
    f"{GO}/slow013.log": 25,
    f"{GO}/slow024.log": 1,
    f"{BEATS}/mysql-ubuntu-8.0.15.log": 1,
    f"{BEATS}/percona-ubuntu-8.0.15.log": 2,
}

LOADER = get_loader("mysql_slow")
UTC = "UTC"


def load(path: Path, **options: object) -> LoadResult:
    return LOADER.load(path, **options)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


@pytest.fixture(scope="module")
def mysql_fixtures(fixtures: Path) -> Path:
    return fixtures / "mysql"


# -- the whole corpus ---------------------------------------------------------------------------
def test_expected_table_matches_the_manifest(peer_data: Path) -> None:
    """Every slow log the manifest lists is in EXPECTED, with the count the manifest gives."""
    manifest = (peer_data / "MANIFEST.md").read_text(encoding="utf-8")
    listed: dict[str, int] = {}
    for row in manifest.splitlines():
        if row.startswith("| `") and "slow query log |" in row:
            cells = row.split(" | ")
            path = cells[0].strip("| `")
            m = re.match(r"\s*(\d+) (?:complete )?events?", cells[7])
            assert m, row
            listed[path] = int(m.group(1))
    assert listed == EXPECTED


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_every_peer_slow_log(peer_data: Path, rel: str) -> None:
    """Event counts, read = parsed + skipped, banners counted, canonical frame shape."""
    path = peer_data / rel
    expected = EXPECTED[rel]
    if expected == 0:
        with pytest.raises(NothingParsedError) as err:
            load(path)
        report = err.value.report
        assert report.read == report.parsed + report.skipped_total
        return
    result = load(path)
    report = result.report
    report.check()
    assert len(result.frame) == expected == report.parsed == report.events["query_events"]
    assert report.read == report.parsed + report.skipped_total
    assert report.skipped.get("server banner", 0) == BANNERS.get(rel, 0)
    frame = result.frame
    assert frame["sql"].notna().all() and (frame["sql"].str.len() > 0).all()
    assert frame["fingerprint_id"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert (frame["source_format"] == "mysql_slow").all()
    assert frame["source_line"].is_monotonic_increasing
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize("rel", sorted(r for r, n in EXPECTED.items() if n))
def test_tiny_blocks_give_the_same_frame(
    peer_data: Path, rel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cutting a file into many blocks changes nothing: no event is split, state carries over."""
    whole = load(peer_data / rel).frame
    monkeypatch.setattr(MySQLSlowLoader, "block_size", 300)
    pieces = load(peer_data / rel)
    pd.testing.assert_frame_equal(whole, pieces.frame)


def test_detects_slow_logs(peer_data: Path) -> None:
    for rel in (
        "percona-toolkit/src/go/pt-secure-collect/testdata/slow_80.log",
        f"{PT}/slow002.txt",
        f"{BEATS}/mariadb-explain.log",
    ):
        assert detect(peer_data / rel).format == "mysql_slow"


# -- values the manifest names -------------------------------------------------------------------
def test_microslow_query_times(peer_data: Path) -> None:
    df = load(peer_data / PT / "microslow001.txt").frame
    assert df["duration_ms"].tolist() == pytest.approx([0.652, 1.943])
    assert df["lock_ms"].tolist() == pytest.approx([0.109, 0.145])
    assert df["rows"].tolist() == [1, 0]
    assert df["user"].tolist() == ["root", "root"]
    assert df["client"].tolist() == ["localhost", "localhost"]
    assert df["ts"].tolist() == [ts("2007-10-15 21:43:52")] * 2
    assert df["sql"][0] == "SELECT id FROM users WHERE name='baouong'"


def test_use_changes_database_and_is_not_sql(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow001.txt").frame
    assert df["database"].tolist() == ["test", "sakila"]
    assert df["sql"].tolist() == ["select sleep(2) from n", "select sleep(2) from test.n"]
    assert df["duration_ms"].tolist() == [2000.0, 2000.0]


def test_time_inherited_and_zone_learnt_from_set_timestamp(peer_data: Path) -> None:
    """slow002 has one '# Time:' (local) for 8 events, some with SET timestamp (UTC).

    The header is 5 h behind the SET timestamps, so naive headers are read as UTC-05:00 and
    every event lands in the same instant, whichever source gave its time.
    """
    result = load(peer_data / PT / "slow002.txt")
    df = result.frame
    assert df["ts"].dt.floor("s").eq(ts("2007-12-18 16:48:27")).sum() == 7
    assert df["ts"].notna().all()
    assert any("UTC-05:00" in w for w in result.report.warnings)
    assert df["insert_id"].dropna().tolist() == [34484549]
    assert pd.isna(df["database"][0])  # BEGIN, before any 'use'
    assert df["database"][1:].eq("db1").all()
    with_zone = load(peer_data / PT / "slow002.txt", tz="America/New_York").frame
    assert with_zone["ts"][0] == ts("2007-12-18 16:48:27")


def test_statement_kept_verbatim(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow005.txt").frame
    assert df["sql"][0] == "foo\nbar\n\t\t\t0 AS counter\nbaz"


def test_corrupted_query_time_is_nan_and_reported(peer_data: Path) -> None:
    result = load(peer_data / PT / "slow017.txt")
    df = result.frame
    assert len(df) == 1 and math.isnan(df["duration_ms"][0])
    assert df["lock_ms"][0] == pytest.approx(0.036)
    assert df["rows_examined"][0] == 127
    assert (
        df["database"][0] == "mydb"
        and df["client"][0] == "host"
        and df["client_ip"][0] == "10.1.65.120"
    )
    assert any("corrupted Query_time" in w and "line 1" in w for w in result.report.warnings)


def test_blank_lines_inside_statements(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow020.txt").frame
    assert df["sql"][0] == "SELECT *\n\nFROM foo\n\nWHERE bar = 'bar'"
    assert df["sql"][1].startswith("INSERT INTO tbl\n\n\nVALUES") and df["sql"][1].endswith("(3)")
    assert df["database"].tolist() == ["db1", "db2", "db2"]


def test_garbage_time_gives_nat_and_a_warning(peer_data: Path) -> None:
    result = load(peer_data / PT / "slow022.txt")
    assert result.frame["ts"].isna().all()
    assert any("unparseable '# Time: margdl" in w for w in result.report.warnings)


def test_set_timestamp_is_authoritative(peer_data: Path) -> None:
    """slow031: SET timestamp=1233019414 (query start) + Query_time 0.453125 s."""
    result = load(peer_data / PT / "slow031.txt")
    df = result.frame
    assert df["ts"][0] == ts("2009-01-27 01:23:34.453125")
    assert df["database"][0] == "myplace"
    assert df["client"][0] == "secure.myplace.co.uk" and df["client_ip"][0] == "88.208.248.160"
    assert df["rows"][0] == 2160


def test_implausible_set_timestamps_are_reported(peer_data: Path) -> None:
    """slow056: SET timestamp=1111111111 (7 years before its header) and 2222222222 (2040)."""
    result = load(peer_data / PT / "slow056.txt")
    df = result.frame
    assert df["ts"].tolist() == [ts("2012-11-23 19:56:06")] * 2
    warnings = " ".join(result.report.warnings)
    assert "1111111111" in warnings and "2222222222" in warnings
    assert df["sql"][0] == "use test_db"  # the event's only statement
    assert df["pid"].tolist() == [558038, 558032]


def test_innodb_statistics(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow032.txt").frame
    assert df["innodb_io_r_wait_ms"][0] == pytest.approx(3000.003)
    assert df["innodb_rec_lock_wait_ms"][0] == pytest.approx(400.004)
    assert df["innodb_queue_wait_ms"][0] == pytest.approx(0.005)
    assert df["innodb_pages_distinct"][0] == 24
    assert bool(df["full_join"][0]) is True and bool(df["full_scan"][0]) is False
    assert df["sql"][0] == "INSERT INTO db3.vendor11gonzo (makef, bizzle)\nVALUES ('', 'Exact')"


def test_client_header(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow036.txt").frame
    assert df["client"][0] == "127.0.0.1:12345"


def test_huge_single_line_insert(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow039.txt.gz").frame
    assert len(df) == 1
    assert len(df["sql"][0]) > 1_200_000
    assert df["sql"][0].endswith("(0, 'the end')")
    assert df["fingerprint"][0] == "insert into the_universe values (?, ?)"


def test_file_starting_mid_event(peer_data: Path) -> None:
    result = load(peer_data / PT / "slow041.txt")
    assert result.report.skipped == {"text outside an event": 1}
    assert result.report.skip_lines("text outside an event") == [1]
    df = result.frame
    assert df["sql"].tolist() == ["show /*!50002 GLOBAL */ status", "administrator command: Quit"]
    assert df["admin"].tolist() == [False, True]
    assert df["database"].isna().all()  # 'Schema: ' logged empty
    assert df["rows_read"].tolist() == [230, 0]


def test_percona_errno_and_killed(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow044.txt").frame
    assert df["last_errno"].tolist() == [1, 3]
    assert df["killed"].tolist() == [2, 4]
    assert df["pid"].tolist() == [342, 342]


def test_percona_bytes_and_trx_id(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow045.txt").frame
    assert df["bytes_sent"].tolist() == [4152, 11]
    assert df["innodb_trx_id"][0] == "839DE234" and pd.isna(df["innodb_trx_id"][1])
    assert df["database"].tolist() == ["db1", "db1"]
    assert df["ts"][0] == ts("2010-05-18 05:11:01.000173")


def test_non_utf8_statement(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow046.txt").frame
    assert "`t-2`" in df["sql"][0] and "3<>3" in df["sql"][0]


def test_minimal_event(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow047.txt").frame
    assert df["duration_ms"][0] == 1000.0
    assert math.isnan(df["lock_ms"][0]) and pd.isna(df["rows"][0]) and pd.isna(df["ts"][0])


def test_percona_full_verbosity_and_rate_limit(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow059.txt").frame
    assert df["pid"].tolist() == [69194, 69195, 69195]
    assert df["sample_rate"].tolist() == [2.0, 2.0, 2.0]
    assert df["sample_rate_type"].tolist() == ["query"] * 3
    assert df["filesort"].tolist() == [False, False, True]
    assert df["innodb_trx_id"].tolist() == ["1A88583F", "1A885840", "1A885842"]
    assert df["ts"][0] == ts("2013-11-28 01:05:31.000228")


@pytest.mark.parametrize(
    ("name", "ms", "sql"),
    [
        ("slow060.txt", 10000.373, "select sleep(10)"),
        ("slow061.txt", 11013.723, "select sleep(11)"),
    ],
)
def test_percona_banner_files(peer_data: Path, name: str, ms: float, sql: str) -> None:
    df = load(peer_data / PT / name).frame
    assert df["duration_ms"][0] == pytest.approx(ms)
    assert df["sql"][0] == sql and df["pid"][0] == 1
    assert pd.isna(df["database"][0])


def test_administrator_commands_inherit_time(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow-pt-243.txt").frame
    assert df["sql"].tolist() == ["administrator command: Refresh", "administrator command: Quit"]
    assert df["admin"].all()
    assert df["ts"].tolist() == [ts("2009-03-11 18:11:50")] * 2
    assert df["client"][0] == "alonghotnamelikelocalhost"


def test_mysql57_sandbox_log(peer_data: Path) -> None:
    df = load(peer_data / "percona-toolkit/src/go/pt-secure-collect/testdata/slow_80.log").frame
    assert len(df) == 310
    assert int(df["admin"].sum()) == 16
    assert set(df.loc[df["admin"], "sql"]) >= {
        "administrator command: Ping",
        "administrator command: Quit",
        "administrator command: Init DB",
    }
    assert df["ts"][0] == ts("2018-02-05 02:46:43.015898")
    assert df["ts"].notna().all()


def test_mysql57_iso_time_and_id(peer_data: Path) -> None:
    df = load(peer_data / PT / "mysql5.7.log").frame
    assert df["ts"].tolist() == [ts("2016-07-20 18:13:25.698433"), ts("2016-07-20 18:13:25.699880")]
    assert df["pid"].tolist() == [3, 4]
    assert (
        df["client"].tolist() == ["localhost"] * 2 and df["client_ip"].tolist() == ["127.0.0.1"] * 2
    )


def test_user_header_variant(peer_data: Path) -> None:
    df = load(peer_data / PT / "slow009.txt").frame
    assert (df["user"] == "user").all() and (df["client"] == "1.2.3.4").all()
    assert df["pid"].head(3).tolist() == [1, 2, 3]


def test_truncated_log_raises_with_a_hint(peer_data: Path) -> None:
    with pytest.raises(NothingParsedError) as err:
        load(peer_data / PT / "slow015.txt")
    message = str(err.value)
    assert "Query_time" in message and "truncated" in message
    assert err.value.report.skipped == {"truncated event (no # Query_time line)": 1}


# -- the permissively licensed copies (no corpus needed) ----------------------------------------
def test_mariadb_explain_tab(mysql_fixtures: Path) -> None:
    result = load(mysql_fixtures / "percona-go-mysql/mariadb102-with-explain.log")
    df = result.frame
    assert df["explain"][0].split("\n")[0].startswith("id\tselect_type\ttable")
    assert len(df["explain"][0].split("\n")) == 2
    assert bool(df["qc_hit"][0]) is False and df["rows_affected"][0] == 0
    assert df["sql"][0] == "SELECT 1" and df["pid"][0] == 8
    assert df["ts"][0] == ts("2018-02-14 16:18:07.000277")  # SET timestamp + Query_time


def test_mariadb_explain_spaces(mysql_fixtures: Path) -> None:
    df = load(mysql_fixtures / "beats/mariadb-explain.log").frame
    lines = df["explain"][0].split("\n")
    assert len(lines) == 4 and [line.split()[2] for line in lines[1:]] == [
        "nation",
        "customer",
        "orders",
    ]
    assert df["database"][0] == "dbt3sf1"
    assert df["duration_ms"][0] == pytest.approx(5524.103)
    assert df["sql"][0].startswith("select count(*) from customer, orders, nation\n")


def test_mysql8_log_slow_extra(mysql_fixtures: Path) -> None:
    df = load(mysql_fixtures / "beats/mysql-ubuntu-8.0.15.log").frame
    second = df.iloc[1]
    assert second["read_key"] == 3144072 and second["sort_rows"] == 10
    assert second["bytes_sent"] == 312 and second["errno"] == 0 and second["killed"] == 0
    assert second["start_ts"] == ts("2019-03-24 14:04:51.082107")
    assert second["end_ts"] == ts("2019-03-24 14:04:53.713951")
    assert second["ts"] == ts("2019-03-24 14:04:53.713951")
    assert second["pid"] == 16 and df["database"].tolist() == ["employees", "employees"]
    assert second["sql"].startswith("SELECT last_name, MAX(salary) AS salary FROM employees\n")


def test_percona8_restart_banner(mysql_fixtures: Path) -> None:
    result = load(mysql_fixtures / "beats/percona-ubuntu-8.0.15.log")
    df = result.frame
    assert df["duration_ms"].tolist() == pytest.approx([2746.607, 3133.066])
    assert df["innodb_io_r_ops"].tolist()[1] == 5491 and pd.isna(df["innodb_io_r_ops"][0])
    assert bool(df["full_scan"][1]) is True
    assert result.report.skipped == {"server banner": 2}
    assert not df["sql"].str.contains("started with").any()


def test_go_mysql_values(mysql_fixtures: Path) -> None:
    df13 = load(mysql_fixtures / "percona-go-mysql/slow013.log").frame
    # the manifest says "Rows_sent up to 1605306": that is the first event; the file holds more
    assert df13["rows"].tolist() == [1605306, 1197472, 0, 34621308, 4937738]
    assert df13["database"][0] == "db950" and df13["pid"][0] == 208333
    df19 = load(mysql_fixtures / "percona-go-mysql/slow019.log").frame
    assert df19["qc_hit"].tolist() == [False, True, False, False]
    assert df19["user"][0] == "percona-agent" and pd.isna(df19["database"][0])
    assert df19["database"][1] == "cod7_plos15"
    df24 = load(mysql_fixtures / "percona-go-mysql/slow024.log").frame
    assert df24["ts"].tolist() == [ts("2007-10-15 21:43:52")] * 3  # the empty '# Time:' inherits
    assert df24["database"].tolist() == ["test"] * 3  # ``use `test`;``
    assert df24["user"].tolist()[:2] == ["root", "root"] and pd.isna(df24["user"][2])
    df25 = load(mysql_fixtures / "percona-go-mysql/slow025.log").frame
    assert df25["sample_rate"].tolist() == [1000.0] * 3
    df26 = load(mysql_fixtures / "percona-go-mysql/slow026.log").frame
    assert df26["sql"][0] == "select 1" and df26["ts"][0] == ts("2017-12-13 02:41:18.673330")
    df27 = load(mysql_fixtures / "percona-go-mysql/slow027.log").frame
    assert len(df27) == 1 and "\n\n" in df27["sql"][0] and len(df27["sql"][0]) > 40_000
    df14 = load(mysql_fixtures / "percona-go-mysql/slow014.log").frame
    assert "### Channels ###" in df14["sql"][1]
    assert df14["innodb_trx_id"][0] == "2552F3B37"
    df15 = load(mysql_fixtures / "percona-go-mysql/slow015.log").frame
    assert df15["fingerprint"][0] == "insert into table values (?, ?, ?, ?, ?, ?, ?, ?, ?)"


# -- crafted inputs ------------------------------------------------------------------------------
SMALL = b"""# Time: 2024-05-02T10:00:00.000100Z
# User@Host: app[app] @ web1 [10.0.0.5]  Id:    42
# Query_time: 0.250000  Lock_time: 0.000100 Rows_sent: 3  Rows_examined: 300
use shop;
SET timestamp=1714644000;
SELECT * FROM orders WHERE id = 7;
# Time: 2024-05-02T10:00:01.000200Z
# User@Host: app[app] @ web1 [10.0.0.5]  Id:    42
# Query_time: 0.500000  Lock_time: 0.000100 Rows_sent: 1  Rows_examined: 1
SET timestamp=1714644000;
SELECT name FROM customers WHERE id = 9;
"""


def test_crlf_log_parses_like_lf(tmp_path: Path) -> None:
    lf, crlf = tmp_path / "lf.log", tmp_path / "crlf.log"
    lf.write_bytes(SMALL)
    crlf.write_bytes(SMALL.replace(b"\n", b"\r\n"))
    a, b = load(lf).frame, load(crlf).frame
    pd.testing.assert_frame_equal(a.drop(columns="source_file"), b.drop(columns="source_file"))
    assert a["database"].tolist() == ["shop", "shop"]  # the second event inherits the use


def test_truncated_mid_statement(tmp_path: Path) -> None:
    path = tmp_path / "cut.log"
    path.write_bytes(SMALL[: SMALL.rindex(b"WHERE")])
    result = load(path)
    assert len(result.frame) == 2
    assert result.frame["sql"][1] == "SELECT name FROM customers"
    assert any("ends mid-line" in w for w in result.report.warnings)


def test_truncated_mid_header(tmp_path: Path) -> None:
    path = tmp_path / "cut.log"
    path.write_bytes(SMALL[: SMALL.rindex(b"# Query_time")])
    result = load(path)
    assert len(result.frame) == 1
    assert result.report.skipped == {"truncated event (no # Query_time line)": 1}
    result.report.check()


def test_mis_encoded_bytes_are_replaced_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin1.log"
    path.write_bytes(SMALL.replace(b"customers", "clients_été".encode("latin-1")))
    result = load(path)
    assert len(result.frame) == 2
    assert "clients_\ufffdt\ufffd" in result.frame["sql"][1]
    assert any("invalid UTF-8" in w and "11" in w for w in result.report.warnings)


def test_binary_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "junk.log"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(NothingParsedError) as err:
        load(path)
    assert "not a slow query log" in str(err.value)
    assert err.value.report.skipped == {"text outside an event": 1}


def test_empty_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    with pytest.raises(NothingParsedError, match="empty"):
        load(path)


def test_banner_only_says_why(tmp_path: Path) -> None:
    path = tmp_path / "banner.log"
    path.write_bytes(
        b"/usr/sbin/mysqld, Version: 8.0.36 (MySQL Community Server - GPL). started with:\n"
        b"Tcp port: 3306  Unix socket: /var/run/mysqld/mysqld.sock\n"
        b"Time                 Id Command    Argument\n"
    )
    with pytest.raises(NothingParsedError, match="slow_query_log off"):
        load(path)


def test_gzip_and_state_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Old-style log: one '# Time:' and one 'use' for many events, cut into many blocks."""
    events = [b"# Time: 240502 10:00:00\n"]
    for i in range(200):
        events.append(
            b"# User@Host: app[app] @ web1 []\n# Query_time: 0.001  Lock_time: 0 Rows_sent: 1  Rows_examined: 1\n"
        )
        if i == 0:
            events.append(b"use shop;\n")
        events.append(b"SELECT %d;\n" % i)
    path = tmp_path / "old.log.gz"
    path.write_bytes(gzip.compress(b"".join(events)))
    monkeypatch.setattr(MySQLSlowLoader, "block_size", 512)
    df = load(path).frame
    assert len(df) == 200
    assert (df["database"] == "shop").all()
    assert (df["ts"] == ts("2024-05-02 10:00:00")).all()
    assert df["fingerprint"].nunique() == 1


def test_process_executor_gives_the_same_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditkit.executors import get_executor

    path = tmp_path / "x.log"
    path.write_bytes(SMALL * 50)
    serial = load(path).frame
    monkeypatch.setattr(MySQLSlowLoader, "block_size", 1024)
    ex = get_executor("process", workers=2)
    try:
        parallel = LOADER.load(path, executor=ex).frame
    finally:
        ex.close()
    pd.testing.assert_frame_equal(serial, parallel)


def test_state_scans() -> None:
    data = b"# Time: 240502 10:00:00\n# Query_time: 1\nuse a;\nSET timestamp=1;\nselect 1;\n# Time: \n# Query_time: 1\nselect '\nuse b;';\n"
    assert last_time(data) == "240502 10:00:00"
    assert last_use(data) == "a"
    assert last_use(b"# Query_time: 1\nuse `my db`;\nselect 1;\n") == "my db"
    assert last_time(b"select 1;\n") is None and last_use(b"") is None


def test_learn_offset() -> None:
    text = "# Time: 240502 12:00:00\n# Query_time: 0\nSET timestamp=1714644000;\nselect 1;\n"
    assert learn_offset(text) == 2 * 3600.0  # local = UTC+02:00
    assert learn_offset("# Time: 240502 12:00:00\n# Query_time: 0\nselect 1;\n") is None


def test_sniff() -> None:
    assert LOADER.sniff("# Time: 1\n# Query_time: 1  Lock_time: 0\nselect 1;\n", Path("x")) == 1.0
    assert LOADER.sniff("(0.002) SELECT 1; args=()\n", Path("x")) == 0.0
