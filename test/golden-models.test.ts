/**
 * The golden models and the other generators: determinism of golden/, fp32 sanity, the
 * planted mechanisms (checked on intermediate tensors exposed as graph outputs), and the
 * promised fp16 facts (first failing layer, minimal pin set) checked with an independent
 * Cast-based fp16 emulation (scripts/models/fp16-oracle.ts).
 */
import { fromBinary } from "@bufbuild/protobuf";
import ort from "onnxruntime-node";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelProtoSchema, TensorProto_DataLocation, type ModelProto } from "onnx-buf";
import { modelBytes, saveModel } from "./support/graph-builder.js";
import { GOLDEN_FORMAT, buildGolden } from "../scripts/build-golden.js";
import {
  FP16_EXP_LIMIT,
  FP16_MAX,
  FP16_MIN_SUBNORMAL,
  GOLDEN_GENERATORS,
  type ModelFacts,
  Rng,
  benchModel,
  deepMlpWithCulprits,
  notTopoSorted,
  optionalAndSequence,
  outlierActivation,
  unnamedNodes,
  withExternalData,
  withIf,
  withLoop,
} from "../scripts/models/all-models.js";
import { exposeTensors, fp16LayerErrors, relL2, runModel } from "../scripts/models/fp16-oracle.js";

const GOLDEN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "golden");
const NAMES = Object.keys(GOLDEN_GENERATORS);
/** Layers that pass stay below this relative L2 error in fp16; failures are far above FAIL. */
const PASS = 3e-3;
const FAIL = 0.5;
const SEEDS = [1, 2, 3];

type Feeds = Record<string, { dims: number[]; data: Float32Array }>;

function feedsFor(facts: ModelFacts, seed: number): Feeds {
  const rng = new Rng(`inputs/${seed}`);
  const feeds: Feeds = {};
  for (const i of facts.inputs) {
    const n = i.dims.reduce((a, b) => a * b, 1);
    feeds[i.name] = { dims: i.dims, data: rng.uniforms(n, i.valueRange[0], i.valueRange[1]) };
  }
  return feeds;
}

function loadGolden(name: string): { model: ModelProto; facts: ModelFacts & { format: string; modelSha256: string } } {
  const model = fromBinary(ModelProtoSchema, fs.readFileSync(path.join(GOLDEN_DIR, `${name}.onnx`)));
  const facts = JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, `${name}.expected.json`), "utf8"));
  return { model, facts };
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function minAbs(a: Float32Array): number {
  let m = Infinity;
  for (const v of a) m = Math.min(m, Math.abs(v));
  return m;
}

/** Every node's first output, run in fp32 (graph optimizations off). */
async function allTensors(model: ModelProto, feeds: Feeds): Promise<Map<string, Float32Array>> {
  const names = model.graph!.node.map((n) => n.output[0]!);
  return runModel(exposeTensors(model, names), feeds);
}

describe("golden/", () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "trt-debug-golden-"));
  });
  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("is exactly what scripts/build-golden.ts writes (byte-identical regeneration)", () => {
    const written = buildGolden(tmp);
    expect(written).toEqual([...NAMES.flatMap((n) => [`${n}.onnx`, `${n}.expected.json`]), "README.md"].sort());
    for (const f of written) {
      const fresh = fs.readFileSync(path.join(tmp, f));
      const checkedIn = fs.readFileSync(path.join(GOLDEN_DIR, f));
      expect(fresh.equals(checkedIn), `${f} differs from golden/${f}: rerun npx tsx scripts/build-golden.ts`).toBe(true);
    }
    // And a second run is identical to the first.
    const again = fs.mkdtempSync(path.join(tmp, "again-"));
    buildGolden(again);
    for (const f of written) {
      expect(fs.readFileSync(path.join(again, f)).equals(fs.readFileSync(path.join(tmp, f)))).toBe(true);
    }
  });

  it.each(NAMES)("%s: small, named nodes, expected.json consistent with the model", (name) => {
    const { model, facts } = loadGolden(name);
    expect(fs.statSync(path.join(GOLDEN_DIR, `${name}.onnx`)).size).toBeLessThan(1 << 20);
    expect(facts.format).toBe(GOLDEN_FORMAT);
    expect(facts.name).toBe(name);
    const nodes = model.graph!.node;
    expect(facts.nodeCount).toBe(nodes.length);
    expect(nodes.every((n) => n.name !== "")).toBe(true);
    const names = new Set(nodes.map((n) => n.name));
    expect(names.size).toBe(nodes.length);
    expect(names.has(facts.firstFailingFp16!)).toBe(true);
    for (const p of facts.minimalPinSet!) expect(names.has(p)).toBe(true);
    expect(nodes.find((n) => n.name === facts.firstFailingFp16)!.output[0]).toBe(facts.failingTensor);
    expect(model.graph!.output.map((o) => o.name)).toEqual(facts.outputs);
  });

  it.each(NAMES)("%s: fp32 run is finite everywhere, for several inputs", async (name) => {
    const { model, facts } = loadGolden(name);
    for (const seed of SEEDS) {
      const t = await allTensors(model, feedsFor(facts, seed));
      expect(t.size).toBe(model.graph!.node.length);
      for (const [k, v] of t) expect(v.every(Number.isFinite), `${k} not finite`).toBe(true);
    }
  });

  it("layernorm_overflow: (x-mean)^2 > 65504 while its inputs and the variance fit fp16", async () => {
    const { model, facts } = loadGolden("layernorm_overflow");
    for (const seed of SEEDS) {
      const t = await allTensors(model, feedsFor(facts, seed));
      expect(maxAbs(t.get("ln1/pow_output_0")!)).toBeGreaterThan(4 * FP16_MAX);
      expect(maxAbs(t.get("ln1/sub_output_0")!)).toBeLessThan(FP16_MAX);
      const lnIn = t.get(facts.lnInputTensor as string)!;
      expect(maxAbs(lnIn)).toBeGreaterThan(300); // "large": hundreds and more
      expect(maxAbs(lnIn)).toBeLessThan(FP16_MAX / 10);
      expect(maxAbs(t.get(facts.varianceTensor as string)!)).toBeLessThan(FP16_MAX / 1.5);
    }
  });

  it("exp_overflow: the exp input exceeds ln(65504) = 11.09, exp itself is finite in fp32", async () => {
    const { model, facts } = loadGolden("exp_overflow");
    for (const seed of SEEDS) {
      const t = await allTensors(model, feedsFor(facts, seed));
      const scores = t.get(facts.expInputTensor as string)!;
      expect(maxAbs(scores)).toBeGreaterThan(FP16_EXP_LIMIT + 0.5);
      expect(maxAbs(scores)).toBeLessThan(60);
      expect(maxAbs(t.get("attn/exp_output_0")!)).toBeGreaterThan(FP16_MAX);
    }
  });

  it("underflow: the second scale-down is below 2^-24 everywhere, the first is not", async () => {
    const { model, facts } = loadGolden("underflow");
    for (const seed of SEEDS) {
      const t = await allTensors(model, feedsFor(facts, seed));
      // Below half the smallest subnormal: every element rounds to 0 in fp16.
      expect(maxAbs(t.get("scale_down2_output_0")!)).toBeLessThan(FP16_MIN_SUBNORMAL / 2);
      expect(minAbs(t.get(facts.subnormalTensor as string)!)).toBeGreaterThan(100 * FP16_MIN_SUBNORMAL);
      expect(relL2(t.get("pre/sigmoid_output_0")!, t.get("scale_up2_output_0")!)).toBeLessThan(1e-6);
    }
  });

  it("matmul_consumer: mm_big's output exceeds 65504, nothing else does", async () => {
    const { model, facts } = loadGolden("matmul_consumer");
    for (const seed of SEEDS) {
      const t = await allTensors(model, feedsFor(facts, seed));
      expect(minAbs(t.get("mm_big_output_0")!)).toBeGreaterThan(FP16_MAX);
      for (const [k, v] of t) if (k !== "mm_big_output_0") expect(maxAbs(v), k).toBeLessThan(FP16_MAX / 10);
    }
    expect(facts.nodeCount - 2).toBeGreaterThanOrEqual(20);
  });

  it.each(NAMES)("%s: fp16 emulation fails first at the planted layer", async (name) => {
    const { model, facts } = loadGolden(name);
    for (const seed of SEEDS) {
      const { layers } = await fp16LayerErrors(model, feedsFor(facts, seed));
      const idx = layers.findIndex((l) => l.node === facts.firstFailingFp16);
      for (const l of layers.slice(0, idx)) expect(l.relL2, `${l.node} (seed ${seed})`).toBeLessThan(PASS);
      expect(layers[idx]!.relL2).toBeGreaterThan(FAIL);
    }
  });

  it.each(NAMES)("%s: the minimal pin set fixes fp16, and no member can be dropped", async (name) => {
    const { model, facts } = loadGolden(name);
    const pins = facts.minimalPinSet!;
    const insufficient = [
      ...pins.map((p) => pins.filter((q) => q !== p)),
      ...((facts.insufficientPinSets as string[][] | undefined) ?? []),
    ];
    for (const seed of SEEDS) {
      const feeds = feedsFor(facts, seed);
      const ok = await fp16LayerErrors(model, feeds, new Set(pins));
      for (const [o, e] of ok.outputs) expect(e, `${o} with pins (seed ${seed})`).toBeLessThan(5e-3);
      const none = await fp16LayerErrors(model, feeds);
      for (const e of none.outputs.values()) expect(e).toBeGreaterThan(FAIL);
      for (const set of insufficient) {
        const r = await fp16LayerErrors(model, feeds, new Set(set));
        expect(Math.max(...r.outputs.values()), `pins ${set.join(",")}`).toBeGreaterThan(FAIL);
      }
    }
  });
});

describe("deepMlpWithCulprits", () => {
  it("has ≥ 200 nodes and its culprits fail first in fp16; the union pin set fixes it", async () => {
    const { model, facts } = deepMlpWithCulprits();
    const again = deepMlpWithCulprits();
    expect(Buffer.from(modelBytes(again.model)).equals(Buffer.from(modelBytes(model)))).toBe(true);
    expect(facts.nodeCount).toBeGreaterThanOrEqual(200);
    expect(model.graph!.node.length).toBe(facts.nodeCount);
    expect(facts.culprits.map((c) => c.kind)).toEqual(["exp_overflow", "underflow"]);
    expect(facts.firstFailingFp16).toBe("c0/exp");
    for (const c of facts.culprits) expect(model.graph!.node[c.firstFailingIndex]!.name).toBe(c.firstFailing);
    for (const seed of [1, 2]) {
      const feeds = feedsFor(facts, seed);
      const { layers } = await fp16LayerErrors(model, feeds);
      const first = layers.findIndex((l) => !(l.relL2 < 1e-2));
      expect(layers[first]!.node).toBe("c0/exp");
      expect(layers[first]!.relL2).toBeGreaterThan(FAIL);
      const pinned = await fp16LayerErrors(model, feeds, new Set(facts.minimalPinSet));
      for (const e of pinned.outputs.values()) expect(e).toBeLessThan(5e-3);
      // With only the first culprit fixed, the second one is the first failing layer.
      const half = await fp16LayerErrors(model, feeds, new Set(facts.culprits[0]!.pinSet));
      const second = half.layers.findIndex((l) => !(l.relL2 < 0.05));
      expect(half.layers[second]!.node).toBe(facts.culprits[1]!.firstFailing);
      for (const p of facts.minimalPinSet!) {
        const r = await fp16LayerErrors(model, feeds, new Set(facts.minimalPinSet!.filter((q) => q !== p)));
        expect(Math.max(...r.outputs.values()), `without ${p}`).toBeGreaterThan(0.05);
      }
    }
  });

  it("without culprits it is fine in fp16, and culprits go where asked", async () => {
    const clean = deepMlpWithCulprits(200, []);
    const e = await fp16LayerErrors(clean.model, feedsFor(clean.facts, 1));
    expect(Math.max(...e.layers.map((l) => l.relL2))).toBeLessThan(1e-2);
    expect(clean.facts.minimalPinSet).toEqual([]);
    expect(clean.facts.firstFailingFp16).toBeNull();
    const placed = deepMlpWithCulprits(250, [
      { kind: "underflow", at: 30 },
      { kind: "underflow", at: 200 },
    ]);
    expect(placed.facts.nodeCount).toBeGreaterThanOrEqual(250);
    const idx = placed.facts.culprits.map((c) => c.firstFailingIndex);
    expect(idx[0]).toBeGreaterThanOrEqual(30);
    expect(idx[0]).toBeLessThan(60);
    expect(idx[1]).toBeGreaterThanOrEqual(200);
  });
});

describe("benchModel", () => {
  it("has ≥ 20M parameters, ≥ 200 nodes, 300-900 MB of activations, O(1) finite outputs", async () => {
    const { model, facts } = benchModel();
    expect(facts.params).toBeGreaterThanOrEqual(20_000_000);
    expect(facts.nodeCount).toBeGreaterThanOrEqual(200);
    expect(facts.activationBytes).toBeGreaterThan(300e6);
    expect(facts.activationBytes).toBeLessThan(900e6);
    const last = model.graph!.output[0]!.name;
    const mid = model.graph!.node[140]!.output[0]!;
    // Default session options (layout optimizations on): the way the bench runs it.
    const s = await ort.InferenceSession.create(modelBytes(exposeTensors(model, [mid])));
    const x = feedsFor(facts, 1).x!;
    const out = await s.run({ x: new ort.Tensor("float32", x.data, x.dims) }, [last, mid]);
    await s.release();
    for (const t of [last, mid]) {
      const v = out[t]!.data as Float32Array;
      expect(v.every(Number.isFinite)).toBe(true);
      let ss = 0;
      for (const x of v) ss += x * x;
      const rms = Math.sqrt(ss / v.length);
      expect(rms, t).toBeGreaterThan(0.05);
      expect(rms, t).toBeLessThan(20);
      expect(maxAbs(v)).toBeLessThan(1000);
    }
  });
});

describe("outlierActivation", () => {
  it("has a heavy outlier tail on the named tensor only", async () => {
    const { model, facts } = outlierActivation();
    const t = await runModel(exposeTensors(model, [facts.outlierTensor, facts.cleanTensor]), feedsFor(facts, 1));
    const pct = (a: Float32Array, q: number): number => {
      const s = Array.from(a, Math.abs).sort((x, y) => x - y);
      return s[Math.floor(q * (s.length - 1))]!;
    };
    const o = t.get(facts.outlierTensor)!;
    const c = t.get(facts.cleanTensor)!;
    expect(facts.outlierFraction).toBeGreaterThan(0.0005);
    expect(facts.outlierFraction).toBeLessThan(0.002);
    expect(maxAbs(o) / pct(o, 0.998)).toBeGreaterThan(10);
    expect(maxAbs(c) / pct(c, 0.998)).toBeLessThan(2);
    for (const p of facts.outlierPositions) expect(o[p]).toBeCloseTo(100 * c[p]!, 3);
  });
});

describe("loader fixtures run in onnxruntime-node", () => {
  const x24 = Float32Array.from([-1, -0.5, 0, 0.5, 1, 2, -2, 0.25]);
  const sig = (v: number): number => 1 / (1 + Math.exp(-v));
  const relu = (v: number): number => Math.max(0, v);

  it("notTopoSorted", async () => {
    const { model, facts } = notTopoSorted();
    expect(model.graph!.node.map((n) => n.name)).toEqual(facts.fileOrder);
    expect(facts.fileOrder).toEqual([...facts.topoOrder].reverse());
    const y = (await runModel(model, { x: { dims: [2, 4], data: x24 } })).get(facts.outputs[0]!)!;
    x24.forEach((v, i) => expect(y[i]).toBeCloseTo(2 * (relu(v) + sig(v)) - relu(v), 5));
  });

  it("withIf takes either branch and reads the outer tensor", async () => {
    const { model, facts } = withIf();
    const pos = Float32Array.from([1, -2, 3, 0.5, -0.5, 1]);
    const neg = pos.map((v) => -v);
    const yp = (await runModel(model, { x: { dims: [2, 3], data: pos } })).get("y")!;
    const yn = (await runModel(model, { x: { dims: [2, 3], data: neg } })).get("y")!;
    pos.forEach((v, i) => expect(yp[i]).toBeCloseTo(relu(v) * 2, 6));
    neg.forEach((v, i) => expect(yn[i]).toBeCloseTo(relu(v) - 1, 6));
    expect(facts.outerScopeTensor).toBe("relu_output_0");
    const sub = model.graph!.node.find((n) => n.opType === "If")!.attribute.map((a) => a.g!.node[0]!);
    expect(sub.map((n) => n.name)).toEqual(facts.subgraphNodes);
    expect(sub.every((n) => n.input.includes(facts.outerScopeTensor))).toBe(true);
  });

  it("withLoop", async () => {
    const { model, facts } = withLoop();
    const x = Float32Array.from([1, -2, 3, 0.5, -0.5, 1]);
    const r = await runModel(model, { x: { dims: [2, 3], data: x } });
    x.forEach((v, i) => expect(r.get("v_final")![i]).toBeCloseTo(v + facts.tripCount * relu(v), 6));
    expect(r.get("v_scan")!.length).toBe(facts.tripCount * 6);
    x.forEach((v, i) => expect(r.get("v_scan")![i]).toBeCloseTo(v + relu(v), 6));
  });

  it("unnamedNodes", async () => {
    const { model, facts } = unnamedNodes();
    expect(facts.names).toEqual(["", "", "", "scale", ""]);
    expect(facts.opTypes).toEqual(["Relu", "Relu", "Add", "Mul", "Add"]);
    const bytes = modelBytes(model);
    // The names are really absent from the file.
    expect(fromBinary(ModelProtoSchema, bytes).graph!.node.filter((n) => n.name === "").length).toBe(4);
    const y = (await runModel(model, { x: { dims: [2, 4], data: x24 } })).get("y")!;
    x24.forEach((v, i) => expect(y[i]).toBeCloseTo((relu(v) + 1) * 3 + v, 5));
  });

  it("withExternalData saved with a side file", async () => {
    const { model, facts } = withExternalData();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trt-debug-ext-"));
    try {
      const file = path.join(dir, "with_external_data.onnx");
      saveModel(model, file, { externalData: facts.externalData });
      const saved = fromBinary(ModelProtoSchema, fs.readFileSync(file));
      for (const t of saved.graph!.initializer) {
        const external = t.dataLocation === TensorProto_DataLocation.EXTERNAL;
        expect(external, t.name).toBe(facts.externalTensors.includes(t.name));
      }
      expect(fs.existsSync(path.join(dir, facts.externalData.location))).toBe(true);
      const feeds = feedsFor(facts, 1);
      const x = { x: new ort.Tensor("float32", feeds.x!.data, feeds.x!.dims) };
      const fromFile = await (await ort.InferenceSession.create(file)).run(x);
      const inMemory = await (await ort.InferenceSession.create(modelBytes(model))).run(x);
      const y = facts.outputs[0]!;
      expect(Array.from(fromFile[y]!.data as Float32Array)).toEqual(Array.from(inMemory[y]!.data as Float32Array));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("optionalAndSequence", async () => {
    const { model, facts } = optionalAndSequence();
    const x = Float32Array.from([1, -2, 3, 0.5, -0.5, 1]);
    const s = await ort.InferenceSession.create(modelBytes(model));
    const r = await s.run({ x: new ort.Tensor("float32", x, [2, 3]) });
    await s.release();
    x.forEach((v, i) => {
      expect((r.y_seq_at!.data as Float32Array)[i]).toBeCloseTo(2 * v, 6);
      expect((r.y_opt_get!.data as Float32Array)[i]).toBeCloseTo(relu(v), 6);
    });
    expect(Array.from(r.y_opt_has!.data as Uint8Array)).toEqual([1]);
    const vi = new Map(model.graph!.valueInfo.map((v) => [v.name, v.type?.value.case]));
    expect(vi.get("seq")).toBe("sequenceType");
    expect(vi.get("opt")).toBe("optionalType");
    expect(facts.nonTensorValues).toEqual({ seq: "sequence", opt: "optional" });
  });
});
