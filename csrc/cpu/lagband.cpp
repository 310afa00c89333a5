#include "pyengine/lagband.hpp"

#include <algorithm>

#include "pyengine/common.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {
namespace {

// For one chunk of kRowChunk origins and one tile of kColTile columns, the origin rows
// (64 KiB of float32) stay in L1/L2 while every lag streams its partner rows past them.
constexpr int64_t kColTile = 128;
constexpr int64_t kRowChunk = 128;

template <typename T>
PE_MULTIVERSION void band_rows(const T* x, int64_t row_stride, int64_t c0, int64_t c1,
                               int64_t lag, int64_t t0, int64_t t1, double* out_row) {
  for (int64_t t = t0; t < t1; ++t) {
    const T* a = x + t * row_stride;
    const T* b = a + lag * row_stride;
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (int64_t c = c0; c < c1; ++c) acc += sq_diff(a[c], b[c]);
    out_row[t] += acc;
  }
}

}  // namespace

template <typename T>
void lag_band(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride,
              const int64_t* lags, int64_t n_lags, double* out, int n_threads) {
  require(n_rows >= 0 && n_cols >= 0 && n_lags >= 0, "lag_band: negative size");
  require(row_stride >= n_cols, "lag_band: row_stride must be >= n_cols");
  for (int64_t l = 0; l < n_lags; ++l)
    require(lags[l] >= 1, "lag_band: lags must be >= 1");
  const int64_t n_chunks = (n_rows + kRowChunk - 1) / kRowChunk;
  if (n_chunks == 0 || n_lags == 0 || n_cols == 0) return;
#ifdef _OPENMP
  const int threads = n_threads > 0 ? n_threads : omp_get_max_threads();
#endif
  // Each task is one chunk of origins and owns columns t0..t1 of every lag's row of out:
  // one parallel loop, no barriers, no reduction, and a deterministic result.
#pragma omp parallel for schedule(dynamic) num_threads(threads)
  for (int64_t k = 0; k < n_chunks; ++k) {
    const int64_t t0 = k * kRowChunk;
    for (int64_t c0 = 0; c0 < n_cols; c0 += kColTile) {
      const int64_t c1 = std::min(n_cols, c0 + kColTile);
      for (int64_t l = 0; l < n_lags; ++l) {
        const int64_t t1 = std::min(n_rows - lags[l], t0 + kRowChunk);
        if (t1 > t0) band_rows(x, row_stride, c0, c1, lags[l], t0, t1, out + l * n_rows);
      }
    }
  }
}

template void lag_band<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t,
                              double*, int);
template void lag_band<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t,
                               double*, int);

}  // namespace pyengine
