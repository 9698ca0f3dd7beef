"""Request ids in logs: a middleware, a logging filter, a UTC formatter and a file handler.

Every request gets an id (the caller's ``X-Request-ID`` when it sends a sane one, else a new
UUID), held in a :class:`contextvars.ContextVar` for the duration of the request and echoed in
the ``X-Request-ID`` response header, where the web server's access log picks it up. The
filter copies it onto every log record, so each ``django.db.backends`` line says which request
issued the statement — what lets a consultant group statements by request and see an N+1.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from django.http import HttpRequest, HttpResponse

__all__ = [
    "REQUEST_ID",
    "AppendFileHandler",
    "RequestIdFilter",
    "RequestIdMiddleware",
    "UTCFormatter",
]

#: the id of the request being served by this thread, "-" outside requests
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


class RequestIdMiddleware:
    """Sets :data:`REQUEST_ID` for the request and returns it as ``X-Request-ID``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            REQUEST_ID.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (``-`` outside a request); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class UTCFormatter(logging.Formatter):
    """``asctime`` as ISO 8601 in UTC with milliseconds and offset: ``2025-01-31T09:15:02.117+00:00``."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class AppendFileHandler(logging.FileHandler):
    """A file handler safe for several worker processes appending to one file.

    The file is opened in append mode with a large buffer and flushed after every record, so
    each record reaches the kernel in one ``write`` on an ``O_APPEND`` descriptor and records
    of different processes never interleave, however long the SQL.
    """

    def __init__(self, filename: str, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "a")
        kwargs.setdefault("encoding", "utf-8")
        super().__init__(filename, **kwargs)

    def _open(self) -> IO[str]:
        return open(
            self.baseFilename,
            self.mode,
            buffering=1 << 20,
            encoding=self.encoding,
            errors=self.errors,
        )
