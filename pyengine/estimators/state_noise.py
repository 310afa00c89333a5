"""State-dependent gradient noise along a recorded run (document 004, Fig. 1, Corollary 3, Eq. 8–9).

Document 004 models the covariance of the minibatch gradient near a minimum w* as
C(w) = σ_g + σ_H (w − w*)² (1-D, Corollary 3), whose stationary law is the power-law
κ distribution (1 + σ_H σ_g⁻¹ (w − w*)²)^−κ with κ = H/(η σ_H), and in P dimensions
(Eq. 8, Σ_g = σ_g² I isotropic) C(w) = Σ_g (1 + (w − w*)ᵀ H Σ_g⁻¹ (w − w*)/(ηκ)), whose
stationary law is Eq. 9, p(w) ∝ [1 + (w − w*)ᵀ H Σ_g⁻¹ (w − w*)/(ηκ)]^−κ.

Here, along the run, at every ``/noise`` probe step t:

- tr C(w_t) = tr Σ_b, the trace of the minibatch-gradient covariance at the training batch
  size (``cov_trace``; in files without it, ``noise_norm² · m/(m − 1)``, the same number);
- d_t = ‖w_t − w*‖, the Euclidean distance of the snapshot of step t to w*, the **final
  snapshot** of ``/weights`` (all recorded parameters, float64);
- L_t, the mean loss over the noise probe's data at w_t (``/noise/loss``).

Fits (least squares of the relative residuals, weights 1/tr², since the traces span
decades along a run; standard errors from the residuals):

- ``distance`` fit: tr Σ_b = σ_g + σ_H d² (the trace form of Corollary 3);
- ``loss`` fit: tr Σ_b = c_0 + c_L L. Under Eq. 8 with isotropic Σ_g and the quadratic
  loss of Assumption 1, (w − w*)ᵀH(w − w*) = 2(L − L*), so tr C = tr Σ_g + (2P/(ηκ))(L − L*)
  and **κ_Eq9 = 2P / (η c_L)**. With Σ_g isotropic only within its support of effective
  dimension r (the participation ratio of Σ_b at the last probe), P becomes r:
  κ_r = 2r/(η c_L). With the distance fit and (w − w*)ᵀH(w − w*) ≈ (tr H/P) d² (w − w* in
  no preferred Hessian direction), κ_d = tr H/(η σ_H), tr H from ``/hessian`` (last probe).
- Whether the forms hold: the exponents p_d and p_L of tr Σ_b ∝ d^p_d and ∝ L^p_L
  (log–log least squares over the points with d, L > 0); the model says p_d = 2 far from
  w* (σ_H d² ≫ σ_g) and p_L = 1.
- Eq. 9 is a multivariate Student-t law with ν = 2κ − P degrees of freedom: each coordinate's
  marginal is a 1-D power-law κ law with **κ_1 = κ − (P − 1)/2** (normalisable on R^P only
  for κ > P/2; document 004 restricts Eq. 9 to a ball around w*). It is reported next to
  today's per-entry κ (:func:`pyengine.fit_kappa` of the entries of the final snapshot's
  ``weight`` tensors), which fits the spread of the weights across coordinates, a different
  distribution.
"""

from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass, field

import numpy as np

from pyengine.estimators.reduced import require_available
from pyengine.results import Result, legend_outside, panels_or_new, window_colorbar, window_colors
from pyengine.store import open_trajectory
from pyengine.store._groups import group_rows

__all__ = ["StateNoiseResult", "LineFit", "state_noise", "line_fit", "power_exponent"]

#: Fewest noise probes for the fits.
MIN_PROBES = 3


@dataclass(frozen=True)
class LineFit:
    """y = intercept + slope · x by ordinary least squares.

    Attributes
    ----------
    intercept, intercept_se, slope, slope_se : float
    r2 : float
        Coefficient of determination.
    n : int
        Points.
    """

    intercept: float
    intercept_se: float
    slope: float
    slope_se: float
    r2: float
    n: int


def line_fit(x: np.ndarray, y: np.ndarray, relative: bool = False) -> LineFit:
    """Least squares of y on [1, x] over the finite pairs, with standard errors.

    Parameters
    ----------
    x, y : ndarray
    relative : bool
        Minimise the relative residuals Σ ((y − a − b x)/y)² (weights 1/y²; positive y
        only): every point counts by its relative misfit, for data spanning decades.

    Returns
    -------
    LineFit
        Standard errors from the (weighted) residual variance; R² of the weighted fit.

    Examples
    --------
    >>> fit = line_fit(np.array([0.0, 1, 2, 3]), np.array([1.0, 3, 5, 7]))
    >>> round(fit.intercept, 9), round(fit.slope, 9), round(fit.r2, 9)
    (1.0, 2.0, 1.0)
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & ((y > 0) if relative else True)
    x, y = x[ok], y[ok]
    n = len(x)
    if n < MIN_PROBES or np.ptp(x) == 0:
        raise ValueError(f"a line fit needs at least {MIN_PROBES} points with different x, got {n}")
    w = 1.0 / y if relative else np.ones(n)
    design = np.column_stack([np.ones(n), x]) * w[:, None]
    target = y * w
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    resid = target - design @ coef
    dof = n - 2
    s2 = float(resid @ resid) / dof if dof > 0 else math.nan
    cov = s2 * np.linalg.inv(design.T @ design)
    centred = target - w * (np.sum(w * target) / np.sum(w * w))  # the best constant, weighted
    tss = float(centred @ centred)
    r2 = 1.0 - float(resid @ resid) / tss if tss > 0 else math.nan
    return LineFit(float(coef[0]), float(math.sqrt(max(cov[0, 0], 0.0))), float(coef[1]),
                   float(math.sqrt(max(cov[1, 1], 0.0))), r2, n)


def power_exponent(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope ± SE of log y against log x over the pairs with x, y > 0 (NaN for fewer than 3).

    Examples
    --------
    >>> power_exponent(np.array([1.0, 2, 4, 8]), np.array([3.0, 12, 48, 192]))
    (2.0, 0.0)
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    try:
        fit = line_fit(np.log(x[ok]), np.log(y[ok]))
    except ValueError:
        return math.nan, math.nan
    return round(fit.slope, 12), round(fit.slope_se, 12)


@dataclass(frozen=True, repr=False)
class StateNoiseResult(Result):
    """Trace of the noise covariance against the distance to the final weights and against
    the loss, with the fits and κ of document 004 (module docstring).

    Attributes
    ----------
    steps : ndarray of int64, shape (M,)
        Noise probe steps.
    snapshot_steps : ndarray of int64, shape (M,)
        Step of the snapshot used for w_t (the probe step itself when recorded, else the
        nearest earlier one).
    trace : ndarray of float64, shape (M,)
        tr Σ_b.
    distance : ndarray of float64, shape (M,)
        ‖w_t − w*‖, w* the final snapshot.
    loss : ndarray of float64, shape (M,)
        Mean loss over the probe set (NaN in files without it).
    final_step : int
        The step of w*.
    sigma_g, sigma_g_se, sigma_h, sigma_h_se, r2_distance : float
        tr Σ_b = σ_g + σ_H d².
    c0, c_loss, c_loss_se, r2_loss : float
        tr Σ_b = c_0 + c_L L (NaN without losses).
    distance_exponent, distance_exponent_se, loss_exponent, loss_exponent_se : float
        Log–log slopes of tr Σ_b against d and against L.
    lr : float
        η (the optimizer's learning rate; NaN when the file does not say).
    n_params : int
        P.
    participation : float
        Participation ratio of Σ_b at the last probe (NaN when not stored).
    trace_hessian : float
        tr H at the last Hessian probe with a trace (NaN when none).
    kappa_eq9, kappa_eq9_se : float
        2P/(η c_L).
    kappa_support : float
        2r/(η c_L), r the participation ratio.
    kappa_distance : float
        tr H/(η σ_H).
    kappa_marginal : float
        κ_Eq9 − (P − 1)/2: the per-coordinate κ that Eq. 9 implies (NaN when κ_Eq9 <= P/2).
    kappa_entries : float
        Per-entry κ of the final snapshot's ``weight`` tensors (:func:`pyengine.fit_kappa`).
    kappa_entries_ci : tuple of float
        Its 95 % interval.
    settings : dict
    """

    steps: np.ndarray
    snapshot_steps: np.ndarray
    trace: np.ndarray
    distance: np.ndarray
    loss: np.ndarray
    final_step: int
    sigma_g: float
    sigma_g_se: float
    sigma_h: float
    sigma_h_se: float
    r2_distance: float
    c0: float
    c_loss: float
    c_loss_se: float
    r2_loss: float
    distance_exponent: float
    distance_exponent_se: float
    loss_exponent: float
    loss_exponent_se: float
    lr: float
    n_params: int
    participation: float
    trace_hessian: float
    kappa_eq9: float
    kappa_eq9_se: float
    kappa_support: float
    kappa_distance: float
    kappa_marginal: float
    kappa_entries: float
    kappa_entries_ci: tuple
    settings: dict = field(default_factory=dict)

    _rows = None
    _headline = {"sigma_g": "sigma_g_se", "sigma_h": "sigma_h_se", "r2_distance": None, "c_loss": "c_loss_se",
                 "distance_exponent": "distance_exponent_se", "loss_exponent": "loss_exponent_se",
                 "kappa_eq9": "kappa_eq9_se", "kappa_marginal": None, "kappa_entries": None}
    _curves = {"trace": ("step",), "distance": ("step",), "loss": ("step",)}
    _coords = {"step": "steps"}

    def plot(self, ax=None):
        """Two panels (log scales): tr Σ_b against ‖w − w*‖ with σ_g + σ_H d², and against the
        loss with the line c_0 + c_L L; points coloured by step. Returns the axes."""
        axes = panels_or_new(ax, 2, "StateNoiseResult.plot")
        colors = window_colors(len(self.steps))[:len(self.steps)]
        left, right = axes
        left.scatter(self.distance, self.trace, c=colors, s=14, zorder=3)
        d = np.linspace(0, np.nanmax(self.distance) * 1.05, 200)
        curve = self.sigma_g + self.sigma_h * d ** 2
        left.plot(d[curve > 0], curve[curve > 0], "--", color="C3", lw=1,
                  label=f"σ_g + σ_H d²: σ_g = {self.sigma_g:.3g}, σ_H = {self.sigma_h:.3g}\n"
                        f"(R² = {self.r2_distance:.2f}); log–log slope {self.distance_exponent:.2f}")
        left.set_yscale("log")
        left.set_xlabel(f"d = ‖w − w*‖ (w*: snapshot of step {self.final_step})")
        left.set_ylabel("tr Σ_b (noise covariance)")
        left.set_title("noise against distance to w*")
        legend_outside(left, ncol=1)
        if np.isfinite(self.loss).any():
            right.scatter(self.loss, self.trace, c=colors, s=14, zorder=3)
            grid = np.geomspace(np.nanmin(self.loss[self.loss > 0]), np.nanmax(self.loss), 200)
            line = self.c0 + self.c_loss * grid
            right.plot(grid[line > 0], line[line > 0], "--", color="C3", lw=1,
                       label=f"c_0 + c_L L: c_L = {self.c_loss:.3g} (R² = {self.r2_loss:.2f})\n"
                             f"κ_Eq9 = 2P/(η c_L) = {self.kappa_eq9:.3g}; log–log slope {self.loss_exponent:.2f}")
            right.set_xscale("log")
            right.set_yscale("log")
            legend_outside(right, ncol=1)
        else:
            right.text(0.5, 0.5, "no probe-set losses stored", ha="center", va="center", transform=right.transAxes)
        right.set_xlabel("loss on the probe set")
        right.set_ylabel("tr Σ_b")
        right.set_title("noise against loss")
        if len(self.steps) > 1:
            window_colorbar(axes, self.steps, label="probe step")
        return axes


def _lr(attrs: dict) -> float:
    groups = (attrs.get("optimizer") or {}).get("param_groups") or []
    rates = {g.get("lr") for g in groups if isinstance(g, dict)}
    if len(rates) == 1 and isinstance(next(iter(rates)), (int, float)):
        return float(next(iter(rates)))
    value = attrs.get("lr")
    return float(value) if isinstance(value, (int, float)) else math.nan


def state_noise(traj_path: str | pathlib.Path) -> StateNoiseResult | None:
    """The state-dependent noise of a recorded run (module docstring), or None when the file
    has no ``/noise`` probe rows.

    Parameters
    ----------
    traj_path : str or Path
        A trajectory file with ``/noise`` rows (a :class:`~pyengine.record.NoiseProbe`).

    Returns
    -------
    StateNoiseResult or None

    Raises
    ------
    ValueError
        Fewer than three probes, none at a distinct distance, or a sampled or sketched
        recording (the fits need distances over every parameter).

    Examples
    --------
    >>> res = state_noise("run.h5")  # doctest: +SKIP
    >>> res.sigma_g, res.sigma_h, res.kappa_eq9  # doctest: +SKIP
    """
    from pyengine.heavytail import fit_kappa

    with open_trajectory(traj_path, validate=False) as traj:
        group = traj.group("noise")
        if group is None or "step" not in group:
            return None
        rows = group_rows(group)
        attrs = dict(group.attrs)
        steps = np.asarray(rows["step"], dtype=np.int64)
        if len(steps) == 0:
            return None
        if len(steps) < MIN_PROBES:
            raise ValueError(f"/noise holds {len(steps)} probes; the state-dependent noise fit needs {MIN_PROBES}")
        if traj.n_snapshots == 0:
            raise ValueError("the file holds no snapshots: no final weights w*")
        require_available(traj.reduction, "state_noise")
        index = np.clip(np.searchsorted(traj.steps, steps, side="right") - 1, 0, traj.n_snapshots - 1)
        unique, inverse = np.unique(index, return_inverse=True)
        final = np.asarray(traj.weights[traj.n_snapshots - 1], dtype=np.float64)
        snaps = np.asarray(traj.weights[unique], dtype=np.float64)
        distance = np.linalg.norm(snaps - final, axis=1)[inverse]
        snapshot_steps = traj.steps[index].astype(np.int64)
        final_step = int(traj.steps[-1])
        weight_cols = [np.arange(p.offset, p.offset + p.size) for p in traj.params if p.kind == "weight"]
        entries = final[np.concatenate(weight_cols)] if weight_cols else final
        n_params, lr = traj.n_params, _lr(traj.attrs)
        hessian = traj.group("hessian")
        hrows = group_rows(hessian) if hessian is not None and "trace" in hessian else {}
    if "cov_trace" in rows:
        trace = np.asarray(rows["cov_trace"], dtype=np.float64)
    else:  # tr Σ_b = ‖U‖_F²/(m − 1) = noise_norm² · m/(m − 1)
        m = int(attrs.get("n_minibatches", 0))
        trace = np.asarray(rows["noise_norm"], dtype=np.float64) ** 2 * (m / (m - 1) if m > 1 else math.nan)
    loss = np.asarray(rows["loss"], dtype=np.float64) if "loss" in rows else np.full(len(steps), np.nan)
    dist_fit = line_fit(distance ** 2, trace, relative=True)
    try:
        loss_fit = line_fit(loss, trace, relative=True)
    except ValueError:
        loss_fit = LineFit(*(math.nan,) * 5, 0)
    p_d, p_d_se = power_exponent(distance, trace)
    p_l, p_l_se = power_exponent(loss, trace)
    participation = float(rows["cov_participation"][-1]) if "cov_participation" in rows else math.nan
    traces = np.asarray(hrows.get("trace", []), dtype=np.float64)
    trace_h = float(traces[np.isfinite(traces)][-1]) if np.isfinite(traces).any() else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = 2 * n_params / (lr * loss_fit.slope) if loss_fit.slope > 0 else math.nan
        kappa_se = kappa * loss_fit.slope_se / loss_fit.slope if math.isfinite(kappa) else math.nan
        kappa_support = 2 * participation / (lr * loss_fit.slope) if loss_fit.slope > 0 else math.nan
        kappa_distance = trace_h / (lr * dist_fit.slope) if dist_fit.slope > 0 else math.nan
    marginal = kappa - (n_params - 1) / 2 if kappa > n_params / 2 else math.nan
    try:
        entry_fit = fit_kappa(entries)
        kappa_entries, kappa_ci = float(entry_fit.kappa), tuple(float(c) for c in entry_fit.ci)
    except ValueError:  # too few or constant entries
        kappa_entries, kappa_ci = math.nan, (math.nan, math.nan)
    settings = {"w_star": "final snapshot of /weights", "distance": "euclidean, all recorded parameters",
                "fits": "least squares of relative residuals (weights 1/trace^2)",
                "trace": "cov_trace" if "cov_trace" in rows else "noise_norm^2 m/(m-1)",
                "kappa_entries": "fit_kappa of the final snapshot's weight tensors" if weight_cols else
                "fit_kappa of the final snapshot"}
    return StateNoiseResult(steps, snapshot_steps, trace, distance, loss, final_step, dist_fit.intercept,
                            dist_fit.intercept_se, dist_fit.slope, dist_fit.slope_se, dist_fit.r2, loss_fit.intercept,
                            loss_fit.slope, loss_fit.slope_se, loss_fit.r2, p_d, p_d_se, p_l, p_l_se, lr, int(n_params),
                            participation, trace_h,
                            kappa, kappa_se, kappa_support, kappa_distance, marginal, kappa_entries, kappa_ci,
                            settings)
