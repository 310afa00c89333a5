"""SGD on a 2-D fractal landscape: the toy model of Chen, Qu & Gong (2022), Eq. 10.

    w_{t+1} = w_t − η ∇L(w_t) + η σ Z_t,   Z_t ~ N(0, I₂)

The walker lives on the unit square; L is sampled on an n × n grid (``height[iy, ix]``
at (x, y) = (ix/n, iy/n)), and ∇L is the central-difference gradient of the grid,
interpolated bilinearly between grid points. Three landscapes as in their Fig. 8: a
fractal (spectral-synthesis fBm) surface, the same heights shuffled and smoothed by a
Gaussian kernel (σ = 8 pixels), and a convex paraboloid.

Units. Positions are in landscape widths; ``amplitude`` is the standard deviation of the
fractal heights. Chen et al. do not give their length and height scales. Only η·amplitude
and ησ enter the dynamics; the defaults (D = 1.05, amplitude 0.01, with η = 0.005,
σ = 0.02) make the large-scale slope's drift, η·|∇L| ≈ 10⁻⁴–10⁻³ per step, dominate both
the noise (ησ = 10⁻⁴ per step, √τ growth) and the small-scale roughness over lags of
10–100 steps, so the descent is directed (MSD exponent > 1) until the walker enters the
wide minimum, where it is confined (exponent < 1). Rougher or taller surfaces (D ≳ 1.2,
amplitude ≳ 0.05) make the descent a chaotic, kicked walk with exponent < 1; rough surfaces
of small amplitude (D = 1.2–1.3, amplitude 0.01–0.03) mostly trap it in local minima on
the way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pyengine.fractal import fbm_surface

__all__ = ["Landscape", "SGDRun", "fractal_landscape", "shuffled_landscape", "paraboloid", "select_start",
           "simulate_sgd"]


def _check_positions(w) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 0 or w.shape[-1] != 2:
        raise ValueError(f"positions must have shape (..., 2) as (x, y), got {w.shape}")
    return w


@dataclass(frozen=True)
class Landscape:
    """A loss surface sampled on an n × n grid over the unit square.

    Attributes
    ----------
    height : float64 ndarray of shape (n, n)
        L at (x, y) = (ix/n, iy/n), indexed ``height[iy, ix]``.
    periodic : bool
        True: the unit square is a torus (positions wrap). False: positions are clipped
        to the grid and edge gradients are one-sided.
    name : str
        Label for plots and reports.
    """

    height: np.ndarray
    periodic: bool
    name: str

    def __post_init__(self):
        h = np.asarray(self.height, dtype=np.float64)
        if h.ndim != 2 or h.shape[0] != h.shape[1] or h.shape[0] < 4:
            raise ValueError(f"height must be a square grid (n, n) with n >= 4, got shape {h.shape}")
        if not np.isfinite(h).all():
            raise ValueError("height must be finite everywhere")
        n = h.shape[0]
        if self.periodic:
            gx = (np.roll(h, -1, axis=1) - np.roll(h, 1, axis=1)) * (n / 2)
            gy = (np.roll(h, -1, axis=0) - np.roll(h, 1, axis=0)) * (n / 2)
        else:
            gy, gx = np.gradient(h, 1.0 / n)
        object.__setattr__(self, "height", h)
        object.__setattr__(self, "_grad", (gx, gy))

    @property
    def n(self) -> int:
        """Grid side in pixels."""
        return self.height.shape[0]

    def _interpolate(self, grids, w: np.ndarray) -> list[np.ndarray]:
        """Bilinear interpolation of each grid in ``grids`` at positions w (..., 2)."""
        n = self.n
        u = w * n
        if self.periodic:
            u = np.mod(u, n)
        else:
            u = np.clip(u, 0.0, n - 1.0)
        i0 = np.minimum(np.floor(u).astype(np.int64), n - 1)
        f = u - i0
        i1 = (i0 + 1) % n if self.periodic else np.minimum(i0 + 1, n - 1)
        x0, y0, x1, y1 = i0[..., 0], i0[..., 1], i1[..., 0], i1[..., 1]
        fx, fy = f[..., 0], f[..., 1]
        return [(g[y0, x0] * (1 - fx) + g[y0, x1] * fx) * (1 - fy) + (g[y1, x0] * (1 - fx) + g[y1, x1] * fx) * fy
                for g in grids]

    def __call__(self, w) -> np.ndarray:
        """L at positions ``w`` of shape (..., 2) (bilinear), shape (...)."""
        return self._interpolate([self.height], _check_positions(w))[0]

    def gradient(self, w) -> np.ndarray:
        """Numerical ∇L at positions ``w`` of shape (..., 2): central differences of the
        grid, interpolated bilinearly; shape (..., 2) as (∂L/∂x, ∂L/∂y)."""
        gx, gy = self._interpolate(self._grad, _check_positions(w))
        return np.stack([gx, gy], axis=-1)

    def minimum(self) -> np.ndarray:
        """Position (x, y) of the lowest grid point, shape (2,)."""
        iy, ix = np.unravel_index(np.argmin(self.height), self.height.shape)
        return np.array([ix, iy], dtype=np.float64) / self.n

    def distance(self, w, point) -> np.ndarray:
        """Distance from positions ``w`` (..., 2) to ``point`` (2,), across the wrap if periodic."""
        d = _check_positions(w) - np.asarray(point, dtype=np.float64)
        if self.periodic:
            d = (d + 0.5) % 1.0 - 0.5
        return np.hypot(d[..., 0], d[..., 1])


def fractal_landscape(n: int = 512, dimension: float = 1.05, amplitude: float = 0.01, seed=0) -> Landscape:
    """Fractal landscape by spectral synthesis (periodic fBm surface).

    Parameters
    ----------
    n : int
        Grid side in pixels (>= 4).
    dimension : float
        Fractal dimension D in (1, 2), the range Chen et al. quote: the dimension of a
        profile or contour, 2 − H for Hurst exponent H (the graph of the surface has
        D + 1). Larger D is rougher.
    amplitude : float
        Standard deviation of the heights (> 0).
    seed : int or numpy.random.Generator
        Seed of the surface.

    The defaults (D = 1.05, amplitude 0.01) are the ones with which SGD at η = 0.005,
    σ = 0.02 is superdiffusive before the global minimum and subdiffusive in it
    (docs/science.md); not every seed has a qualifying wide minimum (:func:`select_start`).

    Returns
    -------
    Landscape
        Periodic, named ``"fractal"``.

    References
    ----------
    Chen, Qu & Gong 2022, Sec. IV and Fig. 8(a); spectral synthesis after Saupe (1988)
    via :func:`pyengine.fractal.fbm_surface`.

    Examples
    --------
    >>> land = fractal_landscape(64, dimension=1.5, seed=1)
    >>> land.height.shape, round(float(land.height.std()), 3)
    ((64, 64), 0.01)
    """
    if not 1.0 < dimension < 2.0:
        raise ValueError(f"dimension must be in (1, 2) (profile dimension 2 - H), got {dimension}")
    if not amplitude > 0:
        raise ValueError(f"amplitude must be > 0, got {amplitude}")
    return Landscape(amplitude * fbm_surface(n, 2.0 - dimension, seed=seed), periodic=True, name="fractal")


def shuffled_landscape(landscape: Landscape, smoothing: float = 8.0, seed=0) -> Landscape:
    """The heights of ``landscape`` shuffled over the grid, then smoothed by a Gaussian kernel.

    Shuffling keeps the distribution of heights and destroys their spatial correlation;
    the Gaussian kernel (standard deviation ``smoothing`` pixels, periodic) makes the
    result at least once differentiable. Heights are not rescaled, so the result is
    much flatter than the original (as in Chen et al., whose gradients on it are far
    smaller).

    Parameters
    ----------
    landscape : Landscape
    smoothing : float
        Kernel standard deviation in pixels (Chen et al.: 8).
    seed : int or numpy.random.Generator
        Seed of the permutation.

    Returns
    -------
    Landscape
        Periodic, named ``"shuffled"``.

    Examples
    --------
    >>> land = fractal_landscape(64, seed=1)
    >>> bool(shuffled_landscape(land).height.std() < 0.1 * land.height.std())
    True
    """
    if not smoothing > 0:
        raise ValueError(f"smoothing must be > 0 pixels, got {smoothing}")
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(landscape.height.ravel()).reshape(landscape.height.shape)
    return Landscape(ndimage.gaussian_filter(shuffled, smoothing, mode="wrap"), periodic=True, name="shuffled")


def paraboloid(n: int = 512, curvature: float = 0.2, center=(0.5, 0.5)) -> Landscape:
    """Convex paraboloid L(w) = curvature/2 · |w − center|² on the unit square (not periodic).

    Gradient descent relaxes towards the centre in about 1/(η · curvature) steps; the
    default 0.2 with η = 0.005 gives 1000 steps, the length of Chen et al.'s runs.

    Examples
    --------
    >>> land = paraboloid(64, curvature=1.0)
    >>> np.round(land.gradient([0.75, 0.5]), 6).tolist()
    [0.25, 0.0]
    """
    if not curvature > 0:
        raise ValueError(f"curvature must be > 0, got {curvature}")
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (2,):
        raise ValueError(f"center must be (x, y), got shape {c.shape}")
    grid = np.arange(int(n)) / int(n)
    height = 0.5 * curvature * ((grid[None, :] - c[0]) ** 2 + (grid[:, None] - c[1]) ** 2)
    return Landscape(height, periodic=False, name="paraboloid")


@dataclass(frozen=True)
class SGDRun:
    """Trajectories of Eq. 10, all trials at once.

    Attributes
    ----------
    positions : float64 ndarray of shape (steps + 1, trials, 2)
        w_t as (x, y), unwrapped (a periodic landscape is crossed, not folded).
    gradients : float64 ndarray of shape (steps, trials, 2)
        ∇L(w_t) used at each step.
    loss : float64 ndarray of shape (steps + 1, trials)
        L(w_t).
    eta, sigma : float
    """

    positions: np.ndarray
    gradients: np.ndarray
    loss: np.ndarray
    eta: float
    sigma: float

    def trial(self, k: int) -> np.ndarray:
        """Trajectory of trial k as an (N, P) = (steps + 1, 2) array for :func:`pyengine.msd`."""
        return self.positions[:, k, :]


def simulate_sgd(landscape: Landscape, start, eta: float = 0.005, sigma: float = 0.02, steps: int = 1000,
                 trials: int = 10, seed=0) -> SGDRun:
    """Iterate Eq. 10 of Chen et al. for several independent trials (vectorised).

    w_{t+1} = w_t − η ∇L(w_t) + η σ Z_t with Z_t ~ N(0, I₂), ∇L the numerical gradient
    of the grid (:meth:`Landscape.gradient`).

    Parameters
    ----------
    landscape : Landscape
    start : array_like of shape (2,) or (trials, 2)
        Starting position(s) (x, y).
    eta : float
        Learning rate η > 0 (Chen et al.: 0.002 … 0.01).
    sigma : float
        Noise level σ >= 0 (Chen et al.: 0.005 … 0.05).
    steps, trials : int
        Iterations per trial (Chen et al.: 1000) and trials (10).
    seed : int or numpy.random.Generator
        Seed of the noise.

    Returns
    -------
    SGDRun

    References
    ----------
    Chen, Qu & Gong 2022, Eq. 10 and Fig. 8.

    Examples
    --------
    >>> run = simulate_sgd(paraboloid(64, curvature=1.0), [0.8, 0.5], eta=0.01, steps=200, trials=3)
    >>> run.positions.shape, bool(run.loss[-1].max() < run.loss[0].min())
    ((201, 3, 2), True)
    """
    if not eta > 0:
        raise ValueError(f"eta must be > 0, got {eta}")
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    steps, trials = int(steps), int(trials)
    if steps < 1 or trials < 1:
        raise ValueError(f"steps and trials must be >= 1, got {steps} and {trials}")
    w = np.broadcast_to(_check_positions(start), (trials, 2)).copy()
    rng = np.random.default_rng(seed)
    positions = np.empty((steps + 1, trials, 2))
    gradients = np.empty((steps, trials, 2))
    positions[0] = w
    for t in range(steps):
        g = landscape.gradient(w)
        gradients[t] = g
        w = w - eta * g + eta * sigma * rng.standard_normal((trials, 2))
        positions[t + 1] = w
    return SGDRun(positions, gradients, landscape(positions), float(eta), float(sigma))


def select_start(landscape: Landscape, eta: float = 0.005, sigma: float = 0.02, steps: int = 1000,
                 candidates: int = 256, distance=(0.05, 0.3), radius: float = 0.02,
                 arrival=(0.15, 0.5), seed=0) -> np.ndarray | None:
    """A start from which SGD descends into the global minimum and stays there.

    Chen et al. keep the generated landscapes "which contain a wide minimum" and start
    from a high point. This makes that choice reproducible: one pilot trial of
    :func:`simulate_sgd` from each of ``candidates`` random points at ``distance`` from
    the lowest grid point m; a candidate qualifies when its walker enters the disc of
    ``radius`` around m after ``arrival[0]·steps`` steps but before ``arrival[1]·steps``,
    and is still inside at the end (a minimum that holds a walker of step size
    η|∇L| is wide: gradient descent is unstable in minima of curvature > 2/η). The
    highest qualifying start is returned.

    Parameters
    ----------
    landscape : Landscape
    eta, sigma, steps : float, float, int
        As in :func:`simulate_sgd`.
    candidates : int
        Pilot starts tried.
    distance : (float, float)
        Range of start distances from m (landscape widths).
    radius : float
        Radius of the minimum's disc (landscape widths).
    arrival : (float, float)
        Allowed first-entry times, as fractions of ``steps``.
    seed : int
        Seed of the candidate positions and the pilot noise.

    Returns
    -------
    ndarray of shape (2,) or None
        The start (x, y), or None when no candidate qualifies (try another landscape).

    Examples
    --------
    >>> land = fractal_landscape(256, seed=3)
    >>> start = select_start(land, candidates=64)
    >>> start is None or start.shape == (2,)
    True
    """
    rng = np.random.default_rng(seed)
    m = landscape.minimum()
    angle = rng.uniform(0.0, 2 * np.pi, candidates)
    r = rng.uniform(distance[0], distance[1], candidates)
    starts = m + r[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    run = simulate_sgd(landscape, starts, eta, sigma, steps, candidates, seed=rng)
    inside = landscape.distance(run.positions, m) < radius
    first = np.where(inside.any(axis=0), np.argmax(inside, axis=0), steps + 1)
    ok = inside[-1] & (first >= arrival[0] * steps) & (first <= arrival[1] * steps)
    if not ok.any():
        return None
    best = np.flatnonzero(ok)[np.argmax(run.loss[0, ok])]
    return starts[best]
