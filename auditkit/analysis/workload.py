"""The workload: which source times the audit's statements, over which window.

A client often sends several sources that time the same statements: a Django query log (or
the capture app's JSON lines, or traces) measured in the application, the database server's
log, and ``pg_stat_statements``. They disagree, and rightly: the application measures the
round trip (network, driver, result transfer), the server only its own execution. Adding them
up would count every statement twice; mixing them would give one N+1 a saving of 1 s in one
section and 48 s in another.

So one source times the whole audit, chosen by :func:`choose_workload` in this order:

1. statements the **application** timed *and tied to their requests* (the capture app's JSON
   lines, traces, a Django log with request ids): what a page waits for, per request — the
   unit N+1 and cache savings are counted in;
2. the database **server's log** (PostgreSQL, MySQL slow log): every statement of every client
   of the database, server time only;
3. statements the application timed without request ids (a plain Django log);
4. ``pg_stat_statements``: aggregates only, no per-request view.

Every saving and every share in the report is in this source's milliseconds; the others are
quoted beside it (:attr:`Workload.reconciliation`) so a reader can see why they differ.

Statements of monitoring and collection are not the client's workload and are left out of every
source here, once, before anything is counted (:func:`without_collection`): ``SHOW``, ``SET`` of
a session setting, ``EXPLAIN``, reads of the system schemas only (``pg_catalog``,
``information_schema``, ``performance_schema``, ``mysql.*``, the ``pg_stat_*`` views), and every
statement of auditkit's own collector — see :func:`auditkit.sql.statement_kind.is_collection_statement`.

Nor are schema migrations and database maintenance (:func:`without_maintenance`): DDL, Django's
``django_migrations`` bookkeeping, VACUUM and the like, and every statement of a session that
changed the schema — a ``migrate`` run's BEGINs and COMMITs, its introspection, the content
types and permissions ``post_migrate`` creates. The report says in a sentence how many were
left out (:meth:`Workload.describe`); none becomes a finding.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from auditkit.findings import duration_text, plural
from auditkit.lazy_re import compile_later
from auditkit.requests import REQUEST_GAP_MS
from auditkit.schemas import FRAMES, empty
from auditkit.sql.statement_kind import (
    COLLECTOR_APPLICATIONS,
    is_collection_statement,
    is_maintenance_statement,
    is_schema_change,
)

__all__ = [
    "SOURCE_FAMILIES",
    "SourceFamily",
    "Workload",
    "choose_workload",
    "without_collection",
    "without_maintenance",
]


@dataclass(frozen=True)
class SourceFamily:
    """Formats that time statements the same way, and how the report names them."""

    name: str
    formats: tuple[str, ...]
    label: str
    #: True when the application measured the time (round trip included)
    app_side: bool


#: every family of statement sources, in no particular order (see :func:`choose_workload`)
SOURCE_FAMILIES: tuple[SourceFamily, ...] = (
    SourceFamily("capture", ("jsonl_queries",), "the auditkit capture app's query log", True),
    SourceFamily(
        "traces",
        (
            "otlp_json",
            "otel_sdk_json",
            "zipkin_json",
            "jaeger_json",
            "datadog_json",
            "newrelic_json",
            "newrelic_csv",
        ),
        "the traces",
        True,
    ),
    SourceFamily("django", ("django_log",), "the Django query log", True),
    SourceFamily(
        "server",
        ("postgres_stderr", "postgres_csvlog", "postgres_jsonlog", "postgres_syslog"),
        "the PostgreSQL server log",
        False,
    ),
    SourceFamily("mysql", ("mysql_slow",), "the MySQL slow query log", False),
)
_BY_FORMAT = {fmt: fam for fam in SOURCE_FAMILIES for fmt in fam.formats}


def family_of(source_format: str) -> SourceFamily:
    """The family of a query-events ``source_format`` (an unknown one is its own, app-side)."""
    return _BY_FORMAT.get(
        source_format, SourceFamily(source_format, (source_format,), source_format, True)
    )


@dataclass
class Workload:
    """The statements that time the audit, and the window they cover.

    ``events`` is the chosen source's ``query_events`` (empty when only ``pg_stat_statements``
    times the audit); ``profile`` the matching ``statement_stats``. ``db_ms`` is all database
    time in the window, the denominator of every finding's share. ``requests`` counts the
    requests the window holds when the source ties statements to them.
    """

    source: str
    label: str
    reason: str
    events: pd.DataFrame
    profile: pd.DataFrame
    db_ms: float
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    app_side: bool = False
    tied_to_requests: bool = False
    #: other sources of the same statements: (label, milliseconds they measured, calls)
    reconciliation: list[tuple[str, float, int]] = field(default_factory=list)
    #: monitoring and collection statements left out of the chosen source: (executions, ms)
    collection: tuple[int, float] = (0, 0.0)
    #: schema migrations and maintenance left out of the chosen source: (executions, ms)
    maintenance: tuple[int, float] = (0, 0.0)

    @property
    def window_s(self) -> float | None:
        """Seconds between the first and last statement (None when unknown or zero)."""
        if self.start is None or self.end is None:
            return None
        span = (self.end - self.start).total_seconds()
        return span if span > 0 else None

    @property
    def empty(self) -> bool:
        return len(self.profile) == 0

    def describe(self) -> str:
        """One paragraph for the report: the source, the window, why, and the others."""
        if self.empty:
            return "No statement was timed in the files provided."
        parts = [
            f"Database times in this report are those of {self.label}: "
            f"{duration_text(self.db_ms)} over {plural(self.calls, 'statement')}"
            + (f" in {_duration(self.window_s)}" if self.window_s else "")
            + f". {self.reason}"
        ]
        n, ms = self.collection
        if n:
            parts.append(
                f"{plural(n, 'execution')} of monitoring and collection statements (SHOW, SET, "
                f"EXPLAIN, reads of the database's own catalogs and statistics, the audit's own "
                f"collector), {duration_text(ms)} in all, are not the application's work and are "
                "left out."
            )
        n, ms = self.maintenance
        if n:
            parts.append(
                f"{plural(n, 'statement')} of schema migrations and database maintenance "
                "(schema changes, Django's record of applied migrations, and the rest of the "
                "sessions that ran them: their transactions, introspection, and the content "
                f"types and permissions a migrate run creates), {duration_text(ms)} in all, "
                f"{'was' if n == 1 else 'were'} left out of the workload."
            )
        server_side = {f.label for f in SOURCE_FAMILIES if not f.app_side}
        for label, other_ms, other_calls in self.reconciliation:
            app = label not in server_side and label not in _STATS_LABELS
            parts.append(
                f"{label[0].upper() + label[1:] if label.startswith('the ') else label} measured {duration_text(other_ms)} over "
                f"{plural(other_calls, 'statement')}"
                + (
                    "."
                    if app
                    else " (server-side execution only, without the round trip to the application)."
                )
            )
        return " ".join(parts)

    @property
    def calls(self) -> int:
        return int(pd.to_numeric(self.profile["calls"], errors="coerce").fillna(0).sum())


#: how the server's cumulative statement statistics are named in the report
_STATS_LABELS = ("pg_stat_statements", "performance_schema statement digests")


def _duration(seconds: float | None) -> str:
    if not seconds:
        return "an unknown time"
    if seconds < 1:
        return "under a second"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


#: statements that open, close or tidy a transaction or session: they belong to whichever
#: session issues them, so a session of nothing else but collection is a collector's
_CONTROL = compile_later(
    r"^\s*(?:begin|start\s+transaction|commit|rollback|end|savepoint|release|deallocate|discard"
    r"|reset|close|unlisten)\b",
    re.I,
)


@lru_cache(maxsize=65536)
def _kind(sql: str) -> int:
    """2 for a collection statement, 1 for transaction control, 0 for the application's."""
    if is_collection_statement(sql):
        return 2
    return 1 if _CONTROL.match(sql) else 0


@lru_cache(maxsize=65536)
def _maintenance_kind(sql: str) -> int:
    """2 for a schema change or migration bookkeeping (it marks its session as a migration),
    1 for another maintenance statement, 0 otherwise."""
    if is_schema_change(sql):
        return 2
    return 1 if is_maintenance_statement(sql) else 0


def _texts(df: pd.DataFrame) -> pd.Series:
    """Each row's statement: its fingerprint, else its SQL."""
    text = (
        df["fingerprint"].astype("string")
        if "fingerprint" in df
        else pd.Series(pd.NA, index=df.index, dtype="string")
    )
    if "sql" in df:
        text = text.fillna(df["sql"].astype("string"))
    return text.fillna("")


def _classified(df: pd.DataFrame, classify: Callable[[str], int]) -> pd.Series:
    """``classify`` of every row's statement, each distinct statement classified once."""
    codes, uniques = pd.factorize(_texts(df))
    kinds = pd.Series([classify(str(u)) for u in uniques], dtype="int8")
    return pd.Series(kinds.to_numpy()[codes] if len(uniques) else 0, index=df.index, dtype="int8")


def _sessions(frame: pd.DataFrame, gap_ms: float) -> pd.Series:
    """The session of each statement that no request claims: per file and connection (session
    id, else pid) or process thread, a run of statements with no pause longer than ``gap_ms``
    between one's end and the next one's start; NA for statements of a request and statements
    without a time.

    A migration runs as a management command, outside any request, its statements one after the
    other; where nothing identifies the connection (a Django log without a pid), adjacency alone
    groups them, and statements of concurrent traffic within the run would be grouped with it."""
    n = len(frame)
    if "ts" not in frame or n == 0:
        return pd.Series(pd.NA, index=frame.index, dtype="Int64")
    end = pd.to_datetime(frame["ts"], errors="coerce", utc=True)
    dur = (
        pd.to_numeric(frame["duration_ms"], errors="coerce").fillna(0.0)
        if "duration_ms" in frame
        else pd.Series(0.0, index=frame.index)
    )
    start = end - pd.to_timedelta(dur, unit="ms")
    tied = pd.Series(False, index=frame.index)
    for col in ("request_id", "trace_id"):
        if col in frame:
            tied |= frame[col].notna().to_numpy()
    keys: list[pd.Series] = []
    for cols in (("source_file",), ("session_id", "pid"), ("thread",)):
        present = [c for c in cols if c in frame and frame[c].notna().any()]
        if present:
            key = frame[present[0]].astype("string")
            for c in present[1:]:
                key = key.fillna(frame[c].astype("string"))
            keys.append(key.fillna(""))
    work = pd.DataFrame({"start": start, "end": end}, index=frame.index)
    work["stream"] = (
        pd.DataFrame({i: k for i, k in enumerate(keys)}).groupby(list(range(len(keys)))).ngroup()
        if keys
        else 0
    )
    usable = work[~tied.to_numpy() & end.notna().to_numpy()]
    usable = usable.sort_values(["stream", "start"], kind="stable")
    prev_end = usable.groupby("stream", sort=False)["end"].cummax()
    prev_end = prev_end.groupby(usable["stream"], sort=False).shift()
    new = prev_end.isna() | ((usable["start"] - prev_end) > pd.Timedelta(milliseconds=gap_ms))
    burst = new.cumsum().astype("Int64")
    return burst.reindex(frame.index)


def without_maintenance(
    frame: pd.DataFrame, gap_ms: float = REQUEST_GAP_MS
) -> tuple[pd.DataFrame, pd.Series]:
    """``frame`` (query events or statement statistics) without schema migrations and database
    maintenance, and the mask of the rows left out.

    A statement is left out when :func:`~auditkit.sql.statement_kind.is_maintenance_statement` says
    so (DDL, Django's ``django_migrations`` bookkeeping, VACUUM and the like), and so is every
    statement of a session that changed the schema (:func:`~auditkit.sql.analyze.
    is_schema_change`): a ``migrate`` run's transactions and COMMITs, its introspection, the
    content types and permissions ``post_migrate`` reads and creates, a restore's inserts.
    Sessions are found by :func:`_sessions`; a statement of a request (request or trace id) is
    never swept in — a COMMIT in request traffic is the application's. Statistics without
    times (pg_stat_statements) lose their maintenance statements only.
    """
    if len(frame) == 0:
        return frame, pd.Series(False, index=frame.index, dtype=bool)
    kinds = _classified(frame, _maintenance_kind)
    drop = (kinds > 0).to_numpy()
    marker = (kinds == 2).to_numpy()
    if marker.any():
        session = _sessions(frame, gap_ms)
        marked = set(session[marker].dropna())
        if marked:
            drop = drop | session.isin(marked).fillna(False).to_numpy(dtype=bool)
    mask = pd.Series(drop, index=frame.index, dtype=bool)
    return frame[~drop], mask


def _statement_kinds(df: pd.DataFrame) -> pd.Series:
    """:func:`_kind` of every row, each distinct statement classified once."""
    out = _classified(df, _kind)
    if "application" in df:
        app = df["application"].astype("string")
        out[app.isin(list(COLLECTOR_APPLICATIONS)).fillna(False).to_numpy(dtype=bool)] = 2
    return out


def without_collection(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """``frame`` (query events or statement statistics) without its monitoring and collection
    statements, and the mask of the rows left out.

    A statement is left out when :func:`~auditkit.sql.statement_kind.is_collection_statement` says so,
    and so is every statement of a session (``session_id``, else ``pid``, per file) that issued
    collection statements and nothing else but transaction control — the ``BEGIN READ ONLY`` /
    ``ROLLBACK`` around a collector's reads are its own, not the application's.
    """
    if len(frame) == 0:
        return frame, pd.Series(False, index=frame.index, dtype=bool)
    kinds = _statement_kinds(frame)
    drop = kinds == 2
    session = None
    for col in ("session_id", "pid"):
        if col in frame and frame[col].notna().any():
            session = frame[col].astype("string")
            break
    if session is not None and bool(drop.any()):
        keys = [session.fillna("")]
        if "source_file" in frame:
            keys.insert(0, frame["source_file"].astype("string").fillna(""))
        has_session = session.notna()
        grouped = pd.DataFrame({"coll": drop, "app": kinds == 0})
        by = grouped.groupby(keys, sort=False)
        only_collection = by["coll"].transform("any") & ~by["app"].transform("any")
        drop = drop | (only_collection & has_session)
    drop = drop.astype(bool)
    return frame[~drop.to_numpy()], drop


def _timed(events: pd.DataFrame) -> pd.DataFrame:
    """Executions only: extended-protocol parse/bind rows are not execution time."""
    if "phase" in events and events["phase"].notna().any():
        events = events[events["phase"].isna() | events["phase"].isin(("statement", "execute"))]
    return events


def choose_workload(
    query_events: pd.DataFrame,
    statement_stats: pd.DataFrame | None = None,
    *,
    gap_ms: float = REQUEST_GAP_MS,
) -> Workload:
    """Pick the source that times the audit (see the module docstring) and measure it.

    ``query_events`` is every statement of every file (``source_format`` tells them apart);
    ``statement_stats`` is the ``pg_stat_statements`` profile (the delta of the first and last
    snapshot) when the client sent one. ``gap_ms`` (the ``requests.gap_ms`` setting) is the
    pause that ends a session no connection or request identifies
    (:func:`without_maintenance`).
    """
    from auditkit.profile import query_profile

    stats = statement_stats if statement_stats is not None else empty(FRAMES["statement_stats"])
    stats = without_maintenance(stats, gap_ms)[0]
    stats, _ = without_collection(stats)
    stats_label = (
        "performance_schema statement digests"
        if "dialect" in stats and stats["dialect"].isin(("mysql", "mariadb")).any()
        else "pg_stat_statements"
    )
    events, maintained = without_maintenance(query_events, gap_ms)
    maintenance = query_events[maintained.to_numpy()] if bool(maintained.any()) else None
    before = events
    events, collected = without_collection(events)
    left_out = before[collected.to_numpy()] if bool(collected.any()) else None
    groups: dict[str, tuple[SourceFamily, pd.DataFrame]] = {}
    if len(events):
        fmt = (
            events["source_format"].astype("string").fillna("")
            if "source_format" in events
            else pd.Series("", index=events.index, dtype="string")
        )
        for name in fmt.unique():
            fam = family_of(str(name))
            part = _timed(events[fmt == name])
            if pd.to_numeric(part["duration_ms"], errors="coerce").notna().sum() == 0:
                continue
            if fam.name in groups:
                groups[fam.name] = (fam, pd.concat([groups[fam.name][1], part]))
            else:
                groups[fam.name] = (fam, part)

    def tied(df: pd.DataFrame) -> bool:
        ids = df["request_id"].notna() | df["trace_id"].notna()
        return bool(ids.mean() >= 0.5) if len(df) else False

    ranked = sorted(
        groups.values(),
        key=lambda fd: (
            0 if fd[0].app_side and tied(fd[1]) else 1 if not fd[0].app_side else 2,
            [f.name for f in SOURCE_FAMILIES].index(fd[0].name)
            if fd[0].name in {f.name for f in SOURCE_FAMILIES}
            else 99,
        ),
    )
    reconciliation: list[tuple[str, float, int]] = []
    if ranked:
        fam, chosen = ranked[0]
        chosen = chosen.reset_index(drop=True)
        is_tied = fam.app_side and tied(chosen)
        if is_tied:
            reason = (
                "The application measured them, round trip included, and tied each to its request: "
                "this is the time a page waits for, and what removing a statement saves."
            )
        elif not fam.app_side:
            reason = (
                "The server measured every statement of every client of the database; the times are "
                "its own execution, without the network and driver time an application adds."
            )
        else:
            reason = (
                "The application measured them, round trip included; nothing ties them to their "
                "requests, so requests are reconstructed from processes, threads and time gaps."
            )
        for other_fam, part in ranked[1:]:
            ms = float(pd.to_numeric(part["duration_ms"], errors="coerce").fillna(0).sum())
            reconciliation.append((other_fam.label, ms, len(part)))
        profile = query_profile(chosen)
        ts = chosen["ts"].dropna() if "ts" in chosen else pd.Series(dtype="datetime64[ns, UTC]")
        if len(stats):
            reconciliation.append(
                (
                    stats_label,
                    float(pd.to_numeric(stats["total_ms"], errors="coerce").fillna(0).sum()),
                    int(pd.to_numeric(stats["calls"], errors="coerce").fillna(0).sum()),
                )
            )
        collection = _left_out(left_out, fam, timed_only=False)
        return Workload(
            source=fam.name,
            label=fam.label,
            reason=reason,
            collection=collection,
            maintenance=_left_out(maintenance, fam, timed_only=True),
            events=chosen,
            profile=profile,
            db_ms=float(pd.to_numeric(profile["total_ms"], errors="coerce").fillna(0).sum()),
            start=ts.min() if len(ts) else None,
            end=ts.max() if len(ts) else None,
            app_side=fam.app_side,
            tied_to_requests=is_tied,
            reconciliation=reconciliation,
        )
    if len(stats):
        first = stats["first_seen"].dropna() if "first_seen" in stats else pd.Series(dtype=object)
        last = stats["last_seen"].dropna() if "last_seen" in stats else pd.Series(dtype=object)
        return Workload(
            source="pg_stat_statements",
            label=stats_label,
            reason=(
                "No log timed individual statements, so the server's cumulative statistics time "
                "them: totals per statement, with no view of requests."
            ),
            events=empty(FRAMES["query_events"]),
            profile=stats,
            db_ms=float(pd.to_numeric(stats["total_ms"], errors="coerce").fillna(0).sum()),
            start=first.min() if len(first) else None,
            end=last.max() if len(last) else None,
        )
    return Workload(
        source="none",
        label="no source",
        reason="",
        events=empty(FRAMES["query_events"]),
        profile=empty(FRAMES["statement_stats"]),
        db_ms=0.0,
    )


def _left_out(
    rows: pd.DataFrame | None, fam: SourceFamily, *, timed_only: bool
) -> tuple[int, float]:
    """Executions and milliseconds of ``rows`` (statements left out) that ``fam`` timed;
    ``timed_only`` skips rows without a duration (Django's schema editor logs each statement
    once untimed before the database runs it)."""
    if rows is None or len(rows) == 0:
        return (0, 0.0)
    mine = _timed(
        rows[rows["source_format"].astype("string").isin(list(fam.formats)).fillna(False)]
        if "source_format" in rows
        else rows
    )
    ms = pd.to_numeric(mine["duration_ms"], errors="coerce")
    n = int(ms.notna().sum()) if timed_only else len(mine)
    return (n, float(ms.fillna(0).sum()))


def share(ms: float, total: float) -> float | None:
    """``ms`` as a fraction of ``total`` (None when the total is zero or unknown)."""
    if not total or math.isnan(total):
        return None
    return ms / total
