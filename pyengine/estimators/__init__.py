"""Estimators on top of the accumulators; each returns a result object with to_dict() and plot()."""

from pyengine.estimators.msd import MSDResult, msd
from pyengine.estimators.pairs import MSLResult, PathResult, msl, path_geometry

__all__ = ["MSDResult", "msd", "MSLResult", "PathResult", "msl", "path_geometry"]
