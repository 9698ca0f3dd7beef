"""Work to move out of the request, beyond background tasks: async views and a CDN.

The background-task check (:func:`auditkit.checks.capacity.background_task_candidates`) finds
requests that wait on e-mail or outbound calls. :func:`work_to_move` adds, on evidence only:

* **async views** — endpoints whose requests wait on outbound HTTP (``http_ms``) long enough
  and often enough that several such waits overlap (Little's law: rate × wait ≥
  ``min_concurrent_waits``). A synchronous worker thread is held for each; an ``async def``
  view awaiting an async client (``httpx.AsyncClient``) under an ASGI server is not;
* **a CDN** — static and media files (``/static/``, ``/media/`` or the paths the deployment
  names as ``static_url``/``media_url``) served by the application: every byte passes through
  a worker that a CDN or the web server in front would spare.

The result is a frame: ``what``, ``where``, ``evidence`` (in words, with the numbers) and
``change`` — the chapter shows it as is.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["WORK_COLUMNS", "work_to_move"]

WORK_COLUMNS = ["what", "where", "evidence", "change"]


def _paths(requests: pd.DataFrame) -> pd.Series:
    for col in ("path", "endpoint"):
        if col in requests and requests[col].notna().any():
            return requests[col].astype("string")
    return pd.Series(pd.NA, index=requests.index, dtype="string")


def work_to_move(
    requests: pd.DataFrame,
    deployment: dict[str, Any] | None = None,
    *,
    min_wait_ms: float = 100.0,
    min_concurrent_waits: float = 1.0,
) -> pd.DataFrame:
    """Async-view and CDN candidates in ``requests`` (see the module docstring)."""
    rows: list[dict[str, str]] = []
    if len(requests) == 0:
        return pd.DataFrame(columns=WORK_COLUMNS)
    dep = deployment or {}
    window = (
        (requests["ts"].max() - requests["ts"].min()).total_seconds()
        if "ts" in requests and requests["ts"].notna().sum() > 1
        else 0.0
    )
    if "http_ms" in requests and requests["http_ms"].notna().any() and window > 0:
        df = requests.assign(endpoint=requests["endpoint"].astype("string"))
        for endpoint, g in df.groupby("endpoint"):
            wait = pd.to_numeric(g["http_ms"], errors="coerce").dropna()
            if len(wait) == 0 or float(wait.median()) < min_wait_ms:
                continue
            overlap = len(g) / window * float(wait.mean()) / 1000.0
            if overlap < min_concurrent_waits:
                continue
            rows.append(
                {
                    "what": "async view",
                    "where": str(endpoint),
                    "evidence": (
                        f"{len(g):,} requests wait {float(wait.median()):.0f} ms (median) on "
                        f"outbound HTTP; {overlap:.1f} such waits overlap on average (Little's law)"
                    ),
                    "change": (
                        "an async def view awaiting an async client (httpx.AsyncClient) under an "
                        "ASGI server (uvicorn, daphne): the wait no longer holds a worker thread"
                    ),
                }
            )
    paths = _paths(requests)
    prefixes = [
        str(p) for p in (dep.get("static_url", "/static/"), dep.get("media_url", "/media/")) if p
    ]
    static = paths.str.startswith(tuple(prefixes)).fillna(False)
    if static.sum() > 0:
        size_col = next(
            (
                c
                for c in ("response_bytes", "size_bytes")
                if c in requests and requests[c].notna().any()
            ),
            None,
        )
        total = (
            float(pd.to_numeric(requests.loc[static, size_col], errors="coerce").sum())
            if size_col
            else None
        )
        share = float(static.mean())
        rows.append(
            {
                "what": "CDN",
                "where": ", ".join(prefixes),
                "evidence": (
                    f"{int(static.sum()):,} requests ({share:.0%} of all) for static or media files "
                    "reach the application" + (f", {total / 1e6:,.1f} MB in all" if total else "")
                ),
                "change": (
                    "serve them from a CDN (or the web server in front), with hashed names "
                    "(ManifestStaticFilesStorage) and long cache lifetimes"
                ),
            }
        )
    return pd.DataFrame(rows, columns=WORK_COLUMNS)
