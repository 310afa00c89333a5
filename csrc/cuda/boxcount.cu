#include <algorithm>
#include <cstdint>

#include "check.cuh"
#include "pyengine/boxcount.hpp"
#include "pyengine/cuda.hpp"

namespace pyengine::cuda {
namespace {

constexpr int kThreads = 256;

// Sum of one value per thread over the CUDA block, added to *total by thread 0.
__device__ void block_add(double v, double* total) {
  __shared__ double partial[kThreads];
  partial[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(total, partial[0]);
}

// One pyramid level: block (i, j) of the output is the union of the 2 x 2 input blocks
// (2i.., 2j..), whose minima and maxima are lo_in / hi_in (for the first level both are z).
template <typename T>
__global__ void level_kernel(const T* __restrict__ lo_in, const T* __restrict__ hi_in,
                             int64_t in_stride, T* __restrict__ lo, T* __restrict__ hi,
                             int64_t by, int64_t bx, double zmin, double inv_h, int rule,
                             double* count) {
  const int64_t idx = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  double n = 0.0;
  if (idx < by * bx) {
    const int64_t i = idx / bx, j = idx % bx;
    const int64_t a = 2 * i * in_stride + 2 * j, c = a + in_stride;
    const T mn = min(min(lo_in[a], lo_in[a + 1]), min(lo_in[c], lo_in[c + 1]));
    const T mx = max(max(hi_in[a], hi_in[a + 1]), max(hi_in[c], hi_in[c + 1]));
    lo[idx] = mn;
    hi[idx] = mx;
    if (count) n = boxes_in_block(double(mn), double(mx), zmin, inv_h, rule);
  }
  if (count) block_add(n, count);
}

// Any size s: one CUDA block per box, its threads stride over the s x s values.
template <typename T>
__global__ void direct_kernel(const T* __restrict__ z, int64_t row_stride, int64_t s, int64_t bx,
                              double zmin, double inv_h, int rule, double* count) {
  const int64_t i = blockIdx.x / bx, j = blockIdx.x % bx;
  const T* origin = z + i * s * row_stride + j * s;
  T mn = origin[0], mx = origin[0];
  for (int64_t e = threadIdx.x; e < s * s; e += kThreads) {
    const T v = origin[(e / s) * row_stride + e % s];
    mn = min(mn, v);
    mx = max(mx, v);
  }
  __shared__ T lo[kThreads], hi[kThreads];
  lo[threadIdx.x] = mn;
  hi[threadIdx.x] = mx;
  __syncthreads();
  for (int h = kThreads / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h) {
      lo[threadIdx.x] = min(lo[threadIdx.x], lo[threadIdx.x + h]);
      hi[threadIdx.x] = max(hi[threadIdx.x], hi[threadIdx.x + h]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(count, boxes_in_block(double(lo[0]), double(hi[0]), zmin, inv_h, rule));
}

__global__ void add_kernel(double* target, double value) { *target += value; }

unsigned grid_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

}  // namespace

template <typename T>
void box_counts(const T* z, int64_t ny, int64_t nx, int64_t row_stride, int64_t oy, int64_t ox,
                const int64_t* sizes, const double* inv_heights, int64_t n_sizes, double zmin,
                int rule, double* counts, double* n_blocks, std::uintptr_t stream) {
  check_box_counts_args(ny, nx, row_stride, oy, ox, sizes, n_sizes, rule);
  const auto st = reinterpret_cast<cudaStream_t>(stream);
  const int64_t h = std::max<int64_t>(0, ny - oy), w = std::max<int64_t>(0, nx - ox);
  if (h == 0 || w == 0) return;
  const T* origin = z + oy * row_stride + ox;

  const int64_t top = pyramid_top(sizes, n_sizes, h, w);
  T* buf = nullptr;  // level 1 at the front, the levels above it ping-pong behind it
  const int64_t n1 = (h >> 1) * (w >> 1), n2 = (h >> 2) * (w >> 2);
  if (top >= 1) check(cudaMallocAsync(reinterpret_cast<void**>(&buf), sizeof(T) * 2 * (n1 + n2), st), "box_counts: cudaMallocAsync");
  T* lev[2][2] = {{buf, buf + n1}, {buf + 2 * n1, buf + 2 * n1 + n2}};
  for (int64_t k = 1; k <= top; ++k) {
    const int64_t by = h >> k, bx = w >> k;
    int64_t i = -1;
    for (int64_t q = 0; q < n_sizes; ++q)
      if (sizes[q] == (int64_t(1) << k)) i = q;
    const T* lo_in = k == 1 ? origin : lev[k % 2][0];
    const T* hi_in = k == 1 ? origin : lev[k % 2][1];
    const int64_t in_stride = k == 1 ? row_stride : (w >> (k - 1));
    T* const* out = lev[(k + 1) % 2];
    if (by * bx > 0)
      level_kernel<T><<<grid_for(by * bx), kThreads, 0, st>>>(lo_in, hi_in, in_stride, out[0], out[1], by, bx,
                                                             zmin, i >= 0 ? inv_heights[i] : 0.0, rule,
                                                             i >= 0 ? counts + i : nullptr);
    check(cudaGetLastError(), "box_counts: level kernel launch");
    if (i >= 0) add_kernel<<<1, 1, 0, st>>>(n_blocks + i, double(by * bx));
  }
  for (int64_t i = 0; i < n_sizes; ++i) {
    const int64_t s = sizes[i], by = h / s, bx = w / s;
    if (by == 0 || bx == 0 || (s > 1 && dyadic_level(s) >= 0)) continue;
    direct_kernel<T><<<static_cast<unsigned>(by * bx), kThreads, 0, st>>>(origin, row_stride, s, bx, zmin,
                                                                         inv_heights[i], rule, counts + i);
    check(cudaGetLastError(), "box_counts: direct kernel launch");
    add_kernel<<<1, 1, 0, st>>>(n_blocks + i, double(by * bx));
  }
  if (buf) check(cudaFreeAsync(buf, st), "box_counts: cudaFreeAsync");
}

#define PE_BOXCOUNT_INSTANTIATE(T)                                                          \
  template void box_counts<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t,        \
                              const int64_t*, const double*, int64_t, double, int, double*, \
                              double*, std::uintptr_t);
PE_BOXCOUNT_INSTANTIATE(float)
PE_BOXCOUNT_INSTANTIATE(double)
PE_BOXCOUNT_INSTANTIATE(uint8_t)
#undef PE_BOXCOUNT_INSTANTIATE

}  // namespace pyengine::cuda
