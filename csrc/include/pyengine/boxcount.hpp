// Box counting of surfaces z[y, x] and binary images: block min/max over square boxes, and
// the number of boxes a block's column of values needs under one of three rules.
#pragma once
#include <cmath>
#include <cstdint>

#include "pyengine/common.hpp"

namespace pyengine {

// How many boxes cover the values of one block, given its min `lo` and max `hi`.
//   kDbc      Sarkar & Chaudhuri (1994): boxes of height h stacked from zmin on a fixed
//             grid; n = floor((hi - zmin)/h) - floor((lo - zmin)/h) + 1.
//   kIdbc     Li, Du & Sun (2009): boxes stacked from the block minimum;
//             n = max(1, ceil((hi - lo)/h)).
//   kOccupied binary images: n = 1 when the block holds a nonzero value, else 0.
enum BoxRule : int { kDbc = 0, kIdbc = 1, kOccupied = 2 };

PE_HD inline double boxes_in_block(double lo, double hi, double zmin, double inv_h, int rule) {
  if (rule == kDbc) return floor((hi - zmin) * inv_h) - floor((lo - zmin) * inv_h) + 1.0;
  if (rule == kIdbc) {
    const double n = ceil((hi - lo) * inv_h);
    return n > 1.0 ? n : 1.0;
  }
  return (hi != 0 || lo != 0) ? 1.0 : 0.0;
}

// k with s == 2^k, or -1.
inline int64_t dyadic_level(int64_t s) {
  if (s < 1 || (s & (s - 1)) != 0) return -1;
  int64_t k = 0;
  while ((int64_t(1) << k) < s) ++k;
  return k;
}

// The argument checks of box_counts, shared by the CPU and CUDA builds.
inline void check_box_counts_args(int64_t ny, int64_t nx, int64_t row_stride, int64_t oy, int64_t ox,
                                  const int64_t* sizes, int64_t n_sizes, int rule) {
  require(ny >= 0 && nx >= 0 && n_sizes >= 0, "box_counts: negative size");
  require(row_stride >= nx, "box_counts: row_stride must be >= nx");
  require(oy >= 0 && ox >= 0, "box_counts: the grid offset must be >= 0");
  require(rule == kDbc || rule == kIdbc || rule == kOccupied, "box_counts: unknown rule");
  for (int64_t i = 0; i < n_sizes; ++i) {
    require(sizes[i] >= 1, "box_counts: sizes must be >= 1");
    for (int64_t j = 0; j < i; ++j) require(sizes[i] != sizes[j], "box_counts: sizes must be distinct");
  }
}

// Highest pyramid level 2^k that a requested size needs in an h x w region (0: none).
inline int64_t pyramid_top(const int64_t* sizes, int64_t n_sizes, int64_t h, int64_t w) {
  int64_t top = 0;
  for (int64_t i = 0; i < n_sizes; ++i) {
    const int64_t k = dyadic_level(sizes[i]);
    if (k >= 1 && sizes[i] <= (h < w ? h : w)) top = k > top ? k : top;
  }
  return top;
}

// Box counts of z[oy:, ox:] at several box sizes.
//
// z is row-major, ny x nx, rows row_stride elements apart. For each sizes[i] >= 1 the region
// z[oy:, ox:] is cut into whole s x s blocks (a partial last row/column of blocks is left
// out); counts[i] += sum over blocks of boxes_in_block(min, max, zmin, inv_heights[i], rule)
// and n_blocks[i] += the number of blocks (sizes distinct). Powers of two are all served by one min/max
// pyramid (each level built from the one below); other sizes by a direct scan each.
// Values must be finite (check with surface_stats). n_threads <= 0 means all.
template <typename T>
void box_counts(const T* z, int64_t ny, int64_t nx, int64_t row_stride, int64_t oy, int64_t ox,
                const int64_t* sizes, const double* inv_heights, int64_t n_sizes, double zmin,
                int rule, double* counts, double* n_blocks, int n_threads);

// One pass over z: out = {min, max, sum(z - z[0,0]), sum((z - z[0,0])^2), count of NaN},
// min/max/sums over the non-NaN values.
template <typename T>
void surface_stats(const T* z, int64_t ny, int64_t nx, int64_t row_stride, double* out,
                   int n_threads);

}  // namespace pyengine
