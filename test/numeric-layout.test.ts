/**
 * The element loops of storage layouts, small-file decoding, weight folding and image pixels
 * (src/numeric/element-layout.ts, image-pixels.ts), bit for bit against independent
 * computations written here.
 */
import { describe, expect, it } from "vitest";
import {
  batchNormScale,
  dequantizeWeights,
  f64ToMiniFloatBits,
  floatsFromJson,
  foldBias,
  fortranToC,
  gatherStrided,
  isPixelDType,
  packValidity,
  pixelsToTensor,
  scaleByChannel,
  storeNumbers,
  type PixelPlan,
} from "../src/numeric/index.js";

describe("fortranToC", () => {
  it("reorders any rank by the C index of each Fortran offset", () => {
    for (const dims of [[2, 3], [3, 1, 4], [2, 3, 2, 2]]) {
      const n = dims.reduce((a, b) => a * b, 1);
      const src = Float64Array.from({ length: n }, (_, i) => i * 1.5 - 7);
      const out = fortranToC(src, dims, (k) => new Float64Array(k));
      // independent: element at multi-index m sits at sum(m[i] * prod(dims[<i])) in Fortran order
      for (let c = 0; c < n; c++) {
        let rem = c, f = 0, stride = 1;
        const m: number[] = [];
        for (let ax = dims.length - 1; ax >= 0; ax--) (m[ax] = rem % dims[ax]!), (rem = Math.floor(rem / dims[ax]!));
        for (let ax = 0; ax < dims.length; ax++) (f += m[ax]! * stride), (stride *= dims[ax]!);
        expect(out[c]).toBe(src[f]);
      }
    }
    const v = new Int32Array([1, 2, 3]);
    expect(fortranToC(v, [3], (k) => new Int32Array(k))).toBe(v);
  });
});

describe("gatherStrided", () => {
  it("row-major gather over any strides and offset, bytes swapped for big-endian storage, null past the end", () => {
    // storage of 2-byte elements 0..11; view [2,3] with strides [1,2] (a transpose) at offset 1
    const raw = Uint8Array.from({ length: 24 }, (_, i) => i);
    const out = gatherStrided(raw, 2, [2, 3], [1, 2], 1, false)!;
    const want: number[] = [];
    for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) want.push(...[0, 1].map((k) => raw[(1 + a * 1 + b * 2) * 2 + k]!));
    expect(Array.from(out)).toEqual(want);
    expect(Array.from(gatherStrided(raw, 2, [2], [3], 0, true)!)).toEqual([1, 0, 7, 6]);
    expect(gatherStrided(raw, 2, [2, 3], [1, 2], 8, false)).toBeNull();
    expect(Array.from(gatherStrided(raw, 4, [], [], 2, false)!)).toEqual([8, 9, 10, 11]);
  });
});

describe("numbers into typed arrays", () => {
  it("storeNumbers: Number for 32-bit and float arrays, BigInt for 64-bit ones", () => {
    const f = new Float32Array(3);
    storeNumbers(f, [0.1, -2, 1e40]);
    expect(Array.from(f)).toEqual([Math.fround(0.1), -2, Infinity]);
    const b = new BigInt64Array(2);
    storeNumbers(b, [-3, 9007199254740993n]);
    expect(Array.from(b)).toEqual([-3n, 9007199254740993n]);
    const u = new Uint8Array(2);
    storeNumbers(u, [1n, 300]);
    expect(Array.from(u)).toEqual([1, 44]);
  });

  it("floatsFromJson: numbers as float32, null as NaN, else the bad index", () => {
    const r = floatsFromJson([1, null, 0.1, 1e999]);
    expect(r).toBeInstanceOf(Float32Array);
    expect(Array.from(r as Float32Array)).toEqual([1, NaN, Math.fround(0.1), Infinity]);
    expect(floatsFromJson([1, 2, "3"])).toBe(2);
  });
});

describe("packValidity", () => {
  it("LSB-first bits at an offset, the bytes cleared first, nothing else touched", () => {
    const b = new Uint8Array(6).fill(0xff);
    const valid = [1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1];
    packValidity(b, 2, valid.length, (i) => valid[i] === 1);
    expect(Array.from(b)).toEqual([0xff, 0xff, 0b10001101, 0b101, 0xff, 0xff]);
  });
});

describe("weight folding", () => {
  it("batchNormScale, scaleByChannel and foldBias round every step to float32", () => {
    const f = Math.fround;
    const gamma = Float32Array.of(1.5, -0.3), beta = Float32Array.of(0.1, 2), mean = Float32Array.of(0.7, -1.1), variance = Float32Array.of(0.2, 3);
    const { scale, bias } = batchNormScale(gamma, beta, mean, variance, 1e-5);
    for (let c = 0; c < 2; c++) {
      const s = f(gamma[c]! / f(Math.sqrt(f(variance[c]! + f(1e-5)))));
      expect(scale[c]).toBe(s);
      expect(bias[c]).toBe(f(beta[c]! - f(mean[c]! * s)));
    }
    const w = Float32Array.of(1, 2, 3, 4, 5, 6);
    const w2 = scaleByChannel(w, scale, (i) => Math.floor(i / 3));
    expect(Array.from(w2)).toEqual([1, 2, 3, 4, 5, 6].map((x, i) => f(x * scale[Math.floor(i / 3)]!)));
    expect(Array.from(foldBias(Float32Array.of(0.5, -1), scale, bias))).toEqual([0, 1].map((c) => f([0.5, -1][c]! * scale[c]! + bias[c]!)));
    expect(Array.from(foldBias(null, scale, bias))).toEqual(Array.from(bias));
  });

  it("dequantizeWeights: (q - zp[c]) * scale[c] per channel along an axis, or one scale", () => {
    const q = Int8Array.of(-128, -1, 0, 1, 127, 5);
    // dims [3, 2], axis 0: inner 2, channel = floor(i / 2) % 3
    const d = dequantizeWeights(q, [0.5, 0.25, 2], [0, 1, -1], 3, 2);
    expect(Array.from(d)).toEqual([-64, -0.5, -0.25, 0, 256, 12]);
    expect(Array.from(dequantizeWeights(q, [0.1], [0], 1, 6))).toEqual(Array.from(q, (x) => Math.fround(x * 0.1)));
    expect(Array.from(dequantizeWeights(Uint8Array.of(10, 20), [1, 2], [3], 2, 1))).toEqual([7, 34]);
  });
});

describe("pixelsToTensor", () => {
  // 2x2 RGBA: distinct channels so order and luma are visible.
  const img = { width: 2, height: 2, data: Uint8Array.from([10, 20, 30, 255, 40, 50, 60, 255, 70, 80, 90, 255, 100, 110, 120, 0]) };
  const px = (x: number, y: number, ch: number) => img.data[(y * 2 + x) * 4 + ch]!;
  const plan = (o: Partial<PixelPlan>): PixelPlan => ({ w: 2, h: 2, c: 3, layout: "nchw", nw: 2, nh: 2, left: 0, top: 0, interp: "bilinear", src: [0, 1, 2], scale: 1, mean: [0, 0, 0], std: [1, 1, 1], pad: 0, ...o });

  it("same size, NCHW and NHWC, BGR, normalization, float32", () => {
    const t = pixelsToTensor(img, "float32", plan({ src: [2, 1, 0], mean: [1, 2, 3], std: [2, 4, 8], scale: 0.5 }));
    const want: number[] = [];
    for (let k = 0; k < 3; k++) for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) want.push(Math.fround((px(x, y, [2, 1, 0][k]!) * 0.5 - [1, 2, 3][k]!) / [2, 4, 8][k]!));
    expect(Array.from(t as Float32Array)).toEqual(want);
    const h = pixelsToTensor(img, "float64", plan({ layout: "nhwc" }));
    expect(Array.from(h as Float64Array)).toEqual([0, 1, 2, 3].flatMap((p) => [0, 1, 2].map((ch) => img.data[p * 4 + ch]!)));
  });

  it("gray luma, pad outside the placed image, nearest upsampling", () => {
    // 2x2 image resized to 4x1 (nearest) placed at top 1 of a 4x3 tensor; rows 0 and 2 are pad.
    const t = pixelsToTensor(img, "float64", plan({ w: 4, h: 3, c: 1, nw: 4, nh: 1, top: 1, interp: "nearest", src: [-1], mean: [0], std: [1], pad: 7 }));
    const luma = (x: number, y: number) => (299 * px(x, y, 0) + 587 * px(x, y, 1) + 114 * px(x, y, 2)) / 1000;
    const row = [0, 0, 1, 1].map((sx) => luma(sx, 0));
    expect(Array.from(t as Float64Array)).toEqual([7, 7, 7, 7, ...row, 7, 7, 7, 7]);
  });

  it("bilinear half-pixel downsampling, stored as float16/bfloat16 bits and as rounded, clamped integers", () => {
    // 2x2 -> 1x1: source (0.5, 0.5), the mean of the four pixels.
    const mean4 = (ch: number) => (px(0, 0, ch) + px(1, 0, ch) + px(0, 1, ch) + px(1, 1, ch)) / 4;
    const p1 = plan({ w: 1, h: 1, nw: 1, nh: 1, scale: 1 / 255 });
    expect(Array.from(pixelsToTensor(img, "float16", p1) as Uint16Array)).toEqual([0, 1, 2].map((ch) => f64ToMiniFloatBits(mean4(ch) / 255, 5, 10)));
    expect(Array.from(pixelsToTensor(img, "bfloat16", p1) as Uint16Array)).toEqual([0, 1, 2].map((ch) => f64ToMiniFloatBits(mean4(ch) / 255, 8, 7)));
    // 55 / 2 = 27.5 -> 28 (half to even); -5 clamps to 0 in uint8, stays in int8; 2.5 -> 2.
    const u = pixelsToTensor(img, "uint8", plan({ w: 1, h: 1, nw: 1, nh: 1, mean: [27.5, 70, 72.5], std: [1, 1, 1] }));
    expect(Array.from(u as Uint8Array)).toEqual([28, 0, 2]);
    const s = pixelsToTensor(img, "int8", plan({ w: 1, h: 1, nw: 1, nh: 1, mean: [27.5, 70, 72.5], std: [1, 1, 1] }));
    expect(Array.from(s as Int8Array)).toEqual([28, -5, 2]);
    expect(mean4(0)).toBe(55);
    expect(isPixelDType("int64")).toBe(false);
    expect(() => pixelsToTensor(img, "int64", p1)).toThrow(/not an image element type/);
  });
});

describe("the dtype table's per-dtype facts (core/dtype.ts)", () => {
  it("minifloat formats, value widening, TensorProto fields and host views agree with the types", async () => {
    const { ALL_DTYPES, DTYPES, hostView } = await import("../src/core/dtype.js");
    expect(f64ToMiniFloatBits(1, ...DTYPES.float16.minifloat!)).toBe(0x3c00);
    expect(f64ToMiniFloatBits(1, ...DTYPES.bfloat16.minifloat!)).toBe(0x3f80);
    expect(ALL_DTYPES.filter((d) => DTYPES[d].minifloat)).toEqual(["float16", "bfloat16"]);
    expect(ALL_DTYPES.filter((d) => DTYPES[d].widened === "float64")).toEqual(["float64", "complex128"]);
    expect(ALL_DTYPES.filter((d) => DTYPES[d].protoField === null)).toEqual(["string", "complex64", "complex128"]);
    expect(ALL_DTYPES.filter((d) => DTYPES[d].protoField === "uint64Data")).toEqual(["uint32", "uint64"]);
    const buf = new Uint8Array([1, 0, 0, 0, 255, 255, 255, 255]).buffer;
    expect(Array.from(hostView("int32", buf) as Int32Array)).toEqual([1, -1]);
    expect(Array.from(hostView("float16", buf) as Uint16Array)).toEqual([1, 0, 65535, 65535]);
    expect(() => hostView("string", buf)).toThrow(/no host typed array/);
  });
});
