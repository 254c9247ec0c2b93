/**
 * Scaled FP8 (issue 11, deliverable 4, brief h11 item 1): `compare MODEL --fp8 --calibration-cache C`
 * emulates TensorRT's explicit FP8 (e4m3fn Q/DQ, scale = amax/448, per output channel for weights)
 * and `convert MODEL --fp8` writes that graph as a Q/DQ model (QuantizeLinear-19 with float8e4m3fn
 * zero points) whose onnxruntime numbers are the emulation's: bit for bit on a net without weights,
 * up to the float32 summation order of MatMul/Conv (docs/int8.md "FP8") on a conv net.
 * `calib check` on the fp8 Q/DQ model reads the scales back and flags a planted bad scale.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelProtoSchema, TensorProto_DataType } from "onnx-buf";
import { toBinary } from "@bufbuild/protobuf";
import ort from "onnxruntime-node";
import { createSession } from "../src/onnx/ort-session.js";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { loadModel } from "../src/onnx/model.js";
import { plantQdqScale, qdqConvNet, qdqPointwiseNet } from "./int8-fixtures.js";
import { cacheFromAmax, calibrationJson, formatCalibrationCache, readCalibrationCache } from "../src/calibration/cache.js";
import { tensorProtoToHost } from "../src/onnx/tensor.js";
import { fakeQuantFp8, fp8ToF32, perChannelAbsMax } from "../src/numeric/index.js";
import { fp8Scale } from "../src/precision/int8.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

let dir: string;
const f = (n: string) => path.join(dir, n);


type Row = { tensor: string; precision: string; is_graph_output: boolean; metrics: Record<string, number | null> };
const rows = (file: string): Row[] => JSON.parse(fs.readFileSync(file, "utf8")).layers;

let conv: { code: number; stdout: string; stderr: string };
beforeAll(async () => {
  dir = tmpDir("trtdbg-convert-fp8-");
  saveModel(qdqConvNet("convert-fp8/net", { opset: 19 }), f("net.onnx"));
  saveModel(qdqPointwiseNet("Sigmoid", 19), f("pw.onnx"));
  const cb = await cli("calib", "build", f("net.onnx"), "-o", f("net.cache"), "--calib-batches", "4", "--algo", "minmax", "-q", "--fusion", "none");
  expect(cb.stderr).not.toContain("error");
  expect(cb.code).toBe(0);
  conv = await cli("convert", f("net.onnx"), "--fp8", "--calibration-cache", f("net.cache"), "--layer-precisions", "conv2:fp32", "--fusion", "none", "-o", f("net.fp8.onnx"), "--json", f("conv.json"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("onnxruntime's float8e4m3fn QuantizeLinear/DequantizeLinear", () => {
  it("compute fakeQuantFp8 bit for bit: float32 quotient, nearest even, saturation at ±448", async () => {
    const b = new GraphBuilder("p");
    const x = b.input("x", "float32", [64]);
    const s = b.initializer("s", "float32", [], Float32Array.of(0.0625));
    const z = b.initializer("z", "float8e4m3fn", [], Uint8Array.of(0));
    b.output(b.node("DequantizeLinear", [b.node("QuantizeLinear", [x, s, z], { name: "q" }), s, z], { name: "dq", outputs: ["y"] }), "float32", [64]);
    const sess = await createSession(toBinary(ModelProtoSchema, b.model({ opset: 19 })), "fp8 probe");
    // x/s exact (s = 2^-4): ties 8.5 -> 8, 9.5 -> 10, 17 -> 16, 19 -> 20 (e4m3fn steps 1 in [8,16), 2 in [16,32)),
    // subnormal tie 1.5·2^-9 -> 2^-8, beyond ±448 saturates; then a ramp of ordinary values
    const q = [8.5, 9.5, 17, 19, -9.5, 1.5 * 2 ** -9, 1e6, -1e6];
    const want = [8, 10, 16, 20, -10, 2 ** -8, 448, -448];
    const xv = Float32Array.from({ length: 64 }, (_, i) => (i < q.length ? q[i]! / 16 : (i - 32) * 0.731 + (i % 3) * 1e-3 * i));
    const y = (await sess.run({ x: new ort.Tensor("float32", xv, [64]) }, ["y"])).y!.data as Float32Array;
    expect(Array.from(y.slice(0, q.length))).toEqual(want.map((v) => v / 16));
    expect(Array.from(y)).toEqual(Array.from(fakeQuantFp8(xv, { scale: 0.0625 })));
    await sess.release();
  });
});

describe("convert --fp8 (scaled e4m3fn Q/DQ)", () => {
  it("writes a Q/DQ model with float8e4m3fn zero points that onnxruntime loads and runs", () => {
    expect(conv.stderr).toBe("");
    expect(conv.code).toBe(0);
    expect(conv.stdout).toContain(`fp8: read ${f("net.cache")}`);
    expect(conv.stdout).toContain("fp8: 5 of 6 layers in fp8 (e4m3fn, scale amax/448) (activations [-448,448], weights per channel [-448,448]), 0 fallbacks to fp32");
    expect(conv.stdout.split("\n").at(-1)).toBe(`converted 5/6 layers to fp8 e4m3fn (Q/DQ): 5 activation Q/DQ pairs, 2 fp8 per-channel weights; wrote ${f("net.fp8.onnx")}`);
    const j = JSON.parse(fs.readFileSync(f("conv.json"), "utf8"));
    expect(j.type).toBe("fp8");
    expect(j.precisions.map((p: { layer: string; precision: string }) => `${p.layer}:${p.precision}`)).toEqual(["conv1:fp8", "relu1:fp8", "conv2:fp32", "relu2:fp8", "flat:fp8", "fc:fp8"]);
    const m = loadModel(f("net.fp8.onnx"));
    expect(m.opset).toBe(19);
    const g = m.proto.graph!;
    const qs = g.node.filter((n) => n.opType === "QuantizeLinear");
    expect(qs.length).toBe(5);
    for (const q of qs) expect(g.initializer.find((t) => t.name === q.input[2])!.dataType).toBe(TensorProto_DataType.FLOAT8E4M3FN);
  });

  it("activation scales are amax/448 (amax from the cache's JSON sidecar net.cache.json); weights are float8e4m3fn with per-output-channel scales max|w_c|/448, DequantizeLinear gives the emulation's fake-quantized values", async () => {
    const g = loadModel(f("net.fp8.onnx")).proto.graph!;
    const init = (n: string) => g.initializer.find((t) => t.name === n);
    const side = await readCalibrationCache(f("net.cache.json"));
    const x = g.node.find((n) => n.opType === "QuantizeLinear" && n.input[0] === "x")!;
    expect(tensorProtoToHost(init(x.input[1]!)!).data[0]).toBe(Math.fround(side.amax!.get("x")! / 448));
    expect(JSON.parse(fs.readFileSync(f("conv.json"), "utf8")).int8.notes).toContain(`fp8 scales amax/448 from the exact amax of ${f("net.cache.json")}`);
    const w = tensorProtoToHost(loadModel(f("net.onnx")).proto.graph!.initializer.find((t) => t.name === "w1")!).data as Float32Array;
    const q = tensorProtoToHost(init("w1::fp8")!);
    expect(q.dtype).toBe("float8e4m3fn");
    const s = tensorProtoToHost(init("w1::scale")!).data as Float32Array;
    expect(Array.from(s)).toEqual(Array.from(perChannelAbsMax(w, [4, 3, 3, 3], 0), (a) => Math.fround(a / 448)));
    expect(g.node.find((n) => n.output[0]?.startsWith("w1::") && n.opType === "DequantizeLinear")!.attribute.find((a) => a.name === "axis")!.i).toBe(0n);
    const deq = Float32Array.from(fp8ToF32(q.data as Uint8Array, "fp8e4m3fn"), (v, i) => v * s[Math.floor(i / 27)]!);
    expect(Array.from(deq)).toEqual(Array.from(fakeQuantFp8(w, { scale: s, axis: 0, dims: [4, 3, 3, 3] })));
    // the largest weight of each channel maps to e4m3fn's largest value
    expect(Math.max(...Array.from(fp8ToF32(q.data as Uint8Array, "fp8e4m3fn"), Math.abs))).toBe(448);
    // conv2 is pinned to fp32: fp32 weight, no Q/DQ
    expect(init("w2")).toBeDefined();
    expect(init("w2::fp8")).toBeUndefined();
  });

  it("the exact amax of a JSON cache, or of a text cache's sidecar, gives amax/448; a text cache alone 127·scale/448", async () => {
    // an amax whose fp8 scale differs between the two routes: fround(a/448) vs fround(fround(fround(a/127)·127)/448)
    const cache = await readCalibrationCache(f("net.cache"));
    let a = 0.8125;
    while (Math.fround(a / 448) === fp8Scale(Math.fround(a / 127))) a = a * (1 + 2 ** -20) + 2 ** -30;
    const amax = new Map([...cache.scales].map(([t, sc]) => [t, t === "x" ? a : 127 * sc]));
    const content = cacheFromAmax(amax, "MinMaxCalibration");
    fs.writeFileSync(f("hand.json"), calibrationJson(content));
    fs.writeFileSync(f("hand.cache"), formatCalibrationCache(content));
    fs.writeFileSync(f("hand.cache.json"), calibrationJson(content));
    fs.writeFileSync(f("alone.cache"), formatCalibrationCache(content));
    const xScale = async (c: string, out: string) => {
      expect((await cli("convert", f("net.onnx"), "--fp8", "--calibration-cache", f(c), "--fusion", "none", "-o", f(out), "-q")).code).toBe(0);
      const g = loadModel(f(out)).proto.graph!;
      const q = g.node.find((n) => n.opType === "QuantizeLinear" && n.input[0] === "x")!;
      return tensorProtoToHost(g.initializer.find((t) => t.name === q.input[1])!).data[0] as number;
    };
    expect(await xScale("hand.json", "h1.onnx")).toBe(Math.fround(a / 448));
    expect(await xScale("hand.cache", "h2.onnx")).toBe(Math.fround(a / 448));
    expect(await xScale("alone.cache", "h3.onnx")).toBe(fp8Scale(Math.fround(a / 127)));
    // a sidecar whose scales are not the cache's (another calibration) is not used
    fs.writeFileSync(f("other.cache"), formatCalibrationCache(content));
    fs.writeFileSync(f("other.cache.json"), calibrationJson(cacheFromAmax(new Map([...amax].map(([t, v]) => [t, t === "x" ? 2 * v : v])), "MinMaxCalibration")));
    expect(await xScale("other.cache", "h4.onnx")).toBe(fp8Scale(Math.fround(a / 127)));
    expect(fp8Scale(Math.fround(a / 127))).not.toBe(Math.fround(a / 448));
  });

  it("without weights the Q/DQ model's numbers are the emulation's bit for bit (compare REF OUT = compare REF --fp8)", async () => {
    expect((await cli("calib", "build", f("pw.onnx"), "-o", f("pw.cache"), "--calib-batches", "3", "--algo", "minmax", "-q")).code).toBe(0);
    const c = await cli("convert", f("pw.onnx"), "--fp8", "--calibration-cache", f("pw.cache"), "-o", f("pw.fp8.onnx"), "-q");
    expect(c.stderr).toBe("");
    const cg = await cli("compare", f("pw.onnx"), f("pw.fp8.onnx"), "--json", f("pg.json"), "--seed", "7");
    expect(cg.stderr).toBe("");
    const e = await cli("compare", f("pw.onnx"), "--fp8", "--calibration-cache", f("pw.cache"), "--json", f("pe.json"), "--seed", "7");
    expect(e.stdout).toContain("fp8: 3 of 3 layers in fp8");
    const g = rows(f("pg.json")), em = rows(f("pe.json"));
    // add/sig quantize their outputs (all consumers in fp8): in the Q/DQ model that name is the value
    // before its Q/DQ (the DequantizeLinear writes `<t>::dq`), so the graph output is what both compute
    for (const t of ["z"]) {
      const a = g.find((l) => l.tensor === t)!.metrics, b = em.find((l) => l.tensor === t)!.metrics;
      for (const k of ["max_abs", "mean_abs", "rel_l2", "cosine", "cand_abs_max"]) expect([t, k, a[k]]).toEqual([t, k, b[k]]);
    }
    expect(em.find((l) => l.tensor === "z")!.metrics.max_abs).toBeGreaterThan(0); // the fp8 error is really there
  });

  it("with weights: compare REF OUT gives the emulation's numbers (compare MODEL --fp8) up to float32 summation order", async () => {
    const cg = await cli("compare", f("net.onnx"), f("net.fp8.onnx"), "--fusion", "none", "--json", f("g.json"));
    expect(cg.stderr).toBe("");
    const e = await cli("compare", f("net.onnx"), "--fp8", "--calibration-cache", f("net.cache"), "--layer-precisions", "conv2:fp32", "--fusion", "none", "--json", f("e.json"));
    expect(e.code).toBeLessThan(2);
    const g = rows(f("g.json")), em = rows(f("e.json"));
    // the tensors whose producer does not quantize its output (in the Q/DQ model a quantized output's
    // name is the value before its Q/DQ): relu1 feeds the fp32 conv2, conv2 is fp32, y is the graph output
    for (const t of ["relu1_output_0", "conv2_output_0", "y"]) {
      const l = em.find((r) => r.tensor === t)!;
      const o = g.find((r) => r.tensor === t)!;
      const scale = l.metrics.ref_abs_max!;
      for (const k of ["max_abs", "mean_abs", "cand_abs_max"]) expect([l.tensor, k, Math.abs(o.metrics[k]! - l.metrics[k]!) <= 1e-5 * scale]).toEqual([l.tensor, k, true]);
    }
    expect(em.find((l) => l.tensor === "y")!.metrics.max_abs).toBeGreaterThan(1e-4);
  });

  it("calib check OUT.onnx reads the fp8 scales back (amax = 448 x scale) and runs the per-layer errors in fp8", async () => {
    const r = await cli("calib", "check", f("net.fp8.onnx"), "--calib-batches", "2", "--fusion", "none", "--json", f("cc.json"), "-q");
    expect(r.code).toBeLessThan(2);
    const j = JSON.parse(fs.readFileSync(f("cc.json"), "utf8"));
    expect(j.qdq.type).toBe("fp8");
    expect(j.int8.type).toBe("fp8");
    const g = loadModel(f("net.fp8.onnx")).proto.graph!;
    const scaleOf = (t: string) => tensorProtoToHost(g.initializer.find((i) => i.name === g.node.find((n) => n.opType === "QuantizeLinear" && n.input[0] === t)!.input[1])!).data[0] as number;
    const rows: { tensor: string; cache_amax: number | null; flags: { code: string }[] }[] = j.tensors;
    for (const t of ["x", "conv1_output_0", "conv2_output_0", "relu2_output_0", "flat_output_0"]) expect([t, rows.find((r) => r.tensor === t)!.cache_amax]).toEqual([t, scaleOf(t) * 448]);
    // the layers the Q/DQ model quantizes (explicit placement): convert's fp8 layers, conv2 pinned
    const conv = JSON.parse(fs.readFileSync(f("conv.json"), "utf8")).precisions.filter((p: { precision: string }) => p.precision === "fp8").map((p: { layer: string }) => p.layer);
    expect(conv).toEqual(["conv1", "relu1", "relu2", "flat", "fc"]);
    expect(j.layers.filter((l: { precision: string }) => l.precision === "fp8").map((l: { layer: string }) => l.layer)).toEqual(conv);
    expect(rows.find((r) => r.tensor === "conv2_output_0")!.flags.map((x) => x.code)).not.toContain("clipping");
  });

  it("calib check of a strongly typed fp8 Q/DQ model (convert --fp8 --fp16): none of convert's inserted tensors (`::fp8_out`, Casts) is reported", async () => {
    expect((await cli("convert", f("net.onnx"), "--fp8", "--fp16", "--calibration-cache", f("net.cache"), "--layer-precisions", "conv2:fp16", "--fusion", "none", "-o", f("t16.fp8.onnx"), "-q")).code).toBe(0);
    expect(loadModel(f("t16.fp8.onnx")).proto.graph!.node.some((n) => n.output.some((o) => o.endsWith("::fp8_out")))).toBe(true);
    const r = await cli("calib", "check", f("t16.fp8.onnx"), "--calib-batches", "2", "--fusion", "none", "--json", f("t16.json"), "-q");
    expect(r.code, r.stderr + r.stdout).toBeLessThan(2);
    const j = JSON.parse(fs.readFileSync(f("t16.json"), "utf8"));
    expect(j.missing_from_cache).toEqual(["relu1_output_0", "y"]);
    expect(j.tensors.map((t: { tensor: string }) => t.tensor).sort()).toEqual(["conv1_output_0", "conv2_output_0", "flat_output_0", "relu1_output_0", "relu2_output_0", "x", "y"]);
  });

  it("calib check flags a planted bad fp8 scale: too small clips, far too large wastes e4m3fn's range", async () => {
    plantQdqScale(f("net.fp8.onnx"), "conv2_output_0", 1 / 64, f("bad1.fp8.onnx"));
    plantQdqScale(f("bad1.fp8.onnx"), "relu2_output_0", 1e6, f("bad.fp8.onnx"));
    const r = await cli("calib", "check", f("bad.fp8.onnx"), "--calib-batches", "2", "--fusion", "none", "--json", f("bad.json"), "-q");
    expect(r.code).toBe(1);
    const rows: { tensor: string; flags: { code: string; severity: string; message: string }[] }[] = JSON.parse(fs.readFileSync(f("bad.json"), "utf8")).tensors;
    const flags = (t: string) => rows.find((x) => x.tensor === t)!.flags.filter((x) => x.severity === "harmful").map((x) => x.code);
    expect(flags("conv2_output_0")).toEqual(["clipping"]);
    expect(flags("relu2_output_0")).toEqual(["wasted-range"]);
    expect(rows.find((x) => x.tensor === "relu2_output_0")!.flags.find((x) => x.code === "wasted-range")!.message).toContain("e4m3fn's subnormals");
    for (const t of ["x", "conv1_output_0", "flat_output_0"]) expect([t, flags(t)]).toEqual([t, []]);
  });

  it("bisect REF --candidate FP8QDQ.onnx: a planted over-clipping fp8 scale is found by name; --save-onnx writes an fp8 Q/DQ model that passes compare REF OUT", async () => {
    expect((await cli("convert", f("net.onnx"), "--fp8", "--calibration-cache", f("net.cache"), "--fusion", "none", "-o", f("all.fp8.onnx"), "-q")).code).toBe(0);
    plantQdqScale(f("all.fp8.onnx"), "relu1_output_0", 1 / 64, f("clip.fp8.onnx"));
    expect((await cli("compare", f("net.onnx"), f("clip.fp8.onnx"), "--fusion", "none", "-q")).code).toBe(1);
    const b = await cli("bisect", f("net.onnx"), "--candidate", f("clip.fp8.onnx"), "--fusion", "none", "--save-onnx", f("fixed.fp8.onnx"), "--json", f("bf.json"), "--no-checkpoint");
    expect(b.code, b.stderr + b.stdout).toBe(0);
    expect(b.stdout).toContain(`candidate ${f("clip.fp8.onnx")} (fp8, 0 layer(s) not in fp8 to start with)`);
    const res = JSON.parse(fs.readFileSync(f("bf.json"), "utf8"));
    expect(res.pinned_layers).toEqual(["conv2"]);
    expect(res.int8.type).toBe("fp8");
    expect(res.saved_qdq.fp32_layers).toEqual(["conv2"]);
    const g = loadModel(f("fixed.fp8.onnx")).proto.graph!;
    const zps = g.node.filter((n) => n.opType === "QuantizeLinear").map((n) => g.initializer.find((t) => t.name === n.input[2])!.dataType);
    expect(zps.length).toBeGreaterThan(0);
    expect(zps.every((d) => d === TensorProto_DataType.FLOAT8E4M3FN)).toBe(true);
    expect((await cli("compare", f("net.onnx"), f("fixed.fp8.onnx"), "--fusion", "none", "-q")).code).toBe(0);
    // the saved model keeps the candidate's fp8 scales exactly (amax = 448·s read back gives s)
    const sc = (file: string) => {
      const gg = loadModel(f(file)).proto.graph!;
      return new Map(gg.node.filter((n) => n.opType === "QuantizeLinear").map((n) => [n.input[0], tensorProtoToHost(gg.initializer.find((t) => t.name === n.input[1])!).data[0]]));
    };
    const fixed = sc("fixed.fp8.onnx"), cand = sc("clip.fp8.onnx");
    expect(fixed.size).toBeGreaterThan(3);
    for (const [t, v] of fixed) expect([t, v]).toEqual([t, cand.get(t)]);
    // and the search over the fp32 model with the cache: bisect --fp8
    const s = await cli("bisect", f("net.onnx"), "--fp8", "--calibration-cache", f("net.cache"), "--fusion", "none", "--json", f("bs.json"), "--no-checkpoint", "-q");
    expect(s.code, s.stderr + s.stdout).toBe(0);
    expect(JSON.parse(fs.readFileSync(f("bs.json"), "utf8")).int8.type).toBe("fp8");
  });

  it("refuses a model below opset 9, --int8 with --fp8, --int8-range with --fp8 and a missing cache with one line", async () => {
    // below opset 9 there is no upgrade path to 19 (opset 9..18 models are upgraded: fp8-opset-upgrade.test.ts)
    saveModel(qdqConvNet("convert-fp8/net", { opset: 8 }), f("net8.onnx"));
    expectUserError(await cli("convert", f("net8.onnx"), "--fp8", "--calibration-cache", f("net.cache"), "-o", f("x.onnx")), "opset 8", ">= 19");
    expectUserError(await cli("convert", f("net.onnx"), "--int8", "--fp8", "--calibration-cache", f("net.cache"), "-o", f("x.onnx")), "--int8 and --fp8");
    expectUserError(await cli("convert", f("net.onnx"), "--fp8", "--int8-range", "127", "--calibration-cache", f("net.cache"), "-o", f("x.onnx")), "--int8-range");
    expectUserError(await cli("convert", f("net.onnx"), "--fp8", "-o", f("x.onnx")), "convert --fp8", "--calibration-cache");
    expect(fs.existsSync(f("x.onnx"))).toBe(false);
  });
});
