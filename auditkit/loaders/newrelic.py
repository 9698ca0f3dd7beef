"""New Relic APM ``Transaction`` events, exported as CSV or as NRQL JSON.

What a client can hand over is the result of ``SELECT * FROM Transaction SINCE …``:

* **CSV** (``newrelic_csv``): the query builder's "Export as CSV" — a header of attribute
  names, one transaction per row;
* **JSON** (``newrelic_json``): the NRQL REST API answer
  ``{"results": [{"events": […]}], "performanceStats": …, "metadata": …}``, the NerdGraph
  answer ``{"data": {"actor": {"account": {"nrql": {"results": […]}}}}}``, the ``results`` list
  alone, or a bare list of events (the UI's JSON export).

One event becomes one row of the requests frame, read from New Relic's documented attribute
names:

=====================  =========================================================================
requests column        Transaction attribute
=====================  =========================================================================
ts                     ``timestamp`` (start of the transaction; epoch milliseconds or a date)
request_id             ``guid`` (else ``id``, ``traceId``; else ``<file>:<line>``)
trace_id               ``traceId``, lowercase
endpoint               ``name`` without ``WebTransaction/<category>/`` (the Django view for
                       ``WebTransaction/Function/shop.views:detail``; a path for ``Uri``)
method                 ``request.method``
status                 ``http.statusCode``, ``httpResponseCode``, ``response.status``
duration_ms            ``duration`` × 1000 (New Relic durations are seconds)
db_ms, db_calls        ``databaseDuration`` × 1000, ``databaseCallCount``
service                ``appName``
=====================  =========================================================================

New Relic leaves ``databaseCallCount``, ``databaseDuration``, ``externalCallCount``,
``externalDuration`` and ``queueDuration`` out of an event when they are zero, so an absent
(or empty) value is **zero**, not unknown; when no event of the file has them at all the
report warns (a query that selected named columns would look the same). Extra columns:
``transaction_name``, ``transaction_type``, ``path`` (of ``request.uri``), ``error``,
``external_calls``, ``external_ms``, ``queue_ms``. Events of another ``eventType`` are
skipped, counted. Naive date strings are taken as UTC unless ``tz=`` names the zone.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.loaders._records import BadRecord, csv_records
from auditkit.loaders._time import epoch_ts
from auditkit.loaders.base import Loader, nothing_parsed
from auditkit.loaders.otlp import excerpt, read_json_documents
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text
from auditkit.requests import path_of
from auditkit.schemas import REQUESTS, cast, conform, empty

__all__ = ["NewRelicCsvLoader", "NewRelicJsonLoader", "transaction_endpoint"]

#: attributes New Relic omits from an event when their value is zero
ZERO_WHEN_ABSENT = (
    "databaseCallCount",
    "databaseDuration",
    "externalCallCount",
    "externalDuration",
    "queueDuration",
)
#: attributes that mark a Transaction event (for sniffing)
_MARKERS = (
    "transactiontype",
    "transactionsubtype",
    "nr.apdexperfzone",
    "databasecallcount",
    "databaseduration",
    "appname",
    "appid",
)
_STATUS = (
    "http.statusCode",
    "httpResponseCode",
    "response.status",
    "response.statusCode",
    "statusCode",
)
_TXN_ROOTS = (
    "WebTransaction",
    "OtherTransaction",
    "WebTransactionTotalTime",
    "OtherTransactionTotalTime",
)


def transaction_endpoint(name: str | None) -> str | None:
    """The endpoint in a New Relic transaction name.

    >>> transaction_endpoint("WebTransaction/Function/shop.views:product_detail")
    'shop.views:product_detail'
    >>> transaction_endpoint("WebTransaction/Uri/api/products")
    '/api/products'
    """
    if not name:
        return None
    parts = name.split("/", 2)
    if parts[0] in _TXN_ROOTS and len(parts) == 3 and parts[2]:
        if parts[1] in ("Uri", "NormalizedUri"):
            return "/" + parts[2].lstrip("/")
        return parts[2]
    return name


def _get(event: Mapping[str, Any], *keys: str) -> Any:
    """The first present, non-empty value among ``keys`` (case-insensitive fallback)."""
    for key in keys:
        value = event.get(key)
        if value is None:
            value = event.get(key.lower())
        if value is not None and value != "":
            return value
    return None


def _float(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    return None


def _timestamp(value: Any, tz: str | None) -> pd.Timestamp | None:
    """Epoch seconds/milliseconds/microseconds (by magnitude) or a date string, as UTC."""
    if value is None or value == "":
        return None
    number = _float(value)
    if number is not None:
        unit = "s" if abs(number) < 1e11 else "ms" if abs(number) < 1e14 else "us"
        text = str(value).strip()
        # integers (the usual epoch milliseconds) exactly; fractions through float
        ts = epoch_ts(int(text) if text.lstrip("-").isdigit() else number, unit, "ts")
        return None if ts is pd.NaT else ts
    try:
        ts = pd.Timestamp(str(value))
    except (ValueError, TypeError):
        return None
    if ts is pd.NaT:
        return None
    if ts.tzinfo is None:
        ts = ts.tz_localize(tz or "UTC")
    return ts.tz_convert("UTC")


class _Events:
    """Turns Transaction events into requests rows, with the report's accounting."""

    def __init__(
        self, loader: Loader, path: str | Path, report: ParseReport, tz: str | None
    ) -> None:
        self.loader = loader
        self.path = str(path)
        self.report = report
        self.tz = tz
        self.rows: list[dict[str, Any]] = []
        self.seen_zero_fields: set[str] = set()

    def add(self, line: int, event: Any) -> None:
        report = self.report
        if not isinstance(event, Mapping):
            report.skip(line, "event is not an object", excerpt(event))
            return
        event_type = _get(event, "eventType")
        if event_type is not None and str(event_type) != "Transaction":
            report.skip(line, "not a Transaction event", f"eventType {event_type}")
            return
        duration = _float(_get(event, "duration"))
        if duration is None:
            report.skip(line, "missing duration", excerpt(dict(event)))
            return
        for key in ZERO_WHEN_ABSENT:
            if key in event or key.lower() in event:
                self.seen_zero_fields.add(key)
        name = _get(event, "name")
        name = str(name) if name is not None else None
        trace_id = _get(event, "traceId", "trace.id")
        request_id = _get(event, "guid", "id", "nr.guid", "traceId")
        status = _float(_get(event, *_STATUS))
        report.ok()
        self.rows.append(
            {
                "ts": _timestamp(_get(event, "timestamp"), self.tz),
                "request_id": str(request_id)
                if request_id is not None
                else f"{Path(self.path).name}:{line}",
                "trace_id": str(trace_id).lower() if trace_id is not None else None,
                "endpoint": transaction_endpoint(name),
                "method": _get(event, "request.method", "http.method"),
                "status": int(status) if status is not None else None,
                "duration_ms": duration * 1000.0,
                "db_ms": (_float(_get(event, "databaseDuration")) or 0.0) * 1000.0,
                "db_calls": int(_float(_get(event, "databaseCallCount")) or 0),
                "service": _get(event, "appName"),
                "inferred": False,
                "source_format": self.loader.name,
                "source_file": self.path,
                "source_line": line,
                "transaction_name": name,
                "transaction_type": _get(event, "transactionType"),
                "path": path_of(_get(event, "request.uri", "request.url")),
                "error": _bool(_get(event, "error")),
                "external_calls": int(_float(_get(event, "externalCallCount")) or 0),
                "external_ms": (_float(_get(event, "externalDuration")) or 0.0) * 1000.0,
                "queue_ms": (_float(_get(event, "queueDuration")) or 0.0) * 1000.0,
            }
        )

    def result(self, started: float) -> LoadResult:
        report = self.report
        missing = [
            k for k in ("databaseDuration", "databaseCallCount") if k not in self.seen_zero_fields
        ]
        if self.rows and missing:
            report.warn(
                f"no event has {' or '.join(missing)}: read as zero (New Relic omits them when "
                "zero); if the export selected named columns, include them"
            )
        if self.rows:
            df = pd.DataFrame(self.rows)
            df["ts"] = pd.to_datetime(df["ts"], utc=True)
            for col in ("transaction_name", "transaction_type", "path"):
                df[col] = df[col].astype("string")
            df["error"] = df["error"].astype("boolean")
            df["external_calls"] = cast(
                pd.Series(df["external_calls"].tolist(), dtype="object"), "Int64", "external_calls"
            )
            frame = conform(df, REQUESTS)
        else:
            frame = empty(REQUESTS)
        report.events["requests"] = len(frame)
        report.elapsed_s = time.perf_counter() - started
        report.check()
        if report.parsed == 0:
            raise nothing_parsed(self.loader, self.path, report)
        return LoadResult(self.loader.name, {"requests": frame}, report, primary="requests")


def _header_names(head: str) -> set[str]:
    first = head.lstrip("\ufeff").split("\n", 1)[0]
    try:
        row = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return set()
    return {c.strip().lower() for c in row}


@register
class NewRelicCsvLoader(Loader):
    """New Relic ``Transaction`` events exported as CSV from the query builder."""

    name = "newrelic_csv"
    frame = "requests"
    description = "New Relic Transaction events, CSV export of SELECT * FROM Transaction"
    expected = "a CSV header with New Relic attribute names (timestamp, name, duration, appName, databaseDuration…)"

    def sniff(self, head: str, path: Path) -> float:
        names = _header_names(head)
        if "duration" in names and "name" in names and sum(m in names for m in _MARKERS) >= 1:
            return 0.9
        return 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        started = time.perf_counter()
        report = ParseReport(str(path), self.name)
        text, bad = read_text(path)
        text = text.lstrip("\ufeff")
        report.lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        report.bytes = len(text.encode("utf-8", errors="replace"))
        for line in bad:
            report.warn(f"invalid UTF-8 replaced with U+FFFD on line {line}")
        events = _Events(self, path, report, options.get("tz"))
        header: list[str] | None = None
        for rec in csv_records(text):
            if isinstance(rec, BadRecord):
                report.skip(rec.line, rec.reason, rec.excerpt)
            elif header is None:
                header = [h.strip() for h in rec.values]
            elif any(v.strip() for v in rec.values):
                events.add(rec.line, dict(zip(header, rec.values, strict=False)))
        return events.result(started)


def _events_of(doc: Any) -> Iterator[Any]:
    """The events of an NRQL answer in any of its shapes (see the module docstring)."""
    if isinstance(doc, list):
        for item in doc:
            if isinstance(item, Mapping) and isinstance(item.get("events"), list):
                yield from item["events"]
            else:
                yield item
        return
    if not isinstance(doc, Mapping):
        yield doc
        return
    if isinstance(doc.get("data"), Mapping):
        node: Any = doc["data"].get("actor", {})
        node = node.get("account", node) if isinstance(node, Mapping) else {}
        node = node.get("nrql", node) if isinstance(node, Mapping) else {}
        yield from _events_of(node.get("results", []) if isinstance(node, Mapping) else [])
        return
    for key in ("results", "events"):
        if isinstance(doc.get(key), list):
            yield from _events_of(doc[key])
            return
    yield doc


@register
class NewRelicJsonLoader(Loader):
    """New Relic ``Transaction`` events as NRQL JSON (REST API, NerdGraph or UI export)."""

    name = "newrelic_json"
    frame = "requests"
    description = (
        "New Relic Transaction events as NRQL JSON (results[0].events, NerdGraph, or a list)"
    )
    expected = '{"results": [{"events": [{"timestamp", "name", "duration", "appName", …}]}]} or a list of events'

    def sniff(self, head: str, path: Path) -> float:
        text = head.lstrip()
        if text[:1] not in ("{", "["):
            return 0.0
        if '"span_id"' in head or '"resourceSpans"' in head or '"traceID"' in head:
            return 0.0
        lower = head.lower()
        marks = sum(f'"{m}"' in lower for m in _MARKERS)
        if '"duration"' in head and '"name"' in head and marks >= 1:
            return 0.9 if ('"results"' in head or '"nrql"' in head or text[:1] == "[") else 0.6
        return 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        started = time.perf_counter()
        report = ParseReport(str(path), self.name)
        events = _Events(self, path, report, options.get("tz"))
        documents, jsonl = read_json_documents(path, report)
        ordinal = 0
        for line, doc in documents:
            for event in _events_of(doc):
                ordinal += 1
                events.add(line if jsonl else ordinal, event)
        return events.result(started)
