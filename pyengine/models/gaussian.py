"""Gaussian processes with known MSD: fractional Brownian motion and Ornstein–Uhlenbeck."""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from pyengine.models._common import (
    check_dtype,
    check_nonnegative,
    check_range,
    check_size,
    column_chunks,
    row_chunks,
    start_point,
)


def fbm(
    n_steps: int,
    n_params: int,
    hurst: float,
    *,
    sigma: float = 1.0,
    x0=None,
    dtype=np.float64,
    seed=None,
) -> np.ndarray:
    """Fractional Brownian motion with Hurst exponent H, exact (Davies–Harte).

    Each column is x(t) = x0 + σ·B_H(t), t = 0, 1, …, n_steps − 1, built from exactly
    Gaussian fractional noise with autocovariance

        γ(k) = ½ (|k + 1|^{2H} − 2|k|^{2H} + |k − 1|^{2H}),

    so that E[(x(t+τ) − x(t))²] = σ²·τ^{2H} and MSD(τ) = n_params·σ²·τ^{2H} for every
    origin. The noise comes from the circulant embedding of γ of size 2M (M the
    FFT-friendly length >= n_steps − 1): with eigenvalues λ = FFT(c) (all >= 0 for
    fractional noise), Y = FFT(√(λ/2M)·(Z₁ + iZ₂)) has independent real and imaginary
    parts, each an exact sample of the noise; one FFT thus yields two coordinates.

    Parameters
    ----------
    n_steps : int
        Number of snapshots (rows), >= 1; row 0 is ``x0``.
    n_params : int
        Number of independent coordinates (columns), >= 1.
    hurst : float
        Hurst exponent H in (0, 1); 0.5 is Brownian motion, < 0.5 anti-persistent,
        > 0.5 persistent.
    sigma : float, optional
        Standard deviation of one coordinate's unit step, >= 0.
    x0 : float or numpy.ndarray of shape (n_params,) or None, optional
        Starting point (default 0).
    dtype : numpy.dtype, optional
        float64 (default) or float32.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None, optional
        Anything :func:`numpy.random.default_rng` accepts. The draw depends on the column
        chunking (``_common.CHUNK_BYTES``), so equal seeds give equal output for equal
        sizes and settings.

    Returns
    -------
    numpy.ndarray of shape (n_steps, n_params)
        The trajectory.

    References
    ----------
    R. B. Davies & D. S. Harte (1987), "Tests for Hurst effect", Biometrika 74, 95–101;
    A. T. A. Wood & G. Chan (1994), "Simulation of stationary Gaussian processes in
    [0, 1]^d", J. Comp. Graph. Stat. 3, 409–432; C. R. Dietrich & G. N. Newsam (1997),
    SIAM J. Sci. Comput. 18, 1088–1107 (non-negative embedding).

    Examples
    --------
    >>> x = fbm(4096, 64, 0.8, seed=0)
    >>> lags = np.array([4, 64])
    >>> msd = [np.mean(np.sum((x[k:] - x[:-k]) ** 2, axis=1)) for k in lags]
    >>> slope = np.diff(np.log(msd)) / np.diff(np.log(lags))
    >>> bool(abs(slope[0] - 1.6) < 0.05)
    True
    """
    n_steps, n_params = check_size(n_steps, "n_steps"), check_size(n_params, "n_params")
    hurst = check_range(hurst, "hurst", 0.0, 1.0, closed="neither")
    sigma = check_nonnegative(sigma, "sigma")
    dtype, x0 = check_dtype(dtype), start_point(x0, n_params)
    rng = np.random.default_rng(seed)
    out = np.empty((n_steps, n_params), dtype=dtype)
    out[0] = x0
    if n_steps == 1:
        return out
    root = davies_harte_root(n_steps - 1, hurst)
    for c0, c1 in column_chunks(n_params, 48 * n_steps, even=True):
        inc = _fgn_columns(rng, root, n_steps - 1, c1 - c0)
        inc *= sigma
        inc[:, 0] += x0[c0:c1]
        np.cumsum(inc, axis=1, out=inc)
        out[1:, c0:c1] = inc.T
    return out


def davies_harte_root(n: int, hurst: float) -> np.ndarray:
    """√(λ / 2M) for the circulant embedding of fractional Gaussian noise of length n.

    Returns the float64 array of length 2M, M = ``scipy.fft.next_fast_len(n)``. Raises
    RuntimeError if an eigenvalue is negative beyond rounding (never for fGn).
    """
    m_half = scipy.fft.next_fast_len(n)
    k = np.arange(m_half + 1, dtype=np.float64)
    two_h = 2.0 * hurst
    gamma = 0.5 * ((k + 1) ** two_h - 2 * k**two_h + np.abs(k - 1) ** two_h)
    eig = scipy.fft.fft(np.concatenate([gamma, gamma[-2:0:-1]])).real
    if eig.min() < -1e-9 * eig.max():
        raise RuntimeError(f"circulant embedding is not non-negative (min eigenvalue {eig.min():.3g})")
    return np.sqrt(np.clip(eig, 0.0, None) / eig.size)


def _fgn_columns(rng: np.random.Generator, root: np.ndarray, n: int, width: int) -> np.ndarray:
    """``width`` independent unit fGn series of length n, as float64 rows (width, n)."""
    pairs = (width + 1) // 2
    z = rng.standard_normal((pairs, root.size, 2)).view(np.complex128)[..., 0]
    z *= root
    y = scipy.fft.fft(z, axis=-1, overwrite_x=True)[:, :n]
    return np.concatenate([y.real, y.imag])[:width]


def ornstein_uhlenbeck(
    n_steps: int,
    n_params: int,
    *,
    theta: float = 0.05,
    sigma: float = 1.0,
    x0=None,
    dtype=np.float64,
    seed=None,
) -> np.ndarray:
    """Stationary Ornstein–Uhlenbeck process dx = −θ(x − x0)dt + σ dW, exactly discretised.

    Each coordinate starts in the stationary law N(x0, s²), s² = σ²/(2θ), and then
    follows the exact one-step transition

        x(t+1) − x0 = e^{−θ}·(x(t) − x0) + s·√(1 − e^{−2θ})·ξ_t,   ξ_t ~ N(0, 1),

    so for every origin t and lag τ the mean squared displacement is exactly

        MSD(τ) = 2·n_params·s²·(1 − e^{−θτ}) = n_params·σ²/θ·(1 − e^{−θτ}),

    linear (n_params·σ²·τ) for τ ≪ 1/θ and saturating at n_params·σ²/θ for τ ≫ 1/θ.
    Here ``x0`` is the centre of the well, not the first snapshot.

    Parameters
    ----------
    n_steps : int
        Number of snapshots (rows), >= 1.
    n_params : int
        Number of independent coordinates (columns), >= 1.
    theta : float, optional
        Mean-reversion rate per step, > 0 (relaxation time 1/θ steps).
    sigma : float, optional
        Noise amplitude, >= 0.
    x0 : float or numpy.ndarray of shape (n_params,) or None, optional
        Centre of the well (default 0).
    dtype : numpy.dtype, optional
        float64 (default) or float32.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None, optional
        Anything :func:`numpy.random.default_rng` accepts.

    Returns
    -------
    numpy.ndarray of shape (n_steps, n_params)
        The trajectory.

    References
    ----------
    G. E. Uhlenbeck & L. S. Ornstein (1930), Phys. Rev. 36, 823; D. T. Gillespie (1996),
    "Exact numerical simulation of the Ornstein–Uhlenbeck process and its integral",
    Phys. Rev. E 54, 2084.

    Examples
    --------
    >>> x = ornstein_uhlenbeck(5000, 100, theta=0.1, seed=0)
    >>> msd = np.mean(np.sum((x[500:] - x[:-500]) ** 2, axis=1))
    >>> bool(abs(msd / (100 / 0.1) - 1) < 0.1)
    True
    """
    n_steps, n_params = check_size(n_steps, "n_steps"), check_size(n_params, "n_params")
    theta = check_range(theta, "theta", 0.0, math.inf, closed="neither")
    sigma = check_nonnegative(sigma, "sigma")
    dtype, x0 = check_dtype(dtype), start_point(x0, n_params)
    rng = np.random.default_rng(seed)
    phi, stationary_sd = math.exp(-theta), sigma / math.sqrt(2.0 * theta)
    noise_sd = stationary_sd * math.sqrt(-math.expm1(-2.0 * theta))
    out = np.empty((n_steps, n_params), dtype=dtype)
    previous = np.zeros(n_params)
    for r0, r1 in row_chunks(0, n_steps, 8 * n_params):
        y = rng.standard_normal((r1 - r0, n_params))
        first = 1 if r0 == 0 else 0
        y[:first] *= stationary_sd
        y[first:] *= noise_sd
        _ar1_in_place(y, phi, previous)
        previous = y[-1].copy()
        y += x0
        out[r0:r1] = y
    return out


def _ar1_in_place(y: np.ndarray, phi: float, previous: np.ndarray) -> None:
    """Turn innovations rows ``y`` into y[t] = φ·y[t−1] + innovation[t], y[−1] = previous."""
    y[0] += phi * previous
    for t in range(1, len(y)):
        y[t] += phi * y[t - 1]
