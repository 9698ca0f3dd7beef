"""The scaling chapter's views: behaviour under load, the capacity model and plan, traffic, work to move out of the request.

A mixin over :class:`~auditkit.report.chapter_base.ChapterBase`; pure display, like every
chapter view.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from auditkit.findings import plural
from auditkit.report import figures
from auditkit.report.chapter_base import MIN_POINTS, ChapterBase, _block, _note
from auditkit.report.html import (
    HtmlBlock,
    note_html,
)
from auditkit.report.tables import Col, plain_number, table


class ScalingViews(ChapterBase):
    """The scaling chapter's views: behaviour under load, the capacity model and plan, traffic, work to move out of the request."""

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
