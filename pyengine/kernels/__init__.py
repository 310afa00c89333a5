"""Kernel dispatch: one function per kernel family, ``backend="auto"|"cuda"|"cpp"|"numba"|"numpy"``.

All backends give the same answer to floating point tolerance (tests/test_kernels_*.py).
"""

from pyengine.kernels.boxcount import box_counts, surface_stats
from pyengine.kernels.increments import increment_sums
from pyengine.kernels.lagband import lag_band
from pyengine.kernels.pairs import pair_bin
from pyengine.kernels.spectral import spectral_sums
from pyengine.kernels.tail_index import tail_norms, tail_sums
from pyengine.kernels.tail_stable import stable_loglik

__all__ = ["box_counts", "surface_stats", "increment_sums", "lag_band", "pair_bin", "spectral_sums", "tail_sums", "tail_norms", "stable_loglik"]
