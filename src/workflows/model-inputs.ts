/**
 * What every model workflow shares: the model options (ModelArgs), input sets (generated,
 * loaded, or from a loader script; saved when asked), per-layer precisions from the plan and
 * overrides, executor options and the output-path checks made before any work.
 */
import { fusionExtra, type FusionMode } from "../onnx/layer-model.js";
import * as path from "node:path";
import { opt, optionError, optionText, UserError, userError } from "../core/errors.js";
import { type HostTensor, type Precision } from "../core/host-tensor.js";
import { generateInputs, loadInputs, resolveInputShapes } from "../data/inputs.js";
import { mayHaveSeveralSets, openInputSets, openLoaderScript, type InputSets } from "../data/sources.js";
import { checkOutputPath } from "../core/output-file.js";
import { inputsMetadata } from "./dump-checks.js";
import { readPlan, type PrecisionPlan, type PlanEntry } from "../precision/plan.js";
import { checkSegmentLayers, checkSegmentMemory, type ExecutorOptions } from "../runtime/executor.js";
import { assignPrecisions, type PreparedModel } from "../runtime/capture-runs.js";
import type { OptimizationLevel } from "../onnx/ort-session.js";
import { type Int8RunArgs } from "../calibration/int8-run.js";
import type { Layer } from "../onnx/model.js";
import { inputsFormatOf, openInputsSink, type InputsFormat, type InputsSink } from "./input-sinks.js";
import { spelled, type Hooks, type Warn } from "../core/hooks.js";
import { generationOptions, type InputArgs } from "../data/input-args.js";

export interface ModelArgs {
  model: string;
  inputs?: InputArgs;
  /** Per-layer overrides: exact layer names or globs, in order (a later entry wins). */
  layerPrecisions?: readonly PlanEntry[];
  precisionPlan?: string;
  segmentLayers?: number;
  /** Bytes of activations per execution segment (default runtime/executor.ts DEFAULT_SEGMENT_MEMORY, 16 MiB); docs/performance.md. */
  segmentMemory?: number;
  optimization?: OptimizationLevel;
  /** int8 runs: calibration cache, fallback precision, clamp range (docs/int8.md). */
  int8?: Int8RunArgs;
  /** Layer fusion: "trt" (default, TensorRT's fused groups) or "none" (one layer per node); docs/precision.md. */
  fusion?: FusionMode;
  /** Accept external data outside the model's folder (docs/security.md). Off by default. */
  allowExternalDataOutside?: boolean;
}

/** The input sets of `a` when they can be several (real-data sources beyond .pb); null otherwise. */
export function inputSetsOf(p: PreparedModel, a: InputArgs = {}): InputSets | null {
  const load = a.loadInputs ?? [];
  if (a.dataLoaderScript) {
    if (load.length) throw userError`${opt("dataLoaderScript")} and ${opt("loadInputs")}: give the input data once`;
    return openLoaderScript(a.dataLoaderScript, p.inputs);
  }
  if (a.imagePreprocess !== undefined && !load.length) throw userError`${opt("imagePreprocess")}: give images with ${opt("loadInputs")} (a .png/.jpg file or a folder of them)`;
  if (load.length && (mayHaveSeveralSets(load) || a.imagePreprocess !== undefined)) return openInputSets(load, p.inputs, { option: "loadInputs", imagePreprocess: a.imagePreprocess });
  return null;
}

/** Passes input sets through, writing each to `file` (--save-inputs) as it goes; the file is complete when they end. */
async function* savingSets(sets: AsyncIterable<HostTensor[]>, file: string | undefined, p: PreparedModel, seed: InputArgs["seed"], format?: InputsFormat): AsyncGenerator<HostTensor[]> {
  let writer: InputsSink | null = null;
  let ok = false;
  try {
    for await (const set of sets) {
      if (file) {
        writer ??= await openInputsSink(file, inputsFormatOf(file, format), { model: p.model.path, extra: { seed: String(seed ?? 1) } });
        await writer.write(set);
      }
      yield set;
    }
    ok = true;
  } finally {
    if (writer) await (ok ? writer.close() : writer.abort());
  }
}

/**
 * Every input set (iteration), one at a time; `--save-inputs` writes all of them (rows in
 * order, set after set). Generated inputs and ONNX .pb data are one set.
 */
export async function* resolveInputSets(p: PreparedModel, a: InputArgs = {}, hooks: Hooks = {}): AsyncGenerator<HostTensor[]> {
  const sets = inputSetsOf(p, a);
  if (!sets) {
    yield await resolveInputs(p, a, hooks);
    return;
  }
  yield* savingSets(sets.iterate(), a.saveInputs, p, a.seed, a.saveInputsFormat);
}

/**
 * The input sets as iterations: `iteration` is undefined when there is only one set (so
 * single-set results look exactly as before), else 0, 1, ... The first set is read before
 * this returns, so input errors come before any work; --save-inputs is written (and removed
 * again on failure) only while the iterations are consumed.
 */
export async function inputIterations(p: PreparedModel, a: InputArgs = {}, hooks: Hooks = {}): Promise<AsyncGenerator<{ inputs: HostTensor[]; iteration?: number }>> {
  const sets = inputSetsOf(p, a);
  if (!sets) {
    const inputs = await resolveInputs(p, a, hooks);
    return (async function* () {
      yield { inputs };
    })();
  }
  const raw = sets.iterate();
  const first = await raw.next();
  return (async function* () {
    const all = (async function* () {
      if (first.done) return;
      yield first.value;
      yield* raw;
    })();
    const src = savingSets(all, a.saveInputs, p, a.seed, a.saveInputsFormat);
    try {
      let cur = await src.next();
      if (cur.done) return;
      let next = await src.next();
      if (next.done) {
        yield { inputs: cur.value };
        return;
      }
      for (let k = 0; ; k++) {
        yield { inputs: cur.value, iteration: k };
        if (next.done) return;
        cur = next;
        next = await src.next();
      }
    } finally {
      await src.return(undefined);
    }
  })();
}

export async function resolveInputs(p: PreparedModel, a: InputArgs = {}, hooks: Hooks = {}): Promise<HostTensor[]> {
  const warn: Warn = (m, parts) => hooks.warn?.(m, parts);
  if (inputSetsOf(p, a)) {
    // Commands that take one input set (bisect) use the first; every set is still saved.
    let first: HostTensor[] | undefined;
    let n = 0;
    for await (const set of resolveInputSets(p, a, hooks)) {
      first ??= set;
      n++;
    }
    if (n > 1) warn(`${n} input sets given; this command uses the first (iteration 0)`);
    return first!;
  }
  let inputs: HostTensor[];
  if (a.loadInputs && a.loadInputs.length) {
    inputs = await loadInputs([...a.loadInputs], p.inputs);
  } else {
    const o = generationOptions(a);
    const names = new Set(p.inputs.map((s) => s.name));
    for (const n of o.valRanges.perInput.keys()) {
      if (!names.has(n)) throw optionError("inputValRanges", `'${n}' is not an input of ${p.model.path}; its inputs are: ${[...names].join(", ")}`);
    }
    resolveInputShapes(p.inputs, o, warn);
    inputs = generateInputs(p.inputs, o, warn);
  }
  if (a.saveInputs) await saveInputs(a.saveInputs, p.model.path, inputs, inputsMetadata(inputs, a.loadInputs?.length ? null : String(a.seed ?? 1)), a.saveInputsFormat);
  return inputs;
}

export async function saveInputs(file: string, model: string, inputs: HostTensor[], extra: Record<string, string> = {}, format?: InputsFormat): Promise<void> {
  const w = await openInputsSink(file, inputsFormatOf(file, format), { model, extra });
  try {
    await w.write(inputs);
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/** Output paths are checked before any work (src/core/output-file.ts). */
export function checkModelOutputs(a: ModelArgs & { saveOutputs?: string }): void {
  if (a.saveOutputs) checkOutputPath("saveOutputs", a.saveOutputs, "dir", { createParents: true });
  if (a.inputs?.saveInputs) checkOutputPath("saveInputs", a.inputs.saveInputs, a.inputs.saveInputsFormat === "trtexec" ? "dir" : "file", { createParents: true });
}

export function executorOptions(a: ModelArgs, keepSessions = false): ExecutorOptions {
  checkSegmentLayers(a.segmentLayers);
  checkSegmentMemory(a.segmentMemory);
  return { segmentLayers: a.segmentLayers, segmentMemory: a.segmentMemory, optimizationLevel: a.optimization, keepSessions };
}

/** Schema metadata of dumps: which tensors are graph outputs (JSON list). */
export function dumpExtra(p: PreparedModel, inputs: readonly HostTensor[], a: InputArgs = {}): Record<string, string> {
  const seed = a.loadInputs?.length || a.dataLoaderScript ? null : String(a.seed ?? 1);
  return { graph_outputs: JSON.stringify(p.model.graph.outputs.map((o) => o.name)), ...fusionExtra(p.model), ...inputsMetadata(inputs, seed) };
}

export function graphOutputsOf(extra: Record<string, string>): Set<string> | null {
  try {
    const v = JSON.parse(extra.graph_outputs ?? "null") as unknown;
    return Array.isArray(v) ? new Set(v.map(String)) : null;
  } catch {
    return null;
  }
}

export function loadPlan(a: ModelArgs): PrecisionPlan | undefined {
  return a.precisionPlan ? readPlan(a.precisionPlan) : undefined;
}

/** Per-layer precisions of a run whose default is `def`, with the plan and overrides of `a`. */
export function precisionsFor(p: PreparedModel, def: Precision, a: ModelArgs): Precision[] {
  return assignPrecisions(p.model, def, [...(a.layerPrecisions ?? [])], loadPlan(a));
}

/** The precisions a run may use: int8 runs also use their fallback precision. */
export function withFallback(ps: readonly Precision[], a: ModelArgs): Precision[] {
  return (ps.includes("int8") || (ps.includes("fp8") && a.int8?.qtype === "fp8")) && a.int8?.fallback ? [...ps, a.int8.fallback] : [...ps];
}

/** The note on fusion of compare's and bisect's results; `hooks.spell` spells its option. */
export function fusionNote(p: Precision, fusion: FusionMode = "trt", hooks: Pick<Hooks, "spell"> = {}): string {
  if (fusion === "none") {
    return spelled(hooks, optionText`${opt("fusion.none", 'fusion "none"')}: emulation rounds at every ONNX node boundary; TensorRT fuses layers (Conv+bias+BN+ReLU, MatMul+bias) and does not round inside a fusion, so results here are slightly pessimistic on fused chains and do not model ${p} accumulation inside kernels`);
  }
  return `layers are TensorRT's fused groups (Conv/ConvTranspose/Gemm/MatMul + bias + folded BatchNormalization + activation, Conv + residual sum), rounded once at the group's output; chains whose fused numerics TensorRT does not document (decomposed LayerNorm, Softmax, other pointwise chains) round at every node, so results are slightly pessimistic there and do not model ${p} accumulation inside kernels`;
}

/** Dump file of a run: `<label>.arrow`, or `<label>.<iteration>.arrow` with several input sets. */
export function dumpFile(dir: string, label: string, iteration?: number): string {
  return path.join(dir, iteration === undefined ? `${label}.arrow` : `${label}.${iteration}.arrow`);
}
