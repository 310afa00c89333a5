"""End-to-end checksums of ``/weights``: :func:`verify` (``pyengine info --verify``).

A writer with ``checksum=True`` (the default) stores ``/weights_crc32`` (N, C) uint32:
entry ``[n, c]`` is the CRC-32 (``zlib.crc32``) of row n of chunk column c, i.e. of
``weights[n, c*w:(c+1)*w]`` as little-endian bytes of the file dtype, w the chunk width.
The table sits beside the data, so ``/weights`` keeps its layout (uncompressed chunks stay
page aligned and mappable, ``Trajectory.map_block``); it grows with each append in the same
order as ``/step``. :func:`verify` reads every value once and compares. See
``docs/format.md`` and ``docs/reliability.md`` (cost measured there).
"""

from __future__ import annotations

import pathlib
import zlib
from dataclasses import dataclass, field

import h5py
import numpy as np

from pyengine.store._format import CHECKSUM_DATASET, FormatError
from pyengine.store.reader import Trajectory

#: Mismatching row segments listed by :class:`ChecksumReport` (all are counted).
MAX_LISTED = 20


def row_checksums(rows: np.ndarray, chunk_cols: int) -> np.ndarray:
    """CRC-32 of every row of every chunk column of a block of snapshots.

    Parameters
    ----------
    rows : ndarray, shape (k, P)
        Snapshots in the file dtype.
    chunk_cols : int
        Chunk width w of ``/weights``.

    Returns
    -------
    ndarray of uint32, shape (k, ceil(P / w))

    Examples
    --------
    >>> row_checksums(np.zeros((2, 5), np.float32), 4).shape
    (2, 2)
    """
    data = np.ascontiguousarray(rows, dtype=rows.dtype.newbyteorder("<"))
    starts = range(0, data.shape[1], chunk_cols)
    sums = np.empty((len(data), len(starts)), np.uint32)
    for i, row in enumerate(data):
        sums[i] = [zlib.crc32(row[j0:j0 + chunk_cols]) for j0 in starts]
    return sums


@dataclass
class ChecksumReport:
    """The result of :func:`verify`.

    Attributes
    ----------
    path : Path
        The file checked.
    has_checksums : bool
        Whether the file stores ``/weights_crc32`` (False: nothing could be verified).
    n_rows : int
        Snapshots verified.
    chunk_shape : tuple of int
        Chunk shape of ``/weights`` (rows, columns).
    n_bad : int
        Row segments (one row of one chunk column) whose values do not match their checksum.
    bad : list of (int, int)
        The first :data:`MAX_LISTED` of them as (row, chunk column), row-major.
    bad_chunks : list of (int, int)
        Every chunk holding a bad segment, as (chunk row, chunk column).

    Examples
    --------
    >>> report = verify("run.h5")  # doctest: +SKIP
    >>> report.ok, report.bad_chunks  # doctest: +SKIP
    (False, [(3, 0)])
    """

    path: pathlib.Path
    has_checksums: bool = False
    n_rows: int = 0
    chunk_shape: tuple[int, int] = (0, 0)
    n_bad: int = 0
    bad: list[tuple[int, int]] = field(default_factory=list)
    bad_chunks: list[tuple[int, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no value differs from its checksum (also when there are no checksums)."""
        return self.n_bad == 0

    def __str__(self) -> str:
        if not self.has_checksums:
            return f"{self.path}: no checksums stored (written with checksum=False or by another writer): not verified"
        rows, cols = self.chunk_shape
        if self.ok:
            return f"{self.path}: checksums ok ({self.n_rows} snapshots, every value verified)"
        lines = [f"{self.path}: CHECKSUM MISMATCH in {self.n_bad} row segments of {len(self.bad_chunks)} chunks "
                 f"(chunks of {rows} rows x {cols} columns): the values there are not those written",
                 f"  bad chunks (chunk row, chunk column): {self.bad_chunks[:MAX_LISTED]}"
                 + (" ..." if len(self.bad_chunks) > MAX_LISTED else ""),
                 "  first bad rows (row, columns): "
                 + ", ".join(f"({r}, {c * cols}:{(c + 1) * cols})" for r, c in self.bad)]
        return "\n".join(lines)


def verify(path: str | pathlib.Path) -> ChecksumReport:
    """Compare every value of ``/weights`` with the checksums the writer stored.

    Reads the complete snapshots once, in column blocks. Bit flips on the disk or in
    transfer, or a file edited by another tool, show up as mismatching (row, chunk
    column) segments.

    Parameters
    ----------
    path : str or Path
        A trajectory file.

    Returns
    -------
    ChecksumReport
        ``.ok`` is False when a value differs; ``.has_checksums`` is False for a file
        written without checksums (nothing verified).

    Raises
    ------
    FileNotFoundError
        No such file.
    FormatError
        The file cannot be read as a trajectory, or ``/weights_crc32`` has the wrong shape or dtype.

    Examples
    --------
    >>> from pyengine.store import verify
    >>> print(verify("run.h5"))  # doctest: +SKIP
    run.h5: checksums ok (3000 snapshots, every value verified)
    """
    with Trajectory(path, validate=False) as traj:
        report = ChecksumReport(traj.path, chunk_shape=traj.chunk_shape)
        stored = traj.file.get(CHECKSUM_DATASET)
        if stored is None:
            return report
        chunk_cols = traj.chunk_shape[1]
        _check_table(stored, -(-traj.n_params // chunk_cols))
        report.has_checksums = True
        report.n_rows = n = min(traj.n_snapshots, stored.shape[0])
        sums = stored[:n]
        bad = [_mismatches(block[:n], sums, j0 // chunk_cols, chunk_cols)
               for j0, block in traj.blocks(traj.default_block_cols())]
    found = np.concatenate(bad) if bad else np.zeros((0, 2), np.int64)
    found = found[np.lexsort((found[:, 1], found[:, 0]))]
    report.n_bad = len(found)
    report.bad = [(int(r), int(c)) for r, c in found[:MAX_LISTED]]
    report.bad_chunks = sorted({(int(r) // report.chunk_shape[0], int(c)) for r, c in found})
    return report


def _check_table(stored: h5py.Dataset, n_chunk_cols: int) -> None:
    if not isinstance(stored, h5py.Dataset) or stored.ndim != 2 or stored.shape[1] != n_chunk_cols \
            or stored.dtype != np.uint32:
        found = f"shape {getattr(stored, 'shape', None)}, dtype {getattr(stored, 'dtype', None)}"
        raise FormatError(f"/{CHECKSUM_DATASET}: {found}, expected (N, {n_chunk_cols}) uint32 (one CRC-32 per row "
                          "and chunk column of /weights)")


def _mismatches(block: np.ndarray, sums: np.ndarray, c0: int, chunk_cols: int) -> np.ndarray:
    computed = row_checksums(block, chunk_cols)
    where = np.argwhere(computed != sums[:, c0:c0 + computed.shape[1]])
    where[:, 1] += c0
    return where
