"""The indexing chapter's views: time per table, indexes to add and to drop, migrations, the live database.

A mixin over :class:`~auditkit.report.chapter_base.ChapterBase`; pure display, like every
chapter view.
"""

from __future__ import annotations

from html import escape

import pandas as pd
import plotly.graph_objects as go

from auditkit.findings import Severity, plural, rank
from auditkit.report.chapter_base import ChapterBase, _block, _note
from auditkit.report.html import HtmlBlock
from auditkit.report.redact import Redactor
from auditkit.report.tables import Col, table


class IndexingViews(ChapterBase):
    """The indexing chapter's views: time per table, indexes to add and to drop, migrations, the live database."""

    # -- indexing --------------------------------------------------------------------------------
    def table_time_figure(self) -> go.Figure | HtmlBlock:
        """Where statement time goes, per table."""
        from auditkit.report.figures_indexing import table_time_chart

        tt = self.frame("table_time")
        if tt["table"].nunique() < 2 if len(tt) else True:
            return _note("Too few tables were read to chart where the time goes.", "missing")
        return table_time_chart(tt)

    def candidates_table(self) -> HtmlBlock:
        """The index candidates in one table: keys, time helped, evidence, and the SQL."""
        found = self.findings("missing_index")
        if not found:
            return self.show("missing_index")
        rows = []
        for f in rank(found):
            g = self.redactor.finding(f)
            m = g.metrics
            rows.append(
                {
                    "severity": str(g.severity),
                    "table": g.subject.table,
                    "keys": m.get("keys"),
                    "statements": m.get("statements"),
                    "time": m.get("total_ms"),
                    "saves": g.impact.db_share if g.impact else None,
                    "size": m.get("estimated_size_bytes"),
                    "evidence": str(g.evidence.strength),
                    "sql": g.recommendation.sql if g.recommendation else None,
                }
            )
        return table(
            pd.DataFrame(rows),
            [
                Col("severity", "severity"),
                Col("table", "table"),
                Col("keys", "keys"),
                Col("statements", "statements", "count"),
                Col("time", "their time", "ms"),
                Col("saves", "saves (share of all)", "percent"),
                Col("size", "estimated size", "bytes"),
                Col("evidence", "evidence"),
                Col("sql", "SQL"),
            ],
            caption="Indexes to add",
            redactor=Redactor(True, self.redactor.secrets),
        )

    def plan_comparisons(self) -> HtmlBlock | None:
        """Plans before and with each validated candidate (nothing when none was validated)."""
        from auditkit.report.figures_indexing import plan_comparisons

        df = plan_comparisons(self.findings("missing_index"))
        if df is None or len(df) == 0:
            return None
        return table(
            df,
            [Col(c, c.replace("_", " "), "text") for c in df.columns],
            caption="Plans before and with the hypothetical index",
            redactor=self.redactor,
        )

    def drops_table(self) -> HtmlBlock:
        """Indexes to drop (unused or duplicate), largest first."""
        found = [
            f
            for f in self.findings("unused_index", "duplicate_index")
            if f.severity > Severity.INFO
        ]
        if not found:
            return self.show("unused_index", "duplicate_index")
        rows = [
            {
                "table": f.subject.table,
                "index": f.subject.index,
                "why": "unused"
                if f.check == "unused_index"
                else f"{f.subject.expression} of {f.metrics.get('kept_index')}",
                "size": f.metrics.get("size_bytes"),
                "scans": f.metrics.get("idx_scan"),
                "sql": f.recommendation.sql if f.recommendation else None,
            }
            for f in sorted(
                found,
                key=lambda f: (-int(f.severity), -float(f.metrics.get("size_bytes") or 0.0)),
            )
        ]
        return table(
            pd.DataFrame(rows),
            [
                Col("table", "table"),
                Col("index", "index"),
                Col("why", "why"),
                Col("size", "size", "bytes"),
                Col("scans", "scans", "count"),
                Col("sql", "SQL"),
            ],
            caption="Indexes to drop",
            redactor=self.redactor,
        )

    def index_table(self, top: int = 30) -> HtmlBlock | None:
        """Indexes with their size and scans since the statistics reset (when exported)."""
        idx = self.frame("indexes")
        if len(idx) == 0 or idx["size_bytes"].isna().all():
            return None
        df = idx.dropna(subset=["size_bytes"]).sort_values("size_bytes", ascending=False)
        html = (
            '<h3 id="all-indexes">Every index, by size</h3>'
            + table(
                df,
                [
                    Col("table", "table"),
                    Col("index", "index"),
                    Col("columns", "columns"),
                    Col("size_bytes", "size", "bytes"),
                    Col("idx_scan", "scans", "count"),
                ],
                redactor=self.redactor,
                limit=top,
            ).html
        )
        return _block(html, "indexes")

    def migrations(self) -> HtmlBlock:
        """One migration per app holding every index change of this chapter."""
        files = self.audit.migrations
        if not files:
            return _note("No index change to migrate.")
        parts = []
        for m in files:
            where = (
                f"Save as {m.path}."
                if m.path
                else "Create the file as the comment at its top says."
            )
            parts.append(
                f'<h3 id="migration-{escape(m.app_label)}">App {escape(m.app_label)}: '
                f"{plural(m.operations, 'operation')}</h3><p>{escape(where)}</p>"
                f"<pre><code>{escape(self.redactor.text(m.text) if not self.show_literals else m.text)}</code></pre>"
            )
        return _block("".join(parts), f"{len(files)} migrations")

    def live_database(self) -> HtmlBlock:
        """Whether candidates were validated against a live database (by variable name only)."""
        v = self.audit.validation
        if v and self.dsn_env:
            if v.startswith("not validated"):
                return _note(
                    f"A live database is configured through ${self.dsn_env}, but candidates were "
                    f"{v}.",
                    "warning",
                )
            return _note(
                f"Candidates were re-planned against the live database configured through "
                f"${self.dsn_env}: {v}."
            )
        if self.dsn_env:
            return _note(
                f"No live database was used: set ${self.dsn_env} to validate candidates against "
                "the planner (read-only, with hypothetical indexes)."
            )
        return _note("No live database was used; the advice rests on the files provided.")
