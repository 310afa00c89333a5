// Pair binning: one pass over the pairs a < b of a window into histograms with fp64 sums.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "pyengine/common.hpp"

namespace pyengine {

// Rows of the output: for bin k, out[kCount][k] += 1, out[kKey][k] += key, out[kSum][k] += value,
// out[kSumSq][k] += value^2 over the pairs whose key falls in bin k.
enum PairStat : int64_t { kCount = 0, kKey = 1, kSum = 2, kSumSq = 3, kPairStats = 4 };

// A pair quantity f(a, b), a < b, read from one of two sources:
//   a T x T matrix m (row stride ld):   f = m[a * ld + b]             (e.g. D^2, transverse h)
//   a T-vector u ("difference" source): key = |u[b] - u[a]|, value = (u[b] - u[a])^2
// The key is what is binned (a distance, a contour length), the value what is summed
// (squared loss differences for MSL, end-to-end D^2 for path geometry).
struct PairSource {
  const double* data;
  int64_t ld;  // row stride of the matrix; 0 marks a vector (difference) source
};

PE_HD inline double pair_key(PairSource s, int64_t a, int64_t b) {
  return s.ld ? s.data[a * s.ld + b] : std::fabs(s.data[b] - s.data[a]);
}

PE_HD inline double pair_value(PairSource s, int64_t a, int64_t b) {
  if (s.ld) return s.data[a * s.ld + b];
  const double d = s.data[b] - s.data[a];
  return d * d;
}

// Bin edges e[0] < ... < e[n_bins]; bin k is [e[k], e[k+1]), the last bin also holds e[n_bins]
// (as numpy.histogram). For log-uniform edges (inv_step > 0) the bin comes from a cheap log2
// estimate that is then checked against one edge, so it always agrees with a search of the
// edges; otherwise a branch-free binary search.
struct Bins {
  const double* edges;
  int64_t n_bins;
  double log_lo;    // log2(e[0]) when log-uniform
  double inv_step;  // n_bins / log2(e[n_bins] / e[0]) when log-uniform, 0 otherwise
};

// log2(x) for x > 0 to within 0.01: exponent bits plus a quadratic in the mantissa. The exponent
// goes through int32, which vectorizes on AVX2/AVX-512F (int64 to double needs AVX-512DQ).
PE_HD inline double approx_log2(double x) {
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  const double e = static_cast<double>(static_cast<int32_t>((bits >> 52) & 0x7ff) - 1023);
  bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
  double m;
  memcpy(&m, &bits, sizeof m);
  const double f = m - 1.0;
  return e + f * (1.3465553 - 0.3465553 * f);
}

// Log-uniform edges take the log2 estimate when the bins are at least kMinLogStep wide in log2
// (the estimate's error of < 0.01 is then < 0.2 bins) and every edge lies within kMaxEdgeShift
// bins of its log-uniform place: all edges but the one nearest to the estimate are then at least
// 0.2 bins from the key, on a known side of it.
constexpr double kMinLogStep = 0.05;
constexpr double kMaxEdgeShift = 0.1;

// Bin of a key with e[0] <= key <= e[n_bins], without branches (so loops over keys vectorize).
// Log-uniform edges: only the edge c nearest to the estimate needs a comparison (int32 converts
// in vector registers).
PE_HD inline int64_t log_bin(const Bins& b, double key) {
  const int64_t c = static_cast<int32_t>((approx_log2(key) - b.log_lo) * b.inv_step + 0.5);
  const int64_t k = c - (key < b.edges[c]);
  return k < b.n_bins - 1 ? k : b.n_bins - 1;  // key == e[n_bins] is in the last bin
}

// Any edges: binary search.
PE_HD inline int64_t search_bin(const Bins& b, double key) {
  int64_t k = 0;  // invariant: e[k] <= key < e[k + len]
  for (int64_t len = b.n_bins; len > 1;) {
    const int64_t half = len / 2;
    k = key >= b.edges[k + half] ? k + half : k;
    len -= half;
  }
  return k;
}

// Bin of a key, or -1 outside [e[0], e[n_bins]] and for NaN.
PE_HD inline int64_t bin_of(const Bins& b, double key) {
  if (!(key >= b.edges[0] && key <= b.edges[b.n_bins])) return -1;  // also rejects NaN
  return b.inv_step > 0 ? log_bin(b, key) : search_bin(b, key);
}

// The Bins of edges (which may live on the device; host_edges is a copy on the host). Edges
// flagged log-uniform but too fine or too uneven for the log2 estimate (see kMinLogStep) take
// the binary search.
inline Bins make_bins(const double* edges, const double* host_edges, int64_t n_bins,
                      bool log_uniform) {
  const Bins search{edges, n_bins, 0.0, 0.0};
  if (!log_uniform) return search;
  const double log_lo = std::log2(host_edges[0]);
  const double step = (std::log2(host_edges[n_bins]) - log_lo) / static_cast<double>(n_bins);
  const bool normal = host_edges[0] >= std::numeric_limits<double>::min();  // for approx_log2
  if (!(step >= kMinLogStep && normal)) return search;
  for (int64_t i = 1; i < n_bins; ++i) {
    const double place = (std::log2(host_edges[i]) - log_lo) / step;  // i when log-uniform
    if (!(std::fabs(place - static_cast<double>(i)) <= kMaxEdgeShift)) return search;
  }
  return {edges, n_bins, log_lo, 1.0 / step};
}

// Adds the pairs a < b of rows [0, n) to out (kPairStats x n_bins doubles, row-major): per bin the
// count, sum of keys, sum of values and of squared values. Pairs whose key is outside the edges,
// or whose key or value is not finite, are skipped. n_threads <= 0 means all cores.
void pair_bin(PairSource key, PairSource value, int64_t n, const double* edges, int64_t n_bins,
              bool log_uniform, double* out, int n_threads);

}  // namespace pyengine
