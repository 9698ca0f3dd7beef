"""memcached key families and keys: ``stats detail dump`` and ``lru_crawler metadump``.

Two replies tell what a memcached holds and how each family of keys is used; the plain
``stats`` replies (series, ``stats items``, ``stats slabs``, ``stats settings``) are read by
:mod:`auditkit.loaders.cache_stats`.

``memcached_detail`` — ``stats detail dump`` (counting starts with ``stats detail on``):
memcached's own per-prefix counters, the prefix being the key up to the first delimiter
(``:`` unless memcached was started with ``-D``)::

    PREFIX user get 2 hit 1 set 2 del 1
    END

One ``cache_key_families`` row per line: ``gets``, ``hits``, ``misses`` (gets − hits),
``sets``, ``deletes``, ``hit_ratio``. Counters are cumulative since detail was switched on;
several dumps in one file (each ending with ``END``, preceded by a time stamp line such as the
output of ``date -u +%FT%TZ``) are snapshots: ``ts`` tells them apart. A key with no delimiter
is not counted by memcached at all; Django's default key function (``KEY_PREFIX:VERSION:key``)
puts everything under ``KEY_PREFIX`` (the empty prefix when it is not set): the report says
so when a dump holds only that family.

``memcached_metadump`` — ``lru_crawler metadump all`` (memcached 1.4.31+)::

    key=user%3A1%3Av1 exp=1796409232 la=1796409172 cas=1 fetch=yes cls=1 size=71
    END

One ``cache_keys`` row per key (URL-decoded; values are never in the dump): ``expires_at``
(``exp=-1`` never), ``last_access``, ``fetched``, ``slab_class``, ``size_bytes``, and
``key_prefix``: the key with its variable parts replaced (``user:{n}:v{n}``). The dump carries
no clock of its own: ``ttl_s`` (seconds left) needs the dump time, from a time stamp line
before the keys or the ``ts=`` option. Families are aggregated into ``cache_key_families``
(keys, bytes, never-fetched keys, keys without expiry, median TTL).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.loaders._mysql_results import time_stamp
from auditkit.loaders._time import epoch_ts
from auditkit.loaders.base import Loader, finalise, nothing_parsed
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text

__all__ = ["MemcachedDetailLoader", "MemcachedMetadumpLoader", "key_family", "families_of_keys"]

_DETAIL = compile_later(
    r"^PREFIX (?P<prefix>\S*) get (?P<get>\d+) hit (?P<hit>\d+) set (?P<set>\d+) del (?P<del>\d+)\s*$"
)
_META = compile_later(r"^key=(?P<key>\S+)(?P<rest>(?: \w+=\S*)*)\s*$")
_FAMILY_RULES = (
    (
        compile_later(
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
        ),
        "{uuid}",
    ),
    (compile_later(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "{email}"),
    (compile_later(r"(?<![0-9A-Za-z])(?=[0-9a-f]*\d)[0-9a-f]{16,}(?![0-9A-Za-z])"), "{hex}"),
    (compile_later(r"\d+"), "{n}"),
)


def key_family(key: str) -> str:
    """The key with its variable parts replaced: ``user:42:profile`` → ``user:{n}:profile``.

    UUIDs, e-mail addresses, long hex strings (hashes) and numbers are the variable parts, so
    per-user, per-object and per-hash keys of one call site fall into one family.
    """
    for pattern, token in _FAMILY_RULES:
        key = pattern.sub(token, key)
    return key


def _context(line: str, state: dict[str, Any]) -> bool:
    """Lines around the replies: a time stamp, an echoed command, a comment. True when used."""
    s = line.strip()
    stamp = time_stamp(s)
    if stamp is not None and not s.startswith(("PREFIX ", "key=", "STAT ")):
        state["ts"] = stamp
        return True
    return s.startswith(("#", "--")) or s in (
        "stats detail dump",
        "lru_crawler metadump all",
        "stats detail on",
        "OK",
    )


@register
class MemcachedDetailLoader(Loader):
    """memcached ``stats detail dump``: per key prefix gets, hits, sets and deletes."""

    name = "memcached_detail"
    frame = "cache_key_families"
    description = "memcached 'stats detail dump' (per key prefix counters)"
    expected = "lines 'PREFIX <prefix> get <n> hit <n> set <n> del <n>' ending with 'END'"

    def sniff(self, head: str, path: Path) -> float:
        lines = [ln.strip() for ln in head.splitlines()[:200] if ln.strip()]
        hits = sum(1 for ln in lines if _DETAIL.match(ln))
        return 0.95 if hits and hits >= len(lines) // 3 else 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        text, bad = read_text(path)
        report = ParseReport.for_text(path, self.name, text, bad)
        server = options.get("server") or Path(path).stem
        state: dict[str, Any] = {"ts": _option_ts(options)}
        rows: list[dict[str, Any]] = []
        dump = 1
        for i, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
            line = raw.strip()
            if not line:
                continue
            if line == "END":
                dump += 1
                report.ok()
                continue
            m = _DETAIL.match(line)
            if m:
                gets, hits = int(m.group("get")), int(m.group("hit"))
                rows.append(
                    {
                        "ts": state["ts"],
                        "server": server,
                        "engine": "memcached",
                        "key_prefix": m.group("prefix"),
                        "gets": gets,
                        "hits": hits,
                        "misses": gets - hits,
                        "sets": int(m.group("set")),
                        "deletes": int(m.group("del")),
                        "hit_ratio": hits / gets if gets else np.nan,
                        "dump": dump,
                        "source_format": self.name,
                        "source_file": str(path),
                        "source_line": i,
                    }
                )
                report.ok()
            elif _context(line, state):
                report.ok()
            else:
                report.skip(i, "not a PREFIX line", line)
        if rows and {r["key_prefix"] for r in rows} <= {""}:
            report.warn(
                "every key falls in the empty prefix: Django's default key function writes "
                "':VERSION:key' — set KEY_PREFIX or a KEY_FUNCTION that puts the family first, "
                "or read the families from 'lru_crawler metadump all'"
            )
        if not rows:
            report.elapsed_s = time.perf_counter() - start
            if report.parsed and not report.skipped:
                report.warn("the dump is empty: was 'stats detail on' sent before the workload?")
            raise nothing_parsed(self, path, report)
        frames = finalise({"cache_key_families": [pd.DataFrame(rows)]}, self, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        return LoadResult(self.name, frames, report, primary=self.frame)


def _option_ts(options: dict[str, Any]) -> pd.Timestamp | None:
    ts = options.get("ts")
    if ts is None:
        return None
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


@register
class MemcachedMetadumpLoader(Loader):
    """memcached ``lru_crawler metadump all``: every key with its expiry, last access and size."""

    name = "memcached_metadump"
    frame = "cache_keys"
    description = "memcached 'lru_crawler metadump' (keys with expiry, last access, size)"
    expected = "lines 'key=<url-encoded key> exp=<epoch|-1> la=<epoch> cas=<n> fetch=<yes|no> cls=<n> size=<n>'"

    def sniff(self, head: str, path: Path) -> float:
        lines = [ln.strip() for ln in head.splitlines()[:200] if ln.strip()]
        hits = sum(1 for ln in lines if ln.startswith("key=") and " exp=" in ln and " la=" in ln)
        return 0.95 if hits and hits >= len(lines) // 2 else 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        text, bad = read_text(path)
        report = ParseReport.for_text(path, self.name, text, bad)
        server = options.get("server") or Path(path).stem
        state: dict[str, Any] = {"ts": _option_ts(options)}
        rows: list[dict[str, Any]] = []
        for i, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
            line = raw.strip()
            if not line:
                continue
            if line == "END":
                report.ok()
                continue
            m = _META.match(line)
            if m is None:
                if _context(line, state):
                    report.ok()
                else:
                    report.skip(i, "not a key= line", line)
                continue
            fields = dict(f.split("=", 1) for f in m.group("rest").split())
            try:
                exp = int(fields.get("exp", "-1"))
                la = int(fields["la"]) if "la" in fields else None
                size = int(fields["size"]) if "size" in fields else None
                cls = int(fields["cls"]) if "cls" in fields else None
            except ValueError:
                report.skip(i, "exp, la, cls or size is not a number", line)
                continue
            key = unquote(m.group("key"))
            rows.append(
                {
                    "ts": state["ts"],
                    "server": server,
                    "engine": "memcached",
                    "key": key,
                    "key_prefix": key_family(key),
                    "expires_at": epoch_ts(exp, "s", "expires_at") if exp > 0 else pd.NaT,
                    "last_access": epoch_ts(la, "s", "last_access") if la else pd.NaT,
                    "size_bytes": size,
                    "fetched": {"yes": True, "no": False}.get(fields.get("fetch", "")),
                    "slab_class": cls,
                    "source_file": str(path),
                    "source_line": i,
                }
            )
            report.ok()
        if not rows:
            report.elapsed_s = time.perf_counter() - start
            raise nothing_parsed(self, path, report)
        keys = pd.DataFrame(rows)
        dumped = keys["ts"]
        keys["ttl_s"] = [
            (e - t).total_seconds() if pd.notna(e) and t is not None and pd.notna(t) else np.nan
            for e, t in zip(keys["expires_at"], dumped, strict=True)
        ]
        if keys["ts"].isna().all():
            report.warn(
                "no dump time (a time stamp line before the keys, or ts=): seconds left to live are unknown"
            )
        families = families_of_keys(keys)
        families["source_format"] = self.name
        frames = finalise({"cache_keys": [keys], "cache_key_families": [families]}, self, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        return LoadResult(self.name, frames, report, primary=self.frame)


def families_of_keys(keys: pd.DataFrame) -> pd.DataFrame:
    """``cache_key_families`` rows from a ``cache_keys`` frame: one per server and key family."""
    if len(keys) == 0:
        return pd.DataFrame(columns=["server", "key_prefix"])
    work = keys.assign(
        _never=keys["fetched"].astype("boolean").eq(False).astype("Int64"),
        _noexp=keys["expires_at"].isna().astype("Int64"),
    )
    g = work.groupby(["server", "key_prefix"], sort=False, dropna=False)
    out = g.agg(
        ts=("ts", "first"),
        engine=("engine", "first"),
        keys=("key", "size"),
        size_bytes=("size_bytes", "sum"),
        never_fetched_keys=("_never", "sum"),
        no_expiry_keys=("_noexp", "sum"),
        median_ttl_s=("ttl_s", "median"),
        source_file=("source_file", "first"),
        source_line=("source_line", "min"),
    ).reset_index()
    return out.sort_values("keys", ascending=False, kind="stable").reset_index(drop=True)
