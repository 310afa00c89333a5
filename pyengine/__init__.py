"""pyengine: fast, trustworthy statistics of SGD trajectories.

Anomalous diffusion (MSD, exponents), fractal geometry of the path and of the landscape,
and heavy-tailed gradient noise, computed in one streaming pass over a recorded training
run. See README.md and docs/ for a tour.
"""

from pyengine import _omp  # noqa: F401  (first: OpenMP's wait policy, before the extension loads)
from pyengine import models
from pyengine.dispatch import backends
from pyengine.fractal import BoxCountResult, VariogramResult, boxcount, variogram_dimension
from pyengine.store import Trajectory
from pyengine.store import open_trajectory as open  # noqa: A001  (pe.open is the documented entry point)
from pyengine.estimators.msd import MSDResult, msd
from pyengine.estimators.diffusion import DiffusionFit, LogDerivative, fit_diffusion, log_derivative
from pyengine.estimators.increments import IncrementsResult, IncrementTails, increment_tails, increments
from pyengine.estimators.loss import LossStats, loss_stats
from pyengine.estimators.pairs import MSLResult, PathResult, msl, path_geometry
from pyengine.analysis import Analysis, analyze
from pyengine.compare import compare
from pyengine.heavytail import KappaFit, StableFit, TailIndexResult, fit_kappa, fit_levy_stable, tail_index

from pyengine._version import __version__

__all__ = [
    "__version__",
    "backends",
    "boxcount",
    "BoxCountResult",
    "variogram_dimension",
    "VariogramResult",
    "open",
    "Trajectory",
    "msd",
    "MSDResult",
    "fit_diffusion",
    "DiffusionFit",
    "log_derivative",
    "LogDerivative",
    "increments",
    "IncrementsResult",
    "increment_tails",
    "IncrementTails",
    "loss_stats",
    "LossStats",
    "msl",
    "MSLResult",
    "path_geometry",
    "PathResult",
    "analyze",
    "Analysis",
    "compare",
    "models",
    "record",
    "tail_index",
    "TailIndexResult",
    "fit_levy_stable",
    "StableFit",
    "fit_kappa",
    "KappaFit",
]


def __getattr__(name: str):
    """``pe.record`` imports torch, so it is loaded on first use, not by ``import pyengine``."""
    if name == "record":
        import importlib

        return importlib.import_module("pyengine.record")
    raise AttributeError(f"module 'pyengine' has no attribute {name!r}")
