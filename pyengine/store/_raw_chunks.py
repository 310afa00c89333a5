"""Uncompressed chunks of ``/weights`` read by the OS straight into their place in a block,
or mapped from the page cache in place."""

from __future__ import annotations

import mmap
import os

import h5py
import numpy as np

from pyengine import config


class RawChunks:
    """Reads whole uncompressed chunks with ``os.preadv``: the kernel copies each chunk row
    from the page cache directly into its row of the destination block.

    h5py goes through a chunk-sized buffer of HDF5's own, a second copy of every byte (and,
    in Dask workers, freshly mapped memory for each chunk); measured on a 4.3 GB file with a
    warm page cache, this path reads in about half the CPU time. Chunks that only partly
    overlap the block are read a row segment at a time (blocks narrower than the chunks:
    files written row by row have chunks as wide as 16384 columns); chunks that are not
    allocated go through h5py.
    Where chunks are whole pages on page boundaries, :meth:`map` goes further and maps a
    chunk column in place. Use :meth:`open`, which says whether the file allows raw reads.
    """

    def __init__(self, ds: h5py.Dataset, fd: int) -> None:
        self._ds = ds
        self._fd = fd
        self._chunk_rows, self._chunk_cols = ds.chunks
        self._chunk_bytes = self._chunk_rows * self._chunk_cols * ds.dtype.itemsize
        self._iov_max = _iov_max()
        self._map_chunks = _map_chunks() if self._page_aligned() else None

    @classmethod
    def open(cls, ds: h5py.Dataset) -> RawChunks | None:
        """A reader for ``ds``, or None where raw reads do not apply: no chunks, filters
        (compression, shuffle, checksums), non-native byte order, a file driver other than
        the default (sec2), a user block, or no ``os.preadv`` on this platform."""
        f = ds.file
        if (ds.chunks is None or ds.id.get_create_plist().get_nfilters() > 0 or not ds.dtype.isnative
                or f.driver != "sec2" or f.userblock_size != 0 or not hasattr(os, "preadv")):
            return None
        return cls(ds, os.open(f.filename, os.O_RDONLY))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def read(self, n_rows: int, j0: int, j1: int, out: np.ndarray) -> None:
        """``out[:] = ds[:n_rows, j0:j1]``; out is C-contiguous of that shape."""
        cr, cc = self._chunk_rows, self._chunk_cols
        for c0 in range(j0 - j0 % cc, j1, cc):
            a, b = max(c0, j0), min(c0 + cc, j1)
            for r0 in range(0, n_rows, cr):
                r1 = min(r0 + cr, n_rows)
                offset = self._chunk_offset(r0, c0)
                if offset is None:
                    self._ds.read_direct(out, np.s_[r0:r1, a:b], np.s_[r0:r1, a - j0 : b - j0])
                elif b - a == cc:
                    self._read_rows(out[r0:r1, a - j0 : b - j0], offset)
                else:
                    self._read_segments(out[r0:r1, a - j0 : b - j0], offset + (a - c0) * self._ds.dtype.itemsize)

    @property
    def map_cols(self) -> int:
        """Width of the blocks :meth:`map` can return (a chunk column); 0 when it cannot."""
        return self._chunk_cols if self._map_chunks is not None and config.MAP_FILES else 0

    def map(self, n_rows: int, j0: int, j1: int) -> np.ndarray | None:
        """``ds[:n_rows, j0:j1]`` as a read-only view of the page cache (no copy at all), or
        None where that is not possible: the columns span two chunk columns, or one of the
        chunks is not allocated, not page aligned or not a whole number of pages. The
        chunks are mapped side by side (``mmap``), one chunk column at a time, so they must
        start on page boundaries: files written by :class:`TrajectoryWriter` have them there.
        Also None for columns narrower than half their chunk column: mapping populates every
        page of the chunk column, so a narrow view would hold many times its own bytes
        resident (N × chunk width × itemsize; 1.3 GB for N = 20000 and 16384-wide chunks).

        The view keeps the mapping alive. A file truncated under it makes reading its pages
        fail with SIGBUS, where :meth:`read` would report a short read.
        """
        cr, cc = self._chunk_rows, self._chunk_cols
        c0 = j0 - j0 % cc
        if not self.map_cols or j1 > c0 + cc or 2 * (j1 - j0) < min(cc, self._ds.shape[1] - c0):
            return None
        offsets = [self._chunk_offset(r0, c0) for r0 in range(0, n_rows, cr)]
        if any(o is None or o % mmap.PAGESIZE for o in offsets):
            return None
        region = self._map_chunks(self._fd, np.array(offsets, np.int64), self._chunk_bytes)
        return region.view(self._ds.dtype).reshape(-1, cc)[:n_rows, j0 - c0 : j1 - c0]

    def _page_aligned(self) -> bool:
        """Whether chunks are whole pages and the first and last start on a page boundary:
        a file written with aligned chunks (others almost never pass by chance)."""
        if self._chunk_bytes % mmap.PAGESIZE or not self._ds.shape[0]:
            return False
        cr, cc = self._chunk_rows, self._chunk_cols
        last = ((self._ds.shape[0] - 1) // cr * cr, (self._ds.shape[1] - 1) // cc * cc)
        offsets = [self._chunk_offset(*corner) for corner in ((0, 0), last)]
        return all(o is not None and o % mmap.PAGESIZE == 0 for o in offsets)

    def _chunk_offset(self, r0: int, c0: int) -> int | None:
        """Byte offset of the whole stored chunk at (r0, c0) in the file; None if it is not
        allocated or its index cannot be read (h5py then reads it, and reports damage as it
        always does)."""
        try:
            info = self._ds.id.get_chunk_info_by_coord((r0, c0))
        except RuntimeError:
            return None
        return info.byte_offset if info.size == self._chunk_bytes else None

    def _read_rows(self, dest: np.ndarray, offset: int) -> None:
        """The first len(dest) rows of the chunk at byte ``offset`` into dest's rows."""
        rows = [dest] if dest.flags.c_contiguous else list(dest)
        for i in range(0, len(rows), self._iov_max):
            group = rows[i : i + self._iov_max]
            want = sum(r.nbytes for r in group)
            self._check(os.preadv(self._fd, group, offset), want, offset)
            offset += want

    def _read_segments(self, dest: np.ndarray, offset: int) -> None:
        """dest's rows from the same columns of the chunk's first len(dest) rows, the first
        one at byte ``offset``: one read per row segment, so a block narrower than its chunk
        column costs its own bytes (through h5py, 4.4× the time, holding the GIL)."""
        stride = self._chunk_cols * self._ds.dtype.itemsize
        for row in dest:
            self._check(os.preadv(self._fd, [row], offset), row.nbytes, offset)
            offset += stride

    def _check(self, got: int, want: int, offset: int) -> None:
        if got != want:
            raise OSError(f"{self._ds.file.filename}: short read of a chunk of /weights at byte {offset} "
                          f"({got} of {want} bytes): is the file truncated?")


def _map_chunks():
    """``pyengine._core.map_chunks``, or None where the C++ extension is not built or off."""
    from pyengine.dispatch import available

    if not available("cpp"):
        return None
    from pyengine import _core

    return _core.map_chunks


def _iov_max() -> int:
    try:
        return max(1, os.sysconf("SC_IOV_MAX"))
    except (ValueError, OSError, AttributeError):
        return 16
