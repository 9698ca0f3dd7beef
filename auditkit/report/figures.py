"""Plotly figure builders: one function per chart of the report.

Each takes canonical frames, returns a ``plotly.graph_objects.Figure`` with units in its axis
titles, and leaves styling to the caller (``fig.update_layout(...)`` restyles it). Client text
shown in a chart — statements, endpoints, servers — is redacted and HTML-escaped first:
plotly renders a small subset of HTML in labels and hover text, and escaped text is shown
literally instead.

Example::

    >>> import pandas as pd
    >>> from auditkit import query_profile
    >>> prof = query_profile(pd.DataFrame({"sql": ["SELECT 1", "SELECT 2 FROM t"], "duration_ms": [2.0, 5.0]}))
    >>> statement_time(prof).layout.xaxis.title.text
    'total database time (ms)'
"""

from __future__ import annotations

import textwrap
from html import escape

import pandas as pd
import plotly.graph_objects as go

from auditkit.report.redact import Redactor

__all__ = [
    "TEMPLATE",
    "cache_hit_ratio",
    "endpoint_time",
    "latency_distribution",
    "load_curve",
    "statement_time",
]

#: the plotly template every figure starts from
TEMPLATE = "plotly_white"
_HEIGHT_PER_BAR = 26


def _label(text: object, width: int = 80, lines: int = 6) -> str:
    """Escaped, wrapped hover text (plotly's ``<br>`` is the only markup added)."""
    parts = textwrap.wrap(" ".join(str(text).split()), width) or [""]
    if len(parts) > lines:
        parts = [*parts[:lines], "…"]
    return "<br>".join(escape(p, quote=True) for p in parts)


def _base(title: str, height: int = 420) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        template=TEMPLATE, title=title, height=height, margin={"l": 60, "r": 20, "t": 50, "b": 50}
    )
    return fig


def statement_time(
    profile: pd.DataFrame, *, top: int = 15, redactor: Redactor | None = None
) -> go.Figure:
    """Total database time per statement (horizontal bars, the largest on top).

    Bars are labelled by rank (``#1``); hovering shows the redacted statement, calls and mean.
    """
    red = redactor or Redactor()
    p = profile.head(top).iloc[::-1]
    statement = p["sample_sql"].where(p["sample_sql"].notna(), p["fingerprint"])
    fig = _base("Database time per statement", height=max(300, 80 + _HEIGHT_PER_BAR * len(p)))
    fig.add_bar(
        x=p["total_ms"].astype(float),
        y=[f"#{r}" for r in p["rank"]],
        orientation="h",
        customdata=list(zip(p["calls"].astype(int), p["mean_ms"].astype(float), strict=True)),
        hovertext=[_label(red.sql(s)) for s in statement],
        hovertemplate="%{hovertext}<br>total %{x:,.1f} ms · %{customdata[0]:,} calls · mean %{customdata[1]:,.2f} ms<extra></extra>",
        marker_color="#2563eb",
    )
    fig.update_xaxes(title_text="total database time (ms)")
    fig.update_yaxes(title_text="statement (rank)")
    return fig


def endpoint_time(
    endpoints: pd.DataFrame, *, top: int = 15, redactor: Redactor | None = None
) -> go.Figure:
    """Total database time per endpoint (the endpoint table of :mod:`auditkit.analysis.requests`)."""
    red = redactor or Redactor()
    df = endpoints.sort_values("db_ms", ascending=False).head(top).iloc[::-1]
    fig = _base("Database time per endpoint", height=max(300, 80 + _HEIGHT_PER_BAR * len(df)))
    fig.add_bar(
        x=df["db_ms"].astype(float),
        y=[_label(red.text(e), 60, 1) for e in df["endpoint"]],
        orientation="h",
        customdata=list(
            zip(df["requests"], df["statements_per_request"].astype(float), strict=True)
        ),
        hovertemplate="%{y}<br>%{x:,.1f} ms in %{customdata[0]:,} requests · %{customdata[1]:,.1f} statements/request<extra></extra>",
        marker_color="#7c3aed",
    )
    fig.update_xaxes(title_text="total database time (ms)")
    fig.update_yaxes(title_text="endpoint")
    return fig


def latency_distribution(
    frame: pd.DataFrame,
    *,
    column: str = "duration_ms",
    by: str | None = None,
    top: int = 8,
    what: str = "statement",
    redactor: Redactor | None = None,
) -> go.Figure:
    """The distribution of ``column`` (milliseconds) as a histogram, or box plots per ``by``.

    ``by="endpoint"`` draws one box per endpoint (the ``top`` busiest); without ``by``, one
    histogram of every value on a logarithmic count axis.
    """
    red = redactor or Redactor()
    values = frame.dropna(subset=[column])
    if by and by in values and values[by].notna().any():
        fig = _base(f"{what.capitalize()} latency by {by}")
        busiest = values[by].value_counts().head(top).index
        for key in busiest:
            fig.add_box(
                x=values.loc[values[by] == key, column].astype(float),
                name=_label(red.text(key), 50, 1),
                boxpoints=False,
            )
        fig.update_xaxes(title_text=f"{what} duration (ms)", type="log")
        fig.update_yaxes(title_text=by)
        fig.update_layout(showlegend=False)
        return fig
    fig = _base(f"{what.capitalize()} latency distribution")
    fig.add_histogram(
        x=values[column].astype(float),
        nbinsx=60,
        marker_color="#0891b2",
        hovertemplate="%{x} ms: %{y:,}<extra></extra>",
    )
    fig.update_xaxes(title_text=f"{what} duration (ms)")
    # one label per power of ten: plotly's default minor labels (2 … 9 between decades) read as
    # counts of 2 and 9 where they mean 20 and 90
    fig.update_yaxes(
        title_text=f"{what}s (count, log scale)",
        type="log",
        dtick=1,
        tickformat=",d",
        exponentformat="none",
    )
    return fig


def load_curve(samples: pd.DataFrame, *, endpoint: str = "Aggregated") -> go.Figure:
    """Load-test curve: throughput (requests/s) and p50/p95 latency (ms) against users.

    Uses the ``endpoint`` rows (Locust's ``Aggregated``) when present, else every row. When
    the samples know the number of concurrent users, each load step is one point: the median
    of its intervals (robust to the ramp-up at the start of a step); otherwise the x axis is
    time and every interval is drawn.
    """
    s = samples
    if "endpoint" in s and (s["endpoint"] == endpoint).any():
        s = s[s["endpoint"] == endpoint]
    use_users = "users" in s and s["users"].notna().any()
    if use_users:
        cols = [c for c in ("rps", "p50_ms", "p95_ms", "failures_per_s") if c in s]
        s = s[s["users"] > 0].groupby("users", sort=True)[cols].median().reset_index()
    else:
        s = s.sort_values("ts")
    x = s["users"] if use_users else s["ts"]
    fig = _base("Throughput and latency under load")
    fig.add_scatter(
        x=x, y=s["rps"], name="throughput (requests/s)", mode="lines+markers", line_color="#2563eb"
    )
    for col, colour in (("p50_ms", "#16a34a"), ("p95_ms", "#dc2626")):
        if col in s and s[col].notna().any():
            fig.add_scatter(
                x=x,
                y=s[col],
                name=f"{col[:3]} latency (ms)",
                mode="lines+markers",
                yaxis="y2",
                line_color=colour,
            )
    if "failures_per_s" in s and s["failures_per_s"].fillna(0).gt(0).any():
        fig.add_scatter(
            x=x,
            y=s["failures_per_s"],
            name="failures (1/s)",
            mode="lines",
            line_dash="dot",
            line_color="#6b7280",
        )
    fig.update_layout(
        xaxis={"title": {"text": "concurrent users" if use_users else "time (UTC)"}},
        yaxis={"title": {"text": "throughput (requests/s)"}, "rangemode": "tozero"},
        yaxis2={
            "title": {"text": "latency (ms)"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
        },
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def cache_hit_ratio(
    cache_stats: pd.DataFrame | None = None,
    cache_events: pd.DataFrame | None = None,
    *,
    top: int = 15,
    redactor: Redactor | None = None,
) -> go.Figure:
    """Cache hit ratio (%): per key prefix from cache events, else per server from statistics.

    Statistics use the servers' cumulative hit and miss counters (Redis ``keyspace_hits`` /
    ``keyspace_misses``, memcached ``get_hits`` / ``get_misses``): the ratio at each snapshot
    is over the counters' lifetime.
    """
    red = redactor or Redactor()
    if cache_events is not None and len(cache_events) and cache_events["hit"].notna().any():
        ev = cache_events.dropna(subset=["hit"])
        key = ev["key_prefix"].fillna(ev["key"]).fillna("(no key)")
        g = ev.assign(_k=key, _h=ev["hit"].astype(bool)).groupby("_k")["_h"]
        df = (
            pd.DataFrame({"ratio": g.mean() * 100, "reads": g.size()})
            .sort_values("reads", ascending=False)
            .head(top)
        )
        df = df.iloc[::-1]
        fig = _base("Cache hit ratio per key", height=max(300, 80 + _HEIGHT_PER_BAR * len(df)))
        fig.add_bar(
            x=df["ratio"],
            y=[_label(red.text(k), 60, 1) for k in df.index],
            orientation="h",
            customdata=df["reads"],
            hovertemplate="%{y}<br>%{x:.1f} % hits of %{customdata:,} reads<extra></extra>",
            marker_color="#059669",
        )
        fig.update_xaxes(title_text="hit ratio (%)", range=[0, 100])
        fig.update_yaxes(title_text="key prefix")
        return fig
    fig = _base("Cache hit ratio over time")
    if cache_stats is None or len(cache_stats) == 0:
        return fig
    pairs = (("keyspace_hits", "keyspace_misses"), ("get_hits", "get_misses"))
    for server, rows in cache_stats.groupby("server"):
        for hits_name, misses_name in pairs:
            hits = rows[rows["metric"] == hits_name].set_index("ts")["value"]
            misses = rows[rows["metric"] == misses_name].set_index("ts")["value"]
            if len(hits) and len(misses):
                both = pd.concat({"h": hits, "m": misses}, axis=1).dropna().sort_index()
                total = (both["h"] + both["m"]).where(lambda t: t > 0)
                fig.add_scatter(
                    x=both.index,
                    y=both["h"] / total * 100,
                    mode="lines+markers",
                    name=_label(red.text(server), 40, 1),
                )
    fig.update_xaxes(title_text="time (UTC)")
    fig.update_yaxes(title_text="hit ratio (%)", range=[0, 100])
    return fig
