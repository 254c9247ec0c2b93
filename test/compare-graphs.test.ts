/**
 * `compare REFERENCE.onnx CANDIDATE.onnx` (issue 11, deliverable 3): two graphs on the same
 * inputs, tensors matched by name and through Casts/Q/DQ, the unmatched listed, the planted
 * layer named; a bisect --save-onnx output passes against its fp32 model.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { matmulConsumer } from "../scripts/models/matmul-consumer.js";
import { Rng } from "../scripts/models/common.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";
import { qdqScales } from "../src/calibration/qdq-scales.js";
import { tensorProtoToHost } from "../src/onnx/tensor.js";

let dir: string;
let mm: string;
const f = (n: string) => path.join(dir, n);

/** fc1 (MatMul) -> act (Relu) -> fc2 (MatMul) -> y; with `qdq`, Q/DQ on x (scale sx) and on act's output (scale sa). */
function mlp(qdq: { sx: number; sa: number } | null, extra = false) {
  const rng = new Rng("compare-graphs/mlp");
  const w1 = Float32Array.from({ length: 16 * 16 }, () => rng.uniform(-0.5, 0.5));
  const w2 = Float32Array.from({ length: 16 * 8 }, () => rng.uniform(-0.5, 0.5));
  const b = new GraphBuilder(qdq ? "mlp_qdq" : "mlp");
  let x = b.input("x", "float32", [4, 16]);
  const qd = (t: string, s: number, name: string) => {
    const sc = b.initializer(`${name}_scale`, "float32", [], Float32Array.of(s));
    const zp = b.initializer(`${name}_zp`, "int8", [], Int8Array.of(0));
    const q = b.node("QuantizeLinear", [t, sc, zp], { name: `${name}_q` });
    return b.node("DequantizeLinear", [q, sc, zp], { name: `${name}_dq` });
  };
  if (qdq) x = qd(x, qdq.sx, "x");
  const h = b.node("MatMul", [x, b.initializer("w1", "float32", [16, 16], w1)], { name: "fc1" });
  let a = b.node("Relu", [h], { name: "act" });
  if (extra) a = b.node("Mul", [a, b.initializer("one", "float32", [], Float32Array.of(1))], { name: "extra" });
  if (qdq) a = qd(a, qdq.sa, "act");
  b.output(b.node("MatMul", [a, b.initializer("w2", "float32", [16, 8], w2)], { name: "fc2", outputs: ["y"] }), "float32", [4, 8]);
  return b.model({ opset: 13 });
}

/**
 * mlp's weights as a quantizer writes them: w1 an int8 initializer with a per-column
 * DequantizeLinear (w1_dq), w2 a float64 initializer Cast to float32 (w2_cast).
 */
function mlpWeightQdq() {
  const rng = new Rng("compare-graphs/mlp");
  const w1 = Float32Array.from({ length: 16 * 16 }, () => rng.uniform(-0.5, 0.5));
  const w2 = Float32Array.from({ length: 16 * 8 }, () => rng.uniform(-0.5, 0.5));
  const s1 = Float32Array.from({ length: 16 }, (_, c) => Math.max(...Array.from({ length: 16 }, (_, r) => Math.abs(w1[r * 16 + c]!))) / 127);
  const q1 = Int8Array.from(w1, (v, i) => Math.round(v / s1[i % 16]!));
  const b = new GraphBuilder("mlp_wqdq");
  const x = b.input("x", "float32", [4, 16]);
  const w1dq = b.node("DequantizeLinear", [b.initializer("w1_q", "int8", [16, 16], q1), b.initializer("w1_scale", "float32", [16], s1), b.initializer("w1_zp", "int8", [16], new Int8Array(16))], { name: "w1_dq", outputs: ["w1_dq_out"], attrs: { axis: 1 } });
  const h = b.node("MatMul", [x, w1dq], { name: "fc1" });
  const a = b.node("Relu", [h], { name: "act" });
  const w2c = b.node("Cast", [b.initializer("w2_f64", "float64", [16, 8], Float64Array.from(w2))], { name: "w2_cast", outputs: ["w2_cast_out"], attrs: { to: 1 } });
  b.output(b.node("MatMul", [a, w2c], { name: "fc2", outputs: ["y"] }), "float32", [4, 8]);
  return b.model({ opset: 13 });
}

beforeAll(() => {
  dir = tmpDir("trtdbg-compare-graphs-");
  mm = f("matmul_consumer.onnx");
  saveModel(matmulConsumer().model, mm);
  saveModel(mlp(null), f("mlp.onnx"));
  saveModel(mlp({ sx: 1 / 127, sa: 0.05 }), f("mlp.qdq.onnx"));
  saveModel(mlp({ sx: 1 / 127, sa: 0.0005 }), f("mlp.badscale.onnx"));
  saveModel(mlp(null, true), f("mlp.extra.onnx"));
  saveModel(mlpWeightQdq(), f("mlp.wqdq.onnx"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("compare REFERENCE.onnx CANDIDATE.onnx", () => {
  it("an all-fp16 typed candidate fails at the planted layer; Casts followed, input casts not compared", async () => {
    expect((await cli("convert", mm, "--fp16", "-o", f("all16.onnx"), "-q")).code).toBe(0);
    const r = await cli("compare", mm, f("all16.onnx"), "--json", f("c.json"));
    expect(r.code).toBe(1);
    const j = JSON.parse(fs.readFileSync(f("c.json"), "utf8"));
    expect(j.first_failing_layer).toBe("mm_big");
    expect(j.candidate_kind).toBe("typed");
    // the graph output is computed as head/add_output_0__fp16 and cast to its name: followed forward
    expect(j.renamed).toEqual([{ candidate: "head/add_output_0__fp16", reference: "head/add_output_0", via: "Cast to head/add_output_0" }]);
    expect(j.unmatched).toEqual({ reference: [], candidate: [] });
    expect(r.stdout).toContain("not compared (casts or Q/DQ of graph inputs): x__to_fp16");
  });

  it("bisect --save-onnx output passes compare REF OUT", async () => {
    expect((await cli("bisect", mm, "--fp16", "--no-checkpoint", "-q", "--save-onnx", f("mm.plan.onnx"))).code).toBe(0);
    const r = await cli("compare", mm, f("mm.plan.onnx"));
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n").at(-1)).toBe("PASSED");
  });

  it("a Q/DQ candidate: good scales pass, a planted bad activation scale names the layer that reads it", async () => {
    const good = await cli("compare", f("mlp.onnx"), f("mlp.qdq.onnx"), "--json", f("q.json"));
    const jg = JSON.parse(fs.readFileSync(f("q.json"), "utf8"));
    expect(jg.candidate_kind).toBe("qdq");
    expect(good.code).toBe(0);
    const bad = await cli("compare", f("mlp.onnx"), f("mlp.badscale.onnx"), "--json", f("b.json"));
    expect(bad.code).toBe(1);
    const jb = JSON.parse(fs.readFileSync(f("b.json"), "utf8"));
    expect(jb.first_failing_layer).toBe("fc2");
    // the DequantizeLinear outputs are aliases of matched tensors, not unmatched
    expect(jb.unmatched.candidate).toEqual([]);
  });

  it("weight Q/DQ and constant Casts are weights: counted in one note, not listed as unmatched", async () => {
    const r = await cli("compare", f("mlp.onnx"), f("mlp.wqdq.onnx"), "--json", f("w.json"));
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(fs.readFileSync(f("w.json"), "utf8"));
    expect(j.candidate_kind).toBe("qdq");
    expect(j.unmatched).toEqual({ reference: [], candidate: [] });
    // the constant Cast is folded at load (an initializer, no layer); the weight's DequantizeLinear is a layer of its own
    expect(j.weight_tensors).toEqual({ reference: [], candidate: ["w1_dq_out"] });
    expect(j.layers.map((l: { layer: string }) => l.layer)).toEqual(["fc1", "fc2"]); // act fused into fc1
    expect(r.stdout).toContain("note: 1 weight Q/DQ tensor not compared: weights (computed from initializers only; TensorRT folds them into the layers reading them; every name in the JSON's weight_tensors)");
    expect(r.stdout).not.toContain("unmatched");
    // convert --int8 writes int8 weights with a DequantizeLinear each: all of them counted as weight Q/DQ
    expect((await cli("convert", f("mlp.onnx"), "--int8", "--calib-batches", "2", "-o", f("mlp.int8.onnx"), "--json", f("ci.json"), "-q")).code).toBe(0);
    const nw = JSON.parse(fs.readFileSync(f("ci.json"), "utf8")).int8_weights.length as number;
    expect(nw).toBe(2);
    const c = await cli("compare", f("mlp.onnx"), f("mlp.int8.onnx"), "--json", f("ci2.json"));
    const jc = JSON.parse(fs.readFileSync(f("ci2.json"), "utf8"));
    expect(jc.unmatched.candidate).toEqual([]);
    expect(jc.weight_tensors.candidate).toHaveLength(nw);
    expect(c.stdout).toContain(`note: ${nw} weight Q/DQ tensors not compared: weights`);
  });

  it("tensors without a counterpart are listed", async () => {
    const r = await cli("compare", f("mlp.onnx"), f("mlp.extra.onnx"), "--json", f("e.json"));
    const j = JSON.parse(fs.readFileSync(f("e.json"), "utf8"));
    expect(j.unmatched.candidate).toEqual(["extra_output_0"]);
    expect(r.stdout).toContain("unmatched, candidate only (1): extra_output_0");
  });

  it("user errors: precision flags, different inputs, a typed reference", async () => {
    expectUserError(await cli("compare", mm, f("all16.onnx"), "--fp16"), "precision flags");
    expectUserError(await cli("compare", f("mlp.onnx"), mm), "input 'x' has shape");
    expectUserError(await cli("compare", f("all16.onnx"), mm), "the reference is strongly typed");
  });
});

describe("bisect REFERENCE.onnx --candidate CANDIDATE.onnx", () => {
  it("starts from the candidate's types: its fp32 layer stays, the search adds the other culprit; the output passes compare", async () => {
    expect((await cli("convert", mm, "--fp16", "--layer-precisions", "mm_big:fp32", "-o", f("half.onnx"), "-q")).code).toBe(0);
    // the candidate as it is fails at scale_after (it reads mm_big's fp32 output rounded to fp16)
    const c0 = await cli("compare", mm, f("half.onnx"), "--json", f("h.json"));
    expect(c0.code).toBe(1);
    expect(JSON.parse(fs.readFileSync(f("h.json"), "utf8")).first_failing_layer).toBe("scale_after");
    const r = await cli("bisect", mm, "--candidate", f("half.onnx"), "--no-checkpoint", "--save-onnx", f("fixed.onnx"), "--json", f("bc.json"));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`candidate ${f("half.onnx")} (fp16, 1 layer(s) not in fp16 to start with)`);
    const j = JSON.parse(fs.readFileSync(f("bc.json"), "utf8"));
    expect(j.pinned_layers).toEqual(["scale_after"]);
    expect(j.plan_entries).toEqual([
      { pattern: "mm_big", precision: "fp32" },
      { pattern: "scale_after", precision: "fp32" },
    ]);
    expect(j.saved_onnx.fp32_layers).toEqual(["mm_big", "scale_after"]);
    expect((await cli("compare", mm, f("fixed.onnx"))).code).toBe(0);
  });

  it("user errors: an fp32 candidate, --candidate with --fp16", async () => {
    expectUserError(await cli("bisect", mm, "--candidate", mm, "--no-checkpoint"), "neither strongly typed (float16/bfloat16 tensors) nor explicitly quantized (Q/DQ); convert one with trt-debug convert --fp16 or --int8");
    expectUserError(await cli("bisect", mm, "--candidate", f("half.onnx"), "--fp16", "--no-checkpoint"), "--candidate and --fp16");
  });
});

describe("calib check QDQ.onnx (scales from the Q nodes)", () => {
  it("flags a planted bad activation scale (clipping) and not the good ones", async () => {
    const good = await cli("calib", "check", f("mlp.qdq.onnx"), "--calib-batches", "4", "--json", f("cg.json"), "-q");
    const jg = JSON.parse(fs.readFileSync(f("cg.json"), "utf8"));
    expect(jg.qdq).toEqual({ activations: 2, weights: 0, type: "int8" });
    expect(jg.cache).toEqual({ path: f("mlp.qdq.onnx"), source: "qdq", trt_version: "QDQ", algorithm: "QDQ", tensors: 2 });
    expect(good.stdout).toContain(`  cache: ${f("mlp.qdq.onnx")}: scales read from the Q/DQ model's QuantizeLinear nodes, 2 tensors\n`);
    expect(good.stdout).not.toContain("JSON sidecar");
    const bad = await cli("calib", "check", f("mlp.badscale.onnx"), "--calib-batches", "4", "--json", f("cb.json"), "-q");
    expect(bad.code).toBe(1);
    const jb = JSON.parse(fs.readFileSync(f("cb.json"), "utf8"));
    expect(jb.model).toBe(f("mlp.badscale.onnx"));
    const flagged = (j: { tensors: { tensor: string; flags: { code: string }[] }[] }, code: string) => j.tensors.filter((t) => t.flags.some((x) => x.code === code)).map((t) => t.tensor);
    expect(flagged(jb, "clipping")).toEqual(["act_output_0"]);
    expect(flagged(jg, "clipping")).toEqual([]);
    expect(good.code === 0 || flagged(jg, "clipping").length === 0).toBe(true);
  });

  it("a model without Q/DQ still needs a cache", async () => {
    expectUserError(await cli("calib", "check", f("mlp.onnx"), "--calib-batches", "2"), "--calibration-cache");
  });
});

describe("qdqScales: the Q/DQ-free model and its scales", () => {
  it("activation scales by tensor; an int8 weight dequantized per output channel exactly; consumers rewired", () => {
    const b = new GraphBuilder("w_qdq");
    const x = b.input("x", "float32", [2, 4]);
    const sx = b.initializer("sx", "float32", [], Float32Array.of(0.01));
    const z = b.initializer("z", "int8", [], Int8Array.of(0));
    const xq = b.node("QuantizeLinear", [x, sx, z], { name: "xq" });
    const xdq = b.node("DequantizeLinear", [xq, sx, z], { name: "xdq" });
    const wq = b.initializer("wq", "int8", [4, 3], Int8Array.from([1, -2, 3, 127, -128, 0, 5, 6, -7, 8, 9, 10]));
    const ws = b.initializer("ws", "float32", [3], Float32Array.of(0.5, 0.25, 0.125));
    const wz = b.initializer("wz", "int8", [3], Int8Array.of(0, 0, 0));
    const w = b.node("DequantizeLinear", [wq, ws, wz], { name: "wdq", attrs: { axis: 1 } });
    b.output(b.node("MatMul", [xdq, w], { name: "mm", outputs: ["y"] }), "float32", [2, 3]);
    const r = qdqScales(b.model({ opset: 13 }), "w.onnx");
    expect([...r.cache.scales]).toEqual([["x", Math.fround(0.01)]]);
    expect(r.weights).toBe(1);
    const g = r.proto.graph!;
    expect(g.node.map((n) => `${n.opType}(${n.input.join(",")})`)).toEqual([`MatMul(x,${w})`]);
    const wt = tensorProtoToHost(g.initializer.find((t) => t.name === w)!);
    const s3 = [0.5, 0.25, 0.125];
    expect(Array.from(wt.data as Float32Array)).toEqual([1, -2, 3, 127, -128, 0, 5, 6, -7, 8, 9, 10].map((q, i) => q * s3[i % 3]!));
  });
});
