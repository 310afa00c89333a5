"""Tails of weight increments vs. the NoiseProbe's gradient-noise α on the demo run.

Run (with pyengine installed):  python examples/increment_tails_vs_noise.py --out DIR   (~1 min on 2 cores)

Trains the demo (1500 steps, a NoiseProbe every 50 steps) into DIR with ``run_demo``, then
trains it again from the same seed to keep the whole gradient-noise vectors at the probe
steps, in eval mode (what the NoiseProbe measures: BatchNorm on its running statistics)
and in train mode (the mode of the SGD steps). Per window of 250 steps it prints the
probe's α next to the increments' α (``increment_tails``, both groupings) and next to the
noise standardised per coordinate like the increments are. docs/heavytail.md reports
the numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

import pyengine as pe
from pyengine.demo import NOISE_PROBE_SAMPLES, DemoConfig, build, run_demo, train
from pyengine.heavytail import increment_tail_index, tail_index
from pyengine.record import NoiseProbe
from pyengine.record.probes import preserved_training_state

CONFIG = DemoConfig(steps=1500, hessian_every=0, surface_grid=0, noise_every=50)
WINDOW = 250
T_W = [1, 251, 501, 751, 1001, 1250]


class NoiseKeeper:
    """Stands in for the Recorder in :func:`pyengine.demo.train`: keeps the noise at probe steps."""

    def __init__(self, model, data) -> None:
        x, y = data["train"]
        n = min(NOISE_PROBE_SAMPLES, len(x)) // CONFIG.batch_size * CONFIG.batch_size  # as run_demo
        probe = NoiseProbe((x[:n], y[:n]), CONFIG.batch_size, every=CONFIG.noise_every, seed=CONFIG.seed)
        self.x, self.y = probe.data  # the probe's seeded partition into minibatches
        self.model, self.params = model, list(model.parameters())
        self.n_steps, self.noise = 0, {"eval": {}, "train": {}}

    def step(self, loss) -> None:
        self.n_steps += 1
        if self.n_steps % CONFIG.noise_every == 0:
            for mode in self.noise:
                self.noise[mode][self.n_steps] = self._noise(mode == "train")

    def _noise(self, training: bool) -> np.ndarray:
        """The minibatch gradients minus their mean, shape (m, P)."""
        b = CONFIG.batch_size
        with preserved_training_state(self.model):
            self.model.train(training)
            grads = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
                F.cross_entropy(self.model(self.x[i:i + b]), self.y[i:i + b]), self.params)])
                for i in range(0, len(self.x), b)])
        return (grads - grads.mean(dim=0)).double().numpy()


def permuted_alpha(values: np.ndarray) -> float:
    return tail_index(np.random.default_rng(0).permutation(values.ravel())).alpha


def retrain_keeping_noise(recorded: np.ndarray) -> NoiseKeeper:
    """Train the demo again from its seed; check it ends on the recorded final weights."""
    torch.set_num_threads(CONFIG.threads)
    model, optimizer, data = build(CONFIG)
    keeper = NoiseKeeper(model, data)
    train(model, optimizer, data, CONFIG, keeper)
    final = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy()
    if not np.array_equal(final, recorded):
        raise RuntimeError("the second training run left the recorded trajectory")
    return keeper


def window_increments(weights: np.ndarray, steps: np.ndarray, t_w: int) -> np.ndarray:
    """Δw of the window [t_w, t_w + WINDOW), shape (WINDOW, P)."""
    row = int(np.flatnonzero(steps == t_w)[0])
    return np.diff(weights[row:row + WINDOW + 1].astype(np.float64), axis=0)


def noise_alphas(keeper: NoiseKeeper, probes: dict, dw: np.ndarray) -> list[float]:
    """Probe α (stored), eval noise per coordinate, train noise raw, train noise per coordinate."""
    scale = np.median(np.abs(dw - np.median(dw, axis=0)), axis=0) / CONFIG.lr  # gradient scale per coordinate
    moving = scale > 0
    noise = {m: np.stack([keeper.noise[m][s] for s in probes]) for m in keeper.noise}
    stored = np.array(list(probes.values()))
    if not np.allclose([tail_index(u.ravel()).alpha for u in noise["eval"]], stored):
        raise RuntimeError("the kept eval-mode noise does not give the probe's stored α")
    return [stored.mean(), permuted_alpha(noise["eval"][..., moving] / scale[moving]),
            np.mean([tail_index(u.ravel()).alpha for u in noise["train"]]),
            permuted_alpha(noise["train"][..., moving] / scale[moving])]


def main(out: Path) -> None:
    path = run_demo(out, CONFIG, progress=False).trajectory
    with h5py.File(path, "r") as f:
        weights, steps = f["weights"][:], f["step"][:]
        probe_alpha = dict(zip(f["noise/step"][:].tolist(), f["noise/alpha"][:]))
    keeper = retrain_keeping_noise(weights[-1])
    kw = dict(window=WINDOW, t_w=T_W, stable=False, progress=False)
    every = dict(n_cols=weights.shape[1], **kw)
    runs = [pe.increment_tails(path, window=WINDOW, t_w=T_W, progress=False), pe.increment_tails(path, **every),
            pe.increment_tails(path, grouping="displacement", **kw),
            pe.increment_tails(path, grouping="displacement", **every)]
    print("window | NoiseProbe α | eval noise per coord | train noise raw | train noise per coord | "
          "increments permuted 256 / all | displacement 256 / all | increments raw across params | α-stable MLE")
    for i, t_w in enumerate(T_W):
        dw = window_increments(weights, steps, t_w)
        probes = {s: a for s, a in probe_alpha.items() if t_w < s <= t_w + WINDOW}
        a = noise_alphas(keeper, probes, dw) + [r.alpha[i] for r in runs]
        print(f"{t_w}–{t_w + WINDOW} | " + " | ".join(f"{v:.3f}" for v in a[:4]) + f" | {a[4]:.3f} / {a[5]:.3f} | "
              f"{a[6]:.3f} / {a[7]:.3f} | {tail_index(dw.ravel()).alpha:.3f} | {runs[0].stable_alpha[i]:.3f}")
    print("K1 dependence of the permuted α (all coordinates), K1 = 10, 100, 1000, 10000:")
    for t_w in (1, 501, 1250):
        by_k1 = increment_tail_index(window_increments(weights, steps, t_w), k1=[10, 100, 1000, 10_000])
        print(f"  t_w = {t_w}: {np.round(by_k1.alpha_by_k1, 3).tolist()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a new or empty folder (or an earlier demo output)")
    main(parser.parse_args().out)
