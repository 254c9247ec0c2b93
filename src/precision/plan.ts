/**
 * Precision plans: which precision each layer runs in.
 *
 * A plan has a default precision and an ordered list of (pattern, precision) overrides.
 * Resolution for a layer: an exact-name entry wins; otherwise the LAST glob entry that
 * matches; otherwise the default. A pattern that matches no layer is an error (TensorRT
 * silently ignores unknown names; we don't).
 */
import { aboutOption, UserError } from "../core/errors.js";
import { readTextChecked } from "../io/safe-read.js";
import { PRECISIONS, type Precision } from "../core/host-tensor.js";
import { layerMemberNames, type Layer } from "../onnx/model.js";

export const PLAN_FORMAT = "trt-debug/precision-plan@1";

export interface PlanEntry {
  pattern: string;
  precision: Precision;
}

export interface PrecisionPlan {
  format: typeof PLAN_FORMAT;
  /** Precision of every layer no entry names. */
  default: Precision;
  layers: PlanEntry[];
  /** Free-form provenance (tool, model, reason); ignored when resolving. */
  meta?: Record<string, unknown>;
}

const ALIASES: Record<string, Precision> = {
  fp32: "fp32", float32: "fp32", float: "fp32",
  fp16: "fp16", float16: "fp16", half: "fp16",
  bf16: "bf16", bfloat16: "bf16",
  fp8: "fp8", float8: "fp8",
  int8: "int8",
};

export function parsePrecision(s: string, where: string): Precision {
  const p = ALIASES[s.trim().toLowerCase()];
  if (!p) throw new UserError(`${where}: unknown precision '${s}'; use one of ${PRECISIONS.join(", ")}`);
  return p;
}

/** `layerPrecisions` entries `PATTERN:PREC` (split at the last colon: layer names may contain colons). */
export function parseLayerPrecisions(args: readonly string[]): PlanEntry[] {
  return args.map((a) => {
    const i = a.lastIndexOf(":");
    if (i <= 0 || i === a.length - 1) {
      throw new UserError(`layerPrecisions: '${a}' is not PATTERN:PRECISION (e.g. 'ln1/*:fp32')`, "layerPrecisions");
    }
    try {
      return { pattern: a.slice(0, i), precision: parsePrecision(a.slice(i + 1), `layerPrecisions '${a}'`) };
    } catch (e) {
      throw aboutOption(e, "layerPrecisions");
    }
  });
}

export function isGlob(p: string): boolean {
  return /[*?[]/.test(p);
}

export function globToRegExp(p: string): RegExp {
  let re = "^";
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[") {
      const j = p.indexOf("]", i + 1);
      if (j < 0) re += "\\[";
      else {
        let body = p.slice(i + 1, j);
        if (body.startsWith("!")) body = "^" + body.slice(1);
        re += "[" + body.replace(/\\/g, "\\\\") + "]";
        i = j;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, "\\$&");
  }
  return new RegExp(re + "$");
}

/**
 * The precision each entry list assigns to each layer (by execution index), undefined where no
 * entry applies. Throws for patterns that match nothing.
 */
export function resolveEntries(entries: readonly PlanEntry[], layers: readonly Layer[], source: string): (Precision | undefined)[] {
  // A fused group (Layer.nodeNames) is selected by its name or any of its ONNX node names.
  const byName = new Map(layers.flatMap((l) => layerMemberNames(l).map((n) => [n, l.index] as const)));
  for (const l of layers) byName.set(l.name, l.index);
  const out: (Precision | undefined)[] = layers.map(() => undefined);
  const exact = new Set<number>();
  for (const e of entries) {
    if (isGlob(e.pattern)) continue;
    const i = byName.get(e.pattern);
    if (i === undefined) {
      throw new UserError(`${source}: no layer is named '${e.pattern}'; names are the ONNX node names (see \`trt-debug inspect\`), or use a glob such as '${e.pattern}*'`);
    }
    out[i] = e.precision;
    exact.add(i);
  }
  for (const e of entries) {
    if (!isGlob(e.pattern)) continue;
    const re = globToRegExp(e.pattern);
    let hit = false;
    for (const l of layers) {
      if (!re.test(l.name) && !layerMemberNames(l).some((n) => re.test(n))) continue;
      hit = true;
      if (!exact.has(l.index)) out[l.index] = e.precision;
    }
    if (!hit) throw new UserError(`${source}: pattern '${e.pattern}' matches no layer; check the layer names with \`trt-debug inspect\``);
  }
  return out;
}

/** Precision of every layer (by execution index) under a plan. */
export function resolvePlan(plan: PrecisionPlan, layers: readonly Layer[], source = "precision plan"): Precision[] {
  return resolveEntries(plan.layers, layers, source).map((p) => p ?? plan.default);
}

export function makePlan(defaultPrecision: Precision, entries: PlanEntry[], meta?: Record<string, unknown>): PrecisionPlan {
  return { format: PLAN_FORMAT, default: defaultPrecision, layers: entries, ...(meta ? { meta } : {}) };
}

export function parsePlanJson(text: string, file: string): PrecisionPlan {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message}); pass a plan written by \`trt-debug bisect -o\``);
  }
  const o = j as Record<string, unknown>;
  if (!o || typeof o !== "object" || o.format !== PLAN_FORMAT) {
    throw new UserError(`${file}: not a trt-debug precision plan (expected "format": "${PLAN_FORMAT}")`);
  }
  const def = parsePrecision(String(o.default ?? ""), `${file}: "default"`);
  if (!Array.isArray(o.layers)) throw new UserError(`${file}: "layers" must be a list of {"pattern", "precision"}`);
  const layers = o.layers.map((e: unknown, k: number) => {
    const r = e as Record<string, unknown>;
    if (!r || typeof r.pattern !== "string" || typeof r.precision !== "string") {
      throw new UserError(`${file}: layers[${k}] must be {"pattern": string, "precision": string}`);
    }
    return { pattern: r.pattern, precision: parsePrecision(r.precision, `${file}: layers[${k}]`) };
  });
  return { format: PLAN_FORMAT, default: def, layers, ...(o.meta && typeof o.meta === "object" ? { meta: o.meta as Record<string, unknown> } : {}) };
}

export function readPlan(file: string): PrecisionPlan {
  return parsePlanJson(readTextChecked(file, "plan"), file);
}

export function planToJson(p: PrecisionPlan): string {
  return JSON.stringify(p, null, 2) + "\n";
}
