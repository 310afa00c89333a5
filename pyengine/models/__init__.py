"""Seeded, vectorised synthetic trajectories with known answers.

Generators return arrays of shape (n_steps, n_params) whose row 0 is the starting point
(the centre of the well for :func:`ornstein_uhlenbeck`); :func:`expected_msd` gives
each model's known MSD, :func:`write_synthetic` writes a trajectory file.

Examples
--------
>>> from pyengine import models
>>> x = models.fbm(1024, 16, 0.3, seed=0)
>>> models.expected_msd("fbm", [1, 2], n_params=16, hurst=0.5)
array([16., 32.])
"""

from pyengine.models.files import GENERATORS, synthetic_loss, write_synthetic
from pyengine.models.gaussian import fbm, ornstein_uhlenbeck
from pyengine.models.msd import expected_msd
from pyengine.models.stable import stable_samples
from pyengine.models.surfaces import fbm_surface_exact
from pyengine.models.walks import ballistic, brownian, ctrw, levy_flight

__all__ = [
    "GENERATORS",
    "ballistic",
    "brownian",
    "ctrw",
    "expected_msd",
    "fbm",
    "fbm_surface_exact",
    "levy_flight",
    "ornstein_uhlenbeck",
    "stable_samples",
    "synthetic_loss",
    "write_synthetic",
]
