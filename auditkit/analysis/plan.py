"""The capacity plan: instances, workers, threads and connections for a target load.

:func:`capacity_plan` turns the fitted model (:mod:`auditkit.analysis.capacity`), the load
steps (:mod:`auditkit.analysis.load`), the deployment facts
(:mod:`auditkit.analysis.deployment`) and the production traffic
(:mod:`auditkit.analysis.traffic`) into a sized plan, every line with its basis:

* **target**: ``target_rps`` when given, else the observed peak × ``growth`` — the production
  peak when the request log is production traffic, the load test's peak when the request log
  is the load test itself;
* **latency objective**: ``latency_objective_ms`` when set, else ``p95_degradation`` × the p95
  of the lowest load step;
* **per instance**: the lesser of the model's peak × ``headroom`` and the highest measured
  throughput whose p95 met the objective (both divided by the instances that were tested);
* **instances** = ⌈target / per instance⌉;
* **scale out or up**: the term that dominates the model — contention (σ: more of the same
  helps little past 1/σ; remove the serialised part) or coherency (κ: throughput falls past
  N*; fewer, larger workers or less shared state) — and Little's law at the peak step: when
  the requests in service reach the deployment's worker threads, the worker pool is the limit;
* **workers and threads per instance** from the cores (``deployment.cpus``) and the measured
  share of request time on the CPU (``cpu_ms``; without it, the database's share is a floor
  on the time spent waiting);
* **connections** = instances × workers × threads + background workers + maintenance, against
  ``max_connections`` − reserved; beyond it, a pooler (PgBouncer, or Django's own pool,
  ``OPTIONS["pool"]`` since Django 5.1 with psycopg 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from auditkit.analysis.capacity import USLFit
from auditkit.analysis.traffic import TrafficShape

__all__ = ["CapacityPlan", "PlanLine", "capacity_plan", "cpu_share"]


@dataclass(frozen=True)
class PlanLine:
    item: str
    value: str
    basis: str


@dataclass(frozen=True)
class CapacityPlan:
    """A sized plan; ``lines`` is what the report's table shows."""

    target_rps: float | None
    per_instance_rps: float | None
    instances_now: int
    instances: int | None
    workers: int | None
    threads: int | None
    connections: int | None
    connections_allowed: int | None
    pooler: bool
    scale: str
    lines: tuple[PlanLine, ...] = ()
    missing: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The plan's lines, then what it could not size for want of data."""
        rows = [{"item": ln.item, "value": ln.value, "basis": ln.basis} for ln in self.lines]
        rows += [{"item": "not sized", "value": "—", "basis": f"needs {m}"} for m in self.missing]
        return pd.DataFrame(rows, columns=["item", "value", "basis"])


def cpu_share(requests: pd.DataFrame | None) -> tuple[float | None, str]:
    """Share of request time on the CPU, and how it was measured (None when unknown)."""
    if requests is None or len(requests) == 0 or "duration_ms" not in requests:
        return None, "no request timings"
    dur = pd.to_numeric(requests["duration_ms"], errors="coerce")
    if "cpu_ms" in requests and requests["cpu_ms"].notna().sum() >= 10:
        cpu = pd.to_numeric(requests["cpu_ms"], errors="coerce")
        ok = cpu.notna() & dur.notna() & (dur > 0)
        return float(min(cpu[ok].sum() / dur[ok].sum(), 1.0)), "measured CPU time of requests"
    if "db_ms" in requests and requests["db_ms"].notna().sum() >= 10:
        db = pd.to_numeric(requests["db_ms"], errors="coerce")
        ok = db.notna() & dur.notna() & (dur > 0)
        # the database share is time a thread waits: the CPU share is at most the rest
        return (
            float(max(1.0 - db[ok].sum() / dur[ok].sum(), 0.05)),
            "at most the time outside the database (no CPU timings: an upper bound)",
        )
    return None, "no CPU or database timings per request"


def _db_share(requests: pd.DataFrame | None) -> float | None:
    """Share of request time spent in the database (None without both timings)."""
    if requests is None or len(requests) == 0 or "db_ms" not in requests:
        return None
    db = pd.to_numeric(requests["db_ms"], errors="coerce")
    dur = pd.to_numeric(requests["duration_ms"], errors="coerce")
    ok = db.notna() & dur.notna() & (dur > 0)
    if ok.sum() < 10:
        return None
    return float(min(db[ok].sum() / dur[ok].sum(), 1.0))


def _fmt(v: float) -> str:
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def capacity_plan(
    fit: USLFit | None,
    steps: pd.DataFrame,
    deployment: dict[str, Any],
    shape: TrafficShape | None,
    requests: pd.DataFrame | None,
    thresholds: dict[str, Any],
    *,
    target_rps: float | None = None,
) -> CapacityPlan:
    """The plan (see the module docstring). Lines whose inputs are missing say so."""
    t = thresholds
    src = deployment.get("sources") or {}
    lines: list[PlanLine] = []
    missing: list[str] = []
    instances_now = int(deployment.get("instances", 1))
    inst_basis = src.get("instances", "assumed: one instance (audit.yaml does not say)")
    workers_now = deployment.get("web_workers")
    threads_now = int(deployment.get("threads_per_worker", 1))
    trusted = steps[steps["trusted"].astype(bool)] if len(steps) else steps

    # -- the target -------------------------------------------------------------------------
    production = shape is not None
    if shape is not None and len(trusted):
        # a request log of the load test itself is not production traffic
        lo = pd.Timestamp(trusted["start"].min()) - pd.Timedelta(minutes=1)
        hi = pd.Timestamp(trusted["end"].max()) + pd.Timedelta(minutes=1)
        production = not lo <= shape.peak_at <= hi
    growth = float(t["growth"])
    if target_rps is not None:
        target: float | None = float(target_rps)
        target_basis = "given"
    elif production and shape is not None:
        target = shape.peak_rps * growth
        target_basis = (
            f"production peak {_fmt(shape.peak_rps)} requests/s (busiest {shape.bucket_s} s) × "
            f"growth {growth:g}"
        )
    elif len(trusted):
        peak_seen = float(trusted["rps"].max())
        target = peak_seen * growth
        target_basis = (
            f"no production traffic outside the load test: its peak {_fmt(peak_seen)} "
            f"requests/s × growth {growth:g}"
        )
    else:
        target = None
        target_basis = "no traffic to start from"
    lines.append(
        PlanLine(
            "target throughput", f"{_fmt(target)} requests/s" if target else "unknown", target_basis
        )
    )

    # -- the latency objective and what one instance sustains ------------------------------------
    per_instance: float | None = None
    if fit is not None and fit.usable and len(trusted):
        base = trusted.sort_values("users").iloc[0]
        objective = t.get("latency_objective_ms")
        obj_basis = "given (audit.yaml thresholds)"
        if not objective and pd.notna(base["p95_ms"]) and base["p95_ms"] > 0:
            objective = float(t["p95_degradation"]) * float(base["p95_ms"])
            obj_basis = (
                f"{float(t['p95_degradation']):g} × the p95 at {int(base['users'])} users "
                f"({base['p95_ms']:.0f} ms)"
            )
        if objective:
            lines.append(PlanLine("latency objective (p95)", f"{objective:,.0f} ms", obj_basis))
        model = fit.peak_rps * float(t["headroom"]) / instances_now
        within = trusted[trusted["p95_ms"] <= objective] if objective else trusted.iloc[0:0]
        measured = float(within["rps"].max()) / instances_now if len(within) else None
        if measured is not None and measured < model:
            per_instance = measured
            pi_basis = (
                f"the highest measured throughput with p95 within the objective "
                f"({int(within.sort_values('rps')['users'].iloc[-1])} users); the model's peak × "
                f"{float(t['headroom']):.0%} headroom would allow {_fmt(model)}"
            )
        else:
            per_instance = model
            pi_basis = (
                f"the model's peak {_fmt(fit.peak_rps)} requests/s × {float(t['headroom']):.0%} "
                "headroom"
                + (f", over {instances_now} instances tested" if instances_now > 1 else "")
            )
            if objective and measured is None:
                pi_basis += "; no step met the latency objective, so latency will exceed it"
        lines.append(PlanLine("per instance", f"{_fmt(per_instance)} requests/s", pi_basis))
    else:
        missing.append("a stepped load test (to measure what one instance sustains)")

    instances = math.ceil(target / per_instance) if target and per_instance else None
    if instances is not None:
        lines.append(
            PlanLine(
                "instances",
                f"{instances}",
                f"⌈{_fmt(target or 0)} / {_fmt(per_instance or 0)}⌉; tested with {instances_now} "
                f"({inst_basis})",
            )
        )

    # -- scale out or up ----------------------------------------------------------------------
    scale = ""
    if fit is not None and fit.usable:
        threads_total = instances_now * int(workers_now) * threads_now if workers_now else None
        busy = (
            trusted["in_service"].max()
            if len(trusted) and "in_service" in trusted
            else float("nan")
        )
        if threads_total and pd.notna(busy) and busy >= 0.85 * threads_total:
            scale = (
                f"worker-bound: at the peak {busy:.1f} of the {threads_total} worker threads were "
                "busy (Little's law) — add instances, or workers or threads where the cores allow"
            )
        elif fit.dominant == "coherency":
            scale = (
                f"coherency (κ) dominates: throughput falls past about {fit.n_star:.0f} users — "
                "fewer, larger workers and less shared state (one hot row, cache stampedes, "
                "locks) help more than more of the same"
            )
        else:
            scale = (
                f"contention (σ) dominates: past about {fit.n_opt:.0f} users more of the same "
                "adds little — remove the serialised part (a lock, one hot table, a single "
                "worker pool), then scale out"
            )
        lines.append(PlanLine("scale out or up", scale, "the fitted model and Little's law"))
        db_share = _db_share(requests)
        if not scale.startswith("worker-bound") and db_share is not None and db_share >= 0.5:
            lines.append(
                PlanLine(
                    "database",
                    "the likely limit: a larger instance, or read replicas for the reads "
                    "(Django database routers)",
                    f"{db_share:.0%} of request time is spent in the database while the workers "
                    "are not all busy. On a managed service (RDS, Cloud SQL, Azure) the size "
                    "and replicas are a setting; server parameters change through its parameter "
                    "groups or flags, not ALTER SYSTEM, and some (shared_preload_libraries) need "
                    "a restart",
                )
            )

    # -- workers and threads --------------------------------------------------------------------
    workers: int | None = None
    threads: int | None = None
    share, share_basis = cpu_share(requests)
    cores = deployment.get("cpus") or deployment.get("cores")
    if cores and share is not None:
        workers = max(1, int(cores))
        threads = max(1, min(int(t["max_threads"]), round(1.0 / max(share, 1e-3))))
        lines.append(
            PlanLine(
                "workers × threads per instance",
                f"{workers} × {threads}",
                f"one worker per core ({int(cores)} cores, {src.get('cpus', src.get('cores', 'audit.yaml'))}); "
                f"threads ≈ 1 / CPU share {share:.0%} ({share_basis}), at most {int(t['max_threads'])}",
            )
        )
    else:
        if workers_now:
            workers, threads = int(workers_now), threads_now
            lines.append(
                PlanLine(
                    "workers × threads per instance",
                    f"{workers} × {threads} (as deployed)",
                    f"{src.get('web_workers', 'deployment')}; "
                    + (
                        "the number of cores per instance (audit.yaml deployment.cpus) is needed to size them"
                        if not cores
                        else f"CPU share unknown ({share_basis})"
                    ),
                )
            )
        if not cores:
            missing.append("the number of CPU cores per instance (audit.yaml: deployment.cpus)")
        if share is None:
            missing.append("CPU time per request (the capture app's cpu_ms)")

    # -- connections ----------------------------------------------------------------------------
    connections = allowed = None
    pooler = False
    if "max_connections" in deployment and workers:
        n_inst = instances or instances_now
        background = int(deployment.get("background_workers", 0)) * int(
            deployment.get("background_concurrency", 1)
        )
        maintenance = int(deployment.get("maintenance_connections", t["maintenance_connections"]))
        reserved = int(deployment.get("reserved_connections", 3))
        connections = n_inst * workers * (threads or 1) + background + maintenance
        allowed = int(deployment["max_connections"]) - reserved
        pooler = connections > allowed
        lines.append(
            PlanLine(
                "database connections",
                f"{connections} of {allowed}",
                f"{n_inst} × {workers} × {threads or 1} + {background} background + {maintenance} "
                f"maintenance; max_connections {deployment['max_connections']} "
                f"({src.get('max_connections', 'deployment')}) less {reserved} reserved",
            )
        )
        if pooler:
            per_process = max(1, (allowed - background - maintenance) // max(1, n_inst * workers))
            lines.append(
                PlanLine(
                    "pooling",
                    f"needed: PgBouncer (transaction mode) or Django's pool with max_size {per_process} per worker",
                    "the plan needs more connections than the server allows",
                )
            )
    elif "max_connections" not in deployment:
        missing.append("the database's max_connections (pg_settings or audit.yaml)")
    return CapacityPlan(
        target_rps=target,
        per_instance_rps=per_instance,
        instances_now=instances_now,
        instances=instances,
        workers=workers,
        threads=threads,
        connections=connections,
        connections_allowed=allowed,
        pooler=pooler,
        scale=scale,
        lines=tuple(lines),
        missing=tuple(missing),
    )
