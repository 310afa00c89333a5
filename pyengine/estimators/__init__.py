"""Estimators on top of the accumulators; each returns a result object with to_dict() and plot()."""

from pyengine.estimators.msd import MSDResult, msd
from pyengine.estimators.diffusion import (DiffusionFit, LogDerivative, WindowFit, fit_diffusion,
                                           log_derivative)
from pyengine.estimators.increments import IncrementsResult, IncrementTails, increment_tails, increments
from pyengine.estimators.loss import LossStats, loss_stats
from pyengine.estimators.pairs import MSLResult, PathResult, msl, path_geometry

__all__ = ["MSDResult", "msd",
           "DiffusionFit", "LogDerivative", "WindowFit", "fit_diffusion", "log_derivative",
           "IncrementsResult", "increments", "IncrementTails", "increment_tails", "LossStats", "loss_stats",
           "MSLResult", "PathResult", "msl", "path_geometry"]
