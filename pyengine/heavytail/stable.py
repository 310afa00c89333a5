"""Fast maximum-likelihood fits of symmetric α-stable laws S(α, β=0, scale, loc).

The density. f(x; α) of the standard law (characteristic function e^{−|t|^α}) comes from
a table shipped with pyengine (``stable_table.npz``, built by ``_build_table.py`` from
quadrature of the characteristic function): for |x| < 10, f = φ₂(x) + G(u, α)/(1 + |x|)³
with u = |x|/(1 + |x|), G interpolated with degree-8 polynomials on α-panels of width 0.05
and cubically in u; for |x| ≥ 10, the tail series f = φ₂(x) + Σ_k c_k(α) |x|^{−kα−1}
(Bergström), truncated at its smallest term. φ₂ is the N(0, 2) density, i.e. f at α = 2.
Accuracy against quadrature: see docs/heavytail.md and tests/test_heavytail_stable.py.

The fit. A McCulloch (1986) quantile estimate starts L-BFGS-B on the exact gradient of the
log-likelihood (α ∈ [0.5, 2]); confidence intervals come from the observed information
(finite differences of the gradient); the Gaussian fit is compared with Vuong's (1989)
test, as in Chen et al. (Fig. 5).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from scipy import optimize, special

from pyengine.heavytail._input import finite_values
from pyengine.heavytail.results import StableFit
from pyengine.kernels.tail_stable import DensityRow, stable_loglik

__all__ = ["fit_levy_stable", "stable_logpdf", "density_row", "mcculloch"]

ALPHA_MIN, ALPHA_MAX = 0.5, 2.0
_TABLE = Path(__file__).with_name("stable_table.npz")


@functools.cache
def _table() -> dict:
    with np.load(_TABLE) as t:
        return {k: t[k] for k in t.files}


def _panel_weights(alpha: float) -> tuple[np.ndarray, np.ndarray, slice]:
    """Lagrange weights (and their α-derivatives) of the α-panel holding ``alpha``."""
    t = _table()
    panels, degree = t["panels"], int(t["degree"])
    p = min(int(np.searchsorted(panels, alpha, side="right")) - 1, panels.size - 2)
    rows = slice(p * degree, p * degree + degree + 1)
    nodes = t["alpha_nodes"][rows]
    diff = alpha - nodes
    w = np.empty(nodes.size)
    dw = np.empty(nodes.size)
    for i in range(nodes.size):
        others = np.delete(np.arange(nodes.size), i)
        denom = np.prod(nodes[i] - nodes[others])
        terms = diff[others]
        w[i] = np.prod(terms) / denom
        dw[i] = sum(np.prod(np.delete(terms, m)) for m in range(terms.size)) / denom
    return w, dw, rows


def _tail_coefficients(alpha: float, x_tail: float, k_max: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """c_k(α) = (−1)^{k+1} Γ(kα+1) sin(kπα/2) / (π k!) and ∂c_k/∂α, truncated where the
    series, at |x| = x_tail, is smallest or below 1e-18 of its first term."""
    k = np.arange(1, k_max + 1)
    log_mag = special.gammaln(k * alpha + 1) - special.gammaln(k + 1) - math.log(math.pi)
    envelope = log_mag - k * alpha * math.log(x_tail)
    keep = log_mag < 700.0
    small = np.nonzero(envelope < envelope[0] + math.log(1e-18))[0]
    n = small[0] if small.size else int(np.argmin(np.where(keep, envelope, np.inf))) + 1
    k, log_mag = k[:n], log_mag[:n]
    base = np.where(k % 2 == 1, 1.0, -1.0) * np.exp(log_mag)
    if alpha == ALPHA_MAX:  # Gaussian: every sin(kπ) is 0 (exactly, not to rounding)
        return np.zeros(n), base * k * math.pi / 2 * np.cos(k * math.pi)
    angle = k * math.pi * alpha / 2
    c = base * np.sin(angle)
    c_da = base * (k * special.digamma(k * alpha + 1) * np.sin(angle) + k * math.pi / 2 * np.cos(angle))
    return c, c_da


@functools.lru_cache(maxsize=64)
def density_row(alpha: float) -> DensityRow:
    """The standard SαS density at ``alpha`` in the form the kernels read.

    Parameters
    ----------
    alpha : float in [0.5, 2]
    """
    if not ALPHA_MIN <= alpha <= ALPHA_MAX:
        raise ValueError(f"alpha must lie in [{ALPHA_MIN}, {ALPHA_MAX}], got {alpha}")
    t = _table()
    w, dw, rows = _panel_weights(alpha)
    g, g_da = w @ t["table"][rows], dw @ t["table"][rows]
    x_tail = float(t["x_tail"])
    h = x_tail / (1.0 + x_tail) / (t["table"].shape[1] - 1)
    c, c_da = _tail_coefficients(alpha, x_tail)
    return DensityRow(g, g_da, h, x_tail, c, c_da, float(alpha))


def stable_logpdf(x, alpha: float, scale: float = 1.0, loc: float = 0.0, backend: str = "auto") -> np.ndarray:
    """Log-density of S(α, β=0, scale, loc) at x.

    Parameters
    ----------
    x : array_like of finite floats
    alpha : float in [0.5, 2]
    scale : float > 0
    loc : float
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}

    Returns
    -------
    float64 array shaped like x

    Examples
    --------
    >>> import numpy as np
    >>> float(np.exp(stable_logpdf([0.0], 1.0))[0] * np.pi)   # Cauchy: 1/π at 0
    1.0
    """
    x = np.asarray(x, dtype=np.float64)
    flat = np.ascontiguousarray(x.ravel())
    out = np.empty_like(flat)
    stable_loglik(flat, loc, scale, density_row(float(alpha)), logp=out, backend=backend)
    return out.reshape(x.shape)


def mcculloch(x: np.ndarray) -> tuple[float, float, float]:
    """McCulloch's (1986) quantile estimate (α, scale, loc) for β = 0.

    α from ν = (q₉₅ − q₀₅)/(q₇₅ − q₂₅), scale = (q₇₅ − q₂₅)/IQR(α) with IQR the standard
    law's inter-quartile range, loc = the median. α is clipped to [0.5, 2].
    """
    t = _table()
    q05, q25, q50, q75, q95 = np.quantile(x, [0.05, 0.25, 0.5, 0.75, 0.95])
    iqr = q75 - q25
    if not iqr > 0:
        raise ValueError("the samples' inter-quartile range is 0: no scale to fit (constant data?)")
    nu = (q95 - q05) / iqr
    alphas, nus = t["mcc_alpha"], t["mcc_nu"]  # ν decreases with α
    alpha = float(np.interp(-nu, -nus, alphas))
    return alpha, float(iqr / np.interp(alpha, alphas, t["mcc_iqr"])), float(q50)


class _Objective:
    """Mean negative log-likelihood in θ = (α, log scale, (loc − loc0)/scale0), with gradient."""

    def __init__(self, x, loc0, scale0, backend):
        self.x, self.loc0, self.scale0, self.backend = x, loc0, scale0, backend

    def params(self, theta):
        return theta[0], math.exp(theta[1]), self.loc0 + theta[2] * self.scale0

    def __call__(self, theta):
        alpha, scale, loc = self.params(theta)
        s = stable_loglik(self.x, loc, scale, density_row(float(alpha)), backend=self.backend)
        n = self.x.size
        return -s[0] / n, -np.array([s[1], s[3] * scale, s[2] * self.scale0]) / n


def _information(x, alpha, scale, loc, backend) -> np.ndarray:
    """Observed information in (α, scale, loc): central differences of the exact gradient."""
    theta = np.array([alpha, scale, loc])
    steps = np.array([1e-4, 1e-4 * scale, 1e-4 * scale])

    def grad(p):
        s = stable_loglik(x, p[2], p[1], density_row(float(p[0])), backend=backend)
        return -s[[1, 3, 2]]

    info = np.empty((3, 3))
    for i in range(3):
        hi, lo = theta.copy(), theta.copy()
        hi[i] += steps[i]
        if i == 0:  # keep both α points inside [ALPHA_MIN, ALPHA_MAX]
            hi[0] = min(hi[0], ALPHA_MAX)
            lo[0] = max(hi[0] - 2 * steps[0], ALPHA_MIN)
        else:
            lo[i] -= steps[i]
        info[i] = (grad(hi) - grad(lo)) / (hi[i] - lo[i])
    return 0.5 * (info + info.T)


def fit_levy_stable(x, backend: str = "auto") -> StableFit:
    """Fit a symmetric α-stable law by maximum likelihood and test it against a Gaussian.

    Parameters
    ----------
    x : array_like
        Samples: NumPy, CuPy, torch or h5py; flattened; non-finite values are dropped.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
        Kernel for the log-likelihood.

    Returns
    -------
    StableFit
        ``.alpha, .scale, .loc`` (α ∈ [0.5, 2], characteristic function
        exp(i·loc·t − |scale·t|^α)), 95 % ``.ci`` from the observed information, and
        ``.llr, .vuong_z, .p_value`` of the comparison with the Gaussian fit.

    References
    ----------
    McCulloch (1986), Commun. Stat. Simul. 15:1109; Nolan (2020), Univariate Stable
    Distributions; Vuong (1989), Econometrica 57:307; Chen et al. (Fig. 5).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_cauchy(20_000) * 2.0 + 1.0
    >>> fit = fit_levy_stable(x)
    >>> bool(abs(fit.alpha - 1) < 0.05 and abs(fit.scale - 2) < 0.1), bool(fit.llr > 0)
    (True, True)
    """
    x, _ = finite_values(x)
    n = x.size
    if n < 10:
        raise ValueError(f"x: need at least 10 finite samples, got {n}")
    start = mcculloch(x)
    a0, s0, l0 = start
    obj = _Objective(x, l0, s0, backend)
    res = optimize.minimize(obj, np.array([min(max(a0, 0.55), 1.99), math.log(s0), 0.0]), jac=True,
                            method="L-BFGS-B", bounds=[(ALPHA_MIN, ALPHA_MAX), (None, None), (None, None)],
                            options={"ftol": 1e-13, "gtol": 1e-9, "maxiter": 200})
    alpha, scale, loc = (float(v) for v in obj.params(res.x))
    at_bound = not ALPHA_MIN + 1e-6 < alpha < ALPHA_MAX - 1e-6
    cov = _covariance(_information(x, alpha, scale, loc, backend), at_bound)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    names = ("alpha", "scale", "loc")
    est = (alpha, scale, loc)
    ci = {k: (float(v - 1.96 * s), float(v + 1.96 * s)) for k, v, s in zip(names, est, se)}
    ci["alpha"] = (max(ci["alpha"][0], ALPHA_MIN), min(ci["alpha"][1], ALPHA_MAX))
    logp = np.empty(n)
    loglik = stable_loglik(x, loc, scale, density_row(alpha), logp=logp, backend=backend)[0]
    llr, z, p = _vuong(x, logp)
    return StableFit(alpha=alpha, scale=scale, loc=loc, ci=ci, alpha_se=float(se[0]), scale_se=float(se[1]),
                     loc_se=float(se[2]),
                     loglik=float(loglik), llr=llr, vuong_z=z, p_value=p, n=n, start=start, at_bound=at_bound)


def _covariance(info: np.ndarray, at_bound: bool) -> np.ndarray:
    """Inverse observed information; with α on a bound, α's row is left out (se 0)."""
    keep = [1, 2] if at_bound else [0, 1, 2]
    cov = np.zeros((3, 3))
    try:
        cov[np.ix_(keep, keep)] = np.linalg.inv(info[np.ix_(keep, keep)])
    except np.linalg.LinAlgError:
        cov[:] = np.nan
    return cov


def _vuong(x: np.ndarray, logp_stable: np.ndarray) -> tuple[float, float, float]:
    """Log-likelihood ratio against the Gaussian MLE, Vuong's z and its two-sided p-value."""
    mu, var = x.mean(), x.var()
    if not var > 0:
        return math.inf, math.inf, 0.0
    d = logp_stable - (-0.5 * math.log(2 * math.pi * var) - 0.5 * (x - mu) ** 2 / var)
    llr = float(d.sum())
    sd = float(d.std())
    if not sd > 1e-12 * max(1.0, abs(d.mean())):
        return llr, 0.0, 1.0
    z = llr / (math.sqrt(d.size) * sd)
    return llr, z, float(special.erfc(abs(z) / math.sqrt(2)))
