/**
 * Streaming histogram of |x| as TensorRT's EntropyCalibration2 and NVIDIA's open
 * implementation (pytorch-quantization `HistogramCalibrator`) build it:
 *
 *  - the first batch with a non-zero finite max sets binWidth = max|x| / numBins (2048);
 *  - a later batch whose max lies beyond the last bin appends bins of the SAME width until
 *    the max is covered; the old counts stay where they are;
 *  - bin j counts |x| in [j·w, (j+1)·w); values at or beyond the last edge go to the last bin.
 *
 * Memory is one Float64Array of the current bin count, independent of the number of batches.
 * Element loops live in src/numeric (absMax, absHistogram); this file only loops over bins.
 *
 * Special values: NaN and ±Inf are skipped and counted in `nonFinite`. Batches whose finite
 * values are all zero (or that hold only NaN/Inf) do not set a bin width: their zeros are
 * remembered and put into bin 0 once a non-zero batch fixes the width. If no non-zero value
 * is ever seen the histogram stays empty (numBins 0, binWidth 0, max 0) and every calibrator
 * returns amax 0 for it (see docs/calibration.md).
 *
 * Safety cap (a trt-debug addition): if appending bins would exceed `maxBins` (default
 * 8 × numBins = 16384), adjacent bins are merged in pairs (binWidth doubles, repeatedly) until
 * the max fits. Counts are preserved exactly; edges stay aligned with the original grid.
 * NVIDIA's code grows without bound; this only triggers when a batch's max exceeds the first
 * batch's by more than 8×.
 */
import { absHistogram, absMax } from "../numeric/index.js";
import type { HistogramLike } from "./algorithms.js";

export const DEFAULT_HISTOGRAM_BINS = 2048;
/** Default cap on the bin count, as a multiple of the initial bin count. */
export const DEFAULT_MAX_BINS_FACTOR = 8;

export interface AbsHistogramOptions {
  /** Bins over [0, max|x|] of the first non-zero batch. Default 2048. */
  numBins?: number;
  /** Most bins the histogram may grow to before merging bins. Default 8 × numBins. */
  maxBins?: number;
}

/** A plain-data snapshot (for JSON, tests, or combining later). */
export interface AbsHistogramData {
  counts: number[];
  binWidth: number;
  max: number;
  total: number;
  nonFinite: number;
  batches: number;
  /** Times adjacent bins were merged because of maxBins. */
  merges: number;
}

export class AbsHistogram implements HistogramLike {
  readonly initialBins: number;
  readonly maxBins: number;
  #counts: Float64Array = new Float64Array(0);
  #width = 0;
  #max = 0;
  #total = 0;
  #nonFinite = 0;
  #batches = 0;
  #merges = 0;
  /** Finite values counted before a bin width existed (all exactly zero). */
  #pendingZeros = 0;
  #scratch = new Float64Array(1);

  constructor(opts: AbsHistogramOptions = {}) {
    const numBins = opts.numBins ?? DEFAULT_HISTOGRAM_BINS;
    if (!Number.isInteger(numBins) || numBins < 1) throw new RangeError(`numBins must be a positive integer, got ${numBins}`);
    const maxBins = opts.maxBins ?? DEFAULT_MAX_BINS_FACTOR * numBins;
    if (!Number.isInteger(maxBins) || maxBins < numBins) {
      throw new RangeError(`maxBins must be an integer >= numBins (${numBins}), got ${maxBins}`);
    }
    this.initialBins = numBins;
    this.maxBins = maxBins;
  }

  /** A histogram with given counts (e.g. restored from a snapshot, or for tests). */
  static fromCounts(
    counts: ArrayLike<number>,
    binWidth: number,
    extra: Partial<Omit<AbsHistogramData, "counts" | "binWidth">> & { numBins?: number; maxBins?: number } = {},
  ): AbsHistogram {
    const numBins = extra.numBins ?? Math.max(counts.length, 1);
    const h = new AbsHistogram({ numBins, maxBins: extra.maxBins ?? Math.max(DEFAULT_MAX_BINS_FACTOR * numBins, counts.length) });
    if (counts.length > 0 && !(binWidth > 0 && Number.isFinite(binWidth))) {
      throw new RangeError(`binWidth must be a positive finite number, got ${binWidth}`);
    }
    h.#counts = Float64Array.from(counts);
    h.#width = counts.length > 0 ? binWidth : 0;
    let sum = 0;
    let last = -1;
    for (let j = 0; j < h.#counts.length; j++) {
      sum += h.#counts[j]!;
      if (h.#counts[j]! > 0) last = j;
    }
    h.#total = extra.total ?? sum;
    h.#max = extra.max ?? (last + 1) * h.#width;
    h.#nonFinite = extra.nonFinite ?? 0;
    h.#batches = extra.batches ?? 0;
    h.#merges = extra.merges ?? 0;
    return h;
  }

  /** Add one batch. One pass for the max and one for the counts, both in src/numeric. */
  collect(x: Float32Array): void {
    this.#batches++;
    if (x.length === 0) return;
    const m = absMax(x);
    if (this.#counts.length === 0) {
      if (!(m > 0 && Number.isFinite(m))) {
        // All finite values are zero (or there are none): count them without a bin width.
        this.#scratch[0] = 0;
        const skipped = absHistogram(x, this.#scratch, 1);
        this.#nonFinite += skipped;
        this.#pendingZeros += x.length - skipped;
        this.#total += x.length - skipped;
        return;
      }
      this.#width = m / this.initialBins;
      this.#counts = new Float64Array(this.initialBins);
      this.#counts[0] = this.#pendingZeros;
      this.#pendingZeros = 0;
    } else if (m > this.upperEdge && Number.isFinite(m)) {
      this.#grow(m);
    }
    const skipped = absHistogram(x, this.#counts, this.#width);
    this.#nonFinite += skipped;
    this.#total += x.length - skipped;
    if (Number.isFinite(m) && m > this.#max) this.#max = m;
  }

  #grow(m: number): void {
    const n = this.#counts.length;
    let need = Math.max(n, Math.ceil(m / this.#width));
    if (need <= this.maxBins) {
      if (need > n) {
        const c = new Float64Array(need);
        c.set(this.#counts);
        this.#counts = c;
      }
      return;
    }
    let f = 1;
    do {
      f *= 2;
      need = Math.ceil(m / (this.#width * f));
    } while (need > this.maxBins);
    const c = new Float64Array(Math.max(need, Math.ceil(n / f)));
    for (let j = 0; j < n; j++) c[Math.floor(j / f)]! += this.#counts[j]!;
    this.#counts = c;
    this.#width *= f;
    this.#merges += Math.log2(f);
  }

  /** Counts per bin (a live view: do not modify). */
  get counts(): Float64Array {
    return this.#counts;
  }
  /** Width of every bin; 0 while empty. */
  get binWidth(): number {
    return this.#width;
  }
  /** Current number of bins; 0 while empty. */
  get numBins(): number {
    return this.#counts.length;
  }
  /** Upper edge of the last bin = numBins · binWidth. */
  get upperEdge(): number {
    return this.#counts.length * this.#width;
  }
  /** Exact max |x| over all finite values seen (0 if none). */
  get max(): number {
    return this.#max;
  }
  /** Finite values counted (zeros included). */
  get total(): number {
    return this.#total;
  }
  /** NaN and ±Inf values skipped. */
  get nonFinite(): number {
    return this.#nonFinite;
  }
  /** Batches collected (empty ones included). */
  get batches(): number {
    return this.#batches;
  }
  /** Times adjacent bins were merged (binWidth doubled) because of maxBins. */
  get merges(): number {
    return this.#merges;
  }
  /** True while no non-zero finite value has been seen (every calibrator gives amax 0). */
  get isEmpty(): boolean {
    return this.#counts.length === 0;
  }

  toJSON(): AbsHistogramData {
    return {
      counts: Array.from(this.#counts),
      binWidth: this.#width,
      max: this.#max,
      total: this.#total,
      nonFinite: this.#nonFinite,
      batches: this.#batches,
      merges: this.#merges,
    };
  }
}
