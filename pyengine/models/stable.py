"""α-stable random numbers by the Chambers–Mallows–Stuck method."""

from __future__ import annotations

import numpy as np

from pyengine.models._common import check_nonnegative, check_range, check_size


def stable_samples(
    n: int,
    alpha: float,
    *,
    beta: float = 0.0,
    scale: float = 1.0,
    loc: float = 0.0,
    seed=None,
) -> np.ndarray:
    """Draw i.i.d. α-stable samples S_α(scale, β, loc) (Chambers–Mallows–Stuck).

    With V ~ Uniform(−π/2, π/2) and W ~ Exp(1) independent, the standard variable is,
    for α ≠ 1,

        X = S · sin(α(V + B)) / cos(V)^{1/α} · (cos(V − α(V + B)) / W)^{(1−α)/α},
        B = arctan(β tan(πα/2)) / α,   S = (1 + β² tan²(πα/2))^{1/(2α)},

    and for α = 1,

        X = (2/π) · [(π/2 + βV) tan V − β log((π/2 · W cos V) / (π/2 + βV))],

    and the result is ``scale·X + loc``, the location–scale family of the standard
    S_α(1, β, 0) in the parameterisation S1 of Samorodnitsky & Taqqu (1994), as in
    :data:`scipy.stats.levy_stable` (its default). For α = 1 and β ≠ 0 this differs from
    Samorodnitsky & Taqqu's S_1(scale, β, loc) by the shift (2/π)·β·scale·log(scale);
    for β = 0 all these parameterisations coincide. The symmetric characteristic
    function is exp(−|scale·u|^α), so α = 2 gives the Gaussian N(loc, 2·scale²).

    Parameters
    ----------
    n : int
        Number of samples, >= 1.
    alpha : float
        Stability index in (0, 2].
    beta : float, optional
        Skewness in [-1, 1]; 0 (the default) is symmetric.
    scale : float, optional
        Scale parameter >= 0.
    loc : float, optional
        Location parameter.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None, optional
        Anything :func:`numpy.random.default_rng` accepts.

    Returns
    -------
    numpy.ndarray of float64, shape (n,)
        The samples.

    References
    ----------
    J. M. Chambers, C. L. Mallows & B. W. Stuck (1976), "A method for simulating stable
    random variables", JASA 71, 340–344; R. Weron (1996), "On the Chambers–Mallows–Stuck
    method for simulating skewed stable random variables", Stat. Prob. Lett. 28, 165–171.

    Examples
    --------
    >>> x = stable_samples(100_000, 1.5, seed=0)
    >>> x.shape
    (100000,)
    >>> bool(abs(np.median(x)) < 0.02)
    True
    """
    n = check_size(n, "n")
    alpha = check_range(alpha, "alpha", 0.0, 2.0, closed="right")
    beta = check_range(beta, "beta", -1.0, 1.0, closed="both")
    scale = check_nonnegative(scale, "scale")
    loc = float(loc)
    x = standard_stable(np.random.default_rng(seed), (n,), alpha, beta)
    x *= scale
    x += loc
    return x


def standard_stable(rng: np.random.Generator, shape: tuple[int, ...], alpha: float, beta: float) -> np.ndarray:
    """Standard S_α(1, β, 0) samples of the given shape in float64 (arguments unchecked).

    V and W come from one stream of uniform pairs in C order, so drawing a shape
    (r1 + r2, n) equals drawing (r1, n) then (r2, n).
    """
    u = rng.random((*shape, 2))
    v = np.pi * (u[..., 0] - 0.5)
    w = -np.log1p(-u[..., 1])
    if alpha == 1.0:
        return _cms_alpha_one(v, w, beta)
    return _cms(v, w, alpha, beta)


def _cms(v: np.ndarray, w: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """CMS transform for α ≠ 1 (Weron 1996, Eq. 3.1–3.2); overwrites ``v``."""
    t = beta * np.tan(np.pi * alpha / 2)
    b = np.arctan(t) / alpha
    s = (1.0 + t * t) ** (1.0 / (2.0 * alpha))
    v += b  # v now holds V + B
    cos_v = np.cos(v - b)
    x = s * np.sin(alpha * v) / cos_v ** (1.0 / alpha)
    x *= (np.cos(v - b - alpha * v) / w) ** ((1.0 - alpha) / alpha)
    return x


def _cms_alpha_one(v: np.ndarray, w: np.ndarray, beta: float) -> np.ndarray:
    """CMS transform for α = 1 (Weron 1996, Eq. 3.3)."""
    half_pi_bv = np.pi / 2 + beta * v
    x = half_pi_bv * np.tan(v)
    if beta != 0.0:
        x -= beta * np.log(np.pi / 2 * w * np.cos(v) / half_pi_bv)
    return 2.0 / np.pi * x
