"""Trace and APM loaders: OTLP JSON, Jaeger, Datadog, New Relic → requests + query events.

Every sample of the peer corpus and its copy under tests/fixtures/traces loads with the span
and statement counts its manifest gives; malformed OTLP fails cleanly with the reason; the
two id encodings of one trace agree; sniffers claim their own files and nobody else's.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest

import auditkit.loaders  # noqa: F401 - registers every loader
from auditkit.errors import NothingParsedError
from auditkit.loaders.detect import detect
from auditkit.loaders.otlp import hex_id
from auditkit.loaders.registry import get_loader
from auditkit.loaders.result import LoadResult
from auditkit.schemas import QUERY_EVENTS, REQUESTS

TRACES = Path(__file__).parent / "fixtures" / "traces"
MY_FORMATS = (
    "otlp_json",
    "jaeger_json",
    "datadog_json",
    "newrelic_csv",
    "newrelic_json",
    "access_log",
    "jsonl_queries",
)
HEX = re.compile(r"[0-9a-f]+")

# fixture copy, peer-data path, format, spans (records) read, requests, statements
CASES = [
    (
        "opentelemetry-proto/trace.json",
        "opentelemetry-proto/examples/trace.json",
        "otlp_json",
        1,
        1,
        0,
    ),
    ("otlp2parquet/trace.json", "otlp2parquet/testdata/trace.json", "otlp_json", 2, 1, 0),
    ("otlp2parquet/traces.jsonl", "otlp2parquet/testdata/traces.jsonl", "otlp_json", 19, 19, 0),
    (
        "otlp2parquet/invalid/trace_invalid_kind.json",
        "otlp2parquet/testdata/invalid/trace_invalid_kind.json",
        "otlp_json",
        1,
        1,
        0,
    ),
    (
        "jaeger/example_trace.json",
        "jaeger/internal/storage/integration/fixtures/traces/example_trace.json",
        "otlp_json",
        5,
        5,
        0,
    ),
    (
        "jaeger/link_attributes_trace.json",
        "jaeger/internal/storage/integration/fixtures/traces/link_attributes_trace.json",
        "otlp_json",
        1,
        1,
        0,
    ),
    (
        "jaeger/scope_attributes_trace.json",
        "jaeger/internal/storage/integration/fixtures/traces/scope_attributes_trace.json",
        "otlp_json",
        1,
        1,
        0,
    ),
    (
        "jaeger/ui_01.json",
        "jaeger/internal/uimodel/converter/v1/json/fixtures/ui_01.json",
        "jaeger_json",
        5,
        2,
        0,
    ),
    (
        "dd-trace-py/tests.contrib.aiomysql.test_aiomysql.test_queries.json",
        "dd-trace-py/tests/snapshots/tests.contrib.aiomysql.test_aiomysql.test_queries.json",
        "datadog_json",
        2,
        2,
        2,
    ),
    (
        "dd-trace-py/tests.contrib.asyncpg.test_asyncpg.test_bad_query.json",
        "dd-trace-py/tests/snapshots/tests.contrib.asyncpg.test_asyncpg.test_bad_query.json",
        "datadog_json",
        2,
        2,
        1,
    ),
    (
        "dd-trace-py/tests.contrib.django.test_django_snapshots.test_404_exceptions.json",
        "dd-trace-py/tests/snapshots/tests.contrib.django.test_django_snapshots.test_404_exceptions.json",
        "datadog_json",
        30,
        1,
        0,
    ),
    (
        "dd-trace-py/tests.contrib.django.test_django_snapshots.test_psycopg2_query_default.json",
        "dd-trace-py/tests/snapshots/tests.contrib.django.test_django_snapshots.test_psycopg2_query_default.json",
        "datadog_json",
        2,
        2,
        2,
    ),
    (
        "dd-trace-py/tests.contrib.redis.test_redis.test_pipeline_immediate.json",
        "dd-trace-py/tests/snapshots/tests.contrib.redis.test_redis.test_pipeline_immediate.json",
        "datadog_json",
        2,
        2,
        0,
    ),
    (
        "dd-trace-py/tests.contrib.redis.test_redis_asyncio.test_decoding_non_utf8_args.json",
        "dd-trace-py/tests/snapshots/tests.contrib.redis.test_redis_asyncio.test_decoding_non_utf8_args.json",
        "datadog_json",
        2,
        2,
        0,
    ),
    ("otel-python/django_sqlite_old_semconv.pb.json", None, "otlp_json", 11, 4, 7),
    ("otel-python/django_sqlite_old_semconv.jsonl", None, "otlp_json", 11, 4, 7),
    ("otel-python/django_sqlite_new_semconv.pb.json", None, "otlp_json", 11, 4, 7),
    ("otel-python/django_sqlite_new_semconv.jsonl", None, "otlp_json", 11, 4, 7),
    ("synthetic/jaeger_ui_export_sql.json", None, "jaeger_json", 6, 2, 3),
    ("synthetic/datadog_django_sql.json", None, "datadog_json", 5, 1, 2),
]
INVALID = ["trace_invalid_base64.json", "trace_mixed_encoding.json"]


def load(path: Path, fmt: str | None = None, **options: object) -> LoadResult:
    return get_loader(fmt or detect(path).format).load(path, **options)


def check_frames(result: LoadResult) -> None:
    """Invariants every trace/APM result keeps."""
    report = result.report
    assert report.read == report.parsed + report.skipped_total
    report.check()
    requests = result.frames["requests"]
    assert requests.columns[: len(REQUESTS.names)].tolist() == REQUESTS.names
    assert str(requests["ts"].dtype) == "datetime64[ns, UTC]"
    assert requests["request_id"].notna().all() and requests["request_id"].is_unique
    assert report.events["requests"] == len(requests)
    queries = result.frames.get("query_events")
    if queries is not None:
        assert queries.columns[: len(QUERY_EVENTS.names)].tolist() == QUERY_EVENTS.names
        assert report.events["query_events"] == len(queries)
        if len(queries):
            assert str(queries["ts"].dtype) == "datetime64[ns, UTC]"
            assert queries["request_id"].isin(requests["request_id"]).all()
            assert queries["fingerprint_id"].notna().all()


# -- every sample, fixture copy and peer corpus -----------------------------------------------


def _check_case(path: Path, fmt: str, spans: int, n_requests: int, n_statements: int) -> LoadResult:
    assert detect(path).format == fmt
    result = load(path, fmt)
    check_frames(result)
    assert result.report.read == spans
    assert result.report.parsed == spans
    assert len(result.frames["requests"]) == n_requests
    assert len(result.frames["query_events"]) == n_statements
    for df in result.frames.values():
        assert all(HEX.fullmatch(t) for t in df["trace_id"].dropna())
    queries = result.frames["query_events"]
    assert queries[["trace_id", "span_id", "request_id"]].notna().all().all()
    return result


@pytest.mark.parametrize(("fixture", "peer", "fmt", "spans", "n_requests", "n_statements"), CASES)
def test_fixture_samples(
    fixture: str, peer: str | None, fmt: str, spans: int, n_requests: int, n_statements: int
) -> None:
    _check_case(TRACES / fixture, fmt, spans, n_requests, n_statements)


@pytest.mark.parametrize(
    ("fixture", "peer", "fmt", "spans", "n_requests", "n_statements"), [c for c in CASES if c[1]]
)
def test_peer_samples(
    peer_data: Path,
    fixture: str,
    peer: str,
    fmt: str,
    spans: int,
    n_requests: int,
    n_statements: int,
) -> None:
    path = peer_data / peer
    assert path.read_bytes() == (TRACES / fixture).read_bytes(), (
        "fixture copy differs from the corpus"
    )
    _check_case(path, fmt, spans, n_requests, n_statements)


@pytest.mark.parametrize("name", INVALID)
def test_invalid_ids_fail_cleanly(name: str) -> None:
    path = TRACES / "otlp2parquet" / "invalid" / name
    assert detect(path).format == "otlp_json"
    with pytest.raises(NothingParsedError) as err:
        load(path, "otlp_json")
    report = err.value.report
    assert report.read == 1 and report.parsed == 0
    assert dict(report.skipped) == {"invalid trace id": 1}
    assert "invalid trace id" in str(err.value)
    assert "neither 32 hex digits nor base64 of 16 bytes" in report.samples[0].excerpt


@pytest.mark.parametrize("name", [*INVALID, "trace_invalid_kind.json"])
def test_invalid_peer_samples_never_crash(peer_data: Path, name: str) -> None:
    path = peer_data / "otlp2parquet" / "testdata" / "invalid" / name
    try:
        result = load(path, "otlp_json")
    except NothingParsedError as exc:
        assert exc.report is not None and exc.report.skipped_total == 1
    else:
        assert result.report.warnings == [
            "unknown span kind 'SPAN_KIND_INVALID_TYPE' read as unspecified"
        ]


# -- OTLP ------------------------------------------------------------------------------------


def test_hex_id_reads_hex_and_base64() -> None:
    raw = bytes.fromhex("9d79b1a37f31801cd11a6706fb40d6bd")
    assert hex_id(base64.b64encode(raw).decode(), 16) == raw.hex()
    assert hex_id(raw.hex().upper(), 16) == raw.hex()
    assert hex_id("3lYkOenBuCM=", 8) == "de562439e9c1b823"
    for bad in ("zzz", "!!!INVALID_BASE64!!!", "INVALID==", "", "0" * 32, "3lYkOenBuCM="):
        with pytest.raises(ValueError):
            hex_id(bad, 16)


@pytest.mark.parametrize("semconv", ["old", "new"])
def test_base64_and_hex_encodings_agree(semconv: str) -> None:
    b64 = load(TRACES / "otel-python" / f"django_sqlite_{semconv}_semconv.pb.json")
    hexa = load(TRACES / "otel-python" / f"django_sqlite_{semconv}_semconv.jsonl")
    cols = [
        "ts",
        "request_id",
        "trace_id",
        "span_id",
        "endpoint",
        "method",
        "status",
        "duration_ms",
        "db_ms",
        "db_calls",
    ]
    key = ["trace_id"]
    pd.testing.assert_frame_equal(
        b64.frames["requests"][cols].sort_values(key).reset_index(drop=True),
        hexa.frames["requests"][cols].sort_values(key).reset_index(drop=True),
    )
    qcols = [
        "ts",
        "duration_ms",
        "sql",
        "fingerprint_id",
        "trace_id",
        "span_id",
        "request_id",
        "endpoint",
    ]
    pd.testing.assert_frame_equal(
        b64.frames["query_events"][qcols].sort_values("span_id").reset_index(drop=True),
        hexa.frames["query_events"][qcols].sort_values("span_id").reset_index(drop=True),
    )


def test_old_and_new_semantic_conventions_agree() -> None:
    old = load(TRACES / "otel-python" / "django_sqlite_old_semconv.jsonl")
    new = load(TRACES / "otel-python" / "django_sqlite_new_semconv.jsonl")
    cols = ["endpoint", "method", "status", "db_calls"]
    routed = old.frames["requests"]["status"] != 404
    assert (
        old.frames["requests"][routed][cols].values.tolist()
        == new.frames["requests"][routed][cols].values.tolist()
        == [
            ["products/", "GET", 200, 4],
            ["products/<int:pk>/", "GET", 200, 2],
            ["checkout/", "POST", 201, 1],
        ]
    )
    # the 404 has no route: the old conventions give the URL path, the new ones only the method
    assert old.frames["requests"]["endpoint"].tolist()[-1] == "/missing/"
    assert pd.isna(new.frames["requests"]["endpoint"].tolist()[-1])
    assert sorted(old.frames["query_events"]["sql"]) == sorted(new.frames["query_events"]["sql"])


def test_otlp_statements_belong_to_their_request() -> None:
    result = load(TRACES / "otel-python" / "django_sqlite_old_semconv.jsonl")
    requests, queries = result.frames["requests"], result.frames["query_events"]
    listing = requests[requests["endpoint"] == "products/"].iloc[0]
    mine = queries[queries["request_id"] == listing["request_id"]]
    assert len(mine) == listing["db_calls"] == 4
    assert mine["duration_ms"].sum() == pytest.approx(listing["db_ms"])
    assert (mine["endpoint"] == "products/").all()
    assert (mine["trace_id"] == listing["trace_id"]).all()
    # the N+1: the same statement three times
    assert mine["fingerprint_id"].value_counts().max() == 3
    assert set(mine["db_system"]) == {"sqlite"}
    # statements end within their request
    end = listing["ts"] + pd.to_timedelta(listing["duration_ms"], unit="ms")
    assert ((mine["ts"] >= listing["ts"]) & (mine["ts"] <= end)).all()
    # JSON Lines: source_line is the line of the document
    assert requests["source_line"].tolist() == [1, 2, 3, 4]


def test_otlp_proxy_root_with_request_id() -> None:
    result = load(TRACES / "otlp2parquet" / "trace.json")
    row = result.frames["requests"].iloc[0]
    assert row["request_id"] == "4fb197b8-8116-9929-a374-8b4813c60ad2"  # envoy's x-request-id
    assert row["trace_id"] == base64.b64decode("nXmxo38xgBzRGmcG+0DWvQ==").hex()
    assert row["span_id"] == base64.b64decode("V1JoRpA7sT4=").hex()
    assert (row["endpoint"], row["method"], row["status"]) == (
        "/api/products/66VCHSJNUP",
        "GET",
        200,
    )
    assert row["duration_ms"] == pytest.approx(4.328)
    assert row["spans"] == 2 and row["service"] == "frontend-proxy"


def test_otlp_parent_outside_the_file_makes_a_root() -> None:
    row = load(TRACES / "opentelemetry-proto" / "trace.json").frames["requests"].iloc[0]
    assert row["trace_id"] == "5b8efff798038103d269b633813fc60c"  # upper-case hex normalised
    assert row["duration_ms"] == 1000.0
    assert row["ts"] == pd.Timestamp("2018-12-13 14:51:00", tz="UTC")


def test_otlp_jsonl_with_a_cut_line(tmp_path: Path) -> None:
    lines = (TRACES / "otel-python" / "django_sqlite_old_semconv.jsonl").read_text().splitlines()
    path = tmp_path / "cut.jsonl"
    path.write_text("\n".join([*lines[:3], lines[3][:200]]) + "\n")
    result = load(path, "otlp_json")
    check_frames(result)
    assert dict(result.report.skipped) == {"invalid JSON line": 1}
    assert result.report.skip_lines("invalid JSON line") == [4]
    assert len(result.frames["requests"]) == 3


def test_otlp_not_json_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"resourceSpans": [ {"scopeSpans": ')
    with pytest.raises(NothingParsedError) as err:
        load(path, "otlp_json")
    assert err.value.report.skipped == {"invalid JSON": 1}


# -- Jaeger ------------------------------------------------------------------------------------


def test_jaeger_ui_fixture() -> None:
    result = load(TRACES / "jaeger" / "ui_01.json")
    requests = result.frames["requests"]
    # two root spans share id 2 (Zipkin-style): both kept, ids made unique
    assert requests["request_id"].tolist() == [
        "0000000000000001:0000000000000002",
        "0000000000000001:0000000000000002:2",
    ]
    assert requests["spans"].tolist() == [4, 1]
    assert requests["error"].tolist() == [False, True]
    assert set(requests["service"]) == {"service-x"}
    assert requests["duration_ms"].tolist() == [0.005, 0.005]


def test_jaeger_v2_otlp_files_named_jaeger_json() -> None:
    result = load(TRACES / "jaeger" / "example_trace.json", "jaeger_json")
    assert result.format == "otlp_json" and len(result.frames["requests"]) == 5
    assert "read as otlp_json" in result.report.warnings[0]


def test_jaeger_export_with_sql() -> None:
    result = load(TRACES / "synthetic" / "jaeger_ui_export_sql.json")
    requests, queries = result.frames["requests"], result.frames["query_events"]
    assert requests[["endpoint", "method", "status", "db_calls", "error"]].values.tolist() == [
        ["shop/products/<int:pk>/", "GET", 200, 2, False],
        ["shop/checkout/", "POST", 500, 1, True],
    ]
    assert requests["db_ms"].tolist() == pytest.approx([2.76, 3.1])
    assert not queries["sql"].str.contains("product:42").any()  # Redis is not SQL
    assert queries["database"].unique().tolist() == ["shop"]
    assert queries["user"].tolist()[0] == "shop_app"


# -- Datadog ----------------------------------------------------------------------------------


def test_datadog_django_request() -> None:
    result = load(
        TRACES
        / "dd-trace-py"
        / "tests.contrib.django.test_django_snapshots.test_404_exceptions.json"
    )
    row = result.frames["requests"].iloc[0]
    assert (row["endpoint"], row["method"], row["status"], row["spans"]) == (
        "^404-view/$",
        "GET",
        404,
        30,
    )
    assert row["duration_ms"] == pytest.approx(13.373958)
    assert row["trace_id"] == "69f240ae00000000" + "0" * 16  # _dd.p.tid + 64-bit id
    assert row["db_calls"] == 0 and row["db_ms"] == 0.0


def test_datadog_statements() -> None:
    bad = load(TRACES / "dd-trace-py" / "tests.contrib.asyncpg.test_asyncpg.test_bad_query.json")
    queries = bad.frames["query_events"]
    assert queries["sql"].tolist() == [
        "malformed; query;dfaskjfd"
    ]  # postgres.connect is not a statement
    assert queries["error"].tolist() == [True]
    assert queries["pid"].tolist() == [16387]
    mysql = load(TRACES / "dd-trace-py" / "tests.contrib.aiomysql.test_aiomysql.test_queries.json")
    assert mysql.frames["query_events"]["database"].tolist() == ["test", "test"]
    assert mysql.frames["query_events"]["rows"].tolist() == [1, 0]
    assert mysql.frames["query_events"]["error"].tolist() == [False, True]


def test_datadog_request_with_sql_children() -> None:
    result = load(TRACES / "synthetic" / "datadog_django_sql.json")
    row = result.frames["requests"].iloc[0]
    assert row["request_id"] == "b1946ac92492d2347c6235b4d2611184"  # x-request-id header
    assert row["trace_id"] == "6632110000000000" + f"{7353665224924545011:016x}"
    assert (row["db_calls"], row["db_ms"]) == (2, pytest.approx(2.76))
    queries = result.frames["query_events"]
    assert queries["endpoint"].unique().tolist() == ["shop/products/<int:pk>/"]
    assert queries["span_id"].tolist() == [
        f"{2310574220183044121:016x}",
        f"{8812074220183044199:016x}",
    ]
    # a statement's ts is when it finished
    assert queries["ts"].iloc[0] == pd.Timestamp(1714557600102370000 + 1840000, unit="ns", tz="UTC")


# -- New Relic --------------------------------------------------------------------------------


def test_newrelic_csv_zero_omission() -> None:
    result = load(TRACES / "newrelic" / "transactions.csv")
    check_frames(result)
    df = result.frame.set_index("request_id")
    health = df.loc["2d7a9c0e4f1b8a35"]  # no databaseCallCount/databaseDuration: zero
    assert health["db_calls"] == 0 and health["db_ms"] == 0.0
    assert health["external_calls"] == 0 and health["external_ms"] == 0.0
    detail = df.loc["e3b0c44298fc1c14"]
    assert (detail["db_calls"], detail["db_ms"], detail["duration_ms"]) == (
        104,
        pytest.approx(612.0),
        pytest.approx(940.2),
    )
    assert detail["endpoint"] == "shop.views:product_detail"
    assert detail["ts"] == pd.Timestamp("2024-05-01 10:00:01.002", tz="UTC")
    assert detail["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert (
        df.loc["8c1f2e4b9a7d3f10", "trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    )  # lower-cased
    assert df.loc["9f86d081884c7d65", ["status", "error"]].tolist() == [500, True]
    celery = df.loc["4e07408562bedb8b"]
    assert (celery["endpoint"], celery["transaction_type"], celery["service"]) == (
        "shop.tasks.send_order_confirmation",
        "Other",
        "shop-worker (production)",
    )
    assert pd.isna(celery["status"]) and pd.isna(celery["method"])
    assert result.report.warnings == []


def test_newrelic_json_shapes() -> None:
    api = load(TRACES / "newrelic" / "transactions_nrql.json")
    check_frames(api)
    assert api.frame["db_calls"].tolist() == [23, 0, 104]
    assert api.frame["db_ms"].tolist() == pytest.approx([81.4, 0.0, 612.0])
    assert api.frame["queue_ms"].tolist() == pytest.approx([0.0, 0.0, 3.1])
    nerd = load(TRACES / "newrelic" / "transactions_nerdgraph.json")
    check_frames(nerd)
    assert nerd.frame["endpoint"].tolist() == ["shop.views:checkout", "/accounts/login/"]
    assert nerd.frame["path"].tolist() == ["/checkout/", "/accounts/login/"]
    assert nerd.frame["db_calls"].tolist() == [7, 0]
    # the same transactions in CSV and JSON read the same
    csv = load(TRACES / "newrelic" / "transactions.csv").frame.set_index("request_id")
    cols = ["ts", "endpoint", "method", "status", "duration_ms", "db_ms", "db_calls", "trace_id"]
    pd.testing.assert_frame_equal(
        api.frame.set_index("request_id")[cols],
        csv.loc[api.frame["request_id"], cols],
        check_names=False,
    )


def test_newrelic_missing_database_columns_warn(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "timestamp,appName,duration,name,transactionType\n"
        "1714557600123,shop,0.25,WebTransaction/Function/shop.views:index,Web\n"
    )
    result = load(path)
    assert result.format == "newrelic_csv"
    assert result.frame["db_calls"].tolist() == [0]
    assert "read as zero" in result.report.warnings[0]
    assert result.frame["request_id"].tolist() == ["export.csv:2"]


def test_newrelic_skips_other_events(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(
        '[{"eventType": "Transaction", "timestamp": 1714557600123, "name": "WebTransaction/Uri/a",'
        ' "duration": 0.1, "appName": "shop", "transactionType": "Web"},'
        ' {"eventType": "TransactionError", "timestamp": 1714557600124, "appName": "shop"},'
        ' {"timestamp": 1714557600125, "name": "WebTransaction/Uri/b", "appName": "shop"}]'
    )
    result = load(path, "newrelic_json")
    check_frames(result)
    assert dict(result.report.skipped) == {"not a Transaction event": 1, "missing duration": 1}
    assert result.frame["endpoint"].tolist() == ["/a"]


# -- sniffers ---------------------------------------------------------------------------------

_EXPECTED = {
    **{c[0]: c[2] for c in CASES},
    **{f"otlp2parquet/invalid/{n}": "otlp_json" for n in INVALID},
    "newrelic/transactions.csv": "newrelic_csv",
    "newrelic/transactions_nrql.json": "newrelic_json",
    "newrelic/transactions_nerdgraph.json": "newrelic_json",
    "jsonl/queries.jsonl": "jsonl_queries",
    **{f"access/{p.name}": "access_log" for p in (TRACES / "access").glob("*.log")},
}


@pytest.mark.parametrize("rel", sorted(_EXPECTED))
def test_sniffers_are_specific(rel: str) -> None:
    path = TRACES / rel
    head = path.read_bytes()[:65536].decode("utf-8", errors="replace")
    for fmt in MY_FORMATS:
        score = get_loader(fmt).sniff(head, path)
        if fmt == _EXPECTED[rel]:
            assert score >= 0.5, f"{fmt} does not claim its own {rel}"
        else:
            assert score < 0.5, f"{fmt} claims {rel} ({score})"
    assert detect(path).format == _EXPECTED[rel]


def _manifest_kinds(peer: Path) -> dict[str, str]:
    kinds = {}
    for line in (peer / "MANIFEST.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if (
            len(cells) > 7
            and cells[1].startswith("`")
            and "/" in cells[1]
            and cells[3].startswith("`")
        ):
            kinds[cells[1].strip("`")] = cells[6]
    return kinds


_TRACE_KINDS = {
    "OpenTelemetry OTLP JSON traces": "otlp_json",
    "Jaeger UI JSON trace export": "jaeger_json",
    "Datadog APM trace JSON": "datadog_json",
}
#: peer files of other kinds that one of these formats reads on purpose
_CLAIMED = {
    # ingress-nginx's access log: combined format plus upstream fields
    "beats/filebeat/module/nginx/ingress_controller/test/test.log": "access_log",
}


def test_sniffers_leave_other_peer_files_alone(peer_data: Path) -> None:
    from auditkit.loaders.stream import read_head

    kinds = _manifest_kinds(peer_data)
    assert len(kinds) > 100
    for rel, kind in kinds.items():
        path = peer_data / rel
        head = read_head(path).decode("utf-8", errors="replace")
        mine = _CLAIMED.get(rel) or _TRACE_KINDS.get(kind)
        for fmt in MY_FORMATS:
            score = get_loader(fmt).sniff(head, path)
            if fmt == mine:
                assert score >= 0.5, f"{fmt} does not claim {rel}"
            else:
                assert score < 0.5, f"{fmt} claims {rel} ({kind}) with {score}"
