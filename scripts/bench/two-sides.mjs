/**
 * Would `compare` gain from running its candidate side in a worker thread? (issue 13) An upper
 * bound, without trt-debug: the model with every node output marked as a graph output (what
 * one capture session fetches), run as two sessions (A and B: the same graph, standing for the
 * reference and the candidate) either one after the other on the main thread, each with all
 * cores (what compare does now), or at the same time, B in a worker_thread, each with half the
 * cores. Session creation + one run each, best of N, wall milliseconds.
 *   node scripts/bench/two-sides.mjs MODEL [--reps N] [--label NAME]
 */
import * as os from "node:os";
import * as fs from "node:fs";
import * as crypto from "node:crypto";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, ValueInfoProtoSchema } from "onnx-buf";
import ort from "onnxruntime-node";

async function side(bytes, threads, digest = null) {
  const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3, intraOpNumThreads: threads });
  const feeds = {};
  for (const md of s.inputMetadata) {
    const dims = md.shape.map((d) => (typeof d === "number" && d > 0 ? d : 1));
    feeds[md.name] = new ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.5), dims);
  }
  const out = await s.run(feeds);
  let n = 0;
  for (const [k, v] of Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1))) {
    n += v.data.byteLength ?? 0;
    if (digest && ArrayBuffer.isView(v.data)) digest.update(k).update(Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength));
  }
  await s.release();
  return n;
}

if (!isMainThread) {
  parentPort.on("message", async (m) => parentPort.postMessage(await side(m.bytes, m.threads)));
} else {
  const argv = process.argv.slice(2);
  const model = argv.find((a, i) => !a.startsWith("--") && !["--reps", "--label"].includes(argv[i - 1] ?? ""));
  const reps = Number(argv[argv.indexOf("--reps") + 1] || 3) || 3;
  const label = argv.includes("--label") ? argv[argv.indexOf("--label") + 1] : model;
  const m = fromBinary(ModelProtoSchema, fs.readFileSync(model));
  const have = new Set(m.graph.output.map((o) => o.name));
  for (const n of m.graph.node) for (const o of n.output) if (o && !have.has(o)) { have.add(o); m.graph.output.push(create(ValueInfoProtoSchema, { name: o })); }
  const bytes = toBinary(ModelProtoSchema, m);
  const cores = os.availableParallelism();
  const w = new Worker(new URL(import.meta.url), { workerData: null });
  const inWorker = (threads) => new Promise((res) => { w.once("message", res); w.postMessage({ bytes, threads }); });
  await side(bytes, 1); // onnxruntime's environment, paid once by either way
  await inWorker(1);
  // Does onnxruntime's intra-op thread count change any value? (compare splits the cores between its sides)
  const hashAt = async (threads) => {
    const h = crypto.createHash("sha256");
    await side(bytes, threads, h);
    return h.digest("hex");
  };
  const counts = [...new Set([cores, Math.floor(cores / 2), Math.ceil(cores / 2), 1].filter((n) => n >= 1))];
  const digests = [];
  for (const t of counts) digests.push(await hashAt(t));
  console.log(`${label}: every node output bit-identical with ${counts.join(", ")} intra-op threads (1 = yes): ${digests.every((d) => d === digests[0]) ? 1 : 0}`);
  let seq = Infinity, par = Infinity, fetched = 0;
  for (let r = 0; r < reps; r++) {
    let t0 = performance.now();
    fetched = await side(bytes, cores);
    await side(bytes, cores);
    seq = Math.min(seq, performance.now() - t0);
    t0 = performance.now();
    await Promise.all([inWorker(Math.ceil(cores / 2)), side(bytes, Math.floor(cores / 2))]);
    par = Math.min(par, performance.now() - t0);
  }
  await w.terminate();
  console.log(`${label}: two sides one after the other, ${cores} threads each (as compare now): ${seq.toFixed(1)} ms (every node output fetched, ${(fetched / 1e6).toFixed(1)} MB per side)`);
  console.log(`${label}: two sides at once, the second in a worker_thread, ${Math.floor(cores / 2)}+${Math.ceil(cores / 2)} threads: ${par.toFixed(1)} ms`);
  console.log(`${label}: two sides at once / one after the other: ${(par / seq).toFixed(3)} x`);
}
