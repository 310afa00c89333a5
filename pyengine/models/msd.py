"""The exact (or, for the CTRW, asymptotic) MSD of each synthetic model."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from pyengine.models._common import check_nonnegative, check_range, check_size

#: Generator keywords that do not change the MSD; expected_msd accepts and ignores them.
_IGNORED = frozenset({"x0", "dtype", "seed"})


def expected_msd(model: str, lags, **params) -> np.ndarray:
    """The known mean squared displacement MSD(τ) = E‖x(t+τ) − x(t)‖² of a model.

    ``params`` are the generator's keywords (``n_params`` included, default 1); ``x0``,
    ``dtype`` and ``seed`` are accepted and ignored, others raise TypeError.

    ============================  ======================================================
    model                         MSD(τ)
    ============================  ======================================================
    ``"brownian"``                n_params·σ²·τ
    ``"fbm"``                     n_params·σ²·τ^{2H}
    ``"ballistic"``               speed²·τ² (independent of n_params)
    ``"levy_flight"``             ∞ for α < 2 (τ > 0); 2·n_params·scale²·τ for α = 2
    ``"ctrw"``                    n_params·σ²·E[N(τ)] ~ n_params·σ²·τ^a / (Γ(1−a)·Γ(1+a))
    ``"ornstein_uhlenbeck"``      n_params·σ²/θ·(1 − e^{−θτ})
    ============================  ======================================================

    All but the CTRW hold for every origin t. For the CTRW, τ is the time since the
    start (origin t = 0 only) and E[N(τ)] = Σ_{s=1}^{⌊τ⌋} u(s) is the exact mean number
    of renewals: u(0) = 1, u(s) = Σ_{k=1}^{s} f(k)·u(s−k), f(k) = k^{−a} − (k+1)^{−a}
    (discrete renewal equation, O(τ_max²) work; W. Feller 1968, "An Introduction to
    Probability Theory", Vol. 1, Ch. XIII). Its large-τ asymptote is the Tauberian
    τ^a / (Γ(1−a)·Γ(1+a)) (R. Metzler & J. Klafter 2000, Phys. Rep. 339, 1–77).

    Parameters
    ----------
    model : str
        One of the names in the table.
    lags : array_like of float
        Lags τ >= 0 in steps.
    **params
        The model's parameters, named as in its generator.

    Returns
    -------
    numpy.ndarray of float64, shape of ``lags``
        The MSD at each lag.

    Examples
    --------
    >>> expected_msd("brownian", [1, 10], n_params=100, sigma=0.1)
    array([ 1., 10.])
    >>> expected_msd("fbm", [4.0], hurst=0.25, x0=1e3)
    array([2.])
    """
    if model not in _MSD:
        raise ValueError(f"model must be one of {sorted(_MSD)}, got {model!r}")
    lags = np.asarray(lags, dtype=np.float64)
    if not np.all(np.isfinite(lags) & (lags >= 0)):
        raise ValueError("lags must be finite and >= 0")
    n_params = check_size(params.pop("n_params", 1), "n_params")
    used = {key: value for key, value in params.items() if key not in _IGNORED}
    return _MSD[model](lags, n_params, **used)


def _brownian(lags: np.ndarray, n_params: int, *, sigma: float = 1.0) -> np.ndarray:
    return n_params * check_nonnegative(sigma, "sigma") ** 2 * lags


def _fbm(lags: np.ndarray, n_params: int, *, hurst: float, sigma: float = 1.0) -> np.ndarray:
    hurst = check_range(hurst, "hurst", 0.0, 1.0, closed="neither")
    return n_params * check_nonnegative(sigma, "sigma") ** 2 * lags ** (2.0 * hurst)


def _ballistic(lags: np.ndarray, n_params: int, *, speed: float = 1.0) -> np.ndarray:
    return check_nonnegative(speed, "speed") ** 2 * lags**2


def _levy_flight(lags: np.ndarray, n_params: int, *, alpha: float, scale: float = 1.0) -> np.ndarray:
    alpha = check_range(alpha, "alpha", 0.0, 2.0, closed="right")
    scale = check_nonnegative(scale, "scale")
    if alpha < 2.0:
        return np.where(lags > 0, np.inf if scale > 0 else 0.0, 0.0)
    return 2.0 * n_params * scale**2 * lags


def _ctrw(lags: np.ndarray, n_params: int, *, waiting_alpha: float, sigma: float = 1.0) -> np.ndarray:
    a = check_range(waiting_alpha, "waiting_alpha", 0.0, 1.0, closed="neither")
    steps = np.floor(lags).astype(np.intp)
    count = _mean_renewal_count(int(steps.max(initial=0)), a)
    return n_params * check_nonnegative(sigma, "sigma") ** 2 * count[steps]


def _mean_renewal_count(t_max: int, a: float) -> np.ndarray:
    """E[N(t)], t = 0..t_max, for i.i.d. waits with P(τ >= k) = k^{−a}, k >= 1."""
    k = np.arange(1, t_max + 1, dtype=np.float64)
    f = k**-a - (k + 1) ** -a
    reversed_u = np.zeros(t_max + 1)  # reversed_u[t_max - t] = u(t), so u(t-1..0) is contiguous
    reversed_u[t_max] = 1.0
    for t in range(1, t_max + 1):  # einsum: single-threaded, unlike BLAS dot on long rows
        reversed_u[t_max - t] = np.einsum("i,i->", f[:t], reversed_u[t_max - t + 1 :])
    return np.cumsum(reversed_u[::-1]) - 1.0


def _ornstein_uhlenbeck(lags: np.ndarray, n_params: int, *, theta: float = 0.05, sigma: float = 1.0) -> np.ndarray:
    theta = check_range(theta, "theta", 0.0, math.inf, closed="neither")
    return n_params * check_nonnegative(sigma, "sigma") ** 2 / theta * -np.expm1(-theta * lags)


_MSD: dict[str, Callable[..., np.ndarray]] = {
    "brownian": _brownian,
    "fbm": _fbm,
    "ballistic": _ballistic,
    "levy_flight": _levy_flight,
    "ctrw": _ctrw,
    "ornstein_uhlenbeck": _ornstein_uhlenbeck,
}
