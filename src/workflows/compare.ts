/** `compare`: FP32 reference vs a candidate precision in lockstep, or two dumps, layer by layer. */
import { releaseModelWeights } from "../onnx/external-weights.js";
import { fusedLayersOf, layerNodeNames } from "../onnx/layer-model.js";
import * as path from "node:path";
import { UserError } from "../core/errors.js";
import { isFloatDType, type HostTensor, type Precision } from "../core/host-tensor.js";
import { mergeIterations } from "../compare/iterations.js";
import { DumpWriter, openDump, rowTensor, type DumpRow } from "../io/dump.js";
import { BoundedWrites, rowBytes, toDumpRow } from "../io/rows.js";
import { checkJudgeableOutputs } from "../compare/graph-outputs.js";
import { checkSameInputs, verifyRowStats } from "./dump-checks.js";
import { Executor } from "../runtime/executor.js";
import { OrtWorker } from "../onnx/ort-worker.js";
import { checkCompareThreads, runConcurrently, sideThreads, type CompareThreads } from "../runtime/compare-sides.js";
import { prepareModelFile, runPaired } from "../runtime/capture-runs.js";
import { CompareAccumulator, compareTensor, type CompareSummary, type LayerComparison } from "../compare/layer-compare.js";
import type { CompareOptions } from "../compare/tolerance.js";
import { prepareInt8, type Int8Report } from "../calibration/int8-run.js";
import { reportBodies, type SubgraphNote } from "../precision/subgraph.js";
import { assertOpsetSupports } from "../runtime/upgrade.js";
import { hasBodies } from "../precision/subgraph.js";
import { TYPED_COMPARE_NOTE, typedVerdictPrecision } from "../precision/typed.js";
import { probeBodies } from "../compare/body-probe.js";
import type { Layer } from "../onnx/model.js";
import type { Hooks } from "../core/hooks.js";
import { type ModelArgs, inputIterations, checkModelOutputs, executorOptions, dumpExtra, graphOutputsOf, precisionsFor, withFallback, fusionNote, dumpFile } from "./model-inputs.js";

export interface CompareArgs extends ModelArgs {
  /** Default precision of the candidate run. */
  candidate: Precision;
  compare: CompareOptions;
  saveOutputs?: string;
  /** Keep per-layer rows in the summary (default true). */
  keepRows?: boolean;
  /**
   * 2: the candidate's sessions run in a worker thread, concurrently with the reference's;
   * 1: both on the JavaScript thread, one after the other; default: 2 where cores and the
   * model's size make it pay (runtime/compare-sides.ts). Results are the same bytes either way.
   */
  compareThreads?: number;
}

export interface CompareHooks extends Hooks {
  onLayer?(l: LayerComparison): void;
  /** Each compared floating tensor pair with its row (before onLayer): e.g. the HTML report's samples (report/html-samples.ts). Not kept by the workflow. */
  onTensors?(l: LayerComparison, ref: HostTensor, cand: HostTensor): void;
}


/** FP32 reference vs the candidate precision, every layer, in lockstep. */
export async function compareModel(a: CompareArgs, hooks: CompareHooks = {}): Promise<CompareSummary & { int8?: Int8Report; subgraphs?: SubgraphNote[] }> {
  checkModelOutputs(a);
  const threadsMode = checkCompareThreads(a.compareThreads);
  // Started once the model is typed, only when it will be used (one started before loading and
  // dropped for a small model slowed its compare on the 16-core host: docs/performance.md); its
  // start-up overlaps the reference's first segment (the first request waits in its queue).
  const started: OrtWorker[] = [];
  try {
    return await compareWith(a, hooks, threadsMode, () => {
      started.push(new OrtWorker());
      return started[0]!;
    });
  } finally {
    for (const w of started) await w.close();
  }
}

async function compareWith(a: CompareArgs, hooks: CompareHooks, threadsMode: CompareThreads, startWorker: () => OrtWorker): Promise<CompareSummary & { int8?: Int8Report; subgraphs?: SubgraphNote[] }> {
  const p = await prepareModelFile(a.model, a);
  checkJudgeableOutputs(p.model.path, p.model.graph);
  assertOpsetSupports(p.model, p.types, withFallback(precisionsFor(p, a.candidate, a), a), a.int8?.range);
  const iterations = await inputIterations(p, a.inputs, hooks);
  const refP: Precision[] = p.model.graph.layers.map(() => "fp32");
  let candP = precisionsFor(p, a.candidate, a);
  // int8: the model's policy quantizes int8 layers and handles every other precision like the float policy.
  const q = a.int8?.qtype ?? "int8";
  const i8 = candP.includes(q) ? await prepareInt8(p.model, p.types, candP, a.int8, (m, parts) => hooks.warn?.(m, parts)) : null;
  const requestedP = candP;
  if (i8 && i8.report.mode === "implicit" && i8.resolution.int8Layers === 0) {
    // Nothing would differ from the fallback run: a PASS here would verify nothing about int8.
    throw new UserError(
      `${a.model}: no layer can run in ${q} with ${a.int8?.calibrationCache ?? "the calibration cache"} (see the fallbacks above), so the ${q} comparison would verify nothing; check that the cache was built for this model (\`trt-debug calib check\`)`,
    );
  }
  if (i8) candP = i8.resolution.precisions;
  const subgraphs = reportBodies(p.model, candP, requestedP, (m) => hooks.warn?.(m));
  // The candidate in a worker thread, concurrently (runtime/compare-sides.ts), with half the cores
  // each (the intra-op thread count does not change onnxruntime's results on the measured models:
  // docs/performance.md); else one executor for both sides, in lockstep on this thread.
  const concurrent = runConcurrently(threadsMode, p.model, p.types);
  const worker = concurrent ? startWorker() : undefined;
  const exec = new Executor(p.model, p.types, { ...executorOptions(a), ...(i8 ? { policy: i8.resolution.policy } : {}), ...(concurrent ? { intraOpThreads: sideThreads() } : {}) });
  const candExec = concurrent ? new Executor(p.model, p.types, { ...exec.options, worker }) : exec;
  // A run with int8 layers is judged at the int8 threshold (its tensors carry their error).
  const verdictPrecision: Precision = i8 && i8.resolution.int8Layers > 0 ? q : a.candidate;
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
    for await (const pair of runPaired(exec, refP, candP, inputs, inputs, () => true, candExec)) {
      if (writers) {
        const r = toDumpRow(pair.layer.index, pair.layer.name, pair.layer.opType, pair.ref.tensor, pair.ref.precision);
        const c = toDumpRow(pair.layer.index, pair.layer.name, pair.layer.opType, pair.cand.tensor, pair.cand.precision);
        await writes.add(writers[0]!.write(r), rowBytes(r));
        await writes.add(writers[1]!.write(c), rowBytes(c));
      }
      const l = compareTensor(
        { order: pair.layer.index, layer: pair.layer.name, opType: pair.layer.opType, nodes: layerNodeNames(pair.layer), precision: pair.cand.precision, verdictPrecision: i8 ? verdictPrecision : typedVerdictPrecision(p.model, pair.cand.tensor.name, verdictPrecision), isGraphOutput: pair.cand.isGraphOutput },
        pair.ref.tensor,
        pair.cand.tensor,
        a.compare,
        hooks,
      );
      if (!l) {
        if (!iteration) skipped++;
        continue;
      }
      if (iteration !== undefined) l.iteration = iteration;
      hooks.onTensors?.(l, pair.ref.tensor, pair.cand.tensor);
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
    if (candExec !== exec) await candExec.release();
    releaseModelWeights(p.model);
  }
  const notes: string[] = [];
  if (skipped) notes.push(`${skipped} non-floating tensors (shapes, indices, masks) are not compared`);
  notes.push(fusionNote(a.candidate, a.fusion, hooks));
  if (i8) notes.push(...i8.report.notes);
  if (p.model.typed) notes.push(TYPED_COMPARE_NOTE);
  if (verdictPrecision === "int8") notes.push("int8: every tensor is judged at the int8 threshold (its error is dominated by the int8 layers upstream); the precision column shows what its layer ran in");
  if (perIteration.length) notes.push(`${perIteration.length} input sets: the verdict fails when any set's graph outputs fail; each layer row is its worst set (failing first, then largest rel L2), with its iteration`);
  const summary = perIteration.length
    ? mergeIterations(perIteration, `${a.model} fp32`, `${a.model} ${a.candidate}`, notes)
    : acc.summary(`${a.model} fp32`, `${a.model} ${a.candidate}`, notes);
  return { ...summary, ...(i8 ? { int8: i8.report } : {}), ...(subgraphs ? { subgraphs } : {}) };
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
      const l = compareTensor({ order: c.order, layer: c.layer, opType: c.opType, nodes: fused.get(c.layer) ?? [c.layer], precision: (c.precision || cand.meta.precision) as Precision, verdictPrecision: (cand.meta.precision || c.precision) as Precision, isGraphOutput: outputs?.has(c.tensor) ?? false }, rt, ct, o, hooks);
      if (!l) return void skipped++;
      hooks.onTensors?.(l, rt, ct);
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
