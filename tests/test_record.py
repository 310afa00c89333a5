"""The training recorder: round trip, exact values, kill safety, resume, probes."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pyengine as pe  # noqa: E402
from pyengine.record import EvalProbe, NoiseProbe, Recorder, select_params  # noqa: E402
from pyengine.store import FormatError, TrajectoryWriter, group_rows, open_trajectory, verify  # noqa: E402
from pyengine.heavytail import TailState, mohammadi, tail_index  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def small_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def toy_data(n=256, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def train(model, steps, recorder=None, seed=0, batch=32):
    """Plain SGD on toy data; returns the flattened parameters after every step."""
    x, y = toy_data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        if recorder is not None:
            recorder.step(loss)
        rows.append(torch.cat([p.detach().flatten() for p in model.parameters()]).clone())
    return torch.stack(rows).numpy()


def test_round_trip_exact_values(tmp_path):
    model = small_net()
    path = tmp_path / "run.h5"
    with Recorder(model, path, chunk_steps=4, settings={"batch_size": 32, "seed": 0}) as rec:
        expected = train(model, 10, rec)
    with open_trajectory(path) as traj:
        assert traj.n_snapshots == 10
        np.testing.assert_array_equal(traj.steps, np.arange(1, 11))
        np.testing.assert_array_equal(traj.read_block(0, traj.n_params), expected)
        assert np.isfinite(traj.loss).all()
        assert [p.kind for p in traj.params] == ["weight", "bias", "norm", "norm", "weight", "bias"]
        assert traj.attrs["batch_size"] == 32
        assert traj.attrs["model"]["n_params"] == expected.shape[1]


def test_readable_while_recording(tmp_path):
    path = tmp_path / "run.h5"
    with Recorder(small_net(), path, chunk_steps=4) as rec:
        for _ in range(8):
            rec.step(1.0)
        deadline = time.monotonic() + 10
        while rec.n_flushed < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        with open_trajectory(path) as traj:
            assert traj.n_snapshots == 8
            for _ in range(4):
                rec.step(1.0)
            while rec.n_flushed < 12 and time.monotonic() < deadline:
                time.sleep(0.01)
            traj.refresh()
            assert traj.n_snapshots == 12


def test_every_and_filter(tmp_path):
    model = small_net()
    with Recorder(model, tmp_path / "run.h5", every=3, params=["weight"]) as rec:
        expected = train(model, 10, rec)
    with open_trajectory(tmp_path / "run.h5") as traj:
        np.testing.assert_array_equal(traj.steps, [3, 6, 9])
        assert [p.name for p in traj.params] == ["0.weight", "3.weight"]
        np.testing.assert_array_equal(traj.read_block(0, 32), expected[[2, 5, 8], :32])


def test_attach_hook(tmp_path):
    model = small_net()
    x, y = toy_data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    with Recorder(model, tmp_path / "run.h5").attach(opt) as rec:
        for i in range(5):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            rec.log_loss(loss)
            losses.append(float(loss.detach()))
            opt.step()
    with open_trajectory(tmp_path / "run.h5") as traj:
        np.testing.assert_array_equal(traj.steps, np.arange(1, 6))
        np.testing.assert_allclose(traj.loss, losses)
        assert traj.attrs["optimizer"]["class"].endswith("SGD")
        assert traj.attrs["optimizer"]["param_groups"][0]["lr"] == 0.1


def test_clear_errors(tmp_path):
    path = tmp_path / "run.h5"
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        Recorder(frozen, path)
    with pytest.raises(ValueError, match="matches no trainable parameter"):
        Recorder(small_net(), path, params=["nope*"])
    with pytest.raises(TypeError, match="list of kinds"):
        Recorder(small_net(), path, params="weight")
    path.write_bytes(b"")
    with pytest.raises(FileExistsError, match="mode='a'"):
        Recorder(small_net(), path)


def test_steps_without_a_loss_record_a_valid_file(tmp_path):
    model = small_net()
    path = tmp_path / "run.h5"
    with Recorder(model, path) as rec:
        train(model, 6, rec)
        for _ in range(4):
            rec.step()  # no loss: NaN, declared missing
    with open_trajectory(path) as traj:  # validates
        assert np.isfinite(traj.loss[:6]).all() and np.isnan(traj.loss[6:]).all()
    res = pe.analyze(path, window=None, lags=3, only=["msd", "loss"], progress=False)
    assert "msd" in res.results and res.skipped["loss"].startswith("no loss: none was recorded at 4 of 10")


def test_resume_continues_steps(tmp_path):
    path = tmp_path / "run.h5"
    model = small_net()
    with Recorder(model, path, every=2, chunk_steps=4) as rec:
        first = train(model, 10, rec, seed=1)
    with Recorder(model, path, every=2, mode="a") as rec:
        assert rec.global_step == 10
        second = train(model, 6, rec, seed=2)
    with open_trajectory(path) as traj:
        np.testing.assert_array_equal(traj.steps, np.arange(2, 17, 2))
        rows = np.concatenate([first, second])[1::2]
        np.testing.assert_array_equal(traj.read_block(0, traj.n_params), rows)
    with pytest.raises(FormatError, match="does not match the model"):
        Recorder(torch.nn.Linear(4, 3), path, mode="a")
    with pytest.raises(ValueError, match="every=2"):
        Recorder(model, path, every=1, mode="a")
    with pytest.raises(ValueError, match="start at step >= 16"):
        Recorder(model, path, every=2, mode="a", start_step=4)


def test_probes_leave_training_unchanged(tmp_path):
    x, y = toy_data(128, seed=5)
    probes = [EvalProbe({"train": (x, y), "test": toy_data(64, seed=6)}, every=3),
              NoiseProbe((x, y), batch_size=32, every=4, n_samples=10)]
    model_a, model_b = small_net(), small_net()
    torch.manual_seed(7)
    with Recorder(model_a, tmp_path / "a.h5", probes=probes) as rec:
        rows_a = train(model_a, 12, rec)
        rng_a = torch.rand(3)
    torch.manual_seed(7)
    rows_b = train(model_b, 12)
    rng_b = torch.rand(3)
    np.testing.assert_array_equal(rows_a, rows_b)
    for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(rng_a, rng_b)
    assert model_a.training
    with open_trajectory(tmp_path / "a.h5") as traj:
        ev, noise = traj.group("eval"), traj.group("noise")
        np.testing.assert_array_equal(ev["step"][:], [3, 6, 9, 12])
        assert ev["loss_test"].shape == (4,) and np.all(ev["accuracy_train"][:] <= 1)
        np.testing.assert_array_equal(noise["step"][:], [4, 8, 12])
        assert noise["samples"].shape == (3, 10)
        assert noise["tail_stats"].shape[0] == 3 and noise["k1"].shape == (1,)
        assert np.all(noise["alpha"][:] > 0)  # finite: the estimate exists (small K scatters widely)
        pooled = TailState(noise["k1"][:], False, stats=noise["tail_stats"][:].sum(axis=0))
        assert 0 < mohammadi.finalize(pooled).alpha < 3  # the stored sums pool across probes


def _wait_flushed(rec, n):
    deadline = time.monotonic() + 10
    while rec.n_flushed < n and time.monotonic() < deadline:
        time.sleep(0.01)


READER = textwrap.dedent("""
    import sys
    import pyengine as pe
    traj = pe.open(sys.argv[1])  # holds HDF5's shared lock on the file until it exits
    print(traj.n_snapshots, flush=True)
    sys.stdin.readline()
    traj.refresh()
    steps = traj.group("eval")["step"]
    steps.refresh()
    print(traj.n_snapshots, *steps[:], flush=True)
""")


def test_a_reader_following_the_file_sees_probe_rows_and_never_stops_the_recorder(tmp_path):
    path = tmp_path / "run.h5"
    model = small_net()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with Recorder(model, path, chunk_steps=4, probes=[EvalProbe(toy_data(64, seed=3), every=2)]) as rec:
        train(model, 4, rec)
        _wait_flushed(rec, 4)
        reader = subprocess.Popen([sys.executable, "-c", READER, str(path)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert reader.stdout.readline() == "4\n"
            train(model, 4, rec)
        except BaseException:
            reader.kill()
            raise
    with reader:  # the recorder closed while the reader held the file; the reader sees every row
        out, _ = reader.communicate("go\n", timeout=60)
    assert out.split() == ["8", "2", "4", "6", "8"]
    with open_trajectory(path) as traj:
        rows = group_rows(traj.group("eval"))
        np.testing.assert_array_equal(rows["step"], [2, 4, 6, 8])
        assert rows["loss_test"].shape == (4,) and np.all(rows["accuracy_test"] <= 1)


def test_resume_extends_probe_groups_written_whole_by_older_versions(tmp_path):
    path = tmp_path / "run.h5"
    model = small_net()
    with Recorder(model, path) as rec:
        train(model, 4, rec)
    with TrajectoryWriter(path, rec.n_params, params=rec.table, mode="a") as w:
        w.write_group("eval", {"step": [2, 4, 6], "loss_test": [1.0, 0.9, 0.8], "accuracy_test": [0.1, 0.2, 0.3]})
    with Recorder(model, path, mode="a", probes=[EvalProbe(toy_data(64, seed=3), every=2)]) as rec:
        train(model, 4, rec)
    with open_trajectory(path) as traj:
        rows = group_rows(traj.group("eval"))
        np.testing.assert_array_equal(rows["step"], [2, 4, 6, 8])  # step 6 was past the last snapshot (4)
        np.testing.assert_array_equal(rows["loss_test"][:2], [1.0, 0.9])
    with pytest.raises(FormatError, match="resume with the probe settings"):
        Recorder(model, path, mode="a", probes=[EvalProbe({"val": toy_data(8)}, every=2)]).open()
    x, y = toy_data(64)
    with Recorder(model, path, mode="a", probes=[NoiseProbe((x, y), 16, every=2, n_samples=5)]) as rec:
        train(model, 2, rec)
    with pytest.raises(FormatError, match="and other sample_index: resume with the probe settings"):
        Recorder(model, path, mode="a", probes=[NoiseProbe((x, y), 16, every=2, n_samples=5, seed=1)]).open()


def test_probes_are_checked(tmp_path):
    probes = [EvalProbe(toy_data(8), every=2), EvalProbe(toy_data(8), every=3)]
    with pytest.raises(ValueError, match="several probes write /eval"):
        Recorder(small_net(), tmp_path / "run.h5", probes=probes)
    with pytest.raises(TypeError, match="probes must be Probe objects"):
        Recorder(small_net(), tmp_path / "run.h5", probes=["eval"])


def test_noise_probe_protocol():
    """The noise of the minibatches of a partition sums to zero and matches a direct computation."""
    model = small_net().eval()
    x, y = toy_data(96)
    probe = NoiseProbe((x, y), batch_size=32, every=1, n_samples=1000)
    params = list(model.parameters())
    probe.run(model, params, step=1)
    xs, ys = probe.data
    grads = []
    for i in range(3):
        loss = torch.nn.functional.cross_entropy(model(xs[32 * i:32 * i + 32]), ys[32 * i:32 * i + 32])
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)]).double())
    grads = torch.stack(grads)
    noise = (grads - grads.mean(0)).numpy().ravel()
    np.testing.assert_allclose(probe.rows["grad_norm"][0], grads.mean(0).norm().item(), rtol=1e-5)
    np.testing.assert_allclose(probe.rows["samples"][0], noise[probe.static["sample_index"]], atol=1e-6)
    assert probe.rows["alpha"][0] == pytest.approx(tail_index(noise).alpha, rel=1e-6)


def test_select_params_kinds():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.GroupNorm(1, 2), torch.nn.Linear(2, 2, bias=False))
    _, table = select_params(net)
    assert [(p.name, p.kind) for p in table] == [("0.weight", "weight"), ("0.bias", "bias"), ("1.weight", "norm"),
                                                 ("1.bias", "norm"), ("2.weight", "weight")]
    assert [p.offset for p in table] == [0, 18, 20, 22, 24]


CHILD = textwrap.dedent("""
    import sys, time, torch
    from pyengine.record import Recorder
    model = torch.nn.Linear(4, 3)
    with Recorder(model, sys.argv[1], chunk_steps=4, flush_seconds=1e9) as rec:
        step = 0
        while True:
            step += 1
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(step)
            rec.step(float(step))
            print(step, rec.n_flushed, flush=True)
            time.sleep(0.002)
""")


def _start_child(path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env)


def _wait_for_flushed(child, n):
    for line in child.stdout:
        step, flushed = map(int, line.split())
        if flushed >= n:
            return step, flushed
    raise AssertionError(f"the recording child ended early with code {child.wait()}")


def _check_rows(path, at_least):
    with open_trajectory(path) as traj:
        n = traj.n_snapshots
        assert n >= at_least
        np.testing.assert_array_equal(traj.steps, np.arange(1, n + 1))
        np.testing.assert_array_equal(traj.loss, np.arange(1, n + 1))
        weights = traj.read_block(0, traj.n_params)
        np.testing.assert_array_equal(weights, np.repeat(np.arange(1, n + 1, dtype=np.float32)[:, None], 15, axis=1))
        return n


def test_hard_kill_keeps_flushed_snapshots_and_resumes(tmp_path):
    path = tmp_path / "killed.h5"
    with _start_child(path) as child:
        try:
            _, flushed = _wait_for_flushed(child, 12)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
    n = _check_rows(path, flushed)
    model = torch.nn.Linear(4, 3)
    with Recorder(model, path, mode="a", chunk_steps=4) as rec:  # the killed writer's marks are cleared
        assert rec.global_step == n
        for step in range(n + 1, n + 6):
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(step)
            rec.step(float(step))
    assert _check_rows(path, n + 5) == n + 5
    assert verify(path).ok


def test_sigterm_drains_and_closes(tmp_path):
    path = tmp_path / "terminated.h5"
    with _start_child(path) as child:
        try:
            step, _ = _wait_for_flushed(child, 8)
            child.terminate()
            assert child.wait(timeout=30) == 128 + signal.SIGTERM
        finally:
            child.kill()
    assert _check_rows(path, step) >= step


# -- sampled and sketched recordings (issue 22) -----------------------------------------------


def record_three(model, steps, path, **reduced):
    """Train with a full and a reduced recorder side by side; the full file's rows and the reduced file."""
    with Recorder(model, path.with_name("full.h5"), overwrite=True) as full, \
            Recorder(model, path, overwrite=True, chunk_steps=4, **reduced) as rec:
        train(model, steps, _Both(full, rec))
    with open_trajectory(path.with_name("full.h5")) as traj:
        return traj.read_block(0, traj.n_params)


class _Both:
    def __init__(self, *recorders):
        self.recorders = recorders

    def step(self, loss):
        for rec in self.recorders:
            rec.step(loss)


def test_sampled_recording_holds_the_kept_coordinates(tmp_path):
    from pyengine.record import Sample

    model, path = small_net(), tmp_path / "sampled.h5"
    full = record_three(model, 9, path, sample=Sample(0.3, seed=4))
    with open_trajectory(path) as traj:
        kept = traj.kept_index()
        np.testing.assert_array_equal(traj.read_block(0, traj.n_params), full[:, kept])
        assert traj.dtype == np.float32 and traj.reduction.method == "sample" and traj.reduction.n_full == full.shape[1]
        assert [p.name for p in traj.params] == [p.name for p in traj.reduction.full_params if
                                                 any(p.offset <= i < p.offset + p.size for i in kept)]
        assert traj.attrs["recorder"]["reduction"]["fraction"] == 0.3


def test_sketched_recording_is_the_sketch_of_the_full_rows(tmp_path):
    from pyengine.record.reduce import Sketch, reduce_rows

    model, path = small_net(), tmp_path / "sketched.h5"
    full = record_three(model, 9, path, sketch=16)
    with open_trajectory(path) as traj:
        expected, _ = reduce_rows(full, Sketch(16), traj.reduction.full_params)
        assert traj.dtype == np.float64 and traj.n_params == 16
        np.testing.assert_allclose(traj.read_block(0, 16), expected, rtol=1e-12, atol=1e-12)
    rec = Recorder(small_net(), tmp_path / "x.h5", sketch=16)
    assert "sketch into 16 columns" in repr(rec)


def test_sampling_is_seeded_and_continues_across_a_resume(tmp_path):
    from pyengine.record import Sample, Sketch

    path, model = tmp_path / "run.h5", small_net()
    spec = Sample(0.25, stratified=False, seed=11)
    first = record_three(model, 6, path, sample=spec)
    with open_trajectory(path) as traj:
        kept = traj.kept_index()
    with Recorder(model, path, mode="a", sample=spec) as rec:
        second = train(model, 5, rec, seed=3)
    with open_trajectory(path) as traj:
        np.testing.assert_array_equal(traj.kept_index(), kept)
        np.testing.assert_array_equal(traj.steps, np.arange(1, 12))
        np.testing.assert_array_equal(traj.read_block(0, traj.n_params), np.concatenate([first, second])[:, kept])
    assert np.array_equal(Recorder(small_net(), tmp_path / "new.h5", sample=spec)._reducer.kept, kept)
    for other, why in [({}, "records sample of .* but this recorder records every parameter"),
                       ({"sample": Sample(0.25, stratified=False, seed=12)}, "seed 12"),
                       ({"sketch": Sketch(8)}, "CountSketch")]:
        with pytest.raises(FormatError, match=why):
            Recorder(model, path, mode="a", **other)
    with pytest.raises(ValueError, match="not both"):
        Recorder(model, tmp_path / "b.h5", sample=0.5, sketch=4)
