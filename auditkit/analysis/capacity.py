"""The capacity model: the Universal Scalability Law fitted to load steps, and what it implies.

Gunther's Universal Scalability Law (USL) describes throughput ``X`` at concurrency ``N``::

    X(N) = λ·N / (1 + σ·(N − 1) + κ·N·(N − 1))

``λ`` is the throughput of one user alone, ``σ`` the *contention* (the serialised share of the
work: a lock, a single worker pool, one database row everyone updates) and ``κ`` the
*coherency* cost (work that grows with every pair of users: keeping shared state consistent).
With ``κ > 0`` throughput peaks at ``N* = √((1 − σ)/κ)`` and falls beyond it; with ``κ = 0`` it
flattens towards ``λ/σ`` (Amdahl's ceiling). ``1/σ`` is where ideal linear growth meets that
ceiling: the knee past which more users mostly queue.

:func:`fit_usl` estimates the three by non-linear least squares (:func:`scipy.optimize.curve_fit`,
unweighted, bounded σ ∈ [0, 1], κ ≥ 0, λ > 0 — the ``nls``/``nlxb`` methods of the R ``usl``
package), with confidence intervals from the standard errors and Student's t, a confidence
band by the delta method, R², and warnings a reader needs before trusting a number: too few
steps, no single-user step, efficiency above 1, saturation not reached, a poor fit.

:func:`what_if` moves the curve by the time other findings save per request (the shared
:class:`~auditkit.findings.Impact`): a request that holds a worker for ``S − d`` ms instead of
``S`` scales the contention and coherency costs by ``(S − d)/S``.
"""

from __future__ import annotations

import math
import warnings as warnings_module
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["USLFit", "fit_usl", "usl", "what_if"]


def usl(n: Any, sigma: float, kappa: float, lam: float) -> Any:
    """Throughput at concurrency ``n`` under the USL (vectorised over ``n``)."""
    n = np.asarray(n, dtype="float64")
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


@dataclass(frozen=True)
class USLFit:
    """A fitted USL model (see the module docstring); ``usable`` is False when no fit exists."""

    sigma: float
    kappa: float
    lam: float
    #: confidence intervals at ``level`` (low, high)
    sigma_ci: tuple[float, float]
    kappa_ci: tuple[float, float]
    lam_ci: tuple[float, float]
    level: float
    r_squared: float
    residual_se: float
    dof: int
    #: covariance of (σ, κ, λ)
    cov: tuple[tuple[float, ...], ...]
    #: the observations fitted
    n: tuple[float, ...]
    x: tuple[float, ...]
    warnings: tuple[str, ...] = ()
    usable: bool = True
    #: how the model came about, when not fitted to the observations as they are
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    # -- the model's landmarks ------------------------------------------------------------------
    @property
    def n_star(self) -> float:
        """Concurrency of peak throughput (``inf`` without coherency cost)."""
        if self.kappa <= 0:
            return math.inf
        return math.sqrt(max(1.0 - self.sigma, 0.0) / self.kappa)

    @property
    def peak_rps(self) -> float:
        """The highest throughput the model allows: ``X(N*)``, or ``λ/σ`` without a peak."""
        if math.isfinite(self.n_star):
            return float(self.predict(self.n_star))
        return self.ceiling_rps

    @property
    def ceiling_rps(self) -> float:
        """Amdahl's ceiling ``λ/σ`` (``inf`` when σ = 0)."""
        return self.lam / self.sigma if self.sigma > 0 else math.inf

    @property
    def n_opt(self) -> float:
        """The knee ``1/σ``: linear growth meets the contention ceiling."""
        return 1.0 / self.sigma if self.sigma > 0 else math.inf

    @property
    def dominant(self) -> str:
        """``contention`` or ``coherency``: which term costs more at the peak (or at the
        largest observed concurrency when there is no peak)."""
        n = self.n_star if math.isfinite(self.n_star) else max(self.n)
        return "coherency" if self.kappa * n * (n - 1) > self.sigma * (n - 1) else "contention"

    def predict(self, n: Any) -> Any:
        return usl(n, self.sigma, self.kappa, self.lam)

    def band(self, n: Any) -> tuple[np.ndarray, np.ndarray]:
        """Confidence band of the fitted curve at ``n`` (delta method, Student's t)."""
        # stdtrit is Student's t quantile: scipy.stats would cost 0.7 s to import
        from scipy import special

        n = np.asarray(n, dtype="float64")
        s, k, lam = self.sigma, self.kappa, self.lam
        d = 1.0 + s * (n - 1.0) + k * n * (n - 1.0)
        grad = np.vstack(
            [
                -lam * n * (n - 1.0) / d**2,
                -lam * n * n * (n - 1.0) / d**2,
                n / d,
            ]
        )
        cov = np.asarray(self.cov, dtype="float64")
        var = np.einsum("ij,ik,kj->j", grad, cov, grad)
        t = float(special.stdtrit(max(self.dof, 1), 0.5 + self.level / 2.0))
        y = self.predict(n)
        half = t * np.sqrt(np.clip(var, 0.0, None))
        return np.clip(y - half, 0.0, None), y + half

    def efficiency(self) -> np.ndarray:
        """Throughput per user relative to the lowest step's, per observation."""
        n, x = np.asarray(self.n), np.asarray(self.x)
        base = x[np.argmin(n)] / n.min()
        return x / (n * base)

    # -- persistence (a one-row frame, so a saved audit carries the model) --------------------
    def to_frame(self) -> pd.DataFrame:
        row = {
            "sigma": self.sigma,
            "kappa": self.kappa,
            "lam": self.lam,
            "sigma_lo": self.sigma_ci[0],
            "sigma_hi": self.sigma_ci[1],
            "kappa_lo": self.kappa_ci[0],
            "kappa_hi": self.kappa_ci[1],
            "lam_lo": self.lam_ci[0],
            "lam_hi": self.lam_ci[1],
            "level": self.level,
            "r_squared": self.r_squared,
            "residual_se": self.residual_se,
            "dof": self.dof,
            "cov": ",".join(repr(v) for r in self.cov for v in r),
            "n": ",".join(repr(v) for v in self.n),
            "x": ",".join(repr(v) for v in self.x),
            "warnings": "\n".join(self.warnings),
            "usable": self.usable,
            "note": self.note,
        }
        return pd.DataFrame([row])

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> USLFit | None:
        if len(df) == 0:
            return None
        r = df.iloc[0]

        def floats(text: object) -> tuple[float, ...]:
            return tuple(float(v) for v in str(text).split(",") if v) if text else ()

        cov = floats(r["cov"])
        return cls(
            sigma=float(r["sigma"]),
            kappa=float(r["kappa"]),
            lam=float(r["lam"]),
            sigma_ci=(float(r["sigma_lo"]), float(r["sigma_hi"])),
            kappa_ci=(float(r["kappa_lo"]), float(r["kappa_hi"])),
            lam_ci=(float(r["lam_lo"]), float(r["lam_hi"])),
            level=float(r["level"]),
            r_squared=float(r["r_squared"]),
            residual_se=float(r["residual_se"]),
            dof=int(r["dof"]),
            cov=tuple(cov[i : i + 3] for i in range(0, len(cov), 3)),
            n=floats(r["n"]),
            x=floats(r["x"]),
            warnings=tuple(w for w in str(r["warnings"] or "").split("\n") if w),
            usable=bool(r["usable"]),
            note=str(r["note"] or ""),
        )


def _unusable(n: Sequence[float], x: Sequence[float], warning: str, level: float) -> USLFit:
    nan = float("nan")
    return USLFit(
        sigma=nan,
        kappa=nan,
        lam=nan,
        sigma_ci=(nan, nan),
        kappa_ci=(nan, nan),
        lam_ci=(nan, nan),
        level=level,
        r_squared=nan,
        residual_se=nan,
        dof=0,
        cov=(),
        n=tuple(float(v) for v in n),
        x=tuple(float(v) for v in x),
        warnings=(warning,),
        usable=False,
    )


def fit_usl(
    n: Sequence[float] | np.ndarray | pd.Series,
    x: Sequence[float] | np.ndarray | pd.Series,
    *,
    level: float = 0.95,
    min_r_squared: float = 0.9,
) -> USLFit:
    """Fit the USL to throughput ``x`` at concurrency ``n`` (see the module docstring).

    Never raises on poor data: a fit that cannot exist (fewer than three distinct load levels,
    no throughput) comes back with ``usable`` False and the reason in ``warnings``.

    >>> f = fit_usl([1, 2, 4, 8, 16], [10, 19, 35, 58, 80])
    >>> round(f.sigma, 3) > 0, f.usable
    (True, True)
    """
    from scipy import optimize, special

    n_arr = np.asarray(n, dtype="float64")
    x_arr = np.asarray(x, dtype="float64")
    ok = np.isfinite(n_arr) & np.isfinite(x_arr) & (n_arr > 0) & (x_arr > 0)
    n_arr, x_arr = n_arr[ok], x_arr[ok]
    order = np.argsort(n_arr, kind="stable")
    n_arr, x_arr = n_arr[order], x_arr[order]
    levels = len(np.unique(n_arr))
    if levels < 3:
        return _unusable(
            n_arr,
            x_arr,
            f"{'1 load level' if levels == 1 else f'{levels} load levels'} with throughput: the model needs at least 3 (4 or more to "
            "judge its fit)",
            level,
        )
    lam0 = float(x_arr[0] / n_arr[0])
    # the contention that a flat tail implies, as a start: X(∞) ≈ λ/σ
    sigma0 = float(min(max(lam0 / x_arr.max() - 1.0 / n_arr.max(), 1e-4), 0.9))
    best = None
    for p0 in ((sigma0, 1e-6, lam0), (sigma0, 1e-3 / n_arr.max(), lam0), (0.01, 0.0, lam0)):
        try:
            with warnings_module.catch_warnings():
                # three points leave no residual degrees of freedom: said in the warnings
                warnings_module.simplefilter("ignore", optimize.OptimizeWarning)
                popt, pcov = optimize.curve_fit(
                    lambda nn, s, k, lam: usl(nn, s, k, lam),
                    n_arr,
                    x_arr,
                    p0=p0,
                    bounds=([0.0, 0.0, 1e-12], [1.0, np.inf, np.inf]),
                    method="trf",
                    x_scale="jac",
                    max_nfev=20000,
                )
        except (RuntimeError, ValueError):
            continue
        rss = float(np.sum((x_arr - usl(n_arr, *popt)) ** 2))
        if best is None or rss < best[2] - 1e-12 * max(rss, 1.0):
            best = (popt, pcov, rss)
    if best is None:
        return _unusable(n_arr, x_arr, "the least-squares fit did not converge", level)
    popt, pcov, rss = best
    sigma, kappa, lam = (float(v) for v in popt)
    dof = len(n_arr) - 3
    tss = float(np.sum((x_arr - x_arr.mean()) ** 2))
    r2 = 1.0 - rss / tss if tss > 0 else float("nan")
    if dof > 0:
        se = np.sqrt(np.clip(np.diag(pcov), 0.0, None))
        t = float(special.stdtrit(dof, 0.5 + level / 2.0))
        cov = np.where(np.isfinite(pcov), pcov, 0.0)
    else:
        se = np.full(3, np.inf)
        t = math.inf
        cov = np.zeros((3, 3))
    ci = [(p - t * e, p + t * e) for p, e in zip(popt, se, strict=True)]
    warnings = []
    if dof <= 0:
        warnings.append(
            f"only {len(n_arr)} load steps: three parameters from {len(n_arr)} points leave no "
            "room to judge the fit (no confidence intervals); a test needs 4 steps or more"
        )
    if n_arr.min() > 1:
        warnings.append(
            f"no single-user step: the throughput of one user (λ) is extrapolated from the "
            f"lowest step ({n_arr.min():g} users)"
        )
    eff = x_arr / (n_arr * (x_arr[0] / n_arr[0]))
    if (eff > 1.05).any():
        at = n_arr[int(np.argmax(eff))]
        warnings.append(
            f"throughput per user grows with load (efficiency {eff.max():.2f} at {at:g} users): "
            "the lowest step was not warm or steady, and the model cannot follow superlinear "
            "growth"
        )
    fit = USLFit(
        sigma=sigma,
        kappa=kappa,
        lam=lam,
        sigma_ci=(max(ci[0][0], 0.0), ci[0][1]),
        kappa_ci=(max(ci[1][0], 0.0), ci[1][1]),
        lam_ci=(max(ci[2][0], 0.0), ci[2][1]),
        level=level,
        r_squared=r2,
        residual_se=math.sqrt(rss / dof) if dof > 0 else float("nan"),
        dof=dof,
        cov=tuple(tuple(float(v) for v in row) for row in cov),
        n=tuple(float(v) for v in n_arr),
        x=tuple(float(v) for v in x_arr),
    )
    top = float(n_arr.max())
    if float(x_arr.max()) < 0.8 * fit.peak_rps:
        warnings.append(
            f"saturation not reached: the test stopped at {top:g} users and "
            f"{float(x_arr.max()):.3g} requests/s, {float(x_arr.max()) / fit.peak_rps:.0%} of the "
            "peak the model extrapolates; a test to higher load would confirm it"
        )
    if not (r2 >= min_r_squared):
        warnings.append(
            f"poor fit: the model explains {r2:.0%} of the variation between steps (R²); "
            "the steps may not be steady, or the system changed during the test"
        )
    return replace(fit, warnings=tuple(warnings))


def what_if(fit: USLFit, service_ms: float, saved_ms: float) -> USLFit | None:
    """The model after fixes that save ``saved_ms`` of each request's ``service_ms``.

    A request holds its worker for its whole service time; saving ``d`` of ``S`` ms scales the
    contention and coherency costs (which grow with the time requests hold shared resources)
    by ``(S − d)/S``; one user's throughput ``λ`` is kept (at low load a user mostly
    thinks). ``None`` when there is nothing to save or the model is unusable.
    """
    if not fit.usable or not (service_ms > 0) or not (saved_ms > 0):
        return None
    d = min(saved_ms, 0.9 * service_ms)
    f = (service_ms - d) / service_ms
    return replace(
        fit,
        sigma=fit.sigma * f,
        kappa=fit.kappa * f,
        note=(
            f"each request {d:.0f} ms shorter (of {service_ms:.0f} ms in the application): "
            f"contention and coherency scaled by {f:.2f}"
        ),
        warnings=(),
    )
