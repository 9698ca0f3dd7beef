"""Django system checks of the capture settings (``manage.py check``).

Each problem has a stable id and a hint, the way Django reports its own configuration
problems:

* ``auditkit.E001`` — ``AUDITKIT_CAPTURE`` is not a dict;
* ``auditkit.E002`` — unknown keys (a typo would otherwise be silently ignored);
* ``auditkit.E003`` — no ``dir``;
* ``auditkit.E004`` — a value of the wrong type or range;
* ``auditkit.W001`` — the capture folder cannot be created or written;
* ``auditkit.W002`` — ``CaptureMiddleware`` is not the first middleware (statements of the
  middleware before it would carry no request id).
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from auditkit.django.conf import parse_settings

__all__ = ["check_capture"]

MIDDLEWARE = "auditkit.django.middleware.CaptureMiddleware"


@register()
def check_capture(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The problems of ``AUDITKIT_CAPTURE`` and of the middleware's place."""
    raw = getattr(settings, "AUDITKIT_CAPTURE", None)
    parsed, problems = parse_settings(raw)
    out: list[CheckMessage] = [
        Error(message, hint=hint or None, id=ident) for ident, message, hint in problems
    ]
    if parsed is None:
        return out
    directory = parsed.dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        writable = os.access(directory, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        out.append(
            Warning(
                f"the capture folder {directory} cannot be written",
                hint="create it and give the application's user write access",
                id="auditkit.W001",
            )
        )
    middleware = list(getattr(settings, "MIDDLEWARE", []) or [])
    if MIDDLEWARE not in middleware:
        out.append(
            Warning(
                f"{MIDDLEWARE} is not in MIDDLEWARE: no request is captured",
                hint=f'MIDDLEWARE.insert(0, "{MIDDLEWARE}")',
                id="auditkit.W002",
            )
        )
    elif middleware[0] != MIDDLEWARE:
        out.append(
            Warning(
                f"{MIDDLEWARE} is not the first middleware",
                hint="statements run by the middleware before it carry no request id; "
                f'MIDDLEWARE.insert(0, "{MIDDLEWARE}")',
                id="auditkit.W002",
            )
        )
    return out
