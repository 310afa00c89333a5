"""The Dask path on a LocalCluster with 2 worker processes."""

import logging
import os
from dataclasses import dataclass

import numpy as np
import pytest

import pyengine as pe
from pyengine.engine import LagBandAccumulator, run
from pyengine.store import write_trajectory

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture
def trajectory(tmp_path):
    x = np.random.default_rng(3).standard_normal((120, 77)).cumsum(axis=0).astype(np.float32)
    path = write_trajectory(tmp_path / "run.h5", x)
    return path, x


def test_dask_equals_threaded_run(client, trajectory):
    path, _ = trajectory
    local = pe.msd(path, window=40, lags=7, method="lagband", block_cols=10)
    for method in ("lagband", "spectral"):
        on_dask = pe.msd(str(path), window=40, lags=7, method=method, block_cols=10, scheduler=client)
        np.testing.assert_allclose(on_dask.msd, local.msd, rtol=1e-12 if method == "lagband" else 1e-8)
    by_address = pe.msd(path, window=40, lags=7, method="lagband", block_cols=25, scheduler=client.scheduler.address)
    np.testing.assert_allclose(by_address.msd, local.msd, rtol=1e-12)


def _worker_malloc_state():
    import pyengine.engine.distributed as d

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), d._MALLOC_TUNED


def test_workers_reuse_chunk_buffers(client, trajectory):
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in the workers; the first task restores
    # glibc's reuse of chunk-sized blocks (bench/bench_dask.py measures the effect).
    path, _ = trajectory
    pe.msd(str(path), window=40, lags=3, method="lagband", scheduler=client)
    states = client.run(_worker_malloc_state)
    assert all(env is not None for env, _ in states.values()), "the nanny no longer sets MALLOC_TRIM_THRESHOLD_"
    assert any(tuned for _, tuned in states.values()), "no worker that ran a task tuned malloc"


@dataclass(frozen=True)
class DieOnceAccumulator(LagBandAccumulator):
    """Kills the worker process the first time it sees column 0 (a hard crash mid-run)."""

    marker: str = ""

    def update(self, state, block, cols):
        if cols.start == 0 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        super().update(state, block, cols)


def test_killed_worker_is_retried_and_result_is_exact(client, trajectory, tmp_path):
    path, x = trajectory
    acc = DieOnceAccumulator((1, 5), marker=str(tmp_path / "died"))
    (band,) = run(path, [acc], block_cols=20, scheduler=client)
    assert os.path.exists(tmp_path / "died")  # a worker really died
    (want,) = run(x, [LagBandAccumulator((1, 5))], backend="numpy")
    np.testing.assert_allclose(band, want, rtol=1e-6)


def test_missing_file_on_worker_is_a_clear_error(client, trajectory):
    path, _ = trajectory
    from pyengine.engine.distributed import run_dask
    from pyengine.engine.accumulator import RunMeta

    meta = RunMeta(120, 77, np.dtype(np.float32), np.arange(120))
    with pytest.raises(FileNotFoundError, match="every worker needs the trajectory file"):
        run_dask(str(path) + ".moved", [LagBandAccumulator((1,))], meta, [(0, 77)], client)


def test_arrays_are_refused_on_dask(client):
    with pytest.raises(ValueError, match="pass a file path"):
        pe.msd(np.zeros((10, 2)), window=None, scheduler=client)


@dataclass(frozen=True)
class MappedOnlyAccumulator(LagBandAccumulator):
    """Fails a task that is handed a copied block instead of the file mapped in place."""

    def update(self, state, block, cols):
        if block.flags.writeable:
            raise AssertionError(f"columns {cols} were copied, not mapped")
        super().update(state, block, cols)


@pytest.mark.skipif(not pe.backends()["cpp"].available, reason="mapping needs the C++ extension")
def test_tasks_map_their_chunk_columns_one_by_one(client, tmp_path):
    # Chunks of 64 x 1024 float32 (256 KiB) are page aligned by the writer; one task takes
    # all six chunk columns and maps each in turn, the edge column of 452 parameters included.
    x = np.random.default_rng(5).standard_normal((130, 5572)).cumsum(axis=0).astype(np.float32)
    path = write_trajectory(tmp_path / "aligned.h5", x, chunk_steps=64, chunk_params=1024)
    (band,) = run(path, [MappedOnlyAccumulator((1, 7, 100))], scheduler=client)
    (want,) = run(x, [LagBandAccumulator((1, 7, 100))], backend="numpy")
    np.testing.assert_allclose(band, want, rtol=1e-6)


def test_analyze_on_dask_equals_the_local_analysis_field_by_field(client, tmp_path):
    from resultcheck import assert_same

    x = np.random.default_rng(5).standard_normal((400, 90)).cumsum(axis=0)
    path = write_trajectory(tmp_path / "run.h5", x.astype(np.float32), loss=5 + 0.1 * x[:, 0])
    local = pe.analyze(path, window=100, lags=10, block_cols=20, progress=False)
    on_dask = pe.analyze(str(path), window=100, lags=10, block_cols=20, scheduler=client, progress=False)
    assert set(on_dask.results) == set(local.results) >= {"msd", "diffusion", "path", "msl", "increments", "tails"}
    for name in local.results:
        # sd across coordinates from sums of squares: ~1e-8 where the sd is 0 (lag 0 of the autocorrelation);
        # the pair statistics' jackknife parts are float32 sums, added in another order on Dask
        assert_same(on_dask[name], local[name], where=name, rtol=1e-6, atol=1e-7)
    assert_same(on_dask["msl"], pe.msl(str(path), window=100, scheduler=client, progress=False), where="msl", rtol=1e-6)
