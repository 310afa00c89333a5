"""The Hessian's spectral density, trace and alignment with the gradient noise, read back
from ``/hessian`` (NumPy only; the measurement is :class:`pyengine.landscape.HessianProbe`).

Definitions (docs/landscape.md, "Density, trace, alignment"):

- **Density.** The SLQ nodes θ and weights τ of V start vectors (:mod:`pyengine.landscape.density`)
  give φ(λ) = (1/V) Σ_v Σ_j τ_vj N(λ; θ_vj, σ²), a Gaussian of width σ =
  ``DENSITY_WIDTH`` × (θ_max − θ_min) around each node (Ghorbani et al. 2019, Sec. 2.1).
- **Near-zero and negative fractions.** μ([−ε, ε]) and μ((−∞, −ε)), ε = ``zero_tol`` ×
  max|θ| (relative to the spectral radius), for each vector's spectral measure μ_u. A Gauss
  rule of s nodes fixes them only within the Chebyshev–Markov–Stieltjes bounds
  (:func:`cdf_bounds`: the weights of the nodes next to ±ε). The estimate is the weight
  of the nodes inside the interval (a point mass, such as an exact null space, gets a
  node of its own and is counted right), averaged over the V vectors (``near_zero``,
  ``negative``), with the sampling standard error of that mean (``*_se``) and the
  averaged bounds (``*_lo``, ``*_hi``): the true fraction lies in [lo − z·se, hi + z·se].
  A closed Krylov space (few distinct eigenvalues) makes the rule exact and the bounds
  collapse.
- **λ_min, λ_max.** The smallest and largest nodes: the extreme Ritz values converge first,
  from inside (λ_min is over-, λ_max under-estimated).
- **Alignment.** ``overlap``: mean squared cosine of the principal angles between the
  top-k eigenvectors of Σ and of H (a random k-dimensional span gives k/P);
  ``trace_ratio`` = tr(H Σ)/(tr H · tr Σ) (isotropic noise gives 1/P; noise all along the
  top Hessian eigenvector λ_1/tr H).
"""

from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass, field

import numpy as np

from pyengine.landscape.results import block_rows, hessian_settings
from pyengine.results import Result, legend_outside, panels_or_new, readable_ticks, window_colors, with_groups
from pyengine.store import open_trajectory
from pyengine.store._groups import group_rows

__all__ = ["CurvatureResult", "curvature_result", "cdf_bounds", "slq_fractions", "slq_density", "ZERO_TOL",
           "DENSITY_WIDTH"]

#: Eigenvalues with |λ| <= ZERO_TOL × max|λ| count as near zero.
ZERO_TOL = 1e-3
#: Width σ of the Gaussian put on each SLQ node, as a fraction of the node range.
DENSITY_WIDTH = 0.01
#: Points of the density grid.
DENSITY_POINTS = 400


def cdf_bounds(nodes: np.ndarray, weights: np.ndarray, x: float, strict: bool = False,
               exact: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on each start vector's spectral distribution function at ``x`` from its Gauss rule.

    The Chebyshev–Markov–Stieltjes inequalities (Golub & Meurant 2010, Thm. 6.4; Szegő
    1939, Sec. 3.41): for the Gauss rule (θ_j ascending, τ_j) of a measure μ with
    distribution F, Σ_{i<j} τ_i <= F(θ_j − 0) and F(θ_j) <= Σ_{i<=j} τ_i. So with θ_j the
    largest node <= x (< x when ``strict``, for F(x − 0)) and θ_{j+1} the next,
    Σ_{i<j} τ_i <= F(x) <= Σ_{i<=j+1} τ_i: the count of the nodes up to x, minus the
    weight of the last, plus that of the next. Where the Krylov space closed (``exact``)
    the rule is the measure itself and both bounds are the count.

    Parameters
    ----------
    nodes, weights : ndarray of shape (V, s)
        Ascending nodes per row, NaN-padded.
    x : float
    strict : bool
        Bound F(x − 0) = μ((−∞, x)) instead of F(x) = μ((−∞, x]).
    exact : bool ndarray of shape (V,), optional

    Returns
    -------
    lower, upper : ndarray of shape (V,)

    Examples
    --------
    >>> cdf_bounds(np.array([[-1.0, 0.0, 1.0]]), np.array([[0.2, 0.5, 0.3]]), 0.5)
    (array([0.2]), array([1.]))
    """
    theta = np.asarray(nodes, dtype=np.float64)
    finite = np.isfinite(theta)
    tau = np.where(finite, np.asarray(weights, dtype=np.float64), 0.0)
    below = finite & ((theta < x) if strict else (theta <= x))
    count = (tau * below).sum(1)
    j = below.sum(1) - 1  # nodes are ascending: the last node up to x
    rows = np.arange(theta.shape[0])
    last = np.where(j >= 0, tau[rows, np.maximum(j, 0)], 0.0)
    nxt = np.where((j + 1 < finite.sum(1)), tau[rows, np.minimum(j + 1, theta.shape[1] - 1)], 0.0)
    lower, upper = count - last, count + nxt
    if exact is not None:
        lower, upper = np.where(exact, count, lower), np.where(exact, count, upper)
    return np.clip(lower, 0.0, 1.0), np.clip(upper, 0.0, 1.0)


def slq_fractions(nodes: np.ndarray, weights: np.ndarray, zero_tol: float = ZERO_TOL,
                  n: int | None = None) -> dict[str, np.ndarray]:
    """Near-zero and negative spectral mass of one measurement's SLQ rules, per start vector.

    With ε = zero_tol × max|θ| (over the vectors): near-zero = μ([−ε, ε]) = F(ε) − F(−ε − 0)
    and negative = μ((−∞, −ε)) = F(−ε − 0). The estimate is the weight of the nodes in
    the interval (right for point masses, which get a node each, such as an exact null
    space); :func:`cdf_bounds` gives what the rule guarantees.

    Parameters
    ----------
    nodes, weights : ndarray of shape (V, s)
    zero_tol : float
    n : int, optional
        Dimension of the operator: rules with n nodes (or a closed Krylov space, NaN-padded)
        are exact.

    Returns
    -------
    dict
        ``near_zero``, ``negative`` (V,): the node weights in the intervals; ``near_zero_lo``, ``near_zero_hi``,
        ``negative_lo``, ``negative_hi`` (V,): the bounds; ``eps``: float.

    Examples
    --------
    >>> f = slq_fractions(np.array([[-2.0, 0.0, 1.0, np.nan]]), np.array([[0.02, 0.9, 0.08, 0.0]]))
    >>> float(f["near_zero"][0]), float(f["negative"][0])   # a closed space: exact
    (0.9, 0.02)
    """
    theta = np.asarray(nodes, dtype=np.float64)
    finite = np.isfinite(theta)
    eps = zero_tol * float(np.max(np.abs(theta[finite]), initial=0.0))
    exact = (~finite).any(1) | (finite.sum(1) == n if n is not None else False)
    neg_lo, neg_hi = cdf_bounds(theta, weights, -eps, strict=True, exact=exact)
    up_lo, up_hi = cdf_bounds(theta, weights, eps, exact=exact)
    near_lo, near_hi = np.clip(up_lo - neg_hi, 0, 1), np.clip(up_hi - neg_lo, 0, 1)
    tau = np.where(finite, np.asarray(weights, dtype=np.float64), 0.0)
    near = (tau * (finite & (np.abs(np.where(finite, theta, 0.0)) <= eps))).sum(1)
    negative = (tau * (finite & (np.where(finite, theta, 0.0) < -eps))).sum(1)
    return {"near_zero": near, "negative": negative, "near_zero_lo": near_lo, "near_zero_hi": near_hi,
            "negative_lo": neg_lo, "negative_hi": neg_hi, "eps": eps}


def slq_density(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """φ(λ) = (1/V) Σ_v Σ_j τ_vj N(λ; θ_vj, σ²) on ``grid`` for one measurement's (V, s) nodes.

    Examples
    --------
    >>> grid = np.linspace(-1, 1, 2001)
    >>> phi = slq_density(np.array([[0.0]]), np.array([[1.0]]), grid, 0.1)
    >>> round(float(phi.sum() * (grid[1] - grid[0])), 6)
    1.0
    """
    theta = np.asarray(nodes, dtype=np.float64).ravel()
    tau = np.asarray(weights, dtype=np.float64).ravel()
    keep = np.isfinite(theta) & (tau > 0)
    v = np.asarray(nodes).shape[0] if np.asarray(nodes).ndim > 1 else 1
    z = (grid[:, None] - theta[keep][None, :]) / sigma
    return (np.exp(-0.5 * z * z) * tau[keep][None, :]).sum(1) / (v * sigma * math.sqrt(2 * math.pi))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


@dataclass(frozen=True, repr=False)
class CurvatureResult(Result):
    """Hessian density, trace and noise alignment at the probe steps (``/hessian``).

    A probe recorded with groups (``HessianProbe(groups=...)``) gives each group's diagonal
    block H_LL in ``groups`` (``{group: CurvatureResult}``): its ``lambda_max`` (top of the
    block's Lanczos) and ``trace`` ± ``trace_se`` (tr H_LL from the SLQ vectors, NaN without
    a density); the block's density and alignment are not measured (NaN).

    Attributes
    ----------
    steps : ndarray of int64, shape (M,)
    lambda_max : ndarray of float64, shape (M,)
        The largest eigenvalue (Lanczos top-k).
    lambda_min : ndarray of float64, shape (M,)
        The smallest SLQ node (NaN without a density).
    trace, trace_se : ndarray of float64, shape (M,)
        tr H by Hutchinson on the SLQ vectors, and its standard error.
    near_zero, near_zero_se, negative, negative_se : ndarray of float64, shape (M,)
        Fractions of the spectrum with |λ| <= ε and λ < −ε and their sampling standard
        errors (module docstring).
    near_zero_lo, near_zero_hi, negative_lo, negative_hi : ndarray of float64, shape (M,)
        The quadrature's bounds on the same fractions (averaged over the start vectors).
    overlap : ndarray of float64, shape (M,)
        Mean squared cosine of the principal angles between the top-``align_k``
        eigenspaces of Σ and H (NaN without a noise probe).
    align_k : ndarray of int64, shape (M,)
    trace_ratio, trace_ratio_se : ndarray of float64, shape (M,)
        tr(H Σ)/(tr H · tr Σ).
    hd_trace, noise_trace : ndarray of float64, shape (M,)
        tr(H Σ) and tr Σ.
    grid : ndarray of float64, shape (G,)
        Eigenvalue grid of ``density``.
    density : ndarray of float64, shape (M, G), optional
        The smoothed SLQ density φ(λ) per step.
    nodes, weights : ndarray of float64, shape (M, V, s), optional
        The stored quadrature.
    n_params : int
        P, the Hessian's dimension (the recorded parameters).
    zero_tol : float
    settings : dict
        ``/hessian``'s attributes.
    """

    steps: np.ndarray
    lambda_max: np.ndarray
    lambda_min: np.ndarray
    trace: np.ndarray
    trace_se: np.ndarray
    near_zero: np.ndarray
    near_zero_se: np.ndarray
    near_zero_lo: np.ndarray
    near_zero_hi: np.ndarray
    negative: np.ndarray
    negative_se: np.ndarray
    negative_lo: np.ndarray
    negative_hi: np.ndarray
    overlap: np.ndarray
    align_k: np.ndarray
    trace_ratio: np.ndarray
    trace_ratio_se: np.ndarray
    hd_trace: np.ndarray
    noise_trace: np.ndarray
    grid: np.ndarray
    density: np.ndarray | None
    nodes: np.ndarray | None = None
    weights: np.ndarray | None = None
    n_params: int = 0
    zero_tol: float = ZERO_TOL
    settings: dict = field(default_factory=dict)

    _rows = "step"
    _headline = {"near_zero": "near_zero_se", "negative": "negative_se", "trace": "trace_se", "overlap": None,
                 "trace_ratio": "trace_ratio_se", "lambda_min": None}
    _curves = {"density": ("step", "eigenvalue")}
    _coords = {"step": "steps", "eigenvalue": "grid"}
    _exclude = ("nodes", "weights")

    @classmethod
    def from_rows(cls, rows: dict[str, np.ndarray], attrs: dict, n_params: int,
                  zero_tol: float = ZERO_TOL) -> CurvatureResult:
        """From the row datasets of ``/hessian`` (:func:`pyengine.store.group_rows`) and its
        attributes (:func:`pyengine.landscape.results.hessian_settings`), with the blocks'
        results in ``groups``."""
        steps = np.asarray(rows["step"], dtype=np.int64)
        m = len(steps)

        def col(name, fill=np.nan):
            return np.asarray(rows[name], dtype=np.float64) if name in rows else np.full(m, fill)

        nodes = weights = density = None
        frac = {key: np.full(m, np.nan) for key in ("near_zero", "near_zero_se", "near_zero_lo", "near_zero_hi",
                                                    "negative", "negative_se", "negative_lo", "negative_hi")}
        lam_min = np.full(m, np.nan)
        grid = np.empty(0)
        if "slq_nodes" in rows and rows["slq_nodes"].size and m:
            v = int(attrs.get("density", 1)) or 1
            nodes = np.asarray(rows["slq_nodes"], dtype=np.float64).reshape(m, v, -1)
            weights = np.asarray(rows["slq_weights"], dtype=np.float64).reshape(m, v, -1)
            for i in range(m):
                f = slq_fractions(nodes[i], weights[i], zero_tol, n_params or None)
                for key in ("near_zero", "negative"):
                    frac[key][i] = f[key].mean()
                    frac[f"{key}_se"][i] = f[key].std(ddof=1) / math.sqrt(v) if v > 1 else np.nan
                    frac[f"{key}_lo"][i], frac[f"{key}_hi"][i] = f[f"{key}_lo"].mean(), f[f"{key}_hi"].mean()
            lam_min = np.nanmin(np.where(np.isfinite(nodes), nodes, np.inf).reshape(m, -1), axis=1)
            lo, hi = np.nanmin(nodes), np.nanmax(nodes)
            sigma = DENSITY_WIDTH * max(hi - lo, 1e-300)
            grid = np.linspace(lo - 4 * sigma, hi + 4 * sigma, DENSITY_POINTS)
            density = np.array([slq_density(nodes[i], weights[i], grid, sigma) for i in range(m)])
        eig = np.asarray(rows.get("eigenvalues", np.full((m, 1), np.nan)), dtype=np.float64)
        trace, trace_se = col("trace"), col("trace_se")
        hd, hd_se, noise = col("hd_trace"), col("hd_trace_se"), col("noise_trace")
        ratio = _ratio(hd, trace * noise)
        rel = np.sqrt(np.nan_to_num(_ratio(hd_se, hd)) ** 2 + np.nan_to_num(_ratio(trace_se, trace)) ** 2)
        align_k = np.asarray(rows["align_k"], dtype=np.int64) if "align_k" in rows else np.zeros(m, np.int64)
        result = cls(steps, eig[:, 0], lam_min, trace, trace_se, frac["near_zero"], frac["near_zero_se"],
                     frac["near_zero_lo"], frac["near_zero_hi"], frac["negative"], frac["negative_se"],
                     frac["negative_lo"], frac["negative_hi"], col("overlap"), align_k,
                     ratio, np.abs(ratio) * rel, hd, noise, grid, density, nodes, weights, int(n_params),
                     float(zero_tol), dict(attrs))
        blocks = block_rows(rows, attrs)
        if blocks:
            with_groups(result, {name: cls.from_rows(block, own, own["n_params"] or 0, zero_tol)
                                 for name, (block, own) in blocks.items()})
        return result

    def to_dict(self) -> dict:
        """Plain Python types, ready for JSON (the quadrature nodes and weights left out).

        Examples
        --------
        >>> curvature_result("run.h5").to_dict()["near_zero"]  # doctest: +SKIP
        [0.93, 0.95]
        """
        return super().to_dict()

    def plot(self, ax=None):
        """Three panels: the smoothed density at each probe step (log density);
        the near-zero and negative fractions ± SE; the noise–curvature alignment (overlap
        and trace ratio) with their random baselines k/P and 1/P.

        Parameters
        ----------
        ax : sequence of three matplotlib Axes, optional

        Returns
        -------
        ndarray of matplotlib Axes
        """
        axes = panels_or_new(ax, 3, "CurvatureResult.plot")
        self._plot_density(axes[0])
        self._plot_fractions(axes[1])
        self._plot_alignment(axes[2])
        return axes

    def _plot_density(self, ax) -> None:
        if self.density is None:
            ax.text(0.5, 0.5, "no density measured\n(HessianProbe(density=V))", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_title("Hessian spectral density")
            return
        colors = window_colors(len(self.steps))
        floor = 1e-7 * np.nanmax(self.density)
        for i, step in enumerate(self.steps):
            ax.plot(self.grid, np.maximum(self.density[i], floor), color=colors[i], lw=1,
                    label=f"step {step}" if i in (0, len(self.steps) - 1) else None)
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor)
        readable_ticks(ax, "x")
        ax.set_xlabel(f"eigenvalue λ (Gaussian width {DENSITY_WIDTH:g} of the range)")
        ax.set_ylabel("density φ(λ)")
        ax.set_title("Hessian spectral density (SLQ)")
        ax.legend(fontsize="small")

    def _plot_fractions(self, ax) -> None:
        fmt = "o-" if len(self.steps) < 30 else "-"
        for key, color, label in (("near_zero", "C0", f"|λ| ≤ ε = {self.zero_tol:g}·max|λ|"),
                                  ("negative", "C3", "λ < −ε")):
            value, se = getattr(self, key), np.nan_to_num(getattr(self, f"{key}_se"))
            ax.fill_between(self.steps, getattr(self, f"{key}_lo"), getattr(self, f"{key}_hi"), color=color,
                            alpha=0.15, lw=0)
            ax.errorbar(self.steps, value, yerr=se, fmt=fmt, ms=3, color=color, label=f"{label} (± SE; band: "
                        "quadrature bounds)" if key == "near_zero" else label)
        ax.set_ylim(0, 1)
        ax.set_xlabel("step")
        ax.set_ylabel("fraction of the spectrum")
        ax.set_title("near-zero and negative eigenvalues")
        legend_outside(ax)
        readable_ticks(ax, "x")

    def _plot_alignment(self, ax) -> None:
        fmt = "o-" if len(self.steps) < 30 else "-"
        ok = np.isfinite(self.overlap) | np.isfinite(self.trace_ratio)
        if not ok.any():
            ax.text(0.5, 0.5, "no alignment measured\n(HessianProbe(noise=NoiseProbe))", ha="center",
                    va="center", transform=ax.transAxes)
            ax.set_title("noise–curvature alignment")
            return
        k = int(self.align_k.max()) if self.align_k.size else 0
        ax.plot(self.steps, self.overlap, fmt, ms=3, label=f"overlap of top-{k} eigenspaces (mean cos²)")
        ax.errorbar(self.steps, self.trace_ratio, yerr=np.nan_to_num(self.trace_ratio_se), fmt=fmt, ms=3,
                    color="C2", label="tr(HΣ) / (tr H · tr Σ)")
        if self.n_params:
            ax.axhline(k / self.n_params, color="C0", ls=":", lw=0.8,
                       label=f"random span: k/P = {k / self.n_params:.1e}")
            ax.axhline(1 / self.n_params, color="C2", ls=":", lw=0.8, label=f"isotropic: 1/P = {1 / self.n_params:.1e}")
        positive = np.concatenate([self.overlap[self.overlap > 0], self.trace_ratio[self.trace_ratio > 0]])
        if positive.size:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("alignment")
        ax.set_title("noise–curvature alignment")
        legend_outside(ax)
        readable_ticks(ax, "x")


def curvature_result(traj_path: str | pathlib.Path, zero_tol: float = ZERO_TOL) -> CurvatureResult | None:
    """The Hessian density, trace and alignment stored under ``/hessian``, or None when the
    file has no ``/hessian`` or it holds neither a density nor an alignment.

    Parameters
    ----------
    traj_path : str or Path
    zero_tol : float
        Relative threshold of the near-zero fraction.

    Returns
    -------
    CurvatureResult or None

    Examples
    --------
    >>> res = curvature_result("run.h5")  # doctest: +SKIP
    >>> res.near_zero, res.overlap  # doctest: +SKIP
    """
    with open_trajectory(traj_path, validate=False) as traj:
        group = traj.group("hessian")
        if group is None or "step" not in group:
            return None
        rows = group_rows(group)
        attrs = hessian_settings(group.attrs)
        n_params = traj.n_params
    has_density = "slq_nodes" in rows and rows["slq_nodes"].size > 0
    has_alignment = "overlap" in rows and np.isfinite(np.asarray(rows["overlap"], dtype=np.float64)).any()
    has_trace = "trace" in rows and np.isfinite(np.asarray(rows["trace"], dtype=np.float64)).any()
    if not (has_density or has_alignment or has_trace):
        return None
    return CurvatureResult.from_rows(rows, attrs, n_params, zero_tol)

