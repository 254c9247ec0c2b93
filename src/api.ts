/**
 * The workflows behind the commands, as a library: each returns a result object and reports
 * progress through hooks. Nothing here prints or exits.
 */
import { fusedLayersOf, fusionExtra, layerNodeNames, type FusionMode } from "./onnx/layer-model.js";
import * as path from "node:path";
import { UserError } from "./errors.js";
import { isFloatDType, type HostTensor, type Precision } from "./types.js";
import { generateInputs, loadInputs, resolveInputShapes } from "./data/inputs.js";
import { mayHaveSeveralSets, openInputSets, openLoaderScript, type InputSets } from "./data/sources.js";
import { mergeIterations } from "./compare/iterations.js";
import { parseInputShapes, parseSeed, parseValRanges } from "./data/options.js";
import { DumpWriter, openDump, rowTensor, type DumpRow } from "./io/dump.js";
import { BoundedWrites, rowBytes, toDumpRow } from "./io/rows.js";
import { checkOutputPath } from "./io/output-path.js";
import { checkJudgeableOutputs } from "./compare/graph-outputs.js";
import { checkSameInputs, inputsMetadata, verifyRowStats } from "./io/dump-checks.js";
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
import { reportBodies, type SubgraphNote } from "./precision/subgraph.js";
import { assertOpsetSupports } from "./runtime/upgrade.js";
import { hasBodies } from "./precision/subgraph.js";
import { probeBodies } from "./compare/body-probe.js";
import type { Layer } from "./onnx/model.js";

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
  /** --image-preprocess: how images given to --load-inputs become tensors (docs/inputs.md). */
  imagePreprocess?: readonly string[];
  /** --data-loader-script: a JS module yielding input sets. */
  dataLoaderScript?: string;
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
  /** Layer fusion: "trt" (default, TensorRT's fused groups) or "none" (one layer per node); docs/precision.md. */
  fusion?: FusionMode;
  /** Accept external data outside the model's folder (docs/security.md). Off by default. */
  allowExternalDataOutside?: boolean;
}

/** The input sets of `a` when they can be several (real-data sources beyond .pb); null otherwise. */
export function inputSetsOf(p: PreparedModel, a: InputArgs = {}): InputSets | null {
  const load = a.loadInputs ?? [];
  if (a.dataLoaderScript) {
    if (load.length) throw new UserError("--data-loader-script and --load-inputs: give the input data once");
    return openLoaderScript(a.dataLoaderScript, p.inputs);
  }
  if (a.imagePreprocess?.length && !load.length) throw new UserError("--image-preprocess: give images with --load-inputs (a .png/.jpg file or a folder of them)");
  if (load.length && (mayHaveSeveralSets(load) || a.imagePreprocess?.length)) return openInputSets(load, p.inputs, { flag: "--load-inputs", imagePreprocess: a.imagePreprocess });
  return null;
}

/** Passes input sets through, writing each to `file` (--save-inputs) as it goes; the file is complete when they end. */
async function* savingSets(sets: AsyncIterable<HostTensor[]>, file: string | undefined, p: PreparedModel, seed: InputArgs["seed"]): AsyncGenerator<HostTensor[]> {
  let writer: DumpWriter | null = null;
  let ok = false;
  let order = 0;
  try {
    for await (const set of sets) {
      if (file) {
        writer ??= await DumpWriter.open(file, { kind: "inputs", model: path.basename(p.model.path), precision: "", extra: { seed: String(seed ?? 1) } });
        for (const t of set) await writer.write(toDumpRow(order++, "", "", t, ""));
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
  yield* savingSets(sets.iterate(), a.saveInputs, p, a.seed);
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
    const src = savingSets(all, a.saveInputs, p, a.seed);
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
  const warn = (m: string) => hooks.warn?.(m);
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
    const o = { seed: parseSeed(a.seed), valRanges: parseValRanges(a.valRange ? [...a.valRange] : undefined), inputShapes: parseInputShapes(a.inputShapes ? [...a.inputShapes] : undefined) };
    const names = new Set(p.inputs.map((s) => s.name));
    for (const n of o.valRanges.perInput.keys()) {
      if (!names.has(n)) throw new UserError(`--val-range: '${n}' is not an input of ${p.model.path}; its inputs are: ${[...names].join(", ")}`);
    }
    resolveInputShapes(p.inputs, o, warn);
    inputs = generateInputs(p.inputs, o, warn);
  }
  if (a.saveInputs) await saveInputs(a.saveInputs, p.model.path, inputs, inputsMetadata(inputs, a.loadInputs?.length ? null : String(a.seed ?? 1)));
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

/** Output paths are checked before any work (src/io/output-path.ts). */
function checkModelOutputs(a: ModelArgs & { saveOutputs?: string }): void {
  if (a.saveOutputs) checkOutputPath("--save-outputs", a.saveOutputs, "dir", { createParents: true });
  if (a.inputs?.saveInputs) checkOutputPath("--save-inputs", a.inputs.saveInputs, "file", { createParents: true });
}

function executorOptions(a: ModelArgs, keepSessions = false): ExecutorOptions {
  if (a.segmentLayers !== undefined && (!Number.isInteger(a.segmentLayers) || a.segmentLayers < 1)) {
    throw new UserError(`--segment-layers: must be a positive integer (got ${a.segmentLayers})`);
  }
  return { segmentLayers: a.segmentLayers, optimizationLevel: a.optimization, keepSessions };
}

/** Schema metadata of dumps: which tensors are graph outputs (JSON list). */
function dumpExtra(p: PreparedModel, inputs: readonly HostTensor[], a: InputArgs = {}): Record<string, string> {
  const seed = a.loadInputs?.length || a.dataLoaderScript ? null : String(a.seed ?? 1);
  return { graph_outputs: JSON.stringify(p.model.graph.outputs.map((o) => o.name)), ...fusionExtra(p.model), ...inputsMetadata(inputs, seed) };
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
  /** Input set (iteration); only when several sets were run. */
  iteration?: number;
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
  /** Input set (iteration) of this run; only when several sets were run. */
  iteration?: number;
  /** Models with If/Loop/Scan: what each body ran in (docs/precision.md "Control-flow bodies"). */
  subgraphs?: SubgraphNote[];
}

export interface RunResult {
  format: "trt-debug/run@1";
  model: string;
  /** One entry per precision, or per (input set, precision) when several sets were run. */
  runs: PrecisionRunResult[];
  /** Number of input sets, only when more than one. */
  iterations?: number;
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
  checkModelOutputs(a);
  const p = await prepareModelFile(a.model, a);
  checkJudgeableOutputs(p.model.path, p.model.graph);
  for (const def of a.precisions) assertOpsetSupports(p.model, p.types, withFallback(precisionsFor(p, def, a), a), a.int8?.range);
  const iterations = await inputIterations(p, a.inputs, hooks);
  const requested = a.precisions.map((def) => precisionsFor(p, def, a));
  // One int8 policy for the model and cache serves every run (it treats fp32/fp16/bf16 layers
  // as the float policy does), so all runs share one executor.
  const i8 = requested.some((ps) => ps.includes("int8")) ? await loadInt8(p.model, p.types, a.int8) : null;
  const exec = new Executor(p.model, p.types, { ...executorOptions(a), ...(i8 ? { policy: i8.policy } : {}) });
  const capture = captureFilter(p.model, a.capture);
  const runs: PrecisionRunResult[] = [];
  let sets = 0;
  // int8 resolution (and its fallback warnings) once per precision, whatever the number of input sets.
  const int8Runs: (ReturnType<typeof resolveInt8Run> | undefined)[] = [];
  try {
    for await (const { inputs, iteration } of iterations) {
      sets++;
      for (const [k, def] of a.precisions.entries()) {
        const precisions = requested[k]!;
        if (!i8 || !precisions.includes("int8")) {
          const subgraphs = reportBodies(p.model, precisions, precisions, (m) => hooks.warn?.(m));
          const r = await oneRun(p, exec, def, precisions, inputs, capture, a.saveOutputs, hooks, iteration, a.inputs);
          runs.push(subgraphs ? { ...r, subgraphs } : r);
          continue;
        }
        const r8 = (int8Runs[k] ??= resolveInt8Run(i8, p.model, p.types, precisions, (m) => hooks.warn?.(m)));
        const subgraphs = reportBodies(p.model, r8.resolution.precisions, precisions, (m) => hooks.warn?.(m));
        const r = await oneRun(p, exec, def, r8.resolution.precisions, inputs, capture, a.saveOutputs, hooks, iteration, a.inputs);
        runs.push({ ...r, int8: r8.report, ...(subgraphs ? { subgraphs } : {}) });
      }
    }
  } finally {
    await exec.release();
  }
  return { format: "trt-debug/run@1", model: a.model, runs, ...(sets > 1 ? { iterations: sets } : {}), passed: runs.every((r) => r.nonfinite.length === 0) };
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
  iteration?: number,
  inputArgs: InputArgs = {},
): Promise<PrecisionRunResult> {
  const total = p.model.graph.layers.length;
  const file = saveDir ? dumpFile(saveDir, label, iteration) : null;
  const writer = file ? await DumpWriter.open(file, { kind: "dump", model: path.basename(p.model.path), precision: label, extra: dumpExtra(p, inputs, inputArgs) }) : null;
  const res: PrecisionRunResult = { precision: label, dump: file, tensors: 0, nonfinite: [], first_failing_layer: null, outputs: [], executed_layers: 0, ...(iteration !== undefined ? { iteration } : {}) };
  const writes = new BoundedWrites();
  try {
    for await (const c of runCaptured(exec, precisions, inputs, capture)) {
      const row = toDumpRow(c.layer.index, c.layer.name, c.layer.opType, c.tensor, c.precision);
      res.tensors++;
      const bad = row.stats.nanCount + row.stats.posInfCount + row.stats.negInfCount;
      if (bad > 0) {
        res.nonfinite.push({ order: row.order, layer: row.layer, op_type: row.opType, tensor: row.tensor, nan_count: row.stats.nanCount, inf_count: row.stats.posInfCount + row.stats.negInfCount, ...(iteration !== undefined ? { iteration } : {}) });
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
  /** Several input sets: how many, and the first whose run had NaN/Inf (null when none). */
  iterations?: number;
  first_failing_iteration?: number | null;
  subgraphs?: SubgraphNote[];
}

/** NaN/Inf check of every layer of a model run (of every input set). */
export async function validateModel(a: ModelArgs & { precision: Precision }, hooks: Hooks = {}): Promise<ValidateResult> {
  const r = await runModel({ ...a, precisions: [a.precision], capture: { kind: "all" } }, hooks);
  if (r.runs.length > 1) {
    const failing = r.runs.find((x) => x.nonfinite.length > 0);
    const int8 = r.runs[0]!.int8;
    return {
      format: "trt-debug/validate@1",
      source: a.model,
      precision: a.precision,
      passed: !failing,
      first_failing_layer: failing?.first_failing_layer ?? null,
      tensors_checked: r.runs.reduce((s, x) => s + x.tensors, 0),
      nonfinite: r.runs.flatMap((x) => x.nonfinite),
      ...(int8 ? { int8 } : {}),
      iterations: r.runs.length,
      first_failing_iteration: failing?.iteration ?? null,
    };
  }
  const run = r.runs[0]!;
  return { format: "trt-debug/validate@1", source: a.model, precision: a.precision, passed: run.nonfinite.length === 0, first_failing_layer: run.first_failing_layer, tensors_checked: run.tensors, nonfinite: run.nonfinite, ...(run.int8 ? { int8: run.int8 } : {}), ...(run.subgraphs ? { subgraphs: run.subgraphs } : {}) };
}

/** NaN/Inf check of a dump file (rows in execution order). */
export async function validateDump(file: string, hooks: Hooks = {}): Promise<ValidateResult> {
  const d = await openDump(file, "dump");
  if (d.numRows === 0) {
    await d.close();
    throw new UserError(`${file}: the dump has no rows, so there is nothing to validate; write one with \`trt-debug run MODEL --mark-all --save-outputs DIR\``);
  }
  const res: ValidateResult = { format: "trt-debug/validate@1", source: file, precision: d.meta.precision, passed: true, first_failing_layer: null, tensors_checked: 0, nonfinite: [] };
  try {
    let k = 0;
    for await (const row of d.rows()) {
      verifyRowStats(file, k, row);
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

/** Dump file of a run: `<label>.arrow`, or `<label>.<iteration>.arrow` with several input sets. */
function dumpFile(dir: string, label: string, iteration?: number): string {
  return path.join(dir, iteration === undefined ? `${label}.arrow` : `${label}.${iteration}.arrow`);
}

/** FP32 reference vs the candidate precision, every layer, in lockstep. */
export async function compareModel(a: CompareArgs, hooks: CompareHooks = {}): Promise<CompareSummary & { int8?: Int8Report; subgraphs?: SubgraphNote[] }> {
  checkModelOutputs(a);
  const p = await prepareModelFile(a.model, a);
  checkJudgeableOutputs(p.model.path, p.model.graph);
  assertOpsetSupports(p.model, p.types, withFallback(precisionsFor(p, a.candidate, a), a), a.int8?.range);
  const iterations = await inputIterations(p, a.inputs, hooks);
  const refP: Precision[] = p.model.graph.layers.map(() => "fp32");
  let candP = precisionsFor(p, a.candidate, a);
  // int8: the model's policy quantizes int8 layers and handles every other precision like the float policy.
  const i8 = candP.includes("int8") ? await prepareInt8(p.model, p.types, candP, a.int8, (m) => hooks.warn?.(m)) : null;
  const requestedP = candP;
  if (i8 && i8.report.mode === "implicit" && i8.resolution.int8Layers === 0) {
    // Nothing would differ from the fallback run: a PASS here would verify nothing about int8.
    throw new UserError(
      `${a.model}: no layer can run in int8 with ${a.int8?.calibrationCache ?? "the calibration cache"} (see the fallbacks above), so the int8 comparison would verify nothing; check that the cache was built for this model (\`trt-debug calib check\`)`,
    );
  }
  if (i8) candP = i8.resolution.precisions;
  const subgraphs = reportBodies(p.model, candP, requestedP, (m) => hooks.warn?.(m));
  const exec = new Executor(p.model, p.types, { ...executorOptions(a), ...(i8 ? { policy: i8.resolution.policy } : {}) });
  // A run with int8 layers is judged at the int8 threshold (its tensors carry their error).
  const verdictPrecision: Precision = i8 && i8.resolution.int8Layers > 0 ? "int8" : a.candidate;
  const acc = new CompareAccumulator(a.keepRows ?? true);
  const perIteration: { iteration: number; acc: CompareAccumulator }[] = [];
  const total = p.model.graph.layers.length;
  let skipped = 0;
  try {
  for await (const { inputs, iteration } of iterations) {
  const accK = iteration === undefined ? acc : new CompareAccumulator(a.keepRows ?? true);
  if (iteration !== undefined) perIteration.push({ iteration, acc: accK });
  const writers = a.saveOutputs
    ? await Promise.all(
        (["fp32", a.candidate] as const).map((lbl) => DumpWriter.open(dumpFile(a.saveOutputs!, lbl, iteration), { kind: "dump", model: path.basename(a.model), precision: lbl, extra: dumpExtra(p, inputs, a.inputs) })),
      )
    : null;
  const probeTargets = new Map<Layer, LayerComparison>();
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
        { order: pair.layer.index, layer: pair.layer.name, opType: pair.layer.opType, nodes: layerNodeNames(pair.layer), precision: pair.cand.precision, verdictPrecision, isGraphOutput: pair.cand.isGraphOutput },
        pair.ref.tensor,
        pair.cand.tensor,
        a.compare,
      );
      if (!l) {
        if (!iteration) skipped++;
        continue;
      }
      if (iteration !== undefined) l.iteration = iteration;
      accK.add(l);
      if (!l.verdict.passed && hasBodies(pair.layer.node) && !probeTargets.has(pair.layer)) probeTargets.set(pair.layer, l);
      hooks.onLayer?.(l);
      hooks.progress?.(iteration === undefined ? `compare fp32 vs ${a.candidate}` : `compare fp32 vs ${a.candidate}, iteration ${iteration}`, pair.layer.index + 1, total);
    }
    // Failing If/Loop/Scan layers: evidence from inside their bodies (the first few).
    for (const [layer, l] of [...probeTargets].slice(0, 3)) {
      l.evidence.push(...(await probeBodies(p, layer, refP, candP, inputs, { ...a.compare, verdictPrecision }, { ...executorOptions(a), ...(i8 ? { policy: i8.resolution.policy } : {}) })));
    }
    await writes.drain();
    if (writers) for (const w of writers) await w.close();
  } catch (e) {
    if (writers) for (const w of writers) await w.abort();
    throw e;
  }
  }
  } finally {
    await exec.release();
  }
  const notes: string[] = [];
  if (skipped) notes.push(`${skipped} non-floating tensors (shapes, indices, masks) are not compared`);
  notes.push(fusionNote(a.candidate, a.fusion));
  if (i8) notes.push(...i8.report.notes);
  if (verdictPrecision === "int8") notes.push("int8: every tensor is judged at the int8 threshold (its error is dominated by the int8 layers upstream); the precision column shows what its layer ran in");
  if (perIteration.length) notes.push(`${perIteration.length} input sets: the verdict fails when any set's graph outputs fail; each layer row is its worst set (failing first, then largest rel L2), with its iteration`);
  const summary = perIteration.length
    ? mergeIterations(perIteration, `${a.model} fp32`, `${a.model} ${a.candidate}`, notes)
    : acc.summary(`${a.model} fp32`, `${a.model} ${a.candidate}`, notes);
  return { ...summary, ...(i8 ? { int8: i8.report } : {}), ...(subgraphs ? { subgraphs } : {}) };
}

/** The precisions a run may use: int8 runs also use their fallback precision. */
export function withFallback(ps: readonly Precision[], a: ModelArgs): Precision[] {
  return ps.includes("int8") && a.int8?.fallback ? [...ps, a.int8.fallback] : [...ps];
}

export function fusionNote(p: Precision, fusion: FusionMode = "trt"): string {
  if (fusion === "none") {
    return `--fusion none: emulation rounds at every ONNX node boundary; TensorRT fuses layers (Conv+bias+BN+ReLU, MatMul+bias) and does not round inside a fusion, so results here are slightly pessimistic on fused chains and do not model ${p} accumulation inside kernels`;
  }
  return `layers are TensorRT's fused groups (Conv/ConvTranspose/Gemm/MatMul + bias + folded BatchNormalization + activation, Conv + residual sum), rounded once at the group's output; chains whose fused numerics TensorRT does not document (decomposed LayerNorm, Softmax, other pointwise chains) round at every node, so results are slightly pessimistic there and do not model ${p} accumulation inside kernels`;
}

/** Two dumps of the same model (e.g. fp32.arrow and fp16.arrow), matched by tensor name. */
export async function compareDumps(refFile: string, candFile: string, o: CompareOptions, hooks: CompareHooks = {}, keepRows = true, opts: { allowDifferentInputs?: boolean } = {}): Promise<CompareSummary> {
  const ref = await openDump(refFile, "dump");
  const cand = await openDump(candFile, "dump").catch(async (e: unknown) => {
    await ref.close();
    throw e;
  });
  try {
    checkSameInputs(refFile, ref.meta.extra, candFile, cand.meta.extra, opts.allowDifferentInputs ?? false, (m) => hooks.warn?.(m));
  } catch (e) {
    await ref.close();
    await cand.close();
    throw e;
  }
  const acc = new CompareAccumulator(keepRows);
  const outputs = graphOutputsOf(cand.meta.extra) ?? graphOutputsOf(ref.meta.extra);
  const fused = fusedLayersOf(cand.meta.extra);
  let matched = 0, skipped = 0;
  try {
    // Rows are written in execution order by both runs; walk them together and match by name,
    // holding back only rows whose partner has not been seen yet.
    const pendingRef = new Map<string, DumpRow>();
    const pendingCand = new Map<string, DumpRow>();
    const ri = ref.rows(), ci = cand.rows();
    let rDone = false, cDone = false, k = 0, ri0 = 0, ci0 = 0;
    const handle = (r: DumpRow, c: DumpRow) => {
      matched++;
      const rt = rowTensor(r, refFile), ct = rowTensor(c, candFile);
      if (rt.dtype !== ct.dtype && !(isFloatDType(rt.dtype) && isFloatDType(ct.dtype))) {
        throw new UserError(`${candFile}: tensor '${c.tensor}' is ${ct.dtype} but ${rt.dtype} in ${refFile}; dumps of different models?`);
      }
      if (r.dims.join(",") !== c.dims.join(",")) {
        throw new UserError(`${candFile}: tensor '${c.tensor}' has shape [${c.dims}] but [${r.dims}] in ${refFile}; dumps of different models or inputs?`);
      }
      const l = compareTensor({ order: c.order, layer: c.layer, opType: c.opType, nodes: fused.get(c.layer) ?? [c.layer], precision: (c.precision || cand.meta.precision) as Precision, verdictPrecision: (cand.meta.precision || c.precision) as Precision, isGraphOutput: outputs?.has(c.tensor) ?? false }, rt, ct, o);
      if (!l) return void skipped++;
      acc.add(l);
      hooks.onLayer?.(l);
    };
    while (!rDone || !cDone) {
      if (!rDone) {
        const n = await ri.next();
        if (n.done) rDone = true;
        else {
          verifyRowStats(refFile, ri0++, n.value);
          const c = pendingCand.get(n.value.tensor);
          if (c) pendingCand.delete(n.value.tensor), handle(n.value, c);
          else pendingRef.set(n.value.tensor, n.value);
        }
      }
      if (!cDone) {
        const n = await ci.next();
        if (n.done) cDone = true;
        else {
          verifyRowStats(candFile, ci0++, n.value);
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
    s.passed = s.outputs_passed = s.first_failing_layer === null && s.degenerate_outputs.length === 0;
    s.verdict = s.first_failing_layer !== null ? "failed" : s.passed ? "passed" : "degenerate";
  }
  return s;
}
