"""Figures of the scaling chapter: the capacity curve and the traffic over time.

* :func:`capacity_curve` — throughput against concurrent users: the measured load steps, the
  fitted Universal Scalability Law with its confidence band, the curve after the other
  chapters' fixes (the what-if), the saturation point and the peak; below it, the latency the
  users saw at each step (p50, p95).
* :func:`traffic_rate` — requests per second over the request log's window, with its average
  and its peak.

Both take the frames :func:`auditkit.analysis.scaling.scaling_frames` saved with the audit.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from auditkit.analysis.capacity import USLFit
from auditkit.report.figures import TEMPLATE

__all__ = ["capacity_curve", "traffic_rate"]

_BLUE, _GREY, _GREEN, _RED, _PURPLE = "#2563eb", "#9ca3af", "#16a34a", "#dc2626", "#7c3aed"


def capacity_curve(
    steps: pd.DataFrame, fit: USLFit | None, better: USLFit | None = None
) -> go.Figure:
    """Throughput and latency against concurrent users (see the module docstring)."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.62, 0.38],
        vertical_spacing=0.08,
    )
    trusted = steps[steps["trusted"].astype(bool)]
    left_out = steps[~steps["trusted"].astype(bool)]
    top = float(steps["users"].max())
    if fit is not None and fit.usable:
        end = top * 1.5
        if math.isfinite(fit.n_star):
            end = max(end, min(fit.n_star * 1.3, top * 4))
        n = np.unique(np.r_[np.geomspace(1, end, 160), trusted["users"].to_numpy(float)])
        lo, hi = fit.band(n)
        fig.add_scatter(
            x=np.r_[n, n[::-1]],
            y=np.r_[hi, lo[::-1]],
            fill="toself",
            fillcolor="rgba(37,99,235,0.15)",
            line={"width": 0},
            hoverinfo="skip",
            name=f"{fit.level:.0%} confidence band",
            row=1,
            col=1,
        )
        fig.add_scatter(
            x=n,
            y=fit.predict(n),
            mode="lines",
            line={"color": _BLUE},
            name="model (Universal Scalability Law)",
            hovertemplate="%{x:.0f} users: %{y:.1f} requests/s<extra>model</extra>",
            row=1,
            col=1,
        )
        if better is not None:
            fig.add_scatter(
                x=n,
                y=better.predict(n),
                mode="lines",
                line={"color": _GREEN, "dash": "dash"},
                name="after the fixes of the other chapters",
                hovertemplate="%{x:.0f} users: %{y:.1f} requests/s<extra>what-if</extra>",
                row=1,
                col=1,
            )
        n_sat = fit.peak_rps / fit.lam
        _marker(fig, n_sat, f"saturation ≈ {n_sat:.0f} users", _RED, "left")
        if math.isfinite(fit.n_star) and fit.n_star <= n.max():
            _marker(
                fig,
                fit.n_star,
                f"peak {fit.peak_rps:.1f}/s at {fit.n_star:.0f} users",
                _GREY,
                "right",
            )
    fig.add_scatter(
        x=trusted["users"],
        y=trusted["rps"],
        mode="markers",
        marker={"color": "#111827", "size": 9},
        name="measured (load steps)",
        hovertemplate="%{x:.0f} users: %{y:.1f} requests/s<extra>measured</extra>",
        row=1,
        col=1,
    )
    if len(left_out):
        fig.add_scatter(
            x=left_out["users"],
            y=left_out["rps"],
            mode="markers",
            marker={"color": _GREY, "size": 8, "symbol": "circle-open"},
            name="steps left out (too short or noisy)",
            row=1,
            col=1,
        )
    for col, colour, label in (("p50_ms", _PURPLE, "median"), ("p95_ms", _RED, "95th percentile")):
        if col in trusted and trusted[col].notna().sum() >= 2:
            fig.add_scatter(
                x=trusted["users"],
                y=trusted[col],
                mode="lines+markers",
                line={"color": colour},
                name=f"latency, {label}",
                hovertemplate="%{x:.0f} users: %{y:,.0f} ms<extra>" + label + "</extra>",
                row=2,
                col=1,
            )
    ticks = sorted({int(u) for u in steps["users"]})
    fig.update_layout(
        template=TEMPLATE,
        title="Throughput and latency against concurrent users",
        height=620,
        margin={"l": 70, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.12},
    )
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=[str(t) for t in ticks])
    fig.update_xaxes(title_text="concurrent users (log scale)", row=2, col=1)
    fig.update_yaxes(title_text="throughput (requests/s)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="latency (ms)", rangemode="tozero", row=2, col=1)
    return fig


def _marker(fig: go.Figure, x: float, text: str, colour: str, side: str) -> None:
    """A vertical line on the (log) users axis of the top panel, with its label. Plotly places
    shapes in data units but annotations in log units on a log axis, hence two calls."""
    fig.add_shape(
        type="line",
        x0=x,
        x1=x,
        y0=0,
        y1=1,
        xref="x",
        yref="y domain",
        line={"color": colour, "dash": "dot", "width": 1.5},
    )
    fig.add_annotation(
        x=math.log10(x),
        y=1.0,
        xref="x",
        yref="y domain",
        text=text,
        showarrow=False,
        xanchor="right" if side == "left" else "left",
        yanchor="bottom",
        font={"color": colour, "size": 12},
    )


def traffic_rate(rate: pd.DataFrame, bucket_s: int, mean_rps: float, peak_rps: float) -> go.Figure:
    """Requests per second over time, with the average and the peak."""
    fig = go.Figure()
    fig.add_scatter(
        x=rate["ts"],
        y=rate["rps"],
        mode="lines",
        line={"color": _BLUE, "shape": "hv"},
        name=f"requests/s (per {bucket_s} s)",
    )
    fig.add_hline(
        y=mean_rps,
        line={"color": _GREY, "dash": "dash"},
        annotation_text=f"average {mean_rps:.1f}/s",
        annotation_position="bottom right",
    )
    fig.add_hline(
        y=peak_rps,
        line={"color": _RED, "dash": "dot"},
        annotation_text=f"peak {peak_rps:.1f}/s",
        annotation_position="top right",
    )
    fig.update_layout(
        template=TEMPLATE,
        title="Request rate over time",
        height=360,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        xaxis={"title": {"text": "time (UTC)"}},
        yaxis={"title": {"text": "requests/s"}, "rangemode": "tozero"},
        showlegend=False,
    )
    return fig
