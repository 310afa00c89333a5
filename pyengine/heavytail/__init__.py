"""Heavy tails: Mohammadi tail index, symmetric α-stable maximum likelihood, κ of weights."""

from pyengine.heavytail.mohammadi import TailState, tail_index
from pyengine.heavytail.results import KappaFit, StableFit, TailIndexResult

__all__ = ["tail_index", "TailState", "TailIndexResult", "StableFit", "KappaFit"]
