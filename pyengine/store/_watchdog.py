"""A watchdog on reading a file's metadata: a corrupted file must not hang or crash pyengine.

Some damage makes the HDF5 library loop forever: one flipped bit in the size of a global
heap object (where variable-length strings such as the root attributes live) sends
``H5HG`` decoding into an endless loop inside ``H5Aread``, holding the GIL, where no Python
code can interrupt it. :func:`probe_metadata` therefore reads the metadata once in a forked
child process and waits for it with a timeout; only when the child finishes does the caller
read the file itself (the same bytes give the same result, so the second read finishes too).
"""

from __future__ import annotations

import os
import pathlib
import select
import signal
import warnings

import h5py
from h5py._objects import phil

from pyengine.store._checks import check_structure, open_h5
from pyengine.store._format import FormatError

#: Seconds the metadata of a file (attributes, /step, /loss, /params, the chunk index
#: counts) may take to read before the file is reported as corrupt.
METADATA_TIMEOUT = 30.0
#: Files remembered as probed (by device, inode, size and times), so reopening is free.
MAX_REMEMBERED = 256

_probed: dict[tuple[int, ...], None] = {}


def probe_metadata(path: str | pathlib.Path) -> None:
    """Read a file's metadata as :func:`check_structure` does, in a child process that is
    killed after :data:`METADATA_TIMEOUT` seconds.

    The child is a ``fork`` of this process (tens of milliseconds; no interpreter start)
    taken while holding h5py's global lock, so that no other thread is inside HDF5 at that
    moment. It reports nothing: whether the file is valid is found by the caller's own read.
    A file is probed once while it stays unchanged (same device, inode, size, mtime and
    ctime). Skipped where ``fork`` is not available or fails, and for a file this process
    already holds open in HDF5 (a child sharing that open file could write its cached
    metadata).

    Raises
    ------
    FormatError
        The child did not finish in time (HDF5 looping on corrupted metadata, or a file
        system that stalled), or HDF5 crashed it (e.g. SIGSEGV).

    Examples
    --------
    >>> probe_metadata("run.h5")  # doctest: +SKIP
    """
    try:
        st = os.stat(path)
    except OSError:  # the caller's own open reports a missing or unreadable file
        return
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key in _probed or _open_here(path):
        return
    _run_child(path)
    if len(_probed) >= MAX_REMEMBERED:
        _probed.pop(next(iter(_probed)))
    _probed[key] = None


def _open_here(path: str | pathlib.Path) -> bool:
    """Whether HDF5 in this process has the file open (a writer or a reader here)."""
    for fid in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        try:
            if os.path.samefile(fid.name, path):
                return True
        except OSError:
            continue
    return False


def _run_child(path: str | pathlib.Path) -> None:
    read_end, write_end = os.pipe()
    pid = _fork()
    if pid == 0:
        _child(path, read_end)
    os.close(write_end)  # the child's copy closes when it exits: the pipe then reads as EOF
    if pid < 0:
        os.close(read_end)
        return
    finished = False
    try:
        finished = bool(select.select([read_end], [], [], METADATA_TIMEOUT)[0])
    finally:
        os.close(read_end)
        if not finished:
            os.kill(pid, signal.SIGKILL)
        status = os.waitpid(pid, 0)[1]
    _raise_for(path, finished, os.waitstatus_to_exitcode(status))


def _fork() -> int:
    """``os.fork()`` under h5py's lock; -1 where there is no fork or it fails."""
    if not hasattr(os, "fork"):
        return -1
    with phil, warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads: the child only runs HDF5
        # (consistent: we hold its lock) and exits with os._exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return os.fork()
        except OSError:  # no memory or process slots for a child
            return -1


def _child(path: str | pathlib.Path, read_end: int) -> None:
    """Read the metadata and leave at once: no cleanup, no flush of the parent's files."""
    os.close(read_end)
    try:
        check_structure(open_h5(path))  # left open: os._exit below skips every cleanup
    except BaseException:  # the parent reads the file again and reports what it finds
        pass
    finally:
        os._exit(0)


def _raise_for(path: str | pathlib.Path, finished: bool, code: int) -> None:
    if not finished:
        raise FormatError(
            f"{path}: its HDF5 metadata could not be read within {METADATA_TIMEOUT:g} s: the file is probably "
            "corrupt (or its file system stalled; open it with watchdog=False to wait without limit)"
        )
    if code < 0:
        raise FormatError(f"{path}: reading its HDF5 metadata crashed the HDF5 library "
                          f"({signal.strsignal(-code) or f'signal {-code}'}): the file is corrupt")
