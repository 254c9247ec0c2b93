/**
 * Degenerate references (docs/precision.md, "Degenerate references"): a graph output whose
 * reference values carry no signal under the inputs used, so any verdict on it is noise.
 *
 * - `nonfinite`: no finite value (all NaN/Inf) — the fp32 reference itself is broken; never a
 *   pass (exit 1), --allow-degenerate does not change that;
 * - `zero`: every value is exactly 0;
 * - `below-resolution`: max |x| is below the smallest normal number of the precision the
 *   output was produced in (fp16 6.1e-5, fp8 1.6e-2, else fp32's 1.2e-38): the candidate can
 *   only hold subnormals or zeros, so its relative error is rounding noise;
 * - `constant`: std <= u·|mean| with u the unit roundoff of that precision (fp16 2^-11, bf16
 *   2^-8, fp8 2^-4, int8 2^-8, fp32 2^-24): the variation is below the precision's
 *   resolution (a saturated output, e.g. a softmax or sigmoid pinned at 1).
 * Tensors of one element are never `constant`. Empty tensors are not judged.
 */
import type { Precision } from "../core/host-tensor.js";
import { opt, optionText, type MessagePart } from "../core/errors.js";
import { spelled, type Hooks } from "../core/hooks.js";
import { tensorStats } from "../numeric/index.js";
import { fmt } from "./tolerance.js";

export type DegenerateKind = "nonfinite" | "zero" | "below-resolution" | "constant";

export interface DegenerateReference {
  tensor: string;
  kind: DegenerateKind;
  /** One line: what is wrong and the fix. */
  message: string;
}

const MIN_NORMAL: Record<Precision, number> = { fp32: 2 ** -126, fp16: 2 ** -14, bf16: 2 ** -126, fp8: 2 ** -6, int8: 2 ** -126 };
const UNIT_ROUNDOFF: Record<Precision, number> = { fp32: 2 ** -24, fp16: 2 ** -11, bf16: 2 ** -8, fp8: 2 ** -4, int8: 2 ** -8 };

const FIX = optionText`the verdict would be noise — load real inputs (${opt("loadInputs")}) or give realistic ranges (${opt("valRange")}); ${opt("allowDegenerate")} gives the plain verdict`.parts;

/**
 * Why the reference values `ref` of graph output `tensor` are degenerate, or null; the message
 * spells the options of its advice as `hooks.spell` does (by name by default).
 */
export function degenerateReference(tensor: string, ref: Float32Array, precision: Precision, hooks: Pick<Hooks, "spell"> = {}): DegenerateReference | null {
  const d = degenerateText(tensor, ref, precision);
  return d && { tensor, kind: d.kind, message: spelled(hooks, d) };
}

/** degenerateReference's finding with its message in parts (core/errors.ts optionText), or null. */
export function degenerateText(tensor: string, ref: Float32Array, precision: Precision): { kind: DegenerateKind; message: string; parts: MessagePart[] } | null {
  const text = (kind: DegenerateKind, t: ReturnType<typeof optionText>) => ({ kind, ...t });
  if (ref.length === 0) return null;
  const s = tensorStats(ref);
  const bad = s.nanCount + s.posInfCount + s.negInfCount;
  const head = `reference output '${tensor}' is degenerate under these inputs`;
  if (bad === s.numel) {
    return text("nonfinite", optionText`reference output '${tensor}' has no finite value (${s.nanCount} nan, ${s.posInfCount + s.negInfCount} inf): the fp32 reference itself is broken — find where with trt-debug validate MODEL --fp32`);
  }
  if (s.absMax === 0) return text("zero", optionText`${head}: every value is 0; ${FIX}`);
  const minNormal = MIN_NORMAL[precision] ?? MIN_NORMAL.fp32;
  if (s.absMax < minNormal) {
    return text("below-resolution", optionText`${head}: max |x| ${fmt(s.absMax)} is below ${precision}'s smallest normal ${fmt(minNormal)}; ${FIX}`);
  }
  const u = UNIT_ROUNDOFF[precision] ?? UNIT_ROUNDOFF.fp32;
  if (s.numel - bad > 1 && s.std <= u * Math.abs(s.mean)) {
    return text("constant", optionText`${head}: every value is ~${fmt(s.mean)} (std ${fmt(s.std)}, below ${precision}'s resolution at that magnitude); ${FIX}`);
  }
  return null;
}
