/**
 * TypeScript kernels: the fallback when the native addon is missing (or
 * TRT_DEBUG_NO_NATIVE=1). Same contract and the same bits as native/src/kernels*.{cc,inc};
 * reductions may differ from the native ones only in summation order.
 *
 * Performance notes: everything works on typed-array views (a Uint32Array alias of each
 * Float32Array for bit manipulation, so NaN payloads never pass through a JS number), the
 * fp16/fp8 -> float32 directions are table lookups, and no loop allocates.
 */
import {
  D,
  E,
  ERR_HIST_BINS,
  FMT_BF16,
  FMT_E4M3FN,
  FMT_FP16,
  S,
  STATS_BLOCK,
  type KernelInfo,
  type Kernels,
} from "./kernels.js";

const FLT_MAX = 3.4028234663852886e38;
const RNE_MAGIC = 12582912; // 1.5 * 2^23

function u32(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

// ---- tables -------------------------------------------------------------------------------

let f16Table: Uint32Array | null = null;
/** float16 bits -> float32 bits (exact; NaN quieted, payload kept, as vcvtph2ps). */
function f16ToF32Table(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    let bits: number;
    if (e === 0) {
      bits = floatBits(m * 5.9604644775390625e-8); // m * 2^-24, exact
    } else if (e === 31) {
      bits = m === 0 ? 0x7f800000 : 0x7fc00000 | (m << 13);
    } else {
      bits = ((e + 112) << 23) | (m << 13);
    }
    t[h] = (sign | bits) >>> 0;
  }
  f16Table = t;
  return t;
}

const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);
function floatBits(v: number): number {
  scratchF[0] = v;
  return scratchU[0]!;
}

let e4m3Table: Uint32Array | null = null;
let e5m2Table: Uint32Array | null = null;
/** fp8 bits -> float32 bits, as onnxruntime's Float8E4M3FN/Float8E5M2::ToFloat. */
function fp8Table(fmt: number): Uint32Array {
  if (fmt === FMT_E4M3FN) {
    if (!e4m3Table) {
      const t = new Uint32Array(256);
      for (let v = 0; v < 256; v++) {
        const sign = (v & 0x80) << 24;
        const e = (v >>> 3) & 0xf;
        const m = v & 7;
        let bits: number;
        if ((v & 0x7f) === 0x7f) bits = 0x7fc00000;
        else if (e === 0) bits = floatBits(m * 0.001953125); // m * 2^-9
        else bits = ((e + 120) << 23) | (m << 20);
        t[v] = (sign | bits) >>> 0;
      }
      e4m3Table = t;
    }
    return e4m3Table;
  }
  if (!e5m2Table) {
    const t = new Uint32Array(256);
    for (let v = 0; v < 256; v++) {
      const sign = (v & 0x80) << 24;
      const e = (v >>> 2) & 0x1f;
      const m = v & 3;
      const low = v & 0x7f;
      let bits: number;
      if (low === 0x7c) bits = 0x7f800000;
      else if (low > 0x7c) bits = 0x7fc00000;
      else if (e === 0) bits = floatBits(m * 1.52587890625e-5); // m * 2^-16
      else bits = ((e + 112) << 23) | (m << 21);
      t[v] = (sign | bits) >>> 0;
    }
    e5m2Table = t;
  }
  return e5m2Table;
}

// ---- per-element rules (mirror native/src/kernels.cc) ------------------------------------

/** float32 bits -> float16 bits: RNE, overflow -> inf, NaN -> quiet NaN with payload. */
function f16Bits(x: number, v: number): number {
  const a = x & 0x7fffffff;
  const sign = (x >>> 16) & 0x8000;
  if (a < 0x38800000) {
    // subnormal half: |v| + 0.5 has its ulp at 2^-24, so fround does the RNE
    return sign | ((Math.fround(Math.abs(v) + 0.5) - 0.5) * 16777216);
  }
  if (a < 0x47800000) return sign | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
  return sign | (a > 0x7f800000 ? 0x7e00 | ((a >>> 13) & 0x3ff) : 0x7c00);
}

/** float32 bits -> bfloat16 bits: RNE; NaN -> sign | 0x7fc0. */
function bf16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) & 0x8000) | 0x7fc0;
  return ((x >>> 0) + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

/** float32 -> e4m3fn bits (onnxruntime Cast, incl. its saturate=false behaviour). */
function e4m3Bits(x: number, v: number, sat: boolean): number {
  const a = x & 0x7fffffff;
  const sign = (x >>> 24) & 0x80;
  let r: number;
  if (a > 0x7f800000) return sign | 0x7f;
  if (a < 0x3c800000) {
    r = (Math.fround(Math.abs(v) + 16384) - 16384) * 512; // ulp(2^14) = 2^-9
  } else {
    r = (a - 0x3c000000 + 0x7ffff + ((a >>> 20) & 1)) >>> 20;
    if (r > 0x7e) r = sat ? 0x7e : a >= 0x43f00000 && a < 0x43f80000 ? 0x7e : 0x7f;
  }
  return sign | r;
}

/** float32 -> e5m2 bits (onnxruntime Cast, incl. its saturate=false behaviour). */
function e5m2Bits(x: number, v: number, sat: boolean): number {
  const a = x & 0x7fffffff;
  const sign = (x >>> 24) & 0x80;
  let r: number;
  if (a > 0x7f800000) return sign | 0x7f;
  if (a < 0x38800000) {
    r = (Math.fround(Math.abs(v) + 128) - 128) * 65536; // ulp(2^7) = 2^-16
  } else {
    r = (a - 0x38000000 + 0xfffff + ((a >>> 21) & 1)) >>> 21;
    if (r > 0x7b) r = sat ? 0x7b : a < 0x47800000 ? 0x7f : 0x7c;
  }
  return sign | r;
}

// ---- conversions ---------------------------------------------------------------------------
// Every hot loop is a small function over one block [b, e), called once per block: V8 then
// optimizes it as a normal function (a single long loop would run as on-stack-replacement
// code, up to 4x slower; measured).

const BLOCK = 16384;

function f32ToF16Range(u: Uint32Array, src: Float32Array, dst: Uint16Array, b: number, e: number): void {
  for (let i = b; i < e; i++) {
    const x = u[i]!;
    const a = x & 0x7fffffff;
    // the common case inline: a normal half
    if (a >= 0x38800000 && a < 0x47800000) {
      dst[i] = ((x >>> 16) & 0x8000) | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
    } else {
      dst[i] = f16Bits(x, src[i]!);
    }
  }
}
function f32ToF16(src: Float32Array, dst: Uint16Array): void {
  const u = u32(src);
  const n = src.length;
  for (let b = 0; b < n; b += BLOCK) f32ToF16Range(u, src, dst, b, Math.min(n, b + BLOCK));
}

function lookupRange(t: Uint32Array, src: Uint16Array | Uint8Array, d: Uint32Array, b: number, e: number): void {
  for (let i = b; i < e; i++) d[i] = t[src[i]!]!;
}
function f16ToF32(src: Uint16Array, dst: Float32Array): void {
  const t = f16ToF32Table();
  const d = u32(dst);
  const n = src.length;
  for (let b = 0; b < n; b += BLOCK) lookupRange(t, src, d, b, Math.min(n, b + BLOCK));
}

function f32ToBf16Range(u: Uint32Array, dst: Uint16Array, b: number, e: number): void {
  for (let i = b; i < e; i++) {
    const x = u[i]!;
    dst[i] = (x & 0x7fffffff) > 0x7f800000 ? ((x >>> 16) & 0x8000) | 0x7fc0 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}
function f32ToBf16(src: Float32Array, dst: Uint16Array): void {
  const u = u32(src);
  const n = src.length;
  for (let b = 0; b < n; b += BLOCK) f32ToBf16Range(u, dst, b, Math.min(n, b + BLOCK));
}

function bf16ToF32Range(src: Uint16Array, d: Uint32Array, b: number, e: number): void {
  for (let i = b; i < e; i++) d[i] = src[i]! << 16;
}
function bf16ToF32(src: Uint16Array, dst: Float32Array): void {
  const d = u32(dst);
  const n = src.length;
  for (let b = 0; b < n; b += BLOCK) bf16ToF32Range(src, d, b, Math.min(n, b + BLOCK));
}

function e4m3Range(u: Uint32Array, src: Float32Array, dst: Uint8Array, sat: boolean, b: number, e: number): void {
  for (let i = b; i < e; i++) dst[i] = e4m3Bits(u[i]!, src[i]!, sat);
}
function e5m2Range(u: Uint32Array, src: Float32Array, dst: Uint8Array, sat: boolean, b: number, e: number): void {
  for (let i = b; i < e; i++) dst[i] = e5m2Bits(u[i]!, src[i]!, sat);
}
function f32ToFp8(src: Float32Array, dst: Uint8Array, fmt: number, saturate: boolean): void {
  const u = u32(src);
  const n = src.length;
  const range = fmt === FMT_E4M3FN ? e4m3Range : e5m2Range;
  for (let b = 0; b < n; b += BLOCK) range(u, src, dst, saturate, b, Math.min(n, b + BLOCK));
}

function fp8ToF32(src: Uint8Array, dst: Float32Array, fmt: number): void {
  const t = fp8Table(fmt);
  const d = u32(dst);
  const n = src.length;
  for (let b = 0; b < n; b += BLOCK) lookupRange(t, src, d, b, Math.min(n, b + BLOCK));
}

function roundF16Range(t: Uint32Array, u: Uint32Array, src: Float32Array, d: Uint32Array, b: number, e: number): void {
  for (let i = b; i < e; i++) {
    const x = u[i]!;
    const a = x & 0x7fffffff;
    if (a >= 0x38800000 && a < 0x47800000) {
      d[i] = t[((x >>> 16) & 0x8000) | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13)]!;
    } else {
      d[i] = t[f16Bits(x, src[i]!)]!;
    }
  }
}
function roundBf16Range(u: Uint32Array, d: Uint32Array, b: number, e: number): void {
  for (let i = b; i < e; i++) d[i] = bf16Bits(u[i]!) << 16;
}
function roundE4m3Range(t: Uint32Array, u: Uint32Array, src: Float32Array, d: Uint32Array, b: number, e: number): void {
  for (let i = b; i < e; i++) d[i] = t[e4m3Bits(u[i]!, src[i]!, true)]!;
}
function roundE5m2Range(t: Uint32Array, u: Uint32Array, src: Float32Array, d: Uint32Array, b: number, e: number): void {
  for (let i = b; i < e; i++) d[i] = t[e5m2Bits(u[i]!, src[i]!, true)]!;
}
function roundTo(src: Float32Array, dst: Float32Array, fmt: number): void {
  const u = u32(src);
  const d = u32(dst);
  const n = src.length;
  if (fmt === FMT_FP16) {
    const t = f16ToF32Table();
    for (let b = 0; b < n; b += BLOCK) roundF16Range(t, u, src, d, b, Math.min(n, b + BLOCK));
  } else if (fmt === FMT_BF16) {
    for (let b = 0; b < n; b += BLOCK) roundBf16Range(u, d, b, Math.min(n, b + BLOCK));
  } else {
    const t = fp8Table(fmt);
    const range = fmt === FMT_E4M3FN ? roundE4m3Range : roundE5m2Range;
    for (let b = 0; b < n; b += BLOCK) range(t, u, src, d, b, Math.min(n, b + BLOCK));
  }
}

// ---- int8 ------------------------------------------------------------------------------------
// q = clamp(rne(float32(x / s)), qmin, qmax), NaN -> qmin. x / s of two float32 values in
// double, rounded once to float32, equals the float32 division (53 >= 2*24 + 2 bits).
// Branch-free in V8: Math.min/max clamp (a NaN passes through), the 1.5 * 2^23 addition
// rounds half to even, and `(r - qmin) | 0` turns a NaN into 0, i.e. q = qmin (measured ~1.5x
// faster than the ternary clamp).

function quantRange(src: Float32Array, dst: Int8Array, s: number, lo: number, hi: number, b: number, e: number): void {
  for (let i = b; i < e; i++) {
    const v = Math.min(Math.max(Math.fround(src[i]! / s), lo), hi); // NaN stays NaN
    dst[i] = ((Math.fround(v + RNE_MAGIC) - RNE_MAGIC - lo) | 0) + lo; // ... and becomes lo here
  }
}
function quantVecRange(src: Float32Array, dst: Int8Array, scales: Float32Array, lo: number, hi: number, b: number, e: number): void {
  for (let i = b, c = 0; i < e; i++, c++) {
    const v = Math.min(Math.max(Math.fround(src[i]! / scales[c]!), lo), hi);
    dst[i] = ((Math.fround(v + RNE_MAGIC) - RNE_MAGIC - lo) | 0) + lo;
  }
}
function dequantRange(src: Int8Array, dst: Float32Array, s: number, b: number, e: number): void {
  for (let i = b; i < e; i++) dst[i] = src[i]! * s;
}
function dequantVecRange(src: Int8Array, dst: Float32Array, scales: Float32Array, b: number, e: number): void {
  for (let i = b, c = 0; i < e; i++, c++) dst[i] = src[i]! * scales[c]!;
}
function fakeRange(src: Float32Array, dst: Float32Array, s: number, lo: number, hi: number, b: number, e: number): void {
  for (let i = b; i < e; i++) {
    const v = Math.min(Math.max(Math.fround(src[i]! / s), lo), hi);
    dst[i] = (((Math.fround(v + RNE_MAGIC) - RNE_MAGIC - lo) | 0) + lo) * s;
  }
}
function fakeVecRange(src: Float32Array, dst: Float32Array, scales: Float32Array, lo: number, hi: number, b: number, e: number): void {
  for (let i = b, c = 0; i < e; i++, c++) {
    const s = scales[c]!;
    const v = Math.min(Math.max(Math.fround(src[i]! / s), lo), hi);
    dst[i] = (((Math.fround(v + RNE_MAGIC) - RNE_MAGIC - lo) | 0) + lo) * s;
  }
}

/**
 * Walks a [outer, channels, inner] tensor: constFn over runs sharing one scale (inner > 1),
 * or vecFn over runs of `channels` consecutive elements with one scale each (inner == 1).
 * Runs are cut at BLOCK elements.
 */
function walkChannels(
  outer: number,
  channels: number,
  inner: number,
  scales: Float32Array,
  constFn: (s: number, b: number, e: number) => void,
  vecFn: (sc: Float32Array, b: number, e: number) => void,
): void {
  if (inner === 1) {
    const n = outer * channels;
    for (let i = 0; i < n; i += channels) vecFn(scales, i, i + channels);
    return;
  }
  let i = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const s = scales[c]!;
      const end = i + inner;
      for (; i < end; i += BLOCK) constFn(s, i, Math.min(end, i + BLOCK));
      i = end;
    }
  }
}

function quantize(
  src: Float32Array,
  dst: Int8Array,
  scales: Float32Array,
  outer: number,
  channels: number,
  inner: number,
  lo: number,
  hi: number,
): void {
  walkChannels(
    outer,
    channels,
    inner,
    scales,
    (s, b, e) => quantRange(src, dst, s, lo, hi, b, e),
    (sc, b, e) => quantVecRange(src, dst, sc, lo, hi, b, e),
  );
}

function dequantize(src: Int8Array, dst: Float32Array, scales: Float32Array, outer: number, channels: number, inner: number): void {
  walkChannels(
    outer,
    channels,
    inner,
    scales,
    (s, b, e) => dequantRange(src, dst, s, b, e),
    (sc, b, e) => dequantVecRange(src, dst, sc, b, e),
  );
}

function fakeQuant(
  src: Float32Array,
  dst: Float32Array,
  scales: Float32Array,
  outer: number,
  channels: number,
  inner: number,
  lo: number,
  hi: number,
): void {
  walkChannels(
    outer,
    channels,
    inner,
    scales,
    (s, b, e) => fakeRange(src, dst, s, lo, hi, b, e),
    (sc, b, e) => fakeVecRange(src, dst, sc, lo, hi, b, e),
  );
}

function absMaxRange(src: Float32Array, b: number, e: number): number {
  let m = 0;
  for (let i = b; i < e; i++) {
    const a = Math.abs(src[i]!);
    if (a > m && a <= FLT_MAX) m = a;
  }
  return m;
}
function absMaxBlocks(src: Float32Array, b: number, e: number): number {
  let m = 0;
  for (let i = b; i < e; i += BLOCK) {
    const x = absMaxRange(src, i, Math.min(e, i + BLOCK));
    if (x > m) m = x;
  }
  return m;
}
function absMaxVecRange(src: Float32Array, acc: Float32Array, b: number, e: number): void {
  for (let i = b, c = 0; i < e; i++, c++) {
    const a = Math.abs(src[i]!);
    if (a > acc[c]! && a <= FLT_MAX) acc[c] = a;
  }
}

function perChannelAbsMax(src: Float32Array, dst: Float32Array, outer: number, channels: number, inner: number): void {
  dst.fill(0);
  if (inner === 1) {
    const n = outer * channels;
    for (let i = 0; i < n; i += channels) absMaxVecRange(src, dst, i, i + channels);
    return;
  }
  let i = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++, i += inner) {
      const m = absMaxBlocks(src, i, i + inner);
      if (m > dst[c]!) dst[c] = m;
    }
  }
}

// ---- statistics --------------------------------------------------------------------------------

// tensorStats: per block of STATS_BLOCK elements, statsBlock fills `statsBlk` (always all
// slots: hot functions must not have rarely executed stores, or V8 deoptimizes them mid-run),
// statsMerge folds it into the running state (Chan), statsNonFinite counts NaN/Inf of the
// (rare) blocks that have any.
const SB_CNT = 0,
  SB_MEAN = 1,
  SB_M2 = 2,
  SB_MIN = 3,
  SB_MAX = 4,
  SB_AM = 5;
const statsBlk = new Float64Array(6);
const ST_FIN = 0,
  ST_MEAN = 1,
  ST_M2 = 2,
  ST_MIN = 3,
  ST_MAX = 4,
  ST_AM = 5,
  ST_NAN = 6,
  ST_PINF = 7,
  ST_NINF = 8,
  ST_FIRST = 9;
const statsState = new Float64Array(10);

function statsBlock(x: Float32Array, b: number, e: number, out: Float64Array): void {
  let cnt = 0,
    sum = 0,
    mn = Infinity,
    mx = -Infinity,
    am = 0;
  for (let i = b; i < e; i++) {
    const v = x[i]!;
    const a = Math.abs(v);
    if (a <= FLT_MAX) {
      cnt++;
      sum += v;
      if (v < mn) mn = v;
      if (v > mx) mx = v;
      if (a > am) am = a;
    }
  }
  const mean = cnt > 0 ? sum / cnt : 0;
  let m2 = 0;
  for (let i = b; i < e; i++) {
    const v = x[i]!;
    if (Math.abs(v) <= FLT_MAX) {
      const d = v - mean;
      m2 += d * d;
    }
  }
  out[SB_CNT] = cnt;
  out[SB_MEAN] = mean;
  out[SB_M2] = m2;
  out[SB_MIN] = mn;
  out[SB_MAX] = mx;
  out[SB_AM] = am;
}

function statsMerge(st: Float64Array, blk: Float64Array): void {
  const cnt = blk[SB_CNT]!;
  const fin = st[ST_FIN]!;
  const nn = fin + cnt;
  const d = blk[SB_MEAN]! - st[ST_MEAN]!;
  const w = nn > 0 ? cnt / nn : 0;
  st[ST_MEAN] = st[ST_MEAN]! + d * w;
  st[ST_M2] = st[ST_M2]! + blk[SB_M2]! + d * d * fin * w;
  st[ST_MIN] = Math.min(st[ST_MIN]!, blk[SB_MIN]!);
  st[ST_MAX] = Math.max(st[ST_MAX]!, blk[SB_MAX]!);
  st[ST_AM] = Math.max(st[ST_AM]!, blk[SB_AM]!);
  st[ST_FIN] = nn;
}

function statsNonFinite(x: Float32Array, b: number, e: number, st: Float64Array): void {
  for (let i = b; i < e; i++) {
    const v = x[i]!;
    if (Math.abs(v) <= FLT_MAX) continue;
    if (st[ST_FIRST]! < 0) st[ST_FIRST] = i;
    if (v !== v) st[ST_NAN]!++;
    else if (v > 0) st[ST_PINF]!++;
    else st[ST_NINF]!++;
  }
}

function tensorStats(x: Float32Array, out: Float64Array): void {
  const n = x.length;
  const st = statsState;
  const blk = statsBlk;
  st.fill(0);
  st[ST_MIN] = Infinity;
  st[ST_MAX] = -Infinity;
  st[ST_FIRST] = -1;
  for (let b = 0; b < n; b += STATS_BLOCK) {
    const e = Math.min(n, b + STATS_BLOCK);
    statsBlock(x, b, e, blk);
    if (blk[SB_CNT]! !== e - b) statsNonFinite(x, b, e, st);
    statsMerge(st, blk);
  }
  const fin = st[ST_FIN]!;
  out[S.NUMEL] = n;
  out[S.NAN] = st[ST_NAN]!;
  out[S.POS_INF] = st[ST_PINF]!;
  out[S.NEG_INF] = st[ST_NINF]!;
  out[S.FINITE] = fin;
  out[S.MIN] = fin > 0 ? st[ST_MIN]! : 0;
  out[S.MAX] = fin > 0 ? st[ST_MAX]! : 0;
  out[S.MEAN] = st[ST_MEAN]!;
  out[S.M2] = st[ST_M2]!;
  out[S.ABS_MAX] = st[ST_AM]!;
  out[S.FIRST_NON_FINITE_AT] = st[ST_FIRST]!;
}

// diff: per block, the finite pairs' sums and extremes go to `diffState`, the errors of the
// non-zero ones to float32 scratch whose bits (read through a Uint32Array alias) give the
// histogram bins. The extreme non-zero errors give the touched index range (the index is
// monotonic in the value).
const DIFF_BLOCK = 4096;
const errAbs = new Float32Array(DIFF_BLOCK);
const errRel = new Float32Array(DIFF_BLOCK);
const errAbsU = new Uint32Array(errAbs.buffer);
const errRelU = new Uint32Array(errRel.buffer);
const DS_FINITE = 0,
  DS_ZERO = 1,
  DS_SUM_ABS = 2,
  DS_SUM_REL = 3,
  DS_R2 = 4,
  DS_C2 = 5,
  DS_D2 = 6,
  DS_DOT = 7,
  DS_MAX_ABS = 8,
  DS_MAX_REL = 9,
  DS_RAM = 10,
  DS_CAM = 11,
  DS_MAX_ABS_AT = 12,
  DS_MAX_REL_AT = 13,
  DS_MIN_ABS = 14,
  DS_MIN_REL = 15,
  DS_K = 16,
  DS_SIZE = 17;
const DN_REF_NAN = 0,
  DN_REF_INF = 1,
  DN_CAND_NAN = 2,
  DN_CAND_INF = 3,
  DN_MISMATCH = 4,
  DN_NEW = 5,
  DN_FIRST = 6,
  DN_SIZE = 7;
const diffState = new Float64Array(DS_SIZE);
const diffNonFinite = new Float64Array(DN_SIZE);

/** Finite pairs of one block; returns the number of non-finite pairs seen. */
function diffBlock(ref: Float32Array, cand: Float32Array, b: number, e: number, st: Float64Array): number {
  let finite = 0,
    zero = 0,
    k = 0,
    sumAbs = 0,
    sumRel = 0,
    sumR2 = 0,
    sumC2 = 0,
    sumD2 = 0,
    dot = 0;
  let maxAbs = st[DS_MAX_ABS]!,
    maxRel = st[DS_MAX_REL]!,
    ram = st[DS_RAM]!,
    cam = st[DS_CAM]!,
    maxAbsAt = st[DS_MAX_ABS_AT]!,
    maxRelAt = st[DS_MAX_REL_AT]!,
    minAbs = st[DS_MIN_ABS]!,
    minRel = st[DS_MIN_REL]!;
  for (let i = b; i < e; i++) {
    const r = ref[i]!;
    const c = cand[i]!;
    const ar = Math.abs(r);
    const ac = Math.abs(c);
    if (ar <= FLT_MAX && ac <= FLT_MAX) {
      const d = c - r;
      finite++;
      sumR2 += r * r;
      sumC2 += c * c;
      sumD2 += d * d;
      dot += r * c;
      if (ar > ram) ram = ar;
      if (ac > cam) cam = ac;
      if (d === 0) {
        zero++;
      } else {
        const ad = Math.abs(d);
        const rel = ad / (ar === 0 ? 2.2e-16 : ar);
        sumAbs += ad;
        sumRel += rel;
        if (ad > maxAbs) {
          maxAbs = ad;
          maxAbsAt = i;
        }
        if (rel > maxRel) {
          maxRel = rel;
          maxRelAt = i;
        }
        if (ad < minAbs) minAbs = ad;
        if (rel < minRel) minRel = rel;
        errAbs[k] = ad;
        errRel[k] = rel;
        k++;
      }
    }
  }
  st[DS_FINITE] = st[DS_FINITE]! + finite;
  st[DS_ZERO] = st[DS_ZERO]! + zero;
  st[DS_SUM_ABS] = st[DS_SUM_ABS]! + sumAbs;
  st[DS_SUM_REL] = st[DS_SUM_REL]! + sumRel;
  st[DS_R2] = st[DS_R2]! + sumR2;
  st[DS_C2] = st[DS_C2]! + sumC2;
  st[DS_D2] = st[DS_D2]! + sumD2;
  st[DS_DOT] = st[DS_DOT]! + dot;
  st[DS_MAX_ABS] = maxAbs;
  st[DS_MAX_REL] = maxRel;
  st[DS_RAM] = ram;
  st[DS_CAM] = cam;
  st[DS_MAX_ABS_AT] = maxAbsAt;
  st[DS_MAX_REL_AT] = maxRelAt;
  st[DS_MIN_ABS] = minAbs;
  st[DS_MIN_REL] = minRel;
  st[DS_K] = k;
  return e - b - finite;
}

/** Non-finite pairs of one block (rare path). */
function diffNonFiniteBlock(ref: Float32Array, cand: Float32Array, b: number, e: number, infEq: boolean, nf: Float64Array): void {
  for (let i = b; i < e; i++) {
    const r = ref[i]!;
    const c = cand[i]!;
    const rf = Math.abs(r) <= FLT_MAX;
    const cf = Math.abs(c) <= FLT_MAX;
    if (rf && cf) continue;
    if (!rf) {
      if (r !== r) nf[DN_REF_NAN]!++;
      else nf[DN_REF_INF]!++;
    }
    if (!cf) {
      if (c !== c) nf[DN_CAND_NAN]!++;
      else nf[DN_CAND_INF]!++;
      if (rf) nf[DN_NEW]!++;
      // NaN never equals; same-signed infinities only with infEq
      if (rf || !(infEq && r === c)) {
        nf[DN_MISMATCH]!++;
        if (nf[DN_FIRST]! < 0) nf[DN_FIRST] = i;
      }
    }
  }
}

function diffHist(k: number, hA: Float64Array, hR: Float64Array): void {
  for (let j = 0; j < k; j++) {
    hA[(errAbsU[j]! >>> 16) + 1]! += 1;
    hR[(errRelU[j]! >>> 16) + 1]! += 1;
  }
}

function errIndex(e: number): number {
  return (floatBits(e) >>> 16) + 1;
}

function diff(ref: Float32Array, cand: Float32Array, infEq: boolean, out: Float64Array, hA: Float64Array, hR: Float64Array): void {
  const n = ref.length;
  const st = diffState;
  const nf = diffNonFinite;
  st.fill(0);
  st[DS_MAX_ABS_AT] = -1;
  st[DS_MAX_REL_AT] = -1;
  st[DS_MIN_ABS] = Infinity;
  st[DS_MIN_REL] = Infinity;
  nf.fill(0);
  nf[DN_FIRST] = -1;
  for (let b = 0; b < n; b += DIFF_BLOCK) {
    const e = Math.min(n, b + DIFF_BLOCK);
    if (diffBlock(ref, cand, b, e, st) > 0) diffNonFiniteBlock(ref, cand, b, e, infEq, nf);
    diffHist(st[DS_K]!, hA, hR);
  }
  const nonzero = st[DS_FINITE]! - st[DS_ZERO]!;
  out[D.NUMEL] = n;
  out[D.REF_NAN] = nf[DN_REF_NAN]!;
  out[D.REF_INF] = nf[DN_REF_INF]!;
  out[D.CAND_NAN] = nf[DN_CAND_NAN]!;
  out[D.CAND_INF] = nf[DN_CAND_INF]!;
  out[D.MISMATCH] = nf[DN_MISMATCH]!;
  out[D.FINITE] = st[DS_FINITE]!;
  out[D.ZERO] = st[DS_ZERO]!;
  out[D.MAX_ABS] = st[DS_MAX_ABS]!;
  out[D.SUM_ABS] = st[DS_SUM_ABS]!;
  out[D.MAX_REL] = st[DS_MAX_REL]!;
  out[D.SUM_REL] = st[DS_SUM_REL]!;
  out[D.SUM_R2] = st[DS_R2]!;
  out[D.SUM_C2] = st[DS_C2]!;
  out[D.SUM_D2] = st[DS_D2]!;
  out[D.DOT] = st[DS_DOT]!;
  out[D.REF_ABS_MAX] = st[DS_RAM]!;
  out[D.CAND_ABS_MAX] = st[DS_CAM]!;
  out[D.MIN_IDX] = nonzero > 0 ? Math.min(errIndex(st[DS_MIN_ABS]!), errIndex(st[DS_MIN_REL]!)) : ERR_HIST_BINS;
  out[D.MAX_IDX] = nonzero > 0 ? Math.min(ERR_HIST_BINS - 1, Math.max(errIndex(st[DS_MAX_ABS]!), errIndex(st[DS_MAX_REL]!))) : 0;
  out[D.MAX_ABS_AT] = st[DS_MAX_ABS_AT]!;
  out[D.MAX_REL_AT] = st[DS_MAX_REL_AT]!;
  out[D.FIRST_MISMATCH_AT] = nf[DN_FIRST]!;
  out[D.NEW_NON_FINITE] = nf[DN_NEW]!;
}

// elementwise check: [fail, mismatch, firstFailAt, minAtol, minRtol]
const elemState = new Float64Array(5);
function elemBlock(ref: Float32Array, cand: Float32Array, b: number, e: number, infEq: boolean, atol: number, rtol: number, st: Float64Array): void {
  let fail = st[0]!,
    mismatch = st[1]!,
    firstFailAt = st[2]!,
    minAtol = st[3]!,
    minRtol = st[4]!;
  for (let i = b; i < e; i++) {
    const r = ref[i]!;
    const c = cand[i]!;
    const ar = Math.abs(r);
    const cf = Math.abs(c) <= FLT_MAX;
    if (ar <= FLT_MAX && cf) {
      const ad = Math.abs(c - r);
      const rel = ad / (ar === 0 ? 2.2e-16 : ar);
      if (rel > rtol && ad > minAtol) minAtol = ad;
      if (ad > atol && rel > minRtol) minRtol = rel;
      if (ad > atol && rel > rtol) {
        fail++;
        if (firstFailAt < 0) firstFailAt = i;
      }
    } else if (!cf && (ar <= FLT_MAX || !(infEq && r === c))) {
      fail++;
      mismatch++;
      if (firstFailAt < 0) firstFailAt = i;
    }
  }
  st[0] = fail;
  st[1] = mismatch;
  st[2] = firstFailAt;
  st[3] = minAtol;
  st[4] = minRtol;
}

function elemwise(ref: Float32Array, cand: Float32Array, infEq: boolean, atol: number, rtol: number, out: Float64Array): void {
  const n = ref.length;
  const st = elemState;
  st.fill(0);
  st[2] = -1;
  for (let b = 0; b < n; b += BLOCK) elemBlock(ref, cand, b, Math.min(n, b + BLOCK), infEq, atol, rtol, st);
  out[E.FAIL] = st[0]!;
  out[E.MISMATCH] = st[1]!;
  out[E.FIRST_FAIL_AT] = st[2]!;
  out[E.MIN_ATOL] = st[3]!;
  out[E.MIN_RTOL] = st[4]!;
}

function absHistRange(src: Float32Array, hist: Float64Array, w: number, b: number, e: number): number {
  const last = hist.length - 1;
  let skipped = 0;
  for (let i = b; i < e; i++) {
    const a = Math.abs(src[i]!);
    if (a <= FLT_MAX) {
      const q = a / w;
      hist[q < last ? q | 0 : last]! += 1; // q >= 0 and last < 2^30: | 0 is floor
    } else {
      skipped++;
    }
  }
  return skipped;
}

function absHistogram(src: Float32Array, hist: Float64Array, w: number): number {
  const n = src.length;
  let skipped = 0;
  for (let b = 0; b < n; b += BLOCK) skipped += absHistRange(src, hist, w, b, Math.min(n, b + BLOCK));
  return skipped;
}

function absMax(src: Float32Array): number {
  return absMaxBlocks(src, 0, src.length);
}

function info(): KernelInfo {
  return { simd: "js", threads: 1 };
}

export const tsKernels: Kernels = {
  info,
  f32ToF16,
  f16ToF32,
  f32ToBf16,
  bf16ToF32,
  f32ToFp8,
  fp8ToF32,
  roundTo,
  quantize,
  dequantize,
  fakeQuant,
  perChannelAbsMax,
  absMax,
  tensorStats,
  diff,
  elemwise,
  absHistogram,
};
