/**
 * Issue 2's targets: `run --fp16 --mark-all --save-outputs` against bare onnxruntime-node
 * inference (ratio <= 1.25), and its peak RSS against the sum of all activation sizes.
 * Each measurement runs in a fresh child process; bare and tool alternate, best of N.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import type { BenchLine } from "./bench-line.js";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");

async function child(mode: "bare" | "tool" | "capture", model: string, out: string): Promise<{ ms: number; maxRssMB: number }> {
  fs.rmSync(out, { recursive: true, force: true });
  // The compiled CLI code (dist/), as users run it: no TypeScript transpiling inside the timing.
  const r = await execa("node", [path.join(ROOT, "scripts/bench/run-child.mjs"), mode, model, out], { cwd: ROOT, env: { TRT_DEBUG_QUIET_NUMERIC: "1" } });
  return JSON.parse(String(r.stdout).trim().split("\n").pop()!) as { ms: number; maxRssMB: number };
}

export async function benchRunOverhead(label: string, model: string, activationBytes: number | null, reps = 3): Promise<BenchLine[]> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-bench-"));
  let bare = { ms: Infinity, maxRssMB: 0 }, tool = { ms: Infinity, maxRssMB: 0 }, cap = { ms: Infinity, maxRssMB: 0 };
  for (let i = 0; i < reps; i++) {
    const b = await child("bare", model, path.join(out, "b"));
    const c = await child("capture", model, path.join(out, "c"));
    const t = await child("tool", model, path.join(out, "t"));
    if (b.ms < bare.ms) bare = b;
    if (c.ms < cap.ms) cap = c;
    if (t.ms < tool.ms) tool = t;
  }
  let written = 0;
  for (const f of fs.readdirSync(path.join(out, "t"))) written += fs.statSync(path.join(out, "t", f)).size;
  fs.rmSync(out, { recursive: true, force: true });
  const lines: BenchLine[] = [
    { name: `${label}: bare onnxruntime-node inference (load + session + run)`, value: bare.ms, unit: "ms" },
    { name: `${label}: run --fp16 --mark-all --save-outputs`, value: tool.ms, unit: "ms", note: `${(written / 1e6).toFixed(1)} MB of Arrow written` },
    { name: `${label}: ratio tool/bare (target <= 1.25)`, value: tool.ms / bare.ms, unit: "x" },
    { name: `${label}: run --fp16 --mark-all without --save-outputs`, value: cap.ms, unit: "ms", note: `ratio to bare ${(cap.ms / bare.ms).toFixed(2)}x: the rest of the gap is writing the Arrow files` },
    { name: `${label}: peak RSS tool`, value: tool.maxRssMB, unit: "MB", note: `bare onnxruntime ${bare.maxRssMB.toFixed(0)} MB` },
  ];
  if (activationBytes !== null) {
    lines.push({ name: `${label}: sum of all activation sizes`, value: activationBytes / 1e6, unit: "MB" });
    lines.push({ name: `${label}: peak RSS / sum of activations (target < 1)`, value: tool.maxRssMB / (activationBytes / 1e6), unit: "x" });
  }
  return lines;
}

/**
 * The `run` section: the bundled example and the >= 20M-parameter, >= 200-layer generated
 * model (scripts/models/bench.ts; loaded under tsx like the other generator-based sections).
 */
export async function benchRun(): Promise<BenchLine[]> {
  if (!fs.existsSync(path.join(ROOT, "scripts/bench/run-child.mjs"))) throw new Error("bench: run `npm run build` first (the run section times the compiled CLI code)");
  const gen = (await import(new URL("../models/bench.ts", import.meta.url).href)) as {
    benchModel(): { model: unknown; facts: { params: number; activationBytes: number; nodeCount?: number } };
  };
  const { saveModel } = await import("../../test/support/graph-builder.js");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-bench-run-"));
  try {
    const g = gen.benchModel();
    const file = path.join(dir, "bench.onnx");
    saveModel(g.model as Parameters<typeof saveModel>[0], file);
    const golden = await benchRunOverhead("golden/layernorm_overflow", path.join(ROOT, "golden/layernorm_overflow.onnx"), null, 5);
    const big = await benchRunOverhead(`generated conv net (${(g.facts.params / 1e6).toFixed(1)}M params)`, file, g.facts.activationBytes, 3);
    return [...golden, ...big];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The `overhead` section (issue 13, docs/performance.md): `run --fp32 --mark-all
 * --save-outputs`, the same without saving, and `compare --fp16`, each a fresh trt-debug
 * process, against a bare onnxruntime-node process (load + session + 1 run), on the bundled
 * example, the 20M-parameter conv net and a detector-like conv net with BatchNorm
 * (1x3x640x640); plus the profile breakdown of the capture. The measuring is
 * scripts/bench/overhead.mjs (plain JavaScript, so scripts/bench/device.sh runs it too).
 */
export async function benchOverhead(): Promise<BenchLine[]> {
  if (!fs.existsSync(path.join(ROOT, "dist/index.js"))) throw new Error("bench: run `npm run build` first (the overhead section times the compiled CLI)");
  const { measureOverhead } = (await import(new URL("./overhead.mjs", import.meta.url).href)) as {
    measureOverhead(o: { model: string; label?: string; reps?: number; activations?: number | null }): Promise<BenchLine[]>;
  };
  const gen = (await import(new URL("../models/bench.ts", import.meta.url).href)) as {
    benchModel(): { model: unknown; facts: { params: number; activationBytes: number } };
  };
  const { dbDetector } = await import("../models/db-detector.js");
  const { saveModel } = await import("../../test/support/graph-builder.js");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-bench-overhead-"));
  try {
    const det = path.join(dir, "db_detector_640.onnx");
    saveModel(dbDetector({ size: 640, plant: false }).model, det);
    const lines = [
      ...(await measureOverhead({ model: path.join(ROOT, "golden/layernorm_overflow.onnx"), label: "golden/layernorm_overflow" })),
      ...(await measureOverhead({ model: det, label: "detector-like conv net + BN 1x3x640x640" })),
    ];
    const g = gen.benchModel();
    const big = path.join(dir, "bench.onnx");
    saveModel(g.model as Parameters<typeof saveModel>[0], big);
    lines.push(...(await measureOverhead({ model: big, label: `conv net ${(g.facts.params / 1e6).toFixed(1)}M params`, activations: g.facts.activationBytes })));
    return lines;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
