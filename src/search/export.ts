/**
 * What a bisection result becomes: a trt-debug precision plan (reloadable with
 * --precision-plan), trtexec flags and Polygraphy arguments naming the same layers.
 */
import type { Precision } from "../core/host-tensor.js";
import { layerMemberNames, type Layer } from "../onnx/model.js";
import { makePlan, type PlanEntry, type PrecisionPlan } from "../precision/plan.js";

/** trtexec's spelling of a precision (--layerPrecisions / --layerOutputTypes). */
export const TRTEXEC_PRECISION: Record<Precision, string> = { fp32: "fp32", fp16: "fp16", bf16: "bf16", fp8: "fp8", int8: "int8" };
/** Polygraphy's spelling (--layer-precisions NAME:DTYPE). */
export const POLYGRAPHY_PRECISION: Record<Precision, string> = { fp32: "float32", fp16: "float16", bf16: "bfloat16", fp8: "float8", int8: "int8" };

/** The layers whose precision differs from `def`, as exact-name entries in execution order. */
export function planEntries(layers: readonly Layer[], precisions: readonly Precision[], def: Precision): PlanEntry[] {
  const out: PlanEntry[] = [];
  for (const l of layers) if (precisions[l.index] !== def) out.push({ pattern: l.name, precision: precisions[l.index]! });
  return out;
}

/** A plan whose default is the candidate precision with one exact-name entry per other layer. */
export function planFor(layers: readonly Layer[], precisions: readonly Precision[], def: Precision, meta?: Record<string, unknown>): PrecisionPlan {
  return makePlan(def, planEntries(layers, precisions, def), meta);
}

/**
 * The entries as TensorRT's per-layer flags need them: an entry naming a fused group (a layer
 * of several ONNX nodes, Layer.nodeNames) becomes one entry per node. TensorRT (<= 10) sets
 * precisions on the network's layers before fusion, so pinning only the Conv of a
 * Conv+BN+ReLU group would leave the BN's scale and the ReLU in the reduced precision and
 * break the fusion. Entries naming no layer (globs) pass through.
 */
export function expandFusedEntries(layers: readonly Layer[], entries: readonly PlanEntry[]): PlanEntry[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  return entries.flatMap((e) => {
    const l = byName.get(e.pattern);
    return l && layerMemberNames(l).length > 1 ? layerMemberNames(l).map((n) => ({ pattern: n, precision: e.precision })) : [e];
  });
}

/** POSIX shell quoting, only where needed (plain layer names stay as they are). */
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_./:=,@%+-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * `--layerPrecisions=a:fp32,b:fp32 --layerOutputTypes=a:fp32,b:fp32 --precisionConstraints=obey`
 * (one line). trtexec splits the list at commas, so a layer name with a comma cannot be named.
 */
export function trtexecFlags(entries: readonly PlanEntry[]): string {
  const spec = entries.map((e) => `${e.pattern}:${TRTEXEC_PRECISION[e.precision]}`).join(",");
  const flags = entries.length ? [`--layerPrecisions=${spec}`, `--layerOutputTypes=${spec}`] : [];
  flags.push("--precisionConstraints=obey");
  return flags.map(shellQuote).join(" ");
}

/** `--layer-precisions a:float32 b:float32 --precision-constraints obey` (one line). */
export function polygraphyArgs(entries: readonly PlanEntry[]): string {
  const parts: string[] = [];
  if (entries.length) parts.push("--layer-precisions", ...entries.map((e) => shellQuote(`${e.pattern}:${POLYGRAPHY_PRECISION[e.precision]}`)));
  parts.push("--precision-constraints", "obey");
  return parts.join(" ");
}

/** Layer names trtexec cannot express (commas split its lists). */
export function trtexecUnsafeNames(entries: readonly PlanEntry[]): string[] {
  return entries.map((e) => e.pattern).filter((n) => n.includes(","));
}
