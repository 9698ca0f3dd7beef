"""Read-only live collection from Redis (or Valkey): INFO snapshots the loaders read.

:func:`collect_redis` connects with the URL held in an environment variable (the URL and its
password are never stored, logged or written) and sends only commands that read:
``INFO ALL`` (twice, ``interval_s`` apart, so hit ratios and rates cover a known window),
``CONFIG GET maxmemory*`` and ``SLOWLOG GET``. Every command goes through one guard that refuses
anything outside :data:`READ_ONLY_COMMANDS`, so no code path here can change data. It writes,
into ``out_dir``:

================= ========================================================== ============
file              content                                                    loader
================= ========================================================== ============
info_before.txt   ``INFO ALL`` at the start of the window                    redis_info
info_after.txt    ``INFO ALL`` at the end of the window                      redis_info
config.txt        ``maxmemory`` and ``maxmemory-policy`` as ``key:value``    redis_info
slowlog.txt       ``SLOWLOG GET`` entries (id, time, µs, command name only)  (documentation)
================= ========================================================== ============

The slow log keeps only each command's *name*: its arguments are client data (keys, values).

Example::

    $ export CLIENT_REDIS_URL='redis://:secret@cache.example:6379/0'
    >>> collect_redis("CLIENT_REDIS_URL", "data/acme/redis", interval_s=60)   # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditkit.errors import CollectorError

__all__ = ["READ_ONLY_COMMANDS", "RedisCollection", "collect_redis"]

#: the only commands this collector may send
READ_ONLY_COMMANDS = frozenset({("INFO",), ("CONFIG", "GET"), ("SLOWLOG", "GET"), ("PING",)})


@dataclass
class RedisCollection:
    """What a collection wrote."""

    files: list[Path] = field(default_factory=list)
    window_s: float = 0.0


class _Guarded:
    """A Redis connection that can only send :data:`READ_ONLY_COMMANDS`."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.sent: list[tuple[str, ...]] = []

    def __call__(self, *args: str) -> Any:
        words = tuple(a.upper() for a in args[:2])
        if words[:1] not in READ_ONLY_COMMANDS and words not in READ_ONLY_COMMANDS:
            raise CollectorError(f"refusing to send {args[0]!r}: the Redis collector only reads")
        self.sent.append(tuple(args))
        return self._client.execute_command(*args)


def _connect(url_env: str) -> Any:
    import redis

    url = os.environ.get(url_env)
    if not url:
        raise CollectorError(
            f"environment variable {url_env} is not set",
            hint="export it with the Redis URL (redis://…)",
        )
    try:
        client = redis.Redis.from_url(url, socket_timeout=10, decode_responses=False)
        # raw INFO text: the loaders read the server's own format
        client.set_response_callback("INFO", lambda response, **kw: response)
        client.ping()
    except redis.RedisError as exc:
        # the message may not contain the URL (it holds the password): name the variable only
        raise CollectorError(
            f"cannot connect to the Redis named by {url_env}: {type(exc).__name__}"
        ) from None
    return client


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def collect_redis(
    url_env: str, out_dir: str | Path, *, interval_s: float = 60.0, slowlog: int = 128
) -> RedisCollection:
    """Write INFO snapshots (before/after ``interval_s``), memory settings and the slow log."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    client = _connect(url_env)
    send = _Guarded(client)
    result = RedisCollection()
    start = time.monotonic()
    try:
        before = _text(send("INFO", "ALL"))
        (out / "info_before.txt").write_text(before, encoding="utf-8")
        result.files.append(out / "info_before.txt")
        config = send("CONFIG", "GET", "maxmemory*")
        if isinstance(config, dict):
            items = [(_text(k), _text(v)) for k, v in config.items()]
        else:
            flat = [_text(x) for x in (config or [])]
            items = list(zip(flat[::2], flat[1::2], strict=False))
        lines = ["# Config"] + [f"{k}:{v}" for k, v in sorted(items)]
        (out / "config.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        result.files.append(out / "config.txt")
        entries = send("SLOWLOG", "GET", str(slowlog)) or []
        log = ["id\ttime\tmicroseconds\tcommand"]
        for entry in entries:
            command = entry[3][0] if len(entry) > 3 and entry[3] else b"?"
            log.append(f"{entry[0]}\t{entry[1]}\t{entry[2]}\t{_text(command).upper()}")
        (out / "slowlog.txt").write_text("\n".join(log) + "\n", encoding="utf-8")
        result.files.append(out / "slowlog.txt")
        time.sleep(max(0.0, interval_s - (time.monotonic() - start)))
        after = _text(send("INFO", "ALL"))
        (out / "info_after.txt").write_text(after, encoding="utf-8")
        result.files.append(out / "info_after.txt")
    finally:
        client.close()
    result.window_s = time.monotonic() - start
    return result
