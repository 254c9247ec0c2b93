/**
 * Bisection cost: on a generated >= 200-layer residual MLP with two planted fp16 culprits
 * (an exp overflow in an unstabilized softmax, needing {exp, sum, div} pinned, and an
 * underflow, needing {down2, up1}), the model-execution equivalents and wall time of
 * `bisect --mode minimal` and `--mode bisect`, and their ratio to one plain FP32 inference
 * (one onnxruntime session over the whole model, measured in the same process).
 *
 * Scale: `bisect --fp16` through the CLI in a fresh process (compiled dist/, peak RSS of that
 * process) on the generated DB-style detector (scripts/models/db-detector.ts: 677 ONNX nodes,
 * 106 trt-debug layers with the default fusion, at 1x3x640x640, opset 11, BN in Constant nodes,
 * one planted fp16 activation overflow) and on a variant of it with >= 2000 trt-debug layers
 * after fusion (2032 layers, ~14k ONNX nodes, 1x3x128x128): sessions built (and per layer,
 * overall and in the sensitivity pass), wall time, peak RSS, pinned layers. Each label gives
 * both counts; "per layer" is per trt-debug layer. Targets: the detector under 2 minutes and 2 GB.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import ort from "onnxruntime-node";
import { GraphBuilder, modelBytes, saveModel } from "../../test/support/graph-builder.js";
import type { ModelProto } from "onnx-buf";
import { defaultCompareOptions } from "../../src/compare/tolerance.js";
import { execa } from "execa";
import { bisectModel, type BisectMode, type BisectResult } from "../../src/workflows/bisect.js";
import { prepareModelFile } from "../../src/runtime/capture-runs.js";
import type { BenchLine } from "./bench-line.js";

/** Deterministic normals (LCG + Box-Muller). */
function normals(seed: number, n: number, std: number, mean = 0): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

export interface BisectBenchModel {
  model: ModelProto;
  layers: number;
  /** The minimal set of layers to pin (by construction). */
  expected: string[];
}

/** A residual MLP of at least `minLayers` nodes with an exp overflow near 1/3 and an underflow near 2/3. */
export function bisectBenchModel(minLayers = 240): BisectBenchModel {
  const H = 32;
  const b = new GraphBuilder("bisect_bench");
  let h = b.input("x", "float32", [1, H]);
  let seed = 7;
  const count = () => b.nodeList.length;
  const scalar = (name: string, v: number) => (b.has(name) ? name : b.initializer(name, "float32", [], [v]));
  const norm = (x: string, p: string) => {
    const mean = b.node("ReduceMean", [x], { name: `${p}/mean`, attrs: { axes: [-1], keepdims: 1 } });
    const d = b.node("Sub", [x, mean], { name: `${p}/sub` });
    const sq = b.node("Mul", [d, d], { name: `${p}/sq` });
    const v = b.node("ReduceMean", [sq], { name: `${p}/var`, attrs: { axes: [-1], keepdims: 1 } });
    const ve = b.node("Add", [v, scalar("eps", 1e-5)], { name: `${p}/add_eps` });
    const sd = b.node("Sqrt", [ve], { name: `${p}/sqrt` });
    const y = b.node("Div", [d, sd], { name: `${p}/div` });
    const g = b.initializer(`${p}/gamma`, "float32", [H], normals(seed++, H, 0.1, 1));
    const be = b.initializer(`${p}/beta`, "float32", [H], normals(seed++, H, 0.2, 1));
    return b.node("Add", [b.node("Mul", [y, g], { name: `${p}/mul_gamma` }), be], { name: `${p}/add_beta` });
  };
  const expected: string[] = [];
  let block = 0;
  let planted = 0;
  while (count() < minLayers || planted < 2) {
    if (planted === 0 && count() >= minLayers / 3) {
      const n = norm(h, "c0/norm");
      const s = b.node("Add", [n, scalar("shift", 12)], { name: "c0/shift" });
      const e = b.node("Exp", [s], { name: "c0/exp" });
      const axes = b.initializer("axes", "int64", [1], [-1]);
      const sum = b.node("ReduceSum", [e, axes], { name: "c0/sum", attrs: { keepdims: 1 } });
      const p = b.node("Div", [e, sum], { name: "c0/div" });
      h = b.node("Mul", [p, scalar("width", H)], { name: "c0/rescale" });
      expected.push("c0/exp", "c0/sum", "c0/div");
      planted++;
      continue;
    }
    if (planted === 1 && count() >= (2 * minLayers) / 3) {
      h = b.node("Sigmoid", [norm(h, "c1/norm")], { name: "c1/sigmoid" });
      for (const [n, f] of [["down1", 1e-4], ["down2", 1e-4], ["up1", 1e4], ["up2", 1e4]] as const) h = b.node("Mul", [h, scalar(`f${f}`, f)], { name: `c1/${n}` });
      expected.push("c1/down2", "c1/up1");
      planted++;
      continue;
    }
    const w = b.initializer(`blk${block}/w`, "float32", [H, H], normals(seed++, H * H, 0.5 * Math.sqrt(2 / H)));
    const bias = b.initializer(`blk${block}/b`, "float32", [H], normals(seed++, H, 0.05));
    const r = b.node("Relu", [b.node("Add", [b.node("MatMul", [h, w], { name: `blk${block}/matmul` }), bias], { name: `blk${block}/add` })], { name: `blk${block}/relu` });
    h = b.node("Add", [h, r], { name: `blk${block}/residual` });
    if (++block % 3 === 0) h = norm(h, `norm${block / 3}`);
  }
  const w = b.initializer("head/w", "float32", [H, 10], normals(seed++, H * 10, Math.sqrt(1 / H)));
  const y = b.node("MatMul", [h, w], { name: "head/matmul" });
  b.output(y, "float32", [1, 10]);
  return { model: b.model({ opset: 17, irVersion: 8 }), layers: count(), expected };
}

/** One FP32 inference of the whole model as one onnxruntime session: cold (create + run) and warm (run), ms. */
async function fp32Inference(model: ModelProto): Promise<{ coldMs: number; warmMs: number }> {
  const bytes = modelBytes(model);
  const feeds = { x: new ort.Tensor("float32", new Float32Array(32).map((_, i) => (i % 7) / 7), [1, 32]) };
  let cold = Infinity, warm = Infinity;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
    await s.run(feeds);
    cold = Math.min(cold, performance.now() - t0);
    for (let i = 0; i < 5; i++) {
      const t1 = performance.now();
      await s.run(feeds);
      warm = Math.min(warm, performance.now() - t1);
    }
    await s.release();
  }
  return { coldMs: cold, warmMs: warm };
}

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");

interface DbDetectorOptions {
  size?: number;
  blocks?: readonly number[];
}
type DbDetector = (o: DbDetectorOptions) => { model: ModelProto; facts: { nodeCount: number; minimalPinSet?: string[]; inputs: { dims: number[] }[] } };

/** `bisect --fp16` on a generated detector in a fresh process: sessions, wall, peak RSS, pins. */
async function scaleLines(dir: string, what: string, opts: DbDetectorOptions): Promise<BenchLine[]> {
  // scripts/ is outside the compiled tree; the bench runs under tsx, which loads it
  const gen = (await import(path.join(ROOT, "scripts/models/db-detector.ts"))) as { dbDetector: DbDetector };
  const g = gen.dbDetector(opts);
  const file = path.join(dir, `db_detector_${g.facts.nodeCount}.onnx`);
  saveModel(g.model, file);
  const json = path.join(dir, `db_detector_${g.facts.nodeCount}.json`);
  const child = path.join(ROOT, "scripts/bench/bisect-child.mjs");
  if (!fs.existsSync(path.join(ROOT, "dist/cli/main.js"))) throw new Error("bench: run `npm run build` first (the bisect section runs the compiled CLI)");
  const r = await execa("node", [child, file, "--fp16", "--val-range", "[-2.1,2.6]", "--no-checkpoint", "--json", json], { cwd: ROOT, env: { TRT_DEBUG_QUIET_NUMERIC: "1" }, reject: false });
  const last = String(r.stdout).trim().split("\n").pop() ?? "";
  if (!last.startsWith("{")) throw new Error(`bench: the bisect child on ${path.basename(file)} printed no result (exit ${r.exitCode ?? "-"}, signal ${r.signal ?? "-"}): ${String(r.stderr).trim().split("\n").slice(-5).join(" | ")}`);
  const m = JSON.parse(last) as { code: number; ms: number; maxRssMB: number };
  const b = JSON.parse(fs.readFileSync(json, "utf8")) as BisectResult;
  const S = g.facts.inputs[0]!.dims.join("x");
  const label = `bisect --fp16 scale (${what}: ${g.facts.nodeCount} ONNX nodes, ${b.total_layers} trt-debug layers with the default fusion, ${S})`;
  const planted = [...b.pinned_layers].sort().join(",") === [...(g.facts.minimalPinSet ?? [])].sort().join(",");
  return [
    { name: `${label}: sessions built`, value: b.sessions_built, unit: "", note: `sensitivity pass ${b.sensitivity_pass.sessions_built} in ${b.sensitivity_pass.groups} groups` },
    { name: `${label}: sessions built per layer`, value: b.sessions_per_layer, unit: "", note: `sensitivity pass ${(b.sensitivity_pass.sessions_built / b.total_layers).toFixed(4)} per layer` },
    { name: `${label}: wall`, value: m.ms / 1000, unit: "s", note: `exit ${m.code}; wall_seconds ${b.wall_seconds.toFixed(2)}; ${b.model_executions.toFixed(2)} model executions` },
    { name: `${label}: peak RSS`, value: m.maxRssMB, unit: "MB", note: `--memory-budget ${(b.memory_budget / 2 ** 30).toFixed(1)} GiB` },
    { name: `${label}: pinned layers`, value: b.pinned_layers.length, unit: "", note: `${b.pinned_layers.join(", ")}${planted ? " (the planted set)" : " (NOT the planted set)"}` },
  ];
}

export async function benchBisect(): Promise<BenchLine[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-bench-bisect-"));
  try {
    const g = bisectBenchModel(240);
    const file = path.join(dir, "bisect_bench.onnx");
    saveModel(g.model, file);
    const inf = await fp32Inference(g.model);
    // g.layers counts ONNX nodes; trt-debug's layers (the default fusion) are fewer: MatMul+Add+Relu(+residual) fuse
    const layers = (await prepareModelFile(file)).model.graph.layers.length;
    const label = `bisect (MLP of ${g.layers} ONNX nodes, ${layers} trt-debug layers with the default fusion, 2 planted culprits)`;
    const lines: BenchLine[] = [
      { name: `${label}: one FP32 inference, cold (session + run)`, value: inf.coldMs, unit: "ms" },
      { name: `${label}: one FP32 inference, warm (run)`, value: inf.warmMs, unit: "ms" },
    ];
    const runMode = async (mode: BisectMode): Promise<BisectResult> =>
      bisectModel({ model: file, precision: "fp16", mode, direction: "forward", criterion: { kind: "compare", compare: defaultCompareOptions() } });
    for (const mode of ["minimal", "bisect"] as const) {
      const r = await runMode(mode);
      const ok = mode === "minimal" ? [...r.pinned_layers].sort().join(",") === [...g.expected].sort().join(",") : r.found;
      const what = mode === "minimal" ? `pinned ${r.pinned_layers.join(", ")}${ok ? " (the planted set)" : " (NOT the planted set)"}` : `first ${r.k} layers`;
      const ms = r.wall_seconds * 1000;
      lines.push(
        { name: `${label}: --mode ${mode} model-execution equivalents`, value: r.model_executions, unit: "x", note: `${r.evaluations} evaluations + ${r.cached_evaluations} memo; ${what}` },
        { name: `${label}: --mode ${mode} wall time`, value: r.wall_seconds, unit: "s" },
        { name: `${label}: --mode ${mode} wall / one cold FP32 inference`, value: ms / inf.coldMs, unit: "x" },
        { name: `${label}: --mode ${mode} wall / one warm FP32 inference`, value: ms / inf.warmMs, unit: "x", note: `${r.sessions_built} sessions built (${r.sessions_per_layer.toFixed(3)} per layer)` },
      );
    }
    for (const [label, opts] of [
      ["detector", {}],
      // >= 2000 trt-debug layers after fusion (3 fused layers per block)
      ["2000+ layers", { size: 128, blocks: [110, 200, 250, 110] }],
    ] as const) lines.push(...(await scaleLines(dir, label, opts)));
    return lines;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
