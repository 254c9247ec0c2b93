/**
 * What `run`/`validate`/`compare`/`bisect --int8` need: read the calibration cache and build the
 * model's int8 policy once, resolve which layers run in int8 for each requested assignment,
 * and a JSON-friendly report of what happened (cache read, fallbacks).
 */
import { opt, optionText, UserError } from "../core/errors.js";
import { spelled, type Hooks, type Warn } from "../core/hooks.js";
import type { Precision } from "../core/host-tensor.js";
import type { LoadedModel } from "../onnx/model.js";
import type { TypeMap } from "../onnx/infer.js";
import { readCalibrationCache, withSidecarAmax, type CalibrationCache } from "./cache.js";
import { makeInt8Policy, resolveInt8, DEFAULT_INT8_RANGE, type Int8Fallback, type Int8Policy, type Int8Range, type Int8Resolution, type QuantType } from "../precision/int8.js";

/** The command line's int8 settings. */
export interface Int8RunArgs {
  /** `--calibration-cache FILE` (TensorRT cache of any version, or the JSON sidecar). */
  calibrationCache?: string;
  /** Precision of layers that cannot run in int8: fp16 (`--int8 --fp16`), bf16, or fp32 (default). */
  fallback?: Precision;
  /** `--int8-range 128|127`: activation clamp [-128,127] (default) or [-127,127]. */
  range?: Int8Range;
  /** The quantized type: int8 (default) or scaled fp8 e4m3fn (`convert --fp8`; docs/int8.md "FP8"). */
  qtype?: QuantType;
  /** Ranges given in memory (a Q/DQ model's scales, `bisect --candidate QDQ.onnx`); `calibrationCache` then names where they came from. */
  cache?: CalibrationCache;
  /** "inputs": explicit quantization's placement (precision/int8.ts Int8Options.placement). */
  placement?: "inputs";
}

export interface CacheInfo {
  path: string;
  /** "tensorrt" (text cache), "json" (trt-debug sidecar) or "qdq" (a Q/DQ model's QuantizeLinear scales). */
  source: "tensorrt" | "json" | "qdq";
  trt_version: string;
  algorithm: string;
  tensors: number;
}

/** The int8 part of a run's result. */
export interface Int8Report {
  mode: "implicit" | "explicit";
  /** What the quantized layers quantize to: int8, or fp8 (scaled e4m3fn, scale = amax/448). */
  type: QuantType;
  cache: CacheInfo | null;
  /** Activation clamp range, e.g. "[-128,127]". */
  activation_range: string;
  /** "[-127,127]" (int8), or "[-448,448]" (fp8 e4m3fn with per-channel scale amax/448). */
  weight_range: "[-127,127]" | "[-448,448]";
  fallback_precision: Precision;
  int8_layers: number;
  layers: number;
  fallbacks: Int8Fallback[];
  /** Floating activations of the model that the cache has no range for. */
  missing_from_cache: string[];
  /** Cache entries that name no tensor of the model (stale cache?). */
  unknown_in_cache: string[];
  notes: string[];
}

export function cacheInfo(path: string, c: CalibrationCache): CacheInfo {
  return { path, source: c.source, trt_version: c.version, algorithm: c.algorithm, tensors: c.scales.size };
}

/** "TensorRT 8.6.1" for "8601", "TensorRT 10.3.0" for "100300" (best effort), else the digits. */
export function trtVersionName(v: string): string {
  if (/^\d{4}$/.test(v)) return `TensorRT ${v[0]}.${v[1]}.${Number(v.slice(2))}`;
  if (/^\d{6}$/.test(v)) return `TensorRT ${Number(v.slice(0, 2))}.${Number(v.slice(2, 4))}.${Number(v.slice(4))}`;
  return `TensorRT version ${v}`;
}

export function describeCache(c: CacheInfo): string {
  if (c.source === "qdq") return `${c.path}: scales read from the Q/DQ model's QuantizeLinear nodes, ${c.tensors} tensors`;
  return `${c.path}: ${c.source === "json" ? "trt-debug JSON sidecar" : "TensorRT calibration cache"}, ${trtVersionName(c.trt_version)} (${c.trt_version}), algorithm ${c.algorithm}, ${c.tensors} tensors`;
}

export interface PreparedInt8 {
  resolution: Int8Resolution;
  report: Int8Report;
  cache: CalibrationCache | null;
}

/** What `--int8` needs for every run of one model: the cache (read once) and the model's int8 policy. */
export interface Int8Context {
  cache: CalibrationCache | null;
  /** One policy for every precision assignment of the model (an Executor's policy). */
  policy: Int8Policy;
  /** Where the cache was read from. */
  cachePath: string | null;
  /** fp8: the JSON sidecar whose exact amax a text cache was read with (calibration/cache.ts withSidecarAmax). */
  amaxFrom?: string;
}

/**
 * Read the calibration cache (if any) and build the model's int8 policy, once per model and
 * cache. Throws a UserError when the fallback is not fp32/fp16/bf16, or when the model has no
 * Q/DQ nodes and no cache was given.
 */
export async function loadInt8(m: LoadedModel, types: TypeMap, a: Int8RunArgs = {}): Promise<Int8Context> {
  const fallback = a.fallback ?? "fp32";
  if (fallback !== "fp32" && fallback !== "fp16" && fallback !== "bf16") {
    throw new UserError(`int8: the fallback precision must be fp32, fp16 or bf16 (got ${fallback})`, "int8");
  }
  let cache = a.cache ?? (a.calibrationCache ? await readCalibrationCache(a.calibrationCache) : null);
  // fp8 (scale amax/448): a text cache's exact amax from its JSON sidecar, when there is one
  let amaxFrom: string | null = null;
  if (a.qtype === "fp8" && !a.cache && cache && a.calibrationCache) ({ cache, sidecar: amaxFrom } = withSidecarAmax(cache, a.calibrationCache));
  const policy = makeInt8Policy(m, types, { cache, fallback, range: a.range ?? DEFAULT_INT8_RANGE, qtype: a.qtype, placement: a.placement });
  return { cache, policy, cachePath: a.calibrationCache ?? null, ...(amaxFrom ? { amaxFrom } : {}) };
}

/**
 * Resolve the int8 precisions of one requested assignment with a loaded context (the policy is
 * shared): which layers run in int8, the fallbacks, the report; warnings through `warn`.
 * `requested` holds "int8" for every layer that should run in int8 if it can.
 */
export function resolveInt8Run(ctx: Int8Context, m: LoadedModel, types: TypeMap, requested: readonly Precision[], warn: Warn = () => undefined): PreparedInt8 {
  const cache = ctx.cache;
  const res = resolveInt8(m, types, requested, { cache, policy: ctx.policy });
  const notes: string[] = [];
  if (res.mode === "explicit" && cache) {
    const w = optionText`${m.path} has QuantizeLinear/DequantizeLinear nodes (explicit quantization): its own Q/DQ nodes run as written and ${opt("int8.calibrationCache")} ${ctx.cachePath} is not used`;
    warn(w.message, w.parts);
    notes.push("explicit quantization: the calibration cache is not used");
  }
  if (res.mode === "implicit" && ctx.amaxFrom) notes.push(`fp8 scales amax/448 from the exact amax of ${ctx.amaxFrom}`);
  if (res.mode === "implicit") {
    if (res.unknownInCache.length) {
      warn(
        `${ctx.cachePath}: ${res.unknownInCache.length} cache entr${res.unknownInCache.length === 1 ? "y names" : "ies name"} no tensor of ${m.path} (e.g. '${res.unknownInCache[0]}'): a stale cache or one made for another model? (\`trt-debug calib check\` lists them)`,
      );
    }
    const q = ctx.policy.data.qtype;
    if (res.int8Layers === 0 && requested.includes(q)) {
      const w = optionText`${opt(q === "fp8" ? "qtype" : "int8")}: no layer of ${m.path} can run in ${q} with ${ctx.cachePath}; see the fallbacks`;
      warn(w.message, w.parts);
    }
  }
  const report: Int8Report = {
    mode: res.mode,
    type: ctx.policy.data.qtype,
    cache: cache ? cacheInfo(ctx.cachePath!, cache) : null,
    activation_range: ctx.policy.data.qtype === "fp8" ? "[-448,448]" : res.range === 128 ? "[-128,127]" : "[-127,127]",
    weight_range: ctx.policy.data.qtype === "fp8" ? "[-448,448]" : "[-127,127]",
    fallback_precision: res.fallback,
    int8_layers: res.int8Layers,
    layers: m.graph.layers.length,
    fallbacks: res.fallbacks,
    missing_from_cache: res.missingFromCache,
    unknown_in_cache: res.unknownInCache,
    notes,
  };
  return { resolution: res, report, cache };
}

/**
 * Read the cache (if any) and resolve the int8 precisions. `requested` holds "int8" for every
 * layer that should run in int8 if it can (the run's default plus plan/overrides).
 */
export async function prepareInt8(
  m: LoadedModel,
  types: TypeMap,
  requested: readonly Precision[],
  a: Int8RunArgs = {},
  warn: Warn = () => undefined,
): Promise<PreparedInt8> {
  return resolveInt8Run(await loadInt8(m, types, a), m, types, requested, warn);
}

/** One-line summary and one line per fallback, as the CLI prints them (options spelled as `hooks.spell` does). */
export function int8ReportLines(r: Int8Report, maxFallbacks = Infinity, hooks: Pick<Hooks, "spell"> = {}): string[] {
  const out: string[] = [];
  if (r.cache) out.push(`${r.type ?? "int8"}: read ${describeCache(r.cache)}`);
  if (r.mode === "explicit") out.push(`int8: explicit quantization (the model's QuantizeLinear/DequantizeLinear nodes run as written; no calibration used)`);
  const q = r.type ?? "int8";
  out.push(
    `${q}: ${r.int8_layers} of ${r.layers} layers in ${q === "fp8" ? "fp8 (e4m3fn, scale amax/448)" : "int8"} (activations ${r.activation_range}, weights per channel ${r.weight_range}), ${r.fallbacks.length} fallback${r.fallbacks.length === 1 ? "" : "s"} to ${r.fallback_precision}`,
  );
  for (const f of r.fallbacks.slice(0, maxFallbacks)) out.push(`  fallback ${f.layer} (${f.op_type}) -> ${f.precision}: ${f.reason}`);
  if (r.fallbacks.length > maxFallbacks) out.push(spelled(hooks, optionText`  ... and ${r.fallbacks.length - maxFallbacks} more fallbacks (all of them are in ${opt("json", "the result's int8.fallbacks")})`));
  return out;
}

/**
 * The layers an explicitly quantized (Q/DQ) model quantizes, by name: explicit quantization's
 * rule (precision/int8.ts resolveInt8: every floating activation input comes from a
 * DequantizeLinear), the Q/DQ nodes themselves excluded.
 */
export async function explicitlyQuantizedLayers(m: LoadedModel, types: TypeMap): Promise<Set<string>> {
  const ctx = await loadInt8(m, types, {});
  const res = resolveInt8Run(ctx, m, types, m.graph.layers.map(() => "int8" as const)).resolution;
  return new Set(m.graph.layers.filter((l, i) => res.precisions[i] === "int8" && l.opType !== "QuantizeLinear" && l.opType !== "DequantizeLinear").map((l) => l.name));
}
