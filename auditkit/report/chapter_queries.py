"""The queries chapter's views: the statement profile, latencies and database time per endpoint.

A mixin over :class:`~auditkit.report.chapter_base.ChapterBase`; pure display, like every
chapter view.
"""

from __future__ import annotations

import plotly.graph_objects as go

from auditkit.report import figures
from auditkit.report.chapter_base import ChapterBase, _note
from auditkit.report.html import HtmlBlock
from auditkit.report.tables import Col, table


class QueriesViews(ChapterBase):
    """The queries chapter's views: the statement profile, latencies and database time per endpoint."""

    # -- queries ---------------------------------------------------------------------------------
    def profile_table(self, top: int = 20) -> HtmlBlock:
        """The top statements by total time."""
        prof = self.frame("profile")
        if len(prof) == 0:
            return _note("No statement was timed in the files provided.", "missing")
        p = prof.head(top).copy()
        p["statement"] = p["sample_sql"].where(p["sample_sql"].notna(), p["fingerprint"])
        total = float(self.audit.workload.get("db_ms") or prof["total_ms"].sum())
        p["share_of_all"] = p["total_ms"] / total if total else None
        return table(
            p,
            [
                Col("rank", "#", "count"),
                Col("statement", "statement", "sql"),
                Col("calls", "executions", "count"),
                Col("total_ms", "total", "ms"),
                Col("share_of_all", "share of all", "percent"),
                Col("mean_ms", "mean", "ms"),
                Col("p95_ms", "95th percentile", "ms"),
                Col("max_ms", "slowest", "ms"),
            ],
            caption=f"The {len(p)} statements that take the most database time",
            redactor=self.redactor,
        )

    def statement_time_figure(self, top: int = 15) -> go.Figure | HtmlBlock:
        """Bar chart of database time per statement."""
        prof = self.frame("profile")
        if len(prof) < 2:
            return _note("Too few statements were timed to chart.", "missing")
        return figures.statement_time(prof, top=top, redactor=self.redactor)

    def latency_figure(self) -> go.Figure | HtmlBlock:
        """Histogram of statement durations."""
        d = self.frame("durations")
        if len(d) < 10:
            return _note(
                "The inputs time statements only in aggregate (no individual executions), so their "
                "distribution cannot be drawn.",
                "missing",
            )
        return figures.latency_distribution(d, redactor=self.redactor)

    def endpoint_table(self, top: int = 20) -> HtmlBlock:
        """Database time per endpoint (only when the sources tie statements to endpoints)."""
        ep = self.frame("endpoints")
        if len(ep) == 0 or ep["endpoint"].eq("(unknown endpoint)").all():
            return _note(
                "No file ties statements to the pages that issued them (request ids or traces), so "
                "database time per page cannot be shown.",
                "missing",
            )
        cols = [
            Col("endpoint", "endpoint"),
            Col("requests", "requests", "count"),
            Col("statements_per_request", "statements / request", "number"),
            Col("db_ms_per_request", "DB time / request", "ms"),
            Col("db_ms", "DB time in all", "ms"),
        ]
        if ep["response_p50_ms"].notna().any():
            cols += [
                Col("response_p50_ms", "response time (median)", "ms"),
                Col("db_share_of_response", "share in the database", "percent"),
            ]
        return table(
            ep, cols, caption="Database time per endpoint", redactor=self.redactor, limit=top
        )

    def endpoint_time_figure(self, top: int = 15) -> go.Figure | None:
        """Bar chart of database time per endpoint (nothing without endpoints)."""
        ep = self.frame("endpoints")
        if len(ep) < 2:
            return None
        return figures.endpoint_time(ep, top=top, redactor=self.redactor)
