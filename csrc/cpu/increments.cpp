#include "pyengine/increments.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "lane_fft.hpp"
#include "pyengine/common.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {
namespace {

using namespace lane_fft;

int64_t pow2_at_least(int64_t n) {
  int64_t p = 8;
  while (p < n) p *= 2;
  return p;
}

// sin and cos of pi * j / n for integers j and n > 0, to about an ulp whatever j: the angle
// is folded into [0, pi/4] in integers before any rounding.
void sincospi(int64_t j, int64_t n, double* s, double* c) {
  int64_t r = j % (2 * n);
  if (r < 0) r += 2 * n;
  double s_sign = 1.0, c_sign = 1.0;
  if (r >= n) {  // pi + a
    r -= n;
    s_sign = -s_sign;
    c_sign = -c_sign;
  }
  if (2 * r > n) {  // pi - a
    r = n - r;
    c_sign = -c_sign;
  }
  const bool swap = 4 * r > n;  // pi/2 - a: sin and cos trade places
  const double angle = M_PI * static_cast<double>(swap ? n - 2 * r : 2 * r) / static_cast<double>(2 * n);
  const double sa = std::sin(angle), ca = std::cos(angle);
  *s = s_sign * (swap ? ca : sa);
  *c = c_sign * (swap ? sa : ca);
}

// The FFT grids of a window of T rows: the weights' (nfft_y >= 2T - 1, so that their
// autocorrelation does not wrap around, and a multiple of the caller's nfft) and the
// increments' (nfft = 2 md points), with
// - the spectrum of the box 1{t < T} on the weights' grid, B(k) = sum_{t<T} W^(kt)
//   = sin(pi k T / N) / sin(pi k / N) e^(-i pi k (T - 1) / N), k = 0 .. N/2 (re, im);
// - per increments' bin k <= md, the two factors that give the increments' transform from
//   the weights' (see add_periodograms): a_k = v^-k - 1 and c_k = v^(kn) - B_n(k) / n,
//   v = exp(-2 pi i / nfft), n = T - 1, B_n the box of the n increments on that grid.
struct Grids {
  Tables y;
  int64_t md;
  std::vector<double> box, from_weights;

  Grids(int64_t n_rows, int64_t nfft)
      : y(std::max(pow2_at_least(2 * n_rows - 1), nfft)), md(nfft / 2), box(2 * (y.m + 1)),
        from_weights(4 * (md + 1)) {
    box_spectrum(n_rows, 2 * y.m, box.data());
    const int64_t n = n_rows - 1;
    std::vector<double> inc_box(2 * (md + 1));
    box_spectrum(n, nfft, inc_box.data());
    for (int64_t k = 0; k <= md; ++k) {
      double s_half, c_half, s_k, c_k, s_kn, c_kn;
      sincospi(k, nfft, &s_half, &c_half);
      sincospi(2 * k, nfft, &s_k, &c_k);
      sincospi(2 * k * n, nfft, &s_kn, &c_kn);
      double* f = from_weights.data() + 4 * k;
      f[0] = -2.0 * s_half * s_half;  // cos(2a) - 1 without the cancellation
      f[1] = s_k;
      f[2] = c_kn - inc_box[2 * k] / static_cast<double>(n);
      f[3] = -s_kn - inc_box[2 * k + 1] / static_cast<double>(n);
    }
  }

  // B(k) = sum_{t<len} W^(kt), W = exp(-2 pi i / n_points), k = 0 .. n_points / 2, into out (re, im).
  static void box_spectrum(int64_t len, int64_t n_points, double* out) {
    out[0] = static_cast<double>(len);
    out[1] = 0.0;
    for (int64_t k = 1; k <= n_points / 2; ++k) {
      double s_num, c_num, s_den, c_den, s_phase, c_phase;
      sincospi(k * len, n_points, &s_num, &c_num);
      sincospi(k, n_points, &s_den, &c_den);
      sincospi(k * (len - 1), n_points, &s_phase, &c_phase);
      const double ratio = s_num / s_den;
      out[2 * k] = ratio * c_phase;
      out[2 * k + 1] = -ratio * s_phase;
    }
  }
};

// Up to 2L columns of the window as two lane groups, lo (the first L) and hi (the rest), so
// that each row visit reads more of a cache line (16 float32 columns: a whole line with
// AVX-512), as spectral_sums does.
template <int L, typename T>
struct Columns {
  const T* x;
  int64_t row_stride, lo_lanes, hi_lanes;

  struct Two {
    vec<L> lo, hi;
  };
  PE_INLINE Two row(int64_t t) const {
    const T* r = x + t * row_stride;
    return {load_lanes<L>(r, lo_lanes), hi_lanes > 0 ? load_lanes<L>(r + L, hi_lanes) : vec<L>{}};
  }
};

template <int L>
struct TwoComplex {
  cv<L> lo, hi;
};

// The weights u(t) = x(t) - x(0), t < T (zero after), read as the sequences
// z(k) = u(2k) + i u(2k + 1) of the first pass; each t is read once, and u summed on the way
// (for the mean). The first pass reads the rows from memory: they are prefetched.
template <int L, typename T>
struct Weights {
  using Two = typename Columns<L, T>::Two;
  Columns<L, T> cols;
  int64_t n_rows;
  Two ref, sum;

  PE_INLINE Two at(int64_t t) {
    if (t >= n_rows) return {vec<L>{}, vec<L>{}};
    __builtin_prefetch(cols.x + (t + kPrefetchRows) * cols.row_stride);  // never faults, even past the end
    Two u = cols.row(t);
    u.lo -= ref.lo;
    u.hi -= ref.hi;
    sum.lo += u.lo;
    sum.hi += u.hi;
    return u;
  }
  PE_INLINE TwoComplex<L> pair(int64_t k) {
    const Two even = at(2 * k), odd = at(2 * k + 1);
    return {{even.lo, odd.lo}, {even.hi, odd.hi}};
  }
};

// One thread's share: its columns' sums, added to the totals after the parallel region.
struct Sums {
  std::vector<double> power, power_sq, acf, acf_sq;
  int64_t n_moving = 0;
};

// The increments' periodogram from the weights' transform U (no transform of their own).
// With u(t) = x(t) - x(0), zero from t = T on, u(0) = 0 and n = T - 1 increments
// d(t) = u(t + 1) - u(t) - u(n) / n, the sums telescope: on the increments' grid v = W^r
// (r = nfft_y / nfft), D(k) = a_k U(rk) + u(n) c_k with a_k, c_k from Grids. The product
// with a_k, small at low k where U is large, loses about one digit of U's float64.
template <int L>
PE_INLINE vec<L> increment_power(cv<L> u, vec<L> last, const double* f, double inv_n) {
  const cv<L> d = {u.re * f[0] - u.im * f[1] + last * f[2], u.re * f[1] + u.im * f[0] + last * f[3]};
  return norm2(d) * inv_n;
}

// power[k] += sum over the lanes of both transforms of P = |D[k]|^2 / n, power_sq of P^2.
template <int L>
PE_INLINE void add_periodograms(const cv<L>* za, const cv<L>* zb, vec<L> last_a, vec<L> last_b, const Grids& grids,
                                double inv_n, Sums* sums) {
  const int64_t md = grids.md, r = grids.y.m / md;
  const double* f = grids.from_weights.data();
  const auto add = [&](int64_t k, cv<L> ua, cv<L> ub) {
    const vec<L> pa = increment_power(ua, last_a, f + 4 * k, inv_n), pb = increment_power(ub, last_b, f + 4 * k, inv_n);
    sums->power[k] += lane_sum<L>(pa + pb);
    sums->power_sq[k] += lane_sum<L>(pa * pa + pb * pb);
  };
  const auto conj = [](cv<L> z) { return cv<L>{z.re, -z.im}; };
  for (int64_t k = 0; k <= md / 2; ++k) {
    const BinPair<L> a = real_bins(za, grids.y, r * k), b = real_bins(zb, grids.y, r * k);
    add(k, a.at_k, b.at_k);
    if (k != md - k) add(md - k, conj(a.conj_at_mk), conj(b.conj_at_mk));  // U(m_y - rk) = U(r (md - k))
  }
}

template <int L>
PE_INLINE void put(cv<L>* s, int64_t n, vec<L> v) {
  if (n & 1)
    s[n >> 1].im = v;
  else
    s[n >> 1].re = v;
}

// The autocorrelation N c(t), t <= max_lag, of y = u - mu from z = FFT(u) (bit-reversed):
// Y = U - mu B (the mean taken out of the spectrum), S = |Y|^2 with S(0) = 0 (exact for a
// mean-free y), and c = FFT(S) / N, S being real and even (so is c). Scratch `s` holds the
// even extension of S as the complex sequence s(2j) + i s(2j + 1), j < m, then its FFT.
// c is written over z (which is no longer needed), as max_lag + 1 lane vectors.
template <int L>
PE_INLINE vec<L>* autocorrelation(cv<L>* z, vec<L> mu, const Grids& grids, cv<L>* s, int64_t max_lag) {
  const Tables& tables = grids.y;
  const int64_t m = tables.m;
  const double* box = grids.box.data();
  for (int64_t k = 0; k <= m / 2; ++k) {
    const BinPair<L> b = real_bins(z, tables, k);
    const cv<L> y_k = {b.at_k.re - mu * box[2 * k], b.at_k.im - mu * box[2 * k + 1]};
    const cv<L> conj_y_mk = {b.conj_at_mk.re - mu * box[2 * (m - k)], b.conj_at_mk.im + mu * box[2 * (m - k) + 1]};
    const vec<L> s_mk = norm2(conj_y_mk);
    put(s, m - k, s_mk);
    if (k == 0) {
      put(s, 0, vec<L>{});
    } else {
      const vec<L> s_k = norm2(y_k);
      put(s, k, s_k);
      put(s, 2 * m - k, s_k);
      put(s, m + k, s_mk);
    }
  }
  fft_in_place(s, tables);
  vec<L>* c = reinterpret_cast<vec<L>*>(z);
  for (int64_t k = 0; k <= m / 2; ++k) {
    if (k > max_lag && m - k > max_lag) continue;
    const BinPair<L> b = real_bins(s, tables, k);
    if (k <= max_lag) c[k] = b.at_k.re;
    if (m - k <= max_lag) c[m - k] = b.conj_at_mk.re;  // the bins are real
  }
  return c;
}

// acf[t] += sum over lanes of r(t) = c(t) / c(0) for the moving lanes (c(0) > 0), acf_sq of r^2.
template <int L>
PE_INLINE void add_autocorrelations(const vec<L>* c_lo, const vec<L>* c_hi, int64_t max_lag, Sums* sums) {
  const vec<L> zero{}, one = zero + 1.0;
  const auto moving_lo = c_lo[0] > zero, moving_hi = c_hi[0] > zero;
  const vec<L> inv_lo = moving_lo ? one / c_lo[0] : zero, inv_hi = moving_hi ? one / c_hi[0] : zero;
  int64_t moving = 0;
  for (int l = 0; l < L; ++l) moving += (moving_lo[l] != 0) + (moving_hi[l] != 0);
  sums->n_moving += moving;
  sums->acf[0] += static_cast<double>(moving);  // r(0) = 1 exactly
  sums->acf_sq[0] += static_cast<double>(moving);
  for (int64_t t = 1; t <= max_lag; ++t) {
    const vec<L> r_lo = c_lo[t] * inv_lo, r_hi = c_hi[t] * inv_hi;
    sums->acf[t] += lane_sum<L>(r_lo + r_hi);
    sums->acf_sq[t] += lane_sum<L>(r_lo * r_lo + r_hi * r_hi);
  }
}

// One batch of columns x[:, 0:lanes) (at most 2L), in two lane groups: the weights'
// transforms (whose first pass reads the rows from memory) give the increments' periodogram
// and then the autocorrelation. `buffer` holds 3 m_y complex lane vectors.
template <typename T>
struct Batch {
  template <int L>
  static PE_INLINE void run(const T* x, int64_t row_stride, int64_t lanes, int64_t n_rows, int64_t max_lag,
                            const Grids& grids, void* buffer, Sums* sums) {
    const int64_t my = grids.y.m;
    cv<L>* y_lo = static_cast<cv<L>*>(buffer);
    cv<L>* y_hi = y_lo + my;
    cv<L>* scratch = y_hi + my;
    const Columns<L, T> cols{x, row_stride, std::min<int64_t>(L, lanes), std::max<int64_t>(0, lanes - L)};
    const auto first = cols.row(0), last = cols.row(n_rows - 1);
    Weights<L, T> u{cols, n_rows, first, {vec<L>{}, vec<L>{}}};
    first_pass(u, y_lo, y_hi, grids.y);
    other_passes(y_lo, grids.y);
    other_passes(y_hi, grids.y);
    add_periodograms(y_lo, y_hi, last.lo - first.lo, last.hi - first.hi, grids, 1.0 / static_cast<double>(n_rows - 1),
                     sums);
    const double rows = static_cast<double>(n_rows);
    const vec<L>* c_lo = autocorrelation(y_lo, u.sum.lo / rows, grids, scratch, max_lag);
    const vec<L>* c_hi = autocorrelation(y_hi, u.sum.hi / rows, grids, scratch, max_lag);
    add_autocorrelations<L>(c_lo, c_hi, max_lag, sums);
  }
};
template <typename T>
using Kernels =
    LaneDispatch<Batch<T>, const T*, int64_t, int64_t, int64_t, int64_t, const Grids&, void*, Sums*>;

}  // namespace

template <typename T>
int64_t increment_sums(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, int64_t max_lag,
                       int64_t nfft, double* power, double* power_sq, double* acf, double* acf_sq, int n_threads,
                       int lanes) {
  require(n_rows >= 2, "increment_sums: a window needs at least 2 rows");
  require(n_cols >= 0, "increment_sums: negative size");
  require(row_stride >= n_cols, "increment_sums: row_stride must be >= n_cols");
  require(nfft >= 8 && (nfft & (nfft - 1)) == 0, "increment_sums: nfft must be a power of two >= 8");
  require(nfft >= n_rows - 1, "increment_sums: nfft must be >= n_rows - 1");
  require(max_lag >= 0 && max_lag < n_rows, "increment_sums: max_lag must be in [0, n_rows - 1]");
  const auto kernel = Kernels<T>::pick(lanes, "increment_sums");
  const ColumnBatches batches(x, n_cols, row_stride, 2 * kernel.lanes);
  const int64_t n_batches = batches.count();
  if (n_batches == 0) return 0;
  const Grids grids(n_rows, nfft);
  const int64_t n_bins = grids.md + 1, n_lags = max_lag + 1;
  int threads = 1;
#ifdef _OPENMP
  threads = static_cast<int>(std::min<int64_t>(n_threads > 0 ? n_threads : omp_get_max_threads(), n_batches));
#endif
  std::vector<Sums> partials(threads);
  for (Sums& part : partials) {
    part.power.assign(n_bins, 0.0);
    part.power_sq.assign(n_bins, 0.0);
    part.acf.assign(n_lags, 0.0);
    part.acf_sq.assign(n_lags, 0.0);
  }
  const int64_t vectors = 3 * grids.y.m;  // complex lane vectors per thread
  const LaneBuffers buffers(threads, vectors * 2 * kernel.lanes * sizeof(double));
#pragma omp parallel num_threads(threads)
  {
    int id = 0;
#ifdef _OPENMP
    id = omp_get_thread_num();
#endif
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n_batches; ++b) {
      const int64_t c0 = batches.start(b);
      kernel.fn(x + c0, row_stride, batches.start(b + 1) - c0, n_rows, max_lag, grids, buffers.get(id),
                &partials[id]);
    }
  }
  int64_t n_moving = 0;
  for (const Sums& part : partials) {
    for (int64_t k = 0; k < n_bins; ++k) {
      power[k] += part.power[k];
      power_sq[k] += part.power_sq[k];
    }
    for (int64_t t = 0; t < n_lags; ++t) {
      acf[t] += part.acf[t];
      acf_sq[t] += part.acf_sq[t];
    }
    n_moving += part.n_moving;
  }
  return n_moving;
}

template int64_t increment_sums<float>(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, double*, double*,
                                       double*, double*, int, int);
template int64_t increment_sums<double>(const double*, int64_t, int64_t, int64_t, int64_t, int64_t, double*,
                                        double*, double*, double*, int, int);

}  // namespace pyengine
