"""The input layer: damaged and re-encoded files, out-of-range values, time zones, peer counts.

Each test names one promise of the loaders' common layer (``auditkit/loaders/stream.py``,
``_json.py``, ``_records.py``, ``_time.py``, ``base.py``, ``schemas.conform``) and checks it on
a real file or a file in a real format:

* a truncated gzip/bzip2/xz/zstd file is read up to the damage, and the report says so;
* UTF-16 and UTF-32 files (with or without BOM) load like their UTF-8 originals;
* JSON nested deeper than 512 levels is invalid JSON for that record, never a RecursionError;
* a stray CR or an open quote in a CSV skips that record with its line number;
* MySQL's 18446744073709551615 and year-9999 timestamps become null and are counted;
* negative durations are kept and flagged (PostgreSQL ``duration: -5 ms`` stays a statement);
* slash-dated timestamps are timestamps, never a pid; naive times warn and follow ``tz``;
* a first record longer than 64 KiB does not defeat detection;
* every PostgreSQL/Django statement count of the peer MANIFEST is exact.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
from pathlib import Path

import pytest
import zstandard

import auditkit
from auditkit.errors import ParseReportError
from auditkit.loaders import _json
from auditkit.loaders.detect import detect
from auditkit.loaders.result import ParseReport
from tests.conftest import FIXTURES

DJANGO = FIXTURES / "django" / "prefixed.log"
STMT = FIXTURES / "postgres" / "stmt_type.log"
MYSQL_RECORD = (
    "# Time: 2024-05-01T10:00:00.000000Z\n# User@Host: root[root] @ localhost []  Id:     8\n"
    "# Query_time: {qt}  Lock_time: 0.000000 Rows_sent: 1  Rows_examined: {rx}\n"
    "SET timestamp=1714557600;\nSELECT {n};\n"
)


def _big_log(tmp_path: Path) -> Path:
    """A PostgreSQL stderr log of 3,000 statements (large enough to cut mid-stream)."""
    lines = [
        f"2024-05-06 10:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d} UTC [42] LOG:  "
        f"duration: 1.{i % 10}00 ms  statement: SELECT * FROM t WHERE id = {i}\n"
        for i in range(3000)
    ]
    path = tmp_path / "pg.log"
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize(
    ("name", "pack"),
    [
        ("gzip", gzip.compress),
        ("bzip2", lambda b: bz2.compress(b, 1)),  # 100 kB blocks: bzip2 decodes whole blocks
        ("xz", lzma.compress),
        ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
    ],
)
def test_truncated_compressed_file_is_read_up_to_the_damage(
    tmp_path: Path, name: str, pack: object
) -> None:
    plain = _big_log(tmp_path)
    packed = pack(plain.read_bytes())  # type: ignore[operator]
    cut = tmp_path / f"cut.{name}"
    cut.write_bytes(packed[: len(packed) * 3 // 4])
    result = auditkit.load(cut, "postgres_stderr")
    n = len(result.frame)
    assert 0 < n < 3000, n
    assert any(f"the {name} stream is cut short" in w for w in result.report.warnings), (
        result.report.warnings
    )
    result.report.check()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_load_like_utf8(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "stmt.log"
    path.write_bytes(STMT.read_text(encoding="utf-8").encode(encoding))
    assert detect(path).format == "postgres_stderr"
    got = auditkit.load(path)
    want = auditkit.load(STMT)
    assert got.frame["sql"].tolist() == want.frame["sql"].tolist()  # non-ASCII SQL intact
    assert any("decoded from UTF-" in w for w in got.report.warnings)


def test_deep_json_is_invalid_json_for_its_record(tmp_path: Path) -> None:
    good = (FIXTURES / "traces" / "jsonl" / "queries.jsonl").read_text().splitlines()
    deep = '{"sql": ' + "[" * 5000 + "]" * 5000 + "}"
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join([good[0], deep, *good[1:]]) + "\n")
    result = auditkit.load(path, "jsonl_queries")
    original = auditkit.load(FIXTURES / "traces/jsonl/queries.jsonl")
    assert (
        result.report.skipped["invalid JSON line"]
        == original.report.skipped["invalid JSON line"] + 1
    )
    assert 2 in result.report.skip_lines("invalid JSON line")
    assert result.report.parsed == original.report.parsed
    with pytest.raises(_json.JSONDecodeError, match="deeper than 512"):
        _json.loads("[" * 513 + "]" * 513)
    assert _json.loads("[" * 512 + "]" * 512) is not None


def test_csv_stray_cr_and_open_quote_skip_one_record(tmp_path: Path) -> None:
    text = (FIXTURES / "pgss" / "pg17.csv").read_text().splitlines()
    rows = auditkit.load(FIXTURES / "pgss" / "pg17.csv").report.parsed
    text[2] = text[2].replace(",", ",\r", 1)  # a stray CR in an unquoted field
    path = tmp_path / "pgss.csv"
    path.write_text("\n".join(text) + "\n", newline="")
    result = auditkit.load(path, "pgss_csv")
    assert result.report.skipped["stray carriage return inside a record"] == 1
    assert result.report.skip_lines("stray carriage return inside a record") == [3]
    assert result.report.parsed == rows - 1


def test_mysql_unsigned_underflow_and_year_9999_become_null_counted(tmp_path: Path) -> None:
    path = tmp_path / "slow.log"
    path.write_text(
        MYSQL_RECORD.format(qt="0.000152", rx="18446744073709551615", n=1)
        + MYSQL_RECORD.format(qt="-0.5", rx="3", n=2).replace("2024-05-01", "9999-05-01")
    )
    result = auditkit.load(path, "mysql_slow")
    df = result.frame
    assert df["rows_examined"].isna().tolist() == [True, False]
    warnings = " ".join(result.report.warnings)
    assert "out of range set to null" in warnings and "rows_examined: 1" in warnings
    assert "negative duration_ms" in warnings and df["duration_ms"].min() == -500.0


def test_negative_postgres_duration_stays_a_statement(tmp_path: Path) -> None:
    path = tmp_path / "neg.log"
    path.write_text(
        "2024-05-06 10:00:00.123 UTC [123] LOG:  duration: -5.000 ms  statement: SELECT 1\n"
        "2024-05-06 10:00:01.123 UTC [123] LOG:  duration: 2.000 ms  statement: SELECT 2\n"
    )
    result = auditkit.load(path)
    assert result.frame["duration_ms"].tolist() == [-5.0, 2.0]
    assert len(result.frames["server_events"]) == 0
    assert any("negative duration_ms" in w for w in result.report.warnings)


@pytest.mark.parametrize(
    ("stamp", "iso"),
    [
        ("2024/05/06 10:00:00", "2024-05-06 10:00:00"),
        ("06/05/2024 10:00:00", "2024-06-05 10:00:00"),
    ],
)
def test_slash_dates_never_land_in_pid(tmp_path: Path, stamp: str, iso: str) -> None:
    path = tmp_path / "pg.log"
    path.write_text(
        f"{stamp} [4242] LOG:  duration: 1.000 ms  statement: SELECT 1\n"
        f"{stamp} [4242] LOG:  duration: 2.000 ms  statement: SELECT 2\n"
    )
    df = auditkit.load(path).frame
    assert df["pid"].tolist() == [4242, 4242]
    assert str(df["ts"].iloc[0]) == iso + "+00:00"


def test_django_slash_dates_naive_warning_and_tz(tmp_path: Path) -> None:
    path = tmp_path / "django.log"
    path.write_text(
        "[06/May/2024 10:00:00] DEBUG (0.002) SELECT 1; args=(); alias=default\n"
        "[06/May/2024 10:00:01] DEBUG (0.003) SELECT 2; args=(); alias=default\n"
    )
    utc = auditkit.load(path)
    assert str(utc.frame["ts"].iloc[0]) == "2024-05-06 10:00:00+00:00"
    assert any("read as UTC" in w for w in utc.report.warnings)
    paris = auditkit.load(path, tz="Europe/Paris")
    assert str(paris.frame["ts"].iloc[0]) == "2024-05-06 08:00:00+00:00"
    assert any("Europe/Paris" in w for w in paris.report.warnings)


def test_first_record_longer_than_the_head_is_detected(tmp_path: Path) -> None:
    big = "SELECT " + ", ".join(f"col_{i}" for i in range(12000)) + " FROM t"
    text = DJANGO.read_text()
    path = tmp_path / "django.log"
    path.write_text(text.replace("SELECT", big, 1))
    assert len(text.replace("SELECT", big, 1).split("\n", 1)[0]) > 65536
    assert detect(path).format == "django_log"
    assert auditkit.load(path).frame["sql"].str.len().max() > 65536


def test_report_check_is_a_real_error() -> None:
    report = ParseReport("x.log", "django_log", read=3, parsed=1)
    with pytest.raises(ParseReportError, match="read 3 != parsed 1 \\+ skipped 0"):
        report.check()


#: every statement count the peer MANIFEST gives for a query log: path → (format, statements)
PEER_STATEMENTS = {
    "pgbadger/t/fixtures/anonymize.log": 8,
    "pgbadger/t/fixtures/light.postgres.log.bz2": 629,
    "pgbadger/t/fixtures/logplex.gz": 4,
    "pgbadger/t/fixtures/multiline_param.log": 8,
    "pgbadger/t/fixtures/pg-timezones.log": 2,
    "pgbadger/t/fixtures/postgresql_param_range.log": 3,
    "pgbadger/t/fixtures/stmt_type.log": 12,
    "pgbadger/t/fixtures/tempfile_only.log.gz": 65,
    "pgbadger/t/fixtures/weeknumber.log": 6,
    "beats/filebeat/module/postgresql/log/test/postgresql-11-parse-bind.csv.log": 3,
    "beats/filebeat/module/postgresql/log/test/postgresql-query-steps-slowlog.log": 2,
    "beats/filebeat/module/postgresql/log/test/postgresql-9.6-debian-with-slowlog.log": 11,
    "linea-it-target/logs/sql.log": 4929,
}


@pytest.mark.parametrize("rel", sorted(PEER_STATEMENTS))
def test_peer_statement_counts_are_exact(peer_data: Path, rel: str, tmp_path: Path) -> None:
    # through a client folder, as a user runs it: detection, options, the whole path
    folder = tmp_path / "client"
    folder.mkdir()
    shutil.copy(peer_data / rel, folder / Path(rel).name)
    client = auditkit.load_client(folder)
    (info,) = client.files
    assert info.status == "loaded", info.error
    events = client.frame("query_events")
    assert int(events["duration_ms"].notna().sum()) == PEER_STATEMENTS[rel]
    assert info.report is not None and info.report.read == info.report.parsed + (
        info.report.skipped_total
    )


def test_peer_django_formatter_loses_nothing(peer_data: Path) -> None:
    """The `[%(asctime)s] %(levelname)s:` formatter: 5,448 entries, 4,929 timed, aliases exact."""
    result = auditkit.load(peer_data / "linea-it-target/logs/sql.log")
    df = result.frame
    assert len(df) == 5448 and int(df["duration_ms"].notna().sum()) == 4929
    assert df["database"].value_counts().to_dict() == {"default": 3418, "tap": 759, "oai": 752}
    assert df["ts"].notna().all() and df["pid"].isna().all()


# -- request ids anywhere in a Django logging prefix -------------------------------------------
FORMAT = "[%(asctime)s] [%(process)d] [%(request_id)s] %(levelname)s %(name)s: %(message)s"


def _rid_client(tmp_path: Path, ids: list[str]) -> Path:
    """A client folder: an nginx access log with rid= and a Django log printing the same ids."""
    root = tmp_path / "client"
    root.mkdir()
    kv = (FIXTURES / "traces" / "access" / "nginx_common_kv.log").read_text().splitlines()[:3]
    access = [line.rsplit("rid=", 1)[0] + f"rid={rid}" for line, rid in zip(kv, ids, strict=True)]
    (root / "access.log").write_text("\n".join(access) + "\n")
    django = [
        f"[2026-11-24 20:14:41,{i:03d}] [311] [{rid}] DEBUG django.db.backends: (0.002) "
        f'SELECT "shop_product"."id" FROM "shop_product" WHERE "shop_product"."id" = {i}; '
        f"args=({i},); alias=default"
        for i, rid in enumerate(ids * 2)
    ]
    (root / "django.log").write_text("\n".join(django) + "\n")
    return root


def test_prefix_logging_format_reads_fields_by_place(tmp_path: Path) -> None:
    root = _rid_client(tmp_path, ["r0001a", "r0002b", "r0003c"])
    result = auditkit.load(root / "django.log", "django_log", prefix=FORMAT)
    df = result.frame
    assert df["request_id"].tolist() == ["r0001a", "r0002b", "r0003c"] * 2
    assert df["pid"].unique().tolist() == [311] and df["ts"].notna().all()
    with pytest.raises(auditkit.ConfigError, match="no %\\(message\\)s"):
        auditkit.load(root / "django.log", "django_log", prefix="[%(asctime)s]")


def test_prefix_tokens_matching_access_log_ids_become_request_ids(tmp_path: Path) -> None:
    root = _rid_client(tmp_path, ["r0001a", "r0002b", "r0003c"])
    client = auditkit.load_client(root)
    events = client.frame("query_events")
    assert "prefix_tokens" not in events
    assert events["request_id"].tolist() == ["r0001a", "r0002b", "r0003c"] * 2
    joined = client.query_events("requests")
    assert joined["endpoint"].notna().all() and len(joined) == 6
    assert any("request ids read from the Django log prefix" in n for n in client.notes)


def test_prefix_tokens_that_are_not_request_ids_stay_unused(tmp_path: Path) -> None:
    root = _rid_client(tmp_path, ["r0001a", "r0002b", "r0003c"])
    other = (root / "django.log").read_text().replace("[r000", "[x900")
    (root / "django.log").write_text(other)
    events = auditkit.load_client(root).frame("query_events")
    assert events["request_id"].isna().all() and "prefix_tokens" not in events
