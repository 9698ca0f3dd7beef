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
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from auditkit.django.context import CACHE_FIELDS, STATEMENT_FIELDS, Capture

__all__ = [
    "CACHE_FORMAT",
    "CACHE_VERSION",
    "QUERIES_FORMAT",
    "QUERIES_VERSION",
    "ParamRedactor",
    "cache_records",
    "capture_common",
    "iso",
    "query_records",
    "statement_record",
]

QUERIES_FORMAT = "auditkit.queries"
QUERIES_VERSION = 2
CACHE_FORMAT = "auditkit.cache"
CACHE_VERSION = 1


def iso(ts: float) -> str:
    """A POSIX timestamp as ISO 8601 UTC with microseconds and ``Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


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

    def token(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, list | tuple):
            return [self.token(v) for v in value]
        h = hashlib.blake2b(repr(value).encode("utf-8", "replace"), key=self._key, digest_size=6)
        return f"{type(value).__name__}:{h.hexdigest()}"

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
    yield record


def statement_record(
    entry: tuple[Any, ...], redact: ParamRedactor, common: dict[str, Any]
) -> dict[str, Any]:
    """One query record from a statement entry (see ``STATEMENT_FIELDS``)."""
    values = dict(zip(STATEMENT_FIELDS, entry, strict=True))
    record: dict[str, Any] = {
        "ts": iso(values["ts"]),
        "duration_ms": _round(values["duration_ms"]),
        "sql": values["sql"],
        "params": redact(values["params"], bool(values["many"])),
        "alias": values["alias"],
        "vendor": values["vendor"],
        "database": values["database"],
        **common,
    }
    if values["rows"] is not None and values["rows"] >= 0:
        record["rows"] = values["rows"]
    if values["many"]:
        record["many"] = values["many"]
    if values["error"]:
        record["error"] = values["error"]
    if values["stack"]:
        record["stack"] = values["stack"]
    return record


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


def cache_records(entries: list[tuple[Any, ...]], common: dict[str, Any]) -> Iterator[dict[str, Any]]:
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
