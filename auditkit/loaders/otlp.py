"""OpenTelemetry traces as OTLP JSON: one export document, or JSON Lines of them.

An ``ExportTraceServiceRequest`` in JSON nests spans as ``resourceSpans[].scopeSpans[].spans[]``
(older SDKs, Grafana Tempo and Jaeger call the levels ``batches`` and
``instrumentationLibrarySpans``). Two JSON mappings exist in the wild and both are read:

* OTLP/JSON proper (the OpenTelemetry specification): ids as hex strings, ``kind`` as an
  integer;
* protobuf-canonical JSON (``MessageToJson``, the collector's debug output, some converters):
  ids as **base64** of their 16/8 bytes, ``kind`` as an enum name (``SPAN_KIND_SERVER``).

Ids are normalised to lowercase hex; a trace id must be 32 hex digits or base64 of 16 bytes,
a span id 16 hex digits or base64 of 8 bytes — anything else skips the span with the reason
(never a crash). Timestamps are int64 nanoseconds, as strings or numbers. An unknown span
kind is read as ``unspecified`` and reported as a warning: the kind decides nothing here.

Attribute names of both generations of the semantic conventions are read: ``db.statement`` /
``db.query.text``, ``db.name`` / ``db.namespace``, ``http.method`` / ``http.request.method``,
``http.status_code`` / ``http.response.status_code``, ``http.target`` / ``http.url`` /
``url.path`` / ``url.full``, and ``http.route``. How spans become requests and statements is
:func:`auditkit.requests.frames_from_spans`: one request per root span (no parent, or a
parent outside the file), one statement per span carrying SQL, one cache event per Redis,
memcached or Django cache span (:func:`cache_fields`).

The collector's file exporter writes JSON Lines: one document per line; a line that is not
valid JSON is skipped (a file cut mid-write keeps every whole line). A *record* in the parse
report is one span, or one line that could not be read as a document. ``source_line`` is the
line of a JSON Lines document, or the span's ordinal in a single JSON document.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from auditkit.lazy_re import compile_later
from auditkit.loaders import _json
from auditkit.loaders.base import Loader, nothing_parsed
from auditkit.loaders.memcached import key_family
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text
from auditkit.requests import (
    Span,
    cache_backend_of,
    cache_command,
    cache_op,
    cache_ttl,
    path_of,
    trace_frames,
)

__all__ = [
    "CACHE_SYSTEMS",
    "NON_SQL_SYSTEMS",
    "OtlpJsonLoader",
    "attributes",
    "excerpt",
    "hex_id",
    "mapping",
    "read_json_documents",
    "cache_fields",
    "semconv_fields",
    "span_fields",
    "spans_result",
]

_HEX = compile_later(r"[0-9a-fA-F]+")
_B64 = compile_later(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")

_KINDS_BY_NUMBER = ("unspecified", "internal", "server", "client", "producer", "consumer")
_KINDS = {k: k for k in _KINDS_BY_NUMBER}

#: db.system values whose "statements" are not SQL (cache and document stores)
NON_SQL_SYSTEMS = frozenset(
    {
        "redis",
        "memcached",
        "mongodb",
        "elasticsearch",
        "opensearch",
        "dynamodb",
        "couchbase",
        "couchdb",
        "cosmosdb",
        "hbase",
        "neo4j",
        "geode",
        "coherence",
        "aerospike",
        "cassandra",
        "etcd",
        "valkey",
    }
)


def hex_id(value: object, nbytes: int) -> str:
    """An OTLP id as lowercase hex, from hex or base64; ``ValueError`` saying why not.

    >>> hex_id("5B8EFFF798038103D269B633813FC60C", 16)
    '5b8efff798038103d269b633813fc60c'
    >>> hex_id("3lYkOenBuCM=", 8)
    'de562439e9c1b823'
    """
    if not isinstance(value, str) or not value:
        raise ValueError("missing")
    if len(value) == 2 * nbytes and _HEX.fullmatch(value):
        out = value.lower()
    else:
        raw = None
        if len(value) % 4 == 0 and _B64.fullmatch(value):
            try:
                raw = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
            except (binascii.Error, ValueError):
                raw = None
        if raw is None or len(raw) != nbytes:
            raise ValueError(f"neither {2 * nbytes} hex digits nor base64 of {nbytes} bytes")
        out = raw.hex()
    if set(out) == {"0"}:
        raise ValueError("all zeros (an invalid id)")
    return out


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one (malformed input never raises)."""
    if type(value) is dict:  # the common case, without the slower ABC check
        return value
    return value if isinstance(value, Mapping) else {}


def _any_value(v: Any) -> Any:
    """The Python value of an OTLP ``AnyValue`` (``{"stringValue": …}``, ``{"intValue": "5"}``…)."""
    if not isinstance(v, Mapping):
        return v
    for key in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return v["intValue"]
    if "arrayValue" in v:
        return [_any_value(x) for x in (v["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in v:
        return attributes((v["kvlistValue"] or {}).get("values"))
    return None


def attributes(items: Any) -> dict[str, Any]:
    """``[{"key": k, "value": AnyValue}, …]`` → ``{k: value}``; malformed entries are ignored."""
    if not isinstance(items, list):
        return {}
    return {
        a["key"]: _any_value(a.get("value")) for a in items if isinstance(a, Mapping) and "key" in a
    }


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, list):  # http.request.header.* values are arrays
            value = value[0] if value else None
        if value is not None and value != "":
            return value
    return None


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def semconv_fields(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """HTTP and database fields of a :class:`~auditkit.requests.Span` from attributes or tags.

    Reads the OpenTelemetry semantic conventions (old and current names) and the OpenTracing
    tags Jaeger uses (``db.instance``, ``db.type``). Statements of non-SQL stores (Redis,
    MongoDB…, see :data:`NON_SQL_SYSTEMS`) are not SQL and are left out.
    """
    system = _str(_first(attrs, "db.system.name", "db.system", "db.type"))
    sql = _str(_first(attrs, "db.query.text", "db.statement", "sql.query"))
    if system and system.lower() in NON_SQL_SYSTEMS:
        sql = None
    path = path_of(_str(_first(attrs, "url.path", "http.target"))) or path_of(
        _str(_first(attrs, "url.full", "http.url"))
    )
    return {
        "route": _str(_first(attrs, "http.route")),
        "path": path,
        "method": _str(_first(attrs, "http.request.method", "http.method")),
        "status": _int(_first(attrs, "http.response.status_code", "http.status_code")),
        "request_id": _str(
            _first(
                attrs,
                "http.request.header.x-request-id",
                "http.request.header.x_request_id",
                "guid:x-request-id",
                "http.request_id",
                "request_id",
            )
        ),
        "sql": sql.strip() if sql and sql.strip() else None,
        "database": _str(_first(attrs, "db.namespace", "db.name", "db.instance")),
        "db_user": _str(_first(attrs, "db.user")),
        "db_system": system,
        "rows": _int(
            _first(attrs, "db.response.returned_rows", "db.row_count", "db.rows_affected")
        ),
    }


def span_fields(attrs: Mapping[str, Any], *names: str | None) -> dict[str, Any]:
    """:func:`semconv_fields` and :func:`cache_fields` together: every field a span's
    attributes (or tags) give a :class:`~auditkit.requests.Span`; ``names`` are the span's
    resource and name, which name the operation of a Django cache span."""
    return {**semconv_fields(attrs), **cache_fields(attrs, *names)}


#: db.system values of caches whose commands become ``cache_events``
CACHE_SYSTEMS = frozenset({"redis", "valkey", "memcached"})

#: attributes that mark a span of a cache API (Django cache spans of APM agents, Sentry)
_CACHE_MARKS = ("django.cache.key", "django.cache.backend", "cache.key", "cache.hit")


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in (
        "true",
        "false",
        "1",
        "0",
        "hit",
        "miss",
    ):
        return value.strip().lower() in ("true", "1", "hit")
    return None


def cache_fields(attrs: Mapping[str, Any], *names: str | None) -> dict[str, Any]:
    """The cache fields of a :class:`~auditkit.requests.Span` (``cache_op``, ``cache_key``…).

    Two kinds of span are cache operations:

    * a client span of a cache server (``db.system``/``db.system.name`` redis, valkey or
      memcached): its command is ``db.operation.name``/``db.operation``, else the first word of
      its statement (``db.query.text``/``db.statement``, Datadog's ``redis.raw_command`` and
      ``memcached.query``), else
      the span name; keys and a Redis TTL come from the statement's arguments;
    * a span around Django's cache API (Datadog's ``django.cache`` spans with
      ``django.cache.key``/``django.cache.backend``, Sentry-style ``cache.get`` spans with
      ``cache.key``/``cache.hit``/``cache.item_size``): its operation is the last dotted part
      of ``names`` (the span's resource or name: ``…RedisCache.get``, ``cache.get``).

    Commands Django's cache never sends (``HGET``, ``PING``…) give no cache fields.
    """
    system = _str(_first(attrs, "db.system.name", "db.system", "db.type"))
    system = system.lower() if system else None
    marked = any(attrs.get(k) not in (None, "") for k in _CACHE_MARKS)
    named = [n for n in names if n]
    if not marked and any(n.lower().startswith(("cache.", "django.cache")) for n in named):
        marked = True
    if system not in CACHE_SYSTEMS and not marked:
        return {}
    statement = _str(
        _first(
            attrs,
            "db.query.text",
            "db.statement",
            "redis.raw_command",  # Datadog
            "memcached.query",  # Datadog pymemcache / pylibmc
            "memcached.command",
        )
    )
    more: list[tuple[str, str | None, int, float | None]] = []
    if statement and "\n" in statement.strip() and system in CACHE_SYSTEMS and not marked:
        # a pipeline (OpenTelemetry and Datadog join its commands with newlines)
        for part in statement.strip().split("\n")[1:]:
            part_cmd, part_args = cache_command(part)
            part_op, part_key, part_n = cache_op(part_cmd, part_args)
            if part_op is not None:
                more.append((part_op, part_key, part_n, cache_ttl(part_cmd, part_args)))
        statement = statement.strip().split("\n", 1)[0]
    command, args = cache_command(statement)
    if system in CACHE_SYSTEMS and not marked:
        declared = _str(_first(attrs, "db.operation.name", "db.operation"))
        single = declared is not None and not more and " " not in declared.strip()
        if declared is not None and single and (not command or declared.lower() != command.lower()):
            command = declared
            args = [] if not statement else args
        if not command and named:
            command = named[-1]
        op, key, count = cache_op(command, args)
        ttl = cache_ttl(command, args)
        backend = cache_backend_of(system)
    else:
        op = None
        for name in named:
            if name.lower() in ("django.cache", "cache"):
                continue
            op = cache_op(name)[0]
            if op:
                break
        raw_key = attrs.get("django.cache.key", attrs.get("cache.key"))
        if isinstance(raw_key, list):
            keys = raw_key
        elif raw_key in (None, ""):
            keys = []
        elif op and op.endswith("_many"):  # Datadog joins the keys of one call with spaces
            keys = str(raw_key).split()
        else:
            keys = [raw_key]
        key = str(keys[0]) if len(keys) == 1 else None
        count = len(keys)
        if op in ("get", "delete") and count > 1:
            op = "get_many" if op == "get" else "delete_many"
        ttl = None
        backend = cache_backend_of(_str(attrs.get("django.cache.backend")) or system)
    if op is None:
        if not more:
            return {}
        op, key, count, ttl = more.pop(0)
    return {
        "cache_more": tuple(more),
        "cache_op": op,
        "cache_key": key,
        "cache_hit": _bool(attrs.get("cache.hit")),
        "cache_backend": backend,
        "cache_keys": count or None,
        "cache_value_bytes": _int(attrs.get("cache.item_size")),
        "cache_ttl_s": ttl,
    }


def whole_number(value: Any) -> int | None:
    """An integer given as a number or a string (exactly when it is written as one); None when
    absent, not a number, or out of every range (``1e999``)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            return None


def _nanos(value: Any) -> int | None:
    """int64 nanoseconds given as a string or a number; None when absent or zero."""
    return whole_number(value) or None


def read_json_documents(
    path: str | Path, report: ParseReport
) -> tuple[list[tuple[int, Any]], bool]:
    """The documents of a JSON file or a JSON Lines file: ``([(line, document)…], is_jsonl)``.

    A whole-file parse is tried first; when it stops at "extra data" after a first complete
    document the file is JSON Lines, read line by line, and lines that are not valid JSON are
    skipped as records (``invalid JSON line``). A file that is neither is one skipped record
    whose excerpt quotes the parser. Updates ``report.lines``/``bytes`` and warns about
    invalid UTF-8.
    """
    text, bad = read_text(path)
    report.lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    report.bytes = len(text.encode("utf-8", errors="replace"))
    for bad_line in bad:
        report.warn(f"invalid UTF-8 replaced with U+FFFD on line {bad_line}")
    if not text.strip():
        return [], False
    try:
        return [(1, _json.loads(text))], False
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            report.skip(
                exc.lineno, "invalid JSON", f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            )
            return [], False
    docs: list[tuple[int, Any]] = []
    for i, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            docs.append((i, _json.loads(line)))
        except json.JSONDecodeError as exc:
            report.skip(i, "invalid JSON line", f"{exc.msg}: {line}")
    return docs, True


def spans_result(
    loader: Loader, path: str | Path, report: ParseReport, spans: list[Span], started: float
) -> LoadResult:
    """The :class:`LoadResult` of a trace loader: requests and statements from ``spans``."""
    out = trace_frames(spans, source_format=loader.name, source_file=str(path))
    for w in out.warnings:
        report.warn(w)
    frames = {"requests": out.requests, "query_events": out.query_events}
    report.events["requests"] = len(out.requests)
    report.events["query_events"] = len(out.query_events)
    if len(out.cache_events):
        caches = out.cache_events
        keys = caches["key"]
        caches["key_prefix"] = keys.map(key_family, na_action="ignore").astype("string")
        frames["cache_events"] = caches
        report.events["cache_events"] = len(caches)
        reads = caches["op"].isin(["get", "get_many", "has_key"]) & caches["error"].isna()
        unknown = int((reads & caches["hit"].isna()).sum())
        if unknown:
            report.warn(
                f"{unknown} of {int(reads.sum())} cache read span(s) do not say whether they hit "
                "(OpenTelemetry's Redis and memcached instrumentations do not record it): take hit "
                "ratios from the cache server's statistics (Redis INFO, memcached stats)"
            )
    report.elapsed_s = time.perf_counter() - started
    report.check()
    if report.parsed == 0:
        raise nothing_parsed(loader, path, report)
    return LoadResult(loader.name, frames, report, primary="requests")


def excerpt(obj: Any) -> str:
    """A short JSON rendering of a skipped record, for the report."""
    try:
        return json.dumps(obj, ensure_ascii=False, default=str)[:160]
    except (TypeError, ValueError):
        return repr(obj)[:160]


class _Dedup:
    """Drops spans seen before (same trace, span, start and name): repeated exports."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str, int | None, str]] = set()

    def __call__(self, span: Span) -> bool:
        key = (span.trace_id, span.span_id, span.start_ns, span.name)
        if key in self.seen:
            return True
        self.seen.add(key)
        return False


class SpanCollector:
    """The spans of one file as the OpenTelemetry loaders keep them: repeated exports skipped,
    spans without timing and span kinds not known counted, and said in the report at the end."""

    def __init__(self, report: ParseReport) -> None:
        self.report = report
        self.spans: list[Span] = []
        self.unknown_kinds: set[str] = set()
        self.untimed = 0
        self._dedup = _Dedup()

    def add(self, span: Span, at: int, raw: Any) -> None:
        """Keep ``span`` (read from ``raw`` at line or record ``at``) unless seen before."""
        if self._dedup(span):
            self.report.skip(at, "duplicate span", excerpt(raw))
            return
        if span.duration_ns is None:
            self.untimed += 1
        self.report.ok()
        self.spans.append(span)

    def result(self, loader: Loader, path: str | Path, started: float) -> LoadResult:
        """The warnings, then :func:`spans_result` of the spans kept."""
        for kind in sorted(self.unknown_kinds):
            self.report.warn(f"unknown span kind {kind!r} read as unspecified")
        if self.untimed:
            self.report.warn(
                f"{self.untimed} span(s) without valid start/end times kept without timing"
            )
        return spans_result(loader, path, self.report, self.spans, started)


def span_ids(
    report: ParseReport,
    at: int,
    parse: Callable[[Any, bool], str],
    trace: tuple[str, Any],
    span: tuple[str, Any],
    parent: tuple[str, Any],
) -> tuple[str, str, str | None] | None:
    """The trace, span and parent ids of a span, each given as (field name, raw value) and read
    by ``parse(value, is_trace_id)``; None, with the span skipped in the report, when one is
    invalid (a missing parent is a root span)."""
    ids: list[str] = []
    for what, (field, raw) in (("trace id", trace), ("span id", span)):
        try:
            ids.append(parse(raw, what == "trace id"))
        except ValueError as exc:
            report.skip(at, f"invalid {what}", f"{field} {raw!r}: {exc}")
            return None
    field, raw = parent
    parent_id: str | None = None
    if raw not in (None, ""):
        try:
            parent_id = parse(raw, False)
        except ValueError as exc:
            report.skip(at, "invalid parent span id", f"{field} {raw!r}: {exc}")
            return None
    return ids[0], ids[1], parent_id


def otel_span(
    ids: tuple[str, str, str | None],
    *,
    start: int | None,
    end: int | None,
    kind: str | None,
    raw_kind: Any,
    unknown_kinds: set[str],
    name: str,
    attrs: Mapping[str, Any],
    service: str | None,
    error: bool,
    at: int,
) -> Span:
    """One OpenTelemetry span as a :class:`~auditkit.requests.Span`, whichever export it came
    from: no duration unless both times are valid and in order, an unknown kind (recorded in
    ``unknown_kinds``) read as unspecified, the semantic-convention fields of ``attrs``."""
    if kind is None:
        unknown_kinds.add(str(raw_kind))
        kind = "unspecified"
    trace_id, span_id, parent = ids
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent,
        name=name,
        start_ns=start,
        duration_ns=end - start if start is not None and end is not None and end >= start else None,
        line=at,
        service=service,
        kind=kind,
        error=error,
        label=name or None,
        **span_fields(attrs, name),
    )


@register
class OtlpJsonLoader(Loader):
    """OpenTelemetry OTLP JSON traces (hex or base64 ids), single document or JSON Lines."""

    name = "otlp_json"
    frame = "requests"
    description = (
        "OpenTelemetry OTLP JSON traces (ExportTraceServiceRequest, or JSON Lines of them)"
    )
    expected = (
        'a JSON object {"resourceSpans": [{"resource": …, "scopeSpans": [{"spans": [{"traceId", '
        '"spanId", "parentSpanId", "name", "startTimeUnixNano", "endTimeUnixNano", "attributes"}]}]}]}'
        ", or one such object per line"
    )

    def sniff(self, head: str, path: Path) -> float:
        start = head.lstrip()[:1]
        if start not in ("{", "["):
            return 0.0
        if '"resourceSpans"' in head:
            return 0.95
        if '"batches"' in head and (
            '"scopeSpans"' in head or '"instrumentationLibrarySpans"' in head
        ):
            return 0.9
        return 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        started = time.perf_counter()
        report = ParseReport(str(path), self.name)
        kept = SpanCollector(report)
        ordinal = 0
        documents, jsonl = read_json_documents(path, report)
        for line, doc in documents:
            docs = doc if isinstance(doc, list) else [doc]
            for d in docs:
                resource_spans = (
                    d.get("resourceSpans", d.get("batches")) if isinstance(d, dict) else None
                )
                if not isinstance(resource_spans, list):
                    report.skip(line, "not an OTLP trace document", excerpt(d))
                    continue
                for sp, service in _iter_spans(resource_spans):
                    ordinal += 1
                    at = line if jsonl else ordinal
                    span = self._span(sp, service, at, report, kept.unknown_kinds)
                    if span is not None:
                        kept.add(span, at, sp)
        return kept.result(self, path, started)

    @staticmethod
    def _span(
        sp: Any, service: str | None, at: int, report: ParseReport, unknown_kinds: set[str]
    ) -> Span | None:
        if not isinstance(sp, Mapping):
            report.skip(at, "span is not an object", excerpt(sp))
            return None
        ids = span_ids(
            report,
            at,
            lambda v, is_trace: hex_id(v, 16 if is_trace else 8),
            ("traceId", sp.get("traceId")),
            ("spanId", sp.get("spanId")),
            ("parentSpanId", sp.get("parentSpanId")),
        )
        if ids is None:
            return None
        code = mapping(sp.get("status")).get("code")
        return otel_span(
            ids,
            start=_nanos(sp.get("startTimeUnixNano")),
            end=_nanos(sp.get("endTimeUnixNano")),
            kind=_kind(sp.get("kind")),
            raw_kind=sp.get("kind"),
            unknown_kinds=unknown_kinds,
            name=str(sp.get("name") or ""),
            attrs=attributes(sp.get("attributes")),
            service=service,
            error=code in (2, "2", "STATUS_CODE_ERROR"),
            at=at,
        )


def _iter_spans(resource_spans: list[Any]) -> Iterator[tuple[Any, str | None]]:
    """Every span of a document with its resource's ``service.name``."""
    for rs in resource_spans:
        if not isinstance(rs, Mapping):
            continue
        resource = mapping(rs.get("resource"))
        service = _str(attributes(resource.get("attributes")).get("service.name"))
        scopes = rs.get("scopeSpans", rs.get("instrumentationLibrarySpans")) or []
        for ss in scopes if isinstance(scopes, list) else []:
            if not isinstance(ss, Mapping):
                continue
            spans = ss.get("spans") or []
            for sp in spans if isinstance(spans, list) else [spans]:
                yield sp, service


def _kind(value: Any) -> str | None:
    """Span kind from an integer, an enum name or a plain word; None when unknown."""
    if value is None or value == "":
        return "unspecified"
    if isinstance(value, int) and not isinstance(value, bool):
        return _KINDS_BY_NUMBER[value] if 0 <= value < len(_KINDS_BY_NUMBER) else None
    text = str(value).strip().lower()
    if text.isdigit():
        return _kind(int(text))
    return _KINDS.get(text.removeprefix("span_kind_"))
