// numeric/element-codecs.ts: int4 nibble packing, float8 FNUZ decoding/encoding, int8 range counts.
import { describe, expect, it } from "vitest";
import {
  boolBytes,
  convertFloats,
  copyIntsInRange,
  f32ToFnuz,
  f64ToMiniFloatBits,
  fillUniformFloats,
  fillUniformInts,
  fnuzToF32,
  int8RangeCounts,
  lowWords,
  miniFloatBitsToF64,
  packNibbles,
  unpackNibbles,
  widenToI64,
} from "../src/numeric/index.js";
import { rngFor } from "../src/data/rng.js";

describe("element codecs", () => {
  it("packs two nibbles a byte, low first, and unpacks with sign extension for int4", () => {
    const v = [-8, -1, 0, 7, 3];
    const packed = packNibbles(v);
    expect([...packed]).toEqual([0xf8, 0x70, 0x03]);
    expect([...unpackNibbles(packed, 5, true)]).toEqual(v);
    expect([...unpackNibbles(packed, 5, false)]).toEqual([8, 15, 0, 7, 3]);
  });

  it("decodes FNUZ bit patterns (no inf, no -0, 0x80 the only NaN)", () => {
    const bits = Uint8Array.of(0x00, 0x40, 0xc0, 0x80, 0x7f, 0x01);
    const e4 = fnuzToF32(bits, "fp8e4m3fnuz");
    expect(e4[0]).toBe(0);
    expect(e4[1]).toBe(1); // exponent 8 - bias 8
    expect(e4[2]).toBe(-1);
    expect(Number.isNaN(e4[3]!)).toBe(true);
    expect(e4[4]).toBe(240); // the largest e4m3fnuz value
    expect(e4[5]).toBe(2 ** -10); // smallest subnormal: 1 * 2^(1 - 8 - 3)
    const e5 = fnuzToF32(bits, "fp8e5m2fnuz");
    expect(e5[1]).toBe(1); // exponent 16 - bias 16
    expect(e5[4]).toBe(57344);
  });

  it("encodes every FNUZ value back to its pattern; a value outside the format is reported", () => {
    for (const f of ["fp8e4m3fnuz", "fp8e5m2fnuz"] as const) {
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      const { bits, bad } = f32ToFnuz(fnuzToF32(all, f), f);
      expect(bad).toBe(-1);
      expect([...bits]).toEqual([...all]);
    }
    const r = f32ToFnuz(Float32Array.of(1, 0.3), "fp8e4m3fnuz");
    expect(r.bad).toBe(1);
    expect(f32ToFnuz(Float32Array.of(-0), "fp8e4m3fnuz").bits[0]).toBe(0);
  });

  it("counts int8 range effects exactly", () => {
    // scale 0.5, qmax 127 (exact in float32): |x| <= 0.25 -> 0, |x| > 63.75 clipped; NaN skipped.
    const v = Float32Array.of(0, 0.25, -0.125, 0.5, 63.75, -64, 100, NaN);
    expect(int8RangeCounts(v, 0.5, 127)).toEqual({ nonzero: 6, toZero: 2, clipped: 2, max: 100 });
    // An infinity is a nonzero value beyond the range.
    expect(int8RangeCounts(Float32Array.of(-Infinity, 1), 0.5, 127)).toEqual({ nonzero: 2, toZero: 0, clipped: 1, max: Infinity });
  });
});

// Loops moved from io/dump-values.ts, data/inputs.ts and data/sources.ts: each checked bit for bit.
describe("element loops moved into numeric/", () => {
  it("widenToI64 sign- or zero-extends every small integer type; lowWords wraps back", () => {
    const i8 = Int8Array.of(-128, -1, 0, 1, 127);
    expect([...widenToI64(i8, true)]).toEqual([-128n, -1n, 0n, 1n, 127n]);
    const u32 = Uint32Array.of(0, 1, 0x7fffffff, 0x80000000, 0xffffffff);
    expect([...widenToI64(u32, false)]).toEqual([0n, 1n, 0x7fffffffn, 0x80000000n, 0xffffffffn]);
    const i32 = Int32Array.of(-2147483648, -5, 2147483647);
    expect([...widenToI64(i32, true)]).toEqual([-2147483648n, -5n, 2147483647n]);
    const u16 = Uint16Array.of(0, 65535);
    expect([...widenToI64(u16, false)]).toEqual([0n, 65535n]);
    const big = BigInt64Array.of(-1n, 0x1_0000_0005n, -0x8000_0000n, 0x7fff_ffff_ffff_ffffn);
    expect([...lowWords(big)]).toEqual([-1, 5, -2147483648, -1]);
    expect([...lowWords(widenToI64(i32, true))]).toEqual([...i32]);
    // a view with a byte offset reads its own elements
    const view = new BigInt64Array(big.buffer, 8, 2);
    expect([...lowWords(view)]).toEqual([5, -2147483648]);
  });

  it("boolBytes maps any nonzero byte or int64 to 1", () => {
    expect([...boolBytes(Uint8Array.of(0, 1, 2, 255, 0))]).toEqual([0, 1, 1, 1, 0]);
    expect([...boolBytes(BigInt64Array.of(0n, -1n, 1n << 40n, 0n))]).toEqual([0, 1, 1, 0]);
  });

  it("convertFloats rounds to nearest even from the double", () => {
    const f64 = Float64Array.of(1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, -0, 1e-8, 0.1);
    expect([...(convertFloats(f64, "float64", "float16", 6) as Uint16Array)]).toEqual([0x3c00, 0x3c02, 0x7c00, 0x8000, 0x0000, 0x2e66]);
    expect([...(convertFloats(f64, "float64", "float32", 6) as Float32Array)]).toEqual([...f64].map(Math.fround));
    const bf = convertFloats(Float32Array.of(1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5), "float32", "bfloat16", 3) as Uint16Array;
    expect([...bf]).toEqual([0x3f80, 0x3f82, 0xc020]);
    const h = Uint16Array.of(0x3c00, 0x7c00, 0xfc00, 0x0001);
    expect([...(convertFloats(h, "float16", "float64", 4) as Float64Array)]).toEqual([1, Infinity, -Infinity, 2 ** -24]);
    expect([...(convertFloats(bf, "bfloat16", "float32", 3) as Float32Array)]).toEqual([1, 1 + 2 ** -6, -2.5]);
    expect(Number.isNaN((convertFloats(Uint16Array.of(0x7e00), "float16", "float32", 1) as Float32Array)[0]!)).toBe(true);
  });

  it("copyIntsInRange copies as number or bigint and reports the first value out of range", () => {
    const out = new Int8Array(4);
    expect(copyIntsInRange(BigInt64Array.of(-128n, 0n, 127n, 5n), out, 4, -128n, 127n, false)).toBe(-1);
    expect([...out]).toEqual([-128, 0, 127, 5]);
    expect(copyIntsInRange(Int32Array.of(1, 2, 128, -200), new Int8Array(4), 4, -128n, 127n, false)).toBe(2);
    const o64 = new BigUint64Array(2);
    expect(copyIntsInRange(Uint8Array.of(7, 255), o64, 2, 0n, (1n << 64n) - 1n, true)).toBe(-1);
    expect([...o64]).toEqual([7n, 255n]);
    expect(copyIntsInRange(Int32Array.of(-1), new BigUint64Array(1), 1, 0n, (1n << 64n) - 1n, true)).toBe(0);
  });

  it("fillUniformInts draws one value per element in order from the generator", () => {
    const r = rngFor(7, "x");
    const want = Array.from({ length: 50 }, () => r.uniformInt(-3, 9));
    expect([...(fillUniformInts("int16", rngFor(7, "x"), -3n, 9n, 50) as Int16Array)]).toEqual(want);
    const r64 = rngFor(7, "y");
    const want64 = Array.from({ length: 20 }, () => -5n + BigInt(r64.uniformInt(0, 10)));
    expect([...(fillUniformInts("int64", rngFor(7, "y"), -5n, 5n, 20) as BigInt64Array)]).toEqual(want64);
    const rw = rngFor(7, "z");
    const wantWide = Array.from({ length: 20 }, () => rw.uniformBigInt(0n, 1n << 40n));
    expect([...(fillUniformInts("uint64", rngFor(7, "z"), 0n, 1n << 40n, 20) as BigUint64Array)]).toEqual(wantWide);
  });

  it("fillUniformFloats rounds each draw to the type and redraws values that round up to hi", () => {
    const lo = 0;
    const hi = 1;
    const r = rngFor(3, "f");
    const want: number[] = [];
    while (want.length < 200) {
      let stored = f64ToMiniFloatBits(lo, 5, 10);
      for (let t = 0; t < 64; t++) {
        const b = f64ToMiniFloatBits(lo + (hi - lo) * r.nextFloat53(), 5, 10);
        if (miniFloatBitsToF64(b, 5, 10) < hi) {
          stored = b;
          break;
        }
      }
      want.push(stored);
    }
    const got = fillUniformFloats("float16", rngFor(3, "f"), lo, hi, 200) as Uint16Array;
    expect([...got]).toEqual(want);
    expect(got.every((b) => b < 0x3c00)).toBe(true);
    const r32 = rngFor(3, "g");
    const f = fillUniformFloats("float32", rngFor(3, "g"), -2, 2, 10) as Float32Array;
    expect([...f]).toEqual(Array.from({ length: 10 }, () => Math.fround(-2 + 4 * r32.nextFloat53())));
    expect([...(fillUniformFloats("float64", rngFor(3, "h"), 1.5, 1.5, 3) as Float64Array)]).toEqual([1.5, 1.5, 1.5]);
  });
});
