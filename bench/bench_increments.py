"""Increment spectra and weight autocorrelations of one window (``increment_sums``) against
the per-window scipy.fft path the accumulator ran before, and against one spectral MSD window.

Run: ``python -m bench increments`` (``--quick`` for smaller sizes).
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import scipy.fft

from bench.bench_msd import walk
from bench.common import Row, format_table
from pyengine import _core, config
from pyengine.kernels import increment_sums, spectral_sums
from pyengine.kernels.spectral import fft_length

SUITE = "increments"


def old_scipy_window(x: np.ndarray, max_lag: int, workers: int) -> tuple:
    """``IncrementsAccumulator.update`` before the kernel, for one window: per batch of
    columns, an rfft of the T − 1 mean-removed increments (on T − 1 points) and an rfft +
    irfft of the mean-removed weights (on scipy's next fast length >= 2T − 1)."""
    n = x.shape[0]
    nfft = scipy.fft.next_fast_len(2 * n - 1, real=True)
    power, power_sq = np.zeros((n - 1) // 2 + 1), np.zeros((n - 1) // 2 + 1)
    acf, acf_sq, n_moving = np.zeros(max_lag + 1), np.zeros(max_lag + 1), 0
    batch = max(1, config.FFT_BATCH_BYTES // (16 * (2 * n + 1)))
    for c0 in range(0, x.shape[1], batch):
        seg = x[:, c0 : c0 + batch].astype(np.float64)
        d = np.diff(seg, axis=0)
        d -= d.mean(axis=0)
        f = scipy.fft.rfft(d, axis=0, workers=workers)
        p = (f.real * f.real + f.imag * f.imag) / (n - 1)
        power += p.sum(axis=1)
        power_sq += (p * p).sum(axis=1)
        y = seg - seg.mean(axis=0)
        var = (y * y).sum(axis=0)
        moving = var > 0
        y = y[:, moving]
        g = scipy.fft.rfft(y, n=nfft, axis=0, workers=workers)
        r = scipy.fft.irfft(g.real * g.real + g.imag * g.imag, n=nfft, axis=0, workers=workers)[: max_lag + 1]
        r /= var[moving]
        n_moving += int(moving.sum())
        acf += r.sum(axis=1)
        acf_sq += (r * r).sum(axis=1)
    return power, power_sq, acf, acf_sq, n_moving


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_window(n: int, p: int, threads: int, repeat: int = 5) -> list[Row]:
    """Rounds of (new kernel, old path, spectral MSD window, each lane width) on the same
    block; the machine is shared and its load drifts, so each round's ratios are taken and
    their medians reported."""
    x = walk(n, p)
    max_lag = n // 2
    sub = x[:, :512]
    got, old = increment_sums(sub, max_lag, backend="cpp"), old_scipy_window(sub, max_lag, threads)
    want = increment_sums(sub, max_lag, backend="numpy")
    err = max(float(np.max(np.abs(g - w)) / np.max(np.abs(w))) for g, w in zip(got[:4], want[:4]))
    err_old = float(np.max(np.abs(got[2] - old[2])) / np.max(np.abs(old[2])))
    assert err < 1e-10 and err_old < 1e-10 and got[4] == old[4] == want[4], (err, err_old)

    lanes = [w for w in (8, 4, 2) if _runs_lanes(w)]
    sums = [np.zeros(fft_length(n - 1) // 2 + 1), np.zeros(fft_length(n - 1) // 2 + 1), np.zeros(max_lag + 1),
            np.zeros(max_lag + 1)]
    cases = {
        "new": lambda: increment_sums(x, max_lag, backend="cpp", threads=threads),
        "old": lambda: old_scipy_window(x, max_lag, threads),
        "spectral": lambda: spectral_sums(x, n // 2, backend="cpp", threads=threads),
        **{f"lanes{w}": (lambda w=w: _core.increment_sums(x, max_lag, *sums, threads, w)) for w in lanes},
    }
    for fn in cases.values():  # warm-up
        fn()
    rounds = [{name: _timed(fn) for name, fn in cases.items()} for _ in range(repeat)]
    t = {name: statistics.median(r[name] for r in rounds) for name in cases}
    speedup = statistics.median(r["old"] / r["new"] for r in rounds)
    vs_spectral = statistics.median(r["new"] / r["spectral"] for r in rounds)
    case = f"increment sums, one window T={n} × P={p} float32, max_lag={max_lag}, {threads} thread(s)"
    widths = ", ".join(f"{w} lanes {t[f'lanes{w}'] * 1e3:.0f} ms" for w in lanes)
    return [
        Row(SUITE, case, t["new"], "scipy.fft per window (the accumulator before the kernel)", t["old"], "≥ 5×",
            speedup >= 5, f"median of {repeat} rounds, per-round ratio median {speedup:.1f}×; max rel. diff vs "
            f"the NumPy backend {err:.1e}, acf vs the old path {err_old:.1e}; by SIMD width: {widths}"),
        Row(SUITE, case + ": vs one spectral MSD window", t["new"], "spectral_sums, n_origins = T/2 (two transforms)",
            t["spectral"], "new ≤ 1.5 × peer", vs_spectral <= 1.5,
            f"per-round new / spectral median {vs_spectral:.2f}"),
    ]


def _runs_lanes(lanes: int) -> bool:
    x = np.zeros((4, 1))
    try:
        _core.increment_sums(x, 0, np.zeros(5), np.zeros(5), np.zeros(1), np.zeros(1), 1, lanes)
    except ValueError:
        return False
    return True


def run(quick: bool = False) -> list[Row]:
    threads = _core.max_threads()
    if quick:
        return bench_window(256, 4096, threads, repeat=3)
    return bench_window(1000, 32768, threads) + bench_window(1000, 32768, 1)


def main() -> None:
    print(format_table(run("--quick" in sys.argv)))


if __name__ == "__main__":
    main()
