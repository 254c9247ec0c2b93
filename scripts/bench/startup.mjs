/**
 * Start-up of a process, the part of a small model's `trt-debug run` that is not capture
 * (docs/performance.md "Start-up"): fresh processes, best of N (default 5), alternating:
 *   node -e 0                                  node itself
 *   import onnxruntime-node                    what every onnxruntime-node user pays (addon + environment)
 *   trt-debug --version                        this build's CLI (bundle + code cache, onnxruntime, native addon)
 *   baseline trt-debug --version               with --baseline BIN
 * Usage: node scripts/bench/startup.mjs [--reps N] [--baseline BIN]
 */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { job } from "./overhead.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");

export function measureStartup({ reps = 5, baseline = null } = {}) {
  const node = process.execPath;
  const jobs = {
    "node -e 0": [node, ["-e", "0"]],
    "node importing onnxruntime-node": [node, ["--input-type=module", "-e", `await import(${JSON.stringify(path.join(ROOT, "node_modules/onnxruntime-node/dist/index.js"))})`]],
    "trt-debug --version": [node, [path.join(ROOT, "bin/trt-debug.js"), "--version"]],
  };
  if (baseline) jobs["baseline trt-debug --version"] = [node, [baseline, "--version"]];
  const best = {};
  for (let r = 0; r < reps; r++) for (const [k, [cmd, args]] of Object.entries(jobs)) best[k] = Math.min(best[k] ?? Infinity, job(cmd, args).ms);
  return Object.entries(best).map(([k, ms]) => `startup: ${k}: ${ms.toFixed(3)} ms (best of ${reps})`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const a = process.argv.slice(2);
  const o = {};
  for (let i = 0; i < a.length; i++) {
    if (a[i] === "--reps") o.reps = Number(a[++i]);
    else if (a[i] === "--baseline") o.baseline = a[++i];
    else {
      console.error("usage: node scripts/bench/startup.mjs [--reps N] [--baseline BIN]");
      process.exit(2);
    }
  }
  for (const l of measureStartup(o)) console.log(l);
}
