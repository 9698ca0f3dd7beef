"""Datadog APM traces as JSON: dd-trace payloads and the snapshot files of dd-trace's tests.

The tracer sends (and dd-trace's snapshot tests store) a list of traces, each a list of
spans::

    [[{"trace_id": 0, "span_id": 1, "parent_id": 0, "name": "django.request",
       "resource": "GET ^books/$", "service": "django", "type": "web", "error": 0,
       "start": 1777483950448835886, "duration": 13373958,
       "meta": {"http.route": "^books/$", "http.method": "GET", "http.status_code": "200", …},
       "metrics": {"process_id": 42212.0, …}}, …], …]

``start`` and ``duration`` are **nanoseconds**. Ids are unsigned 64-bit integers (decimal
strings are accepted); the upper half of a 128-bit trace id travels in the ``_dd.p.tid``
meta tag of the trace's first span, so a trace id is written as 32 hex digits when that tag
is present and 16 otherwise — the same lowercase hex OpenTelemetry uses for the trace.
``{"traces": [[…]]}`` and a flat list of spans are read too.

A span is a statement when its ``meta`` has ``sql.query`` or ``db.statement``, or when its
``type`` is ``sql``/``db`` and its ``resource`` (which then holds the SQL) differs from its
name — so ``postgres.connect`` spans are not statements. ``db.name``, ``db.user``,
``db.system``, ``metrics.db.row_count`` and ``metrics.process_id`` fill the statement's
database, user, dialect, rows and pid. A request's endpoint is ``meta.http.route``, else the
path of ``meta.http.url``, else the span's ``resource`` (Datadog's own endpoint name).
Redis and memcached command spans (``redis.raw_command``) and ``django.cache`` spans
(``django.cache.key``, ``db.row_count`` = keys found) become ``cache_events`` through
:func:`~auditkit.loaders.otlp.cache_fields`. A *record* is one span; ``source_line`` is its
ordinal in the file.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from auditkit.loaders.base import Loader
from auditkit.loaders.otlp import (
    NON_SQL_SYSTEMS,
    cache_fields,
    excerpt,
    mapping,
    read_json_documents,
    spans_result,
    whole_number,
)
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.requests import Span, path_of

__all__ = ["DatadogJsonLoader"]

_SQL_TYPES = frozenset({"sql", "db"})


def _uint(value: Any) -> int:
    """A Datadog id: int, or a decimal (or 0x-hex) string. ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an id")
    if isinstance(value, int):
        if value < 0:
            value &= (1 << 64) - 1  # a signed int64 rendering of an unsigned id
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        if text.lower().startswith("0x"):
            return int(text, 16)
    raise ValueError(f"{value!r} is not an id")


def _traces(doc: Any) -> Iterator[list[Any] | Any]:
    """Lists of spans in a document: a list of traces, ``{"traces": …}``, or a flat list."""
    if isinstance(doc, Mapping) and isinstance(doc.get("traces"), list):
        doc = doc["traces"]
    if isinstance(doc, list):
        if doc and all(isinstance(t, Mapping) for t in doc):
            yield doc  # a flat list of spans
        else:
            yield from doc
    else:
        yield doc


@register
class DatadogJsonLoader(Loader):
    """Datadog APM trace JSON (dd-trace payloads and snapshot files)."""

    name = "datadog_json"
    frame = "requests"
    description = "Datadog APM trace JSON (list of traces, each a list of spans; times in ns)"
    expected = (
        '[[{"trace_id", "span_id", "parent_id", "name", "resource", "service", "type", '
        '"start" (ns), "duration" (ns), "meta": {…}, "metrics": {…}, "error"}, …], …]'
    )

    def sniff(self, head: str, path: Path) -> float:
        text = head.lstrip()
        if text[:1] not in ("[", "{"):
            return 0.0
        keys = ('"trace_id"', '"span_id"', '"parent_id"', '"resource"', '"duration"')
        if all(k in head for k in keys) and ('"meta"' in head or '"service"' in head):
            return 0.9
        return 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        started = time.perf_counter()
        report = ParseReport(str(path), self.name)
        documents, _ = read_json_documents(path, report)
        chunks: list[list[tuple[int, Any]]] = []
        ordinal = 0
        for line, doc in documents:
            for trace in _traces(doc):
                if not isinstance(trace, list):
                    report.skip(line, "not a list of spans", excerpt(trace))
                    continue
                chunk = []
                for sp in trace:
                    ordinal += 1
                    chunk.append((ordinal, sp))
                chunks.append(chunk)
        # the upper 64 bits of a trace id (_dd.p.tid) are tagged on one span of the trace
        high: dict[int, str] = {}
        for chunk in chunks:
            for _, sp in chunk:
                if isinstance(sp, Mapping) and isinstance(sp.get("meta"), Mapping):
                    tid = sp["meta"].get("_dd.p.tid")
                    if tid:
                        with contextlib.suppress(ValueError):
                            high.setdefault(_uint(sp.get("trace_id")), str(tid).lower())
        spans: list[Span] = []
        for chunk in chunks:
            for at, sp in chunk:
                span = self._span(sp, at, high, report)
                if span is not None:
                    report.ok()
                    spans.append(span)
        return spans_result(self, path, report, spans, started)

    @staticmethod
    def _span(sp: Any, at: int, high: Mapping[int, str], report: ParseReport) -> Span | None:
        if not isinstance(sp, Mapping):
            report.skip(at, "span is not an object", excerpt(sp))
            return None
        try:
            trace = _uint(sp.get("trace_id"))
            span_id = _uint(sp.get("span_id"))
            parent = _uint(sp.get("parent_id") or 0)
        except ValueError as exc:
            report.skip(at, "invalid id", f"{exc}: {excerpt(sp)}")
            return None
        meta = mapping(sp.get("meta"))
        metrics = mapping(sp.get("metrics"))
        name = str(sp.get("name") or "")
        resource = str(sp.get("resource") or "") or None
        span_type = str(sp.get("type") or "").lower()
        system = meta.get("db.system") or (
            span_type if span_type not in ("", "web", "http") else None
        )
        sql = meta.get("sql.query") or meta.get("db.statement")
        if not sql and span_type in _SQL_TYPES and resource and resource != name:
            sql = resource
        if system and str(system).lower() in NON_SQL_SYSTEMS:
            sql = None
        start = whole_number(sp.get("start"))
        duration = whole_number(sp.get("duration"))
        status = whole_number(meta.get("http.status_code"))
        trace_hex = high.get(trace, "") + f"{trace:016x}"
        return Span(
            trace_id=trace_hex,
            span_id=f"{span_id:016x}",
            parent_id=f"{parent:016x}" if parent else None,
            name=name,
            start_ns=start or None,
            duration_ns=duration if duration is not None and duration >= 0 else None,
            line=at,
            service=str(sp["service"]) if sp.get("service") else None,
            kind=str(meta.get("span.kind") or "unspecified").lower(),
            error=whole_number(sp.get("error")) not in (None, 0),
            label=resource or name or None,
            route=meta.get("http.route") or None,
            path=path_of(meta.get("http.url")),
            method=meta.get("http.method") or None,
            status=status,
            request_id=meta.get("http.request.headers.x-request-id") or None,
            sql=str(sql).strip() if sql and str(sql).strip() else None,
            database=meta.get("db.name") or None,
            db_user=meta.get("db.user") or None,
            db_system=str(system) if system else None,
            rows=whole_number(metrics.get("db.row_count")),
            pid=whole_number(metrics.get("process_id")),
            **cache_fields(meta, resource, name),
        )
