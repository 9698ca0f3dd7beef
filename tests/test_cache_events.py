"""The cache-events loader: the capture app's own records, other wrappers' field names, CSV,
Django's key prefix, and a parse report with line numbers instead of a traceback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import auditkit
from auditkit.django.records import CACHE_FORMAT, CACHE_VERSION, cache_records
from auditkit.errors import AuditkitError
from auditkit.loaders.cache_events import django_key_prefix, key_family
from auditkit.loaders.detect import detect


def _capture_file(path: Path) -> Path:
    """A cache file as the capture app's writer lays it out: meta record, then records."""
    now = time.time()
    common = {"request_id": "req-1", "endpoint": "/books/<int:pk>/", "pid": 7, "thread": "w1"}
    entries = [
        # ts, op, key, hit, ttl_s, duration_ms, cache, backend, version, keys, hits, error
        (now, "get", "book:1", False, None, 0.41, "default", "RedisCache", None, None, None, None),
        (
            now + 0.001,
            "set",
            "book:1",
            None,
            120.0,
            0.2,
            "default",
            "RedisCache",
            None,
            None,
            None,
            None,
        ),
        (
            now + 0.002,
            "get_many",
            "seen:1",
            None,
            None,
            0.1,
            "local",
            "LocMemCache",
            None,
            2,
            1,
            None,
        ),
        (
            now + 0.003,
            "get",
            "book:2",
            None,
            None,
            3.0,
            "default",
            "RedisCache",
            2,
            None,
            None,
            "ConnectionError",
        ),
    ]
    meta = {"type": "meta", "format": CACHE_FORMAT, "version": CACHE_VERSION, "pid": 7}
    lines = [json.dumps(meta)] + [json.dumps(r) for r in cache_records(entries, common)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_capture_app_records(tmp_path: Path) -> None:
    path = _capture_file(tmp_path / "cache-20261124T204000Z-web-7.jsonl")
    assert detect(path).format == "cache_events"
    result = auditkit.load(path)
    df = result.frame
    assert result.report.read == 5 and result.report.parsed == 5 and not result.report.skipped
    assert list(df["op"]) == ["get", "set", "get_many", "get"]
    assert list(df["hit"].astype(object)) == [False, pd_na(), pd_na(), pd_na()]
    assert df["ttl_s"].iloc[1] == 120.0 and df["request_id"].eq("req-1").all()
    assert df["key_count"].iloc[2] == 2 and df["key_hits"].iloc[2] == 1
    assert df["error"].iloc[3] == "ConnectionError" and list(df["source_line"]) == [2, 3, 4, 5]
    assert list(df["key_prefix"]) == ["book:{int}", "book:{int}", "seen:{int}", "book:{int}"]
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"


def pd_na() -> object:
    import pandas as pd

    return pd.NA


def test_wrapper_synonyms_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "cache.log.jsonl"
    path.write_text(
        "\n".join(
            [
                '{"timestamp": 1767225600.5, "command": "GET", "cache_key": ":1:summary:12:705", "result": "miss", "duration_us": 400, "trace_id": "ab"}',
                '{"timestamp": 1767225600500, "operation": "SET", "cache_key": ":1:summary:12:705", "timeout": 300, "duration": 0.2}',
                '{"@timestamp": "2026-01-01T00:00:01+01:00", "method": "get", "key": ":1:summary:12:705", "status": "HIT"}',
                "[1, 2]",
                '{"key": ":1:x"}',
                '{"op": "get", "key": ":1:x", "ts": "yesterday-ish"}',
                '{"op": "get", "key',
            ]
        ),
        encoding="utf-8",
    )
    result = auditkit.load(path)
    df, report = result.frame, result.report
    assert report.read == 7 and report.parsed == 3
    assert report.skip_lines("not a JSON object") == [4]
    assert report.skip_lines("record without an operation (op)") == [5]
    assert report.skip_lines("unreadable time stamp") == [6]
    assert report.skip_lines("invalid JSON line") == [7]
    assert list(df["op"]) == ["get", "set", "get"]
    assert list(df["hit"].astype(object)[[0, 2]]) == [False, True]
    assert df["duration_ms"].iloc[0] == pytest.approx(0.4) and df["ttl_s"].iloc[1] == 300
    assert df["ts"].iloc[0] == df["ts"].iloc[1]  # epoch seconds and milliseconds agree
    assert str(df["ts"].iloc[2]) == "2026-01-01 00:00:01+00:00" or df["ts"].iloc[2].hour == 23
    assert set(df["key_prefix"]) == {"summary:{int}:{int}"}
    assert any("':1:'" in w for w in report.warnings)


def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "cache_ops.csv"
    path.write_text(
        "timestamp,operation,cache_key,result,ttl,duration,request_id\n"
        "2026-11-24T20:40:00Z,GET,shop:1:summary:12:705,miss,,0.4,r1\n"
        "2026-11-24T20:40:00Z,SET,shop:1:summary:12:705,,300,0.2,r1\n"
        "2026-11-24T20:40:01Z,GET,shop:1:product:7,hit,,0.1,r2\n"
        "2026-11-24T20:40:02Z,GET,shop:1:product:7,hit,,0.1,r3,extra\n",
        encoding="utf-8",
    )
    assert detect(path).format == "cache_events"
    result = auditkit.load(path)
    assert result.report.read == 4 and result.report.skip_lines(
        "more cells than header columns"
    ) == [5]
    df = result.frame
    assert list(df["key_prefix"]) == ["summary:{int}:{int}", "summary:{int}:{int}", "product:{int}"]
    assert list(df["request_id"]) == ["r1", "r1", "r2"]


def test_nothing_usable_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "cache-x.jsonl"
    path.write_text(
        '{"type":"meta","format":"auditkit.cache","version":1}\n{"op": "get", "key',
        encoding="utf-8",
    )
    with pytest.raises(AuditkitError) as err:
        auditkit.load(path, format="cache_events")
    assert "cache-x.jsonl" in str(err.value)


def test_newer_version_warns(tmp_path: Path) -> None:
    path = tmp_path / "cache-y.jsonl"
    path.write_text(
        '{"type":"meta","format":"auditkit.cache","version":9}\n{"type":"cache","op":"get","key":"a:1","hit":true}\n',
        encoding="utf-8",
    )
    result = auditkit.load(path)
    assert any("version 9" in w for w in result.report.warnings)


@pytest.mark.parametrize(
    ("key", "family"),
    [
        ("summary:12:705", "summary:{int}:{int}"),
        ("user:3f2504e0-4f89-11d3-9a0c-0305e82c3301:cart", "user:{uuid}:cart"),
        ("profile:ann@example.com", "profile:{email}"),
        (
            "django.contrib.sessions.cachekq3n0w8v2c5x7b1m9z4d6f2h8j",
            "django.contrib.sessions.cache{session}",
        ),
        ("template.cache.sidebar.0cc175b9c0f1b6a831c399e269772661", "template.cache.sidebar.{hex}"),
        (
            "django.contrib.sessions.cached_dbkq3n0w8v2c5x7b1m9z4d6f2h8j",
            "django.contrib.sessions.cache{session}",
        ),
        ("cart:Zq3xPp0aLm9RtY7uVw2sBn4", "cart:{token}"),
        ("v2", "v2"),
    ],
)
def test_key_family(key: str, family: str) -> None:
    assert key_family(key) == family


def test_django_prefix_detection() -> None:
    assert django_key_prefix([":1:a", ":1:b:2"]) == ":1:"
    assert django_key_prefix(["shop:1:a:1", "shop:1:b:2", "shop:1:c"]) == "shop:1:"
    # one family of application keys that merely look like a prefix: no prefix
    assert django_key_prefix(["summary:12:705", "summary:12:706"]) is None
    assert django_key_prefix(["a", "b"]) is None
