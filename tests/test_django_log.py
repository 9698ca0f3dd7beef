"""Django query-log loader: every message variant, any prefix, bad input, real peer data."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import pandas as pd
import pytest
import zstandard

import auditkit
from auditkit.errors import NothingParsedError, UnknownFormatError


def load(path: Path) -> auditkit.LoadResult:
    result = auditkit.load(path)
    result.report.check()
    return result


def test_peer_log_counts_match_manifest(peer_data: Path) -> None:
    result = load(peer_data / "linea-it-target/logs/sql.log")
    df = result.frame
    assert result.format == "django_log"
    assert result.report.read == 5448 and result.report.skipped_total == 0
    assert df["duration_ms"].notna().sum() == 4929  # timed statements
    assert df["duration_ms"].isna().sum() == 519  # schema-editor lines, untimed
    assert df["database"].value_counts().to_dict() == {"default": 3418, "tap": 759, "oai": 752}
    assert df["ts"].dt.tz is not None and df["ts"].notna().all()
    assert df["fingerprint_id"].str.fullmatch(r"[0-9a-f]{16}").all()


def test_bare_messages(fixtures: Path) -> None:
    df = load(fixtures / "django/bare.log").frame
    assert len(df) == 4
    assert df["duration_ms"].tolist() == [1.0, 12.0, 0.0, 3.0]  # seconds -> ms
    assert df.loc[1, "sql"].startswith('SELECT "shop_author"."id", "shop_author"."name"\nFROM')
    assert df.loc[1, "fingerprint"].endswith('in (...)')
    assert df.loc[2, "rows"] == 2  # executemany: two parameter sets
    assert df.loc[3, "database"] == "replica"
    assert df.loc[3, "params"] == "('x; args=(y)', 5)"  # split at the last '; args='
    assert df["source_line"].tolist() == [1, 2, 5, 6]


def test_old_format_without_alias(fixtures: Path) -> None:
    df = load(fixtures / "django/old_no_alias.log").frame
    assert len(df) == 3
    assert df["database"].isna().all()
    assert df["fingerprint"].nunique() == 2
    assert df["ts"].iloc[0] == pd.Timestamp("2019-03-02 10:01:02.123", tz="UTC")


def test_prefix_fields_and_other_messages(fixtures: Path) -> None:
    result = load(fixtures / "django/prefixed.log")
    df = result.frame
    assert result.report.skipped == {"other message": 1, "truncated entry": 1}
    assert result.report.skip_lines("other message") == [2]
    assert len(df) == 4
    assert df["pid"].tolist() == [311] * 4
    assert df["thread"].tolist() == ["Thread-3", "Thread-3", "Thread-4", "Thread-4"]
    assert df.loc[0, "request_id"] == "4f1c2b8e-8a6b-4c1e-9f00-0d1e2f3a4b5c"
    assert df.loc[0, "ts"] == pd.Timestamp("2024-05-06 05:08:09.123", tz="UTC")  # offset honoured
    # both savepoints fall in one group each, whatever Django named them
    assert df.loc[1, "fingerprint"] == "savepoint ?" and df.loc[2, "fingerprint"] == "release savepoint ?"
    assert pd.isna(df.loc[3, "duration_ms"]) and df.loc[3, "params"] == "None"


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, zstandard.ZstdCompressor().compress])
def test_compressed(fixtures: Path, tmp_path: Path, compress: object) -> None:
    target = tmp_path / "queries.log.x"  # compression is sniffed, not taken from the name
    target.write_bytes(compress((fixtures / "django/bare.log").read_bytes()))  # type: ignore[operator]
    assert len(load(target).frame) == 4


def test_small_blocks_give_the_same_result(fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from auditkit.loaders.django_log import DjangoLogLoader

    whole = load(fixtures / "django/prefixed.log").frame
    monkeypatch.setattr(DjangoLogLoader, "block_size", 64)
    pieces = load(fixtures / "django/prefixed.log").frame
    pd.testing.assert_frame_equal(whole, pieces)


def test_invalid_utf8_is_kept_and_reported(fixtures: Path, tmp_path: Path) -> None:
    raw = (fixtures / "django/bare.log").read_bytes().replace(b"'x; args=(y)'", b"'\xff\xfe'", 1)
    (tmp_path / "q.log").write_bytes(raw)
    result = load(tmp_path / "q.log")
    assert len(result.frame) == 4
    assert any("invalid UTF-8" in w and "line 6" in w for w in result.report.warnings)


def test_junk_and_binary_lines_are_skipped_with_line_numbers(fixtures: Path, tmp_path: Path) -> None:
    lines = (fixtures / "django/old_no_alias.log").read_text().splitlines()
    lines.insert(1, "DEBUG 2019-03-02 10:01:02,130 utils 4242 140001 \x00\x00garbage\x00")
    lines.append("DEBUG 2019-03-02 10:01:04,000 utils 4242 140001 (0.003) SELECT 1")  # truncated
    (tmp_path / "q.log").write_text("\n".join(lines) + "\n")
    result = load(tmp_path / "q.log")
    assert len(result.frame) == 3
    assert result.report.skipped_total == 2
    assert sorted(s.line for s in result.report.samples) == [2, 5]


def test_truncated_file_mid_entry(fixtures: Path, tmp_path: Path) -> None:
    data = (fixtures / "django/bare.log").read_bytes()
    (tmp_path / "q.log").write_bytes(data[: data.index(b"WHERE \"shop_author\"")])
    result = load(tmp_path / "q.log")
    assert len(result.frame) == 1 and result.report.skipped == {"truncated entry": 1}


def test_nothing_parseable_names_file_and_expectation(tmp_path: Path) -> None:
    from auditkit.loaders.registry import get_loader

    bad = tmp_path / "not-a-django.log"
    bad.write_text("hello\nworld\n")
    with pytest.raises(NothingParsedError) as err:
        get_loader("django_log").load(bad)
    assert "not-a-django.log" in str(err.value) and "args=" in str(err.value)
    with pytest.raises(UnknownFormatError):
        auditkit.load(bad)


def test_binary_file_is_not_a_format(tmp_path: Path) -> None:
    junk = tmp_path / "core.bin"
    junk.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(UnknownFormatError, match="binary"):
        auditkit.load(junk)


_PREFIXES = [
    "2024-05-06 10:00:0{s},123 DEBUG pid=311 thread=Thread-3 request_id=4f1c2b8e ",
    "2024-05-06T10:00:0{s}.120+02:00 DEBUG [worker 12] 5da6bdb8744943ef9353ad2683bc0147 ",
    "06/May/2024 10:00:0{s} django.db.backends tid=7 rid=ab-12 ",
    "  2024/05/06 10:00:0{s} UTC pid: 9 ",
    "[2024-05-06 10:00:0{s}] thread=Main ",  # the timestamp does not lead: read in full
    "thread=2024-05-06T10:00:0{s} pid=1 ",  # a field holding a timestamp
    "2024-05-06 10:00:0{s}pid=3 ",  # no space after the timestamp
    "host-a 2024-05-06 10:00:0{s} 4f1c2b8e-8a6b-4c1e-9f00-0d1e2f3a4b5c ",
    "2024-05-06 10:00:0{s} ",
]


@pytest.mark.parametrize("shape", _PREFIXES)
def test_prefix_fields_remembered_as_read(shape: str) -> None:
    """A block remembers what a prefix holds besides a leading timestamp: the fields are
    those a fresh reading of every record gives, whatever the prefix's shape."""
    from auditkit.loaders.django_log import DjangoLogParser

    parser = DjangoLogParser("", None)
    known: dict = {}
    for s in range(8):
        prefix = shape.format(s=s)
        fresh = parser._fields(prefix, "SELECT 1", "()", 1.0, None, None)
        assert parser._fields(prefix, "SELECT 1", "()", 1.0, None, None, known) == fresh
        assert parser._fields(prefix, "SELECT 1", "()", 1.0, None, None, known) == fresh
