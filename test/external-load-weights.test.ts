/**
 * Weights made at load for external-data models (src/onnx/external-weights.ts "Weights made at
 * load", docs/performance.md "Models past 2 GB"): a strongly typed fp16/bf16 model is lifted
 * to fp32 piece by piece into a temporary data file, and constant folding writes the tensors
 * it folds (here a Transpose of each weight) there too, instead of embedding them. Small
 * models from scripts/models/big-external.ts with the threshold at its default 0; every
 * result is compared bit for bit with the embedded path (threshold above the model).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clearField, fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, TensorProto_DataLocation, TensorProto_DataType, TensorProtoSchema, type TensorProto } from "onnx-buf";
import { modelBytes } from "../src/onnx/model-file.js";
import { writeBigExternalModel, type BigExternalFacts } from "../scripts/models/big-external.js";
import { compareGraphs, compareModel, defaultCompareOptions, runModel } from "../src/index.js";
import { EXTERNAL_WEIGHTS_ENV, releaseModelWeights } from "../src/onnx/external-weights.js";
import { loadModel } from "../src/onnx/model.js";
import { foldConstants } from "../src/onnx/layer-model.js";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { tensorProtoToHost } from "../src/onnx/tensor.js";
import { Executor } from "../src/runtime/executor.js";
import { makeFeeds, prepareModelFile, type PreparedModel } from "../src/runtime/capture-runs.js";
import { bf16ToF32, f16ToF32 } from "../src/numeric/index.js";
import type { Precision } from "../src/core/host-tensor.js";

const EMBED = String(Number.MAX_SAFE_INTEGER);
let root: string;
let tmp: string;
let savedTmp: string | undefined;
let savedEnv: string | undefined;
let half: BigExternalFacts, bf: BigExternalFacts, tr: BigExternalFacts, trBf: BigExternalFacts;

async function withThreshold<T>(v: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (v === undefined) delete process.env[EXTERNAL_WEIGHTS_ENV];
  else process.env[EXTERNAL_WEIGHTS_ENV] = v;
  try {
    return await fn();
  } finally {
    delete process.env[EXTERNAL_WEIGHTS_ENV];
  }
}

/** Our temporary files in TMPDIR (the test's own folder). */
const ours = () => fs.readdirSync(tmp).filter((n) => n.startsWith("trt-debug-"));

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-extl-"));
  tmp = path.join(root, "tmp");
  fs.mkdirSync(tmp);
  const m = path.join(root, "m");
  fs.mkdirSync(m);
  savedTmp = process.env.TMPDIR;
  savedEnv = process.env[EXTERNAL_WEIGHTS_ENV];
  process.env.TMPDIR = tmp;
  delete process.env[EXTERNAL_WEIGHTS_ENV];
  // 4 MatMuls 96x64 / 64x96, 7 nodes + casts.
  const o = { k: 96, n: 64, matmuls: 4, seed: 5 };
  half = writeBigExternalModel(m, { ...o, weightType: "float16", stem: "half" });
  bf = writeBigExternalModel(m, { ...o, weightType: "bfloat16", stem: "bf" });
  tr = writeBigExternalModel(m, { ...o, transposed: true, stem: "tr" });
  trBf = writeBigExternalModel(m, { ...o, transposed: true, weightType: "bfloat16", stem: "trbf" });
});

afterAll(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  if (savedEnv !== undefined) process.env[EXTERNAL_WEIGHTS_ENV] = savedEnv;
  fs.rmSync(root, { recursive: true, force: true });
});

const x = new Float32Array(96).map((_, i) => Math.cos(i * 0.7));

/** Prepare, run every layer (the model's declared precisions, else `fallback`), release; what the run saw. */
async function capture(model: string, fallback: Precision, inspect?: (p: PreparedModel) => void) {
  const p = await prepareModelFile(model);
  const exec = new Executor(p.model, p.types, { segmentLayers: 2, keepSessions: false });
  const out = new Map<string, Buffer>();
  let during: string[] = [];
  try {
    inspect?.(p);
    const precisions = p.model.typed?.precisions ?? p.model.graph.layers.map(() => fallback);
    for await (const r of exec.run([...precisions], makeFeeds([{ name: "x", dtype: "float32", dims: [1, 96], data: x }]), () => true)) {
      for (const [k, v] of r.captured) {
        const d = v.data as Float32Array;
        out.set(k, Buffer.from(d.slice().buffer));
      }
    }
    during = ours();
  } finally {
    await exec.release();
    releaseModelWeights(p.model);
  }
  return { out, stats: exec.stats, during, summary: p.model.layerModel! };
}

function expectSame(a: Map<string, Buffer>, b: Map<string, Buffer>): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  expect(a.size).toBeGreaterThanOrEqual(4);
  for (const [k, v] of b) expect(a.get(k)!.equals(v), k).toBe(true);
}

const location = (t: TensorProto) => t.externalData.find((e) => e.key === "location")?.value;

describe("strongly typed external-data models are lifted to fp32 into a temporary data file", () => {
  for (const [label, facts, widen] of [["fp16", () => half, f16ToF32], ["bf16", () => bf, bf16ToF32]] as const) {
    it(`${label}: weights referenced there, values exactly widened, runs bit-identical to the embedded path, file gone after`, async () => {
      const f = facts();
      const raw = fs.readFileSync(f.data);
      const src = loadModel(f.model).proto.graph!.initializer;
      const ext = await withThreshold(undefined, () =>
        capture(f.model, "fp32", (p) => {
          const g = p.model.proto.graph!;
          expect(g.initializer.map((t) => t.name).sort()).toEqual(["w0", "w1", "w2", "w3"]);
          for (const t of g.initializer) {
            expect(t.dataType).toBe(TensorProto_DataType.FLOAT);
            expect(t.dataLocation).toBe(TensorProto_DataLocation.EXTERNAL);
            expect(t.rawData.byteLength).toBe(0); // nothing held in JavaScript
            expect(location(t)).toMatch(/^trt-debug-\d+-.*\.weights$/);
            // The lifted values are the stored fp16/bf16 bit patterns widened, element for element.
            const s = src.find((u) => u.name === t.name)!;
            const off = Number(s.externalData.find((e) => e.key === "offset")!.value);
            const len = Number(s.externalData.find((e) => e.key === "length")!.value);
            const bits = new Uint16Array(raw.buffer.slice(raw.byteOffset + off, raw.byteOffset + off + len));
            const got = tensorProtoToHost(t).data as Float32Array;
            expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(widen(bits).buffer))).toBe(true);
          }
        }),
      );
      const emb = await withThreshold(EMBED, () => capture(f.model, "fp32"));
      expectSame(ext.out, emb.out);
      expect(ext.stats.largestSegmentModel!).toBeLessThan(4096);
      expect(emb.stats.largestSegmentModel!).toBeGreaterThan(f.largestWeightBytes * 2);
      expect(ext.during.filter((n) => n.endsWith(".weights")).length).toBeGreaterThanOrEqual(1);
      expect(emb.during).toEqual([]);
      expect(ours()).toEqual([]);
    });
  }
});

describe("embedded fp16 weights of a model with external data", () => {
  it("raw_data of 4 KiB or more is lifted into the file too (the protobuf drops it); runs bit-identical to the embedded path", async () => {
    // The fp16 model with w1 (64x96, 12 KiB) moved into raw_data; the others stay external.
    const proto = fromBinary(ModelProtoSchema, fs.readFileSync(half.model));
    const raw = fs.readFileSync(half.data);
    const w1 = proto.graph!.initializer.find((t) => t.name === "w1")!;
    const off = Number(w1.externalData.find((e) => e.key === "offset")!.value);
    const len = Number(w1.externalData.find((e) => e.key === "length")!.value);
    const bits = new Uint16Array(raw.buffer.slice(raw.byteOffset + off, raw.byteOffset + off + len));
    w1.rawData = new Uint8Array(bits.buffer);
    w1.externalData = [];
    clearField(w1, TensorProtoSchema.field.dataLocation);
    const file = path.join(path.dirname(half.model), "half_mixed.onnx");
    fs.writeFileSync(file, modelBytes(proto));
    const ext = await withThreshold(undefined, () =>
      capture(file, "fp32", (p) => {
        const t = p.model.proto.graph!.initializer.find((u) => u.name === "w1")!;
        expect([t.dataType, t.dataLocation, t.rawData.byteLength]).toEqual([TensorProto_DataType.FLOAT, TensorProto_DataLocation.EXTERNAL, 0]);
        expect(location(t)).toMatch(/^trt-debug-\d+-.*\.weights$/);
        const got = tensorProtoToHost(t).data as Float32Array;
        expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(f16ToF32(bits).buffer))).toBe(true);
      }),
    );
    const emb = await withThreshold(EMBED, () => capture(file, "fp32"));
    expectSame(ext.out, emb.out);
    expect(ext.stats.largestSegmentModel!).toBeLessThan(4096);
    expect(ours()).toEqual([]);
  });
});

describe("constant folding at load writes the weights it folds to the temporary data file", () => {
  it("Transpose of each external weight: folded tensors referenced there, exactly the transposes, runs bit-identical", async () => {
    const src = loadModel(tr.model);
    const ext = await withThreshold(undefined, () =>
      capture(tr.model, "fp16", (p) => {
        const g = p.model.proto.graph!;
        expect(g.node.some((n) => n.opType === "Transpose")).toBe(false);
        expect(g.initializer.map((t) => t.name).sort()).toEqual(["w0", "w1", "w2", "w3"]);
        for (const t of g.initializer) {
          expect(t.dataLocation).toBe(TensorProto_DataLocation.EXTERNAL);
          expect(t.rawData.byteLength).toBe(0);
          expect(location(t)).toMatch(/^trt-debug-\d+-.*\.weights$/);
          const s = tensorProtoToHost(src.graph.initializers.get(`${t.name}_t`)!, { baseDir: src.baseDir });
          const [cols, rows] = s.dims as [number, number];
          const want = new Float32Array(rows * cols);
          const sd = s.data as Float32Array;
          for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) want[r * cols + c] = sd[c * rows + r]!;
          const got = tensorProtoToHost(t);
          expect(got.dims).toEqual([rows, cols]);
          expect(Buffer.from((got.data as Float32Array).buffer, (got.data as Float32Array).byteOffset, want.byteLength).equals(Buffer.from(want.buffer))).toBe(true);
        }
      }),
    );
    const emb = await withThreshold(EMBED, () => capture(tr.model, "fp16"));
    expect(ext.summary.foldedNodes).toBe(4);
    expect(emb.summary.foldedNodes).toBe(4);
    expectSame(ext.out, emb.out);
    expect(ext.stats.largestSegmentModel!).toBeLessThan(4096);
    expect(ours()).toEqual([]);
  });

  it("typed bf16 + Transpose: run --mark-all, compare and compare REF OUT give byte-identical dumps to the embedded path; no temp file left", async () => {
    const dumps = (thr: string | undefined, tag: string) =>
      withThreshold(thr, async () => {
        const runOut = path.join(root, `run-${tag}`);
        const r = await runModel({ model: trBf.model, precisions: ["fp32", "bf16"], capture: { kind: "all" }, saveOutputs: runOut });
        const cmpOut = path.join(root, `cmp-${tag}`);
        const c = await compareModel({ model: trBf.model, compare: defaultCompareOptions(), saveOutputs: cmpOut });
        const g = await compareGraphs({ reference: tr.model, candidate: trBf.model, compare: defaultCompareOptions() });
        const files = [runOut, cmpOut].flatMap((d) => fs.readdirSync(d).sort().map((n) => path.join(d, n)));
        return { files, run: r.passed, passed: c.passed, layers: JSON.stringify(c.layers), graphs: JSON.stringify(g.layers) };
      });
    const a = await dumps(undefined, "ext");
    expect(ours()).toEqual([]);
    const b = await dumps(EMBED, "emb");
    expect(a.files.length).toBeGreaterThanOrEqual(4);
    expect(a.files.map((f) => path.basename(f))).toEqual(b.files.map((f) => path.basename(f)));
    for (let i = 0; i < a.files.length; i++) expect(fs.readFileSync(a.files[i]!).equals(fs.readFileSync(b.files[i]!)), a.files[i]).toBe(true);
    expect(a.layers).toEqual(b.layers);
    expect(a.graphs).toEqual(b.graphs);
    expect(a.graphs).toContain("mm0");
    expect([a.run, a.passed]).toEqual([b.run, b.passed]);
  });
});

describe("folding sessions of a model with external weights", () => {
  it("one session per output (batch budget lowered) or one for all: the same folded tensors, bit for bit, as the embedded path", async () => {
    // Two folded chains over external weights: s = Transpose(W) * c (depth 2, an embedded
    // scalar), u = Relu(Transpose(W2)); MatMuls read them, and W directly.
    const b = new GraphBuilder("fold2");
    const x = b.input("x", "float32", [1, 32]);
    const rnd = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k));
    const w = b.initializer("W", "float32", [64, 32], rnd(2048, 1));
    const w2 = b.initializer("W2", "float32", [64, 64], rnd(4096, 2));
    const c = b.initializer("c", "float32", [1], new Float32Array([2.5]));
    const sT = b.node("Mul", [b.node("Transpose", [w], { name: "tW" }), c], { name: "scale", outputs: ["s"] });
    const u = b.node("Relu", [b.node("Transpose", [w2], { name: "tW2" })], { name: "relu_w2", outputs: ["u"] });
    const y1 = b.node("MatMul", [x, sT], { name: "mm_s" });
    const y2 = b.node("MatMul", [y1, u], { name: "mm_u" });
    b.output(b.node("MatMul", [y2, w], { name: "mm_w" }), "float32");
    const file = path.join(root, "m", "fold2.onnx");
    saveModel(b.model({ opset: 17 }), file, { externalData: { location: "fold2.onnx.data" } });
    const folded = async (thr: string | undefined, batch?: number) =>
      withThreshold(thr, async () => {
        const m = loadModel(file);
        const r = await foldConstants(m, batch === undefined ? {} : { foldBatchBytes: batch });
        const g = m.proto.graph!;
        const out = new Map(["s", "u"].map((n) => {
          const t = g.initializer.find((i) => i.name === n)!;
          const h = tensorProtoToHost(t, { baseDir: m.baseDir });
          return [n, { loc: location(t), bytes: Buffer.from((h.data as Float32Array).slice().buffer) }] as const;
        }));
        releaseModelWeights(m);
        return { r, out, nodes: g.node.map((n) => n.name) };
      });
    const one = await folded(undefined, 1);
    const all = await folded(undefined);
    const emb = await folded(EMBED);
    for (const v of [one, all, emb]) {
      expect(v.r.foldedNodes).toBe(4);
      expect(v.nodes).toEqual(["mm_s", "mm_u", "mm_w"]);
    }
    for (const n of ["s", "u"]) {
      expect(one.out.get(n)!.loc).toMatch(/^trt-debug-\d+-.*\.weights$/);
      expect(all.out.get(n)!.loc).toMatch(/^trt-debug-\d+-.*\.weights$/);
      expect(emb.out.get(n)!.loc).toBeUndefined();
      expect(one.out.get(n)!.bytes.equals(emb.out.get(n)!.bytes), n).toBe(true);
      expect(all.out.get(n)!.bytes.equals(emb.out.get(n)!.bytes), n).toBe(true);
    }
    // s = W^T * 2.5 exactly (one fp32 multiply per element)
    const sv = new Float32Array(emb.out.get("s")!.bytes.buffer, emb.out.get("s")!.bytes.byteOffset, 2048);
    const wv = rnd(2048, 1);
    for (let r = 0; r < 32; r++) for (let k = 0; k < 64; k++) if (sv[r * 64 + k] !== Math.fround(wv[k * 32 + r]! * 2.5)) throw new Error(`s[${r},${k}]`);
    expect(ours()).toEqual([]);
  });
});
