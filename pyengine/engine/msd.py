"""MSD accumulators: the exact lag band and the spectral (Wiener–Khinchin) windows.

Both reduce a column block to sums over its parameters, so states add across blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyengine.engine.accumulator import RunMeta
from pyengine.kernels._arrays import array_module, fft_module, to_host
from pyengine.kernels import lag_band, spectral_sums
from pyengine.kernels.spectral import fft_length


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
        a.band += b.band
        return a

    def finalize(self, state: LagBandState) -> np.ndarray:
        return to_host(state.band)


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
        return fft_length(self.n_origins + self.length - 1)


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
            spectral_sums(block[w.start : w.start + w.length], w.n_origins, cross=cross, sq=sq,
                          backend=meta.backend, threads=meta.threads)

    def merge(self, a: SpectralState, b: SpectralState) -> SpectralState:
        for x, y in zip(a.cross + a.sq, b.cross + b.sq):
            x += y
        return a

    def finalize(self, state: SpectralState) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per window: (msd over lags 0..length-1, origin counts, |y(τ)|² = Eq. 4 numerator)."""
        out = []
        for w, cross, sq in zip(self.windows, state.cross, state.sq):
            fft = fft_module(state.meta.on_gpu)
            corr = to_host(fft.irfft(cross, n=w.nfft))[: w.length]
            sq = to_host(sq)
            prefix = np.concatenate(([0.0], np.cumsum(sq)))
            tau = np.arange(w.length)
            n = np.minimum(w.n_origins, w.length - tau)
            total = prefix[n] + prefix[n + tau] - prefix[tau] - 2.0 * corr
            out.append((np.maximum(total, 0.0) / n, n, sq))
        return out
