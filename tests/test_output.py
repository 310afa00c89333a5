"""Output directories: pyengine never deletes or overwrites what it did not write (issue 21, item 1)."""

import json
import os
import stat

import numpy as np
import pytest

import pyengine as pe
from pyengine.cli import main
from pyengine.output import MANIFEST, check_output, claim_output


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return pe.models.write_synthetic(tmp_path_factory.mktemp("src") / "run.h5", "brownian", 201, 6, seed=1)


@pytest.fixture(scope="module")
def analysis(small_run):
    return pe.analyze(small_run, window=100, lags=6, progress=False, skip=("path", "msl", "tails", "increments"))


def _project(tmp_path, small_run):
    """A user's folder: their run, notes, a results.json of their own, and a hidden sibling."""
    proj = tmp_path / "proj"
    proj.mkdir()
    run = proj / "run.h5"
    run.write_bytes(small_run.read_bytes())
    (proj / "notes.txt").write_text("three weeks of notes")
    (proj / "results.json").write_text('{"mine": true}')
    (tmp_path / ".proj.old").mkdir()
    (tmp_path / ".proj.old" / "keep.txt").write_text("keep")
    return proj, run


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("out", ["abs", "dot", "dotdot"])
def test_cli_refuses_an_output_folder_holding_the_input_and_deletes_nothing(tmp_path, small_run, monkeypatch, capsys,
                                                                            out):
    proj, run = _project(tmp_path, small_run)
    before = _snapshot(tmp_path)
    monkeypatch.chdir(proj)
    arg = {"abs": str(proj), "dot": ".", "dotdot": "../proj"}[out]
    monkeypatch.setattr(pe, "analyze", lambda *a, **k: pytest.fail("the output must be checked before the work"))
    assert main(["analyze", "run.h5", "--out", arg, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "contains the input" in err and "Traceback" not in err
    assert _snapshot(tmp_path) == before


def test_save_refuses_a_folder_with_other_files_even_with_a_results_json(tmp_path, small_run, analysis):
    proj, _ = _project(tmp_path, small_run)
    (proj / "run.h5").unlink()  # no input inside: the other files alone must stop it
    before = _snapshot(tmp_path)
    with pytest.raises(FileExistsError, match="notes.txt"):
        analysis.save(proj, figures=False)
    assert _snapshot(tmp_path) == before


def test_cli_out_dot_in_an_empty_folder_works(tmp_path, small_run, monkeypatch, capsys):
    work = tmp_path / "empty"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["analyze", str(small_run), "--out", ".", "--window", "100", "--lags", "6", "--quiet"]) == 0
    assert (work / "results.json").exists() and (work / "index.html").exists() and (work / MANIFEST).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_an_earlier_output_is_replaced_but_not_once_the_user_added_a_file(tmp_path, analysis):
    out = tmp_path / "out"
    analysis.save(out, figures=False)
    analysis.save(out)  # replaces its own earlier output
    assert (out / "figures").is_dir()
    (out / "figures" / "my_edit.svg").write_text("<svg/>")
    with pytest.raises(FileExistsError, match="my_edit.svg"):
        analysis.save(out, figures=False)
    assert (out / "figures" / "my_edit.svg").exists() and (out / "index.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_symlinked_output_folder_is_judged_by_its_target(tmp_path, small_run):
    proj, run = _project(tmp_path, small_run)
    link = tmp_path / "link"
    link.symlink_to(proj)
    with pytest.raises(ValueError, match="contains the input"):
        check_output(link, inputs=[run])
    with pytest.raises(FileExistsError):
        check_output(link)


def test_output_folders_get_the_usual_mode_and_a_failed_save_leaves_nothing(tmp_path, analysis, monkeypatch):
    old = os.umask(0o022)
    try:
        out = analysis.save(tmp_path / "a" / "b" / "out", figures=False)
        assert stat.S_IMODE(out.stat().st_mode) == 0o755

        def boom(folder):
            raise RuntimeError("disk full")

        monkeypatch.setattr("pyengine.report.render", boom)
        with pytest.raises(RuntimeError, match="disk full"):
            analysis.save(tmp_path / "new" / "deeper" / "out", figures=False)
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["out"]


def test_output_that_is_a_file_or_unwritable_is_refused_up_front(tmp_path, small_run, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["analyze", str(small_run), "--out", str(tmp_path / "f")]) == 1
    assert "not a directory" in capsys.readouterr().err
    assert main(["analyze", str(small_run), "--out", str(tmp_path / "f" / "sub")]) == 1
    assert "is a file" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(PermissionError):
            check_output(ro / "out")


def test_claim_output_for_jobs_that_write_in_place(tmp_path):
    folder = claim_output(tmp_path / "demo", ["run.h5", "report"])
    (folder / "run.h5").write_bytes(b"run")
    assert claim_output(folder, ["run.h5", "report"]) == folder  # an earlier demo output: taken back
    (folder / "mine.txt").write_text("x")
    with pytest.raises(FileExistsError, match="mine.txt"):
        claim_output(folder, ["run.h5", "report"])
    assert json.loads((folder / MANIFEST).read_text())["entries"] == [MANIFEST, "report", "run.h5"]
    np.testing.assert_equal((folder / "run.h5").read_bytes(), b"run")
