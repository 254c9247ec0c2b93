/**
 * Numeric core: both implementations (native addon, in both its SIMD builds, and the
 * TypeScript fallback) against straightforward reference computations written here, and
 * against each other (bit-identical conversions/quantization; metrics within the
 * documented tolerance). Bit-exactness against onnxruntime: numeric-ort.test.ts.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  nativeAddon,
  nativeImpl,
  nativeUnavailableReason,
  numericBackend,
  tsImpl,
  type DiffMetrics,
  type NumericImpl,
} from "../src/numeric/index.js";
import { fixtureRandom } from "./support/random.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// ---- implementations under test ------------------------------------------------------------

/** Under CI (CI=true / CI=1) a missing native addon fails the native half instead of warning. */
const IN_CI = !!process.env.CI && !["0", "false"].includes(process.env.CI);

const NATIVE = nativeImpl();
if (!NATIVE) {
  const bar = "!".repeat(100);
  console.error(
    `\n${bar}\n!! trt-debug native numeric addon NOT BUILT: ${nativeUnavailableReason()}\n` +
      `!! only the TypeScript half of test/numeric*.test.ts ran. Build it: node scripts/build-native.cjs\n${bar}\n`,
  );
}

/** A named implementation; `setup` switches the native addon to the wanted SIMD build. */
interface Subject {
  name: string;
  impl: NumericImpl;
  simd?: "scalar" | "best";
}
const SUBJECTS: Subject[] = [{ name: "typescript", impl: tsImpl }];
if (NATIVE) {
  SUBJECTS.push({ name: "native", impl: NATIVE, simd: "best" });
  SUBJECTS.push({ name: "native-scalar", impl: NATIVE, simd: "scalar" });
}

function useSimd(s: Subject): void {
  if (s.simd) nativeAddon()!.setSimd(s.simd);
}

describe("native addon availability", () => {
  it("is built and loads (required under CI=true)", () => {
    if (!NATIVE) {
      if (IN_CI) {
        throw new Error(`native addon missing under CI: ${nativeUnavailableReason()}`);
      }
      console.error("!! native addon missing: native half of the numeric tests NOT run (would fail under CI=true)");
      return;
    }
    const info = NATIVE.info();
    expect(info.backend).toBe("native");
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(["avx2+f16c", "scalar"]).toContain(info.simd);
  });
});

// ---- helpers ----------------------------------------------------------------------------------


function fromBitsArray(bits: ArrayLike<number>): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}
function bitsOf(f: Float32Array): Uint32Array {
  return new Uint32Array(f.buffer, f.byteOffset, f.length);
}
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
function fbits(v: number): number {
  F32[0] = v;
  return U32[0]!;
}
function bitsF(b: number): number {
  U32[0] = b >>> 0;
  return F32[0]!;
}

/** First index where two integer arrays differ, or -1. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}
function expectSameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string, input?: Uint32Array): void {
  const i = firstDiff(a, b);
  if (i !== -1) {
    const at = i >= 0 && input ? ` for input 0x${input[i]!.toString(16)}` : "";
    throw new Error(`${what}: differs at ${i}${at}: ${i >= 0 ? `${a[i]} vs ${b[i]}` : "length"}`);
  }
}

/** Random float32 bit patterns (every exponent equally likely) plus a list of edge values. */
function randomFloatBits(n: number, seed: number): Uint32Array {
  const r = fixtureRandom(seed);
  const u = new Uint32Array(n);
  for (let i = 0; i < n; i++) u[i] = (Math.floor(r() * 65536) * 65536 + Math.floor(r() * 65536)) >>> 0;
  return u;
}

// ---- independent references -----------------------------------------------------------------

/** fp16 bits -> value, by the definition. */
function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
function e4m3Value(v: number): number {
  const s = v & 0x80 ? -1 : 1;
  const e = (v >> 3) & 0xf;
  const m = v & 7;
  if ((v & 0x7f) === 0x7f) return NaN;
  if (e === 0) return s * m * 2 ** -9;
  return s * (1 + m / 8) * 2 ** (e - 7);
}
function e5m2Value(v: number): number {
  const s = v & 0x80 ? -1 : 1;
  const e = (v >> 2) & 0x1f;
  const m = v & 3;
  if (e === 31) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -16;
  return s * (1 + m / 4) * 2 ** (e - 15);
}
function bf16Value(b: number): number {
  return bitsF(b << 16);
}

/**
 * Round-to-nearest-even onto a finite sorted list of non-negative code values (index =
 * code for codes 0..len-1): nearest code by value, ties to the even code. Returns the code
 * index, or len if |x| is beyond the "virtual" next value (overflow).
 */
function nearestEvenCode(values: number[], ax: number, virtualNext: number): number {
  let lo = 0;
  let hi = values.length - 1;
  if (ax >= values[hi]!) {
    // between max and the virtual next representable value
    const mid = (values[hi]! + virtualNext) / 2;
    if (ax < mid) return hi;
    if (ax > mid) return values.length;
    return hi % 2 === 0 ? hi : values.length; // tie: even code wins (virtual code = len)
  }
  while (hi - lo > 1) {
    const m = (lo + hi) >> 1;
    if (values[m]! <= ax) lo = m;
    else hi = m;
  }
  const a = values[lo]!;
  const b = values[hi]!;
  if (ax - a < b - ax) return lo;
  if (ax - a > b - ax) return hi;
  return lo % 2 === 0 ? lo : hi;
}

const F16_POS = Array.from({ length: 0x7c00 }, (_, h) => f16Value(h)); // 0 .. 65504
/** Reference float32 -> fp16 bits (IEEE RNE; NaN -> quiet NaN keeping the top payload bits). */
function refF16(x: number): number {
  const b = fbits(x);
  const sign = (b >>> 16) & 0x8000;
  if (Number.isNaN(x)) return sign | 0x7e00 | ((b >>> 13) & 0x3ff);
  const c = nearestEvenCode(F16_POS, Math.abs(x), 65536);
  return sign | (c >= 0x7c00 ? 0x7c00 : c);
}

const BF16_POS = Array.from({ length: 0x7f80 }, (_, h) => bf16Value(h));
function refBf16(x: number): number {
  const b = fbits(x);
  const sign = (b >>> 16) & 0x8000;
  if (Number.isNaN(x)) return sign | 0x7fc0;
  const c = nearestEvenCode(BF16_POS, Math.abs(x), 2 ** 128);
  return sign | (c >= 0x7f80 ? 0x7f80 : c);
}

const E4M3_POS = Array.from({ length: 0x7f }, (_, v) => e4m3Value(v)); // 0 .. 448
/** Reference e4m3fn with saturate=true: RNE then clamp to 448; NaN -> sign|0x7f. */
function refE4m3Sat(x: number): number {
  const sign = fbits(x) & 0x80000000 ? 0x80 : 0;
  if (Number.isNaN(x)) return sign | 0x7f;
  const c = nearestEvenCode(E4M3_POS, Math.abs(x), 480);
  return sign | Math.min(c, 0x7e);
}
const E5M2_POS = Array.from({ length: 0x7c }, (_, v) => e5m2Value(v)); // 0 .. 57344
function refE5m2Sat(x: number): number {
  const sign = fbits(x) & 0x80000000 ? 0x80 : 0;
  if (Number.isNaN(x)) return sign | 0x7f;
  const c = nearestEvenCode(E5M2_POS, Math.abs(x), 65536);
  return sign | Math.min(c, 0x7b);
}

/** Reference int8 quantization: float32 division, round half to even, clamp; NaN -> qmin. */
function refQuant(x: number, s: number, qmin: number, qmax: number): number {
  const v = Math.fround(Math.fround(x) / Math.fround(s));
  if (Number.isNaN(v)) return qmin;
  if (v <= qmin) return qmin;
  if (v >= qmax) return qmax;
  const f = Math.floor(v);
  const d = v - f;
  const r = d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
  return Math.min(qmax, Math.max(qmin, r));
}

// ---- the shared input sets ------------------------------------------------------------------

/** float32 inputs around every fp16 value: the value, both float32 neighbours, and midpoints. */
function f16Neighbourhood(): Uint32Array {
  const out: number[] = [];
  for (let h = 0; h < 0x7c00; h++) {
    const v = f16Value(h);
    const next = h + 1 < 0x7c00 ? f16Value(h + 1) : 65536;
    const mid = (v + next) / 2; // exact in float32 (12 significant bits)
    for (const s of [1, -1]) {
      const b = fbits(s * v);
      out.push(b, (b + 1) >>> 0);
      if (v !== 0) out.push((b - 1) >>> 0);
      const m = fbits(s * mid);
      out.push(m, (m + 1) >>> 0, (m - 1) >>> 0);
    }
  }
  return Uint32Array.from(out);
}

const EDGE_F16 = [
  0, -0, 65504, -65504, 65519.99609375, 65520, -65520, 65536, 1e9, Infinity, -Infinity, NaN, 2 ** -24, 2 ** -25, 3 * 2 ** -25,
  2 ** -25 + 2 ** -40, 2 ** -26, 2 ** -14, 2 ** -14 - 2 ** -25, 1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1e-45, -1e-45,
];
const NAN_BITS = [0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fc00001, 0x7fffffff, 0xffffffff, 0x7fa00000, 0x7f812345, 0x7f802000, 0x7fbfffff];

// ---- conversions ----------------------------------------------------------------------------

describe.each(SUBJECTS)("conversions: $name", (subject) => {
  const impl = subject.impl;
  beforeAll(() => useSimd(subject));
  afterAll(() => {
    if (subject.simd) nativeAddon()!.setSimd("best");
  });

  it("decodes all 65536 fp16 patterns exactly and round-trips every non-NaN one", () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const f = impl.f16ToF32(all);
    const u = bitsOf(f);
    for (let h = 0; h < 65536; h++) {
      const want = f16Value(h);
      if (Number.isNaN(want)) {
        // quiet NaN, sign and payload kept (as vcvtph2ps and onnxruntime's vectorized Cast)
        expect(u[h]).toBe((((h & 0x8000) << 16) | 0x7fc00000 | ((h & 0x3ff) << 13)) >>> 0);
      } else if (!Object.is(f[h], want)) {
        throw new Error(`f16 0x${h.toString(16)} -> ${f[h]}, want ${want}`);
      }
    }
    const back = impl.f32ToF16(f);
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) expect(back[h]).toBe(h | 0x200);
      else if (back[h] !== h) throw new Error(`round trip 0x${h.toString(16)} -> 0x${back[h]!.toString(16)}`);
    }
  });

  it("f32 -> f16 is IEEE round-to-nearest-even on ties, subnormals, the 65504/65520 boundary, ±0, ±inf, NaN", () => {
    const bits = Uint32Array.from([...f16Neighbourhood(), ...EDGE_F16.map(fbits), ...NAN_BITS, ...randomFloatBits(200_000, 1)]);
    const x = fromBitsArray(bits);
    const got = impl.f32ToF16(x);
    const want = Uint16Array.from(x, (v, i) => (Number.isNaN(v) ? refF16NaN(bits[i]!) : refF16(v)));
    expectSameBits(got, want, "f32ToF16", bits);
    // spot checks that pin the semantics down in words
    const spot = impl.f32ToF16(Float32Array.from([65504, 65519.99609375, 65520, 2 ** -25, 3 * 2 ** -25, -0, 1 + 2 ** -11, 1 + 3 * 2 ** -11]));
    expect(Array.from(spot)).toEqual([0x7bff, 0x7bff, 0x7c00, 0x0000, 0x0002, 0x8000, 0x3c00, 0x3c02]);
  });

  it("roundTo fp16 equals f16ToF32(f32ToF16(x)), in place too", () => {
    const bits = Uint32Array.from([...f16Neighbourhood().subarray(0, 50_000), ...NAN_BITS, ...randomFloatBits(50_000, 2)]);
    const x = fromBitsArray(bits);
    const want = bitsOf(impl.f16ToF32(impl.f32ToF16(x)));
    expectSameBits(bitsOf(impl.roundTo(x, "fp16")), want, "roundTo fp16", bits);
    const inPlace = x.slice();
    expect(impl.roundTo(inPlace, "fp16", inPlace)).toBe(inPlace);
    expectSameBits(bitsOf(inPlace), want, "roundTo fp16 in place", bits);
  });

  it("bf16: RNE ties, overflow, subnormal ties, ±0, inf, NaN (canonical quiet, sign kept)", () => {
    const cases: [number, number][] = [
      [0x3f808000, 0x3f80], // tie, even below
      [0x3f818000, 0x3f82], // tie, even above
      [0x3f808001, 0x3f81],
      [0x3f807fff, 0x3f80],
      [0x7f7fffff, 0x7f80], // rounds to inf
      [0x7f7f8000, 0x7f80], // tie to even = inf
      [0x7f7f7fff, 0x7f7f],
      [0x00008000, 0x0000], // subnormal tie to even 0
      [0x00018000, 0x0002],
      [0x00000001, 0x0000],
      [0x80000000, 0x8000],
      [0x7f800000, 0x7f80],
      [0xff800000, 0xff80],
      [0x7fc00000, 0x7fc0],
      [0xffc00000, 0xffc0],
      [0x7f800001, 0x7fc0], // signalling NaN: quieted, payload dropped
      [0xff812345, 0xffc0],
      [0x7fffffff, 0x7fc0],
    ];
    const x = fromBitsArray(cases.map((c) => c[0]));
    expect(Array.from(impl.f32ToBf16(x))).toEqual(cases.map((c) => c[1]));
    // against the reference on many values
    const bits = randomFloatBits(200_000, 3);
    const xs = fromBitsArray(bits);
    const got = impl.f32ToBf16(xs);
    const want = Uint16Array.from(xs, (v) => refBf16(v));
    expectSameBits(got, want, "f32ToBf16", bits);
    // decode: exact widening of all 65536 patterns, NaN payloads untouched
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const dec = bitsOf(impl.bf16ToF32(all));
    for (let b = 0; b < 65536; b++) if (dec[b] !== ((b << 16) >>> 0)) throw new Error(`bf16 0x${b.toString(16)}`);
    expectSameBits(bitsOf(impl.roundTo(xs, "bf16")), bitsOf(impl.bf16ToF32(got)), "roundTo bf16");
  });

  it("fp8 e4m3fn: decode table, round trip, ties, saturation, subnormals, ±0, NaN", () => {
    const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const dec = impl.fp8ToF32(codes, "fp8e4m3fn");
    for (let v = 0; v < 256; v++) {
      const want = e4m3Value(v);
      if (Number.isNaN(want)) expect(bitsOf(dec)[v]).toBe(v & 0x80 ? 0xffc00000 : 0x7fc00000);
      else expect(Object.is(dec[v], want)).toBe(true);
    }
    // every non-NaN code round-trips
    const back = impl.f32ToFp8(dec, "fp8e4m3fn");
    for (let v = 0; v < 256; v++) if ((v & 0x7f) !== 0x7f) expect(back[v]).toBe(v);
    // saturating (default) conversions against the reference
    const vals = [
      0, -0, 448, 464, 470, 480, 495, 496, 512, 1e9, -1e9, Infinity, -Infinity, 2 ** -9, 2 ** -10, 1.5 * 2 ** -9, 2 ** -10 + 2 ** -30,
      3 * 2 ** -10, 2 ** -6, 1.0625, 1.1875, 1e-45,
    ];
    const sat = impl.f32ToFp8(Float32Array.from(vals), "fp8e4m3fn");
    expect(Array.from(sat)).toEqual(vals.map(refE4m3Sat));
    expect(Array.from(sat.subarray(0, 14))).toEqual([0x00, 0x80, 0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 0xfe, 0x7e, 0xfe, 0x01]);
    expect(Array.from(impl.f32ToFp8(fromBitsArray(NAN_BITS), "fp8e4m3fn"))).toEqual(NAN_BITS.map((b) => (b & 0x80000000 ? 0xff : 0x7f)));
    // saturate=false: onnxruntime's exact behaviour (docs/numeric.md)
    const ns = impl.f32ToFp8(Float32Array.from([448, 464, 470, 480, 495.5, 496, 512, Infinity, -Infinity, -470]), "fp8e4m3fn", false);
    expect(Array.from(ns)).toEqual([0x7e, 0x7e, 0x7f, 0x7e, 0x7e, 0x7f, 0x7f, 0x7f, 0xff, 0xff]);
    // midpoints between all adjacent codes + random values
    const mids: number[] = [];
    for (let v = 0; v < 0x7e; v++) {
      const m = (E4M3_POS[v]! + E4M3_POS[v + 1]!) / 2;
      mids.push(m, -m, bitsF(fbits(m) + 1), bitsF(fbits(m) - 1));
    }
    const rb = randomFloatBits(100_000, 4);
    const xs = Float32Array.from([...mids, ...fromBitsArray(rb)]);
    expectSameBits(impl.f32ToFp8(xs, "fp8e4m3fn"), Uint8Array.from(xs, refE4m3Sat), "f32ToFp8 e4m3fn");
    expectSameBits(bitsOf(impl.roundTo(xs, "fp8e4m3fn")), bitsOf(impl.fp8ToF32(impl.f32ToFp8(xs, "fp8e4m3fn"), "fp8e4m3fn")), "roundTo e4m3");
  });

  it("fp8 e5m2: decode table, round trip, ties, saturation, subnormals, ±0, inf, NaN", () => {
    const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const dec = impl.fp8ToF32(codes, "fp8e5m2");
    for (let v = 0; v < 256; v++) {
      const want = e5m2Value(v);
      if (Number.isNaN(want)) expect(bitsOf(dec)[v]).toBe(v & 0x80 ? 0xffc00000 : 0x7fc00000);
      else expect(Object.is(dec[v], want)).toBe(true);
    }
    const back = impl.f32ToFp8(dec, "fp8e5m2", false);
    for (let v = 0; v < 256; v++) if ((v & 0x7f) <= 0x7c) expect(back[v]).toBe(v);
    const vals = [0, -0, 57344, 61439, 61440, 65536, 1e9, -1e9, Infinity, -Infinity, 2 ** -16, 2 ** -17, 3 * 2 ** -17, 1.125, 1.375, 2 ** -14];
    const sat = impl.f32ToFp8(Float32Array.from(vals), "fp8e5m2", true);
    expect(Array.from(sat)).toEqual(vals.map(refE5m2Sat));
    expect(Array.from(sat.subarray(0, 12))).toEqual([0x00, 0x80, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b, 0xfb, 0x7b, 0xfb, 0x01, 0x00]);
    // saturate=false: onnxruntime's exact behaviour ([61440, 65536) -> NaN, beyond -> inf)
    const ns = impl.f32ToFp8(Float32Array.from([57344, 61439, 61440, 65535, 65536, 1e9, Infinity, -Infinity, -61440]), "fp8e5m2", false);
    expect(Array.from(ns)).toEqual([0x7b, 0x7b, 0x7f, 0x7f, 0x7c, 0x7c, 0x7c, 0xfc, 0xff]);
    expect(Array.from(impl.f32ToFp8(fromBitsArray(NAN_BITS), "fp8e5m2"))).toEqual(NAN_BITS.map((b) => (b & 0x80000000 ? 0xff : 0x7f)));
    const mids: number[] = [];
    for (let v = 0; v < 0x7b; v++) {
      const m = (E5M2_POS[v]! + E5M2_POS[v + 1]!) / 2;
      mids.push(m, -m, bitsF(fbits(m) + 1), bitsF(fbits(m) - 1));
    }
    const xs = Float32Array.from([...mids, ...fromBitsArray(randomFloatBits(100_000, 5))]);
    expectSameBits(impl.f32ToFp8(xs, "fp8e5m2"), Uint8Array.from(xs, refE5m2Sat), "f32ToFp8 e5m2");
    expectSameBits(bitsOf(impl.roundTo(xs, "fp8e5m2")), bitsOf(impl.fp8ToF32(impl.f32ToFp8(xs, "fp8e5m2"), "fp8e5m2")), "roundTo e5m2");
  });

  it("handles empty arrays and caller-provided outputs; rejects bad arguments", () => {
    expect(impl.f32ToF16(new Float32Array(0)).length).toBe(0);
    expect(impl.roundTo(new Float32Array(0), "bf16").length).toBe(0);
    const dst = new Uint16Array(3);
    expect(impl.f32ToF16(Float32Array.of(1, 2, 3), dst)).toBe(dst);
    expect(Array.from(dst)).toEqual([0x3c00, 0x4000, 0x4200]);
    // subarray views with offsets
    const big = Float32Array.of(9, 1, 2, 9);
    expect(Array.from(impl.f32ToF16(big.subarray(1, 3)))).toEqual([0x3c00, 0x4000]);
    expect(() => impl.f32ToF16(Float32Array.of(1, 2), new Uint16Array(3))).toThrow(RangeError);
    expect(() => impl.roundTo(Float32Array.of(1), "fp4" as never)).toThrow(RangeError);
    expect(() => impl.f32ToF16(new Float64Array(2) as never)).toThrow(TypeError);
  });
});

function refF16NaN(b: number): number {
  return ((b >>> 16) & 0x8000) | 0x7e00 | ((b >>> 13) & 0x3ff);
}

// ---- int8 quantization ----------------------------------------------------------------------

describe.each(SUBJECTS)("int8 quantization: $name", (subject) => {
  const impl = subject.impl;
  beforeAll(() => useSimd(subject));
  afterAll(() => {
    if (subject.simd) nativeAddon()!.setSimd("best");
  });

  it("rounds half to even and clamps to [-128,127] or [-127,127]; NaN -> qmin", () => {
    const s = 0.5;
    const x = Float32Array.from([1.25, 1.75, -1.25, -1.75, 0.25, -0.25, 0.75, 1000, -1000, 63.75, -64.25, -63.75, NaN, Infinity, -Infinity, -0]);
    // x/s:                         2.5   3.5   -2.5   -3.5  0.5   -0.5  1.5   2000  -2000  127.5  -128.5  -127.5
    expect(Array.from(impl.quantizeInt8(x, { scale: s }))).toEqual([2, 4, -2, -4, 0, 0, 2, 127, -128, 127, -128, -128, -128, 127, -128, 0]);
    expect(Array.from(impl.quantizeInt8(x, { scale: s, qmin: -127, qmax: 127 }))).toEqual([
      2, 4, -2, -4, 0, 0, 2, 127, -127, 127, -127, -127, -127, 127, -127, 0,
    ]);
    const dq = impl.dequantizeInt8(Int8Array.from([-128, -127, -1, 0, 1, 127]), { scale: 0.1 });
    expect(Array.from(dq)).toEqual([-128, -127, -1, 0, 1, 127].map((q) => Math.fround(q * Math.fround(0.1))));
  });

  it("matches the reference on many values and scales, per tensor; fakeQuant = dequant(quant)", () => {
    const r = fixtureRandom(7);
    for (const scale of [0.1, 0.0123, 1 / 127, 3.7, 2 ** -10]) {
      const x = new Float32Array(20_000);
      for (let i = 0; i < x.length; i++) x[i] = (r() * 2 - 1) * 140 * scale;
      // exact ties x/s = k + 0.5
      for (let i = 0; i < 300; i++) x[i] = Math.fround((i - 150 + 0.5) * Math.fround(scale));
      for (const [qmin, qmax] of [
        [-128, 127],
        [-127, 127],
      ] as const) {
        const q = impl.quantizeInt8(x, { scale, qmin, qmax });
        const want = Int8Array.from(x, (v) => refQuant(v, scale, qmin, qmax));
        expectSameBits(q, want, `quantize s=${scale} [${qmin},${qmax}]`);
        const dq = impl.dequantizeInt8(q, { scale });
        expectSameBits(bitsOf(impl.fakeQuantInt8(x, { scale, qmin, qmax })), bitsOf(dq), "fakeQuant");
        const inPlace = x.slice();
        impl.fakeQuantInt8(inPlace, { scale, qmin, qmax }, inPlace);
        expectSameBits(bitsOf(inPlace), bitsOf(dq), "fakeQuant in place");
      }
    }
  });

  it("per channel on axes 0, 1 and the last axis (negative too)", () => {
    const dims = [3, 4, 5];
    const n = 60;
    const r = fixtureRandom(8);
    const x = Float32Array.from({ length: n }, () => (r() * 2 - 1) * 3);
    for (const axis of [0, 1, 2, -1]) {
      const ax = axis < 0 ? axis + 3 : axis;
      const C = dims[ax]!;
      const scales = Float32Array.from({ length: C }, (_, c) => 0.01 + c * 0.007);
      const inner = dims.slice(ax + 1).reduce((a, b) => a * b, 1);
      const chanOf = (i: number) => Math.floor(i / inner) % C;
      const q = impl.quantizeInt8(x, { scale: scales, axis, dims, qmin: -127, qmax: 127 });
      const want = Int8Array.from(x, (v, i) => refQuant(v, scales[chanOf(i)]!, -127, 127));
      expectSameBits(q, want, `per-channel quantize axis ${axis}`);
      const dq = impl.dequantizeInt8(q, { scale: scales, axis, dims });
      expectSameBits(bitsOf(dq), bitsOf(Float32Array.from(q, (v, i) => v * scales[chanOf(i)]!)), `per-channel dequantize axis ${axis}`);
      expectSameBits(bitsOf(impl.fakeQuantInt8(x, { scale: scales, axis, dims, qmin: -127, qmax: 127 })), bitsOf(dq), "per-channel fakeQuant");
      // per-channel max |x|, ignoring non-finite values
      const y = x.slice();
      y[5] = NaN;
      y[17] = Infinity;
      const am = impl.perChannelAbsMax(y, dims, axis);
      const wantAm = new Float32Array(C);
      y.forEach((v, i) => {
        if (Number.isFinite(v)) wantAm[chanOf(i)] = Math.max(wantAm[chanOf(i)]!, Math.abs(v));
      });
      expect(Array.from(am)).toEqual(Array.from(wantAm));
    }
    // ONNX's default axis is 1
    const s2 = Float32Array.of(0.1, 0.2, 0.3, 0.4);
    expect(Array.from(impl.quantizeInt8(x, { scale: s2, dims }))).toEqual(Array.from(impl.quantizeInt8(x, { scale: s2, dims, axis: 1 })));
  });

  it("validates quantization parameters", () => {
    const x = new Float32Array(6);
    expect(() => impl.quantizeInt8(x, { scale: Float32Array.of(1, 2) })).toThrow(/dims/);
    expect(() => impl.quantizeInt8(x, { scale: Float32Array.of(1, 2), dims: [2, 3], axis: 1 })).toThrow(/channels/);
    expect(() => impl.quantizeInt8(x, { scale: Float32Array.of(1, 2), dims: [2, 3], axis: 2 })).toThrow(/axis/);
    expect(() => impl.quantizeInt8(x, { scale: 1, dims: [2, 2] })).toThrow(/elements/);
    expect(() => impl.quantizeInt8(x, { scale: 1, qmin: -129 })).toThrow(RangeError);
    expect(() => impl.quantizeInt8(x, { scale: 1, qmin: 5, qmax: 4 })).toThrow(RangeError);
    expect(Array.from(impl.quantizeInt8(Float32Array.of(1, -1), { scale: Float32Array.of(0.5) }))).toEqual([2, -2]);
    expect(impl.quantizeInt8(new Float32Array(0), { scale: Float32Array.of(1, 2), dims: [0, 2], axis: 1 }).length).toBe(0);
  });
});

// ---- statistics, metrics, histograms ---------------------------------------------------------

interface RefDiff {
  counts: Pick<DiffMetrics, "numel" | "refNan" | "refInf" | "candNan" | "candInf" | "nonFiniteMismatch" | "newNonFinite" | "finiteCount">;
  abs: number[];
  rel: number[];
  sums: { sumAbs: number; sumRel: number; r2: number; c2: number; d2: number; dot: number };
  refAbsMax: number;
  candAbsMax: number;
  maxAbsIndex: number;
  maxRelIndex: number;
  firstMismatchIndex: number;
}

/** Straightforward reference: one loop, no tricks, errors kept for sorting. */
function refDiff(r: Float32Array, c: Float32Array, infEq: boolean): RefDiff {
  const out: RefDiff = {
    counts: { numel: r.length, refNan: 0, refInf: 0, candNan: 0, candInf: 0, nonFiniteMismatch: 0, newNonFinite: 0, finiteCount: 0 },
    abs: [],
    rel: [],
    sums: { sumAbs: 0, sumRel: 0, r2: 0, c2: 0, d2: 0, dot: 0 },
    refAbsMax: 0,
    candAbsMax: 0,
    maxAbsIndex: -1,
    maxRelIndex: -1,
    firstMismatchIndex: -1,
  };
  let maxAbs = 0;
  let maxRel = 0;
  for (let i = 0; i < r.length; i++) {
    const a = r[i]!;
    const b = c[i]!;
    if (Number.isNaN(a)) out.counts.refNan++;
    else if (!Number.isFinite(a)) out.counts.refInf++;
    if (Number.isNaN(b)) out.counts.candNan++;
    else if (!Number.isFinite(b)) out.counts.candInf++;
    if (Number.isFinite(a) && Number.isFinite(b)) {
      out.counts.finiteCount++;
      const d = Math.abs(b - a);
      const rel = d / (a === 0 ? 2.2e-16 : Math.abs(a));
      out.abs.push(d);
      out.rel.push(rel);
      out.sums.sumAbs += d;
      out.sums.sumRel += rel;
      out.sums.r2 += a * a;
      out.sums.c2 += b * b;
      out.sums.d2 += (b - a) * (b - a);
      out.sums.dot += a * b;
      out.refAbsMax = Math.max(out.refAbsMax, Math.abs(a));
      out.candAbsMax = Math.max(out.candAbsMax, Math.abs(b));
      if (d > maxAbs) {
        maxAbs = d;
        out.maxAbsIndex = i;
      }
      if (rel > maxRel) {
        maxRel = rel;
        out.maxRelIndex = i;
      }
    } else if (!Number.isFinite(b)) {
      const equal = infEq && a === b && !Number.isNaN(a);
      if (Number.isFinite(a)) out.counts.newNonFinite++;
      if (Number.isFinite(a) || !equal) {
        out.counts.nonFiniteMismatch++;
        if (out.firstMismatchIndex < 0) out.firstMismatchIndex = i;
      }
    }
  }
  return out;
}

/** Exact quantile (linear between order statistics, numpy's default). */
function exactQuantile(sorted: number[], q: number): { value: number; lo: number; hi: number } {
  if (sorted.length === 0) return { value: 0, lo: 0, hi: 0 };
  const p = q * (sorted.length - 1);
  const j = Math.floor(p);
  const lo = sorted[j]!;
  const hi = sorted[Math.min(j + 1, sorted.length - 1)]!;
  return { value: lo + (hi - lo) * (p - j), lo, hi };
}

/** Documented bound: the estimate lies within relative 2^-7 (+2^-24) of the order statistics around it. */
const Q_REL = 2 ** -7 + 2 ** -23;
function expectQuantile(est: number, sorted: number[], q: number, what: string): void {
  const { lo, hi } = exactQuantile(sorted, q);
  const ok = est >= lo * (1 - Q_REL) && est <= hi * (1 + Q_REL);
  if (!ok) throw new Error(`${what}: estimate ${est} outside [${lo}, ${hi}] ± 2^-7`);
}

const SUM_TOL = 1e-9;
function close(a: number, b: number, scale: number, tol = SUM_TOL): boolean {
  if (a === b) return true;
  return Math.abs(a - b) <= tol * Math.max(Math.abs(a), Math.abs(b), scale);
}
function expectClose(a: number, b: number, scale: number, what: string, tol = SUM_TOL): void {
  if (!close(a, b, scale, tol)) throw new Error(`${what}: ${a} vs ${b}`);
}

function checkAgainstRef(m: DiffMetrics, r: Float32Array, c: Float32Array, infEq: boolean, q: number): void {
  const ref = refDiff(r, c, infEq);
  for (const k of Object.keys(ref.counts) as (keyof RefDiff["counts"])[]) expect(m[k], k).toBe(ref.counts[k]);
  const n = ref.counts.finiteCount;
  const absS = [...ref.abs].sort((a, b) => a - b);
  const relS = [...ref.rel].sort((a, b) => a - b);
  expect(m.maxAbs).toBe(n ? absS[n - 1] : 0);
  expect(m.maxRel).toBe(n ? relS[n - 1] : 0);
  expect(m.refAbsMax).toBe(ref.refAbsMax);
  expect(m.candAbsMax).toBe(ref.candAbsMax);
  expect(m.maxAbsIndex).toBe(ref.maxAbsIndex);
  expect(m.maxRelIndex).toBe(ref.maxRelIndex);
  expect(m.firstMismatchIndex).toBe(ref.firstMismatchIndex);
  expectClose(m.meanAbs, n ? ref.sums.sumAbs / n : 0, 0, "meanAbs");
  expectClose(m.meanRel, n ? ref.sums.sumRel / n : 0, 0, "meanRel");
  expectClose(m.refL2, Math.sqrt(ref.sums.r2), 0, "refL2");
  expectClose(m.candL2, Math.sqrt(ref.sums.c2), 0, "candL2");
  expectClose(m.diffL2, Math.sqrt(ref.sums.d2), 0, "diffL2");
  expectClose(m.dot, ref.sums.dot, Math.sqrt(ref.sums.r2 * ref.sums.c2), "dot");
  expectQuantile(m.medianAbs, absS, 0.5, "medianAbs");
  expectQuantile(m.quantileAbs, absS, q, "quantileAbs");
  expectQuantile(m.medianRel, relS, 0.5, "medianRel");
  expectQuantile(m.quantileRel, relS, q, "quantileRel");
  const rl = Math.sqrt(ref.sums.r2);
  const cl = Math.sqrt(ref.sums.c2);
  const dl = Math.sqrt(ref.sums.d2);
  if (rl === 0 && cl === 0) expect(m.cosine).toBe(1);
  else if (rl === 0 || cl === 0) expect(m.cosine).toBe(0);
  else expectClose(m.cosine, ref.sums.dot / (rl * cl), 1, "cosine");
  if (dl === 0) {
    expect(m.relL2).toBe(0);
    expect(m.sqnrDb).toBe(Infinity);
  } else if (rl === 0) {
    expect(m.relL2).toBe(Infinity);
    expect(m.sqnrDb).toBe(-Infinity);
  } else {
    expectClose(m.relL2, dl / rl, 0, "relL2");
    expectClose(m.sqnrDb, 20 * Math.log10(rl / dl), 1e-6, "sqnrDb");
  }
}

/** Adversarial pairs: NaN/Inf mixes, zeros in the reference, empty, one-sided zeros. */
function adversarialCases(): { name: string; r: Float32Array; c: Float32Array }[] {
  const rnd = fixtureRandom(11);
  const n = 5000;
  const r = Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * 10);
  const c = r.map((v) => v + (rnd() - 0.5) * 1e-3);
  const specials = [NaN, Infinity, -Infinity, 0, -0, 1e30, -1e-30, 3.4e38];
  const rs = r.slice();
  const cs = c.slice();
  for (let i = 0; i < 600; i++) {
    const k = Math.floor(rnd() * n);
    if (rnd() < 0.5) rs[k] = specials[Math.floor(rnd() * specials.length)]!;
    if (rnd() < 0.5) cs[k] = specials[Math.floor(rnd() * specials.length)]!;
  }
  // same-signed infinities and both-NaN positions
  rs[1] = Infinity;
  cs[1] = Infinity;
  rs[2] = -Infinity;
  cs[2] = -Infinity;
  rs[3] = NaN;
  cs[3] = NaN;
  rs[4] = Infinity;
  cs[4] = -Infinity;
  const zr = r.slice();
  for (let i = 0; i < n; i += 3) zr[i] = 0; // zeros in the reference (rel = |c|/2.2e-16)
  return [
    { name: "random", r, c },
    { name: "nan/inf mix", r: rs, c: cs },
    { name: "zeros in ref", r: zr, c },
    { name: "empty", r: new Float32Array(0), c: new Float32Array(0) },
    { name: "identical", r, c: r.slice() },
    { name: "all zero", r: new Float32Array(100), c: new Float32Array(100) },
    { name: "ref zero, cand not", r: new Float32Array(100), c: c.subarray(0, 100).slice() },
    { name: "cand zero, ref not", r: r.subarray(0, 100).slice(), c: new Float32Array(100) },
    { name: "all NaN cand", r: r.subarray(0, 50).slice(), c: new Float32Array(50).fill(NaN) },
    { name: "flushed to zero", r: new Float32Array(64).fill(1e-6), c: new Float32Array(64) },
    { name: "huge errors", r: Float32Array.of(3.4e38, -3.4e38, 0, 1), c: Float32Array.of(-3.4e38, 3.4e38, 1e38, 1) },
    { name: "single", r: Float32Array.of(2), c: Float32Array.of(3) },
  ];
}

describe.each(SUBJECTS)("statistics and metrics: $name", (subject) => {
  const impl = subject.impl;
  beforeAll(() => useSimd(subject));
  afterAll(() => {
    if (subject.simd) nativeAddon()!.setSimd("best");
  });

  it("diffMetrics matches the straightforward reference on adversarial data", () => {
    for (const { name, r, c } of adversarialCases()) {
      for (const infEq of [false, true]) {
        for (const q of [0.99, 0.5, 0, 1, 0.9]) {
          try {
            checkAgainstRef(impl.diffMetrics(r, c, { quantile: q, infinitiesCompareEqual: infEq }), r, c, infEq, q);
          } catch (e) {
            throw new Error(`${name} (infEq=${infEq}, q=${q}): ${(e as Error).message}`);
          }
        }
      }
    }
  });

  it("diffMetrics: documented special values", () => {
    const e = impl.diffMetrics(new Float32Array(0), new Float32Array(0));
    expect(e).toMatchObject({ numel: 0, finiteCount: 0, maxAbs: 0, meanAbs: 0, medianAbs: 0, cosine: 1, relL2: 0, sqnrDb: Infinity });
    const z = impl.diffMetrics(new Float32Array(4), Float32Array.of(0, 0, 1, 0));
    expect(z).toMatchObject({ cosine: 0, relL2: Infinity, sqnrDb: -Infinity, maxRel: 1 / 2.2e-16 });
    const inf = impl.diffMetrics(Float32Array.of(Infinity, -Infinity, NaN, 1), Float32Array.of(Infinity, -Infinity, NaN, NaN));
    expect(inf).toMatchObject({ nonFiniteMismatch: 4, newNonFinite: 1, finiteCount: 0, firstMismatchIndex: 0 });
    const infEq = impl.diffMetrics(Float32Array.of(Infinity, -Infinity, NaN, 1), Float32Array.of(Infinity, -Infinity, NaN, NaN), {
      infinitiesCompareEqual: true,
    });
    expect(infEq).toMatchObject({ nonFiniteMismatch: 2, newNonFinite: 1, firstMismatchIndex: 2 });
    // reference non-finite, candidate finite: counted on the ref side only, not a mismatch
    expect(impl.diffMetrics(Float32Array.of(NaN), Float32Array.of(1))).toMatchObject({ refNan: 1, nonFiniteMismatch: 0, finiteCount: 0 });
    expect(() => impl.diffMetrics(new Float32Array(2), new Float32Array(3))).toThrow(RangeError);
    expect(() => impl.diffMetrics(new Float32Array(2), new Float32Array(2), { quantile: 1.5 })).toThrow(RangeError);
  });

  it("tensorStats against a two-pass double reference", () => {
    const rnd = fixtureRandom(12);
    const cases: Float32Array[] = [
      new Float32Array(0),
      Float32Array.of(NaN, NaN),
      Float32Array.of(Infinity, -Infinity, NaN, 2),
      Float32Array.from({ length: 10_000 }, () => 1e6 + rnd()), // large mean, small spread
      Float32Array.from({ length: 9_999 }, (_, i) => (i % 97 === 0 ? NaN : i % 89 === 0 ? -Infinity : (rnd() - 0.5) * 1e3)),
      Float32Array.of(-0, 0, 3.4e38, -3.4e38),
      Float32Array.from({ length: 40 }, (_, i) => (i % 2 ? 0 : -0) + (i > 30 ? 1 : 0)), // zero min: reported as +0
    ];
    for (const x of cases) {
      const s = impl.tensorStats(x);
      const fin = Array.from(x).filter(Number.isFinite);
      expect(s.numel).toBe(x.length);
      expect(s.nanCount).toBe(Array.from(x).filter(Number.isNaN).length);
      expect(s.posInfCount).toBe(Array.from(x).filter((v) => v === Infinity).length);
      expect(s.negInfCount).toBe(Array.from(x).filter((v) => v === -Infinity).length);
      expect(s.firstNonFiniteIndex).toBe(Array.from(x).findIndex((v) => !Number.isFinite(v)));
      if (fin.length === 0) {
        expect([s.min, s.max, s.mean, s.std, s.absMax].every(Number.isNaN)).toBe(true);
        continue;
      }
      const mean = fin.reduce((a, b) => a + b, 0) / fin.length;
      const std = Math.sqrt(fin.reduce((a, b) => a + (b - mean) ** 2, 0) / fin.length);
      expect(s.min).toBe(Math.min(...fin) + 0);
      expect(s.max).toBe(Math.max(...fin) + 0);
      expect(s.absMax).toBe(Math.max(...fin.map(Math.abs)));
      const spread = Math.max(...fin.map(Math.abs));
      expectClose(s.mean, mean, spread, "mean");
      expectClose(s.std, std, std === 0 ? 1 : 0, "std", 1e-7);
    }
  });

  it("absHistogram, absMax and elemwiseCheck against the reference", () => {
    const rnd = fixtureRandom(13);
    const x = Float32Array.from({ length: 20_000 }, () => (rnd() - 0.5) * 8);
    x[3] = NaN;
    x[4] = Infinity;
    x[5] = -Infinity;
    x[6] = 1e30;
    const hist = new Float64Array(64);
    const w = 0.0625;
    expect(impl.absHistogram(x, hist, w)).toBe(3);
    const want = new Float64Array(64);
    for (const v of x) if (Number.isFinite(v)) want[Math.min(63, Math.floor(Math.abs(v) / w))]! += 1;
    expect(Array.from(hist)).toEqual(Array.from(want));
    // accumulates
    impl.absHistogram(Float32Array.of(0.01), hist, w);
    expect(hist[0]).toBe(want[0]! + 1);
    expect(() => impl.absHistogram(x, hist, 0)).toThrow(RangeError);
    expect(() => impl.absHistogram(x, new Float64Array(0), 1)).toThrow(RangeError);

    expect(impl.absMax(x)).toBe(1e30 === Math.fround(1e30) ? 1e30 : Math.fround(1e30));
    expect(impl.absMax(new Float32Array(0))).toBe(0);
    expect(impl.absMax(Float32Array.of(NaN, -Infinity))).toBe(0);
    expect(impl.absMax(Float32Array.of(-3, 2))).toBe(3);

    const r = x.map((v) => (Number.isFinite(v) ? v : 1));
    const c = r.map((v, i) => (i % 10 === 0 ? v * 1.01 : v + 1e-4));
    c[7] = NaN;
    const atol = 1e-3;
    const rtol = 5e-3;
    const res = impl.elemwiseCheck(r, c, { atol, rtol });
    let fail = 0;
    let first = -1;
    let minAtol = 0;
    let minRtol = 0;
    for (let i = 0; i < r.length; i++) {
      const a = r[i]!;
      const b = c[i]!;
      if (!Number.isFinite(b)) {
        fail++;
        if (first < 0) first = i;
        continue;
      }
      const d = Math.abs(b - a);
      const rel = d / (a === 0 ? 2.2e-16 : Math.abs(a));
      if (rel > rtol) minAtol = Math.max(minAtol, d);
      if (d > atol) minRtol = Math.max(minRtol, rel);
      if (d > atol && rel > rtol) {
        fail++;
        if (first < 0) first = i;
      }
    }
    expect(res).toEqual({ failCount: fail, nonFiniteMismatch: 1, firstFailIndex: first, minAtol, minRtol });
    // with the minimal tolerances, only the NaN fails
    expect(impl.elemwiseCheck(r, c, { atol: res.minAtol, rtol }).failCount).toBe(1);
    expect(impl.elemwiseCheck(r, c, { atol, rtol: res.minRtol }).failCount).toBe(1);
  });
});

// ---- native vs TypeScript: the tolerance contract ------------------------------------------

describe("native and TypeScript agree (docs/numeric.md contract)", () => {
  const sizes = [1, 15, 4097, 300_000, 1_000_003]; // the last two use the thread pool

  function data(n: number, seed: number): { x: Float32Array; y: Float32Array } {
    const rnd = fixtureRandom(seed);
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (rnd() - 0.5) * 2 ** Math.floor(rnd() * 16 - 8);
    const y = x.map((v, i) => (i % 1000 === 7 ? NaN : i % 777 === 3 ? 0 : v * (1 + (rnd() - 0.5) * 1e-3)));
    if (n > 10) {
      x[9] = Infinity;
      y[9] = Infinity;
      x[10] = 0;
    }
    return { x, y };
  }

  it("requires the native addon here", () => {
    if (!NATIVE && IN_CI) throw new Error(`native addon missing under CI: ${nativeUnavailableReason()}`);
  });

  for (const n of sizes) {
    it(`bit-identical conversions and quantization, equal metrics, n=${n}`, () => {
      if (!NATIVE) {
        if (IN_CI) throw new Error("native addon missing under CI");
        console.error("!! native addon missing: native/TypeScript agreement NOT checked");
        return;
      }
      const { x, y } = data(n, n);
      const bits = bitsOf(x);
      const nat = NATIVE;
      expectSameBits(nat.f32ToF16(x), tsImpl.f32ToF16(x), "f32ToF16", bits);
      expectSameBits(nat.f32ToBf16(x), tsImpl.f32ToBf16(x), "f32ToBf16", bits);
      for (const f of ["fp8e4m3fn", "fp8e5m2"] as const) {
        expectSameBits(nat.f32ToFp8(x, f), tsImpl.f32ToFp8(x, f), f, bits);
        expectSameBits(nat.f32ToFp8(x, f, false), tsImpl.f32ToFp8(x, f, false), f + " nosat", bits);
      }
      for (const f of ["fp16", "bf16", "fp8e4m3fn", "fp8e5m2"] as const) {
        expectSameBits(bitsOf(nat.roundTo(x, f)), bitsOf(tsImpl.roundTo(x, f)), "roundTo " + f, bits);
      }
      const h = nat.f32ToF16(x);
      expectSameBits(bitsOf(nat.f16ToF32(h)), bitsOf(tsImpl.f16ToF32(h)), "f16ToF32");
      const b = nat.f32ToBf16(x);
      expectSameBits(bitsOf(nat.bf16ToF32(b)), bitsOf(tsImpl.bf16ToF32(b)), "bf16ToF32");
      const p8 = nat.f32ToFp8(x, "fp8e5m2");
      expectSameBits(bitsOf(nat.fp8ToF32(p8, "fp8e5m2")), bitsOf(tsImpl.fp8ToF32(p8, "fp8e5m2")), "fp8ToF32");
      const am = tsImpl.absMax(x);
      expect(nat.absMax(x)).toBe(am);
      const qp = { scale: am / 127, qmin: -127, qmax: 127 };
      expectSameBits(nat.quantizeInt8(x, qp), tsImpl.quantizeInt8(x, qp), "quantize");
      expectSameBits(bitsOf(nat.fakeQuantInt8(x, qp)), bitsOf(tsImpl.fakeQuantInt8(x, qp)), "fakeQuant");
      const q = nat.quantizeInt8(x, qp);
      expectSameBits(bitsOf(nat.dequantizeInt8(q, qp)), bitsOf(tsImpl.dequantizeInt8(q, qp)), "dequantize");
      if (n % 3 === 0 || n > 1000) {
        const m = Math.floor(n / 3) * 3;
        const xs = x.subarray(0, m);
        const pc = { scale: Float32Array.of(0.01, 0.02, 0.03), dims: [m / 3, 3], axis: 1 };
        expectSameBits(nat.quantizeInt8(xs, pc), tsImpl.quantizeInt8(xs, pc), "per-channel quantize (last axis)");
        const pc0 = { scale: Float32Array.of(0.01, 0.02, 0.03), dims: [3, m / 3], axis: 0 };
        expectSameBits(bitsOf(nat.fakeQuantInt8(xs, pc0)), bitsOf(tsImpl.fakeQuantInt8(xs, pc0)), "per-channel fakeQuant (axis 0)");
        expect(Array.from(nat.perChannelAbsMax(xs, [3, m / 3], 0))).toEqual(Array.from(tsImpl.perChannelAbsMax(xs, [3, m / 3], 0)));
        expect(Array.from(nat.perChannelAbsMax(xs, [m / 3, 3], 1))).toEqual(Array.from(tsImpl.perChannelAbsMax(xs, [m / 3, 3], 1)));
      }
      const hn = new Float64Array(2048);
      const ht = new Float64Array(2048);
      expect(nat.absHistogram(x, hn, am / 1000)).toBe(tsImpl.absHistogram(x, ht, am / 1000));
      expect(Array.from(hn)).toEqual(Array.from(ht));

      for (const infEq of [false, true]) {
        const a = nat.diffMetrics(x, y, { infinitiesCompareEqual: infEq });
        const t = tsImpl.diffMetrics(x, y, { infinitiesCompareEqual: infEq });
        expectMetricsAgree(a, t);
      }
      const sa = nat.tensorStats(y);
      const st = tsImpl.tensorStats(y);
      for (const k of ["numel", "nanCount", "posInfCount", "negInfCount", "min", "max", "absMax", "firstNonFiniteIndex"] as const) {
        expect(sa[k], k).toBe(st[k]);
      }
      expectClose(sa.mean, st.mean, st.absMax, "mean");
      expectClose(sa.std, st.std, 0, "std");
      expect(nat.elemwiseCheck(x, y, { atol: 1e-3, rtol: 1e-4 })).toEqual(tsImpl.elemwiseCheck(x, y, { atol: 1e-3, rtol: 1e-4 }));
    });
  }
});

/** Counts, maxima, indices and quantiles exactly; sums within 1e-9 relative. */
function expectMetricsAgree(a: DiffMetrics, b: DiffMetrics): void {
  const exact: (keyof DiffMetrics)[] = [
    "numel",
    "refNan",
    "refInf",
    "candNan",
    "candInf",
    "nonFiniteMismatch",
    "newNonFinite",
    "finiteCount",
    "maxAbs",
    "maxRel",
    "medianAbs",
    "quantileAbs",
    "medianRel",
    "quantileRel",
    "refAbsMax",
    "candAbsMax",
    "maxAbsIndex",
    "maxRelIndex",
    "firstMismatchIndex",
  ];
  for (const k of exact) expect(a[k], k).toBe(b[k]);
  for (const k of ["meanAbs", "meanRel", "refL2", "candL2", "diffL2", "relL2"] as const) expectClose(a[k], b[k], 0, k);
  expectClose(a.dot, b.dot, a.refL2 * a.candL2, "dot");
  expectClose(a.cosine, b.cosine, 1, "cosine");
  expectClose(a.sqnrDb, b.sqnrDb, 1, "sqnrDb");
}

// ---- backend selection ---------------------------------------------------------------------

describe("backend selection", () => {
  function runChild(env: Record<string, string>): { stdout: string; stderr: string } {
    const code = [
      'import { numericBackend, absMax, diffMetrics } from "./src/numeric/index.ts";',
      "absMax(new Float32Array(4)); diffMetrics(new Float32Array(4), new Float32Array(4));",
      "console.log(JSON.stringify(numericBackend()));",
    ].join("\n");
    const res = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      cwd: ROOT,
      env: { ...process.env, TRT_DEBUG_QUIET_NUMERIC: "", TRT_DEBUG_NO_NATIVE: "", ...env },
      encoding: "utf8",
    });
    expect(res.status, res.stderr).toBe(0);
    return { stdout: res.stdout, stderr: res.stderr };
  }

  it("TRT_DEBUG_NO_NATIVE=1 selects the TypeScript kernels with a one-line notice, once", () => {
    const { stdout, stderr } = runChild({ TRT_DEBUG_NO_NATIVE: "1" });
    expect(JSON.parse(stdout)).toEqual({ backend: "typescript", reason: "TRT_DEBUG_NO_NATIVE=1", simd: "js", threads: 1 });
    const lines = stderr.split("\n").filter((l) => l.includes("TypeScript numeric kernels"));
    expect(lines).toHaveLength(1);
  });

  it("TRT_DEBUG_QUIET_NUMERIC=1 silences the notice", () => {
    const { stderr } = runChild({ TRT_DEBUG_NO_NATIVE: "1", TRT_DEBUG_QUIET_NUMERIC: "1" });
    expect(stderr).not.toContain("TypeScript numeric kernels");
  });

  it("uses the native addon by default when it is built", () => {
    if (!NATIVE) {
      if (IN_CI) throw new Error("native addon missing under CI");
      return;
    }
    const { stdout, stderr } = runChild({});
    expect(JSON.parse(stdout).backend).toBe("native");
    expect(stderr).not.toContain("TypeScript numeric kernels");
    expect(numericBackend().backend).toBe(process.env.TRT_DEBUG_NO_NATIVE === "1" ? "typescript" : "native");
  });
});

// ---- metric kernels: the native fast paths ---------------------------------------------------
// The native AVX2 kernels take shortcuts that must not show: vector groups screened for new
// maxima and NaN/Inf (which go to scalar code), the rel maximum checked once per block, the
// smallest histogram key found by scanning the histograms for large chunks, absHistogram bins
// bracketed by two multiplications instead of a division. Data built to hit those paths.

function floatNext(v: number, dir: 1 | -1): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer);
  if (v === 0) return dir > 0 ? 1.401298464324817e-45 : -1.401298464324817e-45;
  u[0] = u[0]! + (v > 0 === dir > 0 ? 1 : -1);
  return f[0]!;
}

function fastPathDiffCases(): { name: string; r: Float32Array; c: Float32Array }[] {
  const rnd = fixtureRandom(21);
  const n = 20_000;
  const base = Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * 10);
  // errors that keep growing: a new maximum in almost every group
  const growing = base.map((v, i) => v + i * 1e-6);
  // NaN every 1000, differences that overflow float32 (but not double), zeros in the reference
  const mixedR = base.slice();
  const mixedC = base.map((v) => v * (1 + (rnd() - 0.5) * 1e-3));
  for (let i = 0; i < n; i++) {
    if (i % 1000 === 7) mixedC[i] = NaN;
    if (i % 1500 === 3) {
      mixedR[i] = 3e38;
      mixedC[i] = -3e38;
    }
    if (i % 5 === 0) mixedR[i] = 0;
  }
  // tied maxima: the first position must win whether its group went through the vector code
  // or the scalar code (a NaN in the group), before or after the other one, in one block or not
  const tie = (set: (r: Float32Array, c: Float32Array) => void): { r: Float32Array; c: Float32Array } => {
    const r = new Float32Array(n).fill(1);
    const c = new Float32Array(n).fill(1);
    set(r, c);
    return { r, c };
  };
  // (element 10 holds the largest abs error, so that the rel ties are not abs maxima, which the
  // screen sends to the scalar code)
  const ties = [
    // vector group first, scalar group later in the same block (rel 0.5 both)
    tie((r, c) => {
      [r[10], c[10], r[2050], c[2050], r[2600], c[2600], c[2601]] = [1000, 1100, 2, 3, 4, 6, NaN];
    }),
    // scalar group first, vector group later in the same block (rel 0.75 both)
    tie((r, c) => {
      [r[10], c[10], r[4100], c[4100], c[4099], r[4600], c[4600]] = [1000, 1100, 8, 14, NaN, 1, 1.75];
    }),
    // vector groups in different blocks, and an abs tie (abs 6 twice)
    tie((r, c) => {
      [r[1000], c[1000], r[9000], c[9000], r[15000], c[15000]] = [8, 14, 1, 1.75, 8, 14];
    }),
  ];
  return [
    { name: "growing errors", r: base, c: growing },
    { name: "NaN / float overflow / zeros in ref", r: mixedR, c: mixedC },
    ...ties.map((t, k) => ({ name: `tied maxima ${k}`, ...t })),
    { name: "all equal", r: base, c: base.slice() },
  ];
}

describe.each(SUBJECTS)("metric kernels, fast paths: $name", (subject) => {
  const impl = subject.impl;
  beforeAll(() => useSimd(subject));
  afterAll(() => {
    if (subject.simd) nativeAddon()!.setSimd("best");
  });

  it("diffMetrics equals the reference on data aimed at the screened paths", () => {
    for (const { name, r, c } of fastPathDiffCases()) {
      for (const infEq of [false, true]) {
        try {
          checkAgainstRef(impl.diffMetrics(r, c, { infinitiesCompareEqual: infEq }), r, c, infEq, 0.99);
        } catch (e) {
          throw new Error(`${name} (infEq=${infEq}): ${(e as Error).message}`);
        }
      }
    }
  });

  it("absHistogram is exact at bin edges (exact multiples of the width and their float neighbours)", () => {
    for (const w of [0.1, 1 / 3, 0.25, 0.7, 2 ** -110, 1e-310, 3e5]) {
      for (const nbins of [1, 2048, 100_000]) {
        const xs: number[] = [];
        for (let k = 0; k < 3000; k++) {
          const v = Math.fround(k * w * (k % 2 ? 1 : -1));
          xs.push(v, floatNext(v, 1), floatNext(v, -1));
        }
        xs.push(NaN, Infinity, 3.4e38);
        const x = Float32Array.from(xs);
        const hist = new Float64Array(nbins);
        const skipped = impl.absHistogram(x, hist, w);
        const want = new Float64Array(nbins);
        let wantSkipped = 0;
        for (const v of x) {
          if (!Number.isFinite(v)) wantSkipped++;
          else want[Math.min(nbins - 1, Math.floor(Math.abs(v) / w))]! += 1;
        }
        expect(skipped, `w=${w} nbins=${nbins}`).toBe(wantSkipped);
        for (let i = 0; i < nbins; i++) {
          if (hist[i] !== want[i]) throw new Error(`w=${w} nbins=${nbins}: bin ${i} has ${hist[i]}, want ${want[i]}`);
        }
      }
    }
  });
});

describe("metric kernels, one large chunk (native, 1 thread)", () => {
  it("diffMetrics and tensorStats agree with the reference and TypeScript on 300 000 elements", () => {
    if (!NATIVE) {
      if (IN_CI) throw new Error("native addon missing under CI");
      return;
    }
    const addon = nativeAddon()!;
    addon.setThreads(1);
    try {
      const rnd = fixtureRandom(22);
      const n = 300_000;
      const r = Float32Array.from({ length: n }, (_, i) => (rnd() - 0.5) * 2 ** ((i % 23) - 11));
      const c = r.map((v, i) => (i % 4093 === 5 ? NaN : v * (1 + (rnd() - 0.5) * 1e-4)));
      for (const simd of ["best", "scalar"] as const) {
        addon.setSimd(simd);
        checkAgainstRef(NATIVE.diffMetrics(r, c), r, c, false, 0.99);
        expectMetricsAgree(NATIVE.diffMetrics(r, c), tsImpl.diffMetrics(r, c));
        expectMetricsAgree(NATIVE.diffMetrics(r, r), tsImpl.diffMetrics(r, r));
        const s = NATIVE.tensorStats(c);
        const t = tsImpl.tensorStats(c);
        for (const k of ["numel", "nanCount", "min", "max", "absMax", "firstNonFiniteIndex"] as const) expect(s[k], k).toBe(t[k]);
        expectClose(s.mean, t.mean, t.absMax, "mean");
        expectClose(s.std, t.std, 0, "std");
      }
    } finally {
      addon.setSimd("best");
      addon.setThreads(0);
    }
  });
});
