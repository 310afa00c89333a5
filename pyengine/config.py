"""Tunables of pyengine, in one patchable place.

Tests turn these down (e.g. ``monkeypatch.setattr(config, "BLOCK_BYTES", 4096)``) to
exercise multi-block paths on tiny inputs; users may raise them on big machines.
"""

#: Target size in bytes of one column block X[:, j:j+B] read by the engine.
BLOCK_BYTES = 128 * 2**20
#: Upper bound on the bytes of blocks in flight (being read, queued or computed).
MEMORY_BUDGET = 1 * 2**30
#: Blocks read ahead of the one being computed.
PREFETCH = 1
#: Threads for the C++/Numba kernels; 0 means all cores.
THREADS = 0
#: Default chunk shape of /weights in a trajectory file: (steps, parameters).
CHUNK_STEPS = 64
CHUNK_PARAMS = 16384
#: HDF5 chunk cache per open trajectory file, in bytes.
CHUNK_CACHE_BYTES = 256 * 2**20
