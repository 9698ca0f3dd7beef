"""Timestamps for every loader: out-of-range values become null, naive times get a zone.

Frames hold ``datetime64[ns, UTC]``, which spans the years 1677 to 2262. A client file can
hold anything — an epoch in the wrong unit, ``9999-12-31`` as "never", a flipped digit — and
pandas raises ``OutOfBoundsDatetime`` (or ``OverflowError``) on any of them. These helpers
return ``NaT`` instead and count the value (:func:`auditkit.schemas.count_out_of_range`), so
the parse report says how many timestamps were dropped.

A timestamp printed without a zone is local time of the machine that wrote it. When the
client says which zone that is (a loader's ``tz`` option, ``tz:`` in ``audit.yaml``) it is
used; otherwise the time is read as UTC and :func:`naive_warning` is the parse report's
warning saying so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from auditkit.schemas import count_out_of_range

__all__ = [
    "TS",
    "epoch_series",
    "epoch_ts",
    "localize",
    "naive_warning",
    "parse_series",
]

TS = "datetime64[ns, UTC]"

_SECONDS_PER_UNIT = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
#: the range of datetime64[ns] in epoch seconds (with a little margin): ``pd.Timestamp.min``
#: and ``max`` are the int64 nanoseconds but NaT's, written out so importing this module does
#: not import pandas (``auditkit digest`` defers it, :mod:`auditkit.lazy_modules`)
_LO, _HI = (-(2**63) + 1) / 1e9 + 1, (2**63 - 1) / 1e9 - 1


def epoch_ts(value: Any, unit: str = "s", column: str = "ts") -> pd.Timestamp:
    """One epoch number in ``unit`` as a UTC timestamp; ``NaT`` when missing or out of range."""
    if value is None or value is pd.NA:
        return pd.NaT  # type: ignore[return-value]
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return pd.NaT  # type: ignore[return-value]
    if math.isnan(number):
        return pd.NaT  # type: ignore[return-value]
    seconds = number * _SECONDS_PER_UNIT[unit]
    if not _LO <= seconds <= _HI:
        count_out_of_range(column, 1)
        return pd.NaT  # type: ignore[return-value]
    if isinstance(value, int | np.integer) and unit != "s":
        return pd.Timestamp(int(value), unit=unit, tz="UTC")
    return pd.Timestamp(round(seconds * 1e6), unit="us", tz="UTC").as_unit("ns")


def epoch_series(values: Any, unit: str = "s", column: str = "ts") -> pd.Series:
    """Epoch numbers in ``unit`` (any numeric-like series) as UTC timestamps, NaT when out of range."""
    num = pd.to_numeric(pd.Series(values), errors="coerce")
    with np.errstate(over="ignore", invalid="ignore"):
        seconds = num.astype("float64") * _SECONDS_PER_UNIT[unit]
    bad = seconds.notna() & ~seconds.between(_LO, _HI)
    if bad.any():
        count_out_of_range(column, int(bad.sum()))
        seconds = seconds.mask(bad)
    micros = (seconds * 1e6).round()
    return pd.to_datetime(micros, unit="us", utc=True).astype("datetime64[ns, UTC]")


def parse_series(values: Any, column: str = "ts", **kwargs: Any) -> pd.Series:
    """Date strings (anything :func:`pandas.to_datetime` reads) as UTC; NaT when unreadable.

    Out-of-range dates (the year 9999 as "never") are counted. ``kwargs`` go to
    :func:`pandas.to_datetime` (``format="ISO8601"``…).
    """
    series = pd.Series(values)
    if not len(series):
        return pd.Series([], dtype=TS)
    kwargs.setdefault("errors", "coerce")
    try:
        ts = pd.to_datetime(series, utc=True, **kwargs)
    except (OverflowError, ValueError, TypeError):
        ts = pd.Series([_one(v, kwargs) for v in series], index=series.index, dtype="object")
        ts = pd.to_datetime(ts, utc=True, errors="coerce")
    if str(ts.dtype) == TS:
        return ts
    lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    bad = ts.notna() & ((ts < lo) | (ts > hi))
    if bad.any():
        count_out_of_range(column, int(bad.sum()))
        ts = ts.mask(bad)
    return ts.astype("datetime64[ns, UTC]")


def _one(value: Any, kwargs: dict[str, Any]) -> pd.Timestamp | None:
    try:
        ts = pd.to_datetime(value, utc=True, **kwargs)
    except (OverflowError, ValueError, TypeError):
        return None
    return None if ts is pd.NaT else ts


def localize(naive: pd.Series, tz: str | None) -> pd.Series:
    """Naive timestamps as UTC, read in zone ``tz`` (UTC when None).

    Times that do not exist or are ambiguous in ``tz`` (the hour a DST change skips or
    repeats) become NaT rather than raising.
    """
    if tz is None:
        return naive.dt.tz_localize("UTC")
    return naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")


def naive_warning(tz: str | None) -> str:
    """The parse-report warning for timestamps written without a zone."""
    if tz:
        return f"timestamps carry no time zone; read as local time in {tz} (the tz setting)"
    return (
        "timestamps carry no time zone; read as UTC — if the server wrote local time, "
        "give its zone with tz (a loader option, or tz: in audit.yaml)"
    )
