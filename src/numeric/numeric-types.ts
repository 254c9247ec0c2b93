/**
 * Public types of the numeric core (src/numeric/index.ts is the one door to it).
 * Semantics: docs/numeric.md.
 */

export type NumericBackendInfo = {
  backend: "native" | "typescript";
  /** Why the TypeScript kernels are in use (absent for native). */
  reason?: string;
  /** Kernel build in use: "avx2+f16c", "scalar" (native) or "js" (TypeScript). */
  simd: string;
  /** Threads used for large inputs (1 for TypeScript). */
  threads: number;
};

export type FloatFormat = "fp16" | "bf16" | "fp8e4m3fn" | "fp8e5m2";
export type Fp8Format = "fp8e4m3fn" | "fp8e5m2";

/**
 * Symmetric int8 quantization parameters (zero point 0).
 * - `scale` a number: one scale for the whole tensor (converted to float32 first).
 * - `scale` a Float32Array: one scale per channel along `axis` of a tensor with `dims`
 *   (`dims` required; `axis` defaults to 1 as in ONNX QuantizeLinear, may be negative).
 *   A Float32Array of length 1 without `dims` is a per-tensor scale.
 * - `qmin`/`qmax`: integer clamp range inside [-128, 127], default [-128, 127].
 */
export interface QuantParams {
  scale: number | Float32Array;
  axis?: number;
  dims?: readonly number[];
  qmin?: number;
  qmax?: number;
}

/**
 * min/max/mean/std/absMax over finite values only (NaN if none); std is the population
 * standard deviation; accumulated in double.
 */
export interface TensorStats {
  numel: number;
  nanCount: number;
  posInfCount: number;
  negInfCount: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  absMax: number;
  /** Index of the first NaN/Inf element, -1 if none. */
  firstNonFiniteIndex: number;
}

export interface DiffOptions {
  /** Quantile reported as quantileAbs/quantileRel, in [0, 1]; default 0.99. */
  quantile?: number;
  /** Same-signed infinities at the same position compare equal (default false). */
  infinitiesCompareEqual?: boolean;
}

export interface DiffMetrics {
  numel: number;
  refNan: number;
  refInf: number;
  candNan: number;
  candInf: number;
  /**
   * positions where cand is NaN/Inf but ref is finite, or ref and cand non-finite and not equal
   * (same-signed infinities count as equal only with infinitiesCompareEqual; NaN never equals)
   */
  nonFiniteMismatch: number;
  /** positions where cand is NaN/Inf and ref is finite ("new" non-finite values; part of nonFiniteMismatch) */
  newNonFinite: number;
  /** elements where both are finite (the ones the statistics below use) */
  finiteCount: number;
  maxAbs: number;
  meanAbs: number;
  medianAbs: number;
  quantileAbs: number;
  /** rel = |c-r|/|r|, r==0 replaced by 2.2e-16 */
  maxRel: number;
  meanRel: number;
  medianRel: number;
  quantileRel: number;
  refL2: number;
  diffL2: number;
  candL2: number;
  dot: number;
  /** dot/(|r||c|); 1 when both all-zero; 0 when exactly one is all-zero */
  cosine: number;
  /** diffL2/refL2 (0 when diffL2==0, Infinity when refL2==0 and diffL2>0) */
  relL2: number;
  /** 20*log10(refL2/diffL2), Infinity when diffL2==0 */
  sqnrDb: number;
  refAbsMax: number;
  candAbsMax: number;
  /** Index of the (first) element with the largest abs error; -1 if every error is 0. */
  maxAbsIndex: number;
  /** Index of the (first) element with the largest rel error; -1 if every error is 0. */
  maxRelIndex: number;
  /** Index of the first non-finite mismatch; -1 if none. */
  firstMismatchIndex: number;
}

/** Polygraphy-style elementwise check (an element fails when it exceeds both atol and rtol). */
export interface ElemwiseOptions {
  atol: number;
  rtol: number;
  infinitiesCompareEqual?: boolean;
}

export interface ElemwiseResult {
  /** Failing elements: finite pairs with |c-r| > atol and rel > rtol, plus non-finite mismatches. */
  failCount: number;
  /** Non-finite mismatches among the failures (no tolerance makes these pass). */
  nonFiniteMismatch: number;
  firstFailIndex: number;
  /** Smallest atol that makes every finite pair pass with the given rtol. */
  minAtol: number;
  /** Smallest rtol that makes every finite pair pass with the given atol. */
  minRtol: number;
}

/** One implementation of the numeric core (native addon or TypeScript). */
export interface NumericImpl {
  readonly backend: "native" | "typescript";
  info(): NumericBackendInfo;
  f32ToF16(src: Float32Array, dst?: Uint16Array): Uint16Array;
  f16ToF32(src: Uint16Array, dst?: Float32Array): Float32Array;
  f32ToBf16(src: Float32Array, dst?: Uint16Array): Uint16Array;
  bf16ToF32(src: Uint16Array, dst?: Float32Array): Float32Array;
  f32ToFp8(src: Float32Array, format: Fp8Format, saturate?: boolean, dst?: Uint8Array): Uint8Array;
  fp8ToF32(src: Uint8Array, format: Fp8Format, dst?: Float32Array): Float32Array;
  roundTo(src: Float32Array, format: FloatFormat, dst?: Float32Array): Float32Array;
  quantizeInt8(src: Float32Array, p: QuantParams, dst?: Int8Array): Int8Array;
  dequantizeInt8(src: Int8Array, p: QuantParams, dst?: Float32Array): Float32Array;
  fakeQuantInt8(src: Float32Array, p: QuantParams, dst?: Float32Array): Float32Array;
  perChannelAbsMax(src: Float32Array, dims: readonly number[], axis: number): Float32Array;
  tensorStats(x: Float32Array): TensorStats;
  diffMetrics(ref: Float32Array, cand: Float32Array, opts?: DiffOptions): DiffMetrics;
  elemwiseCheck(ref: Float32Array, cand: Float32Array, opts: ElemwiseOptions): ElemwiseResult;
  absHistogram(x: Float32Array, hist: Float64Array, binWidth: number): number;
  absMax(x: Float32Array): number;
}
