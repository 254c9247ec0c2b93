/**
 * Bisection at scale: the twin sensitivity pass (one session per group of layers) gives the
 * per-layer pass's results with far fewer sessions; criteria sanity (refusal, most-of-model
 * stop); checkpoints that lose nothing (sensitivity results, SIGKILL + --resume, removal
 * only after the outputs).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelProto } from "onnx-buf";
import { GraphBuilder } from "./support/graph-builder.js";
import { Rng } from "../scripts/models/common.js";
import { resolveInputs } from "../src/workflows/model-inputs.js";
import { prepareModelFile } from "../src/runtime/capture-runs.js";
import { Executor } from "../src/runtime/executor.js";
import { referenceAndSensitivity, type LayerSensitivity } from "../src/search/sensitivity.js";
import { twinSensitivity } from "../src/search/twins.js";
import { layernormOverflow } from "../scripts/models/layernorm-overflow.js";
import { expOverflow } from "../scripts/models/exp-overflow.js";
import { underflow } from "../scripts/models/underflow.js";
import { matmulConsumer } from "../scripts/models/matmul-consumer.js";
import { dbDetector } from "../scripts/models/db-detector.js";
import { withIf, withLoop } from "../scripts/models/fixtures.js";
import { defaultCompareOptions } from "../src/compare/tolerance.js";
import { bisectModel, type BisectResult } from "../src/workflows/bisect.js";
import { parseByteSize } from "../src/cli/value-flags.js";
import { BIN, cli, expectUserError, ModelFiles, tmpDir } from "./helpers.js";

const files = new ModelFiles();

const planted = {
  layernorm_overflow: layernormOverflow(),
  exp_overflow: expOverflow(),
  underflow: underflow(),
  matmul_consumer: matmulConsumer(),
  conv_constants: convConstants(),
  // If/Loop layers (subgraphs, outer-scope inputs): no twin, the per-layer fallback
  with_if: withIf(),
  with_loop: withLoop(),
};

/**
 * A small detector-like graph: BN parameters and Resize roi/scales in Constant nodes (folded
 * into weights by the layer model), a depthwise conv, Concat, ConvTranspose, Sigmoid, and a
 * conv + BN + ReLU whose output overflows fp16: its BN's gamma and beta are scaled by 1e5, so
 * the post-BN activation (after folding in fp32, the fused layer "big/conv") is ~1e5 > 65504.
 */
function convConstants(): { model: ModelProto } {
  const rng = new Rng("conv_constants");
  const b = new GraphBuilder("conv_constants");
  const x = b.input("x", "float32", [1, 3, 16, 16]);
  const conv = (h: string, p: string, cin: number, cout: number, group: number, bnGain: number) => {
    const w = b.initializer(`${p}/w`, "float32", [cout, cin / group, 3, 3], rng.normals((cout * cin * 9) / group, Math.sqrt(2 / ((cin / group) * 9))));
    const y = b.node("Conv", [h, w], { name: `${p}/conv`, attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group } });
    const c = (n: string, v: Float32Array) => b.constant(`${p}/${n}`, "float32", [cout], v, `${p}/${n}`);
    const bn = b.node("BatchNormalization", [y, c("scale", rng.uniforms(cout, 0.7, 1.3).map((v) => v * bnGain)), c("bias", rng.normals(cout, 0.05).map((v) => v * bnGain)), c("mean", rng.normals(cout, 0.05)), c("var", rng.uniforms(cout, 0.8, 1.25))], { name: `${p}/bn` });
    return b.node("Relu", [bn], { name: `${p}/relu` });
  };
  const a = conv(x, "c1", 3, 8, 1, 1);
  const d = conv(a, "dw", 8, 8, 8, 1);
  const big = conv(d, "big", 8, 8, 1, 1e5);
  const pool = b.node("MaxPool", [big], { name: "pool", attrs: { kernel_shape: [2, 2], strides: [2, 2] } });
  const roi = b.constant("up/roi", "float32", [0], [], "up/roi");
  const sc = b.constant("up/scales", "float32", [4], [1, 1, 2, 2], "up/scales");
  const up = b.node("Resize", [pool, roi, sc], { name: "up/resize", attrs: { mode: "nearest" } });
  const cat = b.node("Concat", [up, a], { name: "concat", attrs: { axis: 1 } });
  const tw = b.initializer("deconv/w", "float32", [16, 1, 2, 2], rng.normals(64, 0.3));
  const t = b.node("ConvTranspose", [cat, tw], { name: "deconv", attrs: { kernel_shape: [2, 2], strides: [2, 2] } });
  const y = b.node("Sigmoid", [t], { name: "sigmoid" });
  b.output(y, "float32", [1, 1, 32, 32]);
  return { model: b.model({ opset: 11, irVersion: 6 }) };
}
/**
 * 1391 ONNX nodes, 208 fused layers (the default fusion) at 1x3x64x64; planted activation
 * overflow in s3/b19/expand (pin set: s3/b19/expand/conv and s3/b19/dw/conv).
 */
const detector = dbDetector({ size: 64, blocks: [4, 8, 38, 12] });
/** Layers of the detector as trt-debug sees it (the default fusion), set in beforeAll. */
let detectorLayers = 0;
const VAL = "[-2.1,2.6]";

beforeAll(async () => {
  files.open("trtdbg-bscale-");
  for (const [name, g] of Object.entries(planted)) files.save(name, g.model);
  files.save("detector", detector.model);
  detectorLayers = (await prepareModelFile(files.get("detector"))).model.graph.layers.length;
});
afterAll(() => files.close());

async function bothPasses(file: string) {
  const p = await prepareModelFile(file);
  const inputs = await resolveInputs(p, {});
  const searchable = new Set(p.model.graph.layers.map((l) => l.index));
  const o = { precision: "fp16" as const, searchable };
  const e1 = new Executor(p.model, p.types, { segmentLayers: 1 });
  const old = await referenceAndSensitivity(e1, inputs, o);
  await e1.release();
  const e2 = new Executor(p.model, p.types, { segmentLayers: 1 });
  const tw = await twinSensitivity(e2, inputs, o);
  await e2.release();
  return { old, tw, oldSessions: e1.stats.sessionsBuilt, newSessions: e2.stats.sessionsBuilt, layers: p.model.graph.layers.length };
}

const rank = (m: Map<number, LayerSensitivity>) => [...m.values()].sort((a, b) => b.score - a.score || a.index - b.index).map((s) => s.name);

describe("twin sensitivity pass = per-layer pass", () => {
  for (const name of Object.keys(planted)) {
    it(name, async () => {
      const r = await bothPasses(files.get(name));
      expect(r.tw.sensitivity.size).toBe(r.old.sensitivity.size);
      for (const [i, s] of r.old.sensitivity) expect(r.tw.sensitivity.get(i), s.name).toEqual(s);
      expect(rank(r.tw.sensitivity)).toEqual(rank(r.old.sensitivity));
      for (const [k, v] of r.old.outputs) expect(r.tw.outputs.get(k)).toEqual(v);
      expect(r.newSessions).toBeLessThan(r.oldSessions);
      if (name.startsWith("with_")) expect(r.tw.stats.fallbackLayers).toBeGreaterThan(0);
      else expect(r.tw.stats.fallbackLayers).toBe(0);
      // the overflowing fused layer is flagged (not a Constant: constants are weights now)
      if (name === "conv_constants") expect([...r.tw.sensitivity.values()].filter((x) => x.kind === "overflow").map((x) => x.name)).toContain("big/conv");
    });
  }
});

const sorted = (x: readonly string[]) => [...x].sort();

describe("bisect at scale (library)", () => {
  let r: BisectResult;
  beforeAll(async () => {
    r = await bisectModel({ model: files.get("detector"), precision: "fp16", inputs: { valRange: { lo: -2.1, hi: 2.6 } }, criterion: { kind: "compare", compare: defaultCompareOptions() } });
  });
  it("finds the planted culprit by name", () => {
    // the plant survives BN folding: an activation overflow, pinned as two fused layers
    expect(detector.facts.minimalPinSet).toEqual(["s3/b19/expand/conv", "s3/b19/dw/conv"]);
    expect(r.found).toBe(true);
    expect(r.stopped).toBeNull();
    expect(sorted(r.pinned_layers)).toEqual(sorted(detector.facts.minimalPinSet!));
  });
  it("builds far fewer sessions than layers (sensitivity pass and whole run)", () => {
    const n = r.total_layers;
    expect(n).toBe(detectorLayers);
    expect(n).toBeGreaterThanOrEqual(200);
    expect(r.sensitivity_pass.evaluated).toBe(r.searchable_layers);
    expect(r.sensitivity_pass.sessions_built).toBeLessThan(n / 4);
    expect(r.sessions_built).toBeLessThan(n / 4);
    expect(r.sessions_per_layer).toBe(r.sessions_built / n);
  });
});

describe("--memory-budget and --max-pinned", () => {
  it("parses sizes in powers of 1024 and rejects the rest with one line", async () => {
    expect(parseByteSize("2G", "--memory-budget")).toBe(2 * 2 ** 30);
    expect(parseByteSize("512M", "--memory-budget")).toBe(512 * 2 ** 20);
    expect(parseByteSize("1.5GiB", "--memory-budget")).toBe(1.5 * 2 ** 30);
    expect(parseByteSize("300000", "--memory-budget")).toBe(300000);
    expectUserError(await cli("bisect", files.get("underflow"), "--fp16", "--memory-budget", "lots", "--no-checkpoint"), "--memory-budget", "2G");
    expectUserError(await cli("bisect", files.get("underflow"), "--fp16", "--memory-budget", "0", "--no-checkpoint"), "--memory-budget");
    expectUserError(await cli("bisect", files.get("underflow"), "--fp16", "--max-pinned", "1.5", "--no-checkpoint"), "--max-pinned");
  });
});

describe("criteria sanity (CLI)", () => {
  it("refuses, before searching, a criterion the all-fp32 plan fails: one line, exit 2", async () => {
    const res = await cli("bisect", files.get("underflow"), "--fp16", "--metric", "cosine", "--threshold", "1.5", "--no-checkpoint");
    expectUserError(res, "--cosine 1.5: the criterion fails even with all", "searchable layers in fp32");
    expect(res.stdout).not.toMatch(/PASSED|gallop|binary/);
  });
  it("a criterion so strict that most layers would be pinned stops with the message, exit 1, not PASSED", async () => {
    const dir2 = tmpDir("trtdbg-bstop-");
    try {
      for (const mode of ["minimal", "bisect"]) {
        const json = path.join(dir2, `${mode}.json`);
        const res = await cli("bisect", files.get("detector"), "--fp16", "--val-range", VAL, "--max-rel-l2", "1e-9", "--mode", mode, "--no-checkpoint", "--json", json, "-o", path.join(dir2, "plan.json"));
        expect(res.code, res.stdout + res.stderr).toBe(1);
        expect(res.stdout).not.toContain("PASSED");
        expect(res.stdout).toMatch(/STOPPED: this is FP32, not a plan: (more than )?\d+ of \d+ searchable layers \(\d+%\) would be pinned in fp32 \((more than --max-pinned 0.5|all of them; --mode bisect stops only then unless --max-pinned is given)\); your criterion or inputs are too strict/);
        const j = JSON.parse(fs.readFileSync(json, "utf8")) as BisectResult;
        expect(j.found).toBe(false);
        expect(j.stopped).toMatch(/^this is FP32/);
        expect(j.plan).toBeNull();
        expect(fs.existsSync(path.join(dir2, "plan.json"))).toBe(false);
      }
    } finally {
      fs.rmSync(dir2, { recursive: true, force: true });
    }
  });
});

/** The built CLI as a real process (dist/ must be built). */
function spawnCli(args: string[], env: Record<string, string> = {}) {
  return execa("node", [BIN, "bisect", ...args], { reject: false, env: { TRT_DEBUG_QUIET_NUMERIC: "1", ...env } });
}

describe("nothing lost: checkpoints (CLI process)", () => {
  it("SIGKILL during the sensitivity pass, then --resume: same answer, checkpointed layers not re-evaluated", async () => {
    const d = tmpDir("trtdbg-bkill-");
    try {
      const ck = path.join(d, "ck.json");
      const json = path.join(d, "r.json");
      // a small memory budget: small sensitivity groups, so the pass writes the checkpoint many times
      const common = [files.get("detector"), "--fp16", "--val-range", VAL, "--memory-budget", "8M", "--checkpoint", ck, "--json", json];
      const child = spawnCli(common);
      let killedWith = -1;
      for (let t = 0; t < 4000 && killedWith < 0; t++) {
        if (fs.existsSync(ck)) {
          child.kill("SIGKILL");
          killedWith = 0;
        } else await new Promise((r) => setTimeout(r, 5));
      }
      const first = await child;
      expect(first.signal).toBe("SIGKILL");
      const saved = JSON.parse(fs.readFileSync(ck, "utf8")) as { sensitivity: Record<string, unknown>; evaluations: Record<string, unknown> };
      const done = Object.keys(saved.sensitivity).length;
      expect(done).toBeGreaterThan(0);
      expect(done).toBeLessThan(detectorLayers);
      expect(fs.readdirSync(d).filter((f) => f.includes(".tmp-"))).toEqual([]);
      const res = await spawnCli([...common, "--resume"]);
      expect(res.exitCode, res.stderr).toBe(0);
      const j = JSON.parse(fs.readFileSync(json, "utf8")) as BisectResult;
      expect(sorted(j.pinned_layers)).toEqual(sorted(detector.facts.minimalPinSet!));
      expect(j.resumed).toBe(true);
      expect(j.sensitivity_pass.from_checkpoint).toBe(done);
      expect(j.sensitivity_pass.evaluated).toBe(j.searchable_layers - done);
      expect(fs.existsSync(ck)).toBe(false);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it("SIGTERM during the search ends the process (exit 143) and leaves a valid checkpoint", async () => {
    const d = tmpDir("trtdbg-bterm-");
    try {
      const ck = path.join(d, "ck.json");
      const child = spawnCli([files.get("detector"), "--fp16", "--val-range", VAL, "--memory-budget", "8M", "--checkpoint", ck]);
      for (let t = 0; t < 4000 && !fs.existsSync(ck); t++) await new Promise((r) => setTimeout(r, 5));
      child.kill("SIGTERM");
      const r = await child;
      expect(r.exitCode).toBe(143);
      expect(r.stderr).toContain("interrupted (SIGTERM)");
      const saved = JSON.parse(fs.readFileSync(ck, "utf8")) as { format: string; sensitivity: Record<string, unknown> };
      expect(saved.format).toBe("trt-debug/bisect-checkpoint@1");
      expect(Object.keys(saved.sensitivity).length).toBeGreaterThan(0);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it("killed after the search but before the outputs: the checkpoint stays; a normal finish removes it after writing them", async () => {
    const d = tmpDir("trtdbg-bout-");
    try {
      const ck = path.join(d, "ck.json");
      const plan = path.join(d, "plan.json");
      const json = path.join(d, "r.json");
      const common = [files.get("detector"), "--fp16", "--val-range", VAL, "--checkpoint", ck, "-o", plan, "--json", json];
      const first = await spawnCli(common, { TRT_DEBUG_TEST_KILL_BEFORE_OUTPUTS: "1" });
      expect(first.signal).toBe("SIGKILL");
      expect(fs.existsSync(ck)).toBe(true);
      expect(fs.existsSync(plan)).toBe(false);
      const saved = JSON.parse(fs.readFileSync(ck, "utf8")) as { sensitivity: Record<string, unknown>; evaluations: Record<string, unknown> };
      const evals = Object.keys(saved.evaluations).length;
      expect(Object.keys(saved.sensitivity).length).toBe(detectorLayers);
      const res = await spawnCli([...common, "--resume"]);
      expect(res.exitCode, res.stderr).toBe(0);
      expect(fs.existsSync(plan)).toBe(true);
      expect(fs.existsSync(ck)).toBe(false);
      const j = JSON.parse(fs.readFileSync(json, "utf8")) as BisectResult;
      expect(sorted(j.pinned_layers)).toEqual(sorted(detector.facts.minimalPinSet!));
      // every search evaluation and every sensitivity result came from the checkpoint
      expect(j.evaluations).toBe(0);
      expect(j.cached_evaluations).toBeGreaterThanOrEqual(evals);
      expect(j.sensitivity_pass.evaluated).toBe(0);
      expect(j.sensitivity_pass.from_checkpoint).toBe(j.searchable_layers);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
