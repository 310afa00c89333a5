"""Fractal geometry: box-counting dimension of surfaces, sets, point sets and curves.

See docs/fractal.md for the methods and their measured accuracy.
"""

from pyengine.fractal.boxcount import boxcount, level_set
from pyengine.fractal.result import BoxCountResult
from pyengine.fractal.surfaces import fbm_surface, koch_curve, sierpinski_carpet

__all__ = ["BoxCountResult", "boxcount", "fbm_surface", "koch_curve", "level_set", "sierpinski_carpet"]
