"""A human-readable summary of a trajectory file: :func:`describe` (``pyengine info``)."""

from __future__ import annotations

import json
import math
import pathlib
from collections import Counter

import h5py
import numpy as np

from pyengine.store._checks import open_h5
from pyengine.store._format import OPTIONAL_GROUPS, FormatError, as_text
from pyengine.store.reader import Trajectory
from pyengine.store.validation import validate

#: Parameter tensors listed by name in the summary (the rest are counted by kind).
MAX_LISTED_PARAMS = 5
#: Blosc compressor codes (the 7th filter parameter of HDF5 filter 32001).
_BLOSC_CODECS = {0: "blosclz", 1: "lz4", 2: "lz4hc", 3: "snappy", 4: "zlib", 5: "zstd"}


def describe(path: str | pathlib.Path, *, check_values: bool = False) -> str:
    """Summarize a trajectory file and its validation, as ``pyengine info`` prints it.

    Parameters
    ----------
    path : str or Path
        The file.
    check_values : bool
        Also scan every weight for NaN/Inf (reads the whole file; ``--check-values``).

    Returns
    -------
    str
        N, P, dtype, steps (range and stride), loss range, chunking and compression,
        the parameter table, optional groups, settings and the validation result.

    Raises
    ------
    FileNotFoundError
        No such file.
    FormatError
        The file is not a valid trajectory; the message is the full validation report.

    Examples
    --------
    >>> print(describe("run.h5"))  # doctest: +SKIP
    file        run.h5 (0.4 MiB)
    ...
    """
    open_h5(path).close()  # a missing file, a directory, not HDF5: one line, not a report
    report = validate(path, check_values=check_values)
    if not report.ok:
        raise FormatError(str(report))
    with Trajectory(path) as traj:
        lines = _summary(traj)
    scope = "all values checked" if check_values else "weights not scanned; use --check-values"
    lines.append(f"validation  ok ({scope})")
    lines.extend(f"warning     {w}" for w in report.warnings)
    return "\n".join(lines)


def _summary(traj: Trajectory) -> list[str]:
    root = traj.file.attrs
    return [
        f"file        {traj.path} ({_bytes_text(traj.path.stat().st_size)})",
        f"format      {as_text(root['format'])} v{int(root['format_version'])}, created {as_text(root['created'])}"
        f" by {as_text(root['producer'])}",
        f"snapshots   N = {traj.n_snapshots}, {_steps_text(traj.steps)}",
        f"parameters  P = {traj.n_params}, {traj.dtype}"
        f" ({_bytes_text(traj.n_params * traj.dtype.itemsize)} per snapshot)",
        f"loss        {_loss_text(traj.loss)}",
        f"storage     chunks {traj.chunk_shape[0]} x {traj.chunk_shape[1]}, compression {_filters_text(traj.weights)}",
        f"params      {_params_text(traj)}",
        f"groups      {_groups_text(traj)}",
        *_settings_lines(traj.attrs),
    ]


#: Characters of a setting's value shown by `pyengine info` (the full JSON is in the file).
SETTING_WIDTH = 70


def _settings_lines(settings: dict) -> list[str]:
    if not settings:
        return ["settings    none"]
    lines = []
    for i, key in enumerate(sorted(settings)):
        text = " ".join(json.dumps(settings[key], sort_keys=True).split())
        if len(text) > SETTING_WIDTH:
            text = text[: SETTING_WIDTH - 1] + "…"
        lines.append(f"{'settings' if i == 0 else '':12}{key} = {text}")
    return lines


def _steps_text(steps: np.ndarray) -> str:
    if steps.size == 0:
        return "no steps"
    strides = np.unique(np.diff(steps))
    if strides.size == 0:
        stride = "one snapshot"
    elif strides.size == 1:
        stride = f"stride {strides[0]}"
    else:
        stride = f"stride {strides[0]}..{strides[-1]} (irregular)"
    return f"steps {steps[0]}..{steps[-1]}, {stride}"


def _loss_text(loss: np.ndarray) -> str:
    if loss.size == 0:
        return "none"
    missing = int(np.isnan(loss).sum())
    if missing:  # allowed only where /loss declares it (docs/format.md)
        known = loss[~np.isnan(loss)]
        return f"none recorded at {missing} of {loss.size} snapshots" + (
            f"; min {known.min():.6g}, max {known.max():.6g} at the others" if known.size else "")
    return f"first {loss[0]:.6g}, last {loss[-1]:.6g}, min {loss.min():.6g}, max {loss.max():.6g}"


def _bytes_text(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    exp = min(int(math.log(n, 1024)), 4)
    return f"{n / 1024**exp:.1f} {('KiB', 'MiB', 'GiB', 'TiB')[exp - 1]}"


def _filters_text(dataset: h5py.Dataset) -> str:
    plist = dataset.id.get_create_plist()
    names = [_filter_name(*plist.get_filter(i)) for i in range(plist.get_nfilters())]
    return " + ".join(names) if names else "none"


def _filter_name(code: int, flags: int, values: tuple[int, ...], name: bytes) -> str:
    if code == 32001 and len(values) > 6:
        return f"blosc {_BLOSC_CODECS.get(values[6], values[6])}"
    return name.decode("utf-8", "backslashreplace")  # the file's own text: shown, not trusted


def _params_text(traj: Trajectory) -> str:
    kinds = Counter(p.kind for p in traj.params)
    sizes: Counter[str] = Counter()
    for p in traj.params:
        sizes[p.kind] += p.size
    head = f"{len(traj.params)} tensors: " + ", ".join(f"{kinds[k]} {k} ({sizes[k]} values)" for k in sorted(kinds))
    listed = [f"{p.name} {p.shape} [{p.offset}:{p.offset + p.size}]" for p in traj.params[:MAX_LISTED_PARAMS]]
    more = len(traj.params) - MAX_LISTED_PARAMS
    return "\n            ".join([head, *listed] + ([f"... {more} more"] if more > 0 else []))


def _groups_text(traj: Trajectory) -> str:
    """The optional groups holding datasets (validation checked their links and names)."""
    found: list[str] = []
    for name in OPTIONAL_GROUPS:
        group = traj.group(name)
        if group is not None:
            _note_group(found, name, group)
            group.visititems(lambda sub, obj: _note_group(found, f"{name}/{sub}", obj))
    return ", ".join(found) if found else "none"


def _note_group(found: list[str], name: str, obj: h5py.HLObject) -> None:
    if isinstance(obj, h5py.Group) and any(isinstance(v, h5py.Dataset) for v in obj.values()):
        found.append(f"{name} ({', '.join(sorted(obj))})")
