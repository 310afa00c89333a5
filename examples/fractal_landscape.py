"""SGD on a 2-D fractal landscape (Chen, Qu & Gong 2022, Eq. 10 and Fig. 8), measured with pyengine.

Run (with pyengine installed):  python examples/fractal_landscape.py --out DIR
Writes DIR/science_fractal_landscape.png and prints the headline numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import pyengine as pe  # noqa: E402
from pyengine.heavytail.stable import fit_levy_stable  # noqa: E402
from pyengine.toys import fractal_landscape, paraboloid, select_start, shuffled_landscape, simulate_sgd  # noqa: E402

N, DIMENSION, AMPLITUDE, ETA, SIGMA, STEPS, TRIALS, WINDOW, RADIUS = 512, 1.05, 0.01, 0.005, 0.02, 1000, 10, 100, 0.02


def exponents(run) -> np.ndarray:
    """Whole-window MSD exponent per trial and window (pe.msd + pe.fit_diffusion), shape (trials, windows)."""
    return np.array([pe.fit_diffusion(pe.msd(run.trial(k), window=WINDOW)).alpha for k in range(run.positions.shape[1])])


def arrival(land, run, point) -> np.ndarray:
    """First step inside the disc of RADIUS around ``point`` (−1: never), per trial."""
    inside = land.distance(run.positions, point) < RADIUS
    return np.where(inside.any(axis=0), np.argmax(inside, axis=0), -1)


def before_after(alpha: np.ndarray, first: np.ndarray) -> tuple[float, float]:
    """Mean exponent of windows that end before the arrival and of windows that start after it."""
    t_w = np.arange(alpha.shape[1]) * WINDOW
    before = [alpha[k, i] for k in range(alpha.shape[0]) for i in range(t_w.size) if 0 <= t_w[i] + WINDOW <= first[k]]
    after = [alpha[k, i] for k in range(alpha.shape[0]) for i in range(t_w.size) if 0 <= first[k] <= t_w[i]]
    return (float(np.mean(before)) if before else float("nan"), float(np.mean(after)) if after else float("nan"))


def main(out: Path, landscapes: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    fits, first_run = [], None
    seed = 0
    while len(fits) < landscapes:
        land = fractal_landscape(N, DIMENSION, AMPLITUDE, seed=seed)
        start = select_start(land, ETA, SIGMA, STEPS, seed=seed)
        seed += 1
        if start is None:
            print(f"landscape seed {seed - 1}: no start reaches the global minimum; skipped")
            continue
        run = simulate_sgd(land, start, ETA, SIGMA, STEPS, TRIALS, seed=1000 + seed)
        alpha, first = exponents(run), arrival(land, run, land.minimum())
        grad = fit_levy_stable(run.gradients.ravel())
        b, a = before_after(alpha, first)
        fits.append((alpha, b, a, grad))
        print(f"fractal seed {seed - 1}: {np.sum(first >= 0)}/{TRIALS} trials reach the minimum "
              f"(median step {np.median(first[first >= 0]) if (first >= 0).any() else float('nan'):.0f}); "
              f"MSD exponent before {b:.2f}, after {a:.2f}; gradient alpha {grad.alpha:.3f} "
              f"[{grad.ci['alpha'][0]:.3f}, {grad.ci['alpha'][1]:.3f}], LLR {grad.llr:.1f}")
        if first_run is None:
            first_run = (land, start, run)
    land, start, run = first_run
    shuffled = shuffled_landscape(land, 8.0, seed=0)
    run_s = simulate_sgd(shuffled, start, ETA, SIGMA, STEPS, TRIALS, seed=7)
    bowl = paraboloid(N, curvature=0.2)
    run_p = simulate_sgd(bowl, np.array([0.5, 0.5]) + 0.25 * (start - land.minimum()) / np.linalg.norm(
        start - land.minimum()), ETA, SIGMA, STEPS, TRIALS, seed=8)
    others = {}
    for name, r in (("shuffled", run_s), ("paraboloid", run_p)):
        whole = np.array([pe.fit_diffusion(pe.msd(r.trial(k), window=None)).alpha[0] for k in range(TRIALS)])
        grad = fit_levy_stable(r.gradients.ravel())
        others[name] = (exponents(r), whole, grad)
        print(f"{name}: whole-run MSD exponent {whole.mean():.2f} ± {whole.std():.2f}; windows "
              f"{np.nanmean(others[name][0], axis=0).round(2).tolist()}; gradient alpha {grad.alpha:.3f} "
              f"[{grad.ci['alpha'][0]:.3f}, {grad.ci['alpha'][1]:.3f}], LLR {grad.llr:.1f}, "
              f"|grad| 99th pct {np.percentile(np.abs(r.gradients), 99):.3g}")
    print(f"fractal, all landscapes: before {np.nanmean([f[1] for f in fits]):.2f}, "
          f"after {np.nanmean([f[2] for f in fits]):.2f}, gradient alpha "
          f"{[round(f[3].alpha, 3) for f in fits]}, |grad| 99th pct {np.percentile(np.abs(run.gradients), 99):.3g}")

    fig, ax = plt.subplots(2, 2, figsize=(9, 7.5))
    ax[0, 0].imshow(land.height, origin="lower", extent=(0, 1, 0, 1), cmap="terrain")
    for k in range(TRIALS):
        ax[0, 0].plot(*(run.positions[:, k] % 1.0).T, ",", color="k", alpha=0.6)
    ax[0, 0].plot(*start, "r^")
    ax[0, 0].plot(*land.minimum(), "w*", ms=10)
    ax[0, 0].set_title(f"(a) fractal landscape D={DIMENSION}, 10 trials", fontsize="small")
    res = pe.msd(run.trial(0), window=WINDOW)
    for k in range(TRIALS):
        res = pe.msd(run.trial(k), window=WINDOW)
        ax[0, 1].loglog(res.lags, res.msd[0], color="tab:blue", lw=0.8, label="t_w = 0" if k == 0 else None)
        ax[0, 1].loglog(res.lags, res.msd[-1], color="tab:red", lw=0.8, label=f"t_w = {res.t_w[-1]}" if k == 0 else None)
    tau = np.array([1.0, 100.0])
    ax[0, 1].loglog(tau, 1e-6 * tau**2, "k--", lw=0.8, label="τ²")
    ax[0, 1].loglog(tau, 1e-6 * tau, "k:", lw=0.8, label="τ")
    ax[0, 1].set_xlabel("lag τ (steps)")
    ax[0, 1].set_title("(b) MSD per trial, first and last window", fontsize="small")
    ax[0, 1].legend(fontsize="x-small")
    g_max = np.abs(run.gradients).max()
    for name, r in (("fractal", run), ("shuffled", run_s), ("paraboloid", run_p)):
        g = r.gradients.ravel()
        ax[1, 0].hist(g, bins=np.linspace(-g_max, g_max, 121), histtype="step", log=True, label=name)
    ax[1, 0].set_xlabel("gradient component ∂L/∂x, ∂L/∂y")
    ax[1, 0].set_title("(c) gradients along the trajectories", fontsize="small")
    ax[1, 0].legend(fontsize="x-small")
    t_w = np.arange(STEPS // WINDOW) * WINDOW
    ax[1, 1].plot(t_w, np.nanmean(fits[0][0], axis=0), "o-", label="fractal")
    for name in others:
        ax[1, 1].plot(t_w, np.nanmean(others[name][0], axis=0), "s-", label=name)
    ax[1, 1].axhline(1, color="gray", lw=0.8)
    ax[1, 1].set_xlabel("waiting time t_w (steps)")
    ax[1, 1].set_ylabel(f"MSD exponent (window {WINDOW})")
    ax[1, 1].set_title("(d) exponent per window, mean of 10 trials", fontsize="small")
    ax[1, 1].legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(out / "science_fractal_landscape.png", dpi=70)
    print(f"wrote {out / 'science_fractal_landscape.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the figure")
    parser.add_argument("--landscapes", type=int, default=3, help="accepted fractal landscapes to simulate")
    args = parser.parse_args()
    main(args.out, args.landscapes)
