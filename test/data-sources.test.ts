/**
 * Real-data input sources: .npy codec, .npz, Polygraphy JSON, images with the documented
 * preprocessing, data-loader scripts. Fixtures are written here by independent encoders
 * (.npy bytes by hand, zip via fflate's encoder, PNG via pngjs, JPEG via jpeg-js, a dev dependency).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { zipSync } from "fflate";
import { toBinary } from "@bufbuild/protobuf";
import { TensorProtoSchema } from "onnx-buf";
import { hostToTensorProto } from "../src/onnx/tensor.js";
import { PNG } from "pngjs";
import jpeg from "jpeg-js";
import { decodeNpy, encodeNpy } from "../src/io/npy.js";
import { openInputSets, openLoaderScript } from "../src/data/sources.js";
import { resolveImagePreprocess } from "../src/data/image.js";
import { parseImagePreprocess } from "../src/cli/image-preprocess-flag.js";
import { f64ToMiniFloatBits, type InputSpec } from "../src/data/inputs.js";
import type { HostTensor } from "../src/core/host-tensor.js";
import { tmpDir, userError, userErrorAsync } from "./helpers.js";

const dir = tmpDir("trtdbg-src-");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** .npy bytes written by hand: header dict, padding to 64, then `payload`. */
function npyBytes(descr: string, shape: number[], payload: Uint8Array, o: { fortran?: boolean; major?: number } = {}): Uint8Array {
  const major = o.major ?? 1;
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': ${o.fortran ? "True" : "False"}, 'shape': ${shapeStr}, }`;
  const pre = major === 1 ? 10 : 12;
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  header += " ".repeat(total - pre - header.length - 1) + "\n";
  const out = new Uint8Array(total + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, header.length, true);
  else dv.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[pre + i] = header.charCodeAt(i);
  out.set(payload, total);
  return out;
}

/** Element bytes with DataView (explicit endianness). */
function payload(kind: "f4" | "f8" | "f2bits" | "i8" | "i4" | "u2", values: number[], little: boolean): Uint8Array {
  const size = { f4: 4, f8: 8, f2bits: 2, i8: 8, i4: 4, u2: 2 }[kind];
  const b = new Uint8Array(values.length * size);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => {
    const o = i * size;
    if (kind === "f4") dv.setFloat32(o, v, little);
    else if (kind === "f8") dv.setFloat64(o, v, little);
    else if (kind === "i8") dv.setBigInt64(o, BigInt(v), little);
    else if (kind === "i4") dv.setInt32(o, v, little);
    else dv.setUint16(o, v, little);
  });
  return b;
}

/** openInputSets + collect, as one promise (some sources fail when opened, some when read). */
const load = async (...a: Parameters<typeof openInputSets>) => collect(openInputSets(...a));

async function collect(sets: { iterate(): AsyncGenerator<HostTensor[]> }): Promise<HostTensor[][]> {
  const out: HostTensor[][] = [];
  for await (const s of sets.iterate()) out.push(s);
  return out;
}

const vals = (t: HostTensor): number[] => Array.from(t.data as ArrayLike<number | bigint>, Number);
const write = (name: string, b: Uint8Array | string): string => {
  const f = path.join(dir, name);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, b);
  return f;
};

describe(".npy codec", () => {
  it("decodes float32/float64/int64/int32/uint16/bool/float16, little and big endian, v1/v2/v3 headers", () => {
    const v = [1.5, -2.25, 3, 1e-3];
    for (const little of [true, false]) {
      const e = little ? "<" : ">";
      const f4 = decodeNpy(npyBytes(`${e}f4`, [2, 2], payload("f4", v, little)), "t");
      expect(f4.dtype).toBe("float32");
      expect(f4.dims).toEqual([2, 2]);
      expect(Array.from(f4.data as Float32Array)).toEqual(v.map(Math.fround));
      const f8 = decodeNpy(npyBytes(`${e}f8`, [4], payload("f8", v, little), { major: 2 }), "t");
      expect(Array.from(f8.data as Float64Array)).toEqual(v);
      const i8 = decodeNpy(npyBytes(`${e}i8`, [3], payload("i8", [-5, 0, 2 ** 40], little), { major: 3 }), "t");
      expect(i8.dtype).toBe("int64");
      expect(Array.from(i8.data as BigInt64Array)).toEqual([-5n, 0n, 2n ** 40n]);
      const i4 = decodeNpy(npyBytes(`${e}i4`, [2], payload("i4", [-7, 123456], little)), "t");
      expect(Array.from(i4.data as Int32Array)).toEqual([-7, 123456]);
      const f2 = decodeNpy(npyBytes(`${e}f2`, [2], payload("f2bits", [0x3c00, 0xc000], little)), "t"); // 1.0, -2.0
      expect(f2.dtype).toBe("float16");
      expect(Array.from(f2.data as Uint16Array)).toEqual([0x3c00, 0xc000]);
      const u2 = decodeNpy(npyBytes(`${e}u2`, [1], payload("u2", [65535], little)), "t");
      expect(Array.from(u2.data as Uint16Array)).toEqual([65535]);
    }
    const b = decodeNpy(npyBytes("|b1", [3], Uint8Array.from([1, 0, 1])), "t");
    expect(b.dtype).toBe("bool");
    expect(Array.from(b.data as Uint8Array)).toEqual([1, 0, 1]);
    const u1 = decodeNpy(npyBytes("|u1", [2], Uint8Array.from([0, 255])), "t");
    expect(u1.dtype).toBe("uint8");
    const i1 = decodeNpy(npyBytes("|i1", [2], Uint8Array.from([0xff, 5])), "t");
    expect(Array.from(i1.data as Int8Array)).toEqual([-1, 5]);
    const scalar = decodeNpy(npyBytes("<f4", [], payload("f4", [7], true)), "t");
    expect(scalar.dims).toEqual([]);
    expect(Array.from(scalar.data as Float32Array)).toEqual([7]);
  });

  it("transposes Fortran-ordered arrays to C order", () => {
    // C array [[1,2,3],[4,5,6]] stored column-major: 1,4,2,5,3,6.
    const f = decodeNpy(npyBytes("<f4", [2, 3], payload("f4", [1, 4, 2, 5, 3, 6], true), { fortran: true }), "t");
    expect(f.fortranOrder).toBe(true);
    expect(Array.from(f.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    // rank 3 [2,2,2]: C value at (i,j,k) = 100i + 10j + k; Fortran offset i + 2j + 4k.
    const fv: number[] = new Array(8);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) for (let k = 0; k < 2; k++) fv[i + 2 * j + 4 * k] = 100 * i + 10 * j + k;
    const g = decodeNpy(npyBytes(">i4", [2, 2, 2], payload("i4", fv, false), { fortran: true }), "t");
    expect(Array.from(g.data as Int32Array)).toEqual([0, 1, 10, 11, 100, 101, 110, 111]);
  });

  it("round-trips encodeNpy (header padded to 64 bytes)", () => {
    const a = { dtype: "float32" as const, dims: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
    const bytes = encodeNpy(a);
    const hl = new DataView(bytes.buffer).getUint16(8, true);
    expect((10 + hl) % 64).toBe(0);
    const back = decodeNpy(bytes, "t");
    expect(back.dims).toEqual([2, 3]);
    expect(Array.from(back.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    const i = decodeNpy(encodeNpy({ dtype: "int64", dims: [2], data: BigInt64Array.from([-1n, 9n]) }), "t");
    expect(Array.from(i.data as BigInt64Array)).toEqual([-1n, 9n]);
  });

  it("rejects malformed files with one-line errors", () => {
    const good = npyBytes("<f4", [4], payload("f4", [1, 2, 3, 4], true));
    expect(userError(() => decodeNpy(good.subarray(0, good.length - 3), "x.npy")).message).toMatch(/^x\.npy: the header says shape \(4\) of <f4 \(16 bytes of data\) but the file holds 13 bytes after the header; the file is truncated/);
    expect(userError(() => decodeNpy(good.subarray(0, 40), "x.npy")).message).toMatch(/x\.npy: truncated \.npy file/);
    const badMagic = Uint8Array.from(good);
    badMagic[1] = 0x41;
    expect(userError(() => decodeNpy(badMagic, "x.npy")).message).toMatch(/x\.npy: not a \.npy file \(bad magic/);
    // header claims 8 elements, data has 4
    expect(userError(() => decodeNpy(npyBytes("<f4", [2, 4], payload("f4", [1, 2, 3, 4], true)), "x.npy")).message).toMatch(/shape \(2, 4\).*truncated/);
    expect(userError(() => decodeNpy(npyBytes("<c8", [1], new Uint8Array(8)), "x.npy")).message).toMatch(/numpy dtype '<c8' is not supported/);
    expect(userError(() => decodeNpy(npyBytes("<U3", [1], new Uint8Array(12)), "x.npy")).message).toMatch(/'<U3' is not supported/);
  });
});

const img: InputSpec = { name: "img", dtype: "float32", dims: [1, 3, 2, 2] };

describe("file sources", () => {
  const specs: InputSpec[] = [
    { name: "x", dtype: "float32", dims: [2, 2] },
    { name: "ids", dtype: "int32", dims: ["N"] },
  ];

  it("NAME:file.npy per input; float64 rounds to float32, int64 narrows to int32", async () => {
    const x = write("a/x.npy", npyBytes("<f8", [2, 2], payload("f8", [0.1, 1 / 3, -2, 1e-50], true)));
    const ids = write("a/ids.npy", npyBytes(">i8", [3], payload("i8", [1, -2, 3], false)));
    const [set, ...rest] = await collect(openInputSets([`x:${x}`, `ids:${ids}`], specs, { option: "loadInputs" }));
    expect(rest).toHaveLength(0);
    expect(set![0]!.dtype).toBe("float32");
    expect(Array.from(set![0]!.data as Float32Array)).toEqual([0.1, 1 / 3, -2, 1e-50].map(Math.fround));
    expect(set![1]).toEqual({ name: "ids", dtype: "int32", dims: [3], data: Int32Array.from([1, -2, 3]) });
  });

  it("NAME:tensor.pb combines with an .npy", async () => {
    const pb = write("ids.pb", toBinary(TensorProtoSchema, hostToTensorProto({ name: "whatever", dtype: "int32", dims: [2], data: Int32Array.from([4, 5]) })));
    const x = write("x22.npy", npyBytes("<f4", [2, 2], payload("f4", [1, 2, 3, 4], true)));
    const sets = await collect(openInputSets([`ids:${pb}`, `x:${x}`], specs, { option: "loadInputs" }));
    expect(sets.map((s) => s.map(vals))).toEqual([[[1, 2, 3, 4], [4, 5]]]);
  });

  it("an Arrow inputs file with .pb files is still one set (as before)", async () => {
    const { saveInputs } = await import("../src/workflows/model-inputs.js");
    const arrow = path.join(dir, "x.arrow");
    await saveInputs(arrow, "m.onnx", [{ name: "x", dtype: "float32", dims: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }]);
    const pb = write("ids2.pb", toBinary(TensorProtoSchema, hostToTensorProto({ name: "ids", dtype: "int32", dims: [1], data: Int32Array.from([9]) })));
    const sets = await collect(openInputSets([arrow, pb], specs, { option: "loadInputs" }));
    expect(sets.map((s) => s.map(vals))).toEqual([[[1, 2, 3, 4], [9]]]);
  });

  it(".npz stored and deflated; arrays named by input", async () => {
    const x = npyBytes("<f4", [2, 2], payload("f4", [1, 2, 3, 4], true));
    const ids = npyBytes("<i4", [2], payload("i4", [7, 8], true));
    for (const level of [0, 6] as const) {
      const f = write(`n${level}.npz`, zipSync({ "x.npy": x, "ids.npy": ids }, { level }));
      const sets = await collect(openInputSets([f], specs, { option: "loadInputs" }));
      expect(sets).toHaveLength(1);
      expect(vals(sets[0]![0]!)).toEqual([1, 2, 3, 4]);
      expect(vals(sets[0]![1]!)).toEqual([7, 8]);
    }
    const wrong = write("wrong.npz", zipSync({ "arr_0.npy": x, "ids.npy": ids }));
    const e = await userErrorAsync(load([wrong], specs, { option: "loadInputs" }));
    expect(e.message).toMatch(/wrong\.npz: array 'arr_0' is not a model input; model inputs: x, ids/);
  });

  it("Polygraphy --save-inputs JSON with 2 iterations (base64 .npy, current and legacy markers)", async () => {
    const enc = (b: Uint8Array) => Buffer.from(b).toString("base64");
    const it = (k: number) => ({
      x: { array: enc(npyBytes("<f4", [2, 2], payload("f4", [k, k + 1, k + 2, k + 3], true))), polygraphy_class: "ndarray" },
      ids: { array: enc(npyBytes("<i8", [1], payload("i8", [k * 10], true))), __polygraphy_encoded_ndarray: "polygraphy_serialized_json_type" },
    });
    const f = write("poly.json", JSON.stringify([it(0), it(5)], null, 4));
    const sets = await collect(openInputSets([f], specs, { option: "loadInputs" }));
    expect(sets).toHaveLength(2);
    expect(vals(sets[0]![0]!)).toEqual([0, 1, 2, 3]);
    expect(vals(sets[1]![0]!)).toEqual([5, 6, 7, 8]);
    expect(vals(sets[1]![1]!)).toEqual([50]);
    expect(sets[1]![1]!.dtype).toBe("int32");

    const notList = write("obj.json", JSON.stringify(it(0)));
    expect((await userErrorAsync(load([notList], specs, { option: "loadInputs" }))).message).toMatch(/obj\.json: a Polygraphy inputs file is a JSON list/);
    const bad64 = write("b64.json", JSON.stringify([{ x: { array: "@@not base64@@", polygraphy_class: "ndarray" } }]));
    expect((await userErrorAsync(load([bad64], specs, { option: "loadInputs" }))).message).toMatch(/b64\.json: iteration 0, input 'x': .*bad base64/);
  });

  it("names the file, the input, expected vs got for a wrong dtype or shape", async () => {
    const u8 = write("u8.npy", npyBytes("|u1", [2, 2], Uint8Array.from([1, 2, 3, 4])));
    const ids = write("ids1.npy", npyBytes("<i4", [1], payload("i4", [1], true)));
    const e1 = await userErrorAsync(load([`x:${u8}`, `ids:${ids}`], specs, { option: "loadInputs" }));
    expect(e1.message).toBe(`loadInputs ${u8}: input 'x': got uint8, model expects float32; save it as float32 (numpy: arr.astype(numpy.float32))`);
    const big = write("x3.npy", npyBytes("<f4", [3], payload("f4", [1, 2, 3], true)));
    const e2 = await userErrorAsync(load([`x:${big}`, `ids:${ids}`], specs, { option: "loadInputs" }));
    expect(e2.message).toMatch(/x3\.npy: input 'x': got shape \[3\], model expects \[2,2\]; save an array of the model's shape/);
  });

  it("a folder of .npy files is one set per file (natural name order); counts must agree", async () => {
    for (const k of [10, 2, 1]) write(`dir/s${k}.npy`, npyBytes("<f4", [2, 2], payload("f4", [k, k, k, k], true)));
    const single: InputSpec[] = [specs[0]!];
    const sets = await collect(openInputSets([path.join(dir, "dir")], single, { option: "calibData" }));
    expect(sets.map((s) => vals(s[0]!)[0])).toEqual([1, 2, 10]);
    const ids = write("ids2.npy", npyBytes("<i4", [1], payload("i4", [1], true)));
    const e = await userErrorAsync(load([`x:${path.join(dir, "dir")}`, `ids:${ids}`], specs, { option: "loadInputs" }));
    expect(e.message).toMatch(/gives 1 input set but .*dir gives more; give every input the same number of sets/);
  });
});

describe("images", () => {
  /** A w×h RGBA PNG from [r,g,b,a] pixels, row-major. */
  const png = (name: string, w: number, h: number, px: number[][]): string => {
    const p = new PNG({ width: w, height: h });
    px.forEach((c, i) => p.data.set(c, i * 4));
    return write(name, PNG.sync.write(p));
  };

  it("PNG → NCHW RGB, scale 1/255 (defaults), exact", async () => {
    const px = [[10, 20, 30, 255], [40, 50, 60, 255], [70, 80, 90, 255], [100, 110, 120, 0]];
    const f = png("2x2.png", 2, 2, px);
    const [[t]] = (await collect(openInputSets([f], [img], { option: "loadInputs" }))) as HostTensor[][];
    expect(t!.dims).toEqual([1, 3, 2, 2]);
    const want = [0, 1, 2].flatMap((c) => px.map((p) => Math.fround(p[c]! / 255)));
    expect(Array.from(t!.data as Float32Array)).toEqual(want);
  });

  it("resize (stretch, bilinear half-pixel), BGR, NHWC, mean/std: hand-computed", async () => {
    // 2x1 image → 4x1: x-sources clamp(-0.25)=0, 0.25, 0.75, clamp(1.25)=1.
    const p0 = [0, 100, 200, 255], p1 = [200, 100, 0, 255];
    const f = png("2x1.png", 2, 1, [p0, p1]);
    const spec: InputSpec = { name: "img", dtype: "float32", dims: [1, 1, 4, 3] };
    const pre = { layout: "nhwc", order: "bgr", scale: 1, mean: [1, 2, 3], std: [2, 4, 8] } as const;
    const [[t]] = (await collect(openInputSets([f], [spec], { option: "loadInputs", imagePreprocess: pre }))) as HostTensor[][];
    const lerp = (w1: number, c: number) => p0[c]! * (1 - w1) + p1[c]! * w1;
    const want: number[] = [];
    for (const w1 of [0, 0.25, 0.75, 1]) {
      [2, 1, 0].forEach((c, k) => want.push(Math.fround((lerp(w1, c) - [1, 2, 3][k]!) / [2, 4, 8][k]!)));
    }
    expect(t!.dims).toEqual([1, 1, 4, 3]);
    expect(Array.from(t!.data as Float32Array)).toEqual(want);
  });

  it("keep-aspect pad, grayscale input (luma), float16 input", async () => {
    const f = png("pad.png", 2, 1, [[255, 0, 0, 255], [0, 0, 255, 255]]);
    const spec: InputSpec = { name: "g", dtype: "float16", dims: [1, 1, 2, 2] };
    const [[t]] = (await collect(openInputSets([f], [spec], { option: "loadInputs", imagePreprocess: { perInput: { g: { resize: "pad", pad: 51, scale: 1 / 255 } } } }))) as HostTensor[][];
    // r = min(2/2, 2/1) = 1 → 2x1 placed at top = floor((2-1)/2) = 0; row 1 is padding.
    // Luma of pure red / blue: 0.299 / 0.114 (after scale 1/255); padding 51/255 = 0.2; each rounded to float16.
    const exp = [(299 * 255) / 1000 / 255, (114 * 255) / 1000 / 255, 0.2, 0.2];
    expect(Array.from(t!.data as Uint16Array)).toEqual(exp.map((v) => f64ToMiniFloatBits(v, 5, 10)));
  });

  it("a folder of images (sorted by name) is one set per image; JPEG decodes to the right shape and range", async () => {
    const w = 16, h = 8;
    const data = Buffer.alloc(w * h * 4);
    for (let i = 0; i < w * h; i++) data.set([200, 100, 50, 255], i * 4);
    write("imgs/b.jpg", jpeg.encode({ width: w, height: h, data }, 95).data);
    png("imgs/a.png", 2, 2, Array.from({ length: 4 }, () => [0, 0, 0, 255]));
    const spec: InputSpec = { name: "img", dtype: "float32", dims: [1, 3, 4, 4] };
    const sets = await collect(openInputSets([path.join(dir, "imgs")], [spec], { option: "loadInputs" }));
    expect(sets).toHaveLength(2);
    expect(vals(sets[0]![0]!).every((v) => v === 0)).toBe(true); // a.png, black
    const j = vals(sets[1]![0]!);
    expect(sets[1]![0]!.dims).toEqual([1, 3, 4, 4]);
    for (const [c, v] of [200, 100, 50].entries()) {
      for (const x of j.slice(c * 16, c * 16 + 16)) expect(Math.abs(x - v / 255)).toBeLessThan(6 / 255); // lossy: near the encoded colour
    }
  });

  it("the CLI's spec strings parse into the typed option; bad ones are refused naming the flag", () => {
    expect(userError(() => parseImagePreprocess(["size=abc"])).message).toMatch(/--image-preprocess 'size=abc': size=abc: expected WIDTHxHEIGHT/);
    expect(userError(() => parseImagePreprocess(["zoom=2"])).message).toMatch(/unknown key 'zoom'/);
    expect(parseImagePreprocess([])).toBeUndefined();
    const o = parseImagePreprocess(["scale=1/255,size=640x480", "in:put:resize=crop", "mean=[1,2,3]", "in:put:std=2"]);
    expect(o).toEqual({ scale: 1 / 255, size: { width: 640, height: 480 }, mean: [1, 2, 3], perInput: { "in:put": { resize: "crop", std: [2] } } });
    const s = resolveImagePreprocess(o);
    expect(s.perInput.get("in:put")).toEqual({ ...s.global, resize: "crop", std: [2] });
    expect(s.global).toEqual({ size: [640, 480], resize: "stretch", interp: "bilinear", layout: "auto", order: "rgb", scale: 1 / 255, mean: [1, 2, 3], std: [1], pad: 0 });
  });

  it("the typed option is checked, naming it", async () => {
    expect(userError(() => resolveImagePreprocess({ std: [1, 0, 1] })).message).toBe("imagePreprocess: std has a zero; give non-zero values");
    expect(userError(() => resolveImagePreprocess({ size: { width: 0, height: 2 } })).message).toBe("imagePreprocess: size 0x2: expected positive integers {width, height}");
    const e = userError(() => resolveImagePreprocess({ perInput: { g: { resize: "zoom" as "pad" } } }));
    expect(e.message).toBe('imagePreprocess.perInput.g: resize "zoom": expected one of stretch, pad, crop');
    expect(e.option).toBe("imagePreprocess");
    const f = png("3ch.png", 1, 1, [[1, 2, 3, 255]]);
    const gray: InputSpec = { name: "g", dtype: "float32", dims: [1, 1, 1, 1] };
    const m = await userErrorAsync(load([f], [gray], { option: "loadInputs", imagePreprocess: { mean: [1, 2] } }));
    expect(m.message).toBe(`loadInputs ${f}: imagePreprocess mean has 2 values but input 'g' has 1 channel; give 1 value or one`);
    expect(m.option).toBe("loadInputs");
  });

  it("rejects non-images", async () => {
    const fake = write("fake.png", "not an image");
    expect((await userErrorAsync(load([fake], [img], { option: "loadInputs" }))).message).toMatch(/fake\.png: not a PNG or JPEG file/);
  });
});

describe("--data-loader-script", () => {
  const specs: InputSpec[] = [
    { name: "x", dtype: "float32", dims: [2] },
    { name: "n", dtype: "int64", dims: ["B"] },
  ];
  it("loads every feed of an async generator (load export or default), element-wise", async () => {
    const f = write(
      "loader.mjs",
      `export default async function* () { for (let k = 0; k < 3; k++) yield { x: new Float32Array([k, k + 0.5]), n: { data: new BigInt64Array([BigInt(k)]), dims: [1] } }; }`,
    );
    const sets = await collect(openLoaderScript(f, specs));
    expect(sets).toHaveLength(3);
    expect(sets.map((s) => vals(s[0]!))).toEqual([[0, 0.5], [1, 1.5], [2, 2.5]]);
    expect(sets.map((s) => vals(s[1]!))).toEqual([[0], [1], [2]]);
    const g = write("loader2.mjs", `export const load = [{ x: new Float64Array([0.1, 0.2]), n: { data: new Int32Array([4, 5]), dims: [2] } }];`);
    const [[x, n]] = (await collect(openLoaderScript(g, specs))) as HostTensor[][];
    expect(Array.from(x!.data as Float32Array)).toEqual([Math.fround(0.1), Math.fround(0.2)]);
    expect(n).toEqual({ name: "n", dtype: "int64", dims: [2], data: BigInt64Array.from([4n, 5n]) });
  });
  it("names the script and the iteration in errors", async () => {
    const f = write("bad.mjs", `export default [{ x: new Float32Array(2), n: { data: new BigInt64Array(1), dims: [1] } }, { x: new Float32Array(3), n: { data: new BigInt64Array(1), dims: [1] } }];`);
    expect((await userErrorAsync(collect(openLoaderScript(f, specs)))).message).toMatch(/dataLoaderScript .*bad\.mjs: iteration 1: input 'x': got 3 elements, shape \[2\] needs 2/);
    const g = write("bad2.mjs", `export default [{ y: new Float32Array(2) }];`);
    expect((await userErrorAsync(collect(openLoaderScript(g, specs)))).message).toMatch(/iteration 0: unknown input 'y'; model inputs: x, n/);
  });
});
