"""CDN logs with a cache status: Amazon CloudFront, Cloudflare Logpush, Fastly (JSON).

A CDN log tells which requests the edge answered from its cache and which reached the
application — what an audit needs to weigh caching advice. Each row is one request of the
``requests`` frame, with ``cache_status`` (upper case, as the CDN spells it), ``path``,
``response_bytes`` and, when the CDN logs it, the time it waited on the origin
(``upstream_ms``), the origin's status and address.

**CloudFront standard log** (W3C extended, tab-separated, gzip as delivered)::

    #Version: 1.0
    #Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status … x-edge-result-type x-edge-request-id … time-taken …
    2018-11-07	00:12:08	FRA53	376	3.120.138.129	GET	d345….cloudfront.net	/notavailable.json	302	…	Hit	PsDv…==	…	0.394	…

Columns are found by the ``#Fields`` header (any subset, any order; a later ``#Fields``
applies to the lines below it). ``date``+``time`` is when the edge finished the response, in
UTC: ``ts`` is that minus ``time-taken`` (seconds). ``cache_status`` is
``x-edge-result-type`` (Hit, RefreshHit, Miss, Error, LambdaGeneratedResponse…);
``request_id`` ``x-edge-request-id``; ``response_bytes`` ``sc-bytes`` (headers included, as
CloudFront counts); ``upstream_ms`` ``origin-lbl`` (origin last-byte latency) when logged.

**Cloudflare Logpush** ``http_requests`` (JSON lines, or a JSON array): ``EdgeStartTimestamp``
/ ``EdgeEndTimestamp`` (RFC 3339, or Unix seconds, milliseconds or nanoseconds),
``ClientRequestMethod``, ``ClientRequestPath``/``ClientRequestURI``, ``EdgeResponseStatus``,
``EdgeResponseBytes``, ``CacheCacheStatus`` (hit, miss, expired, dynamic, …), ``RayID``,
``OriginResponseDurationMs`` (or the older ``OriginResponseTime``, nanoseconds),
``OriginResponseStatus``, ``OriginIP``. Zero origin values mean "no origin request".

**Fastly** has no fixed log format: a service logs what its ``format`` string says. The JSON
layouts of Fastly's documentation and of the usual log-analytics integrations are read, by
field name: ``timestamp``/``time_start``, ``request_method``/``request``/``method``,
``url``/``path``, ``response_status``/``status``, ``response_body_size``/``resp_body_size``,
``cache_status``/``response_state``/``fastly_info_state`` (HIT, MISS, PASS, HIT-STALE…),
``time_elapsed`` (``time.elapsed.usec``: microseconds) or ``time_elapsed_ms``,
``request_id``. A file is Fastly's when its objects carry one of ``fastly_server``,
``fastly_is_edge``, ``fastly_info_state``, ``response_state``, or ``cache_status`` with
``time_elapsed``; name the format ``fastly_json`` in ``audit.yaml`` otherwise.

A *record* is one log line (CloudFront: header lines count as parsed records) or one JSON
object. Records without a usable time or method are skipped with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

import pandas as pd

from auditkit.loaders.base import Loader, finalise, nothing_parsed
from auditkit.loaders.otlp import excerpt, read_json_documents
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text
from auditkit.requests import path_of

__all__ = ["CloudflareLogpushLoader", "CloudfrontLogLoader", "FastlyJsonLoader"]

_COLUMNS = (
    "ts",
    "request_id",
    "endpoint",
    "path",
    "method",
    "status",
    "duration_ms",
    "cache_status",
    "response_bytes",
    "upstream_ms",
    "upstream_status",
    "upstream_addr",
    "host",
    "client",
    "user_agent",
    "edge",
    "source_line",
)


def _frame(rows: list[dict[str, Any]], source: str, fmt: str) -> dict[str, list[pd.DataFrame]]:
    df = pd.DataFrame(rows, columns=list(_COLUMNS))
    df["ts"] = pd.to_datetime(df["ts"], utc=True, errors="coerce")
    for col in ("status", "response_bytes"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("host", "client", "user_agent", "edge"):
        df[col] = df[col].astype("string")
    df["inferred"] = False
    df["source_format"] = fmt
    df["source_file"] = source
    return {"requests": [df]}


def _result(
    loader: Loader,
    path: str | Path,
    rows: list[dict[str, Any]],
    report: ParseReport,
    started: float,
) -> LoadResult:
    frames = finalise(_frame(rows, str(path), loader.name), loader, report)
    report.elapsed_s = time.perf_counter() - started
    report.check()
    if report.parsed == 0:
        raise nothing_parsed(loader, path, report)
    return LoadResult(loader.name, frames, report, primary="requests")


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or value in ("", "-"):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and abs(out) < 1e18 else None


def _epoch(value: Any) -> pd.Timestamp | None:
    """A time as RFC 3339 text or Unix seconds / ms / µs / ns; None when unreadable."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
            n: int | float = int(value) if not isinstance(value, float) else value
            unit = "ns" if n > 1e17 else "us" if n > 1e14 else "ms" if n > 1e11 else "s"
            return pd.Timestamp(n, unit=unit, tz="UTC")
        ts = pd.Timestamp(str(value))
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    except (ValueError, OverflowError, TypeError):
        return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text if text and text != "-" else None


# -- CloudFront -------------------------------------------------------------------------------


@register
class CloudfrontLogLoader(Loader):
    """Amazon CloudFront standard (access) logs: W3C fields, tab-separated."""

    name = "cloudfront_log"
    frame = "requests"
    description = "Amazon CloudFront standard access log (W3C #Fields header, tab-separated)"
    expected = (
        "#Version: 1.0 and #Fields: date time x-edge-location sc-bytes c-ip cs-method … header "
        "lines, then tab-separated values"
    )

    def sniff(self, head: str, path: Path) -> float:
        for line in head.split("\n", 20)[:20]:
            if line.startswith("#Fields:") and "x-edge-" in line and "cs-method" in line:
                return 0.95
        return 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        started = time.perf_counter()
        text, bad = read_text(path)
        report = ParseReport.for_text(path, self.name, text, bad)
        fields: list[str] = []
        rows: list[dict[str, Any]] = []
        for i, raw in enumerate(text.split("\n"), 1):
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            if line.startswith("#"):
                if line.startswith("#Fields:"):
                    fields = line[len("#Fields:") :].split()
                report.ok()
                continue
            if not fields:
                report.skip(i, "data before a #Fields header", line)
                continue
            values = line.split("\t")
            if len(values) != len(fields):
                report.skip(i, "wrong number of fields", f"{len(values)} of {len(fields)}: {line}")
                continue
            row = self._row(dict(zip(fields, values, strict=True)), i)
            if row is None:
                report.skip(i, "no valid date, time or method", line)
                continue
            rows.append(row)
            report.ok()
        return _result(self, path, rows, report, started)

    @staticmethod
    def _row(rec: dict[str, str], line: int) -> dict[str, Any] | None:
        end = _epoch(f"{rec.get('date', '')}T{rec.get('time', '')}Z")
        method = _text(rec.get("cs-method"))
        if end is None or method is None:
            return None
        taken = _number(rec.get("time-taken"))
        duration = taken * 1000.0 if taken is not None else None
        stem = _text(rec.get("cs-uri-stem"))
        path = path_of(stem)
        origin = _number(rec.get("origin-lbl"))
        agent = _text(rec.get("cs(User-Agent)"))
        return {
            "ts": end - pd.Timedelta(milliseconds=duration or 0.0),
            "request_id": _text(rec.get("x-edge-request-id")) or f"line:{line}",
            "endpoint": path,
            "path": path,
            "method": method,
            "status": _number(rec.get("sc-status")),
            "duration_ms": duration,
            "cache_status": (_text(rec.get("x-edge-result-type")) or "").upper() or None,
            "response_bytes": _number(rec.get("sc-bytes")),
            "upstream_ms": origin * 1000.0 if origin is not None else None,
            "upstream_status": None,
            "upstream_addr": None,
            "host": _text(rec.get("x-host-header") or rec.get("cs(Host)")),
            "client": _text(rec.get("c-ip")),
            # CloudFront URL-encodes the user agent (spaces as %2520: encoded twice)
            "user_agent": unquote(unquote(agent)) if agent else None,
            "edge": _text(rec.get("x-edge-location")),
            "source_line": line,
        }


# -- JSON CDN logs ----------------------------------------------------------------------------


def _objects(path: str | Path, report: ParseReport) -> Iterator[tuple[int, Any]]:
    documents, jsonl = read_json_documents(path, report)
    for line, doc in documents:
        if isinstance(doc, list):
            for k, obj in enumerate(doc, 1):
                yield (line if jsonl else k), obj
        else:
            yield line, doc


def _first(obj: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = obj.get(key)
        if value not in (None, ""):
            return value
    return None


class _JsonCdnLoader(Loader):
    """A CDN's JSON (or JSON lines) log: one request per object, read by :meth:`_row`."""

    #: why an object without the fields a request needs is skipped
    missing: ClassVar[str]

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        started = time.perf_counter()
        report = ParseReport(str(path), self.name)
        rows: list[dict[str, Any]] = []
        for line, obj in _objects(path, report):
            if not isinstance(obj, Mapping):
                report.skip(line, "not a JSON object", excerpt(obj))
                continue
            row = self._row(obj, line)
            if row is None:
                report.skip(line, self.missing, excerpt(obj))
                continue
            rows.append(row)
            report.ok()
        return _result(self, path, rows, report, started)

    @staticmethod
    def _row(obj: Mapping[str, Any], line: int) -> dict[str, Any] | None:
        """The request of one object, or None when it lacks a time or a method."""
        raise NotImplementedError


@register
class CloudflareLogpushLoader(_JsonCdnLoader):
    """Cloudflare Logpush ``http_requests`` logs (JSON lines)."""

    name = "cloudflare_logpush"
    frame = "requests"
    description = "Cloudflare Logpush http_requests dataset (JSON lines)"
    expected = (
        '{"EdgeStartTimestamp", "ClientRequestMethod", "ClientRequestURI", "EdgeResponseStatus", '
        '"EdgeResponseBytes", "CacheCacheStatus", "RayID", …} per line'
    )
    missing = "no EdgeStartTimestamp or ClientRequestMethod"

    def sniff(self, head: str, path: Path) -> float:
        if head.lstrip()[:1] not in ("{", "["):
            return 0.0
        if '"ClientRequestMethod"' in head and (
            '"EdgeStartTimestamp"' in head or '"RayID"' in head or '"CacheCacheStatus"' in head
        ):
            return 0.95
        return 0.0

    @staticmethod
    def _row(obj: Mapping[str, Any], line: int) -> dict[str, Any] | None:
        start = _epoch(obj.get("EdgeStartTimestamp"))
        method = _text(obj.get("ClientRequestMethod"))
        if start is None or method is None:
            return None
        end = _epoch(obj.get("EdgeEndTimestamp"))
        duration = (end - start).total_seconds() * 1000.0 if end is not None else None
        path = path_of(_text(obj.get("ClientRequestPath")) or _text(obj.get("ClientRequestURI")))
        origin_ms = _number(obj.get("OriginResponseDurationMs"))
        if origin_ms is None:
            ns = _number(obj.get("OriginResponseTime"))  # deprecated, nanoseconds
            origin_ms = ns / 1e6 if ns is not None else None
        origin_status = _number(obj.get("OriginResponseStatus"))
        reached = bool(origin_status) or bool(_text(obj.get("OriginIP")))
        cache = _text(obj.get("CacheCacheStatus"))
        return {
            "ts": start,
            "request_id": _text(obj.get("RayID")) or f"line:{line}",
            "endpoint": path,
            "path": path,
            "method": method,
            "status": _number(obj.get("EdgeResponseStatus")),
            "duration_ms": duration if duration is None or duration >= 0 else None,
            "cache_status": cache.upper() if cache else None,
            "response_bytes": _number(obj.get("EdgeResponseBytes")),
            # zeros mean Cloudflare did not go to the origin
            "upstream_ms": origin_ms if reached else None,
            "upstream_status": str(int(origin_status)) if origin_status else None,
            "upstream_addr": _text(obj.get("OriginIP")),
            "host": _text(obj.get("ClientRequestHost")),
            "client": _text(obj.get("ClientIP")),
            "user_agent": _text(obj.get("ClientRequestUserAgent")),
            "edge": _text(obj.get("EdgeColoCode")),
            "source_line": line,
        }


_FASTLY_MARKS = ('"fastly_server"', '"fastly_is_edge"', '"fastly_info_state"', '"response_state"')


@register
class FastlyJsonLoader(_JsonCdnLoader):
    """Fastly real-time logs in the JSON layouts of Fastly's documentation."""

    name = "fastly_json"
    frame = "requests"
    description = "Fastly real-time log streaming, JSON format (documented field names)"
    expected = (
        '{"timestamp", "request_method" (or "request"), "url", "response_status" (or "status"), '
        '"cache_status" (or "response_state"), "time_elapsed" (µs), "response_body_size", …} per line'
    )
    missing = "no timestamp or request method"

    def sniff(self, head: str, path: Path) -> float:
        if head.lstrip()[:1] not in ("{", "["):
            return 0.0
        if any(m in head for m in _FASTLY_MARKS):
            return 0.9
        if '"cache_status"' in head and '"time_elapsed"' in head and '"url"' in head:
            return 0.85
        return 0.0

    @staticmethod
    def _row(obj: Mapping[str, Any], line: int) -> dict[str, Any] | None:
        start = _epoch(_first(obj, "timestamp", "time_start", "start_time", "time"))
        method = _text(_first(obj, "request_method", "request", "method"))
        if start is None or method is None:
            return None
        usec = _number(_first(obj, "time_elapsed", "time_elapsed_usec", "elapsed_usec"))
        ms = _number(_first(obj, "time_elapsed_ms", "duration_ms", "response_time_ms"))
        duration = ms if ms is not None else usec / 1000.0 if usec is not None else None
        path = path_of(_text(_first(obj, "url", "path", "request_url", "uri")))
        cache = _text(_first(obj, "cache_status", "fastly_info_state", "response_state", "state"))
        return {
            "ts": start,
            "request_id": _text(_first(obj, "request_id", "req_id", "x_request_id"))
            or f"line:{line}",
            "endpoint": path,
            "path": path,
            "method": method,
            "status": _number(_first(obj, "response_status", "status", "resp_status")),
            "duration_ms": duration,
            "cache_status": cache.upper() if cache else None,
            "response_bytes": _number(
                _first(obj, "response_body_size", "resp_body_size", "body_bytes", "bytes")
            ),
            "upstream_ms": None,
            "upstream_status": None,
            "upstream_addr": None,
            "host": _text(_first(obj, "host", "request_host")),
            "client": _text(_first(obj, "client_ip", "ip")),
            "user_agent": _text(_first(obj, "request_user_agent", "user_agent")),
            "edge": _text(_first(obj, "fastly_server", "server", "pop")),
            "source_line": line,
        }
