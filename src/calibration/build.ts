/**
 * `calib build`: calibrate every floating activation of a model and write a TensorRT cache
 * plus the JSON sidecar (`<cache>.json`). Library function: no printing.
 */
import { opt, UserError, userError } from "../core/errors.js";
import { checkSegmentLayers } from "../runtime/executor.js";
import type { Hooks } from "../core/hooks.js";
import { prepareModelFile } from "../runtime/capture-runs.js";
import type { OptimizationLevel } from "../onnx/ort-session.js";
import { CACHE_ALGORITHM_NAMES, calibrate, DEFAULT_PERCENTILE, type CalibAlgo } from "./algorithms.js";
import { cacheFromAmax, DEFAULT_TRT_VERSION, writeCalibrationCache, amaxToScale } from "./cache.js";
import { openCalibData, warnSingleBatch, type CalibDataArgs } from "./calib-data.js";
import { collectStatistics } from "./collect.js";

export const CALIB_BUILD_FORMAT = "trt-debug/calib-build@1";

export interface CalibBuildArgs extends CalibDataArgs {
  model: string;
  algo: CalibAlgo;
  /** For percentile (default 99.99). */
  percentile?: number;
  /** The TensorRT cache to write; the sidecar goes to `<output>.json`. */
  output: string;
  /** TensorRT version digits in the header (default 8601). */
  trtVersion?: string;
  segmentLayers?: number;
  optimization?: OptimizationLevel;
}

export interface CalibBuildTensor {
  tensor: string;
  amax: number;
  scale: number;
  /** Observed max |x| over all batches. */
  max: number;
  /** Values seen (finite) and skipped (NaN/Inf). */
  count: number;
  non_finite: number;
}

export interface CalibBuildResult {
  format: typeof CALIB_BUILD_FORMAT;
  model: string;
  algo: CalibAlgo;
  /** Header name, e.g. EntropyCalibration2. */
  algorithm: string;
  percentile: number | null;
  trt_version: string;
  cache: string;
  sidecar: string;
  data: string;
  random_data: boolean;
  batches: number;
  seconds: number;
  tensors: CalibBuildTensor[];
  /** Tensors that were all zero in every batch (written with scale 0: int8 layers touching them fall back). */
  all_zero: string[];
  /** Floating tensors whose values cannot be observed (e.g. bfloat16), not in the cache. */
  unobservable: string[];
}

export function parsePercentile(v: unknown): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 100) throw new UserError(`percentile ${String(v)}: expected a number in (0, 100], e.g. 99.99`, "percentile");
  return n;
}

export function parseTrtVersion(v: unknown): string {
  const s = String(v).trim();
  if (!/^\d+$/.test(s)) throw new UserError(`trtVersion ${JSON.stringify(String(v))}: expected TensorRT version digits, e.g. 8601 (8.6.1) or 100300 (10.3.0)`, "trtVersion");
  return s;
}

export async function calibBuild(a: CalibBuildArgs, hooks: Hooks = {}): Promise<CalibBuildResult> {
  checkSegmentLayers(a.segmentLayers);
  const version = a.trtVersion === undefined ? DEFAULT_TRT_VERSION : parseTrtVersion(a.trtVersion);
  if (a.percentile !== undefined && a.algo !== "percentile") throw userError`${opt("percentile")}: only for ${opt("algo")} percentile (got ${opt("algo")} ${a.algo})`;
  const percentile = a.algo === "percentile" ? (a.percentile === undefined ? DEFAULT_PERCENTILE : parsePercentile(a.percentile)) : null;
  if (!a.output) throw userError`calib build: give the cache to write with ${opt("calibBuild.output", "output")} FILE.cache`;
  const p = await prepareModelFile(a.model, a);
  const source = openCalibData(p.inputs, a, (m, parts) => hooks.warn?.(m, parts), hooks);
  const stats = await collectStatistics(p, source, {
    segmentLayers: a.segmentLayers,
    optimization: a.optimization,
    onBatch: (done, total) => hooks.progress?.("calibrate", done, total ?? done),
  });
  if (stats.batches === 0) throw new UserError(`calib build: ${source.description} holds no batch`);
  warnSingleBatch(source, stats.batches, (m, parts) => hooks.warn?.(m, parts));
  const amax = new Map<string, number>();
  const tensors: CalibBuildTensor[] = [];
  const allZero: string[] = [];
  for (const [t, h] of stats.histograms) {
    const v = calibrate(h, a.algo, percentile !== null ? { percentile } : {});
    amax.set(t, v);
    if (h.isEmpty) allZero.push(t);
    tensors.push({ tensor: t, amax: v, scale: amaxToScale(v), max: h.max, count: h.total, non_finite: h.nonFinite });
  }
  if (allZero.length) {
    hooks.warn?.(`${allZero.length} tensor${allZero.length === 1 ? " was" : "s were"} all zero in every calibration batch (e.g. '${allZero[0]}'): written with range 0; int8 layers reading or writing them fall back`);
  }
  const content = cacheFromAmax(amax, CACHE_ALGORITHM_NAMES[a.algo], version);
  const sidecar = `${a.output}.json`;
  await writeCalibrationCache(a.output, content, "tensorrt");
  await writeCalibrationCache(sidecar, content, "json");
  return {
    format: CALIB_BUILD_FORMAT,
    model: a.model,
    algo: a.algo,
    algorithm: CACHE_ALGORITHM_NAMES[a.algo],
    percentile,
    trt_version: version,
    cache: a.output,
    sidecar,
    data: source.description,
    random_data: source.random,
    batches: stats.batches,
    seconds: stats.seconds,
    tensors,
    all_zero: allZero,
    unobservable: stats.unobservable,
  };
}
