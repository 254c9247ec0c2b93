/**
 * INT8 emulation (docs/int8.md, "INT8 emulation").
 *
 * Two modes, chosen by the model:
 *
 *  - implicit quantization (TensorRT with a calibration cache): a layer asked to run in int8
 *    does so only if its op is int8-capable (INT8_OPS) AND every floating activation it reads
 *    or writes has a usable range in the cache; otherwise it falls back (fp16/bf16 when that
 *    was enabled too, else fp32) and the fallback is reported with its reason. An int8 layer
 *    sees quantize→dequantize of its activation inputs (per-tensor scale from the cache,
 *    symmetric, zero point 0, clamp [-128,127] by default or [-127,127]), per-output-channel
 *    fake-quantized weights (clamp [-127,127]), unquantized bias, computes in fp32, and its
 *    output is quantize→dequantized with the output tensor's scale when every consumer runs in
 *    int8 (else it is emitted in the fallback precision);
 *  - explicit quantization (the graph has QuantizeLinear/DequantizeLinear): the graph's own
 *    Q/DQ nodes run as written; no calibration is used.
 *
 * Both are a TransformPolicy (see rewrite.ts) plus a precision-resolution step that turns the
 * requested per-layer precisions into the ones that actually run. The policy is built once per
 * model and cache (makeInt8Policy) and serves every assignment: it decides from the assignment
 * it is given whether an int8 layer quantizes its output, and reports that decision as its
 * context, so executors and bisection key their caches by it.
 */
import type { TensorProto_DataType } from "onnx-buf";
import { opt, optionError, UserError, userError } from "../core/errors.js";
import { isFloatDType, type DType, type Precision } from "../core/host-tensor.js";
import type { Layer, LoadedModel } from "../onnx/model.js";
import type { TypeMap } from "../onnx/infer.js";
import { tensorProtoToHost } from "../onnx/tensor.js";
import { onnxToDType } from "../core/dtype.js";
import { absMax, FP8E4M3FN_MAX } from "../numeric/index.js";
import { floatPolicy, type Transform, type TransformPolicy } from "./rewrite.js";
import { canUpgrade, UPGRADE_MIN } from "../onnx/opset-upgrade.js";

/** Ops with weights quantized per output channel (input 1), bias (input 2) kept in fp32. */
export const INT8_WEIGHTED_OPS: readonly string[] = ["Conv", "ConvTranspose", "MatMul", "Gemm"];
/** Pointwise ops that run in int8. */
export const INT8_POINTWISE_OPS: readonly string[] = ["Add", "Sub", "Mul", "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh"];
/** Pooling ops that run in int8. */
export const INT8_POOLING_OPS: readonly string[] = ["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"];
/** Data-movement ops that run in int8 (TensorRT shuffle/concat/slice layers). */
export const INT8_DATA_MOVEMENT_OPS: readonly string[] = ["Concat", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Identity"];
/** Every int8-capable op (default ONNX domain). */
export const INT8_OPS: ReadonlySet<string> = new Set([...INT8_WEIGHTED_OPS, ...INT8_POINTWISE_OPS, ...INT8_POOLING_OPS, ...INT8_DATA_MOVEMENT_OPS]);

/**
 * Inputs of an int8 layer that are parameters, never quantized and needing no range
 * (op type -> input indices): the bias of Conv/ConvTranspose/Gemm, Clip's bounds.
 */
export const INT8_UNQUANTIZED_INPUTS: Readonly<Record<string, readonly number[]>> = {
  Conv: [2],
  ConvTranspose: [2],
  Gemm: [2],
  Clip: [1, 2],
};

/** Clamp range of activations: 128 = [-128,127] (TensorRT's, the default), 127 = [-127,127]. */
export type Int8Range = 127 | 128;
export const DEFAULT_INT8_RANGE: Int8Range = 128;
/** Weights are always symmetric [-127,127]. */
export const WEIGHT_QMIN = -127;
export const WEIGHT_QMAX = 127;

export function parseInt8Range(v: unknown, option = "int8.range"): Int8Range {
  const s = String(v).trim();
  if (s === "127" || s === "[-127,127]") return 127;
  if (s === "128" || s === "[-128,127]") return 128;
  throw new UserError(`${option} ${JSON.stringify(String(v))}: use 128 for [-128,127] (TensorRT's activation range, the default) or 127 for [-127,127]`, option);
}

export function isQdqOp(l: Layer): boolean {
  return (l.domain === "" || l.domain === "ai.onnx" || l.domain === "com.microsoft") && (l.opType === "QuantizeLinear" || l.opType === "DequantizeLinear");
}

/** True when the graph quantizes explicitly (has QuantizeLinear/DequantizeLinear nodes). */
export function isExplicitlyQuantized(m: LoadedModel): boolean {
  return m.graph.layers.some(isQdqOp);
}

function attrInt(l: Layer, name: string, def: number): number {
  const a = l.node.attribute.find((x) => x.name === name);
  return a ? Number(a.i) : def;
}

/**
 * Whether input `k` of a fused group (Layer.nodes) belongs to a node after the primary one:
 * a bias or an activation's parameter of the epilogue (computed in fp32 inside the kernel,
 * never quantized), or a residual sum's other operand.
 */
export function isEpilogueInput(l: Layer, k: number): boolean {
  return k >= l.node.input.length;
}

/**
 * How an int8 layer's constant (initializer) input `k` is quantized: per output channel for the
 * weight of Conv/ConvTranspose/Gemm/MatMul (axis 0 Conv, 1 ConvTranspose, Gemm 0 with transB=1
 * else 1, the last axis of a MatMul weight of rank >= 2), per tensor for every other constant.
 * Returns null for inputs that are never quantized (bias, Clip bounds).
 */
export function constantQuantization(l: Layer, k: number, rank: number): { kind: "per-channel"; axis: number } | { kind: "per-tensor" } | null {
  if (INT8_UNQUANTIZED_INPUTS[l.opType]?.includes(k) || isEpilogueInput(l, k)) return null;
  if (k === 1) {
    switch (l.opType) {
      case "Conv":
        return rank >= 2 ? { kind: "per-channel", axis: 0 } : { kind: "per-tensor" };
      case "ConvTranspose":
        return rank >= 2 ? { kind: "per-channel", axis: 1 } : { kind: "per-tensor" };
      case "Gemm":
        return rank === 2 ? { kind: "per-channel", axis: attrInt(l, "transB", 0) ? 0 : 1 } : { kind: "per-tensor" };
      case "MatMul":
        return rank >= 2 ? { kind: "per-channel", axis: rank - 1 } : { kind: "per-tensor" };
    }
  }
  return { kind: "per-tensor" };
}

// ---------------------------------------------------------------------------------------
// resolution

export type FallbackCode = "op-not-int8" | "no-range" | "zero-range" | "dtype" | "not-quantized-explicitly";

export interface Int8Fallback {
  /** Execution index. */
  index: number;
  layer: string;
  op_type: string;
  /** What the layer runs in instead. */
  precision: Precision;
  code: FallbackCode;
  /** The tensor that caused it (missing range, zero range, dtype), if any. */
  tensor: string | null;
  reason: string;
}

export interface Int8Options {
  /** Implicit mode's ranges; null/undefined only allowed for explicitly quantized models. */
  cache?: CalibrationCache | null;
  /** Where layers that cannot run in int8 go: fp16/bf16 when enabled with --int8, else fp32. */
  fallback?: Precision;
  /** Activation clamp range (default 128: [-128,127]). */
  range?: Int8Range;
  /**
   * The quantized type (implicit mode): int8 (default) or scaled fp8 e4m3fn (`convert --fp8`):
   * the layers assigned "fp8" get Q/DQ with scale amax/448 (amax: the cache's exact amax when
   * it has one (JSON sidecar), else 127 · its scale), per output channel for weights; see fp8Scale.
   */
  qtype?: QuantType;
  /**
   * "inputs": explicit quantization's placement on an fp32 model (`bisect REF --candidate
   * QDQ.onnx`, the scales read from the candidate's Q nodes): a quantized layer needs a range
   * on its activation inputs only and never quantizes its output (its consumers' input Q/DQ do,
   * as in a Q/DQ model). Default: implicit quantization's rules (ranges on inputs and outputs).
   */
  placement?: "inputs";
  /**
   * The model's policy, built once (makeInt8Policy with the same cache, fallback and range);
   * resolveInt8 builds one when absent.
   */
  policy?: Int8Policy;
}

export interface Int8Resolution {
  mode: "implicit" | "explicit";
  /** Precision each layer runs in (int8 only where it really does). */
  precisions: Precision[];
  /** The model's policy (valid for this and every other assignment of the model). */
  policy: Int8Policy;
  /** Every layer asked for int8 that runs in something else, in execution order. */
  fallbacks: Int8Fallback[];
  /** Layers running in int8. */
  int8Layers: number;
  fallback: Precision;
  range: Int8Range;
  /** Tensors the model has that need a range (floating activations) but the cache lacks. */
  missingFromCache: string[];
  /** Cache entries naming no tensor of the model (a stale or foreign cache). */
  unknownInCache: string[];
}

const OPSET_QDQ = 10;

/** Floating activation tensors of the model (graph inputs and node outputs, not initializers). */
export function floatActivations(m: LoadedModel, types: TypeMap): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (t: string) => {
    if (t === "" || seen.has(t) || m.graph.initializers.has(t)) return;
    const ty = types.get(t);
    if (!ty || !isFloatDType(ty.dtype)) return;
    seen.add(t);
    out.push(t);
  };
  for (const i of m.graph.inputs) add(i.name);
  for (const l of m.graph.layers) for (const o of l.outputs) add(o);
  return out;
}

function dtypeOf(m: LoadedModel, types: TypeMap, t: string): DType | null {
  const ty = types.get(t);
  if (ty) return ty.dtype;
  const init = m.graph.initializers.get(t);
  return init ? onnxToDType(init.dataType as TensorProto_DataType) : null;
}

/**
 * Decide which layers run in int8. `requested` is the per-layer precision after plans and
 * overrides (int8 = "int8 if eligible"). Throws a UserError when implicit quantization has no
 * cache.
 */
export function resolveInt8(m: LoadedModel, types: TypeMap, requested: readonly Precision[], o: Int8Options = {}): Int8Resolution {
  const policy = o.policy ?? makeInt8Policy(m, types, o);
  const { fallback, range } = policy.data;
  const layers = m.graph.layers;
  const explicit = policy.data.mode === "explicit";
  const q = policy.data.qtype;
  const precisions: Precision[] = [...requested];
  const fallbacks: Int8Fallback[] = [];
  const fall = (l: Layer, code: FallbackCode, tensor: string | null, reason: string) => {
    precisions[l.index] = fallback;
    fallbacks.push({ index: l.index, layer: l.name, op_type: l.opType, precision: fallback, code, tensor, reason });
  };
  const isFloat = (t: string) => {
    const d = dtypeOf(m, types, t);
    return d !== null && isFloatDType(d);
  };

  if (explicit) {
    if (m.opset >= 0 && m.opset < OPSET_QDQ) {
      throw new UserError(`${m.path}: QuantizeLinear/DequantizeLinear need opset >= ${OPSET_QDQ} (the model has opset ${m.opset})`);
    }
    const producedByDq = (t: string) => {
      const p = m.graph.producer.get(t);
      return p !== undefined && layers[p]!.opType === "DequantizeLinear";
    };
    for (const l of layers) {
      if (requested[l.index] !== q) continue;
      if (isQdqOp(l)) continue; // runs as written
      if (!INT8_OPS.has(l.opType) || (l.domain !== "" && l.domain !== "ai.onnx")) {
        fall(l, "not-quantized-explicitly", null, `op ${l.opType} runs in ${fallback}: explicitly quantized model, and ${l.opType} is not int8-capable`);
        continue;
      }
      const acts = l.inputs.filter((t, k) => t !== "" && isFloat(t) && !INT8_UNQUANTIZED_INPUTS[l.opType]?.includes(k) && !(isEpilogueInput(l, k) && m.graph.initializers.has(t)));
      const bad = acts.find((t) => !producedByDq(t));
      if (acts.length === 0 || bad !== undefined) {
        fall(l, "not-quantized-explicitly", bad ?? null, bad !== undefined ? `input '${bad}' does not come from a DequantizeLinear: the model does not quantize this layer` : `no floating input comes from a DequantizeLinear`);
      }
    }
    return {
      mode: "explicit",
      precisions,
      policy,
      fallbacks,
      int8Layers: precisions.filter((p) => p === q).length,
      fallback,
      range,
      missingFromCache: [],
      unknownInCache: [],
    };
  }

  const scales = policy.data.scales;
  const acts = floatActivations(m, types);
  const actSet = new Set(acts);
  const missingFromCache = acts.filter((t) => !scales.has(t));
  const unknownInCache = [...scales.keys()].filter((t) => !actSet.has(t) && !m.graph.initializers.has(t));

  const rangeProblem = (t: string, role: string): { code: FallbackCode; reason: string } | null => {
    const d = dtypeOf(m, types, t);
    if (d !== "float32") return { code: "dtype", reason: `${role} '${t}' is ${d ?? "of unknown type"}; ${q} emulation handles float32 tensors only` };
    const s = scales.get(t);
    if (s === undefined) return { code: "no-range", reason: `${role} '${t}' has no range in the calibration cache` };
    if (!(s > 0)) return { code: "zero-range", reason: `${role} '${t}' has range 0 in the calibration cache (it was all zeros during calibration)` };
    return null;
  };

  for (const l of layers) {
    if (requested[l.index] !== q) continue;
    if (!INT8_OPS.has(l.opType) || (l.domain !== "" && l.domain !== "ai.onnx")) {
      fall(l, "op-not-int8", null, `op ${l.opType}${l.domain ? ` (${l.domain})` : ""} is not ${q}-capable`);
      continue;
    }
    let problem: { code: FallbackCode; reason: string; tensor: string } | null = null;
    for (let k = 0; k < l.inputs.length && !problem; k++) {
      const t = l.inputs[k]!;
      if (t === "" || !isFloat(t)) continue;
      if (m.graph.initializers.has(t)) {
        const q = constantQuantization(l, k, m.graph.initializers.get(t)!.dims.length);
        if (!q) continue;
        const d = dtypeOf(m, types, t);
        if (d !== "float32") problem = { code: "dtype", tensor: t, reason: `constant input '${t}' is ${d}; ${q} emulation handles float32 tensors only` };
        continue;
      }
      if (INT8_UNQUANTIZED_INPUTS[l.opType]?.includes(k)) continue;
      const p = rangeProblem(t, `input ${k}`);
      if (p) problem = { ...p, tensor: t };
    }
    for (let k = 0; k < l.outputs.length && !problem && !policy.data.inputsOnly; k++) {
      const t = l.outputs[k]!;
      if (t === "" || !isFloat(t)) continue;
      const p = rangeProblem(t, `output ${k}`);
      if (p) problem = { ...p, tensor: t };
    }
    if (problem) fall(l, problem.code, problem.tensor, problem.reason);
  }
  return {
    mode: "implicit",
    precisions,
    policy,
    fallbacks,
    int8Layers: precisions.filter((p) => p === q).length,
    fallback,
    range,
    missingFromCache,
    unknownInCache,
  };
}

// ---------------------------------------------------------------------------------------
// policy

export interface Int8PolicyData {
  mode: "implicit" | "explicit";
  fallback: Precision;
  range: Int8Range;
  /** Activation scales (tensor -> s, amax = 127·s); empty in explicit mode. */
  scales: ReadonlyMap<string, number>;
  /** The quantized type of the layers assigned it: "int8", or "fp8" (scaled e4m3fn). */
  qtype: QuantType;
  /** Explicit placement (Int8Options.placement "inputs"): Q/DQ on activation inputs only, no output ranges needed. */
  inputsOnly?: boolean;
  /** Exact amax per tensor (CalibrationCache.amax: a JSON sidecar): fp8 scales are amax/448 from it instead of 127·scale. */
  amax?: ReadonlyMap<string, number>;
  /** Declared output types (CalibrationCache.outputTypes) of a typed Q/DQ candidate. */
  outputTypes?: ReadonlyMap<string, Precision>;
  /** Explicit weight scales (CalibrationCache.weights), by initializer name. */
  weights?: ReadonlyMap<string, WeightScales>;
}

/** What a quantized layer's Q/DQ quantize to: int8, or fp8 e4m3fn with a scale (TensorRT's explicit FP8). */
export type QuantType = "int8" | "fp8";

/** Scaled fp8 (e4m3fn) needs QuantizeLinear-19 (a float8e4m3fn zero point). */
export const OPSET_FP8_QDQ = 19;

/**
 * The fp8 scale of a tensor whose int8 scale (cache entry) is `s`: amax / 448 with amax = 127·s,
 * each step rounded to float32 (TensorRT's FP8 Q/DQ maps ±amax to e4m3fn's ±448).
 */
export function fp8Scale(int8Scale: number): number {
  return Math.fround(Math.fround(int8Scale * WEIGHT_QMAX) / FP8E4M3FN_MAX);
}

/** The fp8 scale of a tensor whose exact amax is known (a JSON sidecar, a fp8 Q/DQ model's 448·s): amax / 448 rounded to float32 once. */
export function fp8ScaleOfAmax(amax: number): number {
  return Math.fround(amax / FP8E4M3FN_MAX);
}

/**
 * The model's INT8 policy: implicit with a calibration cache, explicit (the graph's own Q/DQ)
 * when the model has QuantizeLinear/DequantizeLinear nodes. Build it once per model and cache;
 * it serves every precision assignment. Throws a UserError when implicit quantization has no cache.
 */
export function makeInt8Policy(m: LoadedModel, types: TypeMap, o: Pick<Int8Options, "cache" | "fallback" | "range" | "qtype" | "placement"> = {}): Int8Policy {
  const fallback = o.fallback ?? "fp32";
  const qtype = o.qtype ?? "int8";
  if (fallback === "int8" || fallback === "fp8") throw new Error(`${fallback} fallback precision cannot be quantized`);
  const range = o.range ?? DEFAULT_INT8_RANGE;
  if (isExplicitlyQuantized(m)) return new Int8Policy(m, types, { mode: "explicit", fallback, range, scales: new Map(), qtype });
  // below opset 19 the executor upgrades the segments to 19 (onnx/opset-upgrade.ts; nodes without an upgrade path are refused by runtime/upgrade.ts assertOpsetSupports)
  if (qtype === "fp8" && m.opset >= 0 && m.opset < OPSET_FP8_QDQ && !canUpgrade(m.opset, OPSET_FP8_QDQ)) {
    throw optionError("qtype", `${m.path} has opset ${m.opset}; scaled fp8 Q/DQ needs QuantizeLinear-19 with a float8e4m3fn zero point (opset >= ${OPSET_FP8_QDQ}), and trt-debug upgrades models from opset ${UPGRADE_MIN} only: re-export the model at opset >= ${OPSET_FP8_QDQ}`);
  }
  if (!o.cache) {
    throw userError`${opt(qtype === "fp8" ? "qtype" : "int8")}: ${m.path} has no QuantizeLinear/DequantizeLinear nodes, so ${qtype} needs activation ranges: pass ${opt("int8.calibrationCache")} FILE (make one with \`trt-debug calib build ${m.path} -o model.cache\`)`;
  }
  return new Int8Policy(m, types, { mode: "implicit", fallback, range, scales: o.cache.scales, qtype, ...(o.placement === "inputs" ? { inputsOnly: true } : {}), ...(o.cache.weights?.size ? { weights: o.cache.weights } : {}), ...(o.cache.amax?.size ? { amax: o.cache.amax } : {}), ...(o.cache.outputTypes?.size ? { outputTypes: o.cache.outputTypes } : {}) });
}

/**
 * The transforms of INT8 emulation. Layers in fp32/fp16/bf16 get the float policy. An int8
 * layer quantizes its output when every consumer runs in int8 in the assignment it is given
 * (`quantizesOutput`): that decision is the policy's context (one character per output), so
 * one policy serves every assignment of the model (bisection changes it every iteration).
 */
export class Int8Policy implements TransformPolicy {
  private readonly graphOut: ReadonlySet<string>;
  /** Per-tensor scales of constant inputs of int8 layers (other than per-channel weights), computed on first use. */
  private readonly constScales = new Map<string, number>();

  constructor(
    readonly model: LoadedModel,
    readonly types: TypeMap,
    readonly data: Int8PolicyData,
  ) {
    this.graphOut = new Set(model.graph.outputs.map((x) => x.name));
  }

  /** The precision of the quantized layers ("int8" or "fp8"). */
  get q(): Precision {
    return this.data.qtype;
  }

  get activationQmin(): number {
    return this.data.range === 128 ? -128 : -127;
  }

  /** The fp8 scale of `t` with int8-style scale `s`: from the exact amax when the cache has one (and it stands for `s`), else fp8Scale(s). */
  fp8ScaleOf(t: string, s: number): number {
    const a = this.data.amax?.get(t);
    return a !== undefined && this.data.scales.get(t) === s ? fp8ScaleOfAmax(a) : fp8Scale(s);
  }

  /** The Q/DQ transform of an activation tensor with a cache range. */
  activationTransform(t: string): Transform {
    const s = this.data.scales.get(t);
    if (s === undefined || !(s > 0)) return { kind: "none" };
    if (this.data.qtype === "fp8") return { kind: "qdq", scale: this.fp8ScaleOf(t, s), qmin: -FP8E4M3FN_MAX, qmax: FP8E4M3FN_MAX, type: "fp8e4m3fn" };
    return { kind: "qdq", scale: s, qmin: this.activationQmin, qmax: 127 };
  }

  /**
   * Whether an int8 producer of `t` quantizes it under `precisions` (implicit mode): `t` is no
   * graph output, has a range, and every consumer runs in int8 and reads it as an ordinary input.
   * Otherwise it is emitted in the fallback precision and each int8 consumer quantizes it itself.
   */
  quantizesOutput(t: string, precisions: readonly Precision[]): boolean {
    if (this.data.mode === "explicit" || this.data.inputsOnly || this.graphOut.has(t)) return false;
    const s = this.data.scales.get(t);
    if (s === undefined || !(s > 0)) return false;
    const cons = this.model.graph.consumers.get(t) ?? [];
    const layers = this.model.graph.layers;
    return cons.length > 0 && cons.every((c) => precisions[c] === this.q && !layers[c]!.implicitInputs.includes(t));
  }

  /** Per-tensor scale of a constant input: the cache's range when it has one (TensorRT calibrates constant layers' outputs like any tensor), else max|w| / 127. */
  constantScale(t: string): number {
    let s = this.constScales.get(t);
    if (s !== undefined) return s;
    const c = this.data.scales.get(t);
    if (c !== undefined && c > 0) s = c;
    else {
      const host = tensorProtoToHost(this.model.graph.initializers.get(t)!, { baseDir: this.model.baseDir, fileName: this.model.path });
      const a = absMax(host.data as Float32Array);
      s = a > 0 ? Math.fround(a / WEIGHT_QMAX) : 1;
    }
    this.constScales.set(t, s);
    return s;
  }

  /** The transform of a weight with explicit scales (a Q/DQ candidate's): per channel, or per tensor. */
  private givenWeightTransform(w: WeightScales): Transform {
    const fp8 = this.data.qtype === "fp8";
    const [qmin, qmax] = fp8 ? [-FP8E4M3FN_MAX, FP8E4M3FN_MAX] : [w.qmin ?? WEIGHT_QMIN, WEIGHT_QMAX];
    const type = fp8 ? { type: "fp8e4m3fn" as const } : {};
    if (w.axis === null) return { kind: "qdq", scale: w.scale[0]!, qmin, qmax, ...type };
    return { kind: "qdq-weight", axis: w.axis, qmin, qmax, ...type, scales: w.scale, scalesKey: w.key };
  }

  input(layer: Layer, k: number, t: string, p: Precision, precisions: readonly Precision[]): Transform {
    if (p !== this.q) return floatPolicy.input(layer, k, t, p, precisions);
    if (this.data.mode === "explicit") return { kind: "none" };
    const init = this.model.graph.initializers.get(t);
    if (init) {
      const q = constantQuantization(layer, k, init.dims.length);
      if (!q) return { kind: "none" };
      const given = this.data.weights?.get(t);
      if (given) return this.givenWeightTransform(given);
      if (this.data.qtype === "fp8") {
        if (q.kind === "per-channel") return { kind: "qdq-weight", axis: q.axis, qmin: -FP8E4M3FN_MAX, qmax: FP8E4M3FN_MAX, type: "fp8e4m3fn" };
        return { kind: "qdq", scale: this.fp8ScaleOf(t, this.constantScale(t)), qmin: -FP8E4M3FN_MAX, qmax: FP8E4M3FN_MAX, type: "fp8e4m3fn" };
      }
      if (q.kind === "per-channel") return { kind: "qdq-weight", axis: q.axis, qmin: WEIGHT_QMIN, qmax: WEIGHT_QMAX };
      return { kind: "qdq", scale: this.constantScale(t), qmin: WEIGHT_QMIN, qmax: WEIGHT_QMAX };
    }
    if (INT8_UNQUANTIZED_INPUTS[layer.opType]?.includes(k)) return { kind: "none" };
    return this.activationTransform(t);
  }

  output(layer: Layer, k: number, t: string, p: Precision, precisions: readonly Precision[]): Transform {
    if (p !== this.q) return floatPolicy.output(layer, k, t, p, precisions);
    if (this.data.mode === "explicit") return { kind: "none" };
    if (this.quantizesOutput(t, precisions)) return this.activationTransform(t);
    return floatPolicy.output(layer, k, t, this.data.outputTypes?.get(t) ?? this.data.fallback, precisions);
  }

  /** Which outputs of an int8 layer are quantized ("q") or emitted in the fallback precision ("-"); "" for other layers. */
  context(layer: Layer, precisions: readonly Precision[]): string {
    if (this.data.mode === "explicit" || precisions[layer.index] !== this.q) return "";
    let out = "";
    for (const t of layer.outputs) out += t !== "" && this.quantizesOutput(t, precisions) ? "q" : "-";
    return out;
  }

  /**
   * This policy with the output decisions of one fixed assignment, whatever assignment a run
   * passes (its context is then always ""): `calib check` runs every layer alone (the others
   * in fp32, fed the FP32 run's tensors) but quantizes its output as the full run would.
   */
  withOutputsOf(assignment: readonly Precision[]): TransformPolicy {
    const fixed = [...assignment];
    return {
      input: (l, k, t, p) => this.input(l, k, t, p, fixed),
      output: (l, k, t, p) => this.output(l, k, t, p, fixed),
    };
  }
}

/** A calibration cache as read (calibration/cache.ts reads and writes it; docs/int8.md). */
export interface CalibrationCache {
  /** TensorRT version digits from the header, e.g. "8601" or "100300". */
  version: string;
  /** Algorithm name from the header, e.g. "EntropyCalibration2". */
  algorithm: string;
  /** Tensor name → scale s (amax = 127·s), in file order. */
  scales: Map<string, number>;
  /** Which format the cache was read from ("qdq": the scales of a Q/DQ model's QuantizeLinear nodes, calibration/qdq-scales.ts). */
  source: "tensorrt" | "json" | "qdq";
  /** JSON sidecar only: the amax recorded per tensor (exact calibrated value, not rounded). */
  amax?: Map<string, number>;
  /**
   * A Q/DQ model's weight scales (`bisect REF --candidate QDQ.onnx`): initializer name of the
   * model run → the scales of the candidate's weight DequantizeLinear, used instead of max|w|/127.
   */
  weights?: Map<string, WeightScales>;
  /**
   * A strongly typed Q/DQ candidate: the declared type of each tensor it has (by name). A
   * quantized layer's output that is not quantized is rounded to it instead of the fallback
   * (a candidate's int8 layer may write fp32 while its other layers are fp16).
   */
  outputTypes?: Map<string, "fp32" | "fp16" | "bf16">;
}

/** Explicit weight scales: per channel along `axis`, or per tensor (`axis` null, one scale). `key` names them in transform keys. */
export interface WeightScales {
  scale: Float32Array;
  axis: number | null;
  key: string;
  /** int8 clamp: -128 when the candidate's weight reaches it (ONNX QuantizeLinear's [-128,127]), else -127 (default). */
  qmin?: -128 | -127;
}
