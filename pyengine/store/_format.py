"""Constants and small building blocks of the trajectory file format v1.

Everything here is shared by the writer, the reader and the validator: the format name
and version, the error type, the parameter table (:class:`ParamInfo`) and how it is
stored, and the choice of the chunk shape of ``/weights``. See ``docs/format.md``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import h5py
import numpy as np

from pyengine import config

FORMAT_NAME = "pyengine-trajectory"
FORMAT_VERSION = 1

#: Kinds a parameter tensor may have in the parameter table.
PARAM_KINDS = ("weight", "bias", "norm", "other")
#: Dtypes ``/weights`` may have.
WEIGHT_DTYPES = (np.dtype("float16"), np.dtype("float32"), np.dtype("float64"))
#: Names of the optional groups (``landscape`` holds one sub-group per surface).
OPTIONAL_GROUPS = ("eval", "noise", "landscape", "hessian")
#: Elements per chunk of the 1-D datasets ``/step`` and ``/loss``.
CHUNK_ROWS_1D = 4096
#: Optional dataset beside ``/weights``: CRC-32 of each row of each chunk column, (N, n_chunk_cols) uint32.
CHECKSUM_DATASET = "weights_crc32"
#: Attribute of ``/loss`` (value ``"nan"``) declaring that NaN marks a snapshot without a loss
#: (checkpoints imported without one); without it every loss must be finite.
LOSS_MISSING_ATTR = "missing"
#: Largest chunk a reader accepts, in bytes: a larger one is rejected before any read (the
#: default chunk of ``/weights`` is 64 x 16384 x 8 B = 8 MiB).
MAX_CHUNK_BYTES = 2**30

_PARAMS_DTYPE = np.dtype(
    [
        ("name", h5py.string_dtype()),
        ("offset", "<i8"),
        ("size", "<i8"),
        ("shape", h5py.string_dtype()),
        ("kind", h5py.string_dtype()),
    ]
)


class FormatError(ValueError):
    """A file (or data about to be written) violates the trajectory format.

    The message names the offending dataset, attribute or field, says what was found
    and what was expected.

    Examples
    --------
    >>> err = FormatError("/step: not strictly increasing at row 5 (10 after 10)")
    >>> isinstance(err, ValueError)
    True
    """


@dataclass(frozen=True)
class ParamInfo:
    """One parameter tensor of the model, as a slice of the flattened weight vector.

    Parameters
    ----------
    name : str
        Name from ``model.named_parameters()``, e.g. ``"layer1.0.weight"``.
    offset : int
        First column of this tensor in ``/weights``.
    size : int
        Number of columns (the product of ``shape``).
    shape : tuple of int
        Shape of the tensor in the model.
    kind : str
        ``"weight"``, ``"bias"``, ``"norm"`` or ``"other"``.

    Examples
    --------
    >>> ParamInfo("fc.weight", 0, 20, (4, 5), "weight").size
    20
    """

    name: str
    offset: int
    size: int
    shape: tuple[int, ...]
    kind: str


def default_params(n_params: int) -> list[ParamInfo]:
    """The parameter table of a trajectory with no model structure: one ``"other"`` entry.

    Parameters
    ----------
    n_params : int
        Number of parameters P.

    Returns
    -------
    list of ParamInfo
        ``[ParamInfo("params", 0, P, (P,), "other")]``.

    Examples
    --------
    >>> default_params(3)
    [ParamInfo(name='params', offset=0, size=3, shape=(3,), kind='other')]
    """
    return [ParamInfo("params", 0, n_params, (n_params,), "other")]


def check_params(params: list[ParamInfo], n_params: int) -> list[str]:
    """Problems with a parameter table: it must tile ``[0, n_params)`` exactly.

    Entries must be in offset order, contiguous, non-overlapping, with ``size`` >= 1 equal
    to the product of ``shape`` (no negative dimension), a known ``kind`` and unique names.
    The first offset is 0 and each next offset is the previous end, so offsets are
    non-negative and the entries cover ``[0, P)`` once.

    Parameters
    ----------
    params : list of ParamInfo
        The table.
    n_params : int
        Number of columns P of ``/weights``.

    Returns
    -------
    list of str
        One message per problem, each starting with ``/params``; empty when the table is valid.

    Examples
    --------
    >>> check_params([ParamInfo("a", 0, 2, (2,), "bias")], 3)
    ['/params: entries cover [0, 2), but /weights has 3 columns']
    """
    problems: list[str] = []
    end = 0
    for i, p in enumerate(params):
        where = f"/params[{i}] ({p.name!r})"
        if p.offset != end:
            problems.append(f"{where}: offset {p.offset}, expected {end} (entries must tile [0, P) in order)")
        if p.size < 1:
            problems.append(f"{where}: size {p.size}, expected >= 1 (a tensor holds at least one column)")
        if any(n < 0 for n in p.shape):
            problems.append(f"{where}: shape {p.shape} has a negative dimension")
        elif p.size != math.prod(p.shape):
            problems.append(f"{where}: size {p.size} is not the product of shape {p.shape}")
        if p.kind not in PARAM_KINDS:
            problems.append(f"{where}: kind {p.kind!r}, expected one of {PARAM_KINDS}")
        end = p.offset + p.size
    if end != n_params and not problems:
        problems.append(f"/params: entries cover [0, {end}), but /weights has {n_params} columns")
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        problems.append("/params: names are not unique")
    if not params:
        problems.append("/params: the table is empty")
    return problems


def params_to_table(params: list[ParamInfo]) -> np.ndarray:
    """Encode a parameter table as the structured array stored in ``/params``.

    Examples
    --------
    >>> params_to_table(default_params(3))["size"]
    array([3])
    """
    rows = [(p.name, p.offset, p.size, json.dumps([int(n) for n in p.shape]), p.kind) for p in params]
    return np.array(rows, dtype=_PARAMS_DTYPE)


def params_from_table(table: np.ndarray) -> list[ParamInfo]:
    """Decode the structured array of ``/params`` into a list of :class:`ParamInfo`.

    Raises
    ------
    FormatError
        If a field is missing or a shape is not a JSON list of integers.

    Examples
    --------
    >>> params_from_table(params_to_table(default_params(3)))[0].shape
    (3,)
    """
    missing = [name for name in _PARAMS_DTYPE.names if name not in (table.dtype.names or ())]
    if missing:
        raise FormatError(f"/params: missing fields {missing}; expected {list(_PARAMS_DTYPE.names)}")
    for name in ("offset", "size"):
        if table.dtype[name].kind not in "iu":
            raise FormatError(f"/params: field {name!r} has dtype {table.dtype[name]}, expected int64")
    return [_param_from_row(i, row) for i, row in enumerate(table)]


def _param_from_row(i: int, row: np.void) -> ParamInfo:
    name = checked_text(row["name"], f"/params[{i}]: field 'name'")
    shape_text, kind = (checked_text(row[f], f"/params[{i}] ({name!r}): field {f!r}") for f in ("shape", "kind"))
    try:
        shape = tuple(int(s) for s in json.loads(shape_text))
    except (ValueError, TypeError, OverflowError) as exc:  # OverflowError: "[1e400]" parses as inf
        raise FormatError(f"/params[{i}] ({name!r}): shape {shape_text!r} is not a JSON list of integers") from exc
    return ParamInfo(name, int(row["offset"]), int(row["size"]), shape, kind)


def as_text(value: bytes | str) -> str:
    """An HDF5 string (bytes or str) as str.

    Examples
    --------
    >>> as_text(b"pyengine-trajectory")
    'pyengine-trajectory'
    """
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def checked_text(value: object, where: str) -> str:
    """A string read from a file, as str; FormatError naming ``where`` unless it is UTF-8 text.

    h5py returns variable-length strings as ``str`` (bytes that are not UTF-8 become lone
    surrogates) and fixed-length ones as ``bytes``; both are accepted when they are UTF-8.

    Raises
    ------
    FormatError
        If ``value`` is not a string, or not valid UTF-8.

    Examples
    --------
    >>> checked_text(b"run", "root attribute 'created'")
    'run'
    >>> checked_text(b"\\xff", "root attribute 'created'")
    Traceback (most recent call last):
    ...
    pyengine.store._format.FormatError: root attribute 'created' is not valid UTF-8 (b'\\xff')
    """
    if not isinstance(value, (bytes, str)):
        raise FormatError(f"{where} is {type(value).__name__}, expected a string")
    try:
        if isinstance(value, bytes):
            return value.decode("utf-8")
        value.encode("utf-8")  # fails on the lone surrogates h5py puts for bytes that are not UTF-8
        return value
    except UnicodeError:
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
        raise FormatError(f"{where} is not valid UTF-8 ({raw[:40]!r})") from None


def chunk_shape(n_params: int, chunk_steps: int | None, chunk_params: int | None) -> tuple[int, int]:
    """Chunk shape of ``/weights``: (steps, parameters).

    By default ``chunk_steps = config.CHUNK_STEPS`` and the parameter axis is split into
    ``n = ceil(P / config.CHUNK_PARAMS)`` equal chunks of ``ceil(P / n)`` columns, so the
    last column chunk is never mostly padding; from 256 columns up rounded up to a multiple
    of 16, so that 64-step chunks are whole 4 KiB pages (a reader can map them in place, see
    ``Trajectory.map_block``).

    Parameters
    ----------
    n_params : int
        Number of parameters P (at least 1).
    chunk_steps, chunk_params : int or None
        Explicit sizes; ``chunk_params`` is capped at P.

    Returns
    -------
    tuple of int
        ``(chunk_steps, chunk_params)``.

    Examples
    --------
    >>> chunk_shape(20000, None, None)   # with CHUNK_PARAMS = 16384: two chunks of 10000
    (64, 10000)
    """
    steps = config.CHUNK_STEPS if chunk_steps is None else chunk_steps
    if chunk_params is None:
        n_chunks = math.ceil(n_params / config.CHUNK_PARAMS)
        chunk_params = math.ceil(n_params / n_chunks)
        if chunk_params >= 256:  # padding of under 16 columns per chunk: less than 1/16
            chunk_params = -(-chunk_params // 16) * 16
    if steps < 1 or chunk_params < 1:
        raise ValueError(f"chunk sizes must be >= 1, got chunk_steps={steps}, chunk_params={chunk_params}")
    return steps, min(chunk_params, n_params)
