#include "pyengine/tail_index.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {
namespace {

// Columns per tile and rows per chunk: a chunk of compacted values (kColTile x kRowChunk
// doubles) stays in L2 while every K1 is swept over it.
constexpr int64_t kColTile = 32;
constexpr int64_t kRowChunk = 512;

// Sum of log|v| and log²|v| over n usable values (the hot loop: vectorised log).
PE_MULTIVERSION void log_moments(const double* v, int64_t n, double* st) {
  double a = 0.0, b = 0.0;
#pragma omp simd reduction(+ : a, b)
  for (int64_t i = 0; i < n; ++i) {
    const double l = log_positive(std::fabs(v[i]));
    a += l;
    b += l * l;
  }
  st[0] += a;
  st[1] += b;
}

// The partial group of one (column, K1) pair, carried from one row chunk to the next.
struct Carry {
  double sum = 0.0;
  int64_t count = 0;
};

// Add log|y| moments of the group sums y[0..n) to st; sums that are 0 or overflowed are
// counted as degenerate and left out. y is overwritten.
void add_groups(double* y, int64_t n, double* st) {
  int64_t used = 0;
  for (int64_t i = 0; i < n; ++i) {
    y[used] = y[i];
    used += tail_usable(y[i]) ? 1 : 0;
  }
  log_moments(y, used, st);
  st[2] += static_cast<double>(used);
  st[3] += static_cast<double>(n - used);
}

// Feed the n compacted values of one column chunk to the groups of size k (ybuf holds at
// least n / 2 + 1 doubles).
void feed_groups(const double* v, int64_t n, int64_t k, Carry& c, double* ybuf, double* st) {
  int64_t i = 0, n_y = 0;
  if (c.count > 0) {
    const int64_t take = std::min(k - c.count, n);
    for (; i < take; ++i) c.sum += v[i];
    c.count += take;
    if (c.count < k) return;
    ybuf[n_y++] = c.sum;
    c = Carry{};
  }
  for (; i + k <= n; i += k) {
    double y = 0.0;
    for (int64_t j = 0; j < k; ++j) y += v[i + j];
    ybuf[n_y++] = y;
  }
  c.count = n - i;
  for (; i < n; ++i) c.sum += v[i];
  add_groups(ybuf, n_y, st);
}

// One tile of columns [c0, c1), all rows: compact each column chunk, then sweep the K1.
template <typename T>
void tile_sums(const T* x, int64_t n_rows, int64_t row_stride, int64_t c0, int64_t c1,
               const int64_t* k1, int64_t n_k1, std::vector<double>& buf, std::vector<Carry>& carry,
               std::vector<double>& ybuf, double* st) {
  const int64_t w = c1 - c0;
  std::fill(carry.begin(), carry.end(), Carry{});
  int64_t count[kColTile];
  for (int64_t t0 = 0; t0 < n_rows; t0 += kRowChunk) {
    const int64_t t1 = std::min(n_rows, t0 + kRowChunk);
    std::fill(count, count + w, int64_t{0});
    for (int64_t t = t0; t < t1; ++t) {
      const T* row = x + t * row_stride + c0;
      for (int64_t c = 0; c < w; ++c) {
        const double v = static_cast<double>(row[c]);
        if (tail_usable(v))
          buf[c * kRowChunk + count[c]++] = v;
        else if (v == 0.0)
          st[3] += 1.0;
        else
          st[4] += 1.0;
      }
    }
    for (int64_t c = 0; c < w; ++c) {
      const double* v = buf.data() + c * kRowChunk;
      log_moments(v, count[c], st);
      st[2] += static_cast<double>(count[c]);
      for (int64_t g = 0; g < n_k1; ++g)
        feed_groups(v, count[c], k1[g], carry[c * n_k1 + g], ybuf.data(), st + kTailHead + g * kTailPerK1);
    }
  }
  for (int64_t c = 0; c < w; ++c)
    for (int64_t g = 0; g < n_k1; ++g)
      st[kTailHead + g * kTailPerK1 + 4] += static_cast<double>(carry[c * n_k1 + g].count);
}

void check_args(int64_t n_rows, int64_t n_cols, int64_t row_stride, const int64_t* k1, int64_t n_k1,
                const char* name) {
  const std::string who(name);
  require(n_rows >= 0 && n_cols >= 0 && n_k1 >= 0, who + ": negative size");
  require(row_stride >= n_cols, who + ": row_stride must be >= n_cols");
  for (int64_t g = 0; g < n_k1; ++g) require(k1[g] >= 2, who + ": every K1 must be >= 2");
}

}  // namespace

template <typename T>
void tail_sums(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, const int64_t* k1,
               int64_t n_k1, double* stats, int n_threads) {
  check_args(n_rows, n_cols, row_stride, k1, n_k1, "tail_sums");
  const int64_t n_stats = kTailHead + kTailPerK1 * n_k1;
  const int64_t n_tiles = (n_cols + kColTile - 1) / kColTile;
  if (n_rows == 0 || n_tiles == 0) return;
#ifdef _OPENMP
  const int threads = static_cast<int>(std::min<int64_t>(n_threads > 0 ? n_threads : omp_get_max_threads(), n_tiles));
#endif
  // Thread-local statistics, reduced once at the end.
#pragma omp parallel num_threads(threads)
  {
    std::vector<double> local(n_stats, 0.0);
    std::vector<double> buf(kColTile * kRowChunk);
    std::vector<Carry> carry(kColTile * n_k1);
    std::vector<double> ybuf(kRowChunk / 2 + 1);
#pragma omp for schedule(dynamic)
    for (int64_t tile = 0; tile < n_tiles; ++tile) {
      const int64_t c0 = tile * kColTile;
      tile_sums(x, n_rows, row_stride, c0, std::min(n_cols, c0 + kColTile), k1, n_k1, buf, carry, ybuf,
                local.data());
    }
#pragma omp critical
    for (int64_t i = 0; i < n_stats; ++i) stats[i] += local[i];
  }
}

template <typename T>
void tail_norms(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, const int64_t* k1,
                int64_t n_k1, double* row_sq, double* group_sq, int n_threads) {
  check_args(n_rows, n_cols, row_stride, k1, n_k1, "tail_norms");
  if (n_rows == 0 || n_cols == 0) return;
#ifdef _OPENMP
  const int threads = n_threads > 0 ? n_threads : omp_get_max_threads();
#endif
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < n_rows; ++t) {
      const T* row = x + t * row_stride;
      double acc = 0.0;
#pragma omp simd reduction(+ : acc)
      for (int64_t c = 0; c < n_cols; ++c) acc += static_cast<double>(row[c]) * static_cast<double>(row[c]);
      row_sq[t] += acc;
    }
    std::vector<double> sum(n_cols);
    int64_t off = 0;
    for (int64_t g = 0; g < n_k1; ++g) {
      const int64_t k = k1[g], n_groups = n_rows / k;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n_groups; ++i) {
        std::fill(sum.begin(), sum.end(), 0.0);
        for (int64_t t = i * k; t < (i + 1) * k; ++t) {
          const T* row = x + t * row_stride;
#pragma omp simd
          for (int64_t c = 0; c < n_cols; ++c) sum[c] += static_cast<double>(row[c]);
        }
        double acc = 0.0;
#pragma omp simd reduction(+ : acc)
        for (int64_t c = 0; c < n_cols; ++c) acc += sum[c] * sum[c];
        group_sq[off + i] += acc;
      }
      off += n_groups;
    }
  }
}

template void tail_sums<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*, int);
template void tail_sums<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*, int);
template void tail_norms<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*,
                                double*, int);
template void tail_norms<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*,
                                 double*, int);

}  // namespace pyengine
