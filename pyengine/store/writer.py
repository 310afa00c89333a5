"""Writing trajectory files: :class:`TrajectoryWriter` (appendable, SWMR) and :func:`write_trajectory`."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
from dataclasses import dataclass
from types import TracebackType

import h5py
import hdf5plugin
import numpy as np

from pyengine.store._checks import check_structure, format_errors, nan_means_missing
from pyengine.store._format import (
    CHECKSUM_DATASET,
    CHUNK_ROWS_1D,
    FORMAT_NAME,
    FORMAT_VERSION,
    LOSS_MISSING_ATTR,
    OPTIONAL_GROUPS,
    WEIGHT_DTYPES,
    FormatError,
    ParamInfo,
    check_params,
    chunk_shape,
    default_params,
    params_to_table,
)
from pyengine.store._groups import FIXED_ATTRS, GROUPS, ROW_CHUNK, RowGroup, column_dtype, group_rows, row_columns
from pyengine.store._swmr import WriterLock, clear_flags_unlocked, open_for_writing, write_flags
from pyengine.store.checksum import row_checksums
from pyengine.store.reduction import KEPT_DATASET, Reduction, read_kept_index, read_reduction, write_reduction

COMPRESSIONS = (None, "lz4", "gzip")


class TrajectoryWriter:
    """Append weight snapshots, steps and losses to a trajectory file.

    Each :meth:`append` writes the rows of ``/weights`` and flushes, then those of
    ``/weights_crc32`` and ``/step`` and flushes, then those of ``/loss`` and flushes: a
    reader (also after a crash) counts the snapshots whose three parts are on disk. With
    ``swmr=True`` the file is in SWMR write mode from the moment it is opened, and readers
    may follow it (``open_trajectory`` + :meth:`Trajectory.refresh`).

    A new file is laid out whole (datasets, attributes, the row groups of ``groups``)
    under a temporary name beside ``path`` and renamed into place, so a crash while it is
    created leaves either no file or a complete empty one. While the writer is open it
    holds an advisory lock on the file (``pyengine.store._swmr.WriterLock``): a second
    writer is refused, readers are never blocked. A file that a killed writer left marked
    "open for writing" is made writable again in mode ``"a"`` (:func:`clear_write_flags`).

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
        increase). Compression, chunking and checksums of an existing file are kept; the
        rows of an interrupted append are dropped.
    swmr : bool
        Open the file in single-writer/multiple-reader mode.
    overwrite : bool
        In mode ``"w"``, replace an existing file instead of refusing.
    checksum : bool
        In mode ``"w"``, store a CRC-32 of every row of every chunk column of ``/weights``
        in ``/weights_crc32`` (checked by :func:`pyengine.store.verify`).
    groups : sequence of RowGroup, optional
        Row groups (``/eval``, ``/noise``, ``/hessian``) grown by :meth:`append_row`,
        laid out before the first snapshot. In mode ``"a"`` an existing group must have
        the same datasets; its rows past the file's last snapshot step are dropped.
    reduction : Reduction, optional
        The columns are a sample or a sketch of a larger model (``docs/format.md``,
        "Reduced recordings"); ``n_params`` is then the number of columns (``n_kept``). In
        mode ``"a"`` the file's reduction must be the same.
    kept_index : array of int, shape (n_params,), optional
        With a sample: the flat index in the full model of each column, increasing.
    missing_loss : bool
        Allow snapshots without a loss: NaN in ``loss`` marks them, declared by the
        ``/loss`` attribute ``missing = "nan"`` (``docs/format.md``). Without it (and in a
        file that does not declare it) a NaN loss is refused; ±Inf always is.

    Raises
    ------
    FileExistsError
        Mode ``"w"``, the file exists and ``overwrite`` is False.
    BlockingIOError
        Another live writer has the file.
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
        checksum: bool = True,
        groups: list[RowGroup] | tuple[RowGroup, ...] = (),
        reduction: Reduction | None = None,
        kept_index: np.ndarray | None = None,
        missing_loss: bool = False,
    ) -> None:
        if n_params < 1:
            raise ValueError(f"n_params must be >= 1, got {n_params}")
        if mode not in ("w", "a"):
            raise ValueError(f"mode must be 'w' (create) or 'a' (append), got {mode!r}")
        self.path = pathlib.Path(path)
        self.dtype = _weight_dtype(dtype)
        self.n_params = n_params
        self._rows = _row_layouts(groups)
        layout = _Layout(n_params, self.dtype, params, attrs, compression,
                         chunk_shape(n_params, chunk_steps, chunk_params), checksum, tuple(groups),
                         *_checked_reduction(reduction, kept_index, n_params), missing_loss)
        if mode == "w":
            self._lock, self._file = _create(self.path, layout, overwrite, swmr)
        else:
            self._lock = WriterLock(self.path)
            try:
                self._file = _open(self.path, swmr)
                _prepare_append(self._file, layout)
            except BaseException:
                self.close()
                raise
        self._weights, self._step, self._loss = (self._file[name] for name in ("weights", "step", "loss"))
        self._checksums = self._file.get(CHECKSUM_DATASET)
        self._nan_is_missing = nan_means_missing(self._loss)
        steps = self._step[:]
        self._last_step = int(steps[-1]) if steps.size else None

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
            Minibatch losses; NaN for a snapshot without one, if the writer was made with
            ``missing_loss=True``.

        Raises
        ------
        ValueError
            Wrong shapes, steps that do not increase, an infinite loss, or a NaN loss in a
            file that does not declare missing losses.

        Examples
        --------
        >>> writer.append(np.zeros(10), step=3, loss=1.5)  # doctest: +SKIP
        """
        w, s, losses = self._coerce(weights, step, loss)
        n0 = self.n_snapshots
        _grow(self._weights, n0, w)
        self._file.flush()
        if self._checksums is not None:
            _grow(self._checksums, n0, row_checksums(w, self._weights.chunks[1]))
        _grow(self._step, n0, s)
        self._file.flush()
        _grow(self._loss, n0, losses)
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
        _check_losses(losses, s, self._nan_is_missing)
        return w, s.astype(np.int64), losses

    def append_row(self, group: str, row: dict[str, object]) -> None:
        """Append one row to a row group given at creation (a probe's results at one step).

        The other datasets are written and flushed first, ``step`` last, so a reader
        (:func:`pyengine.store.group_rows`) never counts a row that is not whole.

        Parameters
        ----------
        group : {"eval", "noise", "hessian"}
            One of the ``groups`` the writer was opened with.
        row : dict of str to array_like
            One value (or row of the declared width) per dataset of the group.

        Raises
        ------
        ValueError
            An unknown group, missing or extra datasets, or a value of the wrong shape.

        Examples
        --------
        >>> writer.append_row("eval", {"step": 100, "loss_test": 0.41})  # doctest: +SKIP
        """
        if group not in self._rows:
            raise ValueError(f"group must be one of the row groups this writer was opened with "
                             f"{sorted(self._rows)}, got {group!r}")
        values = _row_values(group, self._rows[group], row)
        datasets = self._file[group]
        m = datasets["step"].shape[0]
        for name, value in values.items():
            if name == "step":
                self._file.flush()
            _grow(datasets[name], m, value[None])
        self._file.flush()

    def write_group(self, name: str, datasets: dict[str, np.ndarray], attrs: dict | None = None) -> None:
        """Create or replace an optional group: ``eval``, ``noise``, ``hessian`` or ``landscape/<name>``.

        HDF5's SWMR protocol covers appends to existing datasets; readers following the
        file see a group written during the run once they reopen it. Datasets the format
        defines get its dtype (``pyengine.store._groups``); dict-valued attributes are
        stored as JSON strings. A row group this writer grows is refused.

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
        >>> writer.write_group("eval", {"step": [0, 100], "loss_test": [2.3, 0.4]})  # doctest: +SKIP
        >>> writer.write_group("landscape/pca", {"x": xs, "y": ys, "loss": z}, {"normalization": "filter"})  # doctest: +SKIP
        """
        _check_group_name(name)
        if name in self._rows:
            raise ValueError(f"/{name} is grown row by row by this writer (append_row); it cannot be replaced")
        if name in self._file:
            del self._file[name]
        group = self._file.create_group(name)
        for key, value in datasets.items():
            group.create_dataset(key, data=np.asarray(value, dtype=column_dtype(name, key)))
        _set_attrs(group, attrs or {})
        self._file.flush()

    def flush(self) -> None:
        """Write buffered data to disk.

        Examples
        --------
        >>> writer.flush()  # doctest: +SKIP
        """
        self._file.flush()

    def close(self) -> None:
        """Flush and close the file, then drop the writer lock; closing twice is harmless.

        Examples
        --------
        >>> writer.close()  # doctest: +SKIP
        """
        file = getattr(self, "_file", None)
        if file is not None and file.id.valid:
            file.flush()
            file.close()
        self._lock.release()

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
        Losses (NaN where there is none, with ``missing_loss=True``). Without it the file
        declares every loss missing (NaN): the analysis then skips the loss statistics and
        the MSL unless it is given a loss.
    params, attrs
        As for :class:`TrajectoryWriter`.
    **writer_kwargs
        Passed on to :class:`TrajectoryWriter` (``compression``, ``chunk_steps``,
        ``overwrite``, ``dtype``, ``checksum``, ...).

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
    if loss is None:
        loss = np.full(n, np.nan)
        writer_kwargs["missing_loss"] = True
    _check_losses(np.atleast_1d(np.asarray(loss, dtype=np.float64)), np.atleast_1d(steps),
                 bool(writer_kwargs.get("missing_loss")))  # before the file is made
    writer_kwargs.setdefault("dtype", w.dtype if w.dtype in WEIGHT_DTYPES else np.float32)
    with TrajectoryWriter(path, w.shape[1], params=params, attrs=attrs, swmr=False, **writer_kwargs) as writer:
        if n:
            writer.append(w, steps, loss)
    return pathlib.Path(path)


def _check_losses(losses: np.ndarray, steps: np.ndarray, nan_is_missing: bool) -> None:
    """Refuse an infinite loss, and a NaN one unless the file declares NaN a missing loss."""
    bad = np.isinf(losses) | (np.isnan(losses) & (not nan_is_missing))
    if bad.any():
        first = np.flatnonzero(bad)[0]
        step = f" at step {steps[first]}" if first < len(steps) else ""
        raise ValueError(f"loss must be finite, got {losses[first]}{step}; for snapshots without a loss pass NaN "
                         "to a writer made with missing_loss=True")


@dataclass(frozen=True)
class _Layout:
    """Everything a new file is made of (and a resumed one is checked against)."""

    n_params: int
    dtype: np.dtype
    params: list[ParamInfo] | None
    attrs: dict | None
    compression: str | None
    chunks: tuple[int, int]
    checksum: bool
    groups: tuple[RowGroup, ...]
    reduction: Reduction | None = None
    kept_index: np.ndarray | None = None
    missing_loss: bool = False


def _weight_dtype(dtype: str | np.dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in WEIGHT_DTYPES:
        raise ValueError(f"dtype must be float16, float32 or float64, got {dt}")
    return dt


def _row_layouts(groups: list[RowGroup] | tuple[RowGroup, ...]) -> dict[str, dict[str, tuple[np.dtype, tuple]]]:
    layouts: dict[str, dict[str, tuple[np.dtype, tuple]]] = {}
    for group in groups:
        if not isinstance(group, RowGroup):
            raise TypeError(f"groups must be RowGroup objects, got {type(group).__name__}")
        if group.name in layouts:
            raise ValueError(f"groups: /{group.name} is given twice (one probe per group)")
        layouts[group.name] = row_columns(group.name, group.attrs)
    return layouts


def _row_values(group: str, columns: dict[str, tuple[np.dtype, tuple]], row: dict) -> dict[str, np.ndarray]:
    if set(row) != set(columns):
        raise ValueError(f"/{group}: a row needs exactly the datasets {sorted(columns)}, got {sorted(row)}")
    values = {name: np.asarray(row[name], dtype=dtype) for name, (dtype, _) in columns.items()}
    for name, (_, shape) in columns.items():
        if values[name].shape != shape:
            raise ValueError(f"/{group}/{name}: a row has shape {shape}, got {values[name].shape}")
    return values


def _grow(dataset: h5py.Dataset, n0: int, rows: np.ndarray) -> None:
    dataset.resize(n0 + len(rows), axis=0)
    dataset[n0:n0 + len(rows)] = rows


def _settings_json(attrs: dict | None) -> str:
    try:
        return json.dumps(attrs or {}, sort_keys=True)
    except TypeError as exc:
        raise TypeError(f"attrs must be JSON-serializable (numbers, strings, lists, dicts): {exc}") from exc


def _set_attrs(group: h5py.Group, attrs: dict) -> None:
    for key, value in attrs.items():
        group.attrs[key] = _attr_text(value)


def _attr_text(value):
    """An attribute value as stored: a dict as a JSON string, the rest as it is."""
    return json.dumps(value) if isinstance(value, dict) else value


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


def _create(path: pathlib.Path, layout: _Layout, overwrite: bool, swmr: bool) -> tuple[WriterLock, h5py.File]:
    """Lay the file out under a temporary name beside ``path``, switch SWMR on, and rename it into place.

    Returns the writer lock, taken on the temporary file and so held on ``path`` after
    the rename, and the open file. A file being replaced must not be held by a live writer.
    """
    params = default_params(layout.n_params) if layout.params is None else list(layout.params)
    problems = check_params(params, layout.n_params)
    if problems:
        raise FormatError("; ".join(problems))
    settings = _settings_json(layout.attrs)
    filters = _compression_kwargs(layout.compression)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: pass overwrite=True to replace it, or mode='a' to append to it")
    replaced = WriterLock(path) if path.exists() else None
    temporary = path.with_name(f".{path.name}.creating")
    try:
        lock = WriterLock(temporary, create=True)
        f = None
        try:
            f = h5py.File(temporary, "w", libver="latest", **_ALIGN_CHUNKS)
            _lay_out(f, layout, params, settings, filters)
            f.flush()
            if swmr:
                f.swmr_mode = True
            os.replace(temporary, path)
        except BaseException:
            if f is not None:
                f.close()
            lock.release()
            temporary.unlink(missing_ok=True)
            raise
    finally:
        if replaced is not None:
            replaced.release()
    return lock, f


def _lay_out(f: h5py.File, layout: _Layout, params: list[ParamInfo], settings: str, filters: dict) -> None:
    n_params, chunks = layout.n_params, layout.chunks
    f.create_dataset("weights", shape=(0, n_params), maxshape=(None, n_params), dtype=layout.dtype, chunks=chunks,
                     **filters)
    if layout.checksum:
        n_sums = -(-n_params // chunks[1])
        f.create_dataset(CHECKSUM_DATASET, shape=(0, n_sums), maxshape=(None, n_sums), dtype=np.uint32,
                         chunks=(max(1, CHUNK_ROWS_1D // n_sums), n_sums))
    for name, dt in (("step", np.int64), ("loss", np.float64)):
        f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(CHUNK_ROWS_1D,))
    if layout.missing_loss:
        f["loss"].attrs[LOSS_MISSING_ATTR] = "nan"
    f.create_dataset("params", data=params_to_table(params))
    f.attrs.update(format=FORMAT_NAME, format_version=np.int64(FORMAT_VERSION), created=_now(),
                   producer=_producer(), settings=settings)
    if layout.reduction is not None:
        write_reduction(f, layout.reduction, layout.kept_index)
    for group in layout.groups:
        _lay_out_rows(f, group)


def _checked_reduction(reduction: Reduction | None, kept: np.ndarray | None,
                       n_params: int) -> tuple[Reduction | None, np.ndarray | None]:
    if reduction is None:
        if kept is not None:
            raise ValueError("kept_index is given without a reduction (Reduction(\"sample\", ...))")
        return None, None
    if not isinstance(reduction, Reduction):
        raise TypeError(f"reduction must be a pyengine.store.reduction.Reduction, got {type(reduction).__name__}")
    if (kept is None) != (reduction.method != "sample"):
        raise ValueError(f"a {reduction.method} needs {'the' if reduction.method == 'sample' else 'no'} kept_index")
    kept = None if kept is None else np.asarray(kept, dtype=np.int64)
    problems = reduction.problems(n_params, kept)
    if problems:
        raise FormatError("; ".join(problems))
    return reduction, kept


def _check_same_reduction(f: h5py.File, layout: _Layout, errors: list[str]) -> None:
    """A resumed reduced recording continues the file's reduction: same method, sizes, seed, model."""
    if layout.reduction is None or errors:
        return
    stored = read_reduction(f, layout.n_params, os.stat(f.filename).st_size)
    if stored != layout.reduction:
        held = "every parameter" if stored is None else stored.describe()
        errors.append(f"the file holds {held}, but the writer was given {layout.reduction.describe()}"
                      + (" (another model)" if stored is not None and stored.to_dict() == layout.reduction.to_dict()
                         else ""))
    elif layout.kept_index is not None and not np.array_equal(read_kept_index(f, stored), layout.kept_index):
        errors.append(f"/{KEPT_DATASET}: the stored kept coordinates differ from the ones given")


def _lay_out_rows(f: h5py.File, group: RowGroup, rows: dict[str, np.ndarray] | None = None) -> None:
    """Create a row group, empty (or holding ``rows``), its datasets resizable along the first axis."""
    g = f.require_group(group.name)
    for name, (dtype, shape) in row_columns(group.name, group.attrs).items():
        data = np.empty((0, *shape), dtype) if rows is None else np.asarray(rows[name], dtype)
        chunk_rows = max(1, min(ROW_CHUNK, 2**20 // max(1, dtype.itemsize * int(np.prod(shape)))))
        g.create_dataset(name, data=data, maxshape=(None, *shape), chunks=(chunk_rows, *shape))
    for name, value in group.static.items():
        if name not in g:
            g.create_dataset(name, data=np.asarray(value, dtype=column_dtype(group.name, name)))
    _set_attrs(g, group.attrs)


def _open(path: pathlib.Path, swmr: bool) -> h5py.File:
    """Open for writing (the caller holds the writer lock), clearing the marks of a killed writer first."""
    if write_flags(path):
        clear_flags_unlocked(path)
    alignment = (_ALIGN_CHUNKS["alignment_threshold"], _ALIGN_CHUNKS["alignment_interval"])
    return open_for_writing(path, swmr=swmr, alignment=alignment)


def _prepare_append(f: h5py.File, layout: _Layout) -> None:
    """Check that the file continues this run; drop rows an interrupted write left; lay out row groups."""
    structure = check_structure(f)
    _check_resumable(f, structure.errors, layout.n_params, layout.dtype, layout.params, structure.params)
    _check_same_reduction(f, layout, structure.errors)
    if structure.errors:
        raise FormatError(format_errors(f.filename, structure.errors) + "\n(cannot append to it)")
    n = structure.n_snapshots
    for name in ("weights", CHECKSUM_DATASET, "step"):  # drop the rows of an interrupted append
        if name in f:
            f[name].resize(n, axis=0)
    last_step = int(structure.steps[-1]) if n else None
    for group in layout.groups:
        _resume_rows(f, group, last_step)
    if layout.attrs:
        f.attrs["settings"] = _settings_json({**structure.settings, **layout.attrs})
    if layout.missing_loss:
        f["loss"].attrs[LOSS_MISSING_ATTR] = "nan"


def _resume_rows(f: h5py.File, group: RowGroup, last_step: int | None) -> None:
    """Keep the whole rows of a stored row group up to the file's last snapshot step (the run goes on from there)."""
    stored = f.get(group.name)
    if stored is None:
        _lay_out_rows(f, group)
        return
    columns = row_columns(group.name, group.attrs)
    static = {c.name for c in GROUPS[group.name] if c.static}
    found = {name: ds.shape[1:] for name, ds in stored.items() if isinstance(ds, h5py.Dataset) and name not in static}
    changed = [name for name, value in group.static.items() if name in stored and
               not np.array_equal(stored[name][()], value)]
    if found != {name: shape for name, (_, shape) in columns.items()} or changed:
        raise FormatError(f"{f.filename}: /{group.name} holds the datasets {_shapes(found)}, but this run records "
                          f"{_shapes({n: s for n, (_, s) in columns.items()})}"
                          + (f" and other {', '.join(changed)}" if changed else "")
                          + ": resume with the probe settings of the recorded run, or record to a new file")
    for key in FIXED_ATTRS.get(group.name, ()):
        held, given = _attr_text(stored.attrs.get(key)), _attr_text(group.attrs.get(key))
        if held != given:
            raise FormatError(f"{f.filename}: /{group.name} attribute {key!r} is {held or 'absent'}, but this run "
                              f"records {given or 'none'}: resume with the probe settings of the recorded run, or "
                              "record to a new file")
    rows = group_rows(stored)
    keep = 0 if last_step is None else int(np.searchsorted(rows["step"], last_step, side="right"))
    if all(stored[name].maxshape[0] is None for name in columns):
        for name in columns:
            stored[name].resize(keep, axis=0)
        _set_attrs(stored, group.attrs)
        return
    for name in columns:  # written whole by an older pyengine: rewrite resizable
        del stored[name]
    _lay_out_rows(f, group, {name: values[:keep] for name, values in rows.items() if name in columns})


def _shapes(columns: dict[str, tuple]) -> str:
    return ", ".join(f"{name}{list(shape) if shape else ''}" for name, shape in sorted(columns.items()))


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
