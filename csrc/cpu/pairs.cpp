#include "pyengine/pairs.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {
namespace {

// A row's partners b are taken in pieces of kPiece: short enough that a piece's keys span few
// bins (see add_piece), and its keys, values and bins stay in L1 between the passes over them.
constexpr int64_t kPiece = 256;

// A piece whose counted keys span at most kMaxSpan bins is summed bin by bin.
constexpr int64_t kMaxSpan = 8;

// Copies of a thread's histogram that consecutive pairs alternate between when added one by
// one: separate copies keep read-modify-write updates of one bin from waiting on each other.
constexpr int64_t kCopies = 4;

// f(a, b) for b in [b0, b0 + m): a pointer into the matrix row, or computed into buf.
PE_MULTIVERSION const double* piece_keys(PairSource s, int64_t a, int64_t b0, int64_t m,
                                         double* buf) {
  if (s.ld) return s.data + a * s.ld + b0;
  for (int64_t j = 0; j < m; ++j) buf[j] = pair_key(s, a, b0 + j);
  return buf;
}
PE_MULTIVERSION const double* piece_values(PairSource s, int64_t a, int64_t b0, int64_t m,
                                           double* buf) {
  if (s.ld) return s.data + a * s.ld + b0;
  for (int64_t j = 0; j < m; ++j) buf[j] = pair_value(s, a, b0 + j);
  return buf;
}

// Asks for piece [b0, b0 + kPiece) of a matrix row, one cache line (8 doubles) at a time, while
// the piece before it is summed: the hardware prefetcher stops at page boundaries.
void prefetch_piece(PairSource s, int64_t a, int64_t b0, int64_t n) {
  if (s.ld == 0) return;
  const double* row = s.data + a * s.ld;
  for (int64_t b = b0; b < std::min(b0 + kPiece, n); b += 8) __builtin_prefetch(row + b);
}

// Whether a pair is counted: key in [lo, hi] (not NaN) and a finite value (v - v is NaN for
// NaN and inf). & rather than && keeps loops branch-free, so that they vectorize.
inline bool counted(double lo, double hi, double key, double value) {
  return (key >= lo) & (key <= hi) & (value - value == 0.0);
}

// Histogram layout: bin k's kPairStats sums side by side, so that one cache line holds a bin.
inline void add_sums(double* h, double count, double key, double sum, double sumsq) {
  h[kCount] += count;
  h[kKey] += key;
  h[kSum] += sum;
  h[kSumSq] += sumsq;
}

// The bins k0..k1 that the counted keys of a piece span (k1 < k0 when none is counted).
struct Span {
  int64_t k0, k1;
};

PE_MULTIVERSION Span key_span(const Bins& bins, const double* keys, const double* values,
                              int64_t m) {
  const double e0 = bins.edges[0], en = bins.edges[bins.n_bins];
  double lo = INFINITY, hi = -INFINITY;
#pragma omp simd reduction(min : lo) reduction(max : hi)
  for (int64_t j = 0; j < m; ++j) {
    const bool ok = counted(e0, en, keys[j], values[j]);
    lo = std::min(lo, ok ? keys[j] : INFINITY);
    hi = std::max(hi, ok ? keys[j] : -INFINITY);
  }
  if (lo > hi) return {0, -1};
  return {bin_of(bins, lo), bin_of(bins, hi)};
}

// Adds the pairs of a piece bin by bin over a span: a masked pass over the piece per bin.
PE_MULTIVERSION void add_by_bin(const Bins& bins, Span span, const double* keys,
                                const double* values, int64_t m, double* hist) {
  for (int64_t k = span.k0; k <= span.k1; ++k) {
    const double lo = bins.edges[k], hi = bins.edges[k + 1];
    const double top = k == bins.n_bins - 1 ? hi : NAN;  // the last bin holds its right edge
    double count = 0.0, key = 0.0, sum = 0.0, sumsq = 0.0;
#pragma omp simd reduction(+ : count, key, sum, sumsq)
    for (int64_t j = 0; j < m; ++j) {
      const double x = keys[j], v = values[j];
      const bool in = (x >= lo) & ((x < hi) | (x == top)) & (v - v == 0.0);
      count += in ? 1.0 : -0.0;  // adding -0.0 changes nothing: a masked add
      key += in ? x : -0.0;
      sum += in ? v : -0.0;
      sumsq += in ? v * v : -0.0;
    }
    add_sums(hist + k * kPairStats, count, key, sum, sumsq);
  }
}

// Bin index of each of m pairs by bin_fn, n_bins (a discarded extra bin) for skipped pairs.
template <typename BinFn>
inline void bin_pairs(const Bins& bins, BinFn bin_fn, const double* keys, const double* values,
                      int64_t m, int32_t* idx) {
  const double e0 = bins.edges[0], en = bins.edges[bins.n_bins];
  const int64_t skip = bins.n_bins;
  for (int64_t j = 0; j < m; ++j) {
    const bool ok = counted(e0, en, keys[j], values[j]);
    const int64_t k = bin_fn(ok ? keys[j] : e0);
    idx[j] = static_cast<int32_t>(std::min(ok ? k : k + skip, skip));  // `ok ? k : skip` branches
  }
}

// Bins the pairs of a piece (see bin_pairs; vectorized for log-uniform edges).
PE_MULTIVERSION void piece_bins(const Bins& bins, const double* keys, const double* values,
                                int64_t m, int32_t* idx) {
  if (bins.inv_step > 0)
    bin_pairs(bins, [&](double x) { return log_bin(bins, x); }, keys, values, m, idx);
  else
    bin_pairs(bins, [&](double x) { return search_bin(bins, x); }, keys, values, m, idx);
}

void add_pairs(const double* keys, const double* values, const int32_t* idx, int64_t m,
               int64_t copy_stride, double* hist) {
  for (int64_t j = 0; j < m; ++j) {
    double* h = hist + (j % kCopies) * copy_stride + idx[j] * kPairStats;
    add_sums(h, 1.0, keys[j], values[j], values[j] * values[j]);
  }
}

// Adds the m pairs of a piece to a thread's histograms (kCopies of n_bins + 1 bins). Along a
// trajectory the keys of a piece mostly lie in one or two bins: then a masked sum per bin costs a
// few vector operations per pair and no search of the edges. Keys spread over more bins are
// binned and added pair by pair.
void add_piece(const Bins& bins, const double* keys, const double* values, int64_t m,
               int64_t copy_stride, int32_t* idx, double* hist) {
  const Span span = key_span(bins, keys, values, m);
  if (span.k1 - span.k0 < kMaxSpan) {
    add_by_bin(bins, span, keys, values, m, hist);
  } else {
    piece_bins(bins, keys, values, m, idx);
    add_pairs(keys, values, idx, m, copy_stride, hist);
  }
}

void check_edges(const double* edges, int64_t n_bins, bool log_uniform) {
  require(n_bins >= 1, "pair_bin: need at least one bin (two edges)");
  for (int64_t k = 0; k < n_bins; ++k)
    require(edges[k] < edges[k + 1], "pair_bin: edges must increase strictly");
  require(!log_uniform || edges[0] > 0, "pair_bin: log-uniform edges must be positive");
}

}  // namespace

void pair_bin(PairSource key, PairSource value, int64_t n, const double* edges, int64_t n_bins,
              bool log_uniform, double* out, int n_threads) {
  require(n >= 0, "pair_bin: negative size");
  require((key.ld == 0 || key.ld >= n) && (value.ld == 0 || value.ld >= n),
          "pair_bin: matrix row stride must be >= n");
  check_edges(edges, n_bins, log_uniform);
  const Bins bins = make_bins(edges, edges, n_bins, log_uniform);
#ifdef _OPENMP
  const int threads = n_threads > 0 ? n_threads : omp_get_max_threads();
#else
  const int threads = 1;
#endif
  // Histograms per thread, reduced in a fixed order at the end (freud's "reduce late"). Rows
  // are dealt out cyclically: row a has n - 1 - a pairs, so every thread gets a fair share,
  // and a fixed thread count gives the same sums every run.
  const int64_t copy_stride = (n_bins + 1) * kPairStats;
  const size_t per_thread = static_cast<size_t>(kCopies * copy_stride);
  std::vector<double> local(threads * per_thread, 0.0);
#pragma omp parallel num_threads(threads)
  {
#ifdef _OPENMP
    double* hist = local.data() + omp_get_thread_num() * per_thread;
#else
    double* hist = local.data();
#endif
    std::vector<double> key_buf(kPiece), value_buf(kPiece);
    std::vector<int32_t> idx(kPiece);
#pragma omp for schedule(static, 1)
    for (int64_t a = 0; a < n - 1; ++a) {
      for (int64_t b0 = a + 1; b0 < n; b0 += kPiece) {
        const int64_t m = std::min(kPiece, n - b0);
        const double* k = piece_keys(key, a, b0, m, key_buf.data());
        const double* v = piece_values(value, a, b0, m, value_buf.data());
        prefetch_piece(key, a, b0 + kPiece, n);
        prefetch_piece(value, a, b0 + kPiece, n);
        add_piece(bins, k, v, m, copy_stride, idx.data(), hist);
      }
    }
  }
  for (int64_t c = 0; c < threads * kCopies; ++c)
    for (int64_t k = 0; k < n_bins; ++k)
      for (int64_t s = 0; s < kPairStats; ++s)
        out[s * n_bins + k] += local[c * copy_stride + k * kPairStats + s];
}

}  // namespace pyengine
