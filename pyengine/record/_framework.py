"""What the Lightning and Hugging Face callbacks share: the recorder they drive, and the loss of each step."""

from __future__ import annotations

import pathlib
import warnings

import torch

from pyengine.record.recorder import Recorder


class FrameworkRecording:
    """A :class:`~pyengine.record.Recorder` driven by a training framework's hooks.

    The framework reports each micro-batch loss (:meth:`add_loss`) and the optimizer step
    it reached (:meth:`reach`); every step in between is recorded with the step's loss.
    A step without a loss is recorded with NaN, said once in a warning; the recorder's
    ``/loss`` declares NaN a missing loss (``docs/format.md``).

    Parameters
    ----------
    owner : str
        The callback's name, for messages.
    path : str or Path
    every : int
    recorder : dict
        Further :class:`~pyengine.record.Recorder` arguments.

    Examples
    --------
    >>> rec = FrameworkRecording("PyengineCallback", "run.h5", 1, {})  # doctest: +SKIP
    >>> rec.start(model, optimizer, step=0, settings={"lightning": {}})  # doctest: +SKIP
    """

    def __init__(self, owner: str, path: str | pathlib.Path, every: int, recorder: dict) -> None:
        if "model" in recorder or "path" in recorder:
            raise TypeError(f"{owner}: the model comes from the trainer; give the path as the first argument")
        self.owner, self.path, self.every, self.kwargs = owner, pathlib.Path(path), every, dict(recorder)
        self.recorder: Recorder | None = None
        self._losses: list[torch.Tensor] = []
        self._missing = False

    def start(self, model: torch.nn.Module, optimizer, step: int, settings: dict) -> Recorder:
        """Create the recorder and its file; the run's optimizer steps so far are ``step``."""
        kwargs = dict(self.kwargs)
        settings = {**settings, **(kwargs.pop("settings", None) or {})}
        self.recorder = Recorder(model, self.path, self.every, optimizer=optimizer,
                                 start_step=kwargs.pop("start_step", step), settings=settings, **kwargs).open()
        return self.recorder

    def add_loss(self, loss: torch.Tensor | float) -> None:
        """One micro-batch's loss, as a scalar (a device tensor is not synchronised)."""
        self._losses.append(loss.detach().reshape(()) if isinstance(loss, torch.Tensor) else torch.tensor(float(loss)))

    def clear_losses(self) -> None:
        """Forget the losses added since the last step."""
        self._losses = []

    def reach(self, step: int, *, summed: bool = False) -> None:
        """Record every step up to the framework's optimizer step ``step``; the first gets the mean
        (or, with ``summed``, the sum) of the losses added since the last step."""
        rec = self.recorder
        if rec is None:
            return
        while rec.global_step < step:
            rec.step(self._take_loss(summed))

    def _take_loss(self, summed: bool) -> torch.Tensor | None:
        losses, self._losses = self._losses, []
        if losses:
            total = torch.stack([x.to(losses[0].device, torch.float32) for x in losses]).sum()
            return total if summed else total / len(losses)
        if not self._missing:
            self._missing = True
            warnings.warn(f"{self.owner}: no loss for step {self.recorder.global_step + 1}; it is recorded as NaN "
                          f"(no loss), as is any later step without one; the analysis of {self.path} will skip the loss "
                          "statistics and the MSL. Return the loss from the training step, or pass "
                          "it to log_loss().", UserWarning, stacklevel=3)
        return None

    def close(self) -> None:
        """Write every staged snapshot and close the file; idempotent."""
        rec, self.recorder = self.recorder, None
        if rec is None:
            return
        rec.close()


def versions(module) -> str:
    """A package's version, for the settings stored in the file."""
    return str(getattr(module, "__version__", "unknown"))
