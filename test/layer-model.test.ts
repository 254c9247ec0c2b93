/**
 * TensorRT's layer model (docs/precision.md "TensorRT's layer model"): constants are weights,
 * BatchNormalization folds in fp32, fused groups are one layer rounded once at their output.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { saveModel } from "./support/graph-builder.js";
import { convBn, epilogueOnce, HUGE_VARIANCE } from "../scripts/models/conv-bn.js";
import { captureFilter, prepareModelFile, runCaptured } from "../src/runtime/capture-runs.js";
import { Executor } from "../src/runtime/executor.js";
import { roundTo } from "../src/numeric/index.js";
import { FUSION_PATTERNS } from "../src/onnx/layer-model.js";
import { batchNormScale } from "../src/numeric/index.js";
import { bisectModel, type BisectArgs } from "../src/workflows/bisect.js";
import { expandFusedEntries, trtexecFlags, polygraphyArgs } from "../src/search/export.js";
import { resolveEntries } from "../src/precision/plan.js";
import { defaultCompareOptions } from "../src/compare/tolerance.js";
import type { CompareSummary } from "../src/compare/layer-compare.js";
import { calibBuild } from "../src/calibration/build.js";
import { compareModel } from "../src/workflows/compare.js";
import { GraphBuilder } from "./support/graph-builder.js";
import { createSession, fromOrt, runSession, toOrt } from "../src/onnx/ort-session.js";
import { toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, NodeProtoSchema, TensorProtoSchema, AttributeProtoSchema, AttributeProto_AttributeType, TensorProto_DataType } from "onnx-buf";
import { create } from "@bufbuild/protobuf";
import { Rng } from "../scripts/models/common.js";
import { cli, tmpDir } from "./helpers.js";

let dir: string;
const f = (n: string) => path.join(dir, `${n}.onnx`);
const clean = convBn();
const planted = convBn({ plant: "pow" });

beforeAll(() => {
  dir = tmpDir("trtdbg-layer-model-");
  saveModel(clean.model, f("nodes"));
  saveModel(convBn({ constants: "initializers" }).model, f("inits"));
  saveModel(planted.model, f("pow_nodes"));
  saveModel(convBn({ plant: "pow", constants: "initializers" }).model, f("pow_inits"));
  saveModel(convBn({ plant: "activation" }).model, f("act_nodes"));
  saveModel(convBn({ plant: "activation", constants: "initializers" }).model, f("act_inits"));
  saveModel(epilogueOnce().model, f("epilogue"));
});

async function compareJson(model: string, ...extra: string[]): Promise<{ code: number; text: string; json: CompareSummary }> {
  const out = path.join(dir, `${path.basename(model)}-${extra.join("_")}.json`);
  const r = await cli("compare", model, "--fp16", "--json", out, ...extra);
  const text = `${r.stdout}\n${r.stderr}\n${fs.readFileSync(out, "utf8")}`;
  return { code: r.code, text, json: JSON.parse(fs.readFileSync(out, "utf8")) as CompareSummary };
}

const rowsOf = (s: CompareSummary) => s.layers.map((l) => ({ layer: l.layer, nodes: l.nodes, tensor: l.tensor, passed: l.passed, rel_l2: l.metrics.rel_l2 }));

describe("constants are weights, BatchNormalization folds in fp32", () => {
  it("the model has Constant nodes and a BN running variance above fp16's max", () => {
    const g = clean.model.graph!;
    expect(g.node.filter((n) => n.opType === "Constant").length).toBeGreaterThanOrEqual(16);
    expect(g.node.filter((n) => n.opType === "Constant").every((n) => n.name === "")).toBe(true);
    expect(HUGE_VARIANCE).toBeGreaterThan(65504);
  });

  it("compare --fp16 passes and names no Constant and no BN parameter anywhere", async () => {
    const r = await compareJson(f("nodes"));
    expect(r.code).toBe(0);
    expect(r.json.passed).toBe(true);
    expect(r.json.first_failing_layer).toBeNull();
    expect(r.text).not.toMatch(/Constant|node_of_/);
    for (const p of clean.facts.bnParameters) expect(r.text).not.toContain(p);
  });

  it("a planted real overflow (Mul x1e3 then Pow) is still named", async () => {
    const r = await compareJson(f("pow_nodes"));
    expect(r.code).toBe(1);
    expect(r.json.first_failing_layer).toBe("plant/pow");
    expect(r.text).not.toMatch(/Constant/);
  });

  it("an activation above 65504 at a fused group's output names the group", async () => {
    const r = await compareJson(f("act_nodes"));
    expect(r.code).toBe(1);
    expect(r.json.first_failing_layer).toBe("conv2");
    expect(r.json.layers.find((l) => l.layer === "conv2")!.nodes).toEqual(["conv2", "bn2", "add2", "relu2"]);
  });

  it("Constant nodes and initializers give the same verdicts and table rows", async () => {
    for (const [a, b] of [["nodes", "inits"], ["pow_nodes", "pow_inits"], ["act_nodes", "act_inits"]]) {
      const ra = await compareJson(f(a!));
      const rb = await compareJson(f(b!));
      expect(ra.code).toBe(rb.code);
      expect(ra.json.first_failing_layer).toBe(rb.json.first_failing_layer);
      expect(rowsOf(ra.json)).toEqual(rowsOf(rb.json));
    }
  });

  it("the parser's BN fold: scale = gamma/sqrtf(var+eps), bias = beta - mean*scale in float32", () => {
    const { scale, bias } = batchNormScale(
      Float32Array.of(2, 1), Float32Array.of(0.5, -1), Float32Array.of(1500, 3), Float32Array.of(HUGE_VARIANCE, 4), 1e-5,
    );
    const f32 = Math.fround;
    const s0 = f32(2 / f32(Math.sqrt(f32(HUGE_VARIANCE + f32(1e-5)))));
    expect(scale[0]).toBe(s0);
    expect(bias[0]).toBe(f32(0.5 - f32(1500 * s0)));
    expect(scale[1]).toBe(f32(1 / f32(Math.sqrt(f32(4 + f32(1e-5))))));
    expect(Number.isFinite(scale[0]!) && Math.abs(scale[0]!) < 65504).toBe(true);
  });

  it("folded BN weights give the fp32 model's values (fusion trt and none agree in fp32)", async () => {
    const ref = await runFp32(f("nodes"), "trt");
    const none = await runFp32(f("nodes"), "none");
    const a = ref.get("fc_output_0")!, b = none.get("fc_output_0")!;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5 * (1 + Math.abs(a[i]!)));
  });
});

async function runFp32(model: string, fusion: "trt" | "none"): Promise<Map<string, Float32Array>> {
  const p = await prepareModelFile(model, { fusion });
  const exec = new Executor(p.model, p.types, { keepSessions: false });
  const x = { name: "x", dtype: "float32" as const, dims: [1, 3, 8, 8], data: Float32Array.from({ length: 192 }, (_, i) => ((i * 37) % 101) / 101) };
  const out = new Map<string, Float32Array>();
  for await (const c of runCaptured(exec, p.model.graph.layers.map(() => "fp32"), [x], captureFilter(p.model, { kind: "outputs" }))) out.set(c.tensor.name, c.tensor.data as Float32Array);
  await exec.release();
  return out;
}

describe("fused groups", () => {
  it("inspect: Conv+BN+ReLU is one layer named after the Conv with its nodes; --fusion none gives one layer per node", async () => {
    const j1 = path.join(dir, "inspect-trt.json");
    const j2 = path.join(dir, "inspect-none.json");
    const r1 = await cli("inspect", f("nodes"), "--json", j1);
    const r2 = await cli("inspect", f("nodes"), "--fusion", "none", "--json", j2);
    expect(r1.code).toBe(0);
    expect(r2.code).toBe(0);
    expect(r1.stdout).toContain("fused conv1: conv1 + bn1 + relu1");
    expect(r1.stdout).toMatch(/19 Constant nodes and 1 constant-subgraph node folded/);
    const trt = JSON.parse(fs.readFileSync(j1, "utf8")) as { layers: { name: string; op_type: string; nodes: string[] }[] };
    const none = JSON.parse(fs.readFileSync(j2, "utf8")) as { layers: { name: string; op_type: string; nodes: string[] }[] };
    expect(trt.layers.map((l) => l.name)).toEqual(["conv1", "conv2", "pool", "bn3", "flatten", "fc"]);
    expect(trt.layers[0]!.nodes).toEqual(clean.facts.fusedGroups.conv1);
    expect(trt.layers[1]!.nodes).toEqual(clean.facts.fusedGroups.conv2);
    expect(none.layers.map((l) => l.name)).toEqual(["conv1", "bn1", "relu1", "conv2", "bn2", "add2", "relu2", "pool", "bn3", "flatten", "fc"]);
    expect(none.layers.every((l) => l.nodes.length === 1 && l.op_type !== "Constant")).toBe(true);
  });

  it("compare rows: one per fused group with a nodes field; --fusion none: one per node", async () => {
    const trt = await compareJson(f("nodes"));
    const none = await compareJson(f("nodes"), "--fusion", "none");
    expect(trt.json.layers.map((l) => l.layer)).toEqual(["conv1", "conv2", "pool", "bn3", "flatten", "fc"]);
    expect(trt.json.layers[0]!.nodes).toEqual(["conv1", "bn1", "relu1"]);
    expect(none.json.layers.map((l) => l.layer)).toEqual(["conv1", "bn1", "relu1", "conv2", "bn2", "add2", "relu2", "pool", "bn3", "flatten", "fc"]);
    expect(none.json.passed).toBe(true);
  });

  it("dumps record the fused groups, and compare of two dumps lists the nodes", async () => {
    const d = path.join(dir, "dumps");
    const r = await cli("run", f("nodes"), "--fp32", "--fp16", "--mark-all", "--save-outputs", d);
    expect(r.code).toBe(0);
    const out = path.join(dir, "dumps.json");
    const c = await cli("compare", path.join(d, "fp32.arrow"), path.join(d, "fp16.arrow"), "--json", out);
    expect(c.code).toBe(0);
    const s = JSON.parse(fs.readFileSync(out, "utf8")) as CompareSummary;
    expect(s.layers.find((l) => l.layer === "conv2")!.nodes).toEqual(["conv2", "bn2", "add2", "relu2"]);
  });

  it("the epilogue is rounded once: fp32 MatMul+bias+Relu then one fp16 rounding (fusion none rounds twice)", async () => {
    const e = epilogueOnce();
    const xs = Float32Array.of(3, 5, 7, 6); // integers: every fp32 value below is exact
    const acc = new Float32Array(e.n);
    for (let j = 0; j < e.n; j++) for (let i = 0; i < e.k; i++) acc[j]! += xs[i]! * e.w[i * e.n + j]!;
    const once = roundTo(Float32Array.from(acc, (v, j) => Math.max(0, v + e.bias[j]!)), "fp16", new Float32Array(e.n));
    const twice = roundTo(Float32Array.from(roundTo(acc, "fp16", new Float32Array(e.n)), (v, j) => Math.max(0, v + e.bias[j]!)), "fp16", new Float32Array(e.n));
    expect([...once]).not.toEqual([...twice]);
    const run = async (fusion: "trt" | "none") => {
      const p = await prepareModelFile(f("epilogue"), { fusion });
      const exec = new Executor(p.model, p.types, { keepSessions: false });
      let y: Float32Array | null = null;
      for await (const c of runCaptured(exec, p.model.graph.layers.map(() => "fp16"), [{ name: "x", dtype: "float32", dims: [1, e.k], data: xs }], captureFilter(p.model, { kind: "outputs" }))) {
        y = c.tensor.data as Float32Array;
      }
      await exec.release();
      return { layers: p.model.graph.layers.length, y: [...y!] };
    };
    const trt = await run("trt");
    const none = await run("none");
    expect(trt.layers).toBe(1);
    expect(none.layers).toBe(3);
    expect(trt.y).toEqual([...once]);
    expect(none.y).toEqual([...twice]);
  });

  it("--mark of a tensor inside a fused group says so; --fusion none captures it", async () => {
    const r = await cli("run", f("nodes"), "--fp16", "--mark", "bn1_output_0");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("tensor 'bn1_output_0' is inside the fused layer 'conv1'");
    expect((await cli("run", f("nodes"), "--fp16", "--mark", "bn1_output_0", "--fusion", "none")).code).toBe(0);
  });

  it("a member node name selects its group in plans and --layer-precisions", async () => {
    const p = await prepareModelFile(f("nodes"));
    const ps = resolveEntries([{ pattern: "bn2", precision: "fp32" }, { pattern: "relu*", precision: "bf16" }], p.model.graph.layers, "--layer-precisions");
    expect(p.model.graph.layers.filter((l) => ps[l.index] !== undefined).map((l) => `${l.name}:${ps[l.index]}`)).toEqual(["conv1:bf16", "conv2:fp32"]);
    const r = await cli("compare", f("nodes"), "--fp16", "--layer-precisions", "Constant_1:fp32");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no layer is named 'Constant_1'");
  });

  it("trtexec/Polygraphy flags for a pinned fused group list every node of the group", async () => {
    const p = await prepareModelFile(f("nodes"));
    const entries = expandFusedEntries(p.model.graph.layers, [{ pattern: "conv2", precision: "fp32" }, { pattern: "pool", precision: "fp32" }]);
    expect(trtexecFlags(entries)).toBe(
      "--layerPrecisions=conv2:fp32,bn2:fp32,add2:fp32,relu2:fp32,pool:fp32 --layerOutputTypes=conv2:fp32,bn2:fp32,add2:fp32,relu2:fp32,pool:fp32 --precisionConstraints=obey",
    );
    expect(polygraphyArgs(entries)).toBe("--layer-precisions conv2:float32 bn2:float32 add2:float32 relu2:float32 pool:float32 --precision-constraints obey");
  });

  it("--fusion takes trt or none", async () => {
    const r = await cli("compare", f("nodes"), "--fp16", "--fusion", "fast");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--fusion "fast": use trt');
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("the fusion table names its sources", () => {
    expect(FUSION_PATTERNS.every((p) => p.source.length > 0 && p.epilogue.length > 0)).toBe(true);
  });
});

describe("bisect sees TensorRT's layers", () => {
  const args = (model: string): BisectArgs => ({ model, precision: "fp16", criterion: { kind: "compare", compare: defaultCompareOptions() } });

  it("planted Pow overflow: same answer with Constant nodes and initializers, no Constant pinned", async () => {
    const a = await bisectModel(args(f("pow_nodes")));
    const b = await bisectModel(args(f("pow_inits")));
    expect(a.found).toBe(true);
    expect(a.pinned_layers).toContain("plant/pow");
    expect(a.pinned_layers).toEqual(b.pinned_layers);
    expect(a.trtexec_flags).toBe(b.trtexec_flags);
    expect(JSON.stringify(a)).not.toMatch(/Constant|node_of_/);
  });

  it("an overflowing fused group is pinned whole: the trtexec flags list its nodes", async () => {
    const a = await bisectModel(args(f("act_nodes")));
    const b = await bisectModel(args(f("act_inits")));
    expect(a.found).toBe(true);
    expect(a.pinned_layers).toContain("conv2");
    expect(a.pinned_layers).toEqual(b.pinned_layers);
    expect(a.trtexec_flags).toContain("conv2:fp32,bn2:fp32,add2:fp32,relu2:fp32");
    expect(a.pinned.find((x) => x.name === "conv2")!.nodes).toEqual(["conv2", "bn2", "add2", "relu2"]);
    expect(a.plan!.layers.map((e) => e.pattern)).toContain("conv2");
  });
});

describe("int8 on TensorRT's layers", () => {
  it("calibration sees no constants; fused groups are int8 layers; the BN scale layer falls back with its reason", async () => {
    const b = await calibBuild({ model: f("nodes"), algo: "entropy", output: path.join(dir, "conv_bn.cache"), calibBatches: 2 });
    const text = fs.readFileSync(b.cache, "utf8");
    expect(text).not.toMatch(/Constant|node_of_|bn1\/|\/variance|conv1\/weight/);
    expect(text).toContain("relu1_output_0: ");
    expect(text).not.toContain("conv1_output_0"); // inside the conv1 group
    const s = await compareModel({ model: f("nodes"), candidate: "int8", compare: defaultCompareOptions(), int8: { calibrationCache: b.cache } });
    expect(s.int8!.fallbacks.map((x) => [x.layer, x.reason])).toEqual([["bn3", "op BatchNormalization is not int8-capable"]]);
    const conv2 = s.layers.find((l) => l.layer === "conv2")!;
    expect(conv2.precision).toBe("int8");
    expect(conv2.nodes).toEqual(["conv2", "bn2", "add2", "relu2"]);
    expect(conv2.metrics.rel_l2!).toBeGreaterThan(0);
    expect(conv2.metrics.rel_l2!).toBeLessThan(0.25);
  });
});

describe("BN folds into ConvTranspose (grouped) and Gemm (transB 0/1) give onnxruntime's values", () => {
  it("fused weights match the unfolded model in fp32; a Constant graph output still comes out", async () => {
    const rng = new Rng("bn-fold-kinds");
    const b = new GraphBuilder("bn_kinds");
    const x = b.input("x", "float32", [1, 4, 3, 3]);
    const bnp = (name: string, c: number) =>
      [Float32Array.from({ length: c }, () => 0.5 + rng.next()), rng.normals(c, 0.3), rng.normals(c, 0.5), Float32Array.from({ length: c }, () => 0.2 + 3 * rng.next())].map((d, i) =>
        b.constant(`${name}/p${i}`, "float32", [c], d),
      );
    // ConvTranspose 4 -> 6 channels in 2 groups: weight [4, 3, 2, 2]
    let h = b.node("ConvTranspose", [x, b.initializer("ct/w", "float32", [4, 3, 2, 2], rng.normals(48, 0.5)), b.initializer("ct/b", "float32", [6], rng.normals(6, 0.1))], { name: "ct", attrs: { group: 2, kernel_shape: [2, 2] } });
    h = b.node("BatchNormalization", [h, ...bnp("bn_ct", 6)], { name: "bn_ct", attrs: { epsilon: b.f(1e-3) } });
    h = b.node("Flatten", [h], { name: "flat", attrs: { axis: 1 } }); // [1, 96]
    let g = b.node("Gemm", [h, b.initializer("g0/w", "float32", [96, 5], rng.normals(480, 0.1))], { name: "g0" });
    g = b.node("BatchNormalization", [g, ...bnp("bn_g0", 5)], { name: "bn_g0" });
    g = b.node("Gemm", [g, b.initializer("g1/w", "float32", [7, 5], rng.normals(35, 0.3)), b.initializer("g1/b", "float32", [7], rng.normals(7, 0.1))], { name: "g1", attrs: { transB: 1 } });
    g = b.node("BatchNormalization", [g, ...bnp("bn_g1", 7)], { name: "bn_g1" });
    b.output(g, "float32", [1, 7]);
    b.output(b.constant("const_out", "float32", [2], [1.5, -2], "const_node"), "float32", [2]);
    const model = b.model({ opset: 13 });
    const file = f("bn_kinds");
    saveModel(model, file);
    const xv = Float32Array.from({ length: 36 }, (_, i) => Math.sin(i));
    const s = await createSession(toBinary(ModelProtoSchema, model), "raw");
    const raw = await runSession(s, { x: toOrt({ name: "x", dtype: "float32", dims: [1, 4, 3, 3], data: xv }) }, [g, "const_out"], "raw");
    const want = fromOrt(g, raw[g]!).data as Float32Array;
    await s.release();
    const p = await prepareModelFile(file);
    expect(p.model.layerModel!.batchNorms).toEqual([{ bn: "bn_ct", into: "ct" }, { bn: "bn_g0", into: "g0" }, { bn: "bn_g1", into: "g1" }]);
    const exec = new Executor(p.model, p.types, { keepSessions: false });
    const got = new Map<string, Float32Array>();
    for await (const c of runCaptured(exec, p.model.graph.layers.map(() => "fp32"), [{ name: "x", dtype: "float32", dims: [1, 4, 3, 3], data: xv }], captureFilter(p.model, { kind: "outputs" }))) {
      got.set(c.tensor.name, c.tensor.data as Float32Array);
    }
    await exec.release();
    const y = got.get(g)!;
    for (let i = 0; i < want.length; i++) expect(Math.abs(y[i]! - want[i]!)).toBeLessThan(1e-4 * (1 + Math.abs(want[i]!)));
    expect([...got.get("const_out")!]).toEqual([1.5, -2]);
  });
});

describe("Constant tensors in every encoding", () => {
  it("a Constant whose tensor uses float_data (not raw_data) folds and runs in fp16", async () => {
    const b = new GraphBuilder("float_data_const");
    const x = b.input("x", "float32", [3]);
    const t = create(TensorProtoSchema, { name: "", dims: [3n], dataType: TensorProto_DataType.FLOAT, floatData: [1, 2, 70000] });
    b.addNode(create(NodeProtoSchema, { opType: "Constant", output: ["c"], attribute: [create(AttributeProtoSchema, { name: "value", type: AttributeProto_AttributeType.TENSOR, t })] }));
    b.output(b.node("Mul", [x, "c"], { name: "mul", outputs: ["y"] }), "float32", [3]);
    const file = f("float_data_const");
    saveModel(b.model({ opset: 13 }), file);
    const p = await prepareModelFile(file);
    expect(p.model.graph.layers.map((l) => l.name)).toEqual(["mul"]);
    const j = path.join(dir, "float_data_const.json");
    const r = await cli("compare", file, "--fp16", "--json", j);
    // 70000 is a weight of the fp16 layer: rounded to fp16 it is inf, and so is y[2]
    expect(r.code).toBe(1);
    const s = JSON.parse(fs.readFileSync(j, "utf8")) as CompareSummary;
    expect(s.first_failing_layer).toBe("mul");
    expect(s.layers[0]!.metrics.new_nonfinite).toBe(1);
  });
});
