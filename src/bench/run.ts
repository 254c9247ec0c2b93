/**
 * Issue 2's targets: `run --fp16 --mark-all --save-outputs` against bare onnxruntime-node
 * inference (ratio <= 1.25), and its peak RSS against the sum of all activation sizes.
 * Each measurement runs in a fresh child process; bare and tool alternate, best of N.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import type { BenchLine } from "./types.js";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");

async function child(mode: "bare" | "tool", model: string, out: string): Promise<{ ms: number; maxRssMB: number }> {
  fs.rmSync(out, { recursive: true, force: true });
  // The compiled CLI code (dist/), as users run it: no TypeScript transpiling inside the timing.
  const r = await execa("node", [path.join(ROOT, "dist/bench/child.js"), mode, model, out], { cwd: ROOT, env: { TRT_DEBUG_QUIET_NUMERIC: "1" } });
  return JSON.parse(String(r.stdout).trim().split("\n").pop()!) as { ms: number; maxRssMB: number };
}

export async function benchRunOverhead(label: string, model: string, activationBytes: number | null, reps = 3): Promise<BenchLine[]> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-bench-"));
  let bare = { ms: Infinity, maxRssMB: 0 }, tool = { ms: Infinity, maxRssMB: 0 };
  for (let i = 0; i < reps; i++) {
    const b = await child("bare", model, path.join(out, "b"));
    const t = await child("tool", model, path.join(out, "t"));
    if (b.ms < bare.ms) bare = b;
    if (t.ms < tool.ms) tool = t;
  }
  let written = 0;
  for (const f of fs.readdirSync(path.join(out, "t"))) written += fs.statSync(path.join(out, "t", f)).size;
  fs.rmSync(out, { recursive: true, force: true });
  const lines: BenchLine[] = [
    { name: `${label}: bare onnxruntime-node inference (load + session + run)`, value: bare.ms, unit: "ms" },
    { name: `${label}: run --fp16 --mark-all --save-outputs`, value: tool.ms, unit: "ms", note: `${(written / 1e6).toFixed(1)} MB of Arrow written` },
    { name: `${label}: ratio tool/bare (target <= 1.25)`, value: tool.ms / bare.ms, unit: "x" },
    { name: `${label}: peak RSS tool`, value: tool.maxRssMB, unit: "MB", note: `bare onnxruntime ${bare.maxRssMB.toFixed(0)} MB` },
  ];
  if (activationBytes !== null) {
    lines.push({ name: `${label}: sum of all activation sizes`, value: activationBytes / 1e6, unit: "MB" });
    lines.push({ name: `${label}: peak RSS / sum of activations (target < 1)`, value: tool.maxRssMB / (activationBytes / 1e6), unit: "x" });
  }
  return lines;
}
