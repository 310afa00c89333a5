"""Declared sizes against stored data: a dataset may not declare more than the file holds.

An HDF5 dataset declares its shape in a few bytes of metadata; chunks that were never
written read as the fill value. So a file of a few KiB can declare terabytes, and a reader
that trusts the shape allocates and scans them. :func:`storage_problem` checks a region
of a dataset against what the file stores before anything of it is read.
"""

from __future__ import annotations

import math

import h5py

from pyengine.store._format import MAX_CHUNK_BYTES

_LAYOUTS = {h5py.h5d.COMPACT: "compact", h5py.h5d.CONTIGUOUS: "contiguous", h5py.h5d.CHUNKED: "chunked"}


def storage_problem(ds: h5py.Dataset, where: str, rows: int, file_size: int) -> str | None:
    """Why the first ``rows`` rows of a dataset are not data stored in the file, or None.

    The rules, checked from metadata alone (no data is read), in this order:

    - the data lies in the file: compact, contiguous or chunked storage, no external raw
      files, not a virtual dataset;
    - a chunk holds at most :data:`MAX_CHUNK_BYTES`;
    - contiguous storage is allocated (a dataset never written reads as its fill value);
    - without filters (no compression), the region's bytes fit in the file;
    - chunked storage has at least as many allocated chunks as the region spans
      (``ds.id.get_num_chunks()``, which counts the entries of the chunk index).

    Parameters
    ----------
    ds : h5py.Dataset
        The dataset.
    where : str
        Its path, used in the message (e.g. ``"/weights"``).
    rows : int
        Rows of the region, along axis 0 (capped at the shape; ignored for a scalar).
    file_size : int
        Size of the file in bytes.

    Returns
    -------
    str or None
        The first rule broken, starting with ``where``; None when the region is stored.

    Examples
    --------
    >>> with h5py.File("tiny.h5") as f:  # doctest: +SKIP
    ...     storage_problem(f["step"], "/step", 10**12, 8704)
    '/step: the 1,000,000,000,000 rows declared take 8,000,000,000,000 bytes, but the whole file has 8,704: ...'
    """
    plist = ds.id.get_create_plist()
    layout = plist.get_layout()
    if layout not in _LAYOUTS or plist.get_external_count():
        kind = "a virtual dataset" if layout == h5py.h5d.VIRTUAL else "stored outside the file"
        return f"{where}: {kind}; the format keeps all data in the file itself (copy the data in)"
    if ds.shape is None:  # a null dataspace (h5py.Empty): no data at all
        return None
    region = (min(rows, ds.shape[0]), *ds.shape[1:]) if ds.ndim else ()
    item = ds.id.get_type().get_size()
    nbytes = math.prod(region) * item
    if layout == h5py.h5d.CHUNKED and math.prod(ds.chunks) * item > MAX_CHUNK_BYTES:
        return (f"{where}: chunks of {ds.chunks} take {math.prod(ds.chunks) * item:,} bytes each, over the "
                f"{MAX_CHUNK_BYTES:,} a reader accepts; rewrite the file with smaller chunks")
    if layout == h5py.h5d.CONTIGUOUS and nbytes and ds.id.get_storage_size() < ds.size * item:
        return f"{where}: shape {ds.shape} declared, but no data is stored (a dataset never written)"
    if not plist.get_nfilters() and nbytes > file_size:
        return (f"{where}: the {_region_text(region)} declared take {nbytes:,} bytes, but the whole file has "
                f"{file_size:,}: {_TOO_MUCH}")
    if layout == h5py.h5d.CHUNKED:
        return _unallocated(ds, where, region)
    return None


_TOO_MUCH = "the file declares more data than it holds (damaged or crafted)"


def _unallocated(ds: h5py.Dataset, where: str, region: tuple[int, ...]) -> str | None:
    needed = math.prod(-(-n // c) for n, c in zip(region, ds.chunks))
    stored = ds.id.get_num_chunks() if needed else 0
    if stored < needed:
        return (f"{where}: the {_region_text(region)} declared span {needed:,} chunks, but the file stores "
                f"{stored:,}: {_TOO_MUCH}")
    return None


def _region_text(region: tuple[int, ...]) -> str:
    if not region:
        return "value"
    rows = f"{region[0]:,} row{'' if region[0] == 1 else 's'}"
    return rows + (f" of {math.prod(region[1:]):,} values" if len(region) > 1 else "")
