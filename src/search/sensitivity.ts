/**
 * The reference run and the local sensitivity pass, together (about two model executions).
 *
 * The FP32 reference runs with one-layer segments. Before each segment runs, its live inputs
 * (the reference's fp32 tensors) are kept; after it, each of its searchable layers runs alone
 * in the candidate precision on exactly those inputs (the same one-layer segment, with only
 * that layer's precision changed). Comparing that layer's outputs with the reference's says
 * what the layer does to clean inputs: new NaN/Inf (overflow, at its output or when it
 * rounds an input), flush to zero (underflow), or its relative L2 error against the
 * precision's threshold. Errors that only appear when inputs are already perturbed are left
 * to the search.
 */
import type { HostTensor, Precision } from "../core/host-tensor.js";
import type { Layer } from "../onnx/model.js";
import type { Executor } from "../runtime/executor.js";
import { fromOrt, type OrtTensor } from "../onnx/ort-session.js";
import { makeFeeds } from "../runtime/capture-runs.js";
import { floatValues, int8RangeCounts } from "../numeric/index.js";
import { DEFAULT_MAX_REL_L2, fmt } from "../compare/tolerance.js";
import { absMax, diffMetrics } from "../numeric/index.js";

/** Range facts of the floating formats a layer can be reduced to (int8 has none: its evidence is its error). */
export const FORMAT_RANGE: Partial<Record<Precision, { max: number; minSubnormal: number }>> = {
  fp16: { max: 65504, minSubnormal: 2 ** -24 },
  bf16: { max: 3.3895313892515355e38, minSubnormal: 2 ** -133 },
  fp8: { max: 448, minSubnormal: 2 ** -9 },
};

export type SensitivityKind = "overflow" | "input-overflow" | "nan" | "underflow" | "input-underflow" | "error" | "ok";

export interface LayerSensitivity {
  /** Execution index. */
  index: number;
  name: string;
  opType: string;
  /** Ranking score: 1e6 new NaN/Inf, 1e3 flushed to zero, else local rel L2 / threshold. >= 1: fails on its own. */
  score: number;
  kind: SensitivityKind;
  /** Worst local relative L2 error over the layer's floating outputs (Infinity with new NaN/Inf). */
  relL2: number;
  evidence: string[];
}

export const SCORE_NONFINITE = 1e6;
export const SCORE_UNDERFLOW = 1e3;

export interface ReferenceResult {
  /** Graph outputs of the FP32 reference. */
  outputs: Map<string, HostTensor>;
  /** By execution index; only the searchable layers have an entry. */
  sensitivity: Map<number, LayerSensitivity>;
}

export interface SensitivityOptions {
  /** The candidate precision: its threshold scores every layer (the graph outputs are judged at it). */
  precision: Precision;
  /**
   * The precision each layer is tried in (default `precision` for all): with --int8, int8 for
   * the layers that run in it and the fallback precision for the others.
   */
  candidate?: readonly Precision[];
  /** Which layers to try (execution indices). */
  searchable: ReadonlySet<number>;
  /** Threshold override (--max-rel-l2). */
  maxRelL2?: number;
  /** Skip the per-layer runs (reference only). */
  referenceOnly?: boolean;
  /** Called with the live tensors at the start of every layer boundary of the fp32 run. */
  onBoundary?: (layerStart: number, live: Map<string, OrtTensor>) => void;
  progress?: (done: number, total: number) => void;
}

function liveAbsMax(t: OrtTensor | undefined): number | null {
  if (!t) return null;
  const v = floatValues(fromOrt("", t));
  return v ? absMax(v) : null;
}

/** Run the fp32 reference on `exec` (which must have one-layer segments) and score every searchable layer. */
export async function referenceAndSensitivity(exec: Executor, inputs: HostTensor[], o: SensitivityOptions): Promise<ReferenceResult> {
  const m = exec.model;
  const layers = m.graph.layers;
  const n = layers.length;
  const ref: Precision[] = layers.map(() => "fp32");
  const trial = [...ref];
  const graphOut = m.graph.outputs.map((t) => t.name);
  const sensitivity = new Map<number, LayerSensitivity>();
  const live = makeFeeds(inputs);
  let start = new Map(live);
  o.onBoundary?.(0, start);
  let next = start;
  const thr = o.maxRelL2 ?? DEFAULT_MAX_REL_L2[o.precision];
  const gen = exec.run(ref, live, () => true, {
    onSegmentDone: (seg, l) => {
      next = new Map(l);
      if (seg.end < n) o.onBoundary?.(seg.end, next);
    },
  });
  for await (const r of gen) {
    const seg = r.segment;
    for (let i = seg.start; i < seg.end && !o.referenceOnly; i++) {
      if (!o.searchable.has(i)) continue;
      const layer = layers[i]!;
      const tp = o.candidate?.[i] ?? o.precision;
      trial[i] = tp;
      const local = new Map<string, OrtTensor>();
      for await (const c of exec.run(trial, new Map(start), (li) => li === i, { fromSegment: seg.id, toSegment: seg.id + 1 })) {
        for (const [k, v] of c.captured) local.set(k, v);
      }
      const s = scoreLayer(layer, r.captured, local, start, thr, tp, FORMAT_RANGE[tp]);
      // An int8 layer that fails on its own: say how its quantized inputs fare (a range far
      // wider than the values, from an outlier tail, sends most of them to 0).
      if (tp === "int8" && s.score >= 1) s.evidence.push(...int8InputEvidence(exec, layer, trial, start));
      trial[i] = "fp32";
      sensitivity.set(i, s);
    }
    o.progress?.(seg.end, n);
    start = next;
  }
  const outputs = new Map<string, HostTensor>();
  for (const name of graphOut) {
    const t = live.get(name);
    if (t) outputs.set(name, fromOrt(name, t));
  }
  return { outputs, sensitivity };
}

export function scoreLayer(
  layer: Layer,
  refOut: Map<string, OrtTensor>,
  candOut: Map<string, OrtTensor>,
  inputs: Map<string, OrtTensor>,
  thr: number,
  precision: Precision,
  range: { max: number; minSubnormal: number } | undefined,
): LayerSensitivity {
  let score = 0;
  let relL2 = 0;
  let kind: SensitivityKind = "ok";
  const evidence: string[] = [];
  const rank: Record<SensitivityKind, number> = { ok: 0, error: 1, "input-underflow": 2, underflow: 3, nan: 4, "input-overflow": 5, overflow: 6 };
  const note = (k: SensitivityKind, s: number, text: string) => {
    if (rank[k] > rank[kind]) kind = k;
    score = Math.max(score, s);
    evidence.push(text);
  };
  for (const name of layer.outputs) {
    const r = refOut.get(name), c = candOut.get(name);
    if (!r || !c) continue;
    const rv = floatValues(fromOrt(name, r)), cv = floatValues(fromOrt(name, c));
    if (!rv || !cv || rv.length !== cv.length) continue;
    const mt = diffMetrics(rv, cv);
    const rl = mt.newNonFinite > 0 ? Infinity : mt.relL2;
    relL2 = Math.max(relL2, rl);
    if (mt.newNonFinite > 0) {
      const refMax = absMax(rv);
      if (range && refMax > range.max) {
        note("overflow", SCORE_NONFINITE, `overflow: output ${name} reaches |x| = ${fmt(refMax)} > ${precision} max ${fmtLimit(range.max)}`);
        continue;
      }
      const big = range ? bigInputs(layer, inputs, range.max) : [];
      if (big.length) {
        note("input-overflow", SCORE_NONFINITE, `input overflow: reads ${big.join(", ")} > ${precision} max ${fmtLimit(range!.max)}, rounded to inf at its input`);
      } else if (mt.candNan > mt.refNan) {
        note("nan", SCORE_NONFINITE, `NaN: ${mt.candNan - mt.refNan} new NaN in ${name}`);
      } else {
        note("overflow", SCORE_NONFINITE, `Inf: ${mt.newNonFinite} new Inf in ${name}`);
      }
      continue;
    }
    if (mt.refL2 > 0 && mt.candL2 === 0) {
      const tiny = range ? tinyInputs(layer, inputs, range.minSubnormal) : [];
      if (range && mt.refAbsMax < range.minSubnormal) {
        note("underflow", SCORE_UNDERFLOW, `underflow: output ${name} (|x| <= ${fmt(mt.refAbsMax)} < ${precision} smallest subnormal ${fmt(range.minSubnormal)}) flushed to zero`);
      } else if (tiny.length) {
        note("input-underflow", SCORE_UNDERFLOW, `input underflow: reads ${tiny.join(", ")} < ${precision} smallest subnormal ${fmt(range!.minSubnormal)}, flushed to zero`);
      } else {
        note("underflow", SCORE_UNDERFLOW, `underflow: output ${name} flushed to zero`);
      }
      continue;
    }
    if (rl > thr) note("error", rl / thr, `local error: rel L2 ${fmt(rl)} > ${fmt(thr)} on clean fp32 inputs`);
    else score = Math.max(score, rl / thr);
  }
  return { index: layer.index, name: layer.name, opType: layer.opType, score, kind, relL2, evidence };
}

/**
 * For each activation input an int8 layer quantizes (per-tensor Q/DQ by the policy): its range
 * against the values it holds here, the share of its nonzero values that quantize to 0 and the
 * share clipped.
 */
export function int8InputEvidence(exec: Executor, layer: Layer, trial: readonly Precision[], inputs: Map<string, OrtTensor>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  layer.inputs.forEach((t, k) => {
    if (t === "" || seen.has(t) || exec.model.graph.initializers.has(t)) return;
    seen.add(t);
    const tr = exec.policy.input(layer, k, t, "int8", trial);
    const live = inputs.get(t);
    if (tr.kind !== "qdq" || !live) return;
    const v = floatValues(fromOrt(t, live));
    if (!v || v.length === 0) return;
    const s = tr.scale;
    const { nonzero, toZero, clipped, max } = int8RangeCounts(v, s, tr.qmax);
    const pct = (x: number, n: number) => `${n ? ((100 * x) / n).toPrecision(3) : "0"}%`;
    let text = `int8 input ${t}: range amax ${fmt(tr.qmax * s)} (scale ${fmt(s)}) for |x| up to ${fmt(max)} here; ${pct(toZero, nonzero)} of its nonzero values quantize to 0`;
    if (clipped) text += `, ${pct(clipped, v.length)} clipped`;
    out.push(text);
  });
  return out;
}

/** 65504 rather than 6.55e+4. */
function fmtLimit(x: number): string {
  return Number.isInteger(x) && x < 1e7 ? String(x) : x.toPrecision(3);
}

function bigInputs(layer: Layer, inputs: Map<string, OrtTensor>, max: number): string[] {
  const out: string[] = [];
  for (const t of new Set(layer.inputs)) {
    const a = liveAbsMax(inputs.get(t));
    if (a !== null && a > max) out.push(`${t} (|x| up to ${fmt(a)})`);
  }
  return out;
}

function tinyInputs(layer: Layer, inputs: Map<string, OrtTensor>, minSub: number): string[] {
  const out: string[] = [];
  for (const t of new Set(layer.inputs)) {
    const a = liveAbsMax(inputs.get(t));
    if (a !== null && a > 0 && a < minSub) out.push(`${t} (|x| <= ${fmt(a)})`);
  }
  return out;
}
