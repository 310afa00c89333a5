"""Who writes a trajectory file, and making a file that a killed writer left marked open writable again.

HDF5 marks a file open for writing in its superblock (version 2 and 3: the "file
consistency flags", bit 0 write access, bit 2 SWMR write access) and refuses to open a
marked file for writing ("file is already open for write/SWMR write (may use <h5clear
file> ...)"). A writer killed by SIGKILL or a power cut leaves the mark behind.

pyengine writers hold an advisory lock on one byte of the file far past its end
(:class:`WriterLock`: an open-file-description lock on Linux, a POSIX record lock
elsewhere; the OS drops it when the process dies). Readers take no part in it, so a
reader following the file never blocks a writer. :func:`clear_write_flags` clears the mark
only when that lock is free and, on Linux, no other process of this machine has the file
open for writing (``/proc/<pid>/fdinfo``), and it extends the stored end of the file to
the file's real size, so that nothing the killed writer wrote past its last recorded end
is handed out again.

Reference: HDF5 File Format Specification version 3.0, section II.A (superblock
versions 2 and 3, Jenkins' lookup3 checksum).
"""

from __future__ import annotations

import errno
import os
import pathlib
import struct
import sys
from types import TracebackType

import h5py

from pyengine.store._format import FormatError

try:
    import fcntl
except ImportError:  # no advisory locks on this platform (Windows)
    fcntl = None

#: Byte of the file that a pyengine writer locks (locks past the end of a file are allowed).
LOCK_BYTE = 2**62

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Superblock versions whose flags byte HDF5 checks (and that carry a checksum).
_CHECKSUMMED_VERSIONS = (2, 3)
#: errno values of file systems without advisory locks: the lock is then skipped.
_NO_LOCKS = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP)


class WriterLock:
    """The advisory lock that marks a trajectory file as written by a live pyengine process.

    Held from before a writer opens the file until after it closes it. It lives on its
    own descriptor, so readers (which HDF5 lets take shared ``flock`` locks) never
    conflict with it, and closing other descriptors of the file keeps it (on Linux; a
    POSIX record lock elsewhere is dropped when the process closes any descriptor of the
    file). The lock follows the file through a rename.

    Parameters
    ----------
    path : str or Path
        The file; created (empty) when ``create`` is True.
    create : bool
        Create the file if it does not exist.

    Raises
    ------
    BlockingIOError
        Another live process (or another writer of this one) holds the lock.

    Examples
    --------
    >>> with WriterLock("run.h5"):  # doctest: +SKIP
    ...     clear_flags_unlocked("run.h5")
    """

    def __init__(self, path: str | pathlib.Path, *, create: bool = False) -> None:
        self.path = pathlib.Path(path)
        self.fd = os.open(self.path, os.O_RDWR | (os.O_CREAT if create else 0), 0o666)
        try:
            _lock(self.fd)
        except BlockingIOError:
            os.close(self.fd)
            raise BlockingIOError(
                errno.EAGAIN, f"{self.path} is being written by another live process (a pyengine recorder or "
                "writer holds its lock): wait for it to finish or stop it, then retry") from None

    def release(self) -> None:
        """Drop the lock; releasing twice is harmless."""
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops its lock
            self.fd = -1

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _lock(fd: int) -> None:
    if fcntl is None:
        return
    try:
        if hasattr(fcntl, "F_OFD_SETLK") and sys.platform == "linux" and struct.calcsize("P") == 8:
            # struct flock of 64-bit Linux: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, LOCK_BYTE, 1, 0))
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, LOCK_BYTE)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise BlockingIOError(exc.errno, str(exc)) from exc
        if exc.errno not in _NO_LOCKS:
            raise


def write_flags(path: str | pathlib.Path) -> int:
    """The file consistency flags of a file's superblock: nonzero while (or since) a writer had it open.

    Parameters
    ----------
    path : str or Path
        An HDF5 file.

    Returns
    -------
    int
        0 for a file closed cleanly (or with a superblock older than version 2).

    Examples
    --------
    >>> write_flags("run.h5")  # doctest: +SKIP
    0
    """
    with open(path, "rb") as f:
        offset, block = _superblock(f)
    return block[11] if block[8] in _CHECKSUMMED_VERSIONS else 0


def clear_write_flags(path: str | pathlib.Path) -> bool:
    """Make a file that a killed writer left marked "open for writing" writable again.

    HDF5 refuses to open such a file for writing (and pyengine's readers follow it as a
    file being written). This clears the superblock's write flags when no live process
    writes the file: the pyengine writer lock must be free and, on Linux, no other process
    of this machine may have the file open for writing. The stored end of the file grows
    to the file's size. ``TrajectoryWriter(path, P, mode="a")`` and
    ``Recorder(..., mode="a")`` call it themselves.

    Parameters
    ----------
    path : str or Path
        An HDF5 file (superblock version 2 or 3, as pyengine writes).

    Returns
    -------
    bool
        True if flags were set and are now cleared, False if the file was not marked.

    Raises
    ------
    BlockingIOError
        A live process writes the file (the message names it when it is known).
    FormatError
        No HDF5 superblock, or its checksum is wrong (the file is damaged: not touched).

    Examples
    --------
    >>> from pyengine.store import clear_write_flags
    >>> clear_write_flags("killed.h5")  # doctest: +SKIP
    True
    """
    with WriterLock(path):
        return clear_flags_unlocked(path)


def clear_flags_unlocked(path: str | pathlib.Path) -> bool:
    """:func:`clear_write_flags` for a caller that holds the file's :class:`WriterLock`."""
    with open(path, "r+b") as f:
        offset, block = _superblock(f)
        if block[8] not in _CHECKSUMMED_VERSIONS or block[11] == 0:
            return False
        pids = other_writers(path)
        if pids:
            raise BlockingIOError(errno.EAGAIN, f"{path} is open for writing by process {', '.join(map(str, pids))}: "
                                  "stop it, or wait for it to close the file, then retry")
        f.seek(offset)
        f.write(_cleared(block, os.fstat(f.fileno()).st_size - offset, f.name))
        f.flush()
        os.fsync(f.fileno())
    return True


def _superblock(f) -> tuple[int, bytes]:
    """Offset and bytes of the superblock: at 0, 512, 1024, 2048, ... (after a user block)."""
    size = os.fstat(f.fileno()).st_size
    offset = 0
    while offset + 48 <= size:
        f.seek(offset)
        block = f.read(48)
        if block.startswith(_SIGNATURE):
            return offset, block
        offset = 512 if offset == 0 else 2 * offset
    raise FormatError(f"{f.name}: no HDF5 superblock found (not an HDF5 file)")


def _cleared(block: bytes, size_from_base: int, name: str) -> bytes:
    """The superblock with its flags cleared, its end-of-file address at least the file's size and a new checksum."""
    n_offsets = block[9]
    end = 12 + 4 * n_offsets
    if block[9] != 8 or len(block) < end + 4:
        raise FormatError(f"{name}: superblock with {n_offsets}-byte addresses; only 8-byte addresses are handled")
    stored, = struct.unpack_from("<I", block, end)
    if lookup3(block[:end]) != stored:
        raise FormatError(f"{name}: the superblock checksum is wrong (damaged file); its flags were not cleared")
    base, extension, eof, root = struct.unpack_from("<4Q", block, 12)
    head = block[:11] + b"\x00" + struct.pack("<4Q", base, extension, max(eof, size_from_base), root)
    return head + struct.pack("<I", lookup3(head))


def other_writers(path: str | pathlib.Path) -> list[int]:
    """Other processes of this machine that have ``path`` open for writing (Linux ``/proc``).

    Only processes whose ``/proc/<pid>/fd`` this user may read are seen (all of them for
    root); elsewhere than Linux the list is empty.

    Examples
    --------
    >>> other_writers("run.h5")  # doctest: +SKIP
    [4242]
    """
    proc = pathlib.Path("/proc")
    if not (proc / "self" / "fdinfo").is_dir():
        return []
    st = os.stat(path)
    me = str(os.getpid())
    return sorted(int(p.name) for p in proc.iterdir()
                  if p.name.isdigit() and p.name != me and _writes(p, (st.st_dev, st.st_ino)))


def _writes(process: pathlib.Path, file_id: tuple[int, int]) -> bool:
    try:
        fds = os.listdir(process / "fd")
    except OSError:  # another user's process, or gone
        return False
    for fd in fds:
        try:
            st = os.stat(process / "fd" / fd)
            if (st.st_dev, st.st_ino) == file_id and _flags(process / "fdinfo" / fd) & os.O_ACCMODE != os.O_RDONLY:
                return True
        except OSError:
            continue
    return False


def _flags(fdinfo: pathlib.Path) -> int:
    for line in fdinfo.read_text().splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    return os.O_RDONLY


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 hash (``hashlittle``) of ``data``, HDF5's metadata checksum.

    Reference: B. Jenkins (2006), lookup3.c, public domain; HDF5 File Format
    Specification, "Metadata checksums".

    Examples
    --------
    >>> hex(lookup3(b""))
    '0xdeadbeef'
    >>> hex(lookup3(b"Four score and seven years ago"))
    '0x17770551'
    """
    a = b = c = (0xDEADBEEF + len(data) + initval) & _M32
    rest = data
    while len(rest) > 12:
        x, y, z = struct.unpack_from("<3I", rest)
        a, b, c = _mix((a + x) & _M32, (b + y) & _M32, (c + z) & _M32)
        rest = rest[12:]
    if not rest:
        return c
    x, y, z = struct.unpack("<3I", rest.ljust(12, b"\x00"))
    return _final((a + x) & _M32, (b + y) & _M32, (c + z) & _M32)


_M32 = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M32


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    for k1, k2, k3 in ((4, 6, 8), (16, 19, 4)):
        a = ((a - c) & _M32) ^ _rot(c, k1)
        c = (c + b) & _M32
        b = ((b - a) & _M32) ^ _rot(a, k2)
        a = (a + c) & _M32
        c = ((c - b) & _M32) ^ _rot(b, k3)
        b = (b + a) & _M32
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    c = ((c ^ b) - _rot(b, 14)) & _M32
    a = ((a ^ c) - _rot(c, 11)) & _M32
    b = ((b ^ a) - _rot(a, 25)) & _M32
    c = ((c ^ b) - _rot(b, 16)) & _M32
    a = ((a ^ c) - _rot(c, 4)) & _M32
    b = ((b ^ a) - _rot(a, 14)) & _M32
    return ((c ^ b) - _rot(b, 24)) & _M32


def open_for_writing(path: str | pathlib.Path, *, swmr: bool, alignment: tuple[int, int]) -> h5py.File:
    """Open a trajectory file read-write; with ``swmr``, straight into SWMR write mode.

    Opened in one step, the file is never marked as written in the plain (non-SWMR) way,
    which readers cannot follow. HDF5's own ``flock`` is taken as usual (so that readers
    of this process may open the file too); where a reader of another process holds a
    shared lock, the file is opened without HDF5's lock: the :class:`WriterLock` the
    caller holds already keeps other writers out.
    """
    flags = h5py.h5f.ACC_RDWR | (h5py.h5f.ACC_SWMR_WRITE if swmr else 0)
    try:
        return h5py.File(h5py.h5f.open(os.fsencode(path), flags, _access(alignment, locking=True)))
    except OSError as exc:
        if "unable to lock file" not in str(exc):
            raise
    return h5py.File(h5py.h5f.open(os.fsencode(path), flags, _access(alignment, locking=False)))


def _access(alignment: tuple[int, int], *, locking: bool) -> h5py.h5p.PropFAID:
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    fapl.set_alignment(*alignment)
    fapl.set_file_locking(locking, True)
    return fapl
