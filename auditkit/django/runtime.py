"""Installing and switching capture: the one :class:`Runtime` of a process.

``AuditkitConfig.ready()`` calls :func:`install_from_settings`, which reads
``AUDITKIT_CAPTURE`` (:mod:`auditkit.django.conf`) and, when it is set and valid, installs the
recorders — statements (:mod:`~auditkit.django.recorder`), caches
(:mod:`~auditkit.django.cache`), e-mail and outbound HTTP (:mod:`~auditkit.django.outbound`),
Celery tasks (:mod:`~auditkit.django.tasks`) — starts the writer (lazily, on first use, so a
``fork`` after start-up is safe) and queues the model dump. The middleware asks
:func:`current` for the runtime and :meth:`Runtime.active` whether to capture at all.

Kill switch, three ways: ``"enabled": False`` (or ``AUDITKIT_CAPTURE_ENABLED=0``) installs
nothing; a file named ``kill_file`` (``OFF``) in the capture folder stops recording within a
second, in every process, and removing it resumes; :func:`uninstall` removes everything.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import platform
import random
import time
from typing import Any

from auditkit.django.conf import CaptureSettings, parse_settings
from auditkit.django.records import ParamRedactor
from auditkit.django.writer import CaptureWriter

__all__ = ["Runtime", "current", "install", "install_from_settings", "uninstall"]

log = logging.getLogger("auditkit.capture")

#: how often the kill file is looked for, seconds
KILL_CHECK_S = 1.0


class Runtime:
    """The capture settings, writer and kill switch of this process."""

    def __init__(self, settings: CaptureSettings, writer: CaptureWriter) -> None:
        self.settings = settings
        self.writer = writer
        self.sample_rate = settings.sample_rate
        self._off = False
        self._next_check = 0.0

    def active(self) -> bool:
        """False while the kill file exists (looked for at most once a second)."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + KILL_CHECK_S
            self._off = self.settings.kill_path.exists()
        return not self._off

    def sampled(self) -> bool:
        """Whether to capture the next request or task: active, and drawn by the sample rate."""
        if not self.active():
            return False
        return self.sample_rate >= 1.0 or random.random() < self.sample_rate

    def submit(self, item: Any) -> bool:
        """Hand a finished capture (or an untracked entry) to the writer."""
        return self.writer.submit(item)


_runtime: Runtime | None = None


def current() -> Runtime | None:
    """The installed runtime, or None when capture is not installed."""
    return _runtime


def _meta(settings: CaptureSettings) -> dict[str, Any]:
    import django

    from auditkit import __version__

    return {
        "writer": "auditkit.django",
        "auditkit": __version__,
        "django": django.get_version(),
        "python": platform.python_version(),
        "sample_rate": settings.sample_rate,
        "params": {"redact": "redacted", "keep": "kept", "off": "off"}[settings.params],
    }


def _secret() -> bytes:
    from django.conf import settings

    key = getattr(settings, "SECRET_KEY", "") or ""
    if not key:  # no secret: a per-process key (equal values still compare within a process)
        return os.urandom(32)
    return hashlib.sha256(b"auditkit-capture:" + str(key).encode()).digest()


def install(settings: CaptureSettings) -> Runtime:
    """Install every recorder the settings ask for and return the runtime."""
    global _runtime
    from django.conf import settings as django_settings

    from auditkit.django import cache, outbound, recorder, tasks

    if _runtime is not None:
        uninstall()
    writer = CaptureWriter(settings, ParamRedactor(settings.params, _secret()), _meta(settings))
    runtime = Runtime(settings, writer)
    untracked = writer.submit if settings.untracked else None
    if settings.statements:
        recorder.install(
            stack_depth=settings.stack_depth if settings.stack else 0,
            max_statements=settings.max_statements,
            untracked=untracked,
        )
    if settings.cache:
        cache.install(untracked=untracked)
    if settings.outbound:
        outbound.install(getattr(django_settings, "EMAIL_BACKEND", None))
    if settings.celery:
        tasks.install(runtime.active, writer.submit, settings.sample_rate)
    if settings.dump_models:
        writer.submit(("models",))
    _runtime = runtime
    return runtime


def uninstall() -> None:
    """Remove every recorder and close the writer (what is queued is written first)."""
    global _runtime
    from auditkit.django import cache, outbound, recorder, tasks

    runtime, _runtime = _runtime, None
    recorder.uninstall()
    cache.uninstall()
    outbound.uninstall()
    tasks.uninstall()
    if runtime is not None:
        runtime.writer.close()


def install_from_settings() -> Runtime | None:
    """Install capture as ``AUDITKIT_CAPTURE`` says; None when not configured, off or invalid.

    An invalid configuration is reported by the system checks (``manage.py check``) and logged
    here; it installs nothing rather than stop the application.
    """
    from django.conf import settings

    parsed, problems = parse_settings(getattr(settings, "AUDITKIT_CAPTURE", None))
    for _id, message, _hint in problems:
        log.warning("auditkit capture is off: %s", message)
    if parsed is None:
        return None
    return install(parsed)


def _close_at_exit() -> None:
    if _runtime is not None:
        _runtime.writer.close(timeout=5.0)


def _after_fork() -> None:
    if _runtime is not None:
        _runtime.writer.after_fork()


atexit.register(_close_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
