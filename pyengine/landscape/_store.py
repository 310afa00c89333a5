"""Writing the landscape tools' groups into an existing trajectory file."""

from __future__ import annotations

import pathlib

import numpy as np

from pyengine.store import TrajectoryWriter, open_trajectory


def write_group(path: str | pathlib.Path, name: str, datasets: dict[str, np.ndarray], attrs: dict) -> None:
    """Create or replace the group ``name`` of a closed trajectory file (no SWMR writer may hold it)."""
    with open_trajectory(path, validate=False) as traj:
        n_params, dtype = traj.n_params, traj.dtype
    with TrajectoryWriter(path, n_params, dtype=dtype, mode="a", swmr=False) as writer:
        writer.write_group(name, datasets, attrs)
