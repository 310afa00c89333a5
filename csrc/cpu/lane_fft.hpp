// The float64 FFT that the spectral kernels share (spectral.cpp, increments.cpp): columns
// side by side in the lanes of one SIMD register, each lane running the same scalar FFT, so
// no data is ever shuffled between lanes. Internal to csrc/cpu (not part of the installed
// headers); everything here is a template or inline, compiled into each kernel's own
// instruction-set variants.
//
// The real FFT of length nfft = 2m is a complex FFT of length m of z(k) = y(2k) + i y(2k+1):
// a first radix-2^2 pass (which may read its input straight from the caller's data, through
// a Source), the other passes (other_passes), then real_bins forms the bins of y from pairs
// of bins of z, which the FFT leaves in bit-reversed order.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "pyengine/common.hpp"

#define PE_INLINE __attribute__((always_inline)) inline

namespace pyengine::lane_fft {

// L float64 lanes. L is the width of one register of the instruction set picked at run time
// (8 with AVX-512, 4 with AVX2, 2 otherwise): a radix-2^2 butterfly holds 8 lane vectors,
// which must stay in registers (8-lane vectors split over AVX2 registers spilled to the
// stack and ran 8x slower).
template <int L>
struct Lanes {
  typedef double v __attribute__((vector_size(8 * L)));
};
template <int L>
using vec = typename Lanes<L>::v;

// Rows of a column block are pages apart: first passes prefetch this many rows ahead, so
// TLB walks overlap (measured on 8192 x 16384 float32: the strided read is 1.5x faster).
constexpr int64_t kPrefetchRows = 32;
// Sub-transforms of at most this many complex lane vectors finish all passes in L1.
constexpr int64_t kL1Block = 128;

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

// `lanes` (<= L) values of a row, converted to float64; the lanes past them are zero.
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

// The first pass of two transforms read straight from the caller's data (no separate load
// pass): src.pair(k) returns {lo, hi}, the entries z(k) of both sequences, and is called
// once for each k < m, in the order the butterflies need them; za and zb get the lo and hi
// sequences after two radix-2 stages.
template <int L, class Source>
PE_INLINE void first_pass(Source& src, cv<L>* za, cv<L>* zb, const Tables& tables) {
  const int64_t q = tables.m / 4;
  const double* w = tables.w.data();
  for (int64_t j = 0; j < q; ++j) {
    const auto a0 = src.pair(j), a1 = src.pair(j + q), a2 = src.pair(j + 2 * q), a3 = src.pair(j + 3 * q);
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

// The whole FFT_m of z in place (its first pass included), in bit-reversed order.
template <int L>
PE_INLINE void fft_in_place(cv<L>* z, const Tables& tables) {
  block_pass(z, tables.m, tables.w.data(), tables.m);
  other_passes(z, tables);
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

// ---- instruction sets, picked at run time ----

// Lanes of the instruction set the whole build targets (baseline x86-64: SSE2).
constexpr int kBuildLanes =
#if defined(__AVX512F__)
    8;
#elif defined(__AVX2__) && defined(__FMA__)
    4;
#else
    2;
#endif

// The widest lane count this CPU (and build) runs.
inline int widest_lanes() {
  int best = kBuildLanes;
#ifdef PE_RUNTIME_ISA
  if (__builtin_cpu_supports("avx512f"))
    best = 8;
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    best = std::max(best, 4);
#endif
  return best;
}

// A kernel's batch function Body::run<L>(args...) (which must be PE_INLINE, so that it is
// compiled for the instruction set of each caller below), one variant per lane count.
// pick(lanes) returns the variant with `lanes` lanes (0: the widest this CPU runs), or
// throws std::invalid_argument naming `kernel`.
template <class Body, typename... Args>
struct LaneDispatch {
  using Fn = void (*)(Args...);
  struct Picked {
    int lanes;
    Fn fn;
  };

  template <int L>
  static void plain(Args... args) {
    Body::template run<L>(args...);
  }
#ifdef PE_RUNTIME_ISA
  __attribute__((target("avx2,fma"))) static void avx2(Args... args) { Body::template run<4>(args...); }
  __attribute__((target("avx512f"))) static void avx512(Args... args) { Body::template run<8>(args...); }
#endif

  static Picked pick(int lanes, const std::string& kernel) {
    const int best = widest_lanes();
    if (lanes == 0) lanes = best;
    require(lanes == 2 || lanes == 4 || lanes == 8, kernel + ": lanes must be 0, 2, 4 or 8");
    require(lanes <= best, kernel + ": this CPU (or build) runs at most " + std::to_string(best) + " lanes");
    if (lanes == kBuildLanes) return {lanes, plain<kBuildLanes>};
    if (lanes == 2) return {2, plain<2>};
#ifdef PE_RUNTIME_ISA
    if (lanes == 4) return {4, avx2};
    return {8, avx512};
#else
    return {kBuildLanes, plain<kBuildLanes>};  // unreachable: lanes <= best == kBuildLanes
#endif
  }
};

// ---- columns and buffers ----

// The columns of each batch: `width` at a time, except that the first batch ends where rows
// reach an aligned boundary (a cache line, or the batch's own size if smaller), so that the
// others read whole aligned pieces (NumPy aligns arrays to 16 bytes only: unaligned
// 16-column float32 batches measured 1.15x slower).
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

// Transform buffers for every thread, 64-byte aligned as the lane vectors need (which
// std::vector does not promise), allocated before the parallel region so that a failure
// throws there rather than inside it.
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

}  // namespace pyengine::lane_fft
