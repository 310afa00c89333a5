"""MSD accumulators: the exact lag band and the spectral (Wiener–Khinchin) windows.

Both reduce a column block to sums over its parameters, so states add across blocks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from pyengine import config
from pyengine.engine.accumulator import RunMeta
from pyengine.kernels._arrays import array_module
from pyengine.kernels import lag_band, transposed_displacements



def _to_host(a):
    return a.get() if hasattr(a, "get") else a


@dataclass
class LagBandState:
    band: object  # (n_lags, N) float64: D[l, t] = |x(t + lag_l) - x(t)|^2 summed so far
    meta: RunMeta


@dataclass(frozen=True)
class LagBandAccumulator:
    """D(t, τ) = ‖w(t+τ) − w(t)‖² for every origin t and each lag (snapshot units).

    From the band, any window's time-averaged MSD is a difference of prefix sums and the
    non-averaged MSD (Chen et al. Eq. 4) a single entry.
    """

    lags: tuple[int, ...]
    name: str = "lag_band"

    def prepare(self, meta: RunMeta) -> LagBandState:
        return LagBandState(array_module(meta.on_gpu).zeros((len(self.lags), meta.n_rows)), meta)

    def update(self, state: LagBandState, block, cols: slice) -> None:
        lag_band(block, self.lags, out=state.band, backend=state.meta.backend, threads=state.meta.threads)

    def merge(self, a: LagBandState, b: LagBandState) -> LagBandState:
        return LagBandState(a.band + b.band, a.meta)

    def finalize(self, state: LagBandState) -> np.ndarray:
        return _to_host(state.band)


@dataclass
class SpectralState:
    cross: list  # per window: sum over params of conj(FFT(a)) * FFT(b), (nfft // 2 + 1,)
    sq: list  # per window: sum over params of |y(t)|^2, y = x(t_w + t) - x(t_w), (L,)
    meta: RunMeta


@dataclass(frozen=True)
class SpectralWindow:
    """A window: origins rows [start, start + n_origins), endpoints up to start + length - 1."""

    start: int
    n_origins: int
    length: int

    @property
    def nfft(self) -> int:
        import scipy.fft

        return scipy.fft.next_fast_len(self.n_origins + self.length - 1, real=True)


@dataclass(frozen=True)
class SpectralMSDAccumulator:
    """All-lag MSD of a few windows by FFT autocorrelation, exact to float64 rounding.

    Per window, with y(t) = x(t_w + t) − x(t_w) (the reference point is subtracted before
    any product) the cross-correlation C(τ) = Σ_{t<T} y(t)·y(t+τ) comes from one forward
    FFT per coordinate (two when endpoints pass the window), with the spectra summed over
    coordinates before a single inverse FFT per window at finalize. The squared norms
    |y(t)|² give the other two terms of the MSD through prefix sums.
    """

    windows: tuple[SpectralWindow, ...]
    name: str = "spectral_msd"

    def prepare(self, meta: RunMeta) -> SpectralState:
        xp = array_module(meta.on_gpu)
        return SpectralState(
            [xp.zeros(w.nfft // 2 + 1, dtype=np.complex128) for w in self.windows],
            [xp.zeros(w.length) for w in self.windows],
            meta,
        )

    def update(self, state: SpectralState, block, cols: slice) -> None:
        meta = state.meta
        for w, cross, sq in zip(self.windows, state.cross, state.sq):
            seg = block[w.start : w.start + w.length]
            for part_cross, part_sq in _map_column_parts(lambda part: _spectra(w, part, meta), seg, meta):
                cross += part_cross
                sq += part_sq

    def merge(self, a: SpectralState, b: SpectralState) -> SpectralState:
        return SpectralState([x + y for x, y in zip(a.cross, b.cross)],
                             [x + y for x, y in zip(a.sq, b.sq)], a.meta)

    def finalize(self, state: SpectralState) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per window: (msd over lags 0..length-1, origin counts, |y(τ)|² = Eq. 4 numerator)."""
        out = []
        for w, cross, sq in zip(self.windows, state.cross, state.sq):
            fft = _fft_module(state.meta)
            corr = _to_host(fft.irfft(cross, n=w.nfft))[: w.length]
            sq = _to_host(sq)
            prefix = np.concatenate(([0.0], np.cumsum(sq)))
            tau = np.arange(w.length)
            n = np.minimum(w.n_origins, w.length - tau)
            total = prefix[n] + prefix[n + tau] - prefix[tau] - 2.0 * corr
            out.append((np.maximum(total, 0.0) / n, n, sq))
        return out


def _spectra(w: SpectralWindow, seg, meta: RunMeta):
    """(Σ_c cross spectrum, Σ_c |y(t)|²) over the columns of seg, one cache-sized batch at a time."""
    xp, fft = array_module(meta.on_gpu), _fft_module(meta)
    cross, sq = xp.zeros(w.nfft // 2 + 1, dtype=np.complex128), xp.zeros(w.length)
    batch = max(1, config.FFT_BATCH_BYTES // (16 * (w.nfft // 2 + 1)))
    # One row per parameter, time contiguous; only [:, :length] is ever written, so the
    # zero padding up to nfft is set once here.
    buf = xp.zeros((min(batch, seg.shape[1]), w.nfft))
    for c0 in range(0, seg.shape[1], batch):
        y = buf[: min(batch, seg.shape[1] - c0)]
        transposed_displacements(seg[:, c0 : c0 + batch], y, sq, backend=meta.backend, threads=1)
        fb = fft.rfft(y, axis=1)
        if w.length == w.n_origins:
            cross += _power_sum(fb, xp)
        else:
            y[:, w.n_origins : w.length] = 0.0
            cross += (fft.rfft(y, axis=1).conj() * fb).sum(axis=0)
    return cross, sq


def _power_sum(f, xp):
    """Σ over rows of |f|², from the float64 view (re, im interleaved): one fast reduction."""
    v = f.view(np.float64)
    s = xp.einsum("ij,ij->j", v, v)
    return s[0::2] + s[1::2]


def _map_column_parts(fn, seg, meta: RunMeta) -> list:
    """fn on one column part of seg per CPU thread, each part serial (kernel and FFTs).

    Measured on 2 cores: threads inside each call (OpenMP kernel, FFT workers) are ~2×
    slower, as the OpenMP team's spin-wait after the kernel takes the cores from the FFT's
    threads; a serial kernel with threaded FFTs is ~1.4× slower. GPU work stays on the
    calling thread (CuPy's device and stream are per thread).
    """
    n = 1 if meta.on_gpu else max(1, min(meta.threads, seg.shape[1]))
    bounds = np.linspace(0, seg.shape[1], n + 1).astype(int)
    parts = [seg[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    if n == 1:
        return [fn(parts[0])]
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, parts))


def _fft_module(meta: RunMeta):
    if meta.on_gpu:
        import cupyx.scipy.fft

        return cupyx.scipy.fft
    import scipy.fft

    return scipy.fft


def _workers(meta: RunMeta) -> dict:
    return {} if meta.on_gpu else {"workers": meta.threads}
