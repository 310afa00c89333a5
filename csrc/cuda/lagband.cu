#include "check.cuh"
#include "pyengine/common.hpp"
#include "pyengine/cuda.hpp"

namespace pyengine::cuda {
namespace {

constexpr int kThreads = 256;

// One block per (origin t, lag l): threads stride over the columns (coalesced reads of the
// two rows), then a shared-memory tree sums the fp64 partials.
template <typename T>
__global__ void lag_band_kernel(const T* __restrict__ x, int64_t n_rows, int64_t n_cols,
                                int64_t row_stride, const int64_t* __restrict__ lags,
                                double* __restrict__ out) {
  const int64_t t = blockIdx.x;
  const int64_t l = blockIdx.y;
  const int64_t lag = lags[l];
  if (t + lag >= n_rows) return;
  const T* a = x + t * row_stride;
  const T* b = a + lag * row_stride;
  double acc = 0.0;
  for (int64_t c = threadIdx.x; c < n_cols; c += kThreads) acc += sq_diff(a[c], b[c]);
  __shared__ double partial[kThreads];
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[l * n_rows + t] += partial[0];
}

}  // namespace

template <typename T>
void lag_band(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride,
              const int64_t* lags, int64_t n_lags, double* out, std::uintptr_t stream) {
  require(n_rows >= 0 && n_cols >= 0 && n_lags >= 0, "lag_band: negative size");
  require(row_stride >= n_cols, "lag_band: row_stride must be >= n_cols");
  require(n_lags <= 65535, "lag_band (cuda): at most 65535 lags per call");
  if (n_rows == 0 || n_lags == 0 || n_cols == 0) return;
  const dim3 grid(static_cast<unsigned>(n_rows), static_cast<unsigned>(n_lags));
  lag_band_kernel<T><<<grid, kThreads, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
      x, n_rows, n_cols, row_stride, lags, out);
  check(cudaGetLastError(), "lag_band kernel launch");
}

template void lag_band<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t,
                              double*, std::uintptr_t);
template void lag_band<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t,
                               double*, std::uintptr_t);

}  // namespace pyengine::cuda
