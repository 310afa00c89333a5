"""The power-law dynamic of document 004: SGD with state-dependent Gaussian noise.

    w_{t+1} = w_t − η H (w_t − w*) + η √(σ_g + σ_H (w_t − w*)²) ξ_t,   ξ_t ~ N(0, 1),

the SGD recursion on L = H (w − w*)²/2 with gradient-noise variance C(w) = σ_g + σ_H (w − w*)².
Document 004 (Corollary 3) reads it as dw = −H(w − w*) dt + √(η C(w)) dB and, with a
Fokker–Planck equation of the form ∇·(C ∇p), finds the stationary law
p(w) ∝ (1 + σ_H (w − w*)²/σ_g)^{−κ} with κ = H/(ησ_H).

Mind the discretisation: the recursion is the Euler–Maruyama (Itô) scheme of that SDE,
whose Fokker–Planck equation is ∂²(C p) rather than ∇·(C ∇p); its stationary law has
the same form with exponent κ + 1. At finite η the tail is that of a Kesten recursion,
|w| ≈ |1 − ηH + η√σ_H ξ|·|w| for large |w|: P(|w| > u) ∝ u^{−s} with
E|1 − ηH + η√σ_H ξ|^s = 1, i.e. a density exponent (s + 1)/2, which tends to κ + 1 as
η → 0. :func:`pyengine.heavytail.kappa.fit_kappa` fits the same family
(1 + (w − loc)²/(ν scale²))^{−κ}.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

__all__ = ["simulate_power_law", "kappa_continuum", "kappa_ito", "kappa_discrete"]


def _check(h: float, eta: float, sigma_g: float, sigma_h: float) -> None:
    if not (h > 0 and eta > 0 and sigma_g > 0 and sigma_h > 0):
        raise ValueError(f"h, eta, sigma_g and sigma_h must be > 0, got {h}, {eta}, {sigma_g}, {sigma_h}")


def simulate_power_law(h: float = 1.0, eta: float = 0.05, sigma_g: float = 1.0, sigma_h: float = 10.0,
                       w_star: float = 0.0, chains: int = 10_000, steps: int = 2_000, burn_in: int = 500,
                       thin: int = 50, seed=0) -> np.ndarray:
    """Stationary samples of the power-law dynamic (many independent chains).

    Parameters
    ----------
    h : float
        Curvature H of the quadratic loss at w*.
    eta : float
        Learning rate η (needs ηH < 1).
    sigma_g, sigma_h : float
        Noise variance σ_g at w* and its curvature σ_H.
    w_star : float
        Minimum w*.
    chains, steps, burn_in, thin : int
        Chains started at w*; every ``thin``-th state after ``burn_in`` steps is kept
        (a chain forgets in about 1/(ηH) steps).
    seed : int or numpy.random.Generator

    Returns
    -------
    float64 ndarray of shape (n_kept, chains)

    References
    ----------
    Document 004 (power-law dynamic), Eq. 3 and Corollary 3.

    Examples
    --------
    >>> w = simulate_power_law(chains=200, steps=300, burn_in=100, thin=100)
    >>> w.shape
    (2, 200)
    """
    _check(h, eta, sigma_g, sigma_h)
    if not eta * h < 1:
        raise ValueError(f"need eta * h < 1 for a stable recursion, got {eta * h}")
    if not (0 <= burn_in < steps and thin >= 1):
        raise ValueError(f"need 0 <= burn_in < steps and thin >= 1, got {burn_in}, {steps}, {thin}")
    rng = np.random.default_rng(seed)
    x = np.zeros(int(chains))  # x = w − w*
    kept = []
    for t in range(1, int(steps) + 1):
        x = x - eta * h * x + eta * np.sqrt(sigma_g + sigma_h * x * x) * rng.standard_normal(x.size)
        if t > burn_in and (t - burn_in) % thin == 0:
            kept.append(x + w_star)
    return np.array(kept)


def kappa_continuum(h: float, eta: float, sigma_h: float) -> float:
    """κ = H/(ησ_H) of document 004 (Corollary 3).

    Examples
    --------
    >>> kappa_continuum(1.0, 0.05, 10.0)
    2.0
    """
    _check(h, eta, 1.0, sigma_h)
    return h / (eta * sigma_h)


def kappa_ito(h: float, eta: float, sigma_h: float) -> float:
    """κ + 1: the exponent of the Itô (Euler–Maruyama) reading of the same SDE.

    Examples
    --------
    >>> kappa_ito(1.0, 0.05, 10.0)
    3.0
    """
    return kappa_continuum(h, eta, sigma_h) + 1.0


def kappa_discrete(h: float, eta: float, sigma_h: float) -> float:
    """Density exponent (s + 1)/2 of the recursion itself, E|1 − ηH + η√σ_H ξ|^s = 1.

    The expectation is computed by Gauss–Hermite quadrature (200 nodes) and s by
    root finding; (s + 1)/2 → κ + 1 as η → 0.

    Examples
    --------
    >>> round(kappa_discrete(1.0, 0.001, 200.0), 2), kappa_ito(1.0, 0.001, 200.0)
    (6.0, 6.0)
    """
    _check(h, eta, 1.0, sigma_h)
    nodes, weights = np.polynomial.hermite_e.hermegauss(200)
    weights = weights / weights.sum()
    a = np.abs(1 - eta * h + eta * math.sqrt(sigma_h) * nodes)

    def log_moment(s):
        return math.log(float(weights @ a**s))

    hi = 2 * kappa_ito(h, eta, sigma_h) + 10
    while log_moment(hi) <= 0:
        hi *= 2
    s = optimize.brentq(log_moment, 1e-6, hi, xtol=1e-10)
    return (s + 1) / 2
