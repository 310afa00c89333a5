"""Synthetic test surfaces and sets with known fractal dimension."""

from __future__ import annotations

import numpy as np


def fbm_surface(n: int, hurst: float, seed=None) -> np.ndarray:
    """Fractional Brownian surface by spectral synthesis.

    Fourier amplitudes with random phases and Gaussian magnitudes whose power falls as
    ``|k|**-(2 * hurst + 2)`` are transformed back to an ``n x n`` periodic surface. Its
    graph has fractal dimension ``3 - hurst``.

    Parameters
    ----------
    n : int
        Side length in samples (>= 2).
    hurst : float
        Hurst exponent in (0, 1).
    seed : int or numpy.random.Generator, optional
        Seed of the random amplitudes (same seed, same surface).

    Returns
    -------
    z : float64 ndarray of shape (n, n)
        Zero-mean surface with unit standard deviation.

    References
    ----------
    Saupe, D. (1988). Algorithms for random fractals. In Peitgen & Saupe (eds.),
    *The Science of Fractal Images*, ch. 2 (spectral synthesis, ``SpectralSynthesisFM2D``).

    Examples
    --------
    >>> z = fbm_surface(64, 0.5, seed=1)
    >>> z.shape, round(float(z.std()), 6)
    ((64, 64), 1.0)
    """
    n = int(n)
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    if not 0.0 < hurst < 1.0:
        raise ValueError(f"hurst must be in (0, 1), got {hurst}")
    rng = np.random.default_rng(seed)
    ky = np.fft.fftfreq(n)[:, None]
    kx = np.fft.rfftfreq(n)[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = 1.0
    amplitude = k ** -(hurst + 1.0)
    amplitude[0, 0] = 0.0
    coeffs = amplitude * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape))
    z = np.fft.irfft2(coeffs, s=(n, n))
    return (z - z.mean()) / z.std()


def sierpinski_carpet(level: int) -> np.ndarray:
    """Sierpinski carpet as a boolean image of side ``3**level`` (dimension log 8 / log 3).

    Examples
    --------
    >>> sierpinski_carpet(1).astype(int)
    array([[1, 1, 1],
           [1, 0, 1],
           [1, 1, 1]])
    """
    image = np.ones((1, 1), dtype=bool)
    for _ in range(int(level)):
        hole = np.zeros_like(image)
        image = np.block([[image, image, image], [image, hole, image], [image, image, image]])
    return image


def koch_curve(level: int) -> np.ndarray:
    """Vertices of the Koch curve on [0, 1] after ``level`` refinements (dimension log 4 / log 3).

    Returns
    -------
    float64 ndarray of shape (4**level + 1, 2)

    Examples
    --------
    >>> koch_curve(1).round(3).tolist()
    [[0.0, 0.0], [0.333, 0.0], [0.5, 0.289], [0.667, 0.0], [1.0, 0.0]]
    """
    z = np.array([0.0, 1.0], dtype=complex)
    turn = np.exp(1j * np.pi / 3)
    for _ in range(int(level)):
        a, d = z[:-1], (z[1:] - z[:-1]) / 3
        pieces = np.stack([a, a + d, a + d + d * turn, a + 2 * d], axis=1).ravel()
        z = np.append(pieces, z[-1])
    return np.column_stack([z.real, z.imag])
