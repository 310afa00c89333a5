"""Heavy-tail benchmarks: α-stable MLE against scipy, the 1e6-sample fit, Mohammadi kernels,
and the accuracy check of Şimşekli et al. (2019) for the Mohammadi estimator.

    python bench/bench_heavytail.py            # speed table
    python bench/bench_heavytail.py accuracy   # Şimşekli et al.'s check (minutes)

Each function returns a dict of results (JSON-ready), measured after a correctness check.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

import pyengine as pe
from pyengine.heavytail import fit_levy_stable, tail_index
from pyengine.kernels.tail_index import tail_sums
from pyengine.models import stable_samples


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def stable_vs_scipy(n: int = 2000, alpha: float = 1.5, seed: int = 0) -> dict:
    """pyengine.fit_levy_stable against scipy.stats.levy_stable.fit on the same samples."""
    from scipy import stats

    x = stable_samples(n, alpha, seed=seed)
    ours = fit_levy_stable(x)  # warm-up and correctness
    t_ours = _best(lambda: fit_levy_stable(x))
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b, loc, scale = stats.levy_stable.fit(x)
    t_scipy = time.perf_counter() - t
    return {"n": n, "alpha_true": alpha, "pyengine_s": t_ours, "scipy_s": t_scipy, "speedup": t_scipy / t_ours,
            "pyengine_alpha": ours.alpha, "scipy_alpha": float(a), "scipy_beta": float(b)}


def stable_large(n: int = 1_000_000, alpha: float = 1.5, seed: int = 1) -> dict:
    """Time of one fit of n samples (the target: <= 3 s on 2 cores)."""
    x = stable_samples(n, alpha, seed=seed)
    fit = fit_levy_stable(x)
    assert abs(fit.alpha - alpha) < 0.02, fit.alpha
    return {"n": n, "alpha_true": alpha, "alpha": fit.alpha, "seconds": _best(lambda: fit_levy_stable(x), 2)}


def mohammadi_kernels(n_rows: int = 1000, n_cols: int = 10_000, k1=(10, 100)) -> dict:
    """Throughput of the 1-D statistics kernel per backend (float32 column block)."""
    x = stable_samples(n_rows * n_cols, 1.5, seed=2).reshape(n_rows, n_cols).astype(np.float32)
    want = tail_sums(x, k1, backend="numpy")
    out = {"shape": [n_rows, n_cols], "k1": list(k1)}
    for b in ("cpp", "numba", "numpy"):
        if not pe.backends()[b].available:
            continue
        np.testing.assert_allclose(tail_sums(x, k1, backend=b), want, rtol=1e-9)
        out[f"{b}_s"] = _best(lambda: tail_sums(x, k1, backend=b), 2)
        out[f"{b}_values_per_s"] = x.size / out[f"{b}_s"]
    return out


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
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "accuracy":
        res = mohammadi_accuracy()
        print(f"Mohammadi estimator, K1 = {res['k1']}, K2 = {res['k2']}, {res['reps']} repetitions")
        print(f"{'alpha':>6} {'bias':>9} {'sd':>8} {'med|err|':>9} {'undef':>6}")
        for r in res["rows"]:
            print(f"{r['alpha']:6.2f} {r['bias']:+9.4f} {r['sd']:8.4f} {r['median_abs_err']:9.4f} {r['undefined']:6d}")
        res = stable_accuracy()
        print(f"\nalpha-stable MLE, n = {res['n']}, {res['reps']} fits per alpha")
        for r in res["rows"]:
            print(f"{r['alpha']:6.2f} bias {r['bias']:+.4f}  max|err| {r['max_abs_err']:.4f}")
        return
    s = stable_vs_scipy()
    print(f"SaS fit, n = {s['n']}: pyengine {s['pyengine_s'] * 1e3:.1f} ms (alpha {s['pyengine_alpha']:.3f}), "
          f"scipy {s['scipy_s']:.2f} s (alpha {s['scipy_alpha']:.3f}): {s['speedup']:.0f}x")
    s = stable_large()
    print(f"SaS fit, n = {s['n']:.0e}: {s['seconds']:.2f} s (alpha {s['alpha']:.4f}, true {s['alpha_true']})")
    m = mohammadi_kernels()
    print(f"Mohammadi sums {m['shape']} float32, K1 {m['k1']}: " + ", ".join(
        f"{b} {m[b + '_s'] * 1e3:.0f} ms" for b in ("cpp", "numba", "numpy") if b + "_s" in m))


if __name__ == "__main__":
    main()
