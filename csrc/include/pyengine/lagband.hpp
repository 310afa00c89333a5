// Lag band: exact squared displacements at a set of lags, for every origin.
#pragma once
#include <cstdint>

namespace pyengine {

// out[l * n_rows + t] += sum_c (x[t + lags[l], c] - x[t, c])^2  for 0 <= t < n_rows - lags[l].
//
// x is row-major with n_rows rows of n_cols contiguous values, row_stride elements apart
// (row_stride >= n_cols, so a column block of a larger array is read in place). out holds
// n_lags x n_rows doubles and is added to, so column blocks accumulate into one band.
// Entries with t >= n_rows - lags[l] are left untouched. n_threads <= 0 means all.
// Each thread beyond the first needs a band of its own (n_lags x n_rows doubles), added to out
// in thread order at the end, so the result does not change from run to run.
template <typename T>
void lag_band(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride,
              const int64_t* lags, int64_t n_lags, double* out, int n_threads);

}  // namespace pyengine
