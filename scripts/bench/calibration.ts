/**
 * Calibration benchmarks (`npm run bench`):
 *  1. histogram collection throughput (AbsHistogram.collect: the max pass and the binning pass
 *     of src/numeric) in GB/s of float32 activations, against this machine's memcpy bandwidth
 *     measured in the same run (target: >= 25 %);
 *  2. wall time of `calib build` (32 random batches: FP32 run with every layer captured +
 *     histograms + entropy) on the >= 20M-parameter generated bench model. One inference at
 *     the model's default 64×64 input takes ~1 s on a 2-core machine, so the bench uses 32×32
 *     inputs (same 20.66M parameters, 1/4 of the compute) and says so.
 *
 * Runs under tsx (it loads the model generator from scripts/).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { BenchLine } from "./bench-line.js";
import { AbsHistogram } from "../../src/calibration/histogram.js";
import { calibBuild } from "../../src/calibration/build.js";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");

/** Deterministic activation-like data: |N(0,1)|-ish with a ReLU's zeros and a rare tail. */
function activations(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 4294967296;
    a[i] = u < 0.45 ? 0 : u > 0.9999 ? 40 * u : Math.log(1 / (1 - u)) * (i & 1 ? 1 : -1);
  }
  return a;
}

function bestOf<T>(reps: number, f: () => T): { seconds: number; value: T } {
  let best = Infinity;
  let value!: T;
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    value = f();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (s < best) best = s;
  }
  return { seconds: best, value };
}

export async function benchHistogramThroughput(tensorFloats = 4 << 20, tensors = 8, reps = 5): Promise<BenchLine[]> {
  const data = Array.from({ length: tensors }, (_, k) => activations(tensorFloats, k + 1));
  const bytes = tensors * tensorFloats * 4;
  // memcpy: the same bytes copied once (read + write), best of reps.
  const dst = new Float32Array(tensorFloats);
  const copy = bestOf(reps, () => {
    for (const d of data) dst.set(d);
    return dst[0];
  });
  // Histograms: one per tensor, as calibration keeps them; the first collect (bin setup)
  // happens before timing, then every rep feeds each tensor once more.
  const hists = data.map(() => new AbsHistogram());
  hists.forEach((h, k) => h.collect(data[k]!));
  const hist = bestOf(reps, () => {
    for (let k = 0; k < tensors; k++) hists[k]!.collect(data[k]!);
    return hists[0]!.total;
  });
  const memcpyGBs = bytes / copy.seconds / 1e9;
  const histGBs = bytes / hist.seconds / 1e9;
  const mb = (bytes / 1e6).toFixed(0);
  return [
    { name: `memcpy bandwidth (TypedArray.set, ${mb} MB)`, value: memcpyGBs, unit: "GB/s" },
    { name: `histogram collection (absMax + absHistogram, ${tensors} x ${(tensorFloats * 4) / 1e6} MB float32)`, value: histGBs, unit: "GB/s" },
    { name: "histogram collection / memcpy (target >= 25 %)", value: (100 * histGBs) / memcpyGBs, unit: "%" },
  ];
}

interface BenchGen {
  benchModel(o?: { size?: number }): { model: unknown; facts: { params: number; nodeCount: number; activationBytes: number } };
}

export async function benchCalibBuild(batches = 32, size = 32): Promise<BenchLine[]> {
  const gen = (await import(pathToFileURL(path.join(ROOT, "scripts/models/bench.ts")).href)) as BenchGen;
  const { saveModel } = await import("../../test/support/graph-builder.js");
  const g = gen.benchModel({ size });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-bench-calib-"));
  try {
    const file = path.join(dir, "bench.onnx");
    saveModel(g.model as Parameters<typeof saveModel>[0], file);
    const t0 = performance.now();
    const r = await calibBuild({ model: file, algo: "entropy", output: path.join(dir, "bench.cache"), calibBatches: batches });
    const s = (performance.now() - t0) / 1000;
    const params = (g.facts.params / 1e6).toFixed(2);
    const actGB = (g.facts.activationBytes * batches) / 1e9;
    return [
      {
        name: `calib build --algo entropy, ${batches} batches, bench model (${params}M params, ${g.facts.nodeCount} layers)`,
        value: s,
        unit: "s",
        note: `input 1x128x${size}x${size} (the model's default 64x64 takes ~1 s per inference on 2 cores; smaller input for the bench), ${r.tensors.length} tensors, ${actGB.toFixed(1)} GB of activations histogrammed`,
      },
      { name: "calib build: time per batch", value: s / batches, unit: "s" },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchCalib(): Promise<BenchLine[]> {
  return [...(await benchHistogramThroughput()), ...(await benchCalibBuild())];
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  for (const l of await benchCalib()) process.stdout.write(`${l.name}: ${l.value.toFixed(3)} ${l.unit}${l.note ? ` (${l.note})` : ""}\n`);
}
