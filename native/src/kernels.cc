// Kernel implementations. The per-element rules live in the TD_INLINE helpers below and
// are the single source of truth for the native side; src/numeric/ts.ts implements the
// same rules in TypeScript and the tests require both to agree bit for bit.
#include "kernels.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define TD_X86 1
#include <immintrin.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TD_INLINE static inline __attribute__((always_inline))
#else
#define TD_INLINE static __forceinline
#endif

namespace td {
namespace {

TD_INLINE uint32_t f2u(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
TD_INLINE float u2f(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
TD_INLINE uint32_t load_u32(const float* p) {
  uint32_t u;
  std::memcpy(&u, p, 4);
  return u;
}
TD_INLINE void store_u32(float* p, uint32_t u) { std::memcpy(p, &u, 4); }

// ---- fp16 ---------------------------------------------------------------------------
// float32 -> float16, round to nearest even; overflow -> inf; NaN -> quiet NaN keeping the
// top 9 payload bits (what F16C's vcvtps2ph does, and ORT's vectorized Cast).
TD_INLINE uint32_t f32_to_f16_bits(uint32_t x) {
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t a = x & 0x7fffffffu;
  // below 2^-14 the result is a subnormal half: adding 0.5 puts the float's ulp at 2^-24
  // so the FPU's round-to-nearest-even does the rounding
  const uint32_t sub = f2u(u2f(a) + 0.5f) - 0x3f000000u;
  const uint32_t nrm = (a - 0x38000000u + 0xfffu + ((a >> 13) & 1u)) >> 13;
  const uint32_t big = a > 0x7f800000u ? (0x7e00u | ((a >> 13) & 0x3ffu)) : 0x7c00u;
  const uint32_t h = a < 0x38800000u ? sub : (a < 0x47800000u ? nrm : big);
  return sign | h;
}
// float16 -> float32, exact; NaN is quieted (payload kept), as vcvtph2ps does.
TD_INLINE uint32_t f16_to_f32_bits(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  const uint32_t m = h & 0x3ffu;
  const uint32_t sub = f2u(static_cast<float>(m) * 5.9604644775390625e-8f);  // m * 2^-24, exact
  const uint32_t nrm = ((e + 112u) << 23) | (m << 13);
  const uint32_t spc = 0x7f800000u | (m != 0 ? (0x400000u | (m << 13)) : 0u);
  return sign | (e == 0 ? sub : (e == 31 ? spc : nrm));
}

// ---- bf16 ---------------------------------------------------------------------------
// float32 -> bfloat16, round to nearest even (overflow -> inf); NaN -> sign | 0x7fc0.
TD_INLINE uint32_t f32_to_bf16_bits(uint32_t b) {
  const uint32_t r = (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
  const uint32_t nan = ((b >> 16) & 0x8000u) | 0x7fc0u;
  return (b & 0x7fffffffu) > 0x7f800000u ? nan : (r & 0xffffu);
}

// ---- fp8 (ONNX Cast semantics as implemented by onnxruntime) --------------------------
// e4m3fn: RNE; saturate: |x| that rounds above 448 (and inf) -> +-448; NaN -> sign|0x7f.
// saturate=false reproduces onnxruntime exactly: (464, 480) -> NaN, [480, 496) -> 448,
// >= 496 and inf -> NaN.
TD_INLINE uint32_t f32_to_e4m3_bits(uint32_t b, bool sat) {
  const uint32_t sign = (b >> 24) & 0x80u;
  const uint32_t a = b & 0x7fffffffu;
  const uint32_t sub = f2u(u2f(a) + 16384.0f) - 0x46800000u;  // ulp(2^14) = 2^-9
  const uint32_t nrm = (a - (120u << 23) + 0x7ffffu + ((a >> 20) & 1u)) >> 20;
  uint32_t r = a < (121u << 23) ? sub : nrm;
  uint32_t over;
  if (sat) {
    over = 0x7eu;
  } else {
    over = (a >= 0x43f00000u && a < 0x43f80000u) ? 0x7eu : 0x7fu;  // [480, 496) -> 448
  }
  r = r > 0x7eu ? over : r;
  r = a > 0x7f800000u ? 0x7fu : r;
  return sign | r;
}
// e5m2: RNE; saturate: overflow and inf -> +-57344; NaN -> sign|0x7f. saturate=false
// reproduces onnxruntime: [61440, 65536) -> NaN, >= 65536 and inf -> inf.
TD_INLINE uint32_t f32_to_e5m2_bits(uint32_t b, bool sat) {
  const uint32_t sign = (b >> 24) & 0x80u;
  const uint32_t a = b & 0x7fffffffu;
  const uint32_t sub = f2u(u2f(a) + 128.0f) - 0x43000000u;  // ulp(2^7) = 2^-16
  const uint32_t nrm = (a - (112u << 23) + 0xfffffu + ((a >> 21) & 1u)) >> 21;
  uint32_t r = a < (113u << 23) ? sub : nrm;
  uint32_t over;
  if (sat) {
    over = 0x7bu;
  } else {
    over = a < 0x47800000u ? 0x7fu : 0x7cu;
  }
  r = r > 0x7bu ? over : r;
  r = a > 0x7f800000u ? 0x7fu : r;
  return sign | r;
}
TD_INLINE uint32_t e4m3_to_f32_bits(uint32_t v) {
  const uint32_t sign = (v & 0x80u) << 24;
  const uint32_t e = (v >> 3) & 0xfu, m = v & 7u;
  if ((v & 0x7fu) == 0x7fu) return sign | 0x7fc00000u;
  if (e == 0) return sign | f2u(static_cast<float>(m) * 0.001953125f);  // m * 2^-9
  return sign | ((e + 120u) << 23) | (m << 20);
}
TD_INLINE uint32_t e5m2_to_f32_bits(uint32_t v) {
  const uint32_t sign = (v & 0x80u) << 24;
  const uint32_t e = (v >> 2) & 0x1fu, m = v & 3u;
  if ((v & 0x7fu) == 0x7cu) return sign | 0x7f800000u;
  if ((v & 0x7fu) > 0x7cu) return sign | 0x7fc00000u;
  if (e == 0) return sign | f2u(static_cast<float>(m) * 1.52587890625e-5f);  // m * 2^-16
  return sign | ((e + 112u) << 23) | (m << 21);
}

struct Fp8Tables {
  uint32_t e4m3[256];
  uint32_t e5m2[256];
  Fp8Tables() {
    for (uint32_t v = 0; v < 256; ++v) {
      e4m3[v] = e4m3_to_f32_bits(v);
      e5m2[v] = e5m2_to_f32_bits(v);
    }
  }
};
const Fp8Tables& fp8_tables() {
  static const Fp8Tables t;
  return t;
}

// ---- int8 quantization ----------------------------------------------------------------
// q = clamp(rne(x / s), lo, hi) with x / s in float32 (as onnxruntime); NaN -> lo.
TD_INLINE float quant_round(float x, float s, float lo, float hi) {
  float v = x / s;
  v = v > lo ? v : lo;  // NaN -> lo
  v = v < hi ? v : hi;
  return (v + 12582912.0f) - 12582912.0f;  // 1.5 * 2^23: round half to even, |v| <= 128
}

TD_INLINE bool finite_f(float v) { return std::fabs(v) <= FLT_MAX; }

TD_INLINE uint32_t err_index(double e) { return (f2u(static_cast<float>(e)) >> 16) + 1u; }

}  // namespace

void stats_merge(StatsAcc& a, const StatsAcc& b) {
  if (a.firstNonFiniteAt < 0) a.firstNonFiniteAt = b.firstNonFiniteAt;
  a.numel += b.numel;
  a.nan += b.nan;
  a.posInf += b.posInf;
  a.negInf += b.negInf;
  if (b.finite == 0) return;
  if (a.finite == 0) {
    a.finite = b.finite;
    a.min = b.min;
    a.max = b.max;
    a.mean = b.mean;
    a.m2 = b.m2;
    a.absMax = b.absMax;
    return;
  }
  const double na = static_cast<double>(a.finite), nb = static_cast<double>(b.finite);
  const double n = na + nb;
  const double d = b.mean - a.mean;
  a.mean += d * (nb / n);
  a.m2 += b.m2 + d * d * (na * nb / n);
  a.finite += b.finite;
  a.min = std::min(a.min, b.min);
  a.max = std::max(a.max, b.max);
  a.absMax = std::max(a.absMax, b.absMax);
}

void diff_merge(DiffAcc& a, const DiffAcc& b) {
  a.numel += b.numel;
  a.refNan += b.refNan;
  a.refInf += b.refInf;
  a.candNan += b.candNan;
  a.candInf += b.candInf;
  a.mismatch += b.mismatch;
  a.newNonFinite += b.newNonFinite;
  a.finite += b.finite;
  a.zero += b.zero;
  // ranges are merged in order, so on ties the earlier index wins (as in a sequential scan)
  if (b.maxAbs > a.maxAbs) {
    a.maxAbs = b.maxAbs;
    a.maxAbsAt = b.maxAbsAt;
  }
  if (b.maxRel > a.maxRel) {
    a.maxRel = b.maxRel;
    a.maxRelAt = b.maxRelAt;
  }
  if (a.firstMismatchAt < 0) a.firstMismatchAt = b.firstMismatchAt;
  a.sumAbs += b.sumAbs;
  a.sumRel += b.sumRel;
  a.sumR2 += b.sumR2;
  a.sumC2 += b.sumC2;
  a.sumD2 += b.sumD2;
  a.dot += b.dot;
  a.refAbsMax = std::max(a.refAbsMax, b.refAbsMax);
  a.candAbsMax = std::max(a.candAbsMax, b.candAbsMax);
  a.minIdx = std::min(a.minIdx, b.minIdx);
  a.maxIdx = std::max(a.maxIdx, b.maxIdx);
}

void elem_merge(ElemAcc& a, const ElemAcc& b) {
  a.fail += b.fail;
  a.mismatch += b.mismatch;
  if (a.firstFailAt < 0) a.firstFailAt = b.firstFailAt;
  a.minAtol = std::max(a.minAtol, b.minAtol);
  a.minRtol = std::max(a.minRtol, b.minRtol);
}

}  // namespace td

// ---- the two builds of the range kernels ---------------------------------------------
#define TD_NS scalar
#define TD_ATTR
#define TD_F16C 0
#include "kernels_body.inc"
#undef TD_NS
#undef TD_ATTR
#undef TD_F16C

#ifdef TD_X86
#define TD_NS avx2
#define TD_ATTR __attribute__((target("avx2,fma,f16c,popcnt")))
#define TD_F16C 1
#include "kernels_body.inc"
#undef TD_NS
#undef TD_ATTR
#undef TD_F16C
#endif

namespace td {

#ifdef TD_X86
bool cpu_has_avx2_f16c() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") &&
         __builtin_cpu_supports("popcnt");
}
const KernelTable& avx2_kernels() { return avx2::kTable; }
#else
bool cpu_has_avx2_f16c() { return false; }
const KernelTable& avx2_kernels() { return scalar::kTable; }
#endif

const KernelTable& scalar_kernels() { return scalar::kTable; }

const KernelTable& kernels() {
  static const KernelTable* chosen = [] {
    const char* force = std::getenv("TRT_DEBUG_NATIVE_SIMD");
    if (force != nullptr && std::strcmp(force, "scalar") == 0) return &scalar::kTable;
#ifdef TD_X86
    __builtin_cpu_init();
    if (cpu_has_avx2_f16c()) return &avx2::kTable;
#endif
    return &scalar::kTable;
  }();
  return *chosen;
}

}  // namespace td
