// How a run is cut into segments (runtime/executor.ts planSegments, docs/performance.md): by
// bytes of activations under --segment-memory (one session when the model fits), by layer count
// under --segment-layers. The dump of a model and its inputs must not depend on the cut: the
// files are hashed for several cuts and must be byte-identical.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runModel, bisectModel, openDump, UserError, type RunArgs } from "../src/index.js";
import { prepareModelFile, type PreparedModel } from "../src/runtime/capture-runs.js";
import { DEFAULT_SEGMENT_MEMORY, Executor, estimateTensorBytes, planSegments, segmentLimits, type Segment } from "../src/runtime/executor.js";
import { plannedTensorBytes } from "../src/runtime/size-estimate.js";
import { dbDetector } from "../scripts/models/db-detector.js";
import { saveModel } from "./support/graph-builder.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

const dir = tmpDir("trtdbg-segplan-");
const model = path.join(dir, "det.onnx");
let p: PreparedModel;

beforeAll(async () => {
  // BatchNorm from Constant nodes, residual Adds, Resize with shapes onnxruntime leaves unknown.
  saveModel(dbDetector({ size: 64, blocks: [1, 1, 2, 1] }).model, model);
  p = await prepareModelFile(model);
});

/** Activation bytes a segment holds: its layers' outputs plus what it reads from earlier layers (as the planner counts). */
function segmentBytes(s: Segment): number {
  const seen = new Set<string>();
  for (let i = s.start; i < s.end; i++) {
    const l = p.model.graph.layers[i]!;
    for (const t of [...l.inputs, ...l.implicitInputs, ...l.outputs]) if (t !== "" && !p.model.graph.initializers.has(t)) seen.add(t);
  }
  let n = 0;
  for (const t of seen) n += estimateTensorBytes(p.types, t);
  return n;
}

function contiguous(segs: Segment[]): void {
  expect(segs[0]!.start).toBe(0);
  expect(segs.at(-1)!.end).toBe(p.model.graph.layers.length);
  for (let i = 1; i < segs.length; i++) expect(segs[i]!.start).toBe(segs[i - 1]!.end);
  for (const s of segs) expect(s.end).toBeGreaterThan(s.start);
}

describe("segments by bytes of activations", () => {
  it("one segment when the model fits the default budget; cuts within a small one", () => {
    const n = p.model.graph.layers.length;
    const whole = planSegments(p.model, p.types, segmentLimits({}));
    expect(segmentLimits({})).toEqual({ bytes: DEFAULT_SEGMENT_MEMORY });
    expect(whole.map((s) => [s.start, s.end])).toEqual([[0, n]]);
    // 256 KiB: the stem alone writes 16x32x32 floats (64 KiB), so the model needs several cuts.
    const budget = 256 * 1024;
    const small = planSegments(p.model, p.types, { bytes: budget });
    contiguous(small);
    expect(small.length).toBeGreaterThan(3);
    // A segment over the budget is a single layer (or one that no cut may split); every known-size segment of several layers fits.
    const known = (s: Segment) => {
      for (let i = s.start; i < s.end; i++) for (const o of p.model.graph.layers[i]!.outputs) if (o && estimateTensorBytes(p.types, o) === 0) return false;
      return true;
    };
    const checked = small.filter((s) => s.end - s.start > 1 && known(s));
    expect(checked.length).toBeGreaterThan(0);
    for (const s of checked) expect(segmentBytes(s), `layers ${s.start}-${s.end - 1}`).toBeLessThanOrEqual(budget);
    // Greedy: adding the next layer would have passed the budget.
    for (const s of small.slice(0, -1)) {
      if (!known(s) || !known({ ...s, end: s.end + 1 })) continue;
      expect(segmentBytes({ ...s, end: s.end + 1 })).toBeGreaterThan(budget);
    }
  });

  it("--segment-layers alone keeps the layer-count cut; both limits: the tighter one wins", () => {
    const n = p.model.graph.layers.length;
    const by3 = planSegments(p.model, p.types, segmentLimits({ segmentLayers: 3 }));
    expect(by3).toHaveLength(Math.ceil(n / 3));
    const both = planSegments(p.model, p.types, segmentLimits({ segmentLayers: 3, segmentMemory: 1 }));
    expect(both).toHaveLength(n); // 1 byte: one layer per segment
    const exec = new Executor(p.model, p.types, { segmentMemory: 2 ** 30 });
    expect(exec.segments).toHaveLength(1);
  });

  it("rejects a bad size naming the option, in the library and on the command line", async () => {
    for (const bad of [0, -1, Number.NaN, Infinity]) {
      const e = await runModel({ model, precisions: ["fp32"], capture: { kind: "outputs" }, segmentMemory: bad }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).option).toBe("segmentMemory");
      expect((e as Error).message).toMatch(/^segmentMemory: must be a positive size/);
    }
    expectUserError(await cli("run", model, "--fp32", "--segment-memory", "12Q"), "--segment-memory: expected a size such as 2G");
    const e = await bisectModel({ model, precision: "fp16", criterion: { kind: "metric", metric: "max-rel-l2", threshold: 0.1 } as never, segmentMemory: 2 ** 20 }).catch((x: unknown) => x);
    expect((e as UserError).option).toBe("segmentMemory");
  });
});

describe("the dump does not depend on the cut", () => {
  const hashOf = (f: string) => crypto.createHash("sha256").update(fs.readFileSync(f)).digest("hex");
  const cuts: { name: string; opts: Partial<RunArgs> }[] = [
    { name: "8 layers (the old default)", opts: { segmentLayers: 8 } },
    { name: "1 layer", opts: { segmentLayers: 1 } },
    { name: "default budget (one segment)", opts: {} },
    { name: "256 KiB", opts: { segmentMemory: 256 * 1024 } },
    { name: "1 GiB + 5 layers", opts: { segmentMemory: 2 ** 30, segmentLayers: 5 } },
  ];

  for (const precision of ["fp32", "fp16"] as const) {
    it(`${precision}, every tensor: byte-identical dumps for ${cuts.length} cuts`, async () => {
      const hashes = new Map<string, string>();
      for (const c of cuts) {
        const out = path.join(dir, `${precision}-${c.name.replace(/\W+/g, "_")}`);
        const r = await runModel({ model, precisions: [precision], capture: { kind: "all" }, saveOutputs: out, ...c.opts });
        expect(r.runs[0]!.tensors).toBe(p.model.graph.layers.length);
        hashes.set(c.name, hashOf(r.runs[0]!.dump!));
      }
      const first = [...hashes.values()][0]!;
      for (const [name, h] of hashes) expect(h, name).toBe(first);
      // and the rows are every layer's output, in order
      const d = await openDump(path.join(dir, `${precision}-1_layer`, `${precision}.arrow`));
      expect(d.numRows).toBe(p.model.graph.layers.length);
      await d.close();
    });
  }
});

describe("sizes onnxruntime's inference leaves open", () => {
  it("are estimated from the layer's inputs (Resize scales, Conv channels and strides, Concat), exactly here, so the head is not cut layer by layer", async () => {
    const unknown = p.model.graph.layers.flatMap((l) => l.outputs.filter((o) => o !== "" && estimateTensorBytes(p.types, o) === 0));
    expect(unknown.length).toBeGreaterThan(5); // the FPN head after the first Resize
    const planned = plannedTensorBytes(p.model, p.types);
    const out = path.join(dir, "sizes");
    await runModel({ model, precisions: ["fp32"], capture: { kind: "all" }, saveOutputs: out });
    const d = await openDump(path.join(out, "fp32.arrow"));
    const actual = new Map<string, number>();
    for await (const r of d.rows()) actual.set(r.tensor, r.stats.numel * 4);
    await d.close();
    for (const t of unknown) expect(planned.get(t), t).toBe(actual.get(t));
    // a budget of four times the largest activation: no segment of the head holds a single layer
    const largest = Math.max(...actual.values());
    const segs = planSegments(p.model, p.types, { bytes: 4 * largest });
    contiguous(segs);
    const firstUnknown = p.model.graph.layers.findIndex((l) => l.outputs.some((o) => unknown.includes(o)));
    for (const s of segs) if (s.start >= firstUnknown && s.end < p.model.graph.layers.length) expect(s.end - s.start, `segment ${s.id}`).toBeGreaterThan(1);
    for (const s of segs) {
      let real = 0;
      const seen = new Set<string>();
      for (let i = s.start; i < s.end; i++) {
        const l = p.model.graph.layers[i]!;
        for (const t of [...l.inputs, ...l.outputs]) if (t !== "" && !p.model.graph.initializers.has(t) && !seen.has(t)) { seen.add(t); real += actual.get(t) ?? estimateTensorBytes(p.types, t); }
      }
      if (s.end - s.start > 1) expect(real, `segment ${s.id}`).toBeLessThanOrEqual(4 * largest);
    }
  });
});
