/**
 * One measured job in a fresh process (so peak RSS belongs to that job alone).
 * Usage: node scripts/bench/run-child.mjs bare|tool|capture MODEL OUTDIR (after `npm run build`)
 * Plain JavaScript over the compiled public API (dist/index.js): no transpiling in the timing.
 * (capture = run --fp16 --mark-all without --save-outputs: every tensor fetched, stats computed)
 * Prints one JSON line: { ms, maxRssMB }.
 */
import * as fs from "node:fs";
import ort from "onnxruntime-node";
import { runModel } from "../../dist/index.js";

const [mode, model, outDir] = process.argv.slice(2);
const t0 = performance.now();
if (mode === "bare") {
  // What a user of onnxruntime-node does: load the model, create a session, run once.
  const s = await ort.InferenceSession.create(fs.readFileSync(model), { logSeverityLevel: 3 });
  const feeds = {};
  for (const md of s.inputMetadata) {
    if (!md.isTensor) continue;
    const dims = md.shape.map((d) => (typeof d === "number" && d > 0 ? d : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    feeds[md.name] = new ort.Tensor("float32", new Float32Array(n).fill(0.5), dims);
  }
  await s.run(feeds);
} else {
  await runModel({ model, precisions: ["fp16"], capture: { kind: "all" }, saveOutputs: mode === "tool" ? outDir : undefined });
}
const ms = performance.now() - t0;
process.stdout.write(JSON.stringify({ ms, maxRssMB: process.resourceUsage().maxRSS / 1024 }) + "\n");
