"""Fractal geometry: box-counting dimension of surfaces, sets, point sets and curves, and the
variogram / madogram dimension of surfaces and curves.

See docs/fractal.md for the methods and their measured accuracy.
"""

from pyengine.fractal.boxcount import boxcount, level_set
from pyengine.fractal.result import BoxCountResult
from pyengine.fractal.surfaces import fbm_surface, koch_curve, sierpinski_carpet
from pyengine.fractal.variogram import VariogramResult, variogram_dimension

__all__ = ["BoxCountResult", "VariogramResult", "boxcount", "fbm_surface", "koch_curve", "level_set",
           "sierpinski_carpet", "variogram_dimension"]
