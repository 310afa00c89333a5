"""pytest-benchmark suites for single kernels: ``pytest bench/test_bench_kernels.py``.

Setup (data) is built once per module; each benchmark checks correctness before timing.
"""

import numpy as np
import pytest

import pyengine as pe
from pyengine.kernels import lag_band

pytest.importorskip("pytest_benchmark")
BACKENDS = [b for b in ("cpp", "numba", "numpy") if pe.backends()[b].available]


@pytest.fixture(scope="module")
def walk():
    return np.random.default_rng(0).standard_normal((2048, 4096), dtype=np.float32).cumsum(axis=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_lags", [1, 16, 64])
def test_lag_band(benchmark, walk, backend, n_lags):
    lags = np.unique(np.geomspace(1, 1024, n_lags).round().astype(np.int64))
    ref = lag_band(walk[:, :64], lags, backend="numpy")
    np.testing.assert_allclose(lag_band(walk[:, :64], lags, backend=backend), ref, rtol=1e-6)
    benchmark(lag_band, walk, lags, backend=backend)


@pytest.mark.parametrize("method", ["spectral", "lagband"])
def test_msd_all_lags_one_window(benchmark, walk, method):
    benchmark(pe.msd, walk[:, :1024], window=None, origins="within", method=method, progress=False)
