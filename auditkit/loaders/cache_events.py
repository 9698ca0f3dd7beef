"""Cache operations, one per record: the capture app's ``cache-*.jsonl`` and any wrapper's log.

Django's cache API keeps no statistics, so the operations themselves are the evidence of which
keys miss. Two shapes are read into the ``cache_events`` frame (``docs/formats/cache-events.md``):

* **JSON Lines** — one object per line. The capture app writes exactly this (format
  ``auditkit.cache`` version 1, :func:`auditkit.django.records.cache_records`): a meta record
  first (``"type": "meta"``), then ``"type": "cache"`` records with ``ts``, ``op``, ``key``,
  ``hit``, ``ttl_s``, ``duration_ms``, ``request_id``, ``endpoint``, ``cache``, ``backend``,
  ``pid``, ``thread`` and, for ``get_many``/``set_many``/``delete_many``, ``keys`` (how many)
  and ``hits``. Records without ``type`` are read the same way.
* **CSV** with a header row.

Either may use the field names other Django cache wrappers and APM exports use
(:data:`SYNONYMS`): ``operation``/``command``/``method`` for ``op``, ``cache_key`` for ``key``,
``result``/``status``/``outcome`` = ``hit``/``miss`` for ``hit``, ``ttl``/``timeout`` for
``ttl_s``, ``duration`` (milliseconds) or ``duration_us``/``duration_ns``/``duration_s`` for
``duration_ms``, ``timestamp``/``time``/``@timestamp`` (ISO 8601 or epoch seconds, ms, µs or
ns) for ``ts``. Commands are lower-cased (``GET`` → ``get``); a read's outcome is NA when the
record does not say.

``key_prefix`` is the key's family: Django's ``KEY_PREFIX:VERSION:`` taken off (when the file
shows one, see :func:`django_key_prefix`) and the variable parts replaced (:func:`key_family`):
``shop:1:summary:12:705`` → ``summary:{int}:{int}``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.loaders.base import Loader, finalise, nothing_parsed
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text
from auditkit.requests import CACHE_OPS, COMMAND_OPS, cache_op

__all__ = [
    "FORMAT_VERSION",
    "SYNONYMS",
    "CacheEventsLoader",
    "django_key_prefix",
    "key_family",
    "strip_key_prefix",
]

#: the version of the capture app's format this reader knows
FORMAT_VERSION = 1

#: canonical field → the names it goes by, in order of preference
SYNONYMS: dict[str, tuple[str, ...]] = {
    "op": ("op", "operation", "command", "cmd", "method", "action", "cache_op"),
    "key": ("key", "cache_key", "cachekey", "keyname", "key_name"),
    "hit": ("hit", "result", "status", "outcome", "cache_hit", "cache_result"),
    "ttl_s": ("ttl_s", "ttl", "timeout", "expire", "expires_in", "expiry"),
    "ts": ("ts", "timestamp", "time", "@timestamp", "datetime", "date"),
    "request_id": ("request_id", "requestid", "req_id", "http_request_id"),
    "trace_id": ("trace_id", "traceid", "dd.trace_id"),
    "endpoint": ("endpoint", "route", "url_name", "view", "path", "transaction"),
    "cache": ("cache", "alias", "cache_alias", "cache_name"),
    "backend": ("backend", "cache_backend", "engine", "db.system"),
    "value_bytes": ("value_bytes", "size", "bytes", "value_size", "size_bytes"),
    "key_count": ("keys", "key_count", "n_keys"),
    "key_hits": ("hits", "key_hits"),
    "pid": ("pid", "process", "process_id"),
    "thread": ("thread", "thread_id", "thread_name"),
}
#: duration fields and the factor to milliseconds
_DURATIONS = (
    ("duration_ms", 1.0),
    ("elapsed_ms", 1.0),
    ("latency_ms", 1.0),
    ("time_ms", 1.0),
    ("duration", 1.0),
    ("duration_us", 1e-3),
    ("duration_ns", 1e-6),
    ("duration_s", 1e3),
    ("elapsed", 1e3),
)
_HIT = {"hit", "hits", "true", "1", "yes", "found", "t", "y"}
_MISS = {"miss", "misses", "false", "0", "no", "not_found", "notfound", "none", "f", "n"}
#: operation names a cache record may carry: Django's cache API, and the Redis and memcached
#: commands (and APM operation names) :func:`auditkit.requests.cache_op` maps onto it
_OPS = frozenset({*CACHE_OPS, "get_or_set", *COMMAND_OPS})
_FAMILY_RULES = (
    # Django's session backends: KEY_PREFIX + the session key
    (compile_later(r"(?<=django\.contrib\.sessions\.cache)(?:d_db)?[a-z0-9]{8,}"), "{session}"),
    (
        compile_later(
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
        ),
        "{uuid}",
    ),
    (compile_later(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "{email}"),
    (compile_later(r"(?<![0-9A-Za-z])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{16,}(?![0-9A-Za-z])"), "{hex}"),
    # session keys and other random tokens: long runs of letters and digits mixed
    (
        compile_later(
            r"(?<![0-9A-Za-z])(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{20,}"
        ),
        "{token}",
    ),
    (compile_later(r"(?<![A-Za-z])\d+(?:\.\d+)?"), "{int}"),
)
_DJANGO_PREFIX = compile_later(r"^([^:]*):(\d+):(.+)$", re.S)


def key_family(key: str) -> str:
    """The key with its variable parts replaced, as fingerprints generalise SQL.

    >>> key_family("summary:12:705")
    'summary:{int}:{int}'
    >>> key_family("views.decorators.cache.cache_page..GET.0123456789abcdef0123456789abcdef.d41d8cd98f00b204e9800998ecf8427e.en-us.UTC")
    'views.decorators.cache.cache_page..GET.{hex}.{hex}.en-us.UTC'
    """
    for pattern, token in _FAMILY_RULES:
        key = pattern.sub(token, key)
    return key


def django_key_prefix(keys: Iterable[str]) -> str | None:
    """Django's ``KEY_PREFIX:VERSION:`` when the keys carry one, else None.

    Django's default key function writes ``f"{KEY_PREFIX}:{VERSION}:{key}"``. A key that starts
    with ``:<digits>:`` has the default empty prefix; otherwise the keys carry a prefix when at
    least 90 % of them start with the same ``X:N:`` and what follows differs in its first part
    (``summary:12:705`` alone is a key of its own, not ``705`` with prefix ``summary:12``).
    """
    heads: Counter[str] = Counter()
    rests: set[str] = set()
    n = 0
    for key in keys:
        if not isinstance(key, str):
            continue
        n += 1
        m = _DJANGO_PREFIX.match(key)
        if m:
            heads[f"{m.group(1)}:{m.group(2)}:"] += 1
            rests.add(m.group(3).split(":", 1)[0].split(".", 1)[0])
    if not n or not heads:
        return None
    head, count = heads.most_common(1)[0]
    if count < 0.9 * n:
        return None
    if head.startswith(":") or len({key_family(r) for r in rests}) >= 2:
        return head
    return None


def strip_key_prefix(key: str, prefix: str | None) -> str:
    """``key`` without Django's ``KEY_PREFIX:VERSION:`` ``prefix`` (unchanged when absent)."""
    if prefix and key.startswith(prefix):
        return key[len(prefix) :]
    return key


def _pick(obj: dict[str, Any], field: str) -> Any:
    for name in SYNONYMS[field]:
        if name in obj and obj[name] not in (None, ""):
            return obj[name]
    return None


def _lower_keys(obj: dict[str, Any]) -> dict[str, Any]:
    return {str(k).strip().lower(): v for k, v in obj.items()}


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f else None


def _int(value: Any) -> int | None:
    f = _float(value)
    return int(f) if f is not None else None


def _hit(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _HIT:
        return True
    if text in _MISS:
        return False
    return None


def _duration(obj: dict[str, Any]) -> float | None:
    for name, factor in _DURATIONS:
        f = _float(obj.get(name))
        if f is not None:
            return f * factor
    return None


def _ts(value: Any) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    number = _float(value)
    try:
        if number is not None:  # epoch: seconds, ms, µs or ns by magnitude
            unit = (
                "s" if number < 1e11 else "ms" if number < 1e14 else "us" if number < 1e17 else "ns"
            )
            return pd.Timestamp(number, unit=unit, tz="UTC")
        ts = pd.Timestamp(str(value))
    except (ValueError, OverflowError, TypeError):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _record(obj: dict[str, Any], line: int) -> dict[str, Any] | str:
    """One cache_events row from one record, or the reason it cannot be one."""
    low = _lower_keys(obj)
    op = _pick(low, "op")
    if op is None:
        return "record without an operation (op)"
    op_text = _django_op(str(op))
    key = _pick(low, "key")
    if isinstance(key, list):  # a multi-key operation listing its keys
        low.setdefault("keys", len(key))
        key = key[0] if key else None
    ts_raw = _pick(low, "ts")
    ts = _ts(ts_raw)
    if ts_raw is not None and ts is None:
        return "unreadable time stamp"
    hit = _hit(_pick(low, "hit"))
    return {
        "ts": ts,
        "op": op_text,
        "key": None if key is None else str(key),
        "hit": hit,
        "duration_ms": _duration(low),
        "endpoint": _text(_pick(low, "endpoint")),
        "request_id": _text(_pick(low, "request_id")),
        "ttl_s": _float(_pick(low, "ttl_s")),
        "trace_id": _text(_pick(low, "trace_id")),
        "cache": _text(_pick(low, "cache")),
        "backend": _text(_pick(low, "backend")),
        "value_bytes": _int(_pick(low, "value_bytes")),
        "key_count": _int(_pick(low, "key_count")),
        "key_hits": _int(_pick(low, "key_hits")),
        "pid": _int(_pick(low, "pid")),
        "thread": _text(_pick(low, "thread")),
        "error": _text(low.get("error")),
        "source_line": line,
    }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _django_op(name: str) -> str:
    """The Django cache operation of ``name`` (``MGET`` → get_many), else ``name`` lowered."""
    text = name.strip().lower()
    if text in CACHE_OPS or text == "get_or_set":
        return text
    return cache_op(text)[0] or text


def _looks_like_event(obj: dict[str, Any]) -> bool:
    low = _lower_keys(obj)
    op = _pick(low, "op")
    return (
        op is not None
        and _pick(low, "key") is not None
        and str(op).strip().lower() in _OPS
        and "sql" not in low
    )


@register
class CacheEventsLoader(Loader):
    """Cache operations as JSON Lines or CSV (the capture app's ``cache-*.jsonl``, any wrapper)."""

    name = "cache_events"
    frame = "cache_events"
    description = (
        "cache operations, one per record: JSON Lines or CSV (docs/formats/cache-events.md)"
    )
    expected = (
        'one JSON object per line (or a CSV row) with an operation and a key: {"ts": …, "op": '
        '"get", "key": "summary:12", "hit": false, "duration_ms": 0.4, "request_id": …}'
    )

    def sniff(self, head: str, path: Path) -> float:
        lines = [ln for ln in head.split("\n")[:20] if ln.strip()]
        if not lines:
            return 0.0
        if lines[0].lstrip().startswith("{"):
            hits = 0
            for ln in lines[:10]:
                try:
                    obj = json.loads(ln)
                except json.JSONDecodeError:
                    continue
                if not isinstance(obj, dict):
                    continue
                if obj.get("type") == "meta" and obj.get("format") == "auditkit.cache":
                    return 1.0
                if obj.get("type") == "cache" or _looks_like_event(obj):
                    hits += 1
            return 0.95 if hits else 0.0
        try:
            header = next(csv.reader([lines[0]]))
        except (csv.Error, StopIteration):
            return 0.0
        names = {h.strip().lower() for h in header}
        has_op = any(n in names for n in SYNONYMS["op"])
        has_key = any(n in names for n in SYNONYMS["key"])
        has_more = any(n in names for n in SYNONYMS["hit"] + SYNONYMS["ts"])
        return 0.85 if has_op and has_key and has_more and "sql" not in names else 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        text, bad = read_text(path)
        report = ParseReport.for_text(path, self.name, text, bad)
        first = next((ln for ln in text.split("\n") if ln.strip()), "")
        if first.lstrip().startswith("{"):
            rows = self._jsonl(text, report)
        else:
            rows = self._csv(text, report)
        if not rows:
            report.elapsed_s = time.perf_counter() - start
            raise nothing_parsed(self, path, report)
        df = pd.DataFrame(rows)
        df["ts"] = pd.to_datetime(df["ts"], utc=True).dt.as_unit("ns")
        keys = df["key"].dropna().astype(str)
        prefix = options.get("key_prefix") or django_key_prefix(keys)
        df["key_prefix"] = [
            key_family(strip_key_prefix(k, prefix)) if isinstance(k, str) else None
            for k in df["key"]
        ]
        if prefix:
            report.warn(f"Django's KEY_PREFIX:VERSION: {prefix!r} taken off the key families")
        df["hit"] = df["hit"].astype("boolean")
        df["key_hits"] = df["key_hits"].astype("Int64")
        df["error"] = df["error"].astype("string")
        df["source_format"] = self.name
        df["source_file"] = str(path)
        frames = finalise({"cache_events": [df]}, self, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        return LoadResult(self.name, frames, report, primary=self.frame)

    @staticmethod
    def _jsonl(text: str, report: ParseReport) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for line, raw in enumerate(text.split("\n"), start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                report.skip(line, "invalid JSON line", f"{exc.msg}: {raw}")
                continue
            if not isinstance(obj, dict):
                report.skip(line, "not a JSON object", raw)
                continue
            kind = obj.get("type")
            if kind == "meta":
                report.ok()
                version = _int(obj.get("version"))
                fmt = obj.get("format")
                if fmt not in (None, "auditkit.cache"):
                    report.warn(f"meta record of format {fmt!r} on line {line}, not auditkit.cache")
                if version is not None and version > FORMAT_VERSION:
                    report.warn(
                        f"written in format version {version}; this reader knows version "
                        f"{FORMAT_VERSION}: fields it does not know are ignored"
                    )
                continue
            if kind not in (None, "cache"):
                report.skip(line, f"not a cache record (type {kind!r})", raw)
                continue
            row = _record(obj, line)
            if isinstance(row, str):
                report.skip(line, row, raw)
                continue
            report.ok()
            rows.append(row)
        return rows

    @staticmethod
    def _csv(text: str, report: ParseReport) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            return rows
        names = {n.strip().lower() for n in reader.fieldnames if n}
        if not any(n in names for n in SYNONYMS["op"]):
            report.skip(
                1, "CSV header without an operation column (op)", ",".join(reader.fieldnames)
            )
            return rows
        try:
            for obj in reader:
                line = reader.line_num
                if None in obj:  # more cells than the header names
                    report.skip(
                        line, "more cells than header columns", ",".join(map(str, obj.values()))
                    )
                    continue
                row = _record({k: v for k, v in obj.items() if k is not None}, line)
                if isinstance(row, str):
                    report.skip(line, row, ",".join(str(v) for v in obj.values()))
                    continue
                report.ok()
                rows.append(row)
        except csv.Error as exc:
            report.skip(reader.line_num, "unreadable CSV", str(exc))
        return rows
