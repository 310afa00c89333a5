"""Type stubs of the private C++ extension pyengine._core (CPU kernels)."""

import numpy as np
import numpy.typing as npt

def build_info() -> str: ...
def max_threads() -> int: ...
def selfcheck() -> int: ...
def lag_band(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    lags: npt.NDArray[np.int64],
    out: npt.NDArray[np.float64],
    n_threads: int = 0,
) -> None: ...
