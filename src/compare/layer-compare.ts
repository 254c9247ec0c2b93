/**
 * Layer-by-layer comparison of a candidate against a reference.
 */
import type { DType, HostTensor, Precision } from "../core/host-tensor.js";
import type { Hooks } from "../core/hooks.js";
import { absMax, countMismatches, diffMetrics, floatValues, type DiffMetrics } from "../numeric/index.js";
import { degenerateReference, type DegenerateReference } from "./degenerate.js";
import { judge, perTensorGet, POLYGRAPHY_DEFAULT_TOL, type CompareOptions, type Verdict } from "./tolerance.js";

export const COMPARE_FORMAT = "trt-debug/compare@1";

export interface LayerComparison {
  /** Execution order of the layer. */
  order: number;
  layer: string;
  opType: string;
  /** The ONNX nodes of the layer (several for a fused group); absent = [layer]. */
  nodes?: string[];
  tensor: string;
  dtype: DType;
  /** Precision the candidate's layer ran in. */
  precision: Precision;
  isGraphOutput: boolean;
  metrics: DiffMetrics;
  verdict: Verdict;
  /** What the numbers suggest went wrong (overflow, underflow, NaN), empty when nothing stands out. */
  evidence: string[];
  /** Input set (iteration) of the row; only when several sets are compared. */
  iteration?: number;
  /** Graph outputs only: the reference carries no signal (./degenerate.ts); null otherwise or with allowDegenerate. */
  degenerate?: DegenerateReference | null;
}

/** Float32 view of a floating tensor (float16/bfloat16 bits decoded); null for other types. */

const FP16_MAX = 65504;
const FP16_MIN_SUBNORMAL = 2 ** -24;

/**
 * Plain-words evidence for a failing tensor. `ref` is the reference's values: its max |x| over
 * all finite elements tells an overflow (DiffMetrics' maxima only cover positions where both
 * sides are finite, which excludes exactly the overflowed ones).
 */
export function evidenceFor(m: DiffMetrics, precision: Precision, ref?: Float32Array): string[] {
  const ev: string[] = [];
  if (m.candNan > m.refNan) ev.push(`NaN (${m.candNan - m.refNan} new)`);
  const refMax = m.newNonFinite > 0 && ref ? absMax(ref) : m.refAbsMax;
  if (m.candInf > m.refInf) {
    const over = precision === "fp16" && refMax > FP16_MAX;
    ev.push(over ? `overflow: reference max |x| ${refMax.toPrecision(4)} > fp16 max 65504` : `Inf (${m.candInf - m.refInf} new)`);
  } else if (precision === "fp16" && refMax > FP16_MAX) {
    ev.push(`reference max |x| ${refMax.toPrecision(4)} exceeds fp16 max 65504`);
  }
  if (m.refL2 > 0 && m.candL2 === 0) ev.push("underflow: flushed to zero");
  else if (m.refL2 > 0 && m.candL2 < 0.5 * m.refL2 && precision === "fp16" && m.refAbsMax < 1e-3) {
    ev.push(`underflow: magnitudes near fp16's smallest subnormal (${FP16_MIN_SUBNORMAL.toExponential(2)})`);
  }
  return ev;
}

/**
 * The numeric core measures errors over positions where both sides are finite. For reports, a
 * position where the candidate is non-finite and the reference finite is an infinite error: max errors become inf,
 * rel L2 inf, SQNR -inf and cosine NaN, so no table shows "max abs 0" for an all-inf tensor.
 */
export function withNonFinite(m: DiffMetrics): DiffMetrics {
  if (m.newNonFinite === 0) return m;
  return { ...m, maxAbs: Infinity, maxRel: Infinity, relL2: Infinity, sqnrDb: -Infinity, cosine: NaN };
}

export interface TensorPairInfo {
  order: number;
  layer: string;
  opType: string;
  /** The ONNX nodes of the layer (several for a fused group). */
  nodes?: string[];
  /** Precision the candidate's layer ran in. */
  precision: Precision;
  /**
   * Precision whose threshold judges the tensor: the run's (e.g. fp16 for `compare --fp16`),
   * since a tensor carries the error of everything upstream of it — an fp32-pinned layer fed
   * by fp16 layers is not held to fp32's threshold. Defaults to `precision`.
   */
  verdictPrecision?: Precision;
  isGraphOutput: boolean;
}

/** Compare one tensor pair. Returns null for non-floating tensors (nothing to measure). */
/** `hooks.spell`: how a degenerate reference's advice spells options (compare/degenerate.ts). */
export function compareTensor(info: TensorPairInfo, ref: HostTensor, cand: HostTensor, o: CompareOptions, hooks: Pick<Hooks, "spell"> = {}): LayerComparison | null {
  const r = floatValues(ref);
  const c = floatValues(cand);
  if (!r || !c) return null;
  if (r.length !== c.length) {
    throw new Error(`tensor '${ref.name}': reference has ${r.length} elements, candidate ${c.length}`);
  }
  const quantile = perTensorGet(o.errorQuantile, ref.name, 0.99);
  const metrics = withNonFinite(diffMetrics(r, c, { quantile, infinitiesCompareEqual: o.infinitiesCompareEqual }));
  let mismatches: number | undefined;
  if (o.polygraphy && perTensorGet(o.checkErrorStat, ref.name, "elemwise") === "elemwise") {
    mismatches = countMismatches(r, c, perTensorGet(o.atol, ref.name, POLYGRAPHY_DEFAULT_TOL), perTensorGet(o.rtol, ref.name, POLYGRAPHY_DEFAULT_TOL), {
      infinitiesCompareEqual: o.infinitiesCompareEqual,
    });
  }
  const { verdictPrecision, ...rest } = info;
  let verdict = judge(metrics, ref.name, verdictPrecision ?? info.precision, o, mismatches);
  let degenerate = info.isGraphOutput ? degenerateReference(ref.name, r, info.precision, hooks) : null;
  if (degenerate?.kind === "nonfinite") verdict = { ...verdict, passed: false, reason: "reference has no finite value" };
  else if (degenerate && o.allowDegenerate) degenerate = null;
  return {
    ...rest,
    tensor: ref.name,
    dtype: ref.dtype,
    metrics,
    verdict,
    evidence: verdict.passed ? [] : evidenceFor(metrics, info.precision, r),
    degenerate,
  };
}

/**
 * passed: every judged graph output within tolerance; failed: one is not (exit 1), or its
 * reference has no finite value; degenerate: none failed but a reference output carries no
 * signal (exit 2, docs/precision.md).
 */
export type CompareVerdict = "passed" | "failed" | "degenerate";

export interface CompareSummary {
  format: typeof COMPARE_FORMAT;
  passed: boolean;
  verdict: CompareVerdict;
  /** Graph outputs whose reference is degenerate: excluded from the verdict (nonfinite ones fail it). */
  degenerate_outputs: DegenerateReference[];
  /** First layer in execution order whose own verdict fails, or null. */
  first_failing_layer: string | null;
  first_failing_tensor: string | null;
  reference: string;
  candidate: string;
  /** Verdict on the graph outputs (what decides the exit code). */
  outputs_passed: boolean;
  layers: LayerComparisonJson[];
  notes: string[];
}

export interface LayerComparisonJson {
  order: number;
  layer: string;
  op_type: string;
  /** The layer's ONNX nodes in execution order (several for a fused group). */
  nodes: string[];
  tensor: string;
  dtype: string;
  precision: string;
  is_graph_output: boolean;
  passed: boolean;
  reason: string;
  evidence: string[];
  /** Graph outputs: why the reference is degenerate (nonfinite|zero|below-resolution|constant), else null. */
  degenerate: string | null;
  metrics: Record<string, number | null>;
  min_tolerance: { abs: number | null; rel: number | null; rel_l2: number | null };
}

const num = (x: number): number | null => (Number.isFinite(x) ? x : Number.isNaN(x) ? null : x > 0 ? Number.MAX_VALUE : -Number.MAX_VALUE);

export function layerToJson(l: LayerComparison): LayerComparisonJson {
  const m = l.metrics;
  return {
    order: l.order,
    layer: l.layer,
    op_type: l.opType,
    nodes: l.nodes ?? [l.layer],
    tensor: l.tensor,
    dtype: l.dtype,
    precision: l.precision,
    is_graph_output: l.isGraphOutput,
    passed: l.verdict.passed,
    reason: l.verdict.reason,
    evidence: l.evidence,
    degenerate: l.degenerate?.kind ?? null,
    metrics: {
      numel: m.numel,
      max_abs: num(m.maxAbs),
      mean_abs: num(m.meanAbs),
      median_abs: num(m.medianAbs),
      quantile_abs: num(m.quantileAbs),
      max_rel: num(m.maxRel),
      mean_rel: num(m.meanRel),
      median_rel: num(m.medianRel),
      quantile_rel: num(m.quantileRel),
      cosine: num(m.cosine),
      sqnr_db: num(m.sqnrDb),
      rel_l2: num(m.relL2),
      ref_nan: m.refNan,
      ref_inf: m.refInf,
      cand_nan: m.candNan,
      cand_inf: m.candInf,
      new_nonfinite: m.newNonFinite,
      ref_abs_max: num(m.refAbsMax),
      cand_abs_max: num(m.candAbsMax),
    },
    min_tolerance: { abs: num(l.verdict.minTolerance.abs), rel: num(l.verdict.minTolerance.rel), rel_l2: num(l.verdict.minTolerance.relL2) },
  };
}

/** Accumulates layer comparisons into the summary (streaming: rows can be dropped by the caller). */
export class CompareAccumulator {
  firstFailing: LayerComparison | null = null;
  outputsPassed = true;
  outputsSeen = 0;
  readonly rows: LayerComparisonJson[] = [];
  readonly degenerate: DegenerateReference[] = [];
  constructor(readonly keepRows = true) {}
  add(l: LayerComparison): void {
    if (l.degenerate) this.degenerate.push(l.degenerate);
    // A degenerate output is left out of the verdict and of the first failing layer (its
    // failure is noise); a real underflow upstream of a healthy output still fails.
    const excluded = l.isGraphOutput && l.degenerate && l.degenerate.kind !== "nonfinite";
    if (excluded) {
      if (this.keepRows) this.rows.push(layerToJson(l));
      return;
    }
    if (!l.verdict.passed && !this.firstFailing) this.firstFailing = l;
    if (l.isGraphOutput) {
      this.outputsSeen++;
      if (!l.verdict.passed) this.outputsPassed = false;
    }
    if (this.keepRows) this.rows.push(layerToJson(l));
  }
  summary(reference: string, candidate: string, notes: string[] = []): CompareSummary {
    const verdict: CompareVerdict = !this.outputsPassed ? "failed" : this.degenerate.length ? "degenerate" : "passed";
    // No verdict, no culprit: under inputs that leave an output degenerate, a failing
    // intermediate layer is noise too (docs/precision.md "Degenerate references").
    const first = verdict === "degenerate" ? undefined : this.firstFailing;
    return {
      format: COMPARE_FORMAT,
      passed: verdict === "passed",
      verdict,
      degenerate_outputs: this.degenerate,
      first_failing_layer: first?.layer ?? null,
      first_failing_tensor: first?.tensor ?? null,
      reference,
      candidate,
      outputs_passed: this.outputsPassed,
      layers: this.rows,
      notes,
    };
  }
}
