"""Crash safety of the recorder: SIGKILL at random moments and at chosen points, then resume.

A recording child (with an EvalProbe) resumes the file when it exists, records, and is
killed: after a random delay, or by itself at the n-th call of an HDF5 operation (while
the file is created, while a probe row is written, at a flush, while the file closes).
After every kill the file must validate (every weight scanned), match its checksums,
hold at least every snapshot the child had reported flushed and only exact rows, and its
probe rows must be exact and without gaps; the next child resumes it. The last child
records to a fixed step and closes normally: then every snapshot and probe row is there.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pyengine.store import group_rows, open_trajectory, validate, verify  # noqa: E402

EVAL_EVERY = 5
#: Parameters of the child's Linear(4, 3) at step s: s * PATTERN (exact in float32).
PATTERN = np.arange(1, 16, dtype=np.float32) / 16

CHILD = textwrap.dedent("""
    import os, signal, sys
    import h5py, torch
    from pyengine.record import EvalProbe, Recorder

    path, chunk_steps, flush_seconds, compression, kill_at, stop_at = sys.argv[1:7]
    torch.set_num_threads(1)

    def kill_on_call(owner, name, n, only=lambda obj: True):
        original, calls = getattr(owner, name), [0]

        def wrapper(self, *args, **kwargs):
            if only(self):
                calls[0] += 1
                if calls[0] == n:
                    os.kill(os.getpid(), signal.SIGKILL)
            return original(self, *args, **kwargs)
        setattr(owner, name, wrapper)

    point, _, n = kill_at.partition(":")
    targets = {"create": (h5py.Group, "create_dataset"), "flush": (h5py.File, "flush"),
               "close": (h5py.File, "close"), "probe": (h5py.Dataset, "__setitem__")}
    only = {"probe": lambda ds: ds.name.startswith("/eval"), "close": lambda f: f.mode == "r+"}
    if point in targets:
        kill_on_call(*targets[point], int(n), only.get(point, lambda obj: True))

    model = torch.nn.Linear(4, 3)
    gen = torch.Generator().manual_seed(0)
    data = (torch.randn(32, 4, generator=gen), torch.randint(0, 3, (32,), generator=gen))
    pattern = torch.arange(1, 16, dtype=torch.float32) / 16
    with Recorder(model, path, mode="a", chunk_steps=int(chunk_steps), flush_seconds=float(flush_seconds),
                  compression=compression or None, probes=[EvalProbe(data, every=%d)]) as rec:
        print("ready", rec.global_step, rec.n_flushed, flush=True)
        step = rec.global_step
        while step < int(stop_at):
            step += 1
            with torch.no_grad():
                torch.nn.utils.vector_to_parameters(step * pattern, model.parameters())
            rec.step(float(step))
            print(step, rec.n_flushed, flush=True)
""" % EVAL_EVERY)


def _expected_eval_loss(steps):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=gen), torch.randint(0, 3, (32,), generator=gen)
    model = torch.nn.Linear(4, 3)
    losses = []
    with torch.no_grad():
        for step in steps:
            torch.nn.utils.vector_to_parameters(int(step) * torch.from_numpy(PATTERN), model.parameters())
            losses.append(float(torch.nn.functional.cross_entropy(model(x), y)))
    return np.array(losses)


def _run(path, kill_at, stop_at, rng):
    """Run one recording child; kill it after a random delay for ``kill_at="time"``.

    Returns the snapshots the child reported flushed, its settings and its exit code.
    """
    settings = dict(chunk_steps=int(rng.choice([1, 3, 8, 64])), flush_seconds=float(rng.choice([0.0, 0.01, 1e9])),
                    compression=str(rng.choice(["", "lz4", "gzip"])), kill_at=kill_at, delay=float(rng.uniform(0, 0.4)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [str(path), str(settings["chunk_steps"]), str(settings["flush_seconds"]), settings["compression"],
            kill_at, str(stop_at)]
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    started = threading.Event()

    def read():
        for line in child.stdout:
            lines.append(line)
            started.set()
        started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if kill_at == "time":
            assert started.wait(60), "the recording child did not start"
            time.sleep(settings["delay"])
            os.kill(child.pid, signal.SIGKILL)
        code = child.wait(60)
    finally:
        child.kill()
        child.wait()
    reader.join(10)
    child.stdout.close()
    complete = [line for line in lines if line.endswith("\n")]  # the last may be cut
    return max((int(line.split()[-1]) for line in complete), default=0), settings, code


def _check(path, flushed, settings):
    """Every row of the file after a kill: exact, and at least ``flushed`` snapshots. Returns N."""
    if not path.exists():  # killed while the file was created: nothing was flushed
        assert flushed == 0, f"{settings}: no file, but {flushed} snapshots were reported flushed"
        return 0
    report = validate(path, check_values=True)
    assert report.ok, f"{settings}: {report}"
    assert verify(path).ok, f"{settings}: {verify(path)}"
    with open_trajectory(path) as traj:
        n = traj.n_snapshots
        assert n >= flushed, f"{settings}: {n} snapshots, but {flushed} were reported flushed"
        expected = np.arange(1, n + 1)
        np.testing.assert_array_equal(traj.steps, expected)
        np.testing.assert_array_equal(traj.loss, expected)
        np.testing.assert_array_equal(traj.read_block(0, traj.n_params), expected[:, None] * PATTERN)
        rows = group_rows(traj.group("eval"))
    np.testing.assert_array_equal(rows["step"], EVAL_EVERY * np.arange(1, len(rows["step"]) + 1))
    np.testing.assert_allclose(rows["loss_test"], _expected_eval_loss(rows["step"]), rtol=1e-6)
    return n


def _kill_and_resume(path, kills, rng):
    """Kill a child at each of ``kills`` in turn (each resuming the file), then record to the end."""
    n = 0
    for kill_at in kills:
        flushed, settings, code = _run(path, kill_at, n + 12 if kill_at.startswith("close") else 10**9, rng)
        assert code == -signal.SIGKILL, f"{settings}: the child ended with code {code}"
        n = _check(path, flushed, settings)
    stop = n + 3 * EVAL_EVERY + 2
    flushed, settings, code = _run(path, "none", stop, rng)
    assert code == 0, f"{settings}: the resuming child failed with code {code}"
    assert _check(path, flushed, settings) == stop
    with open_trajectory(path) as traj:
        steps = group_rows(traj.group("eval"))["step"]
    np.testing.assert_array_equal(steps, np.arange(EVAL_EVERY, stop + 1, EVAL_EVERY))


@pytest.mark.parametrize("seed", [0, 1])
def test_kill_resume_kill_resume(tmp_path, seed):
    _kill_and_resume(tmp_path / f"killed{seed}.h5", ["time", "time"], np.random.default_rng(seed))


def test_kill_while_creating_writing_probes_and_closing(tmp_path):
    _kill_and_resume(tmp_path / "killed.h5", ["create:4", "probe:2", "flush:7", "close:1"], np.random.default_rng(7))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 14))
def test_kill_resume_more_seeds(tmp_path, seed):
    rng = np.random.default_rng(seed)
    points = ["time", f"probe:{rng.integers(1, 7)}", f"flush:{rng.integers(1, 30)}", "close:1", "time"]
    kills = [f"create:{rng.integers(1, 9)}", *rng.permutation(points)]  # "create" only fires on a new file
    _kill_and_resume(tmp_path / f"killed{seed}.h5", kills, rng)
