/**
 * Polygraphy / trtexec interop (docs/interop.md): RunResults JSON written here by an
 * independent encoder (the .npy header built by hand, base64 as Polygraphy's serde does) is
 * read exactly; `run --save-outputs x.json` round-trips through `compare x.json dump.arrow`;
 * a planted fp16 overflow is named by layer; .npy folders with TensorRT-sanitized names map
 * back to the model's tensors; malformed files are one-line user errors.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GraphBuilder } from "./support/graph-builder.js";
import { BIN, cli, expectUserError, ModelFiles, ROOT, userError, userErrorAsync } from "./helpers.js";
import { readRunResults } from "../src/io/polygraphy-results.js";
import { compareTensorFiles } from "../src/workflows/compare-files.js";
import { parseLayerInfo } from "../src/io/trt-layer-info.js";
import { decodePolygraphyInputs } from "../src/io/polygraphy-json.js";
import { readSummaryTensors, readTensorSummary } from "../src/io/trtexec-debug-tensors.js";
import { defaultCompareOptions } from "../src/compare/tolerance.js";
import { zipSync } from "fflate";

const DEFAULT_COMPARE = defaultCompareOptions();

/** An independent .npy v1.0 writer: header dict padded to a multiple of 64, then little-endian data. */
function npy(descr: string, shape: number[], data: ArrayBufferView): Buffer {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  let header = dict;
  while ((10 + header.length + 1) % 64 !== 0) header += " ";
  header += "\n";
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, "latin1"), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}
const nd = (b: Buffer) => ({ array: b.toString("base64"), polygraphy_class: "ndarray" });
const lazy = (b: Buffer) => ({ values: nd(b), polygraphy_class: "LazyArray" });
const iter = (runner: string, outputs: Record<string, unknown>) => ({ outputs, runtime: 0.001, runner_name: runner, polygraphy_class: "IterationResult" });
const runResults = (lst: [string, unknown[]][]) => JSON.stringify({ lst, polygraphy_class: "RunResults" });

const models = new ModelFiles();
let dir = "";
let model = "";

beforeAll(() => {
  models.open("trtdbg-interop-");
  dir = models.dir;
  // x -> Mul(x, 1000) "scale" -> Mul(h, h) "square" (overflows fp16 for |x| > 0.256) -> Relu "act" -> y
  const b = new GraphBuilder("interop");
  b.input("x", "float32", [1, 8]);
  b.initializer("w", "float32", [1], [1000]);
  b.node("Mul", ["x", "w"], { name: "scale", outputs: ["blk/h"] });
  b.node("Mul", ["blk/h", "blk/h"], { name: "square", outputs: ["blk/sq"] });
  b.node("Relu", ["blk/sq"], { name: "act", outputs: ["y"] });
  b.output("y", "float32", [1, 8]);
  model = models.save("m", b.model({ opset: 17 }));
});
afterAll(() => models.close());

describe("Polygraphy RunResults reader", () => {
  it("decodes float32/float16/int64/bool exactly, every runner and iteration, LazyArray and legacy wrappers", async () => {
    const f32 = new Float32Array([1.5, -2.25, 3e-8, 65504]);
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x7c00, 0x0001]); // 1, -2, +inf, smallest subnormal
    const i64 = new BigInt64Array([-(2n ** 62n), 7n]);
    const bool = new Uint8Array([1, 0, 1]);
    const file = path.join(dir, "types.json");
    fs.writeFileSync(
      file,
      runResults([
        ["onnxrt-runner-N0", [iter("onnxrt-runner-N0", { a: lazy(npy("<f4", [2, 2], f32)), b: lazy(npy("<f2", [4], f16)) }), iter("onnxrt-runner-N0", { a: lazy(npy("<f4", [4], f32)) })]],
        // legacy: ndarray directly under the name, and the old class marker key
        ["trt-runner-N0", [{ outputs: { c: nd(npy("<i8", [2], i64)), q: lazy(npy("|i1", [3], new Int8Array([-128, 0, 127]))), d: { values: { array: npy("|b1", [3], bool).toString("base64"), __polygraphy_encoded_ndarray: "polygraphy_serialized_json_type" }, __polygraphy_encoded_LazyArray: "polygraphy_serialized_json_type" } }, runtime: 0, runner_name: "trt-runner-N0" }]],
      ]),
    );
    const names: string[] = [];
    const got = [];
    for await (const t of readRunResults(file, () => true, names)) got.push(t);
    expect(names).toEqual(["onnxrt-runner-N0", "trt-runner-N0"]);
    expect(got.map((t) => `${t.runnerIndex}/${t.iteration}/${t.name}:${t.array.dtype}[${t.array.dims}]`)).toEqual(["0/0/a:float32[2,2]", "0/0/b:float16[4]", "0/1/a:float32[4]", "1/0/c:int64[2]", "1/0/q:int8[3]", "1/0/d:bool[3]"]);
    expect([...(got[0]!.array.data as Float32Array)]).toEqual([...f32]);
    expect([...(got[1]!.array.data as Uint16Array)]).toEqual([...f16]);
    expect([...(got[3]!.array.data as BigInt64Array)]).toEqual([...i64]);
    expect([...(got[4]!.array.data as Int8Array)]).toEqual([-128, 0, 127]);
    expect([...(got[5]!.array.data as Uint8Array)]).toEqual([1, 0, 1]);
  });

  it("rejects garbage, truncated and non-RunResults files with one line", async () => {
    const bad = path.join(dir, "bad.json");
    fs.writeFileSync(bad, '{"lst": [["r", [{"outputs": {"a": ');
    expect((await userErrorAsync(compareTensorFiles(bad, bad, DEFAULT_COMPARE))).message).toMatch(/bad\.json: not valid JSON|truncated/);
    fs.writeFileSync(bad, '{"runs": [1, 2, 3]}');
    expect((await userErrorAsync(compareTensorFiles(bad, bad, DEFAULT_COMPARE))).message).toContain("not a Polygraphy RunResults file");
    fs.writeFileSync(bad, runResults([["r", [iter("r", { a: { values: { array: "!!!notbase64", polygraphy_class: "ndarray" }, polygraphy_class: "LazyArray" } })]], ["s", []]]));
    const e = await userErrorAsync(compareTensorFiles(bad, bad, DEFAULT_COMPARE));
    expect(e.message).toContain("runner 'r', iteration 0, tensor 'a'");
  });
});

/**
 * An independent torch.save writer for one tensor: the pickle bytes torch's protocol-2 pickler
 * emits for `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`, written
 * opcode by opcode, in a stored zip with torch's member names.
 */
function torchSave(storage: string, key: string, numel: number, offset: number, size: number[], stride: number[], bytes: Uint8Array): Buffer {
  const u = (s: string) => { const b = Buffer.from(s); const n = Buffer.alloc(4); n.writeUInt32LE(b.length); return Buffer.concat([Buffer.from("X"), n, b]); };
  const int = (v: number) => Buffer.from([0x4b, v]); // BININT1
  const tup = (vs: number[]) => Buffer.concat([Buffer.from([0x28]), ...vs.map(int), Buffer.from([0x74])]); // MARK ... TUPLE
  let m = 0;
  const put = () => Buffer.from([0x71, m++]); // BINPUT
  const pkl = Buffer.concat([
    Buffer.from([0x80, 2]), Buffer.from("ctorch._utils\n_rebuild_tensor_v2\n"), put(), Buffer.from([0x28]),
    Buffer.from([0x28]), u("storage"), put(), Buffer.from(`ctorch\n${storage}\n`), put(), u(key), put(), u("cpu"), put(), int(numel), Buffer.from([0x74]), put(), Buffer.from([0x51]),
    int(offset), tup(size), put(), tup(stride), put(), Buffer.from([0x89]),
    Buffer.from("ccollections\nOrderedDict\n"), put(), Buffer.from([0x29, 0x52]), put(), Buffer.from([0x74]), put(), Buffer.from([0x52]), put(), Buffer.from([0x2e]),
  ]);
  return Buffer.from(zipSync({ "archive/data.pkl": [pkl, { level: 0 }], "archive/byteorder": [Buffer.from("little"), { level: 0 }], [`archive/data/${key}`]: [bytes, { level: 0 }], "archive/version": [Buffer.from("3\n"), { level: 0 }] }));
}
const torchT = (b: Buffer) => ({ values: { tensor: b.toString("base64"), polygraphy_class: "Tensor" }, polygraphy_class: "LazyArray" });

describe("bfloat16 in RunResults (torch tensors, as Polygraphy writes them)", () => {
  it("decodes torch.save bfloat16 tensors exactly to float32 (contiguous, transposed view with offset), and float16 torch tensors as bits", async () => {
    // 1.5, -2, 3.140625, +inf, -inf, smallest subnormal 2^-133, then 0.5 (stored past the view)
    const bf = new Uint16Array([0x3fc0, 0xc000, 0x4049, 0x7f80, 0xff80, 0x0001, 0x3f00]);
    const bytes = new Uint8Array(bf.buffer);
    const half = new Uint16Array([0x3c00, 0x7bff]);
    const file = path.join(dir, "bf16.json");
    fs.writeFileSync(file, runResults([["trt-runner-N0", [iter("trt-runner-N0", {
      c: torchT(torchSave("BFloat16Storage", "0", 7, 0, [2, 3], [3, 1], bytes)),
      t: torchT(torchSave("BFloat16Storage", "1", 7, 1, [3, 2], [1, 3], bytes)),
      h: torchT(torchSave("HalfStorage", "0", 2, 0, [2], [1], new Uint8Array(half.buffer))),
    })]]]));
    const got = new Map<string, { dtype: string; dims: number[]; data: ArrayLike<number> }>();
    for await (const t of readRunResults(file)) got.set(t.name, t.array);
    expect(got.get("c")!.dtype).toBe("float32");
    expect(got.get("c")!.dims).toEqual([2, 3]);
    expect(Array.from(got.get("c")!.data)).toEqual([1.5, -2, 3.140625, Infinity, -Infinity, 2 ** -133]);
    // offset 1, stride [1, 3]: element [i][j] = storage[1 + i + 3j]
    expect(got.get("t")!.dims).toEqual([3, 2]);
    expect(Array.from(got.get("t")!.data)).toEqual([-2, -Infinity, 3.140625, 2 ** -133, Infinity, 0.5]);
    expect(got.get("h")!.dtype).toBe("float16");
    expect(Array.from(got.get("h")!.data)).toEqual([0x3c00, 0x7bff]);
  });

  it("a torch tensor that is not a plain storage tensor, or not base64, is one clear line", async () => {
    const bad = path.join(dir, "bf16-bad.json");
    fs.writeFileSync(bad, runResults([["r", [iter("r", { q: torchT(torchSave("QInt8Storage", "0", 1, 0, [1], [1], new Uint8Array(1))) })]]]));
    const drain = async () => { for await (const _ of readRunResults(bad)) void _; };
    expect((await userErrorAsync(drain())).message).toMatch(/tensor 'q': torch storage type torch\.QInt8Storage is not read .*convert the tensor to float32/);
    fs.writeFileSync(bad, runResults([["r", [iter("r", { q: { values: { tensor: "%%%", polygraphy_class: "Tensor" }, polygraphy_class: "LazyArray" } })]]]));
    expect((await userErrorAsync(drain())).message).toMatch(/"tensor" is not base64/);
  });
});

describe("round trip and comparison", () => {
  let arrowDir = "";
  let json = "";
  beforeAll(async () => {
    arrowDir = path.join(dir, "dumps");
    json = path.join(dir, "x.json");
    const a = await cli("run", model, "--mark-all", "--seed", "3", "--save-outputs", arrowDir, "--quiet");
    expect(a.code, a.stderr).toBe(0);
    const b = await cli("run", model, "--mark-all", "--seed", "3", "--fp32", "--fp16", "--save-outputs", json, "--quiet");
    expect(b.code, b.stderr).toBe(0);
  });

  it("run --save-outputs x.json writes RunResults (runner trt-debug-<precision>) that compare with the Arrow dump at zero difference", async () => {
    const names: string[] = [];
    const tensors: string[] = [];
    for await (const t of readRunResults(json, (i) => i === 0, names)) tensors.push(t.name);
    expect(names).toEqual(["trt-debug-fp32", "trt-debug-fp16"]);
    expect(tensors).toEqual(["blk/h", "blk/sq", "y"]);
    const s = await compareTensorFiles(json, path.join(arrowDir, "fp32.arrow"), DEFAULT_COMPARE, { model });
    expect(s.layers.map((l) => [l.layer, l.tensor, l.metrics.max_abs])).toEqual([["scale", "blk/h", 0], ["square", "blk/sq", 0], ["act", "y", 0]]);
    expect(s.verdict).toBe("passed");
    const r = await cli("compare", json, path.join(arrowDir, "fp32.arrow"));
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it("compare x.json alone: first runner vs last (fp32 vs fp16) names the overflowing layer; --runner picks one", async () => {
    const r = await cli("compare", json, "--model", model, "--show", "all");
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/first failing layer:? .*square/i);
    const same = await cli("compare", json, "--runner", "trt-debug-fp32");
    expect(same.code, same.stdout).toBe(0);
    expectUserError(await cli("compare", json, "--runner", "nope"), "--runner nope", "0:trt-debug-fp32, 1:trt-debug-fp16");
  });

  it("a planted fp16 overflow in a candidate file (float16 +inf) is named by layer", async () => {
    const cand = path.join(dir, "cand.json");
    const ref = await (async () => {
      const m = new Map<string, { dims: number[]; data: Float32Array }>();
      for await (const t of readRunResults(json, (i) => i === 0)) m.set(t.name, { dims: t.array.dims, data: t.array.data as Float32Array });
      return m;
    })();
    const toF16 = (x: Float32Array, inf: boolean) => new Uint16Array([...x].map((v) => (inf && Math.abs(v) > 65504 ? 0x7c00 : f16bits(v))));
    fs.writeFileSync(
      cand,
      runResults([["trt-runner-N0", [iter("trt-runner-N0", {
        "blk/h": lazy(npy("<f2", ref.get("blk/h")!.dims, toF16(ref.get("blk/h")!.data, false))),
        "blk/sq": lazy(npy("<f2", ref.get("blk/sq")!.dims, toF16(ref.get("blk/sq")!.data, true))),
        y: lazy(npy("<f2", ref.get("y")!.dims, toF16(ref.get("y")!.data, true))),
      })]]]),
    );
    const s = await compareTensorFiles(path.join(arrowDir, "fp32.arrow"), cand, DEFAULT_COMPARE, { model });
    expect(s.first_failing_layer).toBe("square");
    expect(s.verdict).toBe("failed");
    expect(s.layers.find((l) => l.layer === "square")!.evidence.join(" ")).toMatch(/overflow/i);
  });

  it("a folder of .npy files named as trtexec writes them (sanitized names) maps back to the model's tensors", async () => {
    const npyDir = path.join(dir, "debug-tensors");
    fs.mkdirSync(npyDir);
    for await (const t of readRunResults(json, (i) => i === 0)) {
      fs.writeFileSync(path.join(npyDir, `${t.name.replace(/\//g, "_")}.npy`), npy("<f4", t.array.dims, t.array.data as Float32Array));
    }
    const s = await compareTensorFiles(path.join(arrowDir, "fp32.arrow"), npyDir, DEFAULT_COMPARE, { model });
    expect(s.layers.map((l) => [l.layer, l.tensor])).toEqual([["scale", "blk/h"], ["square", "blk/sq"], ["act", "y"]]);
    expect(s.verdict).toBe("passed");
    // Without the model, sanitized names do not match the dump's: listed, not silently dropped.
    const bare = (await compareTensorFiles(path.join(arrowDir, "fp32.arrow"), npyDir, DEFAULT_COMPARE)) as Awaited<ReturnType<typeof compareTensorFiles>> & { unmatched_tensors: string[] };
    expect(bare.layers.map((l) => l.tensor)).toEqual(["y"]);
    expect([...bare.unmatched_tensors].sort()).toEqual(["blk/h", "blk/sq", "blk_h", "blk_sq"]);
  });

  it("a --saveAllDebugTensors folder with tensor_summary.json: names and shapes from the summary (0000_ prefixes, raw and _to_float files), checked against the files", async () => {
    // As debugTensorWriter.cpp writes them: .npy header padded to 16 with a trailing ", " in the shape.
    const trtNpy = (descr: string, shape: number[], data: ArrayBufferView) => {
      let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.map((d) => `${d}, `).join("")}), }`;
      h += " ".repeat(16 - ((10 + h.length + 1) % 16)) + "\n";
      const pre = Buffer.alloc(10);
      Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
      pre.writeUInt16LE(h.length, 8);
      return Buffer.concat([pre, Buffer.from(h, "latin1"), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
    };
    const entry = (name: string, shape: number[], type: string, files: Record<string, string>) =>
      `  {\n    "name": "${name}",\n    "shape": [${shape.join(", ")}],\n    "type": "${type}",\n    "statistics": {\n        "min": "-inf",\n        "max": "inf",\n        "avg": "nan",\n        "elements": "1, 2"\n    },\n    "files": {\n${Object.entries(files).map(([k, v]) => `      "${k}": "${v}"`).join(",\n")}\n    }\n  }`;
    const summary = (entries: string[]) =>
      `{\n  "metadata": {\n    "title": "Tensor Summary Report",\n    "time_generated": "2026-12-06T06:00:00+0000",\n    "engine_name": "",\n    "command_line": "trtexec --onnx=m.onnx --saveAllDebugTensors=summary,numpy,raw"\n  },\n  "tensors": [\n${entries.join(",\n")}\n  ]\n}\n`;
    const ref = new Map<string, { dims: number[]; data: Float32Array }>();
    for await (const t of readRunResults(json, (i) => i === 0)) ref.set(t.name, { dims: t.array.dims, data: t.array.data as Float32Array });
    const d = path.join(dir, "trtexec-debug");
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, "0000_blk_h.npy"), trtNpy("<f4", ref.get("blk/h")!.dims, ref.get("blk/h")!.data));
    fs.writeFileSync(path.join(d, "0001_blk_sq.raw"), Buffer.from(ref.get("blk/sq")!.data.buffer));
    fs.writeFileSync(path.join(d, "0002_y.npy"), trtNpy("<f4", ref.get("y")!.dims, ref.get("y")!.data));
    fs.writeFileSync(path.join(d, "tensor_summary.json"), summary([
      entry("blk/h", ref.get("blk/h")!.dims, "FLOAT", { numpy: "0000_blk_h.npy", raw: "0000_blk_h.raw" }),
      entry("blk/sq", ref.get("blk/sq")!.dims, "FLOAT", { raw: "0001_blk_sq.raw" }),
      entry("y", ref.get("y")!.dims, "FLOAT", { numpy: "0002_y.npy" }),
    ]));
    // Without --model: the summary's names are the dump's (no sanitized names, no prefixes).
    const s = (await compareTensorFiles(path.join(arrowDir, "fp32.arrow"), d, DEFAULT_COMPARE)) as Awaited<ReturnType<typeof compareTensorFiles>> & { unmatched_tensors: string[] };
    expect(s.layers.map((l) => l.tensor)).toEqual(["blk/h", "blk/sq", "y"]);
    expect(s.unmatched_tensors).toEqual([]);
    expect(s.verdict).toBe("passed");

    // BF16: raw bytes (bits, exact to float32) and trtexec's float32 "_to_float" numpy file.
    const b = path.join(dir, "trtexec-bf16");
    fs.mkdirSync(b);
    fs.writeFileSync(path.join(b, "0000_a.raw"), Buffer.from(new Uint16Array([0x3fc0, 0xff80, 0x0001]).buffer));
    fs.writeFileSync(path.join(b, "0001_c_to_float.npy"), trtNpy("<f4", [2], new Float32Array([0.5, -3])));
    fs.writeFileSync(path.join(b, "0002_h.npy"), trtNpy("<f2", [1], new Uint16Array([0x7c00])));
    fs.writeFileSync(path.join(b, "tensor_summary.json"), summary([
      entry("a", [1, 3], "BF16", { raw: "0000_a.raw" }),
      entry("c", [2], "BF16", { numpy: "0001_c_to_float.npy" }),
      entry("e", [1], "E8M0", {}),
      entry("h", [1], "HALF", { numpy: "0002_h.npy" }),
    ]));
    const got = [...readSummaryTensors(b, readTensorSummary(b)!)];
    expect(got.map((t) => [t.name, t.dtype, t.dims, Array.from(t.data as ArrayLike<number>)])).toEqual([
      ["a", "float32", [1, 3], [1.5, -Infinity, 2 ** -133]],
      ["c", "float32", [2], [0.5, -3]],
      ["h", "float16", [1], [0x7c00]],
    ]);

    // A file that disagrees with the summary, a missing file, or a broken summary: one line.
    fs.writeFileSync(path.join(b, "tensor_summary.json"), summary([entry("c", [3], "BF16", { numpy: "0001_c_to_float.npy" })]));
    expect(userError(() => [...readSummaryTensors(b, readTensorSummary(b)!)]).message).toMatch(/tensor 'c': its numpy file 0001_c_to_float\.npy holds float32 \(2\), the summary says BF16 \(3\)/);
    fs.writeFileSync(path.join(b, "tensor_summary.json"), summary([entry("a", [1, 3], "BF16", { raw: "missing.raw" })]));
    expect(userError(() => [...readSummaryTensors(b, readTensorSummary(b)!)]).message).toMatch(/tensor 'a': its file .*missing\.raw cannot be read \(ENOENT\)/);
    fs.writeFileSync(path.join(b, "tensor_summary.json"), `{"tensors": [ {"name": "a\"b", ] }`);
    expect(userError(() => readTensorSummary(b)).message).toMatch(/tensor_summary\.json: not valid JSON/);
    fs.writeFileSync(path.join(b, "tensor_summary.json"), summary([entry("a", [1, 3], "FP7", {})]));
    expect(userError(() => readTensorSummary(b)).message).toMatch(/unknown type 'FP7'/);
  });

  it("layer-info JSON (10.x Bindings with Myelin Metadata, 11.x I/O Tensors with a `+` fused name) maps TensorRT tensor names to layers", async () => {
    const trtDir = path.join(dir, "trt-tensors");
    fs.mkdirSync(trtDir);
    const ref = new Map<string, { dims: number[]; data: Float32Array }>();
    for await (const t of readRunResults(json, (i) => i === 0)) ref.set(t.name, { dims: t.array.dims, data: t.array.data as Float32Array });
    fs.writeFileSync(path.join(trtDir, "__myl_MulMul_0_out.npy"), npy("<f4", ref.get("blk/sq")!.dims, ref.get("blk/sq")!.data));
    fs.writeFileSync(path.join(trtDir, "y.npy"), npy("<f4", ref.get("y")!.dims, ref.get("y")!.data));
    const reformat = { Name: "Reformatting CopyNode for Input Tensor 0 to act", LayerType: "Reformat", Inputs: [{ Name: "__myl_MulMul_0_out" }], Outputs: [{ Name: "Reformatted Input Tensor 0 to act" }] };
    const v10 = path.join(dir, "layers10.json");
    fs.writeFileSync(v10, JSON.stringify({ Layers: [{ Name: "__myl_MulMul_myl0_0", LayerType: "kgen", Inputs: [{ Name: "x", Dimensions: [1, 8] }], Outputs: [{ Name: "__myl_MulMul_0_out", Dimensions: [1, 8] }], Metadata: "[ONNX Layer: scale]\u001e[ONNX Layer: square]" }, reformat, { Name: "act", LayerType: "PointWiseV2", Inputs: [{ Name: "Reformatted Input Tensor 0 to act" }], Outputs: [{ Name: "y" }] }], Bindings: ["x", "y"] }));
    const v11 = path.join(dir, "layers11.json");
    fs.writeFileSync(v11, JSON.stringify({ Layers: [{ Name: "scale + square", LayerType: "PointWise", Inputs: [{ Name: "x" }], Outputs: [{ Name: "__myl_MulMul_0_out" }] }, reformat, { Name: "act", Inputs: [{ Name: "Reformatted Input Tensor 0 to act" }], Outputs: [{ Name: "y" }] }], "I/O Tensors": ["x", "y"] }));
    expect(parseLayerInfo(fs.readFileSync(v11, "utf8"), v11).ioTensors).toEqual(["x", "y"]);
    for (const info of [v10, v11]) {
      const s = (await compareTensorFiles(path.join(arrowDir, "fp32.arrow"), trtDir, DEFAULT_COMPARE, { model, layerInfo: info })) as Awaited<ReturnType<typeof compareTensorFiles>> & { unmapped_trt_layers: string[] };
      expect(s.layers.map((l) => [l.layer, l.tensor, l.metrics.max_abs])).toEqual([["square", "blk/sq", 0], ["act", "y", 0]]);
      expect(s.unmapped_trt_layers).toEqual(["Reformatting CopyNode for Input Tensor 0 to act"]);
      expect(s.notes.join(" ")).toContain("Reformatting CopyNode");
    }
    const names = path.join(dir, "names-only.json");
    fs.writeFileSync(names, JSON.stringify({ Layers: ["conv1", "relu1"], Bindings: ["x"] }));
    expectUserError(await cli("compare", path.join(arrowDir, "fp32.arrow"), trtDir, "--model", model, "--layer-info", names), "names-only.json", "--profilingVerbosity=detailed");
    expectUserError(await cli("compare", path.join(arrowDir, "fp32.arrow"), trtDir, "--layer-info", v10), "--layer-info", "needs --model");
  });

  it("--save-inputs x.json writes Polygraphy's --load-inputs list; --save-inputs DIR --format trtexec writes raw files and prints the --loadInputs flag", async () => {
    const inJson = path.join(dir, "in.json");
    const tdir = path.join(dir, "trt-in");
    const r = await cli("run", model, "--seed", "3", "--save-inputs", inJson, "--quiet");
    expect(r.code, r.stderr).toBe(0);
    const parsed = JSON.parse(fs.readFileSync(inJson, "utf8"));
    expect(Array.isArray(parsed) && parsed.length === 1 && Object.keys(parsed[0])).toEqual(["x"]);
    expect(parsed[0].x.polygraphy_class).toBe("ndarray");
    const bytes = Buffer.from(parsed[0].x.array, "base64");
    expect(bytes.subarray(0, 6).equals(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]))).toBe(true);
    expect(bytes.toString("latin1")).toContain("'descr': '<f4'");
    const x = decodePolygraphyInputs(fs.readFileSync(inJson, "utf8"), inJson)[0]!.get("x")!;
    const t = await cli("run", model, "--seed", "3", "--save-inputs", tdir, "--format", "trtexec", "--quiet");
    expect(t.code, t.stderr).toBe(0);
    const bin = path.join(tdir, "x.bin");
    expect(t.stdout).toContain(`trtexec: --loadInputs='x':${bin}`);
    expect(new Uint8Array(fs.readFileSync(bin))).toEqual(new Uint8Array((x.data as Float32Array).buffer));
    // The saved inputs load back and give the same outputs as the seed.
    const again = path.join(dir, "again.json");
    expect((await cli("run", model, "--mark-all", "--load-inputs", inJson, "--save-outputs", again, "--quiet")).code).toBe(0);
    const s = await compareTensorFiles(again, path.join(arrowDir, "fp32.arrow"), DEFAULT_COMPARE, { model });
    expect(s.layers.every((l) => l.metrics.max_abs === 0)).toBe(true);
    expectUserError(await cli("run", model, "--format", "trtexec"), "--format trtexec", "--save-inputs");
  });

  it("Polygraphy spellings: --trt-outputs/--onnx-outputs mark all and --save-results run as --mark-all --save-outputs; --load-outputs names our equivalent", async () => {
    const p = path.join(dir, "poly.json");
    const r = await cli("run", model, "--seed", "3", "--onnx-outputs", "mark", "all", "--save-results", p, "--quiet");
    expect(r.code, r.stderr).toBe(0);
    const s = await compareTensorFiles(p, path.join(arrowDir, "fp32.arrow"), DEFAULT_COMPARE, { model });
    expect(s.layers.map((l) => [l.tensor, l.metrics.max_abs])).toEqual([["blk/h", 0], ["blk/sq", 0], ["y", 0]]);
    const one = path.join(dir, "one.json");
    expect((await cli("run", model, "--seed", "3", "--trt-outputs", "blk/sq", "--save-results", one, "--quiet")).code).toBe(0);
    const names: string[] = [];
    for await (const t of readRunResults(one)) names.push(t.name);
    expect(names).toEqual(["blk/sq", "y"]);
    expectUserError(await cli("compare", model, "--fp16", "--load-outputs", p), "--load-outputs", "trt-debug compare REF");
    expectUserError(await cli("run", model, "--trt-outputs", "mark", "some"), "--trt-outputs mark some", "--mark-all");
  });

  it("trtexec --exportOutput JSON (C++ inf/nan spellings) is read; a planted overflow in it is named by layer", async () => {
    const ref = new Map<string, { dims: number[]; data: Float32Array }>();
    for await (const t of readRunResults(json, (i) => i === 0)) ref.set(t.name, { dims: t.array.dims, data: t.array.data as Float32Array });
    const y = ref.get("y")!;
    const text = (vals: string[]) => `[\n  { "name" : "y"\n  , "dimensions" : "${y.dims.join("x")}"\n  , "values" : [ ${vals.join(", ")} ]\n  }\n]\n`;
    const same = path.join(dir, "trtexec-same.json");
    fs.writeFileSync(same, text([...y.data].map((v) => String(v))));
    const s = await compareTensorFiles(path.join(arrowDir, "fp32.arrow"), same, DEFAULT_COMPARE, { model });
    expect(s.layers.map((l) => [l.layer, l.tensor, l.metrics.max_abs])).toEqual([["act", "y", 0]]);
    const planted = path.join(dir, "trtexec-inf.json");
    fs.writeFileSync(planted, text([...y.data].map((v) => (v > 65504 ? "inf" : String(v)))));
    const p = await compareTensorFiles(path.join(arrowDir, "fp32.arrow"), planted, DEFAULT_COMPARE, { model });
    expect(p.first_failing_layer).toBe("act");
    expect(p.layers[0]!.evidence.join(" ")).toMatch(/overflow/i);
    fs.writeFileSync(planted, '[ { "name" : "y", "dimensions" : "1x3", "values" : [ 1, 2 ] } ]');
    expectUserError(await cli("compare", path.join(arrowDir, "fp32.arrow"), planted), "trtexec-inf.json", "2 values for dimensions 1x3");
  });

  it("several iterations: every one compared (iteration k with k), the failing set named", async () => {
    const sets = path.join(dir, "sets.json");
    // not constant: a constant output would be a degenerate reference (no verdict, no layer named)
    const small = Float32Array.from({ length: 8 }, (_, i) => 0.01 + 0.001 * i), big = Float32Array.from({ length: 8 }, (_, i) => 0.9 + 0.01 * i);
    fs.writeFileSync(sets, JSON.stringify([{ x: nd(npy("<f4", [1, 8], small)) }, { x: nd(npy("<f4", [1, 8], big)) }]));
    const out = path.join(dir, "sets-out.json");
    expect((await cli("run", model, "--mark-all", "--fp32", "--fp16", "--load-inputs", sets, "--save-outputs", out, "--quiet")).code).toBe(0);
    const s = (await compareTensorFiles(out, out, DEFAULT_COMPARE, { model })) as Awaited<ReturnType<typeof compareTensorFiles>> & { first_failing_iteration: number | null };
    expect(s.layers.map((l) => `${(l as { iteration?: number }).iteration}:${l.layer}:${l.passed}`)).toEqual(["0:scale:true", "0:square:true", "0:act:true", "1:scale:true", "1:square:false", "1:act:false"]);
    expect(s.first_failing_layer).toBe("square");
    expect(s.first_failing_iteration).toBe(1);
  });

  describe("--runner-cmd", () => {
    const tsx = path.join(ROOT, "node_modules", ".bin", "tsx");
    const runner = `${tsx} ${path.join(ROOT, "scripts", "ort-runner.ts")} {model} {inputs} {outputs}`;
    /** The error line, without the runner's streamed lines. */
    const errorOnly = (r: { code: number; stdout: string; stderr: string }) => ({ ...r, stderr: r.stderr.split("\n").filter((l) => !l.startsWith("runner: ")).join("\n") });

    it("the onnxruntime-node runner gives the per-layer result of the built-in FP32 run (every layer, zero difference)", async () => {
      const j = path.join(dir, "ext.json");
      const r = await cli("compare", model, "--seed", "3", "--runner-cmd", runner, "--json", j, "--show", "all");
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stderr).toContain("runner: ran set with 3 outputs");
      const s = JSON.parse(fs.readFileSync(j, "utf8"));
      const builtIn = await compareTensorFiles(json, path.join(arrowDir, "fp32.arrow"), DEFAULT_COMPARE, { model });
      expect(s.layers.map((l: { layer: string; tensor: string; metrics: { max_abs: number } }) => [l.layer, l.tensor, l.metrics.max_abs])).toEqual(builtIn.layers.map((l) => [l.layer, l.tensor, 0]));
      expect(s.verdict).toBe("passed");
    });

    it("the documented TensorRT 11.x per-layer trtexec command shape (mkdir/cd {outputs}, --saveAllDebugTensors=summary,numpy) is read through tensor_summary.json", async () => {
      // A stand-in for trtexec: reads --loadInputs='x':FILE, computes the model in float32 and
      // writes what debugTensorWriter.cpp writes in its working folder (NNNN_ files + summary).
      const fake = path.join(dir, "fake-trtexec.mjs");
      fs.writeFileSync(fake, `
import * as fs from "node:fs";
const spec = process.argv.find((a) => a.startsWith("--loadInputs="));
if (!process.argv.includes("--saveAllDebugTensors=summary,numpy")) { console.error("Unknown option"); process.exit(1); }
const file = spec.slice("--loadInputs=".length).replace(/^'x':/, "");
const x = new Float32Array(new Uint8Array(fs.readFileSync(file)).buffer);
const h = x.map((v) => Math.fround(v * 1000)), sq = h.map((v) => Math.fround(v * v)), y = sq.map((v) => Math.max(v, 0));
const npy = (data) => { let hd = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 8, ), }"; hd += " ".repeat(16 - ((10 + hd.length + 1) % 16)) + "\\n";
  const pre = Buffer.alloc(10); Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre); pre.writeUInt16LE(hd.length, 8);
  return Buffer.concat([pre, Buffer.from(hd, "latin1"), Buffer.from(data.buffer)]); };
const ts = [["blk/h", h], ["blk/sq", sq], ["y", y]].map(([n, d], i) => { const f = String(i).padStart(4, "0") + "_" + n.replace(/[^A-Za-z0-9_.-]/g, "_") + ".npy"; fs.writeFileSync(f, npy(d));
  return '  {\\n    "name": "' + n + '",\\n    "shape": [1, 8],\\n    "type": "FLOAT",\\n    "statistics": {\\n        "min": 0,\\n        "max": "inf",\\n        "avg": 1,\\n        "elements": "0"\\n    },\\n    "files": {\\n      "numpy": "' + f + '"\\n    }\\n  }'; });
fs.writeFileSync("tensor_summary.json", '{\\n  "metadata": {\\n    "title": "Tensor Summary Report"\\n  },\\n  "tensors": [\\n' + ts.join(",\\n") + '\\n  ]\\n}\\n');
`);
      const cmd = `mkdir {outputs} && cd {outputs} && node ${fake} --onnx={model} {trtexec_inputs} --markUnfusedTensorsAsDebugTensors --saveAllDebugTensors=summary,numpy`;
      const j = path.join(dir, "ext-trtexec.json");
      const r = await cli("compare", model, "--seed", "3", "--runner-cmd", cmd, "--json", j, "--show", "all");
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const s = JSON.parse(fs.readFileSync(j, "utf8"));
      expect(s.layers.map((l: { layer: string; tensor: string; metrics: { max_abs: number } }) => [l.layer, l.tensor, l.metrics.max_abs])).toEqual([["scale", "blk/h", 0], ["square", "blk/sq", 0], ["act", "y", 0]]);
    });

    it("a runner that exits 1, hangs, or writes garbage is one line naming the command, its exit and its stderr", async () => {
      const fail = `node -e "process.stderr.write('CUDA failure 35\\n'); process.exit(1)" {outputs}`;
      const r1 = errorOnly(await cli("compare", model, "--runner-cmd", fail));
      expectUserError(r1, `--runner-cmd "${fail}"`, "exited with code 1", "CUDA failure 35");
      const hang = `node -e "setTimeout(() => {}, 60000)" {outputs}`;
      expectUserError(errorOnly(await cli("compare", model, "--runner-cmd", hang, "--runner-timeout", "1")), "timed out after 1 s");
      const garbage = `node -e "require('fs').writeFileSync(process.argv[1], 'garbage')" {outputs}`;
      expectUserError(errorOnly(await cli("compare", model, "--runner-cmd", garbage)), "its outputs cannot be read", "not valid JSON");
      expectUserError(errorOnly(await cli("compare", model, "--runner-cmd", "true")), "add {outputs}");
      expectUserError(errorOnly(await cli("compare", model, "--runner-cmd", "echo {engine} {outputs}")), "unknown placeholder {engine}");
      expectUserError(errorOnly(await cli("compare", model, "--runner-cmd", "true {outputs}")), "wrote nothing to {outputs}");
    }, 30000);

    it("bisect --runner-cmd: a runner that honours {plan} (trt-debug run --precision-plan, built dist) finds the plan the built-in search finds", async () => {
      // dist/ is built by the suite's setup (npm test) or by `npx tsc -p tsconfig.json`.
      const runnerCmd = `node ${BIN} run {model} --precision-plan {plan} --load-inputs {inputs} --save-outputs {outputs} --quiet`;
      const builtIn = path.join(dir, "plan-builtin.json"), ext = path.join(dir, "plan-runner.json");
      const a = await cli("bisect", model, "--fp16", "-o", builtIn, "--max-pinned", "1", "--no-checkpoint", "--quiet");
      expect(a.code, a.stdout + a.stderr).toBe(0);
      const b = await cli("bisect", model, "--fp16", "--runner-cmd", runnerCmd, "-o", ext, "--max-pinned", "1", "--no-checkpoint", "--quiet");
      expect(b.code, b.stdout + b.stderr).toBe(0);
      expect(b.stderr).toMatch(/runner: .*tensors captured/); // the candidates were run by the runner
      const layersOf = (f: string) => (JSON.parse(fs.readFileSync(f, "utf8")) as { layers: { pattern: string; precision: string }[] }).layers;
      expect(layersOf(ext)).toEqual(layersOf(builtIn));
      expect(layersOf(ext).map((l) => l.pattern)).toContain("square");
      expectUserError(await cli("bisect", model, "--fp16", "--runner-cmd", runnerCmd, "--check", "true"), "--runner-cmd", "--check");
    }, 60000);

    it("{trtexec_inputs} expands to --loadInputs= with raw files; a trtexec-style runner's --exportOutput JSON is read back", async () => {
      // A stand-in for trtexec: reads --loadInputs='x':FILE (raw float32), writes --exportOutput JSON of y.
      const fake = path.join(dir, "fake-trtexec.mjs");
      fs.writeFileSync(fake, [
        'import * as fs from "node:fs";',
        'const arg = (k) => process.argv.find((a) => a.startsWith(k))?.slice(k.length);',
        'const m = /^\'x\':(.+)$/.exec(arg("--loadInputs=") ?? "");',
        'if (!m || !arg("--onnx=")) { process.stderr.write("bad flags: " + process.argv.slice(2).join(" ") + "\\n"); process.exit(3); }',
        'const b = fs.readFileSync(m[1]); const x = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);',
        'const y = [...x].map((v) => { const h = Math.fround(v * 1000); return Math.max(0, Math.fround(h * h)); });',
        'fs.writeFileSync(arg("--exportOutput="), `[\\n  { "name" : "y"\\n  , "dimensions" : "1x8"\\n  , "values" : [ ${y.join(", ")} ]\\n  }\\n]\\n`);',
      ].join("\n"));
      const j = path.join(dir, "trtexec-ext.json");
      const r = await cli("compare", model, "--seed", "3", "--runner-cmd", `node ${fake} --onnx={model} {trtexec_inputs} --exportOutput={outputs}`, "--json", j);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const s = JSON.parse(fs.readFileSync(j, "utf8"));
      expect(s.layers.map((l: { layer: string; metrics: { max_abs: number } }) => [l.layer, l.metrics.max_abs])).toEqual([["act", 0]]);
    });

    it("--candidate-outputs FILE: trt-debug's FP32 run on the --load-inputs inputs vs the file", async () => {
      const inJson = path.join(dir, "cand-in.json");
      expect((await cli("run", model, "--seed", "3", "--save-inputs", inJson, "--quiet")).code).toBe(0);
      const r = await cli("compare", model, "--load-inputs", inJson, "--candidate-outputs", json, "--runner", "trt-debug-fp16");
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/first failing layer:? .*square/i);
      expectUserError(await cli("compare", model, "--candidate-outputs", json), "--load-inputs");
    });
  });
});

/** float32 -> IEEE half bits (round to nearest even), for the independent encoder. */
function f16bits(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  let mant = u & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = (exp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++;
  return sign | r;
}
