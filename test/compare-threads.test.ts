// compare's candidate side in a worker thread, concurrently with the reference
// (workflows/compare.ts, onnx/ort-worker.ts, runtime/compare-sides.ts; docs/performance.md):
// the same bytes as the sequential path (dumps, summary), the same errors, temporary files
// still cleaned up, no worker left behind.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { BIN, ROOT, cliProcess, interruptWhileWriting, saveSlowMatMulChain } from "./helpers.js";
import { dbDetector } from "../scripts/models/db-detector.js";
import { writeBigExternalModel } from "../scripts/models/big-external.js";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { smallInt8Model } from "./int8-fixtures.js";
import { compareModel, type CompareArgs } from "../src/workflows/compare.js";
import { calibBuild } from "../src/calibration/build.js";
import { defaultCompareOptions } from "../src/compare/tolerance.js";
import { OrtWorker } from "../src/onnx/ort-worker.js";
import { UserError } from "../src/core/errors.js";
import { startPhaseProfile, takePhaseProfile } from "../src/core/phase-profile.js";
import { activationBytes, CONCURRENT_MIN_ACTIVATIONS, runConcurrently, sideThreads } from "../src/runtime/compare-sides.js";
import { prepareModelFile } from "../src/runtime/capture-runs.js";
import ort from "onnxruntime-node";
import { encodeNpy } from "../src/io/npy.js";

let root: string;
let tmp: string;
let savedTmp: string | undefined;
const WORKER_PHASE = /candidate segments in the worker thread/;

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-cthreads-"));
  tmp = path.join(root, "tmp");
  fs.mkdirSync(tmp);
  savedTmp = process.env.TMPDIR;
  process.env.TMPDIR = tmp; // where rewritten external weights go
  saveModel(dbDetector({ size: 64, blocks: [1, 1, 2, 1] }).model, path.join(root, "det.onnx"));
  saveModel(smallInt8Model(), path.join(root, "small.onnx"));
  fs.mkdirSync(path.join(root, "ext"));
  writeBigExternalModel(path.join(root, "ext"), { k: 96, n: 64, matmuls: 4, seed: 3 });
});

afterAll(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  fs.rmSync(root, { recursive: true, force: true });
});

/** compareModel with `compareThreads`, its dumps' bytes, its summary, and whether the worker ran the candidate. */
async function compareWith(args: Omit<CompareArgs, "compare">, threads: 1 | 2, tag: string) {
  const out = path.join(root, `${tag}-${threads}`);
  startPhaseProfile();
  const s = await compareModel({ ...args, compare: defaultCompareOptions(), compareThreads: threads, saveOutputs: out });
  const usedWorker = takePhaseProfile().some((p) => WORKER_PHASE.test(p.phase));
  const dumps = Object.fromEntries(fs.readdirSync(out).sort().map((f) => [f, fs.readFileSync(path.join(out, f))]));
  return { s, dumps, usedWorker };
}

describe("compare with the candidate in a worker thread", () => {
  it("fp16 on a BatchNorm/Resize detector, several segments: byte-identical dumps and summary, worker used and gone", async () => {
    const args = { model: path.join(root, "det.onnx"), candidate: "fp16" as const, segmentMemory: 64 * 1024 };
    const seq = await compareWith(args, 1, "det");
    const con = await compareWith(args, 2, "det");
    expect(seq.usedWorker).toBe(false);
    expect(con.usedWorker).toBe(true);
    expect(Object.keys(seq.dumps)).toEqual(["fp16.arrow", "fp32.arrow"]);
    expect(Object.keys(con.dumps)).toEqual(Object.keys(seq.dumps));
    for (const f of Object.keys(seq.dumps)) expect(Buffer.compare(con.dumps[f]!, seq.dumps[f]!), f).toBe(0);
    expect(JSON.stringify(con.s)).toBe(JSON.stringify(seq.s));
    expect(seq.s.layers.length).toBeGreaterThan(20);
    expect(seq.s.first_failing_layer).not.toBeNull(); // the planted fp16 overflow
    expect(OrtWorker.running).toBe(0);
  });

  it("int8 with a calibration cache: byte-identical", async () => {
    const model = path.join(root, "small.onnx");
    const b = await calibBuild({ model, algo: "entropy", output: path.join(root, "s.cache"), calibBatches: 4 });
    const args = { model, candidate: "int8" as const, int8: { calibrationCache: b.cache }, segmentLayers: 2 };
    const seq = await compareWith(args, 1, "i8");
    const con = await compareWith(args, 2, "i8");
    expect(con.usedWorker).toBe(true);
    expect(con.s.int8!.int8_layers).toBeGreaterThan(0);
    for (const f of ["fp32.arrow", "int8.arrow"]) expect(Buffer.compare(con.dumps[f]!, seq.dumps[f]!), f).toBe(0);
    expect(JSON.stringify(con.s)).toBe(JSON.stringify(seq.s));
    expect(OrtWorker.running).toBe(0);
  });

  it("external weights: the candidate's rewritten weights are temp files of this thread, removed after; byte-identical", async () => {
    const args = { model: path.join(root, "ext", "big_external.onnx"), candidate: "fp16" as const, segmentLayers: 2 };
    const seq = await compareWith(args, 1, "ext");
    const con = await compareWith(args, 2, "ext");
    expect(con.usedWorker).toBe(true);
    for (const f of Object.keys(seq.dumps)) expect(Buffer.compare(con.dumps[f]!, seq.dumps[f]!), f).toBe(0);
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith("trt-debug-"))).toEqual([]);
    expect(OrtWorker.running).toBe(0);
  });

  it("fp8 on an opset-13 model (segments upgraded to opset 19, the upgrade's self-check run by the worker's executor): byte-identical", async () => {
    const b = new GraphBuilder("old");
    const x = b.input("x", "float32", [2, 16]);
    const h = b.node("MatMul", [x, b.initializer("w", "float32", [16, 16], Float32Array.from({ length: 256 }, (_, i) => Math.sin(i) / 4))], { name: "mm" });
    b.output(b.node("ReduceMean", [b.node("Relu", [h], { name: "relu" })], { name: "rm", attrs: { axes: [1], keepdims: 1 } }), "float32");
    const model = path.join(root, "old13.onnx");
    saveModel(b.model({ opset: 13 }), model);
    const cache = (await calibBuild({ model, algo: "minmax", output: path.join(root, "old.cache"), calibBatches: 2, fusion: "none" })).cache;
    const args = { model, candidate: "fp8" as const, int8: { calibrationCache: cache }, fusion: "none" as const, segmentLayers: 1 };
    const seq = await compareWith(args, 1, "fp8");
    const con = await compareWith(args, 2, "fp8");
    expect(con.usedWorker).toBe(true);
    expect(Object.keys(con.dumps)).toEqual(Object.keys(seq.dumps));
    for (const f of Object.keys(seq.dumps)) expect(Buffer.compare(con.dumps[f]!, seq.dumps[f]!), f).toBe(0);
    expect(JSON.stringify(con.s)).toBe(JSON.stringify(seq.s));
    expect(OrtWorker.running).toBe(0);
  });

  it("an onnxruntime failure reads the same (UserError, one line) with or without the worker, and leaves no worker", async () => {
    // A Gather whose indices (an input) are out of range: the model types, onnxruntime fails running it.
    const b = new GraphBuilder("bad_gather");
    const x = b.input("x", "float32", [4, 3]);
    const idx = b.input("idx", "int64", [2]);
    b.output(b.node("Gather", [b.node("Relu", [x], { name: "relu" }), idx], { name: "gather" }), "float32");
    const model = path.join(root, "bad.onnx");
    saveModel(b.model(), model);
    fs.writeFileSync(path.join(root, "x.npy"), encodeNpy({ dtype: "float32", dims: [4, 3], data: new Float32Array(12).fill(1) }));
    fs.writeFileSync(path.join(root, "idx.npy"), encodeNpy({ dtype: "int64", dims: [2], data: new BigInt64Array([0n, 9n]) }));
    const fail = (threads: 1 | 2) =>
      compareModel({ model, candidate: "fp16", compare: defaultCompareOptions(), compareThreads: threads, inputs: { loadInputs: [`x:${path.join(root, "x.npy")}`, `idx:${path.join(root, "idx.npy")}`] } }).then(
        () => null,
        (e: unknown) => e,
      );
    const e1 = await fail(1);
    const e2 = await fail(2);
    expect(e1).toBeInstanceOf(UserError);
    expect(e2).toBeInstanceOf(UserError);
    expect((e2 as Error).message).toBe((e1 as Error).message);
    expect((e2 as Error).message).toMatch(/onnxruntime failed while running the model/);
    expect((e2 as Error).message).not.toContain("\n");
    expect(OrtWorker.running).toBe(0);
  });

  it("the worker's own errors: a model onnxruntime cannot load, a failed run", async () => {
    const w = new OrtWorker();
    try {
      const e = await w.createAndRun(new Uint8Array([1, 2, 3]), {}, {}, ["y"], "m.onnx (layers 0-0)").then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(UserError);
      expect((e as Error).message).toMatch(/^m\.onnx \(layers 0-0\): onnxruntime cannot load the model: /);
      const b = new GraphBuilder("relu");
      b.output(b.node("Relu", [b.input("x", "float32", [2])], { name: "r" }), "float32");
      const { modelBytes } = await import("./support/graph-builder.js");
      const bytes = modelBytes(b.model());
      const ok = await w.createAndRun(bytes, {}, { x: new ort.Tensor("float32", new Float32Array([-1, 2]), [2]) }, ["r_output_0"], "r");
      expect(Array.from(ok.r_output_0!.data as Float32Array)).toEqual([0, 2]);
      const bad = await w.createAndRun(bytes, {}, { x: new ort.Tensor("float32", new Float32Array([1, 2, 3]), [3]) }, ["r_output_0"], "r").then(() => null, (x: unknown) => x);
      expect((bad as Error).message).toMatch(/^r: onnxruntime failed while running the model: /);
    } finally {
      await w.close();
    }
    expect(OrtWorker.running).toBe(0);
    await expect(w.createAndRun(new Uint8Array(), {}, {}, [], "x")).rejects.toThrow(/after close/);
  });

  it("auto: concurrent only with 4+ cores and 2 MiB+ of activations; half the cores each", async () => {
    saveModel(dbDetector({ size: 160, blocks: [1, 1, 2, 1] }).model, path.join(root, "det160.onnx"));
    const det = await prepareModelFile(path.join(root, "det160.onnx"));
    const small = await prepareModelFile(path.join(root, "det.onnx")); // the same net at 64x64
    expect(activationBytes(det.model, det.types)).toBeGreaterThan(CONCURRENT_MIN_ACTIVATIONS);
    expect(activationBytes(small.model, small.types)).toBeLessThan(CONCURRENT_MIN_ACTIVATIONS);
    expect(runConcurrently(undefined, det.model, det.types, 16)).toBe(true);
    expect(runConcurrently(undefined, det.model, det.types, 2)).toBe(false);
    expect(runConcurrently(undefined, small.model, small.types, 16)).toBe(false);
    expect(runConcurrently(2, small.model, small.types, 2)).toBe(true);
    expect(runConcurrently(1, det.model, det.types, 16)).toBe(false);
    expect([sideThreads(16), sideThreads(2), sideThreads(1)]).toEqual([8, 1, 1]);
  });
});

describe("--compare-threads on the command line", () => {
  beforeAll(() => {
    if (!fs.existsSync(path.join(ROOT, "dist", "cli", "main.js"))) throw new Error("dist/ is missing: run `npx tsc -p tsconfig.json` first (npm test does)");
  });

  it("a bad value is a one-line user error naming the flag (exit 2)", async () => {
    const r = await cliProcess("compare", path.join(root, "small.onnx"), "--fp16", "--compare-threads", "3");
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/--compare-threads: must be 1 .* or 2 .*got 3/);
  });

  it("SIGINT during a concurrent compare: exit 130, no dump, no temp file", async () => {
    const dir = fs.mkdtempSync(path.join(root, "sig-"));
    const model = path.join(dir, "big.onnx");
    saveSlowMatMulChain(model, 60);
    const out = path.join(dir, "out");
    const p = execa("node", [BIN, "compare", model, "--fp16", "--compare-threads", "2", "--save-outputs", out, "--segment-layers", "4"], { reject: false, env: { TMPDIR: tmp } });
    const res = await interruptWhileWriting(p, out);
    expect(res.exitCode).toBe(130);
    expect(fs.readdirSync(out)).toEqual([]);
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith("trt-debug-"))).toEqual([]);
  });

  it("the process ends by itself after a concurrent compare (no worker keeps it alive), same output as sequential", async () => {
    const model = path.join(root, "det.onnx");
    const r1 = await cliProcess("compare", model, "--fp16", "--compare-threads", "1", "--segment-memory", "64K");
    const r2 = await cliProcess("compare", model, "--fp16", "--compare-threads", "2", "--segment-memory", "64K");
    expect(r1.code).toBe(1);
    expect(r2.code).toBe(1);
    expect(r2.stdout).toBe(r1.stdout);
  });
});
