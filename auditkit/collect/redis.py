"""Read-only live collection from Redis (or Valkey): INFO snapshots, configuration, slow log.

:func:`collect_redis` connects with the URL held in an environment variable (the URL and its
password are never stored, logged or written) and sends only commands that read — every
command goes through one guard that refuses anything outside :data:`READ_ONLY_COMMANDS`, so no
code path here can change data. It writes, into ``out_dir``:

=========================== =================================================== ==============
file                        content                                             loader
=========================== =================================================== ==============
info-<UTC time>.txt         ``INFO ALL``, one file per snapshot (``count`` of   redis_info
                            them, ``every_s`` apart; the name orders them, the
                            server's ``server_time_usec`` inside times them)
redis_config.json           ``CONFIG GET *`` (passwords and user names          redis_config
                            redacted), with the server's run id and time
redis_slowlog.json          ``SLOWLOG GET`` entries: id, time, duration,        redis_slowlog
                            command *name* and argument count (arguments are
                            client data: keys, values)
collect_redis.md            what was collected, and what was not and why        (documentation)
=========================== =================================================== ==============

Managed and least-privilege servers: with ``CONFIG`` renamed away (ElastiCache, Memorystore)
or an ACL user without ``config|get`` or ``slowlog``, the collector writes what it could and
notes what it could not (in the result and ``collect_redis.md``); only a server that will not
answer ``INFO`` at all is an error.

Example::

    $ export CLIENT_REDIS_URL='redis://:secret@cache.example:6379/0'
    >>> collect_redis("CLIENT_REDIS_URL", "data/acme/redis", every_s=5, count=13)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditkit.collect.timing import stamp
from auditkit.errors import CollectorError
from auditkit.lazy_re import compile_later

__all__ = [
    "CONFIG_FORMAT",
    "READ_ONLY_COMMANDS",
    "SLOWLOG_FORMAT",
    "RedisCollection",
    "collect_redis",
]

#: the only commands this collector may send
READ_ONLY_COMMANDS = frozenset({("INFO",), ("CONFIG", "GET"), ("SLOWLOG", "GET"), ("PING",)})
CONFIG_FORMAT = "auditkit.redis_config"
SLOWLOG_FORMAT = "auditkit.redis_slowlog"
#: configuration parameters whose values are credentials or name users: written redacted
_SECRET_PARAMETERS = compile_later(r"pass|auth|secret|user|acl", re.I)


@dataclass
class RedisCollection:
    """What a collection wrote, and what it could not collect and why."""

    files: list[Path] = field(default_factory=list)
    window_s: float = 0.0
    snapshots: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


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
        client.set_response_callback("CONFIG GET", lambda response, **kw: response)
        client.set_response_callback("SLOWLOG GET", lambda response, **kw: response)
        client.ping()
    except redis.RedisError as exc:
        # the message may not contain the URL (it holds the password): name the variable only
        raise CollectorError(
            f"cannot connect to the Redis named by {url_env}: {type(exc).__name__}"
        ) from None
    return client


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _refusal(exc: Exception) -> str:
    """Why the server refused a command, in a line (ACL, renamed command, …)."""
    message = _text(exc.args[0]) if exc.args else type(exc).__name__
    if "NOPERM" in message or "permission" in message.lower():
        return f"not permitted for this user (ACL): {message.splitlines()[0]}"
    if "unknown command" in message.lower():
        return f"the command is disabled or renamed on this server: {message.splitlines()[0]}"
    return message.splitlines()[0]


def _server(info: str) -> dict[str, Any]:
    fields = dict(
        line.split(":", 1) for line in info.splitlines() if ":" in line and not line.startswith("#")
    )
    out: dict[str, Any] = {}
    for key in ("run_id", "redis_version", "valkey_version", "server_name", "redis_mode"):
        if fields.get(key):
            out[key] = fields[key].strip()
    if fields.get("server_time_usec", "").strip().isdigit():
        out["server_time_usec"] = int(fields["server_time_usec"])
    return out


def collect_redis(
    url_env: str,
    out_dir: str | Path,
    *,
    every_s: float = 60.0,
    count: int = 2,
    slowlog: int = 128,
    interval_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> RedisCollection:
    """Write ``count`` INFO snapshots ``every_s`` apart, the configuration and the slow log.

    ``interval_s`` is the older spelling of two snapshots ``interval_s`` apart.
    """
    import redis

    if interval_s is not None:
        every_s, count = interval_s, 2
    if count < 1:
        raise CollectorError("count must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    client = _connect(url_env)
    send = _Guarded(client)
    result = RedisCollection()
    say = progress or (lambda message: None)
    start = time.monotonic()
    server: dict[str, Any] = {}
    try:
        for tick in range(count):
            if tick:
                time.sleep(max(0.0, start + tick * every_s - time.monotonic()))
            moment = time.time()
            try:
                info = _text(send("INFO", "ALL"))
            except redis.ResponseError as exc:
                if tick == 0:
                    raise CollectorError(
                        f"the Redis named by {url_env} refused INFO: {_refusal(exc)}",
                        hint="the collector needs at least INFO (+info in an ACL)",
                    ) from None
                result.skipped[f"snapshot {tick + 1}"] = _refusal(exc)
                continue
            path = out / f"info-{stamp(moment)}.txt"
            path.write_text(info, encoding="utf-8")
            result.files.append(path)
            result.snapshots += 1
            say(f"INFO snapshot {tick + 1}/{count}")
            if tick == 0:
                server = _server(info)
                _config(send, out, server, result)
                _slowlog(send, out, server, result, slowlog)
    except redis.RedisError as exc:
        raise CollectorError(
            f"reading the Redis named by {url_env} failed: {type(exc).__name__}"
        ) from None
    finally:
        client.close()
    result.window_s = time.monotonic() - start
    notes = out / "collect_redis.md"
    notes.write_text(_notes(result, server, count, every_s), encoding="utf-8")
    result.files.append(notes)
    return result


def _config(send: _Guarded, out: Path, server: dict[str, Any], result: RedisCollection) -> None:
    import redis

    try:
        reply = send("CONFIG", "GET", "*")
    except redis.ResponseError as exc:
        result.skipped["redis_config.json"] = _refusal(exc)
        return
    if isinstance(reply, dict):
        items = [(_text(k), _text(v)) for k, v in reply.items()]
    else:
        flat = [_text(x) for x in (reply or [])]
        items = list(zip(flat[::2], flat[1::2], strict=False))
    config = {
        k: ("[redacted]" if _SECRET_PARAMETERS.search(k) and v else v) for k, v in sorted(items)
    }
    doc = {
        "format": CONFIG_FORMAT,
        "version": 1,
        "collected_at": _iso(time.time()),
        "server": server,
        "config": config,
    }
    path = out / "redis_config.json"
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    result.files.append(path)


def _slowlog(
    send: _Guarded, out: Path, server: dict[str, Any], result: RedisCollection, limit: int
) -> None:
    import redis

    try:
        reply = send("SLOWLOG", "GET", str(limit)) or []
    except redis.ResponseError as exc:
        result.skipped["redis_slowlog.json"] = _refusal(exc)
        return
    entries = []
    for entry in reply:
        if not isinstance(entry, list | tuple) or len(entry) < 4:
            continue
        argv = list(entry[3] or [])
        record: dict[str, Any] = {
            "id": int(entry[0]),
            "ts": _iso(int(entry[1])),
            "duration_us": int(entry[2]),
            "command": _text(argv[0]).upper() if argv else None,
            "args": max(0, len(argv) - 1),
        }
        if len(entry) > 5 and entry[5]:
            record["client_name"] = _text(entry[5])
        entries.append(record)
    doc = {
        "format": SLOWLOG_FORMAT,
        "version": 1,
        "collected_at": _iso(time.time()),
        "server": server,
        "entries": entries,
    }
    path = out / "redis_slowlog.json"
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    result.files.append(path)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def _notes(result: RedisCollection, server: dict[str, Any], count: int, every_s: float) -> str:
    lines = [
        "# Redis collection",
        "",
        f"- server: {server.get('server_name', 'redis')} {server.get('redis_version', server.get('valkey_version', '?'))}",
        f"- INFO snapshots: {result.snapshots} of {count}"
        + (f", every {every_s:g} s" if count > 1 else ""),
        "- commands sent: INFO, CONFIG GET, SLOWLOG GET, PING (read-only)",
        "",
        "Files:",
        "",
    ]
    lines += [f"- {p.name}" for p in result.files]
    if result.skipped:
        lines += ["", "Not collected:", ""]
        lines += [f"- {name}: {why}" for name, why in result.skipped.items()]
    return "\n".join(lines) + "\n"
