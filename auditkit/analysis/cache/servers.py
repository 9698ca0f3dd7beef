"""Cache server counters: snapshots of Redis ``INFO`` and memcached ``stats`` in order, cut at
restarts and statistics resets, and the rates, ratios and command mix within those cuts.

Redis ``INFO`` and memcached ``stats`` counters are cumulative since the server started (or
since ``CONFIG RESETSTAT`` / ``stats reset``). Snapshots of one server are put in order and cut
into *segments* wherever the counters start again: a new ``run_id`` or ``pid`` (the loaders name
such a server differently: it is the same instance when their snapshots do not overlap in
time), an uptime going backwards (a restart), or a counter going backwards with the uptime
still rising (a statistics reset). Rates and ratios come from the differences of consecutive
snapshots *within* a segment, never across one. With a single snapshot the ratio is since the
server started, and says so.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from auditkit.analysis.cache._frames import frame_rows, to_float

__all__ = ["command_mix", "server_rates", "server_snapshots", "server_summary"]


#: counters per engine: hits, misses, evictions, expirations, memory used, memory limit
_METRICS: dict[str, dict[str, str]] = {
    "redis": {
        "hits": "keyspace_hits",
        "misses": "keyspace_misses",
        "evictions": "evicted_keys",
        "expirations": "expired_keys",
        "used_memory": "used_memory",
        "maxmemory": "maxmemory",
        "uptime_s": "uptime_in_seconds",
        "commands": "total_commands_processed",
        "port": "tcp_port",
    },
    "memcached": {
        "hits": "get_hits",
        "misses": "get_misses",
        "evictions": "evictions",
        "expirations": "reclaimed",
        "used_memory": "bytes",
        "maxmemory": "limit_maxbytes",
        "uptime_s": "uptime",
        "commands": "cmd_get",
        "evicted_unfetched": "evicted_unfetched",
        "expired_unfetched": "expired_unfetched",
        "items": "curr_items",
    },
}
_COUNTERS = ("hits", "misses", "evictions", "expirations", "evicted_unfetched", "expired_unfetched")


def _engine_family(engine: object) -> str:
    return "memcached" if str(engine).lower() == "memcached" else "redis"


def server_snapshots(stats: pd.DataFrame) -> pd.DataFrame:
    """One row per snapshot of each cache server instance, in time order, with its segment.

    Columns: ``instance`` (the server across restarts), ``server`` (as loaded: one per run),
    ``engine``, ``ts``, ``run_id``, ``uptime_s``, ``segment`` (0, 1, … — a new one after every
    restart or statistics reset), ``reset`` (``restart``, ``stats reset`` or empty), the counters
    ``hits``, ``misses``, ``evictions``, ``expirations`` (and for memcached
    ``evicted_unfetched``, ``expired_unfetched``), the gauges ``used_memory``, ``maxmemory``,
    ``policy`` (``maxmemory_policy``), ``source_file``.
    """
    cols = [
        "instance",
        "server",
        "engine",
        "ts",
        "run_id",
        "uptime_s",
        "segment",
        "reset",
        *_COUNTERS,
        "used_memory",
        "maxmemory",
        "policy",
        "commands",
        "source_file",
    ]
    if len(stats) == 0:
        return pd.DataFrame(columns=cols)
    df = stats[~stats["section"].astype("string").fillna("").str.lower().isin(["config"])]
    keys = ["server", "source_file"] + (["snapshot"] if "snapshot" in df else [])
    rows: list[dict[str, Any]] = []
    for key, g in df.groupby(keys, sort=False, dropna=False):
        engine = str(g["engine"].dropna().iloc[0]) if g["engine"].notna().any() else "redis"
        names = _METRICS[_engine_family(engine)]
        values = dict(zip(g["metric"].astype(str), g["value"], strict=False))
        texts = dict(zip(g["metric"].astype(str), g["text"].astype(object), strict=False))
        if not any(names[m] in values for m in ("hits", "misses", "uptime_s", "used_memory")):
            continue  # not a stats snapshot (memcached stats slabs / items, a config dump)
        ts = g["ts"].dropna()
        row: dict[str, Any] = {
            "server": key[0],
            "engine": engine,
            "ts": ts.iloc[0] if len(ts) else pd.NaT,
            "run_id": texts.get("run_id")
            or (
                f"pid {int(values['pid'])}"
                if values.get("pid") == values.get("pid") and "pid" in values
                else None
            ),
            "policy": texts.get("maxmemory_policy"),
            "source_file": key[1],
            "port": values.get(names.get("port", "")),
        }
        for name, metric in names.items():
            if name != "port":
                row[name] = values.get(metric)
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=cols)
    snaps = pd.DataFrame(rows)
    snaps["ts"] = pd.to_datetime(snaps["ts"], utc=True)
    snaps["instance"] = _instances(snaps)
    out = []
    for _inst, g in snaps.groupby("instance", sort=False):
        g = g.sort_values(["ts", "uptime_s"], na_position="first", kind="stable").copy()
        segment, segs, resets = 0, [], []
        prev = None
        for r in frame_rows(g):
            reset = ""
            if prev is not None:
                if (
                    r.server != prev.server
                    or (
                        r.run_id != prev.run_id and r.run_id is not None and prev.run_id is not None
                    )
                    or _lt(r.uptime_s, prev.uptime_s)
                ):
                    reset = "restart"
                elif any(
                    _lt(getattr(r, c), getattr(prev, c)) for c in ("hits", "misses", "commands")
                ):
                    reset = "stats reset"
            if reset:
                segment += 1
            segs.append(segment)
            resets.append(reset)
            prev = r
        g["segment"] = segs
        g["reset"] = resets
        out.append(g)
    result = pd.concat(out, ignore_index=True)
    for c in cols:
        if c not in result:
            result[c] = np.nan
    return result[cols].reset_index(drop=True)


def _lt(a: object, b: object) -> bool:
    try:
        fa, fb = float(a), float(b)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return fa == fa and fb == fb and fa < fb


def _instances(snaps: pd.DataFrame) -> list[str]:
    """The instance of each snapshot: runs (``server`` names) of one engine, folder and port
    that follow each other in time are one instance restarted; runs that overlap are two."""
    base = [
        f"{_engine_family(e)}|{PurePath(str(f)).parent}|{'' if p != p or p is None else int(p)}"
        for e, f, p in zip(snaps["engine"], snaps["source_file"], snaps["port"], strict=True)
    ]
    snaps = snaps.assign(_base=base)
    spans = snaps.groupby(["_base", "server"], sort=False)["ts"].agg(["min", "max"]).reset_index()
    spans = spans.sort_values(["_base", "min"], na_position="first", kind="stable")
    chains: dict[str, list[tuple[pd.Timestamp, str]]] = {}
    name_of: dict[tuple[str, str], str] = {}
    for r in frame_rows(spans):
        b, server, first, last = r._0, r.server, r.min, r.max
        chains.setdefault(b, [])
        placed = None
        for i, (end, name) in enumerate(chains[b]):
            if pd.isna(first) or pd.isna(end) or first > end:
                placed = i
                chains[b][i] = (last, name)
                break
        if placed is None:
            engine, _folder, port = b.split("|")
            n = len(chains[b])
            name = f"{engine}:{port}" if port else engine
            if n:
                name += f" #{n + 1}"
            chains[b].append((last, name))
            placed = len(chains[b]) - 1
        name_of[(b, server)] = chains[b][placed][1]
    names = [name_of[(b, s)] for b, s in zip(base, snaps["server"], strict=True)]
    # instances of different folders but the same name stay apart
    folders = {n: {b for b, m in zip(base, names, strict=True) if m == n} for n in set(names)}
    return [
        n if len(folders[n]) == 1 else f"{n} ({PurePath(b.split('|')[1]).name})"
        for n, b in zip(names, base, strict=True)
    ]


def server_rates(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Per instance, between consecutive snapshots of one segment: counters per second.

    Columns: ``instance``, ``engine``, ``ts`` (the later snapshot), ``ts_before``,
    ``interval_s``, ``segment``, ``hits``, ``misses`` (deltas), ``hits_per_s``,
    ``misses_per_s``, ``evictions_per_s``, ``expirations_per_s``, ``hit_ratio``,
    ``used_memory``, ``maxmemory``. Pairs across a restart or reset are never formed.
    """
    cols = [
        "instance",
        "engine",
        "ts",
        "ts_before",
        "interval_s",
        "segment",
        "hits",
        "misses",
        "evictions",
        "expirations",
        "hits_per_s",
        "misses_per_s",
        "evictions_per_s",
        "expirations_per_s",
        "hit_ratio",
        "used_memory",
        "maxmemory",
    ]
    rows = []
    for (inst, _seg), g in snapshots.groupby(["instance", "segment"], sort=False):
        g = g.sort_values("ts", kind="stable")
        for a, b in zip(frame_rows(g.iloc[:-1]), frame_rows(g.iloc[1:]), strict=True):
            interval = (
                (b.ts - a.ts).total_seconds() if pd.notna(a.ts) and pd.notna(b.ts) else float("nan")
            )
            if interval != interval or interval <= 0:
                up = to_float(b.uptime_s) - to_float(a.uptime_s)
                interval = up if up == up and up > 0 else float("nan")
            d = {
                c: to_float(getattr(b, c)) - to_float(getattr(a, c))
                for c in ("hits", "misses", "evictions", "expirations")
            }
            lookups = d["hits"] + d["misses"]
            rows.append(
                {
                    "instance": inst,
                    "engine": b.engine,
                    "ts": b.ts,
                    "ts_before": a.ts,
                    "interval_s": interval,
                    "segment": b.segment,
                    **d,
                    **{
                        f"{c}_per_s": d[c] / interval
                        if interval == interval and interval > 0
                        else float("nan")
                        for c in d
                    },
                    "hit_ratio": d["hits"] / lookups if lookups > 0 else float("nan"),
                    "used_memory": to_float(b.used_memory),
                    "maxmemory": to_float(b.maxmemory),
                }
            )
    return pd.DataFrame(rows, columns=cols)


def server_summary(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Per instance: hits, misses and hit ratio over the window (sums of within-segment
    differences), restarts and resets seen, evictions and expirations per second, memory
    against ``maxmemory`` and the eviction policy, and for memcached the items evicted or
    expired before anyone read them.

    ``basis`` says what the ratio covers: ``between snapshots`` (``window_s`` of intervals
    within segments) or ``since start`` (one snapshot per segment: the counters since the
    server started, which may reach back long before the audit).
    """
    cols = [
        "instance",
        "engine",
        "snapshots",
        "restarts",
        "resets",
        "reset_times",
        "hits",
        "misses",
        "hit_ratio",
        "basis",
        "window_s",
        "evictions",
        "expirations",
        "evictions_per_s",
        "expirations_per_s",
        "evicted_unfetched",
        "expired_unfetched",
        "used_memory",
        "maxmemory",
        "memory_share",
        "policy",
    ]
    if len(snapshots) == 0:
        return pd.DataFrame(columns=cols)
    rates = server_rates(snapshots)
    rows = []
    for inst, g in snapshots.groupby("instance", sort=False):
        r = rates[rates["instance"] == inst]
        last: Any = g.sort_values("ts", kind="stable").iloc[-1]
        counted = r.dropna(subset=["interval_s"])
        if len(r):
            hits, misses = float(r["hits"].sum()), float(r["misses"].sum())
            window = float(counted["interval_s"].sum()) if len(counted) else float("nan")
            ev, ex = float(r["evictions"].sum()), float(r["expirations"].sum())
            basis = "between snapshots"
            unfetched = {c: _delta_sum(g, c) for c in ("evicted_unfetched", "expired_unfetched")}
        else:
            hits, misses = to_float(last["hits"]), to_float(last["misses"])
            ev, ex = to_float(last["evictions"]), to_float(last["expirations"])
            window = to_float(last["uptime_s"])
            basis = "since start"
            unfetched = {c: to_float(last[c]) for c in ("evicted_unfetched", "expired_unfetched")}
        lookups = hits + misses
        maxmem = to_float(last["maxmemory"])
        used = to_float(last["used_memory"])
        rows.append(
            {
                "instance": inst,
                "engine": last["engine"],
                "snapshots": len(g),
                "restarts": int((g["reset"] == "restart").sum()),
                "resets": int((g["reset"] == "stats reset").sum()),
                "reset_times": [str(t) for t in g.loc[g["reset"] != "", "ts"]],
                "hits": hits,
                "misses": misses,
                "hit_ratio": hits / lookups if lookups > 0 else float("nan"),
                "basis": basis,
                "window_s": window,
                "evictions": ev,
                "expirations": ex,
                "evictions_per_s": ev / window if window == window and window > 0 else float("nan"),
                "expirations_per_s": ex / window
                if window == window and window > 0
                else float("nan"),
                **unfetched,
                "used_memory": used,
                "maxmemory": maxmem,
                "memory_share": used / maxmem if maxmem and maxmem == maxmem else float("nan"),
                "policy": last["policy"] if isinstance(last["policy"], str) else None,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def _delta_sum(g: pd.DataFrame, col: str) -> float:
    total = 0.0
    seen = False
    for _seg, s in g.groupby("segment"):
        v = pd.to_numeric(s.sort_values("ts")[col], errors="coerce").dropna()
        if len(v) >= 2:
            total += float(v.iloc[-1] - v.iloc[0])
            seen = True
    return total if seen else float("nan")


def command_mix(stats: pd.DataFrame, snapshots: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per instance and command (Redis ``commandstats``): calls and time, as differences over
    the window within segments when there are several snapshots, else since start; with each
    command's share of all calls."""
    cols = ["instance", "command", "calls", "usec", "usec_per_call", "share"]
    if len(stats) == 0:
        return pd.DataFrame(columns=cols)
    cmd = stats[stats["metric"].astype("string").str.match(r"^cmdstat_.+\.(calls|usec)$", na=False)]
    if len(cmd) == 0:
        return pd.DataFrame(columns=cols)
    snaps = snapshots if snapshots is not None else server_snapshots(stats)
    parts = (
        cmd["metric"].astype(str).str.extract(r"^cmdstat_(?P<command>.+)\.(?P<what>calls|usec)$")
    )
    df = pd.concat(
        [
            cmd[["server", "source_file", "value"]].reset_index(drop=True),
            parts.reset_index(drop=True),
        ],
        axis=1,
    )
    values = {
        (srv, src, c, w): float(v)
        for srv, src, c, w, v in zip(
            df["server"], df["source_file"], df["command"], df["what"], df["value"], strict=True
        )
    }
    rows = []
    for inst, g in snaps.groupby("instance", sort=False):
        commands = sorted(
            set(df.loc[df["server"].isin(set(g["server"])), "command"].dropna().astype(str))
        )
        segments = [s.sort_values("ts", kind="stable") for _seg, s in g.groupby("segment")]
        paired = [s for s in segments if len(s) >= 2]
        for command in commands:
            out: dict[str, float] = {}
            for what in ("calls", "usec"):

                def at(snap: Any, command: str = command, what: str = what) -> float:
                    # a command not listed yet in a snapshot has not run since the start
                    return values.get((snap.server, snap.source_file, command, what), 0.0)

                if paired:
                    out[what] = sum(at(s.iloc[-1]) - at(s.iloc[0]) for s in paired)
                else:
                    out[what] = at(g.sort_values("ts", kind="stable").iloc[-1])
            rows.append({"instance": inst, "command": command, **out})
    mix = pd.DataFrame(rows, columns=["instance", "command", "calls", "usec"])
    mix["usec_per_call"] = mix["usec"] / mix["calls"].where(mix["calls"] > 0)
    mix["share"] = mix["calls"] / mix.groupby("instance")["calls"].transform("sum")
    return mix.sort_values(["instance", "calls"], ascending=[True, False]).reset_index(drop=True)[
        cols
    ]
