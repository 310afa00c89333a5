"""Increment spectra and weight autocorrelations per window, as sums over coordinates.

For each coordinate i of a column block and each window (Chaudhari 2018, Sec. 6.3.3,
Fig. 6.3):

- the periodogram of its n = T − 1 increments inside the window, Δw_i(t) = w_i(t+1) − w_i(t),
  t ∈ [t_w, t_w + T − 1), after subtracting their mean, zero-padded to nfft points (the
  power of two >= max(8, n)): P_i(f_k) = |Σ_t Δw_i(t) e^{−2πi k t / nfft}|² / n,
  k = 0 … nfft/2;
- the autocorrelation of its weights over the window's T snapshots,
  r_i(k) = Σ_t y_i(t) y_i(t+k) / Σ_t y_i(t)², y_i = w_i − mean(w_i) (coordinates that do
  not move are left out and counted apart).

Both come from one call of :func:`pyengine.kernels.increment_sums` per window and block (the
C++ kernel shares the SIMD FFT of the spectral MSD). The state keeps, per window, the number
of coordinates and the sums of P_i, P_i², r_i and r_i² over coordinates, so blocks merge by
addition and finalize gives mean ± sd across coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyengine.engine.accumulator import RunMeta
from pyengine.kernels import increment_sums
from pyengine.kernels._arrays import array_module, to_host
from pyengine.kernels.spectral import fft_length

__all__ = ["IncrementWindow", "IncrementState", "IncrementsAccumulator", "WindowSums", "IncrementSampleAccumulator",
           "SampleState"]


@dataclass(frozen=True)
class IncrementWindow:
    """Rows [start, start + length) of the trajectory: ``length`` weights, ``length − 1`` increments."""

    start: int
    length: int
    max_lag: int

    @property
    def nfft(self) -> int:
        """Points of the increments' FFT: the power of two >= max(8, T − 1) (``fft_length``)."""
        return fft_length(self.length - 1)


@dataclass
class IncrementState:
    n_cols: int  # coordinates seen
    power: list  # per window: sums over coordinates of P_i(f_k), (nfft // 2 + 1,)
    power_sq: list  # per window: sums of P_i(f)^2
    n_moving: list  # per window: coordinates with non-zero variance (int)
    acf: list  # per window: sums of r_i(k), (max_lag + 1,)
    acf_sq: list  # per window: sums of r_i(k)^2
    meta: RunMeta


@dataclass(frozen=True)
class WindowSums:
    """Finalized sums of one window (host arrays)."""

    n_cols: int
    power: np.ndarray
    power_sq: np.ndarray
    n_moving: int
    acf: np.ndarray
    acf_sq: np.ndarray


@dataclass(frozen=True)
class IncrementsAccumulator:
    """Sums over coordinates of increment periodograms and weight autocorrelations.

    Every window needs rows start … start + length − 1.
    """

    windows: tuple[IncrementWindow, ...]
    name: str = "increments"

    def prepare(self, meta: RunMeta) -> IncrementState:
        for w in self.windows:
            if w.start < 0 or w.length < 3 or w.start + w.length > meta.n_rows:
                raise ValueError(f"window {w} needs rows {w.start} … {w.start + w.length - 1} (at least 3), "
                                 f"but the run has rows 0 … {meta.n_rows - 1}")
            if not 0 <= w.max_lag < w.length:
                raise ValueError(f"max_lag must be in 0 … {w.length - 1} for a window of {w.length} rows, "
                                 f"got {w.max_lag}")
        xp = array_module(meta.on_gpu)
        return IncrementState(
            0,
            [xp.zeros(w.nfft // 2 + 1) for w in self.windows],
            [xp.zeros(w.nfft // 2 + 1) for w in self.windows],
            [0 for _ in self.windows],
            [xp.zeros(w.max_lag + 1) for w in self.windows],
            [xp.zeros(w.max_lag + 1) for w in self.windows],
            meta,
        )

    def update(self, state: IncrementState, block, cols: slice) -> None:
        meta = state.meta
        state.n_cols += block.shape[1]
        for i, w in enumerate(self.windows):
            *_, n_moving = increment_sums(block[w.start : w.start + w.length], w.max_lag, state.power[i],
                                          state.power_sq[i], state.acf[i], state.acf_sq[i], backend=meta.backend,
                                          threads=meta.threads)
            state.n_moving[i] += n_moving

    def merge(self, a: IncrementState, b: IncrementState) -> IncrementState:
        return IncrementState(
            a.n_cols + b.n_cols,
            [x + y for x, y in zip(a.power, b.power)],
            [x + y for x, y in zip(a.power_sq, b.power_sq)],
            [x + y for x, y in zip(a.n_moving, b.n_moving)],
            [x + y for x, y in zip(a.acf, b.acf)],
            [x + y for x, y in zip(a.acf_sq, b.acf_sq)],
            a.meta,
        )

    def finalize(self, state: IncrementState) -> list[WindowSums]:
        return [WindowSums(state.n_cols, to_host(p), to_host(q), n, to_host(r), to_host(s))
                for p, q, n, r, s in zip(state.power, state.power_sq, state.n_moving, state.acf, state.acf_sq)]


@dataclass
class SampleState:
    cols: list  # column indices of the sampled coordinates, in update order
    values: list  # per part: list over windows of (length, k) weights (differenced at finalize)
    meta: RunMeta


@dataclass(frozen=True)
class IncrementSampleAccumulator:
    """The increments of every ``col_step``-th coordinate, per window (for tail fits).

    Which coordinates are kept depends only on their column index, so any split into
    blocks keeps the same ones; merge concatenates and finalize orders them by column.
    Size: about (n_cols / col_step) × length values per window, whatever P is.
    """

    windows: tuple[IncrementWindow, ...]
    col_step: int
    name: str = "increment_sample"

    def prepare(self, meta: RunMeta) -> SampleState:
        if self.col_step < 1:
            raise ValueError(f"col_step must be >= 1, got {self.col_step}")
        return SampleState([], [], meta)

    def update(self, state: SampleState, block, cols: slice) -> None:
        first = -cols.start % self.col_step  # first kept column of this block, relative to it
        keep = np.arange(first, block.shape[1], self.col_step)
        if keep.size == 0:
            return
        state.cols.append(cols.start + keep)
        state.values.append([to_host(block[w.start : w.start + w.length, keep]).astype(np.float64)
                             for w in self.windows])

    def merge(self, a: SampleState, b: SampleState) -> SampleState:
        return SampleState(a.cols + b.cols, a.values + b.values, a.meta)

    def finalize(self, state: SampleState) -> list[np.ndarray]:
        """Per window: increments of shape (length − 1, k), columns in increasing index order."""
        if not state.cols:
            return [np.empty((w.length - 1, 0)) for w in self.windows]
        order = np.argsort(np.concatenate(state.cols), kind="stable")
        return [np.diff(np.concatenate([part[i] for part in state.values], axis=1)[:, order], axis=0)
                for i in range(len(self.windows))]
