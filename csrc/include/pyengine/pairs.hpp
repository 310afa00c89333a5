// Pair binning: one pass over the pairs a < b of a window into histograms with fp64 sums.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

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
// estimate that is then corrected against the edges, so it always agrees with a search of the
// edges; otherwise a branch-free binary search. Returns -1 outside [e[0], e[n_bins]] and for NaN.
struct Bins {
  const double* edges;
  int64_t n_bins;
  double log_lo;    // log2(e[0]) when log-uniform
  double inv_step;  // 1 / log2(e[1] / e[0]) when log-uniform, 0 otherwise
};

// log2(x) for x > 0 to within 0.01: exponent bits plus a quadratic in the mantissa.
PE_HD inline double approx_log2(double x) {
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  const double e = static_cast<double>(static_cast<int64_t>((bits >> 52) & 0x7ff) - 1023);
  bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
  double m;
  memcpy(&m, &bits, sizeof m);
  const double f = m - 1.0;
  return e + f * (1.3465553 - 0.3465553 * f);
}

// Smallest log2 bin width for which the log2 estimate (error < 0.01) is off by at most one bin.
constexpr double kMinLogStep = 0.05;

PE_HD inline int64_t bin_of(const Bins& b, double key) {
  const double* e = b.edges;
  const int64_t n = b.n_bins;
  if (!(key >= e[0] && key <= e[n])) return -1;  // also rejects NaN
  int64_t k;
  if (b.inv_step > 0) {
    k = static_cast<int64_t>((approx_log2(key) - b.log_lo) * b.inv_step);
    k = k < 0 ? 0 : (k >= n ? n - 1 : k);
    k -= key < e[k];
    k += k < n - 1 && key >= e[k + 1];
  } else {
    k = 0;  // invariant: e[k] <= key < e[k + len]
    for (int64_t len = n; len > 1;) {
      const int64_t half = len / 2;
      k = key >= e[k + half] ? k + half : k;
      len -= half;
    }
  }
  return k;
}

// The Bins of edges whose first two values are e0, e1 (edges may live on the device). Edges
// too finely spaced for the log2 estimate fall back to the binary search.
inline Bins make_bins(const double* edges, int64_t n_bins, double e0, double e1, bool log_uniform) {
  const double step = log_uniform ? std::log2(e1 / e0) : 0.0;
  if (step < kMinLogStep) return {edges, n_bins, 0.0, 0.0};
  return {edges, n_bins, std::log2(e0), 1.0 / step};
}

// Adds the pairs a < b of rows [0, n) to out (kPairStats x n_bins doubles, row-major): per bin the
// count, sum of keys, sum of values and of squared values. Pairs whose key is outside the edges,
// or whose key or value is not finite, are skipped. n_threads <= 0 means all cores.
void pair_bin(PairSource key, PairSource value, int64_t n, const double* edges, int64_t n_bins,
              bool log_uniform, double* out, int n_threads);

}  // namespace pyengine
