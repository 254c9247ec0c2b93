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

function f32ToF16(src: Float32Array, dst: Uint16Array): void {
  const u = u32(src);
  const n = src.length;
  for (let i = 0; i < n; i++) {
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

function f16ToF32(src: Uint16Array, dst: Float32Array): void {
  const t = f16ToF32Table();
  const d = u32(dst);
  const n = src.length;
  for (let i = 0; i < n; i++) d[i] = t[src[i]!]!;
}

function f32ToBf16(src: Float32Array, dst: Uint16Array): void {
  const u = u32(src);
  const n = src.length;
  for (let i = 0; i < n; i++) {
    const x = u[i]!;
    dst[i] = (x & 0x7fffffff) > 0x7f800000 ? ((x >>> 16) & 0x8000) | 0x7fc0 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}

function bf16ToF32(src: Uint16Array, dst: Float32Array): void {
  const d = u32(dst);
  const n = src.length;
  for (let i = 0; i < n; i++) d[i] = src[i]! << 16;
}

function f32ToFp8(src: Float32Array, dst: Uint8Array, fmt: number, saturate: boolean): void {
  const u = u32(src);
  const n = src.length;
  if (fmt === FMT_E4M3FN) {
    for (let i = 0; i < n; i++) dst[i] = e4m3Bits(u[i]!, src[i]!, saturate);
  } else {
    for (let i = 0; i < n; i++) dst[i] = e5m2Bits(u[i]!, src[i]!, saturate);
  }
}

function fp8ToF32(src: Uint8Array, dst: Float32Array, fmt: number): void {
  const t = fp8Table(fmt);
  const d = u32(dst);
  const n = src.length;
  for (let i = 0; i < n; i++) d[i] = t[src[i]!]!;
}

function roundTo(src: Float32Array, dst: Float32Array, fmt: number): void {
  const u = u32(src);
  const d = u32(dst);
  const n = src.length;
  if (fmt === FMT_FP16) {
    const t = f16ToF32Table();
    for (let i = 0; i < n; i++) {
      const x = u[i]!;
      const a = x & 0x7fffffff;
      if (a >= 0x38800000 && a < 0x47800000) {
        d[i] = t[((x >>> 16) & 0x8000) | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13)]!;
      } else {
        d[i] = t[f16Bits(x, src[i]!)]!;
      }
    }
  } else if (fmt === FMT_BF16) {
    for (let i = 0; i < n; i++) d[i] = bf16Bits(u[i]!) << 16;
  } else if (fmt === FMT_E4M3FN) {
    const t = fp8Table(fmt);
    for (let i = 0; i < n; i++) d[i] = t[e4m3Bits(u[i]!, src[i]!, true)]!;
  } else {
    const t = fp8Table(fmt);
    for (let i = 0; i < n; i++) d[i] = t[e5m2Bits(u[i]!, src[i]!, true)]!;
  }
}

// ---- int8 ------------------------------------------------------------------------------------
// q = clamp(rne(float32(x / s)), qmin, qmax), NaN -> qmin. x / s of two float32 values in
// double, rounded once to float32, equals the float32 division (53 >= 2*24 + 2 bits).

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
  let i = 0;
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++, i++) {
        let v = Math.fround(src[i]! / scales[c]!);
        v = v > lo ? v : lo;
        v = v < hi ? v : hi;
        dst[i] = Math.fround(v + RNE_MAGIC) - RNE_MAGIC;
      }
    }
    return;
  }
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const s = scales[c]!;
      const end = i + inner;
      for (; i < end; i++) {
        let v = Math.fround(src[i]! / s);
        v = v > lo ? v : lo;
        v = v < hi ? v : hi;
        dst[i] = Math.fround(v + RNE_MAGIC) - RNE_MAGIC;
      }
    }
  }
}

function dequantize(src: Int8Array, dst: Float32Array, scales: Float32Array, outer: number, channels: number, inner: number): void {
  let i = 0;
  if (inner === 1) {
    for (let o = 0; o < outer; o++) for (let c = 0; c < channels; c++, i++) dst[i] = src[i]! * scales[c]!;
    return;
  }
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const s = scales[c]!;
      const end = i + inner;
      for (; i < end; i++) dst[i] = src[i]! * s;
    }
  }
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
  let i = 0;
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++, i++) {
        const s = scales[c]!;
        let v = Math.fround(src[i]! / s);
        v = v > lo ? v : lo;
        v = v < hi ? v : hi;
        dst[i] = (Math.fround(v + RNE_MAGIC) - RNE_MAGIC) * s;
      }
    }
    return;
  }
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const s = scales[c]!;
      const end = i + inner;
      for (; i < end; i++) {
        let v = Math.fround(src[i]! / s);
        v = v > lo ? v : lo;
        v = v < hi ? v : hi;
        dst[i] = (Math.fround(v + RNE_MAGIC) - RNE_MAGIC) * s;
      }
    }
  }
}

function absMaxRange(src: Float32Array, b: number, e: number): number {
  let m = 0;
  for (let i = b; i < e; i++) {
    const a = Math.abs(src[i]!);
    if (a > m && a <= FLT_MAX) m = a;
  }
  return m;
}

function perChannelAbsMax(src: Float32Array, dst: Float32Array, outer: number, channels: number, inner: number): void {
  dst.fill(0);
  let i = 0;
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++, i++) {
        const a = Math.abs(src[i]!);
        if (a > dst[c]! && a <= FLT_MAX) dst[c] = a;
      }
    }
    return;
  }
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++, i += inner) {
      const m = absMaxRange(src, i, i + inner);
      if (m > dst[c]!) dst[c] = m;
    }
  }
}

// ---- statistics --------------------------------------------------------------------------------

function tensorStats(x: Float32Array, out: Float64Array): void {
  const n = x.length;
  let nan = 0,
    posInf = 0,
    negInf = 0,
    firstNonFinite = -1;
  // running (Chan) merge of per-block results
  let fin = 0,
    mean = 0,
    m2 = 0,
    mn = Infinity,
    mx = -Infinity,
    am = 0;
  for (let b = 0; b < n; b += STATS_BLOCK) {
    const e = Math.min(n, b + STATS_BLOCK);
    let cnt = 0,
      sum = 0,
      bmn = Infinity,
      bmx = -Infinity,
      bam = 0;
    for (let i = b; i < e; i++) {
      const v = x[i]!;
      if (v - v === 0) {
        cnt++;
        sum += v;
        if (v < bmn) bmn = v;
        if (v > bmx) bmx = v;
        const a = Math.abs(v);
        if (a > bam) bam = a;
      } else {
        if (firstNonFinite < 0) firstNonFinite = i;
        if (v !== v) nan++;
        else if (v > 0) posInf++;
        else negInf++;
      }
    }
    if (cnt === 0) continue;
    const bmean = sum / cnt;
    let bm2 = 0;
    for (let i = b; i < e; i++) {
      const v = x[i]!;
      if (v - v === 0) {
        const d = v - bmean;
        bm2 += d * d;
      }
    }
    if (fin === 0) {
      fin = cnt;
      mean = bmean;
      m2 = bm2;
    } else {
      const nn = fin + cnt;
      const d = bmean - mean;
      mean += d * (cnt / nn);
      m2 += bm2 + d * d * ((fin * cnt) / nn);
      fin = nn;
    }
    if (bmn < mn) mn = bmn;
    if (bmx > mx) mx = bmx;
    if (bam > am) am = bam;
  }
  out[S.NUMEL] = n;
  out[S.NAN] = nan;
  out[S.POS_INF] = posInf;
  out[S.NEG_INF] = negInf;
  out[S.FINITE] = fin;
  out[S.MIN] = fin > 0 ? mn : 0;
  out[S.MAX] = fin > 0 ? mx : 0;
  out[S.MEAN] = mean;
  out[S.M2] = m2;
  out[S.ABS_MAX] = am;
  out[S.FIRST_NON_FINITE_AT] = firstNonFinite;
}

// Per-block scratch for histogram keys: errors are stored as float32 and their bits read
// through a Uint32Array alias (no per-element allocation, no DataView).
const DIFF_BLOCK = 4096;
const errAbs = new Float32Array(DIFF_BLOCK);
const errRel = new Float32Array(DIFF_BLOCK);
const errAbsU = new Uint32Array(errAbs.buffer);
const errRelU = new Uint32Array(errRel.buffer);

function diff(ref: Float32Array, cand: Float32Array, infEq: boolean, out: Float64Array, hA: Float64Array, hR: Float64Array): void {
  const n = ref.length;
  let refNan = 0,
    refInf = 0,
    candNan = 0,
    candInf = 0,
    mismatch = 0,
    newNonFinite = 0,
    finite = 0,
    zero = 0;
  let maxAbs = 0,
    sumAbs = 0,
    maxRel = 0,
    sumRel = 0,
    sumR2 = 0,
    sumC2 = 0,
    sumD2 = 0,
    dot = 0,
    refAbsMax = 0,
    candAbsMax = 0;
  let minIdx = ERR_HIST_BINS,
    maxIdx = 0,
    maxAbsAt = -1,
    maxRelAt = -1,
    firstMismatchAt = -1;
  for (let b = 0; b < n; b += DIFF_BLOCK) {
    const e = Math.min(n, b + DIFF_BLOCK);
    let k = 0;
    for (let i = b; i < e; i++) {
      const r = ref[i]!;
      const c = cand[i]!;
      if (r - r === 0 && c - c === 0) {
        const d = c - r;
        finite++;
        sumR2 += r * r;
        sumC2 += c * c;
        sumD2 += d * d;
        dot += r * c;
        const ar = Math.abs(r);
        const ac = Math.abs(c);
        if (ar > refAbsMax) refAbsMax = ar;
        if (ac > candAbsMax) candAbsMax = ac;
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
          errAbs[k] = ad;
          errRel[k] = rel;
          k++;
        }
      } else {
        const rf = r - r === 0;
        const cf = c - c === 0;
        if (!rf) {
          if (r !== r) refNan++;
          else refInf++;
        }
        if (!cf) {
          if (c !== c) candNan++;
          else candInf++;
          if (rf) newNonFinite++;
          if (rf || !(infEq && r === c)) {
            mismatch++;
            if (firstMismatchAt < 0) firstMismatchAt = i;
          }
        }
      }
    }
    for (let j = 0; j < k; j++) {
      const ia = (errAbsU[j]! >>> 16) + 1;
      const ir = (errRelU[j]! >>> 16) + 1;
      hA[ia]! += 1;
      hR[ir]! += 1;
      const lo = ia < ir ? ia : ir;
      const hi = ia < ir ? ir : ia;
      if (lo < minIdx) minIdx = lo;
      if (hi > maxIdx) maxIdx = hi;
    }
  }
  out[D.NUMEL] = n;
  out[D.REF_NAN] = refNan;
  out[D.REF_INF] = refInf;
  out[D.CAND_NAN] = candNan;
  out[D.CAND_INF] = candInf;
  out[D.MISMATCH] = mismatch;
  out[D.FINITE] = finite;
  out[D.ZERO] = zero;
  out[D.MAX_ABS] = maxAbs;
  out[D.SUM_ABS] = sumAbs;
  out[D.MAX_REL] = maxRel;
  out[D.SUM_REL] = sumRel;
  out[D.SUM_R2] = sumR2;
  out[D.SUM_C2] = sumC2;
  out[D.SUM_D2] = sumD2;
  out[D.DOT] = dot;
  out[D.REF_ABS_MAX] = refAbsMax;
  out[D.CAND_ABS_MAX] = candAbsMax;
  out[D.MIN_IDX] = minIdx;
  out[D.MAX_IDX] = maxIdx;
  out[D.MAX_ABS_AT] = maxAbsAt;
  out[D.MAX_REL_AT] = maxRelAt;
  out[D.FIRST_MISMATCH_AT] = firstMismatchAt;
  out[D.NEW_NON_FINITE] = newNonFinite;
}

function elemwise(ref: Float32Array, cand: Float32Array, infEq: boolean, atol: number, rtol: number, out: Float64Array): void {
  const n = ref.length;
  let fail = 0,
    mismatch = 0,
    firstFailAt = -1,
    minAtol = 0,
    minRtol = 0;
  for (let i = 0; i < n; i++) {
    const r = ref[i]!;
    const c = cand[i]!;
    if (r - r === 0 && c - c === 0) {
      const ad = Math.abs(c - r);
      const ar = Math.abs(r);
      const rel = ad / (ar === 0 ? 2.2e-16 : ar);
      if (rel > rtol && ad > minAtol) minAtol = ad;
      if (ad > atol && rel > minRtol) minRtol = rel;
      if (ad > atol && rel > rtol) {
        fail++;
        if (firstFailAt < 0) firstFailAt = i;
      }
    } else if (c - c !== 0 && (r - r === 0 || !(infEq && r === c))) {
      fail++;
      mismatch++;
      if (firstFailAt < 0) firstFailAt = i;
    }
  }
  out[E.FAIL] = fail;
  out[E.FIRST_FAIL_AT] = firstFailAt;
  out[E.MIN_ATOL] = minAtol;
  out[E.MIN_RTOL] = minRtol;
  out[E.MISMATCH] = mismatch;
}

function absHistogram(src: Float32Array, hist: Float64Array, w: number): number {
  const n = src.length;
  const nb = hist.length;
  const last = nb - 1;
  let skipped = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(src[i]!);
    if (a <= FLT_MAX) {
      const q = a / w;
      hist[q >= last ? last : Math.floor(q)]! += 1;
    } else {
      skipped++;
    }
  }
  return skipped;
}

function absMax(src: Float32Array): number {
  return absMaxRange(src, 0, src.length);
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
