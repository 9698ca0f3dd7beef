"""The caching chapter's frames: hit ratios over time and the frames the chapter displays,
computed once by the audit."""

from __future__ import annotations

from typing import Any

import pandas as pd

from auditkit.analysis.cache.http import CDN_HITS, static_served
from auditkit.analysis.cache.keys import miss_causes
from auditkit.analysis.cache.servers import command_mix, server_rates

__all__ = ["display_frames", "ratio_series"]


def ratio_series(
    ts: pd.Series, hit: pd.Series, group: pd.Series | None = None, *, points: int = 24
) -> pd.DataFrame:
    """Hit ratio over time: the window cut into ``points`` equal bins (per ``group`` when given).

    Columns: ``group``, ``ts`` (the bin's start), ``lookups``, ``hits``, ``hit_ratio``; bins
    without lookups are left out. For cache events (``hit`` of the reads) and CDN outcomes.
    """
    cols = ["group", "ts", "lookups", "hits", "hit_ratio"]
    df = pd.DataFrame(
        {
            "ts": pd.to_datetime(ts, utc=True),
            "hit": hit.astype("boolean"),
            "group": group.astype("string").fillna("(none)") if group is not None else "all",
        }
    ).dropna(subset=["ts", "hit"])
    if len(df) == 0:
        return pd.DataFrame(columns=cols)
    start, end = df["ts"].min(), df["ts"].max()
    span = (end - start) / points if end > start else pd.Timedelta(seconds=1)
    df["bin"] = start + ((df["ts"] - start) // span).clip(upper=points - 1) * span
    out = (
        df.groupby(["group", "bin"])["hit"]
        .agg(lookups="size", hits="sum")
        .reset_index()
        .rename(columns={"bin": "ts"})
    )
    out["hit_ratio"] = out["hits"] / out["lookups"]
    return out[cols]


def display_frames(analysis: Any) -> dict[str, pd.DataFrame]:
    """The caching chapter's frames of an :class:`auditkit.analysis.Analysis`, computed once
    by the audit: server snapshots, rates and summary, the command mix, key families and their
    hit ratio over time, buffer cache tables, CDN outcomes, static files, the funnel."""
    out: dict[str, pd.DataFrame] = {}
    snaps = analysis.cache_snapshots
    if len(snaps):
        out["cache_snapshots"] = snaps
        out["cache_rates"] = server_rates(snaps)
        out["cache_servers"] = analysis.cache_servers
        mix = command_mix(analysis.cache_stats, snaps)
        if len(mix):
            out["cache_commands"] = mix
    families = analysis.cache_families
    if len(families):
        out["cache_families"] = families
        reads = miss_causes(analysis.cache_events)
        if len(reads):
            top = list(families.head(5)["family"])
            r = reads[reads["family"].isin(top)]
            out["cache_family_series"] = ratio_series(r["ts"], r["hit"], r["family"])
    for name, df in analysis.buffer_cache.items():
        out[f"buffer_{name}"] = df.head(50).reset_index(drop=True)
    cdn = analysis.cdn
    if len(cdn):
        out["cdn"] = cdn
        req = analysis.requests
        known = req[req["cache_status"].notna()]
        out["cdn_series"] = ratio_series(
            known["ts"], known["cache_status"].astype(str).str.upper().isin(CDN_HITS)
        )
    static = static_served(analysis.requests)
    if len(static):
        out["static_served"] = static
    fun = analysis.cache_funnel
    if len(fun):
        out["cache_funnel"] = fun
    return out
