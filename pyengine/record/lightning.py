"""Record a PyTorch Lightning run: :class:`PyengineCallback`.

Examples
--------
>>> import lightning.pytorch as L  # doctest: +SKIP
>>> from pyengine.record.lightning import PyengineCallback
>>> trainer = L.Trainer(max_steps=3000, callbacks=[PyengineCallback("run.h5")])  # doctest: +SKIP
>>> trainer.fit(module, loader)  # doctest: +SKIP
"""

from __future__ import annotations

import pathlib

try:
    import lightning.pytorch as _pl
except ImportError:  # the standalone package of the same code
    try:
        import pytorch_lightning as _pl
    except ImportError:
        raise ImportError("pyengine.record.lightning needs PyTorch Lightning: pip install 'pyengine[lightning]'",
                          name="lightning") from None

from pyengine.record._framework import FrameworkRecording, versions

__all__ = ["PyengineCallback"]

#: Strategies that shard the parameters across processes: rank 0 does not hold them whole.
SHARDED_STRATEGIES = ("FSDP", "DeepSpeed")


class PyengineCallback(_pl.Callback):
    """Record the trainable parameters of a LightningModule after every ``every``-th optimizer step.

    A :class:`~pyengine.record.Recorder` over the LightningModule (parameter names as in
    its ``named_parameters()``), created when training starts and closed when it ends,
    also by an exception. Steps are Lightning's ``trainer.global_step`` (optimizer steps:
    with ``accumulate_grad_batches=k``, one per k batches); a run resumed from a
    checkpoint goes on from its step (``mode="a"`` appends to the file of the first part).
    The loss of a step is the mean of its batches' losses as ``training_step`` returned
    them (a tensor, or a dict's ``"loss"``); a step without one is recorded as NaN (see
    ``docs/recorder.md``). Only the global rank 0 process records (data-parallel ranks
    hold the same weights); sharded strategies (FSDP, DeepSpeed) are refused.

    Parameters
    ----------
    path : str or Path
        The trajectory file.
    every : int
        Record at optimizer steps that are multiples of ``every``.
    **recorder
        Further :class:`~pyengine.record.Recorder` arguments: ``params``, ``dtype``,
        ``compression``, ``probes``, ``settings`` (merged over ``{"lightning": ...}``:
        version, precision, accumulation, strategy, ``max_steps``, the module's
        ``hparams``), ``mode``, ``overwrite``, ``chunk_steps``, ``checksum``, ...

    Attributes
    ----------
    recorder : Recorder or None
        The recorder while training runs (None on other ranks, and before and after).

    Examples
    --------
    >>> trainer = L.Trainer(max_steps=3000, callbacks=[PyengineCallback("run.h5", every=10)])  # doctest: +SKIP
    """

    def __init__(self, path: str | pathlib.Path, every: int = 1, **recorder) -> None:
        super().__init__()
        self._recording = FrameworkRecording(type(self).__name__, path, every, recorder)

    @property
    def recorder(self):
        return self._recording.recorder

    def log_loss(self, loss) -> None:
        """The loss of the current batch, for a ``training_step`` that does not return it (manual optimization)."""
        self._recording.add_loss(loss)

    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        strategy = type(trainer.strategy).__name__
        if any(s in strategy for s in SHARDED_STRATEGIES):
            raise ValueError(f"PyengineCallback records whole parameters on rank 0, but {strategy} shards them "
                             "across processes; record with a data-parallel strategy (ddp) or a single device")
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        self._recording.start(pl_module, optimizer, trainer.global_step, {"lightning": _settings(trainer, pl_module)})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._recording.recorder is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None and hasattr(loss, "detach"):
            # Automatic optimization divides the loss it returns by the accumulation.
            scale = trainer.accumulate_grad_batches if pl_module.automatic_optimization else 1
            self._recording.add_loss(loss.detach() * scale)
        self._recording.reach(trainer.global_step)

    def on_train_end(self, trainer, pl_module) -> None:
        self._recording.close()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._recording.close()

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._recording.close()


def _settings(trainer, pl_module) -> dict:
    hparams = getattr(pl_module, "hparams", None)
    return {
        "version": versions(_pl),
        "precision": str(trainer.precision),
        "accumulate_grad_batches": trainer.accumulate_grad_batches,
        "strategy": type(trainer.strategy).__name__,
        "world_size": trainer.world_size,
        "max_steps": trainer.max_steps,
        "max_epochs": trainer.max_epochs,
        "hparams": dict(hparams) if hparams else {},
    }
