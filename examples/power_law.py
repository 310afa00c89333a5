"""The power-law dynamic of document 004 and its κ, measured with pyengine's fit_kappa.

Run (with pyengine installed):  python examples/power_law.py --out DIR
Writes DIR/science_power_law.png and prints the headline numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pyengine.heavytail.kappa import fit_kappa  # noqa: E402
from pyengine.toys import kappa_continuum, kappa_discrete, kappa_ito, simulate_power_law  # noqa: E402

H, SIGMA_G = 1.0, 1.0


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    rows = []
    for eta, sigma_h in ((0.05, 10.0), (0.05, 5.0), (0.1, 5.0), (0.02, 25.0)):
        w = simulate_power_law(H, eta, SIGMA_G, sigma_h, chains=10_000, steps=2_000, burn_in=500, thin=50, seed=0)
        fit = fit_kappa(w.ravel())
        k0, k1, kd = kappa_continuum(H, eta, sigma_h), kappa_ito(H, eta, sigma_h), kappa_discrete(H, eta, sigma_h)
        rows.append((eta, sigma_h, k0, k1, kd, fit.kappa, fit.ci))
        print(f"eta={eta} sigma_H={sigma_h}: kappa H/(eta sigma_H) = {k0:.2f}, Ito kappa+1 = {k1:.2f}, "
              f"discrete (Kesten) = {kd:.3f}; fit_kappa = {fit.kappa:.3f} [{fit.ci[0]:.3f}, {fit.ci[1]:.3f}] "
              f"({w.size} samples)")
        if len(rows) == 1:
            x = np.linspace(0, np.percentile(np.abs(w), 99.99), 200)
            hist, edges = np.histogram(np.abs(w), bins=np.geomspace(0.05, x[-1], 60), density=True)
            mid = np.sqrt(edges[1:] * edges[:-1])
            ax[0].loglog(mid, hist / 2, "o", ms=3, label="simulated |w − w*|")
            for k, style, name in ((k0, "--", "κ = H/(ησ_H)"), (k1, "-", "κ + 1 (Itô)")):
                p = (1 + sigma_h * mid**2 / SIGMA_G) ** -k
                ax[0].loglog(mid, p / p[0] * hist[0] / 2, style, lw=0.9, label=name)
            ax[0].set_xlabel("|w − w*|")
            ax[0].set_ylabel("density")
            ax[0].set_title(f"(a) stationary law, η={eta}, σ_H={sigma_h}", fontsize="small")
            ax[0].legend(fontsize="x-small")
    rows = np.array([(r[3], r[4], r[5], r[6][0], r[6][1], r[2]) for r in rows])
    ax[1].errorbar(rows[:, 1], rows[:, 2], yerr=[rows[:, 2] - rows[:, 3], rows[:, 4] - rows[:, 2]], fmt="o",
                   label="fit_kappa vs discrete prediction")
    ax[1].plot(rows[:, 1], rows[:, 5], "x", label="paper's H/(ησ_H)")
    lim = [1, rows[:, 1].max() * 1.1]
    ax[1].plot(lim, lim, "k-", lw=0.8)
    ax[1].set_xlabel("predicted κ (discrete recursion)")
    ax[1].set_ylabel("κ")
    ax[1].set_title("(b) κ recovered by fit_kappa", fontsize="small")
    ax[1].legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(out / "science_power_law.png", dpi=70)
    print(f"wrote {out / 'science_power_law.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the figure")
    main(parser.parse_args().out)
