"""Lévy- vs Brownian-driven gradient descent in a 1-D double well (Şimşekli et al. 2019).

    dw = −f'(w) dt + ε dL^α_t,      discretised  w_{k+1} = w_k − η f'(w_k) + ε η^{1/α} S_k,

with S_k standard symmetric α-stable (characteristic function e^{−|u|^α}); α = 2 is the
Brownian case, L² = √2 B. The well is f'(w) = c · w (w − m1)(w − m2), m1 < 0 < m2: minima
at m1 and m2, the saddle s = 0, valleys (−∞, 0) and (0, ∞).

Predictions (small ε):

- Lévy (α < 2): leaving valley i takes a jump past the saddle, at rate
  ε^α C_α / (α |m_i|^α) with C_α = Γ(1+α) sin(πα/2)/π the Lévy-measure constant of S_k
  (Şimşekli et al., Theorem 1, Eq. 11, whose Lévy measure has C_α = 1), so the mean
  escape time α|m_i|^α / (C_α ε^α) is polynomial in 1/ε and independent of the barrier
  height; the time fractions obey π2/π1 = (m2/|m1|)^α (their Sec. 2).
- Brownian (α = 2): Kramers' law, mean escape time 2π / √(f''(m_i)|f''(0)|) ·
  exp(ΔH_i/ε²), exponential in barrier / noise.

Large jumps land where f' is huge; the drift is tamed, η f'/(1 + η|f'|) (Hutzenthaler,
Jentzen & Kloeden 2012), which leaves steps with η|f'| ≪ 1 unchanged and keeps the
scheme stable after a jump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pyengine.models import stable_samples

__all__ = ["DoubleWell", "simulate_well", "escape_times", "valley_fraction", "levy_constant", "levy_escape_time",
           "kramers_escape_time", "valley_ratio"]

_CHUNK = 1000  # steps drawn at once


@dataclass(frozen=True)
class DoubleWell:
    """f(w) = c (w⁴/4 − (m1 + m2) w³/3 + m1 m2 w²/2): minima m1 < 0 < m2, saddle at 0.

    Attributes
    ----------
    m1, m2 : float
        The minima; valley widths (distances to the saddle) are |m1| and m2.
    c : float
        Scale of the potential (> 0); barrier heights are proportional to it.

    Examples
    --------
    >>> well = DoubleWell(-1.0, 2.0)
    >>> float(well.gradient(np.array([-1.0, 0.0, 2.0])).max()), round(well.barrier(1), 4)
    (0.0, 0.4167)
    """

    m1: float = -1.0
    m2: float = 2.0
    c: float = 1.0

    def __post_init__(self):
        for name in ("m1", "m2", "c"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if not (self.m1 < 0 < self.m2):
            raise ValueError(f"need m1 < 0 < m2, got m1={self.m1}, m2={self.m2}")
        if not self.c > 0:
            raise ValueError(f"c must be > 0, got {self.c}")

    def potential(self, w) -> np.ndarray:
        w = np.asarray(w, dtype=np.float64)
        return self.c * (w**4 / 4 - (self.m1 + self.m2) * w**3 / 3 + self.m1 * self.m2 * w**2 / 2)

    def gradient(self, w) -> np.ndarray:
        w = np.asarray(w, dtype=np.float64)
        return self.c * w * (w - self.m1) * (w - self.m2)

    def curvature(self, w) -> np.ndarray:
        w = np.asarray(w, dtype=np.float64)
        return self.c * (3 * w**2 - 2 * (self.m1 + self.m2) * w + self.m1 * self.m2)

    def minimum(self, valley: int) -> float:
        """m1 for valley 1, m2 for valley 2."""
        if valley not in (1, 2):
            raise ValueError(f"valley must be 1 or 2, got {valley}")
        return self.m1 if valley == 1 else self.m2

    def barrier(self, valley: int) -> float:
        """ΔH = f(0) − f(m_valley)."""
        return float(-self.potential(self.minimum(valley)))


def _noise(rng, alpha: float, size: int) -> np.ndarray:
    return stable_samples(size, alpha, seed=rng)


def _check(alpha: float, eps: float, eta: float) -> None:
    if not 0 < alpha <= 2:
        raise ValueError(f"alpha must be in (0, 2], got {alpha}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if not eta > 0:
        raise ValueError(f"eta must be > 0, got {eta}")


def _step(well: DoubleWell, w: np.ndarray, eta: float, kick: np.ndarray) -> np.ndarray:
    g = eta * well.gradient(w)
    return w - g / (1 + np.abs(g)) + kick


def simulate_well(well: DoubleWell, alpha: float, eps: float, eta: float = 0.01, steps: int = 10_000,
                  chains: int = 100, start=None, seed=0) -> np.ndarray:
    """Run the tamed Euler scheme of dw = −f'(w)dt + ε dL^α for many chains.

    Parameters
    ----------
    well : DoubleWell
    alpha : float
        Tail index of the noise in (0, 2]; 2 is Brownian (√2 B).
    eps : float
        Noise level ε >= 0.
    eta : float
        Time step η > 0 (the learning rate).
    steps, chains : int
    start : float or array_like of shape (chains,), optional
        Starting point(s) (default m1 for every chain).
    seed : int or numpy.random.Generator

    Returns
    -------
    float64 ndarray of shape (steps + 1, chains)

    Examples
    --------
    >>> w = simulate_well(DoubleWell(), alpha=1.5, eps=0.0, steps=2000, chains=2, start=-0.5)
    >>> np.round(w[-1], 3).tolist()
    [-1.0, -1.0]
    """
    _check(alpha, eps, eta)
    rng = np.random.default_rng(seed)
    out = np.empty((int(steps) + 1, int(chains)))
    out[0] = well.m1 if start is None else start
    scale = eps * eta ** (1 / alpha)
    for k0 in range(0, int(steps), _CHUNK):
        n = min(_CHUNK, int(steps) - k0)
        kicks = scale * _noise(rng, alpha, n * int(chains)).reshape(n, int(chains))
        for j in range(n):
            out[k0 + j + 1] = _step(well, out[k0 + j], eta, kicks[j])
    return out


def escape_times(well: DoubleWell, alpha: float, eps: float, eta: float = 0.01, chains: int = 200,
                 max_steps: int = 200_000, seed=0) -> np.ndarray:
    """First time (in time units, steps × η) a chain started at m1 reaches m2/2.

    Reaching halfway down valley 2 (rather than crossing the saddle) counts a transition,
    not a recrossing of the saddle. Chains still in valley 1 after ``max_steps`` give
    ``inf``.

    Returns
    -------
    float64 ndarray of shape (chains,)

    Examples
    --------
    >>> t = escape_times(DoubleWell(), alpha=1.5, eps=0.5, eta=0.02, chains=20, seed=1)
    >>> bool(np.isfinite(t).all() and t.mean() > 1)
    True
    """
    _check(alpha, eps, eta)
    rng = np.random.default_rng(seed)
    w = np.full(int(chains), well.m1, dtype=np.float64)
    times = np.full(int(chains), np.inf)
    active = np.arange(int(chains))
    scale = eps * eta ** (1 / alpha)
    target = well.m2 / 2
    for k0 in range(0, int(max_steps), _CHUNK):
        kicks = scale * _noise(rng, alpha, _CHUNK * active.size).reshape(_CHUNK, active.size)
        x = w[active]
        first = np.full(active.size, -1)
        for j in range(_CHUNK):
            x = _step(well, x, eta, kicks[j])
            first[(first < 0) & (x >= target)] = j + 1
        done = first > 0
        times[active[done]] = (k0 + first[done]) * eta
        w[active] = x
        active = active[~done]
        if active.size == 0:
            break
    return times


def valley_fraction(w: np.ndarray, burn_in: int = 0) -> float:
    """Fraction of time spent in valley 2 (w > 0) after ``burn_in`` steps.

    Examples
    --------
    >>> valley_fraction(np.array([[-1.0, 1.0], [2.0, 2.0]]))
    0.75
    """
    w = np.asarray(w)
    if burn_in >= w.shape[0]:
        raise ValueError(f"burn_in={burn_in} leaves no samples of {w.shape[0]}")
    return float((w[burn_in:] > 0).mean())


def levy_constant(alpha: float) -> float:
    """C_α = Γ(1+α) sin(πα/2)/π: the Lévy measure of the standard SαS law is C_α|z|^{−1−α}dz."""
    return math.gamma(1 + alpha) * math.sin(math.pi * alpha / 2) / math.pi


def levy_escape_time(well: DoubleWell, alpha: float, eps: float, valley: int = 1) -> float:
    """Small-noise mean escape time α |m_i|^α / (C_α ε^α) of the Lévy-driven dynamic.

    Şimşekli et al. (2019), Theorem 1 / Eq. 11 with the Lévy measure of
    :func:`pyengine.models.stable_samples`; the barrier height does not enter.

    Examples
    --------
    >>> round(levy_escape_time(DoubleWell(-1.0, 2.0), 1.5, 0.1), 1)
    158.5
    """
    if not 0 < alpha < 2:
        raise ValueError(f"alpha must be in (0, 2) for the Lévy prediction, got {alpha}")
    return alpha * abs(well.minimum(valley)) ** alpha / (levy_constant(alpha) * eps**alpha)


def kramers_escape_time(well: DoubleWell, eps: float, valley: int = 1) -> float:
    """Kramers' mean escape time 2π/√(f''(m)|f''(0)|) · exp(ΔH/ε²) of the Brownian dynamic
    dw = −f' dt + ε√2 dB.

    Examples
    --------
    >>> round(kramers_escape_time(DoubleWell(-1.0, 2.0), 0.5), 2)
    13.58
    """
    m = well.minimum(valley)
    prefactor = 2 * math.pi / math.sqrt(float(well.curvature(m)) * abs(float(well.curvature(0.0))))
    return prefactor * math.exp(well.barrier(valley) / eps**2)


def valley_ratio(well: DoubleWell, alpha: float) -> float:
    """π2/π1 = (m2/|m1|)^α: time in the wider valley over time in the narrower one.

    Examples
    --------
    >>> round(valley_ratio(DoubleWell(-1.0, 2.0), 1.5), 4)
    2.8284
    """
    return (well.m2 / abs(well.m1)) ** alpha
