"""What the audit notebooks call: one chapter object per notebook, so cells stay one-liners.

A notebook's parameters cell sets plain values; its next cell builds the chapter::

    ch = chapter("queries", data_dir, audit_dir=audit_dir, client_name=client_name,
                 presets=presets, show_literals=show_literals, link_suffix=link_suffix,
                 dsn_env=dsn_env)

and every later cell is one call: ``ch.inputs()``, ``ch.profile_table()``,
``ch.statement_time_figure()``, ``ch.show("n_plus_one")``… The chapter *displays* an
:class:`~auditkit.auditing.Audit`: the one the run computed and saved (``audit_dir``, set by the
runner), or — in JupyterLab, without ``audit_dir`` — one computed here from ``data_dir``
with the same library call. It computes no finding of its own, so a page and ``findings.json``
always agree. Everything displayed passes the run's :class:`~auditkit.report.redact.Redactor`.

A display method returns ``None`` (which shows nothing) only where the notebook has no heading
of its own for it; under a heading, a method always says something — the result, or in one
sentence why there is none — so no heading stands empty.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go

from auditkit.checks import REGISTRY
from auditkit.config import AuditConfig, load_config
from auditkit.errors import ConfigError
from auditkit.findings import CHECK_NAMES, Finding, Severity, plural, rank
from auditkit.report import figures
from auditkit.report.html import (
    HtmlBlock,
    actions_html,
    findings_html,
    note_html,
    severity_badge,
    summary_html,
)
from auditkit.report.redact import Redactor
from auditkit.report.render import use_report_renderer
from auditkit.report.tables import Col, plain_number, table

if TYPE_CHECKING:
    from auditkit.auditing import Audit
    from auditkit.compare import Comparison

__all__ = ["CHAPTER_INFO", "Chapter", "ChapterInfo", "Overview", "chapter", "resolve_data_dir"]

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent
#: the repository's notebooks folder (relative data folders are also tried from here)
NOTEBOOKS_DIR = _PACKAGE_ROOT / "notebooks"
#: fewest points a chart over time or load needs to mean something
MIN_POINTS = 3


@dataclass(frozen=True)
class ChapterInfo:
    """A chapter: its notebook, title, and what its inputs are called when missing."""

    name: str
    notebook: str
    title: str
    needs: str


CHAPTER_INFO: dict[str, ChapterInfo] = {
    c.name: c
    for c in (
        ChapterInfo("overview", "00_overview", "Executive summary", "any input file"),
        ChapterInfo(
            "queries",
            "10_queries",
            "Queries",
            "a query log (Django, PostgreSQL or MySQL) or a pg_stat_statements export",
        ),
        ChapterInfo(
            "indexing",
            "20_indexing",
            "Indexing",
            "timed statements, EXPLAIN plans, or index and table statistics",
        ),
        ChapterInfo(
            "caching",
            "30_caching",
            "Caching",
            "cache statistics (Redis or memcached), cache events, or statements with parameters",
        ),
        ChapterInfo(
            "scaling",
            "40_scaling",
            "Scaling",
            "a load test, request timings, or the server's connection settings",
        ),
    )
}

#: how a threshold family reads, from its values
_THRESHOLDS: dict[str, str] = {
    "slow_query": (
        "A statement counts as slow when it averages at least {min_mean_ms:g} ms per execution"
        " or takes at least {min_share:.0%} of all database time (and {min_share_ms:g} ms in"
        " all); at most {top} are listed."
    ),
    "n_plus_one": (
        "A loop is reported when one statement runs at least {min_repeats} times in a request;"
        " a read repeated with the same values at least {duplicate_min_repeats} times is a"
        " duplicate."
    ),
    "index": (
        "Candidates come from statements run at least {min_calls} times on tables of at least"
        " {min_table_rows:,} rows; an index unused means at most {unused_max_scans} scans in the"
        " statistics window; a hypothetical index must cut the planner's cost by"
        " {min_cost_reduction:.0%} to be confirmed."
    ),
    "plan": (
        "Plan nodes are flagged from {time_share[0]:.0%} of the plan's time, row estimates off by"
        " {misestimate[0]:g}× or more, filters discarding {rows_removed[0]:.0%} of the rows read,"
        " and sequential scans of {seq_scan_rows[0]:,} rows or more."
    ),
    "cache": (
        "A cache should answer at least {min_hit_ratio:.0%} of lookups (PostgreSQL's buffer cache"
        " {pg_buffer_min_hit_ratio:.0%}); a read is worth caching when it repeats with the same"
        " values at least {candidate_min_calls} times, costs {candidate_min_mean_ms:g} ms or more,"
        " and caching it for {candidate_ttl_s:g} s saves {candidate_min_share:.0%} of database"
        " time or more."
    ),
    "capacity": (
        "Latency degrades at the first load step whose 95th percentile reaches"
        " {p95_degradation:g}× that of the first step, or where more than {max_failure_rate:.0%}"
        " of requests fail; steps count after {step_warmup_s:g} s of warm-up when {step_min_s:g} s"
        " or more remain; plans keep {headroom:.0%} of the model's peak and target the observed"
        " peak × {growth:g}."
    ),
}


def resolve_data_dir(data_dir: str | Path) -> Path:
    """The client folder ``data_dir`` names, wherever the notebook runs from.

    An absolute path is taken as is. A relative one is tried from the working directory
    (papermill run from anywhere), then from the repository's ``notebooks/`` folder (the
    default ``../data/sample`` in JupyterLab), then from the repository root.
    """
    p = Path(data_dir).expanduser()
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, NOTEBOOKS_DIR / p, _PACKAGE_ROOT / p]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    raise ConfigError(
        f"client folder {str(data_dir)!r} not found",
        hint="pass data_dir= the folder of client files",
    )


def _block(html: str, text: str = "") -> HtmlBlock:
    return HtmlBlock(html, text)


def _note(text: str, kind: str = "info") -> HtmlBlock:
    return HtmlBlock(note_html(text, kind), text)


class Chapter:
    """One chapter of the audit as a notebook drives it. Build it with :func:`chapter`."""

    def __init__(
        self,
        name: str,
        data_dir: str | Path | None = None,
        *,
        audit_dir: str | Path | None = None,
        audit: Audit | None = None,
        client_name: str | None = None,
        presets: Mapping[str, str] | None = None,
        show_literals: bool = False,
        link_suffix: str = ".ipynb",
        dsn_env: str | None = None,
    ) -> None:
        if name not in CHAPTER_INFO:
            raise ConfigError(
                f"unknown chapter {name!r}", hint=f"chapters: {', '.join(CHAPTER_INFO)}"
            )
        self.info = CHAPTER_INFO[name]
        self.name = name
        self.audit_dir = Path(audit_dir) if audit_dir else None
        self.data_dir = (
            resolve_data_dir(data_dir) if data_dir and not audit_dir and audit is None else None
        )
        self.client_name = client_name
        base = load_config(self.data_dir) if self.data_dir else AuditConfig()
        self.config: AuditConfig = base.with_presets(**dict(presets or {}))
        self.show_literals = bool(show_literals)
        self.link_suffix = link_suffix
        self.dsn_env = dsn_env
        self.redactor = Redactor.from_env(self.show_literals, [dsn_env] if dsn_env else [])
        self._shown: set[str] = set()
        if audit is not None:
            self.__dict__["audit"] = audit

    def __repr__(self) -> str:
        return f"<Chapter {self.name}>"

    # -- the audit -------------------------------------------------------------------------------
    @cached_property
    def audit(self) -> Audit:
        """The audit this chapter displays: the run's, or computed here from ``data_dir``."""
        from auditkit.auditing import Audit, audit
        from auditkit.client import load_client

        if self.audit_dir is not None:
            return Audit.load(self.audit_dir)
        if self.data_dir is None:
            raise ConfigError("a chapter needs data_dir= or audit_dir=")
        client = load_client(self.data_dir, self.config, name=self.client_name)
        return audit(client, self.config, dsn=self.live_dsn())

    def live_dsn(self) -> str | None:
        """The DSN from the environment variable ``dsn_env`` names (never displayed)."""
        return os.environ.get(self.dsn_env) if self.dsn_env else None

    def frame(self, name: str) -> pd.DataFrame:
        """A derived frame of the audit (empty when the inputs did not give it)."""
        return self.audit.frames.get(name, pd.DataFrame())

    def findings(self, *checks: str) -> list[Finding]:
        """This chapter's findings (only those of ``checks`` when given; ``plan_*`` for every
        plan check)."""
        return [f for f in self.audit.chapter(self.name) if not checks or _matches(f.check, checks)]

    def link(self, chapter: str) -> str:
        """The page of ``chapter`` as seen from this one ('' for this very page)."""
        if chapter == self.name:
            return ""
        return CHAPTER_INFO[chapter].notebook + self.link_suffix

    @property
    def _links(self) -> dict[str, str]:
        return {name: self.link(name) for name in CHAPTER_INFO}

    # -- common one-liners -----------------------------------------------------------------------
    def inputs(self) -> HtmlBlock:
        """What this chapter rests on, and what it could not do for want of data."""
        a = self.audit
        gaps = a.chapter_gaps(self.name)
        ran = [
            s for s in REGISTRY if s.chapter == self.name and s.name not in {g.check for g in gaps}
        ]
        parts = []
        if self.name in ("queries", "indexing") and a.notes:
            parts.append(note_html(self.redactor.text(a.notes[0])))
        if not ran:
            parts.append(
                note_html(
                    f"No {self.info.needs} was provided, so this chapter has nothing to report.",
                    "missing",
                )
            )
        for g in gaps:
            name = CHECK_NAMES.get(g.check, g.check)
            how = f" {g.how}" if g.how else ""
            parts.append(note_html(f"{name}: not measured — it needs {g.needs}.{how}", "missing"))
        html = "".join(parts) or note_html("Every check of this chapter ran.")
        return _block(html, re.sub(r"<[^>]+>", " ", html).strip())

    def thresholds(self, family: str) -> HtmlBlock:
        """The thresholds the audit used for ``family``, in a sentence, with their preset."""
        used = self.audit.thresholds.get(family)
        values = used["values"] if used else self.config.thresholds(family)
        preset = used["preset"] if used else self.config.preset(family)
        sentence = threshold_words(_THRESHOLDS.get(family, "").format(**values))
        if family == "n_plus_one" and values.get("min_total_ms"):
            sentence += f" The repeats must add up to {values['min_total_ms']:g} ms or more."
        return _note(f"{sentence} (Preset: {preset}.)")

    def show(self, *checks: str, empty: str | None = None) -> HtmlBlock:
        """The findings of ``checks`` as cards, or a sentence saying none was found."""
        self._shown.update(checks or {"*"})
        found = self.findings(*checks)
        if not found:
            names = ", ".join(CHECK_NAMES.get(c, c).lower() for c in checks if not c.endswith("*"))
            text = empty or f"Nothing to report: the data provided shows no {names or 'problem'}."
            if any(g.check in checks for g in self.audit.chapter_gaps(self.name)):
                text = "Not measured: the inputs this needs were not provided (see above)."
            return _note(text)
        return _block(findings_html(found, redactor=self.redactor), f"{len(found)} findings")

    def other_findings(self) -> HtmlBlock | None:
        """Findings no earlier section showed, under a heading of their own (nothing when none)."""
        if "*" in self._shown:
            return None
        found = [f for f in self.findings() if not _matches(f.check, tuple(self._shown))]
        if not found:
            return None
        html = '<h2 id="other-findings">Other findings</h2>' + findings_html(
            found, redactor=self.redactor
        )
        return _block(html, f"{len(found)} findings")

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

    # -- caching and scaling -----------------------------------------------------------------------
    def cache_hit_figure(self) -> go.Figure | HtmlBlock:
        """The cache servers over time (hit ratio and rates, restarts marked), or the reason
        there is no series to draw."""
        return self.cache_rates_figure()

    def cache_funnel_table(self, top: int = 20) -> HtmlBlock:
        """Per endpoint: what the CDN, the Django cache and the buffer cache absorb, and where
        the time goes when they do not."""
        fun = self.frame("cache_funnel")
        if len(fun) == 0:
            return _note(
                "No requests, cache operations or statements tied to endpoints were provided: "
                "the funnel per endpoint needs at least one of them.",
                "missing",
            )
        cols = [Col("endpoint", "endpoint"), Col("requests", "requests", "count")]
        for col, label, kind in (
            ("cdn_hit_ratio", "CDN / proxy hits", "percent"),
            ("cache_reads", "Django cache reads", "count"),
            ("cache_hit_ratio", "Django cache hits", "percent"),
            ("buffer_hit_ratio", "buffer cache hits", "percent"),
            ("response_ms", "response (median)", "ms"),
            ("db_ms", "database (median)", "ms"),
            ("cache_ms", "cache (median)", "ms"),
            ("other_ms", "the rest (median)", "ms"),
        ):
            if col in fun and fun[col].notna().any():
                cols.append(Col(col, label, kind))
        return table(
            fun, cols, caption="The funnel per endpoint", redactor=self.redactor, limit=top
        )

    def cache_servers_table(self) -> HtmlBlock:
        """Per cache server: hit ratio over the window, restarts, evictions, memory, policy."""
        servers = self.frame("cache_servers")
        if len(servers) == 0:
            return _note(
                "No cache statistics (Redis INFO, memcached stats) were provided.", "missing"
            )
        df = servers.assign(
            restarts_resets=servers["restarts"].fillna(0) + servers["resets"].fillna(0)
        )
        return table(
            df,
            [
                Col("instance", "server"),
                Col("engine", "engine"),
                Col("snapshots", "snapshots", "count"),
                Col("basis", "counted"),
                Col("window_s", "window (seconds)", "number"),
                Col("hit_ratio", "hit ratio", "percent"),
                Col("hits", "hits", "count"),
                Col("misses", "misses", "count"),
                Col("restarts_resets", "restarts / resets", "count"),
                Col("evictions", "evictions", "count"),
                Col("expirations", "expirations", "count"),
                Col("evicted_unfetched", "evicted unread", "count"),
                Col("used_memory", "memory used", "bytes"),
                Col("maxmemory", "maxmemory", "bytes"),
                Col("policy", "eviction policy"),
            ],
            caption="Cache servers (never averaged across a restart)",
            redactor=self.redactor,
        )

    def cache_rates_figure(self) -> go.Figure | HtmlBlock:
        """Hit ratio and hits, misses, evictions, expirations per second over time, per server,
        restarts marked (only with enough snapshots for a series; a table otherwise)."""
        from auditkit.report.figures_caching import server_rates_chart

        rates = self.frame("cache_rates")
        snaps = self.frame("cache_snapshots")
        if len(snaps) == 0:
            return _note(
                "No cache statistics (Redis INFO, memcached stats) were provided.", "missing"
            )
        most = int(rates.groupby("instance").size().max()) if len(rates) else 0
        if most >= MIN_POINTS:
            return server_rates_chart(rates, snaps, redactor=self.redactor)
        if len(rates):
            return table(
                rates,
                [
                    Col("instance", "server"),
                    Col("ts_before", "from"),
                    Col("ts", "to"),
                    Col("hit_ratio", "hit ratio", "percent"),
                    Col("hits_per_s", "hits/s", "number"),
                    Col("misses_per_s", "misses/s", "number"),
                    Col("evictions_per_s", "evictions/s", "number"),
                    Col("expirations_per_s", "expirations/s", "number"),
                ],
                caption=(
                    f"Between consecutive snapshots ({plural(most, 'interval')}: a chart over time needs "
                    f"{MIN_POINTS} or more)"
                ),
                redactor=self.redactor,
            )
        return _note(
            "One snapshot per server run: the counters are since the server started, not over the "
            "audit window. Take INFO (or stats) every minute during the window for rates over time "
            "(`auditkit collect redis --every 60 --count 30`)."
        )

    def cache_commands_table(self, top: int = 10) -> HtmlBlock | None:
        """The command mix of Redis servers (commandstats), nothing without it."""
        mix = self.frame("cache_commands")
        if len(mix) == 0:
            return None
        return table(
            mix,
            [
                Col("instance", "server"),
                Col("command", "command"),
                Col("calls", "calls", "count"),
                Col("share", "share of calls", "percent"),
                Col("usec_per_call", "µs per call", "number"),
            ],
            caption="Command mix (commandstats)",
            redactor=self.redactor,
            limit=top,
        )

    def key_family_table(self, top: int = 20) -> HtmlBlock:
        """Per key family: reads, hit ratio, misses by cause, keys, re-read interval, timeout."""
        fam = self.frame("cache_families")
        if len(fam) == 0:
            return _note(
                "No cache operations were provided: key families need the capture app's cache "
                "files (or a cache wrapper's log, or memcached's stats detail dump).",
                "missing",
            )
        return table(
            fam,
            [
                Col("family", "key family"),
                Col("cache", "cache"),
                Col("reads", "reads", "count"),
                Col("hit_ratio", "hit ratio", "percent"),
                Col("miss_first_read", "miss: first read", "count"),
                Col("miss_expired", "miss: expired", "count"),
                Col("miss_evicted", "miss: evicted", "count"),
                Col("miss_deleted", "miss: deleted", "count"),
                Col("keys", "keys", "count"),
                Col("reads_per_key", "reads per key", "number"),
                Col("reread_s", "re-read after (s, median)", "number"),
                Col("ttl_s", "timeout (seconds)", "number"),
                Col("sets_never_read", "writes never read", "count"),
            ],
            caption="Key families",
            redactor=self.redactor,
            limit=top,
        )

    def key_family_figure(self) -> go.Figure | None:
        """Reads per key family, hits and misses by cause (nothing without cache events)."""
        from auditkit.report.figures_caching import key_families_chart

        fam = self.frame("cache_families")
        if len(fam) == 0:
            return None
        return key_families_chart(fam, redactor=self.redactor)

    def key_family_series_figure(self) -> go.Figure | HtmlBlock | None:
        """Hit ratio over time of the busiest key families (only with enough points)."""
        from auditkit.report.figures_caching import ratio_over_time

        series = self.frame("cache_family_series")
        if len(series) == 0:
            return None
        if int(series.groupby("group").size().max()) < MIN_POINTS:
            return _note("The cache operations span too short a time for a series over time.")
        return ratio_over_time(
            series, title="Django cache hit ratio over time", redactor=self.redactor
        )

    def buffer_cache_table(self, top: int = 15) -> HtmlBlock:
        """PostgreSQL's buffer cache per database, table, index and statement."""
        parts = []
        for name, first, caption in (
            (
                "buffer_databases",
                Col("database", "database"),
                "Buffer cache per database (pg_stat_database)",
            ),
            (
                "buffer_tables",
                Col("table", "table"),
                "Buffer cache per table (pg_statio_user_tables)",
            ),
            (
                "buffer_indexes",
                Col("index", "index"),
                "Buffer cache per index (pg_statio_user_indexes)",
            ),
            (
                "buffer_statements",
                Col("fingerprint", "statement", "sql"),
                "Buffer cache per statement (pg_stat_statements)",
            ),
        ):
            df = self.frame(name)
            if len(df):
                parts.append(
                    table(
                        df,
                        [
                            first,
                            Col("hit_ratio", "hit ratio", "percent"),
                            Col("hit", "blocks hit", "count"),
                            Col("read", "blocks read", "count"),
                        ],
                        caption=caption,
                        redactor=self.redactor,
                        limit=top,
                    ).html
                )
        if not parts:
            return _note(
                "No block counters were provided (pg_statio_user_tables, pg_statio_user_indexes, "
                "pg_stat_database, or pg_stat_statements with shared_blks_*).",
                "missing",
            )
        return _block("".join(parts), f"{len(parts)} tables")

    def cdn_table(self, top: int = 15) -> HtmlBlock:
        """CDN or proxy outcomes per path pattern, and static files served by the application."""
        cdn = self.frame("cdn")
        static = self.frame("static_served")
        parts = []
        if len(cdn):
            parts.append(
                table(
                    cdn,
                    [
                        Col("pattern", "path pattern"),
                        Col("requests", "requests", "count"),
                        Col("hit_ratio", "CDN hit ratio", "percent"),
                        Col("outcomes", "outcomes"),
                        Col("bytes", "bytes", "bytes"),
                    ],
                    caption="CDN and proxy cache per path pattern",
                    redactor=self.redactor,
                    limit=top,
                ).html
            )
        if len(static):
            parts.append(
                table(
                    static,
                    [
                        Col("pattern", "static path"),
                        Col("requests", "requests", "count"),
                        Col("bytes", "bytes", "bytes"),
                    ],
                    caption="Static and media files answered without a cache in front",
                    redactor=self.redactor,
                    limit=top,
                ).html
            )
        if not parts:
            return _note(
                "No request log with a CDN or proxy cache status was provided (nginx "
                "$upstream_cache_status, Cloudflare CacheCacheStatus, CloudFront x-edge-result-type).",
                "missing",
            )
        return _block("".join(parts), f"{len(parts)} tables")

    def cdn_series_figure(self) -> go.Figure | None:
        """The CDN's hit ratio over time (only with enough points)."""
        from auditkit.report.figures_caching import ratio_over_time

        series = self.frame("cdn_series")
        if len(series) < MIN_POINTS:
            return None
        return ratio_over_time(series, title="CDN hit ratio over time", redactor=self.redactor)

    def cache_candidates_table(self) -> HtmlBlock:
        """The cache candidates with what they save, the tool and the staleness assumed."""
        found = self.findings("cache_candidate")
        if not found:
            return self.show("cache_candidate")
        rows = []
        for f in rank(found):
            g = self.redactor.finding(f)
            m = g.metrics
            rows.append(
                {
                    "severity": str(g.severity),
                    "endpoint": g.subject.endpoint,
                    "statements": m.get("statements"),
                    "calls": m.get("calls"),
                    "distinct": m.get("distinct"),
                    "tool": m.get("tool"),
                    "per_hour": g.impact.db_ms_per_hour if g.impact else None,
                    "share": g.impact.db_share if g.impact else None,
                    "ttl": m.get("ttl_s"),
                }
            )
        return table(
            pd.DataFrame(rows),
            [
                Col("severity", "severity"),
                Col("endpoint", "endpoint"),
                Col("statements", "statements", "count"),
                Col("calls", "runs", "count"),
                Col("distinct", "distinct parameters", "count"),
                Col("tool", "Django tool"),
                Col("per_hour", "DB time saved per hour", "ms"),
                Col("share", "share of all DB time", "percent"),
                Col("ttl", "staleness accepted (seconds)", "number"),
            ],
            caption="Worth caching: the saving assumes results that old are acceptable",
            redactor=self.redactor,
        )

    def load_curve_figure(self) -> go.Figure | HtmlBlock:
        """Throughput and latency against users: the measured steps, the fitted model with its
        band and the what-if (at least three steps); without a model, the measured curve."""
        from auditkit.analysis.capacity import USLFit
        from auditkit.report import figures_scaling

        steps = self.frame("load_steps")
        samples = self.frame("load_samples")
        if len(steps) == 0 and len(samples) == 0:
            return _note(
                "No load test was provided: the capacity section below says what production "
                "traffic alone supports.",
                "missing",
            )
        levels = steps["users"].nunique() if len(steps) else 0
        if levels < MIN_POINTS:
            return _note(
                f"The load test held {plural(levels, 'user level')}: a curve needs {MIN_POINTS} or more "
                "steps.",
                "missing",
            )
        fit = USLFit.from_frame(self.frame("usl_fit"))
        better = USLFit.from_frame(self.frame("usl_what_if"))
        return figures_scaling.capacity_curve(steps, fit, better)

    def load_steps_table(self) -> HtmlBlock:
        """Each load step as measured: users, throughput, latency, errors, Little's law."""
        steps = self.frame("load_steps")
        if len(steps) == 0 and len(self.frame("load_samples")) == 0:
            return _block("", "")  # the curve above already says no load test was provided
        if len(steps) == 0:
            return _note("The load test has no steps to tabulate.", "missing")
        shown = steps.assign(
            trusted_text=steps["trusted"].map({True: "yes", False: "no"}),
            settled=steps["settled_s"],
        )
        return table(
            shown,
            [
                Col("users", "users", "count"),
                Col("settled", "seconds measured", "number"),
                Col("rps", "throughput (requests/s)", "number"),
                Col("p50_ms", "median", "ms"),
                Col("p95_ms", "95th percentile", "ms"),
                Col("failure_rate", "failing", "percent"),
                Col("in_service", "requests in service", "number"),
                Col("think_s", "implied think time (seconds)", "number"),
                Col("trusted_text", "in the model"),
                *(
                    [Col("note", "note")]
                    if steps["note"].fillna("").astype(str).str.len().gt(0).any()
                    else []
                ),
            ],
            caption=(
                "Load steps (requests in service = throughput × time in the application, "
                "Little's law)"
            ),
            redactor=self.redactor,
        )

    def capacity_model(self) -> HtmlBlock:
        """The fitted model's parameters with their intervals, landmarks and warnings."""
        from auditkit.analysis.capacity import USLFit

        fit = USLFit.from_frame(self.frame("usl_fit"))
        if fit is None:
            return _note(
                "No capacity model: it needs a stepped load test (Locust's stats history).",
                "missing",
            )
        if not fit.usable:
            return _note("No capacity model: " + " ".join(fit.warnings), "missing")
        pct = f"{fit.level:.0%}"

        def interval(lo: float, hi: float) -> str:
            return f"{plain_number(lo)} to {plain_number(hi)}"

        rows = [
            (
                "one user alone (λ)",
                f"{plain_number(fit.lam)} requests/s",
                interval(*fit.lam_ci),
                "throughput of a single user, think time included",
            ),
            (
                "contention (σ)",
                plain_number(fit.sigma),
                interval(*fit.sigma_ci),
                "the serialised share of the work: a lock, one pool, one hot row",
            ),
            (
                "coherency (κ)",
                plain_number(fit.kappa),
                interval(*fit.kappa_ci),
                "work that grows with every pair of users: keeping shared state consistent",
            ),
            (
                "saturation point",
                f"{fit.peak_rps / fit.lam:.0f} users",
                "—",
                "where one user's throughput, repeated, reaches the peak",
            ),
            (
                "peak throughput",
                f"{fit.peak_rps:.1f} requests/s",
                "—",
                f"at {fit.n_star:.0f} users (N* = √((1 − σ)/κ))"
                if fit.n_star < 1e9
                else "approached, never passed (no coherency cost)",
            ),
            (
                "fit (R²)",
                f"{fit.r_squared:.3f}",
                "—",
                f"{len(fit.n)} steps, {fit.dof} residual degrees of freedom",
            ),
        ]
        df = pd.DataFrame(rows, columns=["what", "value", "interval", "meaning"])
        html = table(
            df,
            [
                Col("what", "parameter"),
                Col("value", "estimate"),
                Col("interval", f"{pct} interval"),
                Col("meaning", "meaning"),
            ],
            caption="The Universal Scalability Law fitted to the load steps (non-linear least squares)",
            redactor=self.redactor,
        ).html
        for w in fit.warnings:
            html += note_html(w[:1].upper() + w[1:] + ".", "warning")
        return _block(html, "capacity model")

    def what_if(self) -> HtmlBlock:
        """The capacity after the other chapters' fixes, in one sentence."""
        from auditkit.analysis.capacity import USLFit

        fit = USLFit.from_frame(self.frame("usl_fit"))
        wf = self.frame("usl_what_if")
        better = USLFit.from_frame(wf)
        if fit is None or not fit.usable:
            return _note(
                "No what-if: it needs the capacity model (a stepped load test).", "missing"
            )
        if better is None:
            return _note(
                "No what-if: the other chapters' findings save no measured database time per "
                "request, or the request log does not give the time a request takes."
            )
        r = wf.iloc[0]
        return _note(
            f"The {int(r['findings'])} fixes of the other chapters save "
            f"{float(r['saved_ms']):.0f} ms of database time per request on average, of "
            f"{float(r['service_ms']):.0f} ms a request spends in the application. With "
            f"contention and coherency shortened in proportion, the model's peak moves from "
            f"{fit.peak_rps:.1f} to {better.peak_rps:.1f} requests/s and the saturation point "
            f"from {fit.peak_rps / fit.lam:.0f} to {better.peak_rps / better.lam:.0f} users — "
            "the dashed curve above. An estimate: measure it with the same load test after the "
            "fixes."
        )

    def capacity_plan_table(self) -> HtmlBlock:
        """The sized plan: target, per-instance throughput, instances, workers, connections."""
        plan = self.frame("capacity_plan")
        if len(plan) == 0:
            return _note(
                "No capacity plan: the audit had neither a load test nor request timings.",
                "missing",
            )
        return table(
            plan,
            [Col("item", "plan"), Col("value", "value"), Col("basis", "from")],
            caption="Capacity plan (thresholds: capacity family; deployment facts with their source)",
            redactor=self.redactor,
        )

    def work_to_move(self) -> HtmlBlock:
        """Async views and a CDN, where the request log shows the evidence for them."""
        work = self.frame("work_to_move")
        if len(work) == 0:
            return _note(
                "No outbound HTTP waits that overlap, and no static or media files served by the "
                "application, in the request log."
            )
        return table(
            work,
            [
                Col("what", "move to"),
                Col("where", "where"),
                Col("evidence", "evidence"),
                Col("change", "change"),
            ],
            caption="Other work to move out of the application's workers",
            redactor=self.redactor,
        )

    def traffic_figure(self) -> go.Figure | HtmlBlock:
        """Request rate over the request log's window (three buckets or more)."""
        from auditkit.report import figures_scaling

        rate = self.frame("traffic_rate")
        summary = self.frame("traffic_summary")
        if len(rate) < MIN_POINTS or len(summary) == 0:
            return _note(
                "No request log long enough to draw the traffic over time "
                f"({MIN_POINTS} intervals or more).",
                "missing",
            )
        r = summary.iloc[0]
        return figures_scaling.traffic_rate(
            rate, int(r["bucket_s"]), float(r["mean_rps"]), float(r["peak_rps"])
        )

    def traffic_table(self) -> HtmlBlock:
        """The traffic's shape in a sentence, and the endpoints that dominate the load."""
        summary = self.frame("traffic_summary")
        if len(summary) == 0:
            return _note(
                "No request log (access log, capture app or APM export) was provided.", "missing"
            )
        r = summary.iloc[0]
        text = (
            f"{int(r['requests']):,} requests over {float(r['window_s']) / 60:.1f} min: "
            f"{float(r['mean_rps']):.1f} requests/s on average, {float(r['peak_rps']):.1f} at the "
            f"busiest {int(r['bucket_s'])} s ({float(r['peak_to_average']):.1f}× the average)."
        )
        if bool(r["load_test"]):
            text += " This request log is the load test's own traffic, not production's."
        hours = self.frame("traffic_hours")
        if len(hours):
            top = ", ".join(f"{int(h):02d}:00" for h in hours["hour"].head(3))
            text += f" Busiest hours (UTC): {top}."
        html = note_html(self.redactor.text(text))
        ep = self.frame("traffic_endpoints")
        if len(ep):
            html += table(
                ep,
                [
                    Col("endpoint", "endpoint"),
                    Col("requests", "requests", "count"),
                    Col("share", "of requests", "percent"),
                    Col("time_share", "of worker time", "percent"),
                    Col("mean_ms", "mean", "ms"),
                    Col("p95_ms", "95th percentile", "ms"),
                ],
                caption="Endpoints that dominate the load, by the time workers spend on them",
                redactor=self.redactor,
            ).html
        return _block(html, "traffic")

    def request_latency_figure(self) -> go.Figure | HtmlBlock:
        """Response times per endpoint, from requests or traces."""
        req = self.frame("requests")
        if len(req) < 10:
            return _note(
                "No request timings (access log, traces or capture app) were provided.", "missing"
            )
        return figures.latency_distribution(
            req, by="endpoint", what="request", redactor=self.redactor
        )


class Overview(Chapter):
    """The executive summary: the action plan, every finding, inventory and data quality, and —
    when the client's previous audit is given (``previous``) — what changed since."""

    def __init__(self, *args: Any, previous: str | Path | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.previous = previous

    # -- since the last audit ------------------------------------------------------------------------
    @cached_property
    def comparison(self) -> Comparison | None:
        """This audit compared with ``previous`` (None when no previous audit was given).

        The comparison is made on this audit's findings.json document — redacted as the report
        is —, so the page and findings.json's ``since_previous`` agree.
        """
        from auditkit.compare import compare

        if not self.previous:
            return None
        return compare(_find_previous(self.previous, self.audit_dir), self._document)

    @cached_property
    def _document(self) -> dict[str, Any]:
        return self.audit.document(self.redactor)

    def since_last_audit(self) -> HtmlBlock | None:
        """What changed since the previous audit, with its own heading (nothing when no
        previous audit was given): each finding new, worse, resolved or better, the change in
        what it costs, and the endpoints whose database time per request moved most."""
        from auditkit.report.compare import since_last_audit_html

        c = self.comparison
        if c is None:
            return None
        return _block(since_last_audit_html(c, links=self._links), c.headline())

    def header(self) -> HtmlBlock:
        """Client, files used, the workload window and the redaction in force."""
        a = self.audit
        inv = self.frame("inventory")
        used = int((inv["status"] == "loaded").sum()) if len(inv) else 0
        wl = a.workload
        window = ""
        if wl.get("start") and wl.get("end"):
            window = f" · statements from {wl['start'][:16].replace('T', ' ')} to {wl['end'][:16].replace('T', ' ')} UTC"
        literal_note = "shown" if self.show_literals else "replaced by placeholders"
        text = (
            f"Client: {a.client} · {len(inv)} files, {used} used{window} · literal values in SQL "
            f"{literal_note}."
        )
        return _note(self.redactor.text(text))

    def action_plan(self) -> HtmlBlock:
        """The few changes that matter most, ranked by the time they save."""
        return _block(
            actions_html(self.audit.actions, links=self._links, redactor=self.redactor), "actions"
        )

    def executive_summary(self) -> HtmlBlock:
        """Counts per severity and every finding, each linking into its chapter."""
        titles = {name: info.title for name, info in CHAPTER_INFO.items()}
        html = summary_html(
            self.audit.findings, links=self._links, chapter_titles=titles, redactor=self.redactor
        )
        return _block(html, f"{len(self.audit.findings)} findings")

    def chapters_table(self) -> HtmlBlock:
        """Each chapter: link, what it rests on, its findings by severity."""
        rows = []
        for name, info in CHAPTER_INFO.items():
            if name == self.name:
                continue
            found = self.audit.chapter(name)
            gaps = self.audit.chapter_gaps(name)
            specs = [s for s in REGISTRY if s.chapter == name]
            if len(gaps) == len(specs):
                status = f"not measured: needs {info.needs}"
            elif gaps:
                status = f"{len(specs) - len(gaps)} of {len(specs)} checks ran (see the chapter)"
            else:
                status = "every check ran"
            counts = Counter(f.severity for f in found)
            badges = (
                " ".join(f"{severity_badge(s)} {counts[s]}" for s in sorted(counts, reverse=True))
                or "none"
            )
            rows.append(
                f'<tr><td><a href="{escape(self.link(name), quote=True)}">{escape(info.title)}</a></td>'
                f"<td>{escape(status)}</td><td>{badges}</td></tr>"
            )
        html = (
            '<table class="ak-chapters"><thead><tr><th>chapter</th><th>checks</th><th>findings</th>'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
        return _block(html, f"{len(rows)} chapters")

    def inventory_table(self) -> HtmlBlock:
        """Every input file with format, status and read / used / skipped counts."""
        inv = self.frame("inventory")
        return table(
            inv,
            [
                Col("file", "file"),
                Col("format", "format"),
                Col("status", "status"),
                Col("size_bytes", "size", "bytes"),
                Col("read", "records", "count"),
                Col("parsed", "used", "count"),
                Col("skipped", "skipped", "count"),
                Col("note", "note"),
            ],
            caption=f"{len(inv)} files in the client folder",
            redactor=self.redactor,
        )

    def data_quality(self) -> HtmlBlock:
        """What could not be used and why: skipped records, unread files, checks without data,
        and what the audit learnt about its inputs."""
        parts = []
        skipped = self.frame("skipped")
        if len(skipped):
            parts.append(
                table(
                    skipped,
                    [
                        Col("file", "file"),
                        Col("reason", "reason"),
                        Col("records", "records", "count"),
                        Col("first_lines", "first lines"),
                        Col("excerpt", "excerpt", "sql"),
                    ],
                    caption="Skipped records by file and reason",
                    redactor=self.redactor,
                ).html
            )
        else:
            parts.append(note_html("No record of any loaded file was skipped."))
        found = [f for f in self.audit.findings if f.check == "data_quality"]
        if found:
            parts.append(findings_html(found, redactor=self.redactor))
        gaps = self.audit.gaps
        if gaps:
            items = "".join(
                f"<li>{escape(CHECK_NAMES.get(g.check, g.check))} ({escape(CHAPTER_INFO[g.chapter].title)}): "
                f"needs {escape(g.needs)}.{' ' + escape(g.how) if g.how else ''}</li>"
                for g in gaps
            )
            parts.append(f"<p><b>Not measured for want of data:</b></p><ul>{items}</ul>")
        for n in self.audit.notes:
            parts.append(note_html(self.redactor.text(n)))
        return _block("".join(parts), "data quality")


def threshold_words(sentence: str) -> str:
    """A thresholds sentence whose words follow its numbers: "at least 1 times" reads "at least
    once", "at most 1 scans" "at most 1 scan", "at most 0 scans" "no scans".

    >>> threshold_words("run at least 1 times; at most 0 scans; at least 1 rows")
    'run at least once; no scans; at least 1 row'
    """
    sentence = re.sub(r"\bat least 1 times\b", "at least once", sentence)
    sentence = re.sub(r"\b(at (?:least|most)) 1 (\w+)s\b", r"\1 1 \2", sentence)
    return re.sub(r"\bat most 0 (\w+)", r"no \1", sentence)


def _find_previous(previous: str | Path, audit_dir: Path | None) -> Path:
    """The previous audit ``previous`` names: absolute, or relative to the working directory,
    the saved audit (the runner puts it there) or the notebooks folder."""
    p = Path(previous).expanduser()
    if p.is_absolute():
        return p
    bases = [Path.cwd(), *([audit_dir] if audit_dir else []), NOTEBOOKS_DIR, _PACKAGE_ROOT]
    for base in bases:
        if (base / p).exists():
            return base / p
    raise ConfigError(
        f"previous audit {str(previous)!r} not found",
        hint="pass previous= the previous report folder or its findings.json",
    )


def _matches(check: str, wanted: tuple[str, ...]) -> bool:
    return check in wanted or (check.startswith("plan_") and "plan_*" in wanted)


def chapter(
    name: str,
    data_dir: str | Path | None = "../data/sample",
    *,
    audit_dir: str | Path | None = None,
    audit: Audit | None = None,
    client_name: str | None = None,
    presets: Mapping[str, str] | None = None,
    show_literals: bool = False,
    link_suffix: str = ".ipynb",
    dsn_env: str | None = None,
    previous: str | Path | None = None,
) -> Chapter:
    """The chapter object a notebook works with (an :class:`Overview` for ``"overview"``).

    It displays ``audit`` when given (an :class:`~auditkit.auditing.Audit` made in the session),
    else the audit saved in ``audit_dir``, else one computed from ``data_dir``. Also switches
    plotly to the report renderer (see :mod:`auditkit.report.render`). ``previous`` (the
    overview only) is the client's previous audit: a report folder or findings.json.
    """
    use_report_renderer()
    if name == "overview":
        return Overview(
            name,
            data_dir,
            audit_dir=audit_dir,
            audit=audit,
            client_name=client_name,
            presets=presets,
            show_literals=show_literals,
            link_suffix=link_suffix,
            dsn_env=dsn_env,
            previous=previous,
        )
    return Chapter(
        name,
        data_dir,
        audit_dir=audit_dir,
        audit=audit,
        client_name=client_name,
        presets=presets,
        show_literals=show_literals,
        link_suffix=link_suffix,
        dsn_env=dsn_env,
    )
