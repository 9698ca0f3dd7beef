"""Cache server statistics: Redis (and Valkey, Pika) ``INFO`` and memcached ``stats`` replies.

Both become the ``cache_stats`` frame: one row per metric, values kept raw (cumulative counters
such as ``keyspace_hits`` stay cumulative; rates and ratios are derived by the checks, from two
snapshots when there are two).

Redis ``INFO``: ``# Section`` headers and ``key:value`` lines; composite values
(``db0:keys=4,expires=0``, ``cmdstat_get:calls=10,usec=50``) are split into one metric per part
(``db0.keys``, ``cmdstat_get.calls``). A raw capture may start with the RESP length line
(``$4050``), which is skipped as such. Pika writes keyspace lines with a space
(``db0 Strings_keys=0, expires=0``) and a ``# Time:`` line inside a section; both are read.
The snapshot time is ``server_time_usec`` when the server reports it.

memcached: ``STAT <name> <value>`` lines ending with ``END`` (``stats`` and ``stats slabs``,
whose per-class names look like ``1:chunk_size``); ``time`` gives the snapshot time.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.loaders.base import Loader, finalise, nothing_parsed
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text

__all__ = ["MemcachedStatsLoader", "RedisInfoLoader"]

_NUMBER = re.compile(r"^[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$")
_SECTION = re.compile(r"^#\s*([A-Za-z][^:]*?)\s*$")
_KV = re.compile(r"^([A-Za-z_][\w.|:-]*):(.*)$")
_PIKA_KEYSPACE = re.compile(r"^(db\d+)\s+(.*)$")
_REDIS_MARKERS = (
    "redis_version:",
    "redis_mode:",
    "connected_clients:",
    "keyspace_hits:",
    "used_memory:",
    "pika_version:",
    "maxmemory:",
    "maxmemory-policy:",
)


def _number(text: str) -> float | None:
    t = text.strip()
    if _NUMBER.match(t):
        return float(t)
    if t.endswith("%") and _NUMBER.match(t[:-1]):
        return float(t[:-1])
    return None


def _rows(
    server: str, engine: str, section: str, metric: str, raw: str, line: int, source: str
) -> list[dict[str, Any]]:
    raw = raw.strip()
    if "=" in raw and (
        "," in raw or metric.startswith(("db", "cmdstat_", "errorstat_", "latency_"))
    ):
        out = []
        for part in re.split(r",\s*", raw):
            if "=" not in part:
                continue
            k, v = part.split("=", 1)
            out.append(
                {
                    "server": server,
                    "engine": engine,
                    "section": section,
                    "metric": f"{metric}.{k.strip()}",
                    "value": _number(v),
                    "text": v.strip(),
                    "source_file": source,
                    "source_line": line,
                }
            )
        if out:
            return out
    return [
        {
            "server": server,
            "engine": engine,
            "section": section,
            "metric": metric,
            "value": _number(raw),
            "text": raw,
            "source_file": source,
            "source_line": line,
        }
    ]


@register
class RedisInfoLoader(Loader):
    """Redis / Valkey / Pika ``INFO`` output (``redis-cli INFO ALL`` saved to a file)."""

    name = "redis_info"
    frame = "cache_stats"
    description = "Redis, Valkey or Pika INFO output"
    expected = (
        "'# Server' style section headers and 'key:value' lines such as 'redis_version:7.2.4'"
    )

    def sniff(self, head: str, path: Path) -> float:
        hits = sum(1 for m in _REDIS_MARKERS if m in head)
        sections = len(
            re.findall(
                r"(?m)^# (?:Server|Clients|Memory|Stats|Keyspace|Persistence|Replication|Config)\s*$",
                head,
            )
        )
        return min(1.0, 0.25 * hits + 0.2 * sections) if hits else 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        text, bad = read_text(path)
        report = ParseReport.for_text(path, self.name, text, bad)
        rows: list[dict[str, Any]] = []
        section = ""
        lines = text.split("\n")
        server = options.get("server") or Path(path).stem
        engine = "redis"
        for i, raw_line in enumerate(lines, start=1):
            line = raw_line.strip()
            if not line:
                continue
            if i == 1 and re.match(r"^\$\d+$", line):
                report.skip(i, "RESP length line", line)
                continue
            sec = _SECTION.match(line)
            if sec:
                section = sec.group(1).strip()
                report.ok()
                continue
            if line.startswith("# Time:"):
                rows += _rows(server, engine, section, "time", line.split(":", 1)[1], i, str(path))
                report.ok()
                continue
            kv = _KV.match(line)
            pika = _PIKA_KEYSPACE.match(line) if not kv else None
            if kv:
                key, value = kv.group(1), kv.group(2)
                if key == "pika_version":
                    engine = "pika"
                if key == "server_name" and value.strip():
                    engine = value.strip()
                rows += _rows(server, engine, section, key, value, i, str(path))
                report.ok()
            elif pika:
                rows += _rows(server, engine, section, pika.group(1), pika.group(2), i, str(path))
                report.ok()
            else:
                report.skip(i, "not a key:value line", line)
        if not rows:
            report.elapsed_s = time.perf_counter() - start
            raise nothing_parsed(self, path, report)
        df = pd.DataFrame(rows)
        df["engine"] = engine
        run_id = df.loc[df["metric"] == "run_id", "text"]
        if len(run_id) and not options.get("server"):
            df["server"] = f"{engine}:{run_id.iloc[0][:12]}"
        usec = df.loc[df["metric"] == "server_time_usec", "value"].dropna()
        df["ts"] = pd.to_datetime(usec.iloc[0], unit="us", utc=True) if len(usec) else pd.NaT
        frames = finalise({"cache_stats": [df]}, self, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        return LoadResult(self.name, frames, report, primary=self.frame)


@register
class MemcachedStatsLoader(Loader):
    """memcached ``stats`` / ``stats slabs`` replies (``STAT name value`` … ``END``)."""

    name = "memcached_stats"
    frame = "cache_stats"
    description = "memcached stats reply"
    expected = "lines 'STAT <name> <value>' ending with 'END'"

    def sniff(self, head: str, path: Path) -> float:
        lines = [ln for ln in head.splitlines()[:50] if ln.strip()]
        if not lines:
            return 0.0
        stat = sum(1 for ln in lines if ln.startswith("STAT "))
        return 0.9 if stat >= max(2, len(lines) // 2) else 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        text, bad = read_text(path)
        report = ParseReport.for_text(path, self.name, text, bad)
        lines = text.split("\n")
        server = options.get("server") or Path(path).stem
        rows: list[dict[str, Any]] = []
        for i, raw_line in enumerate(lines, start=1):
            line = raw_line.strip()
            if not line:
                continue
            if line == "END":
                report.ok()
                continue
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[0] == "STAT":
                name, value = parts[1], parts[2]
                section = (
                    "slabs"
                    if ":" in name or name in ("active_slabs", "total_malloced")
                    else "stats"
                )
                rows.append(
                    {
                        "server": server,
                        "engine": "memcached",
                        "section": section,
                        "metric": name,
                        "value": _number(value),
                        "text": value,
                        "source_file": str(path),
                        "source_line": i,
                    }
                )
                report.ok()
            else:
                report.skip(i, "not a STAT line", line)
        if not rows:
            raise nothing_parsed(self, path, report)
        df = pd.DataFrame(rows)
        pid = df.loc[df["metric"] == "pid", "text"]
        if len(pid) and not options.get("server"):
            df["server"] = f"memcached:{pid.iloc[0]}"
        t = df.loc[df["metric"] == "time", "value"].dropna()
        df["ts"] = pd.to_datetime(t.iloc[0], unit="s", utc=True) if len(t) else pd.NaT
        frames = finalise({"cache_stats": [df]}, self, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        return LoadResult(self.name, frames, report, primary=self.frame)
