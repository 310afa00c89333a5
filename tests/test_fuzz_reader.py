"""Fuzzing the trajectory reader with malformed files.

A seeded generator breaks a valid file in one or several ways (root attributes of the
wrong type or value, datasets of the wrong shape, dtype or kind, a broken parameter table,
flipped bytes) and the reader must answer with FormatError or OSError, never another
exception (not even another ValueError, such as UnicodeDecodeError) and never a crash;
``validate`` reports instead of raising. Hostile declared sizes are fuzzed under a memory
and time budget in ``test_hostile_files.py``. Every case runs in-process; one batch also runs in
a subprocess, so that a segfault or a hang in the HDF5 layer is caught as well.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
from numpy.lib.recfunctions import repack_fields

from pyengine.store import FormatError, describe, open_trajectory, validate, write_trajectory

N_CASES = int(os.environ.get("PYENGINE_FUZZ_CASES", 150))
N_SUBPROCESS = int(os.environ.get("PYENGINE_FUZZ_SUBPROCESS_CASES", 200))
ACCEPTED = (FormatError, OSError)

_JUNK = [
    0, -1, 2**62, 1.5, np.nan, "", "x" * 300, b"\xff\xfe", np.arange(3), np.zeros((2, 2)), np.array([b"a", b"b"]),
    np.bool_(True), "[1, 2", "{}", "[]", '{"a": 1}', np.int64(1), np.float32(1.0),
]


def _junk_array(rng):
    shape = [(), (0,), (5,), (30,), (30, 1), (2, 3, 4), (30, 7), (31, 7), (0, 7)][rng.integers(9)]
    dtype = ["i1", "i8", "u4", "f2", "f4", "f8", "c16", "?", "S4"][rng.integers(9)]
    return np.zeros(shape, dtype=dtype) + (rng.integers(3) if dtype != "S4" else b"")


def _break_attr(f, rng):
    name = ["format", "format_version", "created", "producer", "settings"][rng.integers(5)]
    if rng.random() < 0.3:
        f.attrs.pop(name, None)
    else:
        f.attrs[name] = _JUNK[rng.integers(len(_JUNK))]


def _replace(f, name, **kwargs):
    if name in f:
        del f[name]
    f.create_dataset(name, **kwargs)


def _break_dataset(f, rng):
    name = ["weights", "step", "loss", "params"][rng.integers(4)]
    kind = rng.integers(4) if isinstance(f.get(name), h5py.Dataset) else 2
    if kind == 0:
        del f[name]
    elif kind == 1:
        del f[name]
        f.create_group(name)
    elif kind == 2:
        data = _junk_array(rng)
        chunked = data.ndim > 0 and data.size > 0 and rng.random() < 0.5
        _replace(f, name, data=data, chunks=True if chunked else None,
                 maxshape=(None,) + data.shape[1:] if chunked else None)
    else:
        ds = f[name]
        if ds.maxshape[0] is None:
            ds.resize(int(rng.integers(0, 2 * ds.shape[0] + 2)), axis=0)


def _break_params(f, rng):
    ds = f.get("params")
    if not isinstance(ds, h5py.Dataset) or ds.dtype.names is None:
        return _break_attr(f, rng)
    table = ds[()]
    field = ["name", "offset", "size", "shape", "kind"][rng.integers(5)]
    if field not in table.dtype.names:
        return _break_attr(f, rng)
    values = {"name": [b"", b"a" * 100, b"\xff"], "offset": [-5, 2**40, 3], "size": [-1, 0, 2**40],
              "shape": [b"[", b"[-1]", b"3", b'["a"]', b"[1e400]", b"null", b"[[1]]"],
              "kind": [b"", b"weights", b"\xff\xfe"]}[field]
    table[field][0] = values[rng.integers(len(values))]
    if rng.random() < 0.3:
        names = [n for n in table.dtype.names if n != field]
        table = repack_fields(table[names])
    _replace(f, "params", data=table)


def _flip_bytes(path, rng):
    data = bytearray(path.read_bytes())
    for pos in rng.integers(0, len(data), size=int(rng.integers(1, 20))):
        data[pos] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(data))


def make_case(path: pathlib.Path, seed: int, flip: bool) -> None:
    """Write a valid trajectory to ``path``, then break it as seed ``seed`` says."""
    rng = np.random.default_rng(seed)
    n, p = 30, 7
    write_trajectory(path, rng.normal(size=(n, p)), loss=rng.normal(size=n), chunk_steps=8, overwrite=True,
                     compression=[None, "lz4", "gzip"][seed % 3])
    with h5py.File(path, "r+") as f:
        for _ in range(int(rng.integers(1, 4))):
            [_break_attr, _break_dataset, _break_params][rng.integers(3)](f, rng)
    if flip:
        _flip_bytes(path, rng)


def read_everything(path: pathlib.Path) -> str:
    """Open, validate, summarize (``pyengine info``) and read a file the ways users do;
    return what happened."""
    outcome = "valid"
    try:
        with open_trajectory(path, check_values=True) as traj:
            for _ in traj.blocks(3):
                pass
            repr(traj)
    except ACCEPTED as exc:
        outcome = type(exc).__name__
    try:
        str(validate(path))
    except OSError:  # a read error that HDF5 reports on data, not metadata
        pass
    try:
        describe(path)
    except ACCEPTED:
        pass
    return outcome


@pytest.mark.parametrize("seed", range(N_CASES))
def test_malformed_file_is_rejected_cleanly(tmp_path, seed):
    path = tmp_path / "fuzz.h5"
    make_case(path, seed, flip=False)
    read_everything(path)


def test_most_malformed_files_are_rejected(tmp_path):
    """The generator really breaks files: the reader must not accept most of them."""
    outcomes = []
    for seed in range(40):
        make_case(tmp_path / "fuzz.h5", seed, flip=False)
        outcomes.append(read_everything(tmp_path / "fuzz.h5"))
    assert outcomes.count("valid") < 10, outcomes


CHILD = textwrap.dedent("""
    import pathlib, sys
    sys.path.insert(0, sys.argv[1])
    import test_fuzz_reader as fz
    path = pathlib.Path(sys.argv[2])
    for seed in range(int(sys.argv[3])):
        fz.make_case(path, 10_000 + seed, flip=seed % 2 == 0)
        fz.read_everything(path)
    print("done", flush=True)
""")


def test_batch_with_flipped_bytes_never_crashes_the_interpreter(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    here = str(pathlib.Path(__file__).parent)
    child = subprocess.run([sys.executable, "-c", CHILD, here, str(tmp_path / "fuzz.h5"), str(N_SUBPROCESS)],
                           capture_output=True, text=True, env=env, timeout=300)
    assert child.returncode == 0, f"exit {child.returncode}\n{child.stderr[-3000:]}"
    assert child.stdout.strip() == "done"
