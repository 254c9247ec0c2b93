/**
 * `calib check`: how good is a calibration cache for a model and its data?
 *
 * Per tensor (from one streaming statistics pass over the calibration data): the cache's amax
 * against the observed max|x| and high percentiles, the fraction of values clipped and
 * quantized to zero, SQNR of quantize→dequantize (over all values, and over the values inside
 * the range), and what every calibrator would choose with its SQNR. Per layer (on the first
 * `checkBatches` batches): INT8 vs FP32 output error of the layer alone (fed FP32 inputs) and
 * end to end (a full int8 run). Flags, a ranked list of the worst tensors with a suggestion
 * each, and a verdict: harmful flags fail the check.
 *
 * Library function: no printing. Thresholds and flags: docs/int8.md ("calib check").
 */
import { assertOpsetSupports } from "../runtime/upgrade.js";
import { numText } from "../core/number-text.js";
import { opt, optionText, UserError } from "../core/errors.js";
import type { HostTensor, Precision } from "../core/host-tensor.js";
import { spelled, type Hooks, type Warn } from "../core/hooks.js";
import { prepareModelFile, makeFeeds, runPaired, type PreparedModel } from "../runtime/capture-runs.js";
import { Executor, checkSegmentLayers } from "../runtime/executor.js";
import type { OptimizationLevel, OrtTensor } from "../onnx/ort-session.js";
import { fromOrt } from "../onnx/ort-session.js";
import { floatValues } from "../numeric/index.js";
import { DEFAULT_MAX_REL_L2 } from "../compare/tolerance.js";
import { diffMetrics } from "../numeric/index.js";
import {
  CALIB_ALGOS,
  CACHE_ALGORITHM_NAMES,
  calibAlgoFromCacheName,
  chooseAll,
  DEFAULT_PERCENTILE,
  percentileAmax,
  roundHalfEven,
  sqnrOfQuantization,
  type CalibAlgo,
} from "./algorithms.js";
import type { AbsHistogram } from "./histogram.js";
import { readCalibrationCache, scaleToAmax } from "./cache.js";
import { resolveInt8, type CalibrationCache, type Int8Range, type Int8Resolution, type QuantType } from "../precision/int8.js";
import { cacheInfo, type CacheInfo } from "./int8-run.js";
import { openCalibData, type CalibDataArgs, type CalibSource } from "./calib-data.js";
import { collectStatistics } from "./collect.js";

export const CALIB_CHECK_FORMAT = "trt-debug/calib-check@1";

/** Thresholds of the harmful flags (docs/int8.md). */
export interface CheckThresholds {
  /** `clipping` when more than this fraction of the values lies beyond ±amax. */
  maxClipFraction: number;
  /** `low-sqnr` when the SQNR of the bulk (values up to the 99.9th percentile of |x|) is below this (dB). */
  minSqnrDb: number;
  /** `wasted-range` when amax exceeds this multiple of the observed 99.9th percentile of |x|. */
  maxRangeRatio: number;
}

export const DEFAULT_THRESHOLDS: Readonly<CheckThresholds> = Object.freeze({ maxClipFraction: 0.01, minSqnrDb: 20, maxRangeRatio: 16 });

/** Below this many batches (or with random data) suggestions include "more calibration data". */
export const FEW_BATCHES = 8;

/** The bulk of a tensor's values for bulk_sqnr_db: the 99.9 % smallest |x|. */
export const BULK_PERCENTILE = 99.9;

export interface CalibCheckArgs extends CalibDataArgs {
  model: string;
  calibrationCache: string;
  /** The scales themselves (a Q/DQ model's, calibration/qdq-scales.ts); `calibrationCache` then names where they came from. */
  cache?: CalibrationCache;
  /** The algorithm the cache was expected to be made with (flag when the header disagrees). */
  algo?: CalibAlgo;
  /** Percentile used for the "percentile" calibrator's alternative (default 99.99). */
  percentile?: number;
  thresholds?: Partial<CheckThresholds>;
  /** Batches used for the per-layer error measurements (default 1: the first batch). */
  checkBatches?: number;
  /** The quantized type of the checked layers: int8 (default) or fp8 (an fp8 Q/DQ model's scales). */
  qtype?: QuantType;
  /**
   * A Q/DQ model's check (workflows/calib-qdq.ts): only these layers (names) are asked to run
   * quantized, the others in the fallback, with explicit placement (Q/DQ on a quantized layer's
   * activation inputs only, precision/int8.ts Int8Options.placement), as the Q/DQ model runs.
   */
  quantizedLayers?: ReadonlySet<string>;
  /** The model as named in messages and suggestions (a Q/DQ model's check runs a temporary copy). */
  label?: string;
  /** Fallback precision and activation range of the int8 runs (as run --int8 [--fp16]). */
  fallback?: Precision;
  range?: Int8Range;
  segmentLayers?: number;
  optimization?: OptimizationLevel;
}

export type FlagCode = "clipping" | "wasted-range" | "low-sqnr" | "missing" | "zero-range" | "non-finite" | "unobservable";
export type Severity = "harmful" | "warning";

export interface TensorFlag {
  code: FlagCode;
  severity: Severity;
  message: string;
}

export interface RangeQuality {
  amax: number;
  /** SQNR (dB) of quantize→dequantize over all values (clipping included). */
  sqnr_db: number | null;
  /**
   * SQNR (dB) of quantize→dequantize over the bulk: the 99.9 % smallest |x| (up to the bin of
   * the 99.9th percentile). The resolution the range leaves for typical values, whatever the
   * outliers do.
   */
  bulk_sqnr_db: number | null;
  clipped_fraction: number;
  zero_fraction: number;
}

export interface TensorCheck {
  tensor: string;
  /** Producing layer (null for a graph input). */
  producer: string | null;
  consumers: string[];
  /** Whether an int8 layer reads or writes it in the checked plan. */
  quantized: boolean;
  in_cache: boolean;
  cache_amax: number | null;
  cache_scale: number | null;
  observed: { max: number; p99: number; p99_9: number; p99_99: number; values: number; non_finite: number } | null;
  /** The cache's range on the observed data (null when not in the cache or not observed). */
  quality: (RangeQuality & { range_ratio: number | null }) | null;
  /** What each calibrator would choose on this data. */
  calibrators: Record<CalibAlgo, RangeQuality> | null;
  /** The calibrator with the best bulk SQNR among those raising no harmful flag. */
  best_algo: CalibAlgo | null;
  flags: TensorFlag[];
  /** Largest local INT8 rel L2 error among the int8 layers around the tensor. */
  impact: number | null;
  /**
   * The statistics pass's |x| histogram, coarsened to at most HISTOGRAM_SUMMARY_BINS bins
   * (adjacent bins summed): bin j counts |x| in [j·bin_width, (j+1)·bin_width); null when not
   * observed. For the HTML report's per-tensor chart (docs/report.md).
   */
  histogram: { bin_width: number; counts: number[] } | null;
}

/** Most bins of a TensorCheck's histogram summary (the JSON stays small for any model). */
export const HISTOGRAM_SUMMARY_BINS = 256;

/** `h` with adjacent bins summed in groups of ceil(bins / maxBins). */
export function histogramSummary(h: AbsHistogram, maxBins = HISTOGRAM_SUMMARY_BINS): { bin_width: number; counts: number[] } {
  const src = h.counts;
  const f = Math.max(1, Math.ceil(src.length / maxBins));
  const counts = new Array<number>(Math.ceil(src.length / f)).fill(0);
  for (let j = 0; j < src.length; j++) counts[Math.floor(j / f)]! += src[j]! > 0 ? src[j]! : 0;
  return { bin_width: h.binWidth * f, counts };
}

export interface ErrorStat {
  tensor: string;
  rel_l2: number | null;
  sqnr_db: number | null;
  new_nonfinite: number;
}

export interface LayerCheck {
  index: number;
  layer: string;
  op_type: string;
  precision: Precision;
  fallback_reason: string | null;
  /** The layer alone in its precision, fed FP32 inputs (worst output). */
  local: ErrorStat | null;
  /** The full int8 run against FP32 (worst output). */
  end_to_end: ErrorStat | null;
}

export interface WorstTensor {
  rank: number;
  tensor: string;
  flags: FlagCode[];
  harmful: boolean;
  summary: string;
  suggestion: string;
}

export interface CalibCheckResult {
  format: typeof CALIB_CHECK_FORMAT;
  model: string;
  cache: CacheInfo;
  /** Algorithm the cache header names (mapped), and the one expected (--algo). */
  cache_algo: CalibAlgo | null;
  expected_algo: CalibAlgo | null;
  algorithm_mismatch: boolean;
  data: string;
  random_data: boolean;
  batches: number;
  check_batches: number;
  thresholds: CheckThresholds;
  /** `type` "fp8": the scales are an fp8 Q/DQ model's (e4m3fn, amax = 448·scale), layers quantized to fp8. */
  int8: { mode: "implicit"; int8_layers: number; layers: number; fallback_precision: Precision; activation_range: string; type?: "fp8" };
  tensors: TensorCheck[];
  layers: LayerCheck[];
  /** Graph outputs of the full int8 run against FP32. */
  outputs: (ErrorStat & { passed: boolean; threshold: number })[];
  missing_from_cache: string[];
  unknown_in_cache: string[];
  /** Every tensor with a flag (harmful or warning). */
  flagged: { tensor: string; flags: FlagCode[]; harmful: boolean }[];
  harmful_tensors: string[];
  worst: WorstTensor[];
  warnings: string[];
  /** True when no tensor is flagged harmful (exit 0). */
  passed: boolean;
}

const num = (x: number): number | null => (Number.isFinite(x) ? x : Number.isNaN(x) ? null : x > 0 ? Number.MAX_VALUE : -Number.MAX_VALUE);

/**
 * The quality of `amax` on a histogram: sqnrOfQuantization's numbers, plus the clipped
 * fraction (values with |x| > 127.5·s, s = amax/127, i.e. changed by the clamp by more than
 * rounding would; a bin straddling that edge counts pro rata, nothing is clipped when the edge
 * is at or beyond the observed max) and the SQNR over the bulk (bins up to the one holding
 * the 99.9th percentile of |x|; bin centres stand for the values, as in sqnrOfQuantization).
 */
export function rangeQuality(h: AbsHistogram, amax: number): RangeQuality {
  const q = sqnrOfQuantization(h, amax);
  const w = h.binWidth;
  const counts = h.counts;
  let total = 0, clipped = 0, sig = 0, noise = 0;
  let all = 0;
  for (let j = 0; j < counts.length; j++) all += counts[j]! > 0 ? counts[j]! : 0;
  // the bulk: bins 0 .. jb-1, jb = 1 + the bin where the cumulative count reaches 99.9 %
  let jb = counts.length;
  for (let j = 0, cum = 0; j < counts.length; j++) {
    cum += counts[j]! > 0 ? counts[j]! : 0;
    if (cum * 100 >= BULK_PERCENTILE * all) {
      jb = j + 1;
      break;
    }
  }
  const s = amax / 127;
  // Clipped: |x| beyond 127.5·s, where the clamp changes a value by more than rounding would.
  const edge = 127.5 * s;
  for (let j = 0; j < counts.length; j++) {
    const n = counts[j]!;
    if (!(n > 0)) continue;
    total += n;
    const lo = j * w, hi = (j + 1) * w, c = (j + 0.5) * w;
    if (edge < h.max) {
      if (lo >= edge) clipped += n;
      else if (hi > edge) clipped += (n * (hi - edge)) / w;
    }
    if (j < jb) {
      const e = amax > 0 ? c - Math.min(roundHalfEven(c / s), 127) * s : c;
      sig += n * c * c;
      noise += n * e * e;
    }
  }
  const bulk = noise === 0 ? Infinity : sig === 0 ? 0 : 10 * Math.log10(sig / noise);
  return {
    amax,
    sqnr_db: num(q.sqnrDb),
    bulk_sqnr_db: num(bulk),
    clipped_fraction: total > 0 ? (amax > 0 ? clipped / total : 1) : 0,
    zero_fraction: q.zeroFraction,
  };
}

/**
 * fp8 (e4m3fn, scale amax/448): the range is wasted when the 99.9th percentile of |x| lies below
 * amax·2^-6/448, where e4m3fn turns subnormal and loses its 3 mantissa bits: amax / p99.9 > 448·2^6.
 */
export const FP8_WASTED_RANGE_RATIO = 448 * 64;

function harmfulFlags(qa: RangeQuality, rangeRatio: number | null, t: CheckThresholds, qtype: QuantType = "int8"): TensorFlag[] {
  const out: TensorFlag[] = [];
  const pct = (x: number) => `${(100 * x).toPrecision(3)}%`;
  if (qa.clipped_fraction > t.maxClipFraction) {
    out.push({ code: "clipping", severity: "harmful", message: `${pct(qa.clipped_fraction)} of the values lie beyond amax ${fmtNum(qa.amax)} and are clipped (threshold ${pct(t.maxClipFraction)})` });
  }
  if (qtype === "fp8") {
    // e4m3fn keeps 3 mantissa bits over 2^6·448 of range: only a far too large amax wastes it; the
    // SQNR figures are int8's (uniform grid) and say nothing of fp8, so no low-sqnr flag
    if (rangeRatio !== null && rangeRatio > FP8_WASTED_RANGE_RATIO) {
      out.push({ code: "wasted-range", severity: "harmful", message: `amax ${fmtNum(qa.amax)} is ${fmtNum(rangeRatio)}x the 99.9th percentile of |x|: 99.9% of the values fall into e4m3fn's subnormals (below amax·2^-6/448) and lose precision (threshold ${FP8_WASTED_RANGE_RATIO}x for fp8)` });
    }
    return out;
  }
  if (rangeRatio !== null && rangeRatio > t.maxRangeRatio) {
    out.push({
      code: "wasted-range",
      severity: "harmful",
      message: `amax ${fmtNum(qa.amax)} is ${fmtNum(rangeRatio)}x the 99.9th percentile of |x|: 99.9% of the values use at most ${Math.max(1, Math.floor(127 / rangeRatio))} of the 127 levels and ${pct(qa.zero_fraction)} quantize to 0 (threshold ${t.maxRangeRatio}x)`,
    });
  }
  const b = qa.bulk_sqnr_db;
  if (b !== null && b < t.minSqnrDb) {
    out.push({ code: "low-sqnr", severity: "harmful", message: `SQNR of the bulk (the 99.9% of values up to the 99.9th percentile) is ${b.toFixed(1)} dB (threshold ${t.minSqnrDb} dB): the int8 steps are coarse for typical values` });
  }
  return out;
}

export function fmtNum(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return numText(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-3 ? x.toExponential(2) : Number(x.toPrecision(4)).toString();
}

const fmtDb = (x: number | null) => (x === null ? "-" : x >= Number.MAX_VALUE ? "inf" : x.toFixed(1));

interface ErrAcc {
  ref2: number;
  diff2: number;
  newNonFinite: number;
}

function accumulate(map: Map<string, ErrAcc>, name: string, ref: HostTensor, cand: HostTensor): void {
  const r = floatValues(ref), c = floatValues(cand);
  if (!r || !c || r.length !== c.length) return;
  const m = diffMetrics(r, c);
  const a = map.get(name) ?? { ref2: 0, diff2: 0, newNonFinite: 0 };
  a.ref2 += m.refL2 * m.refL2;
  a.diff2 += m.diffL2 * m.diffL2;
  a.newNonFinite += m.newNonFinite;
  map.set(name, a);
}

function errStat(tensor: string, a: ErrAcc): ErrorStat {
  const relL2 = a.newNonFinite > 0 ? Infinity : a.diff2 === 0 ? 0 : a.ref2 === 0 ? Infinity : Math.sqrt(a.diff2 / a.ref2);
  const sqnr = a.newNonFinite > 0 ? -Infinity : a.diff2 === 0 ? Infinity : a.ref2 === 0 ? -Infinity : 10 * Math.log10(a.ref2 / a.diff2);
  return { tensor, rel_l2: num(relL2), sqnr_db: num(sqnr), new_nonfinite: a.newNonFinite };
}

/** The first `k` batches of a source, re-iterable (held in memory: k is small). */
async function firstBatches(source: CalibSource, k: number): Promise<HostTensor[][]> {
  const out: HostTensor[][] = [];
  if (k <= 0) return out;
  for await (const b of source.iterate()) {
    out.push(b);
    if (out.length >= k) break;
  }
  return out;
}

/**
 * Per-layer errors: local (every layer alone in its resolved precision, fed the FP32 run's
 * tensors: an Executor with one layer per segment runs segment i on the reference's live
 * tensors) and end to end (full run vs FP32).
 */
async function layerErrors(
  p: PreparedModel,
  res: Int8Resolution,
  batches: HostTensor[][],
  o: { segmentLayers?: number; optimization?: OptimizationLevel },
  progress: (phase: string, done: number, total: number) => void,
): Promise<{ local: Map<string, ErrAcc>; e2e: Map<string, ErrAcc> }> {
  const layers = p.model.graph.layers;
  const fp32: Precision[] = layers.map(() => "fp32");
  const local = new Map<string, ErrAcc>();
  const e2e = new Map<string, ErrAcc>();
  const refExec = new Executor(p.model, p.types, { segmentLayers: 1, optimizationLevel: o.optimization });
  // Local runs put every other layer in fp32, but the layer quantizes its output as it does in
  // the checked plan (when all its consumers run in int8 there): its local error includes it.
  const locExec = new Executor(p.model, p.types, { segmentLayers: 1, optimizationLevel: o.optimization, policy: res.policy.withOutputsOf(res.precisions) });
  const fullExec = new Executor(p.model, p.types, { segmentLayers: o.segmentLayers, optimizationLevel: o.optimization, policy: res.policy });
  const total = batches.length * layers.length;
  let done = 0;
  try {
    for (const inputs of batches) {
      const live = makeFeeds(inputs);
      const refGen = refExec.run(fp32, live, () => true);
      for (let si = 0; si < refExec.segments.length; si++) {
        const seg = refExec.segments[si]!;
        const prec = [...fp32];
        let reduced = false;
        for (let i = seg.start; i < seg.end; i++) {
          prec[i] = res.precisions[i]!;
          if (prec[i] !== "fp32") reduced = true;
        }
        // A layer in fp32 has no local error: only the reference runs.
        let mine: Map<string, OrtTensor> | null = null;
        if (reduced) {
          const feeds = new Map<string, OrtTensor>();
          for (const t of seg.inputs) {
            const v = live.get(t);
            if (v) feeds.set(t, v);
          }
          const r = await locExec.run(prec, feeds, () => true, { fromSegment: si, toSegment: si + 1 }).next();
          mine = r.done ? null : r.value.captured;
        }
        const ref = await refGen.next();
        if (ref.done) break;
        if (mine) {
          for (const [name, rv] of ref.value.captured) {
            const cv = mine.get(name);
            if (cv) accumulate(local, name, fromOrt(name, rv), fromOrt(name, cv));
          }
        }
        done += seg.end - seg.start;
        progress("layer errors (local)", done, total);
      }
      await refGen.return(undefined);
      let k = 0;
      for await (const pair of runPaired(fullExec, fp32, res.precisions, inputs, inputs, () => true)) {
        accumulate(e2e, pair.cand.tensor.name, pair.ref.tensor, pair.cand.tensor);
        progress("layer errors (end to end)", Math.min(++k, layers.length), layers.length);
      }
    }
  } finally {
    await refExec.release();
    await locExec.release();
    await fullExec.release();
  }
  return { local, e2e };
}

export async function calibCheck(a: CalibCheckArgs, hooks: Hooks = {}): Promise<CalibCheckResult> {
  checkSegmentLayers(a.segmentLayers);
  const th: CheckThresholds = { ...DEFAULT_THRESHOLDS, ...Object.fromEntries(Object.entries(a.thresholds ?? {}).filter(([, v]) => v !== undefined)) };
  if (!(th.maxClipFraction >= 0 && th.maxClipFraction <= 1)) throw new UserError(`maxClipFraction ${th.maxClipFraction}: expected a fraction in [0, 1]`, "maxClipFraction");
  if (!Number.isFinite(th.minSqnrDb)) throw new UserError(`minSqnrDb ${th.minSqnrDb}: expected a number of dB`, "minSqnrDb");
  if (!(th.maxRangeRatio >= 1)) throw new UserError(`maxRangeRatio ${th.maxRangeRatio}: expected a number >= 1`, "maxRangeRatio");
  const checkBatches = a.checkBatches ?? 1;
  if (!Number.isInteger(checkBatches) || checkBatches < 0) throw new UserError(`checkBatches ${checkBatches}: expected a non-negative integer`, "checkBatches");
  const percentile = a.percentile ?? DEFAULT_PERCENTILE;
  const warnings: string[] = [];
  // kept in the result as the caller spells options (hooks.spell: the CLI's JSON names flags)
  const warn: Warn = (m, parts) => {
    warnings.push(parts ? spelled(hooks, { message: m, parts }) : m);
    hooks.warn?.(m, parts);
  };

  const p = await prepareModelFile(a.model, a);
  const cache = a.cache ?? (await readCalibrationCache(a.calibrationCache));
  if (cache.scales.size === 0) {
    throw new UserError(`${a.calibrationCache}: the calibration cache has no entries (a header only), so there is nothing to check; rebuild it with \`trt-debug calib build -o FILE\``);
  }
  const info = cacheInfo(a.calibrationCache, cache);
  const cacheAlgo = calibAlgoFromCacheName(cache.algorithm) ?? null;
  const expected = a.algo ?? null;
  const mismatch = expected !== null && cache.algorithm !== CACHE_ALGORITHM_NAMES[expected];
  if (mismatch) {
    const w = optionText`${a.calibrationCache} was made by ${cache.algorithm}, not ${CACHE_ALGORITHM_NAMES[expected!]} (${opt("algo")} ${expected}); rebuild it with \`trt-debug calib build --algo ${expected}\` or drop ${opt("algo")}`;
    warn(w.message, w.parts);
  }

  const qt = a.qtype ?? "int8";
  const fbp = a.fallback ?? "fp32";
  const requested: Precision[] = p.model.graph.layers.map((l) => (!a.quantizedLayers || a.quantizedLayers.has(l.name) ? qt : fbp));
  const res = resolveInt8(p.model, p.types, requested, { cache, fallback: fbp, range: a.range, qtype: qt, ...(a.quantizedLayers ? { placement: "inputs" as const } : {}) });
  assertOpsetSupports(p.model, p.types, [...requested, res.fallback], res.range);
  if (res.mode !== "implicit") {
    throw new UserError(`${a.model} has QuantizeLinear/DequantizeLinear nodes (explicit quantization): TensorRT does not use a calibration cache for it, so there is nothing to check; compare it with \`trt-debug compare ${a.model} --int8\``);
  }

  // 1. statistics, one streaming pass over all calibration batches
  const source = openCalibData(p.inputs, a, warn, hooks);
  const stats = await collectStatistics(p, source, {
    segmentLayers: a.segmentLayers,
    optimization: a.optimization,
    onBatch: (d, t) => hooks.progress?.("statistics", d, t ?? d),
  });
  if (stats.batches === 0) throw new UserError(`calib check: ${source.description} holds no batch`);

  // 2. per-layer errors on the first batches
  const batches = await firstBatches(source, Math.min(checkBatches, stats.batches));
  const errs = await layerErrors(p, res, batches, a, (ph, d, t) => hooks.progress?.(ph, d, t));

  const layers = p.model.graph.layers;
  const graphOut = new Set(p.model.graph.outputs.map((x) => x.name));
  const layerChecks: LayerCheck[] = layers.map((l) => {
    const worst = (m: Map<string, ErrAcc>): ErrorStat | null => {
      let w: ErrorStat | null = null;
      for (const o of l.outputs) {
        const acc = m.get(o);
        if (!acc) continue;
        const e = errStat(o, acc);
        if (!w || (e.rel_l2 ?? Infinity) > (w.rel_l2 ?? Infinity)) w = e;
      }
      return w;
    };
    const fb = res.fallbacks.find((f) => f.index === l.index);
    return { index: l.index, layer: l.name, op_type: l.opType, precision: res.precisions[l.index]!, fallback_reason: fb?.reason ?? null, local: worst(errs.local), end_to_end: worst(errs.e2e) };
  });
  const outputs = [...graphOut].flatMap((t) => {
    const acc = errs.e2e.get(t);
    if (!acc) return [];
    const e = errStat(t, acc);
    const thr = DEFAULT_MAX_REL_L2.int8;
    return [{ ...e, passed: e.rel_l2 !== null && e.rel_l2 <= thr && e.new_nonfinite === 0, threshold: thr }];
  });

  // 3. per-tensor checks
  const randomOrFew = source.random || stats.batches < FEW_BATCHES;
  const tensorChecks: TensorCheck[] = [];
  const observedNames = new Set(stats.histograms.keys());
  const allActs = [...stats.histograms.keys(), ...stats.unobservable];
  const layerByIndex = (i: number) => layers[i]!;
  for (const t of allActs) {
    const pi = p.model.graph.producer.get(t);
    const producer = pi === undefined ? null : layerByIndex(pi);
    const consumers = (p.model.graph.consumers.get(t) ?? []).map(layerByIndex);
    const around = [...(producer ? [producer] : []), ...consumers];
    // a Q/DQ model quantizes exactly the tensors its QuantizeLinear nodes read (those with a scale), whatever layers TensorRT runs in int8
    const quantized = a.quantizedLayers ? cache.scales.has(t) : around.some((l) => res.precisions[l.index] === qt);
    const scale = cache.scales.get(t);
    const cacheAmax = scale === undefined ? null : (cache.amax?.get(t) ?? scaleToAmax(scale));
    const flags: TensorFlag[] = [];
    const h = stats.histograms.get(t);
    let observed: TensorCheck["observed"] = null;
    let quality: TensorCheck["quality"] = null;
    let calibrators: TensorCheck["calibrators"] = null;
    let best: CalibAlgo | null = null;
    if (!observedNames.has(t) || !h) {
      flags.push({ code: "unobservable", severity: "warning", message: `its values cannot be read back from onnxruntime (${p.types.get(t)?.dtype}); not checked` });
    } else {
      const p99 = percentileAmax(h, { percentile: 99 }), p999 = percentileAmax(h, { percentile: 99.9 }), p9999 = percentileAmax(h, { percentile: 99.99 });
      observed = { max: h.max, p99, p99_9: p999, p99_99: p9999, values: h.total, non_finite: h.nonFinite };
      if (h.nonFinite > 0) flags.push({ code: "non-finite", severity: "warning", message: `${h.nonFinite} NaN/Inf values during calibration (skipped): the FP32 model itself overflows on this data` });
      const choices = chooseAll(h, { percentile });
      calibrators = Object.fromEntries(CALIB_ALGOS.map((al) => [al, rangeQuality(h, choices[al])])) as Record<CalibAlgo, RangeQuality>;
      const ratioOf = (amax: number) => (p999 > 0 ? amax / p999 : amax > 0 && h.total > 0 && h.max > 0 ? Infinity : null);
      let bestScore = -Infinity;
      for (const al of CALIB_ALGOS) {
        const q = calibrators[al];
        if (harmfulFlags(q, ratioOf(q.amax), th, a.qtype).length > 0) continue;
        const score = (q.bulk_sqnr_db ?? 0) - 1e-9 * q.clipped_fraction;
        if (score > bestScore) (bestScore = score), (best = al);
      }
      if (cacheAmax !== null) {
        const q = rangeQuality(h, cacheAmax);
        const ratio = ratioOf(cacheAmax);
        quality = { ...q, range_ratio: ratio === null ? null : num(ratio) };
        if (!(cacheAmax > 0)) {
          if (h.max > 0) flags.push({ code: "zero-range", severity: "warning", message: `the cache's range is 0 but the data reaches ${fmtNum(h.max)}; int8 layers around it fall back` });
        } else {
          for (const f of harmfulFlags(q, ratio, th, a.qtype)) {
            flags.push(quantized ? f : { ...f, severity: "warning", message: `${f.message} (not quantized in this plan: no int8 layer reads or writes it)` });
          }
        }
      }
    }
    if (scale === undefined) {
      const fb = around.filter((l) => res.fallbacks.some((f) => f.index === l.index && f.tensor === t)).map((l) => l.name);
      flags.push({ code: "missing", severity: "warning", message: `not in the cache${fb.length ? `: ${fb.join(", ")} fall${fb.length === 1 ? "s" : ""} back to ${res.fallback}` : ""}` });
    }
    tensorChecks.push({
      tensor: t,
      producer: producer?.name ?? null,
      consumers: consumers.map((l) => l.name),
      quantized,
      in_cache: scale !== undefined,
      cache_amax: cacheAmax,
      cache_scale: scale ?? null,
      observed,
      quality,
      calibrators,
      best_algo: best,
      flags,
      impact: null,
      histogram: h && observedNames.has(t) ? histogramSummary(h) : null,
    });
  }
  // impact: the largest local error of the int8 layers around each tensor
  const localOf = new Map(layerChecks.map((l) => [l.layer, l.local?.rel_l2 ?? null]));
  for (const tc of tensorChecks) {
    let m: number | null = null;
    for (const name of [tc.producer, ...tc.consumers]) {
      if (name === null) continue;
      const l = layerChecks.find((x) => x.layer === name);
      if (!l || l.precision !== qt) continue;
      const v = localOf.get(name);
      if (v !== null && v !== undefined && (m === null || v > m)) m = v;
    }
    tc.impact = m;
  }

  // 4. ranking and suggestions
  const flagged = tensorChecks.filter((t) => t.flags.length > 0);
  const isHarmful = (t: TensorCheck) => t.flags.some((f) => f.severity === "harmful");
  const ranked = [...flagged].sort((x, y) => Number(isHarmful(y)) - Number(isHarmful(x)) || (y.impact ?? -1) - (x.impact ?? -1) || (x.quality?.bulk_sqnr_db ?? Infinity) - (y.quality?.bulk_sqnr_db ?? Infinity));
  const worst: WorstTensor[] = ranked.map((t, k) => ({
    rank: k + 1,
    tensor: t.tensor,
    flags: t.flags.map((f) => f.code),
    harmful: isHarmful(t),
    summary: t.flags.map((f) => `${f.code}: ${f.message}`).join("; "),
    suggestion: suggest(t, { cacheAlgo, randomOrFew, model: a.label ?? a.model, qdq: a.quantizedLayers !== undefined, fallback: res.fallback, int8Layers: new Set(layers.filter((l) => res.precisions[l.index] === qt).map((l) => l.name)), hooks }),
  }));
  if (res.unknownInCache.length) {
    warn(`${res.unknownInCache.length} cache entr${res.unknownInCache.length === 1 ? "y names" : "ies name"} no tensor of ${a.label ?? a.model} (stale cache, or one made for another model/export): ${res.unknownInCache.slice(0, 5).map((x) => `'${x}'`).join(", ")}${res.unknownInCache.length > 5 ? ", ..." : ""}`);
  }
  const failingOut = outputs.filter((o) => !o.passed);
  if (failingOut.length) {
    warn(`end to end, graph output${failingOut.length === 1 ? "" : "s"} ${failingOut.map((o) => `'${o.tensor}' (rel L2 ${fmtNum(o.rel_l2)})`).join(", ")} exceed${failingOut.length === 1 ? "s" : ""} the int8 threshold ${DEFAULT_MAX_REL_L2.int8} on the checked batch${batches.length === 1 ? "" : "es"}`);
  }
  const harmfulTensors = tensorChecks.filter(isHarmful).map((t) => t.tensor);
  return {
    format: CALIB_CHECK_FORMAT,
    model: a.model,
    cache: info,
    cache_algo: cacheAlgo,
    expected_algo: expected,
    algorithm_mismatch: mismatch,
    data: source.description,
    random_data: source.random,
    batches: stats.batches,
    check_batches: batches.length,
    thresholds: th,
    int8: { mode: "implicit", int8_layers: res.int8Layers, layers: layers.length, fallback_precision: res.fallback, activation_range: qt === "fp8" ? "[-448,448]" : res.range === 128 ? "[-128,127]" : "[-127,127]", ...(qt === "fp8" ? { type: "fp8" as const } : {}) },
    tensors: tensorChecks,
    layers: layerChecks,
    outputs,
    missing_from_cache: res.missingFromCache,
    unknown_in_cache: res.unknownInCache,
    flagged: flagged.map((t) => ({ tensor: t.tensor, flags: t.flags.map((f) => f.code), harmful: isHarmful(t) })),
    harmful_tensors: harmfulTensors,
    worst,
    warnings,
    passed: harmfulTensors.length === 0,
  };
}

function suggest(t: TensorCheck, ctx: { cacheAlgo: CalibAlgo | null; randomOrFew: boolean; model: string; qdq?: boolean; fallback: Precision; int8Layers: Set<string>; hooks: Pick<Hooks, "spell"> }): string {
  const parts: string[] = [];
  const codes = new Set(t.flags.map((f) => f.code));
  // the advice is kept in the result: options spelled as the caller does (hooks.spell)
  const sp = (x: ReturnType<typeof optionText>) => spelled(ctx.hooks, x);
  const more = ctx.randomOrFew ? sp(optionText`calibrate on more real data (${opt("calibData")} with a few hundred samples)`) : "";
  const around = [t.producer, ...t.consumers].filter((x): x is string => x !== null && ctx.int8Layers.has(x));
  const pin = around.length ? sp(optionText`keep ${around.join(", ")} out of int8: ${opt("layerPrecisions")} ${around.map((l) => `'${l}:fp16'`).join(" ")}`) : "";
  if (codes.has("clipping") || codes.has("wasted-range") || codes.has("low-sqnr")) {
    const cur = t.quality;
    const best = t.best_algo && t.calibrators ? t.calibrators[t.best_algo] : null;
    const same = best && cur && Math.abs(best.amax - cur.amax) <= 1e-6 * Math.max(best.amax, cur.amax);
    if (best && cur && !same) {
      const gain = (best.bulk_sqnr_db ?? 0) - (cur.bulk_sqnr_db ?? 0);
      parts.push(
        sp(optionText`recalibrate with ${opt("algo")} ${t.best_algo} (amax ${fmtNum(best.amax)}: bulk SQNR ${fmtDb(cur.bulk_sqnr_db)} -> ${fmtDb(best.bulk_sqnr_db)} dB${Number.isFinite(gain) ? `, ${gain >= 0 ? "+" : ""}${gain.toFixed(1)} dB` : ""}, clipped ${(100 * best.clipped_fraction).toPrecision(2)}%)`),
      );
    } else if (pin) parts.push(`no calibrator fixes it: ${pin}`);
    else parts.push("no calibrator fixes it");
    if (more) parts.push(more);
  }
  if (codes.has("missing")) parts.push(ctx.qdq ? `not quantized in ${ctx.model}: add a QuantizeLinear/DequantizeLinear of it if a layer reading it should run quantized` : `rebuild the cache for this model (\`trt-debug calib build ${ctx.model} -o FILE.cache\`)`);
  if (codes.has("zero-range")) parts.push(sp(optionText`it was all zeros during calibration: calibrate with data that exercises it${ctx.randomOrFew ? [" (real inputs via ", opt("calibData"), ")"] : ""}`));
  if (codes.has("non-finite")) parts.push(`fix the FP32 overflow first (trt-debug validate ${ctx.model})`);
  if (codes.has("unobservable")) parts.push("none (cannot be observed)");
  return parts.join("; ") || "none";
}
