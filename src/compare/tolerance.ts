/**
 * Pass/fail verdicts for one compared tensor.
 *
 * Default ("relative", precision-aware): a tensor fails when the candidate has NaN/Inf where
 * the reference is finite, or when its relative L2 error ‖r−c‖₂/‖r‖₂ exceeds the threshold
 * of the precision that produced it (DEFAULT_MAX_REL_L2). Rounding noise spread over a large
 * tensor (e.g. cancellation on a few near-zero MatMul outputs) stays far below it; a tensor
 * flushed to zero has relative L2 = 1 and fails.
 *
 * Polygraphy semantics apply when the user passes --atol, --rtol or --check-error-stat:
 *   elemwise: fail when any element exceeds BOTH atol and rtol;
 *   max|mean|median|quantile: fail when that statistic of the absolute error exceeds atol
 *   AND the same statistic of the relative error exceeds rtol.
 */
import { UserError } from "../core/errors.js";
import type { Precision } from "../core/host-tensor.js";
import type { DiffMetrics } from "../numeric/index.js";
import { nonFiniteText } from "../core/number-text.js";

export type ErrorStat = "elemwise" | "max" | "mean" | "median" | "quantile";
export const ERROR_STATS: readonly ErrorStat[] = ["elemwise", "max", "mean", "median", "quantile"];

/** Relative-L2 thresholds of the default verdict, by the precision that produced the tensor. */
export const DEFAULT_MAX_REL_L2: Record<Precision, number> = {
  fp32: 1e-4,
  fp16: 1e-2,
  bf16: 5e-2,
  fp8: 0.25,
  int8: 0.25,
};

/** A value given globally and/or per tensor (`name:value`, split at the last colon). */
export interface PerTensor<T> {
  global?: T;
  byTensor: Map<string, T>;
}

export function perTensorGet<T>(p: PerTensor<T>, tensor: string, fallback: T): T {
  return p.byTensor.get(tensor) ?? p.global ?? fallback;
}


export function parseNonNegative(s: string): number | undefined {
  if (!/^[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export interface CompareOptions {
  /** Set when any Polygraphy-style option was given. */
  polygraphy: boolean;
  atol: PerTensor<number>;
  rtol: PerTensor<number>;
  checkErrorStat: PerTensor<ErrorStat>;
  errorQuantile: PerTensor<number>;
  infinitiesCompareEqual: boolean;
  /** Override of DEFAULT_MAX_REL_L2 for every precision. */
  maxRelL2?: number;
  /** Judge graph outputs whose reference is degenerate as any other (compare/degenerate.ts). */
  allowDegenerate?: boolean;
  /** `--metric cosine|sqnr --threshold X`: bisect's metric criterion (search/evaluate.ts) instead of the default verdict. */
  metric?: MetricCheck;
}

/** A metric criterion: pass when cosine (or SQNR in dB) >= threshold and no NaN/Inf mismatch. */
export interface MetricCheck {
  metric: "cosine" | "sqnr";
  threshold: number;
}

/** The one judgement of a metric criterion (compare --metric and bisect --metric). */
export function judgeMetric(m: DiffMetrics, c: MetricCheck): { passed: boolean; value: number; reason: string } {
  const bad = m.nonFiniteMismatch > 0;
  const value = bad ? (c.metric === "cosine" ? NaN : -Infinity) : c.metric === "cosine" ? m.cosine : m.sqnrDb;
  const passed = !bad && value >= c.threshold;
  const shown = c.metric === "cosine" ? `cosine ${nonFiniteText(value) ?? value.toFixed(6)}` : `SQNR ${nonFiniteText(value) ?? value.toFixed(1)} dB`;
  const reason = bad ? `${m.nonFiniteMismatch} NaN/Inf mismatches` : `${shown} ${passed ? ">=" : "<"} ${c.threshold}`;
  return { passed, value, reason };
}

export const POLYGRAPHY_DEFAULT_TOL = 1e-5;

export function defaultCompareOptions(): CompareOptions {
  return {
    polygraphy: false,
    atol: { byTensor: new Map() },
    rtol: { byTensor: new Map() },
    checkErrorStat: { byTensor: new Map() },
    errorQuantile: { byTensor: new Map() },
    infinitiesCompareEqual: false,
  };
}

export interface Verdict {
  passed: boolean;
  /** Short reason: "ok", "new NaN/Inf", "rel L2 0.31 > 0.01", "max abs 0.2 > atol 1e-5 and ..." */
  reason: string;
  /** Smallest tolerance that would have passed (what Polygraphy prints as "minimum required"). */
  minTolerance: { abs: number; rel: number; relL2: number; stat: ErrorStat | "rel-l2" };
}

/** Which element statistic a check uses, and its abs/rel values. */
function statValues(m: DiffMetrics, stat: ErrorStat): { abs: number; rel: number } {
  switch (stat) {
    case "elemwise":
    case "max":
      return { abs: m.maxAbs, rel: m.maxRel };
    case "mean":
      return { abs: m.meanAbs, rel: m.meanRel };
    case "median":
      return { abs: m.medianAbs, rel: m.medianRel };
    case "quantile":
      return { abs: m.quantileAbs, rel: m.quantileRel };
  }
}

/**
 * `elemwiseMismatches` is the number of elements exceeding both atol and rtol (computed by the
 * caller with numeric.countMismatches when the elemwise check is in force).
 */
export function judge(
  m: DiffMetrics,
  tensor: string,
  precision: Precision,
  o: CompareOptions,
  elemwiseMismatches?: number,
): Verdict {
  const stat = perTensorGet(o.checkErrorStat, tensor, "elemwise" as ErrorStat);
  const sv = statValues(m, o.polygraphy ? stat : "max");
  const newNonFinite = m.newNonFinite;
  const minTolerance = { abs: sv.abs, rel: sv.rel, relL2: m.relL2, stat: o.polygraphy ? stat : ("rel-l2" as const) };
  if (o.metric) {
    const j = judgeMetric(m, o.metric);
    return { passed: j.passed, reason: j.reason, minTolerance };
  }
  if (!o.polygraphy) {
    const thr = o.maxRelL2 ?? DEFAULT_MAX_REL_L2[precision];
    if (newNonFinite > 0) return { passed: false, reason: `${newNonFinite} new NaN/Inf`, minTolerance };
    if (!(m.relL2 <= thr)) return { passed: false, reason: `rel L2 ${fmt(m.relL2)} > ${fmt(thr)}`, minTolerance };
    return { passed: true, reason: `rel L2 ${fmt(m.relL2)} <= ${fmt(thr)}`, minTolerance };
  }
  const atol = perTensorGet(o.atol, tensor, POLYGRAPHY_DEFAULT_TOL);
  const rtol = perTensorGet(o.rtol, tensor, POLYGRAPHY_DEFAULT_TOL);
  if (m.nonFiniteMismatch > 0) return { passed: false, reason: `${m.nonFiniteMismatch} NaN/Inf mismatches`, minTolerance };
  if (stat === "elemwise") {
    const bad = elemwiseMismatches ?? 0;
    return bad > 0
      ? { passed: false, reason: `${bad} elements exceed atol ${fmt(atol)} and rtol ${fmt(rtol)}`, minTolerance }
      : { passed: true, reason: `all elements within atol ${fmt(atol)} or rtol ${fmt(rtol)}`, minTolerance };
  }
  const failed = sv.abs > atol && sv.rel > rtol;
  return failed
    ? { passed: false, reason: `${stat} abs ${fmt(sv.abs)} > atol ${fmt(atol)} and rel ${fmt(sv.rel)} > rtol ${fmt(rtol)}`, minTolerance }
    : { passed: true, reason: `${stat} abs ${fmt(sv.abs)} / rel ${fmt(sv.rel)} within tolerance`, minTolerance };
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return nonFiniteText(x)!;
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-3 ? x.toExponential(2) : Number(x.toPrecision(3)).toString();
}
