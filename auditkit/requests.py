"""Requests: how statements and spans become the ``requests`` frame, and back.

Three ways a requests frame comes to be, one function each:

* :func:`trace_frames` (and :func:`frames_from_spans`, its first two frames) — traces (OTLP,
  OpenTelemetry SDK, Jaeger, Zipkin, Datadog) are trees of spans. Every *root* span (no
  parent, or a parent that is not in the file) is one request; every span below it that
  carries SQL is one statement of that request, and every cache operation (a Redis or
  memcached command, a Django cache call; :func:`cache_op` maps commands to Django's cache
  API) one cache event. The trace loaders turn their format into :class:`Span` records and
  call this, so every format agrees on what a request is.
* :func:`infer_requests` — a query log gives statements, sometimes with a request id (the
  capture app's JSON lines) and often without (a plain ``django.db.backends`` log). Statements
  that carry a request id are grouped by it (``inferred=False``: the ids are real). The others
  are grouped by a heuristic, documented there, and marked ``inferred=True``.
* :func:`attach_requests` — the reverse: fill ``request_id``/``endpoint``/``trace_id`` of
  statements from a requests frame (by id, or by time interval and pid/thread).

This module only knows canonical frames; it imports nothing from :mod:`auditkit.loaders`
(the loaders import it).

Example::

    >>> events = pd.DataFrame({
    ...     "ts": pd.to_datetime(["2024-05-01 10:00:00.010", "2024-05-01 10:00:00.020",
    ...                           "2024-05-01 10:00:03.000"], utc=True),
    ...     "duration_ms": [2.0, 3.0, 1.0], "sql": ["SELECT 1", "SELECT 2", "SELECT 3"],
    ...     "pid": [7, 7, 7]})
    >>> reqs = infer_requests(events)
    >>> reqs["db_calls"].tolist(), reqs["inferred"].tolist()
    ([2, 1], [True, True])
    >>> attach_requests(events, reqs)["request_id"].nunique()
    2
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from auditkit.schemas import CACHE_EVENTS, QUERY_EVENTS, REQUESTS, cast, conform, empty
from auditkit.sql.fingerprint import fingerprint_many

__all__ = [
    "CACHE_OPS",
    "COMMAND_OPS",
    "REQUEST_GAP_MS",
    "Span",
    "TraceFrames",
    "attach_requests",
    "cache_backend_of",
    "cache_command",
    "cache_op",
    "frames_from_spans",
    "infer_requests",
    "path_of",
    "trace_frames",
]

#: statements of one pid/thread further apart than this (ms) start a new inferred request
REQUEST_GAP_MS = 250.0

_NS_PER_MS = 1_000_000


@dataclass(slots=True)
class Span:
    """One span of a trace, normalised from any trace format.

    Ids are lowercase hex. Times are integers in nanoseconds since the epoch (UTC); ``None``
    when the source does not give them. HTTP and database fields are filled by the loader from
    whichever attribute names its format uses (old and current OpenTelemetry conventions,
    OpenTracing tags, Datadog meta), so the tree logic here is the same for every format.
    """

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int | None
    duration_ns: int | None
    #: record number (or line) in the source file, for ``source_line``
    line: int
    service: str | None = None
    #: server, client, internal, producer, consumer or unspecified
    kind: str | None = None
    error: bool | None = None
    #: what to call the request when it has no route or path (Datadog resource, span name)
    label: str | None = None
    route: str | None = None
    path: str | None = None
    method: str | None = None
    status: int | None = None
    #: an HTTP request id carried by the span (x-request-id header, proxy guid)
    request_id: str | None = None
    sql: str | None = None
    database: str | None = None
    db_user: str | None = None
    db_system: str | None = None
    rows: int | None = None
    #: client process id (Datadog ``process_id``)
    pid: int | None = None
    #: cache operation in Django's cache API vocabulary (get, set, …) when the span is one
    #: (see :func:`cache_op`); None for every other span
    cache_op: str | None = None
    cache_key: str | None = None
    #: True on a hit, False on a miss, None when the span does not say (or for writes)
    cache_hit: bool | None = None
    #: redis, memcached, locmem, database, file, …
    cache_backend: str | None = None
    #: keys a multi-key operation touched (get_many, set_many, delete_many)
    cache_keys: int | None = None
    cache_value_bytes: int | None = None
    #: time to live a cache write gave, seconds
    cache_ttl_s: float | None = None
    #: the further commands of a pipeline span, ``(op, key, key_count, ttl_s)`` each (the
    #: first command fills the fields above); empty for a single command
    cache_more: tuple[tuple[str, str | None, int, float | None], ...] = ()

    @property
    def end_ns(self) -> int | None:
        if self.start_ns is None or self.duration_ns is None:
            return None
        return self.start_ns + self.duration_ns


def path_of(url_or_target: str | None) -> str | None:
    """The path of a URL or request target, without query string or fragment.

    ``"http://shop:8080/api/items/7?x=1"`` → ``"/api/items/7"``; ``"/a?b"`` → ``"/a"``.
    """
    if not url_or_target:
        return None
    text = url_or_target.strip()
    if "://" in text:
        try:
            text = urlsplit(text).path or "/"
        except ValueError:
            return None
    for sep in ("?", "#"):
        text = text.split(sep, 1)[0]
    return text or None


# -- cache operations -------------------------------------------------------------------------

#: ``cache_events.error`` of a cache span marked as failed (a span does not say how)
SPAN_ERROR = "the span is marked as an error"

#: Django's cache API: the vocabulary of ``cache_events.op``
CACHE_OPS = (
    "get",
    "set",
    "add",
    "delete",
    "get_many",
    "set_many",
    "delete_many",
    "incr",
    "decr",
    "touch",
    "has_key",
    "clear",
)

#: Redis and memcached commands (and the operation names APM agents give Django cache spans)
#: → the Django cache operation that issues them. Django's Redis backend sends GET, SET (NX for
#: add), DEL, MGET, MSET, INCRBY, EXPIRE/PERSIST, EXISTS and FLUSHDB; its memcached backends
#: get, get_multi, set, add, delete, incr, decr, touch and flush_all.
COMMAND_OPS: dict[str, str] = {
    # Redis
    "get": "get",
    "getex": "get",
    "getdel": "get",
    "mget": "get_many",
    "set": "set",
    "setex": "set",
    "psetex": "set",
    "setnx": "add",
    "mset": "set_many",
    "msetnx": "set_many",
    "del": "delete",
    "unlink": "delete",
    "incr": "incr",
    "incrby": "incr",
    "incrbyfloat": "incr",
    "decr": "decr",
    "decrby": "decr",
    "expire": "touch",
    "pexpire": "touch",
    "expireat": "touch",
    "pexpireat": "touch",
    "persist": "touch",
    "exists": "has_key",
    "flushdb": "clear",
    "flushall": "clear",
    # memcached (text protocol and client method names)
    "gets": "get",
    "get_multi": "get_many",
    "gets_many": "get_many",
    "get_many": "get_many",
    "cas": "set",
    "replace": "set",
    "append": "set",
    "prepend": "set",
    "set_multi": "set_many",
    "set_many": "set_many",
    "add": "add",
    "delete": "delete",
    "delete_multi": "delete_many",
    "delete_many": "delete_many",
    "touch": "touch",
    "flush_all": "clear",
    # Django's own names (APM spans around django.core.cache) and Sentry's span operations
    "has_key": "has_key",
    "clear": "clear",
    "get_or_set": "get",
    "get_item": "get",
    "set_item": "set",
    "put": "set",
    "remove": "delete",
    "remove_item": "delete",
    "flush": "clear",
}

#: commands whose arguments are all keys (their key count is the argument count)
_ALL_KEYS = frozenset(
    {
        "mget",
        "del",
        "unlink",
        "exists",
        "gets",
        "get",
        "get_multi",
        "gets_many",
        "get_many",
        "delete_multi",
        "delete_many",
        "set_multi",
        "set_many",
    }
)
_KEY_VALUE_PAIRS = frozenset({"mset", "msetnx"})
#: placeholders instrumentations write for redacted arguments
_REDACTED = frozenset({"?", "...", "…", "*"})


def cache_op(command: str | None, args: Sequence[str] = ()) -> tuple[str | None, str | None, int]:
    """``(op, key, key_count)`` of a Redis or memcached command with its arguments.

    ``op`` is in Django's cache API vocabulary (:data:`CACHE_OPS`), or None for a command
    Django's cache does not issue (``HGET``, ``PING``, ``LPUSH``…: not cache operations here).
    ``key`` is the key of a one-key operation (None when redacted to ``?`` or when several keys
    are touched); ``key_count`` counts the keys touched (0 when unknown).

    >>> cache_op("SET", ["user:1", "x", "NX", "EX", "60"])
    ('add', 'user:1', 1)
    >>> cache_op("MGET", ["a", "b"])
    ('get_many', None, 2)
    >>> cache_op("get", ["?"])
    ('get', None, 1)
    """
    if not command:
        return None, None, 0
    name = command.strip().lower()
    name = name.rsplit(".", 1)[-1] if "." in name else name  # RedisCache.get, cache.get
    op = COMMAND_OPS.get(name)
    if op is None:
        return None, None, 0
    if name == "set" and any(a.upper() == "NX" for a in args[2:]):
        op = "add"
    if name in _KEY_VALUE_PAIRS:
        keys = list(args[0::2])
    elif name in _ALL_KEYS:
        keys = list(args)
    elif op == "clear":
        keys = []
    else:
        keys = list(args[:1])
    if op in ("get", "delete") and len(keys) > 1:
        op = "get_many" if op == "get" else "delete_many"
    one = keys[0] if len(keys) == 1 and keys[0] not in _REDACTED else None
    return op, one, len(keys)


def cache_command(statement: str | None) -> tuple[str | None, list[str]]:
    """The command and arguments of a cache statement (``"SET k v EX 60"``), split on spaces."""
    if not statement or not statement.strip():
        return None, []
    parts = statement.split()
    return parts[0], parts[1:]


def cache_ttl(command: str | None, args: Sequence[str]) -> float | None:
    """The time to live a Redis write gives, in seconds (``SET k v EX 60``, ``SETEX k 60 v``)."""
    if not command:
        return None
    name = command.lower()
    try:
        if name == "setex" and len(args) >= 2:
            return float(args[1])
        if name == "psetex" and len(args) >= 2:
            return float(args[1]) / 1000.0
        if name in ("set", "getex"):
            for i, a in enumerate(args[:-1]):
                if a.upper() == "EX":
                    return float(args[i + 1])
                if a.upper() == "PX":
                    return float(args[i + 1]) / 1000.0
        if name in ("expire", "pexpire") and len(args) >= 2:
            return float(args[1]) / (1000.0 if name == "pexpire" else 1.0)
    except ValueError:
        return None
    return None


def cache_backend_of(text: str | None) -> str | None:
    """``redis``, ``memcached``, ``locmem``, ``database``, ``file`` or ``dummy`` from a backend
    class path (``django.core.cache.backends.redis.RedisCache``) or a ``db.system`` value."""
    if not text:
        return None
    low = text.lower()
    for needle, name in (
        ("valkey", "redis"),
        ("redis", "redis"),
        ("memcache", "memcached"),
        ("pylibmc", "memcached"),
        ("locmem", "locmem"),
        ("db.databasecache", "database"),
        ("databasecache", "database"),
        ("filebased", "file"),
        ("dummy", "dummy"),
    ):
        if needle in low:
            return name
    return low


# -- spans → frames ---------------------------------------------------------------------------


def _root_index(spans: Sequence[Span]) -> tuple[list[int], list[int], int]:
    """For every span, the index of its root span; the root indices; cycles broken.

    A root is a span with no parent, or whose parent is not in the same trace. When a span id
    occurs twice in a trace (Zipkin-style shared spans), children attach to the first.
    """
    by_id: dict[tuple[str, str], int] = {}
    for i, s in enumerate(spans):
        by_id.setdefault((s.trace_id, s.span_id), i)
    parent: list[int] = []
    for i, s in enumerate(spans):
        p = by_id.get((s.trace_id, s.parent_id)) if s.parent_id else None
        parent.append(-1 if p is None or p == i else p)
    root = [-2] * len(spans)
    cycles = 0
    for i in range(len(spans)):
        path = []
        j = i
        seen: set[int] = set()
        while root[j] == -2 and parent[j] >= 0 and j not in seen:
            seen.add(j)
            path.append(j)
            j = parent[j]
        if root[j] == -2:
            if parent[j] >= 0:  # j is in a cycle: make it a root
                cycles += 1
                parent[j] = -1
            root[j] = j
        r = root[j]
        for k in path:
            root[k] = r
    roots = [i for i in range(len(spans)) if root[i] == i]
    return root, roots, cycles


@dataclass(slots=True)
class TraceFrames:
    """The frames one file of spans gives, and what to warn about."""

    requests: pd.DataFrame
    query_events: pd.DataFrame
    cache_events: pd.DataFrame
    warnings: list[str]


def frames_from_spans(
    spans: Sequence[Span], *, source_format: str, source_file: str
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """``(requests, query_events, warnings)`` from the spans of one file: see :func:`trace_frames`."""
    out = trace_frames(spans, source_format=source_format, source_file=source_file)
    return out.requests, out.query_events, out.warnings


def trace_frames(spans: Sequence[Span], *, source_format: str, source_file: str) -> TraceFrames:
    """Requests, statements and cache operations from the spans of one file.

    * one request per root span: ``ts`` its start, ``duration_ms`` its duration, ``method``,
      ``status`` and ``service`` its own; ``endpoint`` its route, else the route of the
      earliest span below it that has one (a proxy's root over a Django server span), else
      its URL path, else its label (Datadog resource or span name) unless the root is itself
      a statement or the label is only the HTTP method; ``request_id`` the HTTP request id the root carries, else the trace id
      (``trace:span`` when a trace has several roots); ``db_ms``/``db_calls`` the sum and
      count of the statement spans below it.
    * one statement per span with SQL text: ``ts`` its end, ``duration_ms`` its duration and
      its request's ``request_id``/``trace_id``/``endpoint``. A statement span nested in
      another with the same text (an ORM span around a driver span) is counted once.

    Extra columns: requests get ``span_id`` (the root's), ``operation`` (its name),
    ``error`` and ``spans`` (spans in the request); statements get ``db_system``,
    ``service`` and ``error``. Statements are fingerprinted in the dialect of their
    ``db_system`` (MySQL rules for mysql/mariadb, PostgreSQL rules otherwise).

    * one cache event per span with a :attr:`Span.cache_op` (Redis and memcached client spans,
      Django cache spans of APM agents): ``ts`` its start, its request's ids and endpoint. A
      cache span nested in another (a Django ``cache.get`` span around its Redis ``GET``) is
      counted once, as the outer one. A pipeline span (one command per line of its statement)
      gives one event per Django cache operation in it, its time on the first. A read's
      ``hit`` is the span's own verdict, else, for
      ``get``/``has_key``, whether it returned rows (``db.row_count``,
      ``db.response.returned_rows``). Requests get ``cache_ms`` (sum of their cache spans),
      ``cache_hits`` and ``cache_misses`` (``get_many`` counts each key when the span says how
      many came back); the counts are <NA> when a read of the request does not say whether it
      hit, and all three are <NA> when the file has no cache span at all.
    """
    warnings: list[str] = []
    root, roots, cycles = _root_index(spans)
    if cycles:
        warnings.append(
            f"{cycles} parent {'cycle' if cycles == 1 else 'cycles'} among spans: broken at an arbitrary span"
        )
    members: dict[int, list[int]] = {r: [] for r in roots}
    for i, r in enumerate(root):
        members[r].append(i)

    # request ids: the root's own HTTP request id, else the trace id (trace:span if several)
    roots_per_trace = Counter(spans[r].trace_id for r in roots)
    rid: dict[int, str] = {}
    used: Counter[str] = Counter()
    for r in roots:
        s = spans[r]
        base = s.request_id or (
            s.trace_id if roots_per_trace[s.trace_id] == 1 else f"{s.trace_id}:{s.span_id}"
        )
        used[base] += 1
        rid[r] = base if used[base] == 1 else f"{base}:{used[base]}"

    # statements: spans with SQL, not nested in a statement span with the same text
    by_id = {(s.trace_id, s.span_id): i for i, s in reversed(list(enumerate(spans)))}
    is_stmt = [bool(s.sql) for s in spans]
    nested = 0
    for i, s in enumerate(spans):
        if not is_stmt[i]:
            continue
        p = by_id.get((s.trace_id, s.parent_id)) if s.parent_id else None
        hops = 0
        while p is not None and p != i and hops < 1000:
            if is_stmt[p] and spans[p].sql == s.sql:
                is_stmt[i] = False
                nested += 1
                break
            ps = spans[p]
            p = by_id.get((ps.trace_id, ps.parent_id)) if ps.parent_id else None
            hops += 1
    if nested:
        warnings.append(
            f"{nested} statement {'span' if nested == 1 else 'spans'} nested in a span with the same SQL counted once"
        )

    # cache operations: spans with a cache op, not nested in another cache span
    is_cache = [s.cache_op is not None for s in spans]
    nested_cache = 0
    for i, s in enumerate(spans):
        if not is_cache[i]:
            continue
        p = by_id.get((s.trace_id, s.parent_id)) if s.parent_id else None
        hops = 0
        while p is not None and p != i and hops < 1000:
            if spans[p].cache_op is not None:
                is_cache[i] = False
                nested_cache += 1
                break
            ps = spans[p]
            p = by_id.get((ps.trace_id, ps.parent_id)) if ps.parent_id else None
            hops += 1
    if nested_cache:
        warnings.append(
            f"{nested_cache} cache {'span' if nested_cache == 1 else 'spans'} nested in another cache span counted once (as the outer one)"
        )
    any_cache = any(is_cache)
    hits_of: dict[int, tuple[int, int] | None] = {}
    for i, s in enumerate(spans):
        if is_cache[i]:
            hits_of[i] = _hits(s)

    req_rows: list[dict[str, Any]] = []
    endpoint_of: dict[int, str | None] = {}
    for r in roots:
        s = spans[r]
        mine = members[r]
        endpoint = s.route
        route_span = s
        if not endpoint:
            with_route = [spans[i] for i in mine if spans[i].route]
            if with_route:
                route_span = min(
                    with_route, key=lambda x: x.start_ns if x.start_ns is not None else 1 << 62
                )
                endpoint = route_span.route
        if not endpoint:
            endpoint = s.path
        if not endpoint and not s.sql:
            label = s.label or s.name or None
            # an HTTP server span named only by its method ("GET") names no endpoint
            endpoint = None if label and s.method and label.upper() == s.method.upper() else label
        endpoint_of[r] = endpoint
        stmts = [spans[i] for i in mine if is_stmt[i]]
        durations = [x.duration_ns for x in stmts if x.duration_ns is not None]
        cache_ms, cache_hits, cache_misses = _request_cache(
            [i for i in mine if is_cache[i]], spans, hits_of, any_cache
        )
        req_rows.append(
            {
                "ts": s.start_ns,
                "request_id": rid[r],
                "trace_id": s.trace_id,
                "endpoint": endpoint,
                "method": s.method or route_span.method,
                "status": s.status if s.status is not None else route_span.status,
                "duration_ms": s.duration_ns / _NS_PER_MS if s.duration_ns is not None else None,
                "db_ms": sum(durations) / _NS_PER_MS if durations or not stmts else None,
                "db_calls": len(stmts),
                "cache_hits": cache_hits,
                "cache_misses": cache_misses,
                "cache_ms": cache_ms,
                "service": s.service,
                "inferred": False,
                "source_format": source_format,
                "source_file": source_file,
                "source_line": s.line,
                "span_id": s.span_id,
                "operation": s.name,
                "error": s.error,
                "spans": len(mine),
            }
        )

    q_rows: list[dict[str, Any]] = []
    for i, s in enumerate(spans):
        if not is_stmt[i]:
            continue
        r = root[i]
        q_rows.append(
            {
                "ts": s.end_ns,
                "duration_ms": s.duration_ns / _NS_PER_MS if s.duration_ns is not None else None,
                "sql": s.sql,
                "database": s.database,
                "user": s.db_user,
                "pid": s.pid,
                "request_id": rid[r],
                "trace_id": s.trace_id,
                "span_id": s.span_id,
                "endpoint": endpoint_of[r],
                "rows": s.rows,
                "source_format": source_format,
                "source_file": source_file,
                "source_line": s.line,
                "db_system": s.db_system,
                "service": s.service,
                "error": s.error,
            }
        )
    c_rows: list[dict[str, Any]] = []
    for i, s in enumerate(spans):
        if not is_cache[i]:
            continue
        r = root[i]
        counts = hits_of[i]
        hit = s.cache_hit
        if hit is None and counts and sum(counts) and s.cache_op in ("get", "has_key"):
            hit = counts[0] > 0
        c_rows.append(
            {
                "ts": s.start_ns,
                "op": s.cache_op,
                "key": s.cache_key,
                "hit": hit,
                "duration_ms": s.duration_ns / _NS_PER_MS if s.duration_ns is not None else None,
                "endpoint": endpoint_of[r],
                "request_id": rid[r],
                "ttl_s": s.cache_ttl_s,
                "trace_id": s.trace_id,
                "backend": s.cache_backend,
                "value_bytes": s.cache_value_bytes,
                "key_count": s.cache_keys or None,
                "pid": s.pid,
                "source_format": source_format,
                "source_file": source_file,
                "source_line": s.line,
                "span_id": s.span_id,
                "service": s.service,
                # cache_events.error holds what failed; a span says only that something did
                "error": SPAN_ERROR if s.error else None,
            }
        )
        for op, key, count, ttl in s.cache_more:  # a pipeline: its time is on its first command
            c_rows.append(
                {
                    **c_rows[-1],
                    "op": op,
                    "key": key,
                    "hit": None,
                    "duration_ms": None,
                    "ttl_s": ttl,
                    "key_count": count or None,
                    "value_bytes": None,
                }
            )
    requests = _frame(req_rows, REQUESTS, ("error",), ("spans",), ("span_id", "operation"))
    queries = _frame(q_rows, QUERY_EVENTS, ("error",), (), ("db_system", "service"))
    caches = _frame(c_rows, CACHE_EVENTS, ("hit",), (), ("span_id", "service"))
    return TraceFrames(requests, _fingerprint(queries), caches, warnings)


_READS = frozenset({"get", "has_key", "get_many"})


def _hits(s: Span) -> tuple[int, int] | None:
    """(hits, misses) of a cache read span; (0, 0) for a write or a failed call (neither a hit
    nor a miss); None when a read does not say."""
    if s.cache_op not in _READS or s.error:
        return (0, 0)
    if s.cache_op == "get_many":
        if s.rows is not None and s.cache_keys:
            hits = max(0, min(s.rows, s.cache_keys))
            return hits, s.cache_keys - hits
        return None
    if s.cache_hit is not None:
        return (1, 0) if s.cache_hit else (0, 1)
    if s.rows is not None:
        return (1, 0) if s.rows > 0 else (0, 1)
    return None


def _request_cache(
    members: list[int],
    spans: Sequence[Span],
    hits_of: dict[int, tuple[int, int] | None],
    any_cache: bool,
) -> tuple[float | None, int | None, int | None]:
    """``(cache_ms, cache_hits, cache_misses)`` of one request from its cache spans."""
    if not any_cache:
        return None, None, None
    total = sum(spans[i].duration_ns or 0 for i in members) / _NS_PER_MS
    counts = [hits_of[i] for i in members]
    if any(c is None for c in counts):
        return total, None, None
    return total, sum(c[0] for c in counts if c), sum(c[1] for c in counts if c)


_MYSQL_SYSTEMS = frozenset({"mysql", "mariadb", "tidb", "aurora-mysql", "memsql", "singlestore"})


def _fingerprint(queries: pd.DataFrame) -> pd.DataFrame:
    """Fill ``fingerprint``/``fingerprint_id``, choosing the dialect per ``db_system``."""
    if not len(queries):
        return queries
    system = queries["db_system"].str.lower() if "db_system" in queries else None
    mysql = (
        system.isin(_MYSQL_SYSTEMS).fillna(False).to_numpy(dtype=bool)
        if system is not None
        else None
    )
    for dialect, mask in (("postgres", ~mysql if mysql is not None else None), ("mysql", mysql)):
        if mask is None:
            if dialect == "mysql":
                continue
            mask = np.ones(len(queries), dtype=bool)
        if not mask.any():
            continue
        fps, ids = fingerprint_many(queries.loc[mask, "sql"], dialect)  # type: ignore[arg-type]
        queries.loc[mask, "fingerprint"] = fps
        queries.loc[mask, "fingerprint_id"] = ids
    return queries


def _frame(
    rows: list[dict[str, Any]],
    schema: Any,
    bools: Iterable[str],
    ints: Iterable[str],
    texts: Iterable[str],
) -> pd.DataFrame:
    """Rows → conformed frame; ``ts`` holds integer nanoseconds (kept exact via Int64)."""
    if not rows:
        return empty(schema)
    df = pd.DataFrame(rows)
    # integers past int64 (a corrupt trace) become null, counted by the schema cast
    ns = cast(pd.Series(df["ts"].tolist(), dtype="object"), "Int64", "ts")
    df["ts"] = pd.to_datetime(ns, unit="ns", utc=True)
    for col in bools:
        df[col] = df[col].astype("boolean")
    for col in ints:
        df[col] = cast(pd.Series(df[col].tolist(), dtype="object"), "Int64", col)
    for col in texts:
        df[col] = df[col].astype("string")
    return conform(df, schema)


# -- statements → requests --------------------------------------------------------------------


def _start_end(events: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Start and end of each statement: ``ts`` is when it finished."""
    end = events["ts"]
    if "duration_ms" not in events:
        return end, end
    dur = pd.to_numeric(events["duration_ms"], errors="coerce")
    start = end - pd.to_timedelta(dur.fillna(0.0), unit="ms")
    return start, end


def _stream_keys(events: pd.DataFrame) -> list[str]:
    return [c for c in ("pid", "thread") if c in events.columns and events[c].notna().any()]


def infer_requests(query_events: pd.DataFrame, gap_ms: float = REQUEST_GAP_MS) -> pd.DataFrame:
    """The requests frame implied by a query-events frame.

    Statements with a ``request_id`` are grouped by it: those requests are real
    (``inferred=False``). Statements without one are grouped by this heuristic, and their
    requests are ``inferred=True``:

    1. split the statements into streams by ``pid`` and ``thread`` (whichever the source
       logs; one stream when it logs neither — then concurrent requests blur together);
    2. order each stream by start time (``ts`` minus ``duration_ms``: ``ts`` is when a
       statement finished);
    3. start a new request whenever the idle gap between the end of one statement and the
       start of the next exceeds ``gap_ms`` (default :data:`REQUEST_GAP_MS`; audits take it
       from the ``requests.gap_ms`` setting).

    A request's ``ts`` is the start of its first statement and ``duration_ms`` the span to the
    end of its last (a lower bound of the real request time); ``db_ms``/``db_calls`` are the
    sum and count of its statements, ``endpoint``, ``method`` and ``trace_id`` the first
    ones its statements carry. Synthetic ids are ``inf-`` plus 12 hex digits, stable for the same input. Statements
    without a timestamp cannot be placed and are left out. ``pid`` and ``thread`` are kept as
    extra columns, so :func:`attach_requests` can map statements back.
    """
    if len(query_events) == 0 or "ts" not in query_events:
        return empty(REQUESTS)
    ev = query_events.copy()
    ev["_start"], ev["_end"] = _start_end(ev)
    ev["_ms"] = pd.to_numeric(ev["duration_ms"], errors="coerce") if "duration_ms" in ev else np.nan
    has_id = ev["request_id"].notna() if "request_id" in ev else pd.Series(False, index=ev.index)
    parts = []
    real = ev[has_id]
    if len(real):
        parts.append(_aggregate(real, real["request_id"].astype(str), inferred=False))
    rest = ev[~has_id & ev["_start"].notna()]
    if len(rest):
        keys = _stream_keys(rest)
        rest = rest.copy()
        rest["_stream"] = rest.groupby(keys, dropna=False, sort=False).ngroup() if keys else 0
        rest = rest.sort_values(["_stream", "_start"], kind="stable")
        gap = pd.Timedelta(milliseconds=float(gap_ms))
        prev_end = rest.groupby("_stream", sort=False)["_end"].cummax()
        prev_end = prev_end.groupby(rest["_stream"], sort=False).shift()
        new = prev_end.isna() | ((rest["_start"] - prev_end) > gap)
        group = new.cumsum()
        parts.append(_aggregate(rest, group, inferred=True))
    if not parts:
        return empty(REQUESTS)
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values("ts", kind="stable", na_position="last").reset_index(drop=True)
    return conform(out, REQUESTS)


def _aggregate(ev: pd.DataFrame, key: pd.Series, *, inferred: bool) -> pd.DataFrame:
    g = ev.groupby(key, sort=False)
    agg: dict[str, Any] = {
        "ts": g["_start"].min(),
        "_end": g["_end"].max(),
        "db_ms": g["_ms"].sum(min_count=1),
        "db_calls": g.size(),
        "source_line": g["source_line"].min() if "source_line" in ev else None,
    }
    for col in ("endpoint", "method", "trace_id", "source_format", "source_file", "pid", "thread"):
        if col in ev:
            agg[col] = g[col].first()
    df = pd.DataFrame({k: v for k, v in agg.items() if v is not None})
    df["duration_ms"] = (df.pop("_end") - df["ts"]).dt.total_seconds() * 1000.0
    df["ts"] = df["ts"].dt.as_unit("ns")
    if inferred:
        stream = [df[c].astype(object).map(str) if c in df else "" for c in ("pid", "thread")]
        seed = stream[0] + "|" + stream[1] + "|" + df["ts"].astype(object).map(str)
        df["request_id"] = ["inf-" + hashlib.sha1(s.encode()).hexdigest()[:12] for s in seed]
    else:
        df["request_id"] = df.index.astype(str)
    df["inferred"] = inferred
    if "pid" in df:
        df["pid"] = pd.to_numeric(df["pid"], errors="coerce").astype("Int64")
    if "thread" in df:
        df["thread"] = df["thread"].astype("string")
    return df.reset_index(drop=True)


# -- requests → statements --------------------------------------------------------------------


def attach_requests(
    query_events: pd.DataFrame, requests: pd.DataFrame, *, tolerance_ms: float = 0.0
) -> pd.DataFrame:
    """``query_events`` with ``request_id``, ``endpoint`` and ``trace_id`` filled from ``requests``.

    * A statement that has a ``request_id`` found in ``requests`` gets that request's
      ``endpoint`` and ``trace_id`` where its own are missing.
    * A statement without a ``request_id`` is placed by time: the request whose interval
      ``[ts, ts + duration_ms]`` (widened by ``tolerance_ms`` each side) contains the
      statement's start, among requests of the same ``pid``/``thread`` when both frames have
      those columns. When no request or more than one contains it, it stays unattached
      rather than be guessed.

    Values already present are never overwritten. Returns a new, conformed frame.
    """
    ev = query_events.copy()
    for col in ("request_id", "endpoint", "trace_id"):
        if col not in ev:
            ev[col] = pd.Series(pd.NA, index=ev.index, dtype="string")
    if len(ev) == 0 or len(requests) == 0:
        return conform(ev, QUERY_EVENTS)
    req = requests.reset_index(drop=True)

    # 1. by id
    known = req.dropna(subset=["request_id"]).drop_duplicates("request_id").set_index("request_id")
    ids = ev["request_id"]
    for col in ("endpoint", "trace_id"):
        if col in known:
            fill = ids.map(known[col])
            ev[col] = ev[col].fillna(fill.astype("string"))

    # 2. by time interval (and pid/thread)
    todo = ev["request_id"].isna() & ev["ts"].notna()
    if todo.any() and "ts" in req and req["ts"].notna().any():
        start, _ = _start_end(ev[todo])
        keys = [k for k in _stream_keys(ev[todo]) if k in req.columns and req[k].notna().any()]
        tol = pd.Timedelta(milliseconds=float(tolerance_ms))
        r_start = req["ts"] - tol
        length = (
            pd.to_numeric(req["duration_ms"], errors="coerce").fillna(0.0)
            if "duration_ms" in req
            else pd.Series(0.0, index=req.index)
        )
        r_end = req["ts"] + pd.to_timedelta(length, unit="ms") + tol
        match = _match_intervals(
            start,
            ev.loc[todo, keys] if keys else None,
            r_start,
            r_end,
            req[keys] if keys else None,
        )
        hit = match >= 0
        idx = start.index[hit]
        rows = match[hit]
        ev.loc[idx, "request_id"] = req["request_id"].to_numpy()[rows]
        for col in ("endpoint", "trace_id"):
            if col in req:
                cur = ev.loc[idx, col]
                val = pd.Series(req[col].to_numpy()[rows], index=idx, dtype="string")
                ev.loc[idx, col] = cur.fillna(val)
    return conform(ev, QUERY_EVENTS)


def _match_intervals(
    points: pd.Series,
    point_keys: pd.DataFrame | None,
    starts: pd.Series,
    ends: pd.Series,
    interval_keys: pd.DataFrame | None,
) -> np.ndarray:
    """For each point, the row of the one interval containing it (same keys), else -1."""
    out = np.full(len(points), -1, dtype=np.int64)
    if point_keys is None or interval_keys is None:
        groups_p: dict[Any, np.ndarray] = {(): np.arange(len(points))}
        groups_i: dict[Any, np.ndarray] = {(): np.arange(len(starts))}
    else:
        pk = point_keys.astype(str).agg("|".join, axis=1).to_numpy()
        ik = interval_keys.astype(str).agg("|".join, axis=1).to_numpy()
        groups_p = {k: np.flatnonzero(pk == k) for k in np.unique(pk)}
        groups_i = {k: np.flatnonzero(ik == k) for k in np.unique(ik)}
    p_all = points.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    s_all = starts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    e_all = ends.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    valid = ~(pd.isna(starts).to_numpy() | pd.isna(ends).to_numpy())
    for key, pidx in groups_p.items():
        iidx = groups_i.get(key)
        if iidx is None:
            continue
        iidx = iidx[valid[iidx]]
        if not len(iidx):
            continue
        order = iidx[np.argsort(s_all[iidx], kind="stable")]
        s_sorted = s_all[order]
        e_sorted = np.sort(e_all[iidx])
        pts = p_all[pidx]
        started = np.searchsorted(s_sorted, pts, side="right")
        ended = np.searchsorted(e_sorted, pts, side="left")
        containing = started - ended
        one = np.flatnonzero(containing == 1)
        # usually the one containing interval is the latest to have started
        latest = order[started[one] - 1]
        direct = e_all[latest] >= pts[one]
        out[pidx[one[direct]]] = latest[direct]
        for j in one[~direct]:  # an earlier, longer interval: look for it
            cand = order[: started[j]]
            inside = cand[e_all[cand] >= pts[j]]
            if len(inside) == 1:
                out[pidx[j]] = inside[0]
    return out
