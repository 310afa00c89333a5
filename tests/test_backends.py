import os
import shutil
import subprocess
import sys

import pytest

import pyengine as pe
from pyengine import dispatch


def test_backends_report_every_name_with_a_reason():
    status = pe.backends()
    assert list(status) == ["cuda", "cpp", "numba", "numpy"]
    assert status["numpy"].available
    for s in status.values():
        assert s.reason


def test_extension_imports_and_selfcheck_passes():
    core = pytest.importorskip("pyengine._core")
    assert core.selfcheck() == 0
    assert "compiler=" in core.build_info()
    assert pe.backends()["cpp"].available


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc: CUDA kernels not compiled")
def test_cuda_module_was_compiled_and_linked():
    cuda = pytest.importorskip("pyengine._cuda", reason="built without CUDA (PYENGINE_CUDA=OFF)")
    n, why = cuda.device_count()
    assert n >= 0 and (n > 0 or why)


def test_resolve_rejects_unknown_and_unavailable():
    with pytest.raises(ValueError, match="backend must be"):
        dispatch.resolve("fortran")
    if not pe.backends()["cuda"].available:
        with pytest.raises(ValueError, match="not available"):
            dispatch.resolve("cuda", on_gpu=True)
    with pytest.raises(ValueError, match="needs a host"):
        dispatch.resolve("numpy", on_gpu=True)
    assert dispatch.resolve("numpy") == "numpy"


def test_import_without_extension_falls_back_and_says_so():
    # Hide the compiled modules, as on a machine where the extension was skipped.
    code = (
        "import sys; sys.modules['pyengine._core'] = None; sys.modules['pyengine._cuda'] = None\n"
        "import numpy as np, pyengine as pe\n"
        "from pyengine.kernels import lag_band\n"
        "s = pe.backends(); assert not s['cpp'].available and 'not built' in s['cpp'].reason\n"
        "x = np.arange(10.0).reshape(5, 2)\n"
        "print(lag_band(x, [1])[0, :2])\n"
    )
    env = dict(os.environ)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 0, res.stderr
    assert "[8. 8.]" in res.stdout
    assert "using the" in res.stderr and "backend" in res.stderr  # said once which backend


def test_analyze_with_the_extension_never_imports_numba(tmp_path):
    """Backends are probed one at a time: with the C++ kernels there, an analysis never pays
    for importing Numba (0.2 s in a fresh process); the file is big enough for page-aligned
    chunks, which the reader maps with the C++ kernels when they are there."""
    pytest.importorskip("pyengine._core")
    path = tmp_path / "walk.h5"
    code = (
        "import sys, numpy as np, pyengine as pe\n"
        "from pyengine.store import write_trajectory\n"
        f"write_trajectory({str(path)!r}, np.random.default_rng(0).standard_normal((256, 1024)).cumsum(axis=0).astype(np.float32))\n"
        f"pe.analyze({str(path)!r}, progress=False)\n"
        "print('numba' in sys.modules)\n"
    )
    # The pyengine this test imported (with its extension), not a source tree in the cwd.
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(pe.__file__)))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env=env)
    assert res.stdout.strip().splitlines()[-1] == "False"
    assert dispatch.available("cpp") and dispatch.available("numpy")


def test_disable_env_switches_backends_off():
    code = "import pyengine as pe; s = pe.backends(); print(s['cpp'].available, s['cpp'].reason)"
    env = dict(os.environ, PYENGINE_DISABLE="cpp")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert res.stdout.startswith("False disabled by PYENGINE_DISABLE")


@pytest.mark.parametrize("user_value", [None, "ACTIVE"])
def test_openmp_threads_sleep_at_barriers_unless_the_user_says_otherwise(user_value):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if user_value:
        env["OMP_WAIT_POLICY"] = user_value
    code = "import os, pyengine; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (user_value or "PASSIVE")
