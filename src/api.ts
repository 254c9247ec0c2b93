/**
 * The workflows behind the commands, as a library: each returns a result object and reports
 * progress through hooks. Nothing here prints or exits.
 */
import * as path from "node:path";
import { UserError } from "./errors.js";
import { isFloatDType, type HostTensor, type Precision } from "./types.js";
import { generateInputs, loadInputs, resolveInputShapes } from "./data/inputs.js";
import { parseInputShapes, parseSeed, parseValRanges } from "./data/options.js";
import { DumpWriter, openDump, rowTensor, type DumpRow } from "./io/dump.js";
import { BoundedWrites, rowBytes, toDumpRow } from "./io/rows.js";
import { parseLayerPrecisions, readPlan, type PrecisionPlan } from "./precision/plan.js";
import { Executor, type ExecutorOptions } from "./runtime/executor.js";
import {
  assignPrecisions,
  captureFilter,
  prepareModelFile,
  runCaptured,
  runPaired,
  type CaptureSpec,
  type PreparedModel,
} from "./runtime/run.js";
import type { OptimizationLevel } from "./runtime/ort.js";
import { CompareAccumulator, compareTensor, type CompareSummary, type LayerComparison } from "./compare/compare.js";
import type { CompareOptions } from "./compare/tolerance.js";
import { loadInt8, prepareInt8, resolveInt8Run, type Int8Report, type Int8RunArgs } from "./precision/int8-run.js";

export interface Hooks {
  warn?(message: string): void;
  /** Long work: `done` of `total` units of `phase`. */
  progress?(phase: string, done: number, total: number): void;
}

export interface InputArgs {
  seed?: number | string;
  valRange?: readonly string[];
  inputShapes?: readonly string[];
  loadInputs?: readonly string[];
  saveInputs?: string;
}

export interface ModelArgs {
  model: string;
  inputs?: InputArgs;
  layerPrecisions?: readonly string[];
  precisionPlan?: string;
  segmentLayers?: number;
  optimization?: OptimizationLevel;
  /** int8 runs: calibration cache, fallback precision, clamp range (docs/int8.md). */
  int8?: Int8RunArgs;
  /** Accept external data outside the model's folder (docs/security.md). Off by default. */
  allowExternalDataOutside?: boolean;
}

export async function resolveInputs(p: PreparedModel, a: InputArgs = {}, hooks: Hooks = {}): Promise<HostTensor[]> {
  const warn = (m: string) => hooks.warn?.(m);
  let inputs: HostTensor[];
  if (a.loadInputs && a.loadInputs.length) {
    inputs = await loadInputs([...a.loadInputs], p.inputs);
  } else {
    const o = { seed: parseSeed(a.seed), valRanges: parseValRanges(a.valRange ? [...a.valRange] : undefined), inputShapes: parseInputShapes(a.inputShapes ? [...a.inputShapes] : undefined) };
    const names = new Set(p.inputs.map((s) => s.name));
    for (const n of o.valRanges.perInput.keys()) {
      if (!names.has(n)) throw new UserError(`--val-range: '${n}' is not an input of ${p.model.path}; its inputs are: ${[...names].join(", ")}`);
    }
    resolveInputShapes(p.inputs, o, warn);
    inputs = generateInputs(p.inputs, o, warn);
  }
  if (a.saveInputs) await saveInputs(a.saveInputs, p.model.path, inputs, { seed: String(a.seed ?? 1) });
  return inputs;
}

export async function saveInputs(file: string, model: string, inputs: HostTensor[], extra: Record<string, string> = {}): Promise<void> {
  const w = await DumpWriter.open(file, { kind: "inputs", model: path.basename(model), precision: "", extra });
  try {
    let i = 0;
    for (const t of inputs) await w.write(toDumpRow(i++, "", "", t, ""));
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

function executorOptions(a: ModelArgs, keepSessions = false): ExecutorOptions {
  if (a.segmentLayers !== undefined && (!Number.isInteger(a.segmentLayers) || a.segmentLayers < 1)) {
    throw new UserError(`--segment-layers: must be a positive integer (got ${a.segmentLayers})`);
  }
  return { segmentLayers: a.segmentLayers, optimizationLevel: a.optimization, keepSessions };
}

/** Schema metadata of dumps: which tensors are graph outputs (JSON list). */
function dumpExtra(p: PreparedModel): Record<string, string> {
  return { graph_outputs: JSON.stringify(p.model.graph.outputs.map((o) => o.name)) };
}

function graphOutputsOf(extra: Record<string, string>): Set<string> | null {
  try {
    const v = JSON.parse(extra.graph_outputs ?? "null") as unknown;
    return Array.isArray(v) ? new Set(v.map(String)) : null;
  } catch {
    return null;
  }
}

function loadPlan(a: ModelArgs): PrecisionPlan | undefined {
  return a.precisionPlan ? readPlan(a.precisionPlan) : undefined;
}

/** Per-layer precisions of a run whose default is `def`, with the plan and overrides of `a`. */
export function precisionsFor(p: PreparedModel, def: Precision, a: ModelArgs): Precision[] {
  return assignPrecisions(p.model, def, parseLayerPrecisions(a.layerPrecisions ?? []), loadPlan(a));
}

// ---------------------------------------------------------------------------------------
// run / validate
// ---------------------------------------------------------------------------------------

export interface NonFiniteRecord {
  order: number;
  layer: string;
  op_type: string;
  tensor: string;
  nan_count: number;
  inf_count: number;
}

export interface PrecisionRunResult {
  precision: Precision;
  dump: string | null;
  tensors: number;
  nonfinite: NonFiniteRecord[];
  first_failing_layer: string | null;
  outputs: { tensor: string; dtype: string; shape: number[]; min: number | null; max: number | null; mean: number | null; nan_count: number; inf_count: number }[];
  executed_layers: number;
  /** int8 runs: cache read, layers in int8, every fallback with its reason. */
  int8?: Int8Report;
}

export interface RunResult {
  format: "trt-debug/run@1";
  model: string;
  runs: PrecisionRunResult[];
  /** False when a validated run found NaN/Inf. */
  passed: boolean;
}

export interface RunArgs extends ModelArgs {
  /** Default precision of each run to make (e.g. ["fp32", "fp16"]). */
  precisions: Precision[];
  capture: CaptureSpec;
  saveOutputs?: string;
}

export async function runModel(a: RunArgs, hooks: Hooks = {}): Promise<RunResult> {
  const p = await prepareModelFile(a.model, a);
  const inputs = await resolveInputs(p, a.inputs, hooks);
  const requested = a.precisions.map((def) => precisionsFor(p, def, a));
  // One int8 policy for the model and cache serves every run (it treats fp32/fp16/bf16 layers
  // as the float policy does), so all runs share one executor.
  const i8 = requested.some((ps) => ps.includes("int8")) ? await loadInt8(p.model, p.types, a.int8) : null;
  const exec = new Executor(p.model, p.types, { ...executorOptions(a), ...(i8 ? { policy: i8.policy } : {}) });
  const capture = captureFilter(p.model, a.capture);
  const runs: PrecisionRunResult[] = [];
  try {
    for (const [k, def] of a.precisions.entries()) {
      const precisions = requested[k]!;
      if (!i8 || !precisions.includes("int8")) {
        runs.push(await oneRun(p, exec, def, precisions, inputs, capture, a.saveOutputs, hooks));
        continue;
      }
      const r8 = resolveInt8Run(i8, p.model, p.types, precisions, (m) => hooks.warn?.(m));
      const r = await oneRun(p, exec, def, r8.resolution.precisions, inputs, capture, a.saveOutputs, hooks);
      runs.push({ ...r, int8: r8.report });
    }
  } finally {
    await exec.release();
  }
  return { format: "trt-debug/run@1", model: a.model, runs, passed: runs.every((r) => r.nonfinite.length === 0) };
}

async function oneRun(
  p: PreparedModel,
  exec: Executor,
  label: Precision,
  precisions: Precision[],
  inputs: HostTensor[],
  capture: (i: number) => boolean,
  saveDir: string | undefined,
  hooks: Hooks,
): Promise<PrecisionRunResult> {
  const total = p.model.graph.layers.length;
  const file = saveDir ? path.join(saveDir, `${label}.arrow`) : null;
  const writer = file ? await DumpWriter.open(file, { kind: "dump", model: path.basename(p.model.path), precision: label, extra: dumpExtra(p) }) : null;
  const res: PrecisionRunResult = { precision: label, dump: file, tensors: 0, nonfinite: [], first_failing_layer: null, outputs: [], executed_layers: 0 };
  const writes = new BoundedWrites();
  try {
    for await (const c of runCaptured(exec, precisions, inputs, capture)) {
      const row = toDumpRow(c.layer.index, c.layer.name, c.layer.opType, c.tensor, c.precision);
      res.tensors++;
      const bad = row.stats.nanCount + row.stats.posInfCount + row.stats.negInfCount;
      if (bad > 0) {
        res.nonfinite.push({ order: row.order, layer: row.layer, op_type: row.opType, tensor: row.tensor, nan_count: row.stats.nanCount, inf_count: row.stats.posInfCount + row.stats.negInfCount });
        res.first_failing_layer ??= row.layer;
      }
      if (c.isGraphOutput) {
        res.outputs.push({ tensor: row.tensor, dtype: row.dtype, shape: row.dims, min: row.stats.min, max: row.stats.max, mean: row.stats.mean, nan_count: row.stats.nanCount, inf_count: row.stats.posInfCount + row.stats.negInfCount });
      }
      if (writer) await writes.add(writer.write(row), rowBytes(row));
      hooks.progress?.(`run ${label}`, c.layer.index + 1, total);
    }
    await writes.drain();
    await writer?.close();
  } catch (e) {
    await writer?.abort();
    throw e;
  }
  res.executed_layers = total;
  return res;
}

export interface ValidateResult {
  format: "trt-debug/validate@1";
  source: string;
  precision: string;
  passed: boolean;
  first_failing_layer: string | null;
  tensors_checked: number;
  nonfinite: NonFiniteRecord[];
  int8?: Int8Report;
}

/** NaN/Inf check of every layer of a model run. */
export async function validateModel(a: ModelArgs & { precision: Precision }, hooks: Hooks = {}): Promise<ValidateResult> {
  const r = await runModel({ ...a, precisions: [a.precision], capture: { kind: "all" } }, hooks);
  const run = r.runs[0]!;
  return { format: "trt-debug/validate@1", source: a.model, precision: a.precision, passed: run.nonfinite.length === 0, first_failing_layer: run.first_failing_layer, tensors_checked: run.tensors, nonfinite: run.nonfinite, ...(run.int8 ? { int8: run.int8 } : {}) };
}

/** NaN/Inf check of a dump file (rows in execution order). */
export async function validateDump(file: string, hooks: Hooks = {}): Promise<ValidateResult> {
  const d = await openDump(file, "dump");
  const res: ValidateResult = { format: "trt-debug/validate@1", source: file, precision: d.meta.precision, passed: true, first_failing_layer: null, tensors_checked: 0, nonfinite: [] };
  try {
    let k = 0;
    for await (const row of d.rows()) {
      res.tensors_checked++;
      const inf = row.stats.posInfCount + row.stats.negInfCount;
      if (row.stats.nanCount + inf > 0) {
        res.nonfinite.push({ order: row.order, layer: row.layer, op_type: row.opType, tensor: row.tensor, nan_count: row.stats.nanCount, inf_count: inf });
      }
      hooks.progress?.("validate", ++k, d.numRows);
    }
  } finally {
    await d.close();
  }
  res.nonfinite.sort((x, y) => x.order - y.order);
  res.first_failing_layer = res.nonfinite[0]?.layer ?? null;
  res.passed = res.nonfinite.length === 0;
  return res;
}

// ---------------------------------------------------------------------------------------
// compare
// ---------------------------------------------------------------------------------------

export interface CompareArgs extends ModelArgs {
  /** Default precision of the candidate run. */
  candidate: Precision;
  compare: CompareOptions;
  saveOutputs?: string;
  /** Keep per-layer rows in the summary (default true). */
  keepRows?: boolean;
}

export interface CompareHooks extends Hooks {
  onLayer?(l: LayerComparison): void;
}

/** FP32 reference vs the candidate precision, every layer, in lockstep. */
export async function compareModel(a: CompareArgs, hooks: CompareHooks = {}): Promise<CompareSummary & { int8?: Int8Report }> {
  const p = await prepareModelFile(a.model, a);
  const inputs = await resolveInputs(p, a.inputs, hooks);
  const refP: Precision[] = p.model.graph.layers.map(() => "fp32");
  let candP = precisionsFor(p, a.candidate, a);
  // int8: the model's policy quantizes int8 layers and handles every other precision like the float policy.
  const i8 = candP.includes("int8") ? await prepareInt8(p.model, p.types, candP, a.int8, (m) => hooks.warn?.(m)) : null;
  if (i8) candP = i8.resolution.precisions;
  const exec = new Executor(p.model, p.types, { ...executorOptions(a), ...(i8 ? { policy: i8.resolution.policy } : {}) });
  // A run with int8 layers is judged at the int8 threshold (its tensors carry their error).
  const verdictPrecision: Precision = i8 && i8.resolution.int8Layers > 0 ? "int8" : a.candidate;
  const acc = new CompareAccumulator(a.keepRows ?? true);
  const total = p.model.graph.layers.length;
  const writers = a.saveOutputs
    ? await Promise.all(
        (["fp32", a.candidate] as const).map((lbl) => DumpWriter.open(path.join(a.saveOutputs!, `${lbl}.arrow`), { kind: "dump", model: path.basename(a.model), precision: lbl, extra: dumpExtra(p) })),
      )
    : null;
  let skipped = 0;
  const writes = new BoundedWrites();
  try {
    for await (const pair of runPaired(exec, refP, candP, inputs, inputs, () => true)) {
      if (writers) {
        const r = toDumpRow(pair.layer.index, pair.layer.name, pair.layer.opType, pair.ref.tensor, pair.ref.precision);
        const c = toDumpRow(pair.layer.index, pair.layer.name, pair.layer.opType, pair.cand.tensor, pair.cand.precision);
        await writes.add(writers[0]!.write(r), rowBytes(r));
        await writes.add(writers[1]!.write(c), rowBytes(c));
      }
      const l = compareTensor(
        { order: pair.layer.index, layer: pair.layer.name, opType: pair.layer.opType, precision: pair.cand.precision, verdictPrecision, isGraphOutput: pair.cand.isGraphOutput },
        pair.ref.tensor,
        pair.cand.tensor,
        a.compare,
      );
      if (!l) {
        skipped++;
        continue;
      }
      acc.add(l);
      hooks.onLayer?.(l);
      hooks.progress?.(`compare fp32 vs ${a.candidate}`, pair.layer.index + 1, total);
    }
    await writes.drain();
    if (writers) for (const w of writers) await w.close();
  } catch (e) {
    if (writers) for (const w of writers) await w.abort();
    throw e;
  } finally {
    await exec.release();
  }
  const notes: string[] = [];
  if (skipped) notes.push(`${skipped} non-floating tensors (shapes, indices, masks) are not compared`);
  notes.push(fusionNote(a.candidate));
  if (i8) notes.push(...i8.report.notes);
  if (verdictPrecision === "int8") notes.push("int8: every tensor is judged at the int8 threshold (its error is dominated by the int8 layers upstream); the precision column shows what its layer ran in");
  const summary = acc.summary(`${a.model} fp32`, `${a.model} ${a.candidate}`, notes);
  return i8 ? { ...summary, int8: i8.report } : summary;
}

export function fusionNote(p: Precision): string {
  return `emulation rounds at every ONNX node boundary; TensorRT fuses layers (Conv+bias+ReLU, MatMul+bias, normalizations) and does not round inside a fusion, so results here are slightly pessimistic on fused chains and do not model ${p} accumulation inside kernels`;
}

/** Two dumps of the same model (e.g. fp32.arrow and fp16.arrow), matched by tensor name. */
export async function compareDumps(refFile: string, candFile: string, o: CompareOptions, hooks: CompareHooks = {}, keepRows = true): Promise<CompareSummary> {
  const ref = await openDump(refFile, "dump");
  const cand = await openDump(candFile, "dump");
  const acc = new CompareAccumulator(keepRows);
  const outputs = graphOutputsOf(cand.meta.extra) ?? graphOutputsOf(ref.meta.extra);
  let matched = 0, skipped = 0;
  try {
    // Rows are written in execution order by both runs; walk them together and match by name,
    // holding back only rows whose partner has not been seen yet.
    const pendingRef = new Map<string, DumpRow>();
    const pendingCand = new Map<string, DumpRow>();
    const ri = ref.rows(), ci = cand.rows();
    let rDone = false, cDone = false, k = 0;
    const handle = (r: DumpRow, c: DumpRow) => {
      matched++;
      const rt = rowTensor(r, refFile), ct = rowTensor(c, candFile);
      if (rt.dtype !== ct.dtype && !(isFloatDType(rt.dtype) && isFloatDType(ct.dtype))) {
        throw new UserError(`${candFile}: tensor '${c.tensor}' is ${ct.dtype} but ${rt.dtype} in ${refFile}; dumps of different models?`);
      }
      if (r.dims.join(",") !== c.dims.join(",")) {
        throw new UserError(`${candFile}: tensor '${c.tensor}' has shape [${c.dims}] but [${r.dims}] in ${refFile}; dumps of different models or inputs?`);
      }
      const l = compareTensor({ order: c.order, layer: c.layer, opType: c.opType, precision: (c.precision || cand.meta.precision) as Precision, verdictPrecision: (cand.meta.precision || c.precision) as Precision, isGraphOutput: outputs?.has(c.tensor) ?? false }, rt, ct, o);
      if (!l) return void skipped++;
      acc.add(l);
      hooks.onLayer?.(l);
    };
    while (!rDone || !cDone) {
      if (!rDone) {
        const n = await ri.next();
        if (n.done) rDone = true;
        else {
          const c = pendingCand.get(n.value.tensor);
          if (c) pendingCand.delete(n.value.tensor), handle(n.value, c);
          else pendingRef.set(n.value.tensor, n.value);
        }
      }
      if (!cDone) {
        const n = await ci.next();
        if (n.done) cDone = true;
        else {
          const r = pendingRef.get(n.value.tensor);
          if (r) pendingRef.delete(n.value.tensor), handle(r, n.value);
          else pendingCand.set(n.value.tensor, n.value);
        }
      }
      hooks.progress?.("compare dumps", ++k, Math.max(ref.numRows, cand.numRows));
    }
    if (matched === 0) throw new UserError(`${candFile}: no tensor names in common with ${refFile}; compare dumps of the same model`);
  } finally {
    await ref.close();
    await cand.close();
  }
  const notes = skipped ? [`${skipped} non-floating tensors are not compared`] : [];
  const s = acc.summary(refFile, candFile, notes);
  if (!outputs || acc.outputsSeen === 0) {
    // Dumps without graph-output metadata, or with the outputs not captured: judge every tensor.
    notes.push("the dumps name no captured graph output: the verdict covers every compared tensor");
    s.passed = s.outputs_passed = s.first_failing_layer === null;
  }
  return s;
}
