#include "pyengine/spectral.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "pyengine/common.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {
namespace {

// L float64 lanes: L columns are transformed side by side, each lane running the same
// scalar FFT, so no data is ever shuffled between lanes. L is the width of one register
// of the instruction set picked at run time (8 with AVX-512, 4 with AVX2, 2 otherwise):
// a radix-2^2 butterfly holds 8 lane vectors, which must stay in registers (8-lane vectors
// split over AVX2 registers spilled to the stack and ran 8x slower).
template <int L>
struct Lanes {
  typedef double v __attribute__((vector_size(8 * L)));
};
template <int L>
using vec = typename Lanes<L>::v;

// Rows of a column block are pages apart: the first pass prefetches this many rows ahead,
// so TLB walks overlap (measured on 8192 x 16384 float32: the strided read is 1.5x faster).
constexpr int64_t kPrefetchRows = 32;
// Sub-transforms of at most this many complex lane vectors finish all passes in L1.
constexpr int64_t kL1Block = 128;

#define PE_INLINE __attribute__((always_inline)) inline

template <int L>
struct cv {
  vec<L> re, im;
};
template <int L>
PE_INLINE cv<L> operator+(cv<L> a, cv<L> b) { return {a.re + b.re, a.im + b.im}; }
template <int L>
PE_INLINE cv<L> operator-(cv<L> a, cv<L> b) { return {a.re - b.re, a.im - b.im}; }
template <int L>
PE_INLINE cv<L> times(cv<L> a, const double* w) { return {a.re * w[0] - a.im * w[1], a.re * w[1] + a.im * w[0]}; }
template <int L>
PE_INLINE cv<L> times_minus_i(cv<L> a) { return {a.im, -a.re}; }
template <int L>
PE_INLINE vec<L> norm2(cv<L> a) { return a.re * a.re + a.im * a.im; }
template <int L>
PE_INLINE double lane_sum(vec<L> v) {
  double s = 0.0;
  for (int l = 0; l < L; ++l) s += v[l];
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

template <int L, typename T>
PE_INLINE vec<L> load_lanes(const T* row, int64_t lanes) {
  if (lanes == L) {
    typedef T vt __attribute__((vector_size(L * sizeof(T))));
    vt v;
    std::memcpy(&v, row, sizeof v);
    return __builtin_convertvector(v, vec<L>);
  }
  vec<L> v{};
  for (int64_t l = 0; l < lanes; ++l) v[l] = static_cast<double>(row[l]);
  return v;
}

// Two lane vectors of displacements y(t) = x(t) - x(0) per row, read as the complex
// sequences z(k) = y(2k) + i y(2k + 1) of two half-length FFTs, zero from t = len on.
// The two are either 2L adjacent columns (lo: the first L), so that row visits use more of
// each cache line, or (with origins < len) the same L columns twice, hi cut to t < origins:
// the two transforms of a cross spectrum. Each t is read once per transform pair, so the
// squared norms are summed on the way.
template <int L, typename T>
struct Displacements {
  const T* x;
  int64_t row_stride, lanes, len, origins;  // origins == len: two column groups
  double* sq;
  vec<L> ref_lo, ref_hi;

  Displacements(const T* x_, int64_t row_stride_, int64_t lanes_, int64_t len_, int64_t origins_, double* sq_)
      : x(x_), row_stride(row_stride_), lanes(lanes_), len(len_), origins(origins_), sq(sq_),
        ref_lo(load_lanes<L>(x_, lo_lanes())), ref_hi(load_lanes<L>(x_ + L, hi_lanes())) {}

  bool column_pairs() const { return origins == len; }
  int64_t lo_lanes() const { return std::min<int64_t>(L, lanes); }
  int64_t hi_lanes() const { return column_pairs() ? std::max<int64_t>(0, lanes - L) : 0; }

  struct Two {
    vec<L> lo, hi;
  };
  PE_INLINE Two at(int64_t t) const {
    if (t >= len) return {vec<L>{}, vec<L>{}};
    const T* row = x + t * row_stride;
    __builtin_prefetch(row + kPrefetchRows * row_stride);  // never faults, even past the end
    const vec<L> lo = load_lanes<L>(row, lo_lanes()) - ref_lo;
    if (!column_pairs()) {
      sq[t] += lane_sum<L>(lo * lo);
      return {lo, t < origins ? lo : vec<L>{}};
    }
    const vec<L> hi = hi_lanes() > 0 ? load_lanes<L>(row + L, hi_lanes()) - ref_hi : vec<L>{};
    sq[t] += lane_sum<L>(lo * lo + hi * hi);
    return {lo, hi};
  }
  struct TwoComplex {
    cv<L> lo, hi;
  };
  PE_INLINE TwoComplex pair(int64_t k) const {
    const Two even = at(2 * k), odd = at(2 * k + 1);
    return {{even.lo, odd.lo}, {even.hi, odd.hi}};
  }
};

// Two radix-2 decimation-in-frequency stages at once on a block of s = 4q entries (the
// "radix-2 squared" butterfly): 3 twiddle products per 4 points, as radix 4, while the
// output stays in plain bit-reversed order. w1 = W_s^j, w2 = W_s^2j.
template <int L>
PE_INLINE void butterfly(cv<L> a0, cv<L> a1, cv<L> a2, cv<L> a3, const double* w1, const double* w2, cv<L>* p,
                         int64_t q) {
  const cv<L> b0 = a0 + a2, b1 = a1 + a3;
  const cv<L> b2 = times(a0 - a2, w1), b3 = times_minus_i(times(a1 - a3, w1));
  p[0] = b0 + b1;
  p[q] = times(b0 - b1, w2);
  p[2 * q] = b2 + b3;
  p[3 * q] = times(b2 - b3, w2);
}

// One radix-2^2 pass over the block p[0, s); w holds W_nfft^k, nfft = 2m.
template <int L>
PE_INLINE void block_pass(cv<L>* p, int64_t s, const double* w, int64_t m) {
  const int64_t q = s / 4, step = 2 * m / s;  // W_s^j = W_nfft^(j * step)
  for (int64_t j = 0; j < q; ++j)
    butterfly(p[j], p[j + q], p[j + 2 * q], p[j + 3 * q], w + 2 * j * step, w + 4 * j * step, p + j, q);
}

// Every remaining pass, from sub-blocks of s entries down, of the L1-sized block p[0, size).
template <int L>
PE_INLINE void finish_block(cv<L>* p, int64_t size, int64_t s, const double* w, int64_t m) {
  for (; s >= 4; s /= 4)
    for (int64_t b = 0; b < size; b += s) block_pass(p + b, s, w, m);
  if (s == 2)
    for (int64_t b = 0; b < size; b += 2) {
      const cv<L> u = p[b], v = p[b + 1];
      p[b] = u + v;
      p[b + 1] = u - v;
    }
}

// The first pass of both transforms reads the columns straight from x (no separate load
// pass): za and zb get the lo and hi sequences after two radix-2 stages.
template <int L, typename T>
PE_INLINE void first_pass(const Displacements<L, T>& y, cv<L>* za, cv<L>* zb, const Tables& tables) {
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
template <int L>
PE_INLINE void other_passes(cv<L>* z, const Tables& tables) {
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
template <int L>
struct BinPair {
  cv<L> at_k, conj_at_mk;
};
template <int L>
PE_INLINE BinPair<L> real_bins(const cv<L>* z, const Tables& tables, int64_t k) {
  const int64_t m = tables.m;
  const cv<L> zk = z[tables.rev[k]], zc = z[tables.rev[(m - k) & (m - 1)]];
  const cv<L> e = {0.5 * (zk.re + zc.re), 0.5 * (zk.im - zc.im)};
  const cv<L> o = {0.5 * (zk.im + zc.im), 0.5 * (zc.re - zk.re)};
  const cv<L> wo = times(o, tables.w.data() + 2 * k);
  return {e + wo, e - wo};
}

// acc[k] += sum over the lanes of both transforms of |Y[k]|^2 (re only: the power spectrum
// is real). One lane sum per bin for both.
template <int L>
PE_INLINE void add_power(const cv<L>* za, const cv<L>* zb, const Tables& tables, double* acc) {
  const int64_t m = tables.m;
  for (int64_t k = 0; k <= m / 2; ++k) {
    const BinPair<L> a = real_bins(za, tables, k), b = real_bins(zb, tables, k);
    acc[2 * k] += lane_sum<L>(norm2(a.at_k) + norm2(b.at_k));
    if (k != m - k) acc[2 * (m - k)] += lane_sum<L>(norm2(a.conj_at_mk) + norm2(b.conj_at_mk));
  }
}

// acc[k] += sum over lanes of conj(B[k]) A[k] (re, im interleaved).
template <int L>
PE_INLINE void add_cross(const cv<L>* za, const cv<L>* zb, const Tables& tables, double* acc) {
  const int64_t m = tables.m;
  for (int64_t k = 0; k <= m / 2; ++k) {
    const BinPair<L> a = real_bins(za, tables, k), b = real_bins(zb, tables, k);
    acc[2 * k] += lane_sum<L>(b.at_k.re * a.at_k.re + b.at_k.im * a.at_k.im);
    acc[2 * k + 1] += lane_sum<L>(b.at_k.re * a.at_k.im - b.at_k.im * a.at_k.re);
    if (k != m - k) {  // conj(B) A at m - k = conj(conj(b') a') with the conjugated bins b', a'
      const cv<L> ac = a.conj_at_mk, bc = b.conj_at_mk;
      acc[2 * (m - k)] += lane_sum<L>(bc.re * ac.re + bc.im * ac.im);
      acc[2 * (m - k) + 1] -= lane_sum<L>(bc.re * ac.im - bc.im * ac.re);
    }
  }
}

// One batch of columns x[:, 0:lanes) (at most 2L): both transforms and their sums.
// `buffer` holds 2m complex lane vectors.
template <int L, typename T>
PE_INLINE void batch(const T* x, int64_t row_stride, int64_t lanes, int64_t n_rows, int64_t n_origins,
                     const Tables& tables, void* buffer, double* cross, double* sq) {
  cv<L>* za = static_cast<cv<L>*>(buffer);
  cv<L>* zb = za + tables.m;
  first_pass(Displacements<L, T>(x, row_stride, lanes, n_rows, n_origins, sq), za, zb, tables);
  other_passes(za, tables);
  other_passes(zb, tables);
  if (n_origins == n_rows)
    add_power(za, zb, tables, cross);
  else
    add_cross(za, zb, tables, cross);
}

// A batch function and its lane count.
template <typename T>
struct Kernel {
  using Fn = void (*)(const T*, int64_t, int64_t, int64_t, int64_t, const Tables&, void*, double*, double*);
  int lanes;
  Fn fn;
};

template <int L, typename T>
void batch_plain(const T* x, int64_t s, int64_t l, int64_t n, int64_t o, const Tables& t, void* b, double* c,
                 double* q) {
  batch<L>(x, s, l, n, o, t, b, c, q);
}
#ifdef PE_RUNTIME_ISA
template <typename T>
__attribute__((target("avx2,fma"))) void batch_avx2(const T* x, int64_t s, int64_t l, int64_t n, int64_t o,
                                                    const Tables& t, void* b, double* c, double* q) {
  batch<4>(x, s, l, n, o, t, b, c, q);
}
template <typename T>
__attribute__((target("avx512f"))) void batch_avx512(const T* x, int64_t s, int64_t l, int64_t n, int64_t o,
                                                     const Tables& t, void* b, double* c, double* q) {
  batch<8>(x, s, l, n, o, t, b, c, q);
}
#endif

// Lanes of the instruction set the whole build targets (baseline x86-64: SSE2).
constexpr int kBuildLanes =
#if defined(__AVX512F__)
    8;
#elif defined(__AVX2__) && defined(__FMA__)
    4;
#else
    2;
#endif

// The batch function with `lanes` lanes (0: the widest this CPU runs).
template <typename T>
Kernel<T> kernel_with(int lanes) {
  int best = kBuildLanes;
#ifdef PE_RUNTIME_ISA
  if (__builtin_cpu_supports("avx512f"))
    best = 8;
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    best = std::max(best, 4);
#endif
  if (lanes == 0) lanes = best;
  require(lanes == 2 || lanes == 4 || lanes == 8, "spectral_sums: lanes must be 0, 2, 4 or 8");
  require(lanes <= best, "spectral_sums: this CPU (or build) runs at most " + std::to_string(best) + " lanes");
  if (lanes == kBuildLanes) return {lanes, batch_plain<kBuildLanes, T>};
  if (lanes == 2) return {2, batch_plain<2, T>};
#ifdef PE_RUNTIME_ISA
  if (lanes == 4) return {4, batch_avx2<T>};
  return {8, batch_avx512<T>};
#else
  return {kBuildLanes, batch_plain<kBuildLanes, T>};  // unreachable: lanes <= best == kBuildLanes
#endif
}

// The columns of each transform pair: `width` at a time, except that the first batch ends
// where rows reach an aligned boundary (a cache line, or the batch's own size if smaller),
// so that the others read whole aligned pieces (NumPy aligns arrays to 16 bytes only:
// unaligned 16-column float32 batches measured 1.15x slower).
class ColumnBatches {
 public:
  template <typename T>
  ColumnBatches(const T* x, int64_t n_cols, int64_t row_stride, int64_t width) : n_cols_(n_cols), width_(width) {
    const auto address = static_cast<int64_t>(reinterpret_cast<uintptr_t>(x));
    const int64_t align = std::min<int64_t>(64, width * sizeof(T));
    if (address % sizeof(T) == 0 && (row_stride * sizeof(T)) % align == 0)
      lead_ = std::min<int64_t>(n_cols, (align - address % align) % align / sizeof(T));
  }
  int64_t count() const { return (lead_ > 0) + (n_cols_ - lead_ + width_ - 1) / width_; }
  int64_t start(int64_t batch) const {
    const int64_t start = lead_ > 0 ? (batch == 0 ? 0 : lead_ + (batch - 1) * width_) : batch * width_;
    return std::min(start, n_cols_);
  }

 private:
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
  LaneBuffers(int64_t count, int64_t bytes_each)
      : bytes_each_((bytes_each + 63) / 64 * 64), data_(std::aligned_alloc(64, count * bytes_each_)) {
    if (data_ == nullptr) throw std::bad_alloc();
  }
  ~LaneBuffers() { std::free(data_); }
  LaneBuffers(const LaneBuffers&) = delete;
  LaneBuffers& operator=(const LaneBuffers&) = delete;
  void* get(int64_t i) const { return static_cast<char*>(data_) + i * bytes_each_; }

 private:
  int64_t bytes_each_;
  void* data_;
};

}  // namespace

template <typename T>
void spectral_sums(const T* x, int64_t n_rows, int64_t n_cols, int64_t row_stride, int64_t n_origins,
                   int64_t nfft, double* cross, double* sq, int n_threads, int lanes) {
  require(n_rows >= 0 && n_cols >= 0, "spectral_sums: negative size");
  require(row_stride >= n_cols, "spectral_sums: row_stride must be >= n_cols");
  require(nfft >= 8 && (nfft & (nfft - 1)) == 0, "spectral_sums: nfft must be a power of two >= 8");
  require(n_rows <= nfft, "spectral_sums: nfft must be >= n_rows");
  require(n_rows == 0 || (n_origins >= 1 && n_origins <= n_rows),
          "spectral_sums: n_origins must be in [1, n_rows]");
  const Kernel<T> kernel = kernel_with<T>(lanes);
  const bool column_pairs = n_origins == n_rows;
  const ColumnBatches batches(x, n_cols, row_stride, column_pairs ? 2 * kernel.lanes : kernel.lanes);
  const int64_t n_batches = batches.count();
  if (n_rows == 0 || n_batches == 0) return;
  const Tables tables(nfft);
  const int64_t m = tables.m;
  int threads = 1;
#ifdef _OPENMP
  threads = static_cast<int>(std::min<int64_t>(n_threads > 0 ? n_threads : omp_get_max_threads(), n_batches));
#endif
  std::vector<Partial> partials(threads);
  const LaneBuffers buffers(threads, 2 * m * 2 * kernel.lanes * sizeof(double));  // 2m complex lane vectors
#pragma omp parallel num_threads(threads)
  {
    int id = 0;
#ifdef _OPENMP
    id = omp_get_thread_num();
#endif
    Partial& part = partials[id];
    part.cross.assign(2 * (m + 1), 0.0);
    part.sq.assign(n_rows, 0.0);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n_batches; ++b) {
      const int64_t c0 = batches.start(b);
      kernel.fn(x + c0, row_stride, batches.start(b + 1) - c0, n_rows, n_origins, tables, buffers.get(id),
                part.cross.data(), part.sq.data());
    }
  }
  for (const Partial& part : partials) {
    for (int64_t k = 0; k < 2 * (m + 1); ++k) cross[k] += part.cross[k];
    for (int64_t t = 0; t < n_rows; ++t) sq[t] += part.sq[t];
  }
}

template void spectral_sums<float>(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, double*, double*, int,
                                   int);
template void spectral_sums<double>(const double*, int64_t, int64_t, int64_t, int64_t, int64_t, double*, double*,
                                    int, int);

}  // namespace pyengine
