"""Crash safety of the recorder: SIGKILL at random moments, several seeds.

Each seed starts a recording child with its own chunk size and flush interval, kills it
after a random delay (sometimes before the first step, sometimes mid-write), and checks
that the file validates (every weight scanned) and holds at least every snapshot the
child had reported as flushed, with exact values.
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

from pyengine.store import open_trajectory, validate

FAST_SEEDS = [0, 1, 2]
SLOW_SEEDS = list(range(3, 15))

CHILD = textwrap.dedent("""
    import sys, torch
    from pyengine.record import Recorder
    chunk_steps, flush_seconds, compression = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] or None
    model = torch.nn.Linear(4, 3)
    with Recorder(model, sys.argv[1], chunk_steps=chunk_steps, flush_seconds=flush_seconds,
                  compression=compression) as rec:
        print("ready", rec.n_flushed, flush=True)
        step = 0
        while True:
            step += 1
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(step)
            rec.step(float(step))
            print(step, rec.n_flushed, flush=True)
""")


def _run_and_kill(path, seed):
    rng = np.random.default_rng(seed)
    chunk_steps = int(rng.choice([1, 3, 8, 64]))
    flush_seconds = float(rng.choice([0.0, 0.01, 1e9]))
    compression = str(rng.choice(["", "lz4", "gzip"]))
    delay = float(rng.uniform(0.0, 0.4))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(chunk_steps), str(flush_seconds), compression],
                             stdout=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in child.stdout:
            lines.append(line)
            ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), "the recording child did not start"
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL, f"the child ended on its own: {lines[-3:]}"
    finally:
        child.kill()
        child.wait()
    reader.join(10)
    child.stdout.close()
    flushed = max(int(line.split()[1]) for line in lines if line.endswith("\n"))  # the last may be cut
    return flushed, dict(chunk_steps=chunk_steps, flush_seconds=flush_seconds, compression=compression, delay=delay)


def _check(path, seed):
    flushed, settings = _run_and_kill(path, seed)
    report = validate(path, check_values=True)
    assert report.ok, f"seed {seed} {settings}: {report}"
    with open_trajectory(path) as traj:
        n = traj.n_snapshots
        assert n >= flushed, f"seed {seed} {settings}: {n} snapshots, but {flushed} were reported flushed"
        expected = np.arange(1, n + 1)
        np.testing.assert_array_equal(traj.steps, expected)
        np.testing.assert_array_equal(traj.loss, expected)
        if n:
            weights = traj.read_block(0, traj.n_params)
            np.testing.assert_array_equal(weights, np.repeat(expected[:, None], 15, axis=1).astype(weights.dtype))


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_kill_at_random_moment(tmp_path, seed):
    _check(tmp_path / f"killed{seed}.h5", seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_kill_at_random_moment_more_seeds(tmp_path, seed):
    _check(tmp_path / f"killed{seed}.h5", seed)
