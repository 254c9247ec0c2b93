/**
 * The low-level kernel contract shared by the native addon (native/src/addon.cc) and the
 * TypeScript kernels (./ts.ts). Callers (./checked-api.ts) validate arguments and allocate outputs;
 * kernels only compute. Slot layouts below mirror native/src/kernels.h.
 */

/** Format codes (native/src/kernels.h `Format`). */
export const FMT_FP16 = 0;
export const FMT_BF16 = 1;
export const FMT_E4M3FN = 2;
export const FMT_E5M2 = 3;

/**
 * Error histograms: index 0 is unused (exact zeros are counted in the Z slot); a positive
 * error e goes to index 1 + (bits(float32(e)) >>> 16), i.e. bins 2^-7 wide relative to the
 * bin's lower edge; index 1 + 0x7f80 holds errors that overflow float32.
 */
export const ERR_HIST_BINS = 0x7f82;

/** Diff output slots (native DiffSlot). */
export const D = {
  NUMEL: 0,
  REF_NAN: 1,
  REF_INF: 2,
  CAND_NAN: 3,
  CAND_INF: 4,
  MISMATCH: 5,
  FINITE: 6,
  ZERO: 7,
  MAX_ABS: 8,
  SUM_ABS: 9,
  MAX_REL: 10,
  SUM_REL: 11,
  SUM_R2: 12,
  SUM_C2: 13,
  SUM_D2: 14,
  DOT: 15,
  REF_ABS_MAX: 16,
  CAND_ABS_MAX: 17,
  MIN_IDX: 18,
  MAX_IDX: 19,
  MAX_ABS_AT: 20,
  MAX_REL_AT: 21,
  FIRST_MISMATCH_AT: 22,
  NEW_NON_FINITE: 23,
  SLOTS: 24,
} as const;

/** Stats output slots (native StatsSlot). */
export const S = {
  NUMEL: 0,
  NAN: 1,
  POS_INF: 2,
  NEG_INF: 3,
  FINITE: 4,
  MIN: 5,
  MAX: 6,
  MEAN: 7,
  M2: 8,
  ABS_MAX: 9,
  FIRST_NON_FINITE_AT: 10,
  SLOTS: 11,
} as const;

/** Elementwise-check output slots (native ElemSlot). */
export const E = { FAIL: 0, FIRST_FAIL_AT: 1, MIN_ATOL: 2, MIN_RTOL: 3, MISMATCH: 4, SLOTS: 5 } as const;

/** Block size of the stats kernel (its two-pass mean/M2 works per block). */
export const STATS_BLOCK = 4096;

export interface KernelInfo {
  simd: string;
  threads: number;
}

/**
 * Per-channel layout: the tensor is viewed as [outer, channels, inner]; `scales` has
 * `channels` entries (per tensor: outer = 1, channels = 1, inner = numel).
 */
export interface Kernels {
  info(): KernelInfo;
  f32ToF16(src: Float32Array, dst: Uint16Array): void;
  f16ToF32(src: Uint16Array, dst: Float32Array): void;
  f32ToBf16(src: Float32Array, dst: Uint16Array): void;
  bf16ToF32(src: Uint16Array, dst: Float32Array): void;
  f32ToFp8(src: Float32Array, dst: Uint8Array, fmt: number, saturate: boolean): void;
  fp8ToF32(src: Uint8Array, dst: Float32Array, fmt: number): void;
  roundTo(src: Float32Array, dst: Float32Array, fmt: number): void;
  quantize(
    src: Float32Array,
    dst: Int8Array,
    scales: Float32Array,
    outer: number,
    channels: number,
    inner: number,
    qmin: number,
    qmax: number,
  ): void;
  dequantize(src: Int8Array, dst: Float32Array, scales: Float32Array, outer: number, channels: number, inner: number): void;
  fakeQuant(
    src: Float32Array,
    dst: Float32Array,
    scales: Float32Array,
    outer: number,
    channels: number,
    inner: number,
    qmin: number,
    qmax: number,
  ): void;
  perChannelAbsMax(src: Float32Array, dst: Float32Array, outer: number, channels: number, inner: number): void;
  absMax(src: Float32Array): number;
  tensorStats(src: Float32Array, out: Float64Array): void;
  /** Fills `out` (D slots) and adds the error counts to histAbs/histRel (ERR_HIST_BINS each). */
  diff(ref: Float32Array, cand: Float32Array, infEq: boolean, out: Float64Array, histAbs: Float64Array, histRel: Float64Array): void;
  elemwise(ref: Float32Array, cand: Float32Array, infEq: boolean, atol: number, rtol: number, out: Float64Array): void;
  absHistogram(src: Float32Array, hist: Float64Array, binWidth: number): number;
}
