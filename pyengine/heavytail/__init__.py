"""Heavy tails: Mohammadi tail index (of weight increments too), symmetric α-stable maximum likelihood, κ of weights."""

from pyengine.heavytail.increments import IncrementTailIndex, increment_tail_index
from pyengine.heavytail.kappa import fit_kappa, kappa_by_tensor
from pyengine.heavytail.mohammadi import TailIndexAccumulator, TailState, tail_index
from pyengine.heavytail.results import KappaFit, StableFit, TailIndexResult
from pyengine.heavytail.stable import fit_levy_stable, stable_logpdf

__all__ = [
    "tail_index",
    "increment_tail_index",
    "fit_levy_stable",
    "fit_kappa",
    "kappa_by_tensor",
    "stable_logpdf",
    "TailState",
    "TailIndexAccumulator",
    "TailIndexResult",
    "IncrementTailIndex",
    "StableFit",
    "KappaFit",
]
