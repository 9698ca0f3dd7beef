"""The data-quality check: inputs that could not be fully used, as ``data_quality`` findings.

Reads only :attr:`ClientData.files` (the loader's parse reports), so it runs on every client:

* a file that failed to load → medium (part of the picture is missing);
* a file that could not be read at all (permissions, an I/O error) → medium, with the reason;
* a file whose loader skipped records → low, with the reasons, counts and first line numbers;
* a file loaded with warnings only (e.g. non-English server messages) → info;
* an unrecognised file → info (clients send unrelated files; this is never fatal);
* no usable file at all → high (the audit has nothing to stand on).

Severity follows the kind of problem, not a numeric threshold, so there is nothing to tune.
Excerpts of skipped records are raw client text; reports redact them like any other input.

Advice names the software that wrote the input: a PostgreSQL log is fixed with
``log_line_prefix``, a Django log with its ``LOGGING`` formatter, a slow log with MySQL's own
settings. :func:`how_to_collect` says, for a check that could not run, what to switch on in the
client's own database and application (:func:`software_of` tells them from the files received).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from auditkit.findings import Evidence, EvidenceStrength, Finding, Recommendation, Severity, Subject

if TYPE_CHECKING:
    from auditkit.client import InputFile

__all__ = ["data_quality", "how_to_collect", "software_of"]

#: skipped-record samples kept as evidence per file
_SAMPLES = 5


def data_quality(files: Sequence[InputFile]) -> list[Finding]:
    """One finding per input file that was not fully used, plus one if nothing was usable."""
    out: list[Finding] = []
    for f in files:
        subject = Subject(file=f.path)
        r = f.report
        if f.status == "error":
            items = tuple(
                {"line": s.line, "reason": s.reason, "excerpt": s.excerpt}
                for s in (r.samples[:_SAMPLES] if r else [])
            )
            out.append(
                Finding(
                    check="data_quality",
                    severity=Severity.MEDIUM,
                    title=f"Could not read {f.path}",
                    summary=f.error or "the loader failed on this file",
                    subject=subject,
                    metrics={
                        "read": r.read if r else None,
                        "parsed": r.parsed if r else None,
                        "size_bytes": f.size_bytes,
                    },
                    recommendation=Recommendation(
                        "Check that the file is complete and in a supported format; if detection "
                        "needs help, name its format in audit.yaml (formats: match/format)."
                    ),
                    evidence=Evidence(EvidenceStrength.PATTERN, items, note=f.format),
                )
            )
        elif f.status == "unreadable":
            out.append(
                Finding(
                    check="data_quality",
                    severity=Severity.MEDIUM,
                    title=f"Could not open {f.path}",
                    summary=f"The file {f.error or 'could not be read'}, so it was left out of the "
                    "audit; the other files were audited.",
                    subject=subject,
                    metrics={"size_bytes": f.size_bytes},
                    recommendation=Recommendation(
                        "Check the file's permissions and copy it again from the client (an I/O "
                        "error usually means a damaged copy or disk), then re-run the audit."
                    ),
                    evidence=Evidence(EvidenceStrength.PATTERN, (), note=f.error),
                )
            )
        elif f.status == "unrecognised":
            out.append(
                Finding(
                    check="data_quality",
                    severity=Severity.INFO,
                    title=f"Unrecognised file {f.path}",
                    summary="No loader recognises this file, so it was left out of the audit.",
                    subject=subject,
                    metrics={"size_bytes": f.size_bytes},
                    recommendation=Recommendation(
                        "If it holds data for the audit, name its format in audit.yaml; otherwise "
                        "list it under ignore."
                    ),
                    evidence=Evidence(EvidenceStrength.PATTERN, (), note=f.error),
                )
            )
        elif f.status == "loaded" and r is not None and r.skipped_total:
            reasons = ", ".join(f"{reason} ×{n}" for reason, n in r.skipped.most_common())
            items = tuple(
                {"line": s.line, "reason": s.reason, "excerpt": s.excerpt}
                for s in r.samples[:_SAMPLES]
            )
            metrics: dict[str, float | int | str | None] = {
                "read": r.read,
                "parsed": r.parsed,
                "skipped": r.skipped_total,
                "skipped_share": r.skipped_total / r.read if r.read else None,
            }
            out.append(
                Finding(
                    check="data_quality",
                    severity=Severity.LOW,
                    title=f"{r.skipped_total} of {r.read} records skipped in {f.path}",
                    summary=f"Skipped: {reasons}."
                    + (f" Warnings: {'; '.join(r.warnings)}." if r.warnings else ""),
                    subject=subject,
                    metrics=metrics,
                    recommendation=Recommendation(
                        "Skipped records are left out of every figure. " + _skipped_advice(f.format)
                    ),
                    evidence=Evidence(EvidenceStrength.PATTERN, items, note=f.format),
                )
            )
        elif f.status == "loaded" and r is not None and r.warnings:
            out.append(
                Finding(
                    check="data_quality",
                    severity=Severity.INFO,
                    title=f"Warnings while reading {f.path}",
                    summary="; ".join(r.warnings),
                    subject=subject,
                    metrics={"read": r.read, "parsed": r.parsed},
                    evidence=Evidence(EvidenceStrength.PATTERN, (), note=f.format),
                )
            )
    if not any(f.status == "loaded" for f in files):
        out.append(
            Finding(
                check="data_quality",
                severity=Severity.HIGH,
                title="No usable input",
                summary=f"None of the {len(files)} files in the client folder could be used.",
                subject=Subject(file="."),
                metrics={"files": len(files)},
                recommendation=Recommendation(
                    "Ask the client for query logs (Django or database server), statistics exports, "
                    "plans or traces; `auditkit formats` lists what can be read."
                ),
            )
        )
    return out


#: what to check when records of a format were skipped, by the software that wrote them
_SKIPPED_ADVICE: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("postgres_stderr", "postgres_syslog"),
        "If the reasons above are not expected, compare the server's log_line_prefix with the one "
        "the audit detected (a prefix with %m [%p] and %u@%d reads best), and keep "
        "lc_messages = 'C' so the server writes its messages in English.",
    ),
    (
        ("postgres_csvlog", "postgres_jsonlog"),
        "If the reasons above are not expected, check that the file is the server's complete "
        "csvlog/jsonlog output (log_destination), not a copy cut mid-line.",
    ),
    (
        ("mysql_slow",),
        "If the reasons above are not expected, check that the slow log comes from the server "
        "itself (slow_query_log_file) and was written with log_output = FILE.",
    ),
    (
        ("django_log",),
        "If the reasons above are not expected, check the formatter of the django.db.backends "
        "logger in the project's LOGGING setting: the audit reads Django's own message, "
        "'(0.002) SELECT … ; args=(…); alias=default', after any prefix.",
    ),
    (
        ("jsonl_queries", "cache_events"),
        "If the reasons above are not expected, check that the capture app's files were copied "
        "whole (a file still being written ends mid-record).",
    ),
    (
        ("access_log",),
        "If the reasons above are not expected, compare the web server's log_format with the "
        "combined format (nginx) or gunicorn's --access-logformat.",
    ),
)


def _skipped_advice(fmt: str | None) -> str:
    for formats, text in _SKIPPED_ADVICE:
        if fmt in formats:
            return text
    return (
        "If the reasons above are not expected, check the settings of the software that wrote "
        "the file against the format the audit detected (`auditkit formats` lists them)."
    )


def software_of(formats: Iterable[str | None], dialect: str | None = None) -> frozenset[str]:
    """The software behind the inputs: ``postgres``, ``mysql``, ``django``, ``redis``,
    ``memcached``, ``gunicorn``, ``uwsgi``, ``locust``, ``traces``.

    ``formats`` are the formats of the files received; ``dialect`` the workload's SQL dialect
    when statements were timed.

    >>> sorted(software_of(["pg_indexes", "django_log"]))
    ['django', 'postgres']
    """
    out: set[str] = set()
    for fmt in formats:
        if not fmt:
            continue
        if fmt.startswith(("pg_", "postgres_", "pgss_", "explain_pg")):
            out.add("postgres")
        elif fmt.startswith(("mysql_", "explain_mysql")):
            out.add("mysql")
        if fmt in (
            "django_log",
            "jsonl_queries",
            "django_models",
            "graph_models_json",
            "model_listing_json",
            "cache_events",
        ):
            out.add("django")
        for name in ("redis", "memcached", "gunicorn", "uwsgi", "locust"):
            if fmt.startswith(name):
                out.add(name)
        if fmt in (
            "otlp_json",
            "otel_sdk_json",
            "zipkin_json",
            "jaeger_json",
            "datadog_json",
            "newrelic_json",
            "newrelic_csv",
        ):
            out.add("traces")
    if dialect == "mysql":
        out.add("mysql")
    return frozenset(out)


_PG_STATEMENTS = (
    "On PostgreSQL, set log_min_duration_statement = 0 for the audited hour (or a threshold "
    "such as 50 ms on a busy server) with log_line_prefix = '%m [%p] %q%u@%d ', or enable "
    "pg_stat_statements (shared_preload_libraries, then CREATE EXTENSION pg_stat_statements) "
    "and export it at the start and the end of the period (auditkit collect postgres)."
)
_MY_STATEMENTS = (
    "On MySQL or MariaDB, turn on the slow log for the audited hour (SET GLOBAL slow_query_log "
    "= 1, long_query_time = 0), or export performance_schema's "
    "events_statements_summary_by_digest at the start and the end of the period."
)
_DJANGO_STATEMENTS = (
    "In Django, route the django.db.backends logger to a file at DEBUG in LOGGING (it logs only "
    "with DEBUG = True), or install auditkit's capture app (auditkit.django), which records "
    "every statement with its request in production."
)
_DJANGO_REQUESTS = (
    "In Django, install auditkit's capture app (auditkit.django: add it to INSTALLED_APPS and its "
    "middleware to MIDDLEWARE), which ties every statement to its request; or export traces "
    "(OpenTelemetry's Django and database instrumentation)."
)
_PG_INDEX_USAGE = (
    "On PostgreSQL, export pg_stat_user_indexes and pg_stat_user_tables (auditkit collect "
    "postgres writes them with the time their counters were last reset)."
)
_MY_INDEX_USAGE = (
    "On MySQL or MariaDB, export performance_schema.table_io_waits_summary_by_index_usage "
    "(performance_schema = ON)."
)
_PG_INDEXES = "On PostgreSQL, export pg_indexes (auditkit collect postgres writes it)."
_MY_INDEXES = (
    "On MySQL or MariaDB, export SHOW INDEX of each table (or information_schema.STATISTICS, or "
    "SHOW CREATE TABLE of each table)."
)
_DJANGO_MODELS = (
    "Or run manage.py auditkit_dump_models (auditkit's capture app) to send the models with "
    "their indexes."
)
_PG_PLANS = (
    "On PostgreSQL, run EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) on the slowest statements with "
    "real parameters (on a replica if they write), or enable auto_explain "
    "(auto_explain.log_min_duration, log_analyze = on)."
)
_MY_PLANS = (
    "On MySQL 8, run EXPLAIN ANALYZE on the slowest statements; on MariaDB, ANALYZE "
    "FORMAT=JSON; with older servers, EXPLAIN FORMAT=JSON."
)
_PG_SERVER_LOG = (
    "On PostgreSQL, keep the server log of the audited period (logging_collector = on) with "
    "log_line_prefix = '%m [%p] %q%u@%d '"
)


def how_to_collect(check: str, software: frozenset[str]) -> str:
    """What to switch on, in the client's own database and application, so ``check`` runs next
    time; empty when nothing specific is known for that check. Names both PostgreSQL and MySQL
    when the files do not say which database the client runs.

    Besides the registry's checks, ``index_keys`` is what tells the index advisor the keys of
    tables no export described (``pg_indexes``, ``SHOW INDEX``)."""
    pg = "postgres" in software or "mysql" not in software
    my = "mysql" in software or "postgres" not in software
    django = "django" in software or not (software & {"traces"})
    parts: list[str] = []
    if check in ("slow_query", "missing_index"):
        parts += [_PG_STATEMENTS] if pg else []
        parts += [_MY_STATEMENTS] if my else []
        parts += [_DJANGO_STATEMENTS] if django else []
    elif check in ("n_plus_one", "duplicate_query", "cache_candidate"):
        parts += [_DJANGO_REQUESTS]
        if pg:
            parts.append(
                "A PostgreSQL log with log_min_duration_statement = 0 serves too when each "
                "request holds its own connection (CONN_MAX_AGE = 0)."
            )
    elif check == "unused_index":
        parts += [_PG_INDEX_USAGE] if pg else []
        parts += [_MY_INDEX_USAGE] if my else []
    elif check in ("duplicate_index", "index_keys"):
        parts += [_PG_INDEXES] if pg else []
        parts += [_MY_INDEXES] if my else []
        parts += [_DJANGO_MODELS] if check == "duplicate_index" or "django" in software else []
    elif check == "plans":
        parts += [_PG_PLANS] if pg else []
        parts += [_MY_PLANS] if my else []
    elif check in ("server_errors", "temp_files"):
        if pg:
            extra = ", and log_temp_files = 0." if check == "temp_files" else "."
            parts.append(_PG_SERVER_LOG + extra)
        if my:
            parts.append("On MySQL or MariaDB, send the error log (log_error) of the period.")
    elif check == "connection_budget":
        if pg:
            parts.append("On PostgreSQL, export pg_settings (max_connections).")
        if my:
            parts.append("On MySQL or MariaDB, export SHOW GLOBAL VARIABLES (max_connections).")
        parts.append(
            "Give the deployment's web workers and threads per worker in audit.yaml (deployment:) "
            "or send gunicorn's start-up log."
        )
    elif check == "connection_churn":
        if pg:
            parts.append(
                "On PostgreSQL, set log_connections = on for the period, or export "
                "pg_stat_database at its start and its end."
            )
        if my:
            parts.append(
                "On MySQL or MariaDB, export SHOW GLOBAL STATUS at the start and the end of the "
                "period (Connections, Threads_created)."
            )
    elif check == "mysql_server" and my:
        parts.append(
            "Export SHOW GLOBAL STATUS at the start and the end of the period, and SHOW GLOBAL "
            "VARIABLES once."
        )
    elif check == "low_cache_hit_ratio":
        if "memcached" in software:
            parts.append("Send memcached's stats (and stats detail dump) at the start and the end.")
        if "redis" in software or "memcached" not in software:
            parts.append(
                "Send Redis INFO at the start and the end of the period (auditkit collect redis)."
            )
        if pg:
            parts.append("On PostgreSQL, export pg_statio_user_tables and pg_statio_user_indexes.")
    elif check == "background_task_candidate":
        parts.append(
            "Install auditkit's capture app (auditkit.django), which times e-mail, outbound HTTP "
            "and CPU per request, or send traces with their outbound spans."
        )
    elif check == "worker_failures":
        parts.append(
            "Send the application server's log of the period: gunicorn's --error-logfile (with "
            "--capture-output so the application's tracebacks land in it), or uWSGI's --logto."
        )
    elif check == "capacity_limit":
        parts.append(
            "Run a stepped load test (Locust with --csv and --csv-full-history, users rising in "
            "steps) or send the web server's access log with request times ($request_time in "
            "nginx, %(L)s or %(M)s in gunicorn's access log format)."
        )
    elif check == "http_cache":
        parts.append(
            "Send the proxy's access log with its cache status ($upstream_cache_status in nginx) "
            "or the CDN's logs."
        )
    return " ".join(parts)
