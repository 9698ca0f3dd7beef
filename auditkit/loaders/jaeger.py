"""Jaeger's JSON trace export: the UI's "Download JSON" and the query API (``/api/traces``).

Shape::

    {"data": [{"traceID": "…", "spans": [{"traceID", "spanID", "operationName",
                "references": [{"refType": "CHILD_OF", "traceID", "spanID"}],
                "startTime": µs, "duration": µs,
                "tags": [{"key", "type", "value"}], "logs": […], "processID": "p1"}],
               "processes": {"p1": {"serviceName": "…", "tags": […]}}}],
     "total": 0, "limit": 0, "offset": 0, "errors": null}

A file may also hold one trace object (what the UI downloads for a single trace, and the
shape of Jaeger's own UI-model fixtures) or a bare list of traces. Times are microseconds
since the epoch; ids are hex (16 or 32 digits) and kept as lowercase hex. A span's parent is
its first ``CHILD_OF`` reference within the same trace (else its first reference within the
trace: ``FOLLOWS_FROM``); a deprecated ``parentSpanID`` field is honoured too. Tags are read
with the OpenTelemetry and OpenTracing names (:func:`~auditkit.loaders.otlp.semconv_fields`);
``error=true`` or ``otel.status_code=ERROR`` mark an error.

Jaeger's storage-integration fixtures (``internal/storage/integration/fixtures/traces``) and
its API v3 answers are OTLP JSON since Jaeger v2: sniffing sends them to ``otlp_json``, and
a file named ``jaeger_json`` that turns out to be OTLP is handed to that loader (the result
says ``otlp_json`` and the report warns). A *record* is one span;
``source_line`` is the span's ordinal in the file.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from auditkit.lazy_re import compile_later
from auditkit.loaders.base import Loader
from auditkit.loaders.otlp import (
    OtlpJsonLoader,
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

__all__ = ["JaegerJsonLoader"]

_HEX_ID = compile_later(r"[0-9a-fA-F]{1,32}")


def _tags(items: Any) -> dict[str, Any]:
    """``[{"key", "type", "value"}]`` → ``{key: value}`` (int64 values may be strings)."""
    out: dict[str, Any] = {}
    if not isinstance(items, list):
        return out
    for t in items:
        if isinstance(t, Mapping) and "key" in t:
            value = t.get("value")
            if t.get("type") == "int64" and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = int(value)
            out[str(t["key"])] = value
    return out


def _id(value: Any) -> str:
    """A Jaeger hex id, lowercase; ``ValueError`` when it is not hex."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:016x}"
    if not isinstance(value, str) or not _HEX_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a hex id")
    return value.lower()


def _traces(doc: Any) -> Iterator[Any]:
    """Trace objects of a document: ``{"data": […]}``, one trace, or a list of traces."""
    if isinstance(doc, list):
        for d in doc:
            yield from _traces(d)
    elif isinstance(doc, Mapping):
        if isinstance(doc.get("data"), list):
            yield from doc["data"]
        elif "spans" in doc:
            yield doc
        else:
            yield doc  # reported as not a trace by the caller


@register
class JaegerJsonLoader(Loader):
    """Jaeger UI / query API JSON traces (``traceID``, ``spans``, ``processes``)."""

    name = "jaeger_json"
    frame = "requests"
    description = "Jaeger UI / query API JSON trace export"
    expected = (
        '{"data": [{"traceID", "spans": [{"spanID", "operationName", "references", "startTime" (µs), '
        '"duration" (µs), "tags", "processID"}], "processes": {…}}]} or one such trace object'
    )

    def sniff(self, head: str, path: Path) -> float:
        if head.lstrip()[:1] not in ("{", "["):
            return 0.0
        if '"traceID"' in head and '"spanID"' in head and '"operationName"' in head:
            return 0.95
        return 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        started = time.perf_counter()
        report = ParseReport(str(path), self.name)
        spans: list[Span] = []
        ordinal = 0
        documents, _ = read_json_documents(path, report)
        if any(isinstance(doc, Mapping) and "resourceSpans" in doc for _, doc in documents):
            # Jaeger v2 stores and serves (API v3) OTLP JSON: read it as such
            result = OtlpJsonLoader().load(path, **options)
            result.report.warn("OTLP JSON (Jaeger v2 storage / API v3 format): read as otlp_json")
            return result
        for line, doc in documents:
            for trace in _traces(doc):
                raw_spans = trace.get("spans") if isinstance(trace, Mapping) else None
                if not isinstance(raw_spans, list):
                    report.skip(line, "not a Jaeger trace", excerpt(trace))
                    continue
                processes = mapping(trace.get("processes"))
                for sp in raw_spans:
                    ordinal += 1
                    span = self._span(sp, processes, ordinal, report)
                    if span is not None:
                        report.ok()
                        spans.append(span)
        return spans_result(self, path, report, spans, started)

    @staticmethod
    def _span(sp: Any, processes: Mapping[str, Any], at: int, report: ParseReport) -> Span | None:
        if not isinstance(sp, Mapping):
            report.skip(at, "span is not an object", excerpt(sp))
            return None
        try:
            trace_id = _id(sp.get("traceID"))
        except ValueError as exc:
            report.skip(at, "invalid trace id", str(exc))
            return None
        try:
            span_id = _id(sp.get("spanID"))
        except ValueError as exc:
            report.skip(at, "invalid span id", str(exc))
            return None
        parent = _parent(sp, trace_id)
        process = sp.get("process")
        if not isinstance(process, Mapping):
            process = processes.get(str(sp.get("processID")), {})
        process = process if isinstance(process, Mapping) else {}
        tags = _tags(sp.get("tags"))
        start_us = whole_number(sp.get("startTime"))
        dur_us = whole_number(sp.get("duration"))
        kind = str(tags.get("span.kind") or "unspecified").lower()
        error = (
            tags.get("error") in (True, "true", "True", 1)
            or str(tags.get("otel.status_code", "")).upper() == "ERROR"
        )
        name = str(sp.get("operationName") or "")
        return Span(
            trace_id=trace_id,
            span_id=span_id,
            parent_id=parent,
            name=name,
            start_ns=start_us * 1000 if start_us else None,
            duration_ns=dur_us * 1000 if dur_us is not None and dur_us >= 0 else None,
            line=at,
            service=str(process["serviceName"]) if process.get("serviceName") else None,
            kind=kind,
            error=error,
            label=name or None,
            **span_fields(tags, name),
        )


def _parent(sp: Mapping[str, Any], trace_id: str) -> str | None:
    """The parent span id: first CHILD_OF reference in the trace, else the first reference."""
    refs = [r for r in sp.get("references") or [] if isinstance(r, Mapping)]
    same = []
    for r in refs:
        try:
            # 64-bit ids may be written with or without the zero high half
            if int(_id(r.get("traceID", trace_id)), 16) == int(trace_id, 16):
                same.append(r)
        except ValueError:
            continue
    for ref in [r for r in same if str(r.get("refType", "")).upper() == "CHILD_OF"] + same:
        try:
            return _id(ref.get("spanID"))
        except ValueError:
            continue
    legacy = sp.get("parentSpanID")
    if legacy not in (None, "", "0", 0):
        try:
            return _id(legacy)
        except ValueError:
            return None
    return None
