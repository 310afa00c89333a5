#include "pyengine/lagband.hpp"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "pyengine/common.hpp"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define PE_HAVE_AVX_TRANSPOSE 1
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {
namespace {

// The block is processed in strips of columns whose transposed copy (one row per column,
// time contiguous) fits in L2: the input is read from memory once, every lag then finds its
// partner rows in cache, and the inner loop runs along time, so summing over a strip's columns
// needs no horizontal reductions.
constexpr int64_t kStripBytes = 1 << 20;
constexpr int64_t kMaxStripCols = 256;
constexpr int64_t kOriginTile = 32;   // origins summed in registers at once
constexpr int64_t kChunkOrigins = 512;  // origins whose band entries stay in L1/L2 across lags
constexpr int64_t kGroupsPerThread = 4;       // runs of strips per thread, taken dynamically
constexpr int64_t kStripsPerGroup = 4;        // a run's own band costs about a sixth of a strip
constexpr int64_t kGroupBandBytes = 32 << 20;  // bound on the runs' own bands

template <typename T>
int64_t strip_cols(int64_t n_rows, int64_t n_cols) {
  const int64_t fit = kStripBytes / (static_cast<int64_t>(sizeof(T)) * std::max<int64_t>(n_rows, 1));
  return std::min(n_cols, std::clamp<int64_t>(fit / 8 * 8, 8, kMaxStripCols));
}

// Transposed rows are padded so that consecutive columns do not alias in the cache.
int64_t transposed_stride(int64_t n_rows) { return (n_rows + 15) / 16 * 16 + 16; }

// xt[c * ld + t] = x[t, c0 + c] for rows [t0, t1) of a strip of `width` columns.
template <typename T>
void transpose_scalar(const T* x, int64_t row_stride, int64_t c0, int64_t width, int64_t t0,
                      int64_t t1, T* xt, int64_t ld) {
  constexpr int64_t kTile = 16;
  for (int64_t tt = t0; tt < t1; tt += kTile) {
    const int64_t te = std::min(t1, tt + kTile);
    for (int64_t cc = 0; cc < width; cc += kTile) {
      const int64_t ce = std::min(width, cc + kTile);
      for (int64_t t = tt; t < te; ++t) {
        const T* row = x + t * row_stride + c0;
        for (int64_t c = cc; c < ce; ++c) xt[c * ld + t] = row[c];
      }
    }
  }
}

#ifdef PE_HAVE_AVX_TRANSPOSE

// In-register 8 x 8 transposes (AVX): whole-vector loads and stores instead of one scalar
// store per element, which made the scalar transpose cost as much as the band for few lags.
__attribute__((target("avx"))) void transpose_avx(const float* x, int64_t row_stride, int64_t c0,
                                                  int64_t width, int64_t t0, int64_t t1, float* xt,
                                                  int64_t ld) {
  int64_t t = t0;
  for (; t + 8 <= t1; t += 8) {
    int64_t c = 0;
    for (; c + 8 <= width; c += 8) {
      const float* src = x + t * row_stride + c0 + c;
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * row_stride);
      __m256 u[8], v[8];
      for (int i = 0; i < 8; i += 2) {
        u[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        u[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
      }
      for (int i = 0; i < 8; i += 4)
        for (int k = 0; k < 2; ++k) {
          v[i + k] = _mm256_shuffle_ps(u[i + k], u[i + k + 2], _MM_SHUFFLE(1, 0, 1, 0));
          v[i + k + 2] = _mm256_shuffle_ps(u[i + k], u[i + k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        }
      // v[0..3] hold columns 0, 2, 1, 3 of rows 0-3 (low lane) and 4-7 (high lane) of each half.
      static constexpr int kCol[4] = {0, 2, 1, 3};
      for (int k = 0; k < 4; ++k) {
        float* dst = xt + (c + kCol[k]) * ld + t;
        _mm256_storeu_ps(dst, _mm256_permute2f128_ps(v[k], v[k + 4], 0x20));
        _mm256_storeu_ps(dst + 4 * ld, _mm256_permute2f128_ps(v[k], v[k + 4], 0x31));
      }
    }
    if (c < width) transpose_scalar(x, row_stride, c0 + c, width - c, t, t + 8, xt + c * ld, ld);
  }
  if (t < t1) transpose_scalar(x, row_stride, c0, width, t, t1, xt, ld);
}
#endif

// The transposed copy of a whole strip: xt[c * ld + t] = x[t, c0 + c].
template <typename T>
void transpose_strip(const T* x, int64_t n_rows, int64_t row_stride, int64_t c0, int64_t width,
                     T* xt, int64_t ld) {
#ifdef PE_HAVE_AVX_TRANSPOSE
  if constexpr (std::is_same_v<T, float>) {
    static const bool avx = __builtin_cpu_supports("avx");
    if (avx) return transpose_avx(x, row_stride, c0, width, 0, n_rows, xt, ld);
  }
#endif
  transpose_scalar(x, row_stride, c0, width, 0, n_rows, xt, ld);
}

// out_row[t] += sum_c (xt[c, t + lag] - xt[c, t])^2 for origins [t0, t1) of a transposed strip.
template <typename T>
PE_MULTIVERSION void strip_band(const T* xt, int64_t ld, int64_t width, int64_t lag, int64_t t0,
                                int64_t t1, double* out_row) {
  int64_t t = t0;
  for (; t + kOriginTile <= t1; t += kOriginTile) {
    double acc[kOriginTile] = {};
    for (int64_t c = 0; c < width; ++c) {
      const T* a = xt + c * ld + t;
#pragma omp simd
      for (int64_t i = 0; i < kOriginTile; ++i) acc[i] += sq_diff(a[i], a[i + lag]);
    }
#pragma omp simd
    for (int64_t i = 0; i < kOriginTile; ++i) out_row[t + i] += acc[i];
  }
  for (; t < t1; ++t) {
    double acc = 0.0;
    for (int64_t c = 0; c < width; ++c) acc += sq_diff(xt[c * ld + t], xt[c * ld + t + lag]);
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
  if (n_rows == 0 || n_lags == 0 || n_cols == 0) return;
  const int64_t width = strip_cols<T>(n_rows, n_cols);
  const int64_t ld = transposed_stride(n_rows);
  const int64_t n_strips = (n_cols + width - 1) / width;
  const int64_t band_size = n_lags * n_rows;
#ifdef _OPENMP
  const int threads = static_cast<int>(std::min<int64_t>(n_strips, n_threads > 0 ? n_threads : omp_get_max_threads()));
#else
  const int threads = 1;
#endif
  // The strips are dealt out in `groups` contiguous runs, taken by whichever thread is free
  // (on a busy machine a descheduled thread no longer holds the others up at the end), each
  // run summed into a band of its own; the bands are added in run order, so the result does
  // not depend on thread timing. Several runs per thread, within a memory bound for the bands,
  // and of several strips each: a narrow call (a jackknife group's 512 columns are 8 strips)
  // with a band per strip spent a third of its time making and adding bands.
  const int64_t max_groups = std::max<int64_t>(threads, std::min(kGroupBandBytes / (band_size * 8),
                                                                 n_strips / kStripsPerGroup));
  const int64_t groups = std::min({n_strips, kGroupsPerThread * threads, max_groups});
  std::vector<double> bands(static_cast<size_t>((groups - 1) * band_size));
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> xt(static_cast<size_t>(width * ld));
#pragma omp for schedule(dynamic, 1)
    for (int64_t g = 0; g < groups; ++g) {
      double* band = g == 0 ? out : bands.data() + (g - 1) * band_size;
      for (int64_t s = g * n_strips / groups; s < (g + 1) * n_strips / groups; ++s) {
        const int64_t c0 = s * width;
        const int64_t w = std::min(width, n_cols - c0);
        transpose_strip(x, n_rows, row_stride, c0, w, xt.data(), ld);
        for (int64_t t0 = 0; t0 < n_rows; t0 += kChunkOrigins)
          for (int64_t l = 0; l < n_lags; ++l) {
            const int64_t t1 = std::min(n_rows - lags[l], t0 + kChunkOrigins);
            if (t1 > t0) strip_band(xt.data(), ld, w, lags[l], t0, t1, band + l * n_rows);
          }
      }
    }
  }
  if (groups > 1) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < band_size; ++i)
      for (int64_t g = 1; g < groups; ++g) out[i] += bands[static_cast<size_t>((g - 1) * band_size + i)];
  }
}

template void lag_band<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t,
                              double*, int);
template void lag_band<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t,
                               double*, int);

}  // namespace pyengine
