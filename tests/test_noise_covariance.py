"""The gradient-noise covariance, its alignment with the Hessian and the state-dependent
noise fit, on linear least squares (closed forms) and in recorded runs.

Linear least squares, per-sample loss ½(xᵀw − y)²: the Hessian is XᵀX/n exactly; the
per-sample gradients are g_k = x_k (x_kᵀw − y_k), and the covariance of the gradient of a
minibatch of size b over the probe set is S/b with S = (1/(n − 1))(Σ g_k g_kᵀ − n ḡḡᵀ)
(at the minimum ḡ = 0 and S = (1/(n − 1)) Σ r_k² x_k x_kᵀ). Per-sample gradients
(``cov_batch_size=1``) give exactly S/b; the m minibatch gradients of one random partition
give S/b on average over partitions.
"""

import math
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import pyengine as pe  # noqa: E402
from pyengine.estimators.probes import NoiseCovarianceRecord, read_noise_covariance  # noqa: E402
from pyengine.estimators.state_noise import StateNoiseResult, line_fit, power_exponent, state_noise  # noqa: E402
from pyengine.landscape import (  # noqa: E402
    CurvatureResult,
    HessianProbe,
    curvature_result,
    hessian_spectrum,
    hessian_topk,
    noise_covariance,
    snapshot_curvature,
    subspace_overlap,
)
from pyengine.record import NoiseProbe, Recorder  # noqa: E402
from pyengine.store import TrajectoryWriter, open_trajectory  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

D, N, B = 6, 512, 64


def half_mse(out, y):
    return 0.5 * F.mse_loss(out.squeeze(-1), y)


@pytest.fixture(scope="module")
def lsq():
    """A heteroscedastic least-squares problem, its model at the minimum, and the closed forms."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=gen, dtype=torch.float64) * torch.linspace(0.5, 2.0, D, dtype=torch.float64)
    noise = torch.randn(N, generator=gen, dtype=torch.float64) * (0.2 + x[:, 0].abs())
    y = x @ torch.linspace(-1, 1, D, dtype=torch.float64) + noise
    w_star = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]
    model = torch.nn.Linear(D, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(w_star[None, :])
    xn, yn = x.numpy(), y.numpy()
    return model, (x, y), xn, yn, w_star.numpy()


def _per_sample_cov(xn, yn, w):
    g = xn * (xn @ w - yn)[:, None]  # (n, d) per-sample gradients
    mean = g.mean(0)
    return (g.T @ g - len(g) * np.outer(mean, mean)) / (len(g) - 1), mean


def test_hessian_of_least_squares_is_xtx_over_n(lsq):
    model, data, xn, _, _ = lsq
    h = xn.T @ xn / N
    np.testing.assert_allclose(hessian_topk(model, half_mse, data, k=D), np.linalg.eigvalsh(h)[::-1], rtol=1e-10)


@pytest.mark.parametrize("at_minimum", [True, False])
def test_per_sample_covariance_is_exactly_s_over_b(lsq, at_minimum):
    """cov_batch_size=1: the covariance of the n per-sample gradients, rescaled by 1/b, is
    S/b exactly, with S = (1/(n−1)) Σ r_k² x_k x_kᵀ at the minimum and the mean term
    n ḡḡᵀ subtracted elsewhere."""
    model, data, xn, yn, w_star = lsq
    w = w_star if at_minimum else w_star + 0.3
    with torch.no_grad():
        model.weight.copy_(torch.as_tensor(w)[None, :])
    probe = NoiseProbe(data, B, loss_fn=half_mse, cov_k=D + 2, cov_batch_size=1)
    probe.run(model, list(model.parameters()), step=1)
    s, mean = _per_sample_cov(xn, yn, w)
    if at_minimum:
        np.testing.assert_allclose(mean, 0, atol=1e-12)
        r = yn - xn @ w
        np.testing.assert_allclose(s, (xn * r[:, None] ** 2).T @ xn / (N - 1), rtol=1e-12)
    exact = np.linalg.eigvalsh(s / B)[::-1]
    row = probe.take_row()
    np.testing.assert_allclose(row["cov_eigenvalues"][:D], exact, rtol=1e-9)
    assert np.isnan(row["cov_eigenvalues"][D:]).all()  # a thin SVD of n × D has D singular values
    assert row["cov_trace"] == pytest.approx(np.trace(s) / B, rel=1e-12)
    assert row["cov_participation"] == pytest.approx(exact.sum() ** 2 / (exact ** 2).sum(), rel=1e-9)
    assert row["cov_rank"] == D
    loss = 0.5 * np.mean((xn @ w - yn) ** 2)
    assert row["loss"] == pytest.approx(loss, rel=1e-9)
    with torch.no_grad():
        model.weight.copy_(torch.as_tensor(w_star)[None, :])


def test_minibatch_covariance_matches_the_partition_and_s_over_b_on_average(lsq):
    """The m = n/b minibatch gradients of one partition: the stored spectrum is that of
    (1/(m−1)) Σ U_i U_iᵀ computed directly; over 200 random partitions the traces average
    to tr(S)/b within 4 standard errors."""
    model, data, xn, yn, w_star = lsq
    params = list(model.parameters())
    s, _ = _per_sample_cov(xn, yn, w_star)
    traces = []
    for seed in range(200):
        probe = NoiseProbe(data, B, loss_fn=half_mse, seed=seed, cov_k=D)
        probe.run(model, params, step=seed)
        row = probe.take_row()
        traces.append(row["cov_trace"])
        if seed == 0:
            xs, ys = (t.numpy() for t in probe.data)
            g = np.stack([(xs[i:i + B] * (xs[i:i + B] @ w_star - ys[i:i + B])[:, None]).mean(0)
                          for i in range(0, N, B)])
            u = g - g.mean(0)
            direct = np.linalg.eigvalsh(u.T @ u / (len(g) - 1))[::-1]
            np.testing.assert_allclose(row["cov_eigenvalues"], direct, rtol=1e-9)
            assert row["cov_rank"] == D and probe.attrs["cov_gradients"] == N // B
    traces = np.array(traces)
    assert abs(traces.mean() - np.trace(s) / B) <= 4 * traces.std(ddof=1) / math.sqrt(len(traces))


def test_alignment_on_least_squares_against_dense(lsq):
    """At the minimum, with the exact per-sample covariance: the overlap of the top-3
    eigenspaces of Σ = S/b and H = XᵀX/n, tr(HΣ) (exact: D Hessian-vector products) and
    tr Σ equal their dense values; tr H (Hutchinson) is within 4 of its exact SE."""
    model, data, xn, yn, w_star = lsq
    h = xn.T @ xn / N
    s, _ = _per_sample_cov(xn, yn, w_star)
    sigma = s / B
    noise = NoiseProbe(data, B, loss_fn=half_mse, cov_batch_size=1)
    probe = HessianProbe(data, loss_fn=half_mse, k=3, density=4, density_steps=D, noise=noise)
    probe.run(model, list(model.parameters()), step=5)
    row = probe.take_row()
    vh, vs = np.linalg.eigh(h)[1][:, ::-1][:, :3], np.linalg.eigh(sigma)[1][:, ::-1][:, :3]
    assert row["align_k"] == 3
    assert row["overlap"] == pytest.approx((np.linalg.norm(vs.T @ vh) ** 2) / 3, rel=1e-8)
    assert row["hd_trace"] == pytest.approx(np.trace(h @ sigma), rel=1e-10) and row["hd_trace_se"] == 0
    assert row["noise_trace"] == pytest.approx(np.trace(sigma), rel=1e-12)
    sd = math.sqrt(2 * ((h ** 2).sum() - (np.diag(h) ** 2).sum()))
    assert abs(row["trace"] - np.trace(h)) <= 4 * sd / 2
    nodes = row["slq_nodes"].reshape(4, D)  # D steps in D dimensions: the nodes are the eigenvalues
    np.testing.assert_allclose(nodes, np.tile(np.linalg.eigvalsh(h), (4, 1)), rtol=1e-9)


def test_subspace_overlap_and_covariance_checks():
    e = torch.eye(5, dtype=torch.float64)
    theta = 0.3
    b = torch.stack([math.cos(theta) * e[0] + math.sin(theta) * e[2], e[1]])
    assert subspace_overlap(e[:2], b) == pytest.approx((1 + math.cos(theta) ** 2) / 2)
    assert subspace_overlap(e[:1], e[:4]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        noise_covariance(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="cov_batch_size"):
        NoiseProbe((torch.zeros(8, 2), torch.zeros(8)), 2, cov_batch_size=5)
    with pytest.raises(TypeError, match="noise must be a NoiseProbe"):
        HessianProbe((torch.zeros(8, 2), torch.zeros(8)), noise="noise")


# -- in a recorder ----------------------------------------------------------------------------


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _toy(n=128, seed=5):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def _train(model, steps, rec=None):
    x, y = _toy(256, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(1)
    rows = []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (32,), generator=gen)
        opt.zero_grad()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        if rec is not None:
            rec.step(loss)
        rows.append(torch.cat([p.detach().flatten() for p in model.parameters()]).clone())
    return torch.stack(rows).numpy()


def _probes(order):
    noise = NoiseProbe(_toy(), batch_size=16, every=4, cov_k=5)
    hessian = HessianProbe(_toy(), k=3, every=4, density=2, density_steps=8, noise=noise)
    return (noise, hessian) if order == "noise first" else (hessian, noise)


@pytest.mark.parametrize("order", ["noise first", "hessian first"])
def test_probes_in_a_recorder_leave_training_unchanged_and_share_the_covariance(tmp_path, order, monkeypatch):
    calls = []
    original = NoiseProbe._gradients
    monkeypatch.setattr(NoiseProbe, "_gradients", lambda self, *a: calls.append(1) or original(self, *a))
    model_a, model_b = _mlp(), _mlp()
    torch.manual_seed(7)
    with Recorder(model_a, tmp_path / "a.h5", probes=_probes(order)) as rec:
        rows_a = _train(model_a, 12, rec)
        rng_a = torch.rand(3)
    torch.manual_seed(7)
    rows_b = _train(model_b, 12)
    np.testing.assert_array_equal(rows_a, rows_b)
    assert torch.equal(rng_a, torch.rand(3))  # the RNG after training with probes is the one without
    assert len(calls) == 3  # one set of minibatch gradients per probe step, shared by both probes
    with open_trajectory(tmp_path / "a.h5") as traj:
        noise, hess = read_noise_covariance(traj), traj.group("hessian")
        np.testing.assert_array_equal(noise.steps, [4, 8, 12])
        assert noise.eigenvalues.shape == (3, 5) and np.isnan(noise.eigenvalues[:, 7:]).all()
        np.testing.assert_array_equal(hess["noise_trace"][:], noise.trace)  # the same Σ, computed once
        assert hess["slq_nodes"].shape == (3, 16) and (hess["align_k"][:] == 3).all()
    curv = curvature_result(tmp_path / "a.h5")
    assert isinstance(curv, CurvatureResult) and np.all((curv.overlap >= 0) & (curv.overlap <= 1))
    assert np.all(curv.near_zero_lo <= curv.near_zero + 1e-12) and np.all(curv.near_zero <= curv.near_zero_hi + 1e-12)
    assert np.isfinite(curv.trace_ratio).all() and curv.density.shape[0] == 3


def test_spectrum_at_a_stored_snapshot_reproduces_the_probe(tmp_path):
    model = _mlp()
    path = tmp_path / "run.h5"
    with Recorder(model, path, probes=list(_probes("noise first"))) as rec:
        _train(model, 8, rec)
    stored = curvature_result(path)
    noise = NoiseProbe(_toy(), batch_size=16, every=4, cov_k=5)
    fresh = snapshot_curvature(model, F.cross_entropy, _toy(), path, [3, 7], density=2, density_steps=8, k=3,
                               noise=noise)  # not stored: the probe's rows stay
    res = hessian_spectrum(model, F.cross_entropy, _toy(), path, [3, 7], k=3, density=2, density_steps=8,
                           noise=noise)
    again = curvature_result(path)
    np.testing.assert_array_equal(res.steps, [4, 8])
    np.testing.assert_array_equal(fresh.steps, [4, 8])
    for name in ("trace", "overlap", "noise_trace", "hd_trace", "near_zero", "lambda_min"):
        np.testing.assert_allclose(getattr(again, name), getattr(stored, name), rtol=2e-3, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(getattr(fresh, name), getattr(again, name), rtol=1e-12, err_msg=name)


def test_analysis_reads_the_new_rows_and_draws_their_figures(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    model = _mlp()
    path = tmp_path / "run.h5"
    with Recorder(model, path, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                  probes=list(_probes("noise first"))) as rec:
        _train(model, 12, rec)
    res = pe.analyze(path, window=6, lags=4, progress=False,
                     only=["noise", "noise_covariance", "curvature", "state_noise", "hessian"])
    assert {"noise_covariance", "curvature", "state_noise", "hessian"} <= set(res.results), res.skipped
    assert isinstance(res["noise_covariance"], NoiseCovarianceRecord)
    assert isinstance(res["state_noise"], StateNoiseResult) and res["state_noise"].lr == 0.1
    out = res.save(tmp_path / "out")
    html = (out / "index.html").read_text()
    for name in ("noise_covariance", "curvature", "state_noise"):
        assert f"figures/{name}.png" in html


KILLED_CHILD = textwrap.dedent("""
    import sys
    import torch
    import torch.nn.functional as F
    from pyengine.landscape import HessianProbe
    from pyengine.record import NoiseProbe, Recorder
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    gen = torch.Generator().manual_seed(5)
    x, y = torch.randn(64, 4, generator=gen), torch.randint(0, 3, (64,), generator=gen)
    noise = NoiseProbe((x, y), batch_size=16, every=2, cov_k=4)
    probes = [noise, HessianProbe((x, y), k=2, every=2, density=2, density_steps=6, noise=noise)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(model, sys.argv[1], chunk_steps=2, flush_seconds=0.0, probes=probes) as rec:
        for step in range(1, 10_000):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            rec.step(loss)
            print(rec.n_flushed, flush=True)
""")


def test_a_killed_run_keeps_the_new_probe_rows(tmp_path):
    """SIGKILL while recording: the file opens and every /noise and /hessian row written holds
    the covariance, density and alignment columns, complete."""
    path = tmp_path / "killed.h5"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(path)], stdout=subprocess.PIPE, text=True,
                          env=env) as child:
        try:
            for line in child.stdout:
                if int(line) >= 12:
                    break
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
    curv = curvature_result(path)
    with open_trajectory(path) as traj:
        cov = read_noise_covariance(traj)
        assert traj.n_snapshots >= 12
        assert cov.steps[-1] <= traj.steps[-1] + 2  # rows never lag their snapshot by more than a probe
    assert len(curv.steps) >= 5 and len(cov.steps) >= 5
    assert np.isfinite(cov.trace).all() and np.isfinite(cov.eigenvalues[:, :3]).all()
    assert np.isfinite(curv.trace).all() and np.isfinite(curv.overlap).all() and curv.nodes.shape[1:] == (2, 6)


# -- state-dependent noise --------------------------------------------------------------------


def _state_file(path, with_cov=True):
    """Snapshots w_t = w* + d_t u, probe traces σ_g + σ_H d_t², losses L* + ½ h d_t²."""
    p, lr, sigma_g, sigma_h, h = 40, 0.05, 0.3, 2.0, 0.8
    rng = np.random.default_rng(0)
    w_star, u = rng.standard_normal(p), rng.standard_normal(p)
    u /= np.linalg.norm(u)
    steps = np.arange(1, 101)
    d = 3.0 * np.exp(-steps / 30)
    d[-1] = 0.0
    weights = w_star + d[:, None] * u
    probe_steps = np.arange(10, 101, 10)
    dp = d[probe_steps - 1]
    with TrajectoryWriter(path, p, dtype=np.float64, attrs={"optimizer": {"param_groups": [{"lr": lr}]}}) as w:
        w.append(weights, steps, 1.0 + 0.5 * h * d ** 2)
        rows = {"step": probe_steps, "alpha": np.full(10, 1.8), "grad_norm": np.ones(10)}
        trace = sigma_g + sigma_h * dp ** 2
        if with_cov:
            rows.update(cov_trace=trace, loss=1.0 + 0.5 * h * dp ** 2, cov_participation=np.full(10, 4.0))
        rows["noise_norm"] = np.sqrt(trace * 3 / 4)  # m = 4: tr Σ = noise_norm² · m/(m − 1)
        w.write_group("noise", rows, {"n_minibatches": 4, "batch_size": 8})
    return p, lr, sigma_g, sigma_h, h


def test_state_noise_recovers_a_planted_quadratic(tmp_path):
    p, lr, sigma_g, sigma_h, h = _state_file(tmp_path / "s.h5")
    res = state_noise(tmp_path / "s.h5")
    assert res.final_step == 100 and res.snapshot_steps.tolist() == list(range(10, 101, 10))
    assert res.sigma_g == pytest.approx(sigma_g, rel=1e-9) and res.sigma_h == pytest.approx(sigma_h, rel=1e-9)
    assert res.r2_distance == pytest.approx(1.0)
    assert res.c_loss == pytest.approx(2 * sigma_h / h, rel=1e-9)
    assert res.kappa_eq9 == pytest.approx(2 * p / (lr * 2 * sigma_h / h), rel=1e-9)  # = P h/(η σ_H)
    assert res.kappa_support == pytest.approx(2 * 4.0 / (lr * 2 * sigma_h / h), rel=1e-9)
    assert res.kappa_marginal == pytest.approx(res.kappa_eq9 - (p - 1) / 2)
    assert math.isfinite(res.kappa_entries) and np.isnan(res.kappa_distance)  # no /hessian trace here
    assert 0 < res.distance_exponent < 2 and math.isfinite(res.loss_exponent)  # σ_g > 0 flattens d² near w*
    old = tmp_path / "old.h5"
    _state_file(old, with_cov=False)
    legacy = state_noise(old)  # files before cov_trace: tr Σ from noise_norm, no losses
    assert legacy.sigma_h == pytest.approx(sigma_h, rel=1e-9) and np.isnan(legacy.c_loss)


def test_line_fit_and_too_few_probes(tmp_path):
    fit = line_fit(np.arange(5.0), 2 + 3 * np.arange(5.0) + np.array([0.1, -0.1, 0, 0.1, -0.1]))
    assert fit.slope == pytest.approx(3.0, abs=0.1) and fit.slope_se > 0 and 0.99 < fit.r2 < 1
    with pytest.raises(ValueError, match="at least 3 points"):
        line_fit(np.ones(5), np.arange(5.0))
    x = np.geomspace(1e-3, 1, 7)  # a trace spanning decades: the relative fit weighs each point alike
    rel = line_fit(x, 0.01 + 2 * x, relative=True)
    assert rel.intercept == pytest.approx(0.01, rel=1e-9) and rel.slope == pytest.approx(2, rel=1e-9)
    assert power_exponent(x, 3 * x ** 1.7) == pytest.approx((1.7, 0.0), abs=1e-9)
    path = tmp_path / "few.h5"
    with TrajectoryWriter(path, 3) as w:
        w.append(np.zeros((4, 3)), np.arange(4), np.ones(4))
        w.write_group("noise", {"step": [1, 2], "alpha": [1.0, 1.0], "grad_norm": [1.0, 1.0],
                                "noise_norm": [1.0, 1.0]})
    with pytest.raises(ValueError, match="needs 3"):
        state_noise(path)


# -- results in Python -------------------------------------------------------------------------


def test_results_have_reprs_tables_exports_and_plots(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _state_file(tmp_path / "s.h5")
    state = state_noise(tmp_path / "s.h5")
    model = _mlp()
    with Recorder(model, tmp_path / "r.h5", probes=list(_probes("noise first"))) as rec:
        _train(model, 12, rec)
    curv = curvature_result(tmp_path / "r.h5")
    with open_trajectory(tmp_path / "r.h5") as traj:
        cov = read_noise_covariance(traj)
    for res, panels in ((state, 2), (curv, 3), (cov, 2)):
        assert len(repr(res).splitlines()) <= 15 and len(repr(res)) <= 1500
        assert len(res.summary()) == (1 if res is state else 3)
        assert len(res.to_pandas()) > 0 and len(res.to_xarray().data_vars) > 0
        res.to_json()
        assert len(res.plot()) == panels
        plt.close("all")
    assert "nodes" not in curv.to_dict() and curv.to_xarray()["density"].dims == ("step", "eigenvalue")
    assert cov.rank_fraction.shape == (3,) and cov.diffusion_eigenvalues.shape == (3, 5)
