"""Random walks with known mean squared displacement: Brownian, ballistic, Lévy, CTRW.

Every generator returns an array ``x`` of shape ``(n_steps, n_params)`` whose row 0 is
the starting point ``x0`` and whose row t is the position after t unit time steps, each
column an independent coordinate. Positions are accumulated in float64 and rounded once
to ``dtype``, so a large offset ``x0`` (‖x0‖ ≫ step) reproduces the cancellation that
real training runs show.
"""

from __future__ import annotations

import numpy as np

from pyengine.models._common import (
    check_dtype,
    check_nonnegative,
    check_range,
    check_size,
    column_chunks,
    row_chunks,
    start_point,
    walk,
)
from pyengine.models.stable import standard_stable


def brownian(
    n_steps: int,
    n_params: int,
    *,
    sigma: float = 1.0,
    x0=None,
    dtype=np.float64,
    seed=None,
) -> np.ndarray:
    """Brownian motion sampled at unit time steps: x(t) = x0 + σ·Σ_{s≤t} ξ_s, ξ ~ N(0, 1).

    The mean squared displacement over ``n_params`` independent coordinates is
    MSD(τ) = E‖x(t+τ) − x(t)‖² = n_params·σ²·τ for every origin t.

    Parameters
    ----------
    n_steps : int
        Number of snapshots (rows), >= 1; row 0 is ``x0``.
    n_params : int
        Number of coordinates (columns), >= 1.
    sigma : float, optional
        Standard deviation of one coordinate's step, >= 0.
    x0 : float or numpy.ndarray of shape (n_params,) or None, optional
        Starting point (default 0).
    dtype : numpy.dtype, optional
        float64 (default) or float32; float32 output is written chunk by chunk without a
        full-size float64 temporary.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None, optional
        Anything :func:`numpy.random.default_rng` accepts.

    Returns
    -------
    numpy.ndarray of shape (n_steps, n_params)
        The trajectory.

    References
    ----------
    Chen, Qu & Gong (2022), Eq. 3–4 (MSD of a trajectory); normal diffusion MSD ∝ τ.

    Examples
    --------
    >>> x = brownian(1000, 200, sigma=0.5, seed=1)
    >>> msd = np.mean(np.sum((x[10:] - x[:-10]) ** 2, axis=1))
    >>> bool(abs(msd / (200 * 0.25 * 10) - 1) < 0.05)
    True
    """
    n_steps, n_params = check_size(n_steps, "n_steps"), check_size(n_params, "n_params")
    sigma = check_nonnegative(sigma, "sigma")
    rng = np.random.default_rng(seed)

    def draw(rows: int) -> np.ndarray:
        inc = rng.standard_normal((rows, n_params))
        inc *= sigma
        return inc

    return walk(n_steps, n_params, start_point(x0, n_params), check_dtype(dtype), draw)


def ballistic(
    n_steps: int,
    n_params: int,
    *,
    speed: float = 1.0,
    x0=None,
    dtype=np.float64,
    seed=None,
) -> np.ndarray:
    """Ballistic motion x(t) = x0 + t·v with one random direction per run.

    The velocity v = speed·u has a direction u uniform on the unit sphere of R^n_params
    (a normalised Gaussian vector), so ‖v‖ = speed and MSD(τ) = speed²·τ² exactly, for
    every origin.

    Parameters
    ----------
    n_steps : int
        Number of snapshots (rows), >= 1; row 0 is ``x0``.
    n_params : int
        Number of coordinates (columns), >= 1.
    speed : float, optional
        Norm of the displacement per step, >= 0.
    x0 : float or numpy.ndarray of shape (n_params,) or None, optional
        Starting point (default 0).
    dtype : numpy.dtype, optional
        float64 (default) or float32.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None, optional
        Anything :func:`numpy.random.default_rng` accepts.

    Returns
    -------
    numpy.ndarray of shape (n_steps, n_params)
        The trajectory.

    Examples
    --------
    >>> x = ballistic(50, 8, speed=2.0, seed=0)
    >>> float(np.round(np.sum((x[30] - x[10]) ** 2), 9))
    1600.0
    """
    n_steps, n_params = check_size(n_steps, "n_steps"), check_size(n_params, "n_params")
    speed = check_nonnegative(speed, "speed")
    dtype = check_dtype(dtype)
    x0 = start_point(x0, n_params)
    u = np.random.default_rng(seed).standard_normal(n_params)
    v = speed * u / np.linalg.norm(u)
    out = np.empty((n_steps, n_params), dtype=dtype)
    for r0, r1 in row_chunks(0, n_steps, 8 * n_params):
        out[r0:r1] = x0 + np.arange(r0, r1, dtype=np.float64)[:, None] * v
    return out


def levy_flight(
    n_steps: int,
    n_params: int,
    alpha: float,
    *,
    scale: float = 1.0,
    x0=None,
    dtype=np.float64,
    seed=None,
) -> np.ndarray:
    """Lévy flight: a walk with i.i.d. symmetric α-stable steps S_α(scale, 0, 0).

    Steps are drawn by the Chambers–Mallows–Stuck method (:func:`stable_samples`). For
    α < 2 the step variance is infinite, and so is the MSD; the displacement over τ steps
    is again α-stable with scale ``scale·τ^{1/α}`` (self-similarity with exponent 1/α).
    α = 2 is Brownian motion with σ² = 2·scale², MSD(τ) = 2·n_params·scale²·τ.

    Parameters
    ----------
    n_steps : int
        Number of snapshots (rows), >= 1; row 0 is ``x0``.
    n_params : int
        Number of coordinates (columns), >= 1.
    alpha : float
        Stability index in (0, 2].
    scale : float, optional
        Scale of one coordinate's step, >= 0.
    x0 : float or numpy.ndarray of shape (n_params,) or None, optional
        Starting point (default 0).
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
    Şimşekli, Sagun & Gürbüzbalaban (2019): heavy-tailed (α-stable) gradient noise.

    Examples
    --------
    >>> x = levy_flight(100, 4, 1.5, seed=0, dtype=np.float32)
    >>> x.shape, x.dtype
    ((100, 4), dtype('float32'))
    """
    n_steps, n_params = check_size(n_steps, "n_steps"), check_size(n_params, "n_params")
    alpha = check_range(alpha, "alpha", 0.0, 2.0, closed="right")
    scale = check_nonnegative(scale, "scale")
    rng = np.random.default_rng(seed)

    def draw(rows: int) -> np.ndarray:
        inc = standard_stable(rng, (rows, n_params), alpha, 0.0)
        inc *= scale
        return inc

    return walk(n_steps, n_params, start_point(x0, n_params), check_dtype(dtype), draw)


def ctrw(
    n_steps: int,
    n_params: int,
    waiting_alpha: float,
    *,
    sigma: float = 1.0,
    x0=None,
    dtype=np.float64,
    seed=None,
) -> np.ndarray:
    """Continuous-time random walk with heavy-tailed (Pareto) waiting times: subdiffusive.

    Each coordinate waits i.i.d. integer times τ_i = ⌊U_i^{−1/a}⌋ ≥ 1 (discrete Pareto,
    P(τ ≥ k) = k^{−a}, 0 < a < 1, infinite mean) and then jumps by σ·N(0, 1); the
    renewal process starts at time 0. Row t is the position after the N(t) jumps that
    happened at times 1, …, t, at most one per step. The ensemble MSD from the start is
    ⟨‖x(t) − x(0)‖²⟩ = n_params·σ²·E[N(t)], where E[N(t)] solves the discrete renewal
    equation (:func:`expected_msd` computes it exactly) and grows as
    t^a / (Γ(1−a)·Γ(1+a)) for large t.

    The time-averaged MSD of a CTRW is *not* ∝ τ^a (weak ergodicity breaking): it grows
    linearly in the lag with a prefactor that decays as the run gets longer, so measure
    the subdiffusive exponent with the non-averaged MSD from t = 0 (Eq. 4 of Chen et al.).

    Parameters
    ----------
    n_steps : int
        Number of snapshots (rows), >= 1; row 0 is ``x0``.
    n_params : int
        Number of independent walkers (columns), >= 1.
    waiting_alpha : float
        Tail exponent a of the waiting times, in (0, 1).
    sigma : float, optional
        Standard deviation of one jump, >= 0.
    x0 : float or numpy.ndarray of shape (n_params,) or None, optional
        Starting point (default 0).
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
    R. Metzler & J. Klafter (2000), "The random walk's guide to anomalous diffusion",
    Phys. Rep. 339, 1–77; Y. He, S. Burov, R. Metzler & E. Barkai (2008), "Random
    time-scale invariant diffusion and transport coefficients", PRL 101, 058101.

    Examples
    --------
    >>> x = ctrw(1000, 500, 0.5, seed=0)
    >>> bool(np.mean(x[999] ** 2) < 0.2 * 999)   # far below Brownian σ²·t
    True
    """
    n_steps, n_params = check_size(n_steps, "n_steps"), check_size(n_params, "n_params")
    a = check_range(waiting_alpha, "waiting_alpha", 0.0, 1.0, closed="neither")
    sigma = check_nonnegative(sigma, "sigma")
    dtype, x0 = check_dtype(dtype), start_point(x0, n_params)
    rng = np.random.default_rng(seed)
    out = np.empty((n_steps, n_params), dtype=dtype)
    for c0, c1 in column_chunks(n_params, 16 * n_steps):
        jumps = np.zeros((n_steps, c1 - c0))
        rows, cols = _renewal_rows(rng, n_steps, c1 - c0, a)
        jumps[rows, cols] = sigma * rng.standard_normal(rows.size)
        jumps[0] = x0[c0:c1]
        out[:, c0:c1] = np.cumsum(jumps, axis=0, out=jumps)
    return out


def _renewal_rows(rng: np.random.Generator, n_steps: int, n_walkers: int, a: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows (= times) and columns of every renewal time <= n_steps − 1 of each walker."""
    time = np.zeros(n_walkers)
    active = np.arange(n_walkers)
    rows, cols = [], []
    while active.size:
        time[active] += np.floor((1.0 - rng.random(active.size)) ** (-1.0 / a))
        active = active[time[active] <= n_steps - 1]
        rows.append(time[active].astype(np.intp))
        cols.append(active)
    return np.concatenate(rows), np.concatenate(cols)
