"""Synthetic losses and trajectory files built from the generators."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

import numpy as np

from pyengine.models._common import check_nonnegative, check_size, row_chunks
from pyengine.models.gaussian import fbm, ornstein_uhlenbeck
from pyengine.models.walks import ballistic, brownian, ctrw, levy_flight

#: The generators by name, as accepted by :func:`write_synthetic`.
GENERATORS: dict[str, Callable[..., np.ndarray]] = {
    "brownian": brownian,
    "fbm": fbm,
    "ballistic": ballistic,
    "levy_flight": levy_flight,
    "ctrw": ctrw,
    "ornstein_uhlenbeck": ornstein_uhlenbeck,
}

#: Relative floor added to the quadratic loss so that it stays positive at the end.
_LOSS_FLOOR = 1e-3


def synthetic_loss(x, *, kind: str = "quadratic", noise: float = 0.05, seed=None) -> np.ndarray:
    """A plausible, on average decreasing training loss for a trajectory.

    ``kind="quadratic"`` is a quadratic bowl centred at the last snapshot,

        L(t) = (q(t) + f·mean_s q(s)) · exp(noise·ξ_t − noise²/2),
        q(t) = ½·mean_j (x_j(t) − x_j(N−1))²,   f = 10⁻³,   ξ_t ~ N(0, 1),

    positive, decreasing on average for walks that move away from their start (the run
    "converges" to where it ends), with multiplicative log-normal minibatch noise of
    mean 1.

    Parameters
    ----------
    x : numpy.ndarray or h5py.Dataset of shape (n_steps, n_params)
        The trajectory; read in row chunks.
    kind : str, optional
        The loss shape; only ``"quadratic"`` for now.
    noise : float, optional
        Standard deviation of the log-normal noise, >= 0 (0 gives the clean loss).
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None, optional
        Anything :func:`numpy.random.default_rng` accepts.

    Returns
    -------
    numpy.ndarray of float64, shape (n_steps,)
        The loss at every snapshot.

    Examples
    --------
    >>> from pyengine.models import ballistic
    >>> loss = synthetic_loss(ballistic(100, 10, seed=0), noise=0.0)
    >>> bool(np.all(np.diff(loss) < 0))
    True
    """
    if kind != "quadratic":
        raise ValueError(f"kind must be one of ['quadratic'], got {kind!r}")
    if getattr(x, "ndim", None) != 2:
        raise ValueError(f"x must be a 2-D array (n_steps, n_params), got shape {getattr(x, 'shape', None)}")
    noise = check_nonnegative(noise, "noise")
    n_steps, n_params = x.shape
    end = np.asarray(x[n_steps - 1], dtype=np.float64)
    q = np.empty(n_steps)
    for r0, r1 in row_chunks(0, n_steps, 8 * n_params):
        q[r0:r1] = 0.5 * np.mean((np.asarray(x[r0:r1], dtype=np.float64) - end) ** 2, axis=1)
    q += _LOSS_FLOOR * q.mean()
    xi = np.random.default_rng(seed).standard_normal(n_steps)
    return q * np.exp(noise * xi - 0.5 * noise**2)


def write_synthetic(
    path: str | os.PathLike,
    model: str,
    n_steps: int,
    n_params: int,
    *,
    every: int = 1,
    seed=None,
    **params,
) -> pathlib.Path:
    """Generate a model trajectory and write it as a trajectory file with a synthetic loss.

    Snapshots are kept every ``every`` steps (``steps = arange(0, n_steps, every)``); the
    loss is :func:`synthetic_loss` of the kept snapshots. The file's settings (the JSON
    root attribute ``settings``, ``Trajectory.attrs``) record the model, sizes,
    ``every``, the integer seed (or None) and the model's parameters, so the known
    answer (:func:`expected_msd`) can be recomputed from the file alone. The file must
    not exist yet.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (HDF5 trajectory format, see ``docs/format.md``).
    model : str
        One of ``"brownian"``, ``"fbm"``, ``"ballistic"``, ``"levy_flight"``, ``"ctrw"``,
        ``"ornstein_uhlenbeck"``.
    n_steps : int
        Number of simulated steps, >= 1.
    n_params : int
        Number of coordinates, >= 1.
    every : int, optional
        Keep every ``every``-th snapshot, >= 1.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None, optional
        Seeds the trajectory and then the loss noise.
    **params
        The generator's keywords (e.g. ``hurst=0.3`` for ``"fbm"``, ``dtype=np.float32``).

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "fbm.h5"
    >>> write_synthetic(out, "fbm", 1000, 32, every=10, seed=0, hurst=0.3) == out
    True
    """
    if model not in GENERATORS:
        raise ValueError(f"model must be one of {sorted(GENERATORS)}, got {model!r}")
    every = check_size(every, "every")
    from pyengine.store import write_trajectory

    rng = np.random.default_rng(seed)
    x = GENERATORS[model](n_steps, n_params, seed=rng, **params)
    if every > 1:
        x = np.ascontiguousarray(x[::every])
    steps = np.arange(0, n_steps, every, dtype=np.int64)
    loss = synthetic_loss(x, seed=rng)
    settings = {"model": model, "n_steps": n_steps, "n_params": n_params, "every": every,
                "seed": int(seed) if isinstance(seed, (int, np.integer)) else None}
    settings.update({key: _json_safe(value) for key, value in params.items()})
    write_trajectory(path, x, steps, loss, attrs=settings)
    return pathlib.Path(path)


def _json_safe(value):
    """A JSON-friendly form of a generator keyword (dtypes by name, arrays summarised)."""
    if isinstance(value, (type, np.dtype)):
        return np.dtype(value).name
    array = np.asarray(value)
    if array.ndim == 0:
        return array.item()
    if array.size <= 16:
        return array.tolist()
    return f"array of shape {array.shape}, mean {float(array.mean()):.6g}"
