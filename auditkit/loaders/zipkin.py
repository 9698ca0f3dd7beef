"""Zipkin v2 JSON spans: the body of ``POST /api/v2/spans`` and the answers of ``/api/v2/trace``.

Shape (a list of spans, or a list of traces — lists of spans — from ``/api/v2/traces``)::

    [{"traceId": "a03ee8fff1dcd9b9", "parentId": "f5f268651b2a2b34", "id": "7a778764a0d0b594",
      "kind": "SERVER", "name": "get /books", "timestamp": 1571896375310740, "duration": 1490,
      "localEndpoint": {"serviceName": "shop"}, "remoteEndpoint": {"serviceName": "db"},
      "tags": {"http.method": "GET", "http.path": "/books", "sql.query": "SELECT …"},
      "shared": true}, …]

Times are **microseconds** since the epoch; ids are 16 (or 32, for 128-bit trace ids) hex
digits, kept lowercase. ``kind`` is CLIENT, SERVER, PRODUCER or CONSUMER (absent for a local
span). A server span marked ``shared`` reuses its client's id: both stay, and spans below
attach to the first of them (:func:`auditkit.requests.trace_frames`). An ``error`` tag marks an
error even when its value is empty (Zipkin's own rule). Tags are read with Brave's and
OpenTelemetry's names (``http.path``, ``http.route``, ``http.method``, ``http.status_code``,
``sql.query``/``db.statement``, ``db.system``…) through :func:`~auditkit.loaders.otlp.span_fields`,
so a Redis or memcached client span becomes a cache event as in every trace format. A JSON Lines
file of span lists is read too. A *record* is one span; ``source_line`` is the span's ordinal
in the file (or its line, in JSON Lines).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from auditkit.lazy_re import compile_later
from auditkit.loaders.base import Loader
from auditkit.loaders.otlp import (
    _Dedup,
    excerpt,
    mapping,
    read_json_documents,
    span_fields,
    spans_result,
    whole_number,
)
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.requests import Span

__all__ = ["ZipkinJsonLoader"]

_ID = compile_later(r"[0-9a-fA-F]{1,32}")
_KINDS = {"CLIENT": "client", "SERVER": "server", "PRODUCER": "producer", "CONSUMER": "consumer"}


def _id(value: Any, width: int) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value.strip()):
        raise ValueError(f"{value!r} is not a hex id")
    out = value.strip().lower()
    out = out.rjust(width if len(out) <= width else 32, "0")
    if set(out) == {"0"}:
        raise ValueError("all zeros (an invalid id)")
    return out


def _span_lists(doc: Any) -> Iterator[Any]:
    """Spans of a document: a list of spans, a list of traces, or one span."""
    if isinstance(doc, list):
        for item in doc:
            if isinstance(item, list):
                yield from item
            else:
                yield item
    else:
        yield doc


@register
class ZipkinJsonLoader(Loader):
    """Zipkin v2 JSON spans (a list of spans, or a list of traces)."""

    name = "zipkin_json"
    frame = "requests"
    description = "Zipkin v2 JSON spans (POST /api/v2/spans body, /api/v2/trace answers)"
    expected = (
        '[{"traceId", "id", "parentId", "kind", "name", "timestamp" (µs), "duration" (µs), '
        '"localEndpoint": {"serviceName"}, "tags": {…}}, …]'
    )

    def sniff(self, head: str, path: Path) -> float:
        if head.lstrip()[:1] not in ("[", "{"):
            return 0.0
        v2 = all(k in head for k in ('"traceId"', '"id"', '"timestamp"'))
        shaped = any(k in head for k in ('"localEndpoint"', '"remoteEndpoint"', '"duration"'))
        otlp = '"resourceSpans"' in head or '"spanId"' in head
        return 0.9 if v2 and shaped and not otlp else 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        started = time.perf_counter()
        report = ParseReport(str(path), self.name)
        documents, jsonl = read_json_documents(path, report)
        spans: list[Span] = []
        dedup = _Dedup()
        ordinal = 0
        v1 = 0
        for line, doc in documents:
            for sp in _span_lists(doc):
                ordinal += 1
                at = line if jsonl else ordinal
                if isinstance(sp, Mapping) and "binaryAnnotations" in sp:
                    v1 += 1
                    report.skip(at, "Zipkin v1 span (annotations), not v2", excerpt(sp))
                    continue
                span = self._span(sp, at, report)
                if span is None:
                    continue
                if dedup(span):
                    report.skip(at, "duplicate span", excerpt(sp))
                    continue
                report.ok()
                spans.append(span)
        if v1:
            report.warn(f"{v1} Zipkin v1 span(s) skipped: export v2 JSON (/api/v2/…)")
        return spans_result(self, path, report, spans, started)

    @staticmethod
    def _span(sp: Any, at: int, report: ParseReport) -> Span | None:
        if not isinstance(sp, Mapping):
            report.skip(at, "span is not an object", excerpt(sp))
            return None
        try:
            trace_id = _id(sp.get("traceId"), 16)
        except ValueError as exc:
            report.skip(at, "invalid trace id", str(exc))
            return None
        try:
            span_id = _id(sp.get("id"), 16)
        except ValueError as exc:
            report.skip(at, "invalid span id", str(exc))
            return None
        parent: str | None = None
        if sp.get("parentId") not in (None, ""):
            try:
                parent = _id(sp.get("parentId"), 16)
            except ValueError as exc:
                report.skip(at, "invalid parent span id", str(exc))
                return None
        tags = {str(k): v for k, v in mapping(sp.get("tags")).items()}
        if "http.path" in tags and "http.target" not in tags:
            tags["http.target"] = tags["http.path"]
        start = whole_number(sp.get("timestamp"))
        duration = whole_number(sp.get("duration"))
        local = mapping(sp.get("localEndpoint"))
        name = str(sp.get("name") or "")
        return Span(
            trace_id=trace_id,
            span_id=span_id,
            parent_id=parent if parent != span_id else None,
            name=name,
            start_ns=start * 1000 if start else None,
            duration_ns=duration * 1000 if duration is not None and duration >= 0 else None,
            line=at,
            service=str(local["serviceName"]) if local.get("serviceName") else None,
            kind=_KINDS.get(str(sp.get("kind") or "").upper(), "unspecified"),
            error="error" in tags,
            label=name or None,
            **span_fields(tags, name),
        )
