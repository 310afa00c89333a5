"""Record a Hugging Face ``transformers`` Trainer run: :class:`PyengineCallback`.

Examples
--------
>>> from transformers import Trainer
>>> from pyengine.record.huggingface import PyengineCallback
>>> callbacks = [PyengineCallback("run.h5")]
>>> trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=callbacks)  # doctest: +SKIP
>>> trainer.train()  # doctest: +SKIP
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

import torch

try:
    import transformers as _transformers
    from transformers import TrainerCallback
except ImportError:
    raise ImportError("pyengine.record.huggingface needs transformers: pip install 'pyengine[transformers]'",
                      name="transformers") from None

from pyengine.record._framework import FrameworkRecording, versions

__all__ = ["PyengineCallback"]

#: TrainingArguments stored in the file's settings (``{"transformers": {...}}``).
STORED_ARGS = ("per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate", "weight_decay",
               "lr_scheduler_type", "warmup_steps", "max_steps", "num_train_epochs", "optim", "seed", "bf16", "fp16",
               "max_grad_norm", "world_size")


class PyengineCallback(TrainerCallback):
    """Record the trainable parameters of a ``transformers.Trainer``'s model after every ``every``-th optimizer step.

    A :class:`~pyengine.record.Recorder` over the Trainer's model (parameter names as in
    its ``named_parameters()``; only the trainable ones, so a PEFT/LoRA run records its
    adapters), created when training begins and closed when it ends. Steps are the
    Trainer's ``state.global_step`` (optimizer steps); a run resumed from a checkpoint
    goes on from its step (``mode="a"`` appends to the file of the first part).

    The loss of a step is taken from the model's output (its ``loss``, as the Trainer
    uses it): the mean of the step's micro-batch losses under gradient accumulation, or
    their sum when the Trainer passes the model ``num_items_in_batch`` (each micro-batch
    loss is then already divided by the step's token count), so it equals the loss the
    Trainer logs with ``logging_steps=1``. When the loss is computed outside the model
    (a ``compute_loss`` override, ``compute_loss_func``, label smoothing), pass it to
    :meth:`log_loss`; a step without a loss is recorded as NaN (see ``docs/recorder.md``).
    Only the main process records (``state.is_world_process_zero``); under data
    parallelism the loss is that process's share.

    Parameters
    ----------
    path : str or Path
        The trajectory file.
    every : int
        Record at optimizer steps that are multiples of ``every``.
    **recorder
        Further :class:`~pyengine.record.Recorder` arguments: ``params``, ``dtype``,
        ``compression``, ``probes``, ``settings`` (merged over ``{"transformers": ...}``:
        version and the main ``TrainingArguments``), ``mode``, ``overwrite``, ...

    Attributes
    ----------
    recorder : Recorder or None
        The recorder while training runs (None on other processes, and before and after).

    Examples
    --------
    >>> trainer.add_callback(PyengineCallback("run.h5", every=10, compression="lz4"))  # doctest: +SKIP
    """

    def __init__(self, path: str | pathlib.Path, every: int = 1, **recorder) -> None:
        self._recording = FrameworkRecording(type(self).__name__, path, every, recorder)
        self._hook = None
        self._summed = False
        self._logged = False

    @property
    def recorder(self):
        return self._recording.recorder

    def log_loss(self, loss) -> None:
        """The loss of the current micro-batch, when the model's output has none (called from
        a ``compute_loss`` override); the model's own loss is then ignored for the step."""
        if not self._logged:
            self._logged = True
            self._recording.clear_losses()
        self._recording.add_loss(loss)

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        self.on_train_end(args, state, control)  # an earlier train() that failed: its file is closed first
        if not state.is_world_process_zero or model is None:
            return
        settings = {"version": versions(_transformers), **{k: getattr(args, k, None) for k in STORED_ARGS}}
        optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it
        self._recording.start(model, optimizer, state.global_step, {"transformers": settings})
        self._hook = model.register_forward_hook(self._capture, with_kwargs=True)

    def _capture(self, module: torch.nn.Module, args: tuple, kwargs: dict, output) -> None:
        if self._logged or not module.training or not torch.is_grad_enabled():
            return
        loss = output.get("loss") if isinstance(output, Mapping) else getattr(output, "loss", None)
        if loss is None and isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor) \
                and output[0].ndim == 0:
            loss = output[0]  # return_dict=False: the loss comes first
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self._recording.add_loss(loss)
            self._summed = kwargs.get("num_items_in_batch") is not None

    def on_step_end(self, args, state, control, **kwargs):
        self._recording.reach(state.global_step, summed=self._summed and not self._logged)

    def on_train_end(self, args, state, control, **kwargs):
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._recording.close()
