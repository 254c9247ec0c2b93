// Numeric kernels of trt-debug (see docs/numeric.md for the exact semantics).
//
// Every kernel here works on one contiguous range and one thread; addon.cc splits big
// tensors over the thread pool. Two builds of each kernel exist on x86-64: a baseline one
// and one compiled for AVX2+F16C, picked at run time (kernels() below). Both give
// bit-identical results for conversions and quantization; reductions may differ only in
// summation order (and in the AVX2 build's FMA rounding of squared differences).
#pragma once

#include <cstddef>
#include <cstdint>

namespace td {

enum Format : int { kFp16 = 0, kBf16 = 1, kE4M3FN = 2, kE5M2 = 3 };

// Index 0 of an error histogram is unused (exact zeros are counted in DiffAcc::zero); a
// positive error e goes to 1 + (bits(float(e)) >> 16), so the last index is 1 + 0x7f80
// (float overflow / inf). The kernels' local histograms have kHistDummy extra slots after the
// real bins where skipped elements are counted branch-free (and then ignored).
constexpr uint32_t kErrHistBins = 0x7f82;
constexpr uint32_t kHistDummy = 8;
constexpr uint32_t kErrHistStride = kErrHistBins + kHistDummy;

// Layout of the Float64Array the diff kernel fills (kept in sync with src/numeric/layout.ts).
enum DiffSlot : int {
  kDNumel = 0, kDRefNan, kDRefInf, kDCandNan, kDCandInf, kDMismatch, kDFinite, kDZero,
  kDMaxAbs, kDSumAbs, kDMaxRel, kDSumRel, kDSumR2, kDSumC2, kDSumD2, kDDot,
  kDRefAbsMax, kDCandAbsMax, kDMinIdx, kDMaxIdx, kDMaxAbsAt, kDMaxRelAt, kDFirstMismatchAt, kDNewNonFinite, kDiffSlots
};

// Layout of the Float64Array the elementwise-check kernel fills.
enum ElemSlot : int { kEFail = 0, kEFirstFailAt, kEMinAtol, kEMinRtol, kEMismatch, kElemSlots };

// Layout of the Float64Array the stats kernel fills (kept in sync with src/numeric/layout.ts).
enum StatsSlot : int {
  kSNumel = 0, kSNan, kSPosInf, kSNegInf, kSFinite, kSMin, kSMax, kSMean, kSM2, kSAbsMax, kSFirstNonFiniteAt,
  kStatsSlots
};

// Running accumulator of a diff over one range. Histograms are owned by the caller.
struct DiffAcc {
  uint64_t numel = 0, refNan = 0, refInf = 0, candNan = 0, candInf = 0, mismatch = 0, finite = 0, zero = 0;
  uint64_t newNonFinite = 0;  // cand non-finite where ref is finite
  double maxAbs = 0, sumAbs = 0, maxRel = 0, sumRel = 0, sumR2 = 0, sumC2 = 0, sumD2 = 0, dot = 0;
  double refAbsMax = 0, candAbsMax = 0;
  uint32_t minIdx = kErrHistBins, maxIdx = 0;  // range of non-zero histogram indices touched (>= 1)
  int64_t maxAbsAt = -1, maxRelAt = -1, firstMismatchAt = -1;  // element indices (-1: none)
};

// Polygraphy-style elementwise check: an element fails when both |c-r| > atol and
// rel > rtol, or when it is a non-finite mismatch.
struct ElemAcc {
  uint64_t fail = 0, mismatch = 0;
  int64_t firstFailAt = -1;
  double minAtol = 0, minRtol = 0;
};
void elem_merge(ElemAcc& a, const ElemAcc& b);

// Welford/Chan-style accumulator over finite values (blocks of kStatsBlock elements).
struct StatsAcc {
  uint64_t numel = 0, nan = 0, posInf = 0, negInf = 0, finite = 0;
  double min = 0, max = 0, mean = 0, m2 = 0, absMax = 0;
  int64_t firstNonFiniteAt = -1;
};
constexpr size_t kStatsBlock = 4096;
void stats_merge(StatsAcc& a, const StatsAcc& b);
void diff_merge(DiffAcc& a, const DiffAcc& b);

struct KernelTable {
  const char* name;
  void (*f32_to_f16)(const float*, uint16_t*, size_t);
  void (*f16_to_f32)(const uint16_t*, float*, size_t);
  void (*f32_to_bf16)(const float*, uint16_t*, size_t);
  void (*bf16_to_f32)(const uint16_t*, float*, size_t);
  void (*f32_to_fp8)(const float*, uint8_t*, size_t, int fmt, bool saturate);
  void (*fp8_to_f32)(const uint8_t*, float*, size_t, int fmt);
  void (*round_to)(const float*, float*, size_t, int fmt);
  // q = clamp(rne(x / s), lo, hi) with one scale, or scale s[j] for element j (vector form)
  void (*quant_const)(const float*, int8_t*, size_t, float s, float lo, float hi);
  void (*quant_vec)(const float*, int8_t*, size_t, const float* s, float lo, float hi);
  void (*dequant_const)(const int8_t*, float*, size_t, float s);
  void (*dequant_vec)(const int8_t*, float*, size_t, const float* s);
  void (*fakeq_const)(const float*, float*, size_t, float s, float lo, float hi);
  void (*fakeq_vec)(const float*, float*, size_t, const float* s, float lo, float hi);
  float (*abs_max)(const float*, size_t);                     // max |x| over finite x, 0 if none
  void (*abs_max_vec)(const float*, size_t, float* acc);      // acc[j] = max(acc[j], |x[j]|), finite x
  // `base` is the index of element 0 of the range in the whole tensor (for reported indices)
  void (*stats)(const float*, size_t, size_t base, StatsAcc*);  // base must be a multiple of kStatsBlock
  // hAbs/hRel: kErrHistStride uint32 counters each (dummy slots included)
  void (*diff)(const float*, const float*, size_t, size_t base, bool infEq, DiffAcc*, uint32_t* hAbs, uint32_t* hRel);
  void (*elem)(const float*, const float*, size_t, size_t base, bool infEq, double atol, double rtol, ElemAcc*);
  // count[min(floor(|x| / w), nbins - 1)] += 1 for finite x, spread over `nsub` interleaved
  // sub-histograms of nbins + kHistDummy uint32 counters each (hist[s * (nbins + kHistDummy) + b]);
  // returns the number of skipped (non-finite) values. nbins < 2^30.
  uint64_t (*abs_hist)(const float*, size_t, uint32_t* hist, size_t nbins, int nsub, double w);
};

// The best kernel table for this CPU (TRT_DEBUG_NATIVE_SIMD=scalar forces the baseline one).
const KernelTable& kernels();
const KernelTable& scalar_kernels();

}  // namespace td
