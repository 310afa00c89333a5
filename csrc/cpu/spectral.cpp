#include "pyengine/spectral.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "pyengine/common.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {
namespace {

// Eight float64 lanes: eight columns are transformed side by side, each lane running the
// same scalar FFT, so no data is ever shuffled between lanes. One AVX-512 register; the
// AVX2 and SSE2 clones of the hot functions split it into two or four.
typedef double vd __attribute__((vector_size(64)));
constexpr int64_t kLanes = 8;
// Rows of a column block are pages apart: the first pass prefetches this many rows ahead,
// so TLB walks overlap (measured on 8192 x 16384 float32: the strided read is 1.5x faster).
constexpr int64_t kPrefetchRows = 32;
// Sub-transforms of at most this many complex lanes (16 KiB) finish all passes in L1.
constexpr int64_t kL1Block = 128;

#define PE_INLINE __attribute__((always_inline)) inline

struct cv {
  vd re, im;
};
PE_INLINE cv operator+(cv a, cv b) { return {a.re + b.re, a.im + b.im}; }
PE_INLINE cv operator-(cv a, cv b) { return {a.re - b.re, a.im - b.im}; }
PE_INLINE cv times(cv a, const double* w) { return {a.re * w[0] - a.im * w[1], a.re * w[1] + a.im * w[0]}; }
PE_INLINE cv times_minus_i(cv a) { return {a.im, -a.re}; }
PE_INLINE double lane_sum(vd v) {
  double s = 0.0;
  for (int64_t l = 0; l < kLanes; ++l) s += v[l];
  return s;
}

// Twiddles W^k = exp(-2 pi i k / nfft) for k < m = nfft / 2 (re, im interleaved), and the
// bit reversal of [0, m), which is where the in-place FFT leaves entry k.
struct Tables {
  int64_t m;
  std::vector<double> w;
  std::vector<int32_t> rev;

  explicit Tables(int64_t nfft) : m(nfft / 2), w(nfft), rev(m) {
    for (int64_t k = 0; k < m; ++k) {
      const double angle = -2.0 * M_PI * static_cast<double>(k) / static_cast<double>(nfft);
      w[2 * k] = std::cos(angle);
      w[2 * k + 1] = std::sin(angle);
    }
    int bits = 0;
    while ((int64_t{1} << bits) < m) ++bits;
    for (int64_t k = 0; k < m; ++k) {
      int32_t r = 0;
      for (int b = 0; b < bits; ++b) r |= static_cast<int32_t>((k >> b) & 1) << (bits - 1 - b);
      rev[k] = r;
    }
  }
};

template <typename T>
PE_INLINE vd load_lanes(const T* row, int64_t lanes) {
  if (lanes == kLanes) {
    typedef T vt __attribute__((vector_size(kLanes * sizeof(T))));
    vt v;
    std::memcpy(&v, row, sizeof v);
    return __builtin_convertvector(v, vd);
  }
  vd v{};
  for (int64_t l = 0; l < lanes; ++l) v[l] = static_cast<double>(row[l]);
  return v;
}

// Two lane vectors of displacements y(t) = x(t) - x(0) per row, read as the complex
// sequences z(k) = y(2k) + i y(2k + 1) of two half-length FFTs, zero from t = len on.
// The two are either 16 adjacent columns (lo: the first eight), so that each row visit
// uses whole cache lines, or (with origins < len) the same eight columns twice, hi cut
// to t < origins: the two transforms of a cross spectrum. Each t is read once per
// transform pair, so the squared norms are summed on the way.
template <typename T>
struct Displacements {
  const T* x;
  int64_t row_stride, lanes, len, origins;  // origins == len: two column groups
  double* sq;
  vd ref_lo, ref_hi;

  Displacements(const T* x_, int64_t row_stride_, int64_t lanes_, int64_t len_, int64_t origins_, double* sq_)
      : x(x_), row_stride(row_stride_), lanes(lanes_), len(len_), origins(origins_), sq(sq_),
        ref_lo(load_lanes(x_, lo_lanes())), ref_hi(load_lanes(x_ + kLanes, hi_lanes())) {}

  bool column_pairs() const { return origins == len; }
  int64_t lo_lanes() const { return std::min(kLanes, lanes); }
  int64_t hi_lanes() const { return column_pairs() ? std::max<int64_t>(0, lanes - kLanes) : 0; }

  struct Two {
    vd lo, hi;
  };
  PE_INLINE Two at(int64_t t) const {
    if (t >= len) return {vd{}, vd{}};
    const T* row = x + t * row_stride;
    __builtin_prefetch(row + kPrefetchRows * row_stride);  // never faults, even past the end
    const vd lo = load_lanes(row, lo_lanes()) - ref_lo;
    if (!column_pairs()) {
      sq[t] += lane_sum(lo * lo);
      return {lo, t < origins ? lo : vd{}};
    }
    const vd hi = hi_lanes() > 0 ? load_lanes(row + kLanes, hi_lanes()) - ref_hi : vd{};
    sq[t] += lane_sum(lo * lo + hi * hi);
    return {lo, hi};
  }
  struct TwoComplex {
    cv lo, hi;
  };
  PE_INLINE TwoComplex pair(int64_t k) const {
    const Two even = at(2 * k), odd = at(2 * k + 1);
    return {{even.lo, odd.lo}, {even.hi, odd.hi}};
  }
};

// Two radix-2 decimation-in-frequency stages at once on a block of s = 4q entries (the
// "radix-2 squared" butterfly): 3 twiddle products per 4 points, as radix 4, while the
// output stays in plain bit-reversed order. w1 = W_s^j, w2 = W_s^2j.
PE_INLINE void butterfly(cv a0, cv a1, cv a2, cv a3, const double* w1, const double* w2, cv* p, int64_t q) {
  const cv b0 = a0 + a2, b1 = a1 + a3;
  const cv b2 = times(a0 - a2, w1), b3 = times_minus_i(times(a1 - a3, w1));
  p[0] = b0 + b1;
  p[q] = times(b0 - b1, w2);
  p[2 * q] = b2 + b3;
  p[3 * q] = times(b2 - b3, w2);
}

// One radix-2^2 pass over the block p[0, s); w holds W_nfft^k, nfft = 2m.
PE_INLINE void block_pass(cv* p, int64_t s, const double* w, int64_t m) {
  const int64_t q = s / 4, step = 2 * m / s;  // W_s^j = W_nfft^(j * step)
  for (int64_t j = 0; j < q; ++j)
    butterfly(p[j], p[j + q], p[j + 2 * q], p[j + 3 * q], w + 2 * j * step, w + 4 * j * step, p + j, q);
}

// Every remaining pass, from sub-blocks of s entries down, of the L1-sized block p[0, size).
PE_INLINE void finish_block(cv* p, int64_t size, int64_t s, const double* w, int64_t m) {
  for (; s >= 4; s /= 4)
    for (int64_t b = 0; b < size; b += s) block_pass(p + b, s, w, m);
  if (s == 2)
    for (int64_t b = 0; b < size; b += 2) {
      const cv u = p[b], v = p[b + 1];
      p[b] = u + v;
      p[b + 1] = u - v;
    }
}

// The first pass of both transforms reads the columns straight from x (no separate load
// pass): za and zb get the lo and hi sequences after two radix-2 stages.
template <typename T>
PE_MULTIVERSION void first_pass(const Displacements<T>& y, cv* za, cv* zb, const Tables& tables) {
  const int64_t q = tables.m / 4;
  const double* w = tables.w.data();
  for (int64_t j = 0; j < q; ++j) {
    const auto a0 = y.pair(j), a1 = y.pair(j + q), a2 = y.pair(j + 2 * q), a3 = y.pair(j + 3 * q);
    butterfly(a0.lo, a1.lo, a2.lo, a3.lo, w + 4 * j, w + 8 * j, za + j, q);
    butterfly(a0.hi, a1.hi, a2.hi, a3.hi, w + 4 * j, w + 8 * j, zb + j, q);
  }
}

// The remaining passes: z becomes the FFT_m of its sequence, in bit-reversed order.
// Passes over sub-blocks larger than L1 stream through the whole buffer, smaller ones
// finish one L1 block at a time.
PE_MULTIVERSION void other_passes(cv* z, const Tables& tables) {
  const int64_t m = tables.m;
  const double* w = tables.w.data();
  int64_t s = m / 4;
  for (; s > kL1Block; s /= 4)
    for (int64_t b = 0; b < m; b += s) block_pass(z + b, s, w, m);
  const int64_t block = std::min(kL1Block, m);
  for (int64_t b = 0; b < m; b += block) finish_block(z + b, block, s, w, m);
}

// The real FFT of y at bins k and m - k from the half-length complex FFT z:
// Y[k] = E[k] + W^k O[k] with E, O the FFTs of the even and odd samples; conj(Y[m - k]) =
// E[k] - W^k O[k]. Returns {Y[k], conj(Y[m - k])}.
struct BinPair {
  cv at_k, conj_at_mk;
};
PE_INLINE BinPair real_bins(const cv* z, const Tables& tables, int64_t k) {
  const int64_t m = tables.m;
  const cv zk = z[tables.rev[k]], zc = z[tables.rev[(m - k) & (m - 1)]];
  const cv e = {0.5 * (zk.re + zc.re), 0.5 * (zk.im - zc.im)};
  const cv o = {0.5 * (zk.im + zc.im), 0.5 * (zc.re - zk.re)};
  const cv wo = times(o, tables.w.data() + 2 * k);
  return {e + wo, e - wo};
}

PE_INLINE vd norm2(cv a) { return a.re * a.re + a.im * a.im; }

// acc[k] += sum over the lanes of both transforms of |Y[k]|^2 (re only: the power spectrum
// is real). One lane sum per bin for both.
PE_MULTIVERSION void add_power(const cv* za, const cv* zb, const Tables& tables, double* acc) {
  const int64_t m = tables.m;
  for (int64_t k = 0; k <= m / 2; ++k) {
    const BinPair a = real_bins(za, tables, k), b = real_bins(zb, tables, k);
    acc[2 * k] += lane_sum(norm2(a.at_k) + norm2(b.at_k));
    if (k != m - k) acc[2 * (m - k)] += lane_sum(norm2(a.conj_at_mk) + norm2(b.conj_at_mk));
  }
}

// acc[k] += sum over lanes of conj(B[k]) A[k] (re, im interleaved).
PE_MULTIVERSION void add_cross(const cv* za, const cv* zb, const Tables& tables, double* acc) {
  const int64_t m = tables.m;
  for (int64_t k = 0; k <= m / 2; ++k) {
    const BinPair a = real_bins(za, tables, k), b = real_bins(zb, tables, k);
    acc[2 * k] += lane_sum(b.at_k.re * a.at_k.re + b.at_k.im * a.at_k.im);
    acc[2 * k + 1] += lane_sum(b.at_k.re * a.at_k.im - b.at_k.im * a.at_k.re);
    if (k != m - k) {  // conj(B) A at m - k = conj(conj(b') a') with the conjugated bins b', a'
      const cv ac = a.conj_at_mk, bc = b.conj_at_mk;
      acc[2 * (m - k)] += lane_sum(bc.re * ac.re + bc.im * ac.im);
      acc[2 * (m - k) + 1] -= lane_sum(bc.re * ac.im - bc.im * ac.re);
    }
  }
}

// The columns of each transform pair: `width` at a time, except that the first batch ends
// where rows reach a cache line boundary, so that the others read whole lines (NumPy
// aligns arrays to 16 bytes only: unaligned 16-column float32 batches measured 1.15x slower).
class ColumnBatches {
 public:
  template <typename T>
  ColumnBatches(const T* x, int64_t n_cols, int64_t row_stride, int64_t width) : n_cols_(n_cols), width_(width) {
    const auto address = reinterpret_cast<uintptr_t>(x);
    if (address % sizeof(T) == 0 && (row_stride * sizeof(T)) % kLine == 0)
      lead_ = std::min<int64_t>(n_cols, (kLine - address % kLine) % kLine / sizeof(T));
  }
  int64_t count() const { return (lead_ > 0) + (n_cols_ - lead_ + width_ - 1) / width_; }
  int64_t start(int64_t batch) const {
    const int64_t start = lead_ > 0 ? (batch == 0 ? 0 : lead_ + (batch - 1) * width_) : batch * width_;
    return std::min(start, n_cols_);
  }

 private:
  static constexpr int64_t kLine = 64;
  int64_t n_cols_, width_, lead_ = 0;
};

// One thread's share: its columns' sums, added to the totals after the parallel region.
struct Partial {
  std::vector<double> cross, sq;
};

// Transform buffers for every thread, 64-byte aligned as the lane vectors need (which
// std::vector does not promise), allocated before the parallel region so that a failure
// throws here rather than inside it.
class LaneBuffers {
 public:
  explicit LaneBuffers(int64_t n) : data_(static_cast<cv*>(std::aligned_alloc(64, n * sizeof(cv)))) {
    if (data_ == nullptr) throw std::bad_alloc();
  }
  ~LaneBuffers() { std::free(data_); }
  LaneBuffers(const LaneBuffers&) = delete;
  LaneBuffers& operator=(const LaneBuffers&) = delete;
  cv* get(int64_t offset) const { return data_ + offset; }

 private:
  cv* data_;
};

}  // namespace

template <typename T>
void spectral_sums(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, int64_t n_origins,
                   int64_t nfft, double* cross, double* sq, int n_threads) {
  require(n_rows >= 0 && n_cols >= 0, "spectral_sums: negative size");
  require(row_stride >= n_cols, "spectral_sums: row_stride must be >= n_cols");
  require(nfft >= 8 && (nfft & (nfft - 1)) == 0, "spectral_sums: nfft must be a power of two >= 8");
  require(n_rows <= nfft, "spectral_sums: nfft must be >= n_rows");
  require(n_rows == 0 || (n_origins >= 1 && n_origins <= n_rows),
          "spectral_sums: n_origins must be in [1, n_rows]");
  const bool column_pairs = n_origins == n_rows;
  const ColumnBatches batches(x, n_cols, row_stride, column_pairs ? 2 * kLanes : kLanes);
  const int64_t n_batches = batches.count();
  if (n_rows == 0 || n_batches == 0) return;
  const Tables tables(nfft);
  const int64_t m = tables.m;
  int threads = 1;
#ifdef _OPENMP
  threads = static_cast<int>(std::min<int64_t>(n_threads > 0 ? n_threads : omp_get_max_threads(), n_batches));
#endif
  std::vector<Partial> partials(threads);
  const LaneBuffers buffers(threads * 2 * m);
#pragma omp parallel num_threads(threads)
  {
    int id = 0;
#ifdef _OPENMP
    id = omp_get_thread_num();
#endif
    Partial& part = partials[id];
    part.cross.assign(2 * (m + 1), 0.0);
    part.sq.assign(n_rows, 0.0);
    cv* za = buffers.get(2 * m * id);
    cv* zb = za + m;
#pragma omp for schedule(static)
    for (int64_t batch = 0; batch < n_batches; ++batch) {
      const int64_t c0 = batches.start(batch);
      first_pass(Displacements<T>(x + c0, row_stride, batches.start(batch + 1) - c0, n_rows, n_origins,
                                  part.sq.data()),
                 za, zb, tables);
      other_passes(za, tables);
      other_passes(zb, tables);
      if (column_pairs) {
        add_power(za, zb, tables, part.cross.data());
      } else {
        add_cross(za, zb, tables, part.cross.data());
      }
    }
  }
  for (const Partial& part : partials) {
    for (int64_t k = 0; k < 2 * (m + 1); ++k) cross[k] += part.cross[k];
    for (int64_t t = 0; t < n_rows; ++t) sq[t] += part.sq[t];
  }
}

template void spectral_sums<float>(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, double*, double*, int);
template void spectral_sums<double>(const double*, int64_t, int64_t, int64_t, int64_t, int64_t, double*, double*,
                                    int);

}  // namespace pyengine
