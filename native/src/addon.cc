// N-API bindings of the numeric kernels. The JS side (src/numeric/native.ts) validates
// arguments and allocates outputs; this file re-checks types and lengths (a wrong call
// must throw, never crash), splits large inputs over the thread pool and merges partial
// results in chunk order.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels.h"
#include "pool.h"
#include "signals.h"

namespace td {
bool cpu_has_avx2_f16c();
const KernelTable& avx2_kernels();
}  // namespace td

namespace {

using td::KernelTable;

const KernelTable* g_table = nullptr;

const KernelTable& K() {
  if (g_table == nullptr) g_table = &td::kernels();
  return *g_table;
}

template <typename T>
struct Span {
  T* data;
  size_t size;
};

template <typename T>
Span<T> Arg(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, const char* what) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsTypedArray()) {
    throw Napi::TypeError::New(env, std::string("trt-debug native: argument '") + what + "' must be a typed array");
  }
  Napi::TypedArray ta = info[i].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != type) {
    throw Napi::TypeError::New(env, std::string("trt-debug native: argument '") + what + "' has the wrong element type");
  }
  const size_t n = ta.ElementLength();
  if (n == 0) return {nullptr, 0};
  uint8_t* base = static_cast<uint8_t*>(ta.ArrayBuffer().Data());
  return {reinterpret_cast<T*>(base + ta.ByteOffset()), n};
}

double Num(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string("trt-debug native: argument '") + what + "' must be a number");
  }
  return info[i].As<Napi::Number>().DoubleValue();
}

size_t Count(const Napi::CallbackInfo& info, size_t i, const char* what) {
  const double v = Num(info, i, what);
  if (!(v >= 0) || v != std::floor(v) || v > 9007199254740991.0) {
    throw Napi::RangeError::New(info.Env(), std::string("trt-debug native: argument '") + what + "' must be a count");
  }
  return static_cast<size_t>(v);
}

void SameLength(const Napi::Env& env, size_t a, size_t b) {
  if (a != b) throw Napi::RangeError::New(env, "trt-debug native: source and destination lengths differ");
}

int Fmt(const Napi::CallbackInfo& info, size_t i) {
  const double v = Num(info, i, "format");
  if (v != 0 && v != 1 && v != 2 && v != 3) throw Napi::RangeError::New(info.Env(), "trt-debug native: bad format code");
  return static_cast<int>(v);
}

// Elementwise map over [0, n), parallel above the threshold.
template <typename F>
void ForRange(size_t n, F&& fn) {
  const int chunks = td::chunk_count(n);
  if (chunks <= 1) {
    if (n > 0) fn(size_t{0}, n);
    return;
  }
  td::parallel_chunks(chunks, [&](int c) {
    size_t b, e;
    td::chunk_bounds(n, chunks, c, 64, &b, &e);
    if (e > b) fn(b, e);
  });
}

// ---- conversions ------------------------------------------------------------------------

Napi::Value F32ToF16(const Napi::CallbackInfo& info) {
  auto s = Arg<float>(info, 0, napi_float32_array, "src");
  auto d = Arg<uint16_t>(info, 1, napi_uint16_array, "dst");
  SameLength(info.Env(), s.size, d.size);
  const KernelTable& k = K();
  ForRange(s.size, [&](size_t b, size_t e) { k.f32_to_f16(s.data + b, d.data + b, e - b); });
  return info.Env().Undefined();
}

Napi::Value F16ToF32(const Napi::CallbackInfo& info) {
  auto s = Arg<uint16_t>(info, 0, napi_uint16_array, "src");
  auto d = Arg<float>(info, 1, napi_float32_array, "dst");
  SameLength(info.Env(), s.size, d.size);
  const KernelTable& k = K();
  ForRange(s.size, [&](size_t b, size_t e) { k.f16_to_f32(s.data + b, d.data + b, e - b); });
  return info.Env().Undefined();
}

Napi::Value F32ToBf16(const Napi::CallbackInfo& info) {
  auto s = Arg<float>(info, 0, napi_float32_array, "src");
  auto d = Arg<uint16_t>(info, 1, napi_uint16_array, "dst");
  SameLength(info.Env(), s.size, d.size);
  const KernelTable& k = K();
  ForRange(s.size, [&](size_t b, size_t e) { k.f32_to_bf16(s.data + b, d.data + b, e - b); });
  return info.Env().Undefined();
}

Napi::Value Bf16ToF32(const Napi::CallbackInfo& info) {
  auto s = Arg<uint16_t>(info, 0, napi_uint16_array, "src");
  auto d = Arg<float>(info, 1, napi_float32_array, "dst");
  SameLength(info.Env(), s.size, d.size);
  const KernelTable& k = K();
  ForRange(s.size, [&](size_t b, size_t e) { k.bf16_to_f32(s.data + b, d.data + b, e - b); });
  return info.Env().Undefined();
}

Napi::Value F32ToFp8(const Napi::CallbackInfo& info) {
  auto s = Arg<float>(info, 0, napi_float32_array, "src");
  auto d = Arg<uint8_t>(info, 1, napi_uint8_array, "dst");
  SameLength(info.Env(), s.size, d.size);
  const int fmt = Fmt(info, 2);
  if (fmt != td::kE4M3FN && fmt != td::kE5M2) throw Napi::RangeError::New(info.Env(), "trt-debug native: not an fp8 format");
  const bool sat = info.Length() > 3 && info[3].ToBoolean().Value();
  const KernelTable& k = K();
  ForRange(s.size, [&](size_t b, size_t e) { k.f32_to_fp8(s.data + b, d.data + b, e - b, fmt, sat); });
  return info.Env().Undefined();
}

Napi::Value Fp8ToF32(const Napi::CallbackInfo& info) {
  auto s = Arg<uint8_t>(info, 0, napi_uint8_array, "src");
  auto d = Arg<float>(info, 1, napi_float32_array, "dst");
  SameLength(info.Env(), s.size, d.size);
  const int fmt = Fmt(info, 2);
  if (fmt != td::kE4M3FN && fmt != td::kE5M2) throw Napi::RangeError::New(info.Env(), "trt-debug native: not an fp8 format");
  const KernelTable& k = K();
  ForRange(s.size, [&](size_t b, size_t e) { k.fp8_to_f32(s.data + b, d.data + b, e - b, fmt); });
  return info.Env().Undefined();
}

Napi::Value RoundTo(const Napi::CallbackInfo& info) {
  auto s = Arg<float>(info, 0, napi_float32_array, "src");
  auto d = Arg<float>(info, 1, napi_float32_array, "dst");
  SameLength(info.Env(), s.size, d.size);
  const int fmt = Fmt(info, 2);
  const KernelTable& k = K();
  ForRange(s.size, [&](size_t b, size_t e) { k.round_to(s.data + b, d.data + b, e - b, fmt); });
  return info.Env().Undefined();
}

// ---- quantization -----------------------------------------------------------------------
// Layout: the tensor is [outer, C, inner] (C = channels along the axis; per tensor: C = 1).

struct Layout {
  size_t outer, channels, inner;
};

Layout GetLayout(const Napi::CallbackInfo& info, size_t at, size_t n, size_t scales) {
  Layout l{Count(info, at, "outer"), Count(info, at + 1, "channels"), Count(info, at + 2, "inner")};
  if (l.channels != scales || l.outer * l.channels * l.inner != n) {
    throw Napi::RangeError::New(info.Env(), "trt-debug native: layout does not match the tensor");
  }
  return l;
}

// Calls const_fn(begin, end, scale) or vec_fn(begin, end, scales + j) over [b, e).
template <typename FC, typename FV>
void WalkChannels(const Layout& l, const float* scales, size_t b, size_t e, FC&& const_fn, FV&& vec_fn) {
  if (l.inner == 1) {
    size_t i = b;
    while (i < e) {
      const size_t j = i % l.channels;
      const size_t run = std::min(e - i, l.channels - j);
      vec_fn(i, i + run, scales + j);
      i += run;
    }
  } else {
    size_t i = b;
    while (i < e) {
      const size_t c = (i / l.inner) % l.channels;
      const size_t run = std::min(e - i, l.inner - i % l.inner);
      const_fn(i, i + run, scales[c]);
      i += run;
    }
  }
}

Napi::Value Quantize(const Napi::CallbackInfo& info) {
  auto s = Arg<float>(info, 0, napi_float32_array, "src");
  auto d = Arg<int8_t>(info, 1, napi_int8_array, "dst");
  auto sc = Arg<float>(info, 2, napi_float32_array, "scales");
  SameLength(info.Env(), s.size, d.size);
  const Layout l = GetLayout(info, 3, s.size, sc.size);
  const float lo = static_cast<float>(Num(info, 6, "qmin")), hi = static_cast<float>(Num(info, 7, "qmax"));
  const KernelTable& k = K();
  ForRange(s.size, [&](size_t b, size_t e) {
    WalkChannels(
        l, sc.data, b, e, [&](size_t x, size_t y, float v) { k.quant_const(s.data + x, d.data + x, y - x, v, lo, hi); },
        [&](size_t x, size_t y, const float* v) { k.quant_vec(s.data + x, d.data + x, y - x, v, lo, hi); });
  });
  return info.Env().Undefined();
}

Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  auto s = Arg<int8_t>(info, 0, napi_int8_array, "src");
  auto d = Arg<float>(info, 1, napi_float32_array, "dst");
  auto sc = Arg<float>(info, 2, napi_float32_array, "scales");
  SameLength(info.Env(), s.size, d.size);
  const Layout l = GetLayout(info, 3, s.size, sc.size);
  const KernelTable& k = K();
  ForRange(s.size, [&](size_t b, size_t e) {
    WalkChannels(
        l, sc.data, b, e, [&](size_t x, size_t y, float v) { k.dequant_const(s.data + x, d.data + x, y - x, v); },
        [&](size_t x, size_t y, const float* v) { k.dequant_vec(s.data + x, d.data + x, y - x, v); });
  });
  return info.Env().Undefined();
}

Napi::Value FakeQuant(const Napi::CallbackInfo& info) {
  auto s = Arg<float>(info, 0, napi_float32_array, "src");
  auto d = Arg<float>(info, 1, napi_float32_array, "dst");
  auto sc = Arg<float>(info, 2, napi_float32_array, "scales");
  SameLength(info.Env(), s.size, d.size);
  const Layout l = GetLayout(info, 3, s.size, sc.size);
  const float lo = static_cast<float>(Num(info, 6, "qmin")), hi = static_cast<float>(Num(info, 7, "qmax"));
  const KernelTable& k = K();
  ForRange(s.size, [&](size_t b, size_t e) {
    WalkChannels(
        l, sc.data, b, e, [&](size_t x, size_t y, float v) { k.fakeq_const(s.data + x, d.data + x, y - x, v, lo, hi); },
        [&](size_t x, size_t y, const float* v) { k.fakeq_vec(s.data + x, d.data + x, y - x, v, lo, hi); });
  });
  return info.Env().Undefined();
}

Napi::Value PerChannelAbsMax(const Napi::CallbackInfo& info) {
  auto s = Arg<float>(info, 0, napi_float32_array, "src");
  auto d = Arg<float>(info, 1, napi_float32_array, "dst");
  const Layout l = GetLayout(info, 2, s.size, d.size);
  const KernelTable& k = K();
  const int chunks = td::chunk_count(s.size);
  std::vector<float> parts(static_cast<size_t>(chunks) * l.channels, 0.0f);
  auto body = [&](int c) {
    size_t b, e;
    td::chunk_bounds(s.size, chunks, c, 64, &b, &e);
    float* acc = parts.data() + static_cast<size_t>(c) * l.channels;
    if (l.inner == 1) {
      size_t i = b;
      while (i < e) {
        const size_t j = i % l.channels;
        const size_t run = std::min(e - i, l.channels - j);
        k.abs_max_vec(s.data + i, run, acc + j);
        i += run;
      }
    } else {
      size_t i = b;
      while (i < e) {
        const size_t ch = (i / l.inner) % l.channels;
        const size_t run = std::min(e - i, l.inner - i % l.inner);
        acc[ch] = std::max(acc[ch], k.abs_max(s.data + i, run));
        i += run;
      }
    }
  };
  if (chunks <= 1) {
    if (s.size > 0) body(0);
  } else {
    td::parallel_chunks(chunks, body);
  }
  for (size_t ch = 0; ch < l.channels; ++ch) {
    float m = 0;
    for (int c = 0; c < chunks; ++c) m = std::max(m, parts[static_cast<size_t>(c) * l.channels + ch]);
    d.data[ch] = m;
  }
  return info.Env().Undefined();
}

Napi::Value AbsMax(const Napi::CallbackInfo& info) {
  auto s = Arg<float>(info, 0, napi_float32_array, "src");
  const KernelTable& k = K();
  const int chunks = td::chunk_count(s.size);
  std::vector<float> parts(static_cast<size_t>(std::max(chunks, 1)), 0.0f);
  if (chunks <= 1) {
    parts[0] = s.size > 0 ? k.abs_max(s.data, s.size) : 0.0f;
  } else {
    td::parallel_chunks(chunks, [&](int c) {
      size_t b, e;
      td::chunk_bounds(s.size, chunks, c, 64, &b, &e);
      parts[c] = e > b ? k.abs_max(s.data + b, e - b) : 0.0f;
    });
  }
  float m = 0;
  for (float p : parts) m = std::max(m, p);
  return Napi::Number::New(info.Env(), m);
}

// ---- statistics and comparison -----------------------------------------------------------

// The statistics/metrics kernels cut a large input into up to 4 chunks per thread (of at least
// 64K elements, 64 chunks at most, and only when each chunk's scratch histograms stay within
// 2 MiB): the pool hands chunks out as threads become free, so a thread slowed down by other
// load on the machine ends up doing less of the work instead of holding up the call. Chunk
// boundaries depend only on n and the thread count and partial results are merged in chunk
// order, so results stay deterministic for a given thread count.
int MetricChunks(size_t n, size_t scratchBytesPerChunk) {
  const int c = td::chunk_count(n);
  if (c <= 1 || scratchBytesPerChunk > (size_t{2} << 20)) return c;
  const size_t byMin = n / (td::kParallelThreshold / 4);
  const size_t most = std::max<size_t>(static_cast<size_t>(c), std::min<size_t>(static_cast<size_t>(c) * 4, 64));
  return static_cast<int>(std::max<size_t>(static_cast<size_t>(c), std::min(most, byMin)));
}

Napi::Value TensorStats(const Napi::CallbackInfo& info) {
  auto s = Arg<float>(info, 0, napi_float32_array, "src");
  auto out = Arg<double>(info, 1, napi_float64_array, "out");
  if (out.size < td::kStatsSlots) throw Napi::RangeError::New(info.Env(), "trt-debug native: stats output too short");
  const KernelTable& k = K();
  const int chunks = MetricChunks(s.size, 0);
  std::vector<td::StatsAcc> parts(static_cast<size_t>(std::max(chunks, 1)));
  if (chunks <= 1) {
    if (s.size > 0) k.stats(s.data, s.size, 0, &parts[0]);
  } else {
    td::parallel_chunks(chunks, [&](int c) {
      size_t b, e;
      td::chunk_bounds(s.size, chunks, c, td::kStatsBlock, &b, &e);
      if (e > b) k.stats(s.data + b, e - b, b, &parts[c]);
    });
  }
  td::StatsAcc acc;
  for (const auto& p : parts) td::stats_merge(acc, p);
  double* o = out.data;
  o[td::kSNumel] = static_cast<double>(s.size);
  o[td::kSNan] = static_cast<double>(acc.nan);
  o[td::kSPosInf] = static_cast<double>(acc.posInf);
  o[td::kSNegInf] = static_cast<double>(acc.negInf);
  o[td::kSFinite] = static_cast<double>(acc.finite);
  o[td::kSMin] = acc.min;
  o[td::kSMax] = acc.max;
  o[td::kSMean] = acc.mean;
  o[td::kSM2] = acc.m2;
  o[td::kSAbsMax] = acc.absMax;
  o[td::kSFirstNonFiniteAt] = static_cast<double>(acc.firstNonFiniteAt);
  return info.Env().Undefined();
}

// Local error histograms of the calling JS thread: chunks * 2 * kErrHistStride uint32 counters,
// kept zero between calls (only the touched range and the dummy slots are cleared after use).
std::vector<uint32_t>& DiffScratch(size_t chunks) {
  thread_local std::vector<uint32_t> scratch;
  const size_t need = chunks * 2 * td::kErrHistStride;
  if (scratch.size() < need) scratch.resize(need, 0u);
  return scratch;
}

// diff(ref, cand, infEq, out, histAbs, histRel): fills `out` (DiffSlot layout) and ADDS the
// error counts to the two histograms (kErrHistBins doubles each, zero-filled by the caller).
Napi::Value Diff(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto r = Arg<float>(info, 0, napi_float32_array, "ref");
  auto c = Arg<float>(info, 1, napi_float32_array, "cand");
  if (r.size != c.size) throw Napi::RangeError::New(env, "trt-debug native: ref and cand lengths differ");
  const bool infEq = info.Length() > 2 && info[2].ToBoolean().Value();
  auto out = Arg<double>(info, 3, napi_float64_array, "out");
  auto ha = Arg<double>(info, 4, napi_float64_array, "histAbs");
  auto hr = Arg<double>(info, 5, napi_float64_array, "histRel");
  if (out.size < td::kDiffSlots || ha.size < td::kErrHistBins || hr.size < td::kErrHistBins) {
    throw Napi::RangeError::New(env, "trt-debug native: diff buffers too short");
  }
  const KernelTable& k = K();
  const size_t n = r.size;
  const int chunks = std::max(MetricChunks(n, 2 * td::kErrHistStride * sizeof(uint32_t)), 1);
  std::vector<uint32_t>& hist = DiffScratch(static_cast<size_t>(chunks));
  std::vector<td::DiffAcc> parts(static_cast<size_t>(chunks));
  auto body = [&](int ch) {
    size_t b, e;
    td::chunk_bounds(n, chunks, ch, 64, &b, &e);
    uint32_t* h = hist.data() + static_cast<size_t>(ch) * 2 * td::kErrHistStride;
    if (e > b) k.diff(r.data + b, c.data + b, e - b, b, infEq, &parts[ch], h, h + td::kErrHistStride);
  };
  if (chunks == 1) body(0);
  else td::parallel_chunks(chunks, body);
  td::DiffAcc acc;
  for (int ch = 0; ch < chunks; ++ch) {
    const td::DiffAcc& p = parts[ch];
    td::diff_merge(acc, p);
    uint32_t* h = hist.data() + static_cast<size_t>(ch) * 2 * td::kErrHistStride;
    for (uint32_t i = p.minIdx; i <= p.maxIdx && i < td::kErrHistBins; ++i) {
      ha.data[i] += h[i];
      hr.data[i] += h[td::kErrHistStride + i];
      h[i] = 0;
      h[td::kErrHistStride + i] = 0;
    }
    for (uint32_t i = td::kErrHistBins; i < td::kErrHistStride; ++i) {
      h[i] = 0;
      h[td::kErrHistStride + i] = 0;
    }
  }
  acc.numel = n;
  double* o = out.data;
  o[td::kDNumel] = static_cast<double>(n);
  o[td::kDRefNan] = static_cast<double>(acc.refNan);
  o[td::kDRefInf] = static_cast<double>(acc.refInf);
  o[td::kDCandNan] = static_cast<double>(acc.candNan);
  o[td::kDCandInf] = static_cast<double>(acc.candInf);
  o[td::kDMismatch] = static_cast<double>(acc.mismatch);
  o[td::kDFinite] = static_cast<double>(acc.finite);
  o[td::kDZero] = static_cast<double>(acc.zero);
  o[td::kDMaxAbs] = acc.maxAbs;
  o[td::kDSumAbs] = acc.sumAbs;
  o[td::kDMaxRel] = acc.maxRel;
  o[td::kDSumRel] = acc.sumRel;
  o[td::kDSumR2] = acc.sumR2;
  o[td::kDSumC2] = acc.sumC2;
  o[td::kDSumD2] = acc.sumD2;
  o[td::kDDot] = acc.dot;
  o[td::kDRefAbsMax] = acc.refAbsMax;
  o[td::kDCandAbsMax] = acc.candAbsMax;
  o[td::kDMinIdx] = acc.minIdx;
  o[td::kDMaxIdx] = acc.maxIdx;
  o[td::kDMaxAbsAt] = static_cast<double>(acc.maxAbsAt);
  o[td::kDMaxRelAt] = static_cast<double>(acc.maxRelAt);
  o[td::kDFirstMismatchAt] = static_cast<double>(acc.firstMismatchAt);
  o[td::kDNewNonFinite] = static_cast<double>(acc.newNonFinite);
  return env.Undefined();
}

// elemwise(ref, cand, infEq, atol, rtol, out): fills `out` (ElemSlot layout).
Napi::Value Elemwise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto r = Arg<float>(info, 0, napi_float32_array, "ref");
  auto c = Arg<float>(info, 1, napi_float32_array, "cand");
  if (r.size != c.size) throw Napi::RangeError::New(env, "trt-debug native: ref and cand lengths differ");
  const bool infEq = info.Length() > 2 && info[2].ToBoolean().Value();
  const double atol = Num(info, 3, "atol"), rtol = Num(info, 4, "rtol");
  auto out = Arg<double>(info, 5, napi_float64_array, "out");
  if (out.size < td::kElemSlots) throw Napi::RangeError::New(env, "trt-debug native: elemwise output too short");
  const KernelTable& k = K();
  const size_t n = r.size;
  const int chunks = td::chunk_count(n);
  std::vector<td::ElemAcc> parts(static_cast<size_t>(std::max(chunks, 1)));
  if (chunks <= 1) {
    if (n > 0) k.elem(r.data, c.data, n, 0, infEq, atol, rtol, &parts[0]);
  } else {
    td::parallel_chunks(chunks, [&](int ch) {
      size_t b, e;
      td::chunk_bounds(n, chunks, ch, 64, &b, &e);
      if (e > b) k.elem(r.data + b, c.data + b, e - b, b, infEq, atol, rtol, &parts[ch]);
    });
  }
  td::ElemAcc acc;
  for (const auto& p : parts) td::elem_merge(acc, p);
  double* o = out.data;
  o[td::kEFail] = static_cast<double>(acc.fail);
  o[td::kEFirstFailAt] = static_cast<double>(acc.firstFailAt);
  o[td::kEMinAtol] = acc.minAtol;
  o[td::kEMinRtol] = acc.minRtol;
  o[td::kEMismatch] = static_cast<double>(acc.mismatch);
  return env.Undefined();
}

Napi::Value AbsHistogram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = Arg<float>(info, 0, napi_float32_array, "src");
  auto h = Arg<double>(info, 1, napi_float64_array, "hist");
  const double w = Num(info, 2, "binWidth");
  if (h.size == 0 || h.size >= (size_t{1} << 30) || !(w > 0) || !std::isfinite(w)) {
    throw Napi::RangeError::New(env, "trt-debug native: bad histogram");
  }
  const KernelTable& k = K();
  const size_t nbins = h.size;
  const size_t stride = nbins + td::kHistDummy;
  // interleaved sub-histograms keep repeated bins (e.g. many near-zero values) from
  // serializing on one counter; only when they stay small
  const int nsub = nbins <= 65536 ? 4 : 1;
  const int chunks = std::max(MetricChunks(s.size, static_cast<size_t>(nsub) * stride * sizeof(uint32_t)), 1);
  std::vector<uint32_t> local(static_cast<size_t>(chunks) * static_cast<size_t>(nsub) * stride, 0u);
  std::vector<uint64_t> sk(static_cast<size_t>(chunks), 0);
  auto body = [&](int c) {
    size_t b, e;
    td::chunk_bounds(s.size, chunks, c, 64, &b, &e);
    if (e > b) sk[c] = k.abs_hist(s.data + b, e - b, local.data() + static_cast<size_t>(c) * nsub * stride, nbins, nsub, w);
  };
  if (chunks == 1) body(0);
  else td::parallel_chunks(chunks, body);
  uint64_t skipped = 0;
  for (int c = 0; c < chunks; ++c) {
    skipped += sk[c];
    for (int sub = 0; sub < nsub; ++sub) {
      const uint32_t* l = local.data() + (static_cast<size_t>(c) * nsub + sub) * stride;
      for (size_t i = 0; i < nbins; ++i) h.data[i] += l[i];
    }
  }
  return Napi::Number::New(env, static_cast<double>(skipped));
}

// ---- control -----------------------------------------------------------------------------

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("simd", K().name);
  o.Set("threads", td::pool_threads());
  o.Set("cpuSimd", td::cpu_has_avx2_f16c() ? "avx2+f16c" : "scalar");
  o.Set("parallelThreshold", static_cast<double>(td::kParallelThreshold));
  return o;
}

// setSimd("scalar" | "best"): switch kernel builds (tests and benchmarks).
Napi::Value SetSimd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string what = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "best";
  if (what == "scalar") {
    g_table = &td::scalar_kernels();
  } else if (what == "best") {
    g_table = &td::kernels();
  } else if (what == "avx2+f16c") {
    if (!td::cpu_has_avx2_f16c()) throw Napi::Error::New(env, "trt-debug native: this CPU lacks AVX2/F16C");
    g_table = &td::avx2_kernels();
  } else {
    throw Napi::RangeError::New(env, "trt-debug native: unknown SIMD level " + what);
  }
  return Napi::String::New(env, K().name);
}

// setThreads(n): number of threads for large inputs (n <= 0: default).
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const double v = Num(info, 0, "threads");
  td::set_pool_threads(static_cast<int>(v));
  return Napi::Number::New(info.Env(), td::pool_threads());
}

// installSignalCleanup(): SIGINT/SIGTERM unlink the registered temp files and _exit at once,
// even while the event loop is blocked (src/runtime/cleanup.ts). Returns false if unsupported.
Napi::Value InstallSignalCleanup(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), td::install_signal_cleanup());
}

// registerTemp(path): slot number, or -1 (table full, path too long).
Napi::Value RegisterTemp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "trt-debug native: registerTemp(path: string)");
  const std::string p = info[0].As<Napi::String>().Utf8Value();
  if (p.find('\0') != std::string::npos) return Napi::Number::New(env, -1);
  return Napi::Number::New(env, td::register_temp(p.data(), p.size()));
}

Napi::Value UnregisterTemp(const Napi::CallbackInfo& info) {
  const double v = Num(info, 0, "slot");
  td::unregister_temp(static_cast<int>(v));
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setSimd", Napi::Function::New(env, SetSimd));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("f32ToF16", Napi::Function::New(env, F32ToF16));
  exports.Set("f16ToF32", Napi::Function::New(env, F16ToF32));
  exports.Set("f32ToBf16", Napi::Function::New(env, F32ToBf16));
  exports.Set("bf16ToF32", Napi::Function::New(env, Bf16ToF32));
  exports.Set("f32ToFp8", Napi::Function::New(env, F32ToFp8));
  exports.Set("fp8ToF32", Napi::Function::New(env, Fp8ToF32));
  exports.Set("roundTo", Napi::Function::New(env, RoundTo));
  exports.Set("quantize", Napi::Function::New(env, Quantize));
  exports.Set("dequantize", Napi::Function::New(env, Dequantize));
  exports.Set("fakeQuant", Napi::Function::New(env, FakeQuant));
  exports.Set("perChannelAbsMax", Napi::Function::New(env, PerChannelAbsMax));
  exports.Set("absMax", Napi::Function::New(env, AbsMax));
  exports.Set("tensorStats", Napi::Function::New(env, TensorStats));
  exports.Set("diff", Napi::Function::New(env, Diff));
  exports.Set("elemwise", Napi::Function::New(env, Elemwise));
  exports.Set("absHistogram", Napi::Function::New(env, AbsHistogram));
  exports.Set("installSignalCleanup", Napi::Function::New(env, InstallSignalCleanup));
  exports.Set("registerTemp", Napi::Function::New(env, RegisterTemp));
  exports.Set("unregisterTemp", Napi::Function::New(env, UnregisterTemp));
  return exports;
}

}  // namespace

NODE_API_MODULE(trt_debug_native, Init)
