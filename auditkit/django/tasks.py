"""Background tasks: Celery's ``task_prerun`` / ``task_postrun`` signals, when Celery is installed.

A task is captured like a request (sampled by the same rate, whole or not at all): its
statements and cache operations carry the task id as ``request_id`` and ``task:<task name>``
as the endpoint, and a task record (``"type": "task"``) gives its name, duration, CPU time,
database time and calls and final state. An eager task run inside a request is captured on
its own and the request's capture resumes after it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextvars import Token
from typing import Any

from auditkit.django.context import CURRENT, UNSAMPLED, Capture

__all__ = ["install", "uninstall"]

#: task id → (capture, context token) of tasks running in this process
_running: dict[str, tuple[Capture, Token[Capture | None]]] = {}
#: task id → token of UNSAMPLED for tasks that sampling left out
_skipped: dict[str, Token[bool]] = {}
_state: dict[str, Any] = {"active": None, "submit": None, "rate": 1.0}


def _prerun(sender: Any = None, task_id: str | None = None, task: Any = None, **kw: Any) -> None:
    active: Callable[[], bool] | None = _state["active"]
    if active is None or not task_id or not active():
        return
    rate = _state["rate"]
    if rate < 1.0 and random.random() >= rate:
        _skipped[str(task_id)] = UNSAMPLED.set(True)
        return
    name = getattr(task, "name", None) or getattr(sender, "name", None) or "task"
    capture = Capture(str(task_id), kind="task", endpoint=f"task:{name}", sample_rate=rate)
    capture.view = name
    _running[str(task_id)] = (capture, CURRENT.set(capture))


def _postrun(task_id: str | None = None, state: str | None = None, **kw: Any) -> None:
    skipped = _skipped.pop(str(task_id), None)
    if skipped is not None:
        try:
            UNSAMPLED.reset(skipped)
        except ValueError:
            UNSAMPLED.set(False)
    running = _running.pop(str(task_id), None)
    if running is None:
        return
    capture, token = running
    try:
        CURRENT.reset(token)
    except ValueError:  # reset from another context (a pool that switched): leave it
        CURRENT.set(None)
    capture.finish()
    capture.state = state
    submit = _state["submit"]
    if submit is not None:
        submit(("capture", capture))


def install(active: Callable[[], bool], submit: Callable[[Any], bool], sample_rate: float) -> bool:
    """Connect to Celery's task signals; False when Celery is not importable."""
    try:
        from celery import signals
    except ImportError:
        return False
    _state.update(active=active, submit=submit, rate=sample_rate)
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid="auditkit.capture.prerun")
    signals.task_postrun.connect(_postrun, weak=False, dispatch_uid="auditkit.capture.postrun")
    return True


def uninstall() -> None:
    """Disconnect from Celery's signals (if connected)."""
    _state.update(active=None, submit=None)
    try:
        from celery import signals
    except ImportError:
        return
    signals.task_prerun.disconnect(dispatch_uid="auditkit.capture.prerun")
    signals.task_postrun.disconnect(dispatch_uid="auditkit.capture.postrun")
    _running.clear()
    _skipped.clear()
