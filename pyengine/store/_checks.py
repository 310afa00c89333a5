"""Structural checks of a trajectory file, shared by the reader, the writer and the validator.

:func:`check_structure` inspects an open :class:`h5py.File` and returns a :class:`Layout`:
the number of complete snapshots, the steps, losses, parameter table and settings, and
every problem found, each message naming the dataset or attribute at fault.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc/LZ4 filter used by compressed files)
import numpy as np

from pyengine.store._format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    LOSS_MISSING_ATTR,
    OPTIONAL_GROUPS,
    WEIGHT_DTYPES,
    FormatError,
    ParamInfo,
    check_params,
    checked_text,
    params_from_table,
)
from pyengine.store._storage import storage_problem

#: How many non-finite locations are reported.
MAX_LOCATIONS = 10

_ONE_D = {"step": np.dtype("int64"), "loss": np.dtype("float64")}


@dataclass
class Layout:
    """What :func:`check_structure` found in a file.

    ``readable`` is False when ``/weights``, ``/step`` or ``/loss`` is missing, has the
    wrong number of dimensions or dtype, or declares more complete snapshots than the file
    stores: then steps, losses and parameters are not filled in.
    """

    readable: bool = False
    n_snapshots: int = 0
    lengths: tuple[int, int, int] = (0, 0, 0)
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    loss: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    params: list[ParamInfo] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def open_h5(path: str | pathlib.Path) -> h5py.File:
    """Open a file read-only; a file that a writer holds open is followed with SWMR.

    A plain open comes first: it is the one that checks the file's length against the
    end of file stored in its superblock (an SWMR open skips that check, and a truncated
    or corrupted file then reads as zeros or stalls in metadata retries). Only a file
    marked as open for writing (a live or killed writer) is then opened with SWMR.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    FormatError
        If the file cannot be read as HDF5, or is truncated.

    Examples
    --------
    >>> open_h5("run.h5")  # doctest: +SKIP
    <HDF5 file "run.h5" (mode r)>
    """
    path = pathlib.Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not a trajectory file: pass the .h5 file inside it")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise FormatError(f"{path} is not an HDF5 file (it does not start with HDF5's signature): a trajectory is "
                          "the .h5 file that pyengine's recorder or TrajectoryWriter writes")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        if "truncated file" in str(exc):
            raise FormatError(f"{path}: truncated (shorter than its HDF5 superblock says): {exc}") from exc
        if "already open for write" not in str(exc) and "lock" not in str(exc):
            # Only a writer's file is retried with SWMR: an SWMR open of a corrupted file
            # retries every bad checksum for minutes.
            raise FormatError(f"{path}: cannot be read as an HDF5 file ({exc})") from exc
        try:
            return h5py.File(path, "r", swmr=True)
        except OSError:
            raise FormatError(f"{path}: cannot be read as an HDF5 file ({exc})") from exc


def format_errors(path: str | pathlib.Path, errors: list[str]) -> str:
    """One message listing every problem of a file.

    Examples
    --------
    >>> print(format_errors("a.h5", ["missing dataset /loss"]))
    a.h5: not a valid pyengine trajectory:
      - missing dataset /loss
    """
    return f"{path}: not a valid pyengine trajectory:\n" + "\n".join(f"  - {e}" for e in errors)


def check_structure(f: h5py.File) -> Layout:
    """Check everything but the weight values: attributes, links, declared sizes, datasets,
    lengths, steps, losses, params, optional groups.

    Datasets are looked at in the order ``/loss``, ``/step``, ``/weights`` (the reverse
    of the order the writer fills them), so a file being written is seen consistently.
    Declared sizes are checked against the stored data (:func:`storage_problem`) before
    any data is read, so memory and time stay bounded by what the file holds.

    Parameters
    ----------
    f : h5py.File
        An open file.

    Returns
    -------
    Layout
        What was found, with ``errors`` and ``warnings``.

    Examples
    --------
    >>> with open_h5("run.h5") as f:  # doctest: +SKIP
    ...     check_structure(f).errors
    []
    """
    layout = Layout()
    try:
        file_size = os.stat(f.filename).st_size
        layout.settings = _check_root(f.attrs, layout.errors)
        _check_optional_groups(f, file_size, layout.errors)
        if not _check_datasets(f, layout.errors):
            return layout
        _check_lengths(f, layout)
        if not _check_stored(f, file_size, layout):
            return layout
        layout.readable = True
        _check_values_1d(f, layout)
        layout.params = _check_params(f, file_size, layout.errors)
    except (KeyError, RuntimeError, OSError) as exc:  # how h5py reports corrupted metadata (bad checksums)
        raise FormatError(f"{f.filename}: corrupted HDF5 metadata or unreadable file ({exc})") from exc
    return layout


def _check_root(attrs: h5py.AttributeManager, errors: list[str]) -> dict:
    if "format" not in attrs:
        errors.append(f"root attribute 'format' is missing (expected {FORMAT_NAME!r}): not a pyengine trajectory")
    else:
        fmt = _root_text(attrs, "format", errors)
        if fmt is not None and fmt != FORMAT_NAME:
            errors.append(f"root attribute 'format' is {fmt!r}, expected {FORMAT_NAME!r}")
    version = attrs.get("format_version")
    if version is None:
        errors.append("root attribute 'format_version' is missing")
    elif not isinstance(version, (int, np.integer)) or int(version) != FORMAT_VERSION:
        errors.append(
            f"root attribute 'format_version' is {version}: this pyengine reads version {FORMAT_VERSION} only"
            " (upgrade pyengine for newer files)"
        )
    for name in ("created", "producer"):
        if name not in attrs:
            errors.append(f"root attribute {name!r} is missing")
        else:
            _root_text(attrs, name, errors)
    return _check_settings(attrs, errors)


def _root_text(attrs: h5py.AttributeManager, name: str, errors: list[str]) -> str | None:
    """A root attribute that must be a UTF-8 string; None (and an error) when it is not."""
    try:
        return checked_text(attrs[name], f"root attribute {name!r}")
    except FormatError as exc:
        errors.append(str(exc))
        return None


def _check_settings(attrs: h5py.AttributeManager, errors: list[str]) -> dict:
    if "settings" not in attrs:
        errors.append("root attribute 'settings' is missing (a JSON object, '{}' when empty)")
        return {}
    text = _root_text(attrs, "settings", errors)
    if text is None:
        return {}
    try:
        settings = json.loads(text)
    except ValueError as exc:
        errors.append(f"root attribute 'settings' is not valid JSON ({exc})")
        return {}
    if not isinstance(settings, dict):
        errors.append(f"root attribute 'settings' is JSON {type(settings).__name__}, expected an object")
        return {}
    return settings


def _check_datasets(f: h5py.File, errors: list[str]) -> bool:
    n_before = len(errors)
    expected = (("loss", 1, [_ONE_D["loss"]]), ("step", 1, [_ONE_D["step"]]), ("weights", 2, WEIGHT_DTYPES))
    for name, ndim, dtypes in expected:
        link = _link_problem(f, name, f"/{name}")
        obj = None if link else f.get(name)
        if link:
            errors.append(link)
        elif not isinstance(obj, h5py.Dataset):
            errors.append(f"missing dataset /{name}")
        elif obj.ndim != ndim:
            errors.append(f"/{name}: {obj.ndim}-D, expected {ndim}-D")
        elif obj.dtype not in dtypes:
            errors.append(f"/{name}: dtype {obj.dtype}, expected {' or '.join(str(d) for d in dtypes)}")
    if len(errors) == n_before and f["weights"].chunks is None:
        errors.append("/weights: not chunked (the format needs chunks and maxshape (None, P)); rewrite the file")
    return len(errors) == n_before


def _check_lengths(f: h5py.File, layout: Layout) -> None:
    n_loss, n_step, n_weights = (f[name].shape[0] for name in ("loss", "step", "weights"))
    layout.lengths = (n_weights, n_step, n_loss)
    layout.n_snapshots = n = min(layout.lengths)
    if not n_weights >= n_step >= n_loss:
        layout.errors.append(
            f"length mismatch: /weights has {n_weights} rows, /step {n_step}, /loss {n_loss};"
            " the writer fills them in that order, so each must be at least as long as the next"
        )
    elif n_weights > n:
        layout.warnings.append(
            f"incomplete snapshots: /weights has {n_weights} rows, /step {n_step}, /loss {n_loss}"
            f" (the writer stopped mid-append); reading the {n} complete ones"
        )
    if f["weights"].maxshape[0] is not None:
        layout.warnings.append("/weights: maxshape is not (None, P), so the file cannot be appended to")


def _check_stored(f: h5py.File, file_size: int, layout: Layout) -> bool:
    """Whether the complete snapshots declared are stored (see :func:`storage_problem`)."""
    problems = [storage_problem(f[name], f"/{name}", layout.n_snapshots, file_size)
                for name in ("loss", "step", "weights")]
    layout.errors.extend(p for p in problems if p)
    return not any(problems)


def _check_values_1d(f: h5py.File, layout: Layout) -> None:
    n = layout.n_snapshots
    layout.steps = f["step"][:n]
    layout.loss = f["loss"][:n]
    bad = np.flatnonzero(np.diff(layout.steps) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        layout.errors.append(
            f"/step: not strictly increasing at row {i} (step {layout.steps[i]} after {layout.steps[i - 1]};"
            f" {bad.size} such rows)"
        )
    bad = np.flatnonzero(np.isinf(layout.loss) if nan_means_missing(f["loss"]) else ~np.isfinite(layout.loss))
    if bad.size:
        layout.errors.append(
            f"/loss: {bad.size} non-finite values (NaN/Inf), first at rows {bad[:MAX_LOCATIONS].tolist()}"
        )


def nan_means_missing(loss: h5py.Dataset) -> bool:
    """Whether ``/loss`` declares (attribute ``missing = "nan"``) that NaN marks a snapshot without a loss.

    Examples
    --------
    >>> nan_means_missing(h5py.File("run.h5")["loss"])  # doctest: +SKIP
    False
    """
    try:
        value = loss.attrs.get(LOSS_MISSING_ATTR)
    except (OSError, KeyError, TypeError, ValueError):  # a damaged attribute: declares nothing
        return False
    return isinstance(value, (str, bytes)) and value in ("nan", b"nan")


def _check_params(f: h5py.File, file_size: int, errors: list[str]) -> list[ParamInfo]:
    problems = _table_problems(f, file_size)
    if problems:
        errors.extend(problems)
        return []
    try:
        params = params_from_table(f["params"][()])
    except FormatError as exc:
        errors.append(str(exc))
        return []
    errors.extend(check_params(params, f["weights"].shape[1]))
    return params


def _table_problems(f: h5py.File, file_size: int) -> list[str]:
    """Why ``/params`` cannot be read: absent, a link, more rows than columns, or not stored."""
    link = _link_problem(f, "params", "/params")
    if link:
        return [link]
    table = f.get("params")
    if not isinstance(table, h5py.Dataset) or table.ndim != 1:
        return ["missing dataset /params (a 1-D table: name, offset, size, shape, kind)"]
    n_params = f["weights"].shape[1]
    if len(table) > n_params:
        return [f"/params: {len(table):,} rows, but /weights has {n_params:,} columns"
                " (each tensor takes at least one)"]
    problem = storage_problem(table, "/params", len(table), file_size)
    return [problem] if problem else []


def _link_problem(group: h5py.Group, name: str, where: str) -> str | None:
    """The error for a soft or external link at ``group[name]``; None for a stored object or nothing."""
    link = group.get(name, getlink=True)
    if link is None or isinstance(link, h5py.HardLink):
        return None
    return f"{where}: {_link_text(link)}; {_STORED_HERE}"


def _link_text(link: h5py.SoftLink | h5py.ExternalLink) -> str:
    if isinstance(link, h5py.ExternalLink):
        return f"an external link to {link.path!r} in {link.filename!r}"
    return f"a soft link to {link.path!r}"


_STORED_HERE = "the format stores every dataset and group in the file itself, under its own name"


def _check_optional_groups(f: h5py.File, file_size: int, errors: list[str]) -> None:
    """Optional groups are groups stored in the file: no soft or external links, UTF-8 names
    and string attributes, datasets whose declared sizes the file holds."""
    for name in OPTIONAL_GROUPS:
        link = _link_problem(f, name, f"/{name}")
        obj = None if link else f.get(name)
        if link:
            errors.append(link)
        elif isinstance(obj, h5py.Group):
            errors.extend(_group_problems(obj, f"/{name}", file_size))
        elif obj is not None:
            errors.append(f"/{name}: a {type(obj).__name__.lower()}, expected a group")


def _group_problems(group: h5py.Group, where: str, file_size: int) -> list[str]:
    links: list[tuple[bytes, int]] = []
    # Every link below the group, names as stored (bytes); HDF5 recurses through hard links
    # only, each group once, so soft-link and hard-link cycles end.
    group.id.links.visit(lambda name, info: links.append((name, info.type)), info=True)
    problems = _attr_problems(group, where)
    for raw, kind in links:
        path = f"{where}/{raw.decode('utf-8', 'backslashreplace')}"
        if not _is_utf8(raw):
            problems.append(f"{path}: the name is not valid UTF-8")
        elif kind != h5py.h5l.TYPE_HARD:
            problems.append(f"{path}: {_link_text(group.get(raw, getlink=True))}; {_STORED_HERE}")
        else:
            problems.extend(_member_problems(group[raw], path, file_size))
    return problems


def _member_problems(obj: h5py.HLObject, where: str, file_size: int) -> list[str]:
    problems = _attr_problems(obj, where)
    if isinstance(obj, h5py.Dataset):
        stored = storage_problem(obj, where, obj.shape[0] if obj.ndim else 0, file_size)
        problems.extend([stored] if stored else [])
    return problems


def _attr_problems(obj: h5py.HLObject, where: str) -> list[str]:
    """Attribute names, and values of string attributes, that are not UTF-8."""
    names: list[bytes] = []
    h5py.h5a.iterate(obj.id, names.append)
    problems = []
    for raw in names:
        if not _is_utf8(raw):
            problems.append(f"{where}: attribute name {raw!r} is not valid UTF-8")
        elif h5py.h5a.open(obj.id, raw).get_type().get_class() == h5py.h5t.STRING:
            name = raw.decode("utf-8")
            problems.extend(_text_problems(obj.attrs[name], f"{where}: attribute {name!r}"))
    return problems


def _text_problems(value: str | bytes | np.ndarray, where: str) -> list[str]:
    """The error for a string attribute (or array of strings) that is not UTF-8, if any."""
    texts = value.ravel() if isinstance(value, np.ndarray) else [value]
    for text in (t for t in texts if isinstance(t, (bytes, str))):  # not h5py.Empty
        try:
            checked_text(text, where)
        except FormatError as exc:
            return [str(exc)]
    return []


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def find_nonfinite(blocks: Iterable[tuple[int, np.ndarray]]) -> tuple[int, list[tuple[int, int]]]:
    """Count NaN/Inf entries of a weight matrix read in column blocks.

    Parameters
    ----------
    blocks : iterable of (int, ndarray)
        ``(j0, X[:, j0:j0+B])`` pairs, as yielded by :meth:`Trajectory.blocks`.

    Returns
    -------
    count : int
        Number of non-finite entries.
    first : list of (int, int)
        The first :data:`MAX_LOCATIONS` of them as ``(row, column)``, in row-major order.

    Examples
    --------
    >>> x = np.zeros((3, 4)); x[2, 1] = np.nan
    >>> find_nonfinite([(0, x[:, :2]), (2, x[:, 2:])])
    (1, [(2, 1)])
    """
    count = 0
    first: list[tuple[int, int]] = []
    for j0, block in blocks:
        where = np.argwhere(~np.isfinite(block))
        count += len(where)
        first.extend((int(r), int(c) + j0) for r, c in where[:MAX_LOCATIONS])
        first = sorted(first)[:MAX_LOCATIONS]
    return count, first


def nonfinite_message(count: int, first: list[tuple[int, int]]) -> str:
    """The validation error for non-finite weights.

    Examples
    --------
    >>> nonfinite_message(1, [(2, 1)])
    '/weights: 1 non-finite values (NaN/Inf), first at (row, column) [(2, 1)]'
    """
    return f"/weights: {count} non-finite values (NaN/Inf), first at (row, column) {first}"
