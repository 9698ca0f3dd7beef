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

memcached: ``STAT <name> <value>`` lines ending with ``END``: ``stats`` (one snapshot or a
series), ``stats items``, ``stats slabs`` (per-class names such as ``1:chunk_size``),
``stats settings``, ``stats sizes``, ``stats conns``; each reply is a snapshot with its own time
(see :class:`MemcachedStatsLoader`). Key families (``stats detail dump``) and keys
(``lru_crawler metadump``) are read by :mod:`auditkit.loaders.memcached`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.loaders._time import epoch_ts
from auditkit.loaders.base import Loader, finalise, nothing_parsed
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text

__all__ = ["MemcachedStatsLoader", "RedisInfoLoader", "cache_stats_deltas"]

_NUMBER = compile_later(r"^[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$")
_SECTION = compile_later(r"^#\s*([A-Za-z][^:]*?)\s*$")
_KV = compile_later(r"^([A-Za-z_][\w.|:-]*):(.*)$")
_PIKA_KEYSPACE = compile_later(r"^(db\d+)\s+(.*)$")
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
        if "cluster_state:" in head and "cluster_slots_assigned:" in head:
            return 0.8  # CLUSTER INFO: key:value lines of the same kind, without sections
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


#: memcached ``stats`` values that are levels, not cumulative counters
_MC_GAUGES = compile_later(
    r"^(?:pid|uptime|time|version|libevent|pointer_size|max_connections|curr_connections|"
    r"connection_structures|threads|bytes|curr_items|limit_maxbytes|hash_power_level|hash_bytes|"
    r"hash_is_expanding|reserved_fds|accepting_conns|slab_reassign_\w*running|lru_crawler_running|"
    r"slab_global_page_pool|malloc_fails_active|active_slabs|total_malloced|log_watchers|"
    r"\d+:(?:chunk_size|chunks_per_page|total_pages|total_chunks|used_chunks|free_chunks|"
    r"free_chunks_end|mem_requested)|items:\d+:(?:number\w*|age\w*|mem_requested|evicted_time))$"
)
_MC_COMMANDS = compile_later(
    r"^(?:stats(?: (?:items|slabs|settings|sizes|conns|detail dump))?|OK)$"
)


def _mc_section(names: list[str], command: str | None) -> str:
    """The reply a block of STAT lines is: stats, items, slabs, settings, sizes or conns."""
    if command and command.startswith("stats "):
        return command.split(" ", 1)[1]
    if any(n.startswith("items:") for n in names):
        return "items"
    if any(re.match(r"^\d+:(?:addr|state|listen_addr|secs_since_last_cmd)$", n) for n in names):
        return "conns"
    if any(re.match(r"^\d+:", n) for n in names) or "active_slabs" in names:
        return "slabs"
    if names and all(n.isdigit() for n in names):
        return "sizes"
    if {"maxbytes", "growth_factor", "item_size_max"} & set(names) and "pid" not in names:
        return "settings"
    return "stats"


@register
class MemcachedStatsLoader(Loader):
    """memcached ``stats`` replies: one or a series of snapshots, and ``stats items``/``slabs``/
    ``settings``/``sizes``/``conns`` (``STAT name value`` … ``END``).

    Every reply ends with ``END``; a file may hold many (a collection loop appending ``stats``
    every minute, or ``stats``, ``stats items`` and ``stats slabs`` one after the other). Each
    reply is a snapshot: its ``ts`` is its own ``STAT time``, else the last time stamp line
    written before it (``date -u +%FT%TZ``), else the time of the reply before it. Its
    ``section`` is the reply's kind, from the command echoed before it when there is one, else
    from its names (``items:1:number`` → items, ``1:chunk_size`` → slabs, ``maxbytes`` without
    ``pid`` → settings). Values are kept raw; :func:`cache_stats_deltas` gives the rates.
    Replies may end lines with CRLF, as memcached sends them.
    """

    name = "memcached_stats"
    frame = "cache_stats"
    description = "memcached stats replies (a series, items, slabs, settings)"
    expected = "lines 'STAT <name> <value>' ending with 'END'"

    def sniff(self, head: str, path: Path) -> float:
        lines = [ln for ln in head.splitlines()[:50] if ln.strip()]
        if not lines:
            return 0.0
        stat = sum(1 for ln in lines if ln.startswith("STAT "))
        return 0.9 if stat >= max(2, len(lines) // 2) else 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        from auditkit.loaders._mysql_results import time_stamp

        start = time.perf_counter()
        text, bad = read_text(path)
        report = ParseReport.for_text(path, self.name, text, bad)
        lines = text.split("\n")
        server = options.get("server") or Path(path).stem
        rows: list[dict[str, Any]] = []
        block: list[dict[str, Any]] = []
        command: str | None = None
        stamp: pd.Timestamp | None = None
        last_ts: pd.Timestamp | None = None
        snapshot = 0

        def close() -> None:
            nonlocal block, command, stamp, last_ts, snapshot
            if not block:
                return
            snapshot += 1
            names = [r["metric"] for r in block]
            section = _mc_section(names, command)
            own = next((r["value"] for r in block if r["metric"] == "time"), None)
            ts = epoch_ts(own, "s") if own is not None and section == "stats" else stamp or last_ts
            for r in block:
                r["section"] = section
                r["ts"] = ts
                r["snapshot"] = snapshot
                r["counter"] = (
                    r["value"] is not None
                    and section in ("stats", "items", "slabs")
                    and not _MC_GAUGES.match(r["metric"])
                )
            rows.extend(block)
            last_ts, block, command, stamp = ts, [], None, None

        for i, raw_line in enumerate(lines, start=1):
            line = raw_line.strip()
            if not line:
                continue
            if line == "END":
                close()
                report.ok()
                continue
            parts = line.split(" ", 2)
            if len(parts) >= 2 and parts[0] == "STAT":
                name, value = parts[1], parts[2] if len(parts) == 3 else ""
                block.append(
                    {
                        "server": server,
                        "engine": "memcached",
                        "metric": name,
                        "value": _number(value),
                        "text": value,
                        "source_file": str(path),
                        "source_line": i,
                    }
                )
                report.ok()
                continue
            if _MC_COMMANDS.match(line):
                close()
                command = line if line.startswith("stats") else command
                report.ok()
                continue
            ts = time_stamp(line) if not line.startswith("STAT") else None
            if ts is not None:
                close()
                stamp = ts
                report.ok()
                continue
            report.skip(i, "not a STAT line", line)
        if block:
            report.warn(f"the last reply (line {block[0]['source_line']}) has no END: cut short?")
            close()
        if not rows:
            raise nothing_parsed(self, path, report)
        df = pd.DataFrame(rows)
        pid = df.loc[df["metric"] == "pid", "text"]
        if len(pid) and not options.get("server"):
            df["server"] = f"memcached:{pid.iloc[0]}"
        df["counter"] = df["counter"].astype("boolean")
        frames = finalise({"cache_stats": [df]}, self, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        return LoadResult(self.name, frames, report, primary=self.frame)


def cache_stats_deltas(stats: pd.DataFrame) -> pd.DataFrame:
    """Rates of the cumulative counters of a ``cache_stats`` frame, between consecutive snapshots.

    One row per server, counter and pair of consecutive snapshots (ordered by ``ts``):
    ``ts_before``, ``ts_after``, ``interval_s``, ``delta`` and ``rate_per_s``. A counter that went
    down means a restart (or ``stats reset``) in between: the row gets ``reset`` and no rate.
    Counters are the rows with ``counter`` true (memcached) or, for Redis INFO, the ``Stats``
    section's numeric values. Example: the evictions, ``expired_unfetched`` and
    ``evicted_unfetched`` per second of a memcached series.
    """
    cols = [
        "server",
        "metric",
        "ts_before",
        "ts_after",
        "interval_s",
        "delta",
        "rate_per_s",
        "reset",
    ]
    if len(stats) == 0 or stats["ts"].isna().all():
        return pd.DataFrame(columns=cols)
    if "counter" in stats:
        counters = stats[stats["counter"].fillna(False).astype(bool)]
    else:
        counters = stats[(stats["section"] == "Stats") & stats["value"].notna()]
    counters = counters.dropna(subset=["ts"]).sort_values("ts", kind="stable")
    out = []
    for (server, metric), g in counters.groupby(["server", "metric"], sort=False):
        g = g.drop_duplicates("ts", keep="last")
        values, times = g["value"].to_numpy(dtype=float), list(g["ts"])
        for k in range(1, len(g)):
            interval = (times[k] - times[k - 1]).total_seconds()
            delta = values[k] - values[k - 1]
            reset = bool(delta < 0)
            out.append(
                {
                    "server": server,
                    "metric": metric,
                    "ts_before": times[k - 1],
                    "ts_after": times[k],
                    "interval_s": interval,
                    "delta": None if reset else delta,
                    "rate_per_s": None if reset or interval <= 0 else delta / interval,
                    "reset": reset,
                }
            )
    frame = pd.DataFrame(out, columns=cols)
    for c in ("interval_s", "delta", "rate_per_s"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    return frame
