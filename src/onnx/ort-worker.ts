/**
 * onnxruntime sessions in a worker_thread, so that two sessions run at once (`compare`'s
 * reference on the JavaScript thread, its candidate here: workflows/compare.ts).
 *
 * onnxruntime-node 1.30 creates and runs sessions synchronously on the thread that calls it
 * (docs/performance.md "Where the time goes"), so a second thread is the only way to overlap
 * two. The worker only creates, runs and releases sessions: the caller rewrites and
 * serialises the segment models as it does for its own sessions (runtime/executor.ts) and
 * sends the bytes, the feeds and the fetch list; the outputs come back with their buffers
 * transferred (no copy). The session options are ort-session.ts's, so a session built here
 * is the one `createSession` would build, and failures read the same (UserError, one line).
 *
 * The worker writes no files (external weights are placed by the caller, whose temporary
 * files stay registered in core/temp-files.ts), is unref'd (it never keeps the process
 * alive) and is ended by `close()`; a signal's exit ends it with the process.
 */
import { Worker } from "node:worker_threads";
import { createRequire } from "node:module";
import ort from "onnxruntime-node";
import { UserError } from "../core/errors.js";
import { loadFailure, ortSessionOptions, runFailure, type OrtTensor, type SessionOptions } from "./ort-session.js";

/** The worker's code: CommonJS, onnxruntime-node only (it runs the same from src/, dist/ and the CLI bundle). */
const WORKER_CODE = `
const { parentPort, workerData } = require("node:worker_threads");
const ort = require(workerData.ort);
ort.env.logLevel = "fatal";
const wire = (t) => ({ type: t.type, dims: Array.from(t.dims), data: t.data });
parentPort.on("message", async (m) => {
  let stage = "load", s = null;
  try {
    s = await ort.InferenceSession.create(m.bytes, m.options);
    stage = "run";
    const feeds = {};
    for (const [k, t] of Object.entries(m.feeds)) feeds[k] = new ort.Tensor(t.type, t.data, t.dims);
    const out = m.fetches.length ? await s.run(feeds, m.fetches) : {};
    stage = "release";
    await s.release();
    s = null;
    const outputs = {}, transfer = new Set();
    for (const [k, t] of Object.entries(out)) {
      outputs[k] = wire(t);
      if (ArrayBuffer.isView(t.data)) transfer.add(t.data.buffer);
    }
    parentPort.postMessage({ id: m.id, outputs }, [...transfer]);
  } catch (e) {
    if (s) await s.release().catch(() => undefined);
    parentPort.postMessage({ id: m.id, error: { stage, message: e instanceof Error ? e.message : String(e) } });
  }
});
`;

interface WireTensor {
  type: OrtTensor["type"];
  dims: number[];
  data: OrtTensor["data"];
}
type Reply = { id: number; outputs: Record<string, WireTensor> } | { id: number; error: { stage: string; message: string } };

/** One worker_thread that creates, runs and releases onnxruntime sessions, one request at a time. */
export class OrtWorker {
  /** Worker threads started and not yet exited, in this process (tests check that none is left). */
  static running = 0;
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: unknown) => void }>();
  private nextId = 0;
  private closed = false;
  private failure: Error | null = null;

  constructor() {
    const ortPath = createRequire(import.meta.url).resolve("onnxruntime-node");
    this.worker = new Worker(WORKER_CODE, { eval: true, workerData: { ort: ortPath } });
    this.worker.unref();
    OrtWorker.running++;
    this.worker.on("message", (r: Reply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      p?.resolve(r);
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on("error", (e) => fail(new Error(`onnxruntime worker thread failed: ${e.message}`)));
    this.worker.on("exit", (code) => {
      OrtWorker.running--;
      if (!this.closed) fail(new Error(`onnxruntime worker thread exited (code ${code})`));
    });
  }

  /**
   * Create a session from `bytes` with `options` (as ort-session.ts createSession), run it on
   * `feeds` for `fetches`, release it, and return the outputs. Errors are the UserErrors
   * createSession/runSession would throw, with `label`.
   */
  async createAndRun(bytes: Uint8Array, options: SessionOptions, feeds: Record<string, OrtTensor>, fetches: string[], label: string): Promise<Record<string, OrtTensor>> {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error("onnxruntime worker thread used after close()");
    const id = this.nextId++;
    const wireFeeds: Record<string, WireTensor> = {};
    for (const [k, t] of Object.entries(feeds)) wireFeeds[k] = { type: t.type, dims: [...t.dims], data: t.data };
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // ref: a pending request keeps the process alive until its answer (unref'd again when idle).
      this.worker.ref();
      this.worker.postMessage({ id, bytes, options: ortSessionOptions(options), feeds: wireFeeds, fetches });
    }).finally(() => {
      if (this.pending.size === 0) this.worker.unref();
    });
    if ("error" in reply) {
      const e = { message: reply.error.message };
      throw new UserError(reply.error.stage === "load" ? loadFailure(label, e.message) : runFailure(label, e.message));
    }
    const out: Record<string, OrtTensor> = {};
    for (const [k, t] of Object.entries(reply.outputs)) out[k] = new ort.Tensor(t.type as "float32", t.data as Float32Array, t.dims);
    return out;
  }

  /** End the worker (idempotent); pending requests are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new Error("onnxruntime worker thread closed"));
    this.pending.clear();
    await this.worker.terminate();
  }
}
