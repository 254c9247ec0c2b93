/**
 * Calibration algorithms: turn a histogram of |x| into an amax (the clipping threshold; the
 * INT8 scale is s = amax / 127). Semantics: docs/calibration.md
 * (TensorRT's calibrators); where TensorRT documents nothing, NVIDIA's open implementation
 * (pytorch-quantization `calib/histogram.py`). docs/calibration.md lists every deviation.
 *
 * Everything here loops over histogram bins only, never over tensor elements.
 */
import { UserError } from "../core/errors.js";

/** The calibration algorithms trt-debug implements. */
export type CalibAlgo = "entropy" | "minmax" | "percentile" | "mse";

/** All algorithms, in the order reports list them. */
export const CALIB_ALGOS: readonly CalibAlgo[] = ["entropy", "minmax", "percentile", "mse"];

/**
 * The `<Algorithm>` part of the TensorRT cache header (`TRT-8601-EntropyCalibration2`) that
 * trt-debug writes for each algorithm. EntropyCalibration2 and MinMaxCalibration are
 * TensorRT's own names; TensorRT has no percentile or MSE calibrator, so
 * "PercentileCalibration" and "MSECalibration" are trt-debug's names (TensorRT will refuse
 * such a cache; its scales can still be used through trt-debug or converted to Q/DQ).
 */
export const CACHE_ALGORITHM_NAMES: Readonly<Record<CalibAlgo, string>> = {
  entropy: "EntropyCalibration2",
  minmax: "MinMaxCalibration",
  percentile: "PercentileCalibration",
  mse: "MSECalibration",
};

/** The algorithm behind a cache header name, or undefined (e.g. "EntropyCalibration", "LegacyCalibration"). */
export function calibAlgoFromCacheName(name: string): CalibAlgo | undefined {
  for (const a of CALIB_ALGOS) if (CACHE_ALGORITHM_NAMES[a] === name) return a;
  return undefined;
}

/** Parse a user-given algorithm name (flag value); UserError naming the choices otherwise. */
export function parseCalibAlgo(value: string, option = "algo"): CalibAlgo {
  const v = value.trim().toLowerCase();
  for (const a of CALIB_ALGOS) if (a === v) return a;
  const byCache = calibAlgoFromCacheName(value.trim());
  if (byCache) return byCache;
  throw new UserError(
    `${option} ${JSON.stringify(value)} is not a calibration algorithm; use one of ${CALIB_ALGOS.join(", ")}`,
    option,
  );
}

/**
 * What the algorithms need from a histogram of |x|: bin j covers [j·binWidth, (j+1)·binWidth)
 * (the last bin also holds everything beyond), and the exact max |x| seen (for minmax).
 * An empty histogram (no bins, binWidth 0) stands for "no non-zero finite value seen".
 */
export interface HistogramLike {
  readonly counts: ArrayLike<number>;
  readonly binWidth: number;
  /** Exact max |x| over the finite values seen (0 if none). */
  readonly max: number;
}

/** Knobs; the defaults are TensorRT's / NVIDIA's. */
export interface CalibOptions {
  /** Percentile for "percentile", in (0, 100]. Default 99.99. */
  percentile?: number;
  /** First candidate end bin for entropy and mse. Default 128. */
  startBin?: number;
  /** Number of quantization levels of the positive half for entropy's Q (2^(bits-1)). Default 128. */
  quantBins?: number;
}

export const DEFAULT_PERCENTILE = 99.99;
export const DEFAULT_START_BIN = 128;
export const DEFAULT_QUANT_BINS = 128;

function isEmpty(h: HistogramLike): boolean {
  return h.counts.length === 0 || !(h.binWidth > 0);
}

function checkIntOption(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new UserError(`${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

// ---------------------------------------------------------------------------------------
// minmax

/** minmax: amax = max |x| over all batches (exact, not a bin edge). 0 for an empty histogram. */
export function minmaxAmax(h: HistogramLike): number {
  return h.max > 0 && Number.isFinite(h.max) ? h.max : 0;
}

// ---------------------------------------------------------------------------------------
// entropy (EntropyCalibration2)

/** The result of the KL search: kl[k] is KL(P‖Q) for the candidate keeping i = firstBin + k bins. */
export interface EntropySearch {
  /** Number of bins kept by the first candidate (startBin). */
  firstBin: number;
  /** KL divergence (nats) per candidate; +Infinity where P > 0 and Q = 0 somewhere. */
  kl: Float64Array;
  /** Chosen number of bins kept (smallest KL, ties to the largest). */
  bins: number;
  /** amax = bins · binWidth, the upper edge of the last kept bin. */
  amax: number;
}

/**
 * Entropy calibration (TensorRT's EntropyCalibration2), as docs/calibration.md states:
 *  1. copy bin 1's count into bin 0 (drops the spike of zeros);
 *  2. for every candidate i = startBin .. nbins (i = number of bins kept):
 *     P = bins[0..i-1], with the mass of bins i.. added to bin i-1;
 *     Q = bins[0..i-1] merged into quantBins groups (group of bin j = floor(j·quantBins / i),
 *         which is NVIDIA's `np.digitize(range(i), np.linspace(0, i, quantBins+1)) - 1`),
 *         each group's count spread evenly over its non-empty bins (empty bins stay 0);
 *     P and Q normalized; KL(P‖Q) = Σ p ln(p/q) over p > 0, +Infinity if some p > 0 has q = 0;
 *  3. pick the i with the smallest KL, ties to the largest i; amax = i · binWidth.
 * With fewer than startBin bins there is no candidate and the whole range is kept.
 */
export function entropySearch(h: HistogramLike, opts: CalibOptions = {}): EntropySearch {
  const startBin = checkIntOption("startBin", opts.startBin ?? DEFAULT_START_BIN, 1);
  const nq = checkIntOption("quantBins", opts.quantBins ?? DEFAULT_QUANT_BINS, 1);
  const n = h.counts.length;
  const w = h.binWidth;
  if (isEmpty(h)) return { firstBin: startBin, kl: new Float64Array(0), bins: 0, amax: 0 };
  if (n < startBin) return { firstBin: startBin, kl: new Float64Array(0), bins: n, amax: n * w };

  const bins = Float64Array.from(h.counts);
  if (n >= 2) bins[0] = bins[1];

  // prefix[j] = Σ bins[0..j-1]; nz[j] = number of non-empty bins among bins[0..j-1].
  const prefix = new Float64Array(n + 1);
  const nz = new Int32Array(n + 1);
  const lnb = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const b = bins[j]!;
    prefix[j + 1] = prefix[j]! + b;
    nz[j + 1] = nz[j]! + (b !== 0 ? 1 : 0);
    lnb[j] = b > 0 ? Math.log(b) : 0;
  }
  const total = prefix[n]!;
  const kl = new Float64Array(n - startBin + 1);
  if (!(total > 0)) {
    // Nothing left after dropping the zero spike: every candidate is equally (un)informative.
    kl.fill(0);
    return { firstBin: startBin, kl, bins: n, amax: n * w };
  }

  const lnT = Math.log(total);
  for (let i = startBin; i <= n; i++) {
    const z = prefix[i]!; // Σ Q before normalization = Σ bins[0..i-1]
    const tail = total - z;
    if (!(z > 0)) {
      kl[i - startBin] = Infinity; // P has mass (the tail) where Q has none
      continue;
    }
    const last = i - 1;
    const pLast = bins[last]! + tail;
    if (pLast > 0 && bins[last] === 0) {
      kl[i - startBin] = Infinity; // P > 0, Q = 0 at bin i-1 (scipy's rel_entr gives inf)
      continue;
    }
    // Σ_{j<i-1, b_j>0} (b_j/T)·ln((b_j/T)/(Q_g/Z)) = (1/T)·Σ b_j (ln b_j − ln Q_g) + (B/T)(ln Z − ln T)
    let acc = 0;
    let qLast = 0;
    for (let g = 0; g < nq; g++) {
      const lo = Math.ceil((g * i) / nq);
      const hi = Math.min(Math.ceil(((g + 1) * i) / nq), i);
      if (hi <= lo) continue;
      const c = nz[hi]! - nz[lo]!;
      if (c === 0) continue;
      const lnQ = Math.log((prefix[hi]! - prefix[lo]!) / c);
      const end = hi === i ? hi - 1 : hi;
      for (let j = lo; j < end; j++) {
        const b = bins[j]!;
        if (b > 0) acc += b * (lnb[j]! - lnQ);
      }
      if (hi === i) qLast = (prefix[hi]! - prefix[lo]!) / c;
    }
    const before = prefix[last]!; // Σ b_j for j < i-1
    let d = acc / total + (before / total) * (Math.log(z) - lnT);
    if (pLast > 0) {
      // p/q computed as one ratio so that P = Q gives exactly 0 (keeps exact ties exact).
      const p = pLast / total;
      d += p * Math.log(p / (qLast / z));
    }
    kl[i - startBin] = d;
  }

  let best = 0;
  for (let k = 1; k < kl.length; k++) if (kl[k]! <= kl[best]!) best = k;
  const chosen = startBin + best;
  return { firstBin: startBin, kl, bins: chosen, amax: chosen * w };
}

/** Entropy (EntropyCalibration2) amax; see entropySearch. */
export function entropyAmax(h: HistogramLike, opts: CalibOptions = {}): number {
  return entropySearch(h, opts).amax;
}

// ---------------------------------------------------------------------------------------
// percentile

/**
 * percentile: amax = left edge (j · binWidth) of the first bin j whose cumulative count reaches
 * p % of all counted values (cum_j · 100 >= p · total). Counts are used as collected (bin 0
 * is not replaced). p = 100 gives the left edge of the last non-empty bin.
 */
export function percentileAmax(h: HistogramLike, opts: CalibOptions = {}): number {
  const p = opts.percentile ?? DEFAULT_PERCENTILE;
  if (!(p > 0 && p <= 100)) throw new UserError(`percentile must be in (0, 100], got ${p}`);
  if (isEmpty(h)) return 0;
  const n = h.counts.length;
  let total = 0;
  for (let j = 0; j < n; j++) total += h.counts[j]!;
  if (!(total > 0)) return 0;
  // cum·100 >= p·total rather than cum/total >= p/100: the products of small integers and a
  // decimal p round to the intended value (99.9 % of 10000 is reached at 9990, not 9991).
  const target = p * total;
  let cum = 0;
  for (let j = 0; j < n; j++) {
    cum += h.counts[j]!;
    if (cum * 100 >= target) return j * h.binWidth;
  }
  return (n - 1) * h.binWidth; // unreachable for p <= 100 (cum/total reaches 1)
}

// ---------------------------------------------------------------------------------------
// mse

/** round(x) with ties to even, as TensorRT / ONNX QuantizeLinear round. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Quantize→dequantize one non-negative value with scale s and largest code qmax. */
function qdq(c: number, s: number, qmax: number): number {
  const q = Math.min(roundHalfEven(c / s), qmax);
  return q * s;
}

/**
 * mse: amax = the bin centre c_i = (i + 0.5)·binWidth, over candidates i = startBin .. nbins-1,
 * minimizing the count-weighted mean of (c_j − qdq(c_j))² over all bins j, where
 * qdq(c) = min(round_half_even(c / s), 127) · s and s = amax / 127. Ties go to the smallest
 * candidate (NVIDIA's np.argmin). With fewer than startBin + 1 bins the last centre is used.
 */
export function mseAmax(h: HistogramLike, opts: CalibOptions = {}): number {
  const startBin = checkIntOption("startBin", opts.startBin ?? DEFAULT_START_BIN, 0);
  if (isEmpty(h)) return 0;
  const n = h.counts.length;
  const w = h.binWidth;
  const idx: number[] = [];
  let total = 0;
  for (let j = 0; j < n; j++) {
    const c = h.counts[j]!;
    if (c > 0) {
      idx.push(j);
      total += c;
    }
  }
  if (n <= startBin || !(total > 0)) return (n - 0.5) * w;
  let bestErr = Infinity;
  let bestI = startBin;
  for (let i = startBin; i < n; i++) {
    const amax = (i + 0.5) * w;
    const s = amax / 127;
    let err = 0;
    for (const j of idx) {
      const c = (j + 0.5) * w;
      const e = c - qdq(c, s, 127);
      err += h.counts[j]! * e * e;
    }
    err /= total;
    if (err < bestErr) {
      bestErr = err;
      bestI = i;
    }
  }
  return (bestI + 0.5) * w;
}

// ---------------------------------------------------------------------------------------
// dispatch

/** amax of one algorithm. */
export function calibrate(h: HistogramLike, algo: CalibAlgo, opts: CalibOptions = {}): number {
  switch (algo) {
    case "entropy":
      return entropyAmax(h, opts);
    case "minmax":
      return minmaxAmax(h);
    case "percentile":
      return percentileAmax(h, opts);
    case "mse":
      return mseAmax(h, opts);
  }
}

/** amax of every algorithm (for `calib check` and comparisons). */
export function chooseAll(h: HistogramLike, opts: CalibOptions = {}): Record<CalibAlgo, number> {
  return {
    entropy: entropyAmax(h, opts),
    minmax: minmaxAmax(h),
    percentile: percentileAmax(h, opts),
    mse: mseAmax(h, opts),
  };
}

// ---------------------------------------------------------------------------------------
// quality of a given amax

/** How well an amax represents a histogram (all values approximated by their bin centres). */
export interface QuantizationQuality {
  amax: number;
  /** 10·log10(Σ n c² / Σ n (c − qdq(c))²) in dB; +Infinity when the error is 0. */
  sqnrDb: number;
  /** Count-weighted mean squared error Σ n (c − qdq(c))² / Σ n. */
  mse: number;
  /** Fraction of counted values whose bin centre exceeds amax (clipped to ±amax). */
  clippedFraction: number;
  /** Fraction of counted values whose bin centre quantizes to code 0 (c / s <= 0.5). */
  zeroFraction: number;
  /** Number of values the fractions are of. */
  total: number;
}

/**
 * SQNR of quantize→dequantize at `amax` over the histogram, using bin centres c_j = (j+0.5)·w:
 * s = amax/127, qdq(c) = min(round_half_even(c/s), 127)·s. Because the histogram holds |x|,
 * only the positive half of the INT8 range is modelled ([-127, 127]; the activation code -128
 * is not used). amax 0 maps every value to 0 (SQNR 0 dB, all clipped, all zero). An empty
 * histogram gives SQNR +Infinity and all fractions 0.
 */
export function sqnrOfQuantization(h: HistogramLike, amax: number): QuantizationQuality {
  const n = isEmpty(h) ? 0 : h.counts.length;
  const w = h.binWidth;
  let total = 0;
  let signal = 0;
  let noise = 0;
  let clipped = 0;
  let zero = 0;
  const s = amax / 127;
  for (let j = 0; j < n; j++) {
    const cnt = h.counts[j]!;
    if (!(cnt > 0)) continue;
    const c = (j + 0.5) * w;
    total += cnt;
    signal += cnt * c * c;
    if (!(amax > 0)) {
      noise += cnt * c * c;
      clipped += cnt;
      zero += cnt;
      continue;
    }
    const e = c - qdq(c, s, 127);
    noise += cnt * e * e;
    if (c > amax) clipped += cnt;
    if (c / s <= 0.5) zero += cnt;
  }
  if (total === 0) return { amax, sqnrDb: Infinity, mse: 0, clippedFraction: 0, zeroFraction: 0, total: 0 };
  return {
    amax,
    sqnrDb: noise === 0 ? Infinity : 10 * Math.log10(signal / noise),
    mse: noise / total,
    clippedFraction: clipped / total,
    zeroFraction: zero / total,
    total,
  };
}
