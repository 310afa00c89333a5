"""Staging buffers and the background thread that writes them to a trajectory file."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np
import torch

from pyengine.store import TrajectoryWriter


class SnapshotBuffer:
    """Rows of snapshots waiting to be written together.

    A row is filled by copying the flattened parameters into ``weights[n]`` (asynchronously
    from a GPU: the buffer is pinned and ``ready`` is an event recorded after the copies).
    The loss is appended before the step, so an interrupted fill leaves ``steps`` as the
    count of complete rows.

    Parameters
    ----------
    rows, n_params : int
        Capacity (snapshots) and width P.
    dtype : torch.dtype
        Dtype of the rows (the file's).
    pin : bool
        Allocate page-locked memory (for asynchronous copies from a GPU).

    Examples
    --------
    >>> buf = SnapshotBuffer(4, 3, torch.float32, pin=False)
    >>> buf.full, buf.n
    (False, 0)
    """

    def __init__(self, rows: int, n_params: int, dtype: torch.dtype, pin: bool) -> None:
        self.weights = torch.empty((rows, n_params), dtype=dtype, pin_memory=pin)
        self.steps: list[int] = []
        self.losses: list[object] = []
        self.ready: torch.cuda.Event | None = None

    @property
    def n(self) -> int:
        """Number of complete rows."""
        return len(self.steps)

    @property
    def full(self) -> bool:
        return self.n == self.weights.shape[0]

    def clear(self) -> None:
        self.steps.clear()
        self.losses.clear()
        self.ready = None

    def write_to(self, writer: TrajectoryWriter) -> None:
        """Append the complete rows to the file (waiting for pending GPU copies first)."""
        if self.ready is not None:
            self.ready.synchronize()
        n = self.n
        losses = np.array([float(v) for v in self.losses[:n]], dtype=np.float64)
        writer.append(self.weights[:n].numpy(), np.array(self.steps, dtype=np.int64), losses)


class BackgroundWriter:
    """A thread that runs write jobs on a :class:`TrajectoryWriter`, in order, from a bounded queue.

    Snapshot buffers come from a fixed pool: :meth:`take` blocks while every buffer is
    queued or being written, which bounds memory and slows the producer down to the
    disk's pace instead of dropping snapshots. The first error of a job is kept and
    raised in the caller's thread by the next :meth:`take`, :meth:`put` or :meth:`close`.

    Parameters
    ----------
    writer : TrajectoryWriter
        The open file; the thread owns it until :meth:`close`.
    make_buffer : callable () -> SnapshotBuffer
        Allocates one staging buffer.
    n_buffers : int
        Size of the pool (at least 2: one filling, one writing).

    Examples
    --------
    >>> bg = BackgroundWriter(writer, lambda: SnapshotBuffer(64, P, torch.float32, False), 3)  # doctest: +SKIP
    >>> buf = bg.take(); ...; bg.put_buffer(buf); bg.close()  # doctest: +SKIP
    """

    def __init__(self, writer: TrajectoryWriter, make_buffer: Callable[[], SnapshotBuffer], n_buffers: int) -> None:
        if n_buffers < 2:
            raise ValueError(f"the staging pool needs at least 2 buffers, got {n_buffers}")
        self.writer = writer
        self.n_written = writer.n_snapshots
        self._free: queue.Queue[SnapshotBuffer] = queue.Queue()
        for _ in range(n_buffers):
            self._free.put(make_buffer())
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pyengine-recorder-writer", daemon=True)
        self._thread.start()

    def take(self) -> SnapshotBuffer:
        """An empty buffer from the pool (blocks while all are in use)."""
        self.raise_error()
        return self._free.get()

    def put_buffer(self, buf: SnapshotBuffer) -> None:
        """Queue a buffer's rows for writing; the buffer returns to the pool afterwards."""
        self.put(lambda: self._write(buf))

    def put(self, job: Callable[[], None]) -> None:
        """Queue a job to run in the writer thread, in order with the others."""
        self.raise_error()
        self._jobs.put(job)

    def raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"the recorder could not write {self.writer.path}: {self._error}") from self._error

    def close(self) -> None:
        """Finish every queued job, stop the thread, close the file; raise a job's error if any."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
            self.writer.close()
        self.raise_error()

    def _write(self, buf: SnapshotBuffer) -> None:
        try:
            if buf.n:
                buf.write_to(self.writer)
                self.n_written = self.writer.n_snapshots
        finally:
            buf.clear()
            self._free.put(buf)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except BaseException as exc:  # kept and raised in the training thread
                self._error = self._error or exc
