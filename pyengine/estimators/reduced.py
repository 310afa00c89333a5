"""What each statistic means on a sampled or sketched recording, and the one scaling of its sums.

A sampled file keeps each coordinate with probability f: a sum over parameters (a squared
distance, an MSD, a Gram matrix) over the kept columns, times 1/f (= P_full / P_kept), is
an unbiased estimate of the same sum over the full model. A CountSketch keeps inner
products in expectation (E‖Sx‖² = ‖x‖²): its sums need no factor, but a mean per parameter
divides by P_full, not by k. :func:`scale_to_full` does both, where the MSD and the pairs
requests conclude, so that curves of sampled, sketched and full files overlay.

The standard errors need no term of their own: the jackknife deletes groups of columns,
and the columns of a reduced file are random (a sample of coordinates, or sketch
buckets, each a signed sum over a random set of coordinates), so its replicates vary with
the reduction's error as well as with the spread between parameters. For a sketch, the
added variance of a squared distance ‖x‖² is exactly (2/k)(‖x‖₂⁴ − ‖x‖₄⁴) ≤ 2‖x‖⁴/k
(:func:`pyengine.store.reduction.countsketch_variance`); tests/test_reduce.py checks that
formula over seeds and that the jackknife SE of a sketched MSD covers it.

Per-coordinate statistics (increment spectra and autocorrelations, tail indices, κ) read
coordinates one by one: a sample of coordinates is a sample of the same population, but a
sketch coordinate mixes parameters of every layer, so ``pe.analyze`` skips them on a sketch
(:func:`unavailable`).
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (the doctests)

__all__ = ["ACCURACY", "READS", "accuracy", "require_available", "scale_to_full", "unavailable"]

#: How each row of the table of analyses (pyengine.analyses.STATISTICS) reads the weights:
#: "sums" (over parameters: MSD, squared distances, Gram matrices, and what is fitted to
#: them), "coordinates" (one coordinate at a time), "all" (needs every parameter, unscaled:
#: the state-dependent noise fits distances to the final weights against probe traces of
#: the full model) or "none" (the loss and the probe groups).
READS = {
    "msd": "sums", "diffusion": "sums", "beta": "sums", "distances": "sums", "path": "sums", "msl": "sums",
    "increments": "coordinates", "tails": "coordinates", "kappa": "coordinates", "state_noise": "all",
    "loss": "none", "eval": "none", "noise": "none", "hessian": "none", "landscape": "none",
    "noise_covariance": "none", "curvature": "none",
}

_UNBIASED_SUMS = {"msd"}  # sums themselves; the rest are fitted to (or derived from) sums

#: (status, note) per reduction method and kind of statistic.
ACCURACY = {
    (None, "sums"): ("exact", "every parameter recorded"),
    (None, "coordinates"): ("exact", "every parameter recorded"),
    ("sample", "msd"): ("unbiased estimate",
                        "sums over the kept coordinates × P_full/P_kept (1/f); the SE (jackknife over the kept "
                        "coordinates) includes the sampling error"),
    ("sample", "sums"): ("estimate",
                         "fitted to or derived from unbiased sums over the kept coordinates × 1/f; the SE includes "
                         "the sampling error"),
    ("sample", "coordinates"): ("unbiased estimate",
                                "per-coordinate statistics over a random subset of the coordinates (each kept with "
                                "probability f)"),
    ("sketch", "msd"): ("unbiased estimate",
                        "E‖Sx‖² = ‖x‖²; a squared distance's variance is (2/k)(‖x‖₂⁴ − ‖x‖₄⁴) ≤ 2/k relative; "
                        "the SE (jackknife over sketch coordinates) includes it"),
    ("sketch", "sums"): ("estimate",
                         "fitted to or derived from unbiased sketched squared distances (relative variance ≤ 2/k "
                         "each; lengths and coordinates biased by O(1/k)); the SE includes the sketch's error"),
    ("sketch", "coordinates"): ("not available",
                                "a per-coordinate statistic: a sketch coordinate is a signed sum of parameters of "
                                "every tensor, not a parameter"),
    (None, "all"): ("exact", "every parameter recorded"),
    ("sample", "all"): ("not available", "compares distances between recorded weights with probes of the full "
                                          "model; needs every parameter"),
    ("sketch", "all"): ("not available", "compares distances between recorded weights with probes of the full "
                                          "model; needs every parameter"),
}


def accuracy(reduction, names) -> dict:
    """Per statistic: ``{"status": "exact" | "unbiased estimate" | "estimate" | "not available",
    "note": ...}`` for the input's reduction (None: every parameter recorded).

    Examples
    --------
    >>> accuracy(None, ["msd"])["msd"]["status"]
    'exact'
    """
    method = None if reduction is None else reduction.method
    out = {}
    for name in names:
        reads = READS.get(name)
        if reads is None:
            status, note = ("exact", "") if method is None else ("unknown", "not classified for reduced recordings")
        elif reads == "none":
            status, note = "exact", "does not read the weights"
        else:
            key = "msd" if name in _UNBIASED_SUMS and method is not None else reads
            status, note = ACCURACY[(method, key)]
        out[name] = {"status": status, "note": note}
    return out


def unavailable(reduction, name: str) -> str | None:
    """Why statistic ``name`` cannot be made on this reduced recording, or None.

    Examples
    --------
    >>> unavailable(None, "tails") is None
    True
    """
    if reduction is None or ACCURACY.get((reduction.method, READS.get(name)), ("",))[0] != "not available":
        return None
    hint = "; record with sample= for per-coordinate statistics" if READS[name] == "coordinates" else ""
    adjective = {"sample": "sampled", "sketch": "sketched"}[reduction.method]
    return (f"not available on a {adjective} recording ({reduction.describe()}): "
            + ACCURACY[(reduction.method, READS[name])][1] + hint)


def require_available(reduction, name: str) -> None:
    """Raise ValueError with :func:`unavailable`'s reason if statistic ``name`` cannot be made
    on this recording (the standalone functions; ``pe.analyze`` skips it instead)."""
    reason = unavailable(reduction, name)
    if reason is not None:
        raise ValueError(f"{name}: {reason}")


def scale_to_full(reduction, n_cols: int, sums: tuple, means: tuple = ()) -> tuple:
    """Sums over the recorded columns, and means per recorded column, as estimates for the full model.

    Each array of ``sums`` is multiplied by ``reduction.sum_scale`` (1/f for a sample, 1
    for a sketch); each of ``means`` (a sum divided by ``n_cols``) by
    ``sum_scale · n_cols / P_full``, so that it divides by P_full. Lists and tuples are
    scaled element by element, None stays None; new arrays, the inputs are not changed.
    Without a reduction everything is returned as given.

    Parameters
    ----------
    reduction : Reduction or None
    n_cols : int
        Columns the sums ran over.
    sums, means : tuple of (array, list of arrays, tuple or None)

    Returns
    -------
    tuple
        ``(*sums, *means)``, scaled.

    Examples
    --------
    >>> from pyengine.store.reduction import Reduction
    >>> r = Reduction("sample", 1000, 10, 0, fraction=0.01, stratified=False)
    >>> scale_to_full(r, 10, (np.array([2.0]),), (np.array([0.2]),))
    (array([200.]), array([0.2]))
    """
    if reduction is None:
        return (*sums, *means)
    factor = reduction.sum_scale
    per_param = factor * n_cols / reduction.n_full
    return tuple(_scaled(v, factor) for v in sums) + tuple(_scaled(v, per_param) for v in means)


def _scaled(value, factor: float):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return type(value)(_scaled(v, factor) for v in value)
    return value * factor  # a new array (NumPy or CuPy)
