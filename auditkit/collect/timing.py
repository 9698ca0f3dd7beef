"""Snapshot timing shared by the collectors: interval parsing and file-name time stamps.

``--every 60s`` style intervals (``500ms``, ``5s``, ``2m``, ``1h``, or plain seconds) and UTC
stamps that sort in time order as text, so that snapshot files named with them are ordered by
name (which is how auditkit orders snapshots)::

    >>> parse_interval("2m")
    120.0
    >>> stamp(0.25)
    '19700101T000000.250Z'
"""

from __future__ import annotations

import re
import time

from auditkit.errors import ConfigError
from auditkit.lazy_re import compile_later

__all__ = ["parse_interval", "stamp"]

_INTERVAL = compile_later(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$", re.I)
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_interval(text: str | float) -> float:
    """Seconds in ``text`` (``"60s"``, ``"2m"``, ``"500ms"``, ``"1h"``, ``"90"``)."""
    if isinstance(text, int | float):
        return float(text)
    m = _INTERVAL.match(text)
    if not m:
        raise ConfigError(f"{text!r} is not an interval", hint="write it like 500ms, 5s, 2m or 1h")
    return float(m.group(1)) * _FACTORS[(m.group(2) or "s").lower()]


def stamp(ts: float | None = None) -> str:
    """UTC time ``ts`` (now by default) as ``YYYYMMDDTHHMMSS.mmmZ``: sorts as it happened."""
    ts = time.time() if ts is None else ts
    whole = int(ts)
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(whole)) + f".{int((ts - whole) * 1000):03d}Z"
