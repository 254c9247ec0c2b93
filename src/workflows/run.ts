/** `run`: the model in one or more precisions, every captured tensor streamed to an Arrow dump. */
import { releaseModelWeights } from "../onnx/external-weights.js";
import * as path from "node:path";
import { type HostTensor, type Precision } from "../core/host-tensor.js";
import { DumpWriter } from "../io/dump.js";
import { BoundedWrites, rowBytes, toDumpRow } from "../io/rows.js";
import { checkJudgeableOutputs } from "../compare/graph-outputs.js";
import { Executor } from "../runtime/executor.js";
import { captureFilter, prepareModelFile, runCaptured, type CaptureSpec, type PreparedModel } from "../runtime/capture-runs.js";
import { loadInt8, resolveInt8Run, type Int8Report } from "../calibration/int8-run.js";
import { reportBodies, type SubgraphNote } from "../precision/subgraph.js";
import { assertOpsetSupports } from "../runtime/upgrade.js";
import type { Hooks } from "../core/hooks.js";
import { phaseEnd, phaseStart } from "../core/phase-profile.js";
import type { InputArgs } from "../data/input-args.js";
import { type ModelArgs, inputIterations, checkModelOutputs, executorOptions, dumpExtra, precisionsFor, withFallback, dumpFile } from "./model-inputs.js";

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
  const q = a.int8?.qtype ?? "int8";
  const i8 = requested.some((ps) => ps.includes(q)) ? await loadInt8(p.model, p.types, a.int8) : null;
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
        if (!i8 || !precisions.includes(q)) {
          const subgraphs = reportBodies(p.model, precisions, precisions, (m) => hooks.warn?.(m));
          const r = await oneRun(p, exec, def, precisions, inputs, capture, a.saveOutputs, hooks, iteration, a.inputs);
          runs.push(subgraphs ? { ...r, subgraphs } : r);
          continue;
        }
        const r8 = (int8Runs[k] ??= resolveInt8Run(i8, p.model, p.types, precisions, (m, parts) => hooks.warn?.(m, parts)));
        const subgraphs = reportBodies(p.model, r8.resolution.precisions, precisions, (m) => hooks.warn?.(m));
        const r = await oneRun(p, exec, def, r8.resolution.precisions, inputs, capture, a.saveOutputs, hooks, iteration, a.inputs);
        runs.push({ ...r, int8: r8.report, ...(subgraphs ? { subgraphs } : {}) });
      }
    }
  } finally {
    await exec.release();
    releaseModelWeights(p.model);
  }
  return { format: "trt-debug/run@1", model: a.model, runs, ...(sets > 1 ? { iterations: sets } : {}), passed: runs.every((r) => r.nonfinite.length === 0) };
}

export async function oneRun(
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
      let t0 = phaseStart();
      const row = toDumpRow(c.layer.index, c.layer.name, c.layer.opType, c.tensor, c.precision);
      phaseEnd("dump row (values + stats)", t0);
      res.tensors++;
      const bad = row.stats.nanCount + row.stats.posInfCount + row.stats.negInfCount;
      if (bad > 0) {
        res.nonfinite.push({ order: row.order, layer: row.layer, op_type: row.opType, tensor: row.tensor, nan_count: row.stats.nanCount, inf_count: row.stats.posInfCount + row.stats.negInfCount, ...(iteration !== undefined ? { iteration } : {}) });
        res.first_failing_layer ??= row.layer;
      }
      if (c.isGraphOutput) {
        res.outputs.push({ tensor: row.tensor, dtype: row.dtype, shape: row.dims, min: row.stats.min, max: row.stats.max, mean: row.stats.mean, nan_count: row.stats.nanCount, inf_count: row.stats.posInfCount + row.stats.negInfCount });
      }
      t0 = phaseStart();
      if (writer) await writes.add(writer.write(row), rowBytes(row));
      phaseEnd("write queue wait", t0);
      hooks.progress?.(`run ${label}`, c.layer.index + 1, total);
    }
    const t0 = phaseStart();
    await writes.drain();
    await writer?.close();
    phaseEnd("final write drain + close", t0);
  } catch (e) {
    await writer?.abort();
    throw e;
  }
  res.executed_layers = total;
  return res;
}
