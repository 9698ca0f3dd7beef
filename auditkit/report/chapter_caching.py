"""The caching chapter's views: cache servers, key families, the buffer cache, HTTP and CDN caches, what to cache.

A mixin over :class:`~auditkit.report.chapter_base.ChapterBase`; pure display, like every
chapter view.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from auditkit.findings import plural, rank
from auditkit.report.chapter_base import MIN_POINTS, ChapterBase, _block, _note
from auditkit.report.html import HtmlBlock
from auditkit.report.tables import Col, table


class CachingViews(ChapterBase):
    """The caching chapter's views: cache servers, key families, the buffer cache, HTTP and CDN caches, what to cache."""

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
