"""Plain float64 NumPy versions of every kernel: the ``numpy`` backend and the reference
that every fast path is tested against. Written for clarity, not speed."""

from pyengine.reference.boxcount import box_counts, surface_stats
from pyengine.reference.increments import increment_sums, transposed_increments
from pyengine.reference.lagband import lag_band
from pyengine.reference.msd import time_averaged_msd
from pyengine.reference.pairs import pair_bin
from pyengine.reference.spectral import transposed_displacements
from pyengine.reference.tail_index import tail_norms, tail_sums
from pyengine.reference.tail_stable import stable_loglik

__all__ = ["box_counts", "surface_stats", "increment_sums", "transposed_increments", "lag_band", "time_averaged_msd", "pair_bin", "transposed_displacements", "tail_sums", "tail_norms", "stable_loglik"]
