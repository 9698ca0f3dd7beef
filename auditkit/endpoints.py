"""Endpoints: from the paths a log records to the routes a developer recognises.

Access logs and some traces record the *path* of each request (``/books/42/``,
``/books/tags/drama/``) while findings must be about the *route* (``/books/<id>/``,
``/books/tags/<slug>/``), or one N+1 becomes thirty. :func:`route_templates` infers routes from
the set of paths seen:

1. a segment that is a number, a UUID or a long hex/base64 token is a parameter
   (``<int>``, ``<uuid>``, ``<token>``);
2. among paths of the same depth that agree on every other segment, a position holding more
   than ``min_variants`` distinct values is a parameter (``<slug>``) — a route has a handful of
   fixed words at a position, while parameters take many values.

Names already in route form (``/books/<slug>/``, a Django URL name such as ``book-detail``, a
trace's ``http.route``) pass through unchanged, and the query string is dropped.

Example::

    >>> route_templates(["/b/1/", "/b/2/", "/t/a/", "/t/b/", "/t/c/", "/t/d/"], min_variants=3)["/t/a/"]
    '/t/<slug>/'
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import pandas as pd

from auditkit.lazy_re import compile_later

__all__ = ["MIN_VARIANTS", "normalise_endpoints", "route_templates"]

#: distinct values at one path position beyond which it is a parameter
MIN_VARIANTS = 5

_INT = compile_later(r"^\d+$")
_UUID = compile_later(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
_TOKEN = compile_later(r"^(?=.*\d)[A-Za-z0-9_-]{20,}$")


def _segment_kind(seg: str) -> str | None:
    if _INT.match(seg):
        return "<int>"
    if _UUID.match(seg):
        return "<uuid>"
    if _TOKEN.match(seg):
        return "<token>"
    return None


def _masked(segs: list[str], i: int) -> tuple[str, ...]:
    """The path with position ``i`` blanked: paths equal but for ``i`` share this key."""
    return (*segs[:i], "*", *segs[i + 1 :])


def route_templates(paths: Iterable[str], min_variants: int = MIN_VARIANTS) -> dict[str, str]:
    """Map every path to its inferred route template (see the module docstring)."""
    originals = {p for p in paths if isinstance(p, str)}
    split: dict[str, list[str]] = {}
    for p in originals:
        if not p.startswith("/") or "<" in p:
            continue
        path = p.split("?", 1)[0].split("#", 1)[0]
        segs = path.split("/")
        split[p] = [_segment_kind(s) or s for s in segs]
    # step 2: positions with many distinct values among otherwise-equal paths
    changed = True
    while changed:
        changed = False
        groups: dict[tuple[int, int, tuple[str, ...]], set[str]] = defaultdict(set)
        for segs in split.values():
            for i, s in enumerate(segs):
                if s.startswith("<") or s == "":
                    continue
                key = (len(segs), i, _masked(segs, i))
                groups[key].add(s)
        for (depth, i, rest), values in groups.items():
            if len(values) > min_variants:
                for segs in split.values():
                    if (
                        len(segs) == depth
                        and _masked(segs, i) == rest
                        and not segs[i].startswith("<")
                    ):
                        segs[i] = "<slug>"
                        changed = True
    out = {p: p for p in originals}
    for p, segs in split.items():
        out[p] = "/".join(segs)
    return out


def normalise_endpoints(series: pd.Series, min_variants: int = MIN_VARIANTS) -> pd.Series:
    """``series`` with paths replaced by their route templates (nulls stay null)."""
    if len(series) == 0:
        return series
    mapping = route_templates(series.dropna().astype(str).unique(), min_variants)
    return series.map(lambda v: mapping.get(v, v) if isinstance(v, str) else v).astype(series.dtype)
