/**
 * Graph rewriting that emulates reduced precision (docs/precision.md).
 *
 * For every layer we decide, per floating input and output tensor, a transform:
 *   - round(format): value -> format -> float (a Cast pair in the graph, or a pre-rounded
 *     copy for an initializer);
 *   - qdq(scale): QuantizeLinear/DequantizeLinear (int8 emulation);
 *   - none.
 * Output transforms keep the tensor's original name (consumers and captures see the rounded
 * value); the raw result is renamed `<tensor>::raw`. An input transform is skipped when the
 * producer already applied the identical transform to its output (rounding is idempotent),
 * and is shared between the consumers of one tensor.
 */
import { create } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  NodeProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType,
  type NodeProto,
  type TensorProto,
} from "onnx-buf";
import { UserError } from "../core/errors.js";
import { isFloatDType, type DType, type HostTensor, type Precision } from "../core/host-tensor.js";
import type { Layer, LoadedModel } from "../onnx/model.js";
import type { TypeMap } from "../onnx/infer.js";
import { hostToTensorProto, readExternalFloat32Chunks, tensorProtoToHost } from "../onnx/tensor.js";
import { ExternalWeightStore, usesExternalSegmentWeights, type PlacedInitializers } from "../onnx/external-weights.js";
import { dtypeToOnnx } from "../core/dtype.js";
import { fakeQuantFp8, fakeQuantInt8, FP8E4M3FN_MAX, perChannelAbsMax, roundTo, type FloatFormat } from "../numeric/index.js";
import { rewriteBodies } from "./subgraph.js";
import { EXACT_OPS, FORMAT_ONNX, isExactNode, NEVER_ROUNDED_INPUTS, PRECISION_FORMAT, transformKey, type Transform } from "./transforms.js";

export { EXACT_OPS, isExactNode, NEVER_ROUNDED_INPUTS, PRECISION_FORMAT, transformKey, type Transform };
import { canUpgrade } from "../onnx/opset-upgrade.js";

/**
 * Decides the transforms of each layer. The default policy implements FP16/BF16/FP8 layers;
 * INT8 support plugs in by wrapping it (see precision/int8.ts).
 *
 * A policy is built once per model (and calibration cache) and serves every precision
 * assignment: each call gets the layer's own precision `precision` and the whole per-layer
 * assignment `precisions` (execution order). A transform may depend on `precisions` beyond
 * the layer's own entry (INT8 quantizes an output only when every consumer runs in int8), but
 * only through `context`: whoever caches rewritten graphs or their results (the Executor's
 * segment sessions, bisection's boundary tensors) keys them by the layers' precisions plus
 * their context, so a policy that reads other layers' precisions must say what it read there.
 */
export interface TransformPolicy {
  input(layer: Layer, inputIndex: number, tensor: string, precision: Precision, precisions: readonly Precision[]): Transform;
  output(layer: Layer, outputIndex: number, tensor: string, precision: Precision, precisions: readonly Precision[]): Transform;
  /**
   * Everything besides `precisions[layer.index]` that this layer's input and output transforms
   * read from `precisions`, as a short string; "" (or no method) when they read nothing else.
   * Two assignments that agree on a layer's precision and context must give it identical transforms.
   */
  context?(layer: Layer, precisions: readonly Precision[]): string;
}

export const floatPolicy: TransformPolicy = {
  input(layer, k, _t, p) {
    const f = PRECISION_FORMAT[p];
    if (!f || NEVER_ROUNDED_INPUTS[layer.opType]?.includes(k)) return { kind: "none" };
    return { kind: "round", format: f };
  },
  output(_layer, _k, _t, p) {
    const f = PRECISION_FORMAT[p];
    return f ? { kind: "round", format: f } : { kind: "none" };
  },
};

/** Rewritten initializers are cached across segments and runs (they only depend on the transform). */
export class WeightCache {
  private map = new Map<string, TensorProto>();
  /**
   * Set when the model's external data is above the threshold (onnx/external-weights.ts):
   * rewritten weights go to a temporary data file, written once per model and policy, and
   * segments reference the model's own external data instead of embedding it.
   */
  readonly external: ExternalWeightStore | null;
  /**
   * `mode` "auto" (the executor's segments): reference external weights when the model's
   * external data is above the threshold; "embed" (default: models written to disk, such as
   * `convert --int8`'s export): every initializer embedded, no temporary file.
   */
  constructor(private readonly model: LoadedModel, mode: "embed" | "auto" = "embed") {
    this.external = mode === "auto" && usesExternalSegmentWeights(model) ? new ExternalWeightStore(model) : null;
  }
  get(name: string, t: Transform): { name: string; proto: TensorProto } | null {
    const src = this.model.graph.initializers.get(name)!;
    const key = `${name}::${transformKey(t)}`;
    const hit = this.map.get(key) ?? this.external?.lookup(key);
    if (hit) return { name: key, proto: hit };
    if (src.dataType !== TensorProto_DataType.FLOAT) return null; // other float types go through graph nodes
    if (t.kind !== "round" && t.kind !== "qdq" && t.kind !== "qdq-weight") return null;
    const opts = { baseDir: this.model.baseDir, fileName: this.model.path };
    if (this.external && src.dataLocation === TensorProto_DataLocation.EXTERNAL && t.kind !== "qdq-weight") {
      // Element-wise transforms of external weights: one piece at a time, straight to the temporary file.
      const dims = src.dims.map(Number);
      const n = dims.reduce((a, b) => a * b, 1);
      const proto = this.external.writeFloat32(key, dims, n, (emit) =>
        readExternalFloat32Chunks(src, opts, CHUNK_ELEMENTS, (piece) => emit(transformWeight(piece, dims, t))),
      );
      return { name: key, proto };
    }
    const host = tensorProtoToHost(src, opts);
    const out = transformWeight(host.data as Float32Array, host.dims, t);
    if (this.external && out.byteLength >= EXTERNAL_MIN_BYTES) {
      const proto = this.external.writeFloat32(key, host.dims, out.length, (emit) => emit(out));
      return { name: key, proto };
    }
    const proto = hostToTensorProto({ name: key, dtype: "float32", dims: host.dims, data: out } satisfies HostTensor);
    this.map.set(key, proto);
    return { name: key, proto };
  }
  /**
   * The initializer as it can be embedded in a segment model: external data read into
   * raw_data, or (external segment weights) the model's own external reference.
   */
  embedded(name: string): TensorProto {
    const src = this.model.graph.initializers.get(name)!;
    if (src.dataLocation !== TensorProto_DataLocation.EXTERNAL || this.external) return src;
    const hit = this.map.get(`${name}::embedded`);
    if (hit) return hit;
    const proto = hostToTensorProto(tensorProtoToHost(src, { baseDir: this.model.baseDir, fileName: this.model.path }));
    this.map.set(`${name}::embedded`, proto);
    return proto;
  }
  /**
   * How a segment's initializers reach onnxruntime: as they are (embedded; no folder), or
   * with the folder their external-data locations are relative to.
   */
  place(initializers: readonly TensorProto[]): PlacedInitializers {
    if (!this.external) return { initializers: [...initializers], externalBytes: 0 };
    return this.external.place(initializers);
  }
  /** Drop cached copies (e.g. between unrelated runs); the temporary data file is kept for the next segments. */
  clear(): void {
    this.map.clear();
  }
  /** Remove the temporary data file (the executor's release). */
  release(): void {
    this.map.clear();
    this.external?.release();
  }
}

/** Elements read at a time when an external weight is transformed piece by piece (16 MiB of float32). */
const CHUNK_ELEMENTS = 4 * 2 ** 20;
/** Rewritten weights at least this large go to the temporary data file when the model uses external segment weights. */
const EXTERNAL_MIN_BYTES = 4096;

/** A weight transform applied to float32 values (element-wise for round and qdq; per channel for qdq-weight). */
function transformWeight(data: Float32Array, dims: number[], t: Transform): Float32Array {
  if (t.kind === "round") return roundTo(data, t.format, new Float32Array(data.length));
  if (t.kind === "qdq") return t.type ? fakeQuantFp8(data, { scale: t.scale }) : fakeQuantInt8(data, { scale: t.scale, qmin: t.qmin, qmax: t.qmax });
  if (t.kind === "qdq-weight") {
    return t.type
      ? fakeQuantFp8(data, { scale: t.scales ?? weightChannelScales(data, dims, t.axis, FP8E4M3FN_MAX), axis: t.axis, dims })
      : t.scales
        ? fakeQuantInt8(data, { scale: t.scales, axis: t.axis, dims, qmin: t.qmin, qmax: t.qmax })
        : quantizeWeightPerChannel(data, dims, t.axis, t.qmin, t.qmax);
  }
  throw new Error(`transform ${t.kind} does not apply to a weight`);
}

/** Symmetric per-channel fake quantization: s_c = max|w_c| / qmax. */
export function quantizeWeightPerChannel(w: Float32Array, dims: number[], axis: number, qmin: number, qmax: number): Float32Array {
  const scale = weightChannelScales(w, dims, axis, qmax);
  return fakeQuantInt8(w, { scale, axis, dims, qmin, qmax });
}

/** The per-channel scales of a weight: s_c = max|w_c| / qmax (1 for an all-zero channel). */
export function weightChannelScales(w: Float32Array, dims: number[], axis: number, qmax: number): Float32Array {
  const amax = perChannelAbsMax(w, dims, axis);
  const scale = new Float32Array(amax.length);
  for (let c = 0; c < amax.length; c++) scale[c] = amax[c]! > 0 ? amax[c]! / qmax : 1;
  return scale;
}

export interface RewrittenSegment {
  nodes: NodeProto[];
  /** Initializers the rewritten nodes read (original or transformed copies). */
  initializers: TensorProto[];
}

let uid = 0;
function attrInt(name: string, v: number) {
  return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(v) });
}

/**
 * Rewrite the layers `idx` (execution indices, ascending) of the model under `precisions`.
 * `producerOutputTransform(tensor)` tells what transform the tensor's producer applied (for
 * tensors produced outside these layers), so redundant input transforms are skipped.
 */
export function rewriteLayers(
  model: LoadedModel,
  types: TypeMap,
  precisions: readonly Precision[],
  idx: readonly number[],
  policy: TransformPolicy,
  weights: WeightCache,
): RewrittenSegment {
  const layers = model.graph.layers;
  const nodes: NodeProto[] = [];
  const inits = new Map<string, TensorProto>();
  const outputT = new Map<string, string>(); // tensor -> key of the transform its producer applied
  const transformed = new Map<string, string>(); // `${tensor}|${key}` -> name of the transformed tensor
  const isFloat = (t: string): DType | null => {
    const ty = types.get(t);
    return ty && isFloatDType(ty.dtype) ? ty.dtype : null;
  };
  const producerKey = (t: string): string => {
    const known = outputT.get(t);
    if (known !== undefined) return known;
    const p = model.graph.producer.get(t);
    if (p === undefined) return "none";
    const l = layers[p]!;
    const k = l.outputs.indexOf(t);
    return transformKey(policy.output(l, k, t, precisions[p]!, precisions));
  };
  const useInitializer = (name: string) => {
    if (model.graph.initializers.has(name)) inits.set(name, weights.embedded(name));
  };
  const castPair = (src: string, dtype: DType, f: FloatFormat, dst: string, base: string): NodeProto[] => {
    const mid = `${dst}::${f}`;
    // Cast-1 (opset < 6) takes a string `to` that onnxruntime's type inference rejects for fp16.
    const need = f === "fp16" ? 6 : f === "bf16" ? 13 : 19;
    // bf16 on opset 9-12: the executor upgrades the segment to opset 13 (onnx/opset-upgrade.ts).
    if (model.opset >= 0 && model.opset < need && !canUpgrade(model.opset, need)) {
      throw new UserError(`${model.path}: emulating ${f} needs Cast to ${f} (opset >= ${need}), the model has opset ${model.opset}; convert it with onnx.version_converter`);
    }
    return [
      create(NodeProtoSchema, { name: `${base}::to_${f}`, opType: "Cast", input: [src], output: [mid], attribute: [attrInt("to", FORMAT_ONNX[f])] }),
      create(NodeProtoSchema, { name: `${base}::from_${f}`, opType: "Cast", input: [mid], output: [dst], attribute: [attrInt("to", dtypeToOnnx(dtype))] }),
    ];
  };
  const qdqPair = (src: string, scale: number, qmin: number, qmax: number, dst: string, base: string, fp8: boolean): NodeProto[] => {
    const sName = `${base}::scale`;
    const zName = `${base}::zp`;
    inits.set(sName, hostToTensorProto({ name: sName, dtype: "float32", dims: [], data: new Float32Array([scale]) }));
    // scaled fp8: QuantizeLinear-19 with a float8e4m3fn zero point (saturate=1, the default) saturates at ±448 itself
    inits.set(zName, fp8 ? hostToTensorProto({ name: zName, dtype: "float8e4m3fn", dims: [], data: new Uint8Array([0]) }) : hostToTensorProto({ name: zName, dtype: "int8", dims: [], data: new Int8Array([0]) }));
    const out: NodeProto[] = [];
    let x = src;
    if (!fp8 && (qmin > -128 || qmax < 127)) {
      // QuantizeLinear saturates to [-128,127]; a narrower range is a Clip on the real line first.
      const lo = `${base}::clip_lo`, hi = `${base}::clip_hi`;
      inits.set(lo, hostToTensorProto({ name: lo, dtype: "float32", dims: [], data: new Float32Array([qmin * scale]) }));
      inits.set(hi, hostToTensorProto({ name: hi, dtype: "float32", dims: [], data: new Float32Array([qmax * scale]) }));
      const c = `${dst}::clipped`;
      out.push(create(NodeProtoSchema, { name: `${base}::clip`, opType: "Clip", input: [x, lo, hi], output: [c] }));
      x = c;
    }
    const q = `${dst}::q`;
    out.push(create(NodeProtoSchema, { name: `${base}::quantize`, opType: "QuantizeLinear", input: [x, sName, zName], output: [q] }));
    out.push(create(NodeProtoSchema, { name: `${base}::dequantize`, opType: "DequantizeLinear", input: [q, sName, zName], output: [dst] }));
    return out;
  };
  const emitTransform = (src: string, dtype: DType, t: Transform, dst: string, base: string): NodeProto[] => {
    if (t.kind === "round") return castPair(src, dtype, t.format, dst, base);
    if (t.kind === "qdq") {
      if (dtype !== "float32") throw new UserError(`tensor '${src}': ${t.type ? "fp8" : "int8"} emulation supports float32 tensors only (got ${dtype})`);
      return qdqPair(src, t.scale, t.qmin, t.qmax, dst, base, t.type === "fp8e4m3fn");
    }
    throw new Error(`transform ${t.kind} cannot apply to activation '${src}'`);
  };

  for (const i of idx) {
    const layer = layers[i]!;
    const p = precisions[i]!;
    // A fused group (Layer.nodes) gets its transforms on its external inputs and outputs only:
    // the tensors inside it stay fp32, as in TensorRT's fused kernel.
    const members = layer.nodes.map((n) => create(NodeProtoSchema, { ...n, input: [...n.input], output: [...n.output] }));
    const node = members.find((_, k) => layer.nodes[k] === layer.node)!;
    const replaced = new Map<string, string>(); // external tensor -> what the group's other nodes read
    const setInput = (k: number, t: string, name: string) => {
      if (k < node.input.length && node.input[k] === t) node.input[k] = name;
      if (!replaced.has(t)) replaced.set(t, name);
    };
    // If/Loop/Scan bodies compute in the layer's float format too (precision/subgraph.ts).
    rewriteBodies(layer, node, PRECISION_FORMAT[p], { model, types, weights, addInitializer: (t) => inits.set(t.name, t) });
    // inputs
    layer.inputs.forEach((t, k) => {
      if (t === "") return;
      const dtype = isFloat(t);
      const tr = dtype ? policy.input(layer, k, t, p, precisions) : ({ kind: "none" } as Transform);
      if (tr.kind === "none") {
        useInitializer(t);
        return;
      }
      const key = transformKey(tr);
      if (model.graph.initializers.has(t)) {
        const w = weights.get(t, tr);
        if (w) {
          inits.set(w.name, w.proto);
          setInput(k, t, w.name);
          return;
        }
        useInitializer(t);
      } else if (producerKey(t) === key) {
        return; // already transformed identically by its producer
      }
      const memo = `${t}|${key}`;
      let name = transformed.get(memo);
      if (!name) {
        name = `${t}::in_${key}`;
        nodes.push(...emitTransform(t, dtype!, tr, name, `${t}::in_${key}#${uid++}`));
        transformed.set(memo, name);
      }
      setInput(k, t, name);
    });
    for (const m of members) {
      if (m === node) continue;
      m.input = m.input.map((t) => replaced.get(t) ?? t);
    }
    for (const t of layer.implicitInputs) useInitializer(t);
    // outputs (of the group's last node)
    const last = members[members.length - 1]!;
    const post: NodeProto[] = [];
    // Inputs all rounded to one format (explicitly above, or by their producers)?
    const inputFormats = new Set<string>();
    layer.inputs.forEach((t, k) => {
      if (t === "" || !isFloat(t)) return;
      const tr = policy.input(layer, k, t, p, precisions);
      inputFormats.add(tr.kind === "round" ? tr.format : "other");
    });
    layer.outputs.forEach((t, k) => {
      if (t === "") return;
      const dtype = isFloat(t);
      const tr = dtype ? policy.output(layer, k, t, p, precisions) : ({ kind: "none" } as Transform);
      outputT.set(t, transformKey(tr));
      if (tr.kind === "none") return;
      if (tr.kind === "round" && members.length === 1 && isExactNode(layer.node) && layer.implicitInputs.length === 0 && inputFormats.size === 1 && inputFormats.has(tr.format)) return;
      const raw = `${t}::raw`;
      last.output[k] = raw;
      post.push(...emitTransform(raw, dtype!, tr, t, `${layer.name}::out${k}`));
    });
    nodes.push(...members, ...post);
  }
  return { nodes, initializers: [...inits.values()] };
}
