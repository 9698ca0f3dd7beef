"""Figures of the caching chapter: plotly builders over the frames the audit computed.

Each builder draws a frame of :func:`auditkit.analysis.cache.display_frames` as it is — no
ratio or rate is computed here. A series is drawn only when it has enough points; the chapter
shows a table or a sentence otherwise.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from auditkit.report.figures import _HEIGHT_PER_BAR, _base, _label
from auditkit.report.redact import Redactor

__all__ = ["key_families_chart", "ratio_over_time", "server_rates_chart"]

_CAUSES = (
    ("hits", "hits", "#059669"),
    ("miss_first_read", "miss: first read", "#f59e0b"),
    ("miss_expired", "miss: expired", "#d97706"),
    ("miss_evicted", "miss: evicted", "#dc2626"),
    ("miss_deleted", "miss: deleted", "#7c3aed"),
)
_RATES = (
    ("hits_per_s", "hits/s", "solid"),
    ("misses_per_s", "misses/s", "dash"),
    ("evictions_per_s", "evictions/s", "dot"),
    ("expirations_per_s", "expirations/s", "dashdot"),
)


def _gapped(df: pd.DataFrame, column: str) -> tuple[list[object], list[object]]:
    """x and y of ``df`` (one instance) with a gap between segments: no line across a restart."""
    xs: list[object] = []
    ys: list[object] = []
    for _seg, g in df.groupby("segment", sort=True):
        if xs:
            xs.append(None)
            ys.append(None)
        xs.extend(g["ts"])
        ys.extend(g[column])
    return xs, ys


def server_rates_chart(
    rates: pd.DataFrame, snapshots: pd.DataFrame, *, redactor: Redactor | None = None
) -> go.Figure:
    """Per cache server instance: hit ratio between snapshots (top) and hits, misses, evictions
    and expirations per second (bottom), each point the interval ending there; restarts and
    statistics resets are dashed vertical lines, and no line crosses one."""
    red = redactor or Redactor()
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("hit ratio between snapshots (%)", "per second"),
    )
    for instance, g in rates.groupby("instance", sort=False):
        g = g.sort_values("ts")
        name = _label(red.text(instance), 40, 1)
        x, y = _gapped(g.assign(pct=g["hit_ratio"] * 100), "pct")
        fig.add_scatter(x=x, y=y, mode="lines+markers", name=f"{name} hit ratio", row=1, col=1)
        for col, label, dash in _RATES:
            if g[col].notna().any() and (g[col].fillna(0) > 0).any():
                x, y = _gapped(g, col)
                fig.add_scatter(
                    x=x,
                    y=y,
                    mode="lines+markers",
                    name=f"{name} {label}",
                    line={"dash": dash},
                    row=2,
                    col=1,
                )
    resets = snapshots[snapshots["reset"].astype("string").fillna("") != ""]
    for ts, reset in zip(resets["ts"], resets["reset"], strict=True):
        if isinstance(ts, pd.Timestamp):
            fig.add_vline(x=ts, line_dash="dash", line_color="#6b7280")
            fig.add_annotation(
                x=ts, y=1.02, yref="paper", text=str(reset), showarrow=False, font={"size": 11}
            )
    fig.update_layout(
        title="Cache servers over time",
        height=560,
        margin={"l": 60, "r": 20, "t": 70, "b": 40},
        legend={"orientation": "h", "y": -0.12},
        template="plotly_white",
    )
    fig.update_yaxes(range=[0, 100], row=1, col=1)
    fig.update_xaxes(title_text="time (UTC)", row=2, col=1)
    return fig


def key_families_chart(
    families: pd.DataFrame, *, top: int = 15, redactor: Redactor | None = None
) -> go.Figure:
    """Reads per key family, split into hits and misses by cause, busiest families first."""
    red = redactor or Redactor()
    df = families.sort_values("reads", ascending=False).head(top).iloc[::-1]
    fig = _base("Cache reads per key family", height=max(300, 90 + _HEIGHT_PER_BAR * len(df)))
    labels = [_label(red.text(f), 60, 1) for f in df["family"]]
    for col, label, colour in _CAUSES:
        if col in df and df[col].fillna(0).sum() > 0:
            fig.add_bar(
                x=df[col].fillna(0),
                y=labels,
                orientation="h",
                name=label,
                marker_color=colour,
                hovertemplate="%{y}<br>%{x:,} " + label + "<extra></extra>",
            )
    fig.update_layout(barmode="stack", legend={"orientation": "h", "y": -0.15})
    fig.update_xaxes(title_text="reads")
    fig.update_yaxes(title_text="key family")
    return fig


def ratio_over_time(
    series: pd.DataFrame, *, title: str, redactor: Redactor | None = None
) -> go.Figure:
    """Hit ratio per time bin, one line per group (a key family, or the CDN as a whole)."""
    red = redactor or Redactor()
    fig = _base(title)
    for group, g in series.groupby("group", sort=False):
        g = g.sort_values("ts")
        fig.add_scatter(
            x=g["ts"],
            y=g["hit_ratio"] * 100,
            mode="lines+markers",
            name=_label(red.text(group), 40, 1),
            customdata=g["lookups"],
            hovertemplate="%{x}<br>%{y:.0f} % of %{customdata:,} lookups<extra></extra>",
        )
    fig.update_xaxes(title_text="time (UTC)")
    fig.update_yaxes(title_text="hit ratio (%)", range=[0, 100])
    return fig
