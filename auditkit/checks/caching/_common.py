"""What the caching checks share: rows and values of loosely typed frames, byte sizes, the
severity of a ratio without a measured saving, and an endpoint named by its view."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

import pandas as pd

from auditkit.findings import Severity

__all__ = [
    "bytes_text",
    "count_of",
    "endpoint_views",
    "engine_name",
    "frame_rows",
    "number_of",
    "ratio_severity",
    "where_text",
]


def frame_rows(df: pd.DataFrame) -> Iterator[Any]:
    """The rows of ``df`` as named tuples (typed loosely: columns vary by input)."""
    return iter(cast("Iterable[Any]", df.itertuples(index=False)))


def ratio_severity(ratio: float, threshold: float) -> Severity:
    return Severity.HIGH if ratio < threshold / 2 else Severity.MEDIUM


def bytes_text(n: float) -> str:
    if n != n:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GB"


def engine_name(engine: object) -> str:
    e = str(engine)
    return "memcached" if e == "memcached" else e.capitalize()


def count_of(v: Any) -> int:
    """A count from a frame cell: 0 for NaN or None (a source that does not count it)."""
    f = number_of(v)
    return int(f) if f is not None else 0


def number_of(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else round(f, 4)


def endpoint_views(requests: pd.DataFrame | None) -> dict[str, dict[str, str]]:
    """Endpoint → its view, URL name and route, from the requests frame (when it says)."""
    out: dict[str, dict[str, str]] = {}
    if requests is None or len(requests) == 0 or "endpoint" not in requests:
        return out
    for col in ("view", "url_name", "route"):
        if col not in requests:
            continue
        known = requests.dropna(subset=["endpoint", col])
        for ep, value in (
            known.groupby("endpoint")[col].agg(lambda s: s.value_counts().index[0]).items()
        ):
            out.setdefault(str(ep), {})[col] = str(value)
    return out


def where_text(endpoint: str | None, views: Mapping[str, Mapping[str, str]]) -> str:
    if not endpoint:
        return "its callers"
    v = views.get(endpoint, {})
    parts = [
        p
        for p in (v.get("view"), f'URL name "{v["url_name"]}"' if v.get("url_name") else None)
        if p
    ]
    return f"{endpoint} ({', '.join(parts)})" if parts else endpoint
