/**
 * `bisect REFERENCE.onnx --candidate CANDIDATE.onnx` (issue 11, deliverable 3): the search starts
 * from a strongly typed candidate's own types. The candidate's per-layer precisions are read by
 * layer name and become the starting plan on the reference (its fp32 layers, and layers of the
 * other reduced type, as overrides; every other layer in the candidate's reduced type), so the
 * search decides which of the candidate's reduced layers return to fp32.
 *
 * A Q/DQ candidate (int8, explicitly quantized): its quantization becomes the start instead. The
 * layers whose floating activation inputs all come from a DequantizeLinear (explicit
 * quantization's rule, precision/int8.ts resolveInt8) start in int8, the others pinned to fp32;
 * the activation scales are read from its QuantizeLinear nodes (calibration/qdq-scales.ts) and
 * the reference runs with them in explicit placement (Q/DQ on a quantized layer's inputs only).
 * Weights are quantized with the scales of the candidate's weight DequantizeLinear nodes (per
 * channel or per tensor; node and input matched by name, calibration/qdq-scales.ts
 * qdqWeightScales), max|w_c|/127 (/448 for fp8) where the candidate has none. Pinning a layer
 * removes its Q/DQ: it reads the unquantized fp32 tensors.
 */
import { opt, optionError, UserError, userError } from "../core/errors.js";
import { isFloatDType } from "../core/host-tensor.js";
import { isGlob, type PlanEntry } from "../precision/plan.js";
import { prepareModelFile } from "../runtime/capture-runs.js";
import { declaredPrecision, typedReducedPrecisions } from "../precision/typed.js";
import { loadModel, type LoadedModel } from "../onnx/model.js";
import type { ModelProto } from "onnx-buf";
import type { CalibrationCache, WeightScales } from "../precision/int8.js";
import { hasQdq, qdqScales, qdqWeightScales } from "../calibration/qdq-scales.js";
import { explicitlyQuantizedLayers } from "../calibration/int8-run.js";
import type { ModelArgs } from "./model-inputs.js";

export interface CandidateStart {
  /** The candidate's reduced type (bf16 when it declares any bf16 tensor, else fp16), or int8 for a Q/DQ candidate. */
  precision: "fp16" | "bf16" | "int8" | "fp8";
  /** A Q/DQ candidate: its activation scales (a cache read from its Q nodes); null for a typed candidate. */
  qdq: { cache: CalibrationCache; int8Layers: string[]; fallback: "fp32" | "fp16" | "bf16" } | null;
  /** Starting overrides `LAYER:PRECISION` for the reference (exact names). */
  layerPrecisions: PlanEntry[];
  /** Reference layers with float outputs that the candidate does not have (run in `precision`). */
  missing: string[];
}

export async function candidateStart(reference: string, candidate: string, a: Pick<ModelArgs, "fusion" | "allowExternalDataOutside">): Promise<CandidateStart> {
  const ref = await prepareModelFile(reference, a);
  if (ref.model.typed) throw userError`${reference}: the reference is strongly typed; give the fp32 model first and the typed one as ${opt("candidate")}`;
  if (hasQdq(loadModel(candidate, { allowExternalDataOutside: a.allowExternalDataOutside }).proto)) return qdqCandidateStart(reference, candidate, ref, a);
  const cand = await prepareModelFile(candidate, a);
  if (!cand.model.typed || !cand.model.typed.precisions) throw userError`${opt("candidate")} ${candidate}: neither strongly typed (float16/bfloat16 tensors) nor explicitly quantized (Q/DQ); convert one with trt-debug convert --fp16 or --int8, or search with ${opt("precision.fp16", 'precision "fp16"')}/${opt("precision.bf16", '"bf16"')}`;
  const reduced = typedReducedPrecisions(cand.model);
  const precision = reduced[0] === "bf16" ? "bf16" : "fp16";
  const declared = new Map(cand.model.graph.layers.map((l, i) => [l.name, cand.model.typed!.precisions![i]!]));
  const layerPrecisions: PlanEntry[] = [];
  const missing: string[] = [];
  for (const l of ref.model.graph.layers) {
    if (!l.outputs.some((t) => t !== "" && isFloatDType(ref.types.get(t)?.dtype ?? "int64"))) continue;
    const d = declared.get(l.name);
    if (d === undefined) {
      missing.push(l.name);
      continue;
    }
    if (d === precision) continue;
    if (isGlob(l.name)) throw optionError("candidate", `layer '${l.name}' has glob characters in its name and cannot be a starting-plan entry; rename it`);
    layerPrecisions.push({ pattern: l.name, precision: d });
  }
  if (missing.length === ref.model.graph.layers.length) throw new UserError(`candidate ${candidate}: no layer name in common with ${reference}; the candidate must keep the reference's node names`, "candidate");
  return { precision, qdq: null, layerPrecisions, missing };
}

async function qdqCandidateStart(reference: string, candidate: string, ref: Awaited<ReturnType<typeof prepareModelFile>>, a: Pick<ModelArgs, "fusion" | "allowExternalDataOutside">): Promise<CandidateStart> {
  if (hasQdq(ref.model.proto)) throw userError`${reference}: the reference has QuantizeLinear/DequantizeLinear nodes; give the fp32 model first and the Q/DQ one as ${opt("candidate")}`;
  const candProto = loadModel(candidate, { allowExternalDataOutside: a.allowExternalDataOutside }).proto;
  const scales = qdqScales(candProto, candidate);
  const weights = candidateWeightScales(ref.model, candProto, candidate);
  // which of the candidate's layers its Q/DQ quantize: explicit quantization's rule
  const cand = await prepareModelFile(candidate, a);
  const quantized = await explicitlyQuantizedLayers(cand.model, cand.types);
  const layerPrecisions: PlanEntry[] = [];
  const missing: string[] = [];
  const known = new Set(cand.model.graph.layers.map((l) => l.name));
  const int8Layers: string[] = [];
  // a strongly typed Q/DQ candidate (convert --int8 --fp16): its other layers start in their declared type
  const declared = new Map(cand.model.graph.layers.map((l, i) => [l.name, cand.model.typed?.precisions?.[i] ?? "fp32"]));
  const fallback = typedReducedPrecisions(cand.model)[0] === "bf16" ? "bf16" : typedReducedPrecisions(cand.model)[0] === "fp16" ? "fp16" : "fp32";
  for (const l of ref.model.graph.layers) {
    if (!l.outputs.some((t) => t !== "" && isFloatDType(ref.types.get(t)?.dtype ?? "int64"))) continue;
    if (!known.has(l.name)) {
      missing.push(l.name);
      continue;
    }
    if (quantized.has(l.name)) {
      int8Layers.push(l.name);
      continue;
    }
    if (isGlob(l.name)) throw optionError("candidate", `layer '${l.name}' has glob characters in its name and cannot be a starting-plan entry; rename it`);
    const d = declared.get(l.name)!;
    layerPrecisions.push({ pattern: l.name, precision: d === "fp16" || d === "bf16" ? d : "fp32" });
  }
  if (missing.length === ref.model.graph.layers.length) throw new UserError(`candidate ${candidate}: no layer name in common with ${reference}; the candidate must keep the reference's node names`, "candidate");
  if (int8Layers.length === 0) throw new UserError(`candidate ${candidate}: no layer of ${reference} is quantized in the candidate (no layer whose activation inputs all come from a DequantizeLinear); there is nothing to search`, "candidate");
  // a typed candidate: its quantized layers' outputs keep their declared types (an int8 layer may write fp32 among fp16 layers)
  const outputTypes = new Map<string, "fp32" | "fp16" | "bf16">();
  for (const [t, e] of cand.model.typed?.declared ?? []) outputTypes.set(t, declaredPrecision(e) as "fp32" | "fp16" | "bf16");
  return { precision: scales.qtype, qdq: { cache: { ...scales.cache, weights, ...(outputTypes.size ? { outputTypes } : {}) }, int8Layers, fallback }, layerPrecisions, missing };
}

/**
 * The candidate's weight scales on the reference's initializers: the weight DequantizeLinear
 * feeding input k of candidate node N gives the scales of the initializer at input k of the
 * reference's node N (same name).
 */
function candidateWeightScales(ref: LoadedModel, cand: ModelProto, candidate: string): Map<string, WeightScales> {
  const refNodes = new Map(ref.proto.graph!.node.map((n) => [n.name, n]));
  const out = new Map<string, WeightScales>();
  for (const w of qdqWeightScales(cand, candidate)) {
    const t = refNodes.get(w.node)?.input[w.input];
    const init = t ? ref.graph.initializers.get(t) : undefined;
    if (!t || !init) continue;
    const dims = init.dims.map(Number);
    const axis = w.axis === null ? null : w.axis < 0 ? w.axis + dims.length : w.axis;
    if (axis !== null && (axis < 0 || axis >= dims.length || dims[axis] !== w.scale.length)) {
      throw optionError("candidate", `${candidate}: node '${w.dequantize}' has ${w.scale.length} weight scales along axis ${w.axis}, but weight '${t}' of layer '${w.node}' has shape [${dims.join(",")}] in the reference; the candidate must quantize the reference's weights`);
    }
    const prev = out.get(t);
    if (prev && (prev.axis !== axis || prev.scale.length !== w.scale.length || prev.scale.some((v, i) => v !== w.scale[i]))) {
      throw optionError("candidate", `${candidate}: weight '${t}' is dequantized with two different sets of scales (nodes '${prev.key}' and '${w.dequantize}'); give a shared weight one`);
    }
    out.set(t, { scale: w.scale, axis, key: w.dequantize, qmin: w.qmin });
  }
  return out;
}
