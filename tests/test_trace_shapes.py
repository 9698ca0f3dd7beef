"""OpenTelemetry SDK spans, Zipkin v2 spans, and cache spans in every trace format.

The SDK fixture is written in the test by the real OpenTelemetry Python SDK (its
ConsoleSpanExporter and ``ReadableSpan.to_json``): SERVER spans of a Django-like shop with
PostgreSQL and Redis CLIENT spans, in both generations of the semantic conventions. Peer
samples (Monocle's SDK dumps, Zipkin's UI test data, dd-trace-py's Redis snapshots) load with
the counts their manifest gives.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

import auditkit.loaders  # noqa: F401 - registers every loader
from auditkit.errors import NothingParsedError
from auditkit.loaders.detect import detect
from auditkit.loaders.registry import get_loader
from auditkit.requests import CACHE_OPS, Span, cache_op, trace_frames
from auditkit.schemas import CACHE_EVENTS, REQUESTS

TRACES = Path(__file__).parent / "fixtures" / "traces"

otel = pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk (dev extra)")


# -- the real SDK, run here -----------------------------------------------------------------

# (route, method, status, [(kind, statement)]) per request; kind pg or redis
SHOP = [
    (
        "catalogue/<slug:category>/",
        "GET",
        200,
        [
            ("redis", "GET catalogue:shoes:page:1"),
            (
                "pg",
                'SELECT "catalogue_product"."id" FROM "catalogue_product" WHERE "catalogue_product"."category_id" = 3',
            ),
            (
                "pg",
                'SELECT "catalogue_brand"."name" FROM "catalogue_brand" WHERE "catalogue_brand"."id" = 1',
            ),
            (
                "pg",
                'SELECT "catalogue_brand"."name" FROM "catalogue_brand" WHERE "catalogue_brand"."id" = 2',
            ),
            ("redis", "SET catalogue:shoes:page:1 payload EX 300"),
        ],
    ),
    (
        "basket/add/",
        "POST",
        302,
        [
            ("redis", "GET session:9f1c2e"),
            ("pg", 'INSERT INTO "basket_line" ("basket_id", "product_id") VALUES (5, 17)'),
            ("redis", "DEL basket:5:total"),
        ],
    ),
    ("health/", "GET", 200, [("redis", "PING")]),
]


def _write_shop(semconv: str, console: Path, lines: Path) -> None:
    """Run the SDK: three SERVER spans with their PostgreSQL and Redis CLIENT spans."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        ConsoleSpanExporter,
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.trace import SpanKind

    class JsonLines(SpanExporter):
        def __init__(self, out: io.StringIO) -> None:
            self.out = out

        def export(self, spans):  # type: ignore[no-untyped-def]
            for s in spans:
                self.out.write(s.to_json(indent=None) + "\n")
            return SpanExportResult.SUCCESS

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    pretty, flat = io.StringIO(), io.StringIO()
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=pretty)))
    provider.add_span_processor(SimpleSpanProcessor(JsonLines(flat)))
    tracer = provider.get_tracer("auditkit.tests")
    new = semconv == "new"
    for route, method, status, calls in SHOP:
        server_attrs = (
            {
                "http.request.method": method,
                "http.route": route,
                "url.path": "/" + route,
                "http.response.status_code": status,
            }
            if new
            else {
                "http.method": method,
                "http.route": route,
                "http.target": "/" + route,
                "http.status_code": status,
            }
        )
        with tracer.start_as_current_span(
            f"{method} {route}", kind=SpanKind.SERVER, attributes=server_attrs
        ):
            pretty.write("an application print between the spans\n")
            for kind, statement in calls:
                if kind == "pg":
                    attrs = (
                        {
                            "db.system.name": "postgresql",
                            "db.query.text": statement,
                            "db.namespace": "shop",
                        }
                        if new
                        else {
                            "db.system": "postgresql",
                            "db.statement": statement,
                            "db.name": "shop",
                            "db.user": "shop",
                        }
                    )
                    name = statement.split()[0]
                else:
                    command = statement.split()[0]
                    attrs = (
                        {
                            "db.system.name": "redis",
                            "db.query.text": statement,
                            "db.operation.name": command,
                            "db.namespace": "0",
                        }
                        if new
                        else {
                            "db.system": "redis",
                            "db.statement": statement,
                            "db.redis.database_index": 0,
                        }
                    )
                    name = command
                with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attrs):
                    pass
    provider.shutdown()
    console.write_text(pretty.getvalue())
    lines.write_text(flat.getvalue())
    _write_otlp(memory.get_finished_spans(), lines.with_suffix(".otlp.json"))


def _write_otlp(spans, path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same spans as the OTLP exporter encodes them, in protobuf's JSON mapping."""
    try:
        from google.protobuf.json_format import MessageToJson
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    except ImportError:
        return
    path.write_text(MessageToJson(encode_spans(spans)))


@pytest.fixture(scope="module", params=["old", "new"])
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp(f"otel-{request.param}")
    console, lines = folder / "console.txt", folder / "spans.jsonl"
    _write_shop(request.param, console, lines)
    return console, lines


def test_sdk_console_and_lines_detected(shop: tuple[Path, Path]) -> None:
    for path in shop:
        assert detect(path).format == "otel_sdk_json"


def test_sdk_frames(shop: tuple[Path, Path]) -> None:
    console, lines = shop
    n_spans = sum(1 + len(calls) for *_, calls in SHOP)
    a = get_loader("otel_sdk_json").load(console)
    b = get_loader("otel_sdk_json").load(lines)
    # the console run has the application's 3 print lines between the objects, skipped
    assert a.report.parsed == b.report.parsed == n_spans
    assert a.report.skipped == {"not JSON": 3}
    assert b.report.skipped_total == 0
    for res in (a, b):
        req = res.frames["requests"]
        assert list(req["endpoint"]) == [r for r, *_ in SHOP]
        assert list(req["method"]) == [m for _, m, _, _ in SHOP]
        assert list(req["status"]) == [s for *_, s, _ in SHOP]
        assert list(req["db_calls"]) == [3, 1, 0]
        assert (req["request_id"] == req["trace_id"]).all()
        assert req["trace_id"].str.fullmatch(r"[0-9a-f]{32}").all()
        assert (req["duration_ms"] > 0).all() and (req["service"] == "shop").all()
        q = res.frames["query_events"]
        assert len(q) == 4 and q["fingerprint"].notna().all()
        assert set(q["endpoint"]) == {"catalogue/<slug:category>/", "basket/add/"}
        c = res.frames["cache_events"]
        # PING is no operation of Django's cache: four cache events, not five
        assert list(c["op"]) == ["get", "set", "get", "delete"]
        assert list(c["key"]) == [
            "catalogue:shoes:page:1",
            "catalogue:shoes:page:1",
            "session:9f1c2e",
            "basket:5:total",
        ]
        assert list(c["key_prefix"])[2] == "session:{n}f{n}c{n}e"
        assert (c["backend"] == "redis").all()
        assert c.loc[1, "ttl_s"] == 300.0
        assert c["hit"].isna().all()  # OpenTelemetry's Redis spans do not say
        assert any("2 of 2 cache read span(s) do not say" in w for w in res.report.warnings)
        assert (c["source_format"] == "otel_sdk_json").all()
        assert list(c["endpoint"]) == ["catalogue/<slug:category>/"] * 2 + ["basket/add/"] * 2
        assert set(c["request_id"]) <= set(req["request_id"])
        # cache time per request; hits unknown (reads do not say) rather than 0
        assert (req["cache_ms"].iloc[:2] > 0).all() and req["cache_ms"].iloc[2] == 0
        assert req["cache_hits"].iloc[:2].isna().all() and req["cache_misses"].iloc[:2].isna().all()
        assert (req["cache_hits"].iloc[2], req["cache_misses"].iloc[2]) == (0, 0)  # no reads
    cols = ["request_id", "endpoint", "db_calls", "duration_ms"]
    pd.testing.assert_frame_equal(a.frames["requests"][cols], b.frames["requests"][cols])


def test_sdk_and_otlp_exports_agree(shop: tuple[Path, Path]) -> None:
    """The SDK's JSON and its OTLP encoding of the same spans give the same three frames."""
    _, lines = shop
    otlp = lines.with_suffix(".otlp.json")
    if not otlp.exists():
        pytest.skip("opentelemetry-exporter-otlp-proto-common (dev extra) is not installed")
    assert detect(otlp).format == "otlp_json"
    a = get_loader("otel_sdk_json").load(lines)
    b = get_loader("otlp_json").load(otlp)
    keys = {
        "requests": [
            "request_id",
            "trace_id",
            "endpoint",
            "method",
            "status",
            "db_calls",
            "cache_ms",
        ],
        "query_events": ["request_id", "sql", "fingerprint_id", "database"],
        "cache_events": ["request_id", "op", "key", "ttl_s", "backend", "endpoint"],
    }
    for frame, cols in keys.items():
        left = a.frames[frame][cols].sort_values(cols[:2]).reset_index(drop=True)
        right = b.frames[frame][cols].sort_values(cols[:2]).reset_index(drop=True)
        # to_json writes microseconds, OTLP nanoseconds: times agree to the microsecond
        pd.testing.assert_frame_equal(left, right, check_exact=False, atol=0.002)


def test_sdk_file_shapes_agree(tmp_path: Path, shop: tuple[Path, Path]) -> None:
    """The same spans as one JSON array (Monocle's file exporter) give the same requests."""
    _, lines = shop
    objs = [json.loads(x) for x in lines.read_text().splitlines()]
    array = tmp_path / "spans.json"
    array.write_text("[" + "\n,".join(json.dumps(o, indent=4) for o in objs) + "]")
    a = get_loader("otel_sdk_json").load(array)
    b = get_loader("otel_sdk_json").load(lines)
    assert a.report.parsed == len(objs) and a.report.skipped_total == 0
    assert list(a.frames["requests"]["request_id"]) == list(b.frames["requests"]["request_id"])


def test_sdk_malformed_input(tmp_path: Path, shop: tuple[Path, Path]) -> None:
    _, lines = shop
    first = lines.read_text().splitlines()[0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        "\n".join(
            [
                first,
                first[: len(first) // 2],  # cut mid-object
                "[" * 100_000,  # deeply nested
                '{"context": {"trace_id": "0xzz", "span_id": "0x1"}, "name": "x"}',
                '{"context": {"trace_id": "0x' + "0" * 32 + '", "span_id": "0x1"}}',
                '{"name": "no context"}',
                first,  # the same span again
            ]
        )
    )
    res = get_loader("otel_sdk_json").load(bad)
    rep = res.report
    rep.check()
    assert rep.parsed == 1
    assert rep.skipped["invalid trace id"] == 2
    assert rep.skipped["not an OpenTelemetry span"] == 1
    assert rep.skipped["duplicate span"] == 1
    assert rep.skipped["invalid JSON"] >= 2
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("hello\nworld\n")
    with pytest.raises(NothingParsedError):
        get_loader("otel_sdk_json").load(garbage)


# -- peer samples ---------------------------------------------------------------------------

MONOCLE = [
    # copy, peer path, objects read, distinct spans, requests, errors
    ("monocle/trace1.json", "monocle/test_tools/tests/unit/traces/trace1.json", 14, 14, 1, 0),
    (
        "monocle/test_azure_openai_finish_reason_integratio.json",
        "monocle/apptrace/tests/integration/test_azure_openai_finish_reason_integratio.json",
        8,
        4,
        4,
        1,
    ),
]


@pytest.mark.parametrize(("copy", "peer", "read", "spans", "n_requests", "errors"), MONOCLE)
def test_monocle_sdk_dumps(
    peer_data: Path, copy: str, peer: str, read: int, spans: int, n_requests: int, errors: int
) -> None:
    for path in (TRACES / copy, peer_data / peer):
        assert detect(path).format == "otel_sdk_json"
        res = get_loader("otel_sdk_json").load(path)
        assert res.report.read == read and res.report.parsed == spans
        assert res.report.skipped_total == read - spans
        req = res.frames["requests"]
        assert len(req) == n_requests
        assert int(req["error"].sum()) == errors


def test_monocle_error_spans(peer_data: Path) -> None:
    # 2 of the 8 objects have status ERROR: the same span twice, one request
    path = peer_data / MONOCLE[1][1]
    assert path.read_text().count('"status_code": "ERROR"') == 2
    req = get_loader("otel_sdk_json").load(path).frames["requests"]
    assert req["trace_id"].nunique() == 4


ZIPKIN = [
    # file, spans, requests, services, errors (spans with an error tag)
    ("yelp.json", 16, 1, 6, 0),
    ("messaging.json", 4, 1, 2, 0),
    ("messaging-kafka.json", 28, 1, None, 3),
    ("skew.json", 4, 1, None, 0),
]


@pytest.mark.parametrize(("name", "spans", "n_requests", "services", "errors"), ZIPKIN)
def test_zipkin_samples(
    peer_data: Path, name: str, spans: int, n_requests: int, services: int | None, errors: int
) -> None:
    for path in (
        TRACES / "zipkin" / name,
        peer_data / "zipkin" / "zipkin-lens" / "testdata" / name,
    ):
        assert detect(path).format == "zipkin_json"
        res = get_loader("zipkin_json").load(path)
        assert res.report.read == res.report.parsed == spans
        req = res.frames["requests"]
        assert len(req) == n_requests and int(req["spans"].sum()) == spans
        assert req["request_id"].str.fullmatch(r"[0-9a-f]{16}|[0-9a-f]{32}").all()


def test_zipkin_semantics(tmp_path: Path) -> None:
    """A Brave-style trace: HTTP server span, SQL and Redis client spans, µs times."""
    spans = [
        {
            "traceId": "463ac35c9f6413ad48485a3953bb6124",
            "id": "a2fb4a1d1a96d312",
            "kind": "SERVER",
            "name": "get /books",
            "timestamp": 1700000000000000,
            "duration": 25000,
            "localEndpoint": {"serviceName": "shop"},
            "tags": {
                "http.method": "GET",
                "http.path": "/books/7",
                "http.route": "/books/{id}",
                "http.status_code": "500",
                "error": "",
            },
        },
        {
            "traceId": "463ac35c9f6413ad48485a3953bb6124",
            "parentId": "a2fb4a1d1a96d312",
            "id": "0f2e1d1a96d31200",
            "kind": "CLIENT",
            "name": "query",
            "timestamp": 1700000000001000,
            "duration": 4000,
            "localEndpoint": {"serviceName": "shop"},
            "tags": {"sql.query": "SELECT * FROM books WHERE id = 7", "db.system": "postgresql"},
        },
        {
            "traceId": "463ac35c9f6413ad48485a3953bb6124",
            "parentId": "a2fb4a1d1a96d312",
            "id": "0f2e1d1a96d31201",
            "kind": "CLIENT",
            "name": "get",
            "timestamp": 1700000000006000,
            "duration": 500,
            "localEndpoint": {"serviceName": "shop"},
            "tags": {"db.system": "memcached", "db.statement": "get books:7 books:8"},
        },
    ]
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(spans))
    res = get_loader("zipkin_json").load(path)
    req = res.frames["requests"].iloc[0]
    assert req["endpoint"] == "/books/{id}" and req["status"] == 500 and bool(req["error"])
    assert req["duration_ms"] == 25.0 and req["db_ms"] == 4.0 and req["cache_ms"] == 0.5
    q = res.frames["query_events"]
    assert q["sql"].tolist() == ["SELECT * FROM books WHERE id = 7"]
    c = res.frames["cache_events"].iloc[0]
    assert c["op"] == "get_many" and c["key_count"] == 2 and c["backend"] == "memcached"


# -- cache spans in every trace format --------------------------------------------------------


def test_datadog_redis_cache_events(peer_data: Path) -> None:
    snap = peer_data / "dd-trace-py" / "tests" / "snapshots"
    basics = get_loader("datadog_json").load(
        snap / "tests.contrib.redis.test_redis.test_basics.json"
    )
    c = basics.frames["cache_events"]
    assert c[["op", "key"]].values.tolist() == [["get", "cheese"]]
    assert c["hit"].tolist() == [False]  # db.row_count 0: a miss
    assert basics.frames["requests"]["cache_misses"].tolist() == [1]
    dec = get_loader("datadog_json").load(
        snap / "tests.contrib.redis.test_redis_asyncio.test_decoding_non_utf8_args.json"
    )
    c = dec.frames["cache_events"]
    assert c["op"].tolist() == ["set", "get"] and c["hit"].tolist()[1] is True
    err = get_loader("datadog_json").load(
        snap / "tests.contrib.redis.test_redis_asyncio.test_connection_error.json"
    )
    c = err.frames["cache_events"]
    # a failed call is neither a hit nor a miss, and not a read that fails to say
    assert c["hit"].isna().all() and c["error"].notna().all()
    assert not any("do not say" in w for w in err.report.warnings)
    assert err.frames["requests"]["cache_misses"].tolist() == [0]


def test_datadog_django_cache_spans(tmp_path: Path) -> None:
    """dd-trace's ``django.cache`` spans around the Redis commands they issue: counted once."""
    tid = 11
    spans = [
        {
            "trace_id": tid,
            "span_id": 1,
            "parent_id": 0,
            "name": "django.request",
            "resource": "GET shop.views.product",
            "service": "shop",
            "type": "web",
            "error": 0,
            "start": 1700000000000000000,
            "duration": 30_000_000,
            "meta": {
                "http.route": "product/<int:pk>/",
                "http.method": "GET",
                "http.status_code": "200",
            },
            "metrics": {},
        },
        {
            "trace_id": tid,
            "span_id": 2,
            "parent_id": 1,
            "name": "django.cache",
            "resource": "django.core.cache.backends.redis.RedisCache.get_many",
            "service": "shop",
            "type": "cache",
            "error": 0,
            "start": 1700000000001000000,
            "duration": 2_000_000,
            "meta": {
                "django.cache.backend": "django.core.cache.backends.redis.RedisCache",
                "django.cache.key": "product:1 product:2 product:3",
            },
            "metrics": {"db.row_count": 2.0},
        },
        {
            "trace_id": tid,
            "span_id": 3,
            "parent_id": 2,
            "name": "redis.command",
            "resource": "MGET",
            "service": "redis",
            "type": "redis",
            "error": 0,
            "start": 1700000000001100000,
            "duration": 1_500_000,
            "meta": {
                "db.system": "redis",
                "redis.raw_command": "MGET :1:product:1 :1:product:2 :1:product:3",
            },
            "metrics": {},
        },
        {
            "trace_id": tid,
            "span_id": 4,
            "parent_id": 1,
            "name": "django.cache",
            "resource": "django.core.cache.backends.redis.RedisCache.get",
            "service": "shop",
            "type": "cache",
            "error": 0,
            "start": 1700000000004000000,
            "duration": 1_000_000,
            "meta": {
                "django.cache.backend": "django.core.cache.backends.redis.RedisCache",
                "django.cache.key": "views.decorators.cache.cache_page.abc",
            },
            "metrics": {"db.row_count": 1.0},
        },
    ]
    path = tmp_path / "dd.json"
    path.write_text(json.dumps([spans]))
    res = get_loader("datadog_json").load(path)
    c = res.frames["cache_events"]
    assert c["op"].tolist() == ["get_many", "get"]
    assert c["key_count"].tolist() == [3, 1] and c["hit"].tolist()[1] is True
    assert c["backend"].tolist() == ["redis", "redis"]
    req = res.frames["requests"].iloc[0]
    assert (req["cache_hits"], req["cache_misses"], req["cache_ms"]) == (3, 1, 3.0)
    assert any("nested in another cache span" in w for w in res.report.warnings)


def test_datadog_memcached_spans(tmp_path: Path) -> None:
    spans = [
        {"trace_id": 5, "span_id": 1, "parent_id": 0, "name": "django.request", "resource": "GET shop.views.home",
         "service": "shop", "type": "web", "error": 0, "start": 1700000000000000000, "duration": 9_000_000,
         "meta": {"http.route": "", "http.method": "GET", "http.url": "http://shop/home/"}, "metrics": {}},
        {"trace_id": 5, "span_id": 2, "parent_id": 1, "name": "memcached.cmd", "resource": "get_many",
         "service": "memcached", "type": "cache", "error": 0, "start": 1700000000001000000, "duration": 500_000,
         "meta": {"db.system": "memcached", "memcached.query": "get_many :1:home:a :1:home:b"},
         "metrics": {"db.row_count": 1.0}},
        {"trace_id": 5, "span_id": 3, "parent_id": 1, "name": "memcached.cmd", "resource": "set",
         "service": "memcached", "type": "cache", "error": 0, "start": 1700000000002000000, "duration": 300_000,
         "meta": {"db.system": "memcached", "memcached.query": "set :1:home:b"}, "metrics": {}},
    ]  # fmt: skip
    path = tmp_path / "dd.json"
    path.write_text(json.dumps([spans]))
    res = get_loader("datadog_json").load(path)
    c = res.frames["cache_events"]
    assert c[["op", "key_count", "backend"]].values.tolist() == [
        ["get_many", 2, "memcached"],
        ["set", 1, "memcached"],
    ]
    assert pd.isna(c["key"].iloc[0]) and c["key"].iloc[1] == ":1:home:b"
    req = res.frames["requests"].iloc[0]
    assert (req["endpoint"], req["cache_hits"], req["cache_misses"]) == ("/home/", 1, 1)
    assert req["cache_ms"] == pytest.approx(0.8)


def test_pipeline_spans(tmp_path: Path) -> None:
    """A Redis pipeline span (commands one per line) gives one event per cache operation."""
    from auditkit.loaders.otlp import cache_fields

    fields = cache_fields(
        {"db.system": "redis", "db.statement": "SET a 1 EX 60\nGET b\nPING\nDEL c d",
         "db.operation.name": "SET GET PING DEL"},
        "SET GET PING DEL",
    )  # fmt: skip
    assert (fields["cache_op"], fields["cache_key"], fields["cache_ttl_s"]) == ("set", "a", 60.0)
    assert fields["cache_more"] == (("get", "b", 1, None), ("delete_many", None, 2, None))
    spans = [
        Span("a" * 32, "1" * 16, None, "GET /", 0, 9_000_000, 1, route="/"),
        Span("a" * 32, "2" * 16, "1" * 16, "SET GET", 1_000_000, 2_000_000, 2, **fields),
    ]
    out = trace_frames(spans, source_format="t", source_file="f")
    c = out.cache_events
    assert c["op"].tolist() == ["set", "get", "delete_many"]
    assert c["duration_ms"].tolist()[0] == 2.0 and c["duration_ms"].iloc[1:].isna().all()
    assert out.requests["cache_ms"].tolist() == [2.0]


def test_jaeger_and_otlp_cache_spans() -> None:
    jaeger = get_loader("jaeger_json").load(TRACES / "synthetic" / "jaeger_ui_export_sql.json")
    assert "cache_events" in jaeger.frames and len(jaeger.frames["cache_events"]) >= 1
    assert set(jaeger.frames["cache_events"]["op"]) <= set(CACHE_OPS)


def test_cache_op_vocabulary() -> None:
    cases = {
        ("GET", ("k",)): ("get", "k", 1),
        ("SET", ("k", "v", "PX", "500")): ("set", "k", 1),
        ("SET", ("k", "v", "NX")): ("add", "k", 1),
        ("SETNX", ("k", "v")): ("add", "k", 1),
        ("MGET", ("a", "b", "c")): ("get_many", None, 3),
        ("MSET", ("a", "1", "b", "2")): ("set_many", None, 2),
        ("DEL", ("a",)): ("delete", "a", 1),
        ("DEL", ("a", "b")): ("delete_many", None, 2),
        ("INCRBY", ("n", "2")): ("incr", "n", 1),
        ("DECRBY", ("n", "2")): ("decr", "n", 1),
        ("EXPIRE", ("k", "60")): ("touch", "k", 1),
        ("PERSIST", ("k",)): ("touch", "k", 1),
        ("EXISTS", ("k",)): ("has_key", "k", 1),
        ("FLUSHDB", ()): ("clear", None, 0),
        ("get_multi", ("a", "b")): ("get_many", None, 2),
        ("flush_all", ()): ("clear", None, 0),
        ("cache.get", ()): ("get", None, 0),
        ("HGET", ("h", "f")): (None, None, 0),
        ("PING", ()): (None, None, 0),
    }
    for (cmd, args), expected in cases.items():
        assert cache_op(cmd, list(args)) == expected, cmd
    assert {
        cache_op(c)[0]
        for c in (
            "get",
            "set",
            "add",
            "delete",
            "get_many",
            "set_many",
            "delete_many",
            "incr",
            "decr",
            "touch",
            "has_key",
            "clear",
        )
    } == set(CACHE_OPS)


def test_no_cache_spans_leaves_cache_columns_unknown() -> None:
    spans = [Span("a" * 32, "b" * 16, None, "GET /", 1, 5_000_000, 1, route="/")]
    out = trace_frames(spans, source_format="t", source_file="f")
    assert out.requests["cache_ms"].isna().all() and out.requests["cache_hits"].isna().all()
    assert (
        len(out.cache_events) == 0
        and list(out.cache_events.columns)[: len(CACHE_EVENTS.names)] == CACHE_EVENTS.names
    )
    assert list(out.requests.columns)[: len(REQUESTS.names)] == REQUESTS.names
