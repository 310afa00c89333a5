#include "pyengine/boxcount.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {
namespace {

// Levels smaller than this many values run on one thread: a parallel region costs more
// than it saves there, and much more on a busy machine.
constexpr int64_t kParallelMin = int64_t(1) << 18;

int thread_count(int n_threads) {
#ifdef _OPENMP
  return n_threads > 0 ? n_threads : omp_get_max_threads();
#else
  (void)n_threads;
  return 1;
#endif
}

// One level of the min/max pyramid: by x bx blocks, row-major (allocated, not zero-filled).
template <typename T>
struct Level {
  int64_t by = 0, bx = 0;
  std::unique_ptr<T[]> lo, hi;
  Level() = default;
  Level(int64_t by_, int64_t bx_) : by(by_), bx(bx_), lo(new T[by_ * bx_]), hi(new T[by_ * bx_]) {}
};

// One output row of the next level: block j is the union of blocks 2j, 2j + 1 of the two
// input rows (minima l0, l1 and maxima h0, h1). Returns the row's box count when count_it.
template <typename T>
inline double reduce_rows(const T* l0, const T* l1, const T* h0, const T* h1, int64_t bx, T* lo,
                          T* hi, double zmin, double inv_h, int rule, bool count_it) {
  for (int64_t j = 0; j < bx; ++j) {
    lo[j] = std::min(std::min(l0[2 * j], l0[2 * j + 1]), std::min(l1[2 * j], l1[2 * j + 1]));
    hi[j] = std::max(std::max(h0[2 * j], h0[2 * j + 1]), std::max(h1[2 * j], h1[2 * j + 1]));
  }
  double acc = 0.0;
  if (count_it)
    for (int64_t j = 0; j < bx; ++j) acc += boxes_in_block(double(lo[j]), double(hi[j]), zmin, inv_h, rule);
  return acc;
}

// Levels 1 and 2 straight from z (h x w values) in one pass; level 1 is counted row by row
// and never stored. Returns the box totals of both levels.
template <typename T>
PE_MULTIVERSION std::pair<double, double> base_levels(const T* z, int64_t h, int64_t w,
                                                      int64_t row_stride, Level<T>& second,
                                                      double zmin, const double inv_h[2], int rule,
                                                      const bool count_it[2], int threads) {
  const int64_t by1 = h >> 1, bx1 = w >> 1;
  double total1 = 0.0, total2 = 0.0;
#pragma omp parallel num_threads(threads) reduction(+ : total1, total2) if (h * w >= kParallelMin)
  {
    std::vector<T> a_lo(bx1), a_hi(bx1), b_lo(bx1), b_hi(bx1);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < (by1 + 1) / 2; ++p) {
      const T* r = z + 4 * p * row_stride;
      total1 += reduce_rows(r, r + row_stride, r, r + row_stride, bx1, a_lo.data(), a_hi.data(),
                            zmin, inv_h[0], rule, count_it[0]);
      if (2 * p + 1 >= by1) continue;
      r += 2 * row_stride;
      total1 += reduce_rows(r, r + row_stride, r, r + row_stride, bx1, b_lo.data(), b_hi.data(),
                            zmin, inv_h[0], rule, count_it[0]);
      total2 += reduce_rows(a_lo.data(), b_lo.data(), a_hi.data(), b_hi.data(), second.bx,
                            second.lo.get() + p * second.bx, second.hi.get() + p * second.bx, zmin,
                            inv_h[1], rule, count_it[1]);
    }
  }
  return {total1, total2};
}

// The next pyramid level: each block of `out` is the union of 2 x 2 blocks of `in`.
template <typename T>
PE_MULTIVERSION double next_level(const Level<T>& in, Level<T>& out, double zmin, double inv_h,
                                  int rule, bool count_it, int threads) {
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) num_threads(threads) \
    if (in.by * in.bx >= kParallelMin)
  for (int64_t i = 0; i < out.by; ++i) {
    const T* l0 = in.lo.get() + 2 * i * in.bx;
    const T* h0 = in.hi.get() + 2 * i * in.bx;
    total += reduce_rows(l0, l0 + in.bx, h0, h0 + in.bx, out.bx, out.lo.get() + i * out.bx,
                         out.hi.get() + i * out.bx, zmin, inv_h, rule, count_it);
  }
  return total;
}

// Any size s: min/max of each block by a direct scan of its s rows.
template <typename T>
PE_MULTIVERSION double direct_size(const T* z, int64_t row_stride, int64_t s, int64_t by,
                                   int64_t bx, double zmin, double inv_h, int rule, int threads) {
  double total = 0.0;
#pragma omp parallel num_threads(threads) reduction(+ : total) if (by * bx * s * s >= kParallelMin)
  {
    std::vector<T> lo(bx), hi(bx);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < by; ++i) {
      std::fill(lo.begin(), lo.end(), std::numeric_limits<T>::max());
      std::fill(hi.begin(), hi.end(), std::numeric_limits<T>::lowest());
      for (int64_t r = i * s; r < (i + 1) * s; ++r) {
        const T* row = z + r * row_stride;
        for (int64_t j = 0; j < bx; ++j) {
          T mn = lo[j], mx = hi[j];
          for (int64_t c = j * s; c < (j + 1) * s; ++c) {
            mn = std::min(mn, row[c]);
            mx = std::max(mx, row[c]);
          }
          lo[j] = mn;
          hi[j] = mx;
        }
      }
      for (int64_t j = 0; j < bx; ++j)
        total += boxes_in_block(double(lo[j]), double(hi[j]), zmin, inv_h, rule);
    }
  }
  return total;
}

// {min, max, sum(v - ref), sum((v - ref)^2), NaN count} of one row, NaN values skipped
// without a branch so that the loop vectorises.
template <typename T>
PE_MULTIVERSION void row_stats(const T* row, int64_t n, double ref, double* out) {
  const double inf = std::numeric_limits<double>::infinity();
  double mn = inf, mx = -inf, s = 0.0, q = 0.0, nans = 0.0;
#pragma omp simd reduction(min : mn) reduction(max : mx) reduction(+ : s, q, nans)
  for (int64_t j = 0; j < n; ++j) {
    const double v = double(row[j]);
    const bool ok = v == v;
    const double d = ok ? v - ref : 0.0;
    mn = std::min(mn, ok ? v : inf);
    mx = std::max(mx, ok ? v : -inf);
    s += d;
    q += d * d;
    nans += ok ? 0.0 : 1.0;
  }
  out[0] = mn;
  out[1] = mx;
  out[2] = s;
  out[3] = q;
  out[4] = nans;
}

}  // namespace

template <typename T>
void box_counts(const T* z, int64_t ny, int64_t nx, int64_t row_stride, int64_t oy, int64_t ox,
                const int64_t* sizes, const double* inv_heights, int64_t n_sizes, double zmin,
                int rule, double* counts, double* n_blocks, int n_threads) {
  check_box_counts_args(ny, nx, row_stride, oy, ox, sizes, n_sizes, rule);
  const int threads = thread_count(n_threads);
  const int64_t h = std::max<int64_t>(0, ny - oy), w = std::max<int64_t>(0, nx - ox);
  if (h == 0 || w == 0) return;
  const T* origin = z + oy * row_stride + ox;

  // Which pyramid levels are asked for, and up to where the pyramid must be built.
  const int64_t top = pyramid_top(sizes, n_sizes, h, w);
  auto index_of = [&](int64_t k) {  // position of size 2^k in sizes, or -1
    for (int64_t i = 0; i < n_sizes; ++i)
      if (sizes[i] == (int64_t(1) << k)) return i;
    return int64_t(-1);
  };

  auto add = [&](int64_t k, double total, int64_t blocks) {
    const int64_t i = index_of(k);
    if (i < 0) return;
    counts[i] += total;
    n_blocks[i] += double(blocks);
  };
  auto inv_h_of = [&](int64_t k) { return index_of(k) >= 0 ? inv_heights[index_of(k)] : 0.0; };
  if (top >= 1) {
    Level<T> level(h >> 2, w >> 2);
    const double inv_h[2] = {inv_h_of(1), inv_h_of(2)};
    const bool wanted[2] = {index_of(1) >= 0, index_of(2) >= 0};
    const auto [total1, total2] = base_levels(origin, h, w, row_stride, level, zmin, inv_h, rule, wanted, threads);
    add(1, total1, (h >> 1) * (w >> 1));
    add(2, total2, level.by * level.bx);
    for (int64_t k = 3; k <= top; ++k) {
      Level<T> above(h >> k, w >> k);
      const double total = next_level(level, above, zmin, inv_h_of(k), rule, index_of(k) >= 0, threads);
      add(k, total, above.by * above.bx);
      level = std::move(above);
    }
  }
  for (int64_t i = 0; i < n_sizes; ++i) {  // size 1 and sizes that are not powers of two
    const int64_t s = sizes[i], by = h / s, bx = w / s;
    if (by == 0 || bx == 0 || dyadic_level(s) >= 1) continue;
    counts[i] += direct_size(origin, row_stride, s, by, bx, zmin, inv_heights[i], rule, threads);
    n_blocks[i] += double(by * bx);
  }
}

template <typename T>
void surface_stats(const T* z, int64_t ny, int64_t nx, int64_t row_stride, double* out,
                   int n_threads) {
  require(ny >= 1 && nx >= 1, "surface_stats: empty array");
  require(row_stride >= nx, "surface_stats: row_stride must be >= nx");
  const int threads = thread_count(n_threads);
  const double ref = std::isnan(double(z[0])) ? 0.0 : double(z[0]);
  double mn = std::numeric_limits<double>::infinity(), mx = -mn, sum = 0.0, sumsq = 0.0, nans = 0.0;
#pragma omp parallel for schedule(static) num_threads(threads) if (ny * nx >= kParallelMin) \
    reduction(min : mn) reduction(max : mx) reduction(+ : sum, sumsq, nans)
  for (int64_t i = 0; i < ny; ++i) {
    double r[5];
    row_stats(z + i * row_stride, nx, ref, r);
    mn = std::min(mn, r[0]);
    mx = std::max(mx, r[1]);
    sum += r[2];
    sumsq += r[3];
    nans += r[4];
  }
  out[0] = mn;
  out[1] = mx;
  out[2] = sum;
  out[3] = sumsq;
  out[4] = nans;
}

#define PE_BOXCOUNT_INSTANTIATE(T)                                                          \
  template void box_counts<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t,        \
                              const int64_t*, const double*, int64_t, double, int, double*, \
                              double*, int);
PE_BOXCOUNT_INSTANTIATE(float)
PE_BOXCOUNT_INSTANTIATE(double)
PE_BOXCOUNT_INSTANTIATE(uint8_t)
#undef PE_BOXCOUNT_INSTANTIATE

template void surface_stats<float>(const float*, int64_t, int64_t, int64_t, double*, int);
template void surface_stats<double>(const double*, int64_t, int64_t, int64_t, double*, int);

}  // namespace pyengine
