// numeric/element-codecs.ts: int4 nibble packing, float8 FNUZ decoding/encoding, int8 range counts.
import { describe, expect, it } from "vitest";
import { f32ToFnuz, fnuzToF32, int8RangeCounts, packNibbles, unpackNibbles } from "../src/numeric/index.js";

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
