"""Heavy-tail benchmarks (issue 5): α-stable fit speed, against scipy, and the tail-index kernel.

Speed: the α-stable MLE on 10⁶ samples and against scipy on 2 000, the throughput of the
Mohammadi tail-index kernel. Accuracy, apart: the check of Şimşekli et al. (2019) for the
Mohammadi estimator and the bias of the α-stable MLE.

    python -m bench heavytail                    # speed table (also: python -m bench.bench_heavytail [--quick])
    python -m bench.bench_heavytail accuracy     # the accuracy checks (minutes)

``scipy.stats.levy_stable.fit`` takes minutes: it runs in a subprocess, stopped after a cap.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile

import numpy as np

import pyengine as pe
from bench.common import Row, format_table, median_time
from pyengine.heavytail import fit_levy_stable, tail_index
from pyengine.kernels.tail_index import tail_sums
from pyengine.models import stable_samples

SUITE = "heavytail"

_SCIPY_CHILD = r"""
import sys, time, warnings
import numpy as np
from scipy import stats
x = np.load(sys.argv[1])
warnings.simplefilter("ignore")
t0 = time.perf_counter()
alpha = stats.levy_stable.fit(x)[0]
print(time.perf_counter() - t0, alpha)
"""


def scipy_fit(x: np.ndarray, cap: float) -> tuple[float, float] | None:
    """(seconds, α̂) of ``scipy.stats.levy_stable.fit(x)`` in a subprocess; None past ``cap`` seconds."""
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        np.save(f.name, x)
        try:
            child = subprocess.run([sys.executable, "-c", _SCIPY_CHILD, f.name], capture_output=True, text=True,
                                   check=True, timeout=cap)
        except subprocess.TimeoutExpired:
            return None
    seconds, alpha = map(float, child.stdout.split())
    return seconds, alpha


def stable_vs_scipy(n: int, cap: float, alpha: float = 1.5, seed: int = 0) -> Row:
    """pyengine.fit_levy_stable against scipy.stats.levy_stable.fit on the same samples."""
    x = stable_samples(n, alpha, seed=seed)
    ours = fit_levy_stable(x).alpha
    assert abs(ours - alpha) < 0.1, ours
    t_ours = median_time(lambda: fit_levy_stable(x), 3)
    peer = scipy_fit(x, cap)
    t_peer = cap if peer is None else peer[0]
    ratio = t_peer / t_ours
    note = f"α̂ = {ours:.3f}" + (f", scipy α̂ = {peer[1]:.3f}" if peer else
                                f"; peer did not finish in {cap:.0f} s; ratio is a lower bound")
    return Row(SUITE, f"α-stable fit, {n} samples (α = {alpha})", t_ours, "scipy.stats.levy_stable.fit", t_peer,
               "≥ 100×", True if ratio >= 100 else (False if peer else None), note)


def stable_large(n: int, alpha: float = 1.5, seed: int = 1) -> Row:
    """One fit of n samples."""
    x = stable_samples(n, alpha, seed=seed)
    fit = fit_levy_stable(x)
    assert abs(fit.alpha - alpha) < 0.02, fit.alpha
    sec = median_time(lambda: fit_levy_stable(x), 2, warmup=0)
    return Row(SUITE, f"α-stable fit, {n:,} samples (α = {alpha})", sec, target="≤ 3 s", met=sec <= 3,
               note=f"α̂ = {fit.alpha:.4f}")


def mohammadi_kernels(n_rows: int, n_cols: int, k1=(10, 100)) -> list[Row]:
    """Throughput of the 1-D tail-index statistics kernel per backend (float32 column block)."""
    x = stable_samples(n_rows * n_cols, 1.5, seed=2).reshape(n_rows, n_cols).astype(np.float32)
    want = tail_sums(x, k1, backend="numpy")
    rows = []
    for b in ("cpp", "numba", "numpy"):
        if pe.backends()[b].available:
            np.testing.assert_allclose(tail_sums(x, k1, backend=b), want, rtol=1e-9)
            sec = median_time(lambda: tail_sums(x, k1, backend=b), 3)
            rows.append(Row(SUITE, f"tail-index sums kernel, {n_rows}×{n_cols} float32, K1 {list(k1)} ({b})", sec,
                            value=x.size / sec, unit="values/s"))
    return rows


def run(quick: bool = False) -> list[Row]:
    if quick:
        return [stable_large(100_000), stable_vs_scipy(2000, cap=10), *mohammadi_kernels(1000, 1000)]
    return [stable_large(1_000_000), stable_vs_scipy(2000, cap=120), *mohammadi_kernels(1000, 10_000)]


def mohammadi_accuracy(alphas=None, k1: int = 100, k2: int = 1000, reps: int = 100, seed: int = 0) -> dict:
    """Şimşekli et al.'s check: K = K1·K2 SαS(1) samples, α̂ = 1/(1/α)^, ``reps`` repetitions
    per α; returns the mean bias, the standard deviation and the median absolute error."""
    alphas = np.round(np.arange(0.2, 2.01, 0.1), 2) if alphas is None else np.asarray(alphas)
    rng = np.random.default_rng(seed)
    rows = []
    for a in alphas:
        est = np.array([tail_index(stable_samples(k1 * k2, a, seed=rng), k1=k1).alpha for _ in range(reps)])
        rows.append({"alpha": float(a), "bias": float(np.nanmean(est) - a), "sd": float(np.nanstd(est)),
                     "median_abs_err": float(np.nanmedian(np.abs(est - a))), "undefined": int(np.isnan(est).sum())})
    return {"k1": k1, "k2": k2, "reps": reps, "rows": rows}


def stable_accuracy(alphas=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 1.95), n: int = 100_000, reps: int = 5) -> dict:
    """Bias and spread of the α-stable MLE for n samples per fit."""
    rows = []
    for i, a in enumerate(alphas):
        est = np.array([fit_levy_stable(stable_samples(n, a, seed=100 * i + r)).alpha for r in range(reps)])
        rows.append({"alpha": a, "bias": float(est.mean() - a), "max_abs_err": float(np.abs(est - a).max())})
    return {"n": n, "reps": reps, "rows": rows}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", choices=("speed", "accuracy"), default="speed")
    p.add_argument("--quick", action="store_true", help="smaller sizes (speed only)")
    args = p.parse_args(argv)
    if args.mode == "speed":
        print(format_table(run(args.quick)))
        return
    res = mohammadi_accuracy()
    print(f"Mohammadi estimator, K1 = {res['k1']}, K2 = {res['k2']}, {res['reps']} repetitions")
    print(f"{'alpha':>6} {'bias':>9} {'sd':>8} {'med|err|':>9} {'undef':>6}")
    for r in res["rows"]:
        print(f"{r['alpha']:6.2f} {r['bias']:+9.4f} {r['sd']:8.4f} {r['median_abs_err']:9.4f} {r['undefined']:6d}")
    res = stable_accuracy()
    print(f"\nalpha-stable MLE, n = {res['n']}, {res['reps']} fits per alpha")
    for r in res["rows"]:
        print(f"{r['alpha']:6.2f} bias {r['bias']:+.4f}  max|err| {r['max_abs_err']:.4f}")


if __name__ == "__main__":
    main()
