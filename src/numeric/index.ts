/**
 * The numeric core of trt-debug: the ONE door to every loop over tensor elements
 * (conversions, quantization, statistics, comparison metrics, calibration histograms).
 *
 * Backed by the native addon (native/, C++17, SIMD chosen at run time, a thread pool for
 * large inputs) when it loads, else by the TypeScript kernels in ./ts.ts. Both give the same
 * bits for conversions and quantization and agree within docs/numeric.md's tolerances for
 * sums. TRT_DEBUG_NO_NATIVE=1 forces the TypeScript kernels; the fallback prints a one-line
 * notice on stderr once per process (TRT_DEBUG_QUIET_NUMERIC=1 hides it).
 */
import { makeImpl, resolveQuant } from "./checked-api.js";
import { loadNative, type NativeAddon } from "./native.js";
import { tsKernels } from "./ts.js";
import type {
  DiffMetrics,
  DiffOptions,
  ElemwiseOptions,
  ElemwiseResult,
  FloatFormat,
  Fp8Format,
  NumericBackendInfo,
  NumericImpl,
  QuantParams,
  TensorStats,
} from "./numeric-types.js";

import type { HostTensor } from "../core/host-tensor.js";

export type * from "./numeric-types.js";
export type { NativeAddon } from "./native.js";

/** The TypeScript implementation (always available). */
export const tsImpl: NumericImpl = makeImpl(tsKernels, "typescript");

let nativeCache: NumericImpl | null | undefined;

/** The native implementation, or null when the addon is not built / does not load. Ignores TRT_DEBUG_NO_NATIVE. */
export function nativeImpl(): NumericImpl | null {
  if (nativeCache === undefined) {
    const l = loadNative();
    nativeCache = l.ok ? makeImpl(l.addon, "native") : null;
  }
  return nativeCache;
}

/** The raw addon (to switch SIMD level or thread count in tests and benchmarks), or null. */
export function nativeAddon(): NativeAddon | null {
  const l = loadNative();
  return l.ok ? l.addon : null;
}

/** Why the native implementation is not available (undefined when it is). */
export function nativeUnavailableReason(): string | undefined {
  const l = loadNative();
  return l.ok ? undefined : l.reason;
}

const NOTICE_KEY = Symbol.for("trt-debug.numeric.fallback-notice");

let active: NumericImpl | undefined;

function select(): NumericImpl {
  if (active) return active;
  let reason: string | undefined;
  if (process.env.TRT_DEBUG_NO_NATIVE === "1") {
    reason = "TRT_DEBUG_NO_NATIVE=1";
  } else {
    const n = nativeImpl();
    if (n) {
      active = n;
      return n;
    }
    reason = nativeUnavailableReason() ?? "native addon unavailable";
  }
  active = makeImpl(tsKernels, "typescript", reason);
  const g = globalThis as Record<symbol, unknown>;
  if (process.env.TRT_DEBUG_QUIET_NUMERIC !== "1" && g[NOTICE_KEY] !== true) {
    g[NOTICE_KEY] = true;
    process.stderr.write(`trt-debug: using the TypeScript numeric kernels (${reason}); results are identical, only slower\n`);
  }
  return active;
}

/** The implementation the functions below use. */
export function activeImpl(): NumericImpl {
  return select();
}

/** Which implementation is in use, and why (for `trt-debug --version` / doctor). */
export function numericBackend(): NumericBackendInfo {
  return select().info();
}

export function f32ToF16(src: Float32Array, dst?: Uint16Array): Uint16Array {
  return select().f32ToF16(src, dst);
}
export function f16ToF32(src: Uint16Array, dst?: Float32Array): Float32Array {
  return select().f16ToF32(src, dst);
}
export function f32ToBf16(src: Float32Array, dst?: Uint16Array): Uint16Array {
  return select().f32ToBf16(src, dst);
}
export function bf16ToF32(src: Uint16Array, dst?: Float32Array): Float32Array {
  return select().bf16ToF32(src, dst);
}
/** float32 -> fp8 bits (ONNX Cast; saturate defaults to true as in ONNX). */
export function f32ToFp8(src: Float32Array, format: Fp8Format, saturate?: boolean, dst?: Uint8Array): Uint8Array {
  return select().f32ToFp8(src, format, saturate, dst);
}
export function fp8ToF32(src: Uint8Array, format: Fp8Format, dst?: Float32Array): Float32Array {
  return select().fp8ToF32(src, format, dst);
}
/** float32 -> float32 rounded through `format` (dst may be src: in place). fp8 saturates. */
export function roundTo(src: Float32Array, format: FloatFormat, dst?: Float32Array): Float32Array {
  return select().roundTo(src, format, dst);
}
export function quantizeInt8(src: Float32Array, p: QuantParams, dst?: Int8Array): Int8Array {
  return select().quantizeInt8(src, p, dst);
}
export function dequantizeInt8(src: Int8Array, p: QuantParams, dst?: Float32Array): Float32Array {
  return select().dequantizeInt8(src, p, dst);
}
/** quantize -> dequantize fused, float32 out (dst may be src). */
export function fakeQuantInt8(src: Float32Array, p: QuantParams, dst?: Float32Array): Float32Array {
  return select().fakeQuantInt8(src, p, dst);
}
/** max |x| per channel along `axis` (finite values only; 0 for a channel without any). */
export function perChannelAbsMax(src: Float32Array, dims: readonly number[], axis: number): Float32Array {
  return select().perChannelAbsMax(src, dims, axis);
}
export function tensorStats(x: Float32Array): TensorStats {
  return select().tensorStats(x);
}
export function diffMetrics(ref: Float32Array, cand: Float32Array, opts?: DiffOptions): DiffMetrics {
  return select().diffMetrics(ref, cand, opts);
}
/** Polygraphy's elementwise check, plus the smallest atol/rtol that would have passed. */
export function elemwiseCheck(ref: Float32Array, cand: Float32Array, opts: ElemwiseOptions): ElemwiseResult {
  return select().elemwiseCheck(ref, cand, opts);
}
/**
 * Number of elements failing Polygraphy's elementwise check: finite pairs with |c-r| > atol
 * and rel > rtol, plus non-finite mismatches (see elemwiseCheck for the details).
 */
export function countMismatches(
  ref: Float32Array,
  cand: Float32Array,
  atol: number,
  rtol: number,
  opts: { infinitiesCompareEqual?: boolean } = {},
): number {
  return select().elemwiseCheck(ref, cand, { atol, rtol, infinitiesCompareEqual: opts.infinitiesCompareEqual }).failCount;
}
/**
 * accumulate |x| into hist: bin = floor(|x|/binWidth) (computed in double), values beyond
 * the last bin go to the last bin; NaN/Inf skipped. Returns the count skipped.
 */
export function absHistogram(x: Float32Array, hist: Float64Array, binWidth: number): number {
  return select().absHistogram(x, hist, binWidth);
}
/** max |x| over finite values, 0 for empty. */
export function absMax(x: Float32Array): number {
  return select().absMax(x);
}

export function floatValues(t: HostTensor): Float32Array | null {
  switch (t.dtype) {
    case "float32":
      return t.data as Float32Array;
    case "float16":
      return f16ToF32(t.data as Uint16Array);
    case "bfloat16":
      return bf16ToF32(t.data as Uint16Array);
    case "float64":
      return Float32Array.from(t.data as Float64Array);
    default:
      return null;
  }
}

export {
  boolBytes,
  convertFloats,
  copyIntsInRange,
  f32ToFnuz,
  fnuzToF32,
  int8RangeCounts,
  lowWords,
  normalizeBools,
  packNibbles,
  swapBytes,
  unpackNibbles,
  widenToI64,
  type FnuzFormat,
  type HostFloatType,
  type Int8RangeCounts,
} from "./element-codecs.js";
export { fillUniformFloats, fillUniformInts, type UniformSource } from "./element-fill.js";
export { f64ToMiniFloatBits, miniFloatBitsToF64, roundHalfEven } from "./minifloat.js";
export { samplePair, type PairSample } from "./sample.js";
export { isPixelDType, pixelsToTensor, type PixelPlan, type Rgba } from "./image-pixels.js";
export { batchNormScale, dequantizeWeights, floatsFromJson, foldBias, fortranToC, gatherStrided, packValidity, scaleByChannel, storeNumbers } from "./element-layout.js";

/** The largest finite float8e4m3fn value: scaled fp8 quantization maps ±amax to ±448. */
export const FP8E4M3FN_MAX = 448;

function fp8Divided(src: Float32Array, p: QuantParams): { q: Float32Array; scaleOf: (i: number) => number } {
  // one scale in an array is a per-tensor scale, whatever the dims
  const single = typeof p.scale !== "number" && p.scale.length === 1;
  const { scales, channels, inner } = resolveQuant(src.length, single ? { scale: (p.scale as Float32Array)[0]! } : p);
  const scaleOf = (i: number) => scales[channels === 1 ? 0 : Math.floor(i / inner) % channels]!;
  const q = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) q[i] = src[i]! / scaleOf(i);
  return { q, scaleOf };
}

/**
 * Scaled fp8 quantization as ONNX QuantizeLinear-19 with a float8e4m3fn zero point 0 and
 * saturate=1 computes it: e4m3fn(x / s), the quotient in float32, rounded to nearest even and
 * saturated to ±448. Per tensor (`scale` a number) or per channel (`scale` per index of
 * `dims[axis]`). Returns the e4m3fn bit patterns.
 */
export function quantizeFp8(src: Float32Array, p: QuantParams): Uint8Array {
  return f32ToFp8(fp8Divided(src, p).q, "fp8e4m3fn", true);
}

/** quantizeFp8 then DequantizeLinear: e4m3fn(x / s) · s in float32 (what the Q/DQ pair gives). */
export function fakeQuantFp8(src: Float32Array, p: QuantParams): Float32Array {
  const { q, scaleOf } = fp8Divided(src, p);
  const back = fp8ToF32(f32ToFp8(q, "fp8e4m3fn", true), "fp8e4m3fn");
  for (let i = 0; i < back.length; i++) back[i] = back[i]! * scaleOf(i);
  return back;
}
