// Spectral MSD input: displacements from a reference row, one contiguous row per parameter.
#pragma once
#include <cstdint>

namespace pyengine {

// y[c * y_stride + t] = double(x[t, c]) - double(x[0, c])  for t < n_rows, c < n_cols;
// sq[t] += sum_c y[c, t]^2.
//
// x is row-major with n_rows rows of n_cols contiguous values, row_stride elements apart
// (a column block of a larger array, read in place). y has n_cols rows of y_stride >= n_rows
// doubles: time runs along its rows, ready for FFTs; entries t >= n_rows are left untouched
// (they hold the FFT's zero padding). sq holds n_rows doubles and is added to.
// n_threads <= 0 means all.
template <typename T>
void transposed_displacements(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride,
                              double* y, int64_t y_stride, double* sq, int n_threads);

}  // namespace pyengine
