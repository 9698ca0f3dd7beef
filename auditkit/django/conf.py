"""The capture app's settings: ``AUDITKIT_CAPTURE`` in the client's Django settings.

Only ``dir`` is required::

    AUDITKIT_CAPTURE = {"dir": "/var/log/auditkit"}

Every key, its default and what it does:

======================= =============== ===========================================================
key                     default         meaning
======================= =============== ===========================================================
``dir``                 (required)      folder the capture files go to (created if missing)
``enabled``             ``True``        ``False`` installs nothing (also: environment variable
                                        ``AUDITKIT_CAPTURE_ENABLED=0``)
``kill_file``           ``"OFF"``       while a file of this name exists in ``dir`` nothing is
                                        recorded (checked once a second; no restart needed)
``sample_rate``         ``1.0``         fraction of requests (and tasks) captured, always whole
``params``              ``"redact"``    statement parameters: ``redact`` (each value replaced by a
                                        keyed hash: equal values stay equal, values cannot be read
                                        back), ``keep`` (as sent) or ``off`` (not written)
``stack``               ``False``       record the application frames that issued each statement
``stack_depth``         ``5``           how many application frames, innermost last
``request_id_header``   ``None``        an incoming header holding the request id (tried before
                                        ``X-Request-ID`` and ``traceparent``)
``response_header``     ``"X-Request-ID"`` response header echoing the id (``None``: none)
``statements``          ``True``        record statements (``connection.execute_wrapper``)
``cache``               ``True``        record cache operations of every configured cache
``celery``              ``True``        record Celery tasks when Celery is installed
``outbound``            ``True``        time e-mail sending and outbound HTTP calls
``untracked``           ``False``       also record statements and cache operations outside any
                                        request or task (management commands, threads)
``max_statements``      ``5000``        statements kept per request (the rest are counted)
``max_bytes``           ``67108864``    size at which a capture file is closed and a new one begun
``max_files``           ``20``          closed files kept per stream and process (oldest deleted)
``max_total_bytes``     ``2147483648``  capture pauses while ``dir`` holds more than this
``queue_size``          ``10000``       requests waiting for the writer thread; beyond, dropped
                                        and counted
``dump_models``         ``True``        write the model dump (``models.json``) at start-up
======================= =============== ===========================================================

Problems are reported as Django system-check messages (``auditkit.E001``…, see
:mod:`auditkit.django.checks`); an invalid configuration installs nothing rather than break
the application.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["ENV_SWITCH", "PARAM_MODES", "CaptureSettings", "parse_settings"]

#: environment variable that switches capture off without touching the settings (``0``/``off``)
ENV_SWITCH = "AUDITKIT_CAPTURE_ENABLED"
PARAM_MODES = ("redact", "keep", "off")


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """The validated ``AUDITKIT_CAPTURE`` setting (see the module docstring for every key)."""

    dir: Path
    enabled: bool = True
    kill_file: str = "OFF"
    sample_rate: float = 1.0
    params: str = "redact"
    stack: bool = False
    stack_depth: int = 5
    request_id_header: str | None = None
    response_header: str | None = "X-Request-ID"
    statements: bool = True
    cache: bool = True
    celery: bool = True
    outbound: bool = True
    untracked: bool = False
    max_statements: int = 5000
    max_bytes: int = 64 * 1024 * 1024
    max_files: int = 20
    max_total_bytes: int = 2 * 1024 * 1024 * 1024
    queue_size: int = 10_000
    dump_models: bool = True

    @property
    def kill_path(self) -> Path:
        """The file whose presence switches capture off."""
        return self.dir / self.kill_file


_BOOLS = {
    "enabled",
    "stack",
    "statements",
    "cache",
    "celery",
    "outbound",
    "untracked",
    "dump_models",
}
_POSITIVE_INTS = {
    "stack_depth",
    "max_statements",
    "max_bytes",
    "max_files",
    "max_total_bytes",
    "queue_size",
}
_OPTIONAL_TEXT = {"request_id_header", "response_header"}


def _env_disabled() -> bool:
    return os.environ.get(ENV_SWITCH, "").strip().lower() in ("0", "false", "off", "no")


def parse_settings(raw: Any) -> tuple[CaptureSettings | None, list[tuple[str, str, str]]]:
    """``AUDITKIT_CAPTURE`` → settings, and problems as ``(id, message, hint)``.

    Returns ``(None, [])`` when capture is not configured or switched off, and ``(None,
    problems)`` when the configuration is invalid: capture then installs nothing.
    """
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, [
            (
                "auditkit.E001",
                f"AUDITKIT_CAPTURE must be a dict, not {type(raw).__name__}",
                'AUDITKIT_CAPTURE = {"dir": "/var/log/auditkit"}',
            )
        ]
    known = {f.name for f in fields(CaptureSettings)}
    problems: list[tuple[str, str, str]] = []
    unknown = sorted(set(raw) - known)
    if unknown:
        problems.append(
            (
                "auditkit.E002",
                f"AUDITKIT_CAPTURE has unknown {'key' if len(unknown) == 1 else 'keys'}: {', '.join(map(str, unknown))}",
                f"known keys: {', '.join(sorted(known))}",
            )
        )
    values: dict[str, Any] = {}
    directory = raw.get("dir")
    if not directory or not isinstance(directory, str | os.PathLike):
        problems.append(
            (
                "auditkit.E003",
                "AUDITKIT_CAPTURE has no 'dir'",
                "name the folder the capture files go to, e.g. /var/log/auditkit",
            )
        )
    else:
        values["dir"] = Path(directory)
    for key, value in raw.items():
        if key not in known or key == "dir":
            continue
        if key in _BOOLS and not isinstance(value, bool):
            problems.append(
                ("auditkit.E004", f"AUDITKIT_CAPTURE[{key!r}] must be True or False", "")
            )
        elif key in _POSITIVE_INTS and (
            not isinstance(value, int) or isinstance(value, bool) or value <= 0
        ):
            problems.append(
                ("auditkit.E004", f"AUDITKIT_CAPTURE[{key!r}] must be a positive integer", "")
            )
        elif key == "sample_rate" and (
            not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1
        ):
            problems.append(
                (
                    "auditkit.E004",
                    "AUDITKIT_CAPTURE['sample_rate'] must be a number from 0 to 1",
                    "0.1 captures one request in ten",
                )
            )
        elif key == "params" and value not in PARAM_MODES:
            problems.append(
                (
                    "auditkit.E004",
                    f"AUDITKIT_CAPTURE['params'] must be one of {', '.join(PARAM_MODES)}",
                    "'redact' keeps equal values equal without writing them",
                )
            )
        elif key in _OPTIONAL_TEXT and value is not None and not isinstance(value, str):
            problems.append(("auditkit.E004", f"AUDITKIT_CAPTURE[{key!r}] must be a string", ""))
        elif key == "kill_file" and (not isinstance(value, str) or not value or "/" in value):
            problems.append(
                ("auditkit.E004", "AUDITKIT_CAPTURE['kill_file'] must be a plain file name", "")
            )
        else:
            values[key] = float(value) if key == "sample_rate" else value
    if problems:
        return None, problems
    settings = CaptureSettings(**values)
    if not settings.enabled or _env_disabled():
        return None, []
    return settings, []
