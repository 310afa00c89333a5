"""Toy models of SGD dynamics from the papers pyengine follows (see docs/science.md).

- :mod:`~pyengine.toys.fractal_landscape`: Chen et al. (2022) Eq. 10 on a fractal surface.
- :mod:`~pyengine.toys.double_well`: Lévy- vs Brownian-driven descent (Şimşekli et al. 2019).
- :mod:`~pyengine.toys.power_law`: the power-law dynamic of document 004.
"""

from pyengine.toys.double_well import (DoubleWell, escape_times, kramers_escape_time, levy_constant,
                                       levy_escape_time, simulate_well, valley_fraction, valley_ratio)
from pyengine.toys.fractal_landscape import (Landscape, SGDRun, fractal_landscape, paraboloid, select_start,
                                             shuffled_landscape, simulate_sgd)
from pyengine.toys.power_law import kappa_continuum, kappa_discrete, kappa_ito, simulate_power_law

__all__ = [
    "DoubleWell",
    "escape_times",
    "kramers_escape_time",
    "levy_constant",
    "levy_escape_time",
    "simulate_well",
    "valley_fraction",
    "valley_ratio",
    "Landscape",
    "SGDRun",
    "fractal_landscape",
    "paraboloid",
    "select_start",
    "shuffled_landscape",
    "simulate_sgd",
    "kappa_continuum",
    "kappa_discrete",
    "kappa_ito",
    "simulate_power_law",
]
