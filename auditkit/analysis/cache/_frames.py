"""Loose reading of the cache frames: their columns vary with the input, so rows are read as
named tuples and values as numbers that may be missing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

import pandas as pd

__all__ = ["frame_rows", "to_float"]


def frame_rows(df: pd.DataFrame) -> Iterator[Any]:
    """The rows of ``df`` as named tuples (typed loosely: columns vary by input)."""
    return iter(cast("Iterable[Any]", df.itertuples(index=False)))


def to_float(v: object) -> float:
    """``v`` as a float, NaN when it is none."""
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
    return f
