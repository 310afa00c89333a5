import numpy as np
import pytest

import pyengine as pe
from pyengine import config, reference
from pyengine.engine import LagBandAccumulator, RunMeta, as_source, run, run_block

CPU_BACKENDS = [b for b in ("cpp", "numba", "numpy") if pe.backends()[b].available]


def walk(rng, n=400, p=23, offset=0.0, step=1.0, dtype=np.float64):
    return (offset + step * rng.standard_normal((n, p)).cumsum(axis=0)).astype(dtype)


def expected(x, res, origins):
    stride = res.settings["stride"]
    return np.array([
        reference.time_averaged_msd(x, (tw - 0) // stride, res.window // stride, res.lags // stride, origins)
        for tw in res.t_w
    ])


@pytest.mark.parametrize("origins", ["window", "within"])
@pytest.mark.parametrize("method", ["spectral", "lagband"])
def test_msd_matches_direct_reference(rng, origins, method):
    x = walk(rng)
    res = pe.msd(x, window=100, origins=origins, method=method)
    want = expected(x, res, origins)
    np.testing.assert_allclose(res.msd, want, rtol=1e-9, equal_nan=True)
    assert res.msd.shape == (4, res.lags.size)  # one window plan: the last window is whole for both origins


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_backends_agree_on_log_lags(rng, backend):
    x = walk(rng, dtype=np.float32)
    res = pe.msd(x, window=150, lags=12, method="lagband", backend=backend)
    np.testing.assert_allclose(res.msd, expected(x, res, "window"), rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("method", ["spectral", "lagband"])
def test_cancellation_large_weights_tiny_steps(rng, method):
    # |w| ~ 1e3 per coordinate, steps 1e-4: the reference point is subtracted before products.
    x = walk(rng, n=512, p=32, offset=1e3, step=1e-4)
    res = pe.msd(x, window=256, lags=[1, 2, 3, 50, 255], method=method, origins="within")
    np.testing.assert_allclose(res.msd, expected(x, res, "within"), rtol=1e-6)


def test_end_of_run_drops_origins_and_counts_them(rng):
    x = walk(rng, n=100, p=3)
    res = pe.msd(x, window=40, t_w=[60], lags=[1, 39, 40], method="lagband")
    assert res.counts.tolist() == [[39, 1, 0]]  # origins 60..98 for lag 1; lag 40 passes the run
    assert np.isnan(res.msd[0, 2]) and np.isfinite(res.msd[0, :2]).all()
    spec = pe.msd(x, window=40, t_w=[60], lags=[1, 39, 40], method="spectral")
    np.testing.assert_allclose(spec.msd, res.msd, rtol=1e-10, equal_nan=True)
    assert spec.counts.tolist() == res.counts.tolist()


def test_nonaveraged_msd_eq4(rng):
    x = walk(rng, n=200, p=7)
    for method in ("spectral", "lagband"):
        res = pe.msd(x, window=50, t_w=[20], lags=[1, 5, 49], method=method)
        want = [np.sum((x[20 + l] - x[20]) ** 2) / 7 for l in (1, 5, 49)]
        np.testing.assert_allclose(res.nonaveraged[0], want, rtol=1e-9)


def test_known_answers_ballistic_and_brownian_exponents(rng):
    n, p = 2048, 64
    ballistic = np.arange(n)[:, None] * rng.standard_normal(p)[None, :]
    res = pe.msd(ballistic, window=None, lags=16, method="spectral")
    slope = np.polyfit(np.log(res.lags), np.log(res.msd[0]), 1)[0]
    assert abs(slope - 2) < 1e-6
    brown = walk(rng, n=n, p=256)
    res = pe.msd(brown, window=1024, lags=[1, 2, 4, 8, 16, 32, 64], method="lagband")
    slope = np.polyfit(np.log(res.lags), np.log(res.msd.mean(axis=0)), 1)[0]
    assert abs(slope - 1) < 0.05


def test_steps_every_k_and_lags_in_steps(rng):
    x = walk(rng, n=120, p=5)
    src = as_source(x)
    src.steps = 10 + 5 * np.arange(120)  # logged every 5 steps from step 10
    res = pe.msd(src, window=200, lags=[5, 25], method="lagband")
    assert res.t_w.tolist() == [10, 210, 410] and res.lags.tolist() == [5, 25] and res.window == 200
    np.testing.assert_allclose(res.msd[1], reference.time_averaged_msd(x, 40, 40, [1, 5]), rtol=1e-10)
    with pytest.raises(ValueError, match="multiples of the snapshot interval"):
        pe.msd(src, window=200, lags=[7])


def test_many_blocks_and_workers_give_the_same_answer(rng, monkeypatch):
    x = walk(rng, n=300, p=101)
    one = pe.msd(x, window=100, lags=9, method="lagband", block_cols=1000)
    for block_cols, workers in ((7, 1), (10, 3)):
        many = pe.msd(x, window=100, lags=9, method="lagband", block_cols=block_cols, workers=workers)
        np.testing.assert_allclose(many.msd, one.msd, rtol=1e-12)
    monkeypatch.setattr(config, "BLOCK_BYTES", 300 * 8 * 4)  # 4 columns a block
    spec = pe.msd(x, window=100, method="spectral")
    np.testing.assert_allclose(spec.msd, pe.msd(x, window=100, method="spectral", block_cols=1000).msd, rtol=1e-10)


@pytest.mark.parametrize("workers", [1, 2])
def test_file_blocks_read_into_reused_buffers(tmp_path, rng, workers):
    # 23 blocks of 8 columns through a file: finished blocks' buffers are read into again,
    # and no block is overwritten while an accumulator still works on it.
    from pyengine.store import write_trajectory

    x = walk(rng, n=120, p=180).astype(np.float32)
    src = as_source(write_trajectory(tmp_path / "w.h5", x, np.arange(120), np.zeros(120), chunk_params=8))
    read, reused = src.read, []

    def counting_read(j0, j1, out=None):
        reused.append(out is not None)
        return read(j0, j1, out)

    class Checked(LagBandAccumulator):
        def update(self, state, block, cols):
            np.testing.assert_array_equal(block, x[:, cols])
            super().update(state, block, cols)

    src.read = counting_read
    got = run(src, [Checked((1, 5, 40))], block_cols=8, workers=workers)[0]
    want = run(x, [LagBandAccumulator((1, 5, 40))], block_cols=8)[0]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert len(reused) == 23 and sum(reused) >= 23 - 1 - (config.PREFETCH + 1 + workers)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("threads", [1, 3])
def test_spectral_backends_column_parts_and_batches_agree(rng, monkeypatch, backend, threads):
    # One column part per thread, one column per FFT batch: the same sums in another order.
    monkeypatch.setattr(config, "THREADS", threads)
    monkeypatch.setattr(config, "FFT_BATCH_BYTES", 1)
    x = walk(rng, p=23, dtype=np.float32)
    for origins in ("window", "within"):  # two transforms per column, then one
        res = pe.msd(x, window=100, origins=origins, method="spectral", backend=backend)
        np.testing.assert_allclose(res.msd, expected(x, res, origins), rtol=1e-9, equal_nan=True)


def test_fresh_state_per_part_and_merge():
    x = np.random.default_rng(1).standard_normal((50, 10))
    acc = LagBandAccumulator((1, 3))
    meta = RunMeta(50, 10, np.dtype(np.float64), np.arange(50))
    a = run_block([acc], meta, x[:, :4], 0, 4)[0]
    b = run_block([acc], meta, np.ascontiguousarray(x[:, 4:]), 4, 10)[0]
    assert a.band is not b.band
    whole = run(x, [acc], block_cols=3)[0]
    np.testing.assert_allclose(acc.finalize(acc.merge(a, b)), whole, rtol=1e-12)


def test_bad_requests_are_rejected(rng):
    x = walk(rng, n=100, p=3)
    with pytest.raises(ValueError, match="needs 2 … 100 snapshots"):
        pe.msd(x, window=500)
    with pytest.raises(ValueError, match="origins must be"):
        pe.msd(x, window=10, origins="both")
    with pytest.raises(ValueError, match="method must be"):
        pe.msd(x, window=10, method="magic")
    with pytest.raises(ValueError, match="outside the run"):
        pe.msd(x, window=10, t_w=[95])
    with pytest.raises(ValueError, match="shorter than the window"):
        pe.msd(x, window=10, lags=[10], origins="within")
    with pytest.raises(ValueError, match="2 snapshots"):
        pe.msd(x[:1], window=None)
    with pytest.raises(ValueError, match="2 snapshots"):
        pe.msd([[1.0, 2.0]], window=None)  # lists are arrays
    with pytest.raises(TypeError, match="trajectory"):
        pe.msd({"w": 1}, window=None)
    with pytest.raises(TypeError, match="integer"):
        pe.msd(x, window=2.5)
    with pytest.raises(TypeError, match="integers"):
        pe.msd(x, window=10, lags=[2.5])


def test_result_to_dict_and_plot(rng):
    import matplotlib

    matplotlib.use("Agg")
    res = pe.msd(walk(rng, n=60, p=2), window=20)
    d = res.to_dict()
    assert d["method"] in ("spectral", "lagband") and len(d["msd"]) == 3
    assert res.plot() is not None



@pytest.mark.parametrize("origins", ["window", "within"])
@pytest.mark.parametrize("t_w", [None, (0, 37, 150)])
def test_a_labels_band_sums_equal_the_prefix_sum_conversion(rng, origins, t_w):
    """The per-label reduction of the band (masked window sums, for named groups) gives the
    MSD and Eq. 4 numerator of the whole-band conversion, cut lags included."""
    from pyengine.estimators.msd import _BandSums, _from_band
    from pyengine.plan import make_plan

    x = rng.standard_normal((200, 30)).cumsum(axis=0)
    lags = [1, 3, 20, 49] + ([120] if origins == "window" else [])  # "within": lags shorter than the window
    plan = make_plan(np.arange(200), 50, t_w=t_w, lags=lags, origins=origins)
    band = reference.lag_band(x, plan.lags, np.zeros((plan.lags.size, 200)))
    msd, _, single = _from_band(plan, band, 1)
    got_msd, got_single = _BandSums(plan)(band)
    np.testing.assert_allclose(got_msd, msd, rtol=1e-12)
    np.testing.assert_allclose(got_single, single, rtol=1e-12)
    assert np.isfinite(got_msd[0]).all()
