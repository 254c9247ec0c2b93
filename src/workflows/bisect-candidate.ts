/**
 * `bisect REFERENCE.onnx --candidate CANDIDATE.onnx` (issue 11, deliverable 3): the search starts
 * from a strongly typed candidate's own types. The candidate's per-layer precisions are read by
 * layer name and become the starting plan on the reference (its fp32 layers, and layers of the
 * other reduced type, as overrides; every other layer in the candidate's reduced type), so the
 * search decides which of the candidate's reduced layers return to fp32.
 */
import { opt, optionError, UserError, userError } from "../core/errors.js";
import { isFloatDType } from "../core/host-tensor.js";
import { isGlob, type PlanEntry } from "../precision/plan.js";
import { prepareModelFile } from "../runtime/capture-runs.js";
import { typedReducedPrecisions } from "../precision/typed.js";
import type { ModelArgs } from "./model-inputs.js";

export interface CandidateStart {
  /** The candidate's reduced type (bf16 when it declares any bf16 tensor, else fp16). */
  precision: "fp16" | "bf16";
  /** Starting overrides `LAYER:PRECISION` for the reference (exact names). */
  layerPrecisions: PlanEntry[];
  /** Reference layers with float outputs that the candidate does not have (run in `precision`). */
  missing: string[];
}

export async function candidateStart(reference: string, candidate: string, a: Pick<ModelArgs, "fusion" | "allowExternalDataOutside">): Promise<CandidateStart> {
  const ref = await prepareModelFile(reference, a);
  const cand = await prepareModelFile(candidate, a);
  if (ref.model.typed) throw userError`${reference}: the reference is strongly typed; give the fp32 model first and the typed one as ${opt("candidate")}`;
  if (!cand.model.typed || !cand.model.typed.precisions) throw userError`${opt("candidate")} ${candidate}: not a strongly typed model (no float16/bfloat16 tensors); convert one with trt-debug convert, or search with ${opt("precision.fp16", 'precision "fp16"')}/${opt("precision.bf16", '"bf16"')}`;
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
  return { precision, layerPrecisions, missing };
}
