"""Output directories: pyengine replaces or deletes only what it wrote itself.

Every output directory pyengine writes holds a manifest, ``.pyengine-output``, listing
each file and folder it put there. An existing directory is replaced only when it is
empty or when everything in it is listed in its manifest (an earlier pyengine output,
untouched since); a directory holding anything else, or holding the input being
analysed, is refused before any work starts. A replacement is built in a temporary
folder beside the target and swapped in when complete, so an interrupted save leaves the
earlier output as it was; the earlier output is then removed entry by entry from its
manifest, never with a recursive delete of whatever is there.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from collections.abc import Callable, Iterable

__all__ = ["MANIFEST", "check_output", "write_output", "claim_output"]

MANIFEST = ".pyengine-output"


def _absolute(path: str | os.PathLike) -> pathlib.Path:
    """An absolute, normalised path (``.`` and ``..`` resolved, symlinks followed)."""
    return pathlib.Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _listing(folder: pathlib.Path) -> set[str]:
    """Every file and folder under ``folder``, relative to it (no symlinks followed). The
    contents of a sub-folder with a manifest of its own (a nested output) are not listed."""
    found = set()
    for root, dirs, files in os.walk(folder):
        rel = pathlib.Path(root).relative_to(folder)
        found.update(str(rel / name) for name in dirs + files)
        dirs[:] = [d for d in dirs if not (pathlib.Path(root, d) / MANIFEST).exists()]
    return found


def _manifest(folder: pathlib.Path) -> set[str] | None:
    """The entries pyengine recorded in ``folder``'s manifest, or None when there is none."""
    try:
        listed = json.loads((folder / MANIFEST).read_text())["entries"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {str(e) for e in listed} if isinstance(listed, list) else None


def foreign_entries(folder: pathlib.Path) -> list[str]:
    """What ``folder`` holds that pyengine did not write there (sorted), nested outputs included."""
    found = _listing(folder)
    ours = _manifest(folder) or set()
    foreign = found - ours - {MANIFEST}
    for rel in found & ours:
        if (folder / rel / MANIFEST).exists():
            foreign.update(f"{rel}/{e}" for e in foreign_entries(folder / rel))
    return sorted(foreign)


def check_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = ()) -> pathlib.Path:
    """Check, before any work, that results can be written to the directory ``out``.

    Parameters
    ----------
    out : path
        The output directory: new, empty, or an earlier pyengine output.
    inputs : paths
        Files being read (the trajectory); ``out`` may not contain any of them.

    Returns
    -------
    Path
        ``out`` as an absolute path.

    Raises
    ------
    FileExistsError
        ``out`` is a file, or a directory holding files pyengine did not write.
    ValueError
        ``out`` contains an input file.
    PermissionError
        ``out`` (or the folder it would be created in) is not writable.
    """
    target = _absolute(out)
    for path in inputs:
        if path is not None and (target == _absolute(path) or target in _absolute(path).parents):
            raise ValueError(f"the output directory {target} contains the input {path}: choose a new directory, "
                             "e.g. --out results/")
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise FileExistsError(f"{target} exists and is not a directory: choose a new output directory")
        foreign = foreign_entries(target)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise FileExistsError(f"{target} holds files pyengine did not write ({shown}): choose a new or empty "
                                  "output directory; pyengine replaces only its own earlier outputs")
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not existing.is_dir():
        raise FileExistsError(f"cannot create {target}: {existing} is a file")
    _probe_writable(existing)
    return target


def _probe_writable(folder: pathlib.Path) -> None:
    """Create and remove a folder in ``folder``: the only sure test that the output can be
    written there (permission bits do not tell about /proc, read-only mounts or quotas)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".pyengine-probe-", dir=folder))
    except OSError as exc:
        raise PermissionError(f"cannot write to {folder} ({exc.strerror}): choose an output directory you can "
                              "write to") from None


def _write_manifest(folder: pathlib.Path) -> None:
    entries = sorted(_listing(folder) | {MANIFEST})
    (folder / MANIFEST).write_text(json.dumps({"producer": "pyengine", "entries": entries}, indent=0))


def _make_parents(folder: pathlib.Path) -> list[pathlib.Path]:
    """Create the missing parents of ``folder``; return those created, deepest first."""
    missing = [p for p in folder.parents if not p.exists()]
    for p in reversed(missing):
        p.mkdir()
    return missing


def _remove_own(folder: pathlib.Path) -> None:
    """Remove what the manifest of ``folder`` lists, then the folder if nothing else is left."""
    listed = _manifest(folder) or set()
    for rel in sorted(listed, key=lambda r: r.count(os.sep), reverse=True):
        path = folder / rel
        if path.is_dir() and not path.is_symlink():
            try:
                path.rmdir()
            except OSError:
                pass  # something not ours is inside: leave it
        elif path.exists() or path.is_symlink():
            path.unlink()
    try:
        folder.rmdir()
    except OSError:
        pass


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def write_output(out: str | os.PathLike, fill: Callable[[pathlib.Path], None],
                 inputs: Iterable[str | os.PathLike | None] = ()) -> pathlib.Path:
    """Write a pyengine output directory atomically: ``fill(tmp)`` writes the files.

    The files go to a temporary folder beside ``out``, which then takes the place of
    ``out`` (see the module docstring for what may be replaced). On failure nothing of
    the attempt remains: neither the temporary folder nor parent folders it created.

    Returns
    -------
    Path
        ``out``, absolute.
    """
    inputs = list(inputs)
    target = check_output(out, inputs)
    created = _make_parents(target)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".pyengine-tmp", dir=target.parent))
    try:
        tmp.chmod(_umask_mode())  # mkdtemp makes 0700 folders; an output folder gets the usual mode
        fill(tmp)
        _write_manifest(tmp)
        _swap_in(tmp, target, inputs)
    except BaseException:
        _remove_tree_we_made(tmp)
        for parent in created:
            try:
                parent.rmdir()
            except OSError:
                break
        raise
    return target


def _remove_tree_we_made(tmp: pathlib.Path) -> None:
    """Remove the temporary folder of a failed write (everything in it is ours)."""
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: pathlib.Path, target: pathlib.Path, inputs: list) -> None:
    if not target.exists():
        tmp.rename(target)
        return
    check_output(target, inputs)  # again, right before the swap: the folder may have changed
    if not any(target.iterdir()):
        tmp.rename(target)  # POSIX rename replaces an empty directory
        return
    old = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".pyengine-old", dir=target.parent))
    target.rename(old)  # onto the empty folder just made, so no existing name is ever taken
    tmp.rename(target)
    _remove_own(old)


def claim_output(out: str | os.PathLike, entries: Iterable[str]) -> pathlib.Path:
    """Create (or take back) an output directory that a long job fills in place.

    For jobs that write large files directly (the demo's recording): ``out`` is checked
    as by :func:`check_output`, created, and its manifest lists ``entries`` up front, so
    a later run may replace them and nothing else.
    """
    target = check_output(out)
    target.mkdir(parents=True, exist_ok=True)
    listed = (_manifest(target) or set()) | set(entries) | {MANIFEST}
    (target / MANIFEST).write_text(json.dumps({"producer": "pyengine", "entries": sorted(listed)}, indent=0))
    return target
