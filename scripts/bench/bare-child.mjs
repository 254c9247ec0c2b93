/**
 * The bare baseline of the overhead section: what a user of onnxruntime-node does with a model,
 * in a fresh process (load the file, create a session with onnxruntime's defaults, run once on
 * inputs of 0.5) and nothing else: no trt-debug module is imported.
 * Usage: node scripts/bench/bare-child.mjs MODEL
 */
import * as fs from "node:fs";
import ort from "onnxruntime-node";

const s = await ort.InferenceSession.create(fs.readFileSync(process.argv[2]), { logSeverityLevel: 3 });
const feeds = {};
for (const md of s.inputMetadata) {
  if (!md.isTensor) continue;
  const dims = md.shape.map((d) => (typeof d === "number" && d > 0 ? d : 1));
  const n = dims.reduce((a, b) => a * b, 1);
  feeds[md.name] = md.type === "int64" ? new ort.Tensor("int64", new BigInt64Array(n).fill(1n), dims) : new ort.Tensor("float32", new Float32Array(n).fill(0.5), dims);
}
await s.run(feeds);
