"""The HDF5 trajectory file format v1: writer, reader, validation, summary.

A trajectory file holds the weight snapshots ``/weights`` (N, P), the steps ``/step``,
the losses ``/loss``, the parameter table ``/params`` and optional groups; every
dataset and attribute is described in ``docs/format.md``.

Examples
--------
>>> import numpy as np
>>> from pyengine.store import write_trajectory, open_trajectory
>>> x = np.cumsum(np.random.default_rng(0).normal(size=(100, 50)), axis=0)
>>> path = write_trajectory("bm.h5", x, overwrite=True)  # doctest: +SKIP
>>> with open_trajectory(path) as traj:  # doctest: +SKIP
...     traj.n_snapshots, traj.n_params
(100, 50)
"""

from pyengine.store._format import FORMAT_NAME, FORMAT_VERSION, FormatError, ParamInfo
from pyengine.store._groups import RowGroup, group_rows
from pyengine.store._swmr import clear_write_flags
from pyengine.store.checksum import ChecksumReport, verify
from pyengine.store.describe import describe
from pyengine.store.imports import import_checkpoints
from pyengine.store.reader import Trajectory, open_trajectory
from pyengine.store.validation import ValidationReport, validate
from pyengine.store.writer import TrajectoryWriter, write_trajectory

__all__ = [
    "ChecksumReport",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FormatError",
    "ParamInfo",
    "RowGroup",
    "Trajectory",
    "TrajectoryWriter",
    "ValidationReport",
    "clear_write_flags",
    "describe",
    "group_rows",
    "import_checkpoints",
    "open_trajectory",
    "validate",
    "verify",
    "write_trajectory",
]
