"""Peer implementations that pyengine is measured against (written here, in plain NumPy/SciPy)."""

from __future__ import annotations

import numpy as np
import scipy.fft


def wk_msd_batched(x: np.ndarray, batch: int = 256, workers: int = 2) -> np.ndarray:
    """All-lag within-window MSD, summed over coordinates, by the textbook float64
    Wiener–Khinchin algorithm batched over coordinates: every coordinate gets its own
    forward and inverse FFT and its own S1 term (what tidynamics does per coordinate)."""
    n = x.shape[0]
    nfft = scipy.fft.next_fast_len(2 * n, real=True)
    total = np.zeros(n)
    for c0 in range(0, x.shape[1], batch):
        y = x[:, c0 : c0 + batch].astype(np.float64)
        f = scipy.fft.rfft(y, n=nfft, axis=0, workers=workers)
        s2 = scipy.fft.irfft(f.real**2 + f.imag**2, n=nfft, axis=0, workers=workers)[:n]
        prefix = np.concatenate((np.zeros((1, y.shape[1])), np.cumsum(y * y, axis=0)))
        m = np.arange(n)
        s1 = prefix[n - m] + prefix[n] - prefix[m]
        total += (s1 - 2.0 * s2).sum(axis=1)
    return total / (n - np.arange(n))


def tidynamics_msd_loop(x: np.ndarray) -> np.ndarray:
    """tidynamics.msd called once per coordinate (its 1-D interface), summed."""
    import tidynamics

    return sum(tidynamics.msd(x[:, c].astype(np.float64)) for c in range(x.shape[1]))
