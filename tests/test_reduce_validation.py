"""Full against sketched against sampled recordings: MSD, exponents, MSL and λ agree within the
stated error, on a synthetic trajectory and on a recorded CNN (the demo network); the exact
variance of a sketched time-averaged MSD over seeds; the jackknife SE of a sketch covers
its error. The 1 M-parameter check of issue 22 is marked slow (``--runslow``)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pyengine as pe  # noqa: E402
from pyengine.record import Recorder, Sample, Sketch  # noqa: E402
from pyengine.record.reduce import reduce_rows, signed_buckets  # noqa: E402
from pyengine.store import ParamInfo, write_trajectory  # noqa: E402
from pyengine.store.reduction import countsketch_variance  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

Z = 4.0  # agreement within Z standard errors


def layered_fbm(n_steps: int, n_params: int, seed: int = 1) -> tuple[np.ndarray, list[ParamInfo]]:
    """fBm (H = 0.7) in four 'layers' of very different scales, as trained networks have."""
    x = pe.models.fbm(n_steps, n_params, 0.7, seed=seed, dtype=np.float32)
    sizes = [n_params // 2, n_params // 4, n_params // 8]
    sizes.append(n_params - sum(sizes))
    table, offset = [], 0
    for i, (n, scale) in enumerate(zip(sizes, [1.0, 0.3, 3.0, 0.1])):
        x[:, offset:offset + n] *= scale
        table.append(ParamInfo(f"layer{i}.weight", offset, n, (n,), "weight"))
        offset += n
    return x, table


def write_three(folder, x, table, loss, k: int, f: float) -> dict:
    paths = {"full": write_trajectory(folder / "full.h5", x, np.arange(len(x)), loss, params=table)}
    for name, spec in (("sketch", Sketch(k)), ("sample", Sample(f))):
        rows, r = reduce_rows(torch.as_tensor(x), spec, table)
        dtype = "float64" if name == "sketch" else x.dtype  # as the recorder stores them
        paths[name] = write_trajectory(folder / f"{name}.h5", rows, np.arange(len(x)), loss, params=r.table,
                                       reduction=r.reduction, kept_index=getattr(r, "kept", None), dtype=dtype)
    return paths


def compare(full_path, reduced_path, window: int, k: int | None = None) -> dict:
    """Check agreement; returns the largest deviations in units of the reduced file's SE."""
    skip = ("tails", "increments")
    full = pe.analyze(full_path, window=window, progress=False, skip=skip)
    red = pe.analyze(reduced_path, window=window, progress=False, skip=skip)
    out = {}
    # MSD: within Z SE everywhere; a sketch also within Z·sqrt(2/k) relative (the variance bound).
    se = red["msd"].msd_se
    dev = np.abs(red["msd"].msd - full["msd"].msd)
    ok = np.isfinite(dev)
    assert np.all(dev[ok] <= Z * se[ok])
    out["msd_z"] = float(np.max(dev[ok] / se[ok]))
    out["msd_rel"] = float(np.max(dev[ok] / full["msd"].msd[ok]))
    if k is not None:
        assert out["msd_rel"] <= Z * np.sqrt(2 / k)
    # Diffusion exponents: the same lags in both fits.
    d_alpha = np.abs(red["diffusion"].alpha - full["diffusion"].alpha)
    assert np.all(d_alpha <= Z * red["diffusion"].alpha_se)
    out["alpha_z"] = float(np.max(d_alpha / red["diffusion"].alpha_se))
    # MSL exponent 2H over the full file's fit range (the automatic range is a discontinuous choice).
    zs = []
    for i, tw in enumerate(full["msl"].t_w):
        lo, hi = full["msl"].fits[i].x_range
        msl = pe.msl(reduced_path, window=window, t_w=[int(tw)], fit_range=(lo, hi), progress=False)
        zs.append(abs(msl.exponent[0] - full["msl"].exponent[i]) / msl.exponent_se[0])
    assert max(zs) <= Z
    out["msl_z"] = float(max(zs))
    # λ (below the crossover) where the two automatic fit ranges overlap by half the shorter one.
    zs = []
    for fit_full, fit_red in zip(full["path"].fits, red["path"].fits):
        (a0, a1), (b0, b1) = np.log(fit_full[0].x_range), np.log(fit_red[0].x_range)
        if min(a1, b1) - max(a0, b0) >= 0.5 * min(a1 - a0, b1 - b0):
            zs.append(abs(fit_red[0].slope - fit_full[0].slope) / fit_red[0].slope_se)
    assert not zs or max(zs) <= Z
    out["lam_z"] = float(max(zs, default=np.nan))
    return out


def test_synthetic_trajectory_full_sketch_and_sample_agree(tmp_path):
    x, table = layered_fbm(600, 12_000)
    loss = pe.models.synthetic_loss(x, noise=0.0)
    paths = write_three(tmp_path, x, table, loss, k=4096, f=0.05)
    compare(paths["full"], paths["sketch"], 150, k=4096)
    compare(paths["full"], paths["sample"], 150)


class _Many:
    def __init__(self, *recorders):
        self.recorders = recorders

    def step(self, loss):
        for rec in self.recorders:
            rec.step(loss)


def test_recorded_cnn_full_sketch_and_sample_agree(tmp_path):
    from pyengine.demo import DemoConfig, build, train

    config = DemoConfig(steps=400)
    model, opt, data = build(config)
    paths = {name: tmp_path / f"{name}.h5" for name in ("full", "sketch", "sample")}
    with Recorder(model, paths["full"]) as a, Recorder(model, paths["sketch"], sketch=4096) as b, \
            Recorder(model, paths["sample"], sample=0.01) as c:
        train(model, opt, data, config, _Many(a, b, c))
    compare(paths["full"], paths["sketch"], 200, k=4096)
    compare(paths["full"], paths["sample"], 200)


def test_variance_of_a_sketched_msd_over_seeds_is_the_formula():
    """Q(τ) = mean_t ‖S(x_{t+τ} − x_t)‖² over 400 seeds: mean ‖x_{t+τ} − x_t‖² averaged, variance
    countsketch_variance of the displacements / n²."""
    x, _ = layered_fbm(120, 600, seed=3)
    x = x.astype(np.float64)
    k, lag, seeds = 32, 10, 400
    d = x[lag:] - x[:-lag]
    values = np.empty(seeds)
    for s in range(seeds):
        b = signed_buckets(0, x.shape[1], k, seed=s).numpy().astype(np.int64)
        y = np.stack([np.bincount(b % k, weights=np.where(b >= k, -r, r), minlength=k) for r in d])
        values[s] = (y**2).sum(axis=1).mean()
    n = len(d)
    exact, var = (d**2).sum(axis=1).mean(), countsketch_variance(d, k) / n**2
    assert abs(values.mean() - exact) < 4 * np.sqrt(var / seeds)
    kurt = ((values - values.mean()) ** 4).mean() / values.var() ** 2
    assert abs(values.var(ddof=1) / var - 1) < 4 * np.sqrt((kurt - 1) / seeds)
    assert var < 2 / k * exact**2  # displacements that point apart: below the single-pair bound


def test_jackknife_se_of_a_sketch_covers_its_error():
    """Over 30 seeds, the sketch's error in units of its own SE has an rms of at most 1."""
    x, table = layered_fbm(200, 3000, seed=5)
    lags = [1, 5, 25]
    full = pe.msd(x, window=100, lags=lags, progress=False)
    z = []
    for seed in range(30):
        rows, _ = reduce_rows(torch.as_tensor(x), Sketch(256, seed=seed), table)
        sk = pe.msd(rows, window=100, lags=lags, progress=False)
        z.append((sk.msd - full.msd) / sk.msd_se)
    assert np.sqrt(np.mean(np.square(z))) <= 1.0


@pytest.mark.slow
def test_one_million_parameters_sketch_4096_and_sample_one_percent(tmp_path):
    x, table = layered_fbm(256, 1_000_000)
    loss = pe.models.synthetic_loss(x, noise=0.0)
    paths = write_three(tmp_path, x, table, loss, k=4096, f=0.01)
    del x
    sketch = compare(paths["full"], paths["sketch"], 64, k=4096)
    sample = compare(paths["full"], paths["sample"], 64)
    print(f"\n1M parameters, 256 steps, window 64: sketch {sketch}, sample {sample}")
