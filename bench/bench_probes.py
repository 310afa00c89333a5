"""Cost of the curvature and noise probes on the demo network (issue 24).

Trains the demo network (``pyengine demo`` defaults: DigitsResNet width 16, P = 24 826,
batch 64, lr 0.1) for ``--steps`` steps, then times, at those weights, each measurement a
probe makes on the demo's 512 probe samples, with one torch thread:

- a Hessian-vector product, the top-20 Lanczos (as ``HessianProbe``), SLQ with V vectors
  of s steps, the alignment (Ritz vectors and tr(HΣ));
- the ``NoiseProbe`` (m = 8 minibatch gradients, tail index and the thin SVD of the
  covariance) and its per-sample variant (``cov_batch_size=1``: 512 gradients, a thin SVD
  of 512 × P);

and the overhead per probe step in training: the wall time of ``--steps`` training steps
with the probes minus without, over the number of probe steps.

Run: ``python -m bench.bench_probes [--steps 600 --every 200]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from pyengine.demo import NOISE_PROBE_SAMPLES, DemoConfig, build, train
from pyengine.landscape import HessianProbe
from pyengine.landscape.covariance import hessian_noise_trace, noise_covariance
from pyengine.landscape.density import slq
from pyengine.landscape.hessian import hessian_vector_product, lanczos_topk
from pyengine.record import NoiseProbe, Recorder, preserved_training_state


def _time(fn, repeats: int = 3) -> tuple[dict, object]:
    """Median wall and CPU seconds (this process, all threads) of ``fn(i)`` over the repeats i."""
    wall, cpu, out = [], [], None
    for i in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn(i)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"wall": round(statistics.median(wall), 4), "cpu": round(statistics.median(cpu), 4)}, out


def components(model, data, batch_size: int, density: int, steps: int) -> dict:
    """Seconds per measurement at the model's weights (eval mode, state restored)."""
    x, y = data["train"]
    n = min(NOISE_PROBE_SAMPLES, len(x)) // batch_size * batch_size
    probe_set = (x[:n], y[:n])
    params = [p for p in model.parameters() if p.requires_grad]
    size = sum(p.numel() for p in params)
    out = {"n_params": size, "probe_samples": n}
    with preserved_training_state(model):
        model.eval()
        hvp = hessian_vector_product(model, F.cross_entropy, probe_set, params)
        v = torch.randn(size)
        out["hvp_s"], _ = _time(lambda i: hvp(v), 5)
        out["lanczos_top20_s"], top = _time(lambda i: lanczos_topk(hvp, size, 20, vectors=True), 1)
        out["lanczos_top20_products"] = top.iterations
        out[f"slq_{density}x{steps}_s"], res = _time(lambda i: slq(hvp, size, density, steps), 1)
        noise = NoiseProbe(probe_set, batch_size)
        noise.layout(size)
        out["noise_probe_s"], _ = _time(lambda i: noise.measure(model, params, i) or noise.take_row(), 3)
        grads = noise._gradients(model, params, batch_size)[0]
        out["noise_svd_m8_s"], cov = _time(lambda i: noise_covariance(grads), 5)
        out["alignment_hd_trace_s"], _ = _time(lambda i: hessian_noise_trace(hvp, cov), 1)
        per_sample = NoiseProbe(probe_set, batch_size, cov_batch_size=1)
        out["per_sample_gradients_s"], g1 = _time(lambda i: per_sample._gradients(model, params, 1)[0], 1)
        out["per_sample_svd_s"], cov1 = _time(lambda i: noise_covariance(g1), 1)
        out["per_sample_rank"], out["per_sample_participation"] = cov1.rank, cov1.participation
        out["trace"], out["trace_se"] = res.trace, res.trace_se
    return out


def overhead(config: DemoConfig, every: int, density: int, steps: int) -> dict:
    """Wall and CPU seconds of training (recording every step) without probes, with the top-20
    Hessian probe alone (the demo before issue 24), and with the noise probe, the density and
    the alignment (the demo now); every probe every ``every`` steps."""
    def run(variant: str) -> tuple[float, float]:
        model, opt, data = build(config)
        x, y = data["train"]
        n = min(NOISE_PROBE_SAMPLES, len(x)) // config.batch_size * config.batch_size
        probes = []
        if variant == "top20":
            probes = [HessianProbe((x[:n], y[:n]), k=20, every=every)]
        elif variant == "full":
            noise = NoiseProbe((x[:n], y[:n]), config.batch_size, every=every)
            probes = [noise, HessianProbe((x[:n], y[:n]), k=20, every=every, density=density, density_steps=steps,
                                          noise=noise)]
        with tempfile.TemporaryDirectory() as tmp:
            start, start_cpu = time.perf_counter(), time.process_time()
            with Recorder(model, Path(tmp) / "run.h5", optimizer=opt, probes=probes) as rec:
                train(model, opt, data, config, rec)
            return time.perf_counter() - start, time.process_time() - start_cpu

    times = {variant: run(variant) for variant in ("none", "top20", "full")}
    n_probe_steps = config.steps // every
    out = {"train_steps": config.steps, "probe_every": every, "density": density, "density_steps": steps}
    for variant, (wall, cpu) in times.items():
        out[f"{variant}_s"] = {"wall": round(wall, 2), "cpu": round(cpu, 2)}
    for variant in ("top20", "full"):
        out[f"{variant}_per_probe_step_s"] = {
            kind: round((times[variant][i] - times["none"][i]) / n_probe_steps, 2) for i, kind in enumerate(("wall", "cpu"))}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps before timing, and of the overhead run")
    parser.add_argument("--every", type=int, default=200, help="probe every this many steps in the overhead run")
    parser.add_argument("--density", type=int, default=2, help="SLQ start vectors")
    parser.add_argument("--density-steps", type=int, default=30, help="Lanczos steps per SLQ vector")
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = DemoConfig(steps=args.steps)
    model, opt, data = build(config)
    train(model, opt, data, config)
    report = {"components": components(model, data, config.batch_size, args.density, args.density_steps)}
    if not args.skip_overhead:
        report["overhead"] = overhead(config, args.every, args.density, args.density_steps)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
