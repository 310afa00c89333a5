"""Writing trajectory files: :class:`TrajectoryWriter` (appendable, SWMR) and :func:`write_trajectory`."""

from __future__ import annotations

import datetime
import json
import pathlib
from types import TracebackType

import h5py
import hdf5plugin
import numpy as np

from pyengine.store._checks import check_structure, format_errors
from pyengine.store._format import (
    CHUNK_ROWS_1D,
    FORMAT_NAME,
    FORMAT_VERSION,
    OPTIONAL_GROUPS,
    WEIGHT_DTYPES,
    FormatError,
    ParamInfo,
    check_params,
    chunk_shape,
    default_params,
    params_to_table,
)

COMPRESSIONS = (None, "lz4", "gzip")


class TrajectoryWriter:
    """Append weight snapshots, steps and losses to a trajectory file.

    Each :meth:`append` writes the rows of ``/weights`` first, then ``/step``, then
    ``/loss``, and flushes; after a crash the reader keeps the complete snapshots. With
    ``swmr=True`` readers may follow the file while it is written
    (``open_trajectory`` + :meth:`Trajectory.refresh`).

    Parameters
    ----------
    path : str or Path
        The file.
    n_params : int
        Number of parameters P (columns of ``/weights``).
    dtype : str or dtype
        ``float16``, ``float32`` (default) or ``float64``.
    params : list of ParamInfo, optional
        Parameter table tiling ``[0, P)``; default one ``"other"`` entry covering all.
    attrs : dict, optional
        Model, optimizer and data settings, stored as JSON in the root attribute
        ``settings``. In append mode they are merged into the stored settings.
    compression : {None, "lz4", "gzip"}
        Lossless compression of ``/weights``: Blosc LZ4 with byte shuffle (hdf5plugin)
        or gzip level 4 with shuffle.
    chunk_steps, chunk_params : int, optional
        Chunk shape of ``/weights``; see :func:`pyengine.store._format.chunk_shape`.
    mode : {"w", "a"}
        ``"w"`` creates the file, ``"a"`` appends to an existing valid one (``n_params``,
        ``dtype`` and, when given, ``params`` must match; steps must continue to
        increase). Compression and chunking of an existing file are kept.
    swmr : bool
        Switch on single-writer/multiple-reader mode once the datasets exist.
    overwrite : bool
        In mode ``"w"``, replace an existing file instead of refusing.

    Raises
    ------
    FileExistsError
        Mode ``"w"``, the file exists and ``overwrite`` is False.
    FormatError
        Mode ``"a"`` and the file is not a valid trajectory or does not match.

    Examples
    --------
    >>> with TrajectoryWriter("run.h5", n_params=10, attrs={"lr": 0.1}) as w:  # doctest: +SKIP
    ...     w.append(np.zeros(10), step=0, loss=2.3)
    ...     w.append(np.ones((2, 10)), step=[1, 2], loss=[2.1, 2.0])
    """

    def __init__(
        self,
        path: str | pathlib.Path,
        n_params: int,
        *,
        dtype: str | np.dtype = "float32",
        params: list[ParamInfo] | None = None,
        attrs: dict | None = None,
        compression: str | None = None,
        chunk_steps: int | None = None,
        chunk_params: int | None = None,
        mode: str = "w",
        swmr: bool = True,
        overwrite: bool = False,
    ) -> None:
        if n_params < 1:
            raise ValueError(f"n_params must be >= 1, got {n_params}")
        self.path = pathlib.Path(path)
        self.dtype = _weight_dtype(dtype)
        if mode == "w":
            self._file = _create(self.path, n_params, self.dtype, params, attrs, compression,
                                 chunk_shape(n_params, chunk_steps, chunk_params), overwrite)
        elif mode == "a":
            self._file = _open_for_append(self.path, n_params, self.dtype, params, attrs)
        else:
            raise ValueError(f"mode must be 'w' (create) or 'a' (append), got {mode!r}")
        self.n_params = n_params
        self._weights, self._step, self._loss = (self._file[name] for name in ("weights", "step", "loss"))
        steps = self._step[:]
        self._last_step = int(steps[-1]) if steps.size else None
        if swmr:
            self._file.swmr_mode = True

    @property
    def n_snapshots(self) -> int:
        """Number of snapshots written so far (including those of a resumed file)."""
        return self._loss.shape[0]

    def append(self, weights: np.ndarray, step: int | np.ndarray, loss: float | np.ndarray) -> None:
        """Append one snapshot or k snapshots.

        Parameters
        ----------
        weights : array_like, shape (P,) or (k, P)
            Flattened parameters; cast to the file dtype.
        step : int or array_like of int, shape (k,)
            Optimizer steps, strictly increasing and greater than every step written.
        loss : float or array_like, shape (k,)
            Minibatch losses.

        Raises
        ------
        ValueError
            Wrong shapes or steps that do not increase.

        Examples
        --------
        >>> writer.append(np.zeros(10), step=3, loss=1.5)  # doctest: +SKIP
        """
        w, s, losses = self._coerce(weights, step, loss)
        n0 = self.n_snapshots
        n1 = n0 + len(s)
        for dataset, rows in ((self._weights, w), (self._step, s), (self._loss, losses)):
            dataset.resize(n1, axis=0)
            dataset[n0:n1] = rows
        self._file.flush()
        self._last_step = int(s[-1])

    def _coerce(self, weights: np.ndarray, step: int | np.ndarray,
                loss: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = np.asarray(weights, dtype=self.dtype)
        w = w[None] if w.ndim == 1 else w
        s = np.atleast_1d(np.asarray(step))
        losses = np.atleast_1d(np.asarray(loss, dtype=np.float64))
        if w.ndim != 2 or w.shape[1] != self.n_params:
            raise ValueError(
                f"weights must have shape (P,) or (k, P) with P = {self.n_params}, got {np.shape(weights)}")
        if not np.issubdtype(s.dtype, np.integer):
            raise ValueError(f"step must be integers, got dtype {s.dtype}")
        if s.shape != (len(w),) or losses.shape != (len(w),):
            raise ValueError(
                f"{len(w)} snapshots need {len(w)} steps and losses, got shapes {s.shape} and {losses.shape}")
        previous = np.concatenate([[self._last_step], s]) if self._last_step is not None else s
        bad = np.flatnonzero(np.diff(previous) <= 0)
        if bad.size:
            raise ValueError(f"steps must increase strictly: step {previous[bad[0] + 1]} after {previous[bad[0]]}")
        return w, s.astype(np.int64), losses

    def write_group(self, name: str, datasets: dict[str, np.ndarray], attrs: dict | None = None) -> None:
        """Create or replace an optional group: ``eval``, ``noise``, ``hessian`` or ``landscape/<name>``.

        HDF5's SWMR protocol covers appends to existing datasets; readers following the
        file see a group written during the run once they reopen it. Dict-valued
        attributes are stored as JSON strings.

        Parameters
        ----------
        name : str
            Group path.
        datasets : dict of str to array_like
            Datasets of the group (see ``docs/format.md`` for the conventional names).
        attrs : dict, optional
            Attributes of the group.

        Examples
        --------
        >>> writer.write_group("eval", {"step": [0, 100], "loss": [2.3, 0.4]})  # doctest: +SKIP
        >>> writer.write_group("landscape/pca", {"x": xs, "y": ys, "loss": z}, {"normalization": "filter"})  # doctest: +SKIP
        """
        _check_group_name(name)
        if name in self._file:
            del self._file[name]
        group = self._file.create_group(name)
        for key, value in datasets.items():
            group.create_dataset(key, data=np.asarray(value))
        for key, value in (attrs or {}).items():
            group.attrs[key] = json.dumps(value) if isinstance(value, dict) else value
        self._file.flush()

    def flush(self) -> None:
        """Write buffered data to disk.

        Examples
        --------
        >>> writer.flush()  # doctest: +SKIP
        """
        self._file.flush()

    def close(self) -> None:
        """Flush and close the file; closing twice is harmless.

        Examples
        --------
        >>> writer.close()  # doctest: +SKIP
        """
        if self._file.id.valid:
            self._file.flush()
            self._file.close()

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TrajectoryWriter {str(self.path)!r}: {self.n_snapshots} snapshots x P={self.n_params} {self.dtype}>"


def write_trajectory(
    path: str | pathlib.Path,
    weights: np.ndarray,
    steps: np.ndarray | None = None,
    loss: np.ndarray | None = None,
    *,
    params: list[ParamInfo] | None = None,
    attrs: dict | None = None,
    **writer_kwargs: object,
) -> pathlib.Path:
    """Write a whole (N, P) weight matrix as a trajectory file.

    Parameters
    ----------
    path : str or Path
        The file to create.
    weights : array_like, shape (N, P)
        The snapshots. The file dtype defaults to the array's when it is float16/32/64.
    steps : array_like of int, shape (N,), optional
        Strictly increasing steps; default ``0, 1, ..., N-1``.
    loss : array_like, shape (N,), optional
        Losses; default zeros.
    params, attrs
        As for :class:`TrajectoryWriter`.
    **writer_kwargs
        Passed on to :class:`TrajectoryWriter` (``compression``, ``chunk_steps``,
        ``overwrite``, ``dtype``, ...).

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> x = np.cumsum(np.random.default_rng(0).normal(size=(100, 50)), axis=0)
    >>> write_trajectory("bm.h5", x, compression="lz4", overwrite=True)  # doctest: +SKIP
    PosixPath('bm.h5')
    """
    w = np.asarray(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D array (N snapshots, P parameters), got shape {w.shape}")
    n = len(w)
    steps = np.arange(n) if steps is None else steps
    loss = np.zeros(n) if loss is None else loss
    writer_kwargs.setdefault("dtype", w.dtype if w.dtype in WEIGHT_DTYPES else np.float32)
    with TrajectoryWriter(path, w.shape[1], params=params, attrs=attrs, swmr=False, **writer_kwargs) as writer:
        if n:
            writer.append(w, steps, loss)
    return pathlib.Path(path)


def _weight_dtype(dtype: str | np.dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in WEIGHT_DTYPES:
        raise ValueError(f"dtype must be float16, float32 or float64, got {dt}")
    return dt


def _settings_json(attrs: dict | None) -> str:
    try:
        return json.dumps(attrs or {}, sort_keys=True)
    except TypeError as exc:
        raise TypeError(f"attrs must be JSON-serializable (numbers, strings, lists, dicts): {exc}") from exc


def _compression_kwargs(compression: str | None) -> dict:
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    if compression == "lz4":
        return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    return {}


#: Chunks of 256 KiB and more start on a page boundary (at most 1.6% of padding), so that a
#: reader can map a chunk column in place (``Trajectory.map_block``) instead of copying it.
_ALIGN_CHUNKS = {"alignment_threshold": 2**18, "alignment_interval": 4096}


def _create(path: pathlib.Path, n_params: int, dtype: np.dtype, params: list[ParamInfo] | None,
            attrs: dict | None, compression: str | None, chunks: tuple[int, int], overwrite: bool) -> h5py.File:
    params = default_params(n_params) if params is None else list(params)
    problems = check_params(params, n_params)
    if problems:
        raise FormatError("; ".join(problems))
    settings = _settings_json(attrs)
    filters = _compression_kwargs(compression)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: pass overwrite=True to replace it, or mode='a' to append to it")
    f = h5py.File(path, "w", libver="latest", **_ALIGN_CHUNKS)
    f.create_dataset("weights", shape=(0, n_params), maxshape=(None, n_params), dtype=dtype, chunks=chunks, **filters)
    for name, dt in (("step", np.int64), ("loss", np.float64)):
        f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(CHUNK_ROWS_1D,))
    f.create_dataset("params", data=params_to_table(params))
    f.attrs.update(format=FORMAT_NAME, format_version=np.int64(FORMAT_VERSION), created=_now(),
                   producer=_producer(), settings=settings)
    return f


def _open_for_append(path: pathlib.Path, n_params: int, dtype: np.dtype, params: list[ParamInfo] | None,
                     attrs: dict | None) -> h5py.File:
    f = h5py.File(path, "r+", libver="latest", **_ALIGN_CHUNKS)
    try:
        layout = check_structure(f)
        _check_resumable(f, layout.errors, n_params, dtype, params, layout.params)
        if layout.errors:
            raise FormatError(format_errors(path, layout.errors) + "\n(cannot append to it)")
    except BaseException:
        f.close()
        raise
    for name in ("weights", "step"):  # drop the rows of an interrupted append
        f[name].resize(layout.n_snapshots, axis=0)
    if attrs:
        f.attrs["settings"] = _settings_json({**layout.settings, **attrs})
    return f


def _check_resumable(f: h5py.File, errors: list[str], n_params: int, dtype: np.dtype,
                     params: list[ParamInfo] | None, stored: list[ParamInfo]) -> None:
    if errors:
        return
    weights = f["weights"]
    if weights.shape[1] != n_params:
        errors.append(f"/weights: {weights.shape[1]} columns, but the writer was given n_params={n_params}")
    if weights.dtype != dtype:
        errors.append(f"/weights: dtype {weights.dtype}, but the writer was given dtype={dtype}")
    if params is not None and list(params) != stored:
        errors.append("/params: the stored parameter table differs from the one given (a different model?)")


def _check_group_name(name: str) -> None:
    head, _, tail = name.partition("/")
    ok = head in OPTIONAL_GROUPS and (bool(tail) and "/" not in tail if head == "landscape" else not tail)
    if not ok:
        raise ValueError(f"group name must be 'eval', 'noise', 'hessian' or 'landscape/<name>', got {name!r}")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _producer() -> str:
    from pyengine._version import __version__

    return f"pyengine {__version__}"
