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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from auditkit.schemas import FRAMES, empty

__all__ = ["SOURCE_FAMILIES", "SourceFamily", "Workload", "choose_workload"]


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
            f"Database times in this report are those of {self.label}: {self.db_ms / 1000:,.1f} s "
            f"over {self.calls:,} statements"
            + (f" in {_duration(self.window_s)}" if self.window_s else "")
            + f". {self.reason}"
        ]
        for label, ms, calls in self.reconciliation:
            parts.append(
                f"{label[0].upper() + label[1:] if label.startswith('the ') else label} measured "
                f"{ms / 1000:,.1f} s over {calls:,} statements"
                + (
                    " (server-side execution only, without the round trip to the application)."
                    if not self.app_side or "server" in label or "slow" in label
                    else "."
                )
            )
        return " ".join(parts)

    @property
    def calls(self) -> int:
        return int(pd.to_numeric(self.profile["calls"], errors="coerce").fillna(0).sum())


def _duration(seconds: float | None) -> str:
    if not seconds:
        return "an unknown time"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def _timed(events: pd.DataFrame) -> pd.DataFrame:
    """Executions only: extended-protocol parse/bind rows are not execution time."""
    if "phase" in events and events["phase"].notna().any():
        events = events[events["phase"].isna() | events["phase"].isin(("statement", "execute"))]
    return events


def choose_workload(
    query_events: pd.DataFrame, statement_stats: pd.DataFrame | None = None
) -> Workload:
    """Pick the source that times the audit (see the module docstring) and measure it.

    ``query_events`` is every statement of every file (``source_format`` tells them apart);
    ``statement_stats`` is the ``pg_stat_statements`` profile (the delta of the first and last
    snapshot) when the client sent one.
    """
    from auditkit.profile import query_profile

    stats = statement_stats if statement_stats is not None else empty(FRAMES["statement_stats"])
    stats_label = (
        "performance_schema statement digests"
        if "dialect" in stats and stats["dialect"].isin(("mysql", "mariadb")).any()
        else "pg_stat_statements"
    )
    events = query_events
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
        return Workload(
            source=fam.name,
            label=fam.label,
            reason=reason,
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


def share(ms: float, total: float) -> float | None:
    """``ms`` as a fraction of ``total`` (None when the total is zero or unknown)."""
    if not total or math.isnan(total):
        return None
    return ms / total
