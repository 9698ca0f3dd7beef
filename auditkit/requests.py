"""Requests: how statements and spans become the ``requests`` frame, and back.

Three ways a requests frame comes to be, one function each:

* :func:`frames_from_spans` — traces (OTLP, Jaeger, Datadog) are trees of spans. Every *root*
  span (no parent, or a parent that is not in the file) is one request; every span below it
  that carries SQL is one statement of that request. The trace loaders turn their format into
  :class:`Span` records and call this, so the three formats agree on what a request is.
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

from auditkit.schemas import QUERY_EVENTS, REQUESTS, cast, conform, empty
from auditkit.sql.fingerprint import fingerprint_many

__all__ = [
    "REQUEST_GAP_MS",
    "Span",
    "attach_requests",
    "frames_from_spans",
    "infer_requests",
    "path_of",
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


def frames_from_spans(
    spans: Sequence[Span], *, source_format: str, source_file: str
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """``(requests, query_events, warnings)`` from the spans of one file.

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
    """
    warnings: list[str] = []
    root, roots, cycles = _root_index(spans)
    if cycles:
        warnings.append(f"{cycles} parent cycle(s) among spans: broken at an arbitrary span")
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
            f"{nested} statement span(s) nested in a span with the same SQL counted once"
        )

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
    requests = _frame(req_rows, REQUESTS, ("error",), ("spans",), ("span_id", "operation"))
    queries = _frame(q_rows, QUERY_EVENTS, ("error",), (), ("db_system", "service"))
    return requests, _fingerprint(queries), warnings


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
