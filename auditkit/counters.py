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


def _values(frame: pd.DataFrame, names: pd.Index) -> pd.Series:
    return pd.to_numeric(frame.loc[names, "value"], errors="coerce")


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
    rows = rows.copy()
    for col in _SERIES:
        if col not in rows:
            rows[col] = None
        rows[col] = rows[col].astype("object").where(rows[col].notna(), "")
    out: list[dict[str, object]] = []
    for (server, view, database), g in rows.groupby(list(_SERIES), sort=False):
        label = _label(str(server), str(view), str(database))
        snaps = (
            g.groupby(["source_file", "snapshot"], sort=False, dropna=False)
            .agg(ts=("ts", "first"), uptime=("uptime_s", "first"))
            .reset_index()
        )
        by = (
            ["ts"]
            if snaps["ts"].notna().all()
            else ["uptime"]
            if snaps["uptime"].notna().all()
            else []
        )
        snaps = snaps.sort_values([*by, "source_file", "snapshot"], kind="stable").reset_index(
            drop=True
        )
        if len(snaps) < 2:
            messages.append(f"{label}: one status snapshot, no delta")
            continue
        s0, s1 = snaps.iloc[first or 0], snaps.iloc[last if last is not None else len(snaps) - 1]
        b = g[(g["source_file"] == s0["source_file"]) & (g["snapshot"] == s0["snapshot"])]
        a = g[(g["source_file"] == s1["source_file"]) & (g["snapshot"] == s1["snapshot"])]
        bv = b.drop_duplicates("name").set_index("name")
        av = a.drop_duplicates("name").set_index("name")
        restarted = (
            pd.notna(s0["uptime"]) and pd.notna(s1["uptime"]) and s1["uptime"] < s0["uptime"]
        )
        reset_before = _utc(bv["text"].get("stats_reset")) if "text" in bv else None
        reset_after = _utc(av["text"].get("stats_reset")) if "text" in av else None
        stats_reset = reset_after is not None and reset_after != reset_before
        counters = av["counter"].fillna(False).astype(bool)
        common = counters[counters].index.intersection(bv.index)
        # a counter that went down says "reset" only when neither Uptime nor stats_reset can
        went_down = (
            not (pd.notna(s0["uptime"]) and pd.notna(s1["uptime"]))
            and reset_before is None
            and reset_after is None
            and bool((_values(av, common) < _values(bv, common)).any())
        )
        reset = bool(restarted or stats_reset or went_down)
        if restarted:
            interval = float(s1["uptime"])
            messages.append(
                f"{label} restarted between the snapshots (Uptime went down): the second "
                "snapshot's counters are used, over its own uptime"
            )
        elif stats_reset and reset_after is not None:
            interval = (
                (s1["ts"] - reset_after).total_seconds() if pd.notna(s1["ts"]) else float("nan")
            )
            messages.append(
                f"{label}: statistics were reset between the snapshots (stats_reset "
                f"{reset_after.isoformat()}): the second snapshot's counters are used, since the reset"
            )
        elif went_down:
            interval = float("nan")
            messages.append(
                f"{label}: counters went down between the snapshots (a restart or a statistics "
                "reset): the second snapshot's counters are used; the interval they cover is unknown"
            )
        elif pd.notna(s0["ts"]) and pd.notna(s1["ts"]):
            interval = (s1["ts"] - s0["ts"]).total_seconds()
        elif pd.notna(s0["uptime"]) and pd.notna(s1["uptime"]):
            interval = float(s1["uptime"] - s0["uptime"])
        else:
            interval = float("nan")
        before_values = bv["value"]
        for name, rec in av.iterrows():
            after = rec["value"]
            before = before_values.get(name)
            counter = bool(rec["counter"]) if pd.notna(rec["counter"]) else False
            delta = None
            if counter and pd.notna(after):
                if reset:
                    delta = after
                elif before is not None and pd.notna(before):
                    delta = after - before
            rate = delta / interval if delta is not None and interval and interval > 0 else None
            out.append(
                {
                    "server": server or None,
                    "view": view or None,
                    "database": database or None,
                    "name": name,
                    "counter": counter,
                    "before": before,
                    "after": after,
                    "delta": delta,
                    "interval_s": interval,
                    "rate_per_s": rate,
                    "ts_before": s0["ts"],
                    "ts_after": s1["ts"],
                    "reset": reset,
                }
            )
    frame = pd.DataFrame(out, columns=DELTA_COLUMNS)
    for col in ("before", "after", "delta", "interval_s", "rate_per_s"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame, messages
