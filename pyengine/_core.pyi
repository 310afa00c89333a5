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
def spectral_sums(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    n_origins: int,
    cross: npt.NDArray[np.complex128],
    sq: npt.NDArray[np.float64],
    n_threads: int = 0,
    lanes: int = 0,
) -> None: ...
def increment_sums(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    max_lag: int,
    power: npt.NDArray[np.float64],
    power_sq: npt.NDArray[np.float64],
    acf: npt.NDArray[np.float64],
    acf_sq: npt.NDArray[np.float64],
    n_threads: int = 0,
    lanes: int = 0,
) -> int: ...
def map_chunks(fd: int, offsets: npt.NDArray[np.int64], chunk_bytes: int) -> npt.NDArray[np.uint8]: ...
def box_counts(
    z: npt.NDArray[np.float32] | npt.NDArray[np.float64] | npt.NDArray[np.uint8] | npt.NDArray[np.bool_],
    oy: int,
    ox: int,
    sizes: npt.NDArray[np.int64],
    inv_heights: npt.NDArray[np.float64],
    zmin: float,
    rule: int,
    counts: npt.NDArray[np.float64],
    n_blocks: npt.NDArray[np.float64],
    n_threads: int = 0,
) -> None: ...
def surface_stats(
    z: npt.NDArray[np.float32] | npt.NDArray[np.float64], n_threads: int = 0
) -> npt.NDArray[np.float64]: ...
def pair_bin(
    key: npt.NDArray[np.floating],
    value: npt.NDArray[np.floating],
    edges: npt.NDArray[np.float64],
    log_uniform: bool,
    out: npt.NDArray[np.float64],
    n_threads: int = 0,
) -> None: ...
def tail_sums(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    k1: npt.NDArray[np.int64],
    stats: npt.NDArray[np.float64],
    n_threads: int = 0,
) -> None: ...
def tail_norms(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    k1: npt.NDArray[np.int64],
    row_sq: npt.NDArray[np.float64],
    group_sq: npt.NDArray[np.float64],
    n_threads: int = 0,
) -> None: ...
def stable_loglik(
    x: npt.NDArray[np.float64],
    loc: float,
    scale: float,
    g: npt.NDArray[np.float64],
    g_da: npt.NDArray[np.float64],
    h: float,
    x_tail: float,
    c: npt.NDArray[np.float64],
    c_da: npt.NDArray[np.float64],
    alpha: float,
    sums: npt.NDArray[np.float64],
    logp: npt.NDArray[np.float64] | None = None,
    n_threads: int = 0,
) -> None: ...
