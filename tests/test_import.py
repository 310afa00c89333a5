"""Importing checkpoint series already on disk: exact rows against a recorded run, the formats
(PyTorch, safetensors, npz, npy, Hugging Face folders), natural order, steps, refusals, no
partial file, the command line."""

import pathlib

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pyengine as pe  # noqa: E402
from pyengine.cli import main  # noqa: E402
from pyengine.record import Recorder  # noqa: E402
from pyengine.store import import_checkpoints, open_trajectory, validate  # noqa: E402
from pyengine.store.imports import find_checkpoints, name_kind, natural_key  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

STEPS = 6


def small_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def train(model, steps, on_step):
    """Plain SGD on toy data; ``on_step(step, loss)`` after each optimizer step."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 4, generator=gen), torch.randint(0, 3, (128,), generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(x), (32,), generator=gen)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        on_step(step, loss)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One training run, recorded by the Recorder and saved as state dicts every step."""
    root = tmp_path_factory.mktemp("import")
    (root / "pt").mkdir()
    model = small_net()
    with Recorder(model, root / "recorded.h5") as rec:
        def save(step, loss):
            rec.step(loss)
            checkpoint = {"model": model.state_dict(), "step": step, "loss": loss.item()}
            torch.save(checkpoint, root / "pt" / f"ckpt-{step}.pt")

        train(model, STEPS, save)
    return root


def safetensors_save():
    reason = "safetensors is not installed (pip install 'pyengine[safetensors]')"
    return pytest.importorskip("safetensors.torch", reason=reason).save_file


def state_dicts(run):
    for step in range(1, STEPS + 1):
        yield step, torch.load(run / "pt" / f"ckpt-{step}.pt", weights_only=True)


def recorded(run):
    with open_trajectory(run / "recorded.h5") as traj:
        return traj.read_block(0, traj.n_params), traj.steps, traj.loss, traj.params


def imported(path):
    with open_trajectory(path) as traj:
        return traj.read_block(0, traj.n_params), traj.steps, traj.loss, traj.params


def columns(weights, params, name):
    p = next(p for p in params if p.name == name)
    return weights[:, p.offset:p.offset + p.size]


def test_state_dicts_import_to_the_recorded_rows(run, tmp_path):
    result = import_checkpoints(run / "pt", tmp_path / "run.h5", params=["weight", "bias", "norm"])
    weights, steps, loss, params = imported(tmp_path / "run.h5")
    rec_weights, rec_steps, rec_loss, rec_params = recorded(run)
    np.testing.assert_array_equal(weights, rec_weights)  # same columns, same order as named_parameters()
    np.testing.assert_array_equal(steps, rec_steps)
    np.testing.assert_allclose(loss, rec_loss, rtol=1e-6)  # the "loss" entry of each checkpoint
    assert params == rec_params  # names, offsets, shapes and kinds as the recorder's
    assert result.steps_from == {"metadata": STEPS} and result.n_losses == STEPS
    assert result.skipped["1.num_batches_tracked"] == "int64: not a float tensor"
    assert "not selected" in result.skipped["1.running_mean"]
    assert "skipped 3 tensors: 1.num_batches_tracked (int64: not a float tensor); 1.running_mean" in str(result)
    assert validate(tmp_path / "run.h5").ok


def test_a_model_gives_the_recorders_table(run, tmp_path):
    import_checkpoints(run / "pt", tmp_path / "run.h5", model=small_net())
    weights, _, _, params = imported(tmp_path / "run.h5")
    rec_weights, _, _, rec_params = recorded(run)
    np.testing.assert_array_equal(weights, rec_weights)
    assert params == rec_params


def test_float_buffers_are_imported_as_other_and_integer_ones_skipped(run, tmp_path):
    result = import_checkpoints(run / "pt", tmp_path / "run.h5")
    weights, _, _, params = imported(tmp_path / "run.h5")
    kinds = {p.name: p.kind for p in params}
    assert kinds["1.running_mean"] == kinds["1.running_var"] == "other" and kinds["1.weight"] == "norm"
    assert list(result.skipped) == ["1.num_batches_tracked"]
    expected = np.stack([sd["model"]["1.running_var"].numpy() for _, sd in state_dicts(run)])
    np.testing.assert_array_equal(columns(weights, params, "1.running_var"), expected)


@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
def test_safetensors_and_npz_hold_the_same_rows(run, tmp_path, fmt):
    if fmt == "safetensors":
        save_file = safetensors_save()
    folder = tmp_path / fmt
    folder.mkdir()
    for step, sd in state_dicts(run):
        tensors = {k: v for k, v in sd["model"].items()}
        if fmt == "safetensors":
            save_file(tensors, folder / f"ckpt-{step}.safetensors", metadata={"step": str(step)})
        else:
            np.savez(folder / f"ckpt-{step}.npz", **{k: v.numpy() for k, v in tensors.items()})
    result = import_checkpoints(folder, tmp_path / "run.h5", params=["weight", "bias", "norm"])
    weights, steps, loss, params = imported(tmp_path / "run.h5")
    rec_weights, rec_steps, _, rec_params = recorded(run)
    np.testing.assert_array_equal(steps, rec_steps)
    assert result.steps_from == ({"metadata": STEPS} if fmt == "safetensors" else {"name": STEPS})
    assert {p.name for p in params} == {p.name for p in rec_params}
    for p in rec_params:  # safetensors keeps no order: compare tensor by tensor
        np.testing.assert_array_equal(columns(weights, params, p.name), columns(rec_weights, rec_params, p.name))
    assert np.isnan(loss).all() and result.n_losses == 0
    assert validate(tmp_path / "run.h5").ok  # NaN losses, declared missing


def test_no_loss_is_declared_and_the_analysis_says_why(run, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    for step, sd in state_dicts(run):
        torch.save(sd["model"], folder / f"ckpt-{step}.pt")
    import_checkpoints(folder, tmp_path / "run.h5")
    assert "none recorded at 6 of 6 snapshots" in pe.store.describe(tmp_path / "run.h5")
    res = pe.analyze(tmp_path / "run.h5", window=None, lags=3, only=["msd", "loss"], progress=False)
    assert "msd" in res.results and res.skipped["loss"].startswith("no loss: none was recorded at 6 of 6")


def test_nan_losses_need_the_declaration(tmp_path):
    with pytest.raises(ValueError, match="loss must be finite, got nan at step 1; .* missing_loss=True"):
        pe.store.write_trajectory(tmp_path / "run.h5", np.zeros((3, 2)), loss=[1.0, np.nan, 2.0])
    assert not (tmp_path / "run.h5").exists()  # refused before the file is made
    pe.store.write_trajectory(tmp_path / "ok.h5", np.zeros((3, 2)), loss=[1.0, np.nan, 2.0], missing_loss=True)
    assert validate(tmp_path / "ok.h5").ok
    with pytest.raises(ValueError, match="loss must be finite, got inf"):
        pe.store.write_trajectory(tmp_path / "inf.h5", np.zeros((3, 2)), loss=[1.0, np.inf, np.nan], missing_loss=True)
    with h5py.File(tmp_path / "ok.h5", "r+") as f:  # written by another tool: Inf still fails validation
        f["loss"][1] = np.inf
    assert "/loss: 1 non-finite values (NaN/Inf), first at rows [1]" in str(validate(tmp_path / "ok.h5"))
    pe.store.write_trajectory(tmp_path / "none.h5", np.zeros((3, 2)))  # no loss given: every loss missing
    with pe.store.open_trajectory(tmp_path / "none.h5") as traj:
        assert np.isnan(traj.loss).all()


def test_npy_files_and_natural_order(tmp_path):
    folder = tmp_path / "npy"
    folder.mkdir()
    rows = np.random.default_rng(0).normal(size=(12, 5))
    for step in range(1, 13):
        np.save(folder / f"w_{step}.npy", rows[step - 1])
    assert [c.label for c in find_checkpoints(folder)][:4] == ["w_1.npy", "w_2.npy", "w_3.npy", "w_4.npy"]
    import_checkpoints(folder, tmp_path / "run.h5")
    weights, steps, _, params = imported(tmp_path / "run.h5")
    np.testing.assert_array_equal(steps, np.arange(1, 13))
    np.testing.assert_array_equal(weights, rows)
    assert [(p.name, p.shape, p.kind) for p in params] == [("params", (5,), "other")]


def test_natural_key_and_name_kinds():
    assert sorted(["ckpt-10", "ckpt-9", "ckpt-100", "Ckpt-2"], key=natural_key) == \
        ["Ckpt-2", "ckpt-9", "ckpt-10", "ckpt-100"]
    assert [name_kind(n) for n in ["h.0.ln_1.weight", "encoder.LayerNorm.bias", "model.norm.weight", "layer.bn2.weight",
                                   "conv.weight", "conv.bias", "cls_token"]] == \
        ["norm", "norm", "norm", "norm", "weight", "bias", "other"]
    assert name_kind("1.weight", {"1"}) == "norm" and name_kind("1.running_mean", {"1"}) == "other"


def test_step_regex_and_a_glob(tmp_path):
    for step, name in [(100, "epoch=0-step=100-v1.pt"), (200, "epoch=1-step=200-v1.pt"), (5, "other.pt")]:
        torch.save({"w": torch.full((3,), float(step))}, tmp_path / name)
    result = import_checkpoints(str(tmp_path / "epoch=*.pt"), tmp_path / "run.h5", step_regex=r"step=(\d+)")
    weights, steps, _, _ = imported(tmp_path / "run.h5")
    np.testing.assert_array_equal(steps, [100, 200])
    np.testing.assert_array_equal(weights[:, 0], [100, 200])
    assert result.steps_from == {"step_regex": 2}
    with pytest.raises(ValueError, match=r"other.pt: step_regex 'step=\(\\d\+\)' finds no step in it"):
        import_checkpoints(tmp_path, tmp_path / "bad.h5", step_regex=r"step=(\d+)")
    with pytest.raises(ValueError, match="not a regular expression"):
        import_checkpoints(tmp_path, tmp_path / "bad.h5", step_regex=r"step=(")


def test_hugging_face_checkpoint_folders(tmp_path):
    import json

    save_file = safetensors_save()
    out = tmp_path / "hf"
    for step in (10, 20, 30):
        folder = out / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        save_file({"ln_f.weight": torch.full((2,), float(step)), "wte.weight": torch.ones(3, 2) * step},
                  folder / "model.safetensors")
        torch.save({"lr": torch.tensor(0.1)}, folder / "optimizer.pt")  # not a weight file
        (folder / "trainer_state.json").write_text(json.dumps(
            {"global_step": step, "logging_steps": 1, "log_history": [{"step": step, "loss": 1.0 / step}]}))
    (out / "runs").mkdir()  # a folder without checkpoint: left alone
    result = import_checkpoints(out, tmp_path / "run.h5")
    weights, steps, loss, params = imported(tmp_path / "run.h5")
    np.testing.assert_array_equal(steps, [10, 20, 30])
    np.testing.assert_allclose(loss, [0.1, 0.05, 1 / 30])
    assert [(p.name, p.kind) for p in params] == [("ln_f.weight", "norm"), ("wte.weight", "weight")]
    assert result.steps_from == {"metadata": 3} and result.n_losses == 3
    np.testing.assert_array_equal(weights[:, 0], [10, 20, 30])


def test_sharded_hugging_face_checkpoint(tmp_path):
    import json

    save_file = safetensors_save()
    folder = tmp_path / "checkpoint-7"
    folder.mkdir()
    save_file({"a.weight": torch.ones(2)}, folder / "model-00001-of-00002.safetensors")
    save_file({"b.bias": torch.zeros(3)}, folder / "model-00002-of-00002.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a.weight": "model-00001-of-00002.safetensors", "b.bias": "model-00002-of-00002.safetensors"}}))
    import_checkpoints(tmp_path, tmp_path / "run.h5")
    weights, steps, _, params = imported(tmp_path / "run.h5")
    assert steps.tolist() == [7] and [p.name for p in params] == ["a.weight", "b.bias"]
    np.testing.assert_array_equal(weights, [[1, 1, 0, 0, 0]])


def _series(folder, shapes, steps=None):
    """Checkpoints ckpt-1.pt ... with the given {name: shape} per file."""
    folder.mkdir(exist_ok=True)
    for i, tensors in enumerate(shapes, start=1):
        step = i if steps is None else steps[i - 1]
        torch.save({"state_dict": {k: torch.zeros(s) for k, s in tensors.items()}, "global_step": step},
                   folder / f"ckpt-{i}.pt")
    return folder


@pytest.mark.parametrize("shapes, steps, message", [
    ([{"a.weight": (2,), "b.bias": (3,)}, {"a.weight": (2,), "c.bias": (3,)}], None,
     r"ckpt-2.pt: tensor 'b.bias' \(in ckpt-1.pt\) is missing; it holds e.g. a.weight, c.bias"),
    ([{"a.weight": (2,)}, {"a.weight": (2,), "extra": (1,)}], None, "ckpt-2.pt: tensor 'extra' is not in ckpt-1.pt"),
    ([{"a.weight": (2, 3)}, {"a.weight": (3, 2)}], None,
     r"ckpt-2.pt: tensor 'a.weight' has shape \[3, 2\], but \[2, 3\] in ckpt-1.pt"),
    ([{"a": (1,)}] * 3, [5, 10, 10],
     r"ckpt-3.pt: step 10 after step 10 of ckpt-2.pt \(the same step\): steps must increase"),
    ([{"a": (1,)}] * 2, [5, 3], r"ckpt-2.pt: step 3 after step 5 of ckpt-1.pt \(an earlier step\)"),
])
def test_refusals_name_the_file_and_tensor_and_leave_no_file(tmp_path, shapes, steps, message):
    folder = _series(tmp_path / "ckpts", shapes, steps)
    with pytest.raises(ValueError, match=message):
        import_checkpoints(folder, tmp_path / "run.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpts"]  # no output, no temporary file


def test_a_pickle_that_is_not_weights_only_is_refused(tmp_path):
    torch.save({"w": torch.ones(2), "obj": pathlib.PurePosixPath("x")}, tmp_path / "ckpt-1.pt")
    with pytest.raises(ValueError, match=r"ckpt-1.pt: refused: it pickles pathlib.*PurePosixPath.*never unpickles"):
        import_checkpoints(tmp_path, tmp_path / "run.h5")
    (tmp_path / "ckpt-1.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="ckpt-1.pt: cannot be read as a PyTorch checkpoint"):
        import_checkpoints(tmp_path, tmp_path / "run.h5")
    assert not (tmp_path / "run.h5").exists()


def test_an_existing_output_is_kept_unless_overwrite(tmp_path):
    folder = _series(tmp_path / "ckpts", [{"a": (2,)}] * 2)
    out = tmp_path / "run.h5"
    out.write_text("my notes")
    with pytest.raises(FileExistsError, match="run.h5 exists: pass overwrite=True"):
        import_checkpoints(folder, out)
    assert out.read_text() == "my notes"
    import_checkpoints(folder, out, overwrite=True)
    assert imported(out)[1].tolist() == [1, 2]


def test_a_failure_midway_keeps_the_old_output(tmp_path):
    folder = _series(tmp_path / "ckpts", [{"a": (2,)}, {"a": (2,)}, {"a": (3,)}])
    out = tmp_path / "run.h5"
    out.write_text("earlier")
    with pytest.raises(ValueError, match="ckpt-3.pt"):
        import_checkpoints(folder, out, overwrite=True)
    assert out.read_text() == "earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["ckpts", "run.h5"]


@pytest.mark.parametrize("spec", ["sample", "sketch"])
def test_a_sampled_or_sketched_import_equals_the_reduced_recording(tmp_path, spec):
    """The same states recorded with Recorder(sample=/sketch=) and imported with the same
    reduction give the same file: columns, table, reduction and kept coordinates."""
    from pyengine.record.reduce import Sample, Sketch

    reduction = {"sample": {"sample": Sample(0.5, seed=3)}, "sketch": {"sketch": Sketch(16, seed=2)}}[spec]
    (tmp_path / "pt").mkdir()
    model = small_net()
    with Recorder(model, tmp_path / "recorded.h5", **reduction) as rec:
        def save(step, loss):
            rec.step(loss)
            torch.save({"model": model.state_dict(), "step": step}, tmp_path / "pt" / f"ckpt-{step}.pt")

        train(model, STEPS, save)
    result = import_checkpoints(tmp_path / "pt", tmp_path / "run.h5", model=small_net(), **reduction)
    with open_trajectory(tmp_path / "recorded.h5") as a, open_trajectory(tmp_path / "run.h5") as b:
        np.testing.assert_array_equal(b.read_block(0, b.n_params), a.read_block(0, a.n_params))
        assert b.dtype == a.dtype and b.params == a.params and b.reduction == a.reduction
        if spec == "sample":
            np.testing.assert_array_equal(b.kept_index(), a.kept_index())
    assert result.reduction == b.reduction and result.n_params == b.reduction.n_full
    assert f"parameters ({spec}: {b.n_params} columns)" in str(result)
    assert validate(tmp_path / "run.h5").ok


def test_cli_imports_a_sketch_and_refuses_sample_with_sketch(run, tmp_path, capsys):
    out = tmp_path / "run.h5"
    assert main(["import", str(run / "pt"), str(out), "--quiet", "--sketch", "8"]) == 0
    with open_trajectory(out) as traj:
        assert traj.n_params == 8 and traj.reduction.method == "sketch" and traj.dtype == np.float64
    with pytest.raises(SystemExit) as exc:
        main(["import", str(run / "pt"), str(out), "--sample", "0.1", "--sketch", "8"])
    assert exc.value.code == 2
    with pytest.raises(ValueError, match="fraction"):
        import_checkpoints(run / "pt", tmp_path / "bad.h5", sample=1.5)
    assert not (tmp_path / "bad.h5").exists()


def test_no_checkpoint_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no checkpoint file"):
        import_checkpoints(tmp_path, tmp_path / "run.h5")
    with pytest.raises(FileNotFoundError, match="matches no checkpoint"):
        import_checkpoints(str(tmp_path / "*.pt"), tmp_path / "run.h5")


def test_cli_imports_and_exits_1_with_one_line_on_bad_input(run, tmp_path, capsys):
    out = tmp_path / "run.h5"
    assert main(["import", str(run / "pt"), str(out), "--quiet", "--params", "weight,bias,norm"]) == 0
    assert f"{out}: 6 checkpoints (steps 1 … 6)" in capsys.readouterr().out
    assert main(["import", str(run / "pt"), str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pyengine import: error: ") and "exists: pass overwrite=True (--overwrite)" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert main(["import", str(run / "pt"), str(out), "--quiet", "--overwrite", "--step-regex", r"ckpt-(\d+)"]) == 0
    bad = _series(tmp_path / "bad", [{"a": (2,)}, {"b": (2,)}])
    assert main(["import", str(bad), str(tmp_path / "bad.h5"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ckpt-2.pt: tensor 'a'" in err


@pytest.mark.parametrize("argv", [["import"], ["import", "src"], ["import", "a", "b", "--step-regex", "("],
                                  ["import", "a", "b", "--compression", "zip"]])
def test_cli_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
