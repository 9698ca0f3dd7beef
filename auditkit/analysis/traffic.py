"""Traffic shape: how production load is spread over time and endpoints.

:func:`traffic_shape` reads the ``requests`` frame (access logs, the capture app, APM exports)
and answers what a capacity plan starts from: the average and the peak request rate (over
buckets sized to the window: a minute for an hour or more of traffic, else 10 or 5 seconds),
their ratio, the busiest hours of the day (when the window spans a day or more), and the
endpoints that dominate the load — by requests and by the time workers spend on them.

:func:`busy_workers` applies Little's law to the same requests: at a rate ``X`` with a mean
time in the application ``R``, ``X·R`` workers are busy on average. Against the worker threads
the deployment has, that says how much of its capacity production uses — without a load test,
and without saying where latency would degrade (only a load test measures that).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["TrafficShape", "busy_workers", "traffic_shape"]

#: fewest requests a traffic shape is drawn from
MIN_REQUESTS = 20


@dataclass(frozen=True)
class TrafficShape:
    """Request rates over the window and per endpoint."""

    requests: int
    window_s: float
    bucket_s: int
    mean_rps: float
    peak_rps: float
    peak_at: pd.Timestamp
    #: request rate per bucket (ts, rps)
    rate: pd.DataFrame
    #: per endpoint: requests, share of requests, share of time, mean and p95 ms
    endpoints: pd.DataFrame
    #: per hour of day (UTC): mean rps, when the window covers a day or more (else empty)
    hours: pd.DataFrame
    #: mean time a request spends in the application, ms
    mean_ms: float

    @property
    def peak_to_average(self) -> float:
        return self.peak_rps / self.mean_rps if self.mean_rps > 0 else float("nan")


def _bucket(window_s: float) -> int:
    if window_s >= 3600:
        return 60
    if window_s >= 300:
        return 10
    return 5


def traffic_shape(requests: pd.DataFrame, *, top: int = 10) -> TrafficShape | None:
    """The shape of the traffic in ``requests`` (``None`` with fewer than 20 timed requests)."""
    if len(requests) == 0 or "ts" not in requests:
        return None
    df = requests[requests["ts"].notna()]
    if "kind" in df:
        df = df[df["kind"].astype("string").fillna("http") != "task"]
    if len(df) < MIN_REQUESTS:
        return None
    lo, hi = df["ts"].min(), df["ts"].max()
    window = (hi - lo).total_seconds()
    if window <= 0:
        return None
    bucket = _bucket(window)
    counts = df.set_index("ts").resample(f"{bucket}s").size()
    # the last bucket is usually cut short by the end of the log: leave it out of the peak
    full = counts.iloc[:-1] if len(counts) > 2 else counts
    rate = pd.DataFrame({"ts": counts.index, "rps": counts.to_numpy() / bucket})
    peak_at = pd.Timestamp(full.idxmax())  # type: ignore[arg-type]
    peak = float(full.max()) / bucket
    dur = pd.to_numeric(df["duration_ms"], errors="coerce") if "duration_ms" in df else None
    ep = df.assign(
        endpoint=df["endpoint"].astype("string").fillna("(unknown endpoint)")
        if "endpoint" in df
        else "(unknown endpoint)",
        _ms=dur if dur is not None else float("nan"),
    )
    g = ep.groupby("endpoint")
    total_ms = float(ep["_ms"].sum()) or float("nan")
    endpoints = (
        pd.DataFrame(
            {
                "requests": g.size(),
                "share": g.size() / len(ep),
                "time_share": g["_ms"].sum() / total_ms,
                "mean_ms": g["_ms"].mean(),
                "p95_ms": g["_ms"].quantile(0.95),
            }
        )
        .sort_values("time_share" if ep["_ms"].notna().any() else "requests", ascending=False)
        .head(top)
        .reset_index()
    )
    hours = pd.DataFrame(columns=["hour", "rps"])
    if window >= 86400:
        per_hour = df.set_index("ts").resample("1h").size()
        hour = pd.DatetimeIndex(per_hour.index).hour
        hours = per_hour.groupby(hour).mean().div(3600.0).rename("rps").reset_index()
        hours.columns = ["hour", "rps"]
        hours = hours.sort_values("rps", ascending=False).reset_index(drop=True)
    return TrafficShape(
        requests=len(df),
        window_s=window,
        bucket_s=bucket,
        mean_rps=len(df) / window,
        peak_rps=peak,
        peak_at=peak_at,
        rate=rate,
        endpoints=endpoints,
        hours=hours,
        mean_ms=float(dur.mean()) if dur is not None and dur.notna().any() else float("nan"),
    )


def busy_workers(shape: TrafficShape) -> tuple[float, float]:
    """Little's law: workers busy on average over the window, and in the peak bucket."""
    r = shape.mean_ms / 1000.0
    return shape.mean_rps * r, shape.peak_rps * r
