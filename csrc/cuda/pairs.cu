#include <vector>

#include "check.cuh"
#include "pyengine/cuda.hpp"
#include "pyengine/pairs.hpp"

namespace pyengine::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBins = 1024;  // shared-memory histogram: kPairStats x (kMaxBins + 1) doubles

// Blocks stride over the rows a, threads over the partners b > a; each block keeps its histogram
// in shared memory (its "thread-local" copy) and adds it to out once at the end.
__global__ void pair_bin_kernel(PairSource key, PairSource value, int64_t n, Bins bins,
                                double* __restrict__ out) {
  extern __shared__ double hist[];  // kPairStats x n_bins, same layout as out
  const int64_t n_bins = bins.n_bins;
  for (int64_t i = threadIdx.x; i < kPairStats * n_bins; i += blockDim.x) hist[i] = 0.0;
  __syncthreads();
  for (int64_t a = blockIdx.x; a < n - 1; a += gridDim.x) {
    for (int64_t b = a + 1 + threadIdx.x; b < n; b += blockDim.x) {
      const double x = pair_key(key, a, b);
      const int64_t k = bin_of(bins, x);
      const double v = pair_value(value, a, b);
      if (k < 0 || !(v - v == 0.0)) continue;  // outside the edges, or a NaN/inf value
      atomicAdd(&hist[kCount * n_bins + k], 1.0);
      atomicAdd(&hist[kKey * n_bins + k], x);
      atomicAdd(&hist[kSum * n_bins + k], v);
      atomicAdd(&hist[kSumSq * n_bins + k], v * v);
    }
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < kPairStats * n_bins; i += blockDim.x)
    if (hist[i] != 0.0) atomicAdd(&out[i], hist[i]);
}

}  // namespace

void pair_bin(PairSource key, PairSource value, int64_t n, const double* edges, int64_t n_bins,
              bool log_uniform, double* out, std::uintptr_t stream) {
  require(n >= 0, "pair_bin: negative size");
  require(n_bins >= 1 && n_bins <= kMaxBins, "pair_bin (cuda): 1 to 1024 bins");
  require((key.ld == 0 || key.ld >= n) && (value.ld == 0 || value.ld >= n),
          "pair_bin: matrix row stride must be >= n");
  if (n < 2) return;
  std::vector<double> e(n_bins + 1);  // a host copy, to check
  auto s = reinterpret_cast<cudaStream_t>(stream);
  check(cudaMemcpyAsync(e.data(), edges, sizeof(double) * e.size(), cudaMemcpyDeviceToHost, s),
        "pair_bin edges copy");
  check(cudaStreamSynchronize(s), "pair_bin edges copy");
  for (int64_t k = 0; k < n_bins; ++k)
    require(e[k] < e[k + 1], "pair_bin: edges must increase strictly");
  require(!log_uniform || e[0] > 0, "pair_bin: log-uniform edges must be positive");
  const Bins bins = make_bins(edges, e.data(), n_bins, log_uniform);
  const int64_t blocks = n - 1 < 4096 ? n - 1 : 4096;
  const size_t shared = sizeof(double) * kPairStats * n_bins;
  pair_bin_kernel<<<static_cast<unsigned>(blocks), kThreads, shared, s>>>(key, value, n, bins, out);
  check(cudaGetLastError(), "pair_bin kernel launch");
}

}  // namespace pyengine::cuda
