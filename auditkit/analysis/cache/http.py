"""HTTP and CDN caching: per path pattern, the CDN's (or proxy's) outcomes from the requests
frame's ``cache_status``, responses without ``Cache-Control``, and static files the application
served itself."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from auditkit.loaders.cache_events import key_family

__all__ = ["CDN_HITS", "http_cache", "path_pattern", "static_served"]


#: CDN and proxy outcomes that answered the request without the application
CDN_HITS = frozenset(
    {"HIT", "STALE", "UPDATING", "REVALIDATED", "TCP_HIT", "TCP_MEM_HIT", "REFRESH_HIT"}
)
_STATIC = re.compile(
    r"(?:^/(?:static|media|assets|uploads)/)|\.(?:css|js|mjs|map|png|jpe?g|gif|webp|avif|svg|ico|woff2?|ttf|eot|mp4|webm|pdf|zip)$",
    re.I,
)


def path_pattern(path: object) -> str | None:
    """A request path with its variable parts replaced: ``/loaves/12/`` → ``/loaves/{int}/``."""
    if not isinstance(path, str) or not path:
        return None
    p = path.split("?", 1)[0]
    if _STATIC.search(p):
        m = re.match(r"^(/[^/]+/)", p)
        ext = re.search(r"\.([A-Za-z0-9]+)$", p)
        return f"{m.group(1) if m else '/'}…{'.' + ext.group(1).lower() if ext else ''}"
    return key_family(p)


def _paths(requests: pd.DataFrame) -> pd.Series:
    path = requests["path"] if "path" in requests else pd.Series(pd.NA, index=requests.index)
    return (
        path.astype("string").fillna(requests["endpoint"].astype("string"))
        if "endpoint" in requests
        else path
    )


def http_cache(requests: pd.DataFrame) -> pd.DataFrame:
    """Per path pattern: requests, the CDN's (or proxy's) outcomes, its hit ratio, and the
    share of cacheable GETs answered without ``Cache-Control`` (when a ``cache_control`` column
    says). Only requests whose ``cache_status`` is known count toward the outcomes."""
    cols = [
        "pattern",
        "requests",
        "hits",
        "hit_ratio",
        "outcomes",
        "bytes",
        "get_ok",
        "no_cache_control",
    ]
    if (
        len(requests) == 0
        or "cache_status" not in requests
        or requests["cache_status"].isna().all()
    ):
        return pd.DataFrame(columns=cols)
    df = requests.assign(_pattern=_paths(requests).map(path_pattern))
    df = df[df["cache_status"].notna()]
    rows = []
    for pattern, g in df.groupby("_pattern", sort=False):
        status = g["cache_status"].astype(str).str.upper()
        hits = int(status.isin(CDN_HITS).sum())
        get_ok = (
            (g["method"].astype("string").str.upper() == "GET")
            & g["status"].astype("Float64").between(200, 299)
            if "method" in g and "status" in g
            else pd.Series(False, index=g.index)
        )
        no_cc = float("nan")
        if "cache_control" in g and g["cache_control"].notna().any():
            no_cc = int((get_ok & g["cache_control"].isna()).sum())
        rows.append(
            {
                "pattern": pattern,
                "requests": len(g),
                "hits": hits,
                "hit_ratio": hits / len(g),
                "outcomes": dict(status.value_counts().items()),
                "bytes": float(pd.to_numeric(g["response_bytes"], errors="coerce").sum())
                if "response_bytes" in g
                else float("nan"),
                "get_ok": int(get_ok.fillna(False).sum()),
                "no_cache_control": no_cc,
            }
        )
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values("requests", ascending=False, kind="stable").reset_index(drop=True)


def static_served(requests: pd.DataFrame) -> pd.DataFrame:
    """Static and media files answered by the application (not by a CDN or proxy cache): per
    path pattern, requests and bytes. A request counts when its path looks static
    (``/static/``, ``/media/``, a file extension) and no cache answered it."""
    cols = ["pattern", "requests", "bytes"]
    if len(requests) == 0:
        return pd.DataFrame(columns=cols)
    paths = _paths(requests)
    static = paths.astype("string").str.contains(_STATIC, na=False)
    if "cache_status" in requests:
        static &= ~requests["cache_status"].astype("string").str.upper().isin(CDN_HITS).fillna(
            False
        )
    df = requests[static.fillna(False).astype(bool)]
    if len(df) == 0:
        return pd.DataFrame(columns=cols)
    df = df.assign(
        _pattern=paths[df.index].map(path_pattern),
        _bytes=pd.to_numeric(df["response_bytes"], errors="coerce")
        if "response_bytes" in df
        else pd.Series(np.nan, index=df.index),
    )
    out = (
        df.groupby("_pattern")
        .agg(requests=("_pattern", "size"), bytes=("_bytes", "sum"))
        .reset_index()
    )
    out = out.rename(columns={"_pattern": "pattern"})
    return out.sort_values("bytes", ascending=False, kind="stable").reset_index(drop=True)[cols]
