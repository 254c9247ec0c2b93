/**
 * Whether `compare` runs its candidate side in a worker_thread, concurrently with the
 * reference (workflows/compare.ts, onnx/ort-worker.ts), and with how many onnxruntime
 * intra-op threads per side. docs/performance.md "Compare in two threads".
 */
import * as os from "node:os";
import { optionError } from "../core/errors.js";
import type { LoadedModel } from "../onnx/model.js";
import type { TypeMap } from "../onnx/infer.js";
import { estimateTensorBytes, plannedTensorBytes } from "./size-estimate.js";

/** `compareThreads`: 1 = both sides on the JavaScript thread in lockstep, 2 = the candidate in a worker thread; undefined = auto. */
export type CompareThreads = 1 | 2 | undefined;

/** Auto mode needs this many cores (each side gets at least two onnxruntime threads)... */
export const CONCURRENT_MIN_CORES = 4;
/**
 * ...and a model with at least this many bytes of activations (every layer output, sizes as the
 * segment planner estimates them): below, a worker's start-up (it loads onnxruntime-node: tens of
 * milliseconds) costs more than overlapping two short runs saves.
 */
export const CONCURRENT_MIN_ACTIVATIONS = 2 * 2 ** 20;

export function checkCompareThreads(n: number | undefined): CompareThreads {
  if (n === undefined) return undefined;
  if (n !== 1 && n !== 2) throw optionError("compareThreads", `must be 1 (reference and candidate one after the other) or 2 (at once, the candidate in a worker thread); got ${n}`);
  return n;
}

/** Bytes of every layer output of the model (the planner's estimates for unknown shapes). */
export function activationBytes(model: LoadedModel, types: TypeMap): number {
  const planned = plannedTensorBytes(model, types);
  let sum = 0;
  for (const l of model.graph.layers) for (const o of l.outputs) if (o !== "") sum += estimateTensorBytes(types, o) || planned.get(o) || 0;
  return sum;
}

/** The decision once the model is typed. */
export function runConcurrently(mode: CompareThreads, model: LoadedModel, types: TypeMap, cores = os.availableParallelism()): boolean {
  if (mode !== undefined) return mode === 2;
  return cores >= CONCURRENT_MIN_CORES && activationBytes(model, types) >= CONCURRENT_MIN_ACTIVATIONS;
}

/** onnxruntime intra-op threads per side when the two sides run at once: half the cores each. */
export function sideThreads(cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / 2));
}
