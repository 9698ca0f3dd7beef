"""The analysis layer: frames derived from the canonical frames, computed once per client.

Between the loaders (canonical frames) and the checks (findings) sit the frames that several
checks and every report page need: which source times the audit and over which window
(:mod:`.workload`), the query profile, statements grouped by request and by endpoint
(:mod:`.requests`), the client's models and relations (:mod:`.code`), the combined catalog
(:mod:`.catalog`), and the parsed workload (:func:`auditkit.sql.analyze.analyze_workload`).

:class:`Analysis` computes each on first use and keeps it. It knows frames, not findings; checks
receive its attributes by name (the registry in :mod:`auditkit.checks` says which).

Example::

    >>> import auditkit
    >>> a = Analysis.of(auditkit.load_client("data/sample"))      # doctest: +SKIP
    >>> a.workload.label, len(a.profile)                           # doctest: +SKIP
    ('the Django query log', 74)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pandas as pd

from auditkit.analysis.catalog import Catalog
from auditkit.analysis.code import CodeMap, joins_of, tables_of
from auditkit.analysis.requests import (
    endpoint_table,
    one_per_request,
    request_statements,
    statement_endpoints,
)
from auditkit.analysis.workload import (
    Workload,
    choose_workload,
    without_collection,
    without_maintenance,
)
from auditkit.config import AuditConfig
from auditkit.schemas import FRAMES, empty

if TYPE_CHECKING:
    from auditkit.analysis.capacity import USLFit
    from auditkit.analysis.connections import Churn
    from auditkit.analysis.plan import CapacityPlan
    from auditkit.analysis.traffic import TrafficShape
    from auditkit.client import ClientData, InputFile
    from auditkit.sql.analyze import WorkloadAnalysis
    from auditkit.sql.fingerprint import Dialect

__all__ = ["Analysis", "Catalog", "CodeMap", "Workload"]


class Analysis:
    """Derived frames of one client, each computed on first use (see the module docstring)."""

    def __init__(
        self,
        frames: Mapping[str, pd.DataFrame],
        config: AuditConfig | None = None,
        *,
        statement_stats: pd.DataFrame | None = None,
        files: Sequence[InputFile] = (),
        notes: Sequence[str] = (),
    ) -> None:
        self.frames = dict(frames)
        self.config = config or AuditConfig()
        self._statement_stats = statement_stats
        self.files = list(files)
        self.notes = list(notes)

    @classmethod
    def of(cls, client: ClientData, config: AuditConfig | None = None) -> Analysis:
        """The analysis of a loaded client folder."""
        stats = client.statement_stats() if client.has("statement_stats") else None
        return cls(
            client.frames,
            config or client.config,
            statement_stats=stats,
            files=client.files,
            notes=client.notes,
        )

    # -- canonical frames ------------------------------------------------------------------------
    def frame(self, name: str) -> pd.DataFrame:
        """A canonical frame (empty when no file gave one)."""
        df = self.frames.get(name)
        return df if df is not None else empty(FRAMES[name])

    def has(self, name: str) -> bool:
        """True when the attribute or frame ``name`` holds data."""
        value = getattr(self, name)
        if isinstance(value, bool):
            return value
        if isinstance(value, pd.DataFrame):
            return len(value) > 0
        if isinstance(value, Workload):
            return not value.empty
        if isinstance(value, Catalog):
            return not value.empty
        if isinstance(value, Mapping | Sequence):
            return len(value) > 0
        return value is not None

    @property
    def plan_nodes(self) -> pd.DataFrame:
        return self.frame("plan_nodes")

    @property
    def server_events(self) -> pd.DataFrame:
        return self.frame("server_events")

    @property
    def server_settings(self) -> pd.DataFrame:
        return self.frame("server_settings")

    @property
    def app_server_log(self) -> bool:
        """True when an application-server log (gunicorn, uWSGI) was read: its events or the
        settings it states."""
        settings = self.server_settings
        if (
            len(settings)
            and "server" in settings.columns
            and settings["server"].isin(["gunicorn", "uwsgi"]).any()
        ):
            return True
        events = self.server_events
        return bool(len(events)) and bool(
            events["kind"].astype(str).str.startswith("worker_").any()
        )

    @property
    def server_status(self) -> pd.DataFrame:
        """Status counters and variables of the database server (SHOW GLOBAL STATUS/VARIABLES,
        PostgreSQL's cumulative views), as exported: cumulative."""
        return self.frame("server_status")

    @cached_property
    def status_delta(self) -> pd.DataFrame:
        """What each status counter did between the first and last snapshot, per server
        (:func:`auditkit.loaders.mysql_stats.status_delta`: delta, interval, rate); gauges
        keep their two values. Its messages go to :attr:`notes`."""
        from auditkit.loaders.mysql_stats import status_delta

        status = self.server_status
        if len(status) == 0:
            return pd.DataFrame()
        delta, messages = status_delta(status)
        self.notes.extend(f"server status: {m}" for m in messages if "one status snapshot" not in m)
        return delta

    @property
    def cache_stats(self) -> pd.DataFrame:
        return self.frame("cache_stats")

    @property
    def cache_events(self) -> pd.DataFrame:
        return self.frame("cache_events")

    @property
    def load_samples(self) -> pd.DataFrame:
        return self.frame("load_samples")

    @cached_property
    def requests(self) -> pd.DataFrame:
        """Requests from any source (access logs, traces, the capture app, APM exports), one
        row per request (:func:`~auditkit.analysis.requests.one_per_request`)."""
        return one_per_request(self.frame("requests"))

    @cached_property
    def pg_stat_statements(self) -> pd.DataFrame:
        """The pg_stat_statements profile (the delta of the first and last snapshot), without
        monitoring and collection statements (:func:`~auditkit.analysis.workload.without_collection`)
        and maintenance (:func:`~auditkit.analysis.workload.without_maintenance`)."""
        if self._statement_stats is not None:
            return without_collection(without_maintenance(self._statement_stats)[0])[0]
        return empty(FRAMES["statement_stats"])

    # -- derived ---------------------------------------------------------------------------------
    @cached_property
    def workload(self) -> Workload:
        """The source that times the audit, its window and total database time."""
        return choose_workload(
            self.frame("query_events"),
            self._statement_stats,
            gap_ms=float(self.config.thresholds("requests")["gap_ms"]),
        )

    @property
    def profile(self) -> pd.DataFrame:
        """The query profile of the workload (``statement_stats``)."""
        return self.workload.profile

    @cached_property
    def statements(self) -> pd.DataFrame:
        """The workload's statements grouped by request (:func:`request_statements`)."""
        events = self.workload.events
        if len(events) == 0:
            df = events.assign(request_key=pd.Series(dtype="string"))
            df.attrs["inferred"] = False
            return df
        return request_statements(events, self.config, self.requests)

    @cached_property
    def statement_endpoints(self) -> pd.DataFrame:
        """Fingerprint → the endpoints issuing it, with calls, time and requests."""
        return statement_endpoints(self.statements)

    @cached_property
    def endpoints(self) -> pd.DataFrame:
        """What each endpoint costs per request (:func:`endpoint_table`)."""
        return endpoint_table(self.statements, self.requests)

    @cached_property
    def dialect(self) -> Dialect:
        """The SQL dialect of the workload's database."""
        if self.workload.source == "mysql" or "mysql_slow" in set(
            self.frame("query_events")["source_format"].dropna().astype(str).tolist()
        ):
            return "mysql"
        # MySQL/MariaDB statistics exports (performance_schema, information_schema, SHOW)
        for name in ("statement_stats", "schema_indexes", "schema_tables"):
            df = self.frame(name)
            if "dialect" in df and df["dialect"].isin(("mysql", "mariadb")).any():
                return "mysql"
        return "postgres"

    @cached_property
    def sql(self) -> WorkloadAnalysis:
        """The workload's statements parsed once: tables, columns and the roles they play."""
        from auditkit.sql.analyze import analyze_workload

        cols = self.frame("schema_columns")
        known: dict[str, set[str]] = {}
        for t, c in zip(cols["table"], cols["column"], strict=False):
            if isinstance(t, str) and isinstance(c, str):
                known.setdefault(t, set()).add(c)
        return analyze_workload(self.profile, self.dialect, known_columns=known)

    @cached_property
    def code(self) -> CodeMap:
        """The client's models, fields and relations (model dump, Django's apps, conventions)."""
        fps = self.profile["fingerprint"].dropna().astype(str).tolist() if len(self.profile) else []
        tables, seen = tables_of(fps)
        return CodeMap.build(
            self.frame("schema_columns"),
            self.frame("schema_tables"),
            self.frame("schema_indexes"),
            tables=tables,
            joins=joins_of(fps),
            seen_columns=seen,
        )

    @cached_property
    def catalog(self) -> Catalog:
        """Indexes, tables and column statistics of the database, combined."""
        return Catalog.build(
            self.frame("schema_indexes"),
            self.frame("schema_tables"),
            self.frame("column_stats"),
            self.code,
            server_status=self.server_status,
        )

    @cached_property
    def table_writes(self) -> dict[str, int]:
        """Rows-changing statements per table in the window (INSERT, UPDATE, DELETE calls)."""
        from auditkit.sql.django_orm import statement_shape

        out: dict[str, int] = {}
        prof = self.profile
        for fp, calls in zip(prof["fingerprint"], prof["calls"], strict=False):
            shape = statement_shape(str(fp)) if isinstance(fp, str) else None
            if shape is not None and shape.kind in ("insert", "update", "delete") and shape.table:
                out[shape.table] = out.get(shape.table, 0) + int(calls or 0)
        return out

    @cached_property
    def request_times(self) -> pd.DataFrame:
        """Requests with their database time: where a request source (an access log) does not
        give ``db_ms``, the workload's statements with the same request id do."""
        req = self.requests
        if len(req) == 0:
            return req
        st = self.statements
        if len(st) and "request_key" in st and not bool(st.attrs.get("inferred")):
            per = st.groupby("request_key")["_ms"].sum()
            calls = st.groupby("request_key").size()
            req = req.copy()
            mapped = req["request_id"].map(per).astype("float64")
            req["db_ms"] = pd.to_numeric(req["db_ms"], errors="coerce").fillna(mapped)
            req["db_calls"] = req["db_calls"].fillna(req["request_id"].map(calls)).astype("Int64")
        return req

    # -- caching (auditkit.analysis.cache) -------------------------------------------------------
    @cached_property
    def cache_snapshots(self) -> pd.DataFrame:
        """Snapshots of each cache server instance, cut into segments at restarts and resets."""
        from auditkit.analysis.cache import server_snapshots

        return server_snapshots(self.cache_stats)

    @cached_property
    def cache_servers(self) -> pd.DataFrame:
        """Per cache server instance: hit ratio, rates, evictions, memory (never across restarts)."""
        from auditkit.analysis.cache import server_summary

        return server_summary(self.cache_snapshots)

    @cached_property
    def cache_families(self) -> pd.DataFrame:
        """Per cache key family: reads, hit ratio, the causes of its misses, re-read interval."""
        from auditkit.analysis.cache import key_families

        return key_families(self.cache_events, self.frame("cache_key_families"))

    @cached_property
    def buffer_cache(self) -> dict[str, pd.DataFrame]:
        """PostgreSQL buffer cache hit ratios per table, index, statement and database."""
        from auditkit.analysis.cache import buffer_cache

        return buffer_cache(
            self.frame("schema_tables"),
            self.frame("schema_indexes"),
            self.pg_stat_statements,
            self.frame("server_status"),
        )

    @cached_property
    def cdn(self) -> pd.DataFrame:
        """CDN or proxy cache outcomes per path pattern (requests with a cache status)."""
        from auditkit.analysis.cache import http_cache

        return http_cache(self.requests)

    @cached_property
    def cache_funnel(self) -> pd.DataFrame:
        """Per endpoint: what the CDN, the Django cache and the buffer cache absorb."""
        from auditkit.analysis.cache import funnel

        return funnel(
            self.request_times, self.cache_events, self.statement_endpoints, self.pg_stat_statements
        )

    @property
    def request_waits(self) -> bool:
        """True when requests record time beyond the database: CPU or outbound work."""
        req = self.requests
        return any(
            c in req and req[c].notna().any()
            for c in ("cpu_ms", "mail_ms", "http_ms", "external_ms")
        )

    @property
    def max_connections(self) -> bool:
        """True when the server's connection limit is known (pg_settings or audit.yaml)."""
        return "max_connections" in self.deployment

    @cached_property
    def deployment(self) -> dict[str, Any]:
        """Deployment facts (audit.yaml, the application server's start-up log, the
        database's settings), each fact's source under ``sources``
        (:func:`~auditkit.analysis.deployment.deployment_facts`)."""
        from auditkit.analysis.deployment import deployment_facts

        return deployment_facts(
            self.config.deployment, self.server_settings, self.frame("server_status")
        )

    # -- scaling -----------------------------------------------------------------------------------
    @cached_property
    def load_steps(self) -> pd.DataFrame:
        """The plateaus of the load test (:func:`~auditkit.analysis.load.load_steps`)."""
        from auditkit.analysis.load import load_steps

        t = self.config.thresholds("capacity")
        return load_steps(
            self.load_samples,
            self.requests,
            warmup_s=float(t["step_warmup_s"]),
            min_step_s=float(t["step_min_s"]),
            max_noise=float(t["step_max_noise"]),
            percentile_window_s=float(t["locust_percentile_window_s"]),
        )

    @cached_property
    def capacity_fit(self) -> USLFit | None:
        """The Universal Scalability Law fitted to the trusted load steps (``None`` without a
        load test; a fit with ``usable`` False when the steps cannot carry one)."""
        from auditkit.analysis.capacity import fit_usl

        steps = self.load_steps
        if len(steps) == 0:
            return None
        t = self.config.thresholds("capacity")
        trusted = steps[steps["trusted"].astype(bool)]
        fit = fit_usl(
            trusted["users"],
            trusted["rps"],
            level=float(t["confidence"]),
            min_r_squared=float(t["min_r_squared"]),
        )
        dropped = steps[~steps["trusted"].astype(bool)]
        if len(dropped):
            from dataclasses import replace

            why = "; ".join(
                f"{int(u)} users: {n}"
                for u, n in zip(dropped["users"], dropped["note"], strict=True)
            )
            fit = replace(fit, warnings=(*fit.warnings, f"steps left out of the fit — {why}"))
        return fit

    @cached_property
    def traffic(self) -> TrafficShape | None:
        """The shape of the request traffic (:func:`~auditkit.analysis.traffic.traffic_shape`)."""
        from auditkit.analysis.traffic import traffic_shape

        return traffic_shape(self.requests)

    @cached_property
    def churn(self) -> Churn | None:
        """Database sessions against requests (:func:`~auditkit.analysis.connections.connection_churn`)."""
        from auditkit.analysis.connections import connection_churn

        return connection_churn(self.server_events, self.frame("server_status"), self.requests)

    @cached_property
    def capacity_plan(self) -> CapacityPlan:
        """Instances, workers, threads and connections for the target load
        (:func:`~auditkit.analysis.plan.capacity_plan`)."""
        from auditkit.analysis.plan import capacity_plan

        t = self.config.thresholds("capacity")
        return capacity_plan(
            self.capacity_fit,
            self.load_steps,
            self.deployment,
            self.traffic,
            self.request_times,
            t,
            target_rps=float(t["target_rps"]) or None,
        )
