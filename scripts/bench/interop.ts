/**
 * `npm run bench -- --only interop`: peak RSS of `compare FILE.json` on a Polygraphy
 * RunResults file of about 1 GB (two runners, float32 tensors of 16 MiB each, base64 .npy),
 * generated on the fly and removed afterwards. The reader streams one tensor at a time, so
 * peak RSS should follow the largest tensor (its base64 text and decoded arrays), not the file.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { RunResultsWriter } from "../../src/io/polygraphy-results.js";
import type { BenchLine } from "./bench-line.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

/** Writes a RunResults file with `tensors` float32 tensors of `mib` MiB per runner; returns its size. */
export async function writeBigRunResults(file: string, tensors: number, mib: number): Promise<number> {
  const n = (mib * 1024 * 1024) / 4;
  const data = new Float32Array(n);
  const w = await RunResultsWriter.open(file);
  for (const [r, runner] of ["reference-runner", "candidate-runner"].entries()) {
    await w.begin(runner);
    await w.iteration();
    for (let k = 0; k < tensors; k++) {
      for (let i = 0; i < n; i++) data[i] = Math.sin(i * 0.001 + k) * (1 + r * 1e-4);
      await w.tensor(`t${k}`, { dtype: "float32", dims: [n], data });
    }
  }
  await w.close();
  return fs.statSync(file).size;
}

export async function benchInterop(sizeGB = 1): Promise<BenchLine[]> {
  if (!fs.existsSync(path.join(ROOT, "dist/workflows/compare-files.js"))) throw new Error("bench: run `npm run build` first (the interop section times the compiled code)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-bench-interop-"));
  try {
    const mib = 16;
    // base64 is 4/3 of the bytes: tensors per runner for about sizeGB in all.
    const tensors = Math.max(1, Math.round((sizeGB * 1024) / ((mib * 4) / 3) / 2));
    const file = path.join(dir, "big.json");
    const bytes = await writeBigRunResults(file, tensors, mib);
    const r = await execa("node", [path.join(ROOT, "scripts/bench/interop-child.mjs"), file], { cwd: ROOT, env: { TRT_DEBUG_QUIET_NUMERIC: "1" } });
    const m = JSON.parse(String(r.stdout).trim().split("\n").pop()!) as { ms: number; maxRssMB: number; verdict: string };
    const note = `${(bytes / 1024 ** 3).toFixed(2)} GiB file, 2 runners x ${tensors} float32 tensors of ${mib} MiB, verdict ${m.verdict}`;
    return [
      { name: "interop compare RunResults peak RSS", value: Math.round(m.maxRssMB), unit: "MB", note },
      { name: "interop compare RunResults time", value: m.ms / 1000, unit: "s", note: `${((bytes / 1024 ** 2) / (m.ms / 1000)).toFixed(1)} MB/s of file (read twice: reference and candidate streams)` },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
