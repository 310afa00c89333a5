"""Loss landscapes (torch): filter-normalized 2-D loss surfaces, interpolation, Hessian spectra,
densities and traces, and their alignment with the gradient noise.

Reading stored results needs NumPy only (:func:`landscape_results`,
:func:`hessian_result`, :func:`curvature_result`); the functions that evaluate a model import torch on first use,
so ``import pyengine.landscape`` does not. See docs/landscape.md.

Examples
--------
>>> from pyengine.landscape import loss_surface, landscape_results  # doctest: +SKIP
>>> loss_surface(model, F.cross_entropy, (x_test, y_test), center=-1, path="run.h5")  # doctest: +SKIP
>>> landscape_results("run.h5")["final"].surface.dimension  # doctest: +SKIP
"""

import importlib

from pyengine.landscape.curvature import CurvatureResult, curvature_result
from pyengine.landscape.results import (
    HessianResult,
    InterpolationResult,
    LandscapeResult,
    LevelSetCount,
    hessian_result,
    landscape_results,
)

#: Names that need torch, and the module each lives in (imported on first access).
_TORCH_NAMES = {
    "loss_surface": "pyengine.landscape.surface",
    "interpolate": "pyengine.landscape.surface",
    "random_directions": "pyengine.landscape.directions",
    "filter_normalized": "pyengine.landscape.directions",
    "pca_directions": "pyengine.landscape.directions",
    "hessian_topk": "pyengine.landscape.hessian",
    "hessian_spectrum": "pyengine.landscape.hessian",
    "hessian_vector_product": "pyengine.landscape.hessian",
    "lanczos_topk": "pyengine.landscape.hessian",
    "LanczosResult": "pyengine.landscape.hessian",
    "HessianProbe": "pyengine.landscape.hessian",
    "Curvature": "pyengine.landscape.hessian",
    "snapshot_curvature": "pyengine.landscape.hessian",
    "slq": "pyengine.landscape.density",
    "SLQResult": "pyengine.landscape.density",
    "hutchinson_trace": "pyengine.landscape.density",
    "noise_covariance": "pyengine.landscape.covariance",
    "NoiseCovariance": "pyengine.landscape.covariance",
    "subspace_overlap": "pyengine.landscape.covariance",
    "hessian_noise_trace": "pyengine.landscape.covariance",
}

__all__ = [
    "CurvatureResult",
    "curvature_result",
    "HessianResult",
    "InterpolationResult",
    "LandscapeResult",
    "LevelSetCount",
    "hessian_result",
    "landscape_results",
    *_TORCH_NAMES,
]


def __getattr__(name: str):
    """Load the torch-based names of ``_TORCH_NAMES`` on first use."""
    if name in _TORCH_NAMES:
        return getattr(importlib.import_module(_TORCH_NAMES[name]), name)
    raise AttributeError(f"module 'pyengine.landscape' has no attribute {name!r}")
