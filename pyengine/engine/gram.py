"""Window Gram accumulator: all pairwise squared distances inside windows, by GEMM.

Per window of T snapshots starting at row s, with y(t) = x(s + t) − c (c a reference point
of the window, subtracted in float64 before any product), the state is the Gram matrix
G = Y Yᵀ, summed over column blocks in float64 by BLAS SYRK on the host (in place, on the
upper triangle, mirrored at finalize) or cuBLAS (CuPy): O(P·T²) per window, never a
hand-written loop. The squared distances follow as
D²_ab = G_aa + G_bb − 2 G_ab (:func:`sq_distances`, into a new array), the path's principal coordinates as the
top eigenvectors of the centred G (:func:`principal_coordinates`).

Memory: the state is T² float64 per window (8 MB at T = 1000, 800 MB at T = 10⁴), per
worker; ``workers`` blocks in flight hold one state each (and, when there are fewer windows
than threads, each thread its own T × T sums). With
named column groups (layers, tensors: :class:`~pyengine.engine.groups.NamedGroups`), one
such matrix per named group and window, their sum being the whole model's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyengine.engine._blas import syrk_upper
from pyengine.engine.accumulator import RunMeta
from pyengine.engine.groups import ColumnGroups, Grouped, merge_parts
from pyengine.kernels._arrays import array_module, to_host
from pyengine.threads import map_threads

__all__ = ["GramWindow", "WindowGramAccumulator", "sq_distances", "principal_coordinates", "CENTERS"]

CENTERS = ("mean", "first")
#: Bytes of the float64 temporary Y per GEMM call (columns of a block are taken in chunks).
GEMM_TEMP_BYTES = 64 * 2**20
#: Relative rounding of one float64 Gram entry, in units of eps·√P·(|y_a|² + |y_b|²).
ROUNDING_FACTOR = 4.0


@dataclass(frozen=True)
class GramWindow:
    """Rows [start, start + length) of the trajectory."""

    start: int
    length: int


@dataclass
class GramState:
    grams: dict  # per named group (0: all columns): per window, (T, T) float64, Σ over its columns seen of y_a·y_b
    meta: RunMeta
    parts: dict | None = None  # per label (column group): per window, D² of the sampled pairs


@dataclass(frozen=True)
class WindowGramAccumulator:
    """Gram matrices G = (X − c)(X − c)ᵀ of several windows, in one pass.

    Parameters
    ----------
    windows : tuple of GramWindow
    center : {"mean", "first"}
        Reference point c of each window: ``"mean"`` (default) is the window's mean
        snapshot, computed per block in float64; ``"first"`` is x(t_w) as in DESIGN.md.
        Distances do not depend on c, but their rounding does: G_aa + G_bb − 2 G_ab loses
        about log10(|y|²/D²) digits, and the mean makes |y| as small as it can be (the
        weights themselves, |w| ≫ step, never enter a product). ``"mean"`` also makes G the
        centred Gram matrix that PCA / classical MDS need.
    groups : ColumnGroups, optional
        Keep, per column group, the squared distances of the sampled ``pairs`` (the
        jackknife's parts, see :mod:`pyengine.engine.groups`): each group's columns of a
        block are added by a SYRK of their own, and its share of those pairs' D² is the
        change it made, so this costs no extra GEMM. With named
        groups, one Gram matrix per named group and window (their sum is the whole
        model's), allocated when the group's first column is seen.
    pairs : (ndarray, ndarray), optional
        Row indices (a, b) inside a window of the sampled pairs (with ``groups``).

    Examples
    --------
    >>> import numpy as np
    >>> from pyengine.engine import run
    >>> x = np.random.default_rng(0).standard_normal((100, 30)).cumsum(axis=0)
    >>> (grams,) = run(x, [WindowGramAccumulator((GramWindow(0, 50), GramWindow(50, 50)))])
    >>> grams[0].shape
    (50, 50)
    """

    windows: tuple[GramWindow, ...]
    center: str = "mean"
    groups: ColumnGroups | None = None
    pairs: tuple | None = field(default=None, compare=False)
    name: str = "window_gram"
    _pair_indices: dict = field(default_factory=dict, init=False, compare=False, repr=False)  # see _indices

    def __post_init__(self):
        if self.center not in CENTERS:
            raise ValueError(f"center must be one of {CENTERS}, got {self.center!r}")

    def prepare(self, meta: RunMeta) -> GramState:
        for w in self.windows:
            if w.length < 1 or w.start < 0 or w.start + w.length > meta.n_rows:
                raise ValueError(f"window {w} does not fit in rows [0, {meta.n_rows})")
        parts = None if self.groups is None else {}
        grams = {} if self._named else {0: self._zeros(meta)}
        return GramState(grams, meta, parts)

    @property
    def _named(self) -> bool:
        return self.groups is not None and self.groups.named is not None

    def _zeros(self, meta: RunMeta) -> list:
        xp = array_module(meta.on_gpu)
        return [xp.zeros((w.length, w.length)) for w in self.windows]

    def update(self, state: GramState, block, cols: slice) -> None:
        groups = self._groups_of(block, cols)
        if self.groups is not None:
            for g, _ in groups:
                if g not in state.parts:
                    state.parts[g] = [np.zeros(self.pairs[0].size, np.float32) for _ in self.windows]
                if g // self.groups.count not in state.grams:
                    state.grams[g // self.groups.count] = self._zeros(state.meta)
        threads = 1 if state.meta.on_gpu else state.meta.threads
        windows = range(len(self.windows))
        # The engine's threads share the products (BLAS runs one thread inside a pass: an idle
        # BLAS pool spins next to the other kernels' threads; the SYRK call releases the GIL):
        # whole windows each when there are enough of them,
        # else each window's columns.
        if threads == 1:
            for i in windows:
                self._update_window(state, i, groups)
        elif len(self.windows) >= threads:
            map_threads(threads, lambda i: self._update_window(state, i, groups), windows)
        else:
            shares = self._shares(groups, threads)
            for i in windows:
                self._update_shared(state, i, shares)

    def _shares(self, groups: list, threads: int) -> list[list]:
        """The block's columns in at most ``threads`` shares: whole column groups to a share
        (so a group's pair distances are added by one thread), or, without groups, the
        block's columns cut in equal parts."""
        if self.groups is None:
            ((_, (block,)),) = groups
            edges = np.linspace(0, block.shape[1], threads + 1).astype(int)
            return [[(None, [block[:, a:b]])] for a, b in zip(edges[:-1], edges[1:]) if b > a]
        return [groups[k::threads] for k in range(min(threads, len(groups)))]

    def _update_shared(self, state: GramState, i: int, shares: list[list]) -> None:
        """Window i from each share on its own thread, into the thread's own Gram sums."""
        def share_sums(share: list) -> dict:
            own: dict = {}
            self._update_window(state, i, share, own)
            return own

        for own in map_threads(len(shares), share_sums, shares):
            for named, gram in own.items():
                state.grams[named][i] += gram

    def _groups_of(self, block, cols: slice) -> list:
        """(column group, column views) of the block: one entry per group present, or one for all."""
        if self.groups is None:
            return [(None, [block])]
        by_group: dict[int, list] = {}
        for g, a, b in self.groups.runs(cols.start, cols.stop):
            by_group.setdefault(g, []).append(block[:, a - cols.start : b - cols.start])
        return list(by_group.items())

    def _update_window(self, state: GramState, i: int, groups: list, into: dict | None = None) -> None:
        """Add each group's columns of window i to its Gram matrix, or to ``into[named group]``
        (new sums), and to the group's part."""
        w = self.windows[i]
        xp = array_module(state.meta.on_gpu)
        if self.groups is not None:  # the sampled pairs' D² before and after a group, and a scratch
            before, after, scratch = (xp.empty(self.pairs[0].size) for _ in range(3))
        piece = self._piece_buffer(groups, w, xp)
        last = None  # the matrix whose pairs' D² ``before`` holds: one group's "after" is the next one's "before"
        for g, views in groups:
            named = 0 if g is None else g // self.groups.count
            if into is None:
                gram = state.grams[named][i]
            else:
                if named not in into:
                    into[named] = xp.zeros((w.length, w.length))
                gram = into[named]
            if g is not None and gram is not last:
                self._pair_d2(gram, before, scratch)
            for y in self._centred_pieces(views, w, piece):
                _add_product(gram, y)
            if g is not None:  # the group's share of the sampled pairs' D²: the change it made
                self._pair_d2(gram, after, scratch)
                xp.subtract(after, before, out=scratch)
                part = state.parts[g][i]
                part += to_host(scratch)
                before, after, last = after, before, gram

    def _piece_buffer(self, groups: list, w: GramWindow, xp):
        """One float64 buffer for the centred pieces of window i of all groups: a buffer per
        piece (a jackknife group's 512 columns) was mapped and unmapped each time, a third of
        the page faults of a pass with error bars."""
        widest = max(v.shape[1] for _, views in groups for v in views)
        return xp.empty(w.length * min(widest, _piece_cols(w)))

    def _centred_pieces(self, views: list, w: GramWindow, buffer):
        """The window's rows of the views, centred per column in float64, at most
        GEMM_TEMP_BYTES each, in ``buffer`` (each piece overwrites the one before)."""
        step = _piece_cols(w)
        for v in views:
            rows = v[w.start : w.start + w.length]
            for c0 in range(0, rows.shape[1], step):
                part = rows[:, c0 : c0 + step]
                y = buffer[: part.size].reshape(part.shape)
                y[...] = part
                y -= y.mean(axis=0) if self.center == "mean" else y[0].copy()
                yield y

    def _pair_d2(self, gram, out, scratch) -> None:
        """D² of the sampled pairs (a < b) from a Gram matrix's upper triangle into ``out``
        (float64; ``scratch`` alike), with no temporaries: in a fresh process the allocator
        mapped and unmapped each, twice the page faults of a pass without the jackknife. The
        flat indices a·T + b increase: the gather walks the matrix in order."""
        flat, a, b = self._indices(gram)
        diag = gram.diagonal()
        _take(gram.ravel(), flat, out)
        out *= -2.0
        _take(diag, a, scratch)
        out += scratch
        _take(diag, b, scratch)
        out += scratch

    def _indices(self, gram) -> tuple:
        """(flat indices a·T + b, a, b) of the sampled pairs, on the Gram matrix's device; made
        once per window length and device (threads making them at once agree)."""
        key = gram.shape[0], isinstance(gram, np.ndarray)
        if key not in self._pair_indices:
            xp = array_module(not key[1])
            a, b = self.pairs
            self._pair_indices[key] = xp.asarray(a * key[0] + b), xp.asarray(a), xp.asarray(b)
        return self._pair_indices[key]

    def merge(self, a: GramState, b: GramState) -> GramState:
        for named, grams in b.grams.items():
            if named not in a.grams:
                a.grams[named] = grams
                continue
            for ga, gb in zip(a.grams[named], grams):
                ga += gb
        if a.parts is not None:
            a.parts = merge_parts(a.parts, b.parts)
        return a

    def finalize(self, state: GramState):
        """Per window, the (T, T) float64 Gram matrix on the host; with ``groups``, a
        :class:`~pyengine.engine.groups.Grouped` of them and each group's pair distances
        (with named groups, ``Grouped.named`` holds each named group's Gram matrices and the
        total is their sum)."""
        if not self._named:
            grams = [_mirror_upper(to_host(g)) for g in state.grams[0]]
            return grams if self.groups is None else Grouped(grams, state.parts, self.groups)
        zeros = [np.zeros((w.length, w.length)) for w in self.windows]
        named = [[_mirror_upper(to_host(g)) for g in state.grams[k]] if k in state.grams else zeros
                 for k in range(self.groups.n_named)]
        total = [np.sum([grams[i] for grams in named], axis=0) for i in range(len(self.windows))]
        return Grouped(total, state.parts, self.groups, named)


def _piece_cols(w: GramWindow) -> int:
    """Columns of a centred float64 piece of window ``w``: GEMM_TEMP_BYTES at most."""
    return max(1, GEMM_TEMP_BYTES // (8 * w.length))


def _take(values, index, out) -> None:
    """out[:] = values[index], no temporary: on the host unchecked (the indices are in range;
    a checked take with ``out`` buffers it), on the GPU by indexing."""
    if isinstance(values, np.ndarray):
        np.take(values, index, out=out, mode="clip")
    else:
        out[...] = values[index]


def _add_product(gram, y) -> None:
    """gram += Y Yᵀ: on the host into the upper triangle only, in place and without the GIL
    (:func:`~pyengine.engine._blas.syrk_upper`; finalize mirrors it), on the GPU the whole
    matrix."""
    if isinstance(y, np.ndarray):
        syrk_upper(gram, y)
    else:
        gram += y @ y.T


def _mirror_upper(gram: np.ndarray) -> np.ndarray:
    """The symmetric matrix of ``gram``'s upper triangle (in place)."""
    np.copyto(gram, gram.T, where=np.tri(gram.shape[0], k=-1, dtype=bool))
    return gram


def sq_distances(gram: np.ndarray, n_params: int, *, exact=None, rtol: float = 1e-6) -> tuple[np.ndarray, int]:
    """Squared distances D²_ab = G_aa + G_bb − 2 G_ab, in a new array, with a guard.

    The guard: each Gram entry carries a rounding error of about
    ε·√P·(|y_a|² + |y_b|²) (ε = 2⁻⁵², ``ROUNDING_FACTOR`` ulps), which the subtraction
    does not shrink. A pair whose D² is below ``ROUNDING_FACTOR·ε·√P·(G_aa + G_bb) / rtol``
    cannot be trusted to ``rtol`` and is set to NaN (kernels skip NaN pairs) unless an
    exact value replaces it: ``exact[l, a]`` = ‖x(a + l + 1) − x(a)‖² from the lag band
    (differences taken before squaring, so exact to input precision), written for every
    lag it covers whether flagged or not.

    Parameters
    ----------
    gram : float64 array of shape (T, T)
        Read only (finalized results are shared).
    n_params : int
        P, the length of the dot products.
    exact : float64 array of shape (m, T), optional
        Exact squared distances at lags 1 … m inside the window (entries past T − lag unused).
    rtol : float
        Relative accuracy below which a pair is flagged.

    Returns
    -------
    d2 : ndarray of shape (T, T)
        Symmetric, zero diagonal, NaN for flagged pairs.
    n_flagged : int
        Pairs a < b set to NaN.
    """
    t = gram.shape[0]
    norms = np.diag(gram).copy()
    bound = np.add.outer(norms, norms)  # G_aa + G_bb, then the guard's floor (one T × T temporary)
    d2 = np.multiply(gram, -2.0)
    d2 += bound
    np.maximum(d2, 0.0, out=d2)
    bound *= ROUNDING_FACTOR * np.finfo(np.float64).eps * np.sqrt(n_params) / rtol
    bad = np.less(d2, bound)
    np.fill_diagonal(bad, False)
    np.copyto(d2, np.nan, where=bad)
    if exact is not None:
        for lag in range(1, min(exact.shape[0], t - 1) + 1):
            a = np.arange(t - lag)
            d2[a, a + lag] = d2[a + lag, a] = exact[lag - 1, : t - lag]
    np.fill_diagonal(d2, 0.0)
    return d2, np.count_nonzero(np.isnan(d2)) // 2


def principal_coordinates(gram: np.ndarray, k: int = 2, *, centered: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Classical MDS / PCA of a window's snapshots from their Gram matrix.

    Parameters
    ----------
    gram : float64 array of shape (T, T)
        G = Y Yᵀ; with ``centered=False`` it is double-centred first (B = J G J).
    k : int
        Number of coordinates.

    Returns
    -------
    coords : ndarray of shape (T, k)
        Projections of the snapshots on the top-k principal axes (v_k·√λ_k), each axis
        signed so that its largest entry is positive.
    explained : ndarray of shape (k,)
        Fraction of the total variance trace(B) along each axis.
    """
    b = gram
    if not centered:
        b = gram - gram.mean(axis=0)
        b -= b.mean(axis=1, keepdims=True)
    t = b.shape[0]
    k = min(k, t)
    vals, vecs = _top_eigenpairs(b, k)
    vals, vecs = np.maximum(vals[::-1], 0.0), vecs[:, ::-1]
    vecs = vecs * np.where(vecs[np.abs(vecs).argmax(axis=0), np.arange(k)] < 0, -1.0, 1.0)  # a fixed sign
    total = np.trace(b)
    return vecs * np.sqrt(vals), vals / total if total > 0 else np.zeros(k)


def _top_eigenpairs(b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenpairs of a symmetric matrix, ascending: Lanczos (ARPACK, from a
    fixed start) costs a few matrix-vector products where a full tridiagonalisation costs
    O(T³) (1000²: 0.12 s against 1.0 s measured); tiny matrices go to LAPACK."""
    import scipy.linalg
    import scipy.sparse.linalg

    t = b.shape[0]
    if t <= 4 * k + 8 or not b.any():  # tiny, or a window that never moves (Lanczos needs a direction)
        return scipy.linalg.eigh(b, subset_by_index=[t - k, t - 1])
    start = np.random.default_rng(0).standard_normal(t)
    try:
        return scipy.sparse.linalg.eigsh(b, k=k, which="LA", v0=start)
    except scipy.sparse.linalg.ArpackNoConvergence:
        return scipy.linalg.eigh(b, subset_by_index=[t - k, t - 1])
