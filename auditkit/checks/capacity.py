"""Scaling and capacity: where the system stops keeping up, and what it needs to go further.

* :func:`capacity_limit` — the capacity model: the Universal Scalability Law fitted to the
  load test's steps (:mod:`auditkit.analysis.capacity`), its saturation point, peak and the
  plan it implies (:mod:`auditkit.analysis.plan`); without a load test, what production
  traffic alone says (:mod:`auditkit.analysis.traffic`).
* :func:`connection_budget` — database connections the deployment can open at peak
  (instances × web workers × threads, plus background workers; audit.yaml, the application
  server's start-up log, pg_settings) against ``max_connections`` less headroom.
* :func:`connection_churn` — a new database session per request (``CONN_MAX_AGE = 0``), from
  the server's connection log lines or its session counters (:mod:`auditkit.analysis.connections`).
* :func:`background_task_candidates` — endpoints whose requests wait on e-mail, outbound HTTP
  or other work outside the database, the cache and the CPU: work for a background task.

Thresholds: the ``capacity`` family of :mod:`auditkit.config`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from auditkit.analysis.capacity import USLFit
from auditkit.analysis.connections import Churn
from auditkit.analysis.plan import CapacityPlan
from auditkit.analysis.traffic import TrafficShape, busy_workers
from auditkit.checks.severity import of_impact
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Impact,
    Recommendation,
    Severity,
    Subject,
    duration_text,
    plural,
)

__all__ = [
    "background_task_candidates",
    "capacity_limit",
    "connection_budget",
    "connection_churn",
]


def _r(v: float, digits: int = 3) -> float | None:
    """A metric value: rounded, ``None`` for infinities and NaN (JSON has neither)."""
    if v is None or not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def _sentences(parts: tuple[str, ...]) -> str:
    """Warnings as sentences: capitalised, each ending with a full stop."""
    return " ".join(p[:1].upper() + p[1:] + ("" if p.endswith(".") else ".") for p in parts)


def capacity_limit(
    load_steps: pd.DataFrame,
    capacity_fit: USLFit | None,
    traffic: TrafficShape | None,
    deployment: dict[str, Any],
    capacity_plan: CapacityPlan,
    *,
    config: AuditConfig | None = None,
) -> list[Finding]:
    """The system's ceiling from the fitted capacity model, or — without a load test — what
    production traffic alone supports (see the module docstring)."""
    t = (config or AuditConfig()).thresholds("capacity")
    if capacity_fit is None or len(load_steps) == 0:
        return _from_production(traffic, deployment, t)
    steps = load_steps[load_steps["trusted"].astype(bool)].sort_values("users")
    fit = capacity_fit
    failing = steps[steps["failure_rate"] > t["max_failure_rate"]]
    base = steps.iloc[0] if len(steps) else load_steps.iloc[0]
    degraded = (
        steps[steps["p95_ms"] >= t["p95_degradation"] * base["p95_ms"]]
        if len(steps) and pd.notna(base["p95_ms"])
        else steps.iloc[0:0]
    )
    items = tuple(
        {
            "users": int(r["users"]),
            "rps": None if pd.isna(r["rps"]) else round(float(r["rps"]), 2),
            "p95_ms": None if pd.isna(r["p95_ms"]) else float(r["p95_ms"]),
            "failure_rate": round(float(r["failure_rate"]), 4),
            "trusted": bool(r["trusted"]),
        }
        for _, r in load_steps.iterrows()
    )
    if not fit.usable:
        fails = ""
        if len(failing):
            f0 = failing.iloc[0]
            fails = (
                f" {f0['failure_rate']:.0%} of requests failed at {int(f0['users'])} users: the "
                "service is past its limit there."
            )
        return [
            Finding(
                check="capacity_limit",
                severity=Severity.HIGH if len(failing) else Severity.INFO,
                title="The load test cannot carry a capacity model"
                + (
                    f"; requests fail at {int(failing['users'].iloc[0])} users"
                    if len(failing)
                    else ""
                ),
                summary=_sentences(fit.warnings)
                + (
                    f" Measured: up to {float(steps['rps'].max()):.1f} requests/s at "
                    f"{int(steps.sort_values('rps')['users'].iloc[-1])} users."
                    if len(steps)
                    else ""
                )
                + fails,
                subject=Subject(expression="load test"),
                metrics={"steps": len(load_steps), "trusted_steps": len(steps)},
                recommendation=Recommendation(
                    summary="Run a stepped load test of at least four steps held a minute each, "
                    "from one user to past the point where throughput stops rising."
                ),
                evidence=Evidence(strength=EvidenceStrength.STATISTICS, items=items),
                chapter="scaling",
            )
        ]
    # the saturation point: where one user's throughput, repeated, reaches the peak (the
    # classic N* of operational analysis); the peak itself sits at the model's N*
    n_sat = fit.peak_rps / fit.lam if fit.lam > 0 else float("nan")
    peak_obs = steps.sort_values("rps").iloc[-1]
    saturated = not any(w.startswith("saturation not reached") for w in fit.warnings)
    healthy = steps[steps["users"] < (degraded["users"].min() if len(degraded) else np.inf)]
    last_good = healthy.iloc[-1] if len(healthy) else base
    severity = (
        Severity.HIGH
        if len(failing)
        else Severity.MEDIUM
        if len(degraded) or saturated
        else Severity.INFO
    )
    why = []
    if len(degraded):
        d = degraded.iloc[0]
        why.append(
            f"p95 reaches {d['p95_ms']:.0f} ms at {int(d['users'])} users against "
            f"{base['p95_ms']:.0f} ms at {int(base['users'])}"
        )
    if len(failing):
        f0 = failing.iloc[0]
        why.append(f"{f0['failure_rate']:.1%} of requests fail at {int(f0['users'])} users")
    n_star_txt = (
        f"peaks at {fit.peak_rps:.1f} requests/s near {fit.n_star:.0f} users and falls beyond"
        if math.isfinite(fit.n_star)
        else f"approaches {fit.peak_rps:.1f} requests/s (no retrograde term)"
    )
    plan = capacity_plan
    plan_txt = ""
    if plan.instances is not None and plan.target_rps:
        plan_txt = (
            f"For {plan.target_rps:.0f} requests/s the plan needs {plural(plan.instances, 'instance')} "
            f"of {plan.per_instance_rps:.1f} requests/s each."
        )
    title = (
        f"Saturation at about {n_sat:.0f} concurrent users ({fit.peak_rps:.1f} requests/s at most)"
        if saturated
        else f"No ceiling reached up to {int(steps['users'].max())} users; the model puts it near {n_sat:.0f}"
    )
    metrics: dict[str, Any] = {
        "sigma": _r(fit.sigma),
        "sigma_low": _r(fit.sigma_ci[0]),
        "sigma_high": _r(fit.sigma_ci[1]),
        "kappa": _r(fit.kappa),
        "kappa_low": _r(fit.kappa_ci[0]),
        "kappa_high": _r(fit.kappa_ci[1]),
        "lambda": _r(fit.lam),
        "n_star": _r(fit.n_star),
        "peak_rps": _r(fit.peak_rps),
        "r_squared": _r(fit.r_squared, 4),
        "limit_users": round(n_sat),
        "measured_peak_rps": round(float(peak_obs["rps"]), 3),
        "healthy_users": int(last_good["users"]),
        "healthy_rps": round(float(last_good["rps"]), 3),
        # what to plan for on the tested deployment: the plan's per-instance figure (the
        # latency objective may hold it below the model's peak × headroom)
        "safe_rps": _r(
            plan.per_instance_rps * plan.instances_now
            if plan.per_instance_rps
            else fit.peak_rps * t["headroom"]
        ),
        "steps": len(steps),
        "target_rps": _r(plan.target_rps) if plan.target_rps else None,
        "instances_needed": plan.instances,
    }
    return [
        Finding(
            check="capacity_limit",
            severity=severity,
            title=title,
            summary=(
                "Throughput under the load test "
                + (
                    "follows the Universal Scalability Law closely"
                    if fit.r_squared >= t["min_r_squared"]
                    else "fits the Universal Scalability Law poorly"
                )
                + f" (R² {fit.r_squared:.3f} over {len(steps)} steps): one user alone gets "
                f"{fit.lam:.2f} requests/s, contention σ = {fit.sigma:.3g} and coherency "
                f"κ = {fit.kappa:.3g}, so throughput {n_star_txt}. "
                + (("Latency degrades first: " + "; ".join(why) + ". ") if why else "")
                + plan_txt
            ),
            subject=Subject(expression="load test"),
            metrics=metrics,
            recommendation=Recommendation(
                summary=(
                    (plan.scale[:1].upper() + plan.scale[1:] + ". " if plan.scale else "")
                    + "Remove the work the other chapters point at first (it moves the whole "
                    "curve up: see the what-if), then size instances, workers and connections "
                    "from the capacity plan."
                ),
            ),
            evidence=Evidence(
                strength=EvidenceStrength.STATISTICS,
                items=items,
                note=_sentences(fit.warnings) or None,
            ),
            chapter="scaling",
            action=(
                f"Plan for {plan.per_instance_rps or fit.peak_rps * t['headroom']:.0f} requests/s "
                f"per instance as deployed (saturation near {n_sat:.0f} users)"
                + (
                    f": {plural(plan.instances, 'instance')} for {plan.target_rps:.0f} requests/s."
                    if plan.instances and plan.target_rps
                    else "."
                )
            ),
        )
    ]


def _from_production(
    traffic: TrafficShape | None, deployment: dict[str, Any], t: dict[str, Any]
) -> list[Finding]:
    """Without a load test: the peak production saw and the workers it kept busy."""
    if traffic is None:
        return []
    _mean_busy, peak_busy = busy_workers(traffic)
    instances = int(deployment.get("instances", 1))
    workers = deployment.get("web_workers")
    threads = int(deployment.get("threads_per_worker", 1))
    total = instances * int(workers) * threads if workers else None
    src = deployment.get("sources") or {}
    could = (
        f"At the busiest {traffic.bucket_s} s, production served {traffic.peak_rps:.1f} requests/s "
        f"({traffic.peak_to_average:.1f}× its average of {traffic.mean_rps:.2f}); with "
        f"{duration_text(traffic.mean_ms)} per request in the application that keeps "
        f"{peak_busy:.1f} {'worker' if round(peak_busy, 1) == 1 else 'workers'} busy (Little's law)"
    )
    if total and math.isfinite(peak_busy):
        could += (
            f" of the {total} worker threads deployed ({src.get('web_workers', 'deployment')}): "
            f"{peak_busy / total:.0%} in use at the peak"
        )
        if traffic.mean_ms > 0:
            could += (
                f", so at most about {total / (traffic.mean_ms / 1000.0):.0f} requests/s if nothing "
                "else saturates first — an upper bound, not a measurement"
            )
    could += "."
    return [
        Finding(
            check="capacity_limit",
            severity=Severity.INFO,
            title=f"Production peak {traffic.peak_rps:.1f} requests/s; the ceiling is not measured",
            summary=(
                could
                + " Where latency would degrade, and whether the database or the workers give "
                "out first, only a load test can say."
            ),
            subject=Subject(expression="production traffic"),
            metrics={
                "peak_rps": _r(traffic.peak_rps),
                "mean_rps": _r(traffic.mean_rps),
                "peak_to_average": _r(traffic.peak_to_average),
                "busy_workers_at_peak": _r(peak_busy),
                "worker_threads": total,
                "window_s": round(traffic.window_s, 1),
            },
            recommendation=Recommendation(
                summary=(
                    "Run a stepped load test against a copy of production (Locust with a "
                    "LoadTestShape: four or more steps held a minute each, from one user to past "
                    "the point where throughput stops rising) to measure the ceiling."
                )
            ),
            evidence=Evidence(
                strength=EvidenceStrength.STATISTICS, note="from the request log only"
            ),
            chapter="scaling",
        )
    ]


def connection_churn(
    churn: Churn | None, deployment: dict[str, Any], *, config: AuditConfig | None = None
) -> list[Finding]:
    """A new database session per request: ``CONN_MAX_AGE`` or a pool would keep them."""
    t = (config or AuditConfig()).thresholds("capacity")
    if churn is None or churn.sessions == 0:
        return []
    per_request = churn.per_request
    short = churn.median_session_ms is not None and churn.median_session_ms < 1000.0
    if per_request is None:
        # no request count: only many short sessions say the same thing
        if not (short and churn.per_second >= 1.0):
            return []
    elif per_request < t["churn_min_sessions_per_request"]:
        return []
    src = deployment.get("sources") or {}
    setting = ""
    if "conn_max_age" in deployment:
        setting = (
            f" The deployment sets CONN_MAX_AGE = {deployment['conn_max_age']} "
            f"({src.get('conn_max_age', 'audit.yaml')})."
        )
    dbs = ", ".join(churn.databases)
    target = f' whose NAME is "{churn.databases[0]}"' if len(churn.databases) == 1 else ""
    rate = (
        f"{churn.sessions:,} sessions for {churn.requests:,} requests ({per_request:.2f} per request)"
        if per_request is not None
        else f"{churn.sessions:,} sessions in {churn.window_s:.0f} s ({churn.per_second:.1f} per second)"
    )
    length = (
        f", lasting {duration_text(churn.median_session_ms)} (median)"
        if churn.median_session_ms is not None
        else ""
    )
    impact = None
    if churn.setup_ms is not None and per_request is not None and churn.requests:
        impact = Impact(
            response_ms_per_request=round(churn.setup_ms * min(per_request, 1.0), 2),
            requests=churn.requests,
            window_s=round(churn.window_s, 1),
            source=churn.source,
            basis="measured",
            note=(
                "the server's share of each new session (connection received → authorized); "
                "the network round trips and TLS add to it"
            ),
        )
    mysql = churn.source.startswith("MySQL")
    django = (
        "DATABASES = {\n"
        f'    "default": {{  # the entry{target}\n'
        "        ...,\n"
        '        "CONN_MAX_AGE": 60,  # keep the connection between requests (seconds)\n'
        '        "CONN_HEALTH_CHECKS": True,  # Django ≥ 4.1: re-check it before reuse\n'
        "    }\n"
        "}"
    )
    pool = (
        ""
        if mysql
        else ' Or, with Django ≥ 5.1 and psycopg 3, a pool: "OPTIONS": {"pool": True} (keep '
        "CONN_MAX_AGE at 0 then), or PgBouncer in front of the server."
    )
    return [
        Finding(
            check="connection_churn",
            severity=of_impact(impact, config) if impact else Severity.LOW,
            title=(
                f"A new database connection for {'every' if (per_request or 0) >= 0.8 else 'many a'} request"
                + (f" ({dbs})" if dbs else "")
            ),
            summary=(
                f"{churn.source[:1].upper() + churn.source[1:]} counts {rate}{length}: "
                "Django opens a connection at the start of a request and closes it at the end, "
                "so each request pays a handshake, authentication and a new server process."
                + setting
            ),
            subject=Subject(expression="CONN_MAX_AGE"),
            metrics={
                "sessions": churn.sessions,
                "requests": churn.requests,
                "sessions_per_request": _r(per_request) if per_request is not None else None,
                "sessions_per_s": _r(churn.per_second),
                "median_session_ms": _r(churn.median_session_ms)
                if churn.median_session_ms is not None
                else None,
                "setup_ms": _r(churn.setup_ms) if churn.setup_ms is not None else None,
                "threads_created": churn.threads_created,
            },
            recommendation=Recommendation(
                summary=(
                    "Keep connections between requests: set CONN_MAX_AGE in the DATABASES entry"
                    f"{target} of the settings (60 s is a common start) with CONN_HEALTH_CHECKS."
                    + pool
                    + (
                        " Persistent connections hold one connection per worker thread: check the "
                        "connection budget."
                        if "max_connections" in deployment
                        else " Persistent connections hold one connection per worker thread; the "
                        "server's connection limit (max_connections) was not among the files, so "
                        "whether the workers fit under it is unknown: check it before the change."
                    )
                ),
                django=django,
            ),
            evidence=Evidence(
                strength=EvidenceStrength.PATTERN
                if churn.source.startswith("the PostgreSQL log")
                else EvidenceStrength.STATISTICS,
                items=(
                    {
                        "source_file": churn.source_file,
                        "source_line": churn.first_line,
                        "sessions": churn.sessions,
                    },
                )
                if churn.source_file
                else (),
            ),
            impact=impact,
            chapter="scaling",
            action=(
                "Keep database connections between requests (CONN_MAX_AGE): "
                + (impact.phrase() if impact else "one connection per request today")
                + "."
            ),
        )
    ]


def connection_budget(
    deployment: dict[str, Any],
    capacity_plan: CapacityPlan | None = None,
    *,
    config: AuditConfig | None = None,
) -> list[Finding]:
    """Connections the deployment can open at peak against the server's max_connections; with
    a capacity plan, also at the planned size."""
    t = (config or AuditConfig()).thresholds("capacity")
    if not deployment or "max_connections" not in deployment:
        return []
    reserved = int(deployment.get("reserved_connections", 3))  # superuser_reserved_connections
    allowed = int(deployment["max_connections"]) - reserved
    kept = (
        f"max_connections less {reserved} reserved"
        if reserved
        else "max_connections, none reserved"
    )
    sources = deployment.get("sources") or {}
    facts = (
        ", ".join(f"{k} from {v}" for k, v in sorted(sources.items()) if k != "sources")
        or "the deployment facts given"
    )
    if not deployment.get("web_workers"):
        # the workers are unknown: so is the peak; say so rather than count one worker
        return [
            Finding(
                check="connection_budget",
                severity=Severity.INFO,
                title=f"Database connections: {allowed} allowed, the deployment's peak unknown",
                summary=(
                    f"The server allows {plural(allowed, 'connection')} ({kept}), but how many web workers and threads the deployment "
                    "runs was not among the files, so how many connections it opens at peak is "
                    "unknown."
                ),
                subject=Subject(expression="max_connections"),
                metrics={"allowed": allowed},
                recommendation=Recommendation(
                    summary=(
                        "Give the deployment's instances, web_workers and threads_per_worker in "
                        "audit.yaml (deployment:), or send the application server's start-up log "
                        "(gunicorn --log-level info, uWSGI's log), so the audit can count them."
                    )
                ),
                evidence=Evidence(strength=EvidenceStrength.INFERRED, note=facts),
                chapter="scaling",
            )
        ]
    instances = int(deployment.get("instances", 1))
    workers = int(deployment["web_workers"])
    threads_known = "threads_per_worker" in deployment
    threads = int(deployment.get("threads_per_worker", 1))
    background = int(deployment.get("background_workers", 0)) * int(
        deployment.get("background_concurrency", 1)
    )
    need = instances * workers * threads + background
    usable = allowed * t["headroom"]
    over = need > usable
    per_process = max(1, int((usable - background) // max(1, instances * workers)))
    django = (
        'DATABASES["default"]["OPTIONS"]["pool"] = '
        f'{{"min_size": 1, "max_size": {per_process}}}  # Django ≥ 5.1 with psycopg 3'
        if over
        else None
    )
    plan = capacity_plan
    planned = ""
    if plan is not None and plan.connections is not None and plan.instances:
        planned = (
            f" At the planned {plural(plan.instances, 'instance')} the deployment needs "
            f"{plan.connections} connections (with background and maintenance ones) of "
            f"{plan.connections_allowed}"
            + (": a pooler becomes necessary." if plan.pooler else ": still within the limit.")
        )
    counted = (
        f"{plural(instances, 'instance')} × {plural(workers, 'web worker')} × "
        + (
            plural(threads, "thread")
            if threads_known
            else "1 thread (threads per worker not stated: a synchronous worker's one)"
        )
        + (f" + {plural(background, 'background worker slot')}" if background else "")
    )
    return [
        Finding(
            check="connection_budget",
            severity=Severity.CRITICAL
            if need > allowed
            else Severity.HIGH
            if over
            else Severity.INFO,
            title=f"Database connections at peak: {need} of {allowed} allowed",
            summary=(
                counted
                + f" can hold {plural(need, 'connection')}; the server allows {allowed} ({kept})."
                + (
                    " That leaves no room for migrations, shells and monitoring."
                    if over
                    else " There is headroom."
                )
                + planned
            ),
            subject=Subject(expression="max_connections"),
            metrics={
                "needed": need,
                "allowed": allowed,
                "usable_with_headroom": round(usable, 1),
                "instances": instances,
                "web_workers": workers,
                "threads_per_worker": threads,
                "background_slots": background,
                "planned_needed": plan.connections if plan is not None else None,
                "planned_instances": plan.instances if plan is not None else None,
            },
            recommendation=Recommendation(
                summary=(
                    "Put a pooler between the workers and PostgreSQL — PgBouncer in transaction "
                    f"mode, or Django's own pool capped at {plural(per_process, 'connection')} per worker "
                    "process — or lower workers × threads per instance before adding instances."
                    if over
                    else 'Put PgBouncer (transaction mode) or Django\'s pool (OPTIONS["pool"], '
                    "Django ≥ 5.1 with psycopg 3) in place before scaling to the planned size."
                    if plan is not None and plan.pooler
                    else "Keep this budget in mind when adding instances, workers or threads."
                ),
                django=django,
            ),
            evidence=Evidence(strength=EvidenceStrength.INFERRED, note=facts),
            chapter="scaling",
        )
    ]


def background_task_candidates(
    requests: pd.DataFrame, config: AuditConfig | None = None
) -> list[Finding]:
    """Endpoints whose requests wait on work outside the database that could leave the request.

    Only on evidence of *waiting*: the request's time spent on e-mail or outbound HTTP
    (``mail_ms``, ``http_ms``, ``external_ms`` from the capture app or traces), or its wall time
    minus database, cache and CPU time (``cpu_ms``) — never from a missing number. A view that is
    slow because it computes (password hashing) uses CPU and is not proposed.
    """
    t = (config or AuditConfig()).thresholds("capacity")
    if len(requests) == 0 or requests["duration_ms"].isna().all():
        return []
    df = requests.dropna(subset=["duration_ms"])
    df = df.assign(endpoint=df["endpoint"].astype("string").fillna("(unknown endpoint)"))
    outbound = [c for c in ("mail_ms", "http_ms", "external_ms") if c in df and df[c].notna().any()]
    has_cpu = "cpu_ms" in df and df["cpu_ms"].notna().any()
    if not outbound and not has_cpu:
        return []
    db = pd.to_numeric(df["db_ms"], errors="coerce") if "db_ms" in df else None
    if db is None or db.isna().all():
        return []
    cache = pd.to_numeric(df["cache_ms"], errors="coerce").fillna(0.0) if "cache_ms" in df else 0.0
    known = sum(
        (pd.to_numeric(df[c], errors="coerce").fillna(0.0) for c in outbound),
        start=pd.Series(0.0, index=df.index),
    )
    if has_cpu:
        waiting = (
            df["duration_ms"]
            - db.fillna(0.0)
            - cache
            - pd.to_numeric(df["cpu_ms"], errors="coerce")
        ).clip(lower=0.0)
        waiting = waiting.where(pd.to_numeric(df["cpu_ms"], errors="coerce").notna(), known)
    else:
        waiting = known
    df = df.assign(_wait=waiting, _db=db, _known=known)
    out = []
    for endpoint, g in df.groupby("endpoint"):
        wait = float(g["_wait"].median())
        share_db = float(g["_db"].sum() / g["duration_ms"].sum()) if g["duration_ms"].sum() else 0.0
        if wait < t["background_min_wait_ms"] or share_db > t["background_max_db_share"]:
            continue
        on = [
            c.removesuffix("_ms").replace("http", "outbound HTTP").replace("mail", "e-mail")
            for c in outbound
            if g[c].fillna(0).median() > 0
        ]
        what = " and ".join(on) if on else "work outside the database, the cache and the CPU"
        n = len(g)
        views = sorted({str(v) for v in g["view"].dropna()}) if "view" in g else []
        view = views[0] if len(views) == 1 else None
        where = f"{view} (the view of {endpoint})" if view else str(endpoint)
        impact = Impact(
            response_ms_per_request=round(wait, 1),
            requests=n,
            source="requests",
            basis="measured",
            note="the median time a request waits on " + what,
        )
        out.append(
            Finding(
                check="background_task_candidate",
                severity=of_impact(impact, config),
                title=f"{endpoint}: requests wait {duration_text(wait)} on {what}",
                summary=(
                    f"Over {n:,} requests, {endpoint} takes {duration_text(float(g['duration_ms'].median()))} "
                    f"(median), of which {duration_text(wait)} waiting on {what} and "
                    f"{share_db:.0%} in the database. The visitor waits for it, and the worker "
                    "serving the request can serve no one else meanwhile."
                ),
                subject=Subject(endpoint=str(endpoint)),
                metrics={
                    "view": view,
                    "requests": n,
                    "median_ms": round(float(g["duration_ms"].median()), 1),
                    **{
                        f"median_{c}": round(float(g[c].median()), 1)
                        for c in outbound
                        if g[c].notna().any()
                    },
                    "waiting_ms": round(wait, 1),
                    "db_share": round(share_db, 4),
                },
                recommendation=Recommendation(
                    summary=(
                        f"In {where}, save what the request must save, answer, and do the "
                        f"{what} in a background task (Celery, RQ or Django's tasks framework), "
                        "queued with transaction.on_commit so the task sees the committed rows."
                    ),
                ),
                evidence=Evidence(
                    strength=EvidenceStrength.PATTERN,
                    note="waiting = wall time − database − cache − CPU"
                    if has_cpu
                    else f"time recorded on {what}",
                ),
                impact=impact,
                chapter="scaling",
                action=f"Move the {what} of {where} to a background task: it {impact.phrase()}.",
            )
        )
    return out
