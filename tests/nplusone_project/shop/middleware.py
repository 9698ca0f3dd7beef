"""A request id per request, available to logging (what a capture app does at a client)."""

from __future__ import annotations

import contextvars
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

_request: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("request", default=None)


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        match = getattr(request, "resolver_match", None)
        token = _request.set({"request_id": uuid.uuid4().hex, "method": request.method, "path": request.path,
                              "endpoint": match.route if match else request.path})
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _request.get() or {}
        record.request_id = ctx.get("request_id")
        record.endpoint = ctx.get("path")
        record.method = ctx.get("method")
        return True


class JsonLinesFormatter(logging.Formatter):
    """The JSON-lines query log format auditkit defines (docs/formats/jsonl-queries.md)."""

    def format(self, record: logging.LogRecord) -> str:
        params = getattr(record, "params", None)
        return json.dumps({
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "duration_ms": round(float(getattr(record, "duration", 0.0)) * 1000.0, 3),
            "sql": getattr(record, "sql", record.getMessage()),
            "params": list(params) if isinstance(params, list | tuple) else params,
            "alias": getattr(record, "alias", None),
            "request_id": getattr(record, "request_id", None),
            "endpoint": getattr(record, "endpoint", None),
            "method": getattr(record, "method", None),
            "pid": record.process,
            "thread": record.threadName,
        }, default=str)

