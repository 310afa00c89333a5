"""A user's first hour at the command line: one line that says what to do, the documented
exit code (1: input rejected, 2: usage), no traceback."""

import sys

import pytest

import pyengine as pe
from pyengine.cli import main


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    return pe.models.write_synthetic(tmp_path_factory.mktemp("cli") / "run.h5", "brownian", 200, 8, seed=1)


@pytest.mark.parametrize("flag, value, message", [
    ("--window", "abc", "expected a whole number of steps >= 2, 'auto' or 'all'"),
    ("--window", "0", "expected a whole number of steps >= 2"),
    ("--lags", "0", "expected a count of log-spaced lags >= 1"),
    ("--threshold", "-1", "expected a positive RMSE threshold or 'data'"),
    ("--workers", "0", "expected a whole number >= 1"),
    ("--only", "msdd", "unknown statistic"),
])
def test_bad_flags_are_usage_errors_with_what_is_expected(run_file, capsys, flag, value, message):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(run_file), flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "_window" not in err


def test_out_defaults_to_a_folder_named_after_the_file(run_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", str(run_file), "--quiet"]) == 0
    assert (tmp_path / "run-analysis" / "index.html").is_file()
    assert "run-analysis" in capsys.readouterr().out


def test_an_unwritable_output_is_refused_before_the_work(run_file, monkeypatch, capsys):
    monkeypatch.setattr(pe, "analyze", lambda *a, **k: pytest.fail("the output must be checked first"))
    assert main(["analyze", str(run_file), "--out", "/proc/nope", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "cannot write to /proc" in err and ".pyengine-tmp" not in err


def test_a_missing_optional_dependency_names_the_extra_to_install(run_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    assert main(["analyze", str(run_file), "--out", str(tmp_path / "o"), "--dask", "tcp://nowhere:8786",
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "pyengine[dask]" in err and "Traceback" not in err


def test_backends_say_plainly_why_one_is_missing(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    if not pe.backends()["cuda"].available and "built without CUDA" not in out:
        assert "no NVIDIA GPU with a working driver on this machine" in out


def test_bench_help_lists_the_suites(capsys, monkeypatch):
    import pathlib

    monkeypatch.chdir(pathlib.Path(__file__).resolve().parents[1])
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    assert "suites here:" in out and "analyze" in out and "msd" in out and "pyengine[bench]" in out


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "is a directory, not a trajectory file"),
    (lambda p: p.write_text("notes"), "is not an HDF5 file"),
])
def test_a_folder_or_a_text_file_given_as_the_trajectory_is_named_in_one_line(tmp_path, capsys, make, message):
    path = tmp_path / "run.h5"
    make(path)
    for argv in (["info", str(path)], ["analyze", str(path), "--out", str(tmp_path / "o"), "--quiet"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
