/**
 * Segments of external-data models reference their weights (src/onnx/external-weights.ts,
 * docs/performance.md "Models past 2 GB"): on a small external-data chain of MatMuls
 * (scripts/models/big-external.ts), segment protobufs carry no weight bytes, results and dumps
 * are byte-identical to the embedded path (TRT_DEBUG_EXTERNAL_WEIGHTS_ABOVE raised above the
 * model), the temporary data file and hard links exist only while the executor lives.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeBigExternalModel, type BigExternalFacts } from "../scripts/models/big-external.js";
import { bisectModel, calibBuild, compareModel, defaultCompareOptions, runModel } from "../src/index.js";
import { EXTERNAL_WEIGHTS_ENV, ExternalWeightStore } from "../src/onnx/external-weights.js";
import { removeTempsSync } from "../src/core/temp-files.js";
import { loadModel } from "../src/onnx/model.js";
import { modelBytes } from "../src/onnx/model-file.js";
import { Executor } from "../src/runtime/executor.js";
import { makeFeeds, prepareModelFile } from "../src/runtime/capture-runs.js";
import type { Precision } from "../src/core/host-tensor.js";
import { UserError } from "../src/core/errors.js";
import type { OrtTensor } from "../src/onnx/ort-session.js";

const EMBED = String(Number.MAX_SAFE_INTEGER);
let root: string;
let tmp: string;
let savedTmp: string | undefined;
let savedEnv: string | undefined;
let f: BigExternalFacts;

function withThreshold<T>(v: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (v === undefined) delete process.env[EXTERNAL_WEIGHTS_ENV];
  else process.env[EXTERNAL_WEIGHTS_ENV] = v;
  return fn().finally(() => {
    delete process.env[EXTERNAL_WEIGHTS_ENV];
  });
}

/** Our temporary files in TMPDIR (the test's own folder). */
const ours = () => fs.readdirSync(tmp).filter((n) => n.startsWith("trt-debug-"));

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-extw-"));
  tmp = path.join(root, "tmp");
  fs.mkdirSync(tmp);
  fs.mkdirSync(path.join(root, "m"));
  savedTmp = process.env.TMPDIR;
  savedEnv = process.env[EXTERNAL_WEIGHTS_ENV];
  process.env.TMPDIR = tmp; // os.tmpdir(): where the temporary data file goes
  delete process.env[EXTERNAL_WEIGHTS_ENV];
  // 4 MatMuls 96x64 / 64x96: 96 KiB of external weights, 7 layers.
  f = writeBigExternalModel(path.join(root, "m"), { k: 96, n: 64, matmuls: 4, seed: 3 });
});

afterAll(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  if (savedEnv !== undefined) process.env[EXTERNAL_WEIGHTS_ENV] = savedEnv;
  fs.rmSync(root, { recursive: true, force: true });
});

/** Run every layer under `precisions` with segments of `segmentLayers`; captured tensors by name, and the executor's stats. */
async function capture(model: string, precisions: (n: number) => Precision[], segmentLayers: number, during?: () => void, allowExternalDataOutside = false) {
  const p = await prepareModelFile(model, { allowExternalDataOutside });
  const exec = new Executor(p.model, p.types, { segmentLayers, keepSessions: false });
  const x = new Float32Array(96);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i + 1);
  const out = new Map<string, OrtTensor>();
  try {
    for await (const r of exec.run(precisions(p.model.graph.layers.length), makeFeeds([{ name: "x", dtype: "float32", dims: [1, 96], data: x }]), () => true)) {
      for (const [k, v] of r.captured) out.set(k, v);
    }
    during?.();
  } finally {
    await exec.release();
  }
  return { out, stats: exec.stats, layers: p.model.graph.layers.length };
}

function bytesOf(t: OrtTensor): Buffer {
  const d = t.data as Float32Array;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

describe("segments of external-data models reference their weights", () => {
  const cases: { label: string; precisions: (n: number) => Precision[]; segmentLayers: number }[] = [
    { label: "fp32 (the model's own data file, from its folder)", precisions: (n) => Array(n).fill("fp32"), segmentLayers: 8 },
    { label: "fp16 (pre-rounded weights in the temporary file)", precisions: (n) => Array(n).fill("fp16"), segmentLayers: 3 },
    { label: "bf16, one layer per segment", precisions: (n) => Array(n).fill("bf16"), segmentLayers: 1 },
    // mm1 (layer 2) in fp32 beside fp16 layers: one segment reads a rewritten and an original weight (hard link).
    { label: "mixed fp16 / fp32 in one segment (hard link to the model's data file)", precisions: (n) => Array.from({ length: n }, (_, i) => (i === 2 ? "fp32" : "fp16")), segmentLayers: 8 },
  ];
  for (const c of cases) {
    it(`${c.label}: bit-identical to the embedded path, no weight bytes in the segment models, temp files gone after`, async () => {
      let during: string[] = [];
      const ext = await withThreshold(undefined, () => capture(f.model, c.precisions, c.segmentLayers, () => (during = ours())));
      const emb = await withThreshold(EMBED, () => capture(f.model, c.precisions, c.segmentLayers));
      expect([...ext.out.keys()]).toEqual([...emb.out.keys()]);
      // Fused MatMul+Relu groups (TensorRT's layer model): 4 layers, each captured.
      expect(ext.layers).toBe(4);
      expect(ext.out.size).toBe(4);
      for (const [k, v] of emb.out) expect(bytesOf(ext.out.get(k)!).equals(bytesOf(v)), k).toBe(true);
      // Embedded segments carry at least one whole weight; referencing ones only graph and entries.
      expect(emb.stats.largestSegmentModel!).toBeGreaterThan(f.largestWeightBytes);
      expect(ext.stats.largestSegmentModel!).toBeLessThan(4096);
      const rewritten = c.precisions(ext.layers).some((p) => p !== "fp32");
      const mixed = new Set(c.precisions(ext.layers)).size > 1;
      // fp32 reads the model's data file in place: no temporary file at all.
      expect(during.some((n) => n.endsWith(".weights"))).toBe(rewritten);
      expect(during.some((n) => n.endsWith(".data"))).toBe(mixed);
      expect(ours()).toEqual([]);
    });
  }

  it("run --mark-all and compare --fp16 dumps are byte-identical to the embedded path; no temp file is left", async () => {
    const dump = async (thr: string | undefined, tag: string) =>
      withThreshold(thr, async () => {
        const out = path.join(root, `dump-${tag}`);
        await runModel({ model: f.model, precisions: ["fp32", "fp16"], capture: { kind: "all" }, saveOutputs: out });
        const cmpOut = path.join(root, `cmp-${tag}`);
        const s = await compareModel({ model: f.model, candidate: "fp16", compare: defaultCompareOptions(), saveOutputs: cmpOut });
        const files = [...fs.readdirSync(out).map((n) => path.join(out, n)), ...fs.readdirSync(cmpOut).map((n) => path.join(cmpOut, n))].sort();
        return { files, passed: s.passed, layers: JSON.stringify(s.layers) };
      });
    const a = await dump(undefined, "ext");
    const b = await dump(EMBED, "emb");
    expect(a.files.length).toBe(4);
    expect(a.files.map((x) => path.basename(x))).toEqual(b.files.map((x) => path.basename(x)));
    for (let i = 0; i < a.files.length; i++) expect(fs.readFileSync(a.files[i]!).equals(fs.readFileSync(b.files[i]!)), a.files[i]).toBe(true);
    expect(a.passed).toBe(b.passed);
    expect(a.layers).toEqual(b.layers);
    expect(ours()).toEqual([]);
  });

  it("int8 (per-channel fake-quantized weights in the temporary file): compare --int8 dumps byte-identical to the embedded path", async () => {
    const cache = path.join(root, "int8.cache");
    await withThreshold(EMBED, () => calibBuild({ model: f.model, algo: "minmax", output: cache, calibBatches: 2 }));
    const dump = (thr: string | undefined, tag: string) =>
      withThreshold(thr, async () => {
        const out = path.join(root, `int8-${tag}`);
        const s = await compareModel({ model: f.model, candidate: "int8", compare: defaultCompareOptions(), int8: { calibrationCache: cache }, saveOutputs: out });
        return { files: fs.readdirSync(out).sort().map((n) => fs.readFileSync(path.join(out, n))), layers: JSON.stringify(s.layers) };
      });
    const a = await dump(undefined, "ext");
    const b = await dump(EMBED, "emb");
    expect(a.files.length).toBe(2);
    for (let i = 0; i < a.files.length; i++) expect(a.files[i]!.equals(b.files[i]!)).toBe(true);
    expect(a.layers).toEqual(b.layers);
    expect(ours()).toEqual([]);
  });

  it("bisect (sensitivity twins and cached sessions) finds the same layers as on the embedded path; no temp file is left", async () => {
    // A 1e-4 relative L2 bound fails fp16 on every MatMul, so the search has work to do.
    const search = (thr: string | undefined) =>
      withThreshold(thr, () => bisectModel({ model: f.model, precision: "fp16", criterion: { kind: "compare", compare: { ...defaultCompareOptions(), maxRelL2: 1e-4 } } }));
    const a = await search(undefined);
    const b = await search(EMBED);
    const strip = (r: object) => JSON.stringify(r, (k, v) => (/seconds|_ms$|elapsed/i.test(k) ? undefined : v));
    expect(strip(a)).toEqual(strip(b));
    expect(strip(a)).toContain("mm0");
    expect(ours()).toEqual([]);
  });

  it("the temporary data file and hard links are registered temp files (what exit and SIGINT/SIGTERM remove)", () => {
    const m = loadModel(f.model);
    const store = new ExternalWeightStore(m);
    const w = store.writeFloat32("w::fp16", [2, 3], 6, (emit) => {
      emit(new Float32Array([1, 2, 3]));
      emit(new Float32Array([4, 5, 6]));
    });
    expect(w.externalData.map((e) => [e.key, e.value])).toEqual([["location", expect.stringMatching(/^trt-debug-\d+-.*\.weights$/)], ["offset", "0"], ["length", "24"]]);
    // A segment reading the rewritten weight and an original one: the original is hard-linked beside it.
    const placed = store.place([w, m.graph.initializers.get("w1")!]);
    expect(placed.folder).toBe(tmp);
    expect(placed.externalBytes).toBe(24 + 96 * 64 * 4);
    const files = ours().sort();
    expect(files.length).toBe(2);
    expect(fs.readFileSync(path.join(tmp, files.find((n) => n.endsWith(".weights"))!))).toEqual(Buffer.from(new Float32Array([1, 2, 3, 4, 5, 6]).buffer));
    expect(fs.statSync(path.join(tmp, files.find((n) => n.endsWith(".data"))!)).ino).toBe(fs.statSync(f.data).ino);
    // Only originals: the model's own folder, nothing new.
    expect(store.place([m.graph.initializers.get("w0")!]).folder).toBe(path.dirname(f.model));
    removeTempsSync();
    expect(ours()).toEqual([]);
    expect(fs.existsSync(f.data)).toBe(true); // the link went, the model's data stays
    store.release();
  });

  it("a temporary folder that cannot be written is a one-line user error naming the file and TMPDIR", async () => {
    process.env.TMPDIR = path.join(root, "no-such-folder");
    try {
      const e = await runModel({ model: f.model, precisions: ["fp16"], capture: { kind: "all" } }).then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(UserError);
      expect((e as Error).message).toMatch(/no-such-folder\/trt-debug-\d+-.*\.weights: cannot write the temporary file of rewritten weights \(ENOENT\); .*TMPDIR/);
      expect((e as Error).message).not.toContain("\n");
    } finally {
      process.env.TMPDIR = tmp;
    }
  });

  it("data outside the model's folder (--allow-external-data-outside): the tensors are copied into the temporary file once", async () => {
    // The same model in a sibling folder, its locations '../m/<data>': onnxruntime would refuse them from the model's folder.
    const dir = path.join(root, "outside");
    fs.mkdirSync(dir, { recursive: true });
    const proto = fromBinary(ModelProtoSchema, fs.readFileSync(f.model));
    for (const t of proto.graph!.initializer) for (const e of t.externalData) if (e.key === "location") e.value = `../m/${e.value}`;
    const moved = path.join(dir, "moved.onnx");
    fs.writeFileSync(moved, modelBytes(proto));
    let during: string[] = [];
    const fp32 = (n: number) => Array<Precision>(n).fill("fp32");
    let size = 0;
    const a = await capture(moved, fp32, 8, () => {
      during = ours();
      size = fs.statSync(path.join(tmp, during.find((n) => n.endsWith(".weights"))!)).size;
    }, true);
    const b = await withThreshold(EMBED, () => capture(f.model, fp32, 8));
    for (const [k, v] of b.out) expect(bytesOf(a.out.get(k)!).equals(bytesOf(v)), k).toBe(true);
    expect(a.stats.largestSegmentModel!).toBeLessThan(4096);
    const weights = during.filter((n) => n.endsWith(".weights"));
    expect(weights.length).toBe(1);
    expect(size).toBeGreaterThanOrEqual(f.weightBytes); // each weight copied once (4 KiB-aligned)
    expect(size).toBeLessThan(f.weightBytes + 4 * 4096);
    expect(during.filter((n) => n.endsWith(".data"))).toEqual([]); // no link to a file outside the folder
    expect(ours()).toEqual([]);
  });
});
