/**
 * Issue 13's "models past 2 GB" target: a generated external-data model of >= 3 GB
 * (scripts/models/big-external.ts: four 16384 x 12288 float32 MatMuls) runs `compare --fp16`
 * and `run --mark-all` with peak RSS <= 1.3 x (its weights + its largest segment's
 * activations). The model is written on the fly in os.tmpdir() and deleted after, also when a
 * step fails. A strongly typed twin (the same MatMuls with fp16 weights, lifted to fp32 at load
 * into a temporary data file) runs `run --mark-all` against (its weights as fp32 + activations),
 * and so does a twin whose weights are stored transposed and read through Transpose nodes
 * (folded at load into the temporary data file). Each job runs in a fresh child process over the compiled dist/ (bigmodel-child.mjs).
 *
 *   npm run bench -- --only bigmodel [--big-k 16384 --big-n 12288 --big-matmuls 4]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import type { BenchLine } from "./bench-line.js";
import { writeBigExternalModel } from "../models/big-external.js";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
/** Layers per segment of a run with default options (runtime/executor.ts DEFAULT_SEGMENT_LAYERS). */
const SEGMENT_LAYERS = 8;

async function child(mode: "bare" | "run" | "compare", model: string): Promise<{ ms: number; maxRssMB: number; passed: boolean | null }> {
  const r = await execa("node", [path.join(ROOT, "scripts/bench/bigmodel-child.mjs"), mode, model], { cwd: ROOT, env: { TRT_DEBUG_QUIET_NUMERIC: "1" } });
  return JSON.parse(String(r.stdout).trim().split("\n").pop()!) as { ms: number; maxRssMB: number; passed: boolean | null };
}

export interface BigModelBenchOptions {
  k?: number;
  n?: number;
  matmuls?: number;
}

export async function benchBigModel(o: BigModelBenchOptions = {}): Promise<BenchLine[]> {
  if (!fs.existsSync(path.join(ROOT, "dist/index.js"))) throw new Error("bench: run `npm run build` first (the bigmodel section runs the compiled code)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-bench-big-"));
  try {
    const t0 = performance.now();
    const f = writeBigExternalModel(dir, { k: o.k, n: o.n, matmuls: o.matmuls });
    const genMs = performance.now() - t0;
    // Activations of the largest segment: the chain's layer outputs in groups of SEGMENT_LAYERS, plus each group's input.
    const k = o.k ?? 16384, n = o.n ?? 12288;
    const outBytes = f.layers.map((_, i) => (Math.floor(i / 2) % 2 === 0 ? n : k) * 4);
    let segAct = 0;
    for (let s = 0; s < outBytes.length; s += SEGMENT_LAYERS) {
      const inBytes = s === 0 ? k * 4 : outBytes[s - 1]!;
      segAct = Math.max(segAct, inBytes + outBytes.slice(s, s + SEGMENT_LAYERS).reduce((a, b) => a + b, 0));
    }
    const denomMB = (f.weightBytes + segAct) / 1e6;
    const bare = await child("bare", f.model);
    const cmp = await child("compare", f.model);
    const run = await child("run", f.model);
    const worst = Math.max(cmp.maxRssMB, run.maxRssMB);
    fs.rmSync(f.data, { force: true }); // disk: the typed twin and its lifted copy come next
    const t1 = performance.now();
    const typed = writeBigExternalModel(dir, { k: o.k, n: o.n, matmuls: o.matmuls, weightType: "float16", stem: "big_typed" });
    const typedGenMs = performance.now() - t1;
    // One segment holds the typed model's 6 layers (casts in and out, 4 MatMul groups): its activations are all of them, plus the casts'.
    const typedAct = typed.activationBytes + k * 2 + outBytes[outBytes.length - 1]! * 4;
    const typedDenomMB = (typed.weightBytesFloat32 + typedAct) / 1e6;
    const typedRun = await child("run", typed.model);
    fs.rmSync(typed.data, { force: true });
    const tr = writeBigExternalModel(dir, { k: o.k, n: o.n, matmuls: o.matmuls, transposed: true, stem: "big_transposed" });
    const trRun = await child("run", tr.model);
    return [
      { name: "bigmodel: weights (external data)", value: f.weightBytes / 1e6, unit: "MB", note: `${f.layers.filter((l) => l.startsWith("mm")).length} MatMuls, largest ${(f.largestWeightBytes / 1e6).toFixed(0)} MB; written in ${(genMs / 1000).toFixed(1)} s` },
      { name: "bigmodel: largest segment's activations", value: segAct / 1e6, unit: "MB" },
      { name: "bigmodel: bare onnxruntime-node (session from the path + one run) peak RSS", value: bare.maxRssMB, unit: "MB", note: `${(bare.ms / 1000).toFixed(1)} s` },
      { name: "bigmodel: compare --fp16 peak RSS", value: cmp.maxRssMB, unit: "MB", note: `${(cmp.ms / 1000).toFixed(1)} s, ${cmp.passed ? "passed" : "failed"} (exit ${cmp.passed ? 0 : 1})` },
      { name: "bigmodel: run --mark-all peak RSS", value: run.maxRssMB, unit: "MB", note: `${(run.ms / 1000).toFixed(1)} s` },
      { name: "bigmodel: peak RSS / (weights + largest segment activations) (target <= 1.3)", value: worst / denomMB, unit: "x", note: `compare ${(cmp.maxRssMB / denomMB).toFixed(3)}, run ${(run.maxRssMB / denomMB).toFixed(3)}` },
      { name: "bigmodel: typed fp16 model weights (external data)", value: typed.weightBytes / 1e6, unit: "MB", note: `${(typed.weightBytesFloat32 / 1e6).toFixed(0)} MB as fp32; written in ${(typedGenMs / 1000).toFixed(1)} s` },
      { name: "bigmodel: typed fp16 model run --mark-all peak RSS / (weights as fp32 + largest segment activations)", value: typedRun.maxRssMB / typedDenomMB, unit: "x", note: `${typedRun.maxRssMB.toFixed(0)} MB peak RSS, ${(typedRun.ms / 1000).toFixed(1)} s` },
      { name: "bigmodel: Transpose-of-weights model (folded at load) run --mark-all peak RSS / (weights + largest segment activations)", value: trRun.maxRssMB / denomMB, unit: "x", note: `${trRun.maxRssMB.toFixed(0)} MB peak RSS, ${(trRun.ms / 1000).toFixed(1)} s` },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
