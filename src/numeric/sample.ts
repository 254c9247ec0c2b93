/**
 * A bounded, deterministic sample of a tensor pair for reports (src/report/html-samples.ts):
 * `points` positions evenly spaced over the flat tensor (every element when it has fewer),
 * the reference's and the candidate's value at each. No randomness: the same tensors give
 * the same sample, so two reports of one run agree.
 */
export interface PairSample {
  /** Flat element positions, ascending. */
  index: number[];
  ref: number[];
  cand: number[];
}

export function samplePair(ref: Float32Array, cand: Float32Array, points: number): PairSample {
  const n = Math.min(ref.length, cand.length);
  const k = Math.max(0, Math.min(n, Math.floor(points)));
  const index = new Array<number>(k);
  const r = new Array<number>(k);
  const c = new Array<number>(k);
  for (let j = 0; j < k; j++) {
    const i = k === n ? j : Math.floor((j * n) / k);
    index[j] = i;
    r[j] = ref[i]!;
    c[j] = cand[i]!;
  }
  return { index, ref: r, cand: c };
}
