/**
 * Calibration statistics in ONE streaming pass: for every batch, run the model in FP32 with
 * every layer captured (segment by segment), feed each floating activation — graph inputs
 * too — into its AbsHistogram, and drop the tensor. Memory: one histogram per tensor plus one
 * segment's tensors, whatever the number of batches.
 */
import { isFloatDType, type HostTensor, type Precision } from "../core/host-tensor.js";
import type { PreparedModel } from "../runtime/capture-runs.js";
import { runCaptured } from "../runtime/capture-runs.js";
import { Executor } from "../runtime/executor.js";
import type { OptimizationLevel } from "../onnx/ort-session.js";
import { fetchable } from "../onnx/ort-session.js";
import { floatValues } from "../numeric/index.js";
import { AbsHistogram } from "./histogram.js";
import { floatActivations } from "../precision/int8.js";
import type { CalibSource } from "./calib-data.js";

export interface CollectOptions {
  segmentLayers?: number;
  optimization?: OptimizationLevel;
  /** Histogram bins of the first batch (default 2048). */
  numBins?: number;
  /** Called after each batch (1-based count; total null when unknown). */
  onBatch?(done: number, total: number | null): void;
}

export interface CalibStatistics {
  /** Histogram of every floating activation the run can observe, in model order. */
  histograms: Map<string, AbsHistogram>;
  /** Floating activations that cannot be observed (types onnxruntime cannot hand over, e.g. bfloat16). */
  unobservable: string[];
  batches: number;
  /** Bytes of activations histogrammed (float32 equivalent). */
  bytes: number;
  seconds: number;
}

/** The floating activations of a model whose values a run can hand to JavaScript. */
export function observableActivations(p: PreparedModel): { observable: string[]; unobservable: string[] } {
  const all = floatActivations(p.model, p.types);
  const observable: string[] = [];
  const unobservable: string[] = [];
  for (const t of all) {
    const d = p.types.get(t)?.dtype;
    (d && fetchable(d) ? observable : unobservable).push(t);
  }
  return { observable, unobservable };
}

/** Feed one tensor into its histogram (float16/float64 are converted to float32 first). */
export function collectTensor(h: AbsHistogram, t: HostTensor): number {
  if (!isFloatDType(t.dtype)) return 0;
  const v = floatValues(t);
  if (!v) return 0;
  h.collect(v);
  return v.length * 4;
}

export async function collectStatistics(p: PreparedModel, source: CalibSource, o: CollectOptions = {}): Promise<CalibStatistics> {
  const t0 = performance.now();
  const { observable, unobservable } = observableActivations(p);
  const histograms = new Map<string, AbsHistogram>();
  for (const t of observable) histograms.set(t, new AbsHistogram({ numBins: o.numBins }));
  const exec = new Executor(p.model, p.types, { segmentLayers: o.segmentLayers, optimizationLevel: o.optimization });
  const fp32: Precision[] = p.model.graph.layers.map(() => "fp32");
  let batches = 0;
  let bytes = 0;
  try {
    for await (const inputs of source.iterate()) {
      for (const t of inputs) {
        const h = histograms.get(t.name);
        if (h) bytes += collectTensor(h, t);
      }
      for await (const c of runCaptured(exec, fp32, inputs, () => true)) {
        const h = histograms.get(c.tensor.name);
        if (h) bytes += collectTensor(h, c.tensor);
      }
      batches++;
      o.onBatch?.(batches, source.batches);
    }
  } finally {
    await exec.release();
  }
  return { histograms, unobservable, batches, bytes, seconds: (performance.now() - t0) / 1000 };
}
