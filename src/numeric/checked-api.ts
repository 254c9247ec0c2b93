/**
 * Builds the public numeric API (numeric-types.ts `NumericImpl`) on top of a kernel set. Argument
 * checking, output allocation and the final arithmetic on accumulated sums (means, norms,
 * cosine, SQNR, histogram quantiles) live here, shared by both implementations, so the
 * native and TypeScript backends can only differ inside the kernels.
 *
 * Nothing here loops over tensor elements: only over histogram bins and channels.
 */
import { numel } from "../core/host-tensor.js";
import { D, E, ERR_HIST_BINS, FMT_BF16, FMT_E4M3FN, FMT_E5M2, FMT_FP16, S, type Kernels } from "./kernels.js";
import type {
  DiffMetrics,
  ElemwiseOptions,
  ElemwiseResult,
  FloatFormat,
  Fp8Format,
  NumericBackendInfo,
  NumericImpl,
  QuantParams,
} from "./numeric-types.js";

const FORMAT_CODES: Record<FloatFormat, number> = {
  fp16: FMT_FP16,
  bf16: FMT_BF16,
  fp8e4m3fn: FMT_E4M3FN,
  fp8e5m2: FMT_E5M2,
};

function formatCode(format: string, allowed: readonly string[]): number {
  if (!allowed.includes(format)) {
    throw new RangeError(`trt-debug numeric: unknown format ${JSON.stringify(format)} (expected ${allowed.join(", ")})`);
  }
  return FORMAT_CODES[format as FloatFormat];
}
const ALL_FORMATS: readonly FloatFormat[] = ["fp16", "bf16", "fp8e4m3fn", "fp8e5m2"];
const FP8_FORMATS: readonly Fp8Format[] = ["fp8e4m3fn", "fp8e5m2"];

function checkDst<T extends { length: number }>(dst: T | undefined, n: number, make: (n: number) => T, what: string): T {
  if (dst === undefined) return make(n);
  if (dst.length !== n) {
    throw new RangeError(`trt-debug numeric: ${what} has ${dst.length} elements, expected ${n}`);
  }
  return dst;
}

function checkType(x: unknown, ctor: { new (n: number): unknown; name: string }, what: string): void {
  if (!(x instanceof ctor)) throw new TypeError(`trt-debug numeric: ${what} must be a ${ctor.name}`);
}

// ---- quantization parameters ------------------------------------------------------------------

export interface ResolvedQuant {
  scales: Float32Array;
  outer: number;
  channels: number;
  inner: number;
  qmin: number;
  qmax: number;
}

function checkDims(dims: readonly number[], n: number): void {
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`trt-debug numeric: bad dims [${dims.join(", ")}]`);
  }
  if (numel(dims) !== n) {
    throw new RangeError(`trt-debug numeric: dims [${dims.join(", ")}] hold ${numel(dims)} elements, the tensor has ${n}`);
  }
}

function normalizeAxis(axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new RangeError(`trt-debug numeric: axis ${axis} out of range for rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** A quantization's scale layout (per tensor, or per channel of `dims[axis]`), checked. */
export function resolveQuant(n: number, p: QuantParams): ResolvedQuant {
  const qmin = p.qmin ?? -128;
  const qmax = p.qmax ?? 127;
  if (!Number.isInteger(qmin) || !Number.isInteger(qmax) || qmin < -128 || qmax > 127 || qmin > qmax) {
    throw new RangeError(`trt-debug numeric: int8 range [${qmin}, ${qmax}] is not inside [-128, 127]`);
  }
  const s = p.scale;
  if (typeof s === "number") {
    if (p.dims) checkDims(p.dims, n);
    return { scales: Float32Array.of(s), outer: 1, channels: 1, inner: n, qmin, qmax };
  }
  checkType(s, Float32Array, "scale");
  if (!p.dims) {
    if (s.length === 1) return { scales: s, outer: 1, channels: 1, inner: n, qmin, qmax };
    throw new RangeError("trt-debug numeric: a per-channel scale needs the tensor's dims");
  }
  checkDims(p.dims, n);
  const rank = p.dims.length;
  if (rank === 0) {
    if (s.length !== 1) throw new RangeError("trt-debug numeric: a scalar tensor takes one scale");
    return { scales: s, outer: 1, channels: 1, inner: n, qmin, qmax };
  }
  const axis = normalizeAxis(p.axis ?? 1, rank);
  const channels = p.dims[axis]!;
  if (s.length !== channels) {
    throw new RangeError(`trt-debug numeric: ${s.length} scales for ${channels} channels on axis ${axis}`);
  }
  return {
    scales: s,
    outer: numel(p.dims.slice(0, axis)),
    channels,
    inner: numel(p.dims.slice(axis + 1)),
    qmin,
    qmax,
  };
}

// ---- histogram quantiles ---------------------------------------------------------------------

const bitsF = new Float32Array(1);
const bitsU = new Uint32Array(bitsF.buffer);
function fromBits(b: number): number {
  bitsU[0] = b;
  return bitsF[0]!;
}

/**
 * Estimated value of the order statistic of 0-based rank j (0 <= j < total), errors sorted
 * ascending: exact zeros first, then the histogram bins; inside a bin of `cnt` values with
 * edges [lo, hi) the k-th value is placed at lo + (hi - lo) * (k + 0.5) / cnt.
 */
function orderStat(hist: Float64Array, minIdx: number, maxIdx: number, zero: number, j: number, maxVal: number): number {
  if (j < zero) return 0;
  let before = zero;
  for (let i = minIdx; i <= maxIdx; i++) {
    const cnt = hist[i]!;
    if (cnt === 0) continue;
    if (j < before + cnt) {
      const key = i - 1;
      if (key >= 0x7f80) return maxVal; // float32 overflow bin: only bounded by the max
      const lo = fromBits(key << 16);
      const hi = Math.min(fromBits((key + 1) << 16), maxVal);
      const v = lo + (hi - lo) * ((j - before + 0.5) / cnt);
      return Math.min(Math.max(v, lo), maxVal);
    }
    before += cnt;
  }
  return maxVal;
}

/**
 * Quantile q of `total` errors (linear interpolation between order statistics at rank
 * q * (total - 1), as numpy's default), estimated from the histogram. Each estimated order
 * statistic lies in the same 2^-7-relative-wide bin as the true one, so the result is
 * within a relative 2^-7 (+ 2^-24 from rounding the error to float32) of the exact value.
 */
function histQuantile(hist: Float64Array, minIdx: number, maxIdx: number, zero: number, total: number, q: number, maxVal: number): number {
  if (total === 0) return 0;
  const p = q * (total - 1);
  const j = Math.floor(p);
  const f = p - j;
  const a = orderStat(hist, minIdx, maxIdx, zero, j, maxVal);
  if (f === 0 || j + 1 >= total) return a;
  const b = orderStat(hist, minIdx, maxIdx, zero, j + 1, maxVal);
  return a + (b - a) * f;
}

// ---- the implementation ----------------------------------------------------------------------

export function makeImpl(k: Kernels, backend: "native" | "typescript", reason?: string): NumericImpl {
  // scratch reused across calls (the API is synchronous, so never shared by two calls)
  const histAbs = new Float64Array(ERR_HIST_BINS);
  const histRel = new Float64Array(ERR_HIST_BINS);
  const diffOut = new Float64Array(D.SLOTS);
  const statsOut = new Float64Array(S.SLOTS);
  const elemOut = new Float64Array(E.SLOTS);

  const impl: NumericImpl = {
    backend,
    info(): NumericBackendInfo {
      const i = k.info();
      return reason === undefined ? { backend, simd: i.simd, threads: i.threads } : { backend, reason, simd: i.simd, threads: i.threads };
    },

    f32ToF16(src, dst) {
      checkType(src, Float32Array, "src");
      const out = checkDst(dst, src.length, (n) => new Uint16Array(n), "dst");
      k.f32ToF16(src, out);
      return out;
    },
    f16ToF32(src, dst) {
      checkType(src, Uint16Array, "src");
      const out = checkDst(dst, src.length, (n) => new Float32Array(n), "dst");
      k.f16ToF32(src, out);
      return out;
    },
    f32ToBf16(src, dst) {
      checkType(src, Float32Array, "src");
      const out = checkDst(dst, src.length, (n) => new Uint16Array(n), "dst");
      k.f32ToBf16(src, out);
      return out;
    },
    bf16ToF32(src, dst) {
      checkType(src, Uint16Array, "src");
      const out = checkDst(dst, src.length, (n) => new Float32Array(n), "dst");
      k.bf16ToF32(src, out);
      return out;
    },
    f32ToFp8(src, format, saturate = true, dst) {
      checkType(src, Float32Array, "src");
      const fmt = formatCode(format, FP8_FORMATS);
      const out = checkDst(dst, src.length, (n) => new Uint8Array(n), "dst");
      k.f32ToFp8(src, out, fmt, saturate);
      return out;
    },
    fp8ToF32(src, format, dst) {
      checkType(src, Uint8Array, "src");
      const fmt = formatCode(format, FP8_FORMATS);
      const out = checkDst(dst, src.length, (n) => new Float32Array(n), "dst");
      k.fp8ToF32(src, out, fmt);
      return out;
    },
    roundTo(src, format, dst) {
      checkType(src, Float32Array, "src");
      const fmt = formatCode(format, ALL_FORMATS);
      const out = checkDst(dst, src.length, (n) => new Float32Array(n), "dst");
      k.roundTo(src, out, fmt);
      return out;
    },

    quantizeInt8(src, p, dst) {
      checkType(src, Float32Array, "src");
      const q = resolveQuant(src.length, p);
      const out = checkDst(dst, src.length, (n) => new Int8Array(n), "dst");
      k.quantize(src, out, q.scales, q.outer, q.channels, q.inner, q.qmin, q.qmax);
      return out;
    },
    dequantizeInt8(src, p, dst) {
      checkType(src, Int8Array, "src");
      const q = resolveQuant(src.length, p);
      const out = checkDst(dst, src.length, (n) => new Float32Array(n), "dst");
      k.dequantize(src, out, q.scales, q.outer, q.channels, q.inner);
      return out;
    },
    fakeQuantInt8(src, p, dst) {
      checkType(src, Float32Array, "src");
      const q = resolveQuant(src.length, p);
      const out = checkDst(dst, src.length, (n) => new Float32Array(n), "dst");
      k.fakeQuant(src, out, q.scales, q.outer, q.channels, q.inner, q.qmin, q.qmax);
      return out;
    },
    perChannelAbsMax(src, dims, axis) {
      checkType(src, Float32Array, "src");
      checkDims(dims, src.length);
      if (dims.length === 0) return Float32Array.of(k.absMax(src));
      const ax = normalizeAxis(axis, dims.length);
      const channels = dims[ax]!;
      const out = new Float32Array(channels);
      k.perChannelAbsMax(src, out, numel(dims.slice(0, ax)), channels, numel(dims.slice(ax + 1)));
      return out;
    },

    tensorStats(x) {
      checkType(x, Float32Array, "x");
      const o = statsOut;
      k.tensorStats(x, o);
      const fin = o[S.FINITE]!;
      const has = fin > 0;
      return {
        numel: o[S.NUMEL]!,
        nanCount: o[S.NAN]!,
        posInfCount: o[S.POS_INF]!,
        negInfCount: o[S.NEG_INF]!,
        // + 0: a zero min/max is reported as +0 (-0 and +0 compare equal, and which one a
        // vectorized min/max keeps is unspecified)
        min: has ? o[S.MIN]! + 0 : NaN,
        max: has ? o[S.MAX]! + 0 : NaN,
        mean: has ? o[S.MEAN]! : NaN,
        std: has ? Math.sqrt(Math.max(0, o[S.M2]!) / fin) : NaN,
        absMax: has ? o[S.ABS_MAX]! : NaN,
        firstNonFiniteIndex: o[S.FIRST_NON_FINITE_AT]!,
      };
    },

    diffMetrics(ref, cand, opts = {}) {
      checkType(ref, Float32Array, "ref");
      checkType(cand, Float32Array, "cand");
      if (ref.length !== cand.length) {
        throw new RangeError(`trt-debug numeric: ref has ${ref.length} elements, cand ${cand.length}`);
      }
      const q = opts.quantile ?? 0.99;
      if (!(q >= 0 && q <= 1)) throw new RangeError(`trt-debug numeric: quantile ${q} is not in [0, 1]`);
      const o = diffOut;
      k.diff(ref, cand, opts.infinitiesCompareEqual === true, o, histAbs, histRel);
      const finite = o[D.FINITE]!;
      const zero = o[D.ZERO]!;
      const minIdx = o[D.MIN_IDX]!;
      const maxIdx = o[D.MAX_IDX]!;
      const maxAbs = o[D.MAX_ABS]!;
      const maxRel = o[D.MAX_REL]!;
      const medianAbs = histQuantile(histAbs, minIdx, maxIdx, zero, finite, 0.5, maxAbs);
      const quantileAbs = histQuantile(histAbs, minIdx, maxIdx, zero, finite, q, maxAbs);
      const medianRel = histQuantile(histRel, minIdx, maxIdx, zero, finite, 0.5, maxRel);
      const quantileRel = histQuantile(histRel, minIdx, maxIdx, zero, finite, q, maxRel);
      if (maxIdx >= minIdx) {
        histAbs.fill(0, minIdx, maxIdx + 1);
        histRel.fill(0, minIdx, maxIdx + 1);
      }
      const refL2 = Math.sqrt(o[D.SUM_R2]!);
      const candL2 = Math.sqrt(o[D.SUM_C2]!);
      const diffL2 = Math.sqrt(o[D.SUM_D2]!);
      const dot = o[D.DOT]!;
      let cosine: number;
      if (refL2 === 0 && candL2 === 0) cosine = 1;
      else if (refL2 === 0 || candL2 === 0) cosine = 0;
      else cosine = Math.min(1, Math.max(-1, dot / (refL2 * candL2)));
      return {
        numel: o[D.NUMEL]!,
        refNan: o[D.REF_NAN]!,
        refInf: o[D.REF_INF]!,
        candNan: o[D.CAND_NAN]!,
        candInf: o[D.CAND_INF]!,
        nonFiniteMismatch: o[D.MISMATCH]!,
        newNonFinite: o[D.NEW_NON_FINITE]!,
        finiteCount: finite,
        maxAbs,
        meanAbs: finite > 0 ? o[D.SUM_ABS]! / finite : 0,
        medianAbs,
        quantileAbs,
        maxRel,
        meanRel: finite > 0 ? o[D.SUM_REL]! / finite : 0,
        medianRel,
        quantileRel,
        refL2,
        diffL2,
        candL2,
        dot,
        cosine,
        relL2: diffL2 === 0 ? 0 : refL2 === 0 ? Infinity : diffL2 / refL2,
        sqnrDb: diffL2 === 0 ? Infinity : 20 * Math.log10(refL2 / diffL2),
        refAbsMax: o[D.REF_ABS_MAX]!,
        candAbsMax: o[D.CAND_ABS_MAX]!,
        maxAbsIndex: o[D.MAX_ABS_AT]!,
        maxRelIndex: o[D.MAX_REL_AT]!,
        firstMismatchIndex: o[D.FIRST_MISMATCH_AT]!,
      } satisfies DiffMetrics;
    },

    elemwiseCheck(ref, cand, opts: ElemwiseOptions): ElemwiseResult {
      checkType(ref, Float32Array, "ref");
      checkType(cand, Float32Array, "cand");
      if (ref.length !== cand.length) {
        throw new RangeError(`trt-debug numeric: ref has ${ref.length} elements, cand ${cand.length}`);
      }
      if (!(opts.atol >= 0) || !(opts.rtol >= 0)) throw new RangeError("trt-debug numeric: atol and rtol must be >= 0");
      const o = elemOut;
      k.elemwise(ref, cand, opts.infinitiesCompareEqual === true, opts.atol, opts.rtol, o);
      return {
        failCount: o[E.FAIL]!,
        nonFiniteMismatch: o[E.MISMATCH]!,
        firstFailIndex: o[E.FIRST_FAIL_AT]!,
        minAtol: o[E.MIN_ATOL]!,
        minRtol: o[E.MIN_RTOL]!,
      };
    },

    absHistogram(x, hist, binWidth) {
      checkType(x, Float32Array, "x");
      checkType(hist, Float64Array, "hist");
      if (hist.length === 0 || hist.length >= 2 ** 30) {
        throw new RangeError(`trt-debug numeric: histogram of ${hist.length} bins (need 1 .. 2^30 - 1)`);
      }
      if (!(binWidth > 0) || !Number.isFinite(binWidth)) {
        throw new RangeError(`trt-debug numeric: histogram bin width ${binWidth} must be positive and finite`);
      }
      return k.absHistogram(x, hist, binWidth);
    },

    absMax(x) {
      checkType(x, Float32Array, "x");
      return k.absMax(x);
    },
  };
  return impl;
}
