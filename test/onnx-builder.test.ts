import { fromBinary } from "@bufbuild/protobuf";
import ort from "onnxruntime-node";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AttributeProto_AttributeType as AT,
  ModelProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType,
} from "onnx-buf";
import {
  GraphBuilder,
  attr,
  makeAttribute,
  makeTensor,
  makeValueInfo,
  modelBytes,
  optionalType,
  saveModel,
  sequenceType,
  tensorType,
} from "./support/graph-builder.js";
import { ALL_DTYPES, dtypeByteLength, dtypeToOnnx, onnxToDType } from "../src/core/dtype.js";

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "trt-debug-builder-"));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function run(
  model: Uint8Array | string,
  feeds: Record<string, ort.Tensor>,
): Promise<Record<string, ort.Tensor>> {
  const s = typeof model === "string" ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

const f32 = (data: number[], dims: number[]): ort.Tensor => new ort.Tensor("float32", Float32Array.from(data), dims);

describe("dtype mapping", () => {
  it("round-trips every DType and maps the ONNX codes", () => {
    for (const d of ALL_DTYPES) expect(onnxToDType(dtypeToOnnx(d))).toBe(d);
    expect(ALL_DTYPES.length).toBe(22);
    expect(dtypeToOnnx("float32")).toBe(TensorProto_DataType.FLOAT);
    expect(dtypeToOnnx("float16")).toBe(TensorProto_DataType.FLOAT16);
    expect(dtypeToOnnx("bfloat16")).toBe(TensorProto_DataType.BFLOAT16);
    expect(dtypeToOnnx("int64")).toBe(TensorProto_DataType.INT64);
    expect(dtypeToOnnx("float8e4m3fn")).toBe(TensorProto_DataType.FLOAT8E4M3FN);
    expect(onnxToDType(TensorProto_DataType.BOOL)).toBe("bool");
    expect(onnxToDType(TensorProto_DataType.UNDEFINED)).toBeNull();
    expect(onnxToDType(TensorProto_DataType.FLOAT4E2M1)).toBeNull();
    expect(onnxToDType(999)).toBeNull();
    expect(dtypeByteLength("int4", 5)).toBe(3);
    expect(dtypeByteLength("float16", 5)).toBe(10);
    expect(dtypeByteLength("complex64", 2)).toBe(16);
  });
});

describe("makeTensor / makeAttribute / makeValueInfo", () => {
  it("stores numeric data little-endian in raw_data", () => {
    const t = makeTensor("w", "float32", [2], [1, -2]);
    expect(t.dims).toEqual([2n]);
    expect(t.dataType).toBe(TensorProto_DataType.FLOAT);
    expect(Array.from(new Float32Array(t.rawData.slice().buffer))).toEqual([1, -2]);
    const i = makeTensor("s", "int64", [3], [1, -1, 2n]);
    expect(Array.from(new BigInt64Array(i.rawData.slice().buffer))).toEqual([1n, -1n, 2n]);
    const h = makeTensor("h", "float16", [2], Uint16Array.from([0x3c00, 0xc000]));
    expect(Array.from(new Uint16Array(h.rawData.slice().buffer))).toEqual([0x3c00, 0xc000]);
    expect(Array.from(makeTensor("b", "bool", [3], [true, false, 1]).rawData)).toEqual([1, 0, 1]);
    expect(Array.from(makeTensor("q", "int4", [3], [-1, 7, -8]).rawData)).toEqual([0x7f, 0x08]);
    const s = makeTensor("str", "string", [2], ["a", "bé"]);
    expect(new TextDecoder().decode(s.stringData[1])).toBe("bé");
    expect(makeTensor("scalar", "float32", [], [3]).dims).toEqual([]);
    expect(Array.from(makeTensor("u8", "uint8", [2], Buffer.from([1, 2])).rawData)).toEqual([1, 2]);
  });

  it("copies the data and rejects wrong sizes, types and values", () => {
    const src = Float32Array.from([1, 2]);
    const t = makeTensor("w", "float32", [2], src);
    src[0] = 9;
    expect(new Float32Array(t.rawData.slice().buffer)[0]).toBe(1);
    expect(() => makeTensor("w", "float32", [3], [1, 2])).toThrow(/dims need 3/);
    expect(() => makeTensor("w", "float32", [2], Float64Array.from([1, 2]))).toThrow(/Float32Array/);
    expect(() => makeTensor("w", "float16", [1], [1.0])).toThrow(/bit patterns/);
    expect(() => makeTensor("w", "int8", [1], [200])).toThrow(/not an integer in/);
    expect(() => makeTensor("w", "int32", [1], [1.5])).toThrow(/not an integer/);
  });

  it("infers attribute types and honours explicit ones", () => {
    expect(makeAttribute("axis", 1).type).toBe(AT.INT);
    expect(makeAttribute("axis", 1).i).toBe(1n);
    expect(makeAttribute("alpha", 0.5).type).toBe(AT.FLOAT);
    expect(makeAttribute("alpha", attr.float(2)).type).toBe(AT.FLOAT);
    expect(makeAttribute("alpha", attr.float(2)).f).toBe(2);
    expect(makeAttribute("perm", [0, 2, 1]).type).toBe(AT.INTS);
    expect(makeAttribute("scales", [1, 1.5]).type).toBe(AT.FLOATS);
    expect(makeAttribute("scales", attr.floats([1, 2])).type).toBe(AT.FLOATS);
    expect(makeAttribute("mode", "nearest").type).toBe(AT.STRING);
    expect(makeAttribute("names", ["a", "b"]).type).toBe(AT.STRINGS);
    expect(makeAttribute("value", makeTensor("v", "float32", [], [1])).type).toBe(AT.TENSOR);
    expect(makeAttribute("body", new GraphBuilder("g").graph()).type).toBe(AT.GRAPH);
    expect(makeAttribute("type", tensorType("float32")).type).toBe(AT.TYPE_PROTO);
    expect(makeAttribute("flag", true).i).toBe(1n);
    expect(makeAttribute("to", TensorProto_DataType.FLOAT16).i).toBe(10n);
  });

  it("makes tensor, sequence, optional and untyped value infos", () => {
    const t = makeValueInfo("x", "float32", [1, "batch", null]);
    expect(t.type?.value.case).toBe("tensorType");
    const dims = t.type?.value.case === "tensorType" ? t.type.value.value.shape!.dim : [];
    expect(dims.map((d) => d.value.case)).toEqual(["dimValue", "dimParam", undefined]);
    expect(makeValueInfo("s", sequenceType(tensorType("float32"))).type?.value.case).toBe("sequenceType");
    expect(makeValueInfo("o", optionalType(tensorType("int64", []))).type?.value.case).toBe("optionalType");
    expect(makeValueInfo("u").type).toBeUndefined();
    const noShape = makeValueInfo("r", "float32");
    expect(noShape.type?.value.case === "tensorType" && noShape.type.value.value.shape).toBeFalsy();
  });
});

describe("GraphBuilder", () => {
  it("builds an MLP with a symbolic batch dim that onnxruntime runs correctly", async () => {
    const b = new GraphBuilder("mlp");
    const x = b.input("x", "float32", ["batch", 3]);
    const w = b.initializer("w", "float32", [3, 2], [1, 2, 3, 4, 5, 6]);
    const bias = b.initializer("bias", "float32", [2], [0.5, -100]);
    const mm = b.node("MatMul", [x, w], { name: "fc/matmul" });
    const add = b.node("Add", [mm, bias], { name: "fc/add" });
    const y = b.node("Relu", [add], { name: "fc/relu" });
    b.output(y, "float32", ["batch", 2]);
    b.output(mm); // untyped extra output: accepted by onnxruntime
    expect([mm, add, y]).toEqual(["fc/matmul_output_0", "fc/add_output_0", "fc/relu_output_0"]);
    const model = b.model({ opset: 17, irVersion: 8 });
    expect(model.opsetImport[0]!.version).toBe(17n);
    expect(model.irVersion).toBe(8n);
    const r = await run(modelBytes(model), { x: f32([1, 0, 0, 0, 1, 2], [2, 3]) });
    expect(r[y]!.dims).toEqual([2, 2]);
    expect(Array.from(r[y]!.data as Float32Array)).toEqual([1.5, 0, 13.5, 0]);
    expect(Array.from(r[mm]!.data as Float32Array)).toEqual([1, 2, 13, 16]);
  });

  it("passes INT, FLOAT (explicit), INTS, tensor attributes, int64 and float16 initializers", async () => {
    const b = new GraphBuilder("attrs");
    const x = b.input("x", "float32", [2, 3]);
    // Gemm alpha must be FLOAT: an integral value needs b.f().
    const w = b.initializer("w", "float32", [3, 3], [1, 0, 0, 0, 1, 0, 0, 0, 1]);
    const g = b.node("Gemm", [x, w], { attrs: { alpha: b.f(2), transB: 1 } });
    const t = b.node("Transpose", [g], { attrs: { perm: [1, 0] } });
    const shape = b.initializer("shape", "int64", [1], BigInt64Array.from([6n]));
    const flat = b.node("Reshape", [t, shape]);
    const l = b.node("LeakyRelu", [flat], { attrs: { alpha: 0.25 } });
    const half = b.initializer("half", "float16", [2], Uint16Array.from([0x3c00, 0xc000])); // 1, -2
    const hf = b.node("Cast", [half], { attrs: { to: TensorProto_DataType.FLOAT } });
    const c = b.constant("c", "float32", [], [10]);
    const sum = b.node("Add", [hf, c]);
    const cat = b.node("Concat", [l, sum], { attrs: { axis: 0 } });
    b.output(cat, "float32", [8]);
    const r = await run(modelBytes(b.model()), { x: f32([1, -2, 3, -4, 5, -6], [2, 3]) });
    // 2x = [2,-4,6,-8,10,-12]; transposed [[2,-8],[-4,10],[6,-12]]; leaky 0.25.
    expect(Array.from(r[cat]!.data as Float32Array)).toEqual([2, -2, -1, 10, 6, -3, 11, 8]);
  });

  it("supports unnamed nodes (unique generated outputs, empty names in the file)", () => {
    const b = new GraphBuilder("u");
    const x = b.input("x", "float32", [1]);
    const a = b.node("Relu", [x]);
    const c = b.node("Relu", [a]);
    expect(a).not.toBe(c);
    const m = fromBinary(ModelProtoSchema, modelBytes(b.model()));
    expect(m.graph!.node.map((n) => n.name)).toEqual(["", ""]);
  });

  it("rejects duplicate tensor and node names", () => {
    const b = new GraphBuilder("d");
    const x = b.input("x", "float32", [1]);
    b.node("Relu", [x], { name: "r", outputs: ["y"] });
    expect(() => b.node("Relu", [x], { outputs: ["y"] })).toThrow(/already defined/);
    expect(() => b.node("Relu", [x], { name: "r" })).toThrow(/already defined/);
    expect(() => b.initializer("x", "float32", [1], [1])).toThrow(/already defined/);
    const ok = new GraphBuilder("d2", { allowDuplicateNodeNames: true });
    const x2 = ok.input("x", "float32", [1]);
    ok.node("Relu", [x2], { name: "r" , outputs: ["a"] });
    expect(() => ok.node("Relu", [x2], { name: "r", outputs: ["b"] })).not.toThrow();
  });

  it("builds If subgraphs that read outer-scope tensors, without name clashes", async () => {
    const b = new GraphBuilder("if");
    const x = b.input("x", "float32", [2]);
    const cond = b.input("cond", "bool", []);
    const h = b.node("Neg", [x]);
    const thenB = b.subgraph("then");
    const t = thenB.node("Neg", [h]); // same op type, unnamed: must not reuse an outer name
    thenB.output(t, "float32", [2]);
    const elseB = b.subgraph("else");
    const e = elseB.node("Abs", [h]);
    elseB.output(e, "float32", [2]);
    expect(new Set([h, t, e]).size).toBe(3);
    const y = b.node("If", [cond], { attrs: { then_branch: thenB.graph(), else_branch: elseB.graph() } });
    b.output(y, "float32", [2]);
    const bytes = modelBytes(b.model());
    const xs = f32([3, -4], [2]);
    const yes = await run(bytes, { x: xs, cond: new ort.Tensor("bool", Uint8Array.from([1]), []) });
    const no = await run(bytes, { x: xs, cond: new ort.Tensor("bool", Uint8Array.from([0]), []) });
    expect(Array.from(yes[y]!.data as Float32Array)).toEqual([3, -4]);
    expect(Array.from(no[y]!.data as Float32Array)).toEqual([3, 4]);
  });

  it("serializes deterministically", () => {
    const make = (): Uint8Array => {
      const b = new GraphBuilder("det");
      const x = b.input("x", "float32", [4]);
      const w = b.initializer("w", "float32", [4], [1, 2, 3, 4]);
      b.output(b.node("Mul", [x, w], { name: "m", attrs: { a: 1, b: 0.5, c: "s" } }), "float32", [4]);
      return modelBytes(b.model({ metadata: { z: "1", a: "2" } }));
    };
    expect(Buffer.from(make()).equals(Buffer.from(make()))).toBe(true);
  });
});

describe("saveModel", () => {
  function bigModel(): { bytes: Uint8Array; model: ReturnType<GraphBuilder["model"]> } {
    const b = new GraphBuilder("ext");
    const x = b.input("x", "float32", [1, 4]);
    const small = b.initializer("small", "float32", [4], [1, 2, 3, 4]); // 16 B: stays inline
    const w = new Float32Array(4 * 300).map((_, i) => ((i % 7) - 3) / 8);
    const w1 = b.initializer("w1", "float32", [4, 300], w); // 4800 B
    const w2data = new Float32Array(300 * 1000).map((_, i) => ((i % 11) - 5) / 64);
    const w2 = b.initializer("w2", "float32", [300, 1000], w2data); // 1.2 MB: page aligned
    const a = b.node("Add", [x, small]);
    const h = b.node("MatMul", [a, w1]);
    const y = b.node("MatMul", [h, w2]);
    b.output(y, "float32", [1, 1000]);
    const model = b.model();
    return { bytes: modelBytes(model), model };
  }

  it("writes a plain model file", async () => {
    const { bytes, model } = bigModel();
    const file = path.join(dir, "plain.onnx");
    saveModel(model, file);
    expect(Buffer.from(fs.readFileSync(file)).equals(Buffer.from(bytes))).toBe(true);
  });

  it("moves large initializers to a side file that onnxruntime loads", async () => {
    const { bytes, model } = bigModel();
    const file = path.join(dir, "ext.onnx");
    const written = saveModel(model, file, { externalData: { location: "ext.onnx.data", threshold: 1024 } });
    expect(written.data).toBe(path.join(dir, "ext.onnx.data"));
    // The caller's model is untouched.
    expect(model.graph!.initializer.every((t) => t.dataLocation !== TensorProto_DataLocation.EXTERNAL)).toBe(true);
    const saved = fromBinary(ModelProtoSchema, fs.readFileSync(file));
    const byName = new Map(saved.graph!.initializer.map((t) => [t.name, t]));
    expect(byName.get("small")!.dataLocation).not.toBe(TensorProto_DataLocation.EXTERNAL);
    expect(byName.get("small")!.rawData.byteLength).toBe(16);
    const entries = (n: string): Record<string, string> =>
      Object.fromEntries(byName.get(n)!.externalData.map((e) => [e.key, e.value]));
    for (const n of ["w1", "w2"]) {
      expect(byName.get(n)!.dataLocation).toBe(TensorProto_DataLocation.EXTERNAL);
      expect(byName.get(n)!.rawData.byteLength).toBe(0);
      expect(entries(n).location).toBe("ext.onnx.data");
    }
    expect(entries("w1")).toMatchObject({ offset: "0", length: "4800" });
    expect(entries("w2")).toMatchObject({ offset: "8192", length: "1200000" });
    expect(fs.statSync(path.join(dir, "ext.onnx.data")).size).toBe(8192 + 1200000);
    expect(fs.statSync(file).size).toBeLessThan(2000);
    // The side file holds the exact bytes.
    const side = fs.readFileSync(path.join(dir, "ext.onnx.data"));
    const orig = model.graph!.initializer.find((t) => t.name === "w2")!.rawData;
    expect(Buffer.from(side.subarray(8192)).equals(Buffer.from(orig))).toBe(true);
    // onnxruntime finds the side file next to the model given by path.
    const x = f32([0.5, -1, 2, 0.25], [1, 4]);
    const fromFile = await run(file, { x });
    const inMemory = await run(bytes, { x });
    const yName = saved.graph!.output[0]!.name;
    expect(Array.from(fromFile[yName]!.data as Float32Array)).toEqual(Array.from(inMemory[yName]!.data as Float32Array));
    // No temporary files left behind.
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("rejects a side-file location outside the model's directory", () => {
    const { model } = bigModel();
    expect(() => saveModel(model, path.join(dir, "bad.onnx"), { externalData: { location: "../x.data" } })).toThrow(
      /relative path/,
    );
    expect(() => saveModel(model, path.join(dir, "bad.onnx"), { externalData: { location: "/tmp/x.data" } })).toThrow(
      /relative path/,
    );
  });
});
