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
#: Spectrum bytes (complex128, about those of the zero-padded float64 input) of the columns
#: the spectral accumulators transform together, per thread: small enough to stay in cache
#: (measured on 2 cores: 4 MiB beats 16 MiB by ~10% for the spectral MSD, N = 8192, and by
#: ~25% for the increments, N = 4096).
FFT_BATCH_BYTES = 4 * 2**20
#: Threads for the C++/Numba kernels; 0 means all cores.
THREADS = 0
#: Default chunk shape of /weights in a trajectory file: (steps, parameters).
CHUNK_STEPS = 64
CHUNK_PARAMS = 16384
#: HDF5 chunk cache of /weights per open trajectory file, in bytes. The engine reads column
#: blocks aligned to whole chunks; uncompressed ones are read raw, straight into the block
#: (pyengine/store/_raw_chunks.py), the rest by HDF5, for which a cache would only add a copy
#: (measured: 1.3–1.7 s vs 2.0 s for 4 GB). Raise it for reads that revisit chunks (row
#: slices, unaligned column ranges of compressed files).
CHUNK_CACHE_BYTES = 0
#: Read blocks of trajectory files in place from the page cache (``mmap``, no copy) where the
#: file allows it (whole, page-aligned, uncompressed chunks, as TrajectoryWriter writes them):
#: the engine then reads one chunk column per block. Measured on a 4.3 GB file, warm: the
#: read's CPU time drops from ≈ 0.85 s to ≈ 0.15 s. Turn off to copy every block instead.
MAP_FILES = True
#: Column groups of the delete-one-group jackknife (the standard errors of every curve and
#: fit; docs/estimators.md, "Uncertainty"). 0 (or 1) turns it off: SEs then come from fit
#: residuals only.
JACKKNIFE_GROUPS = 32
#: Most bytes the per-group pair statistics (MSL and path geometry with ``groups=``) may hold
#: in one pass state: a T × T float64 Gram matrix per named group and window (their pairs
#: need their own), plus their jackknife's sampled pair distances and lag bands
#: (``PairsRequest.group_bytes``). Beyond it they are refused with the reason (in
#: ``Analysis.skipped``); every other per-group statistic costs a few small sums per group.
GROUP_PAIRS_BYTES = 512 * 2**20
