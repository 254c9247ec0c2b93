/**
 * `bisect REFERENCE.onnx --candidate QDQ.onnx` (issue 11, brief h11 item 2): the search starts from
 * a Q/DQ candidate's own quantization (layers fed by DequantizeLinear in int8 with the scales of
 * its QuantizeLinear nodes, the others pinned fp32); pinning a layer removes its Q/DQ. A candidate
 * with one planted over-clipping scale (the Q of relu1's output, read by conv2) is searched: conv2
 * is found by name, and `--save-onnx` writes a Q/DQ model that passes `compare REF OUT`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveModel } from "./support/graph-builder.js";
import { loadModel } from "../src/onnx/model.js";
import { hostToTensorProto, tensorProtoToHost } from "../src/onnx/tensor.js";
import { compareAndBisectCandidate, plantQdqScale, qdqConvNet } from "./int8-fixtures.js";
import type { BisectResult } from "../src/workflows/bisect.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

let dir: string;
const f = (n: string) => path.join(dir, n);


let r: { code: number; stdout: string; stderr: string };
beforeAll(async () => {
  dir = tmpDir("trtdbg-bisect-cand-qdq-");
  saveModel(qdqConvNet("bisect-candidate-qdq/net"), f("net.onnx"));
  expect((await cli("calib", "build", f("net.onnx"), "-o", f("net.cache"), "--calib-batches", "4", "--algo", "minmax", "-q", "--fusion", "none")).code).toBe(0);
  expect((await cli("convert", f("net.onnx"), "--int8", "--calibration-cache", f("net.cache"), "--fusion", "none", "-o", f("good.qdq.onnx"), "-q")).code).toBe(0);
  // plant: relu1's output quantized with 1/64 of its range (the Q and its DQ share the scale initializer)
  plantQdqScale(f("good.qdq.onnx"), "relu1_output_0", 1 / 64, f("bad.qdq.onnx"));
  r = await cli("bisect", f("net.onnx"), "--candidate", f("bad.qdq.onnx"), "--fusion", "none", "--save-onnx", f("out.qdq.onnx"), "-o", f("plan.json"), "--json", f("b.json"), "--no-checkpoint");
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("bisect REF --candidate QDQ.onnx", () => {
  it("the planted candidate fails compare REF CAND (the good one passes)", async () => {
    expect((await cli("compare", f("net.onnx"), f("good.qdq.onnx"), "--fusion", "none", "-q")).code).toBe(0);
    expect((await cli("compare", f("net.onnx"), f("bad.qdq.onnx"), "--fusion", "none", "-q")).code).toBe(1);
  });

  it("starts from the candidate's quantization and finds the layer reading the over-clipped tensor by name", () => {
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain(`candidate ${f("bad.qdq.onnx")} (int8, 0 layer(s) not in int8 to start with)`);
    const res = JSON.parse(fs.readFileSync(f("b.json"), "utf8")) as BisectResult;
    expect(res.pinned_layers).toEqual(["conv2"]);
    expect(res.int8!.int8_layers).toBe(6);
    expect(res.int8!.fallbacks).toEqual([]);
  });

  it("the search's starting point (nothing pinned) computes the candidate's numbers: its metric is compare REF CAND's", async () => {
    await cli("compare", f("net.onnx"), f("bad.qdq.onnx"), "--fusion", "none", "--json", f("cb.json"), "-q");
    const c = JSON.parse(fs.readFileSync(f("cb.json"), "utf8")) as { layers: { is_graph_output: boolean; metrics: { rel_l2: number } }[] };
    const res = JSON.parse(fs.readFileSync(f("b.json"), "utf8")) as BisectResult;
    const base = res.iterations.find((i) => i.phase === "baseline")!;
    expect(base.passed).toBe(false);
    // up to float32 summation order of MatMul/Conv with a DequantizeLinear weight (docs/int8.md)
    expect(base.metric!).toBeCloseTo(c.layers.find((l) => l.is_graph_output)!.metrics.rel_l2, 5);
  });

  it("--save-onnx writes the final Q/DQ model: conv2 without Q/DQ, the others as the candidate; compare REF OUT passes", async () => {
    const res = JSON.parse(fs.readFileSync(f("b.json"), "utf8")) as BisectResult;
    expect(res.saved_qdq!.fp32_layers).toEqual(["conv2"]);
    expect(res.saved_qdq!.compare!.passed).toBe(true);
    const g = loadModel(f("out.qdq.onnx")).proto.graph!;
    const dqOut = new Set(g.node.filter((n) => n.opType === "DequantizeLinear").flatMap((n) => n.output));
    const conv2 = g.node.find((n) => n.name === "conv2")!;
    expect(conv2.input.filter((t) => dqOut.has(t))).toEqual([]);
    // the other quantized tensors keep the candidate's scales
    const scale = (file: string, t: string) => {
      const gg = loadModel(file).proto.graph!;
      const q = gg.node.find((n) => n.opType === "QuantizeLinear" && n.input[0] === t);
      return q ? (tensorProtoToHost(gg.initializer.find((i) => i.name === q.input[1])!).data[0] as number) : null;
    };
    for (const t of ["x", "conv1_output_0", "conv2_output_0", "relu2_output_0", "flat_output_0"]) expect([t, scale(f("out.qdq.onnx"), t)]).toEqual([t, scale(f("bad.qdq.onnx"), t)]);
    expect(scale(f("out.qdq.onnx"), "relu1_output_0")).toBeNull();
    const c = await cli("compare", f("net.onnx"), f("out.qdq.onnx"), "--fusion", "none", "-q");
    expect(c.code, c.stderr + c.stdout).toBe(0);
  });

  it("a strongly typed Q/DQ candidate (convert --int8 --fp16): its fp16 layers start in fp16 and stay so in the saved model", async () => {
    expect((await cli("convert", f("net.onnx"), "--int8", "--fp16", "--calibration-cache", f("net.cache"), "--layer-precisions", "relu2:fp16", "--fusion", "none", "-o", f("t.qdq.onnx"), "-q")).code).toBe(0);
    plantQdqScale(f("t.qdq.onnx"), "relu1_output_0", 1 / 64, f("tbad.qdq.onnx"));
    const b = await cli("bisect", f("net.onnx"), "--candidate", f("tbad.qdq.onnx"), "--fusion", "none", "--save-onnx", f("tout.qdq.onnx"), "--json", f("tb.json"), "--no-checkpoint");
    expect(b.code, b.stderr + b.stdout).toBe(0);
    expect(b.stdout).toContain(`candidate ${f("tbad.qdq.onnx")} (int8, 1 layer(s) not in int8 to start with)`);
    const res = JSON.parse(fs.readFileSync(f("tb.json"), "utf8")) as BisectResult;
    expect(res.pinned_layers).toEqual(["conv2"]);
    expect(res.saved_qdq!.reduced_layers).toEqual(["relu2"]);
    expect(res.saved_qdq!.fp32_layers).toEqual(["conv2"]);
    expect((await cli("compare", f("net.onnx"), f("tout.qdq.onnx"), "--fusion", "none", "-q")).code).toBe(0);
  });

  it("reads the candidate's weight scales: a planted too-small per-channel weight scale of conv2 (weights clipped) is found by name", async () => {
    // w2 re-quantized with 1/16 of its per-channel scales: q = clamp(round(w/s), -127, 127), stored with the new scales
    const m = loadModel(f("good.qdq.onnx"));
    const g = m.proto.graph!;
    const dq = g.node.find((n) => n.opType === "DequantizeLinear" && n.output[0] === g.node.find((c) => c.name === "conv2")!.input[1])!;
    const w = tensorProtoToHost(loadModel(f("net.onnx")).proto.graph!.initializer.find((t) => t.name === "w2")!).data as Float32Array;
    const si = g.initializer.findIndex((t) => t.name === dq.input[1]);
    const s = Float32Array.from(tensorProtoToHost(g.initializer[si]!).data as Float32Array, (v) => Math.fround(v / 16));
    const per = w.length / s.length;
    const q = Int8Array.from(w, (v, i) => Math.max(-127, Math.min(127, Math.round(v / s[Math.floor(i / per)]!))));
    g.initializer[si] = hostToTensorProto({ name: dq.input[1]!, dtype: "float32", dims: [s.length], data: s });
    const qi = g.initializer.findIndex((t) => t.name === dq.input[0]);
    g.initializer[qi] = hostToTensorProto({ name: dq.input[0]!, dtype: "int8", dims: [4, 4, 3, 3], data: q });
    saveModel(m.proto, f("badw.qdq.onnx"));
    const r = await compareAndBisectCandidate(f("net.onnx"), f("badw.qdq.onnx"), (n) => f(`w-${n}`));
    expect(r.compareCode).toBe(1);
    expect(r.bisectCode, r.bisectOutput).toBe(0);
    expect(r.pinned).toEqual(["conv2"]);
    // the starting point computes the candidate's clipped weights: its metric is compare REF CAND's
    expect(r.baseline.passed).toBe(false);
    expect(r.baseline.metric).toBeCloseTo(r.compareRelL2, 5);
  });

  it("refuses a cache with a Q/DQ candidate and a Q/DQ reference with one line", async () => {
    expectUserError(await cli("bisect", f("net.onnx"), "--candidate", f("bad.qdq.onnx"), "--calibration-cache", f("net.cache"), "--no-checkpoint"), "--calibration-cache");
    expectUserError(await cli("bisect", f("bad.qdq.onnx"), "--candidate", f("good.qdq.onnx"), "--no-checkpoint"), "QuantizeLinear/DequantizeLinear");
  });
});
