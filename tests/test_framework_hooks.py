"""The PyTorch Lightning and Hugging Face Trainer callbacks over the Recorder, run with the real
packages on tiny models: every optimizer step's weights, the step's loss, the settings."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pyengine.store import open_trajectory, validate  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters() if p.requires_grad]).clone().numpy()


def recorded(path):
    with open_trajectory(path) as traj:
        return traj.read_block(0, traj.n_params), traj.steps, traj.loss, traj.attrs


def toy_loader(batch=16):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(96, 4, generator=gen), torch.randint(0, 3, (96,), generator=gen)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch)


# -- PyTorch Lightning ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def L():
    L = pytest.importorskip("lightning.pytorch", reason="PyTorch Lightning is not installed (pip install "
                                                        "'pyengine[lightning]')")
    return L


def lightning_module(L, manual=False):
    class Net(L.LightningModule):
        def __init__(self, lr=0.1):
            super().__init__()
            self.save_hyperparameters()
            torch.manual_seed(0)
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                           torch.nn.Linear(8, 3))
            self.automatic_optimization = not manual
            self.batch_losses = []

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.batch_losses.append(loss.item())
            if not manual:
                return loss
            opt = self.optimizers()
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
            return None  # no loss returned: the callback records NaN

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    return Net()


def lightning_trainer(L, callbacks, **kwargs):
    class Snapshots(L.Callback):
        def __init__(self):
            self.rows, self.steps = [], []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step > len(self.steps):
                self.rows.append(flat(module))
                self.steps.append(trainer.global_step)

    snapshots = Snapshots()
    trainer = L.Trainer(callbacks=[*callbacks, snapshots], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1, **kwargs)
    return trainer, snapshots


def test_lightning_records_every_optimizer_step_with_its_loss(L, tmp_path):
    from pyengine.record.lightning import PyengineCallback

    module = lightning_module(L)
    callback = PyengineCallback(tmp_path / "run.h5", settings={"batch_size": 16})
    trainer, snapshots = lightning_trainer(L, [callback], max_steps=4, accumulate_grad_batches=2)
    trainer.fit(module, toy_loader())
    weights, steps, loss, attrs = recorded(tmp_path / "run.h5")
    np.testing.assert_array_equal(steps, [1, 2, 3, 4])
    np.testing.assert_array_equal(weights, np.stack(snapshots.rows))
    expected = np.asarray(module.batch_losses).reshape(4, 2).mean(axis=1)  # two batches per optimizer step
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert attrs["lightning"]["accumulate_grad_batches"] == 2 and attrs["lightning"]["hparams"] == {"lr": 0.1}
    assert attrs["batch_size"] == 16 and attrs["optimizer"]["param_groups"][0]["lr"] == 0.1
    assert callback.recorder is None  # closed at the end of training


def test_lightning_every_and_a_failure_keep_the_file(L, tmp_path):
    from pyengine.record.lightning import PyengineCallback

    module = lightning_module(L)
    step = module.training_step

    def failing(batch, batch_idx):
        if batch_idx == 5:
            raise RuntimeError("diverged")
        return step(batch, batch_idx)

    module.training_step = failing
    trainer, snapshots = lightning_trainer(L, [PyengineCallback(tmp_path / "run.h5", every=2)], max_steps=10)
    with pytest.raises(RuntimeError, match="diverged"):
        trainer.fit(module, toy_loader())
    weights, steps, _, _ = recorded(tmp_path / "run.h5")
    np.testing.assert_array_equal(steps, [2, 4])
    np.testing.assert_array_equal(weights, np.stack(snapshots.rows)[[1, 3]])


def test_lightning_without_a_loss_records_nan_and_declares_it(L, tmp_path):
    from pyengine.record.lightning import PyengineCallback

    trainer, snapshots = lightning_trainer(L, [PyengineCallback(tmp_path / "run.h5")], max_steps=3)
    with pytest.warns(UserWarning, match="PyengineCallback: no loss for step 1; it is recorded as NaN"):
        trainer.fit(lightning_module(L, manual=True), toy_loader())
    weights, steps, loss, _ = recorded(tmp_path / "run.h5")
    np.testing.assert_array_equal(steps, [1, 2, 3])
    np.testing.assert_array_equal(weights, np.stack(snapshots.rows))
    assert np.isnan(loss).all() and validate(tmp_path / "run.h5").ok


# -- Hugging Face transformers ----------------------------------------------------------------


@pytest.fixture(scope="module")
def hf():
    return pytest.importorskip("transformers", reason="transformers is not installed (pip install "
                                                      "'pyengine[transformers]')")


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n=48, length=8, vocab=16):
        self.ids = torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


class Regression(torch.nn.Module):
    """A plain torch model returning {"loss": ...}: the Trainer passes it no num_items_in_batch."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(16, 4)
        self.norm = torch.nn.LayerNorm(4)
        self.head = torch.nn.Linear(4, 16)

    def forward(self, input_ids, labels=None):
        logits = self.head(self.norm(self.embed(input_ids)))
        return {"loss": torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten()), "logits": logits}


def hf_run(hf, model, path, tmp_path, **recorder):
    from pyengine.record.huggingface import PyengineCallback

    class Snapshots(hf.TrainerCallback):
        def __init__(self):
            self.rows, self.losses = [], []

        def on_step_end(self, args, state, control, model=None, **kwargs):
            self.rows.append(flat(model))

        def on_log(self, args, state, control, logs=None, **kwargs):
            if "loss" in logs:
                self.losses.append(logs["loss"])

    snapshots = Snapshots()
    args = hf.TrainingArguments(output_dir=str(tmp_path / "hf"), max_steps=3, per_device_train_batch_size=4,
                                gradient_accumulation_steps=2, learning_rate=0.01, logging_steps=1,
                                save_strategy="no", report_to=[], disable_tqdm=True, use_cpu=True, seed=0)
    callback = PyengineCallback(path, **recorder)
    trainer = hf.Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[callback, snapshots])
    trainer.train()
    return snapshots, callback


@pytest.mark.parametrize("kind", ["gpt2", "plain"])
def test_hugging_face_records_every_step_with_the_logged_loss(hf, tmp_path, kind):
    if kind == "gpt2":  # the Trainer passes num_items_in_batch: micro-batch losses add up
        torch.manual_seed(0)
        model = hf.GPT2LMHeadModel(hf.GPT2Config(vocab_size=16, n_positions=8, n_embd=8, n_layer=1, n_head=2,
                                                 bos_token_id=0, eos_token_id=0))
    else:  # the mean of the micro-batch losses
        model = Regression()
    snapshots, callback = hf_run(hf, model, tmp_path / "run.h5", tmp_path, settings={"seed": 0})
    weights, steps, loss, attrs = recorded(tmp_path / "run.h5")
    np.testing.assert_array_equal(steps, [1, 2, 3])
    np.testing.assert_array_equal(weights, np.stack(snapshots.rows))
    np.testing.assert_allclose(loss, snapshots.losses, rtol=1e-5)  # what the Trainer logs with logging_steps=1
    assert attrs["transformers"]["gradient_accumulation_steps"] == 2 and attrs["seed"] == 0
    assert attrs["optimizer"]["class"].startswith("torch.optim") and attrs["optimizer"]["param_groups"]
    assert callback.recorder is None


def test_hugging_face_log_loss_for_a_loss_outside_the_model(hf, tmp_path):
    from pyengine.record.huggingface import PyengineCallback

    class NoLoss(Regression):
        def forward(self, input_ids, labels=None):
            return {"logits": self.head(self.norm(self.embed(input_ids)))}

    callback = PyengineCallback(tmp_path / "run.h5")
    losses = []

    class Trainer(hf.Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            logits = model(**inputs)["logits"]
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
            callback.log_loss(loss)
            losses.append(loss.item())
            return loss

    args = hf.TrainingArguments(output_dir=str(tmp_path / "hf"), max_steps=2, per_device_train_batch_size=4,
                                logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=True, use_cpu=True)
    Trainer(model=NoLoss(), args=args, train_dataset=Tokens(), callbacks=[callback]).train()
    _, steps, loss, _ = recorded(tmp_path / "run.h5")
    np.testing.assert_array_equal(steps, [1, 2])
    np.testing.assert_allclose(loss, losses, rtol=1e-6)
