"""Deltas of cumulative server counters between two snapshots (the ``server_status`` frame).

A database server counts from its start or its last statistics reset: MySQL's SHOW GLOBAL
STATUS, PostgreSQL's ``pg_stat_database``, ``pg_stat_bgwriter``, ``pg_stat_checkpointer`` and
``pg_stat_archiver``. What happened in the audit window is the difference of two snapshots, and
a rate is that difference over the time between them. :func:`status_delta` computes both for
every counter, per *series* — one server, one view, one database — so the caching and scaling
analyses read buffer hits, transactions or checkpoints of the window, whatever the engine.

A counter's series may have been restarted in between, which a plain subtraction turns into a
negative count. :func:`status_delta` detects it and uses the second snapshot's values alone
(what was counted since the restart), saying so in a message:

* MySQL: ``Uptime`` went down (the server restarted); the interval is then the second uptime;
* PostgreSQL: the view's ``stats_reset`` time changed (``pg_stat_reset()`` and friends); the
  interval is then from that reset to the second snapshot;
* any engine: a cumulative counter went down, with nothing else telling (the interval is then
  unknown unless one of the above gives it).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["DELTA_COLUMNS", "status_delta"]

#: the columns of :func:`status_delta`'s frame
DELTA_COLUMNS = [
    "server",
    "view",
    "database",
    "name",
    "counter",
    "before",
    "after",
    "delta",
    "interval_s",
    "rate_per_s",
    "ts_before",
    "ts_after",
    "reset",
]

_SERIES = ("server", "view", "database")


def _label(server: str, view: str, database: str) -> str:
    parts = [f"server {server or '(unnamed)'}"]
    if view:
        parts.append(view)
    if database:
        parts.append(f"database {database}")
    return ", ".join(parts)


def _utc(text: object) -> pd.Timestamp | None:
    if text is None or (isinstance(text, float) and pd.isna(text)) or str(text).strip() == "":
        return None
    try:
        ts = pd.Timestamp(str(text))
    except (ValueError, TypeError, OverflowError):
        return None
    if ts is pd.NaT:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def status_delta(
    status: pd.DataFrame, first: int | None = None, last: int | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Delta, interval and rate of every status counter between two snapshots, per series.

    ``status`` is a ``server_status`` frame (several files concatenated are fine); rows of kind
    ``status`` are used. A series is one (server, view, database). Its snapshots — one per
    (source_file, snapshot) — are ordered by time stamp, else by the server's ``Uptime``, else by
    file and ordinal; ``first`` and ``last`` pick two by position (default: the first and the
    last). The interval is the difference of the time stamps, else of ``Uptime``. A restart or
    statistics reset in between is detected (see the module docstring): the second snapshot's
    values are then the delta and ``reset`` is True. Gauges (``Threads_connected``,
    ``numbackends``…) and text get their two values but no delta. Columns:
    :data:`DELTA_COLUMNS`. Returns the frame and messages for the data-quality section.
    """
    messages: list[str] = []
    rows = status[status["kind"] == "status"] if len(status) else status
    if len(rows) == 0:
        return pd.DataFrame(columns=DELTA_COLUMNS), ["no status snapshot"]
    keys = list(_SERIES)
    rows = rows.copy()
    for col in (*keys, "source_file"):
        if col not in rows:
            rows[col] = None
        rows[col] = rows[col].astype("object").where(rows[col].notna(), "")
    for col in ("ts", "uptime_s", "text", "snapshot"):
        if col not in rows:
            rows[col] = None
    rows["snapshot"] = pd.to_numeric(rows["snapshot"], errors="coerce").fillna(0)
    snap_cols = [*keys, "source_file", "snapshot"]
    # one row per snapshot of a series, ordered by time, else Uptime, else file and ordinal
    snaps = rows.drop_duplicates(snap_cols)[[*snap_cols, "ts", "uptime_s"]].reset_index(drop=True)
    all_ts = snaps["ts"].notna().groupby([snaps[k] for k in keys], sort=False).transform("all")
    all_up = (
        snaps["uptime_s"].notna().groupby([snaps[k] for k in keys], sort=False).transform("all")
    )
    ts_ns = pd.to_datetime(snaps["ts"], utc=True, errors="coerce")
    order = pd.Series(0.0, index=snaps.index)
    order[all_ts] = ts_ns[all_ts].astype("int64").astype("float64")
    up_only = all_up & ~all_ts
    order[up_only] = pd.to_numeric(snaps.loc[up_only, "uptime_s"], errors="coerce")
    snaps["_order"] = order
    snaps = snaps.sort_values([*keys, "_order", "source_file", "snapshot"], kind="stable")
    snaps["_pos"] = snaps.groupby(keys, sort=False).cumcount()
    snaps["_n"] = snaps.groupby(keys, sort=False)["_pos"].transform("size")
    n = snaps["_n"]
    i0 = pd.Series(first or 0, index=snaps.index)
    i1 = (
        (n - 1) if last is None else (pd.Series(last, index=snaps.index) if last >= 0 else n + last)
    )
    for lone in snaps.loc[n < 2, keys].itertuples(index=False):
        messages.append(f"{_label(*(str(v) for v in lone))}: one status snapshot, no delta")
    s0 = snaps[(n >= 2) & (snaps["_pos"] == i0)]
    s1 = snaps[(n >= 2) & (snaps["_pos"] == i1)]
    if len(s0) == 0 or len(s1) == 0:
        return pd.DataFrame(columns=DELTA_COLUMNS), messages
    take = [*keys, "name", "value", "text", "counter"]
    before = rows.merge(s0[snap_cols], on=snap_cols)[take].drop_duplicates([*keys, "name"])
    after = rows.merge(s1[snap_cols], on=snap_cols)[take].drop_duplicates([*keys, "name"])
    m = after.merge(
        before[[*keys, "name", "value", "text"]],
        on=[*keys, "name"],
        how="left",
        suffixes=("", "_b"),
    )
    m["after"] = pd.to_numeric(m["value"], errors="coerce").astype("float64")
    m["before"] = pd.to_numeric(m["value_b"], errors="coerce").astype("float64")
    m["counter"] = m["counter"].astype("boolean").fillna(False).astype(bool)
    m["down"] = m["counter"] & (m["after"] < m["before"])
    # one row per series: its two snapshots, stats_reset before and after, counters down
    series: pd.DataFrame = s0[[*keys, "ts", "uptime_s"]].merge(
        s1[[*keys, "ts", "uptime_s"]], on=keys, suffixes=("_0", "_1")
    )
    resets = m[m["name"] == "stats_reset"][[*keys, "text", "text_b"]]
    series = series.merge(resets, on=keys, how="left")
    series = series.merge(m.groupby(keys, sort=False)["down"].any().reset_index(), on=keys)
    facts = []
    for r in series.itertuples(index=False):
        reset, span, message = _window(r, _label(*(str(getattr(r, k)) for k in keys)))
        if message:
            messages.append(message)
        facts.append(
            {
                **{k: getattr(r, k) for k in keys},
                "reset": reset,
                "interval_s": span,
                "ts_before": r.ts_0,
                "ts_after": r.ts_1,
            }
        )
    m = m.merge(pd.DataFrame(facts), on=keys)
    usable = m["counter"] & m["after"].notna()
    reset_rows = m["reset"].astype(bool)
    m["delta"] = m["after"].where(reset_rows, m["after"] - m["before"]).where(usable)
    interval = pd.to_numeric(m["interval_s"], errors="coerce").astype("float64")
    m["interval_s"] = interval
    m["rate_per_s"] = (m["delta"] / interval).where(interval > 0)
    for k in keys:
        m[k] = m[k].where(m[k] != "", None)
    return m[DELTA_COLUMNS].reset_index(drop=True), messages


def _window(r: Any, label: str) -> tuple[bool, float, str | None]:
    """Whether a series was reset between its snapshots, the interval, and what to say."""
    up0, up1 = r.uptime_s_0, r.uptime_s_1
    ts0, ts1 = r.ts_0, r.ts_1
    reset_before = _utc(getattr(r, "text_b", None))
    reset_after = _utc(getattr(r, "text", None))
    has_up = pd.notna(up0) and pd.notna(up1)
    if has_up and float(up1) < float(up0):
        return (
            True,
            float(up1),
            f"{label} restarted between the snapshots (Uptime went down): the second "
            "snapshot's counters are used, over its own uptime",
        )
    if reset_after is not None and reset_after != reset_before:
        interval = (
            (pd.Timestamp(ts1) - reset_after).total_seconds() if pd.notna(ts1) else float("nan")
        )
        return (
            True,
            interval,
            f"{label}: statistics were reset between the snapshots (stats_reset "
            f"{reset_after.isoformat()}): the second snapshot's counters are used, since the reset",
        )
    # a counter that went down says "reset" only when neither Uptime nor stats_reset can
    if not has_up and reset_before is None and reset_after is None and bool(r.down):
        return (
            True,
            float("nan"),
            f"{label}: counters went down between the snapshots (a restart or a statistics "
            "reset): the second snapshot's counters are used; the interval they cover is unknown",
        )
    if pd.notna(ts0) and pd.notna(ts1):
        return False, (pd.Timestamp(ts1) - pd.Timestamp(ts0)).total_seconds(), None
    if has_up:
        return False, float(up1) - float(up0), None
    return False, float("nan"), None
