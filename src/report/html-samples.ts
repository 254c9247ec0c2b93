/**
 * Tensor values for the HTML report's worst-layer charts (error histogram, reference vs
 * candidate scatter). A compare result holds metrics only; while a compare runs, the CLI
 * passes `LayerSampler.offer` as the workflow's `onTensors` hook and the sampler keeps a
 * bounded sample (`points` evenly spaced elements) of the `layers` worst tensors: failing
 * first, then the larger rel L2 (compare/iterations.ts worseRow, the rule of the JSON rows).
 * Memory: at most `layers` samples at any time, whatever the model's size.
 */
import type { HostTensor } from "../core/host-tensor.js";
import type { LayerComparison } from "../compare/layer-compare.js";
import { worseRow } from "../compare/iterations.js";
import { floatValues, samplePair } from "../numeric/index.js";

export const DEFAULT_SAMPLE_LAYERS = 5;
export const DEFAULT_SAMPLE_POINTS = 2000;

/** One tensor's sample, as the report embeds it (non-finite values as null). */
export interface LayerSample {
  order: number;
  layer: string;
  op_type: string;
  tensor: string;
  iteration: number | null;
  passed: boolean;
  /** null: NaN or infinite (worst). */
  rel_l2: number | null;
  /** Elements of the tensor (the sample holds min(numel, points) of them). */
  numel: number;
  index: number[];
  ref: (number | null)[];
  cand: (number | null)[];
}

/** A float32 value in 9 significant digits (exact for float32, about half the JSON of its double digits); null for NaN/Inf. */
const finite = (x: number): number | null => (Number.isFinite(x) ? Number(x.toPrecision(9)) : null);
const finiteMetric = (x: number): number | null => (Number.isFinite(x) ? x : null);

export class LayerSampler {
  readonly #layers: number;
  readonly #points: number;
  readonly #kept: LayerSample[] = [];

  constructor(opts: { layers?: number; points?: number } = {}) {
    this.#layers = opts.layers ?? DEFAULT_SAMPLE_LAYERS;
    this.#points = opts.points ?? DEFAULT_SAMPLE_POINTS;
    if (!(Number.isInteger(this.#layers) && this.#layers >= 0)) throw new RangeError(`layers must be a non-negative integer, got ${this.#layers}`);
    if (!(Number.isInteger(this.#points) && this.#points >= 1)) throw new RangeError(`points must be a positive integer, got ${this.#points}`);
  }

  /** A compared tensor pair (the compare workflows' `onTensors` hook). */
  readonly offer = (l: LayerComparison, ref: HostTensor, cand: HostTensor): void => {
    const key = { passed: l.verdict.passed, relL2: finiteMetric(l.metrics.relL2) };
    const same = this.#kept.findIndex((s) => s.tensor === l.tensor);
    if (same >= 0 && !worseRow(key, { passed: this.#kept[same]!.passed, relL2: this.#kept[same]!.rel_l2 })) return;
    if (same < 0 && this.#kept.length >= this.#layers) {
      const last = this.#kept[this.#kept.length - 1];
      if (!last || !worseRow(key, { passed: last.passed, relL2: last.rel_l2 })) return;
    }
    const r = floatValues(ref), c = floatValues(cand);
    if (!r || !c) return;
    const s = samplePair(r, c, this.#points);
    const sample: LayerSample = {
      order: l.order,
      layer: l.layer,
      op_type: l.opType,
      tensor: l.tensor,
      iteration: l.iteration ?? null,
      passed: l.verdict.passed,
      rel_l2: key.relL2,
      numel: Math.min(r.length, c.length),
      index: s.index,
      ref: s.ref.map(finite),
      cand: s.cand.map(finite),
    };
    if (same >= 0) this.#kept.splice(same, 1);
    this.#kept.push(sample);
    this.#kept.sort((a, b) => (worseRow({ passed: a.passed, relL2: a.rel_l2 }, { passed: b.passed, relL2: b.rel_l2 }) ? -1 : worseRow({ passed: b.passed, relL2: b.rel_l2 }, { passed: a.passed, relL2: a.rel_l2 }) ? 1 : a.order - b.order));
    if (this.#kept.length > this.#layers) this.#kept.length = this.#layers;
  };

  /** The kept samples, worst first. */
  samples(): LayerSample[] {
    return [...this.#kept];
  }
}
