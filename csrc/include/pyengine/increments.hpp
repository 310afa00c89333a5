// Increment spectra and weight autocorrelations of one window, summed over columns.
#pragma once
#include <cstdint>

namespace pyengine {

// For every column c < n_cols of the window x (T = n_rows >= 2 rows), in float64:
//
//   d_c(t) = x[t+1, c] - x[t, c] - (x[T-1, c] - x[0, c]) / (T - 1),   t < T - 1
//   P_c(k) = |FFT_nfft(d_c)(k)|^2 / (T - 1)            (zero-padded; k = 0 .. nfft/2)
//   power[k] += sum_c P_c(k),   power_sq[k] += sum_c P_c(k)^2
//
//   y_c(t) = x[t, c] - mean over the T rows,  c_c(k) = sum_t y_c(t) y_c(t + k)
//   for the columns with c_c(0) > 0 (those that move in the window):
//   acf[k] += sum_c c_c(k) / c_c(0),  acf_sq[k] += sum_c (c_c(k) / c_c(0))^2,   k <= max_lag
//
// and returns the number of moving columns. nfft (the grid of the increment spectra) must
// be a power of two >= max(8, T - 1); c_c comes from |FFT(y_c)|^2 on the next power of two
// >= 2T - 1 and >= nfft (no wrap-around), transformed back; FFT(d_c) follows from that
// same transform of x - x[0] (the increments telescope), with no transform of its own.
// 0 <= max_lag <= T - 1. x is row-major with
// row_stride >= n_cols elements between rows (a column block read in place).
//
// The FFTs are those of spectral_sums (csrc/cpu/lane_fft.hpp): columns side by side in the
// float64 lanes of a SIMD register (8 with AVX-512, 4 with AVX2, 2 otherwise; `lanes` = 0
// picks the widest this CPU runs, 2/4/8 force one, for tests). y is transformed as
// x - x[0] with the mean taken out of the spectrum, so the data are read from memory once.
// n_threads <= 0 means all; the sums are added in thread order, so a given thread count and
// lane count always give the same bits.
template <typename T>
int64_t increment_sums(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, int64_t max_lag,
                       int64_t nfft, double* power, double* power_sq, double* acf, double* acf_sq, int n_threads,
                       int lanes = 0);

}  // namespace pyengine
