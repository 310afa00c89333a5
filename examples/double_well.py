"""Lévy- vs Brownian-driven gradient descent in a double well (Şimşekli et al. 2019, Sec. 2).

Run (with pyengine installed):  python examples/double_well.py --out DIR
Writes DIR/science_double_well.png and prints the headline numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pyengine.toys import (DoubleWell, escape_times, kramers_escape_time, levy_escape_time,  # noqa: E402
                           simulate_well, valley_fraction, valley_ratio)

ALPHA, ETA, CHAINS = 1.5, 0.02, 200


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    well = DoubleWell(-1.0, 2.0)
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.6))

    eps_levy = np.array([0.1, 0.15, 0.2, 0.3, 0.5])
    eps_brown = np.array([0.3, 0.35, 0.4, 0.5, 0.6])
    t_levy = np.array([escape_times(well, ALPHA, e, ETA, CHAINS, seed=1).mean() for e in eps_levy])
    t_brown = np.array([escape_times(well, 2.0, e, ETA, CHAINS, seed=2).mean() for e in eps_brown])
    slope_levy = np.polyfit(np.log(eps_levy), np.log(t_levy), 1)[0]
    barrier_fit = np.polyfit(1 / eps_brown**2, np.log(t_brown), 1)[0]
    print(f"Levy alpha={ALPHA}: mean escape time vs eps {dict(zip(eps_levy.tolist(), t_levy.round(1).tolist()))}; "
          f"prediction {[round(float(levy_escape_time(well, ALPHA, e)), 1) for e in eps_levy]}; "
          f"log-log slope {slope_levy:.2f} (expected -alpha = {-ALPHA})")
    print(f"Brownian: mean escape time vs eps {dict(zip(eps_brown.tolist(), t_brown.round(1).tolist()))}; "
          f"Kramers {[round(kramers_escape_time(well, e), 1) for e in eps_brown]}; "
          f"slope of log T vs 1/eps^2 {barrier_fit:.3f} (barrier {well.barrier(1):.3f})")
    fine = np.linspace(0.08, 0.65, 50)
    ax[0].loglog(eps_levy, t_levy, "o", label=f"Lévy α={ALPHA}")
    ax[0].loglog(fine, [levy_escape_time(well, ALPHA, e) for e in fine], "C0-", lw=0.8)
    ax[0].loglog(eps_brown, t_brown, "s", label="Brownian")
    ax[0].loglog(fine[fine > 0.28], [kramers_escape_time(well, e) for e in fine[fine > 0.28]], "C1-", lw=0.8)
    ax[0].set_xlabel("noise ε")
    ax[0].set_ylabel("mean escape time from valley 1")
    ax[0].set_title("(a) escape time vs noise (lines: theory)", fontsize="small")
    ax[0].legend(fontsize="x-small")

    scales = np.array([0.5, 1.0, 1.5, 2.0])
    t_levy_c = [escape_times(DoubleWell(-1.0, 2.0, c), ALPHA, 0.3, ETA, CHAINS, seed=3).mean() for c in scales]
    t_brown_c = [escape_times(DoubleWell(-1.0, 2.0, c), 2.0, 0.5, ETA, CHAINS, seed=4).mean() for c in scales]
    heights = scales * well.barrier(1)
    print(f"barrier {heights.round(3).tolist()}: Levy (eps 0.3) {np.round(t_levy_c, 1).tolist()}, "
          f"Brownian (eps 0.5) {np.round(t_brown_c, 1).tolist()}")
    ax[1].semilogy(heights, t_levy_c, "o-", label="Lévy, ε = 0.3")
    ax[1].semilogy(heights, t_brown_c, "s-", label="Brownian, ε = 0.5")
    ax[1].set_xlabel("barrier height ΔH")
    ax[1].set_title("(b) escape time vs barrier height", fontsize="small")
    ax[1].legend(fontsize="x-small")

    widths = np.array([1.0, 1.5, 2.0, 3.0])
    ratios = []
    for m2 in widths:
        w2 = DoubleWell(-1.0, m2)
        pred = valley_ratio(w2, ALPHA)
        start = np.where(np.arange(CHAINS) < CHAINS * pred / (1 + pred), m2, -1.0)  # near equilibrium
        frac = valley_fraction(simulate_well(w2, ALPHA, 0.2, ETA, 50_000, CHAINS, start=start, seed=5), 1000)
        ratios.append(frac / (1 - frac))
    print(f"pi2/pi1 for m2/|m1| = {widths.tolist()}: measured {np.round(ratios, 2).tolist()}, "
          f"(m2/|m1|)^alpha = {np.round(widths**ALPHA, 2).tolist()}")
    ax[2].loglog(widths, ratios, "o", label="measured (ε = 0.2)")
    ax[2].loglog(widths, widths**ALPHA, "k-", lw=0.8, label=f"(m2/|m1|)^α, α={ALPHA}")
    ax[2].set_xlabel("width ratio m2/|m1|")
    ax[2].set_ylabel("time in valley 2 / valley 1")
    ax[2].set_title("(c) wide-valley preference", fontsize="small")
    ax[2].legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(out / "science_double_well.png", dpi=70)
    print(f"wrote {out / 'science_double_well.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the figure")
    main(parser.parse_args().out)
