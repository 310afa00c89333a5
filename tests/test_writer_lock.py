"""Who may write a trajectory file, and clearing the marks a killed writer left (resume after SIGKILL)."""

import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from pyengine.store import FormatError, TrajectoryWriter, clear_write_flags, open_trajectory, write_trajectory
from pyengine.store._swmr import lookup3, write_flags

P = 6

KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from pyengine.store import TrajectoryWriter
    w = TrajectoryWriter(sys.argv[1], 6, chunk_steps=2)
    for step in range(5):
        w.append([step] * 6, step=step, loss=1.0)
    w._weights.resize(7, axis=0)  # an append interrupted after /weights grew
    w.flush()
    os.kill(os.getpid(), signal.SIGKILL)
""")

FOREIGN_WRITER = textwrap.dedent("""
    import sys, time, h5py
    f = h5py.File(sys.argv[1], "r+")  # a writer that knows nothing of pyengine's lock
    print("open", flush=True)
    time.sleep(60)
""")


def _child(script, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True, env=env)


def test_lookup3_matches_the_published_values_and_hdf5():
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


def test_a_killed_writer_is_resumed(tmp_path):
    path = tmp_path / "killed.h5"
    with _child(KILLED_WRITER, path) as child:
        assert child.wait(60) == -signal.SIGKILL
    assert write_flags(path) != 0
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r+").close()
    with TrajectoryWriter(path, P, mode="a") as w:  # clears the marks, drops the interrupted rows
        assert w.n_snapshots == 5
        w.append([5] * P, step=5, loss=1.0)
    assert write_flags(path) == 0
    with open_trajectory(path) as traj:
        assert traj.n_snapshots == 6 and traj.weights.shape == (6, P) and not traj.warnings
        np.testing.assert_array_equal(traj.read_block(0, P), np.repeat(np.arange(6.0)[:, None], P, axis=1))


READER = textwrap.dedent("""
    import sys
    import pyengine as pe
    traj = pe.open(sys.argv[1])  # holds HDF5's shared lock on the file
    print("open", flush=True)
    sys.stdin.readline()
    traj.refresh()
    print(traj.n_snapshots, flush=True)
""")


def test_a_reader_of_another_process_does_not_block_a_resume(tmp_path):
    path = tmp_path / "killed.h5"
    with _child(KILLED_WRITER, path) as child:
        assert child.wait(60) == -signal.SIGKILL
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen([sys.executable, "-c", READER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True, env=env) as reader:
        try:
            assert reader.stdout.readline() == "open\n"
            with TrajectoryWriter(path, P, mode="a") as w:
                w.append([5] * P, step=5, loss=1.0)
            out, _ = reader.communicate("go\n", timeout=60)
        finally:
            reader.kill()
    assert out == "6\n"


def test_a_live_writer_is_never_cleared(tmp_path):
    path = tmp_path / "live.h5"
    with TrajectoryWriter(path, P) as w:
        w.append(np.zeros(P), step=0, loss=1.0)
        for attempt in (lambda: clear_write_flags(path), lambda: TrajectoryWriter(path, P, mode="a"),
                        lambda: TrajectoryWriter(path, P, overwrite=True)):
            with pytest.raises(BlockingIOError, match="being written by another live process"):
                attempt()
        assert write_flags(path) != 0
    assert not clear_write_flags(path)  # closed cleanly: nothing to clear


@pytest.mark.skipif(not os.path.isdir("/proc/self/fdinfo"), reason="finding other writers needs Linux /proc")
def test_a_writer_without_the_lock_is_found_in_proc(tmp_path):
    path = write_trajectory(tmp_path / "run.h5", np.zeros((3, P)))
    with _child(FOREIGN_WRITER, path) as child:
        try:
            assert child.stdout.readline() == "open\n"
            with pytest.raises(BlockingIOError, match=f"open for writing by process {child.pid}"):
                clear_write_flags(path)
        finally:
            child.kill()
    assert clear_write_flags(path)  # the foreign writer is gone: its marks are cleared
    with open_trajectory(path) as traj:
        assert traj.n_snapshots == 3


def test_damaged_superblocks_are_left_alone(tmp_path):
    path = tmp_path / "bad.h5"
    path.write_bytes(b"not hdf5" * 100)
    with pytest.raises(FormatError, match="no HDF5 superblock"):
        clear_write_flags(path)
    good = write_trajectory(tmp_path / "good.h5", np.zeros((3, P)))
    with open(good, "r+b") as f:
        f.seek(11)
        f.write(b"\x05")  # flags set, checksum no longer matching
    with pytest.raises(FormatError, match="checksum is wrong"):
        clear_write_flags(good)


def test_a_crash_while_creating_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "new.h5"

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(h5py.File, "flush", fail)
    with pytest.raises(KeyboardInterrupt):
        TrajectoryWriter(path, P)
    assert list(tmp_path.iterdir()) == []
