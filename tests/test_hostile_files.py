"""Hostile files: tiny files declaring huge shapes, corrupted metadata on which HDF5 loops,
links where the format stores objects, broken parameter tables, text that is not UTF-8.

Files are read the ways users read them: ``pyengine info``, ``pe.open(..., check_values=True)``
(every block read) and ``validate``. Cases that a broken reader would answer with gigabytes
or minutes run in a child process under a memory limit (RLIMIT_AS) and a timeout, so that a
regression fails the test instead of the machine.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import pyengine as pe
from pyengine.cli import main as cli
from pyengine.store import FormatError, ParamInfo, open_trajectory, validate, write_trajectory
from pyengine.store import _watchdog
from pyengine.store._format import params_to_table

N, P = 10, 7
#: Address space the child may add to what it has after its imports (RLIMIT_AS).
MEMORY_LIMIT = 2**30
#: Peak resident memory the child may add over all its cases (VmHWM).
MEMORY_BUDGET = 256 * 2**20
#: Seconds each case may take (info, open with every block read, validate).
SECONDS_PER_CASE = 5.0
N_FUZZ = int(os.environ.get("PYENGINE_HOSTILE_CASES", 40))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def _base(path):
    rng = np.random.default_rng(0)
    return write_trajectory(path, rng.normal(size=(N, P)), loss=np.linspace(2, 1, N), chunk_steps=8, overwrite=True)


def _edit(path, *edits):
    with h5py.File(path, "r+") as f:
        for edit in edits:
            edit(f)
    return path


def _declare(name, shape, chunks=None, *, keep=0, compression=None):
    """An edit replacing ``name`` by an unwritten chunked dataset of ``shape`` (its first
    ``keep`` rows copied back): a few bytes of metadata declaring any amount of data."""

    def edit(f):
        old = f[name]
        rows = old[: min(keep, shape[0])]
        del f[name]
        ds = f.create_dataset(name, shape=shape, maxshape=(None, *shape[1:]), dtype=old.dtype,
                              chunks=chunks or (min(shape[0], 4096) or 1, *shape[1:]), compression=compression)
        if len(rows):
            ds[: len(rows)] = rows
    return edit


def _columns(p, chunks):
    """An edit declaring /weights of N rows and p columns, with a parameter table to match."""

    def edit(f):
        del f["weights"], f["params"]
        f.create_dataset("weights", shape=(N, p), maxshape=(None, p), dtype="f8", chunks=chunks)
        f["params"] = params_to_table([ParamInfo("w", 0, p, (p,), "other")])
    return edit


# ---- the budgeted child: info, open and validate under a memory limit --------------------------

DRIVER = textwrap.dedent("""
    import contextlib, io, json, resource, sys, time
    import pyengine as pe
    from pyengine.cli import main
    from pyengine.store import FormatError, validate

    def vm(key):
        return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1]) * 1024

    def attempt(fn):
        try:
            return fn()
        except FormatError as exc:
            return "FormatError: " + str(exc)
        except BaseException as exc:
            return f"UNEXPECTED {type(exc).__name__}: {exc}"[:2000]

    def info(path):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            return [main(["info", path]), err.getvalue()]

    def read(path):
        with pe.open(path, check_values=True) as traj:
            traj.read_block(0, traj.n_params) if traj.n_params * traj.n_snapshots < 10**6 else None
        return "ok"

    resource.setrlimit(resource.RLIMIT_AS, (vm("VmSize") + int(sys.argv[1]), resource.RLIM_INFINITY))
    start = vm("VmHWM")
    for path in sys.argv[2:]:
        t0 = time.perf_counter()
        result = {"info": attempt(lambda: info(path)), "open": attempt(lambda: read(path)),
                  "validate": attempt(lambda: validate(path).errors)}
        print(json.dumps({**result, "path": path, "seconds": time.perf_counter() - t0}), flush=True)
    print(json.dumps({"peak_rss_growth": vm("VmHWM") - start}))
""")


def _budgeted(paths, timeout=120):
    """Run info, open and validate on each file in a child under MEMORY_LIMIT; check the budgets."""
    child = subprocess.run([sys.executable, "-c", DRIVER, str(MEMORY_LIMIT), *map(str, paths)],
                           capture_output=True, text=True, env=ENV, timeout=timeout)
    assert child.returncode == 0, child.stderr[-3000:]
    *cases, summary = (json.loads(line) for line in child.stdout.splitlines())
    assert summary["peak_rss_growth"] < MEMORY_BUDGET, summary
    for case in cases:
        assert "UNEXPECTED" not in json.dumps(case), case
        assert case["seconds"] < SECONDS_PER_CASE, case
        ok = case["open"] == "ok"
        assert ok == (case["validate"] == []) == (case["info"][0] == 0), case
    return cases


HUGE = {
    "step, loss, weights: 3e8 rows": (
        [_declare("loss", (3 * 10**8,)), _declare("step", (3 * 10**8,)), _declare("weights", (3 * 10**8, P), (64, P))],
        "/loss: the 300,000,000 rows declared take 2,400,000,000 bytes, but the whole file has"),
    "step, loss, weights: 1e12 rows": (
        [_declare("loss", (10**12,)), _declare("step", (10**12,)), _declare("weights", (10**12, P), (64, P))],
        "/loss: the 1,000,000,000,000 rows declared"),
    "params: 1e12 rows": (
        [_declare("params", (10**12,), (1024,))], "/params: 1,000,000,000,000 rows, but /weights has 7 columns"),
    "weights (1e12, 1e9), 10 steps": (
        [_columns(10**9, (64, 16384)), _declare("weights", (10**12, 10**9), (64, 16384))],
        "/weights: the 10 rows of 1,000,000,000 values declared take 80,000,000,000 bytes"),
    "weights chunks (1, 5e8) float64": (
        [_columns(5 * 10**8, (1, 5 * 10**8))], "/weights: chunks of (1, 500000000) take 4,000,000,000 bytes each"),
    "compressed weights never written": (
        [_columns(10**7, (8, 4096)), _declare("weights", (N, 10**7), (8, 4096), compression="gzip")],
        "/weights: the 10 rows of 10,000,000 values declared span 4,884 chunks, but the file stores 0"),
    "compressed loss, 2 of 3 chunks missing": (
        [_declare("loss", (N,), (4,), keep=4, compression="gzip")],
        "/loss: the 10 rows declared span 3 chunks, but the file stores 1"),
    "step: a 2 GiB chunk": ([_declare("step", (N,), (2**28,))], "/step: chunks of (268435456,) take"),
    "eval/step: 1e12 rows": (
        [lambda f: f.create_group("eval").create_dataset("step", shape=(10**12,), dtype="i8", chunks=(4096,))],
        "/eval/step: the 1,000,000,000,000 rows declared"),
}


def test_tiny_files_declaring_huge_shapes_are_rejected_within_budget(tmp_path):
    paths = [_edit(_base(tmp_path / f"huge{i}.h5"), *edits) for i, (edits, _) in enumerate(HUGE.values())]
    for (case, (_, message)), result, path in zip(HUGE.items(), _budgeted(paths), paths):
        assert path.stat().st_size < 100_000, case
        assert message in result["open"] and message in result["info"][1], (case, result)
        assert any(message in e for e in result["validate"]), (case, result)


def test_data_outside_the_file_is_rejected(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(bytes(8 * N))

    def external_loss(f):
        del f["loss"]
        f.create_dataset("loss", shape=(N,), dtype="f8", external=[(raw.name, 0, 8 * N)])

    def virtual_step(f):
        f.move("step", "old_step")
        layout = h5py.VirtualLayout(shape=(N,), dtype="i8", maxshape=(None,))
        layout[:] = h5py.VirtualSource(f["old_step"])
        f.create_virtual_dataset("step", layout)

    for edit, message in ((external_loss, "/loss: stored outside the file"),
                          (virtual_step, "/step: a virtual dataset")):
        path = _edit(_base(tmp_path / "t.h5"), edit)
        assert any(message in e for e in validate(path).errors)
        with pytest.raises(FormatError, match=message):
            pe.open(path, validate=False)


def _declared_case(path, seed):
    """A valid file, then /step, /loss and /weights (or one of them, or /params) redeclared
    with a random, often huge, number of rows, of which at most the first N are written."""
    rng = np.random.default_rng(seed)
    rows = int(rng.choice([0, 1, N, N + 1, 4097, 3 * 10**8, 2**40, 10**12]))
    cols = int(rng.choice([P, 1000, 10**9]))
    names = ["loss", "step", "weights"] if rng.random() < 0.6 else [["step", "loss", "weights", "params"][seed % 4]]
    edits = [_columns(cols, (1, 1))] if cols != P and "weights" in names else []
    for name in names:
        wide = name == "weights"
        chunks = (int(rng.choice([1, 8, 4096])),) + ((int(rng.choice([1, P, 16384])),) if wide else ())
        keep = N if (cols == P or not wide) and rng.random() < 0.5 else 0
        edits.append(_declare(name, (rows, cols) if wide else (rows,), chunks, keep=keep,
                              compression="gzip" if rng.random() < 0.3 else None))
    try:
        return _edit(_base(path), *edits)
    except (ValueError, OSError):  # HDF5 refuses some combinations (e.g. chunks over 4 GiB)
        return _base(path)


def test_fuzz_of_declared_shapes_stays_within_memory_and_time(tmp_path):
    paths = [_declared_case(tmp_path / f"fuzz{seed}.h5", seed) for seed in range(N_FUZZ)]
    results = _budgeted(paths, timeout=60 + 5 * N_FUZZ)
    rejected = [r for r in results if r["open"] != "ok"]
    assert len(rejected) > N_FUZZ // 2, "the generator should break most files"
    assert sum("declares more data than it holds" in r["open"] for r in rejected) > N_FUZZ // 4


# ---- metadata on which HDF5 loops or crashes: the watchdog -----------------------------------

HANG_SCRIPT = textwrap.dedent("""
    import sys
    import pyengine as pe
    from pyengine.store import _watchdog
    from pyengine.cli import main
    _watchdog.METADATA_TIMEOUT = 1.0
    for call in (lambda: pe.open(sys.argv[1]), lambda: print(pe.store.validate(sys.argv[1]).errors[0])):
        try:
            call()
        except pe.store.FormatError as exc:
            print(exc)
    sys.exit(main(["info", sys.argv[1]]))
""")


def _flip_heap_size_of_format(path):
    """Flip one bit of the size of the global heap object holding the root attribute 'format'."""
    data = bytearray(path.read_bytes())
    at = data.find(b"pyengine-trajectory") - 8  # heap object: index, refcount, reserved, size (8 B), data
    assert data[at] == len(b"pyengine-trajectory")
    data[at] ^= 0x20  # 19 -> 51: the object overruns the next ones and H5HG decoding loops
    path.write_bytes(bytes(data))
    return path


def test_flipped_bit_in_the_global_heap_is_reported_not_waited_for(tmp_path):
    path = _flip_heap_size_of_format(_base(tmp_path / "flipped.h5"))
    t0 = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", HANG_SCRIPT, str(path)], capture_output=True, text=True,
                           env=ENV, timeout=120)
    assert time.perf_counter() - t0 < 60
    assert child.returncode == 1, child.stderr[-3000:]
    assert child.stdout.count("could not be read within 1 s: the file is probably corrupt") == 2, child.stdout
    assert "pyengine info: error:" in child.stderr and "could not be read within 1 s" in child.stderr


def _hang(*args):
    time.sleep(3600)


def _crash(*args):
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize(("stand_in", "message"), [(_hang, "could not be read within 0.5 s"),
                                                    (_crash, "crashed the HDF5 library")])
def test_watchdog_reports_a_hang_or_a_crash(tmp_path, monkeypatch, stand_in, message):
    path = _base(tmp_path / "t.h5")
    monkeypatch.setattr(_watchdog, "METADATA_TIMEOUT", 0.5)
    monkeypatch.setattr(_watchdog, "check_structure", stand_in)  # what the child runs
    t0 = time.perf_counter()
    with pytest.raises(FormatError, match=message):
        pe.open(path)
    assert message in validate(path).errors[0]
    assert time.perf_counter() - t0 < 10
    with pe.open(path, watchdog=False) as traj:  # the opt-out reads in this process
        assert traj.n_snapshots == N


def test_watchdog_probes_an_unchanged_file_once(tmp_path, monkeypatch):
    path = _base(tmp_path / "t.h5")
    calls = []
    monkeypatch.setattr(_watchdog, "_run_child", calls.append)
    for _ in range(3):
        pe.open(path).close()
    assert validate(path).ok and len(calls) == 1
    _edit(path, lambda f: f.attrs.__setitem__("producer", "another"))
    mtime = path.stat().st_mtime_ns + 10**9  # a changed file, even within one tick of the file system clock
    os.utime(path, ns=(mtime, mtime))
    pe.open(path).close()
    assert len(calls) == 2


# ---- links, parameter tables, text ----------------------------------------------------------

def _relink_step(f):
    f.move("step", "old_step")
    f["step"] = h5py.SoftLink("/old_step")


LINKS = {
    "soft-link cycle at /eval": (lambda f: f.__setitem__("eval", h5py.SoftLink("/eval")),
                                 "/eval: a soft link to '/eval'"),
    "external link at /noise": (lambda f: f.__setitem__("noise", h5py.ExternalLink("/etc/passwd", "/x")),
                                "/noise: an external link to '/x' in '/etc/passwd'"),
    "dangling link at /hessian": (lambda f: f.__setitem__("hessian", h5py.SoftLink("/nowhere")),
                                  "/hessian: a soft link to '/nowhere'"),
    "soft link at /step": (_relink_step, "/step: a soft link to '/old_step'"),
    "cycle inside /eval": (lambda f: f.create_group("eval").__setitem__("loss", h5py.SoftLink("/eval/loss")),
                           "/eval/loss: a soft link to '/eval/loss'"),
    "external inside /landscape/a": (
        lambda f: f.create_group("landscape/a").__setitem__("loss", h5py.ExternalLink("other.h5", "/loss")),
        "/landscape/a/loss: an external link to '/loss' in 'other.h5'"),
    "/eval is a dataset": (lambda f: f.create_dataset("eval", data=[1.0]), "/eval: a dataset, expected a group"),
}


@pytest.mark.parametrize("case", sorted(LINKS))
def test_links_are_reported_naming_the_path(tmp_path, capsys, case):
    edit, message = LINKS[case]
    path = _edit(_base(tmp_path / "t.h5"), edit)
    assert any(message in e for e in validate(path).errors)
    with pytest.raises(FormatError, match=message):
        pe.open(path)
    assert cli(["info", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_analyze_rejects_a_soft_link_cycle_without_traceback(tmp_path, capsys):
    path = _edit(_base(tmp_path / "t.h5"), LINKS["soft-link cycle at /eval"][0])
    assert cli(["analyze", str(path), "--out", str(tmp_path / "out"), "--window", "5", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "/eval: a soft link" in err and "Traceback" not in err
    with open_trajectory(path, validate=False) as traj, pytest.raises(FormatError, match="/eval cannot be read"):
        traj.group("eval")


def _table(rows):
    return np.array(rows, dtype=[("name", h5py.string_dtype()), ("offset", "<i8"), ("size", "<i8"),
                                 ("shape", h5py.string_dtype()), ("kind", h5py.string_dtype())])


def _set_table(rows):
    def edit(f):
        del f["params"]
        f["params"] = _table(rows)
    return edit


def test_negative_offsets_and_sizes_are_rejected(tmp_path):
    rows = [("a", 0, -5, "[-5]", "weight"), ("b", -5, 12, "[12]", "bias")]  # "tiles" [0, 7) through -5
    path = _edit(_base(tmp_path / "t.h5"), _set_table(rows))
    errors = validate(path).errors
    assert "/params[0] ('a'): size -5, expected >= 1 (a tensor holds at least one column)" in errors
    assert "/params[0] ('a'): shape (-5,) has a negative dimension" in errors
    with pytest.raises(FormatError, match="size -5"):
        pe.analyze(path, window=5, progress=False)


def _utf8_attr(name, value):
    return lambda f: f.attrs.create(name, value, dtype=h5py.string_dtype())


TEXT = {
    "format": (_utf8_attr("format", b"pyengine-\xfftrajectory"), "root attribute 'format' is not valid UTF-8"),
    "created": (_utf8_attr("created", b"2026-\xff\xfe"),
                "root attribute 'created' is not valid UTF-8 (b'2026-\\xff\\xfe')"),
    "producer": (_utf8_attr("producer", b"\xc3("), "root attribute 'producer' is not valid UTF-8"),
    "settings": (_utf8_attr("settings", b'{"a": "\xff"}'), "root attribute 'settings' is not valid UTF-8"),
    "created not a string": (lambda f: f.attrs.__setitem__("created", 5),
                             "root attribute 'created' is int64, expected a string"),
    "param name": (_set_table([(b"\xffw", 0, P, "[7]", "weight")]), "/params[0]: field 'name' is not valid UTF-8"),
    "param kind": (_set_table([("w", 0, P, "[7]", b"bias\xff")]), "/params[0] ('w'): field 'kind' is not valid UTF-8"),
    "group name": (lambda f: f.create_group("eval").create_group(b"\xffsplit"), "/eval/\\xffsplit: the name is not"),
    "group attribute": (lambda f: f.create_group("noise").attrs.create("split", b"\xfe", dtype=h5py.string_dtype()),
                        "/noise: attribute 'split' is not valid UTF-8"),
    "attribute name": (lambda f: f.create_group("hessian").attrs.create(b"k\xff", 1),
                       "/hessian: attribute name b'k\\xff' is not valid UTF-8"),
}


@pytest.mark.parametrize("case", sorted(TEXT))
def test_text_that_is_not_utf8_is_reported_naming_the_field(tmp_path, capsys, case):
    edit, message = TEXT[case]
    path = _edit(_base(tmp_path / "t.h5"), edit)
    report = validate(path)  # reports, never raises UnicodeDecodeError
    assert any(message in e for e in report.errors), report.errors
    with pytest.raises(FormatError) as info:
        pe.open(path)
    assert message in str(info.value)
    assert cli(["info", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_no_snapshots_of_a_huge_declared_width_are_read_at_once(tmp_path):
    """N = 0 (a writer that has not appended yet) with P = 2**50: one empty block, not 2**26."""
    path = _edit(_base(tmp_path / "t.h5"), _columns(2**50, (1, 1024)),
                 _declare("weights", (0, 2**50), (1, 1024)), _declare("step", (0,)), _declare("loss", (0,)))
    [result] = _budgeted([path], timeout=60)
    assert result["open"] == "ok" and result["validate"] == []
