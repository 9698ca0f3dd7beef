"""Read-only live collection from memcached: ``stats`` snapshots and the server's other reports.

:func:`collect_memcached` talks memcached's text protocol over TCP (or a Unix socket) and sends
only the commands in :data:`READ_ONLY_COMMANDS` — ``stats`` and its read-only sub-reports,
``version`` and, when asked, ``lru_crawler metadump all``; ``stats reset``, ``stats detail
on``, ``flush_all`` or any storage command are refused by the guard. The address comes from an
environment variable (``memcached://host:port``, ``host:port`` or a socket path) or is given
as ``server``. Every reply is written as the server sent it (``STAT name value`` lines and
``END``; line ends normalised to ``\\n``):

============================ ================================================= ================
file                         content                                           loader
============================ ================================================= ================
stats.txt                    ``stats`` (``stats-<UTC time>.txt`` per snapshot  memcached_stats
                             when ``count`` > 1; ``time`` inside times it)
stats_slabs.txt              ``stats slabs``                                   memcached_stats
stats_items.txt              ``stats items``                                   (items loader)
stats_settings.txt           ``stats settings``                                (settings loader)
stats_detail_dump.txt        ``stats detail dump`` (per key prefix: get, hit,  (detail loader)
                             set, del), when detail tracking is on
metadump.txt                 ``lru_crawler metadump all`` (one line per key:   (metadump loader)
                             key, exp, la, cas, fetch, cls, size) — only with
                             ``metadump=True``, at most ``metadump_limit`` keys
collect_memcached.json       when each file was collected and with which       (sidecar)
                             command, server version, what was skipped
collect_memcached.md         the same for people                               (documentation)
============================ ================================================= ================

The key names in a metadump are client data: it is off unless asked for.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from auditkit.collect.timing import stamp
from auditkit.errors import CollectorError

__all__ = ["READ_ONLY_COMMANDS", "SIDECAR_FORMAT", "MemcachedCollection", "collect_memcached"]

#: the only commands this collector sends
READ_ONLY_COMMANDS = frozenset(
    {
        "version",
        "stats",
        "stats items",
        "stats slabs",
        "stats settings",
        "stats detail dump",
        "lru_crawler metadump all",
    }
)
SIDECAR_FORMAT = "auditkit.collect_memcached"
#: the once-per-collection reports and their files
REPORTS = {
    "stats slabs": "stats_slabs.txt",
    "stats items": "stats_items.txt",
    "stats settings": "stats_settings.txt",
    "stats detail dump": "stats_detail_dump.txt",
}
_ERRORS = (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")


@dataclass
class MemcachedCollection:
    """What a collection wrote, and what it skipped and why."""

    files: list[Path] = field(default_factory=list)
    snapshots: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    version: str = ""


def _address(url_env: str | None, server: str | None) -> tuple[int, Any]:
    """(socket family, address) from ``$url_env`` or ``server``."""
    if url_env:
        value = os.environ.get(url_env)
        if not value:
            raise CollectorError(
                f"environment variable {url_env} is not set",
                hint="export it with the memcached address (memcached://host:11211 or host:11211)",
            )
    elif server:
        value = server
    else:
        raise CollectorError(
            "no memcached address", hint="give --url-env VAR or --server HOST:PORT"
        )
    if value.startswith("/"):
        return socket.AF_UNIX, value
    parts = urlsplit(value if "://" in value else f"memcached://{value}")
    return socket.AF_INET, (parts.hostname or "127.0.0.1", parts.port or 11211)


class _Connection:
    """One memcached text-protocol connection; :meth:`ask` sends only read-only commands."""

    def __init__(self, family: int, address: Any, timeout: float = 10.0) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buffer = b""

    def ask(self, command: str, limit: int | None = None) -> tuple[list[str], bool]:
        """Reply lines of ``command`` up to ``END`` (without it) and whether it was cut short."""
        if command not in READ_ONLY_COMMANDS:
            raise CollectorError(
                f"refusing to send {command!r}: the memcached collector only reads"
            )
        self.sock.sendall(command.encode() + b"\r\n")
        lines: list[str] = []
        single = command == "version"
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise CollectorError(f"memcached closed the connection during {command!r}")
                self.buffer += chunk
            chunk, self.buffer = self.buffer.split(b"\r\n", 1)
            # metadump ends its lines with a bare \n: one chunk may hold many lines
            for raw in chunk.split(b"\n"):
                if raw == b"END":
                    return lines, False
                if raw.startswith(_ERRORS):
                    reply = raw.decode(errors="replace")
                    raise CollectorError(f"memcached refused {command!r}: {reply}")
                lines.append(raw.decode("utf-8", errors="replace"))
                if single:
                    return lines, False
                if limit is not None and len(lines) >= limit:
                    return lines, True

    def close(self) -> None:
        self.sock.close()


def collect_memcached(
    out_dir: str | Path,
    *,
    url_env: str | None = None,
    server: str | None = None,
    every_s: float = 60.0,
    count: int = 1,
    metadump: bool = False,
    metadump_limit: int = 100_000,
    progress: Callable[[str], None] | None = None,
) -> MemcachedCollection:
    """Write ``count`` ``stats`` snapshots ``every_s`` apart and the server's reports."""
    if count < 1:
        raise CollectorError("count must be at least 1")
    family, address = _address(url_env, server)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = MemcachedCollection()
    say = progress or (lambda message: None)
    sidecar: dict[str, Any] = {"format": SIDECAR_FORMAT, "version": 1, "files": {}}
    try:
        conn = _Connection(family, address)
    except OSError as exc:
        raise CollectorError(f"cannot connect to memcached: {exc.strerror or exc}") from None
    start = time.monotonic()
    try:
        version_lines, _ = conn.ask("version")
        result.version = version_lines[0].removeprefix("VERSION ").strip() if version_lines else ""
        sidecar["server_version"] = result.version
        for tick in range(count):
            if tick:
                time.sleep(max(0.0, start + tick * every_s - time.monotonic()))
            moment = time.time()
            lines, _ = conn.ask("stats")
            name = "stats.txt" if count == 1 else f"stats-{stamp(moment)}.txt"
            _write(out / name, lines, moment, "stats", sidecar, result)
            result.snapshots += 1
            say(f"stats snapshot {tick + 1}/{count}")
        for command, name in REPORTS.items():
            moment = time.time()
            try:
                lines, _ = conn.ask(command)
            except CollectorError as exc:
                result.skipped[name] = str(exc)
                continue
            if not lines:
                result.skipped[name] = (
                    "empty: detail tracking is off (it is switched on with 'stats detail on', "
                    "which this read-only collector does not send)"
                    if command == "stats detail dump"
                    else "empty reply"
                )
                continue
            _write(out / name, lines, moment, command, sidecar, result)
        if metadump:
            moment = time.time()
            try:
                lines, cut = conn.ask("lru_crawler metadump all", limit=metadump_limit)
            except CollectorError as exc:
                result.skipped["metadump.txt"] = str(exc)
            else:
                _write(
                    out / "metadump.txt", lines, moment, "lru_crawler metadump all", sidecar, result
                )
                if cut:
                    sidecar["files"]["metadump.txt"]["truncated_at"] = metadump_limit
                    result.skipped["metadump.txt (rest)"] = f"stopped after {metadump_limit} keys"
    except (OSError, TimeoutError) as exc:
        raise CollectorError(f"reading memcached failed: {exc}") from None
    finally:
        conn.close()
    sidecar["skipped"] = result.skipped
    path = out / "collect_memcached.json"
    path.write_text(json.dumps(sidecar, indent=1) + "\n", encoding="utf-8")
    result.files.append(path)
    notes = out / "collect_memcached.md"
    notes.write_text(_notes(result, sidecar), encoding="utf-8")
    result.files.append(notes)
    return result


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def _write(
    path: Path,
    lines: list[str],
    moment: float,
    command: str,
    sidecar: dict[str, Any],
    result: MemcachedCollection,
) -> None:
    path.write_text("\n".join([*lines, "END"]) + "\n", encoding="utf-8")
    sidecar["files"][path.name] = {
        "command": command,
        "collected_at": _iso(moment),
        "lines": len(lines),
    }
    result.files.append(path)


def _notes(result: MemcachedCollection, sidecar: dict[str, Any]) -> str:
    lines = [
        "# memcached collection",
        "",
        f"- server version: {result.version or '?'}",
        f"- stats snapshots: {result.snapshots}",
        "- commands sent: "
        + ", ".join(sorted({f["command"] for f in sidecar["files"].values()} | {"version"})),
        "",
        "| file | command | collected at (UTC) |",
        "|---|---|---|",
    ]
    lines += [
        f"| {n} | {f['command']} | {f['collected_at']} |" for n, f in sidecar["files"].items()
    ]
    if result.skipped:
        lines += ["", "Not collected:", ""]
        lines += [f"- {name}: {why}" for name, why in result.skipped.items()]
    return "\n".join(lines) + "\n"
