#include "check.cuh"
#include "pyengine/cuda.hpp"
#include "pyengine/tail_index.hpp"

namespace pyengine::cuda {
namespace {

constexpr int kThreads = 256;

// Sum `fields` values per thread over the block and add the totals to out (fp64 atomics).
__device__ void block_add(double (*part)[kThreads], int fields, double* out) {
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s)
      for (int f = 0; f < fields; ++f) part[f][threadIdx.x] += part[f][threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    for (int f = 0; f < fields; ++f) atomicAdd(out + f, part[f][0]);
}

// One thread per column, walking down its rows (adjacent threads read adjacent columns).
// k == 0: the log|x| moments and counts (5 fields); k >= 2: the groups of size k.
template <typename T>
__global__ void tail_sums_kernel(const T* __restrict__ x, int64_t n_rows, int64_t n_cols, int64_t row_stride,
                                 int64_t k, double* __restrict__ out) {
  __shared__ double part[5][kThreads];
  double acc[5] = {0.0, 0.0, 0.0, 0.0, 0.0};
  const int64_t c = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x;
  if (c < n_cols) {
    double run = 0.0;
    int64_t count = 0;
    for (int64_t t = 0; t < n_rows; ++t) {
      const double v = static_cast<double>(x[t * row_stride + c]);
      const bool usable = tail_usable(v);
      if (k == 0) {
        if (usable) {
          const double l = log(fabs(v));
          acc[0] += l;
          acc[1] += l * l;
          acc[2] += 1.0;
        } else {
          acc[v == 0.0 ? 3 : 4] += 1.0;
        }
      } else if (usable) {
        run += v;
        if (++count == k) {
          if (tail_usable(run)) {
            const double l = log(fabs(run));
            acc[0] += l;
            acc[1] += l * l;
            acc[2] += 1.0;
          } else {
            acc[3] += 1.0;
          }
          run = 0.0;
          count = 0;
        }
      }
    }
    if (k > 0) acc[4] = static_cast<double>(count);
  }
  for (int f = 0; f < 5; ++f) part[f][threadIdx.x] = acc[f];
  block_add(part, 5, out);
}

// One block per row: squared norm of the row.
template <typename T>
__global__ void row_sq_kernel(const T* __restrict__ x, int64_t n_cols, int64_t row_stride, double* out) {
  __shared__ double part[1][kThreads];
  const T* row = x + blockIdx.x * row_stride;
  double acc = 0.0;
  for (int64_t c = threadIdx.x; c < n_cols; c += kThreads) acc += static_cast<double>(row[c]) * row[c];
  part[0][threadIdx.x] = acc;
  block_add(part, 1, out + blockIdx.x);
}

// One block per group of k rows: squared norm of the group's row sum.
template <typename T>
__global__ void group_sq_kernel(const T* __restrict__ x, int64_t n_cols, int64_t row_stride, int64_t k,
                                double* out) {
  __shared__ double part[1][kThreads];
  const T* first = x + blockIdx.x * k * row_stride;
  double acc = 0.0;
  for (int64_t c = threadIdx.x; c < n_cols; c += kThreads) {
    double s = 0.0;
    for (int64_t t = 0; t < k; ++t) s += static_cast<double>(first[t * row_stride + c]);
    acc += s * s;
  }
  part[0][threadIdx.x] = acc;
  block_add(part, 1, out + blockIdx.x);
}

void check_args(int64_t n_rows, int64_t n_cols, int64_t row_stride, int64_t n_k1, const char* who) {
  require(n_rows >= 0 && n_cols >= 0 && n_k1 >= 0, std::string(who) + ": negative size");
  require(row_stride >= n_cols, std::string(who) + ": row_stride must be >= n_cols");
}

}  // namespace

// k1 lives on the host here (a few integers picking the launches); x and the outputs on the device.
template <typename T>
void tail_sums(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, const int64_t* k1,
               int64_t n_k1, double* stats, std::uintptr_t stream) {
  check_args(n_rows, n_cols, row_stride, n_k1, "tail_sums");
  for (int64_t g = 0; g < n_k1; ++g) require(k1[g] >= 2, "tail_sums: every K1 must be >= 2");
  if (n_rows == 0 || n_cols == 0) return;
  const auto s = reinterpret_cast<cudaStream_t>(stream);
  const unsigned blocks = static_cast<unsigned>((n_cols + kThreads - 1) / kThreads);
  tail_sums_kernel<T><<<blocks, kThreads, 0, s>>>(x, n_rows, n_cols, row_stride, 0, stats);
  for (int64_t g = 0; g < n_k1; ++g)
    tail_sums_kernel<T><<<blocks, kThreads, 0, s>>>(x, n_rows, n_cols, row_stride, k1[g],
                                                     stats + kTailHead + g * kTailPerK1);
  check(cudaGetLastError(), "tail_sums kernel launch");
}

template <typename T>
void tail_norms(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, const int64_t* k1,
                int64_t n_k1, double* row_sq, double* group_sq, std::uintptr_t stream) {
  check_args(n_rows, n_cols, row_stride, n_k1, "tail_norms");
  for (int64_t g = 0; g < n_k1; ++g) require(k1[g] >= 2, "tail_norms: every K1 must be >= 2");
  if (n_rows == 0 || n_cols == 0) return;
  require(n_rows < (int64_t{1} << 31), "tail_norms (cuda): at most 2^31 - 1 rows");
  const auto s = reinterpret_cast<cudaStream_t>(stream);
  row_sq_kernel<T><<<static_cast<unsigned>(n_rows), kThreads, 0, s>>>(x, n_cols, row_stride, row_sq);
  int64_t off = 0;
  for (int64_t g = 0; g < n_k1; ++g) {
    const int64_t n_groups = n_rows / k1[g];
    if (n_groups > 0)
      group_sq_kernel<T><<<static_cast<unsigned>(n_groups), kThreads, 0, s>>>(x, n_cols, row_stride, k1[g],
                                                                              group_sq + off);
    off += n_groups;
  }
  check(cudaGetLastError(), "tail_norms kernel launch");
}

template void tail_sums<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*,
                               std::uintptr_t);
template void tail_sums<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*,
                                std::uintptr_t);
template void tail_norms<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*,
                                double*, std::uintptr_t);
template void tail_norms<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*,
                                 double*, std::uintptr_t);

}  // namespace pyengine::cuda
