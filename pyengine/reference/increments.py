"""Increment spectra and weight autocorrelations of one window, per column in float64."""

import numpy as np


def _power_of_two(n: int) -> int:
    """The smallest power of two >= max(8, n)."""
    p = 8
    while p < n:
        p *= 2
    return p


def increment_sums(x, max_lag: int, nfft: int | None = None):
    """The definition of :func:`pyengine.kernels.increment_sums`, one column at a time.

    Per column w of the window x (T rows): the increments d(t) = w(t+1) − w(t) minus their
    mean (w(T−1) − w(0)) / (T − 1), the periodogram P(k) = |FFT_nfft(d)(k)|² / (T − 1) with
    ``numpy.fft`` (``nfft`` default: the power of two >= max(8, T − 1)); the weights
    y = u − mean(u) with u = w − w(0) (so that a constant column is exactly zero: the mean
    of T equal floats need not be that float), c(k) = Σ_t y(t) y(t+k) by lagged dot
    products, and r(k) = c(k) / c(0) for the columns with c(0) > 0.

    Returns
    -------
    power, power_sq : float64 arrays of shape (nfft // 2 + 1,)
        Σ P and Σ P² over columns.
    acf, acf_sq : float64 arrays of shape (max_lag + 1,)
        Σ r and Σ r² over the moving columns.
    n_moving : int
    """
    x = np.asarray(x, dtype=np.float64)
    n, p = x.shape
    nfft = _power_of_two(n - 1) if nfft is None else int(nfft)
    power, power_sq = np.zeros(nfft // 2 + 1), np.zeros(nfft // 2 + 1)
    acf, acf_sq = np.zeros(max_lag + 1), np.zeros(max_lag + 1)
    n_moving = 0
    for c in range(p):
        w = x[:, c]
        d = np.diff(w) - (w[-1] - w[0]) / (n - 1)
        periodogram = np.abs(np.fft.rfft(d, nfft)) ** 2 / (n - 1)
        power += periodogram
        power_sq += periodogram**2
        u = w - w[0]
        y = u - u.mean()
        c0 = float(y @ y)
        if c0 > 0:
            r = np.array([y[: n - k] @ y[k:] for k in range(max_lag + 1)]) / c0
            acf += r
            acf_sq += r**2
            n_moving += 1
    return power, power_sq, acf, acf_sq, n_moving


def transposed_increments(x, d, y):
    """Columns of x as rows, in float64: d[c, t] = x[t+1, c] − x[t, c] − their mean
    (t < n − 1) and y[c, t] = u − mean(u) with u = x[t, c] − x[0, c] (t < n); the entries
    past those are left as they are (the zero padding).

    Array methods only, so it runs on NumPy and CuPy arrays alike.
    """
    n = x.shape[0]
    w = x.astype("float64")
    d[:, : n - 1] = ((w[1:] - w[:-1]) - (w[-1] - w[0]) / (n - 1)).T
    u = w - w[0]
    y[:, :n] = (u - u.mean(axis=0)).T
    return d, y
