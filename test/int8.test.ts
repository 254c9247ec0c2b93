/**
 * INT8 emulation (PRECISION.md "INT8 emulation"): the rewrite's QuantizeLinear/DequantizeLinear
 * pairs run by onnxruntime give exactly what the numeric core's fakeQuantInt8 predicts (ties,
 * clamps of both ranges, per-channel weights on the right axis), eligibility and fallbacks are
 * reported with their reasons, explicit Q/DQ models run as written (ONNX backend test data),
 * and calibration builds caches that read back bit for bit.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { toBinary } from "@bufbuild/protobuf";
import { TensorProtoSchema } from "onnx-buf";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { prepareModel } from "../src/onnx/model.js";
import { inferTypes } from "../src/onnx/model-types.js";
import { Executor } from "../src/runtime/executor.js";
import { prepareModelFile, runCaptured } from "../src/runtime/capture-runs.js";
import { fakeQuantInt8, perChannelAbsMax } from "../src/numeric/index.js";
import { resolveInt8, constantQuantization, INT8_OPS, type Int8Range } from "../src/precision/int8.js";
import { prepareInt8 } from "../src/calibration/int8-run.js";
import { quantizeWeightPerChannel } from "../src/precision/rewrite.js";
import { amaxToScale, readCalibrationCache, type CalibrationCache } from "../src/calibration/cache.js";
import { AbsHistogram } from "../src/calibration/histogram.js";
import { calibrate } from "../src/calibration/algorithms.js";
import { readTensorPb, hostToTensorProto } from "../src/onnx/tensor.js";
import { openDump, valuesToHostTensor } from "../src/io/dump.js";
import { compareModel } from "../src/workflows/compare.js";
import { runModel } from "../src/workflows/run.js";
import { validateModel } from "../src/workflows/validate.js";
import { saveInputs } from "../src/workflows/model-inputs.js";
import { defaultCompareOptions } from "../src/compare/tolerance.js";
import { calibBuild } from "../src/calibration/build.js";
import { openCalibData } from "../src/calibration/calib-data.js";
import { collectStatistics } from "../src/calibration/collect.js";
import { calibCheck } from "../src/calibration/check.js";
import type { HostTensor, Precision } from "../src/core/host-tensor.js";
import type { OptimizationLevel } from "../src/onnx/ort-session.js";
import { tmpDir } from "./helpers.js";
import { ONNX_TESTDATA } from "./testdata.js";
import { clippedOutlierModel, OUTLIER_TENSOR, smallInt8Model } from "./int8-fixtures.js";

const ONNX_NODE_TESTS = path.join(ONNX_TESTDATA, "node");
const dirs: string[] = [];
const tmp = () => {
  const d = tmpDir("trtdbg-int8-");
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const f32 = (name: string, dims: number[], v: ArrayLike<number>): HostTensor => ({ name, dtype: "float32", dims, data: Float32Array.from(v) });

function cacheOf(scales: Record<string, number>): CalibrationCache {
  return { version: "8601", algorithm: "EntropyCalibration2", source: "tensorrt", scales: new Map(Object.entries(scales).map(([k, v]) => [k, Math.fround(v)])) };
}

async function inMemory(build: (b: GraphBuilder) => void, opset = 17) {
  const b = new GraphBuilder("t");
  build(b);
  const model = prepareModel(b.model({ opset }), "mem.onnx");
  const types = await inferTypes(model);
  return { model, types };
}

async function runAll(exec: Executor, precisions: readonly Precision[], inputs: HostTensor[]): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for await (const c of runCaptured(exec, precisions, inputs, () => true)) out.set(c.tensor.name, c.tensor.data as Float32Array);
  return out;
}

function expectSameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  const bad: string[] = [];
  for (let i = 0; i < actual.length && bad.length < 5; i++) if (!Object.is(actual[i], expected[i])) bad.push(`[${i}] ${actual[i]} != ${expected[i]}`);
  expect(bad, what).toEqual([]);
}

const LEVELS: OptimizationLevel[] = ["disabled", "all"];

describe("activation quantize/dequantize through the rewrite (bit-exact vs fakeQuantInt8)", () => {
  // x, y -> add -> relu -> reshape -> transpose -> out. Every layer int8; the graph output is
  // emitted unquantized (fp32 fallback), every inner tensor is Q/DQ'd by its producer.
  const N = 96;
  const build = (b: GraphBuilder) => {
    const x = b.input("x", "float32", [1, N]);
    const y = b.input("y", "float32", [1, N]);
    const a = b.node("Add", [x, y], { name: "add", outputs: ["a"] });
    const r = b.node("Relu", [a], { name: "relu", outputs: ["r"] });
    const shp = b.initializer("shp", "int64", [3], BigInt64Array.from([1n, 1n, BigInt(N)]));
    const rs = b.node("Reshape", [r, shp], { name: "reshape", outputs: ["rs"] });
    const o = b.node("Transpose", [rs], { name: "transpose", outputs: ["o"], attrs: { perm: [0, 2, 1] } });
    b.output(o, "float32");
  };
  // Power-of-two scales make x/s exact: the inputs below hit exact ties k + 0.5.
  const scales = { x: 0.125, y: 0.125, a: 0.125, r: 0.25, rs: 0.5, o: 0.5 };
  const xv = new Float32Array(N), yv = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    xv[i] = (i - 48) * 0.0625 * 5; // ties at x/s = k + 0.5 for odd i, clamps at both ends
    yv[i] = 0.125 * (i % 5) - 0.0625 * (i % 2);
  }
  xv.set([-100, 100, -16.0625, -15.9375, -15.875, 15.9375, 15.875, -16], 0);

  for (const range of [128, 127] as Int8Range[]) {
    for (const lvl of LEVELS) {
      it(`range [${-range},127], onnxruntime optimization ${lvl}`, async () => {
        const { model, types } = await inMemory(build);
        const res = resolveInt8(model, types, model.graph.layers.map(() => "int8"), { cache: cacheOf(scales), range });
        expect(res.fallbacks).toEqual([]);
        expect(res.precisions).toEqual(["int8", "int8", "int8", "int8"]);
        const exec = new Executor(model, types, { optimizationLevel: lvl, policy: res.policy });
        const out = await runAll(exec, res.precisions, [f32("x", [1, N], xv), f32("y", [1, N], yv)]);
        await exec.release();
        const q = (v: Float32Array, s: number) => fakeQuantInt8(v, { scale: s, qmin: -range, qmax: 127 });
        const qx = q(xv, scales.x), qy = q(yv, scales.y);
        const sum = new Float32Array(N);
        for (let i = 0; i < N; i++) sum[i] = Math.fround(qx[i]! + qy[i]!);
        const a = q(sum, scales.a);
        expectSameBits(out.get("a")!, a, "add output");
        // the clamp of each range: x = -100 and +100 saturate at x's scale, and a at its own
        expect(out.get("a")![0]).toBe(-range * scales.a);
        expect(out.get("a")![1]).toBe(127 * scales.a);
        const r = q(a.map((v) => Math.max(v, 0)), scales.r);
        expectSameBits(out.get("r")!, r, "relu output");
        expectSameBits(out.get("rs")!, q(r, scales.rs), "reshape output");
        // graph output: the transpose's input is quantized, its output emitted in fp32 (no consumer)
        expectSameBits(out.get("o")!, q(r, scales.rs), "graph output");
      });
    }
  }

  it("ties round half to even on an exact tie grid", async () => {
    const { model, types } = await inMemory((b) => {
      const x = b.input("x", "float32", [1, 8]);
      const r = b.node("Relu", [x], { name: "r1", outputs: ["r"] });
      b.output(b.node("Relu", [r], { name: "r2", outputs: ["z"] }), "float32");
    });
    const res = resolveInt8(model, types, ["int8", "int8"], { cache: cacheOf({ x: 1, r: 1, z: 1 }) });
    const exec = new Executor(model, types, { policy: res.policy });
    const out = await runAll(exec, res.precisions, [f32("x", [1, 8], [0.5, 1.5, 2.5, 3.5, 126.5, 127.5, 0.49999997, 2.5000002])]);
    await exec.release();
    expect([...out.get("r")!]).toEqual([0, 2, 2, 4, 126, 127, 0, 3]);
  });
});

describe("per-channel weights", () => {
  const cases: { op: string; axis: number; build: (b: GraphBuilder, w: string) => string; wDims: number[]; xDims: number[] }[] = [
    { op: "Conv", axis: 0, wDims: [6, 3, 3, 3], xDims: [1, 3, 5, 5], build: (b, w) => b.node("Conv", ["x", w, b.initializer("bias", "float32", [6], Float32Array.from([0.1, -0.2, 0.3, 0, 0.05, -0.01]))], { name: "layer", outputs: ["h"], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } }) },
    { op: "ConvTranspose", axis: 1, wDims: [3, 4, 3, 3], xDims: [1, 3, 4, 4], build: (b, w) => b.node("ConvTranspose", ["x", w], { name: "layer", outputs: ["h"], attrs: { kernel_shape: [3, 3] } }) },
    { op: "Gemm transB=1", axis: 0, wDims: [5, 7], xDims: [2, 7], build: (b, w) => b.node("Gemm", ["x", w, b.initializer("bias", "float32", [5], Float32Array.from([1, 2, 3, 4, 5]))], { name: "layer", outputs: ["h"], attrs: { transB: 1 } }) },
    { op: "Gemm transB=0", axis: 1, wDims: [7, 5], xDims: [2, 7], build: (b, w) => b.node("Gemm", ["x", w], { name: "layer", outputs: ["h"] }) },
    { op: "MatMul", axis: 2, wDims: [2, 7, 5], xDims: [2, 3, 7], build: (b, w) => b.node("MatMul", ["x", w], { name: "layer", outputs: ["h"] }) },
  ];
  for (const c of cases) for (const lvl of ["disabled", "basic", "extended", "all"] as OptimizationLevel[]) {
    it(`${c.op}: weights fake-quantized per output channel (axis ${c.axis}), bias in fp32, output Q/DQ'd (optimization ${lvl})`, async () => {
      const n = c.wDims.reduce((a, b) => a * b, 1);
      const wv = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 4)) * 0.3);
      const xn = c.xDims.reduce((a, b) => a * b, 1);
      const xv = Float32Array.from({ length: xn }, (_, i) => Math.cos(i * 0.9) * 2);
      const net = (wData: Float32Array) => async () =>
        inMemory((b) => {
          b.input("x", "float32", c.xDims);
          const w = b.initializer("w", "float32", c.wDims, wData);
          const h = c.build(b, w);
          b.output(b.node("Relu", [h], { name: "relu", outputs: ["y"] }), "float32");
        });
      const { model, types } = await net(wv)();
      const layer = model.graph.layers[0]!;
      expect(constantQuantization(layer, 1, c.wDims.length)).toEqual({ kind: "per-channel", axis: c.axis });
      const sx = 0.02, sh = 0.05;
      const cache = cacheOf({ x: sx, h: sh, y: 0.05 });
      const res = resolveInt8(model, types, ["int8", "int8"], { cache });
      expect(res.fallbacks).toEqual([]);
      const exec = new Executor(model, types, { policy: res.policy, optimizationLevel: lvl });
      const got = await runAll(exec, res.precisions, [f32("x", c.xDims, xv)]);
      // The same int8 layer with an fp32 consumer emits its raw (unquantized) output.
      const rawRes = resolveInt8(model, types, ["int8", "fp32"], { cache });
      const rawExec = new Executor(model, types, { policy: rawRes.policy, optimizationLevel: lvl });
      const raw = (await runAll(rawExec, rawRes.precisions, [f32("x", c.xDims, xv)])).get("h")!;
      await exec.release();
      await rawExec.release();
      expectSameBits(got.get("h")!, fakeQuantInt8(raw, { scale: Math.fround(sh), qmin: -128, qmax: 127 }), `${c.op} output = fakeQuantInt8(raw output)`);
      // The raw output is the layer in fp32 on the quantized input and weights quantized on
      // the expected axis (to fp32 accumulation order: kernels differ between graphs).
      const wq = quantizeWeightPerChannel(wv, c.wDims, c.axis, -127, 127);
      const amax = perChannelAbsMax(wv, c.wDims, c.axis);
      expect(amax.length).toBe(c.wDims[c.axis]);
      const ref = await net(wq)();
      const rexec = new Executor(ref.model, ref.types, { optimizationLevel: lvl });
      const xq = fakeQuantInt8(xv, { scale: Math.fround(sx), qmin: -128, qmax: 127 });
      const refRaw = (await runAll(rexec, ["fp32", "fp32"], [f32("x", c.xDims, xq)])).get("h")!;
      await rexec.release();
      let maxDiff = 0, maxRef = 0;
      for (let i = 0; i < raw.length; i++) (maxDiff = Math.max(maxDiff, Math.abs(raw[i]! - refRaw[i]!))), (maxRef = Math.max(maxRef, Math.abs(refRaw[i]!)));
      expect(maxDiff).toBeLessThanOrEqual(maxRef * 1e-6);
      // and the per-channel scheme differs from a per-tensor one on this data
      const perTensor = fakeQuantInt8(wv, { scale: Math.fround(Math.max(...amax) / 127), qmin: -127, qmax: 127 });
      expect(Array.from(perTensor).some((v, i) => v !== wq[i])).toBe(true);
    });
  }

  it("weight fake-quant equals onnxruntime's per-axis QuantizeLinear/DequantizeLinear (ties included)", async () => {
    const dims = [4, 6];
    // channel c has max |w| = 127 * s_c; the other values sit on exact ties k + 0.5 of s_c
    const s = [0.5, 0.25, 1, 2];
    const wv = new Float32Array(24);
    for (let c = 0; c < 4; c++) for (let j = 0; j < 6; j++) wv[c * 6 + j] = (j === 0 ? 127 : j % 2 ? j + 0.5 : -(j + 0.5)) * s[c]!;
    const { model, types } = await inMemory((b) => {
      const w = b.input("w", "float32", dims);
      const sc = b.initializer("s", "float32", [4], Float32Array.from(s));
      const zp = b.initializer("zp", "int8", [4], new Int8Array(4));
      const q = b.node("QuantizeLinear", [w, sc, zp], { name: "q", outputs: ["wq"], attrs: { axis: 0 } });
      b.output(b.node("DequantizeLinear", [q, sc, zp], { name: "dq", outputs: ["wdq"], attrs: { axis: 0 } }), "float32");
    });
    const exec = new Executor(model, types);
    const out = await runAll(exec, ["fp32", "fp32"], [f32("w", dims, wv)]);
    await exec.release();
    expectSameBits(out.get("wdq")!, quantizeWeightPerChannel(wv, dims, 0, -127, 127), "per-axis Q/DQ");
  });
});

// These fixtures assert per-node eligibility, ranges and positions (one layer per ONNX node:
// --fusion none); int8 on TensorRT's fused groups is covered by "compare --int8 end to end"
// below and by test/layer-model.test.ts.
describe("eligibility and fallbacks", () => {
  it("a layer whose tensor has no range falls back (fp32, or fp16 with --fp16), with the reason; non-int8 ops too", async () => {
    const d = tmp();
    const file = path.join(d, "small.onnx");
    saveModel(smallInt8Model(), file);
    const p = await prepareModelFile(file, { fusion: "none" });
    const full = new Map<string, number>();
    for (const t of ["x", "conv_output_0", "relu_output_0", "pool_output_0", "flatten_output_0", "mm_output_0", "add_output_0", "softmax_output_0"]) full.set(t, 0.05);
    full.delete("mm_output_0");
    const cache: CalibrationCache = { version: "8601", algorithm: "EntropyCalibration2", source: "tensorrt", scales: full };
    const req = p.model.graph.layers.map(() => "int8" as Precision);
    for (const fallback of ["fp32", "fp16"] as Precision[]) {
      const res = resolveInt8(p.model, p.types, req, { cache, fallback });
      const byLayer = Object.fromEntries(res.fallbacks.map((f) => [f.layer, f]));
      expect(Object.keys(byLayer).sort()).toEqual(["add", "mm", "softmax"]);
      expect(byLayer.mm!.reason).toBe("output 0 'mm_output_0' has no range in the calibration cache");
      expect(byLayer.mm!.code).toBe("no-range");
      expect(byLayer.mm!.tensor).toBe("mm_output_0");
      expect(byLayer.add!.reason).toBe("input 0 'mm_output_0' has no range in the calibration cache");
      expect(byLayer.softmax!.reason).toBe("op Softmax is not int8-capable");
      expect(res.fallbacks.every((f) => f.precision === fallback)).toBe(true);
      expect(res.precisions).toEqual(["int8", "int8", "int8", "int8", fallback, fallback, fallback]);
      expect(res.missingFromCache).toEqual(["mm_output_0"]);
    }
  });

  it("plans move layers to fp16/fp32 (not fallbacks), zero ranges and unknown cache entries are reported", async () => {
    const d = tmp();
    const file = path.join(d, "small.onnx");
    saveModel(smallInt8Model(), file);
    const p = await prepareModelFile(file, { fusion: "none" });
    const scales = new Map<string, number>([["x", 0.01], ["conv_output_0", 0], ["relu_output_0", 0.02], ["stale", 1]]);
    const warnings: string[] = [];
    const req: Precision[] = ["int8", "int8", "fp16", "int8", "int8", "int8", "int8"];
    const cacheFile = path.join(d, "c.cache");
    fs.writeFileSync(cacheFile, `TRT-100300-EntropyCalibration2\n${[...scales].map(([k, v]) => `${k}: ${Buffer.from(new Float32Array([v]).buffer).reverse().toString("hex")}`).join("\n")}\n`);
    const prep = await prepareInt8(p.model, p.types, req, { calibrationCache: cacheFile }, (m) => warnings.push(m));
    expect(prep.report.cache).toMatchObject({ source: "tensorrt", trt_version: "100300", algorithm: "EntropyCalibration2", tensors: 4 });
    expect(prep.resolution.precisions[2]).toBe("fp16"); // asked by the plan, not a fallback
    expect(prep.report.fallbacks.find((f) => f.layer === "pool")).toBeUndefined();
    const conv = prep.report.fallbacks.find((f) => f.layer === "conv")!;
    expect(conv.code).toBe("zero-range");
    expect(conv.reason).toContain("'conv_output_0' has range 0");
    expect(prep.report.unknown_in_cache).toEqual(["stale"]);
    expect(warnings.some((w) => w.includes("stale cache"))).toBe(true);
  });

  it("--int8 without a cache on a model without Q/DQ is a user error naming the fix", async () => {
    const d = tmp();
    const file = path.join(d, "small.onnx");
    saveModel(smallInt8Model(), file);
    await expect(runModel({ model: file, precisions: ["int8"], capture: { kind: "outputs" } })).rejects.toThrow(/int8: .*pass int8\.calibrationCache FILE/);
  });

  it("every documented int8 op is in the eligibility list", () => {
    for (const op of ["Conv", "ConvTranspose", "MatMul", "Gemm", "Add", "Mul", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat"]) expect(INT8_OPS.has(op)).toBe(true);
    const doc = fs.readFileSync(path.join(__dirname, "..", "docs", "int8.md"), "utf8");
    for (const op of INT8_OPS) expect(doc, `docs/int8.md lists ${op}`).toContain(`\`${op}\``);
  });
});

describe("explicit quantization (ONNX backend test data)", () => {
  for (const name of ["test_quantizelinear", "test_quantizelinear_axis", "test_dequantizelinear", "test_dequantizelinear_axis"]) {
    const dir = path.join(ONNX_NODE_TESTS, name);
    it.skipIf(!fs.existsSync(dir) && process.env.CI !== "true")(`${name} runs with --int8 (no calibration) and matches output_0.pb`, async () => {
      const out = tmp();
      const r = await runModel({ model: path.join(dir, "model.onnx"), precisions: ["int8"], capture: { kind: "outputs" }, inputs: { loadInputs: [path.join(dir, "test_data_set_0")] }, saveOutputs: out });
      expect(r.runs[0]!.int8).toMatchObject({ mode: "explicit", cache: null });
      const expected = readTensorPb(path.join(dir, "test_data_set_0", "output_0.pb"));
      const d = await openDump(path.join(out, "int8.arrow"), "dump");
      const rows: HostTensor[] = [];
      for await (const row of d.rows()) rows.push(valuesToHostTensor(row));
      await d.close();
      expect(rows).toHaveLength(1);
      expect(rows[0]!.dtype).toBe(expected.dtype);
      expect(rows[0]!.dims).toEqual(expected.dims);
      expect(Array.from(rows[0]!.data as ArrayLike<number>)).toEqual(Array.from(expected.data as ArrayLike<number>));
    });
  }

  it("a Q/DQ conv model runs its own Q/DQ as written (equal to its fp32 run); --fp16 moves the unquantized layers", async () => {
    const b = new GraphBuilder("qdq");
    const x = b.input("x", "float32", [1, 2, 4, 4]);
    const sx = b.initializer("sx", "float32", [], Float32Array.of(0.02));
    const zx = b.initializer("zx", "int8", [], new Int8Array(1));
    const xq = b.node("QuantizeLinear", [x, sx, zx], { name: "qx" });
    const xd = b.node("DequantizeLinear", [xq, sx, zx], { name: "dqx" });
    const wq = b.initializer("wq", "int8", [3, 2, 1, 1], Int8Array.from([127, -5, 64, 3, -127, 100]));
    const sw = b.initializer("sw", "float32", [3], Float32Array.from([0.01, 0.02, 0.005]));
    const zw = b.initializer("zw", "int8", [3], new Int8Array(3));
    const wd = b.node("DequantizeLinear", [wq, sw, zw], { name: "dqw", attrs: { axis: 0 } });
    const h = b.node("Conv", [xd, wd], { name: "conv", attrs: { kernel_shape: [1, 1] } });
    b.output(b.node("Sigmoid", [h], { name: "sig", outputs: ["y"] }), "float32");
    const file = path.join(tmp(), "qdq.onnx");
    saveModel(b.model({ opset: 13, irVersion: 7 }), file);
    const inputs = { loadInputs: [] as string[] };
    const xin = f32("x", [1, 2, 4, 4], Array.from({ length: 32 }, (_, i) => Math.sin(i) * 2));
    const d = tmp();
    await saveInputs(path.join(d, "in.arrow"), file, [xin]);
    inputs.loadInputs = [path.join(d, "in.arrow")];
    const warnings: string[] = [];
    // per node (--fusion none): with fusion, conv+sig is one int8 group and sig no fallback
    const r = await compareModel({ model: file, candidate: "int8", compare: defaultCompareOptions(), inputs, int8: { calibrationCache: undefined }, fusion: "none" }, { warn: (m) => warnings.push(m) });
    expect(r.int8!.mode).toBe("explicit");
    expect(r.int8!.fallbacks.map((f) => f.layer)).toEqual(["sig"]);
    for (const l of r.layers) expect(l.metrics.max_abs).toBe(0);
    const r16 = await compareModel({ model: file, candidate: "int8", compare: defaultCompareOptions(), inputs, int8: { fallback: "fp16" }, fusion: "none" });
    expect(r16.int8!.fallbacks).toEqual([expect.objectContaining({ layer: "sig", precision: "fp16" })]);
    const conv = r16.layers.find((l) => l.layer === "conv")!;
    expect(conv.precision).toBe("int8");
    expect(conv.metrics.max_abs).toBe(0);
    expect(r16.layers.find((l) => l.layer === "sig")!.metrics.max_abs).toBeGreaterThan(0);
  });
});

describe("calibration", () => {
  it("calib build -> cache -> read round trips bit for bit; an int8 run uses exactly those scales", async () => {
    const d = tmp();
    const file = path.join(d, "m.onnx");
    saveModel(clippedOutlierModel(), file);
    const warnings: string[] = [];
    const progress: number[] = [];
    const r = await calibBuild({ model: file, algo: "entropy", output: path.join(d, "m.cache"), calibBatches: 3 }, { warn: (m) => warnings.push(m), progress: (_p, done) => progress.push(done) });
    expect(warnings.some((w) => w.startsWith("CALIBRATING ON RANDOM DATA"))).toBe(true);
    expect(progress).toEqual([1, 2, 3]);
    expect(r.batches).toBe(3);
    const text = await readCalibrationCache(r.cache);
    const json = await readCalibrationCache(r.sidecar);
    expect(text.version).toBe("8601");
    expect(text.algorithm).toBe("EntropyCalibration2");
    expect([...text.scales.keys()]).toEqual(r.tensors.map((t) => t.tensor));
    expect(r.tensors.map((t) => t.tensor)).toContain(OUTLIER_TENSOR);
    expect(r.tensors[0]!.tensor).toBe("x"); // graph inputs are calibrated too
    for (const t of r.tensors) {
      expect(Object.is(text.scales.get(t.tensor), amaxToScale(t.amax))).toBe(true);
      expect(Object.is(json.scales.get(t.tensor), text.scales.get(t.tensor))).toBe(true);
      expect(json.amax!.get(t.tensor)).toBe(t.amax);
    }
    // the same amax as calibrating histograms fed by hand with the same data
    const p = await prepareModelFile(file);
    const src = openCalibData(p.inputs, { calibBatches: 3 }, () => undefined);
    const h = new AbsHistogram();
    for await (const batch of src.iterate()) h.collect(batch[0]!.data as Float32Array);
    expect(r.tensors[0]!.amax).toBe(calibrate(h, "entropy"));
    // an int8 run with the cache quantizes the graph input with exactly its scale
    const prep = await prepareInt8(p.model, p.types, p.model.graph.layers.map(() => "int8"), { calibrationCache: r.cache });
    expect(prep.resolution.fallbacks).toEqual([]);
    expect(prep.resolution.policy.activationTransform("x")).toEqual({ kind: "qdq", scale: text.scales.get("x"), qmin: -128, qmax: 127 });
  });

  it("calibration data: test_data_set_* dirs, sub-directories, a flat dir and a multi-batch Arrow file give the same statistics", async () => {
    const d = tmp();
    const file = path.join(d, "m.onnx");
    saveModel(smallInt8Model(), file);
    const p = await prepareModelFile(file);
    const batches = [0, 1, 2].map((k) => f32("x", [1, 4, 8, 8], Array.from({ length: 256 }, (_, i) => Math.sin(i * (k + 1)) * (k + 1))));
    const tds = path.join(d, "tds"), sub = path.join(d, "sub");
    batches.forEach((t, k) => {
      for (const [root, name] of [[tds, `test_data_set_${k}`], [sub, `batch${k}`]] as const) {
        fs.mkdirSync(path.join(root, name), { recursive: true });
        fs.writeFileSync(path.join(root, name, "input_0.pb"), Buffer.from(toPb(t)));
      }
    });
    const arrow = path.join(d, "in.arrow");
    const { DumpWriter } = await import("../src/io/dump.js");
    const { toDumpRow } = await import("../src/io/rows.js");
    const w = await DumpWriter.open(arrow, { kind: "inputs", model: "m.onnx", precision: "", extra: {} });
    for (let k = 0; k < 3; k++) await w.write(toDumpRow(k, "", "", batches[k]!, ""));
    await w.close();
    const stats = async (calibData: string) => {
      const src = openCalibData(p.inputs, { calibData }, () => undefined);
      const s = await collectStatistics(p, src);
      return { kind: src.kind, batches: s.batches, hists: [...s.histograms].map(([k, h]) => [k, h.toJSON()]) };
    };
    const a = await stats(tds), b = await stats(sub), c = await stats(arrow);
    expect([a.kind, b.kind, c.kind]).toEqual(["test-data-sets", "directories", "arrow"]);
    expect(a.batches).toBe(3);
    expect(b.hists).toEqual(a.hists);
    expect(c.hists).toEqual(a.hists);
    const flat = await stats(path.join(tds, "test_data_set_1"));
    expect(flat.kind).toBe("flat-directory");
    expect(flat.batches).toBe(1);
    expect(() => openCalibData(p.inputs, { calibData: path.join(d, "nope") }, () => undefined)).toThrow(/calibData .*no such file/);
  });

  it("calib check: minmax flags the outlier tensor (wasted range), entropy does not", async () => {
    const d = tmp();
    const file = path.join(d, "m.onnx");
    saveModel(clippedOutlierModel(), file);
    for (const algo of ["minmax", "entropy"] as const) {
      await calibBuild({ model: file, algo, output: path.join(d, `${algo}.cache`), calibBatches: 4 });
      const r = await calibCheck({ model: file, calibrationCache: path.join(d, `${algo}.cache`), calibBatches: 4 });
      const t = r.tensors.find((x) => x.tensor === OUTLIER_TENSOR)!;
      if (algo === "minmax") {
        expect(r.passed).toBe(false);
        expect(r.harmful_tensors).toEqual([OUTLIER_TENSOR]);
        expect(t.flags.map((f) => f.code)).toContain("wasted-range");
        expect(r.worst[0]!.tensor).toBe(OUTLIER_TENSOR);
        // the library's advice names the option (the CLI's, --algo: test/calib-cli.test.ts)
        expect(r.worst[0]!.suggestion).toMatch(/^recalibrate with algo (entropy|percentile|mse) /);
      } else {
        expect(r.passed).toBe(true);
        expect(t.flags).toEqual([]);
        expect(t.quality!.clipped_fraction).toBeGreaterThan(0);
        expect(t.quality!.clipped_fraction).toBeLessThan(0.01);
      }
      // every layer runs in int8 and has both errors
      expect(r.layers.every((l) => l.precision === "int8" && l.local !== null && l.end_to_end !== null)).toBe(true);
    }
  });
});

describe("run/validate/compare --int8", () => {
  it("compare --int8 end to end on a small conv/matmul model, with the fallbacks in the result", async () => {
    const d = tmp();
    const file = path.join(d, "small.onnx");
    saveModel(smallInt8Model(), file);
    const b = await calibBuild({ model: file, algo: "entropy", output: path.join(d, "s.cache"), calibBatches: 4 });
    const s = await compareModel({ model: file, candidate: "int8", compare: defaultCompareOptions(), int8: { calibrationCache: b.cache } });
    // layers: conv (conv+relu fused), pool, flatten, mm (mm+add fused), softmax
    expect(s.int8!.int8_layers).toBe(4);
    expect(s.layers.find((l) => l.layer === "conv")!.nodes).toEqual(["conv", "relu"]);
    expect(s.int8!.fallbacks.map((f) => [f.layer, f.precision, f.reason])).toEqual([["softmax", "fp32", "op Softmax is not int8-capable"]]);
    const byLayer = Object.fromEntries(s.layers.map((l) => [l.layer, l]));
    expect(byLayer.conv!.precision).toBe("int8");
    expect(byLayer.softmax!.precision).toBe("fp32");
    expect(byLayer.conv!.metrics.max_abs).toBeGreaterThan(0);
    expect(byLayer.conv!.metrics.rel_l2!).toBeLessThan(0.05);
    expect(s.passed).toBe(true);
    // with --fp16 the fallback runs in fp16; validate accepts int8 too
    const s16 = await compareModel({ model: file, candidate: "int8", compare: defaultCompareOptions(), int8: { calibrationCache: b.cache, fallback: "fp16" } });
    expect(s16.layers.find((l) => l.layer === "softmax")!.precision).toBe("fp16");
    const v = await validateModel({ model: file, precision: "int8", int8: { calibrationCache: b.cache } });
    expect(v.passed).toBe(true);
    expect(v.int8!.fallbacks).toHaveLength(1);
  });
});

function toPb(t: HostTensor): Uint8Array {
  // A TensorProto .pb as the ONNX test data layout stores it.
  return toBinary(TensorProtoSchema, hostToTensorProto(t));
}
