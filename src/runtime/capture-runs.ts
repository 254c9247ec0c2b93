/**
 * Running a model under a precision assignment and streaming what it produces.
 */
import { aboutOptionOf, opt, UserError, userError } from "../core/errors.js";
import type { HostTensor, Precision } from "../core/host-tensor.js";
import { layerMemberNames, loadModel, type Layer, type LoadedModel, type LoadOptions } from "../onnx/model.js";
import { type TypeMap } from "../onnx/infer.js";
import { inferTypes } from "../onnx/model-types.js";
import { applyLayerModel, type FusionMode } from "../onnx/layer-model.js";
import type { Executor, SegmentResult } from "./executor.js";
import { fromOrt, toOrt, type OrtTensor } from "../onnx/ort-session.js";
import type { InputSpec } from "../data/inputs.js";
import { liftTypedModel, typedPrecisions } from "../precision/typed.js";
import { globToRegExp, isGlob, resolveEntries, resolvePlan, type PlanEntry, type PrecisionPlan } from "../precision/plan.js";
import { timed, timedAsync } from "../core/phase-profile.js";

export interface PreparedModel {
  model: LoadedModel;
  types: TypeMap;
  inputs: InputSpec[];
}

/** Load, validate and type a model, as TensorRT's layer model sees it (onnx/layer-model.ts). */
export async function prepareModelFile(path: string, opts: LoadOptions & { fusion?: FusionMode } = {}): Promise<PreparedModel> {
  return prepareLoadedModel(
    timed("load model", () => loadModel(path, { allowExternalDataOutside: opts.allowExternalDataOutside })),
    opts,
  );
}

/** prepareModelFile for a model already loaded (e.g. one rebuilt in memory from another: workflows/export-opset.ts). */
export async function prepareLoadedModel(loaded: LoadedModel, opts: { fusion?: FusionMode } = {}): Promise<PreparedModel> {
  const path = loaded.path;
  liftTypedModel(loaded);
  const { model, types } = await timedAsync("layer model (incl. type inference)", () => applyLayerModel(loaded, opts.fusion ?? "trt", (m) => timedAsync("  of which type inference session", () => inferTypes(m))));
  if (model.typed) model.typed = { ...model.typed, precisions: typedPrecisions(model, types)! };
  const inputs: InputSpec[] = model.graph.inputs.map((vi) => {
    const ty = types.get(vi.name);
    if (!ty) throw new UserError(`${path}: graph input '${vi.name}' is not a tensor; trt-debug feeds tensor inputs only`);
    return { name: vi.name, dtype: ty.dtype, dims: ty.shape ?? [] };
  });
  return { model, types, inputs };
}

/** One captured tensor with where it came from. */
export interface Captured {
  layer: Layer;
  tensor: HostTensor;
  precision: Precision;
  isGraphOutput: boolean;
}

/** Which layers' outputs to capture. */
export type CaptureSpec = { kind: "all" } | { kind: "outputs" } | { kind: "marked"; patterns: string[] };

export function captureFilter(m: LoadedModel, spec: CaptureSpec): (layerIndex: number) => boolean {
  const graphOut = new Set(m.graph.outputs.map((o) => o.name));
  const producesOutput = m.graph.layers.map((l) => l.outputs.some((o) => graphOut.has(o)));
  if (spec.kind === "all") return () => true;
  if (spec.kind === "outputs") return (i) => producesOutput[i]!;
  const sel = new Array<boolean>(m.graph.layers.length).fill(false);
  for (const p of spec.patterns) {
    const re = isGlob(p) ? globToRegExp(p) : null;
    let hit = false;
    for (const l of m.graph.layers) {
      const match = re
        ? re.test(l.name) || layerMemberNames(l).some((n) => re.test(n)) || l.outputs.some((o) => re.test(o))
        : l.name === p || layerMemberNames(l).includes(p) || l.outputs.includes(p);
      if (match) (sel[l.index] = true), (hit = true);
    }
    if (!hit) {
      const group = m.graph.layers.find((l) => l.nodes.length > 1 && l.nodes.some((n) => n.output.includes(p)));
      if (group) throw userError`${opt("capture")}: tensor '${p}' is inside the fused layer '${group.name}' of ${m.path} (TensorRT does not materialize it); mark '${group.name}', or run with ${opt("fusion")} none`;
      throw new UserError(`capture: '${p}' names no layer or tensor of ${m.path}; use a layer name, tensor name or glob`, "capture");
    }
  }
  return (i) => sel[i]! || producesOutput[i]!;
}

/**
 * Per-layer precisions for a run: the plan (or the run's default precision everywhere), then
 * the `layerPrecisions` overrides on top.
 */
export function assignPrecisions(m: LoadedModel, defaultPrecision: Precision, overrides: readonly PlanEntry[], plan?: PrecisionPlan): Precision[] {
  // A strongly typed model runs as typed (precision/typed.ts) unless a plan says otherwise.
  const base = plan ? aboutOptionOf("precisionPlan", () => resolvePlan(plan, m.graph.layers, "precisionPlan")) : (m.typed?.precisions?.slice() ?? m.graph.layers.map(() => defaultPrecision));
  const over = aboutOptionOf("layerPrecisions", () => resolveEntries(overrides, m.graph.layers, "layerPrecisions"));
  return base.map((p, i) => over[i] ?? p);
}

export function makeFeeds(inputs: HostTensor[]): Map<string, OrtTensor> {
  return new Map(inputs.map((t) => [t.name, toOrt(t)]));
}

/**
 * Run once and yield captured tensors in execution order. Graph outputs are always captured.
 */
export async function* runCaptured(
  exec: Executor,
  precisions: readonly Precision[],
  inputs: HostTensor[],
  capture: (layerIndex: number) => boolean,
): AsyncGenerator<Captured> {
  const m = exec.model;
  const graphOut = new Set(m.graph.outputs.map((o) => o.name));
  for await (const r of exec.run(precisions, makeFeeds(inputs), capture)) {
    yield* segmentCaptures(m, precisions, r.captured, graphOut);
  }
}

export function* segmentCaptures(m: LoadedModel, precisions: readonly Precision[], captured: Map<string, OrtTensor>, graphOut: Set<string>): Generator<Captured> {
  for (const [name, t] of captured) {
    const li = m.graph.producer.get(name)!;
    yield { layer: m.graph.layers[li]!, tensor: fromOrt(name, t), precision: precisions[li]!, isGraphOutput: graphOut.has(name) };
  }
}

/** A pair of captures of the same tensor from a reference and a candidate run. */
export interface CapturedPair {
  layer: Layer;
  ref: Captured;
  cand: Captured;
}

/**
 * Run reference and candidate in lockstep, segment by segment, yielding matching tensors.
 * Only one segment of each run is in memory at a time.
 */
export async function* runPaired(
  exec: Executor,
  refPrecisions: readonly Precision[],
  candPrecisions: readonly Precision[],
  refInputs: HostTensor[],
  candInputs: HostTensor[],
  capture: (layerIndex: number) => boolean,
  candExec: Executor = exec,
): AsyncGenerator<CapturedPair> {
  const m = exec.model;
  const graphOut = new Set(m.graph.outputs.map((o) => o.name));
  const ref = exec.run(refPrecisions, makeFeeds(refInputs), capture);
  const cand = candExec.run(candPrecisions, makeFeeds(candInputs), capture);
  // With the candidate in a worker thread (candExec.options.worker), its segment k is handed to
  // the worker first, then the reference's segment k runs here meanwhile.
  const overlap = candExec.options.worker !== undefined;
  try {
  for (;;) {
    let a: IteratorResult<SegmentResult>, b: IteratorResult<SegmentResult>;
    if (overlap) {
      const bp = cand.next();
      bp.catch(() => undefined); // awaited below; a reference failure must not leave it unhandled
      a = await ref.next();
      b = await bp;
    } else {
      a = await ref.next();
      b = await cand.next();
    }
    if (a.done || b.done) break;
    const rc = new Map<string, Captured>();
    for (const c of segmentCaptures(m, refPrecisions, a.value.captured, graphOut)) rc.set(c.tensor.name, c);
    for (const c of segmentCaptures(m, candPrecisions, b.value.captured, graphOut)) {
      const r = rc.get(c.tensor.name);
      if (r) yield { layer: c.layer, ref: r, cand: c };
    }
  }
  } finally {
    await Promise.allSettled([ref.return(undefined), cand.return(undefined)]);
  }
}
