"""What is being captured right now: one request (or task) and what it has done so far.

A :class:`Capture` lives in the :data:`CURRENT` context variable from the moment the middleware
(or a Celery ``task_prerun`` signal) decides to capture a unit of work until it ends. The
statement recorder, the cache wrapper and the outbound timers add to it; nothing is written
while the request runs. At the end the whole capture is handed to the writer thread at once,
so a request is captured whole or not at all, and the request path does no I/O.

Entries are kept as tuples in the order of :data:`STATEMENT_FIELDS` and :data:`CACHE_FIELDS`
(cheaper to build than dicts); :mod:`auditkit.django.records` turns them into JSON records.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CACHE_FIELDS", "CURRENT", "STATEMENT_FIELDS", "UNSAMPLED", "Capture"]

#: the order of the values in one entry of :attr:`Capture.statements`
STATEMENT_FIELDS = (
    "ts",
    "duration_ms",
    "sql",
    "params",
    "many",
    "alias",
    "vendor",
    "database",
    "rows",
    "error",
    "stack",
)
#: the order of the values in one entry of :attr:`Capture.cache_ops`
CACHE_FIELDS = (
    "ts",
    "op",
    "key",
    "hit",
    "ttl_s",
    "duration_ms",
    "cache",
    "backend",
    "version",
    "keys",
    "hits",
    "error",
)


@dataclass(slots=True, eq=False)
class Capture:
    """One request or task being captured, and its running totals."""

    request_id: str
    kind: str = "http"  # http | task
    method: str | None = None
    trace_id: str | None = None
    endpoint: str | None = None
    route: str | None = None
    url_name: str | None = None
    view: str | None = None
    status: int | None = None
    state: str | None = None  # a task's final state (SUCCESS, FAILURE, …)
    sample_rate: float = 1.0
    started: float = field(default_factory=time.time)
    _t0: float = field(default_factory=time.perf_counter)
    _cpu0: float = field(default_factory=time.thread_time)
    duration_ms: float | None = None
    cpu_ms: float | None = None
    pid: int = field(default_factory=os.getpid)
    thread: str = field(default_factory=lambda: threading.current_thread().name)
    statements: list[tuple[Any, ...]] = field(default_factory=list)
    cache_ops: list[tuple[Any, ...]] = field(default_factory=list)
    db_ms: float = 0.0
    db_calls: int = 0
    statements_dropped: int = 0
    cache_ms: float = 0.0
    cache_calls: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    mail_ms: float = 0.0
    http_ms: float = 0.0
    #: nesting depth of timed outbound calls (only the outermost call is timed)
    outbound_depth: int = 0

    def finish(self) -> None:
        """Stop the clocks: wall-clock duration and the thread's CPU time since the start."""
        self.duration_ms = (time.perf_counter() - self._t0) * 1000.0
        self.cpu_ms = (time.thread_time() - self._cpu0) * 1000.0


#: the capture of the request or task running in this context (None: nothing is captured)
CURRENT: contextvars.ContextVar[Capture | None] = contextvars.ContextVar(
    "auditkit_capture", default=None
)

#: True inside a request or task that sampling left out: its work is not "untracked" work
UNSAMPLED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "auditkit_unsampled", default=False
)
