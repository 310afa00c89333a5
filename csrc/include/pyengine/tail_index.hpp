// Mohammadi tail-index statistics: sums of log|X| and of log|Y| (Y = sums of K1 consecutive
// X), additive over column blocks, so a stream of blocks gives the same totals as one pass.
#pragma once
#include <cstdint>
#include <cstring>

#include "pyengine/common.hpp"

namespace pyengine {

// Layout of the 1-D statistics vector (float64, added to by tail_sums):
//   [0] sum log|x|   [1] sum log²|x|   [2] values used   [3] zeros   [4] non-finite values
//   then for each K1 (kTailPerK1 entries): sum log|y|, sum log²|y|, groups used,
//   degenerate groups (sum exactly 0 or overflowing), values left in an incomplete group.
constexpr int64_t kTailHead = 5;
constexpr int64_t kTailPerK1 = 5;

// 1-D form. Samples run down each column of x (n_rows rows, row_stride elements apart);
// each column is its own sequence. Zeros and non-finite values are counted and dropped
// from the sequence; the K1-groups are consecutive runs of the values that remain, and a
// column's last incomplete group is dropped and counted. Columns are independent, so the
// statistics of column blocks add up to those of the whole array.
template <typename T>
void tail_sums(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, const int64_t* k1,
               int64_t n_k1, double* stats, int n_threads);

// Multivariate form: rows are the sample vectors. Adds the squared norm of every row to
// row_sq[t] (n_rows entries), and for each K1 the squared norm of every full group sum
// sum_{t in group i} x[t, :] to group_sq[off + i], off = sum over earlier K1 of n_rows / K1.
// Squared norms add over column blocks; non-finite values propagate into them.
template <typename T>
void tail_norms(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, const int64_t* k1,
                int64_t n_k1, double* row_sq, double* group_sq, int n_threads);

// Whether v counts as a sample: finite and non-zero.
PE_HD inline bool tail_usable(double v) { return v != 0.0 && v - v == 0.0; }

// Natural log of a positive finite double, written without calls or branches so that CPU
// loops over it vectorise (the GPU build uses its native log). Accurate to about 1 ulp:
// v = 2^e m with m in [1/sqrt2, sqrt2), log m = 2 atanh(f), f = (m - 1) / (m + 1), |f| < 0.172.
PE_HD inline double log_positive(double v) {
#if defined(__CUDA_ARCH__)
  return log(v);
#else
  const bool sub = v < 2.2250738585072014e-308;  // subnormal: scale into the normal range
  v = sub ? v * 18014398509481984.0 : v;         // 2^54
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  // The biased exponent as a double without an int64 -> double conversion (which AVX2 and
  // AVX-512F lack): place it in the mantissa of 2^52 and subtract 2^52.
  uint64_t ebits = (bits >> 52) | 0x4330000000000000ull;
  double ed;
  std::memcpy(&ed, &ebits, sizeof ed);
  ed -= 4503599627370496.0 + 1023.0 + (sub ? 54.0 : 0.0);
  bits = (bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;  // m in [1, 2)
  double m;
  std::memcpy(&m, &bits, sizeof m);
  const bool big = m > 1.4142135623730951;
  m = big ? 0.5 * m : m;
  ed += big ? 1.0 : 0.0;
  const double f = (m - 1.0) / (m + 1.0);
  const double s = f * f;
  // 2 atanh(f) = 2f (1 + s/3 + s^2/5 + ...), s <= 0.0295: 12 terms reach 1e-18.
  double p = 1.0 / 25.0;
  p = p * s + 1.0 / 23.0;
  p = p * s + 1.0 / 21.0;
  p = p * s + 1.0 / 19.0;
  p = p * s + 1.0 / 17.0;
  p = p * s + 1.0 / 15.0;
  p = p * s + 1.0 / 13.0;
  p = p * s + 1.0 / 11.0;
  p = p * s + 1.0 / 9.0;
  p = p * s + 1.0 / 7.0;
  p = p * s + 1.0 / 5.0;
  p = p * s + 1.0 / 3.0;
  const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  return ed * ln2_hi + (2.0 * f + (2.0 * f * s * p + ed * ln2_lo));
#endif
}

}  // namespace pyengine
