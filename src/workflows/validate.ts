/** `validate`: NaN/Inf in every layer of a model run (every input set) or of a dump. */
import { UserError } from "../core/errors.js";
import { type Precision } from "../core/host-tensor.js";
import { openDump } from "../io/dump.js";
import { verifyRowStats } from "./dump-checks.js";
import { type Int8Report } from "../calibration/int8-run.js";
import { type SubgraphNote } from "../precision/subgraph.js";
import type { Hooks } from "../core/hooks.js";
import { type ModelArgs } from "./model-inputs.js";

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
import { runModel, type NonFiniteRecord, type PrecisionRunResult } from "./run.js";

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
