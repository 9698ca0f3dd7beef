"""Figures and tables of the indexing chapter.

* :func:`table_time` — where statement time goes, per table: a horizontal bar per table,
  stacked by statement kind (select, insert, update, delete). A statement touching several
  tables has its time split evenly between them, so the bars add up to the workload's time.
* :func:`plan_comparisons` — for candidates validated with HypoPG, each statement's plan before
  and with the hypothetical index, side by side (:func:`auditkit.plans.compare_plans`).

They take canonical frames and findings and hold no audit logic; the notebook calls them.

Example::

    >>> import pandas as pd
    >>> from auditkit import query_profile
    >>> prof = query_profile(pd.DataFrame({"sql": ['SELECT 1 FROM "t" WHERE "t"."a" = 1'], "duration_ms": [4.0]}))
    >>> table_time(prof).layout.xaxis.title.text
    'statement time (ms), split evenly between the tables a statement reads or writes'
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

import pandas as pd
import plotly.graph_objects as go

from auditkit.findings import Finding, plural, rank
from auditkit.sql.analyze import WorkloadAnalysis, analyze_workload
from auditkit.sql.fingerprint import Dialect
from auditkit.sql.statement_kind import is_system_relation

__all__ = [
    "plan_comparisons",
    "table_time",
    "table_time_chart",
    "table_time_frame",
]

_TEMPLATE = "plotly_white"
_KINDS = ("select", "insert", "update", "delete", "merge", "other")
_COLORS = {
    "select": "#4c78a8",
    "insert": "#59a14f",
    "update": "#f28e2b",
    "delete": "#e15759",
    "merge": "#b07aa1",
    "other": "#9d9d9d",
}


def table_time_frame(
    stats: pd.DataFrame, *, analysis: WorkloadAnalysis | None = None, dialect: Dialect = "postgres"
) -> pd.DataFrame:
    """Statement time per table and statement kind: table, kind, total_ms, calls, statements.

    Each statement's ``total_ms`` and ``calls`` are split evenly between the tables it touches;
    statements that touch no table (or cannot be parsed) and the system catalogs are left out.
    """
    columns = ["table", "kind", "total_ms", "calls", "statements"]
    if len(stats) == 0:
        return pd.DataFrame(columns=columns)
    wa = analysis or analyze_workload(stats, dialect)
    if len(wa.tables) == 0:
        return pd.DataFrame(columns=columns)
    per = stats.drop_duplicates("fingerprint_id")[["fingerprint_id", "total_ms", "calls"]]
    df = wa.tables[~wa.tables["table"].map(is_system_relation)].merge(
        per, on="fingerprint_id", how="inner"
    )
    n = df.groupby("fingerprint_id")["table"].transform("count")
    df = df.assign(
        total_ms=pd.to_numeric(df["total_ms"], errors="coerce").fillna(0.0) / n,
        calls=pd.to_numeric(df["calls"], errors="coerce").fillna(0.0) / n,
        kind=df["kind"].where(df["kind"].isin(_KINDS), "other"),
    )
    out = df.groupby(["table", "kind"], as_index=False).agg(
        total_ms=("total_ms", "sum"),
        calls=("calls", "sum"),
        statements=("fingerprint_id", "nunique"),
    )
    return out.sort_values("total_ms", ascending=False, kind="stable").reset_index(drop=True)[
        columns
    ]


def table_time(
    stats: pd.DataFrame,
    *,
    top: int = 15,
    analysis: WorkloadAnalysis | None = None,
    dialect: Dialect = "postgres",
) -> go.Figure:
    """Horizontal stacked bars: statement time per table (the ``top`` tables), by statement kind."""
    return table_time_chart(table_time_frame(stats, analysis=analysis, dialect=dialect), top=top)


def table_time_chart(data: pd.DataFrame, *, top: int = 15) -> go.Figure:
    """:func:`table_time` from a :func:`table_time_frame` computed before."""
    fig = go.Figure()
    title = "Where statement time goes, per table"
    order = (
        data.groupby("table")["total_ms"]
        .sum()
        .sort_values(ascending=False)
        .head(top)
        .index.tolist()
        if len(data)
        else []
    )
    for kind in _KINDS:
        part = data[(data["kind"] == kind) & data["table"].isin(order)]
        if len(part) == 0:
            continue
        fig.add_trace(
            go.Bar(
                y=[escape(str(t)) for t in part["table"]],
                x=part["total_ms"],
                orientation="h",
                name=kind,
                marker_color=_COLORS[kind],
                customdata=[
                    (plural(int(c), "call"), plural(int(n), "statement"))
                    for c, n in zip(part["calls"], part["statements"], strict=True)
                ],
                hovertemplate="%{y}: %{x:,.0f} ms<br>"
                + kind
                + ": %{customdata[1]}, %{customdata[0]}<extra></extra>",
            )
        )
    fig.update_layout(
        template=_TEMPLATE,
        title=title,
        barmode="stack",
        height=max(300, 80 + 26 * len(order)),
        margin={"l": 160, "r": 20, "t": 50, "b": 50},
        legend_title_text="statement",
        yaxis={
            "categoryorder": "array",
            "categoryarray": [escape(str(t)) for t in reversed(order)],
        },
    )
    fig.update_xaxes(
        title_text="statement time (ms), split evenly between the tables a statement reads or writes"
    )
    return fig


def plan_comparisons(findings: Iterable[Finding]) -> pd.DataFrame | None:
    """Before/after plan comparison of every statement a validated candidate was planned for.

    One block of :func:`auditkit.plans.compare_plans` rows per statement, with the candidate
    (``index``) and the statement (``fingerprint_id``) in front; None when nothing was validated.
    """
    from auditkit.checks.indexes import validation_plans
    from auditkit.plans import COMPARE_COLUMNS, compare_plans

    parts = []
    for f in rank(x for x in findings if x.check == "missing_index"):
        for fid, before, after in validation_plans(f):
            cmp = compare_plans(before, after)
            cmp.insert(0, "fingerprint_id", fid)
            cmp.insert(0, "index", f.subject.index)
            parts.append(cmp)
    if not parts:
        return None
    return pd.concat(parts, ignore_index=True)[["index", "fingerprint_id", *COMPARE_COLUMNS]]
