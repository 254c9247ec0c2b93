/**
 * `convert MODEL --int8 --calibration-cache C -o OUT.onnx` (issue 11, deliverable 4): a small
 * conv/matmul net calibrated, converted to Q/DQ, run by onnxruntime; its numbers equal the int8
 * emulation's (compare REF OUT = compare MODEL --int8, metric for metric); weights int8 with
 * per-channel scales; the pinned layer has no Q/DQ; calib check reads the cache's scales back.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import ort from "onnxruntime-node";
import { saveModel } from "./support/graph-builder.js";
import { qdqConvNet } from "./int8-fixtures.js";
import { loadModel } from "../src/onnx/model.js";
import { readCalibrationCache } from "../src/calibration/cache.js";
import { tensorProtoToHost } from "../src/onnx/tensor.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

let dir: string;
const f = (n: string) => path.join(dir, n);


let conv: { code: number; stdout: string; stderr: string };
beforeAll(async () => {
  dir = tmpDir("trtdbg-convert-int8-");
  saveModel(qdqConvNet("convert-int8/net"), f("net.onnx"));
  const cb = await cli("calib", "build", f("net.onnx"), "-o", f("net.cache"), "--calib-batches", "4", "--algo", "minmax", "-q", "--fusion", "none");
  expect(cb.stderr).not.toContain("error");
  expect(cb.code).toBe(0);
  conv = await cli("convert", f("net.onnx"), "--int8", "--calibration-cache", f("net.cache"), "--layer-precisions", "conv2:fp32", "--fusion", "none", "-o", f("net.qdq.onnx"), "--json", f("conv.json"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("convert --int8", () => {
  it("writes a Q/DQ model that onnxruntime loads and runs", async () => {
    expect(conv.stderr).toBe("");
    expect(conv.code).toBe(0);
    expect(conv.stdout.split("\n").at(-1)).toBe(`converted 5/6 layers to int8 (Q/DQ): 5 activation Q/DQ pairs, 2 int8 per-channel weights; wrote ${f("net.qdq.onnx")}`);
    const s = await ort.InferenceSession.create(f("net.qdq.onnx"));
    const out = await s.run({ x: new ort.Tensor("float32", new Float32Array(192).fill(0.25), [1, 3, 8, 8]) });
    expect(out.y!.dims).toEqual([1, 10]);
  });

  it("weights are int8 initializers with per-output-channel scales read by DequantizeLinear(axis); conv2 (pinned) keeps its fp32 weight and has no Q/DQ", () => {
    const m = loadModel(f("net.qdq.onnx"));
    const g = m.proto.graph!;
    const init = (n: string) => g.initializer.find((t) => t.name === n);
    const byName = new Map(g.node.map((n) => [n.name, n]));
    for (const [w, axis, ch] of [["w1", 0, 4], ["wfc", 1, 10]] as const) {
      const q = tensorProtoToHost(init(`${w}::int8`)!);
      expect(q.dtype).toBe("int8");
      const sc = tensorProtoToHost(init(`${w}::scale`)!);
      expect(sc.dims).toEqual([ch]);
      const dq = byName.get(`${w}::dequantize`)!;
      expect(dq.opType).toBe("DequantizeLinear");
      expect(Number(dq.attribute.find((a) => a.name === "axis")!.i)).toBe(axis);
      // s_c = max|w_c| / 127, and some value of every channel reaches ±127
      expect(Math.max(...Array.from(q.data as Int8Array, Math.abs))).toBe(127);
    }
    expect(init("w2")).toBeDefined();
    expect(init("w2::int8")).toBeUndefined();
    const conv2 = g.node.find((n) => n.name === "conv2")!;
    const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
    for (const t of conv2.input) expect(producer.get(t)?.opType ?? "initializer").not.toBe("DequantizeLinear");
    const j = JSON.parse(fs.readFileSync(f("conv.json"), "utf8"));
    expect(j.precisions.find((p: { layer: string }) => p.layer === "conv2").precision).toBe("fp32");
    expect(j.int8_weights.map((w: { tensor: string }) => w.tensor).sort()).toEqual(["w1", "wfc"]);
  });

  it("compare REF OUT gives the int8 emulation's numbers (compare MODEL --int8) up to float32 summation order", async () => {
    await cli("compare", f("net.onnx"), f("net.qdq.onnx"), "--json", f("g.json"));
    await cli("compare", f("net.onnx"), "--int8", "--calibration-cache", f("net.cache"), "--layer-precisions", "conv2:fp32", "--fusion", "none", "--json", f("e.json"));
    type Row = { tensor: string; precision: string; is_graph_output: boolean; metrics: Record<string, number | null> };
    const g: { layers: Row[] } = JSON.parse(fs.readFileSync(f("g.json"), "utf8"));
    const e: { layers: Row[] } = JSON.parse(fs.readFileSync(f("e.json"), "utf8"));
    const row = (j: { layers: Row[] }, t: string) => j.layers.find((l) => l.tensor === t);
    expect(e.layers.filter((l) => l.is_graph_output).map((l) => l.tensor)).toEqual(["y"]);
    // docs/int8.md "convert --int8": a weight read through DequantizeLinear is not prepacked by
    // onnxruntime, so a MatMul/Conv sums in another order than the emulation's (constant weight):
    // the same numbers up to float32 rounding of the sums.
    let shared = 0;
    for (const l of e.layers) {
      const o = row(g, l.tensor);
      if (!o) continue;
      shared++;
      const scale = l.metrics.ref_abs_max!;
      for (const k of ["max_abs", "mean_abs", "cand_abs_max"]) expect([l.tensor, k, Math.abs(o.metrics[k]! - l.metrics[k]!) <= 1e-5 * scale]).toEqual([l.tensor, k, true]);
      expect(Math.abs(o.metrics.cosine! - l.metrics.cosine!)).toBeLessThan(1e-7);
    }
    expect(shared).toBeGreaterThanOrEqual(4);
    expect(row(g, "y")!.metrics.max_abs).toBeGreaterThan(1e-3); // the int8 error is really there
  });

  it("calib check OUT.onnx reads the cache's activation scales back", async () => {
    const r = await cli("calib", "check", f("net.qdq.onnx"), "--calib-batches", "2", "--json", f("cc.json"), "-q");
    expect(r.code).toBeLessThan(2);
    const j = JSON.parse(fs.readFileSync(f("cc.json"), "utf8"));
    const cache = await readCalibrationCache(f("net.cache"));
    const rows: { tensor: string; cache_scale: number | null }[] = j.tensors;
    const withQ = rows.filter((t) => t.cache_scale !== null);
    expect(withQ.length).toBeGreaterThanOrEqual(3);
    for (const t of withQ) expect([t.tensor, t.cache_scale]).toEqual([t.tensor, cache.scales.get(t.tensor)]);
    // conv2 is pinned to fp32: the tensor it reads carries no Q/DQ
    expect(rows.find((t) => t.tensor === "relu1_output_0")?.cache_scale ?? null).toBeNull();
  });

  it("--calib-batches/--calib-data calibrate first with calib build's machinery: the same cache and the same model as from the cache", async () => {
    const r = await cli("convert", f("net.onnx"), "--int8", "--calib-batches", "4", "--algo", "minmax", "--layer-precisions", "conv2:fp32", "--fusion", "none", "-o", f("net.cal.onnx"));
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`wrote ${f("net.cal.onnx.cache")} and ${f("net.cal.onnx.cache.json")}`);
    expect(fs.readFileSync(f("net.cal.onnx.cache"), "utf8")).toBe(fs.readFileSync(f("net.cache"), "utf8"));
    expect(Buffer.compare(fs.readFileSync(f("net.cal.onnx")), fs.readFileSync(f("net.qdq.onnx")))).toBe(0);
  });

  it("with TensorRT's fusions (--fusion trt, the default) the fused groups get Q/DQ on their external inputs only", async () => {
    const r = await cli("convert", f("net.onnx"), "--int8", "--calibration-cache", f("net.cache"), "-o", f("net.trt.onnx"), "--json", f("trt.json"));
    expect(r.code).toBe(0);
    const j = JSON.parse(fs.readFileSync(f("trt.json"), "utf8"));
    expect(j.precisions.map((p: { layer: string; precision: string }) => `${p.layer}:${p.precision}`)).toEqual(["conv1:int8", "conv2:int8", "flat:int8", "fc:int8"]);
    const g = loadModel(f("net.trt.onnx")).proto.graph!;
    // conv1+relu1 fused: relu1 reads conv1's output directly, no Q/DQ between them
    const relu1 = g.node.find((n) => n.name === "relu1")!;
    expect(g.node.find((n) => n.output.includes(relu1.input[0]!))!.name).toBe("conv1");
    await cli("compare", f("net.onnx"), f("net.trt.onnx"), "--json", f("gt.json"));
    await cli("compare", f("net.onnx"), "--int8", "--calibration-cache", f("net.cache"), "--json", f("et.json"));
    const y = (file: string) => JSON.parse(fs.readFileSync(file, "utf8")).layers.find((l: { tensor: string }) => l.tensor === "y").metrics;
    expect(Math.abs(y(f("gt.json")).max_abs - y(f("et.json")).max_abs)).toBeLessThanOrEqual(1e-5 * y(f("et.json")).ref_abs_max);
  });

  it("refuses --int8 with --fp8, a cache and calibration together, --algo without calibration, and a missing cache with one line", async () => {
    expectUserError(await cli("convert", f("net.onnx"), "--int8", "--fp8", "-o", f("x.onnx")), "--fp8");
    expectUserError(await cli("convert", f("net.onnx"), "--int8", "--calib-batches", "2", "--calibration-cache", f("net.cache"), "-o", f("x.onnx")), "not both");
    expectUserError(await cli("convert", f("net.onnx"), "--int8", "--algo", "minmax", "--calibration-cache", f("net.cache"), "-o", f("x.onnx")), "--algo");
    expectUserError(await cli("convert", f("net.onnx"), "--int8", "-o", f("x.onnx")), "--calibration-cache");
  });
});
