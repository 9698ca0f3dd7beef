"""``CaptureMiddleware``: one capture per sampled request, first in ``MIDDLEWARE``.

::

    MIDDLEWARE.insert(0, "auditkit.django.middleware.CaptureMiddleware")

Placed first, it sees every statement of the request, the other middleware's included. For
each request it decides once whether to capture it (the kill switch, then ``sample_rate``);
an unsampled request costs a random draw. A captured request gets:

* a **request id**: the configured ``request_id_header``, else ``X-Request-ID``, else the W3C
  ``traceparent`` (the id is ``<trace-id>-<parent-id>``, unique per call, and ``trace_id`` is
  kept), when the value is sane (at most 128 characters of ``A–Z a–z 0–9 . _ : -``); a new
  UUID otherwise. It is echoed in ``response_header`` (``X-Request-ID``) for access logs;
* its **route**, once the URL is resolved: the URL pattern (``/books/<int:pk>/``, the
  endpoint of every record), the URL name (``catalog:book-detail``) and the view's dotted
  path (``catalog.views.book_detail``). A request that resolves to no URL (a 404 before
  routing) has no endpoint;
* method, status, duration, the thread's CPU time, database time and calls, cache hits,
  misses and time, e-mail and outbound HTTP time — one request record after its statements.

The duration is the time until the response object is returned (a streaming response's body
is sent later). Under ASGI Django runs this middleware in a thread like any sync middleware.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase

from auditkit.django import runtime
from auditkit.django.context import CURRENT, UNSAMPLED, Capture
from auditkit.lazy_re import compile_later

__all__ = ["CaptureMiddleware", "request_ids"]

_SANE = compile_later(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT = compile_later(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


def _meta_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def request_ids(meta: dict[str, Any], header: str | None = None) -> tuple[str, str | None]:
    """``(request_id, trace_id)`` from a request's ``META`` (see the module docstring)."""
    trace_id = None
    parent = _TRACEPARENT.match(str(meta.get("HTTP_TRACEPARENT", "")).strip().lower())
    if parent and parent.group(1) != "0" * 32:
        trace_id = parent.group(1)
    for key in ([_meta_key(header)] if header else []) + ["HTTP_X_REQUEST_ID"]:
        value = str(meta.get(key, "")).strip()
        if value and _SANE.match(value):
            return value, trace_id
    if parent and trace_id:
        return f"{trace_id}-{parent.group(2)}", trace_id
    return uuid.uuid4().hex, trace_id


def _resolve(request: HttpRequest, capture: Capture) -> None:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return
    route = getattr(match, "route", None)
    if route is not None:
        capture.route = route
        capture.endpoint = route if route.startswith("^") else "/" + route
    capture.url_name = match.view_name or None
    capture.view = getattr(match, "_func_path", None)
    if capture.endpoint is None:
        capture.endpoint = capture.url_name or capture.view


class CaptureMiddleware:
    """Captures sampled requests whole (see the module docstring)."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        rt = runtime.current()
        if rt is None:
            return self.get_response(request)
        if not rt.sampled():
            if not rt.settings.untracked:
                return self.get_response(request)
            skipped = UNSAMPLED.set(True)  # its statements are not "outside a request"
            try:
                return self.get_response(request)
            finally:
                UNSAMPLED.reset(skipped)
        settings = rt.settings
        request_id, trace_id = request_ids(request.META, settings.request_id_header)
        capture = Capture(
            request_id,
            method=request.method,
            trace_id=trace_id,
            sample_rate=rt.sample_rate,
        )
        token = CURRENT.set(capture)
        response = None
        try:
            response = self.get_response(request)
            return response
        finally:
            CURRENT.reset(token)
            capture.finish()
            capture.status = response.status_code if response is not None else 500
            _resolve(request, capture)
            header = settings.response_header
            if response is not None and header and not response.has_header(header):
                response[header] = request_id
            rt.submit(("capture", capture))
