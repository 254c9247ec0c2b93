import { describe, expect, it } from "vitest";
import {
  CACHE_ALGORITHM_NAMES,
  CALIB_ALGOS,
  calibAlgoFromCacheName,
  calibrate,
  chooseAll,
  entropyAmax,
  entropySearch,
  minmaxAmax,
  mseAmax,
  parseCalibAlgo,
  percentileAmax,
  roundHalfEven,
  sqnrOfQuantization,
  type HistogramLike,
} from "../src/calibration/algorithms.js";
import { UserError } from "../src/core/errors.js";
import { fixtureRandom as rng } from "./support/random.js";

function hist(counts: number[] | Float64Array, binWidth = 1, max?: number): HistogramLike {
  const c = Float64Array.from(counts);
  let last = -1;
  for (let j = 0; j < c.length; j++) if (c[j]! > 0) last = j;
  return { counts: c, binWidth, max: max ?? (last + 1) * binWidth };
}


// ---------------------------------------------------------------------------------------
// A deliberately slow, literal reference of PRECISION.md's EntropyCalibration2 procedure,
// written independently of the library: it builds P and Q as arrays, finds group boundaries
// the way NVIDIA's numpy code does (np.linspace edges + np.digitize), normalizes, and sums
// p·ln(p/q) per bin.

/** NVIDIA: space = np.linspace(0, i, nq + 1); group(j) = np.digitize(j, space) - 1. */
function digitizeGroup(j: number, i: number, nq: number): number {
  const step = i / nq;
  let count = 0; // number of edges <= j (np.digitize with increasing bins, right=False)
  for (let e = 0; e <= nq; e++) {
    const edge = e === nq ? i : e * step;
    if (edge <= j) count++;
  }
  return count - 1;
}

function referenceKL(counts: Float64Array, i: number, nq = 128): number {
  const bins = Array.from(counts);
  bins[0] = bins[1]!;
  const P = bins.slice(0, i);
  let tail = 0;
  for (let j = i; j < bins.length; j++) tail += bins[j]!;
  P[i - 1] = P[i - 1]! + tail;
  const groupSum = new Array<number>(nq).fill(0);
  const groupNonEmpty = new Array<number>(nq).fill(0);
  for (let j = 0; j < i; j++) {
    if (bins[j] === 0) continue;
    const g = digitizeGroup(j, i, nq);
    groupSum[g] = groupSum[g]! + bins[j]!;
    groupNonEmpty[g] = groupNonEmpty[g]! + 1;
  }
  const Q = new Array<number>(i).fill(0);
  for (let j = 0; j < i; j++) {
    if (bins[j] === 0) continue;
    const g = digitizeGroup(j, i, nq);
    Q[j] = groupSum[g]! / groupNonEmpty[g]!;
  }
  const sp = P.reduce((a, b) => a + b, 0);
  const sq = Q.reduce((a, b) => a + b, 0);
  let kl = 0;
  for (let j = 0; j < i; j++) {
    const p = P[j]! / sp;
    const q = Q[j]! / sq;
    if (p === 0) continue;
    if (q === 0) return Infinity;
    kl += p * Math.log(p / q);
  }
  return kl;
}

function referenceEntropyBins(counts: Float64Array, start = 128): { bins: number; kl: number[] } {
  const kl: number[] = [];
  let best = -1;
  let bestKl = Infinity;
  for (let i = start; i <= counts.length; i++) {
    const d = referenceKL(counts, i);
    kl.push(d);
    if (best < 0 || d <= bestKl) {
      best = i;
      bestKl = d;
    }
  }
  return { bins: best, kl };
}

describe("entropy (EntropyCalibration2)", () => {
  it("clips an isolated outlier: hand-worked 256-bin histogram", () => {
    // Bins 0..127 alternate 1 (even j) / 3 (odd j); bin 0 becomes bin 1's count (3).
    // Bins 128..254 are empty, bin 255 holds one outlier. Bin width 0.5, so max = 128.
    // After the bin-0 copy: T = 3 + 64·3 + 63·1 + 1 = 259.
    //  - i = 128: groups are single bins, so Q equals bins[0..127]; P equals it too except
    //    P[127] = 3 + 1 (the outlier's mass). p = b/259, q = b/258, hence
    //    KL = (255/259)·ln(258/259) + (4/259)·ln((4/259)/(3/258)) ≈ 5.75e-4.
    //  - 129 <= i <= 255: bin i-1 is empty but receives the outlier's mass, so P > 0 where
    //    Q = 0: KL = +Infinity.
    //  - i = 256: groups are bin pairs (2g, 2g+1). Pair 0 is (3,3): exact. Pairs 1..63 are
    //    (1,3) → Q = (2,2). The outlier's pair (0,1) keeps Q = 1 on bin 255. Nothing is
    //    clipped (Z = T), so KL = (63/259)·(ln(1/2) + 3·ln(3/2)) ≈ 0.127.
    // The minimum is i = 128: amax = 128 · 0.5 = 64, half the max: the outlier is clipped.
    const c = new Float64Array(256);
    for (let j = 0; j < 128; j++) c[j] = j % 2 === 0 ? 1 : 3;
    c[255] = 1;
    const h = hist(c, 0.5, 127.9);
    const r = entropySearch(h);
    const kl128 = (255 / 259) * Math.log(258 / 259) + (4 / 259) * Math.log(4 / 259 / (3 / 258));
    const kl256 = (63 / 259) * (Math.log(1 / 2) + 3 * Math.log(3 / 2));
    expect(r.firstBin).toBe(128);
    expect(r.kl.length).toBe(129);
    expect(r.kl[0]).toBeCloseTo(kl128, 14);
    expect(kl128).toBeCloseTo(5.75e-4, 5);
    for (let k = 1; k < 128; k++) expect(r.kl[k]).toBe(Infinity);
    expect(r.kl[128]).toBeCloseTo(kl256, 14);
    expect(r.bins).toBe(128);
    expect(r.amax).toBe(64);
    expect(entropyAmax(h)).toBe(64);
  });

  it("keeps the full range when the outlier's bin pairs up losslessly (ties to the largest i)", () => {
    // Bins 0..127 all 10, one count in bin 255. i = 128: P[127] = 11 vs Q[127] = 10 → KL > 0.
    // i in 129..255: Infinity (empty bin i-1 receives the outlier). i = 256: every pair is
    // uniform or (empty, outlier), so Q = P exactly and KL = 0: amax = 256·w = max.
    const c = new Float64Array(256);
    for (let j = 0; j < 128; j++) c[j] = 10;
    c[255] = 1;
    const r = entropySearch(hist(c, 1));
    expect(r.kl[0]).toBeCloseTo((1270 / 1281) * Math.log(1280 / 1281) + (11 / 1281) * Math.log((11 * 1280) / (10 * 1281)), 14);
    expect(r.kl[128]).toBe(0);
    expect(r.bins).toBe(256);
    expect(r.amax).toBe(256);
  });

  it("ties go to the largest candidate", () => {
    // Uniform histogram: every candidate keeps Q = P exactly (KL 0 everywhere) except those
    // clipping mass into the last kept bin. With all 300 bins equal, i < 300 clips (KL > 0)
    // and i = 300 is exact. Now make bins 200.. empty: i in 201..300 all have KL exactly 0
    // (no tail, uniform non-empty groups), so the tie must resolve to i = 300.
    const c = new Float64Array(300);
    for (let j = 0; j < 200; j++) c[j] = 7;
    const r = entropySearch(hist(c, 1));
    for (let i = 200; i <= 300; i++) expect(r.kl[i - 128]).toBe(0);
    expect(r.bins).toBe(300);
  });

  it("drops the zero spike: bin 0 takes bin 1's count", () => {
    // A huge spike of zeros in bin 0 must not matter: the same histogram with bin 0 = bin 1.
    const r = rng(7);
    const c = new Float64Array(512);
    for (let j = 1; j < 512; j++) c[j] = Math.floor(1000 * Math.exp(-j / 60) * (0.5 + r()));
    const a = Float64Array.from(c);
    a[0] = 1e9;
    const b = Float64Array.from(c);
    b[0] = b[1]!;
    expect(entropySearch(hist(a)).bins).toBe(entropySearch(hist(b)).bins);
    expect(Array.from(entropySearch(hist(a)).kl)).toEqual(Array.from(entropySearch(hist(b)).kl));
  });

  it("group boundaries for i not a multiple of 128 follow np.digitize(np.linspace)", () => {
    // floor(j·128/i) as the library uses it must equal NVIDIA's digitize over linspace edges.
    for (const i of [129, 130, 191, 200, 255, 257, 383, 1000, 2047, 2048, 2049]) {
      for (let j = 0; j < i; j++) expect(Math.floor((j * 128) / i)).toBe(digitizeGroup(j, i, 128));
    }
  });

  it("matches the slow reference on random histograms", () => {
    const r = rng(12345);
    for (let trial = 0; trial < 12; trial++) {
      const n = 128 + Math.floor(r() * 600);
      const c = new Float64Array(n);
      const decay = 20 + r() * 200;
      const sparsity = r() * 0.5;
      for (let j = 0; j < n; j++) {
        c[j] = r() < sparsity ? 0 : Math.floor(5000 * Math.exp(-j / decay) * r()) + (r() < 0.3 ? 1 : 0);
      }
      c[n - 1] = 1 + Math.floor(r() * 3); // the max always lands in the last bin
      const ref = referenceEntropyBins(c);
      const got = entropySearch(hist(c, 0.01));
      expect(got.kl.length).toBe(ref.kl.length);
      for (let k = 0; k < ref.kl.length; k++) {
        const a = got.kl[k]!;
        const b = ref.kl[k]!;
        if (b === Infinity) expect(a).toBe(Infinity);
        else expect(Math.abs(a - b)).toBeLessThan(1e-12);
      }
      expect(got.bins).toBe(ref.bins);
      expect(got.amax).toBe(ref.bins * 0.01);
    }
  });

  it("matches the reference on a realistic 2048-bin histogram (half-normal data)", () => {
    const r = rng(99);
    const c = new Float64Array(2048);
    // |N(0,1)| sampled into 2048 bins over [0, 5], plus a few outliers up to the max.
    for (let k = 0; k < 200000; k++) {
      const u = Math.max(r(), 1e-12);
      const v = r();
      const x = Math.abs(Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
      c[Math.min(2047, Math.floor((x / 5) * 2048))]! += 1;
    }
    c[2047]! += 1;
    const got = entropySearch(hist(c, 5 / 2048));
    // Spot-check the reference at the chosen candidate and its neighbours (full reference is slow).
    for (const i of [got.bins - 1, got.bins, got.bins + 1].filter((i) => i >= 128 && i <= 2048)) {
      const ref = referenceKL(c, i);
      if (ref === Infinity) expect(got.kl[i - 128]).toBe(Infinity);
      else expect(Math.abs(got.kl[i - 128]! - ref)).toBeLessThan(1e-12);
    }
    expect(got.amax).toBeLessThan(5);
    expect(got.amax).toBeGreaterThan(2);
  });

  it("degenerate inputs: empty histogram → 0; fewer than 128 bins → whole range", () => {
    expect(entropyAmax({ counts: new Float64Array(0), binWidth: 0, max: 0 })).toBe(0);
    expect(entropyAmax(hist([1, 2, 3], 0.5))).toBe(1.5);
  });

  it("all mass in the last bin (constant tensor) keeps the full range", () => {
    // NVIDIA's code produces NaN divergences here and picks bin 2047; trt-debug gives the
    // candidates with no mass in Q an infinite KL and keeps all 2048 bins (amax = max).
    const c = new Float64Array(2048);
    c[2047] = 1000;
    expect(entropySearch(hist(c, 1 / 2048)).bins).toBe(2048);
  });
});

describe("minmax", () => {
  it("is the exact max, not a bin edge", () => {
    expect(minmaxAmax({ counts: Float64Array.from([1, 2, 3]), binWidth: 0.4, max: 1.1 })).toBe(1.1);
    expect(minmaxAmax({ counts: new Float64Array(0), binWidth: 0, max: 0 })).toBe(0);
  });
});

describe("percentile", () => {
  it("left edge of the bin where the cumulative count reaches p%", () => {
    // 10000 values: 9990 in bin 0..9 (999 each), 10 spread over bins 10..19.
    // cum after bin 9 = 9990 (99.90%); bin 10..19 add 1 each: cum reaches 9999 = 99.99% at bin 18.
    const c = new Array<number>(20).fill(0);
    for (let j = 0; j < 10; j++) c[j] = 999;
    for (let j = 10; j < 20; j++) c[j] = 1;
    const h = hist(c, 0.25);
    expect(percentileAmax(h)).toBe(18 * 0.25);
    expect(percentileAmax(h, { percentile: 99.9 })).toBe(9 * 0.25);
    expect(percentileAmax(h, { percentile: 50 })).toBe(5 * 0.25); // cum 5994 at bin 5 >= 5000
    expect(percentileAmax(h, { percentile: 100 })).toBe(19 * 0.25);
  });

  it("rejects a percentile outside (0, 100]", () => {
    const h = hist([1, 1], 1);
    expect(() => percentileAmax(h, { percentile: 0 })).toThrow(UserError);
    expect(() => percentileAmax(h, { percentile: 100.5 })).toThrow(/percentile must be in \(0, 100\]/);
    expect(() => percentileAmax(h, { percentile: Number.NaN })).toThrow(UserError);
  });

  it("empty histogram → 0", () => {
    expect(percentileAmax({ counts: new Float64Array(0), binWidth: 0, max: 0 })).toBe(0);
  });
});

describe("mse", () => {
  it("an outlier far from a spike: amax lands exactly on the outlier's centre", () => {
    // Width 1. Bin 0 holds 1e6 values (centre 0.5), bin 1999 one outlier (centre 1999.5).
    // Candidates are centres i + 0.5 for i = 128..1999, so s = amax/127 > 1 and 0.5/s < 0.5:
    // the spike always quantizes to 0 with the same error 0.25·1e6. The outlier is clipped to
    // amax with error (1999.5 − amax)² for every amax < 1999.5 and is exact (code 127) at
    // amax = 1999.5, the last candidate: that one wins.
    const c = new Float64Array(2000);
    c[0] = 1e6;
    c[1999] = 1;
    expect(mseAmax(hist(c, 1))).toBe(1999.5);
  });

  it("never looks below bin 128: a histogram with all mass low still gets amax ≥ 128.5·w", () => {
    const c = new Float64Array(1000);
    for (let j = 0; j < 10; j++) c[j] = 100;
    c[999] = 0; // max recorded separately; no mass above bin 9
    // (Unclipped centres 0.5..9.5 would prefer amax ≈ 9.5; the exact pick among candidates
    // depends on how the centres happen to hit the grid, 137.5 here.)
    const a = mseAmax(hist(c, 1));
    expect(a).toBeGreaterThanOrEqual(128.5);
    expect(a).toBe(137.5);
  });

  it("count-weighted: clips a light tail when the body is heavy, equals a brute-force argmin", () => {
    // Body: bins 0..999 with 1e6 values each (1e9 values), tail: bins 1000..1999 with 1 each.
    // Keeping the tail (amax ≈ 2000) costs the body ~1e9·s²/12 with s = 2000/127, ≈ 2.1e10;
    // clipping at the body's top (amax ≈ 1000) costs the body ≈ 5.2e9 and the tail
    // Σ (x − 1000)² ≈ 3.3e8. So the optimum lies between, well below 2000.
    const c = new Float64Array(2000);
    for (let j = 0; j < 1000; j++) c[j] = 1e6;
    for (let j = 1000; j < 2000; j++) c[j] = 1;
    const a = mseAmax(hist(c, 1));
    expect(a).toBeGreaterThan(900);
    expect(a).toBeLessThan(1500);
    // Brute-force check that it is the argmin over candidate centres (independent loop).
    const err = (amaxC: number): number => {
      const s = amaxC / 127;
      let e = 0;
      for (let j = 0; j < 2000; j++) {
        const x = j + 0.5;
        const q = Math.min(roundHalfEven(x / s), 127);
        e += c[j]! * (x - q * s) ** 2;
      }
      return e;
    };
    let best = Infinity;
    let bestA = 0;
    for (let i = 128; i < 2000; i++) {
      const e = err(i + 0.5);
      if (e < best) {
        best = e;
        bestA = i + 0.5;
      }
    }
    expect(a).toBe(bestA);
  });

  it("light tail, light body: keeping the tail wins (the error is count-weighted)", () => {
    // Same shape with only 1000 values per body bin: clipping the 1000 tail values at 1000
    // costs ≈ 3.3e8, more than the body's loss of resolution (≈ 1e6·(2000/127)²/12 ≈ 2e7).
    const c = new Float64Array(2000);
    for (let j = 0; j < 1000; j++) c[j] = 1000;
    for (let j = 1000; j < 2000; j++) c[j] = 1;
    expect(mseAmax(hist(c, 1))).toBeGreaterThan(1800);
  });

  it("roundHalfEven", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6, 126.5, 127.5].map((x) => roundHalfEven(x) + 0)).toEqual([0, 2, 2, 0, -2, 2, 3, 126, 128]);
  });
});

describe("chooseAll / registry", () => {
  it("returns all four amax values consistently with calibrate()", () => {
    const c = new Float64Array(2048);
    const r = rng(3);
    for (let j = 0; j < 2048; j++) c[j] = Math.floor(1e4 * Math.exp(-j / 150) * r());
    c[2047] = 1;
    const h = hist(c, 0.001, 2.048);
    const all = chooseAll(h);
    for (const a of CALIB_ALGOS) expect(calibrate(h, a)).toBe(all[a]);
    expect(all.minmax).toBe(2.048);
    expect(all.entropy).toBeLessThanOrEqual(2.048);
    expect(all.percentile).toBeLessThan(2.048);
  });

  it("maps algorithms to cache header names and back", () => {
    expect(CACHE_ALGORITHM_NAMES).toEqual({
      entropy: "EntropyCalibration2",
      minmax: "MinMaxCalibration",
      percentile: "PercentileCalibration",
      mse: "MSECalibration",
    });
    for (const a of CALIB_ALGOS) expect(calibAlgoFromCacheName(CACHE_ALGORITHM_NAMES[a])).toBe(a);
    expect(calibAlgoFromCacheName("LegacyCalibration")).toBeUndefined();
    expect(parseCalibAlgo("Entropy")).toBe("entropy");
    expect(parseCalibAlgo("MinMaxCalibration")).toBe("minmax");
    expect(() => parseCalibAlgo("kl")).toThrow(/algo "kl" is not a calibration algorithm; use one of entropy, minmax, percentile, mse/);
  });
});

describe("sqnrOfQuantization", () => {
  it("exact representation → infinite SQNR, nothing clipped", () => {
    // Width 2, amax 127·... choose bins whose centres are exact multiples of s.
    // s = 1: centres 1, 3, 5 (width 2) → codes 1, 3, 5 exactly.
    const h = hist([4, 2, 1], 2, 6);
    const r = sqnrOfQuantization(h, 127);
    expect(r.sqnrDb).toBe(Infinity);
    expect(r.mse).toBe(0);
    expect(r.clippedFraction).toBe(0);
    expect(r.zeroFraction).toBe(0);
    expect(r.total).toBe(7);
  });

  it("clipping and zeros are counted, SQNR in dB", () => {
    // Width 1, centres 0.5, 1.5, 2.5, 3.5 with counts 1,1,1,1; amax = 2 → s = 2/127.
    // 0.5/s = 31.75 → not zero. 2.5 and 3.5 exceed amax → clipped to 2: fraction 0.5.
    const h = hist([1, 1, 1, 1], 1);
    const r = sqnrOfQuantization(h, 2);
    expect(r.clippedFraction).toBe(0.5);
    expect(r.zeroFraction).toBe(0);
    const s = 2 / 127;
    const dq = (x: number): number => Math.min(roundHalfEven(x / s), 127) * s;
    const signal = 0.25 + 2.25 + 6.25 + 12.25;
    const noise = [0.5, 1.5, 2.5, 3.5].reduce((a, x) => a + (x - dq(x)) ** 2, 0);
    expect(r.sqnrDb).toBeCloseTo(10 * Math.log10(signal / noise), 12);
    // amax large: 0.5 quantizes to 0 when 0.5/s <= 0.5, i.e. s >= 1, amax >= 127.
    const big = sqnrOfQuantization(h, 127);
    expect(big.zeroFraction).toBe(0.25);
    expect(big.clippedFraction).toBe(0);
  });

  it("amax 0 and empty histograms", () => {
    const z = sqnrOfQuantization(hist([3, 1], 1), 0);
    expect(z.sqnrDb).toBe(0);
    expect(z.clippedFraction).toBe(1);
    expect(z.zeroFraction).toBe(1);
    const e = sqnrOfQuantization({ counts: new Float64Array(0), binWidth: 0, max: 0 }, 0);
    expect(e.sqnrDb).toBe(Infinity);
    expect(e.total).toBe(0);
  });
});
