// Spectral MSD sums of one window: FFT cross spectra of displacements, summed over columns.
#pragma once
#include <cstdint>

namespace pyengine {

// With y_c(t) = double(x[t, c]) - double(x[0, c]) for t < n_rows (zero after), for every
// column c < n_cols:
//   A_c = FFT_nfft(y_c),  B_c = FFT_nfft(y_c restricted to t < n_origins),
//   cross[k] += sum_c conj(B_c[k]) * A_c[k]   for k = 0 .. nfft/2  (complex, re/im interleaved)
//   sq[t]    += sum_c y_c(t)^2                 for t < n_rows.
// When n_origins == n_rows, B = A and cross is the summed power spectrum (one FFT per column).
//
// x is row-major with row_stride >= n_cols elements between rows (a column block read in
// place). nfft must be a power of two >= 8 and >= n_rows. The FFTs are our own: columns
// run side by side in the float64 lanes of a SIMD register (8 with AVX-512, 4 with AVX2,
// 2 otherwise; `lanes` = 0 picks the widest this CPU runs, 2/4/8 force one, for tests), so
// nothing is transposed or shuffled. n_threads <= 0 means all; the sums are added in thread
// order, so a given thread count and lane count always give the same bits.
template <typename T>
void spectral_sums(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, int64_t n_origins,
                   int64_t nfft, double* cross, double* sq, int n_threads, int lanes = 0);

}  // namespace pyengine
