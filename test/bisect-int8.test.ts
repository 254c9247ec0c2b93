/**
 * `bisect --int8`: the candidate is the int8 assignment (int8 where eligible, the fallbacks as
 * resolveInt8 decides), the reference fp32, pinned layers in --precision; one int8 policy per
 * model and cache serves every candidate, and neither the executor's segment sessions nor the
 * bisection's boundary tensors are served stale when only a consumer's precision changed (an
 * int8 layer quantizes its output only when every consumer runs in int8).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { calibBuild } from "../src/calibration/build.js";
import { compareModel } from "../src/workflows/compare.js";
import { defaultCompareOptions, DEFAULT_MAX_REL_L2 } from "../src/compare/tolerance.js";
import { readCalibrationCache } from "../src/calibration/cache.js";
import { makeInt8Policy, resolveInt8 } from "../src/precision/int8.js";
import { Executor } from "../src/runtime/executor.js";
import { fromOrt, type OrtTensor } from "../src/onnx/ort-session.js";
import { makeFeeds, prepareModelFile } from "../src/runtime/capture-runs.js";
import { PrefixRunner } from "../src/search/evaluate.js";
import { bisectModel, type BisectResult } from "../src/workflows/bisect.js";
import { referenceAndSensitivity } from "../src/search/sensitivity.js";
import { twinSensitivity } from "../src/search/twins.js";
import { resolveInputs } from "../src/workflows/model-inputs.js";
import type { Precision } from "../src/core/host-tensor.js";
import { outlierTailModel, TAIL_TENSOR } from "./int8-fixtures.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

let dir: string;
let model: string;
let cache: string;

beforeAll(async () => {
  dir = tmpDir("trtdbg-bisect-int8-");
  model = path.join(dir, "outlier_tail.onnx");
  saveModel(outlierTailModel(), model);
  // minmax on the default random data (seeds 1..8): the range of spikes_output_0 is its largest spike
  const b = await calibBuild({ model, algo: "minmax", output: path.join(dir, "minmax.cache") });
  cache = b.cache;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const json = <T>(f: string): T => JSON.parse(fs.readFileSync(f, "utf8")) as T;

/**
 * The expectation, by reasoning (see outlierTailModel): spikes_output_0 holds 4 spikes (|x| up to
 * ~2300) on a bulk of |x| <= ~3; its minmax scale (~18) rounds the whole bulk to 0 wherever it
 * is quantized. It is quantized by every int8 layer that reads it, and by its producer `spikes`
 * only when all its consumers run in int8. Its one consumer is relu6, so:
 *   - pinning relu6 alone removes every quantization of it (relu6 reads it in fp32; `spikes`
 *     then emits it unquantized since its consumer is not int8): the outputs pass;
 *   - pinning `spikes` alone does not help (relu6 still quantizes it at its input);
 *   - every other layer is fine in int8 (local errors ~1e-2 against the 0.25 threshold).
 * So the 1-minimal set is exactly [relu6], and relu6 is also the only layer that fails alone.
 */
const EXPECTED_PINS = ["relu6"];

describe("bisect --int8 --calibration-cache", () => {
  it("the twin sensitivity pass equals the per-layer pass under the int8 policy (scores, kinds, int8 evidence)", async () => {
    const p = await prepareModelFile(model);
    const inputs = await resolveInputs(p);
    const c = await readCalibrationCache(cache);
    const policy = makeInt8Policy(p.model, p.types, { cache: c });
    const layers = p.model.graph.layers;
    const candidate = resolveInt8(p.model, p.types, layers.map(() => "int8"), { cache: c, policy }).precisions;
    const searchable = new Set(layers.map((l) => l.index).filter((i) => candidate[i] !== "fp32"));
    const o = { precision: "int8" as const, candidate, searchable };
    const e1 = new Executor(p.model, p.types, { segmentLayers: 1, policy });
    const e2 = new Executor(p.model, p.types, { segmentLayers: 1, policy });
    try {
      const old = await referenceAndSensitivity(e1, inputs, o);
      const tw = await twinSensitivity(e2, inputs, o);
      expect(tw.sensitivity).toEqual(old.sensitivity);
      const relu6 = [...tw.sensitivity.values()].find((x) => x.name === "relu6")!;
      expect(relu6.score).toBeGreaterThanOrEqual(1);
      expect(relu6.evidence.join("; ")).toContain("quantize to 0");
      expect(e2.stats.sessionsBuilt).toBeLessThan(e1.stats.sessionsBuilt);
    } finally {
      await e1.release();
      await e2.release();
    }
  });

  it("the minmax cache fails the int8 threshold; pinning the outlier's consumer passes, pinning its producer does not", async () => {
    const c = await readCalibrationCache(cache);
    expect(127 * c.scales.get(TAIL_TENSOR)!).toBeGreaterThan(500); // the tail sets the range
    const cmp = (pinned: string[]) => compareModel({ model, candidate: "int8", compare: defaultCompareOptions(), int8: { calibrationCache: cache }, layerPrecisions: pinned.map((pattern) => ({ pattern, precision: "fp32" as const })), keepRows: false });
    const all = await cmp([]);
    expect(all.passed).toBe(false);
    expect((await cmp(["spikes"])).passed).toBe(false);
    expect((await cmp(["relu6"])).passed).toBe(true);
  });

  it("pins exactly the planted layer, with the evidence; the re-verified plan passes and reloads", async () => {
    const out = path.join(dir, "out-fp32");
    const plan = path.join(out, "plan.json"), trt = path.join(out, "trtexec.txt"), poly = path.join(out, "poly.txt"), js = path.join(out, "bisect.json");
    const r = await cli("bisect", model, "--int8", "--calibration-cache", cache, "-o", plan, "--trtexec-flags", trt, "--polygraphy-args", poly, "--json", js, "--no-checkpoint");
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain(`bisect ${model}: candidate int8 (fallback fp32), pinned layers in fp32, mode minimal`);
    // 8 layers: conv1+relu1 and mm+bias are fused groups
    expect(r.stdout).toContain("int8: 7 of 8 layers in int8");
    expect(r.stdout).toContain("fallback scale (Div) -> fp32: op Div is not int8-capable");
    const res = json<BisectResult>(js);
    expect(res.precision).toBe("int8");
    expect(res.pin_precision).toBe("fp32");
    expect(res.found).toBe(true);
    expect(res.pinned_layers).toEqual(EXPECTED_PINS);
    expect(res.final_verification!.passed).toBe(true);
    expect(res.final_verification!.metric!).toBeLessThan(DEFAULT_MAX_REL_L2.int8);
    // judged at the int8 threshold; the baseline (everything int8 that can be) fails it
    expect(res.criterion).toContain(`rel L2 <= ${DEFAULT_MAX_REL_L2.int8} for int8 outputs`);
    expect(res.iterations[0]!.phase).toBe("baseline");
    expect(res.iterations[0]!.passed).toBe(false);
    expect(res.iterations[0]!.metric!).toBeGreaterThan(DEFAULT_MAX_REL_L2.int8);
    // the sensitivity pass ran relu6 alone in int8 through the int8 policy: its input quantizes to 0
    expect(res.sensitive_layers.map((s) => s.name)).toEqual(EXPECTED_PINS);
    const ev = res.pinned[0]!.evidence.join("; ");
    expect(ev).toMatch(/local error: rel L2 \S+ > 0\.25/);
    expect(ev).toMatch(new RegExp(`int8 input ${TAIL_TENSOR}: range amax \\S+ \\(scale \\S+\\) for \\|x\\| up to \\S+ here; (9\\d|100)\\.?\\d*% of its nonzero values quantize to 0`));
    // the fallback (Div, fp32 = the pin precision) is neither searchable nor a plan entry
    expect(res.searchable_layers).toBe(7);
    expect(res.int8!.fallbacks.map((f) => f.layer)).toEqual(["scale"]);
    expect(res.plan_entries).toEqual([{ pattern: "relu6", precision: "fp32" }]);
    const p = json<{ default: string; layers: unknown[] }>(plan);
    expect(p.default).toBe("int8");
    expect(p.layers).toEqual([{ pattern: "relu6", precision: "fp32" }]);
    expect(fs.readFileSync(trt, "utf8")).toBe("--layerPrecisions=relu6:fp32 --layerOutputTypes=relu6:fp32 --precisionConstraints=obey\n");
    expect(fs.readFileSync(poly, "utf8")).toBe("--layer-precisions relu6:float32 --precision-constraints obey\n");
    // the plan reloads into compare --int8 with the same verdict and metric
    const s = await compareModel({ model, candidate: "int8", compare: defaultCompareOptions(), int8: { calibrationCache: cache }, precisionPlan: plan });
    expect(s.passed).toBe(true);
    expect(s.layers.find((l) => l.is_graph_output)!.metrics.rel_l2).toBeCloseTo(res.final_verification!.metric!, 12);
  });

  it("--precision fp16 pins to fp16 and writes fp16 entries", async () => {
    const out = path.join(dir, "out-fp16");
    const plan = path.join(out, "plan.json"), trt = path.join(out, "trtexec.txt"), poly = path.join(out, "poly.txt");
    const r = await cli("bisect", model, "--int8", "--calibration-cache", cache, "--precision", "fp16", "-o", plan, "--trtexec-flags", trt, "--polygraphy-args", poly, "--no-checkpoint");
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain("pinned layers (1) -> fp16:");
    expect(json<{ layers: unknown[] }>(plan).layers).toEqual([{ pattern: "relu6", precision: "fp16" }]);
    expect(fs.readFileSync(trt, "utf8")).toBe("--layerPrecisions=relu6:fp16 --layerOutputTypes=relu6:fp16 --precisionConstraints=obey\n");
    expect(fs.readFileSync(poly, "utf8")).toBe("--layer-precisions relu6:float16 --precision-constraints obey\n");
  });

  it("--int8 --fp16: fallbacks run in fp16 and are searchable under an fp32 pin, but not needed", async () => {
    const r = await bisectModel(
      { model, precision: "int8", pinPrecision: "fp32", int8: { calibrationCache: cache, fallback: "fp16" }, criterion: { kind: "compare", compare: defaultCompareOptions() } },
    );
    expect(r.int8!.fallbacks.map((f) => [f.layer, f.precision])).toEqual([["scale", "fp16"]]);
    expect(r.searchable_layers).toBe(8);
    expect(r.found).toBe(true);
    expect(r.pinned_layers).toEqual(EXPECTED_PINS);
    expect(r.plan_entries).toEqual([{ pattern: "relu6", precision: "fp32" }]);
    // Polygraphy's bisection on the same candidate: the first 4 layers (conv1 .. relu6)
    const b = await bisectModel({
      model,
      precision: "int8",
      mode: "bisect",
      int8: { calibrationCache: cache, fallback: "fp16" },
      criterion: { kind: "compare", compare: defaultCompareOptions() },
    });
    expect(b.found).toBe(true);
    expect(b.pinned_layers).toEqual(["conv1", "conv2", "spikes", "relu6"]); // conv1 = conv1+relu1
  });

  it("user errors: --int8 without a cache, a cache without --int8", async () => {
    expectUserError(await cli("bisect", model, "--int8", "--no-checkpoint"), "--calibration-cache");
    expectUserError(await cli("bisect", model, "--fp16", "--calibration-cache", cache, "--no-checkpoint"), "--calibration-cache: give --int8 too");
    expectUserError(await cli("bisect", model, "--no-checkpoint"), "--fp16, --bf16 or --int8");
    // an explicitly quantized model: its Q/DQ nodes decide, pins cannot change them
    const b = new GraphBuilder("qdq");
    const x = b.input("x", "float32", [1, 8]);
    const sc = b.initializer("s", "float32", [], Float32Array.of(0.05));
    const zp = b.initializer("zp", "int8", [], Int8Array.of(0));
    const q = b.node("QuantizeLinear", [x, sc, zp], { name: "q" });
    const dq = b.node("DequantizeLinear", [q, sc, zp], { name: "dq" });
    b.output(b.node("Relu", [dq], { name: "relu" }), "float32", [1, 8]);
    const qdq = path.join(dir, "qdq.onnx");
    saveModel(b.model({ opset: 13 }), qdq);
    expectUserError(await cli("bisect", qdq, "--int8", "--no-checkpoint"), "explicitly quantized");
  });
});

describe("one int8 policy for every assignment: no stale sessions or boundaries", () => {
  /** Every floating tensor a run leaves or captures, by name. */
  async function runAll(exec: Executor, precisions: readonly Precision[], inputs: Parameters<typeof makeFeeds>[0]): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for await (const seg of exec.run(precisions, makeFeeds(inputs), () => true)) {
      for (const [k, v] of seg.captured) out.set(k, fromOrt(k, v).data as Float32Array);
    }
    return out;
  }
  const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

  it("the session cache does not serve a stale int8 graph when only a consumer in a later segment changed", async () => {
    const p = await prepareModelFile(model);
    const inputs = await resolveInputs(p);
    const c = await readCalibrationCache(cache);
    const policy = makeInt8Policy(p.model, p.types, { cache: c });
    const layers = p.model.graph.layers;
    const A = resolveInt8(p.model, p.types, layers.map(() => "int8"), { cache: c, policy }).precisions;
    const relu6 = layers.findIndex((l) => l.name === "relu6");
    const spikes = layers.findIndex((l) => l.name === "spikes");
    const B = [...A];
    B[relu6] = "fp32"; // only the consumer of spikes_output_0 differs
    const exec = new Executor(p.model, p.types, { segmentLayers: 1, policy });
    const fresh = new Executor(p.model, p.types, { segmentLayers: 1, policy });
    try {
      const seg = exec.segments.find((s) => s.start === spikes)!;
      expect(seg.end).toBeLessThanOrEqual(relu6); // the consumer is in a later segment
      // the producer's segment: same own and producer precisions, different graphs
      expect(exec.sessionKey(seg, A)).not.toBe(exec.sessionKey(seg, B));
      expect(policy.quantizesOutput(TAIL_TENSOR, A)).toBe(true);
      expect(policy.quantizesOutput(TAIL_TENSOR, B)).toBe(false);
      const a = await runAll(exec, A, inputs);
      const b = await runAll(exec, B, inputs); // after A on the same executor
      const ref = await runAll(fresh, B, inputs); // B alone on a fresh one
      expect([...b.keys()]).toEqual([...ref.keys()]);
      for (const [k, v] of ref) expect(sameBits(b.get(k)!, v), k).toBe(true);
      expect(sameBits(a.get(TAIL_TENSOR)!, b.get(TAIL_TENSOR)!)).toBe(false); // A quantizes it at the producer, B does not
      // and A again, from the cache, is still A
      const a2 = await runAll(exec, A, inputs);
      for (const [k, v] of a) expect(sameBits(a2.get(k)!, v), k).toBe(true);
    } finally {
      await exec.release();
      await fresh.release();
    }
  });

  it("prefix reuse does not hand B the boundary tensors A left when only a later consumer changed", async () => {
    const p = await prepareModelFile(model);
    const inputs = await resolveInputs(p);
    const c = await readCalibrationCache(cache);
    const policy = makeInt8Policy(p.model, p.types, { cache: c });
    const layers = p.model.graph.layers;
    const A = resolveInt8(p.model, p.types, layers.map(() => "int8"), { cache: c, policy }).precisions;
    const relu6 = layers.findIndex((l) => l.name === "relu6");
    const B = [...A];
    B[relu6] = "fp32";
    const exec = new Executor(p.model, p.types, { segmentLayers: 1, policy });
    const fresh = new Executor(p.model, p.types, { segmentLayers: 1, policy });
    const runner = new PrefixRunner(exec, inputs, 64);
    const outputs = (live: Map<string, OrtTensor>) => p.model.graph.outputs.map((o) => fromOrt(o.name, live.get(o.name)!).data as Float32Array);
    try {
      // same precisions before relu6, but the boundary there holds spikes_output_0 quantized (A) or not (B)
      expect(runner.hashes(A)[relu6]).not.toBe(runner.hashes(B)[relu6]);
      expect(runner.hashes(A)[relu6 - 1]).toBe(runner.hashes(B)[relu6 - 1]);
      await runner.run(A);
      const skippedBefore = runner.layersSkipped;
      const b = outputs(await runner.run(B));
      expect(runner.layersSkipped - skippedBefore).toBe(relu6 - 1); // B starts at the spikes layer, not at relu6
      const ref = outputs(await new PrefixRunner(fresh, inputs, 0).run(B, true));
      b.forEach((v, i) => expect(sameBits(v, ref[i]!)).toBe(true));
    } finally {
      await exec.release();
      await fresh.release();
    }
  });
});
