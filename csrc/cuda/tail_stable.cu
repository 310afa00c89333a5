#include <algorithm>

#include "check.cuh"
#include "pyengine/cuda.hpp"
#include "pyengine/tail_stable.hpp"

namespace pyengine::cuda {
namespace {

constexpr int kThreads = 256;

// Grid-stride loop over the samples; per-thread sums, a shared-memory tree per block and
// one fp64 atomicAdd per block and field. The per-sample math is stable_log_density.
template <typename T>
__global__ void stable_loglik_kernel(const T* __restrict__ x, int64_t n, double loc, double inv_scale,
                                     double log_scale, StableRow row, double* __restrict__ sums,
                                     double* __restrict__ logp) {
  double acc[4] = {0.0, 0.0, 0.0, 0.0};
  for (int64_t i = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const double z = (static_cast<double>(x[i]) - loc) * inv_scale;
    const double a = fabs(z);
    const LogDensity d = stable_log_density(a, row);
    const double lp = d.value - log_scale;
    acc[0] += lp;
    acc[1] += d.d_alpha;
    acc[2] -= (z < 0 ? -d.d_a : d.d_a) * inv_scale;
    acc[3] -= (d.d_a * a + 1.0) * inv_scale;
    if (logp) logp[i] = lp;
  }
  __shared__ double part[4][kThreads];
  for (int f = 0; f < 4; ++f) part[f][threadIdx.x] = acc[f];
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s)
      for (int f = 0; f < 4; ++f) part[f][threadIdx.x] += part[f][threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    for (int f = 0; f < 4; ++f) atomicAdd(sums + f, part[f][0]);
}

}  // namespace

template <typename T>
void stable_loglik(const T* x, int64_t n, double loc, double scale, const StableRow& row, double* sums,
                   double* logp, std::uintptr_t stream) {
  require(n >= 0, "stable_loglik: negative size");
  require(scale > 0.0, "stable_loglik: scale must be > 0");
  require(row.n_u >= 3 && row.h > 0.0 && row.n_c >= 0, "stable_loglik: malformed density row");
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 4096);
  stable_loglik_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
      x, n, loc, 1.0 / scale, std::log(scale), row, sums, logp);
  check(cudaGetLastError(), "stable_loglik kernel launch");
}

template void stable_loglik<float>(const float*, int64_t, double, double, const StableRow&, double*, double*,
                                   std::uintptr_t);
template void stable_loglik<double>(const double*, int64_t, double, double, const StableRow&, double*, double*,
                                    std::uintptr_t);

}  // namespace pyengine::cuda
