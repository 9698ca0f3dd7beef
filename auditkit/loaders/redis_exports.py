"""Redis exports written by auditkit's collector (:mod:`auditkit.collect.redis`) as JSON.

Two small documents, each naming its format:

* ``redis_config`` — ``{"format": "auditkit.redis_config", "version": 1, "collected_at": …,
  "server": {"run_id": …, "redis_version": …}, "config": {"maxmemory": "0", …}}``: the reply of
  ``CONFIG GET *``, credentials redacted. One ``cache_stats`` row per parameter, section
  ``config``, on the same server name as the ``INFO`` snapshots (``redis:<run id>``), so
  ``maxmemory`` and ``maxmemory-policy`` sit beside the memory figures.
* ``redis_slowlog`` — ``{"format": "auditkit.redis_slowlog", …, "entries": [{"id", "ts",
  "duration_us", "command", "args", "client_name"}]}``: ``SLOWLOG GET`` with each command's
  name and argument count only. One ``server_events`` row per entry, kind ``slow_command``:
  the message is the command name, ``duration_ms`` its execution time.

A record of the parse report is one parameter or one slow-log entry.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.loaders import _json
from auditkit.loaders.base import Loader, finalise, nothing_parsed
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text

__all__ = ["RedisConfigLoader", "RedisSlowlogLoader"]

_NUMBER = compile_later(r"^[-+]?\d+(?:\.\d+)?$")


def _document(loader: Loader, path: str | Path, report: ParseReport, fmt: str) -> dict[str, Any]:
    text, bad = read_text(path)
    for line in bad:
        report.warn(f"invalid UTF-8 replaced with U+FFFD on line {line}")
    report.bytes = len(text.encode("utf-8", errors="replace"))
    report.lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    try:
        doc = _json.loads(text)
    except json.JSONDecodeError as exc:
        report.skip(exc.lineno, "invalid JSON", f"{exc.msg}: {text[:80]}")
        raise nothing_parsed(loader, path, report) from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        report.skip(1, f"not an {fmt} document", text[:80])
        raise nothing_parsed(loader, path, report)
    version = doc.get("version")
    if isinstance(version, int) and version > 1:
        report.warn(f"written in format version {version}; this reader knows version 1")
    return doc


def _server_name(doc: dict[str, Any]) -> tuple[str, str, str | None]:
    found = doc.get("server")
    server: dict[str, Any] = found if isinstance(found, dict) else {}
    engine = str(
        server.get("server_name") or ("valkey" if server.get("valkey_version") else "redis")
    )
    run_id = server.get("run_id")
    name = f"{engine}:{str(run_id)[:12]}" if run_id else f"{engine}:unknown"
    return name, engine, server.get("redis_version") or server.get("valkey_version")


def _line_of(text: str, needle: str) -> int:
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


@register
class RedisConfigLoader(Loader):
    """``CONFIG GET *`` as auditkit's Redis collector writes it (``redis_config.json``)."""

    name = "redis_config"
    frame = "cache_stats"
    description = "Redis CONFIG GET, as auditkit's collector writes it (JSON)"
    expected = '{"format": "auditkit.redis_config", "config": {"maxmemory": "0", …}}'

    def sniff(self, head: str, path: Path) -> float:
        return 1.0 if '"format": "auditkit.redis_config"' in head[:200] else 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        report = ParseReport(str(path), self.name)
        doc = _document(self, path, report, "auditkit.redis_config")
        text, _ = read_text(path)
        server, engine, _version = _server_name(doc)
        config = doc.get("config")
        if not isinstance(config, dict):
            report.skip(1, "no config object", text[:80])
            raise nothing_parsed(self, path, report)
        ts = pd.to_datetime(str(doc.get("collected_at") or ""), utc=True, errors="coerce")
        rows = []
        for key, value in config.items():
            line = _line_of(text, json.dumps(str(key)))
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                report.skip(line, "parameter value is not a scalar", f"{key}: {value!r}")
                continue
            raw = str(value)
            rows.append(
                {
                    "ts": ts,
                    "server": server,
                    "engine": engine,
                    "section": "config",
                    "metric": str(key),
                    "value": float(raw) if _NUMBER.match(raw.strip()) else None,
                    "text": raw,
                    "source_file": str(path),
                    "source_line": line,
                }
            )
            report.ok()
        if not rows:
            raise nothing_parsed(self, path, report)
        frames = finalise({"cache_stats": [pd.DataFrame(rows)]}, self, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        return LoadResult(self.name, frames, report, primary=self.frame)


@register
class RedisSlowlogLoader(Loader):
    """``SLOWLOG GET`` as auditkit's Redis collector writes it (``redis_slowlog.json``)."""

    name = "redis_slowlog"
    frame = "server_events"
    description = "Redis SLOWLOG GET, as auditkit's collector writes it (JSON)"
    expected = '{"format": "auditkit.redis_slowlog", "entries": [{"ts", "duration_us", "command"}]}'

    def sniff(self, head: str, path: Path) -> float:
        return 1.0 if '"format": "auditkit.redis_slowlog"' in head[:200] else 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        report = ParseReport(str(path), self.name)
        doc = _document(self, path, report, "auditkit.redis_slowlog")
        text, _ = read_text(path)
        server, engine, _version = _server_name(doc)
        entries = doc.get("entries")
        if not isinstance(entries, list):
            report.skip(1, "no entries list", text[:80])
            raise nothing_parsed(self, path, report)
        rows = []
        for entry in entries:
            line = _line_of(text, f'"id": {entry.get("id")},') if isinstance(entry, dict) else 1
            if not isinstance(entry, dict) or not entry.get("command"):
                report.skip(line, "entry without a command", str(entry)[:80])
                continue
            duration = entry.get("duration_us")
            if not isinstance(duration, int | float) or isinstance(duration, bool):
                report.skip(line, "entry without a duration", str(entry)[:80])
                continue
            args = entry.get("args")
            rows.append(
                {
                    "ts": pd.to_datetime(str(entry.get("ts") or ""), utc=True, errors="coerce"),
                    "kind": "slow_command",
                    "message": str(entry["command"]),
                    "detail": f"{args} argument(s)"
                    + (f"; client {entry['client_name']}" if entry.get("client_name") else ""),
                    "duration_ms": float(duration) / 1000.0,
                    "source_format": self.name,
                    "server": server,
                    "engine": engine,
                    "source_file": str(path),
                    "source_line": line,
                }
            )
            report.ok()
        if not rows and report.read:
            raise nothing_parsed(self, path, report)
        if not rows:  # a valid, empty slow log: nothing was slow
            report.warn("the slow log was empty when it was collected")
        frames = finalise({"server_events": [pd.DataFrame(rows)]}, self, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        return LoadResult(self.name, frames, report, primary=self.frame)
