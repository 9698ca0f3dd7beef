"""Connection churn: database sessions opened per request, from whatever counts them.

Django closes its database connection at the end of every request unless ``CONN_MAX_AGE``
keeps it (the default is 0), so each request pays for a new session: a TCP or socket
handshake, authentication, a new server process on PostgreSQL. :func:`connection_churn`
counts sessions and sets them against the requests served in the same window:

* PostgreSQL's log with ``log_connections`` / ``log_disconnections``: one ``connection
  authorized`` line per session, the session time on each ``disconnection`` line, and the
  server's own share of the set-up (``connection received`` → ``connection authorized`` of the
  same process);
* PostgreSQL's ``pg_stat_database.sessions`` (PostgreSQL 14+) between two snapshots;
* MySQL's ``Connections`` status counter (every connection attempt) between two snapshots,
  with ``Threads_created`` (sessions the thread cache could not serve).

Requests come from the ``requests`` frame (access log, capture app, traces) in the same
window. The result is a :class:`Churn` (or ``None`` when nothing counts sessions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Churn", "connection_churn"]


@dataclass(frozen=True)
class Churn:
    """Sessions against requests in one window."""

    source: str
    sessions: int
    window_s: float
    #: requests served in the same window (None when no request source covers it)
    requests: int | None
    #: median session length, ms (from disconnection lines), when known
    median_session_ms: float | None = None
    #: the server's share of a session's set-up, ms (received → authorized), when measured
    setup_ms: float | None = None
    #: databases and users the sessions were for
    databases: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    #: MySQL: sessions that had to create a thread
    threads_created: int | None = None
    first_line: int | None = None
    source_file: str | None = None

    @property
    def per_second(self) -> float:
        return self.sessions / self.window_s if self.window_s > 0 else float("nan")

    @property
    def per_request(self) -> float | None:
        if not self.requests:
            return None
        return self.sessions / self.requests


def _requests_between(
    requests: pd.DataFrame | None, lo: pd.Timestamp | None, hi: pd.Timestamp | None
) -> int | None:
    if lo is None or hi is None or requests is None or len(requests) == 0 or "ts" not in requests:
        return None
    ts = requests["ts"].dropna()
    if len(ts) == 0 or ts.max() < lo or ts.min() > hi:
        return None
    inside = int(((ts >= lo) & (ts <= hi)).sum())
    return inside or None


def _names(values: pd.Series) -> tuple[str, ...]:
    out = {str(v) for v in values.dropna() if str(v) and not str(v).startswith("[")}
    return tuple(sorted(out))


def _from_log(events: pd.DataFrame, requests: pd.DataFrame | None) -> Churn | None:
    if len(events) == 0 or "kind" not in events:
        return None
    msg = events["message"].astype("string")
    auth = events[
        (events["kind"] == "connection") & msg.str.startswith("connection authorized").fillna(False)
    ]
    if len(auth) == 0:
        return None
    lo, hi = auth["ts"].min(), auth["ts"].max()
    window = (hi - lo).total_seconds()
    disc = events[events["kind"] == "disconnection"]
    median_session = (
        float(disc["duration_ms"].median())
        if len(disc) and disc["duration_ms"].notna().any()
        else None
    )
    setup = None
    if "pid" in events and events["pid"].notna().any():
        rec = (
            events[
                (events["kind"] == "connection")
                & msg.str.startswith("connection received").fillna(False)
            ]
            .groupby("pid")["ts"]
            .min()
        )
        done = auth.groupby("pid")["ts"].min()
        gap = (done - rec).dropna().dt.total_seconds() * 1000.0
        gap = gap[gap >= 0]
        if len(gap):
            setup = float(np.mean(gap))
    line = auth["source_line"].iloc[0] if "source_line" in auth else None
    return Churn(
        source="the PostgreSQL log (connection authorized lines)",
        sessions=len(auth),
        window_s=window,
        requests=_requests_between(requests, lo, hi),
        median_session_ms=median_session,
        setup_ms=setup,
        databases=_names(auth["database"]) if "database" in auth else (),
        users=_names(auth["user"]) if "user" in auth else (),
        first_line=int(line) if line is not None and pd.notna(line) else None,
        source_file=str(auth["source_file"].iloc[0]) if "source_file" in auth else None,
    )


def _counter_delta(
    status: pd.DataFrame, name: str, view: str | None
) -> tuple[float, pd.Timestamp | None, pd.Timestamp | None, float, str | None] | None:
    """(delta, first ts, last ts, seconds, file) of a cumulative counter between the first and
    last snapshot; the clock is the snapshot time, else the server's uptime."""
    rows = status[status["name"] == name]
    if view is not None:
        if "view" not in rows:
            return None
        rows = rows[rows["view"].astype("string") == view]
        if "database" in rows:
            rows = rows[rows["database"].notna() & (rows["database"].astype("string") != "")]
    if "kind" in rows:
        rows = rows[rows["kind"].astype("string") != "variable"]
    if len(rows) < 2:
        return None
    if "ts" in rows and rows["ts"].notna().all():
        per = rows.groupby("ts", sort=True)["value"].sum()
        lo, hi = per.index[0], per.index[-1]
        seconds = (hi - lo).total_seconds()
    elif "uptime_s" in rows and rows["uptime_s"].notna().all():
        per = rows.groupby("uptime_s", sort=True)["value"].sum()
        lo = hi = None
        seconds = float(per.index[-1] - per.index[0])
    else:
        return None
    if len(per) < 2:
        return None
    delta = float(per.iloc[-1] - per.iloc[0])
    if delta < 0 or seconds <= 0:
        return None  # a restart between the snapshots: the counters start again
    src = str(rows["source_file"].iloc[0]) if "source_file" in rows else None
    return delta, lo, hi, seconds, src


def _busy_databases(status: pd.DataFrame) -> tuple[str, ...]:
    """Databases whose pg_stat_database.sessions grew between the snapshots."""
    rows = status[
        (status["name"] == "sessions") & (status["view"].astype("string") == "pg_stat_database")
    ]
    if "database" not in rows or len(rows) == 0:
        return ()
    grew = rows.groupby("database")["value"].agg(lambda v: float(v.max() - v.min()))
    return tuple(sorted(str(d) for d, g in grew.items() if g > 0 and str(d)))


def connection_churn(
    server_events: pd.DataFrame | None,
    server_status: pd.DataFrame | None,
    requests: pd.DataFrame | None,
) -> Churn | None:
    """Sessions opened against requests served (see the module docstring)."""
    if server_events is not None:
        churn = _from_log(server_events, requests)
        if churn is not None:
            return churn
    status = server_status if server_status is not None else pd.DataFrame()
    if len(status) == 0 or "name" not in status:
        return None
    pg = _counter_delta(status, "sessions", "pg_stat_database")
    if pg is not None:
        delta, lo, hi, seconds, src = pg
        return Churn(
            source="pg_stat_database.sessions between two snapshots",
            sessions=int(delta),
            window_s=seconds,
            requests=_requests_between(requests, lo, hi),
            databases=_busy_databases(status),
            source_file=src,
        )
    my = _counter_delta(status, "Connections", None)
    if my is not None:
        delta, lo, hi, seconds, src = my
        threads = _counter_delta(status, "Threads_created", None)
        return Churn(
            source="MySQL's Connections counter between two snapshots",
            sessions=int(delta),
            window_s=seconds,
            requests=_requests_between(requests, lo, hi),
            threads_created=int(threads[0]) if threads else None,
            source_file=src,
        )
    return None
