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

from auditkit.config import AuditConfig
from auditkit.findings import Evidence, EvidenceStrength, Finding, Recommendation, Severity, Subject

__all__ = [
    "background_task_candidates",
    "capacity_limit",
    "check_scaling",
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
    return [
        Finding(
            check="connection_budget",
            severity=Severity.HIGH
            if need > allowed
            else Severity.MEDIUM
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
            },
            recommendation=Recommendation(
                summary=(
                    "Put a pooler (PgBouncer in transaction mode, or Django 5.1's psycopg pool) between the workers "
                    "and PostgreSQL, or lower workers × threads per instance before adding instances."
                    if over
                    else "Keep this budget in mind when adding instances or threads."
                ),
                django='DATABASES["default"]["OPTIONS"] = {"pool": {"min_size": 2, "max_size": 4}}  # Django ≥ 5.1, psycopg 3',
            ),
            evidence=Evidence(
                strength=EvidenceStrength.INFERRED, note="from the deployment facts in audit.yaml"
            ),
            chapter="scaling",
        )
    ]


def background_task_candidates(
    requests: pd.DataFrame, config: AuditConfig | None = None
) -> list[Finding]:
    """Endpoints slow at p95 that spend little of it in the database."""
    t = (config or AuditConfig()).thresholds("capacity")
    if len(requests) == 0 or requests["duration_ms"].isna().all():
        return []
    df = requests.assign(
        endpoint=requests["endpoint"].astype("string").fillna("(unknown endpoint)")
    )
    g = df.groupby("endpoint")
    stats = pd.DataFrame(
        {
            "n": g.size(),
            "p95": g["duration_ms"].quantile(0.95),
            "dur": g["duration_ms"].sum(),
            "db": g["db_ms"].sum(min_count=1),
        }
    )
    stats["db_share"] = stats["db"] / stats["dur"]
    picked = stats[
        (stats["p95"] >= t["background_min_p95_ms"])
        & (stats["db_share"].fillna(0) < t["background_max_db_share"])
    ]
    out = []
    for endpoint, r in picked.iterrows():
        out.append(
            Finding(
                check="background_task_candidate",
                severity=Severity.MEDIUM,
                title=f"{endpoint}: slow, and not because of the database",
                summary=(
                    f"p95 {r['p95']:.0f} ms over {int(r['n'])} requests, of which only {r['db_share']:.0%} in database "
                    "calls: the rest is work inside the request (e-mail, files, external HTTP) that the user waits for."
                ),
                subject=Subject(endpoint=str(endpoint)),
                metrics={
                    "requests": int(r["n"]),
                    "p95_ms": round(float(r["p95"]), 1),
                    "db_share": round(float(r["db_share"]), 4)
                    if r["db_share"] == r["db_share"]
                    else None,
                },
                recommendation=Recommendation(
                    summary="Return the response first and do the slow part in a background task (Celery, RQ, or Django 6's tasks framework).",
                    django="@shared_task\ndef send_receipt(order_id):\n    ...\n\n# in the view\nsend_receipt.delay(order.pk)",
                ),
                evidence=Evidence(strength=EvidenceStrength.PATTERN),
                chapter="scaling",
            )
        )
    return out


def check_scaling(client: Any, config: AuditConfig) -> list[Finding]:
    """The scaling-chapter check."""
    out = capacity_limit(client.frame("load_samples"), config)
    deployment = dict(client.config.deployment)
    if "max_connections" not in deployment and client.has("server_settings"):
        settings = client.frame("server_settings")
        found = settings.loc[settings["name"] == "max_connections", "value"].dropna()
        if len(found):
            deployment["max_connections"] = int(found.iloc[0])
    out += connection_budget(deployment, config)
    return out + background_task_candidates(client.frame("requests"), config)
