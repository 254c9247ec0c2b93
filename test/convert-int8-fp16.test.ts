/**
 * `convert MODEL --int8 --fp16 --calibration-cache C -o OUT.onnx` (issue 11, brief h11 item 3): the
 * layers that do not run in int8 (fallbacks, plan entries in fp16) are written strongly typed in
 * fp16 (fp16 weights, Casts at the boundaries) around the Q/DQ of the int8 layers, and the model
 * computes `compare MODEL --int8 --fp16`'s numbers: bit for bit without weights, up to the float32
 * summation order of a MatMul/Conv with a DequantizeLinear weight otherwise (docs/int8.md).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TensorProto_DataType } from "onnx-buf";
import { saveModel } from "./support/graph-builder.js";
import { loadModel } from "../src/onnx/model.js";
import { tensorProtoToHost } from "../src/onnx/tensor.js";
import { qdqConvNet, qdqPointwiseNet } from "./int8-fixtures.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

let dir: string;
const f = (n: string) => path.join(dir, n);


type Row = { tensor: string; precision: string; metrics: Record<string, number | null> };
const rows = (file: string): Row[] => JSON.parse(fs.readFileSync(file, "utf8")).layers;

let conv: { code: number; stdout: string; stderr: string };
beforeAll(async () => {
  dir = tmpDir("trtdbg-convert-int8-fp16-");
  saveModel(qdqConvNet("convert-int8-fp16/net", { softmax: true }), f("net.onnx"));
  saveModel(qdqPointwiseNet("Softmax", 13), f("pw.onnx"));
  expect((await cli("calib", "build", f("net.onnx"), "-o", f("net.cache"), "--calib-batches", "4", "--algo", "minmax", "-q", "--fusion", "none")).code).toBe(0);
  expect((await cli("calib", "build", f("pw.onnx"), "-o", f("pw.cache"), "--calib-batches", "3", "--algo", "minmax", "-q")).code).toBe(0);
  conv = await cli("convert", f("net.onnx"), "--int8", "--fp16", "--calibration-cache", f("net.cache"), "--layer-precisions", "conv2:fp16", "--fusion", "none", "-o", f("net.q16.onnx"), "--json", f("conv.json"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("convert --int8 --fp16", () => {
  it("writes the layers not in int8 in fp16: the plan's conv2 and the fallback softmax, with fp16 weights and Casts", () => {
    expect(conv.stderr).toBe("");
    expect(conv.code).toBe(0);
    const j = JSON.parse(fs.readFileSync(f("conv.json"), "utf8"));
    expect(j.fallback).toBe("fp16");
    expect(j.precisions.map((p: { layer: string; precision: string }) => `${p.layer}:${p.precision}`)).toEqual(["conv1:int8", "relu1:int8", "conv2:fp16", "relu2:int8", "flat:int8", "fc:int8", "soft:fp16"]);
    expect(conv.stdout.split("\n").at(-1)).toBe(`converted 5/7 layers to int8 (Q/DQ): 5 activation Q/DQ pairs, 2 int8 per-channel weights, 2 layer(s) in fp16 (strongly typed, ${j.casts} Casts); wrote ${f("net.q16.onnx")}`);
    const g = loadModel(f("net.q16.onnx")).proto.graph!;
    const init = (n: string) => g.initializer.find((t) => t.name === n);
    expect(init("w2")!.dataType).toBe(TensorProto_DataType.FLOAT16);
    expect(init("w1::int8")!.dataType).toBe(TensorProto_DataType.INT8);
    const vi = new Map(g.valueInfo.map((v) => [v.name, v.type?.value.case === "tensorType" ? v.type.value.value.elemType : -1]));
    expect(vi.get("conv2_output_0")).toBe(TensorProto_DataType.FLOAT16);
    // relu1 (int8) feeds the fp16 conv2: its output is rounded to fp16 once, after it
    expect(g.node.some((n) => n.name === "relu1::fp16_output0" && n.opType === "Identity")).toBe(true);
    expect(vi.get("relu1_output_0")).toBe(TensorProto_DataType.FLOAT16);
    expect(g.output[0]!.type?.value.case === "tensorType" && g.output[0]!.type.value.value.elemType).toBe(TensorProto_DataType.FLOAT);
  });

  it("without weights the model's numbers are the emulation's bit for bit (compare REF OUT = compare REF --int8 --fp16)", async () => {
    const c = await cli("convert", f("pw.onnx"), "--int8", "--fp16", "--calibration-cache", f("pw.cache"), "-o", f("pw.q16.onnx"), "--json", f("pwc.json"), "-q");
    expect(c.stderr).toBe("");
    expect(JSON.parse(fs.readFileSync(f("pwc.json"), "utf8")).precisions.map((p: { precision: string }) => p.precision)).toEqual(["int8", "fp16", "int8"]);
    const cg = await cli("compare", f("pw.onnx"), f("pw.q16.onnx"), "--json", f("pg.json"), "--seed", "5");
    expect(cg.stderr).toBe("");
    const e = await cli("compare", f("pw.onnx"), "--int8", "--fp16", "--calibration-cache", f("pw.cache"), "--json", f("pe.json"), "--seed", "5");
    expect(e.stdout).toContain("int8: 2 of 3 layers in int8");
    const g = rows(f("pg.json")), em = rows(f("pe.json"));
    for (const t of ["add_output_0", "soft_output_0", "z"]) {
      const a = g.find((l) => l.tensor === t)!.metrics, b = em.find((l) => l.tensor === t)!.metrics;
      for (const k of ["max_abs", "mean_abs", "rel_l2", "cosine", "cand_abs_max"]) expect([t, k, a[k]]).toEqual([t, k, b[k]]);
    }
    expect(em.find((l) => l.tensor === "z")!.metrics.max_abs).toBeGreaterThan(0);
  });

  it("with weights: compare REF OUT gives the emulation's numbers (the documented summation-order caveat does not show here)", async () => {
    const cg = await cli("compare", f("net.onnx"), f("net.q16.onnx"), "--fusion", "none", "--json", f("g.json"));
    expect(cg.stderr).toBe("");
    await cli("compare", f("net.onnx"), "--int8", "--fp16", "--calibration-cache", f("net.cache"), "--layer-precisions", "conv2:fp16", "--fusion", "none", "--json", f("e.json"));
    const g = rows(f("g.json")), em = rows(f("e.json"));
    for (const t of ["relu1_output_0", "conv2_output_0", "fc_output_0", "y"]) {
      const l = em.find((r) => r.tensor === t)!, o = g.find((r) => r.tensor === t)!;
      // equal on this net and input: the fp16 roundings absorb the last-bit differences of the sums
      // (in general a value may differ by one fp16 step where such a difference crosses a rounding boundary)
      const tol = 0;
      for (const k of ["max_abs", "mean_abs", "cand_abs_max"]) expect([t, k, Math.abs(o.metrics[k]! - l.metrics[k]!) <= tol]).toEqual([t, k, true]);
    }
  });

  it("calib check OUT: convert's inserted tensors (Casts, `::int8_out`, the fp16 rounding Identities) are not reported; the original tensors without a scale are", async () => {
    const r = await cli("calib", "check", f("net.q16.onnx"), "--calib-batches", "2", "--fusion", "none", "--json", f("cc.json"), "-q");
    expect(r.code, r.stderr + r.stdout).toBeLessThan(2);
    const j = JSON.parse(fs.readFileSync(f("cc.json"), "utf8"));
    expect(j.missing_from_cache).toEqual(["relu1_output_0", "fc_output_0", "y"]);
    expect(j.unknown_in_cache).toEqual([]);
    expect(j.tensors.map((t: { tensor: string }) => t.tensor).sort()).toEqual(["conv1_output_0", "conv2_output_0", "fc_output_0", "flat_output_0", "relu1_output_0", "relu2_output_0", "x", "y"]);
    expect(j.layers.map((l: { layer: string }) => l.layer)).toEqual(["conv1", "relu1", "conv2", "relu2", "flat", "fc", "soft"]);
    // the scales are the Q nodes': conv2_output_0's through the Cast conv2_output_0__to_fp32
    const g = loadModel(f("net.q16.onnx")).proto.graph!;
    const q = g.node.find((n) => n.opType === "QuantizeLinear" && n.input[0] === "conv2_output_0__to_fp32")!;
    expect(j.tensors.find((t: { tensor: string }) => t.tensor === "conv2_output_0").cache_scale).toBe(tensorProtoToHost(g.initializer.find((t) => t.name === q.input[1])!).data[0]);
  });

  it("refuses --fp16 with --bf16 and a plan layer in the other reduced type with one line", async () => {
    expectUserError(await cli("convert", f("net.onnx"), "--int8", "--fp16", "--bf16", "--calibration-cache", f("net.cache"), "-o", f("x.onnx")), "--fp16 and --bf16");
    expectUserError(await cli("convert", f("net.onnx"), "--int8", "--fp16", "--calibration-cache", f("net.cache"), "--layer-precisions", "conv2:bf16", "-o", f("x.onnx")), "conv2", "fp32 and fp16 layers only");
    expect(fs.existsSync(f("x.onnx"))).toBe(false);
  });
});
