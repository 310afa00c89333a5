#include "pyengine/spectral.hpp"

#include <algorithm>
#include <vector>

#include "lane_fft.hpp"
#include "pyengine/common.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {
namespace {

using namespace lane_fft;

// Two lane vectors of displacements y(t) = x(t) - x(0) per row, read as the complex
// sequences z(k) = y(2k) + i y(2k + 1) of two half-length FFTs, zero from t = len on.
// The two are either 2L adjacent columns (lo: the first L), so that row visits use more of
// each cache line, or (with origins < len) the same L columns twice, hi cut to t < origins:
// the two transforms of a cross spectrum. Each t is read once per transform pair, so the
// squared norms are summed on the way.
template <int L, typename T>
struct Displacements {
  const T* x;
  int64_t row_stride, lanes, len, origins;  // origins == len: two column groups
  double* sq;
  vec<L> ref_lo, ref_hi;

  Displacements(const T* x_, int64_t row_stride_, int64_t lanes_, int64_t len_, int64_t origins_, double* sq_)
      : x(x_), row_stride(row_stride_), lanes(lanes_), len(len_), origins(origins_), sq(sq_),
        ref_lo(load_lanes<L>(x_, lo_lanes())), ref_hi(load_lanes<L>(x_ + L, hi_lanes())) {}

  bool column_pairs() const { return origins == len; }
  int64_t lo_lanes() const { return std::min<int64_t>(L, lanes); }
  int64_t hi_lanes() const { return column_pairs() ? std::max<int64_t>(0, lanes - L) : 0; }

  struct Two {
    vec<L> lo, hi;
  };
  PE_INLINE Two at(int64_t t) const {
    if (t >= len) return {vec<L>{}, vec<L>{}};
    const T* row = x + t * row_stride;
    __builtin_prefetch(row + kPrefetchRows * row_stride);  // never faults, even past the end
    const vec<L> lo = load_lanes<L>(row, lo_lanes()) - ref_lo;
    if (!column_pairs()) {
      sq[t] += lane_sum<L>(lo * lo);
      return {lo, t < origins ? lo : vec<L>{}};
    }
    const vec<L> hi = hi_lanes() > 0 ? load_lanes<L>(row + L, hi_lanes()) - ref_hi : vec<L>{};
    sq[t] += lane_sum<L>(lo * lo + hi * hi);
    return {lo, hi};
  }
  struct TwoComplex {
    cv<L> lo, hi;
  };
  PE_INLINE TwoComplex pair(int64_t k) const {
    const Two even = at(2 * k), odd = at(2 * k + 1);
    return {{even.lo, odd.lo}, {even.hi, odd.hi}};
  }
};

// acc[k] += sum over the lanes of both transforms of |Y[k]|^2 (re only: the power spectrum
// is real). One lane sum per bin for both.
template <int L>
PE_INLINE void add_power(const cv<L>* za, const cv<L>* zb, const Tables& tables, double* acc) {
  const int64_t m = tables.m;
  for (int64_t k = 0; k <= m / 2; ++k) {
    const BinPair<L> a = real_bins(za, tables, k), b = real_bins(zb, tables, k);
    acc[2 * k] += lane_sum<L>(norm2(a.at_k) + norm2(b.at_k));
    if (k != m - k) acc[2 * (m - k)] += lane_sum<L>(norm2(a.conj_at_mk) + norm2(b.conj_at_mk));
  }
}

// acc[k] += sum over lanes of conj(B[k]) A[k] (re, im interleaved).
template <int L>
PE_INLINE void add_cross(const cv<L>* za, const cv<L>* zb, const Tables& tables, double* acc) {
  const int64_t m = tables.m;
  for (int64_t k = 0; k <= m / 2; ++k) {
    const BinPair<L> a = real_bins(za, tables, k), b = real_bins(zb, tables, k);
    acc[2 * k] += lane_sum<L>(b.at_k.re * a.at_k.re + b.at_k.im * a.at_k.im);
    acc[2 * k + 1] += lane_sum<L>(b.at_k.re * a.at_k.im - b.at_k.im * a.at_k.re);
    if (k != m - k) {  // conj(B) A at m - k = conj(conj(b') a') with the conjugated bins b', a'
      const cv<L> ac = a.conj_at_mk, bc = b.conj_at_mk;
      acc[2 * (m - k)] += lane_sum<L>(bc.re * ac.re + bc.im * ac.im);
      acc[2 * (m - k) + 1] -= lane_sum<L>(bc.re * ac.im - bc.im * ac.re);
    }
  }
}

// One batch of columns x[:, 0:lanes) (at most 2L): both transforms and their sums. The
// first pass reads the columns straight from x. `buffer` holds 2m complex lane vectors.
template <typename T>
struct Batch {
  template <int L>
  static PE_INLINE void run(const T* x, int64_t row_stride, int64_t lanes, int64_t n_rows, int64_t n_origins,
                            const Tables& tables, void* buffer, double* cross, double* sq) {
    cv<L>* za = static_cast<cv<L>*>(buffer);
    cv<L>* zb = za + tables.m;
    Displacements<L, T> y(x, row_stride, lanes, n_rows, n_origins, sq);
    first_pass(y, za, zb, tables);
    other_passes(za, tables);
    other_passes(zb, tables);
    if (n_origins == n_rows)
      add_power(za, zb, tables, cross);
    else
      add_cross(za, zb, tables, cross);
  }
};
template <typename T>
using Kernels = LaneDispatch<Batch<T>, const T*, int64_t, int64_t, int64_t, int64_t, const Tables&, void*, double*,
                             double*>;

// One thread's share: its columns' sums, added to the totals after the parallel region.
struct Partial {
  std::vector<double> cross, sq;
};

}  // namespace

template <typename T>
void spectral_sums(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, int64_t n_origins,
                   int64_t nfft, double* cross, double* sq, int n_threads, int lanes) {
  require(n_rows >= 0 && n_cols >= 0, "spectral_sums: negative size");
  require(row_stride >= n_cols, "spectral_sums: row_stride must be >= n_cols");
  require(nfft >= 8 && (nfft & (nfft - 1)) == 0, "spectral_sums: nfft must be a power of two >= 8");
  require(n_rows <= nfft, "spectral_sums: nfft must be >= n_rows");
  require(n_rows == 0 || (n_origins >= 1 && n_origins <= n_rows),
          "spectral_sums: n_origins must be in [1, n_rows]");
  const auto kernel = Kernels<T>::pick(lanes, "spectral_sums");
  const bool column_pairs = n_origins == n_rows;
  const ColumnBatches batches(x, n_cols, row_stride, column_pairs ? 2 * kernel.lanes : kernel.lanes);
  const int64_t n_batches = batches.count();
  if (n_rows == 0 || n_batches == 0) return;
  const Tables tables(nfft);
  const int64_t m = tables.m;
  int threads = 1;
#ifdef _OPENMP
  threads = static_cast<int>(std::min<int64_t>(n_threads > 0 ? n_threads : omp_get_max_threads(), n_batches));
#endif
  std::vector<Partial> partials(threads);
  const LaneBuffers buffers(threads, 2 * m * 2 * kernel.lanes * sizeof(double));  // 2m complex lane vectors
#pragma omp parallel num_threads(threads)
  {
    int id = 0;
#ifdef _OPENMP
    id = omp_get_thread_num();
#endif
    Partial& part = partials[id];
    part.cross.assign(2 * (m + 1), 0.0);
    part.sq.assign(n_rows, 0.0);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n_batches; ++b) {
      const int64_t c0 = batches.start(b);
      kernel.fn(x + c0, row_stride, batches.start(b + 1) - c0, n_rows, n_origins, tables, buffers.get(id),
                part.cross.data(), part.sq.data());
    }
  }
  for (const Partial& part : partials) {
    for (int64_t k = 0; k < 2 * (m + 1); ++k) cross[k] += part.cross[k];
    for (int64_t t = 0; t < n_rows; ++t) sq[t] += part.sq[t];
  }
}

template void spectral_sums<float>(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, double*, double*, int,
                                   int);
template void spectral_sums<double>(const double*, int64_t, int64_t, int64_t, int64_t, int64_t, double*, double*,
                                    int, int);

}  // namespace pyengine
