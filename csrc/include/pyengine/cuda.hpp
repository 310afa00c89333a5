// CUDA versions of the kernels: the same signatures as the CPU ones, with device pointers
// (e.g. from CuPy arrays) and a stream. CUDA errors are thrown as std::runtime_error.
#pragma once
#include <cstdint>
#include <string>

#include "pyengine/tail_stable.hpp"

namespace pyengine::cuda {

// Number of usable devices; when 0, `why` says what the runtime reported.
int device_count(std::string* why);

// See pyengine::lag_band; x, lags and out live on the device.
template <typename T>
void lag_band(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride,
              const int64_t* lags, int64_t n_lags, double* out, std::uintptr_t stream);

// See pyengine::box_counts; z, counts and n_blocks live on the device, sizes and
// inv_heights on the host.
template <typename T>
void box_counts(const T* z, int64_t ny, int64_t nx, int64_t row_stride, int64_t oy, int64_t ox,
                const int64_t* sizes, const double* inv_heights, int64_t n_sizes, double zmin,
                int rule, double* counts, double* n_blocks, std::uintptr_t stream);

}  // namespace pyengine::cuda

namespace pyengine {
struct PairSource;  // pyengine/pairs.hpp
}

namespace pyengine::cuda {

// See pyengine::pair_bin; the sources' data, edges and out live on the device.
void pair_bin(PairSource key, PairSource value, int64_t n, const double* edges, int64_t n_bins,
              bool log_uniform, double* out, std::uintptr_t stream);

// See pyengine::tail_sums and pyengine::tail_norms; x and the outputs live on the device,
// k1 on the host.
template <typename T>
void tail_sums(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, const int64_t* k1,
               int64_t n_k1, double* stats, std::uintptr_t stream);
template <typename T>
void tail_norms(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, const int64_t* k1,
                int64_t n_k1, double* row_sq, double* group_sq, std::uintptr_t stream);

// See pyengine::stable_loglik; x, sums, logp (may be null) and the arrays of row live on
// the device.
template <typename T>
void stable_loglik(const T* x, int64_t n, double loc, double scale, const StableRow& row, double* sums,
                   double* logp, std::uintptr_t stream);

}  // namespace pyengine::cuda
