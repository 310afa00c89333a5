"""Spectral MSD sums of one window: FFT cross spectra of the columns' displacements, summed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pyengine import config, dispatch, reference
from pyengine.kernels._arrays import array_module, as_rows, fft_module, is_cupy


def fft_length(n: int) -> int:
    """The FFT length for ``n`` points of linear correlation: a power of two, at least 8.

    Every backend uses the same length, so states from any of them add up; the C++
    kernel's FFT handles powers of two only.
    """
    return max(8, 1 << max(0, int(n) - 1).bit_length())


def spectral_sums(x, n_origins: int | None = None, nfft: int | None = None, cross=None, sq=None,
                  backend: str = "auto", threads: int = 0):
    """Column sums of the FFT cross spectrum and squared norm of displacements from row 0.

    With ``y_c(t) = x[t, c] - x[0, c]`` in float64, ``A_c`` its FFT of length ``nfft`` and
    ``B_c`` the FFT of ``y_c`` cut to ``t < n_origins``::

        cross[k] += sum_c conj(B_c[k]) * A_c[k]      k = 0 .. nfft // 2
        sq[t]    += sum_c y_c(t) ** 2                t < n_snapshots

    With ``n_origins == n_snapshots`` (the default) ``cross`` is the summed power spectrum,
    one FFT per column. The inverse FFT of ``cross`` is the summed correlation
    ``sum_t y(t) . y(t + tau)`` over origins ``t < n_origins`` when
    ``nfft >= n_origins + n_snapshots - 1``.

    Parameters
    ----------
    x : array of shape (n_snapshots, n_params), float32 or float64
        NumPy or CuPy array; rows must be contiguous (column views are fine).
    n_origins : int, optional
        Origins of the window, ``1 <= n_origins <= n_snapshots`` (default: all).
    nfft : int, optional
        FFT length, a power of two ``>= max(8, n_snapshots)``; default
        ``fft_length(n_origins + n_snapshots - 1)``. Taken from ``cross`` when given.
    cross : complex128 array of shape (nfft // 2 + 1,), optional
        Added to (column blocks accumulate).
    sq : float64 array of shape (n_snapshots,), optional
        Added to.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
        ``"cpp"`` runs its own float64 FFTs, columns side by side in the lanes of one SIMD
        register (8 with AVX-512, 4 with AVX2, 2 otherwise), the data read once; the others
        transpose batches of columns (Numba, NumPy, CuPy) and call ``scipy.fft`` or cuFFT.
    threads : int
        CPU threads (0: ``config.THREADS``, or all cores).

    Returns
    -------
    cross, sq : complex128 and float64 arrays

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0], [2.0], [4.0]])              # y = 0, 1, 3
    >>> cross, sq = spectral_sums(x, backend="numpy")
    >>> np.fft.irfft(cross, n=8)[:3].round(12)           # sum_t y(t) y(t + tau)
    array([10.,  3.,  0.])
    >>> sq
    array([0., 1., 9.])
    """
    x = as_rows(x)
    on_gpu = is_cupy(x)
    xp = array_module(on_gpu)
    n, p = x.shape
    n_origins = n if n_origins is None else int(n_origins)
    if n and not 1 <= n_origins <= n:
        raise ValueError(f"n_origins must be in [1, {n}] for {n} snapshots, got {n_origins}")
    if cross is not None:
        nfft = 2 * (cross.shape[0] - 1) if cross.ndim == 1 else -1
    elif nfft is None:
        nfft = fft_length(n_origins + n - 1)
    if nfft < max(8, n) or nfft & (nfft - 1):
        raise ValueError(f"nfft must be a power of two >= max(8, n_snapshots={n}), got {nfft} "
                         "(cross must have nfft // 2 + 1 entries)")
    if cross is None:
        cross = xp.zeros(nfft // 2 + 1, dtype=np.complex128)
    elif cross.dtype != np.complex128:
        raise ValueError(f"cross: expected complex128, got {cross.dtype}")
    if sq is None:
        sq = xp.zeros(n, dtype=np.float64)
    elif sq.shape != (n,) or sq.dtype != np.float64:
        raise ValueError(f"sq: expected float64 of shape ({n},), got {sq.dtype} {sq.shape}")
    if n and p:
        name = dispatch.resolve(backend, on_gpu=on_gpu)
        _IMPLS[name](x, n_origins, cross, sq, threads or config.THREADS)
    return cross, sq


def _cpp(x, n_origins, cross, sq, threads):
    from pyengine import _core

    _core.spectral_sums(x, n_origins, cross, sq, threads)


def _batched(transpose):
    """The FFT-library path: batches of columns transposed (time contiguous) into a
    zero-padded float64 buffer by ``transpose``, FFTs along rows, spectra summed; each CPU
    thread takes its own columns (threads inside the FFT calls measured ~1.4x slower)."""

    def run(x, n_origins, cross, sq, threads):
        on_gpu = is_cupy(x)
        n_parts = 1 if on_gpu else max(1, min(threads, x.shape[1]))  # CuPy streams are per thread
        bounds = np.linspace(0, x.shape[1], n_parts + 1).astype(int)
        parts = [x[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        if n_parts == 1:
            results = [_batched_sums(parts[0], n_origins, cross.shape[0], transpose)]
        else:
            with ThreadPoolExecutor(n_parts) as pool:
                results = list(pool.map(lambda part: _batched_sums(part, n_origins, cross.shape[0], transpose), parts))
        for part_cross, part_sq in results:
            cross += part_cross
            sq += part_sq

    return run


def _batched_sums(x, n_origins, n_bins, transpose):
    on_gpu = is_cupy(x)
    xp, fft = array_module(on_gpu), fft_module(on_gpu)
    n, nfft = x.shape[0], 2 * (n_bins - 1)
    cross, sq = xp.zeros(n_bins, dtype=np.complex128), xp.zeros(n)
    batch = max(1, config.FFT_BATCH_BYTES // (16 * n_bins))
    # Only [:, :n] is ever written, so the zero padding up to nfft is set once here.
    buf = xp.zeros((min(batch, x.shape[1]), nfft))
    for c0 in range(0, x.shape[1], batch):
        y = buf[: min(batch, x.shape[1] - c0)]
        transpose(x[:, c0 : c0 + batch], y, sq)
        a = fft.rfft(y, axis=1)
        if n_origins == n:
            cross += _power_sum(a, xp)
        else:
            y[:, n_origins:n] = 0.0
            cross += (fft.rfft(y, axis=1).conj() * a).sum(axis=0)
    return cross, sq


def _power_sum(f, xp):
    """Σ over rows of |f|², from the float64 view (re, im interleaved): one fast reduction."""
    v = f.view(np.float64)
    s = xp.einsum("ij,ij->j", v, v)
    return s[0::2] + s[1::2]


def _numba_transpose(x, y, sq):
    from pyengine.kernels import _numba_spectral

    _numba_spectral.transposed_displacements(x, y, sq)


_IMPLS = {
    "cpp": _cpp,
    "numba": _batched(_numba_transpose),
    "numpy": _batched(reference.transposed_displacements),
    "cuda": _batched(reference.transposed_displacements),
}
