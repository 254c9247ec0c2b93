import { describe, expect, it } from "vitest";
import { AbsHistogram } from "../src/calibration/histogram.js";
import { chooseAll, entropySearch } from "../src/calibration/algorithms.js";
import { fixtureRandom as rng } from "./support/random.js";


function normalBatch(r: () => number, n: number, sigma: number): Float32Array {
  const x = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const u = Math.max(r(), 1e-12);
    x[k] = sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return x;
}

/** Independent reference binning (the test's own loop): bin = floor(|x|/w), clamped. */
function refCounts(batches: Float32Array[], w: number, n: number): Float64Array {
  const c = new Float64Array(n);
  for (const x of batches) {
    for (const v of x) {
      if (!Number.isFinite(v)) continue;
      c[Math.min(n - 1, Math.floor(Math.abs(v) / w))]! += 1;
    }
  }
  return c;
}

describe("AbsHistogram", () => {
  it("first batch: 2048 bins of width max|x|/2048, max in the last bin", () => {
    const x = Float32Array.from([0, -0.5, 0.25, 1, -2, 3.999, -4]);
    const h = new AbsHistogram();
    h.collect(x);
    expect(h.numBins).toBe(2048);
    expect(h.binWidth).toBe(4 / 2048);
    expect(h.upperEdge).toBe(4);
    expect(h.max).toBe(4);
    expect(h.total).toBe(7);
    expect(h.nonFinite).toBe(0);
    expect(Array.from(h.counts)).toEqual(Array.from(refCounts([x], 4 / 2048, 2048)));
    expect(h.counts[2047]).toBe(2); // 3.999 and the max 4 (clamped into the last bin)
    expect(h.counts[0]).toBe(1);
    expect(h.counts[512]).toBe(1); // 1.0
  });

  it("a later batch with a larger max appends bins of the same width and keeps the counts", () => {
    const r = rng(1);
    const b1 = normalBatch(r, 5000, 1);
    const h = new AbsHistogram();
    h.collect(b1);
    const w = h.binWidth;
    const m1 = h.max;
    const before = Float64Array.from(h.counts);

    const b2 = normalBatch(r, 5000, 1);
    b2[17] = -2.5 * m1; // a larger max
    h.collect(b2);
    expect(h.binWidth).toBe(w); // same width
    expect(h.numBins).toBe(Math.ceil(Math.abs(b2[17]!) / w));
    expect(h.numBins).toBeGreaterThan(2048);
    expect(h.upperEdge).toBeGreaterThanOrEqual(h.max);
    expect(h.max).toBe(Math.abs(b2[17]!));
    // Old counts are still there: counts = batch-1 counts (zero-extended) + batch-2 counts.
    const only2 = refCounts([b2], w, h.numBins);
    for (let j = 0; j < h.numBins; j++) expect(h.counts[j]).toBe((before[j] ?? 0) + only2[j]!);
    // A smaller batch afterwards changes nothing about the bins.
    h.collect(normalBatch(r, 100, 0.1));
    expect(h.binWidth).toBe(w);
    expect(h.total).toBe(10100);
    expect(h.batches).toBe(3);
  });

  it("memory does not depend on the number of batches", () => {
    const r = rng(2);
    const h = new AbsHistogram();
    const first = normalBatch(r, 1000, 1);
    first[0] = 10; // max of every later batch stays below this
    h.collect(first);
    const bytes = h.counts.buffer.byteLength;
    for (let k = 0; k < 300; k++) h.collect(normalBatch(r, 1000, 1));
    expect(h.counts.buffer.byteLength).toBe(bytes);
    expect(h.numBins).toBe(2048);
    expect(h.batches).toBe(301);
    expect(h.total).toBe(301 * 1000);
    let sum = 0;
    for (const c of h.counts) sum += c;
    expect(sum).toBe(301 * 1000);
  });

  it("skips and counts NaN/Inf; the max is over finite values", () => {
    const h = new AbsHistogram();
    h.collect(Float32Array.from([1, Number.NaN, -3, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2]));
    expect(h.nonFinite).toBe(3);
    expect(h.total).toBe(3);
    expect(h.max).toBe(3);
    expect(h.binWidth).toBe(3 / 2048);
    let sum = 0;
    for (const c of h.counts) sum += c;
    expect(sum).toBe(3);
  });

  it("all-zero tensors: empty histogram, amax 0 everywhere; zeros go to bin 0 once a width exists", () => {
    const h = new AbsHistogram();
    h.collect(new Float32Array(100));
    h.collect(Float32Array.from([0, -0, Number.NaN]));
    expect(h.isEmpty).toBe(true);
    expect(h.numBins).toBe(0);
    expect(h.binWidth).toBe(0);
    expect(h.total).toBe(102);
    expect(h.nonFinite).toBe(1);
    expect(chooseAll(h)).toEqual({ entropy: 0, minmax: 0, percentile: 0, mse: 0 });
    h.collect(Float32Array.from([0, 1]));
    expect(h.isEmpty).toBe(false);
    expect(h.counts[0]).toBe(103);
    expect(h.counts[2047]).toBe(1);
    expect(h.total).toBe(104);
  });

  it("empty batches are counted but change nothing", () => {
    const h = new AbsHistogram();
    h.collect(new Float32Array(0));
    expect(h.batches).toBe(1);
    expect(h.isEmpty).toBe(true);
  });

  it("merges bins pairwise when growth would pass maxBins, keeping every count", () => {
    const h = new AbsHistogram({ numBins: 16, maxBins: 32 });
    const b1 = Float32Array.from([0.1, 0.5, 0.9, 1.0, 0.26]);
    h.collect(b1); // w = 1/16
    expect(h.binWidth).toBe(1 / 16);
    h.collect(Float32Array.from([1.5])); // needs 24 bins <= 32: grows, same width
    expect(h.numBins).toBe(24);
    expect(h.binWidth).toBe(1 / 16);
    h.collect(Float32Array.from([5])); // needs 80 bins > 32: merge ×4 → w = 1/4, 20 bins
    expect(h.binWidth).toBe(1 / 4);
    expect(h.numBins).toBe(20);
    expect(h.merges).toBe(2);
    // Old bins j (width 1/16) went to bin floor(j/4): 0.1→0, 0.26→1, 0.5→2, 0.9→3, and the
    // first max 1.0, which sat in the last old bin (15), → 3. New values at w = 1/4:
    // 1.5 was that batch's max, = the upper edge of 24 bins, so it sat in the last bin 23 → 5;
    // and 5 (= the new upper edge) → last bin 19.
    const expected = new Array<number>(20).fill(0);
    expected[0] = 1;
    expected[1] = 1;
    expected[2] = 1;
    expected[3] = 2;
    expected[5] = 1;
    expected[19] = 1;
    expect(Array.from(h.counts)).toEqual(expected);
    expect(h.max).toBe(5);
  });

  it("fromCounts and toJSON", () => {
    const h = AbsHistogram.fromCounts([1, 2, 0, 3], 0.5, { max: 1.9 });
    expect(h.max).toBe(1.9);
    expect(h.upperEdge).toBe(2);
    expect(h.toJSON()).toEqual({ counts: [1, 2, 0, 3], binWidth: 0.5, max: 1.9, total: 6, nonFinite: 0, batches: 0, merges: 0 });
  });

  it("end to end: |N(0,1)| over batches with one outlier; entropy clips it, minmax keeps it", () => {
    const r = rng(42);
    const h = new AbsHistogram();
    for (let k = 0; k < 20; k++) h.collect(normalBatch(r, 20000, 1));
    const outlier = new Float32Array(10);
    outlier[3] = 40;
    h.collect(outlier);
    const all = chooseAll(h);
    expect(all.minmax).toBe(40);
    expect(all.entropy).toBeGreaterThan(2);
    expect(all.entropy).toBeLessThan(20);
    expect(all.percentile).toBeGreaterThan(3);
    expect(all.percentile).toBeLessThan(5);
    expect(entropySearch(h).bins).toBeGreaterThanOrEqual(128);
  });
});
