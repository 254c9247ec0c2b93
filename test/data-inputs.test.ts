import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toBinary } from "@bufbuild/protobuf";
import { TensorProtoSchema } from "onnx-buf";
import { userError, userErrorAsync } from "./helpers.js";
import {
  f64ToMiniFloatBits,
  generateInputs,
  loadInputs,
  miniFloatBitsToF64,
  resolveInputShapes,
  type InputOptions,
  type InputSpec,
} from "../src/data/inputs.js";
import { parseInputShapes, parseSeed, parseValRanges } from "../src/cli/input-flags.js";
import { flagText } from "../src/cli/options.js";
import { valRangeFor } from "../src/data/input-args.js";
import { murmur3_32, rngFor, Xoshiro128ss } from "../src/data/rng.js";
import { hostToTensorProto } from "../src/onnx/tensor.js";
import type { DumpRow } from "../src/io/dump.js";
import type { DType, HostTensor, TensorData } from "../src/core/host-tensor.js";

import { ONNX_TESTDATA as TESTDATA, SKIP_TESTDATA } from "./testdata.js";

function opts(o: Partial<{ seed: number; valRange: string[]; shapes: string[] }> = {}): InputOptions {
  return { seed: o.seed ?? 1, valRanges: parseValRanges(o.valRange), inputShapes: parseInputShapes(o.shapes) };
}

const noWarn = (m: string): void => {
  throw new Error(`unexpected warning: ${m}`);
};

function bytes(d: TensorData): Buffer {
  if (Array.isArray(d)) throw new Error("strings");
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

function nums(t: HostTensor): number[] {
  if (t.dtype === "float16") return Array.from(t.data as Uint16Array, (b) => miniFloatBitsToF64(b, 5, 10));
  if (t.dtype === "bfloat16") return Array.from(t.data as Uint16Array, (b) => miniFloatBitsToF64(b, 8, 7));
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

// ---------------------------------------------------------------------------------------

describe("--val-range parsing", () => {
  it("global and per-input ranges", () => {
    const r = parseValRanges(["[0,5]", "x:[-1,1]"]);
    expect(r.global).toEqual({ lo: 0, hi: 5 });
    expect(valRangeFor(r, "x")).toEqual({ lo: -1, hi: 1 });
    expect(valRangeFor(r, "y")).toEqual({ lo: 0, hi: 5 });
    expect(valRangeFor(parseValRanges(undefined), "y")).toEqual({ lo: 0, hi: 1 });
    expect(valRangeFor(parseValRanges("[2,3]"), "y")).toEqual({ lo: 2, hi: 3 });
  });

  it("names with colons split at the last colon; negatives, scientific notation, spaces", () => {
    const r = parseValRanges([
      "name:with:colons:[0,5]",
      "neg:[-10.5,-0.25]",
      "sci:[1e-3, 2.5E+2]",
      "  spaced name : [ -1 , +1 ]  ",
      "dot:[.5,1.]",
    ]);
    expect(valRangeFor(r, "name:with:colons")).toEqual({ lo: 0, hi: 5 });
    expect(valRangeFor(r, "neg")).toEqual({ lo: -10.5, hi: -0.25 });
    expect(valRangeFor(r, "sci")).toEqual({ lo: 0.001, hi: 250 });
    expect(valRangeFor(r, "spaced name")).toEqual({ lo: -1, hi: 1 });
    expect(valRangeFor(r, "dot")).toEqual({ lo: 0.5, hi: 1 });
    expect(parseValRanges(" [ -2e1 , 3 ] ").global).toEqual({ lo: -20, hi: 3 });
  });

  it("a later entry replaces an earlier one; lo == hi is allowed", () => {
    const r = parseValRanges(["x:[0,1]", "x:[2,2]", "[0,1]", "[5,6]"]);
    expect(valRangeFor(r, "x")).toEqual({ lo: 2, hi: 2 });
    expect(r.global).toEqual({ lo: 5, hi: 6 });
  });

  it.each([
    ["[2,1]", /--val-range '\[2,1\]': lo 2 is greater than hi 1/],
    ["x:[5,-5]", /--val-range 'x:\[5,-5\]': lo 5 is greater than hi -5/],
    ["[a,1]", /--val-range '\[a,1\]': 'a' is not a finite number/],
    ["x:[0,nan]", /'nan' is not a finite number/],
    ["[inf,1]", /'inf' is not a finite number/],
    ["[0x10,1]", /'0x10' is not a finite number/],
    ["[1e999,2e999]", /'1e999' is not a finite number/],
    ["[,1]", /'' is not a finite number/],
    ["[1]", /must have exactly two numbers/],
    ["[1,2,3]", /must have exactly two numbers/],
    ["x:0,1", /--val-range 'x:0,1': '0,1' is not a \[lo,hi\] range/],
    ["x", /--val-range 'x': expected \[lo,hi\] or name:\[lo,hi\]/],
    [":[0,1]", /empty input name/],
    ["", /--val-range: empty value/],
  ])("rejects %j", (v, re) => {
    expect(userError(() => parseValRanges(v)).message).toMatch(re);
  });
});

describe("--input-shapes and --seed parsing", () => {
  it("parses shapes", () => {
    const m = parseInputShapes(["x:[1,3,224,224]", "a:b:[2, 3]", "y:1x3x4", "s:[]", " z : [ 5 ] "]);
    expect(m.get("x")).toEqual([1, 3, 224, 224]);
    expect(m.get("a:b")).toEqual([2, 3]);
    expect(m.get("y")).toEqual([1, 3, 4]);
    expect(m.get("s")).toEqual([]);
    expect(m.get("z")).toEqual([5]);
    expect(parseInputShapes(undefined).size).toBe(0);
  });

  it.each([
    ["x:[1,-1]", /--input-shapes 'x:\[1,-1\]': dimension '-1' is not a non-negative integer/],
    ["x:[1,a]", /dimension 'a' is not a non-negative integer/],
    ["x:[1.5]", /dimension '1.5'/],
    ["x:[1,,2]", /dimension ''/],
    ["x:1xx2", /'1xx2' is not a shape/],
    ["x", /--input-shapes 'x': expected name:\[d0,d1,...\]/],
    [":[1]", /--input-shapes ':\[1\]': empty input name/],
  ])("rejects %j", (v, re) => {
    expect(userError(() => parseInputShapes(v)).message).toMatch(re);
  });

  it("parses --seed", () => {
    expect(parseSeed(undefined)).toBe(1);
    expect(parseSeed("42")).toBe(42);
    expect(parseSeed(0)).toBe(0);
    expect(parseSeed("4294967295")).toBe(4294967295);
    for (const bad of ["-1", "1.5", "abc", "4294967296", ""]) {
      expect(userError(() => parseSeed(bad)).message).toMatch(/^--seed '.*': expected an integer from 0 to 4294967295$/);
    }
  });
});

// ---------------------------------------------------------------------------------------

describe("PRNG", () => {
  it("xoshiro128** matches the reference implementation", () => {
    const a = new Xoshiro128ss(0, 1, 2, 3);
    expect([a.nextU32(), a.nextU32(), a.nextU32(), a.nextU32()]).toEqual([5760, 17280, 2966400, 32451840]);
    const b = new Xoshiro128ss(0x964d4a0c, 0xd40ab895, 0xad7fdecb, 0x3006f0f0);
    expect([b.nextU32(), b.nextU32(), b.nextU32(), b.nextU32()]).toEqual([0xf1391922, 0x6fe53806, 0xa5be2840, 0xf510ee70]);
  });

  it("murmur3_x86_32 matches the reference implementation", () => {
    const e = new TextEncoder();
    expect(murmur3_32(e.encode(""), 0)).toBe(0);
    expect(murmur3_32(e.encode(""), 1)).toBe(0x514e28b7);
    expect(murmur3_32(e.encode("test"), 0)).toBe(0xba6bd213);
    expect(murmur3_32(e.encode("Hello, world!"), 1234)).toBe(0xfaf6cdb3);
    expect(murmur3_32(e.encode("The quick brown fox jumps over the lazy dog"), 0x9747b28c)).toBe(0x2fa826cd);
  });

  it("rngFor(seed, name) is pinned (the vector in docs/inputs.md)", () => {
    const g = rngFor(1, "x");
    expect(g.state()).toEqual([0x241c0175, 0x358f3ced, 0xf9add219, 0xbd69860e]);
    expect([g.nextU32(), g.nextU32(), g.nextU32()]).toEqual([383440045, 2282543332, 2520207961]);
  });

  it("generated values are pinned (the vector in docs/inputs.md)", () => {
    const [x, i] = generateInputs(
      [
        { name: "x", dtype: "float32", dims: [3] },
        { name: "i", dtype: "int32", dims: [4] },
      ],
      opts({ valRange: ["i:[0,9]"] }),
      noWarn,
    ) as [HostTensor, HostTensor];
    const u = (a: number, b: number): number => Math.fround(((a >>> 5) * 2 ** 26 + (b >>> 6)) / 2 ** 53);
    expect(x.data[0]).toBe(u(383440045, 2282543332));
    expect(Array.from(x.data as Float32Array)).toEqual(PINNED_X);
    expect(Array.from(i.data as Int32Array)).toEqual(PINNED_I);
  });
});

const PINNED_X = [0.08927659690380096, 0.5867816209793091, 0.880932629108429];
const PINNED_I = [7, 1, 2, 9];

describe("float16/bfloat16 rounding", () => {
  it("rounds to nearest even, with subnormals and overflow", () => {
    const h = (v: number): number => f64ToMiniFloatBits(v, 5, 10);
    expect(h(1)).toBe(0x3c00);
    expect(h(-2)).toBe(0xc000);
    expect(h(0)).toBe(0);
    expect(h(-0)).toBe(0x8000);
    expect(h(65504)).toBe(0x7bff);
    expect(h(65519.99)).toBe(0x7bff);
    expect(h(65520)).toBe(0x7c00);
    expect(h(2 ** -24)).toBe(1);
    expect(h(2 ** -25)).toBe(0); // tie -> even (0)
    expect(h(3 * 2 ** -25)).toBe(2); // tie -> even (2)
    expect(h(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(h(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(h(2 ** -14 - 2 ** -26)).toBe(0x0400); // rounds up into the normals
    expect(h(NaN) & 0x7c00).toBe(0x7c00);
    for (let b = 0; b < 0x7c00; b += 7) expect(h(miniFloatBitsToF64(b, 5, 10))).toBe(b);
  });

  it("bfloat16 agrees with rounding the float32 bits", () => {
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    const g = rngFor(7, "bf16");
    for (let k = 0; k < 20000; k++) {
      u[0] = g.nextU32();
      if (!Number.isFinite(f[0]!)) continue;
      const bits = u[0]!;
      let want = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
      if ((want & 0x7f80) === 0x7f80) want &= 0xff80; // overflow -> inf
      expect(f64ToMiniFloatBits(f[0]!, 8, 7)).toBe(want);
    }
  });
});

// ---------------------------------------------------------------------------------------

describe("generateInputs", () => {
  const specs: InputSpec[] = [
    { name: "a", dtype: "float32", dims: [4, 5] },
    { name: "b", dtype: "int64", dims: [7] },
    { name: "c", dtype: "float16", dims: [3, 3] },
    { name: "d", dtype: "bool", dims: [9] },
    { name: "e", dtype: "uint8", dims: [2, 2, 2] },
    { name: "f", dtype: "float64", dims: [] },
    { name: "g", dtype: "bfloat16", dims: [6] },
  ];

  it("same seed -> identical bytes; different seed -> different", () => {
    const x = generateInputs(specs, opts({ seed: 5 }), noWarn);
    const y = generateInputs(specs, opts({ seed: 5 }), noWarn);
    const z = generateInputs(specs, opts({ seed: 6 }), noWarn);
    for (let k = 0; k < specs.length; k++) {
      expect(x[k]!.name).toBe(specs[k]!.name);
      expect(x[k]!.dtype).toBe(specs[k]!.dtype);
      expect(x[k]!.dims).toEqual(specs[k]!.dims);
      expect(bytes(x[k]!.data).equals(bytes(y[k]!.data))).toBe(true);
    }
    const differs = (k: number): boolean => !bytes(x[k]!.data).equals(bytes(z[k]!.data));
    expect(differs(0) && differs(1) && differs(2) && differs(6)).toBe(true);
  });

  it("an input's values do not depend on the other inputs or their order", () => {
    const all = generateInputs(specs, opts(), noWarn);
    const alone = generateInputs([specs[2]!], opts(), noWarn);
    const reversed = generateInputs([...specs].reverse(), opts(), noWarn);
    expect(bytes(alone[0]!.data).equals(bytes(all[2]!.data))).toBe(true);
    expect(bytes(reversed[specs.length - 1]!.data).equals(bytes(all[0]!.data))).toBe(true);
  });

  it("default range [0,1): floats in [0,1), ints and bools 0/1", () => {
    const out = generateInputs(
      [
        { name: "f", dtype: "float32", dims: [20000] },
        { name: "i", dtype: "int32", dims: [2000] },
        { name: "t", dtype: "bool", dims: [2000] },
      ],
      opts(),
      noWarn,
    );
    const f = nums(out[0]!);
    expect(Math.min(...f)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...f)).toBeLessThan(1);
    const mean = f.reduce((a, b) => a + b, 0) / f.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
    expect(new Set(nums(out[1]!))).toEqual(new Set([0, 1]));
    expect(new Set(nums(out[2]!))).toEqual(new Set([0, 1]));
    expect(out[2]!.data).toBeInstanceOf(Uint8Array);
  });

  const cases: [DType, string, number, number][] = [
    ["float32", "[-3.5,2]", -3.5, 2],
    ["float64", "[1e-3,1e-2]", 1e-3, 1e-2],
    ["float16", "[-1,1]", -1, 1],
    ["bfloat16", "[100,200]", 100, 200],
  ];
  it.each(cases)("%s stays in [lo,hi) for %s", (dtype, vr, lo, hi) => {
    const [t] = generateInputs([{ name: "v", dtype, dims: [50000] }], opts({ valRange: [`v:${vr}`] }), noWarn);
    const v = nums(t!);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(lo);
    expect(Math.max(...v)).toBeLessThan(hi);
    expect(Math.min(...v)).toBeLessThan(lo + (hi - lo) * 0.01);
    expect(Math.max(...v)).toBeGreaterThanOrEqual(hi - (hi - lo) * 0.01); // bfloat16 [100,200): max is 199
  });

  const intCases: [DType, string, number, number][] = [
    ["int32", "[-3,3]", -3, 3],
    ["int8", "[-128,-126]", -128, -126],
    ["uint8", "[250,255]", 250, 255],
    ["int16", "[-2.5,2.5]", -2, 2], // non-integer bounds: [ceil(lo), floor(hi)]
    ["uint16", "[65530,65535]", 65530, 65535],
    ["uint32", "[4294967290,4294967295]", 4294967290, 4294967295],
    ["int64", "[-2,2]", -2, 2],
    ["uint64", "[0,3]", 0, 3],
    ["int4", "[-8,7]", -8, 7],
    ["uint4", "[0,15]", 0, 15],
    ["bool", "[0,1]", 0, 1],
  ];
  it.each(intCases)("%s covers %s inclusively", (dtype, vr, lo, hi) => {
    const [t] = generateInputs([{ name: "n", dtype, dims: [4000] }], opts({ valRange: [`n:${vr}`] }), noWarn);
    const seen = new Set(nums(t!));
    const want = new Set<number>();
    for (let k = lo; k <= hi; k++) want.add(k);
    expect(seen).toEqual(want);
  });

  it("wide int64/uint64 ranges use 64-bit draws", () => {
    const [a, b] = generateInputs(
      [
        { name: "a", dtype: "int64", dims: [1000] },
        { name: "b", dtype: "uint64", dims: [1000] },
      ],
      opts({ valRange: ["a:[-1e18,1e18]", "b:[0,1.8e19]"] }),
      noWarn,
    ) as [HostTensor, HostTensor];
    const av = Array.from(a.data as BigInt64Array);
    expect(av.every((x) => x >= -(10n ** 18n) && x <= 10n ** 18n)).toBe(true);
    expect(av.some((x) => x < -(10n ** 17n)) && av.some((x) => x > 10n ** 17n)).toBe(true);
    const bv = Array.from(b.data as BigUint64Array);
    expect(bv.every((x) => x <= 18n * 10n ** 18n)).toBe(true);
    expect(bv.some((x) => x > 9n * 10n ** 18n)).toBe(true);
  });

  it("bool [1,1] is all true, [0,0] all false; lo == hi gives a constant", () => {
    const out = generateInputs(
      [
        { name: "t", dtype: "bool", dims: [10] },
        { name: "f", dtype: "bool", dims: [10] },
        { name: "c", dtype: "float32", dims: [5] },
      ],
      opts({ valRange: ["t:[1,1]", "f:[0,0]", "c:[0.25,0.25]"] }),
      noWarn,
    );
    expect(nums(out[0]!)).toEqual(Array(10).fill(1));
    expect(nums(out[1]!)).toEqual(Array(10).fill(0));
    expect(nums(out[2]!)).toEqual(Array(5).fill(0.25));
  });

  it("per-input ranges override the global one, which overrides the default", () => {
    const out = generateInputs(
      [
        { name: "p", dtype: "float32", dims: [1000] },
        { name: "q", dtype: "float32", dims: [1000] },
      ],
      opts({ valRange: ["[10,11]", "p:[-1,0]"] }),
      noWarn,
    );
    const p = nums(out[0]!);
    const q = nums(out[1]!);
    expect(p.every((x) => x >= -1 && x < 0)).toBe(true);
    expect(q.every((x) => x >= 10 && x < 11)).toBe(true);
  });

  it("ranges outside the dtype are clipped with a warning", () => {
    const warnings: string[] = [];
    const [u, h] = generateInputs(
      [
        { name: "u", dtype: "uint8", dims: [3000] },
        { name: "h", dtype: "float16", dims: [100] },
      ],
      opts({ valRange: ["u:[-5,300]", "h:[-1e6,1e6]"] }),
      (m, parts) => warnings.push(m, flagText(parts!)),
    ) as [HostTensor, HostTensor];
    expect(new Set(nums(u)).size).toBe(256);
    expect(nums(h).every((x) => Number.isFinite(x) && Math.abs(x) <= 65504)).toBe(true);
    expect(warnings).toHaveLength(4);
    // the library's text names the option, its parts spelled by the CLI the flag
    expect(warnings[0]).toBe("input 'u' (uint8): valRange [-5,300] clipped to [0,255]");
    expect(warnings[1]).toBe("input 'u' (uint8): --val-range [-5,300] clipped to [0,255]");
    expect(warnings[2]).toMatch(/^input 'h' \(float16\): valRange .* clipped/);
    expect(warnings[3]).toMatch(/^input 'h' \(float16\): --val-range .* clipped/);
  });

  it("errors: string / float8 inputs, ranges without integers, ranges outside the type", () => {
    expect(userError(() => generateInputs([{ name: "s", dtype: "string", dims: [1] }], opts(), noWarn)).message).toMatch(
      /input 's' is a string tensor.*loadInputs/,
    );
    expect(userError(() => generateInputs([{ name: "q", dtype: "float8e4m3fn", dims: [1] }], opts(), noWarn)).message).toMatch(
      /input 'q' has type float8e4m3fn.*loadInputs/,
    );
    expect(
      userError(() => generateInputs([{ name: "i", dtype: "int32", dims: [1] }], opts({ valRange: ["[0.2,0.8]"] }), noWarn)).message,
    ).toMatch(/valRange \[0.2,0.8\] for input 'i' \(int32\) contains no integer/);
    expect(
      userError(() => generateInputs([{ name: "u", dtype: "uint8", dims: [1] }], opts({ valRange: ["u:[-9,-1]"] }), noWarn)).message,
    ).toMatch(/valRange \[-9,-1\] for input 'u' is outside the uint8 range \[0,255\]/);
    expect(
      userError(() => generateInputs([{ name: "d", dtype: "float64", dims: [1] }], opts({ valRange: ["d:[-1e308,1e308]"] }), noWarn)).message,
    ).toMatch(/valRange .* for input 'd' is too wide/);
  });
});

// ---------------------------------------------------------------------------------------

describe("resolveInputShapes", () => {
  const specs: InputSpec[] = [
    { name: "img", dtype: "float32", dims: ["N", 3, null, 224] },
    { name: "len", dtype: "int64", dims: [1] },
  ];

  it("dynamic dims default to 1 with a warning naming the input, the dims and the flag", () => {
    const warnings: string[] = [];
    const flags: string[] = [];
    const m = resolveInputShapes(specs, opts(), (w, parts) => (warnings.push(w), flags.push(flagText(parts!))));
    expect(m.get("img")).toEqual([1, 3, 1, 224]);
    expect(m.get("len")).toEqual([1]);
    // the library names the option, the CLI (its flag spelling of the parts) the flag
    expect(warnings).toEqual(["input 'img' [N,3,?,224]: dynamic dimensions 'N' (axis 0), axis 2 set to 1; set them with inputShapes img:[1,3,1,224]"]);
    expect(flags).toEqual([
      "input 'img' [N,3,?,224]: dynamic dimensions 'N' (axis 0), axis 2 set to 1; set them with --input-shapes img:[1,3,1,224]",
    ]);
  });

  it("--input-shapes sets them; generation uses the shape", () => {
    const o = opts({ shapes: ["img:[2,3,5,224]"] });
    expect(resolveInputShapes(specs, o, noWarn).get("img")).toEqual([2, 3, 5, 224]);
    const [img] = generateInputs(specs, o, noWarn);
    expect(img!.dims).toEqual([2, 3, 5, 224]);
    expect(img!.data.length).toBe(2 * 3 * 5 * 224);
  });

  it("errors: unknown name, wrong rank, contradicting fixed dim", () => {
    expect(userError(() => resolveInputShapes(specs, opts({ shapes: ["image:[1,3,4,224]"] }), noWarn)).message).toBe(
      "inputShapes: the model has no input 'image'; model inputs: img, len",
    );
    expect(userError(() => resolveInputShapes(specs, opts({ shapes: ["img:[1,3,224]"] }), noWarn)).message).toMatch(
      /inputShapes img:\[1,3,224\]: rank 3 but the model declares rank 4 \(model shape \[N,3,\?,224\]\)/,
    );
    expect(userError(() => resolveInputShapes(specs, opts({ shapes: ["img:[1,4,5,224]"] }), noWarn)).message).toMatch(
      /inputShapes img:\[1,4,5,224\]: a fixed dimension differs \(model shape \[N,3,\?,224\]\)/,
    );
  });
});

// ---------------------------------------------------------------------------------------

describe("loadInputs", () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "trt-debug-inputs-"));
  });
  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const addSpecs: InputSpec[] = [
    { name: "x", dtype: "float32", dims: [3, 4, 5] },
    { name: "y", dtype: "float32", dims: [3, 4, 5] },
  ];
  const writePb = (name: string, t: HostTensor): string => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, toBinary(TensorProtoSchema, hostToTensorProto(t)));
    return p;
  };

  it.skipIf(SKIP_TESTDATA)("a libonnx-testdata model directory (falls back to test_data_set_0)", async () => {
    const out = await loadInputs(`${TESTDATA}/node/test_add`, addSpecs);
    expect(out.map((t) => t.name)).toEqual(["x", "y"]);
    expect(out.map((t) => t.dims)).toEqual([[3, 4, 5], [3, 4, 5]]);
    expect(out[0]!.data).toBeInstanceOf(Float32Array);
    const again = await loadInputs(`${TESTDATA}/node/test_add/test_data_set_0`, [{ ...addSpecs[0]!, dims: ["N", 4, null] }, addSpecs[1]!]);
    expect(bytes(again[0]!.data).equals(bytes(out[0]!.data))).toBe(true);
  });

  it.skipIf(SKIP_TESTDATA)(".pb files: matched by name, in any order; positional when names do not match", async () => {
    const dir = `${TESTDATA}/node/test_add/test_data_set_0`;
    const byName = await loadInputs([`${dir}/input_1.pb`, `${dir}/input_0.pb`], addSpecs);
    const ref = await loadInputs(dir, addSpecs);
    expect(bytes(byName[0]!.data).equals(bytes(ref[0]!.data))).toBe(true);
    expect(bytes(byName[1]!.data).equals(bytes(ref[1]!.data))).toBe(true);

    const a = writePb("a.pb", { name: "foo", dtype: "int64", dims: [2], data: BigInt64Array.from([1n, 2n]) });
    const b = writePb("b.pb", { name: "", dtype: "bool", dims: [], data: Uint8Array.from([1]) });
    const out = await loadInputs([a, b], [
      { name: "ids", dtype: "int64", dims: ["n"] },
      { name: "flag", dtype: "bool", dims: [] },
    ]);
    expect(out.map((t) => t.name)).toEqual(["ids", "flag"]);
    expect(out[0]!.data).toEqual(BigInt64Array.from([1n, 2n]));
    expect(Array.from(out[1]!.data as Uint8Array)).toEqual([1]);
  });

  it("an Arrow inputs file written by the dump writer", async () => {
    const { DumpWriter, hostTensorToValues } = await import("../src/io/dump.js");
    const row = (order: number, t: HostTensor): DumpRow => ({
      order,
      layer: "",
      opType: "",
      tensor: t.name,
      dtype: t.dtype,
      precision: "",
      dims: t.dims,
      ...hostTensorToValues(t),
      stats: { numel: t.data.length, min: null, max: null, mean: null, std: null, nanCount: 0, posInfCount: 0, negInfCount: 0 },
    });
    const file = path.join(tmp, "inputs.arrow");
    const w = await DumpWriter.open(file, { kind: "inputs", model: "m.onnx", precision: "", extra: {} });
    const tensors: HostTensor[] = [
      { name: "y", dtype: "float32", dims: [3, 4, 5], data: Float32Array.from({ length: 60 }, (_, i) => i / 7) },
      { name: "x", dtype: "float32", dims: [3, 4, 5], data: Float32Array.from({ length: 60 }, (_, i) => -i) },
    ];
    for (const [k, t] of tensors.entries()) await w.write(row(k, t));
    await w.close();
    const out = await loadInputs(file, addSpecs);
    expect(out.map((t) => t.name)).toEqual(["x", "y"]);
    expect(out[0]!.data).toEqual(tensors[1]!.data);
    expect(out[1]!.data).toEqual(tensors[0]!.data);

    const unknown = path.join(tmp, "unknown.arrow");
    const w2 = await DumpWriter.open(unknown, { kind: "inputs", model: "", precision: "", extra: {} });
    await w2.write(row(0, { name: "zz", dtype: "float32", dims: [1], data: Float32Array.from([1]) }));
    await w2.close();
    expect((await userErrorAsync(loadInputs(unknown, addSpecs))).message).toBe(
      `loadInputs ${unknown}: unknown input 'zz'; model inputs: x, y`,
    );

    const dump = path.join(tmp, "dump.arrow");
    const w3 = await DumpWriter.open(dump, { kind: "dump", model: "", precision: "", extra: {} });
    await w3.close();
    expect((await userErrorAsync(loadInputs(dump, addSpecs))).message).toMatch(/dump\.arrow.*not an inputs file/);
  });

  it.skipIf(SKIP_TESTDATA)("errors: missing path, empty directory, missing inputs, wrong dtype, wrong shape, extra files, duplicates", async () => {
    const dir = `${TESTDATA}/node/test_add/test_data_set_0`;
    expect((await userErrorAsync(loadInputs(path.join(tmp, "nope"), addSpecs))).message).toBe(
      `loadInputs ${path.join(tmp, "nope")}: no such file or directory; check the path`,
    );
    const empty = path.join(tmp, "emptydir");
    fs.mkdirSync(empty);
    expect((await userErrorAsync(loadInputs(empty, addSpecs))).message).toMatch(/loadInputs .*emptydir: no input_\*\.pb files/);
    expect((await userErrorAsync(loadInputs([], addSpecs))).message).toMatch(/loadInputs: no path given/);

    expect((await userErrorAsync(loadInputs(`${dir}/input_0.pb`, addSpecs))).message).toBe(
      `loadInputs ${dir}/input_0.pb: missing input 'y'; model inputs: x, y`,
    );
    expect(
      (await userErrorAsync(loadInputs(dir, [{ name: "x", dtype: "int64", dims: [3, 4, 5] }, addSpecs[1]!]))).message,
    ).toBe(`loadInputs ${dir}/input_0.pb: input 'x': got float32, model expects int64; save it as int64`);
    const i64 = writePb("x64.pb", { name: "x", dtype: "int64", dims: [1], data: BigInt64Array.from([1n]) });
    expect((await userErrorAsync(loadInputs(i64, [{ name: "x", dtype: "float32", dims: [1] }]))).message).toMatch(
      /input 'x': got int64, model expects float32/,
    );
    expect(
      (await userErrorAsync(loadInputs(dir, [{ name: "x", dtype: "float32", dims: [3, 5, "N"] }, addSpecs[1]!]))).message,
    ).toBe(`loadInputs ${dir}/input_0.pb: input 'x': got shape [3,4,5], model expects [3,5,N]`);
    expect((await userErrorAsync(loadInputs(dir, [{ name: "x", dtype: "float32", dims: [3, 4] }, addSpecs[1]!]))).message).toMatch(
      /input 'x': got shape \[3,4,5\], model expects \[3,4\]/,
    );
    expect((await userErrorAsync(loadInputs(dir, [addSpecs[0]!]))).message).toBe(
      `loadInputs ${dir}/input_1.pb: tensor 'y' matches no model input and position 1 is past the model's 1 input(s); model inputs: x`,
    );
    expect((await userErrorAsync(loadInputs([`${dir}/input_0.pb`, `${dir}/input_0.pb`], addSpecs))).message).toBe(
      `loadInputs: input 'x' is given twice (${dir}/input_0.pb and ${dir}/input_0.pb); pass it once`,
    );
    const junk = path.join(tmp, "junk.pb");
    fs.writeFileSync(junk, "hello world, not protobuf");
    expect((await userErrorAsync(loadInputs(junk, addSpecs))).message).toMatch(/junk\.pb: not an ONNX TensorProto/);
  });
});
