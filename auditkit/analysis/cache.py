"""Cache-hit analysis, layer by layer: pure functions from canonical frames to derived frames.

A request meets up to three caches on its way to the data: a CDN or proxy cache (the
``cache_status`` of the requests frame), the Django cache (the operations of the
``cache_events`` frame, and the server counters of ``cache_stats``), and the database's buffer
cache (``pg_statio_*`` in ``schema_tables``/``schema_indexes``, ``pg_stat_statements`` blocks,
``pg_stat_database`` in ``server_status``). This module measures each, and the checks in
:mod:`auditkit.checks.caching` turn what it measures into findings.

**Server counters** (:func:`server_snapshots`, :func:`server_rates`, :func:`server_summary`,
:func:`command_mix`). Redis ``INFO`` and memcached ``stats`` counters are cumulative since the
server started (or since ``CONFIG RESETSTAT`` / ``stats reset``). Snapshots of one server are
put in order and cut into *segments* wherever the counters start again: a new ``run_id`` or
``pid`` (the loaders name such a server differently: it is the same instance when their
snapshots do not overlap in time), an uptime going backwards (a restart), or a counter going
backwards with the uptime still rising (a statistics reset). Rates and ratios come from the
differences of consecutive snapshots *within* a segment, never across one. With a single
snapshot the ratio is since the server started, and says so.

**Key families** (:func:`key_families`, :func:`miss_causes`). The operations of the Django cache
grouped by key family (``key_prefix``: the key with Django's ``KEY_PREFIX:VERSION:`` taken off
and its variable parts replaced, :func:`auditkit.loaders.cache_events.key_family`). Every miss
is given its cause from the key's own history: ``first read`` (the key was never written in the
window), ``expired`` (read after its time to live ran out), ``evicted`` (gone before its time
to live: the server made room), ``deleted`` (invalidated). Families also get their re-read
interval (the median time between two reads of one key), reads per key and the sets never read.
:func:`shared_result` tells from the statements the misses ran whether the varying part of the
key changes the result (if not, one entry could serve every key).

**Buffer cache** (:func:`buffer_cache`), **HTTP and CDN** (:func:`http_cache`,
:func:`static_served`) and **the funnel** (:func:`funnel`): what each layer absorbs per
endpoint and where the time goes when it does not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from pathlib import PurePath
from typing import Any, cast

import numpy as np
import pandas as pd

from auditkit.loaders.cache_events import key_family

__all__ = [
    "CDN_HITS",
    "buffer_cache",
    "command_mix",
    "display_frames",
    "funnel",
    "http_cache",
    "key_families",
    "key_parts",
    "miss_causes",
    "nice_ttl",
    "per_user_part",
    "path_pattern",
    "ratio_series",
    "server_rates",
    "server_snapshots",
    "server_summary",
    "shared_result",
    "static_served",
]


def _rows(df: pd.DataFrame) -> Iterator[Any]:
    """The rows of ``df`` as named tuples (typed loosely: columns vary by input)."""
    return iter(cast("Iterable[Any]", df.itertuples(index=False)))


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
#: CDN and proxy outcomes that answered the request without the application
CDN_HITS = frozenset(
    {"HIT", "STALE", "UPDATING", "REVALIDATED", "TCP_HIT", "TCP_MEM_HIT", "REFRESH_HIT"}
)
_STATIC = re.compile(
    r"(?:^/(?:static|media|assets|uploads)/)|\.(?:css|js|mjs|map|png|jpe?g|gif|webp|avif|svg|ico|woff2?|ttf|eot|mp4|webm|pdf|zip)$",
    re.I,
)
_PER_USER_WORDS = re.compile(
    r"(?:^|[:._\-/])(user|users|u|uid|member|customer|account|profile|session|sess|visitor|cart|basket)(?=$|[:._\-/{])",
    re.I,
)


def _engine_family(engine: object) -> str:
    return "memcached" if str(engine).lower() == "memcached" else "redis"


# -- server counters -----------------------------------------------------------------------------
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
        for r in _rows(g):
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
    for r in _rows(spans):
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
        for a, b in zip(_rows(g.iloc[:-1]), _rows(g.iloc[1:]), strict=True):
            interval = (
                (b.ts - a.ts).total_seconds() if pd.notna(a.ts) and pd.notna(b.ts) else float("nan")
            )
            if interval != interval or interval <= 0:
                up = _float(b.uptime_s) - _float(a.uptime_s)
                interval = up if up == up and up > 0 else float("nan")
            d = {
                c: _float(getattr(b, c)) - _float(getattr(a, c))
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
                    "used_memory": _float(b.used_memory),
                    "maxmemory": _float(b.maxmemory),
                }
            )
    return pd.DataFrame(rows, columns=cols)


def _float(v: object) -> float:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
    return f


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
            hits, misses = _float(last["hits"]), _float(last["misses"])
            ev, ex = _float(last["evictions"]), _float(last["expirations"])
            window = _float(last["uptime_s"])
            basis = "since start"
            unfetched = {c: _float(last[c]) for c in ("evicted_unfetched", "expired_unfetched")}
        lookups = hits + misses
        maxmem = _float(last["maxmemory"])
        used = _float(last["used_memory"])
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


# -- key families from cache events --------------------------------------------------------------
_READS = frozenset({"get", "get_or_set", "has_key", "mget", "exists"})
_WRITES = frozenset({"set", "add", "set_many", "setex", "mset", "incr", "decr"})
_DELETES = frozenset({"delete", "delete_many", "del"})
_MISS_CAUSES = ("first read", "expired", "evicted", "deleted")


def _families(events: pd.DataFrame) -> pd.Series:
    if "key_prefix" in events and events["key_prefix"].notna().any():
        fam = events["key_prefix"].astype("string")
        return fam.fillna(
            events["key"]
            .astype("string")
            .map(lambda k: key_family(k) if isinstance(k, str) else pd.NA)
        )
    return (
        events["key"].astype("string").map(lambda k: key_family(k) if isinstance(k, str) else pd.NA)
    )


def _replay(events: pd.DataFrame) -> pd.DataFrame:
    """The single-key operations of ``events`` in time order per key, each read with the state
    of its key before it (vectorised: grouped shifts and forward fills, no loop per key).

    Columns: ``idx``, ``family``, ``cache``, ``key``, ``ts``, ``op``, ``endpoint``,
    ``request_id``, ``ttl_s``, ``is_read``, ``is_write``, ``hit``, ``cause``,
    ``since_write_s``, ``since_read_s``, ``read_later`` (a write read again afterwards).
    """
    ev = events.assign(family=_families(events), idx=np.arange(len(events)))
    ev = ev[ev["key"].notna() & ev["op"].notna()]
    if "error" in ev:
        ev = ev[ev["error"].isna()]
    if "key_count" in ev:
        ev = ev[~(pd.to_numeric(ev["key_count"], errors="coerce").fillna(1) > 1)]
    cache = ev["cache"].astype("string").fillna("") if "cache" in ev else ""
    ev = ev.assign(cache=cache, key=ev["key"].astype(str), op=ev["op"].astype(str))
    ev = ev.sort_values(["cache", "key", "ts", "idx"], kind="stable", na_position="first")
    ev = ev.reset_index(drop=True)
    hit = (
        ev["hit"].astype("boolean")
        if "hit" in ev
        else pd.Series(pd.NA, index=ev.index, dtype="boolean")
    )
    op = ev["op"]
    is_read = op.isin(list(_READS)) & hit.notna()
    is_write = (
        op.isin(list(_WRITES - {"incr", "decr"}))
        | op.eq("touch")
        | (op.eq("get_or_set") & hit.eq(False).fillna(False))
    )
    is_delete = op.isin(list(_DELETES))
    pos = pd.Series(np.arange(len(ev), dtype="float64"), index=ev.index)
    ttl = (
        pd.to_numeric(ev["ttl_s"], errors="coerce")
        if "ttl_s" in ev
        else pd.Series(np.nan, index=ev.index)
    )
    group = [ev["cache"], ev["key"]]
    state = pd.DataFrame(
        {
            "w_pos": pos.where(is_write),
            "w_ts": ev["ts"].where(is_write),
            "w_ttl": ttl.where(is_write),
            "d_pos": pos.where(is_delete),
        }
    )
    # the state *before* each row: the previous rows' last write and delete in the same key
    before = state.groupby(group, sort=False).shift(1)
    before = before.groupby(group, sort=False).ffill()
    written = before["w_pos"].notna()
    deleted = before["d_pos"].notna() & (~written | (before["d_pos"] > before["w_pos"]))
    since_write = (ev["ts"] - before["w_ts"]).dt.total_seconds()
    miss = is_read & hit.eq(False).fillna(False)
    expired = written & ~deleted & (before["w_ttl"] > 0) & (since_write >= before["w_ttl"] - 0.5)
    cause = pd.Series(pd.NA, index=ev.index, dtype="string")
    cause = cause.mask(miss & ~written & ~deleted, "first read")
    cause = cause.mask(miss & deleted, "deleted")
    cause = cause.mask(miss & written & ~deleted & expired.fillna(False), "expired")
    cause = cause.mask(miss & written & ~deleted & ~expired.fillna(False), "evicted")
    reads_ts = ev["ts"].where(is_read)
    prev_read = reads_ts.groupby(group, sort=False).shift(1)
    prev_read = prev_read.groupby(group, sort=False).ffill()
    last_read = pos.where(is_read).groupby(group, sort=False).transform("max")
    return ev.assign(
        is_read=is_read.to_numpy(),
        is_write=is_write.to_numpy(),
        hit=hit,
        cause=cause,
        since_write_s=since_write.where(written),
        since_read_s=(ev["ts"] - prev_read).dt.total_seconds().where(is_read),
        read_later=(is_write & (last_read > pos)).to_numpy(),
    )


def miss_causes(events: pd.DataFrame) -> pd.DataFrame:
    """The single-key reads of ``events`` with their family and, for a miss, its cause.

    Each key's operations are replayed in time order: a miss on a key never written before in
    the window is a ``first read``; one after a delete, ``deleted``; one after the time to live
    of the last write ran out, ``expired``; one before it ran out, ``evicted`` (the server
    dropped it early: memory pressure, a restart or a flush). ``get_or_set`` that misses writes
    the key too, with its timeout. Columns: ``idx`` (the row of ``events``), ``family``,
    ``cache``, ``key``, ``ts``, ``endpoint``, ``request_id``, ``hit``, ``cause``,
    ``since_write_s``, ``since_read_s`` (time since the previous read of the same key).
    """
    cols = [
        "idx",
        "family",
        "cache",
        "key",
        "ts",
        "endpoint",
        "request_id",
        "hit",
        "cause",
        "since_write_s",
        "since_read_s",
    ]
    if len(events) == 0:
        return pd.DataFrame(columns=cols)
    ev = _replay(events)
    reads = ev[ev["is_read"]].copy()
    for c in ("endpoint", "request_id"):
        if c not in reads:
            reads[c] = pd.NA
    reads["hit"] = reads["hit"].astype(bool)
    reads["cache"] = [c if isinstance(c, str) and c else None for c in reads["cache"]]
    reads["cause"] = reads["cause"].astype(object).where(reads["cause"].notna(), None)
    return reads.sort_values(["ts", "idx"], kind="stable").reset_index(drop=True)[cols]


def key_families(
    events: pd.DataFrame, key_family_stats: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per cache and key family: reads, hits, misses, hit ratio, the causes of the misses,
    distinct keys, reads per key, the median re-read interval of a key, the median time to
    live its writes gave, sets never read, and the endpoints that read it (busiest first).

    ``key_family_stats`` (the ``cache_key_families`` frame of a memcached ``stats detail dump``
    or key dump) adds families the server counted, with ``source`` saying which.
    """
    cols = [
        "cache",
        "family",
        "reads",
        "hits",
        "misses",
        "hit_ratio",
        *[f"miss_{c.replace(' ', '_')}" for c in _MISS_CAUSES],
        "keys",
        "reads_per_key",
        "reread_s",
        "reread_p75_s",
        "ttl_s",
        "sets",
        "sets_never_read",
        "endpoints",
        "source",
    ]
    frames: list[pd.DataFrame] = []
    if len(events):
        ev = _replay(events)
        keys = ["cache", "family"]
        reads = ev[ev["is_read"]]
        writes = ev[ev["is_write"]]
        g = ev.groupby(keys, sort=False)
        out = pd.DataFrame(index=g.size().index)
        r = reads.groupby(keys, sort=False)
        out["reads"] = r.size()
        out["hits"] = r["hit"].sum()
        for c in _MISS_CAUSES:
            out[f"miss_{c.replace(' ', '_')}"] = (
                reads[reads["cause"] == c].groupby(keys, sort=False).size()
            )
        out["read_keys"] = r["key"].nunique()
        out["keys"] = g["key"].nunique()
        out["reread_s"] = r["since_read_s"].median()
        out["reread_p75_s"] = r["since_read_s"].quantile(0.75)
        w = writes.groupby(keys, sort=False)
        out["ttl_s"] = w["ttl_s"].median() if "ttl_s" in writes else np.nan
        out["sets"] = w.size()
        out["sets_never_read"] = w.size() - w["read_later"].sum()
        # multi-key reads count in their first key's family
        if "key_count" in events:
            multi = events[events["op"].isin(["get_many", "mget"]) & events["key_count"].notna()]
            if len(multi):
                m = multi.assign(
                    family=_families(multi),
                    cache=multi["cache"].astype("string").fillna("") if "cache" in multi else "",
                    _hits=pd.to_numeric(multi["key_hits"], errors="coerce")
                    if "key_hits" in multi
                    else 0.0,
                ).groupby(keys, sort=False)
                more = pd.DataFrame({"n": m["key_count"].sum(), "h": m["_hits"].sum()})
                out = out.join(more, how="outer")
                out["reads"] = out["reads"].fillna(0) + out["n"].fillna(0)
                out["hits"] = out["hits"].fillna(0) + out["h"].fillna(0)
                out = out.drop(columns=["n", "h"])
        counts = ["reads", "hits", "sets", "sets_never_read", "keys"] + [
            f"miss_{c.replace(' ', '_')}" for c in _MISS_CAUSES
        ]
        out[counts] = out[counts].fillna(0).astype(int)
        out["misses"] = out["reads"] - out["hits"]
        out["hit_ratio"] = (out["hits"] / out["reads"].where(out["reads"] > 0)).astype(float)
        out["reads_per_key"] = (r.size() / out["read_keys"].where(out["read_keys"] > 0)).reindex(
            out.index
        )
        if "endpoint" in ev:
            eps = (
                ev.dropna(subset=["endpoint"])
                .groupby([*keys, "endpoint"], sort=False)
                .size()
                .sort_values(ascending=False, kind="stable")
            )
            top = (
                eps.reset_index()
                .groupby(keys, sort=False)["endpoint"]
                .agg(lambda s: [str(x) for x in s.head(5)])
            )
            out["endpoints"] = top.reindex(out.index)
        out["endpoints"] = [
            v if isinstance(v, list) else [] for v in out.get("endpoints", [None] * len(out))
        ]
        out["source"] = "cache events"
        out = out.reset_index()
        out["cache"] = [c if isinstance(c, str) and c else None for c in out["cache"]]
        frames.append(out)
    rows: list[dict[str, Any]] = []
    if key_family_stats is not None and len(key_family_stats):
        kf = key_family_stats
        for (server, family), g2 in kf.groupby(["server", "key_prefix"], sort=False, dropna=False):
            last: Any = g2.sort_values("ts", na_position="first").iloc[-1]
            gets = _float(last.get("gets"))
            hits = _float(last.get("hits"))
            rows.append(
                {
                    "cache": str(server),
                    "family": str(family),
                    "reads": int(gets) if gets == gets else 0,
                    "hits": int(hits) if hits == hits else 0,
                    "misses": int(gets - hits) if gets == gets and hits == hits else 0,
                    "hit_ratio": _float(last.get("hit_ratio")),
                    "keys": _int0(last.get("keys")),
                    "ttl_s": _float(last.get("median_ttl_s")),
                    "sets": _int0(last.get("sets")),
                    "sets_never_read": _int0(last.get("never_fetched_keys")),
                    "endpoints": [],
                    "source": str(last.get("source_format") or "server key statistics"),
                }
            )
    if rows:
        frames.append(pd.DataFrame(rows))
    if not frames:
        return pd.DataFrame(columns=cols)
    result = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    for c in cols:
        if c not in result:
            result[c] = np.nan
    return result[cols].sort_values("misses", ascending=False, kind="stable").reset_index(drop=True)


def _int0(v: object) -> int:
    f = _float(v)
    return int(f) if f == f else 0


def key_parts(family: str, key: str) -> list[str] | None:
    """The values of the variable parts of ``key`` in ``family`` (None when it does not fit):
    ``key_parts("summary:{int}:{int}", "shop:1:summary:12:705")`` → ``["12", "705"]``."""
    pattern = re.escape(family)
    for token in (
        "\\{int\\}",
        "\\{uuid\\}",
        "\\{email\\}",
        "\\{hex\\}",
        "\\{token\\}",
        "\\{session\\}",
    ):
        pattern = pattern.replace(token, "(.+?)")
    m = re.search(pattern + "$", key)  # after Django's KEY_PREFIX:VERSION:, if any
    return list(m.groups()) if m else None


def shared_result(
    events: pd.DataFrame,
    family: str,
    statements: pd.DataFrame,
    is_django: Any = None,
) -> dict[str, Any] | None:
    """Does the varying part of ``family``'s keys change what the miss path computes?

    For the misses of the family, the statements of the same request (text and parameters,
    the application's own tables only: the session and user lookups of every request are left
    out, ``is_django(table)`` says which are Django's) are compared across keys. For each
    variable part of the key: when keys that differ only there ran the very same statements,
    the part does not change the result. Returns ``{"slot": i (0-based), "values": distinct
    values of that part, "keys": keys compared, "statements": fingerprint ids, "shared": bool}``
    for the part with the most distinct values, or None when the data cannot tell (no
    statements with parameters in the misses' requests).
    """
    if len(events) == 0 or len(statements) == 0 or "request_id" not in events:
        return None
    reads = miss_causes(events)
    misses = reads[
        (reads["family"] == family) & (~reads["hit"].astype(bool)) & reads["request_id"].notna()
    ]
    if len(misses) < 2:
        return None
    req_col = "request_key" if "request_key" in statements else "request_id"
    st = statements[
        statements[req_col].astype("string").isin(set(misses["request_id"].astype(str)))
    ]
    if len(st) == 0:
        return None
    from auditkit.sql.django_orm import statement_shape

    def own(fp: object) -> bool:
        shape = statement_shape(str(fp)) if isinstance(fp, str) else None
        tables = [t for t in (shape.tables if shape else ()) if t]
        return bool(tables) and not (is_django and all(is_django(t) for t in tables))

    fps = {fp: own(fp) for fp in st["fingerprint"].dropna().unique()}
    st = st[st["fingerprint"].map(fps).fillna(False).astype(bool)]
    # the miss path: what the misses' requests run and the hits' requests do not
    hit_requests = set(
        reads.loc[
            (reads["family"] == family) & reads["hit"].astype(bool) & reads["request_id"].notna(),
            "request_id",
        ].astype(str)
    )
    if hit_requests:
        on_hits = set(
            statements.loc[
                statements[req_col].astype("string").isin(hit_requests), "fingerprint_id"
            ].astype(str)
        )
        path = st[~st["fingerprint_id"].astype(str).isin(on_hits)]
        if len(path):
            st = path
    if len(st) == 0:
        return None
    params = (
        st["params"].astype("string").fillna("")
        if "params" in st
        else pd.Series("", index=st.index)
    )
    sql = (
        st["sql"].astype("string").fillna("") if "sql" in st else st["fingerprint"].astype("string")
    )
    variant = st["fingerprint_id"].astype(str) + "\x00" + sql + "\x00" + params
    per_request = {
        str(rid): tuple(sorted(set(s))) for rid, s in variant.groupby(st[req_col].astype(str))
    }
    misses = misses.assign(_work=misses["request_id"].astype(str).map(per_request))
    misses = misses.dropna(subset=["_work"])
    parts: dict[str, list[str]] = {}
    for k in misses["key"].unique():
        slots = key_parts(family, str(k))
        if slots:
            parts[str(k)] = slots
    if len(parts) < 2:
        return None
    n_slots = max(len(v) for v in parts.values())
    best: dict[str, Any] | None = None
    for i in range(n_slots):
        values = {v[i] for v in parts.values() if len(v) > i}
        if len(values) < 2:
            continue
        # keys equal but for part i: did they run the same work?
        groups: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
        for k, work in zip(misses["key"], misses["_work"], strict=True):
            v = parts.get(str(k))
            if not v or len(v) <= i:
                continue
            rest = tuple(v[:i] + v[i + 1 :])
            groups.setdefault(rest, set()).add(work)
        compared = [g for g in groups.values()]
        if not compared:
            continue
        shared = all(len(g) == 1 for g in compared) and any(
            len({k for k in parts if tuple(parts[k][:i] + parts[k][i + 1 :]) == rest}) > 1
            for rest in groups
        )
        candidate: dict[str, Any] = {
            "slot": i,
            "values": len(values),
            "keys": len(parts),
            "statements": sorted(set(st["fingerprint_id"].astype(str))),
            "shared": bool(shared),
        }
        if best is None or (candidate["shared"], candidate["values"]) > (
            best["shared"],
            best["values"],
        ):
            best = candidate
    return best


def per_user_part(family: str) -> int | None:
    """The index of the variable part of ``family`` that a word marks as per user or session
    (``user:{int}``, ``…:session:{token}``, a ``{session}`` key), else None."""
    tokens = list(re.finditer(r"\{(?:int|uuid|email|hex|token|session)\}", family))
    for i, t in enumerate(tokens):
        if t.group(0) in ("{session}", "{email}"):
            return i
        before = family[: t.start()]
        if _PER_USER_WORDS.search(before[-12:] + "{"):
            return i
    return None


# -- database buffer cache -----------------------------------------------------------------------
def buffer_cache(
    schema_tables: pd.DataFrame,
    schema_indexes: pd.DataFrame,
    statement_stats: pd.DataFrame,
    server_status: pd.DataFrame,
) -> dict[str, pd.DataFrame]:
    """PostgreSQL's buffer cache hit ratio per table (heap, indexes, TOAST), per index, per
    statement and per database, with the blocks read from outside shared buffers.

    Returns frames ``tables``, ``indexes``, ``statements``, ``databases`` (each with ``hit``,
    ``read``, ``hit_ratio``, sorted by blocks read, largest first); empty when the input lacks
    the counters. ``pg_stat_database`` counters of several snapshots are differenced.
    """
    out: dict[str, pd.DataFrame] = {}
    t = schema_tables
    if (
        len(t)
        and {"heap_blks_hit", "heap_blks_read"} <= set(t.columns)
        and t["heap_blks_hit"].notna().any()
    ):
        df = pd.DataFrame({"table": t["table"]})
        hit = sum(
            pd.to_numeric(t[c], errors="coerce").fillna(0)
            for c in ("heap_blks_hit", "idx_blks_hit", "toast_blks_hit")
            if c in t
        )
        read = sum(
            pd.to_numeric(t[c], errors="coerce").fillna(0)
            for c in ("heap_blks_read", "idx_blks_read", "toast_blks_read")
            if c in t
        )
        df["hit"], df["read"] = hit, read
        df["heap_hit_ratio"] = _ratio(
            pd.to_numeric(t["heap_blks_hit"], errors="coerce"),
            pd.to_numeric(t["heap_blks_read"], errors="coerce"),
        )
        out["tables"] = _rank(
            df.groupby("table", as_index=False)[["hit", "read"]]
            .max()
            .merge(df[["table", "heap_hit_ratio"]].drop_duplicates("table"), on="table")
        )
    i = schema_indexes
    if (
        len(i)
        and {"idx_blks_hit", "idx_blks_read"} <= set(i.columns)
        and i["idx_blks_hit"].notna().any()
    ):
        df = pd.DataFrame(
            {
                "table": i["table"],
                "index": i["index"],
                "hit": pd.to_numeric(i["idx_blks_hit"], errors="coerce"),
                "read": pd.to_numeric(i["idx_blks_read"], errors="coerce"),
            }
        ).dropna(subset=["hit"])
        out["indexes"] = _rank(df.drop_duplicates(["table", "index"], keep="last"))
    s = statement_stats
    if len(s) and "shared_blks_hit" in s and s["shared_blks_hit"].notna().any():
        df = pd.DataFrame(
            {
                "fingerprint_id": s["fingerprint_id"],
                "fingerprint": s["fingerprint"],
                "calls": s.get("calls"),
                "hit": pd.to_numeric(s["shared_blks_hit"], errors="coerce").fillna(0),
                "read": pd.to_numeric(s["shared_blks_read"], errors="coerce").fillna(0),
                "total_ms": s.get("total_ms"),
            }
        )
        out["statements"] = _rank(df)
    st = server_status
    if len(st) and "view" in st:
        db = st[(st["view"] == "pg_stat_database") & st["name"].isin(["blks_hit", "blks_read"])]
        if len(db):
            rows = []
            for database, g in db.groupby(db["database"].fillna(""), sort=False):
                if database in TEMPLATE_DATABASES:  # never queried by an application
                    continue
                vals = {}
                for name in ("blks_hit", "blks_read"):
                    v = (
                        g[g["name"] == name]
                        .sort_values(["ts", "snapshot"], na_position="first")["value"]
                        .dropna()
                    )
                    if len(v) >= 2 and v.iloc[-1] >= v.iloc[0]:
                        vals[name] = float(v.iloc[-1] - v.iloc[0])
                    elif len(v):
                        vals[name] = float(v.iloc[-1])
                if vals:
                    rows.append(
                        {
                            # pg_stat_database's row without a database: the shared catalogs
                            "database": database or "(shared catalogs)",
                            "hit": vals.get("blks_hit", 0.0),
                            "read": vals.get("blks_read", 0.0),
                        }
                    )
            if rows:
                out["databases"] = _rank(pd.DataFrame(rows))
    return out


def _ratio(hit: pd.Series, read: pd.Series) -> pd.Series:
    total = hit.fillna(0) + read.fillna(0)
    return (hit.fillna(0) / total).where(total > 0)


#: PostgreSQL's template databases: their counters are the server's own housekeeping
TEMPLATE_DATABASES = frozenset({"template0", "template1"})
#: objects with fewer blocks touched than this are left out of the tables: their ratios are noise
MIN_BLOCKS = 100


def _rank(df: pd.DataFrame) -> pd.DataFrame:
    df = df[df["hit"].astype(float).fillna(0) + df["read"].astype(float).fillna(0) >= MIN_BLOCKS]
    df = df.copy()
    df["hit_ratio"] = _ratio(df["hit"].astype(float), df["read"].astype(float))
    return df.sort_values("read", ascending=False, kind="stable").reset_index(drop=True)


# -- HTTP and CDN --------------------------------------------------------------------------------
def path_pattern(path: object) -> str | None:
    """A request path with its variable parts replaced: ``/loaves/12/`` → ``/loaves/{int}/``."""
    if not isinstance(path, str) or not path:
        return None
    p = path.split("?", 1)[0]
    if _STATIC.search(p):
        m = re.match(r"^(/[^/]+/)", p)
        ext = re.search(r"\.([A-Za-z0-9]+)$", p)
        return f"{m.group(1) if m else '/'}…{'.' + ext.group(1).lower() if ext else ''}"
    return key_family(p)


def _paths(requests: pd.DataFrame) -> pd.Series:
    path = requests["path"] if "path" in requests else pd.Series(pd.NA, index=requests.index)
    return (
        path.astype("string").fillna(requests["endpoint"].astype("string"))
        if "endpoint" in requests
        else path
    )


def http_cache(requests: pd.DataFrame) -> pd.DataFrame:
    """Per path pattern: requests, the CDN's (or proxy's) outcomes, its hit ratio, and the
    share of cacheable GETs answered without ``Cache-Control`` (when a ``cache_control`` column
    says). Only requests whose ``cache_status`` is known count toward the outcomes."""
    cols = [
        "pattern",
        "requests",
        "hits",
        "hit_ratio",
        "outcomes",
        "bytes",
        "get_ok",
        "no_cache_control",
    ]
    if (
        len(requests) == 0
        or "cache_status" not in requests
        or requests["cache_status"].isna().all()
    ):
        return pd.DataFrame(columns=cols)
    df = requests.assign(_pattern=_paths(requests).map(path_pattern))
    df = df[df["cache_status"].notna()]
    rows = []
    for pattern, g in df.groupby("_pattern", sort=False):
        status = g["cache_status"].astype(str).str.upper()
        hits = int(status.isin(CDN_HITS).sum())
        get_ok = (
            (g["method"].astype("string").str.upper() == "GET")
            & g["status"].astype("Float64").between(200, 299)
            if "method" in g and "status" in g
            else pd.Series(False, index=g.index)
        )
        no_cc = float("nan")
        if "cache_control" in g and g["cache_control"].notna().any():
            no_cc = int((get_ok & g["cache_control"].isna()).sum())
        rows.append(
            {
                "pattern": pattern,
                "requests": len(g),
                "hits": hits,
                "hit_ratio": hits / len(g),
                "outcomes": dict(status.value_counts().items()),
                "bytes": float(pd.to_numeric(g["response_bytes"], errors="coerce").sum())
                if "response_bytes" in g
                else float("nan"),
                "get_ok": int(get_ok.fillna(False).sum()),
                "no_cache_control": no_cc,
            }
        )
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values("requests", ascending=False, kind="stable").reset_index(drop=True)


def static_served(requests: pd.DataFrame) -> pd.DataFrame:
    """Static and media files answered by the application (not by a CDN or proxy cache): per
    path pattern, requests and bytes. A request counts when its path looks static
    (``/static/``, ``/media/``, a file extension) and no cache answered it."""
    cols = ["pattern", "requests", "bytes"]
    if len(requests) == 0:
        return pd.DataFrame(columns=cols)
    paths = _paths(requests)
    static = paths.astype("string").str.contains(_STATIC, na=False)
    if "cache_status" in requests:
        static &= ~requests["cache_status"].astype("string").str.upper().isin(CDN_HITS).fillna(
            False
        )
    df = requests[static.fillna(False).astype(bool)]
    if len(df) == 0:
        return pd.DataFrame(columns=cols)
    df = df.assign(
        _pattern=paths[df.index].map(path_pattern),
        _bytes=pd.to_numeric(df["response_bytes"], errors="coerce")
        if "response_bytes" in df
        else pd.Series(np.nan, index=df.index),
    )
    out = (
        df.groupby("_pattern")
        .agg(requests=("_pattern", "size"), bytes=("_bytes", "sum"))
        .reset_index()
    )
    out = out.rename(columns={"_pattern": "pattern"})
    return out.sort_values("bytes", ascending=False, kind="stable").reset_index(drop=True)[cols]


# -- the funnel ----------------------------------------------------------------------------------
def funnel(
    requests: pd.DataFrame,
    events: pd.DataFrame,
    statement_endpoints: pd.DataFrame,
    statement_stats: pd.DataFrame,
) -> pd.DataFrame:
    """Per endpoint, what each layer absorbs and where the time goes when it does not.

    Columns: ``endpoint``, ``requests``, ``cdn_hit_ratio`` (requests the CDN or proxy answered,
    among those with a known outcome), ``cache_reads``, ``cache_hit_ratio`` (Django cache reads
    that hit), ``buffer_hit_ratio`` (the endpoint's statements' shared-buffer hits, from
    ``pg_stat_statements`` blocks per call weighted by the endpoint's calls), ``response_ms``,
    ``db_ms``, ``cache_ms`` (medians per request), ``other_ms`` (the rest). NaN where the
    data does not say.
    """
    cols = [
        "endpoint",
        "requests",
        "cdn_hit_ratio",
        "cache_reads",
        "cache_hit_ratio",
        "buffer_hit_ratio",
        "response_ms",
        "db_ms",
        "cache_ms",
        "other_ms",
    ]
    parts: dict[str, dict[str, Any]] = {}

    def row(ep: str) -> dict[str, Any]:
        return parts.setdefault(ep, {"endpoint": ep})

    if len(requests) and "endpoint" in requests:
        req = requests[requests["endpoint"].notna()]
        for ep, g in req.groupby("endpoint", sort=False):
            r = row(str(ep))
            r["requests"] = len(g)
            if "cache_status" in g and g["cache_status"].notna().any():
                st = g["cache_status"].dropna().astype(str).str.upper()
                r["cdn_hit_ratio"] = float(st.isin(CDN_HITS).mean())
            for c, name in (
                ("duration_ms", "response_ms"),
                ("db_ms", "db_ms"),
                ("cache_ms", "cache_ms"),
            ):
                if c in g and g[c].notna().any():
                    r[name] = float(pd.to_numeric(g[c], errors="coerce").median())
    if len(events) and "endpoint" in events:
        reads = miss_causes(events)
        for ep, g in reads.dropna(subset=["endpoint"]).groupby("endpoint", sort=False):
            r = row(str(ep))
            r["cache_reads"] = len(g)
            r["cache_hit_ratio"] = float(g["hit"].mean())
    if len(statement_endpoints) and len(statement_stats) and "shared_blks_hit" in statement_stats:
        per_call = statement_stats.set_index("fingerprint_id")
        calls = pd.to_numeric(per_call["calls"], errors="coerce").where(lambda c: c > 0)
        hit_pc = pd.to_numeric(per_call["shared_blks_hit"], errors="coerce") / calls
        read_pc = pd.to_numeric(per_call["shared_blks_read"], errors="coerce") / calls
        se = statement_endpoints.assign(
            _hit=statement_endpoints["fingerprint_id"].map(hit_pc.groupby(level=0).first())
            * statement_endpoints["calls"],
            _read=statement_endpoints["fingerprint_id"].map(read_pc.groupby(level=0).first())
            * statement_endpoints["calls"],
        ).dropna(subset=["_hit"])
        for ep, g in se.groupby("endpoint", sort=False):
            total = g["_hit"].sum() + g["_read"].fillna(0).sum()
            if total > 0:
                row(str(ep))["buffer_hit_ratio"] = float(g["_hit"].sum() / total)
    out = pd.DataFrame(list(parts.values()), columns=cols)
    if len(out):
        known = out[["db_ms", "cache_ms"]].fillna(0).sum(axis=1)
        out["other_ms"] = (out["response_ms"] - known).clip(lower=0)
    return out.sort_values(
        "requests", ascending=False, na_position="last", kind="stable"
    ).reset_index(drop=True)


def nice_ttl(seconds: float) -> int:
    """A round time to live at least ``seconds``: 60, 120, 300, 600, 900, 1800, 3600, … s."""
    for step in (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400):
        if seconds <= step:
            return step
    return int(math.ceil(seconds / 86400) * 86400)


# -- series and the frames the chapter displays --------------------------------------------------
def ratio_series(
    ts: pd.Series, hit: pd.Series, group: pd.Series | None = None, *, points: int = 24
) -> pd.DataFrame:
    """Hit ratio over time: the window cut into ``points`` equal bins (per ``group`` when given).

    Columns: ``group``, ``ts`` (the bin's start), ``lookups``, ``hits``, ``hit_ratio``; bins
    without lookups are left out. For cache events (``hit`` of the reads) and CDN outcomes.
    """
    cols = ["group", "ts", "lookups", "hits", "hit_ratio"]
    df = pd.DataFrame(
        {
            "ts": pd.to_datetime(ts, utc=True),
            "hit": hit.astype("boolean"),
            "group": group.astype("string").fillna("(none)") if group is not None else "all",
        }
    ).dropna(subset=["ts", "hit"])
    if len(df) == 0:
        return pd.DataFrame(columns=cols)
    start, end = df["ts"].min(), df["ts"].max()
    span = (end - start) / points if end > start else pd.Timedelta(seconds=1)
    df["bin"] = start + ((df["ts"] - start) // span).clip(upper=points - 1) * span
    out = (
        df.groupby(["group", "bin"])["hit"]
        .agg(lookups="size", hits="sum")
        .reset_index()
        .rename(columns={"bin": "ts"})
    )
    out["hit_ratio"] = out["hits"] / out["lookups"]
    return out[cols]


def display_frames(analysis: Any) -> dict[str, pd.DataFrame]:
    """The caching chapter's frames of an :class:`auditkit.analysis.Analysis`, computed once
    by the audit: server snapshots, rates and summary, the command mix, key families and their
    hit ratio over time, buffer cache tables, CDN outcomes, static files, the funnel."""
    out: dict[str, pd.DataFrame] = {}
    snaps = analysis.cache_snapshots
    if len(snaps):
        out["cache_snapshots"] = snaps
        out["cache_rates"] = server_rates(snaps)
        out["cache_servers"] = analysis.cache_servers
        mix = command_mix(analysis.cache_stats, snaps)
        if len(mix):
            out["cache_commands"] = mix
    families = analysis.cache_families
    if len(families):
        out["cache_families"] = families
        reads = miss_causes(analysis.cache_events)
        if len(reads):
            top = list(families.head(5)["family"])
            r = reads[reads["family"].isin(top)]
            out["cache_family_series"] = ratio_series(r["ts"], r["hit"], r["family"])
    for name, df in analysis.buffer_cache.items():
        out[f"buffer_{name}"] = df.head(50).reset_index(drop=True)
    cdn = analysis.cdn
    if len(cdn):
        out["cdn"] = cdn
        req = analysis.requests
        known = req[req["cache_status"].notna()]
        out["cdn_series"] = ratio_series(
            known["ts"], known["cache_status"].astype(str).str.upper().isin(CDN_HITS)
        )
    static = static_served(analysis.requests)
    if len(static):
        out["static_served"] = static
    fun = analysis.cache_funnel
    if len(fun):
        out["cache_funnel"] = fun
    return out
