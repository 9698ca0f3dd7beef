"""OpenTelemetry spans as the Python SDK writes them: ``ConsoleSpanExporter`` and ``to_json()``.

The SDK's ``ReadableSpan.to_json()`` renders one span as a JSON object; the console exporter
prints those objects one after another (pretty-printed, four-space indent), and applications
that log spans themselves write ``span.to_json(indent=None)`` one per line or dump a list of
them as a JSON array. All three are read::

    {
        "name": "GET /books/",
        "context": {"trace_id": "0x5307…a2d3", "span_id": "0xe090354b87c48806", "trace_state": "[]"},
        "kind": "SpanKind.SERVER",
        "parent_id": null,
        "start_time": "2026-12-05T07:43:08.339953Z",
        "end_time": "2026-12-05T07:43:08.340210Z",
        "status": {"status_code": "UNSET"},
        "attributes": {"http.method": "GET", "http.route": "books/", …},
        "events": [], "links": [],
        "resource": {"attributes": {"service.name": "shop", …}, "schema_url": ""}
    }

Ids are ``0x``-prefixed hex (32 digits for a trace, 16 for a span) and kept as lowercase hex
without the prefix, as the OTLP loader writes them, so one trace exported both ways gives the
same ids. Times are ISO 8601 in UTC. ``kind`` is the Python enum's ``str()``
(``SpanKind.SERVER``); ``status.status_code`` ``ERROR`` marks an error. Attributes are plain
JSON values, read with both generations of the semantic conventions and the cache fields of
:func:`~auditkit.loaders.otlp.span_fields`; spans become requests, statements and cache events
through :func:`auditkit.requests.trace_frames`, exactly as OTLP spans do.

Text that is not JSON between the objects (the application's own ``print`` output on the same
stdout) is skipped, one record per line, with the reason. A span object seen twice (the same
trace, span, start and name) is skipped as a duplicate. A *record* is one span object or one
skipped line; ``source_line`` is the line where the span's object starts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.loaders.base import Loader
from auditkit.loaders.otlp import SpanCollector, _kind, excerpt, mapping, otel_span, span_ids
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text
from auditkit.requests import Span

__all__ = ["OtelSdkJsonLoader", "iter_json_values"]

_HEX = compile_later(r"(?:0x)?([0-9a-fA-F]+)")
_DECODER = json.JSONDecoder()
_SPACE = compile_later(r"[\s,]*")


def iter_json_values(text: str, report: ParseReport) -> Iterator[tuple[int, Any]]:
    """``(line, value)`` for every JSON value of ``text``, however they are laid out.

    Values may follow one another (pretty-printed or one per line), separated by blanks or
    commas; a top-level array is opened and its elements yielded one by one, each with the
    line it starts on. A line that does not start a JSON value is skipped in ``report``
    (``not JSON``); a value that does not parse is skipped up to the end of its first line
    (``invalid JSON``), and reading resumes on the next line. Never raises on bad input.
    """
    pos = 0
    line = 1
    depth = 0  # 1 inside a top-level array
    n = len(text)
    while True:
        m = _SPACE.match(text, pos)
        skipped = text[pos : m.end()] if m else ""
        line += skipped.count("\n")
        pos = m.end() if m else pos
        if pos >= n:
            return
        ch = text[pos]
        if depth == 0 and ch == "[":
            depth = 1
            pos += 1
            continue
        if depth == 1 and ch == "]":
            depth = 0
            pos += 1
            continue
        if ch in "{[":
            try:
                value, end = _DECODER.raw_decode(text, pos)
            except (json.JSONDecodeError, RecursionError) as exc:
                eol = text.find("\n", pos)
                eol = n if eol < 0 else eol
                msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                report.skip(line, "invalid JSON", f"{msg}: {text[pos:eol][:120]}")
                pos = eol
                continue
            yield line, value
            line += text.count("\n", pos, end)
            pos = end
            continue
        eol = text.find("\n", pos)
        eol = n if eol < 0 else eol
        report.skip(line, "not JSON", text[pos:eol])
        pos = eol


def _hex(value: Any, digits: int) -> str:
    """A ``0x``-prefixed (or bare) hex id as ``digits`` lowercase hex digits; ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:x}"
    if not isinstance(value, str):
        raise ValueError("missing")
    m = _HEX.fullmatch(value.strip())
    if m is None or len(m.group(1)) > digits:
        raise ValueError(f"not a {digits}-digit hex id")
    out = m.group(1).lower().rjust(digits, "0")
    if set(out) == {"0"}:
        raise ValueError("all zeros (an invalid id)")
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FRACTION = compile_later(r"\.(\d+)")


def _iso_ns(value: Any) -> int | None:
    """Nanoseconds since the epoch of an ISO 8601 time (naive = UTC); None when unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    fraction = _FRACTION.search(value)
    try:  # the SDK writes microseconds: the standard library reads them fast (not nanoseconds)
        if fraction is not None and len(fraction.group(1)) > 6:
            raise ValueError("nanoseconds")
        dt = datetime.fromisoformat(value.strip())
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        delta = dt - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    except (ValueError, OverflowError):
        pass  # nanoseconds, or another spelling: pandas reads those
    try:
        ts = pd.Timestamp(value.strip())
    except (ValueError, OverflowError):
        return None
    if ts is pd.NaT:
        return None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    try:
        return int(ts.value)
    except (OverflowError, ValueError):
        return None


@register
class OtelSdkJsonLoader(Loader):
    """OpenTelemetry Python SDK spans: ConsoleSpanExporter output, ``to_json()`` lines or arrays."""

    name = "otel_sdk_json"
    frame = "requests"
    description = (
        "OpenTelemetry Python SDK spans (ConsoleSpanExporter output, span.to_json() per line or "
        "as a JSON array)"
    )
    expected = (
        'JSON objects {"name", "context": {"trace_id": "0x…", "span_id": "0x…"}, "kind": '
        '"SpanKind.SERVER", "parent_id", "start_time", "end_time", "attributes", "resource"} '
        "one after another, one per line, or in an array"
    )

    def sniff(self, head: str, path: Path) -> float:
        # the console exporter shares stdout with the application: text may come first
        if not any(ln.lstrip()[:1] in ("{", "[") for ln in head.split("\n", 200)[:200]):
            return 0.0
        ids = '"context"' in head and '"trace_id"' in head and '"span_id"' in head
        return 0.95 if ids and ('"SpanKind.' in head or '"start_time"' in head) else 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        started = time.perf_counter()
        text, bad = read_text(path)
        report = ParseReport.for_text(path, self.name, text, bad)
        kept = SpanCollector(report)
        for line, value in iter_json_values(text, report):
            for obj in value if isinstance(value, list) else [value]:
                span = self._span(obj, line, report, kept.unknown_kinds)
                if span is not None:
                    kept.add(span, line, obj)
        return kept.result(self, path, started)

    @staticmethod
    def _span(obj: Any, at: int, report: ParseReport, unknown_kinds: set[str]) -> Span | None:
        if not isinstance(obj, Mapping) or not isinstance(obj.get("context"), Mapping):
            report.skip(at, "not an OpenTelemetry span", excerpt(obj))
            return None
        ctx = obj["context"]
        ids = span_ids(
            report,
            at,
            lambda v, is_trace: _hex(v, 32 if is_trace else 16),
            ("trace_id", ctx.get("trace_id")),
            ("span_id", ctx.get("span_id")),
            ("parent_id", obj.get("parent_id")),
        )
        if ids is None:
            return None
        raw_kind = obj.get("kind")
        status = mapping(obj.get("status"))
        service = mapping(mapping(obj.get("resource")).get("attributes")).get("service.name")
        return otel_span(
            ids,
            start=_iso_ns(obj.get("start_time")),
            end=_iso_ns(obj.get("end_time")),
            kind=_kind(str(raw_kind).rsplit(".", 1)[-1] if raw_kind is not None else None),
            raw_kind=raw_kind,
            unknown_kinds=unknown_kinds,
            name=str(obj.get("name") or ""),
            attrs=dict(mapping(obj.get("attributes"))),
            service=str(service) if service not in (None, "") else None,
            error=str(status.get("status_code", "")).upper() in ("ERROR", "STATUSCODE.ERROR", "2"),
            at=at,
        )
