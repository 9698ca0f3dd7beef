"""Scaling and capacity: where the system stops keeping up, and what it needs to go further.

* :func:`load_steps` — a load test's history as steps of constant user count: throughput,
  p95, failure rate per step (the ``Aggregated`` rows of Locust's history).
* :func:`capacity_limit` — the first step where p95 exceeds ``p95_degradation`` × the
  first loaded step's p95, or failures exceed ``max_failure_rate``: the current ceiling, with
  the throughput reached before it.
* :func:`connection_budget` — database connections the deployment can open at peak
  (instances × web workers × threads, plus background workers; ``audit.yaml`` deployment
  facts) against ``max_connections`` less headroom.
* :func:`background_task_candidates` — endpoints slow at p95 while spending little of that
  time in the database: work (e-mail, files, HTTP calls) that belongs in a background task.

Thresholds: the ``capacity`` family of :mod:`auditkit.config`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd

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
)

__all__ = [
    "background_task_candidates",
    "capacity_limit",
    "connection_budget",
    "load_steps",
]


def load_steps(samples: pd.DataFrame) -> pd.DataFrame:
    """Per user-count step of a load-test history: rps, p95, failure rate, duration."""
    cols = ["users", "rps", "p95_ms", "p50_ms", "failure_rate", "seconds"]
    if len(samples) == 0 or "users" not in samples or samples["ts"].isna().all():
        return pd.DataFrame(columns=cols)
    df = samples[samples["ts"].notna()]
    agg = df[df["endpoint"] == "Aggregated"] if (df["endpoint"] == "Aggregated").any() else df
    agg = agg[(agg["users"] > 0) & (agg["rps"] > 0)]  # ramp-up seconds with nothing finished yet
    if len(agg) == 0:
        return pd.DataFrame(columns=cols)
    g = agg.groupby("users", sort=True)
    out = pd.DataFrame(
        {
            "rps": g["rps"].median(),
            "p95_ms": g["p95_ms"].median(),
            "p50_ms": g["p50_ms"].median(),
            "failure_rate": (g["failures_per_s"].sum() / g["rps"].sum().replace(0, np.nan)).fillna(
                0.0
            ),
            "seconds": g["ts"].agg(lambda s: (s.max() - s.min()).total_seconds()),
        }
    ).reset_index()
    return out[cols]


class _StepRow(Protocol):
    """A row of :func:`load_steps` from ``itertuples()`` (pandas-stubs types its fields as any scalar)."""

    users: float
    rps: float
    p95_ms: float
    failure_rate: float


def capacity_limit(samples: pd.DataFrame, config: AuditConfig | None = None) -> list[Finding]:
    """The load step where latency or errors degrade: the system's current ceiling."""
    t = (config or AuditConfig()).thresholds("capacity")
    steps = load_steps(samples).dropna(subset=["p95_ms"])
    if len(steps) < 2:
        return []
    base = steps.iloc[0]
    bad = steps[
        (steps["p95_ms"] >= t["p95_degradation"] * base["p95_ms"])
        | (steps["failure_rate"] > t["max_failure_rate"])
    ]
    if len(bad) == 0:
        top = steps.iloc[-1]
        return [
            Finding(
                check="capacity_limit",
                severity=Severity.INFO,
                title=f"No ceiling reached up to {int(top['users'])} users",
                summary=(
                    f"p95 stayed within {t['p95_degradation']:g}× of the first step and failures under "
                    f"{t['max_failure_rate']:.0%} up to {int(top['users'])} users ({top['rps']:.1f} requests/s): "
                    "the test did not find the limit."
                ),
                subject=Subject(expression="load test"),
                metrics={
                    "users": int(top["users"]),
                    "rps": round(float(top["rps"]), 3),
                    "p95_ms": float(top["p95_ms"]),
                },
                recommendation=Recommendation(
                    summary="Run a longer ramp to higher user counts to find the ceiling."
                ),
                evidence=Evidence(strength=EvidenceStrength.STATISTICS),
                chapter="scaling",
            )
        ]
    knee = bad.iloc[0]
    before = steps[steps["users"] < knee["users"]]
    last_good = before.iloc[-1] if len(before) else base
    why = []
    if knee["p95_ms"] >= t["p95_degradation"] * base["p95_ms"]:
        why.append(
            f"p95 {knee['p95_ms']:.0f} ms vs {base['p95_ms']:.0f} ms at {int(base['users'])} users"
        )
    if knee["failure_rate"] > t["max_failure_rate"]:
        why.append(f"{knee['failure_rate']:.1%} of requests failing")
    peak_rps = float(steps["rps"].max())
    return [
        Finding(
            check="capacity_limit",
            severity=Severity.HIGH
            if knee["failure_rate"] > t["max_failure_rate"]
            else Severity.MEDIUM,
            title=f"Capacity limit at about {int(knee['users'])} concurrent users",
            summary=(
                f"At {int(knee['users'])} users the service degrades ({'; '.join(why)}). The last healthy step was "
                f"{int(last_good['users'])} users at {last_good['rps']:.1f} requests/s; throughput peaks at "
                f"{peak_rps:.1f} requests/s. Plan for traffic below {t['headroom']:.0%} of that."
            ),
            subject=Subject(expression="load test"),
            metrics={
                "limit_users": int(knee["users"]),
                "healthy_users": int(last_good["users"]),
                "healthy_rps": round(float(last_good["rps"]), 3),
                "peak_rps": round(peak_rps, 3),
                "p95_ms_at_limit": float(knee["p95_ms"]),
                "baseline_p95_ms": float(base["p95_ms"]),
                "failure_rate_at_limit": round(float(knee["failure_rate"]), 4),
                "safe_rps": round(peak_rps * t["headroom"], 3),
            },
            recommendation=Recommendation(
                summary=(
                    "Remove the bottleneck the other chapters point at (N+1 queries, missing indexes, uncached hot "
                    "reads) before adding servers; then scale web workers and check the connection budget."
                ),
            ),
            evidence=Evidence(
                strength=EvidenceStrength.STATISTICS,
                items=tuple(
                    {
                        "users": int(r.users),
                        "rps": round(float(r.rps), 2),
                        "p95_ms": float(r.p95_ms),
                        "failure_rate": round(float(r.failure_rate), 4),
                    }
                    for r in cast("Iterable[_StepRow]", steps.itertuples())
                ),
            ),
            chapter="scaling",
        )
    ]


def connection_budget(
    deployment: dict[str, Any], config: AuditConfig | None = None
) -> list[Finding]:
    """Connections the deployment can open at peak against the server's max_connections."""
    t = (config or AuditConfig()).thresholds("capacity")
    if not deployment or "max_connections" not in deployment:
        return []
    instances = int(deployment.get("instances", 1))
    workers = int(deployment.get("web_workers", 1))
    threads = int(deployment.get("threads_per_worker", 1))
    background = int(deployment.get("background_workers", 0)) * int(
        deployment.get("background_concurrency", 1)
    )
    reserved = int(deployment.get("reserved_connections", 3))  # superuser_reserved_connections
    need = instances * workers * threads + background
    allowed = int(deployment["max_connections"]) - reserved
    usable = allowed * t["headroom"]
    over = need > usable
    sources = deployment.get("sources") or {}
    facts = (
        ", ".join(f"{k} from {v}" for k, v in sorted(sources.items()) if k != "sources")
        or "the deployment facts given"
    )
    per_process = max(1, int((usable - background) // max(1, instances * workers)))
    django = (
        'DATABASES["default"]["OPTIONS"]["pool"] = '
        f'{{"min_size": 1, "max_size": {per_process}}}  # Django ≥ 5.1 with psycopg 3'
        if over
        else None
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
                f"{instances} instance(s) × {workers} web worker(s) × {threads} thread(s)"
                + (f" + {background} background worker slot(s)" if background else "")
                + f" can hold {need} connections; the server allows {allowed} (max_connections less {reserved} reserved)."
                + (
                    " That leaves no room for migrations, shells and monitoring."
                    if over
                    else " There is headroom."
                )
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
            },
            recommendation=Recommendation(
                summary=(
                    "Put a pooler between the workers and PostgreSQL — PgBouncer in transaction "
                    f"mode, or Django's own pool capped at {per_process} connection(s) per worker "
                    "process — or lower workers × threads per instance before adding instances."
                    if over
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
                    "requests": n,
                    "median_ms": round(float(g["duration_ms"].median()), 1),
                    "waiting_ms": round(wait, 1),
                    "db_share": round(share_db, 4),
                },
                recommendation=Recommendation(
                    summary=(
                        f"Answer {endpoint} first and do the waiting in a background task (Celery, "
                        "RQ or Django's tasks framework), started after the transaction commits "
                        "(transaction.on_commit) so the task sees the saved rows."
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
                action=f"Move the {what} of {endpoint} to a background task: it {impact.phrase()}.",
            )
        )
    return out
