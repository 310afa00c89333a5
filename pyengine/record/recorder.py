"""The training recorder: weight snapshots of a PyTorch model, written in the background."""

from __future__ import annotations

import atexit
import pathlib
import signal
import threading
import time
from collections.abc import Sequence
from types import TracebackType

import numpy as np
import torch

from pyengine.record._background import BackgroundWriter, SnapshotBuffer
from pyengine.record._params import Flattener, select_params
from pyengine.record._settings import jsonable, model_settings, optimizer_settings
from pyengine.record.probes import Probe
from pyengine.record.reduce import DeferredSketch, Sample, Sketch, SketchReducer, make_reducer, reduction_spec
from pyengine.store import FormatError, TrajectoryWriter, open_trajectory
from pyengine.store._format import chunk_shape

#: Upper bound on the memory of all staging buffers together, in bytes.
STAGING_BYTES = 512 * 2**20


class Recorder:
    """Record the trainable parameters of a model at every ``every``-th optimizer step.

    Call :meth:`step` after each ``optimizer.step()`` (or :meth:`attach` the recorder to
    the optimizer). Each recorded step copies the selected parameters, flattened in
    ``named_parameters()`` order, into a staging buffer (pinned memory and an
    asynchronous copy when they live on a GPU); full buffers of ``chunk_steps`` rows are
    written whole by a background thread and flushed. The file (see ``docs/format.md``)
    gets ``/weights``, ``/step``, ``/loss``, the parameter table and the run settings;
    each probe's group is laid out before the first snapshot, and each probe result is
    appended (by the writer thread) right after the probe ran.

    Guarantees: a SWMR reader can open the file at any time and sees every flushed
    snapshot, and never makes the recorder fail; leaving the ``with`` block, also by an
    exception, Ctrl-C or SIGTERM, writes every staged snapshot and closes the file; after
    a hard kill the file holds every snapshot up to the last flush (a flush follows each
    chunk, and a partial chunk is flushed at the first step after it is
    ``flush_seconds`` old) and every probe row written before it, and ``mode="a"``
    resumes it.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained.
    path : str or Path
        The trajectory file.
    every : int
        Record at optimizer steps that are multiples of ``every``.
    params : sequence of str, optional
        Record only parameters matching a kind (``"weight"``, ``"bias"``, ``"norm"``,
        ``"other"``) or a glob pattern on the name; default all trainable parameters.
    dtype : {None, "float16", "float32", "float64"}
        Dtype of ``/weights``; default the parameters' dtype (float32 if that is not one
        of these), float64 for a sketch.
    compression : {None, "lz4", "gzip"}
        Lossless compression of ``/weights``.
    queue_size : int
        Chunks that may wait for the disk before :meth:`step` blocks.
    settings : dict, optional
        Run settings to store, e.g. ``{"batch_size": 64, "dataset_size": 1437, "seed": 0}``;
        merged over the automatic ones (model, optimizer, recorder, torch version).
    probes : sequence of Probe
        Measurements at chosen steps (:class:`~pyengine.record.EvalProbe`,
        :class:`~pyengine.record.NoiseProbe`), run after the snapshot of that step; at
        most one per group.
    optimizer : torch.optim.Optimizer, optional
        Stored in the settings (class, hyper-parameters); :meth:`attach` sets it too.
    mode : {"w", "a"}
        ``"w"`` creates the file; ``"a"`` resumes an existing one, also one left by a
        killed recorder: its parameter table must match and steps continue after its last
        one; probe rows past its last snapshot are dropped.
    overwrite : bool
        With ``mode="w"``, replace an existing file instead of refusing.
    start_step : int, optional
        Optimizer steps done before the first :meth:`step`; default 0, or the last
        recorded step of a resumed file.
    chunk_steps : int, optional
        Snapshots per write and per chunk of ``/weights`` (default
        ``pyengine.config.CHUNK_STEPS``, fewer if the staging buffers would exceed
        ``STAGING_BYTES``).
    flush_seconds : float
        Write a partial chunk once its first snapshot is this old.
    checksum : bool
        Store a CRC-32 of every row of every chunk column of ``/weights`` (new files;
        a resumed file keeps its choice), checked by ``pyengine info --verify``.
    sample : float or Sample, optional
        Record a seeded subset of the coordinates instead of all: each kept with
        probability f, stratified per parameter tensor by default
        (:class:`~pyengine.record.reduce.Sample` for uniform sampling or another seed).
    sketch : int or Sketch, optional
        Record a seeded CountSketch of the flat weight vector into k coordinates, computed
        on the parameters' device (:class:`~pyengine.record.reduce.Sketch`). Squared
        distances stay unbiased; per-coordinate statistics are not available
        (``docs/recorder.md``, "Sampled and sketched recordings").

    Raises
    ------
    FileExistsError
        ``mode="w"``, the file exists and ``overwrite`` is False.
    BlockingIOError
        At the first snapshot: another live process writes the file.
    FormatError
        ``mode="a"`` and the file does not match the model or the recorder's settings.
    ValueError, TypeError
        Bad arguments (no trainable parameter, unknown mode, ...).

    Examples
    --------
    >>> with Recorder(model, "run.h5", optimizer=opt, settings={"batch_size": 64, "seed": 0}) as rec:  # doctest: +SKIP
    ...     for x, y in loader:
    ...         opt.zero_grad()
    ...         loss = torch.nn.functional.cross_entropy(model(x), y)
    ...         loss.backward()
    ...         opt.step()
    ...         rec.step(loss)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        path: str | pathlib.Path,
        every: int = 1,
        params: Sequence[str] | None = None,
        dtype: str | None = None,
        compression: str | None = None,
        queue_size: int = 2,
        settings: dict | None = None,
        probes: Sequence[Probe] = (),
        *,
        optimizer: torch.optim.Optimizer | None = None,
        mode: str = "w",
        overwrite: bool = False,
        start_step: int | None = None,
        chunk_steps: int | None = None,
        flush_seconds: float = 10.0,
        checksum: bool = True,
        sample: float | Sample | None = None,
        sketch: int | Sketch | None = None,
    ) -> None:
        if int(every) < 1:
            raise ValueError(f"every must be >= 1 step, got {every}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1 chunk, got {queue_size}")
        if mode not in ("w", "a"):
            raise ValueError(f"mode must be 'w' (new file) or 'a' (resume), got {mode!r}")
        self.model, self.path, self.every, self.mode = model, pathlib.Path(path), int(every), mode
        self.params, self.table = select_params(model, params)
        self._flattener = Flattener(self.params)
        self.n_params = self.table[-1].offset + self.table[-1].size
        spec = reduction_spec(sample, sketch)
        self._reducer = None if spec is None else make_reducer(spec, self.table, self.params[0].device)
        #: Columns of /weights: P, or the kept coordinates / sketch size of a reduced recording.
        self.n_cols = self.n_params if self._reducer is None else self._reducer.n_cols
        default = "float64" if isinstance(spec, Sketch) else _file_dtype(self.params[0].dtype)
        self.dtype = np.dtype(dtype or default)
        # On the CPU the sketch runs in the writer thread, from a flat copy, beside training.
        self._deferred = DeferredSketch(self._reducer) if (
            isinstance(self._reducer, SketchReducer) and self.params[0].device.type == "cpu") else None
        self.compression, self.queue_size, self.flush_seconds = compression, queue_size, flush_seconds
        self.checksum = checksum
        self.probes = _check_probes(probes)
        self.optimizer = optimizer
        self.user_settings = dict(settings or {})
        self.overwrite = overwrite
        if mode == "w" and self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists: pass mode='a' to append to it (resumed training), "
                                  "overwrite=True to replace it, or choose another path")
        last = self._check_resumable() if mode == "a" and self.path.exists() else None
        if start_step is None:
            start_step = 0 if last is None else last
        if last is not None and start_step < last:
            raise ValueError(f"{self.path} ends at step {last}; a resumed run must start at step >= {last}, "
                             f"got start_step={start_step}")
        self.global_step = int(start_step)
        rows = chunk_steps or chunk_shape(self.n_cols, None, None)[0]
        row_bytes = self.n_cols * self.dtype.itemsize
        self.chunk_steps = max(1, min(rows, STAGING_BYTES // ((queue_size + 2) * row_bytes)))
        self._bg: BackgroundWriter | None = None
        self._buf: SnapshotBuffer | None = None
        self._buf_since = 0.0
        self._pending_loss: object = float("nan")
        self._hooks: list = []
        self._old_sigterm = None

    # -- user API ------------------------------------------------------------------

    def step(self, loss: float | torch.Tensor | None = None) -> None:
        """Count one optimizer step; record the weights and run due probes.

        Parameters
        ----------
        loss : float or scalar tensor, optional
            Minibatch loss of the step (NaN if None). A GPU tensor is read in the
            writer thread, so recording does not synchronise the device.

        Examples
        --------
        >>> opt.step(); rec.step(loss)  # doctest: +SKIP
        """
        self.global_step += 1
        if self.global_step % self.every == 0:
            self._snapshot(float("nan") if loss is None else _detached(loss))
        for probe in self.probes:
            if probe.due(self.global_step):
                self._run_probe(probe)
        # A buffer is written after the probe rows of its steps: a snapshot on disk implies its probe rows are.
        buf = self._buf
        if buf is not None and (buf.full or time.monotonic() - self._buf_since > self.flush_seconds):
            self._submit(self._bg)

    def attach(self, optimizer: torch.optim.Optimizer) -> Recorder:
        """Call :meth:`step` after every ``optimizer.step()`` (a step post-hook).

        The loss recorded is the last one passed to :meth:`log_loss` since the
        previous step (NaN if none). The optimizer's settings are stored too.

        Returns
        -------
        Recorder
            ``self``.

        Examples
        --------
        >>> rec = Recorder(model, "run.h5").attach(opt)  # doctest: +SKIP
        >>> with rec:  # doctest: +SKIP
        ...     loss.backward(); rec.log_loss(loss); opt.step()
        """
        self.optimizer = optimizer
        self._hooks.append(optimizer.register_step_post_hook(lambda *_: self._hooked_step()))
        return self

    def log_loss(self, loss: float | torch.Tensor) -> None:
        """The loss of the coming optimizer step, for a recorder used through :meth:`attach`."""
        self._pending_loss = _detached(loss)

    @property
    def n_flushed(self) -> int:
        """Snapshots in the file on disk so far (including those of a resumed file)."""
        return 0 if self._bg is None else self._bg.n_written

    def open(self) -> Recorder:
        """Create (or reopen) the file and start the writer thread; :meth:`step` does it when needed.

        Examples
        --------
        >>> rec = Recorder(model, "run.h5").open()  # doctest: +SKIP
        """
        if self._bg is not None:
            return self
        groups = [probe.layout(self.n_params, self.table) for probe in self.probes]
        red = self._reducer
        writer = TrajectoryWriter(
            self.path, self.n_cols, dtype=self.dtype, params=self.table if red is None else red.table,
            attrs=self.settings(), compression=self.compression, chunk_steps=self.chunk_steps,
            mode=self.mode if self.path.exists() else "w", swmr=True, overwrite=self.overwrite,
            checksum=self.checksum, groups=groups, reduction=self.reduction, kept_index=getattr(red, "kept", None),
            missing_loss=True,  # step() without a loss records NaN
        )
        pin = self.params[0].is_cuda

        def make_buffer():
            return SnapshotBuffer(self.chunk_steps, self.n_cols, _torch_dtype(self.dtype), pin)

        self._bg = BackgroundWriter(writer, make_buffer, self.queue_size + 1)
        atexit.register(self.close)
        return self

    def close(self) -> None:
        """Write every staged snapshot, stop the writer thread and close the file; idempotent.

        Examples
        --------
        >>> rec.close()  # doctest: +SKIP
        """
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        if self._bg is None:
            return
        bg, self._bg = self._bg, None
        atexit.unregister(self.close)
        try:
            if self._buf is not None:
                self._submit(bg)
        finally:
            bg.close()

    def settings(self) -> dict:
        """The run settings stored in the file (root attribute ``settings``).

        Examples
        --------
        >>> Recorder(model, "run.h5", settings={"seed": 0}).settings()["seed"]  # doctest: +SKIP
        0
        """
        auto = {
            "model": model_settings(self.model, self.n_params),
            "optimizer": None if self.optimizer is None else optimizer_settings(self.optimizer),
            "recorder": {"every": self.every, "dtype": str(self.dtype), "n_params": self.n_params,
                         "reduction": None if self.reduction is None else self.reduction.to_dict(),
                         "params": [p.name for p in self.table] if len(self.table) < 1000 else None,
                         "probes": [p.describe() for p in self.probes]},
            "torch_version": torch.__version__,
        }
        return jsonable({**auto, **self.user_settings})

    @property
    def reduction(self):
        """How the columns relate to the parameters (:class:`pyengine.store.reduction.Reduction`),
        or None when every parameter is recorded."""
        return None if self._reducer is None else self._reducer.reduction

    def __enter__(self) -> Recorder:
        self.open()
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            self._old_sigterm = signal.signal(signal.SIGTERM, _raise_system_exit)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None
        self.close()

    def __repr__(self) -> str:
        reduced = "" if self.reduction is None else f", {self.reduction.method} into {self.n_cols} columns"
        return (f"<Recorder {str(self.path)!r}: P={self.n_params}{reduced} {self.dtype}, every {self.every}, "
                f"step {self.global_step}, {self.n_flushed} snapshots on disk>")

    # -- internals -----------------------------------------------------------------

    def _hooked_step(self) -> None:
        loss, self._pending_loss = self._pending_loss, float("nan")
        self.step(loss)

    def _snapshot(self, loss: object) -> None:
        self.open()
        if self._buf is None:
            self._buf = self._bg.take()
            self._buf_since = time.monotonic()
        buf = self._buf
        if self._reducer is None:
            self._flattener.copy_into(buf.weights[buf.n])
        elif self._deferred is not None:
            self._deferred.copy_into(self.params, buf.weights[buf.n], self._bg.put)
        else:
            self._reducer.copy_into(self.params, buf.weights[buf.n])
        buf.losses.append(loss)
        buf.steps.append(self.global_step)

    def _submit(self, bg: BackgroundWriter) -> None:
        buf, self._buf = self._buf, None
        if self.params[0].is_cuda:
            buf.ready = torch.cuda.Event()
            buf.ready.record()
        bg.put_buffer(buf)

    def _run_probe(self, probe: Probe) -> None:
        self.open()
        probe.run(self.model, self.params, self.global_step)
        row, writer = probe.take_row(), self._bg.writer
        self._bg.put(lambda: writer.append_row(probe.group, row))

    def _check_resumable(self) -> int | None:
        with open_trajectory(self.path) as traj:
            self._check_same_reduction(traj)
            table = self.table if self._reducer is None else self._reducer.table
            if traj.params != table:
                raise FormatError(f"{self.path}: /params does not match the model: {_table_difference(traj.params, table)}")
            if traj.dtype != self.dtype:
                raise FormatError(f"{self.path}: /weights is {traj.dtype}, the recorder writes {self.dtype}")
            every = (traj.attrs.get("recorder") or {}).get("every", self.every)
            if every != self.every:
                raise ValueError(f"{self.path} was recorded every {every} steps; resume with every={every}, "
                                 f"got every={self.every}")
            return int(traj.steps[-1]) if traj.n_snapshots else None

    def _check_same_reduction(self, traj) -> None:
        """A resumed file continues its reduction; a sample continues with the file's kept coordinates."""
        held, mine = traj.reduction, self.reduction
        if held != mine:
            what = "every parameter" if held is None else held.describe()
            wanted = "every parameter" if mine is None else mine.describe()
            if what == wanted:
                raise FormatError(f"{self.path}: /params_full does not match the model: "
                                  f"{_table_difference(list(held.full_params), list(mine.full_params))}")
            raise FormatError(f"{self.path} records {what}, but this recorder records {wanted}: resume with the "
                              "recorded run's sample=/sketch= settings (Sample/Sketch with its seed), or record to a "
                              "new file")
        kept = traj.kept_index()
        if kept is not None and not np.array_equal(kept, self._reducer.kept):  # drawn by another numpy: keep the file's
            self._reducer = make_reducer(Sample(held.fraction, held.stratified, held.seed), self.table,
                                         self.params[0].device, kept=kept)


def _check_probes(probes: Sequence[Probe]) -> list[Probe]:
    probes = list(probes)
    for probe in probes:
        if not isinstance(probe, Probe):
            raise TypeError(f"probes must be Probe objects (EvalProbe, NoiseProbe, ...), got {type(probe).__name__}")
    groups = [probe.group for probe in probes]
    twice = sorted({g for g in groups if groups.count(g) > 1})
    if twice:
        raise ValueError(f"probes: several probes write /{twice[0]}; give one probe per group "
                         "(an EvalProbe takes a dict of data sets)")
    return probes


def _detached(loss: float | torch.Tensor) -> object:
    if isinstance(loss, torch.Tensor):
        if loss.numel() != 1:
            raise ValueError(f"loss must be a scalar, got a tensor of shape {tuple(loss.shape)}")
        return loss.detach() if loss.is_cuda else float(loss.detach())
    return float(loss)


def _file_dtype(dtype: torch.dtype) -> str:
    return {torch.float16: "float16", torch.float64: "float64"}.get(dtype, "float32")


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}[dtype.name]


def _table_difference(stored, current) -> str:
    for i, (a, b) in enumerate(zip(stored, current)):
        if a != b:
            return f"entry {i} is {a} in the file but {b} in the model"
    return f"the file has {len(stored)} tensors, the model {len(current)}"


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
