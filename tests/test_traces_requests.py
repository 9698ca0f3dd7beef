"""Requests from access logs and the auditkit query log; requests inferred from statements.

Access-log fixtures were written by real gunicorn and nginx runs (tests/fixtures/traces/
SOURCES.md); the query log follows docs/formats/jsonl-queries.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import auditkit.loaders  # noqa: F401 - registers every loader
from auditkit.errors import ConfigError
from auditkit.loaders.detect import detect
from auditkit.loaders.registry import get_loader
from auditkit.loaders.result import LoadResult
from auditkit.requests import REQUEST_GAP_MS, attach_requests, infer_requests
from auditkit.schemas import QUERY_EVENTS, REQUESTS

ACCESS = Path(__file__).parent / "fixtures" / "traces" / "access"
JSONL = Path(__file__).parent / "fixtures" / "traces" / "jsonl" / "queries.jsonl"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def load(path: Path, fmt: str | None = None, **options: object) -> LoadResult:
    result = get_loader(fmt or detect(path).format).load(path, **options)
    result.report.check()
    assert result.report.read == result.report.parsed + result.report.skipped_total
    return result


# -- access logs ------------------------------------------------------------------------------

# file, records read, parsed, first request's duration (ms), request id pattern
ACCESS_CASES = [
    ("gunicorn_combined_L.log", 8, 8, 14.962, r"gunicorn_combined_L\.log:1"),
    ("gunicorn_combined_D_rid.log", 8, 8, 12.682, UUID),
    ("gunicorn_common_D.log", 8, 8, 12.894, r"gunicorn_common_D\.log:1"),
    ("nginx_timed_combined.log", 17, 16, 15.0, r"[0-9a-f]{32}"),
    ("nginx_common_kv.log", 17, 16, 15.0, r"[0-9a-f]{32}"),
    ("nginx_combined.log", 17, 16, None, r"nginx_combined\.log:1"),
]


@pytest.mark.parametrize(("name", "read", "parsed", "first_ms", "rid"), ACCESS_CASES)
def test_access_log_flavours(
    name: str, read: int, parsed: int, first_ms: float | None, rid: str
) -> None:
    path = ACCESS / name
    assert detect(path).format == "access_log"
    result = load(path)
    df = result.frame
    assert result.primary == "requests"
    assert df.columns[: len(REQUESTS.names)].tolist() == REQUESTS.names
    assert (result.report.read, result.report.parsed) == (read, parsed)
    assert len(df) == parsed and df["request_id"].is_unique
    assert pd.Series(df["request_id"]).str.fullmatch(rid).iloc[0]
    first = df.iloc[0]
    # query strings are not part of the endpoint
    assert (first["endpoint"], first["method"], first["status"]) == ("/products/", "GET", 200)
    assert df["endpoint"].tolist()[:7] == [
        "/products/",
        "/products/42/",
        "/healthz",
        "/checkout/",
        "/missing/",
        "/products/",
        "/products/7/",
    ]
    assert df["status"].tolist()[3:5] == [302, 404]
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"
    if first_ms is None:
        assert df["duration_ms"].isna().all()
    else:
        assert first["duration_ms"] == pytest.approx(first_ms)
        assert df["duration_ms"].notna().all()
    if read > parsed:  # the TLS handshake sent to the plain port
        assert dict(result.report.skipped) == {"malformed request line": 1}
        assert result.report.skip_lines("malformed request line") == [9]


def test_access_log_ts_is_the_start() -> None:
    df = load(ACCESS / "gunicorn_combined_L.log").frame
    logged = pd.Timestamp("2026-11-24 20:14:23", tz="UTC")  # line 1, written at the end
    assert df["ts"].iloc[0] == logged - pd.Timedelta(microseconds=14962)
    start = load(ACCESS / "gunicorn_combined_L.log", logged_at="start").frame
    assert start["ts"].iloc[0] == logged


def test_access_log_pid_is_not_the_duration() -> None:
    """``<18013> 12682 uuid``: the µs field is found, not the worker pid."""
    df = load(ACCESS / "gunicorn_combined_D_rid.log").frame
    assert df["duration_ms"].tolist()[:3] == pytest.approx([12.682, 21.773, 0.666])
    nginx = load(ACCESS / "nginx_timed_combined.log").frame
    kv = load(ACCESS / "nginx_common_kv.log").frame
    # $request_time, not $upstream_response_time; the same requests with the same ids
    assert nginx["duration_ms"].tolist() == kv["duration_ms"].tolist()
    assert nginx["request_id"].tolist() == kv["request_id"].tolist()
    static = nginx[nginx["endpoint"] == "/static/app.css"]
    assert len(static) == 2 and static["size_bytes"].tolist() == [6, 6]


def test_access_log_small_blocks_give_the_same_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    loader = get_loader("access_log")
    whole = loader.load(ACCESS / "nginx_timed_combined.log")
    monkeypatch.setattr(loader, "block_size", 300)
    pieces = loader.load(ACCESS / "nginx_timed_combined.log")
    pd.testing.assert_frame_equal(whole.frame, pieces.frame)
    assert pieces.report.read == whole.report.read


def test_access_log_other_shapes(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_text(
        '10.0.0.1 - alice [2024-05-01T10:00:00.250+00:00] "GET /a/?x=1 HTTP/2.0" 200 10 "-" "curl/8" 250\n'
        "\n"
        '[01/May/2024 10:00:01] "POST /b/ HTTP/1.1" 201 0\n'
        "Watching for file changes with StatReloader\n"
        '10.0.0.2 - - [01/May/2024:10:00:02 +0200] "GET http://shop.example.com/c/d?e HTTP/1.1" 200 5 rid=abc-1 rt=1.5\n'
    )
    result = load(path, "access_log", request_time_unit="ms")
    df = result.frame
    assert dict(result.report.skipped) == {"not an access log line": 1}
    assert df["endpoint"].tolist() == ["/a/", "/b/", "/c/d"]
    assert df["duration_ms"].tolist()[0] == 250.0  # integer field, unit given
    assert pd.isna(df["duration_ms"].tolist()[1])
    assert df["duration_ms"].tolist()[2] == 1500.0  # rt= is seconds
    assert df["request_id"].tolist()[2] == "abc-1"
    assert df["ts"].tolist() == [
        pd.Timestamp("2024-05-01 10:00:00", tz="UTC"),  # logged 10:00:00.250, took 250 ms
        pd.Timestamp("2024-05-01 10:00:01", tz="UTC"),  # Django runserver: naive, taken as UTC
        pd.Timestamp("2024-05-01 08:00:00.5", tz="UTC"),  # 10:00:02+02:00 minus 1.5 s
    ]
    with pytest.raises(ConfigError):
        get_loader("access_log").load(path, request_time_unit="minutes")


def test_access_log_sniff_is_specific() -> None:
    loader = get_loader("access_log")
    django = "(0.002) SELECT 1; args=(); alias=default\n" * 3
    assert loader.sniff(django, Path("x.log")) == 0.0
    assert loader.sniff('{"ts": "2024-05-01T10:00:00Z"}\n', Path("x.jsonl")) == 0.0


# -- the auditkit query log --------------------------------------------------------------------


def test_jsonl_queries_fixture() -> None:
    assert detect(JSONL).format == "jsonl_queries"
    result = load(JSONL)
    report = result.report
    assert (report.read, report.parsed) == (12, 9)
    assert dict(report.skipped) == {
        "unknown record type": 1,
        "query record without sql": 1,
        "invalid JSON line": 1,
    }
    queries, requests = result.frames["query_events"], result.frames["requests"]
    assert result.frame is queries
    assert queries.columns[: len(QUERY_EVENTS.names)].tolist() == QUERY_EVENTS.names
    assert len(queries) == 7 and queries["fingerprint_id"].notna().all()
    assert queries["request_id"].isna().sum() == 1  # the celery statement
    assert queries["database"].tolist()[-1] == "replica"
    assert queries["stack"].notna().sum() == 1
    assert queries["params"].iloc[0] == "[42]"
    detail, checkout = requests.iloc[0], requests.iloc[1]
    # a request record: its own numbers
    assert (detail["status"], detail["db_calls"], detail["db_ms"], detail["cache_hits"]) == (
        200,
        4,
        3.55,
        2,
    )
    assert detail["ts"] == pd.Timestamp("2024-05-01 10:00:00.100002", tz="UTC")
    # no request record: derived from its statements, real id, not inferred
    assert checkout["request_id"] == "7d865e959b2466918c9863afca942d0f"
    assert (checkout["db_calls"], checkout["db_ms"], checkout["inferred"]) == (
        2,
        pytest.approx(3.7),
        False,
    )
    assert pd.isna(checkout["status"])
    assert checkout["ts"] == pd.Timestamp("2024-05-01 10:00:00.209245", tz="UTC")  # first start
    assert checkout["duration_ms"] == pytest.approx(5.756)
    assert requests["inferred"].eq(False).all()


def test_jsonl_queries_blocks_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    loader = get_loader("jsonl_queries")
    whole = loader.load(JSONL)
    monkeypatch.setattr(loader, "block_size", 400)
    pieces = loader.load(JSONL)
    for name in ("query_events", "requests"):
        pd.testing.assert_frame_equal(whole.frames[name], pieces.frames[name])


def test_jsonl_queries_round_trip(tmp_path: Path) -> None:
    """Records written as the format says come back as the same values."""
    start = pd.Timestamp("2024-05-01 10:00:00", tz="UTC")
    records = []
    for i in range(6):
        ts = start + pd.Timedelta(milliseconds=10 * i, microseconds=123)
        records.append(
            {
                "ts": ts.isoformat().replace("+00:00", "Z"),
                "duration_ms": 0.5 + i,
                "sql": f'SELECT "t"."id" FROM "t" WHERE "t"."id" = %s -- {i % 2}',
                "params": [i],
                "alias": "default",
                "request_id": f"req-{i // 3}",
                "endpoint": f"app/view{i // 3}/",
                "method": "GET",
                "pid": 100 + i // 3,
                "thread": "MainThread",
            }
        )
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = load(path, "jsonl_queries")
    q = result.frames["query_events"]
    assert q["ts"].tolist() == [pd.Timestamp(r["ts"]) for r in records]
    assert q["duration_ms"].tolist() == [r["duration_ms"] for r in records]
    assert q["sql"].tolist() == [r["sql"] for r in records]
    assert [json.loads(p) for p in q["params"]] == [r["params"] for r in records]
    for col in ("request_id", "endpoint", "method", "pid", "thread"):
        assert q[col].tolist() == [r[col] for r in records]
    assert q["database"].tolist() == ["default"] * 6
    assert q["fingerprint_id"].nunique() == 1  # comments and literals fold
    r = result.frames["requests"]
    assert r["request_id"].tolist() == ["req-0", "req-1"]
    assert r["db_calls"].tolist() == [3, 3]
    assert r["db_ms"].tolist() == pytest.approx([4.5, 13.5])
    assert r["pid"].tolist() == [100, 101]


def test_jsonl_queries_newer_version_warns(tmp_path: Path) -> None:
    path = tmp_path / "v3.jsonl"
    path.write_text(
        '{"type": "meta", "format": "auditkit.queries", "version": 3}\n'
        '{"ts": "2024-05-01T10:00:00Z", "duration_ms": 1, "sql": "SELECT 1", "params": null, "alias": "default",'
        ' "request_id": null, "endpoint": null, "method": null, "pid": 1, "thread": "t", "new_field": 1}\n'
    )
    result = load(path)
    assert result.format == "jsonl_queries"
    assert "format version 3" in result.report.warnings[0]
    assert len(result.frames["requests"]) == 0


# -- inferring requests -----------------------------------------------------------------------


def _events(rows: list[tuple[str, float, int | None, str | None]]) -> pd.DataFrame:
    """(finish time offset 'S.mmm' s, duration ms, pid, thread) → a query-events frame."""
    base = pd.Timestamp("2024-05-01 10:00:00", tz="UTC")
    return pd.DataFrame(
        {
            "ts": [base + pd.Timedelta(seconds=float(t)) for t, _, _, _ in rows],
            "duration_ms": [d for _, d, _, _ in rows],
            "sql": [f"SELECT {i}" for i in range(len(rows))],
            "pid": pd.array([p for _, _, p, _ in rows], dtype="Int64"),
            "thread": pd.array([th for _, _, _, th in rows], dtype="string"),
            "source_line": range(1, len(rows) + 1),
        }
    )


def test_infer_requests_heuristic() -> None:
    # two workers interleaved; worker 1 pauses 0.4 s (> 250 ms) between two requests
    ev = _events(
        [
            ("0.010", 5.0, 1, "MainThread"),
            ("0.012", 3.0, 2, "MainThread"),
            ("0.030", 10.0, 1, "MainThread"),  # starts 0.020: 10 ms after the previous end
            ("0.050", 2.0, 2, "MainThread"),
            ("0.450", 4.0, 1, "MainThread"),  # starts 0.446: 416 ms idle → new request
            ("0.460", 1.0, 1, "MainThread"),
        ]
    )
    reqs = infer_requests(ev)
    assert reqs.columns[: len(REQUESTS.names)].tolist() == REQUESTS.names
    assert reqs["inferred"].tolist() == [True, True, True]
    assert reqs["db_calls"].tolist() == [2, 2, 2]
    assert reqs["pid"].tolist() == [1, 2, 1]
    assert reqs["db_ms"].tolist() == pytest.approx([15.0, 5.0, 5.0])
    first = reqs.iloc[0]
    assert first["ts"] == pd.Timestamp(
        "2024-05-01 10:00:00.005", tz="UTC"
    )  # first statement's start
    assert first["duration_ms"] == pytest.approx(25.0)  # to the last statement's end
    assert reqs["request_id"].str.fullmatch(r"inf-[0-9a-f]{12}").all()
    assert reqs["request_id"].tolist() == infer_requests(ev)["request_id"].tolist()  # stable
    # a longer gap threshold merges worker 1's two requests
    assert len(infer_requests(ev, gap_ms=500)) == 2
    assert REQUEST_GAP_MS == 250

    attached = attach_requests(ev, reqs)
    groups = attached.groupby("request_id")["source_line"].apply(list).to_dict()
    by_id = dict(zip(reqs["request_id"], reqs["pid"], strict=True))
    assert sorted(groups.values()) == [[1, 3], [2, 4], [5, 6]]
    assert all(
        by_id[rid] == attached.loc[attached["request_id"] == rid, "pid"].iloc[0] for rid in groups
    )


def test_infer_requests_without_pid_or_thread() -> None:
    ev = _events(
        [("0.010", 1.0, None, None), ("0.020", 1.0, None, None), ("1.000", 1.0, None, None)]
    )
    reqs = infer_requests(ev)
    assert reqs["db_calls"].tolist() == [2, 1]
    assert attach_requests(ev, reqs)["request_id"].nunique() == 2


def test_infer_requests_keeps_real_ids() -> None:
    ev = _events([("0.010", 1.0, 1, "t"), ("0.020", 1.0, 1, "t"), ("0.030", 1.0, 1, "t")])
    ev["request_id"] = pd.array(["r1", "r1", None], dtype="string")
    ev["endpoint"] = pd.array(["shop/", "shop/", None], dtype="string")
    reqs = infer_requests(ev)
    real = reqs[~reqs["inferred"]]
    assert real["request_id"].tolist() == ["r1"] and real["endpoint"].tolist() == ["shop/"]
    assert real["db_calls"].tolist() == [2]
    assert reqs["inferred"].sum() == 1


def test_attach_requests_by_id_and_by_time() -> None:
    ev = _events(
        [("0.010", 1.0, None, None), ("0.500", 1.0, None, None), ("0.900", 1.0, None, None)]
    )
    ev["request_id"] = pd.array(["a", None, None], dtype="string")
    requests = pd.DataFrame(
        {
            "ts": pd.to_datetime(
                [
                    "2024-05-01 10:00:00",
                    "2024-05-01 10:00:00.400",
                    "2024-05-01 10:00:00.850",
                    "2024-05-01 10:00:00.860",
                ],
                utc=True,
                format="ISO8601",
            ),
            "request_id": ["a", "b", "c", "d"],
            "endpoint": ["/a/", "/b/", "/c/", "/d/"],
            "duration_ms": [100.0, 200.0, 100.0, 100.0],
        }
    )
    out = attach_requests(ev, requests)
    assert out["request_id"].tolist()[:2] == ["a", "b"]
    assert out["endpoint"].tolist()[:2] == ["/a/", "/b/"]
    # two overlapping requests contain the third statement: left unattached, not guessed
    assert pd.isna(out["request_id"].tolist()[2])


def test_attach_by_time_needs_an_unambiguous_request() -> None:
    """Access logs time requests to the second: overlapping requests are not guessed between."""
    reqs = load(ACCESS / "gunicorn_combined_L.log").frame
    detail = reqs[reqs["endpoint"] == "/products/42/"].iloc[0]
    inside = detail["ts"] + pd.Timedelta(milliseconds=detail["duration_ms"] / 2)
    ev = pd.DataFrame({"ts": [inside], "duration_ms": [1.0], "sql": ["SELECT 1"]})
    assert attach_requests(ev, reqs)["request_id"].isna().all()
    # with the worker's pid on both sides the same statement is placed
    requests = load(JSONL).frames["requests"]
    ev = pd.DataFrame(
        {
            "ts": pd.to_datetime(
                ["2024-05-01T10:00:00.105Z", "2024-05-01T10:00:00.105Z"], utc=True
            ),
            "duration_ms": [1.0, 1.0],
            "sql": ["SELECT 1", "SELECT 2"],
            "pid": pd.array([4121, 4122], dtype="Int64"),
        }
    )
    out = attach_requests(ev, requests)
    assert out["request_id"].iloc[0] == "b1946ac92492d2347c6235b4d2611184"
    assert out["endpoint"].iloc[0] == "shop/products/<int:pk>/"
    assert pd.isna(out["request_id"].iloc[1])
