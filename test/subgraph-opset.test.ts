/**
 * Control-flow bodies under emulation (docs/precision.md "Control-flow bodies") and models of
 * old opsets under bf16/int8 (docs/int8.md "Old opsets").
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveModel } from "./support/graph-builder.js";
import { Executor } from "../src/runtime/executor.js";
import { prepareModelFile, runCaptured } from "../src/runtime/capture-runs.js";
import { roundTo } from "../src/numeric/index.js";
import { compareModel } from "../src/workflows/compare.js";
import { describeBodies } from "../src/precision/subgraph.js";
import { defaultCompareOptions } from "../src/compare/tolerance.js";
import type { HostTensor, Precision } from "../src/core/host-tensor.js";
import { ifAroundLoop, ifOverflow, ifSmall, ifSoftmaxClip, loopAccumulate, loopOverSequence, scanCumsum } from "../scripts/models/control-flow.js";
import { oldOpsetNet } from "../scripts/models/old-opset.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";
import { dumpBits } from "./support/dump-bits.js";

const dir = tmpDir("trtdbg-sg-");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const f32 = (name: string, dims: number[], v: ArrayLike<number>): HostTensor => ({ name, dtype: "float32", dims, data: Float32Array.from(v) });
const r16 = (v: ArrayLike<number>) => roundTo(Float32Array.from(v), "fp16");

/** Host model of loopAccumulate in `fmt`: v rounded, then `trips` times v <- r(r(v*c) + d) with c, d rounded. */
function hostLoop(x: readonly number[], trips: number, c: number, d: number, fmt: "fp16" | "bf16"): Float32Array {
  const r = (a: ArrayLike<number>) => roundTo(Float32Array.from(a), fmt);
  let v = r(x);
  const [cr, dr] = [r([c])[0]!, r([d])[0]!];
  for (let i = 0; i < trips; i++) v = r(Array.from(r(Array.from(v, (e) => Math.fround(e * cr))), (e) => Math.fround(e + dr)));
  return v;
}

/** Graph outputs of one run of `file` with every layer in `p`. */
async function outputsOf(file: string, p: Precision, inputs: HostTensor[]): Promise<Map<string, Float32Array>> {
  const pm = await prepareModelFile(file);
  const exec = new Executor(pm.model, pm.types);
  const out = new Map<string, Float32Array>();
  try {
    for await (const c of runCaptured(exec, pm.model.graph.layers.map(() => p), inputs, () => true)) {
      if (c.isGraphOutput) out.set(c.tensor.name, c.tensor.data as Float32Array);
    }
  } finally {
    await exec.release();
  }
  return out;
}

describe("control-flow bodies", () => {
  let ifFile: string;
  beforeAll(() => {
    ifFile = path.join(dir, "if_overflow.onnx");
    saveModel(ifOverflow().model, ifFile);
  });

  it("compare --fp16 fails at the If whose body overflows, and says what its body ran in", async () => {
    const s = await compareModel({ model: ifFile, candidate: "fp16", compare: defaultCompareOptions() });
    expect(s.passed).toBe(false);
    expect(s.first_failing_layer).toBe("vad_if");
    const row = s.layers.find((l) => l.layer === "vad_if")!;
    expect(row.reason).toMatch(/inf|NaN|non-finite/i);
    // evidence from inside the body: the Mul that overflows, not the MatMul before it
    expect(row.evidence.join(" | ")).toMatch(/inside then_branch: body_scale \(Mul\) is the first body node that fails: .*(inf|Inf)/);
    expect(s.subgraphs?.map((b) => [b.layer, b.body, b.nodes, b.ran_in, b.note])).toEqual([
      ["vad_if", "then_branch", 3, "fp16", null],
      ["vad_if", "else_branch", 1, "fp16", null],
    ]);
  });

  it("an If body is rounded node by node (value check against the host computation)", async () => {
    const file = path.join(dir, "if_small.onnx");
    // values chosen so that rounding only the If's input and output gives a different answer
    const w = [1.0009765625, 3.14159, -2.71828, 1e-3];
    const bias = [0.33333, 1e-4, 7.77777, -0.1];
    saveModel(ifSmall(w, bias), file);
    const x = [0.1, 0.2, 0.3, 12.345];
    const inputs = [f32("x", [4], x), { name: "cond", dtype: "bool", dims: [], data: Uint8Array.from([1]) } as HostTensor];
    const got = (await outputsOf(file, "fp16", inputs)).get("y")!;
    const xr = r16(x), wr = r16(w), br = r16(bias);
    const prod = r16(Array.from(xr, (v, i) => Math.fround(v * wr[i]!)));
    const want = r16(Array.from(prod, (v, i) => Math.fround(v + br[i]!)));
    expect(Array.from(got)).toEqual(Array.from(want));
    // the old behaviour (body in fp32, output rounded) differs on these values
    const old = r16(Array.from(xr, (v, i) => Math.fround(Math.fround(v * w[i]!) + bias[i]!)));
    expect(Array.from(old)).not.toEqual(Array.from(want));
  });

  it("a Loop-carried float value is rounded every iteration", async () => {
    const file = path.join(dir, "loop.onnx");
    const c = 1.1, d = 0.3, trips = 5;
    saveModel(loopAccumulate(trips, c, d), file);
    const x = [0.1, 0.7, 1.3, 2.9, -4.2, 5.5, 0.01, 100.3];
    const got = (await outputsOf(file, "fp16", [f32("x", [8], x)])).get("y")!;
    const v = hostLoop(x, trips, c, d, "fp16");
    expect(Array.from(got)).toEqual(Array.from(v));
    let fp32 = Float32Array.from(x);
    for (let i = 0; i < trips; i++) fp32 = Float32Array.from(fp32, (e) => Math.fround(Math.fround(e * c) + d));
    expect(Array.from(r16(fp32))).not.toEqual(Array.from(v));
  });

  it("bf16 bodies are rounded to bf16", async () => {
    const file = path.join(dir, "loop_bf16.onnx");
    saveModel(loopAccumulate(3, 1.01, 0.5), file);
    const x = [0.1, 0.7, 1.3, 2.9, -4.2, 5.5, 0.01, 100.3];
    const got = (await outputsOf(file, "bf16", [f32("x", [8], x)])).get("y")!;
    expect(Array.from(got)).toEqual(Array.from(hostLoop(x, 3, 1.01, 0.5, "bf16")));
  });

  it("fp8 bodies are rounded to e4m3fn (opset 19)", async () => {
    const file = path.join(dir, "if_fp8.onnx");
    const w = [1.3, -2.7, 0.11, 30];
    const bias = [0.5, 1.1, -7.3, 100];
    saveModel(ifSmall(w, bias, 19), file);
    const x = [0.1, 0.2, 0.3, 12.345];
    const got = (await outputsOf(file, "fp8", [f32("x", [4], x), { name: "cond", dtype: "bool", dims: [], data: Uint8Array.from([1]) } as HostTensor])).get("y")!;
    const r8 = (v: ArrayLike<number>) => roundTo(Float32Array.from(v), "fp8e4m3fn");
    const xr = r8(x), wr = r8(w), br = r8(bias);
    const prod = r8(Array.from(xr, (v, i) => Math.fround(v * wr[i]!)));
    expect(Array.from(got)).toEqual(Array.from(r8(Array.from(prod, (v, i) => Math.fround(v + br[i]!)))));
  });

  it("nested bodies (a Loop inside an If) are rounded too", async () => {
    const file = path.join(dir, "if_loop.onnx");
    saveModel(ifAroundLoop(4, 1.1, 0.3), file);
    const x = [0.1, 0.7, 1.3, 2.9, -4.2, 5.5, 0.01, 100.3];
    const cond = { name: "cond", dtype: "bool", dims: [], data: Uint8Array.from([1]) } as HostTensor;
    const got = (await outputsOf(file, "fp16", [f32("x", [8], x), cond])).get("y")!;
    expect(Array.from(got)).toEqual(Array.from(hostLoop(x, 4, 1.1, 0.3, "fp16")));
  });

  it("a Scan's state and scan outputs are rounded every step", async () => {
    const file = path.join(dir, "scan.onnx");
    saveModel(scanCumsum(6, 4), file);
    const s0 = [0.1, 1000.3, -2.2, 3.3];
    const xs = Array.from({ length: 24 }, (_, i) => Math.sin(i) * 10 + 0.123);
    const got = await outputsOf(file, "fp16", [f32("s0", [4], s0), f32("x", [6, 4], xs)]);
    let s = r16(s0);
    const all: number[] = [];
    for (let t = 0; t < 6; t++) {
      const xt = r16(xs.slice(4 * t, 4 * t + 4));
      s = r16(Array.from(s, (e, i) => Math.fround(e + xt[i]!)));
      all.push(...s);
    }
    expect(Array.from(got.get("s_final")!)).toEqual(Array.from(s));
    expect(Array.from(got.get("s_all")!)).toEqual(all);
  });

  it("--int8: the If falls back, and the run says its bodies ran in the fallback precision, not int8", async () => {
    const cache = path.join(dir, "if.cache");
    expect((await cli("calib", "build", ifFile, "-o", cache, "--calib-batches", "2", "-q")).code).toBe(0);
    const warnings: string[] = [];
    const s = await compareModel({ model: ifFile, candidate: "int8", compare: defaultCompareOptions(), int8: { calibrationCache: cache, fallback: "fp16" } }, { warn: (m) => warnings.push(m) });
    const want = "vad_if then_branch (3 nodes) ran in fp16, not int8: trt-debug has no calibration ranges for tensors inside control-flow bodies";
    expect(warnings.some((w) => w.startsWith(want))).toBe(true);
    expect(s.subgraphs?.find((b) => b.body === "then_branch")).toMatchObject({ requested: "int8", ran_in: "fp16" });
    expect(s.subgraphs?.find((b) => b.body === "then_branch")?.note).toContain(want);
    const r = await cli("compare", ifFile, "--int8", "--fp16", "--calibration-cache", cache);
    expect(r.stderr).toContain(`warning: ${want}`);
    const r32 = await cli("run", ifFile, "--int8", "--calibration-cache", cache, "-q");
    expect(r32.stderr).toContain("vad_if then_branch (3 nodes) ran in fp32, not int8");
  });

  it("a Loop whose carried value overflows fp16 after a few iterations: evidence names the body node", async () => {
    const file = path.join(dir, "loop_overflow.onnx");
    saveModel(loopAccumulate(6, 10, 1), file); // |v| ~ 1e6 after 6 iterations: over 65504 from the 5th
    const s = await compareModel({ model: file, candidate: "fp16", compare: defaultCompareOptions() });
    expect(s.first_failing_layer).toBe("acc_loop");
    const row = s.layers.find((l) => l.layer === "acc_loop")!;
    expect(row.evidence.join(" | ")).toMatch(/inside body: acc_mul \(Mul\) is the first body node that fails: .*new NaN\/Inf/);
  });

  it("a body reading an outer sequence: only its float tensors are rounded (value check)", async () => {
    const file = path.join(dir, "loop_seq_ok.onnx");
    saveModel(loopOverSequence(false), file);
    const x = [0.1, 1.3, -2.7, 1000.1];
    const pm = await prepareModelFile(file);
    expect(describeBodies(pm.model, pm.model.graph.layers.map(() => "fp16"))[0]).toMatchObject({ layer: "seq_loop", ran_in: "fp16", note: null });
    const got = (await outputsOf(file, "fp16", [f32("x", [4], x)])).get("y")!;
    const xr = r16(x);
    const dbl = r16(Array.from(xr, (e) => Math.fround(e + e)));
    const v1 = r16(Array.from(xr, (e, i) => Math.fround(e + xr[i]!)));
    const v2 = r16(Array.from(v1, (e, i) => Math.fround(e + dbl[i]!)));
    expect(Array.from(got)).toEqual(Array.from(v2));
  });

  it("a body that cannot be typed runs in fp32, and the run says which one and why", async () => {
    const file = path.join(dir, "loop_seq.onnx");
    saveModel(loopOverSequence(true), file);
    const r = await cli("run", file, "--fp16", "--json", path.join(dir, "loop_seq.json"), "-q");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("warning: seq_loop body (3 nodes) ran in fp32, not fp16: onnxruntime cannot type the body of 'seq_loop' on its own (outer-scope value 'seq2' has no known type)");
    const j = JSON.parse(fs.readFileSync(path.join(dir, "loop_seq.json"), "utf8")) as { runs: { subgraphs: { ran_in: string; note: string }[] }[] };
    expect(j.runs[0]!.subgraphs[0]).toMatchObject({ ran_in: "fp32" });
  });

  it("the CLI reports the failing If and exits 1", async () => {
    const r = await cli("compare", ifFile, "--fp16");
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/first failing layer: vad_if \(If, tensor vad_if_out\): .*inside then_branch: body_scale \(Mul\)/);
  });
});

describe("opset 9-12 models under bf16 and int8", () => {
  const m = (o: 9 | 11 | 13) => path.join(dir, `net${o}.onnx`);
  const dyn = path.join(dir, "dyn9.onnx");
  const cache = path.join(dir, "net9.cache");
  beforeAll(async () => {
    for (const o of [9, 11, 13] as const) saveModel(oldOpsetNet(o), m(o));
    saveModel(oldOpsetNet(9, { dynamicScales: true }), dyn);
    const r = await cli("calib", "build", m(9), "-o", cache, "--calib-batches", "3", "-q");
    expect(r.code, r.stderr).toBe(0);
  });

  it("--bf16 dumps of the net at opset 9 and 11 equal opset 13's bit for bit", async () => {
    const dumps: Map<string, string>[] = [];
    for (const o of [9, 11, 13] as const) {
      const out = path.join(dir, `bf16-${o}`);
      const r = await cli("run", m(o), "--bf16", "--mark-all", "--save-outputs", out, "-q");
      expect(r.code, r.stderr).toBe(0);
      dumps.push(await dumpBits(path.join(out, "bf16.arrow")));
    }
    expect(dumps[2]!.size).toBe(10); // 11 nodes, conv + relu one fused layer (TensorRT's layer model)
    expect([...dumps[0]!.keys()]).toEqual([...dumps[2]!.keys()]);
    for (const [t, v] of dumps[2]!) {
      expect(dumps[0]!.get(t), `opset 9 ${t}`).toBe(v);
      expect(dumps[1]!.get(t), `opset 11 ${t}`).toBe(v);
    }
  });

  it("--int8 with a cache built on the opset 9 model: dumps equal opset 13's bit for bit", async () => {
    const dumps: Map<string, string>[] = [];
    for (const o of [9, 13] as const) {
      const out = path.join(dir, `int8-${o}`);
      const r = await cli("run", m(o), "--int8", "--calibration-cache", cache, "--mark-all", "--save-outputs", out, "-q");
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/int8: [1-9]\d* of 10 layers in int8/); // conv + relu are one fused layer
      dumps.push(await dumpBits(path.join(out, "int8.arrow")));
    }
    for (const [t, v] of dumps[1]!) expect(dumps[0]!.get(t), t).toBe(v);
    const r = await cli("compare", m(9), "--int8", "--calibration-cache", cache);
    expect([0, 1]).toContain(r.code);
    const c = await cli("calib", "check", m(9), "--calibration-cache", cache, "--calib-batches", "2", "-q");
    expect([0, 1], c.stderr).toContain(c.code);
  });

  it("Softmax on a non-last axis (2-D coercion before opset 13) runs under bf16 (the upgrade's fp32 self-check passes)", async () => {
    const file = path.join(dir, "ax1.onnx");
    saveModel(oldOpsetNet(9, { softmaxAxis1: true }), file);
    const r = await cli("compare", file, "--bf16");
    expect(r.code, r.stderr).toBe(0);
  });

  it("an op without an upgrade path fails before any work, in one line", async () => {
    const msg = ["dyn9.onnx: --bf16 needs opset 13 but node 'up' (Upsample, opset 9) has no upgrade path", "re-export at opset >= 13 or use --fp16"];
    expectUserError(await cli("compare", dyn, "--bf16"), ...msg);
    expectUserError(await cli("bisect", dyn, "--bf16"), ...msg);
    const saved = path.join(dir, "never.arrow");
    expectUserError(await cli("run", dyn, "--bf16", "--save-inputs", saved), ...msg);
    expect(fs.existsSync(saved)).toBe(false); // failed before any work
    expectUserError(await cli("calib", "check", dyn, "--calibration-cache", cache), "--int8 needs opset 10 but node 'up' (Upsample, opset 9)");
    expect((await cli("compare", dyn, "--fp16")).code).toBe(0);
    // fp8 on opset 9: upgraded to 19 (brief h11b item 5), unless a node has no upgrade path
    expect((await cli("compare", m(9), "--fp16", "--layer-precisions", "conv:fp8", "-q")).code).toBeLessThan(2);
    expectUserError(await cli("compare", dyn, "--fp16", "--layer-precisions", "up:fp8"), "dyn9.onnx: fp8 (e4m3fn Q/DQ and Casts) needs opset 19 but node 'up' (Upsample, opset 9) has no upgrade path", "re-export at opset >= 19");
  });

  it("bodies are upgraded too: a Loop at opset 9 gives opset 17's bf16 values", async () => {
    const x = [0.1, 0.7, 1.3, 2.9, -4.2, 5.5, 0.01, 100.3];
    const got: Float32Array[] = [];
    for (const o of [9, 17]) {
      const file = path.join(dir, `loop_o${o}.onnx`);
      saveModel(loopAccumulate(3, 1.1, 0.3, 8, o), file);
      got.push((await outputsOf(file, "bf16", [f32("x", [8], x)])).get("y")!);
    }
    expect(Array.from(got[0]!)).toEqual(Array.from(got[1]!));
  });

  it("adapters reach into bodies: Softmax and Clip-6 inside an If at opset 9 give opset 13's bf16 values", async () => {
    const x = [0.1, 2.5, -1, 0.3, 3.7, -2, 0, 1, 1.5, 0.25];
    const cond = { name: "cond", dtype: "bool", dims: [], data: Uint8Array.from([1]) } as HostTensor;
    const got: Float32Array[] = [];
    for (const o of [9, 13] as const) {
      const file = path.join(dir, `if_sm_${o}.onnx`);
      saveModel(ifSoftmaxClip(o), file);
      got.push((await outputsOf(file, "bf16", [f32("x", [2, 5], x), cond])).get("y")!);
    }
    expect(Array.from(got[0]!)).toEqual(Array.from(got[1]!));
    expect(Math.max(...got[0]!)).toBe(0.5);
  });

  it("bisect --bf16 and --int8 run on an opset 9 model", async () => {
    const r = await cli("bisect", m(9), "--bf16", "-q");
    expect([0, 1], r.stderr).toContain(r.code);
    const r8 = await cli("bisect", m(9), "--int8", "--calibration-cache", cache, "-q");
    expect([0, 1], r8.stderr).toContain(r8.code);
  });
});
