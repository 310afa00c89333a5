"""Estimators on top of the accumulators; each returns a result object with to_dict() and plot()."""

from pyengine.estimators.msd import MSDResult, msd

__all__ = ["MSDResult", "msd"]
