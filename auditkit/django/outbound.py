"""Time a request spends waiting on work outside the process: e-mail and outbound HTTP.

These let an audit tell a view that is slow because it computes (CPU time close to its
duration: password hashing, rendering) from one that waits (on an SMTP relay, a payment API):

* ``mail_ms`` — time in ``send_messages`` of Django e-mail backends: every subclass of
  ``BaseEmailBackend`` imported when the app starts, the configured ``EMAIL_BACKEND`` included
  (Django's SMTP, console, file, in-memory and dummy backends, and the client's own);
* ``http_ms`` — time in ``http.client`` connections and responses (``connect``, ``send``,
  ``getresponse``, ``read``/``readinto``), which urllib, ``requests`` and urllib3 all go
  through, plus urllib3's own ``connect`` (which opens its sockets itself): the round trip from
  the first byte sent to the last byte read, connection set-up included.

Each is a thin wrapper around the original method: arguments, result and exceptions pass
through untouched, and nested calls (``request`` → ``send`` → ``connect``) are timed once, at
the outermost. Outside a captured request or task the wrapper costs one context-variable
lookup. :func:`uninstall` restores the original methods.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any

from auditkit.django.context import CURRENT

__all__ = ["install", "uninstall"]

#: (class, method name, original) of everything wrapped, for :func:`uninstall`
_patched: list[tuple[type, str, Callable[..., Any]]] = []


def _timed(method: Callable[..., Any], counter: str) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        capture = CURRENT.get()
        if capture is None or capture.outbound_depth:
            return method(*args, **kwargs)
        capture.outbound_depth += 1
        t0 = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            capture.outbound_depth -= 1
            ms = (time.perf_counter() - t0) * 1000.0
            setattr(capture, counter, getattr(capture, counter) + ms)

    wrapper._auditkit_original = method  # type: ignore[attr-defined]
    return wrapper


def _patch(cls: type, name: str, counter: str) -> None:
    method = cls.__dict__.get(name)
    if method is None or hasattr(method, "_auditkit_original"):
        return
    setattr(cls, name, _timed(method, counter))
    _patched.append((cls, name, method))


def _subclasses(cls: type) -> list[type]:
    out, todo = [], [cls]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(current.__subclasses__())
    return out


def install(email_backend: str | None = None) -> None:
    """Wrap the e-mail backends and the HTTP client classes (see the module docstring)."""
    import http.client

    from django.core.mail.backends.base import BaseEmailBackend
    from django.utils.module_loading import import_string

    for name in filter(None, [email_backend, "django.core.mail.backends.smtp.EmailBackend"]):
        # a broken EMAIL_BACKEND is Django's error to report, not ours
        with contextlib.suppress(Exception):
            import_string(name)
    for cls in _subclasses(BaseEmailBackend):
        _patch(cls, "send_messages", "mail_ms")
    for name in ("connect", "send", "getresponse"):
        _patch(http.client.HTTPConnection, name, "http_ms")
    _patch(http.client.HTTPSConnection, "connect", "http_ms")
    for name in ("read", "readinto", "read1", "readline"):
        _patch(http.client.HTTPResponse, name, "http_ms")
    try:
        import urllib3.connection
    except ImportError:
        return
    for cls in (urllib3.connection.HTTPConnection, urllib3.connection.HTTPSConnection):
        _patch(cls, "connect", "http_ms")


def uninstall() -> None:
    """Put every wrapped method back."""
    while _patched:
        cls, name, method = _patched.pop()
        setattr(cls, name, method)
