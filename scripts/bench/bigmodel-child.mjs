/**
 * One measured job of the bigmodel section in a fresh process (peak RSS is that job's alone).
 * Usage: node scripts/bench/bigmodel-child.mjs bare|run|compare MODEL (after `npm run build`)
 *   bare    = onnxruntime-node alone: a session from the model's path, one run
 *   run     = run --mark-all (fp32, every tensor captured)
 *   compare = compare --fp16 (fp32 reference and fp16 candidate in lockstep, every tensor)
 * Plain JavaScript over the compiled public API (dist/index.js). Prints one JSON line:
 * { ms, maxRssMB, passed }.
 */
import ort from "onnxruntime-node";
import { compareModel, defaultCompareOptions, runModel } from "../../dist/index.js";

const [mode, model] = process.argv.slice(2);
const t0 = performance.now();
let passed = null;
if (mode === "bare") {
  const s = await ort.InferenceSession.create(model, { logSeverityLevel: 3, enableCpuMemArena: false });
  const feeds = {};
  for (const md of s.inputMetadata) {
    const dims = md.shape.map((d) => (typeof d === "number" && d > 0 ? d : 1));
    feeds[md.name] = new ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.5), dims);
  }
  await s.run(feeds);
  await s.release();
} else if (mode === "run") {
  await runModel({ model, precisions: ["fp32"], capture: { kind: "all" } });
} else if (mode === "compare") {
  passed = (await compareModel({ model, candidate: "fp16", compare: defaultCompareOptions(), keepRows: false })).passed;
} else {
  throw new Error(`bigmodel-child: unknown mode ${mode}`);
}
const ms = performance.now() - t0;
process.stdout.write(JSON.stringify({ ms, maxRssMB: process.resourceUsage().maxRSS / 1024, passed }) + "\n");
