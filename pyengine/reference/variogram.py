"""Variogram estimates and their fBm sampling covariance, the plain way (tiny grids only)."""

import numpy as np


def power_variogram(z, lags, p):
    """½ mean |Δ z|**p at each lag, along rows, averaged with columns; one pair at a time."""
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    ny, nx = z.shape
    out = []
    for t in lags:
        rows = [abs(z[i, j + t] - z[i, j]) ** p for i in range(ny) for j in range(nx - t)]
        cols = [abs(z[i + t, j] - z[i, j]) ** p for i in range(ny - t) for j in range(nx)]
        means = [np.mean(rows)] + ([np.mean(cols)] if ny > 1 else [])
        out.append(0.5 * np.mean(means))
    return np.array(out)


def fbm_covariance(shape, hurst):
    """Covariance matrix of fBm with unit variogram at the grid points, flattened row by row."""
    ny, nx = shape
    pts = np.array([(i, j) for i in range(ny) for j in range(nx)], dtype=np.float64)
    norm = np.hypot(pts[:, 0], pts[:, 1]) ** (2 * hurst)
    dist = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1]) ** (2 * hurst)
    return 0.5 * (norm[:, None] + norm[None, :] - dist)


def log_variogram_cov(shape, lags, p, hurst):
    """Covariance of log V̂_p(t) (delta method) from the full covariance of every increment."""
    ny, nx = shape
    k = fbm_covariance(shape, hurst)
    rows, group = [], []
    for t in lags:
        for axis, (dy, dx) in enumerate([(0, t), (t, 0)] if ny > 1 else [(0, t)]):
            for i in range(ny - dy):
                for j in range(nx - dx):
                    d = np.zeros(ny * nx)
                    d[(i + dy) * nx + j + dx], d[i * nx + j] = 1.0, -1.0
                    rows.append(d)
                    group.append((t, axis))
    d = np.array(rows)
    c = d @ k @ d.T
    sd = np.sqrt(np.diag(c))
    if p == 2:
        cov_power, mean_power = 2 * c**2, sd**2
    else:
        rho = np.clip(c / np.outer(sd, sd), -1, 1)
        cov_power = 2 / np.pi * np.outer(sd, sd) * (np.sqrt(1 - rho**2) + rho * np.arcsin(rho) - 1)
        mean_power = sd * np.sqrt(2 / np.pi)
    # V̂_t = ½ mean over axes of (mean over the axis's pairs of |Δ|^p): a linear form in |Δ|^p
    weights = np.zeros((len(lags), len(group)))
    for n, (t, axis) in enumerate(group):
        same = [g == (t, axis) for g in group]
        n_axes = len({a for (s, a) in group if s == t})
        weights[list(lags).index(t), n] = 0.5 / (sum(same) * n_axes)
    mean_v = weights @ mean_power
    return (weights @ cov_power @ weights.T) / np.outer(mean_v, mean_v)
