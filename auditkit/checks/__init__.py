"""Checks: pure functions from derived frames to findings, in one ordered registry.

A check reads frames — the attributes of :class:`auditkit.analysis.Analysis` its
:class:`CheckSpec` names in ``reads``, in that order — and thresholds from
:class:`~auditkit.config.AuditConfig`, and returns :class:`~auditkit.findings.Finding`
objects with ids from :data:`auditkit.findings.CHECKS`. It never sees the client object, a
loader or a live connection, and never renders HTML.

:data:`REGISTRY` lists every check in the order :func:`auditkit.audit` runs them, with the
chapter its findings belong to, the frames it reads, the threshold family it uses and what it
needs in words: when a check's inputs are missing, the audit says so once in the
data-quality section instead of guessing. A new check is a function plus one entry here.

Example::

    >>> from auditkit.checks import REGISTRY
    >>> [spec.name for spec in REGISTRY][:3]
    ['data_quality', 'n_plus_one', 'duplicate_query']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from auditkit.checks.app_server import worker_failures
from auditkit.checks.caching import cacheable_reads, http_cache_findings, low_cache_hit_ratio
from auditkit.checks.capacity import (
    background_task_candidates,
    capacity_limit,
    connection_budget,
    connection_churn,
)
from auditkit.checks.data_quality import data_quality, software_of
from auditkit.checks.indexes import candidates, duplicates, unused
from auditkit.checks.mysql_server import mysql_server_health
from auditkit.checks.n_plus_one import duplicates_per_request, n_plus_ones
from auditkit.checks.plans import plan_checks
from auditkit.checks.server_events import server_errors, temp_files
from auditkit.checks.slow_queries import slow_statements
from auditkit.config import AuditConfig
from auditkit.errors import ConfigError
from auditkit.findings import Finding

if TYPE_CHECKING:
    from auditkit.analysis import Analysis
    from auditkit.analysis.catalog import Catalog
    from auditkit.analysis.code import CodeMap
    from auditkit.analysis.workload import Workload

__all__ = ["CHAPTERS", "REGISTRY", "CheckSpec", "spec"]

#: the report's chapters, in order
CHAPTERS = ("overview", "queries", "indexing", "caching", "scaling")


@dataclass(frozen=True)
class CheckSpec:
    """One check of the registry.

    ``reads`` are the :class:`~auditkit.analysis.Analysis` attributes passed to ``run`` in
    order (``config`` follows as a keyword); the check runs when any attribute of ``requires``
    holds data (all of ``reads`` when ``requires`` is empty and ``always`` is False), and
    ``needs`` says in words what it would need otherwise.
    """

    name: str
    chapter: str
    emits: tuple[str, ...]
    reads: tuple[str, ...]
    family: str | None
    needs: str
    run: Callable[..., list[Finding]]
    requires: tuple[str, ...] = ()
    always: bool = False

    def available(self, analysis: Analysis) -> bool:
        """True when the frames this check needs hold data."""
        if self.always:
            return True
        return any(analysis.has(name) for name in (self.requires or self.reads))


# -- adapters: checks whose functions take the workload's figures rather than the workload --------
def _slow(
    workload: Workload,
    statement_endpoints: pd.DataFrame,
    plan_nodes: pd.DataFrame,
    dialect: Any,
    sql: Any,
    *,
    config: AuditConfig,
) -> list[Finding]:
    return slow_statements(
        workload.profile,
        statement_endpoints,
        config,
        total_ms=workload.db_ms,
        window_s=workload.window_s,
        source=workload.label,
        plan_nodes=plan_nodes,
        dialect=str(dialect),
        analysis=sql,
    )


def _missing_index(
    workload: Workload,
    catalog: Catalog,
    code: CodeMap,
    plan_nodes: pd.DataFrame,
    statement_endpoints: pd.DataFrame,
    sql: Any,
    dialect: Any,
    digests: pd.DataFrame,
    files: Any,
    *,
    config: AuditConfig,
) -> list[Finding]:
    return candidates(
        workload.profile,
        catalog,
        code,
        config,
        plan_nodes=plan_nodes,
        statement_endpoints=statement_endpoints,
        total_ms=workload.db_ms,
        window_s=workload.window_s,
        source=workload.label,
        dialect=dialect,
        analysis=sql,
        digests=digests,
        events=workload.events,
        software=software_of((f.format for f in files if f.status == "loaded"), str(dialect)),
    )


def _unused(catalog: Catalog, code: CodeMap, dialect: Any, *, config: AuditConfig) -> list[Finding]:
    return unused(catalog, code, config, dialect=dialect)


def _duplicates(
    catalog: Catalog, code: CodeMap, dialect: Any, *, config: AuditConfig
) -> list[Finding]:
    return duplicates(catalog, code, config, dialect=dialect)


def _cache_hits(
    cache_stats: pd.DataFrame,
    pg_stat_statements: pd.DataFrame,
    cache_events: pd.DataFrame,
    statements: pd.DataFrame,
    code: CodeMap,
    requests: pd.DataFrame,
    buffer_cache: dict[str, pd.DataFrame],
    workload: Workload,
    frames: dict[str, pd.DataFrame],
    *,
    config: AuditConfig,
) -> list[Finding]:
    return low_cache_hit_ratio(
        cache_stats,
        config,
        pg_stat_statements,
        events=cache_events,
        statements=statements,
        code=code,
        requests=requests,
        key_family_stats=frames.get("cache_key_families"),
        buffers=buffer_cache,
        total_ms=workload.db_ms,
        window_s=workload.window_s,
        source=workload.label,
    )


def _cacheable(
    statements: pd.DataFrame,
    code: CodeMap,
    workload: Workload,
    table_writes: dict[str, int],
    requests: pd.DataFrame,
    *,
    config: AuditConfig,
) -> list[Finding]:
    return cacheable_reads(
        statements,
        code,
        config,
        total_ms=workload.db_ms,
        window_s=workload.window_s,
        source=workload.label,
        table_writes=table_writes,
        requests=requests,
    )


def _mysql_server(
    status_delta: pd.DataFrame,
    server_status: pd.DataFrame,
    digests: pd.DataFrame,
    profile: pd.DataFrame,
    *,
    config: AuditConfig,
) -> list[Finding]:
    return mysql_server_health(status_delta, server_status, digests, config, profile)


def _http_cache(cdn: pd.DataFrame, requests: pd.DataFrame, *, config: AuditConfig) -> list[Finding]:
    return http_cache_findings(cdn, requests, config)


def _plans(plan_nodes: pd.DataFrame, *, config: AuditConfig) -> list[Finding]:
    return plan_checks(plan_nodes, config)


def _errors(server_events: pd.DataFrame, *, config: AuditConfig) -> list[Finding]:
    return server_errors(server_events)


def _workers(
    server_events: pd.DataFrame,
    server_settings: pd.DataFrame,
    requests: pd.DataFrame,
    *,
    config: AuditConfig,
) -> list[Finding]:
    return worker_failures(server_events, server_settings, requests)


def _temp(server_events: pd.DataFrame, *, config: AuditConfig) -> list[Finding]:
    return temp_files(server_events)


def _quality(files: Any, *, config: AuditConfig) -> list[Finding]:
    return data_quality(files)


def _capacity(
    load_steps: pd.DataFrame,
    capacity_fit: Any,
    traffic: Any,
    deployment: dict[str, Any],
    capacity_plan: Any,
    *,
    config: AuditConfig,
) -> list[Finding]:
    return capacity_limit(
        load_steps, capacity_fit, traffic, deployment, capacity_plan, config=config
    )


def _budget(
    deployment: dict[str, Any], capacity_plan: Any, *, config: AuditConfig
) -> list[Finding]:
    return connection_budget(deployment, capacity_plan, config=config)


def _churn(churn: Any, deployment: dict[str, Any], *, config: AuditConfig) -> list[Finding]:
    return connection_churn(churn, deployment, config=config)


def _background(request_times: pd.DataFrame, *, config: AuditConfig) -> list[Finding]:
    return background_task_candidates(request_times, config)


_PLAN_IDS = (
    "plan_time_share",
    "plan_misestimate",
    "plan_rows_removed",
    "plan_hash_batches",
    "plan_sort_disk",
    "plan_heap_fetches",
    "plan_nested_loop",
    "plan_seq_scan",
)

#: every check, in the order the audit runs them
REGISTRY: tuple[CheckSpec, ...] = (
    CheckSpec(
        "data_quality",
        "overview",
        ("data_quality",),
        ("files",),
        None,
        "",
        _quality,
        always=True,
    ),
    CheckSpec(
        "n_plus_one",
        "queries",
        ("n_plus_one",),
        ("statements", "code", "workload"),
        "n_plus_one",
        "statements grouped by request: a query log (Django, the capture app, or a server log "
        "with one connection per request) or traces",
        n_plus_ones,
        requires=("statements",),
    ),
    CheckSpec(
        "duplicate_query",
        "queries",
        ("duplicate_query",),
        ("statements", "code", "workload"),
        "n_plus_one",
        "statements grouped by request (a query log or traces)",
        duplicates_per_request,
        requires=("statements",),
    ),
    CheckSpec(
        "slow_query",
        "queries",
        ("slow_query",),
        ("workload", "statement_endpoints", "plan_nodes", "dialect", "sql"),
        "slow_query",
        "timed statements: a query log or a pg_stat_statements export",
        _slow,
        requires=("workload",),
    ),
    CheckSpec(
        "server_errors",
        "queries",
        ("server_errors",),
        ("server_events",),
        None,
        "a database server log",
        _errors,
    ),
    CheckSpec(
        "temp_files",
        "queries",
        ("temp_files",),
        ("server_events",),
        None,
        "a database server log with log_temp_files",
        _temp,
    ),
    CheckSpec(
        "missing_index",
        "indexing",
        ("missing_index", "data_quality"),
        (
            "workload",
            "catalog",
            "code",
            "plan_nodes",
            "statement_endpoints",
            "sql",
            "dialect",
            "pg_stat_statements",
            "files",
        ),
        "index",
        "timed statements (a query log or pg_stat_statements); index and table statistics "
        "sharpen the advice",
        _missing_index,
        requires=("workload",),
    ),
    CheckSpec(
        "unused_index",
        "indexing",
        ("unused_index",),
        ("catalog", "code", "dialect"),
        "index",
        "index usage statistics (pg_stat_user_indexes, or performance_schema on MySQL)",
        _unused,
        requires=("catalog",),
    ),
    CheckSpec(
        "duplicate_index",
        "indexing",
        ("duplicate_index",),
        ("catalog", "code", "dialect"),
        "index",
        "index definitions (pg_indexes, SHOW INDEX or a model dump)",
        _duplicates,
        requires=("catalog",),
    ),
    CheckSpec(
        "plans",
        "indexing",
        _PLAN_IDS,
        ("plan_nodes",),
        "plan",
        "EXPLAIN plans of the slowest statements",
        _plans,
    ),
    CheckSpec(
        "low_cache_hit_ratio",
        "caching",
        ("low_cache_hit_ratio",),
        (
            "cache_stats",
            "pg_stat_statements",
            "cache_events",
            "statements",
            "code",
            "requests",
            "buffer_cache",
            "workload",
            "frames",
        ),
        "cache",
        "cache statistics (Redis INFO, memcached stats), cache events (the capture app), "
        "pg_statio_* or pg_stat_statements block counters",
        _cache_hits,
        requires=(
            "cache_stats",
            "cache_events",
            "buffer_cache",
            "pg_stat_statements",
        ),
    ),
    CheckSpec(
        "cache_candidate",
        "caching",
        ("cache_candidate",),
        ("statements", "code", "workload", "table_writes", "requests"),
        "cache",
        "statements with their parameters, tied to requests (a query log)",
        _cacheable,
        requires=("statements",),
    ),
    CheckSpec(
        "mysql_server",
        "caching",
        ("low_cache_hit_ratio", "temp_files", "plan_nested_loop"),
        ("status_delta", "server_status", "pg_stat_statements", "profile"),
        "mysql_server",
        "SHOW GLOBAL STATUS of a MySQL/MariaDB server, ideally before and after the audited "
        "period, with SHOW GLOBAL VARIABLES",
        _mysql_server,
        requires=("server_status",),
    ),
    CheckSpec(
        "http_cache",
        "caching",
        ("http_cache",),
        ("cdn", "requests"),
        "cache",
        "requests with the CDN's or proxy's cache status, or requests for static files (an "
        "access log with $upstream_cache_status, CDN logs)",
        _http_cache,
        requires=("cdn", "requests"),
    ),
    CheckSpec(
        "capacity_limit",
        "scaling",
        ("capacity_limit",),
        ("load_steps", "capacity_fit", "traffic", "deployment", "capacity_plan"),
        "capacity",
        "a stepped load test (Locust CSV history), or production request timings (an access "
        "log with request times)",
        _capacity,
        requires=("load_samples", "traffic"),
    ),
    CheckSpec(
        "connection_budget",
        "scaling",
        ("connection_budget",),
        ("deployment", "capacity_plan"),
        "capacity",
        "the server's max_connections (pg_settings or audit.yaml) and the deployment's workers",
        _budget,
        requires=("max_connections",),
    ),
    CheckSpec(
        "connection_churn",
        "scaling",
        ("connection_churn",),
        ("churn", "deployment"),
        "capacity",
        "database sessions counted: a PostgreSQL log with log_connections, or snapshots of "
        "pg_stat_database or MySQL's SHOW GLOBAL STATUS",
        _churn,
        requires=("churn",),
    ),
    CheckSpec(
        "worker_failures",
        "scaling",
        ("worker_failures",),
        ("server_events", "server_settings", "requests"),
        None,
        "an application-server log (gunicorn's error log, uWSGI's log)",
        _workers,
        requires=("app_server_log",),
    ),
    CheckSpec(
        "background_task_candidate",
        "scaling",
        ("background_task_candidate",),
        ("request_times",),
        "capacity",
        "per-request timings beyond the database: CPU time or time on e-mail and outbound calls "
        "(the capture app, or traces with their outbound spans)",
        _background,
        requires=("request_waits",),
    ),
)

_BY_NAME = {s.name: s for s in REGISTRY}


def spec(name: str) -> CheckSpec:
    """The registry entry ``name``; an unknown name is a :class:`ConfigError` naming them all."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(
            f"unknown check {name!r}", hint=f"checks: {', '.join(_BY_NAME)}"
        ) from None
