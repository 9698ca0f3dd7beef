"""The statement recorder: ``connection.execute_wrapper`` on every database connection.

Django runs every statement sent through a cursor (``execute`` and ``executemany``) through the
connection's ``execute_wrappers``. :func:`install` appends :func:`record_statement` to every
connection that exists, and — through the ``connection_created`` signal, which Django sends
each time a connection (of any alias, in any thread) is opened — to every connection opened
later, so nothing in ``DATABASES`` changes and no alias is missed.

The wrapper times the statement and appends one tuple to the current capture (see
:mod:`auditkit.django.context`); outside a captured request or task it costs one context
variable lookup. It never changes what the statement does: the result and any exception pass
through unchanged (the exception's class name is recorded).
"""

from __future__ import annotations

import os
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from auditkit.django.context import CURRENT, UNSAMPLED

__all__ = ["install", "record_statement", "uninstall"]

#: settings the wrapper reads on every statement, set by :func:`install`
_state: dict[str, Any] = {"untracked": None, "stack": 0, "max": 5000}

_LIBRARY_DIRS: tuple[str, ...] = ()


def _library_dirs() -> tuple[str, ...]:
    """Folders whose frames are not application code: the standard library, site-packages,
    Django and auditkit itself."""
    import django

    import auditkit

    paths = sysconfig.get_paths()
    dirs = {
        paths.get("stdlib"),
        paths.get("platstdlib"),
        paths.get("purelib"),
        paths.get("platlib"),
    }
    dirs |= {os.path.dirname(django.__file__), os.path.dirname(auditkit.__file__)}
    return tuple(sorted(d + os.sep for d in dirs if d))


def _stack(depth: int) -> str | None:
    """The innermost ``depth`` application frames, outermost first: ``file:line function``."""
    frames: list[str] = []
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and len(frames) < depth:
        filename = frame.f_code.co_filename
        if not filename.startswith(_LIBRARY_DIRS) and not filename.startswith("<"):
            frames.append(f"{os.path.relpath(filename)}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
    return "\n".join(reversed(frames)) or None


def record_statement(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """The execute wrapper: run the statement, then note it on the current capture."""
    capture = CURRENT.get()
    if capture is None and _state["untracked"] is None:
        return execute(sql, params, many, context)
    error = None
    t0 = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    except Exception as exc:
        error = type(exc).__name__
        raise
    finally:
        ms = (time.perf_counter() - t0) * 1000.0
        connection = context["connection"]
        cursor = context.get("cursor")
        try:
            rows = cursor.rowcount if cursor is not None else None
        except Exception:
            rows = None
        rows_sent = None
        if many:  # executemany: count the parameter rows, keep none
            rows_sent = len(params) if hasattr(params, "__len__") else -1
            params = None
        elif params is not None:  # a copy: the writer reads it later, on its own thread
            params = dict(params) if isinstance(params, dict) else tuple(params)
        entry = (
            time.time(),
            ms,
            sql,
            params,
            rows_sent,
            connection.alias,
            connection.vendor,
            connection.settings_dict.get("NAME"),
            rows if isinstance(rows, int) else None,
            error,
            _stack(_state["stack"]) if _state["stack"] else None,
        )
        if capture is not None:
            capture.db_ms += ms
            capture.db_calls += 1
            if len(capture.statements) < _state["max"]:
                capture.statements.append(entry)
            else:
                capture.statements_dropped += 1
        else:
            _state["untracked"](entry)


def _untracked_sink(submit: Callable[[Any], bool]) -> Callable[[tuple[Any, ...]], None]:
    def sink(entry: tuple[Any, ...]) -> None:
        if UNSAMPLED.get():
            return
        common = {
            "request_id": None,
            "endpoint": None,
            "method": None,
            "pid": os.getpid(),
            "thread": threading.current_thread().name,
        }
        submit(("statement", entry, common))

    return sink


def _add(connection: Any) -> None:
    if record_statement not in connection.execute_wrappers:
        connection.execute_wrappers.append(record_statement)


def _on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    _add(connection)


def install(
    *, stack_depth: int, max_statements: int, untracked: Callable[[Any], bool] | None
) -> None:
    """Record statements of every connection, open now or opened later (see the docstring)."""
    global _LIBRARY_DIRS
    from django.db import connections
    from django.db.backends.signals import connection_created

    _LIBRARY_DIRS = _library_dirs()
    _state["stack"] = stack_depth
    _state["max"] = max_statements
    _state["untracked"] = _untracked_sink(untracked) if untracked is not None else None
    connection_created.connect(
        _on_connection_created, weak=False, dispatch_uid="auditkit.capture.statements"
    )
    for connection in connections.all(initialized_only=True):
        _add(connection)


def uninstall() -> None:
    """Stop recording: disconnect the signal and remove the wrapper from this thread's
    connections (other threads' connections keep it; without a capture it only passes through)."""
    from django.db import connections
    from django.db.backends.signals import connection_created

    connection_created.disconnect(dispatch_uid="auditkit.capture.statements")
    _state["untracked"] = None
    for connection in connections.all(initialized_only=True):
        while record_statement in connection.execute_wrappers:
            connection.execute_wrappers.remove(record_statement)
