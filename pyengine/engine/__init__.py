"""The streaming engine: accumulators (prepare / update / merge / finalize) and one pass."""

from pyengine.engine.accumulator import Accumulator, Request, RunMeta
from pyengine.engine.gram import GramWindow, WindowGramAccumulator
from pyengine.engine.msd import LagBandAccumulator, SpectralMSDAccumulator, SpectralWindow
from pyengine.engine.options import ENGINE_KEYS, EngineOptions
from pyengine.engine.passes import run_block
from pyengine.engine.runner import pass_requests, plan_blocks, run, run_requests
from pyengine.engine.source import Source, as_source

__all__ = [
    "Accumulator", "Request", "RunMeta", "GramWindow", "WindowGramAccumulator", "LagBandAccumulator",
    "SpectralMSDAccumulator", "SpectralWindow", "EngineOptions", "ENGINE_KEYS", "Source", "as_source",
    "pass_requests", "plan_blocks", "run", "run_block", "run_requests",
]
