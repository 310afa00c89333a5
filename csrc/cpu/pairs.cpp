#include "pyengine/pairs.hpp"

#include <algorithm>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {
namespace {

// Copies of a thread's histogram that consecutive pairs alternate between: neighbouring pairs
// usually land in the same bin, and separate copies keep their read-modify-write updates from
// waiting on each other.
constexpr int64_t kCopies = 4;

// Row a's pair quantities f(a, b) for b in (a, n), gathered into a contiguous buffer.
void row_keys(PairSource s, int64_t a, int64_t n, double* out) {
  for (int64_t b = a + 1; b < n; ++b) out[b] = pair_key(s, a, b);
}
void row_values(PairSource s, int64_t a, int64_t n, double* out) {
  for (int64_t b = a + 1; b < n; ++b) out[b] = pair_value(s, a, b);
}

// Bin index of each key in [b0, n): n_bins (a discarded extra bin) for skipped pairs.
// Branch-free for log-uniform edges, so the compiler vectorizes it.
PE_MULTIVERSION void row_bins(const Bins& bins, const double* keys, const double* values,
                              int64_t b0, int64_t n, int32_t* idx) {
  const double* e = bins.edges;
  const int64_t nb = bins.n_bins;
  if (bins.inv_step > 0) {
    for (int64_t b = b0; b < n; ++b) {
      const double x = keys[b];
      const bool ok = x >= e[0] && x <= e[nb] && values[b] - values[b] == 0.0;  // 0 for NaN/inf
      const double guess = (approx_log2(ok ? x : e[0]) - bins.log_lo) * bins.inv_step;
      int64_t k = static_cast<int64_t>(guess < 0 ? 0.0 : guess);
      k = k < nb - 1 ? k : nb - 1;
      k -= x < e[k];
      k += k < nb - 1 && x >= e[k + 1];
      idx[b] = static_cast<int32_t>(ok ? k : nb);
    }
  } else {
    for (int64_t b = b0; b < n; ++b) {
      const int64_t k = bin_of(bins, keys[b]);
      idx[b] = static_cast<int32_t>(k < 0 || !(values[b] - values[b] == 0.0) ? nb : k);
    }
  }
}

// Adds the pairs of row a to a thread's histograms (kCopies of n_bins + 1 bins, each bin storing
// the kPairStats sums side by side, so one cache line holds a bin).
void add_row(const double* keys, const double* values, const int32_t* idx, int64_t b0, int64_t n,
             int64_t copy_stride, double* hist) {
  for (int64_t b = b0; b < n; ++b) {
    double* h = hist + (b % kCopies) * copy_stride + idx[b] * kPairStats;
    h[kCount] += 1.0;
    h[kKey] += keys[b];
    h[kSum] += values[b];
    h[kSumSq] += values[b] * values[b];
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
  const Bins bins = make_bins(edges, n_bins, edges[0], edges[1], log_uniform);
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
    std::vector<double> keys(n), values(n);
    std::vector<int32_t> idx(n);
#pragma omp for schedule(static, 1)
    for (int64_t a = 0; a < n - 1; ++a) {
      row_keys(key, a, n, keys.data());
      row_values(value, a, n, values.data());
      row_bins(bins, keys.data(), values.data(), a + 1, n, idx.data());
      add_row(keys.data(), values.data(), idx.data(), a + 1, n, copy_stride, hist);
    }
  }
  for (int64_t c = 0; c < threads * kCopies; ++c)
    for (int64_t k = 0; k < n_bins; ++k)
      for (int64_t s = 0; s < kPairStats; ++s)
        out[s * n_bins + k] += local[c * copy_stride + k * kPairStats + s];
}

}  // namespace pyengine
