"""The scaling chapter's frames, computed once per audit: steps, model, what-if, plan, traffic.

:func:`scaling_frames` is called by :func:`auditkit.audit` after the findings are folded, so
the what-if can use the time the other chapters' fixes save (their shared
:class:`~auditkit.findings.Impact`): the database time every root cause outside the scaling
chapter saves over the window, divided by the requests in it, is the time each request would
no longer spend (:func:`saved_per_request`); :func:`~auditkit.analysis.capacity.what_if`
moves the curve by it. The report displays these frames and computes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from auditkit.analysis.capacity import what_if

if TYPE_CHECKING:
    from auditkit.analysis import Analysis
    from auditkit.findings import Finding

__all__ = ["saved_per_request", "scaling_frames", "service_ms"]


def saved_per_request(findings: Iterable[Finding], requests: int | None) -> tuple[float, int]:
    """Database time the other chapters' root causes save per request (ms), and how many
    findings contribute. Savings that are only "at stake" (all of a statement's time, for a
    statement no cause explains) are left out."""
    if not requests:
        return 0.0, 0
    total, count = 0.0, 0
    for f in findings:
        imp = f.impact
        if f.chapter == "scaling" or imp is None or not imp.db_ms or imp.basis == "at stake":
            continue
        total += float(imp.db_ms)
        count += 1
    return total / requests, count


def service_ms(analysis: Analysis) -> float | None:
    """The mean time a request holds a worker, over the request log's window — the window the
    savings are measured over, so the two make one share (under load both include the waits
    that contention adds)."""
    shape = analysis.traffic
    if shape is not None and shape.mean_ms == shape.mean_ms and shape.mean_ms > 0:
        return float(shape.mean_ms)
    return None


def scaling_frames(analysis: Analysis, findings: Iterable[Finding]) -> dict[str, pd.DataFrame]:
    """The frames the scaling chapter displays (see the module docstring)."""
    findings = list(findings)
    frames: dict[str, pd.DataFrame] = {}
    steps = analysis.load_steps
    if len(steps):
        frames["load_steps"] = steps.reset_index(drop=True)
    fit = analysis.capacity_fit
    if fit is not None:
        frames["usl_fit"] = fit.to_frame()
        requests = analysis.statements["request_key"].nunique() if len(analysis.statements) else 0
        saved, count = saved_per_request(findings, int(requests) or None)
        service = service_ms(analysis)
        better = what_if(fit, service or 0.0, saved) if service else None
        if better is not None:
            wf = better.to_frame()
            wf["saved_ms"] = saved
            wf["service_ms"] = service
            wf["findings"] = count
            frames["usl_what_if"] = wf
    from auditkit.analysis.work import work_to_move

    work = work_to_move(analysis.requests, analysis.deployment)
    if len(work):
        frames["work_to_move"] = work
    plan = analysis.capacity_plan
    frames["capacity_plan"] = plan.to_frame()
    shape = analysis.traffic
    if shape is not None:
        frames["traffic_rate"] = shape.rate.reset_index(drop=True)
        frames["traffic_endpoints"] = shape.endpoints.reset_index(drop=True)
        if len(shape.hours):
            frames["traffic_hours"] = shape.hours.reset_index(drop=True)
        row: dict[str, Any] = {
            "requests": shape.requests,
            "window_s": shape.window_s,
            "bucket_s": shape.bucket_s,
            "mean_rps": shape.mean_rps,
            "peak_rps": shape.peak_rps,
            "peak_at": shape.peak_at,
            "peak_to_average": shape.peak_to_average,
            "mean_ms": shape.mean_ms,
            "load_test": bool(len(steps))
            and steps["start"].min() - pd.Timedelta(minutes=1)
            <= shape.peak_at
            <= steps["end"].max() + pd.Timedelta(minutes=1),
        }
        frames["traffic_summary"] = pd.DataFrame([row])
    return frames
