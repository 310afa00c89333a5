"""Increment spectra and weight autocorrelations of one window, summed over its columns."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pyengine import config, dispatch, reference
from pyengine.kernels._arrays import array_module, as_rows, fft_module, is_cupy
from pyengine.kernels.spectral import fft_length


def increment_sums(x, max_lag: int, power=None, power_sq=None, acf=None, acf_sq=None, *, nfft: int | None = None,
                   backend: str = "auto", threads: int = 0):
    """Column sums of the increment periodograms and weight autocorrelations of a window.

    For every column of the window ``x`` (T rows, in float64): the increments
    ``d(t) = x[t+1] − x[t]`` minus their mean ``(x[T−1] − x[0]) / (T − 1)``, zero-padded to
    ``nfft`` points, and their periodogram ``P(k) = |FFT(d)(k)|² / (T − 1)``; the weights
    ``y = x − mean`` over the T rows, ``c(j) = Σ_t y(t) y(t+j)`` (an FFT of ``fft_length(2T −
    1)`` points: no wrap-around) and, for the columns that move (``c(0) > 0``), their
    autocorrelation ``r(j) = c(j) / c(0)``::

        power[k]    += Σ_c P_c(k)       power_sq[k] += Σ_c P_c(k)²      k = 0 .. nfft // 2
        acf[j]      += Σ_c r_c(j)       acf_sq[j]   += Σ_c r_c(j)²      j = 0 .. max_lag

    White increments of variance σ² give ``E P = σ²`` at every k; ``P(k)`` is the power at
    ``k / nfft`` cycles per row.

    Parameters
    ----------
    x : array of shape (T, n_params), float32 or float64
        NumPy or CuPy array, T >= 2; rows must be contiguous (column views are fine).
    max_lag : int
        Largest lag of the autocorrelation, ``0 <= max_lag <= T − 1``.
    power, power_sq : float64 arrays of shape (nfft // 2 + 1,), optional
        Added to (column blocks accumulate); ``nfft`` is taken from ``power`` when given.
    acf, acf_sq : float64 arrays of shape (max_lag + 1,), optional
        Added to.
    nfft : int, optional
        Points of the increments' FFT, a power of two ``>= max(8, T − 1)``; default
        ``fft_length(T − 1)``.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
        ``"cpp"`` runs the FFTs of :func:`pyengine.kernels.spectral_sums` (float64, columns
        side by side in the lanes of one SIMD register, the data read once); the others
        transpose batches of columns (Numba, NumPy, CuPy) and call ``scipy.fft`` or cuFFT.
    threads : int
        CPU threads (0: ``config.THREADS``, or all cores).

    Returns
    -------
    power, power_sq, acf, acf_sq : float64 arrays
    n_moving : int
        Columns that move in the window (those summed in ``acf``), this call's only.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((9, 2))
    >>> x[1::2, 0] = 1.0                   # steps +1, -1, +1, ...
    >>> x[:, 1] = 5.0                      # a constant column
    >>> power, power_sq, acf, acf_sq, n_moving = increment_sums(x, 2, backend="numpy")
    >>> power.round(12)                    # all the power at the Nyquist frequency, k = 4
    array([0., 0., 0., 0., 8.])
    >>> acf.round(4), n_moving             # the constant column is left out
    (array([ 1.    , -0.8889,  0.7722]), 1)
    """
    x = as_rows(x)
    on_gpu = is_cupy(x)
    xp = array_module(on_gpu)
    n, p = x.shape
    if n < 2:
        raise ValueError(f"x: a window needs at least 2 snapshots (rows), got {n}")
    if isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or not 0 <= max_lag < n:
        raise ValueError(f"max_lag must be an integer in [0, {n - 1}] for {n} snapshots, got {max_lag!r}")
    max_lag = int(max_lag)
    if power is not None:
        nfft = 2 * (power.shape[0] - 1) if power.ndim == 1 else -1
    elif nfft is None:
        nfft = fft_length(n - 1)
    if nfft < max(8, n - 1) or nfft & (nfft - 1):
        raise ValueError(f"nfft must be a power of two >= max(8, n_snapshots - 1 = {n - 1}), got {nfft} "
                         "(power must have nfft // 2 + 1 entries)")
    power, power_sq = (_sums(a, name, nfft // 2 + 1, xp) for a, name in ((power, "power"), (power_sq, "power_sq")))
    acf, acf_sq = (_sums(a, name, max_lag + 1, xp) for a, name in ((acf, "acf"), (acf_sq, "acf_sq")))
    n_moving = 0
    if p:
        name = dispatch.resolve(backend, on_gpu=on_gpu)
        n_moving = _IMPLS[name](x, max_lag, power, power_sq, acf, acf_sq, threads or config.THREADS)
    return power, power_sq, acf, acf_sq, n_moving


def _sums(a, name, size, xp):
    if a is None:
        return xp.zeros(size, dtype=np.float64)
    if a.shape != (size,) or a.dtype != np.float64:
        raise ValueError(f"{name}: expected float64 of shape ({size},), got {a.dtype} {a.shape}")
    return a


def _cpp(x, max_lag, power, power_sq, acf, acf_sq, threads):
    from pyengine import _core

    return _core.increment_sums(x, max_lag, power, power_sq, acf, acf_sq, threads)


def _batched(transpose):
    """The FFT-library path: batches of columns transposed (time contiguous) into zero-padded
    float64 buffers by ``transpose``, FFTs along rows, sums over rows; each CPU thread takes
    its own columns, and the parts are added in column order."""

    def run(x, max_lag, power, power_sq, acf, acf_sq, threads):
        on_gpu = is_cupy(x)
        n_parts = 1 if on_gpu else max(1, min(threads, x.shape[1]))  # CuPy streams are per thread
        bounds = np.linspace(0, x.shape[1], n_parts + 1).astype(int)
        parts = [x[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        nfft = 2 * (power.shape[0] - 1)

        def one(part):
            return _batched_sums(part, max_lag, nfft, transpose)

        if n_parts == 1:
            results = [one(parts[0])]
        else:
            with ThreadPoolExecutor(n_parts) as pool:
                results = list(pool.map(one, parts))
        n_moving = 0
        for part_sums in results:
            for total, part in zip((power, power_sq, acf, acf_sq), part_sums):
                total += part
            n_moving += part_sums[4]
        return n_moving

    return run


def _batched_sums(x, max_lag, nfft, transpose):
    on_gpu = is_cupy(x)
    xp, fft = array_module(on_gpu), fft_module(on_gpu)
    n, n_cols = x.shape
    nfft_y = fft_length(2 * n - 1)
    power, power_sq = xp.zeros(nfft // 2 + 1), xp.zeros(nfft // 2 + 1)
    acf, acf_sq = xp.zeros(max_lag + 1), xp.zeros(max_lag + 1)
    n_moving = 0
    batch = max(1, config.FFT_BATCH_BYTES // (16 * (nfft_y // 2 + 1)))
    # Only [:, :n - 1] and [:, :n] are ever written, so the zero padding is set once here.
    d_buf, y_buf = xp.zeros((min(batch, n_cols), nfft)), xp.zeros((min(batch, n_cols), nfft_y))
    for c0 in range(0, n_cols, batch):
        width = min(batch, n_cols - c0)
        d, y = d_buf[:width], y_buf[:width]
        transpose(x[:, c0 : c0 + width], d, y)
        periodogram = _norm2(fft.rfft(d, axis=1)) / (n - 1)
        power += periodogram.sum(axis=0)
        power_sq += (periodogram * periodogram).sum(axis=0)
        c = fft.irfft(_norm2(fft.rfft(y, axis=1)), n=nfft_y, axis=1)[:, : max_lag + 1]
        c0 = c[:, :1]
        moving = c0[:, 0] > 0
        r = c[moving] / c0[moving]  # one boolean index per array: CuPy takes no mixed ones
        acf += r.sum(axis=0)
        acf_sq += (r * r).sum(axis=0)
        n_moving += int(moving.sum())
    return power, power_sq, acf, acf_sq, n_moving


def _norm2(f):
    return f.real * f.real + f.imag * f.imag


def _numba_transpose(x, d, y):
    from pyengine.kernels import _numba_increments

    _numba_increments.transposed_increments(x, d, y)


_IMPLS = {
    "cpp": _cpp,
    "numba": _batched(_numba_transpose),
    "numpy": _batched(reference.transposed_increments),
    "cuda": _batched(reference.transposed_increments),
}
