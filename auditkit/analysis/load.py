"""Load steps: the plateaus of a stepped load test, each measured once and judged for trust.

A stepped load test (Locust's ``LoadTestShape``, k6 stages, JMeter's stepping thread group)
holds a number of users for a while, then raises it. :func:`load_steps` finds those plateaus
in the ``load_samples`` frame (Locust's per-second history) and measures each over its
*settled* part — after ``warmup_s`` seconds, when the users of the step are spawned and the
system has reacted:

* throughput from Locust's cumulative request count (``requests`` in the history), divided by
  the settled time; the per-second ``Requests/s`` column is a rolling 10-second average and
  lags the step, so it is used only when no cumulative count exists;
* latency percentiles as the users saw them: Locust's own, from the step's last
  ``percentile_window_s`` seconds (Locust computes them over a rolling window); the step's
  mean from Locust's cumulative average at both ends;
* errors from the cumulative failure count;
* Little's law (concurrency = throughput × response time): the requests in service
  (throughput × the application's own time from the request log, which leaves out the wait
  for a free worker: the busy workers) and the think time ``users / throughput − response
  time`` the load test implies. A closed load test keeps its think time; a step whose implied
  think time strays far from the others' was not steady.

A plateau shorter than ``min_step_s`` once settled (a ramp second, a step cut short) or whose
per-second throughput varies too much (``max_noise``: the standard error of the step's mean
throughput as a share of it) is kept in the table with ``trusted`` False and the reason in
``note``; a model fits only trusted steps.

Thresholds: ``step_warmup_s``, ``step_min_s``, ``step_max_noise`` and
``locust_percentile_window_s`` of the ``capacity`` family in :mod:`auditkit.config`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["STEP_COLUMNS", "load_steps"]

#: the columns of :func:`load_steps`, in order
STEP_COLUMNS = [
    "step",
    "users",
    "start",
    "end",
    "seconds",
    "settled_s",
    "requests",
    "rps",
    "rps_noise",
    "failures",
    "failure_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "server_ms",
    "latency_source",
    "in_service",
    "think_s",
    "trusted",
    "note",
]

#: requests a step needs in the request log before its percentiles come from there
_MIN_LOGGED = 20


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in STEP_COLUMNS})


def _totals(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per interval for the whole test: Locust's ``Aggregated`` rows, else the sum of
    the endpoints' throughput (and their worst percentiles) per interval."""
    df = samples[samples["ts"].notna()]
    if "endpoint" in df and (df["endpoint"] == "Aggregated").any():
        return df[df["endpoint"] == "Aggregated"].sort_values("ts")
    g = df.groupby("ts", sort=True)
    cols: dict[str, pd.Series] = {"users": g["users"].max(), "rps": g["rps"].sum()}
    for c in ("p50_ms", "p95_ms", "p99_ms"):
        if c in df:
            cols[c] = g[c].max()
    for c in ("requests", "failures", "failures_per_s"):
        if c in df:
            cols[c] = g[c].sum(min_count=1)
    return pd.DataFrame(cols).reset_index()


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df:
        return pd.Series(np.nan, index=df.index, dtype="float64")
    return pd.to_numeric(df[col], errors="coerce").astype("float64")


def load_steps(
    samples: pd.DataFrame,
    requests: pd.DataFrame | None = None,
    *,
    warmup_s: float = 3.0,
    min_step_s: float = 5.0,
    max_noise: float = 0.15,
    percentile_window_s: float = 10.0,
) -> pd.DataFrame:
    """The plateaus of a stepped load test, one row each (columns :data:`STEP_COLUMNS`).

    ``samples`` is the ``load_samples`` frame; ``requests`` (optional) the request log of the
    same run, for exact percentiles. Rows come in time order; ``trusted`` says which a model
    may use. An empty frame when the samples carry no user counts or timestamps.
    """
    if len(samples) == 0 or "users" not in samples or samples["ts"].isna().all():
        return _empty()
    tot = _totals(samples)
    tot = tot.assign(users=_num(tot, "users"))
    tot = tot[tot["users"].notna()].reset_index(drop=True)
    if len(tot) == 0:
        return _empty()
    run = (tot["users"] != tot["users"].shift()).cumsum()
    req_log = _request_log(requests)
    rows = []
    for _, g in tot.groupby(run, sort=True):
        users = float(g["users"].iloc[0])
        if users <= 0:
            continue
        rows.append(_step(g, users, req_log, warmup_s, min_step_s, max_noise, percentile_window_s))
    if not rows:
        return _empty()
    out = pd.DataFrame(rows)
    out.insert(0, "step", range(1, len(out) + 1))
    _littles_law(out)
    return out[STEP_COLUMNS]


def _request_log(requests: pd.DataFrame | None) -> pd.DataFrame | None:
    if requests is None or len(requests) == 0 or "ts" not in requests:
        return None
    df = requests[["ts", "duration_ms"]].dropna()
    if len(df) == 0:
        return None
    return df.sort_values("ts").reset_index(drop=True)


def _step(
    g: pd.DataFrame,
    users: float,
    req_log: pd.DataFrame | None,
    warmup_s: float,
    min_step_s: float,
    max_noise: float,
    percentile_window_s: float,
) -> dict[str, object]:
    start, end = g["ts"].iloc[0], g["ts"].iloc[-1]
    seconds = (end - start).total_seconds()
    settled = g[g["ts"] >= start + pd.Timedelta(seconds=warmup_s)]
    settled_s = (
        (settled["ts"].iloc[-1] - settled["ts"].iloc[0]).total_seconds() if len(settled) else 0.0
    )
    notes = []
    cum = _num(settled, "requests")
    t = settled["ts"]
    rps = float("nan")
    noise = float("nan")
    requests_n: float = float("nan")
    if len(settled) >= 2 and cum.notna().all() and cum.is_monotonic_increasing and settled_s > 0:
        requests_n = float(cum.iloc[-1] - cum.iloc[0])
        rps = requests_n / settled_s
        dt = t.diff().dt.total_seconds().iloc[1:]
        per_s = (cum.diff().iloc[1:] / dt.replace(0, np.nan)).dropna()
        if len(per_s) >= 2 and rps > 0:
            noise = float(per_s.std(ddof=1) / np.sqrt(len(per_s)) / rps)
    elif len(settled):
        r = _num(settled, "rps")
        rps = float(r.median())
        if len(r.dropna()) >= 2 and rps > 0:
            noise = float(r.std(ddof=1) / np.sqrt(len(r.dropna())) / rps)
        requests_n = rps * settled_s if settled_s > 0 else float("nan")
    fcum = _num(settled, "failures")
    if len(settled) >= 2 and fcum.notna().all() and settled_s > 0:
        failures = float(fcum.iloc[-1] - fcum.iloc[0])
    else:
        failures = (
            float(_num(settled, "failures_per_s").median() * settled_s) if len(settled) else 0.0
        )
    failures = 0.0 if np.isnan(failures) else max(failures, 0.0)
    failure_rate = failures / requests_n if requests_n and requests_n > 0 else 0.0

    # what users saw: the load tool's percentiles over the step's last seconds (it computes
    # them over a rolling window); the step's own mean from two cumulative averages
    p50 = p95 = p99 = mean = float("nan")
    source = "load test"
    if len(settled):
        tail = settled[settled["ts"] >= end - pd.Timedelta(seconds=0.5)]
        if seconds < warmup_s + percentile_window_s:
            notes.append(
                f"percentiles include the previous step (the load tool computes them over "
                f"{percentile_window_s:g} s)"
            )
        p50, p95, p99 = (float(_num(tail, c).median()) for c in ("p50_ms", "p95_ms", "p99_ms"))
        cm = _num(settled, "total_mean_ms")
        if len(settled) >= 2 and cm.notna().all() and cum.notna().all() and requests_n > 0:
            mean = float((cm.iloc[-1] * cum.iloc[-1] - cm.iloc[0] * cum.iloc[0]) / requests_n)
    # what the server spent: the request log of the same run (time in the application, without
    # the wait for a free worker), for Little's law
    server = float("nan")
    if req_log is not None and len(settled):
        lo, hi = settled["ts"].iloc[0], settled["ts"].iloc[-1]
        window = req_log[(req_log["ts"] >= lo) & (req_log["ts"] <= hi)]["duration_ms"]
        if len(window) >= _MIN_LOGGED:
            server = float(window.mean())
            if np.isnan(p95):
                q = window.quantile([0.5, 0.95, 0.99])
                p50, p95, p99 = (float(v) for v in q)
                source = "request log"
    trusted = True
    if settled_s < min_step_s:
        trusted = False
        notes.insert(0, f"too short: {settled_s:g} s once settled (needs {min_step_s:g} s)")
    elif not np.isnan(noise) and noise > max_noise:
        trusted = False
        notes.insert(0, f"too noisy: throughput ±{noise:.0%} within the step")
    if trusted and not (rps > 0):
        trusted = False
        notes.insert(0, "no request finished in the step")
    return {
        "users": users,
        "start": start,
        "end": end,
        "seconds": seconds,
        "settled_s": settled_s,
        "requests": requests_n,
        "rps": rps,
        "rps_noise": noise,
        "failures": failures,
        "failure_rate": failure_rate,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "mean_ms": mean,
        "server_ms": server,
        "latency_source": source,
        "in_service": float("nan"),
        "think_s": float("nan"),
        "trusted": trusted,
        "note": "; ".join(notes),
    }


def _littles_law(steps: pd.DataFrame) -> None:
    """Little's law per step, in place: requests in service ``X·R_server`` (busy workers) and
    the think time ``N/X − R`` the load test implies. A closed load test keeps its think time,
    so a step whose implied think time strays from the others' median was not steady; more
    requests in service than users means the two sources disagree."""
    rps = steps["rps"].astype("float64")
    steps["in_service"] = rps * steps["server_ms"].astype("float64") / 1000.0
    steps["think_s"] = (
        steps["users"].astype("float64") / rps.where(rps > 0)
        - steps["mean_ms"].astype("float64") / 1000.0
    )
    for i in steps.index[steps["in_service"] > steps["users"].astype("float64") * 1.1]:
        steps.at[i, "note"] = _join(
            steps.at[i, "note"],
            "more requests in service than users (Little's law): the request log and the load "
            "test disagree",
        )
    ok = steps["trusted"] & steps["think_s"].notna()
    if ok.sum() < 3:
        return
    z = float(steps.loc[ok, "think_s"].median())
    if z <= 0:
        return
    for i in steps.index[ok]:
        think = float(steps.at[i, "think_s"])  # type: ignore[arg-type]
        if abs(think - z) > 0.5 * z:
            steps.at[i, "note"] = _join(
                steps.at[i, "note"],
                f"implied think time {think:.2f} s vs {z:.2f} s for the other steps "
                "(Little's law): not steady",
            )


def _join(a: object, b: str) -> str:
    return f"{a}; {b}" if isinstance(a, str) and a else b
