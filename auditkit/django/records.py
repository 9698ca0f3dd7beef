"""From a finished :class:`~auditkit.django.context.Capture` to the records of the capture files.

Two formats, both JSON Lines:

* the query log (``docs/formats/jsonl-queries.md``, format ``auditkit.queries`` version 2):
  one query record per statement, then one request (or task) record;
* cache operations (format ``auditkit.cache`` version 1): one record per operation.

This runs on the writer thread, never on the request path. Statement parameters are written
as the settings say: ``redact`` replaces every value but ``None`` and booleans by a keyed hash
(:class:`ParamRedactor`), so that an N+1 (the same statement with *different* values) and a
duplicate (the *same* values again) can still be told apart, while the values themselves cannot
be read back from the files.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

from auditkit.django.context import CACHE_FIELDS, Capture

__all__ = [
    "CACHE_FORMAT",
    "JSON",
    "CACHE_VERSION",
    "QUERIES_FORMAT",
    "QUERIES_VERSION",
    "ParamRedactor",
    "cache_records",
    "capture_common",
    "iso",
    "query_lines",
    "query_records",
    "statement_record",
]

#: one encoder for every record (json.dumps with options would build a new one per call)
JSON = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":"))
_string = json.encoder.encode_basestring  # the C implementation when available

QUERIES_FORMAT = "auditkit.queries"
QUERIES_VERSION = 2
CACHE_FORMAT = "auditkit.cache"
CACHE_VERSION = 1


_last_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def iso(ts: float) -> str:
    """A POSIX timestamp as ISO 8601 UTC with microseconds and ``Z``.

    The writer formats thousands of these a second, mostly within the same second: the
    date-and-time part is formatted once per second (one tuple, replaced whole: thread-safe).
    """
    global _last_second
    second = int(ts)
    last = _last_second
    if last[0] != second:
        last = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _last_second = last
    return f"{last[1]}.{min(999_999, round((ts - second) * 1_000_000)):06d}Z"


class ParamRedactor:
    """Statement parameters as the ``params`` setting says: redacted, kept or left out.

    ``redact`` hashes each value with BLAKE2b keyed by ``secret`` (derived from the project's
    ``SECRET_KEY``, which never leaves the client), prefixed with its type: ``"int:5f0c…"``.
    The same value gives the same token in every process of the deployment, so repeated
    statements compare across requests; without the key a token cannot be reversed, not even
    for small integers.
    """

    def __init__(self, mode: str, secret: bytes) -> None:
        self.mode = mode
        self._key = hashlib.blake2b(secret, digest_size=32, person=b"auditkit-params").digest()
        self._known: dict[tuple[type, Any], str] = {}  # ids and the like repeat: hash them once

    def token(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, list | tuple):
            return [self.token(v) for v in value]
        kind = type(value)
        try:
            return self._known[(kind, value)]
        except (KeyError, TypeError):
            pass
        h = hashlib.blake2b(repr(value).encode("utf-8", "replace"), key=self._key, digest_size=6)
        text = f"{kind.__name__}:{h.hexdigest()}"
        try:
            if len(self._known) >= 4096:
                self._known.clear()
            self._known[(kind, value)] = text
        except TypeError:  # unhashable: not remembered
            pass
        return text

    def __call__(self, params: Any, many: bool) -> Any:
        if self.mode == "off" or params is None:
            return None
        if many:
            return None  # executemany: the rows are counted ("many"), not written
        if self.mode == "keep":
            return dict(params) if isinstance(params, dict) else list(params)
        if isinstance(params, dict):
            return {str(k): self.token(v) for k, v in params.items()}
        return [self.token(v) for v in params]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def query_records(capture: Capture, redact: ParamRedactor) -> Iterator[dict[str, Any]]:
    """The query records of every statement of ``capture``, then its request or task record."""
    common = capture_common(capture)
    for entry in capture.statements:
        yield statement_record(entry, redact, common)
    yield _summary(capture)


def _summary(capture: Capture) -> dict[str, Any]:
    """The request (or task) record of ``capture``."""
    record: dict[str, Any] = {
        "type": capture.kind if capture.kind == "task" else "request",
        "ts": iso(capture.started),
        "request_id": capture.request_id,
        "endpoint": capture.endpoint,
        "route": capture.route,
        "url_name": capture.url_name,
        "view": capture.view,
        "method": capture.method,
        "status": capture.status,
        "duration_ms": _round(capture.duration_ms),
        "cpu_ms": _round(capture.cpu_ms),
        "db_ms": _round(capture.db_ms),
        "db_calls": capture.db_calls,
        "cache_ms": _round(capture.cache_ms),
        "cache_calls": capture.cache_calls,
        "cache_hits": capture.cache_hits,
        "cache_misses": capture.cache_misses,
        "mail_ms": _round(capture.mail_ms),
        "http_ms": _round(capture.http_ms),
        "pid": capture.pid,
        "thread": capture.thread,
        "sample_rate": capture.sample_rate,
    }
    if capture.trace_id:
        record["trace_id"] = capture.trace_id
    if capture.state is not None:
        record["state"] = capture.state
    if capture.statements_dropped:
        record["statements_dropped"] = capture.statements_dropped
    return record


def statement_record(
    entry: tuple[Any, ...], redact: ParamRedactor, common: dict[str, Any]
) -> dict[str, Any]:
    """One query record from a statement entry (see ``STATEMENT_FIELDS``)."""
    ts, duration, sql, params, many, alias, vendor, database, rows, error, stack = entry
    record: dict[str, Any] = {
        "ts": iso(ts),
        "duration_ms": round(duration, 3),
        "sql": sql,
        "params": redact(params, bool(many)),
        "alias": alias,
        "vendor": vendor,
        "database": database,
        **common,
    }
    if rows is not None and rows >= 0:
        record["rows"] = rows
    if many:
        record["many"] = many
    if error:
        record["error"] = error
    if stack:
        record["stack"] = stack
    return record


def _value_json(v: Any) -> str:
    """JSON of one parameter value; the common scalar types without the encoder's set-up."""
    kind = type(v)
    if kind is str:
        return _string(v)
    if v is None:
        return "null"
    if kind is bool:
        return "true" if v else "false"
    if kind is int:
        return str(v)
    return JSON.encode(v)


def _params_json(params: Any) -> str:
    if params is None:
        return "null"
    if type(params) is list:
        return "[" + ",".join(map(_value_json, params)) + "]"
    return JSON.encode(params)


class _SqlText:
    """JSON text of SQL strings, remembered: an N+1 sends the same text again and again."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self.known: dict[str, str] = {}

    def __call__(self, sql: str) -> str:
        text = self.known.get(sql)
        if text is None:
            text = _string(sql) if isinstance(sql, str) else JSON.encode(sql)
            if len(self.known) >= self.size:
                self.known.clear()
            self.known[sql] = text
        return text


_sql_text = _SqlText()


def query_lines(capture: Capture, redact: ParamRedactor) -> Iterator[str]:
    """The JSON lines of :func:`query_records`, built as text (the writer's fast path).

    The same records, field for field: the fields every statement of a capture repeats are
    encoded once, and SQL texts once per distinct text.
    """
    encode = JSON.encode
    tail = "".join(f",{_string(k)}:{encode(v)}" for k, v in capture_common(capture).items())
    places: dict[tuple[Any, Any, Any], str] = {}
    for (
        ts,
        duration,
        sql,
        params,
        many,
        alias,
        vendor,
        database,
        rows,
        error,
        stack,
    ) in capture.statements:
        place = places.get((alias, vendor, database))
        if place is None:
            place = (
                f',"alias":{encode(alias)},"vendor":{encode(vendor)},"database":{encode(database)}'
            )
            places[(alias, vendor, database)] = place
        extra = ""
        if rows is not None and rows >= 0:
            extra += f',"rows":{rows}'
        if many:
            extra += f',"many":{many}'
        if error:
            extra += f',"error":{encode(error)}'
        if stack:
            extra += f',"stack":{encode(stack)}'
        yield (
            f'{{"ts":"{iso(ts)}","duration_ms":{round(duration, 3)!r},"sql":{_sql_text(sql)},'
            f'"params":{_params_json(redact(params, bool(many)))}{place}{tail}{extra}}}\n'
        )
    yield encode(_summary(capture)) + "\n"


def capture_common(capture: Capture) -> dict[str, Any]:
    """The fields every record of ``capture`` repeats: request id, endpoint, method, pid, thread."""
    common: dict[str, Any] = {
        "request_id": capture.request_id,
        "endpoint": capture.endpoint,
        "method": capture.method,
        "pid": capture.pid,
        "thread": capture.thread,
    }
    if capture.trace_id:
        common["trace_id"] = capture.trace_id
    return common


def cache_records(
    entries: list[tuple[Any, ...]], common: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """Cache-operation records (format ``auditkit.cache``) of ``entries`` (see ``CACHE_FIELDS``)."""
    for entry in entries:
        values = dict(zip(CACHE_FIELDS, entry, strict=True))
        record: dict[str, Any] = {
            "type": "cache",
            "ts": iso(values["ts"]),
            "op": values["op"],
            "key": values["key"],
            "hit": values["hit"],
            "ttl_s": values["ttl_s"],
            "duration_ms": _round(values["duration_ms"]),
            "request_id": common.get("request_id"),
            "endpoint": common.get("endpoint"),
            "cache": values["cache"],
            "backend": values["backend"],
            "pid": common.get("pid"),
            "thread": common.get("thread"),
        }
        for optional in ("version", "keys", "hits", "error"):
            if values[optional] is not None:
                record[optional] = values[optional]
        yield record
