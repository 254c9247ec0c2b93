/**
 * `calib check QDQ.onnx` (issue 11, deliverable 4): an explicitly quantized model checked like a
 * calibration cache. The activation scales are read from its QuantizeLinear nodes (tensor =
 * the Q's float input, scale = its scalar y_scale, zero point 0), and the model is rewritten
 * without its Q/DQ pairs (the fp32 model the scales were made for): consumers of an activation
 * DequantizeLinear read the Q's input; a weight's Q/DQ (DequantizeLinear of an int8 initializer,
 * or of QuantizeLinear(float initializer)) becomes the float initializer it stands for (the
 * dequantized int8 values, or the float weight itself). docs/int8.md "calib check".
 */
import { clone, create } from "@bufbuild/protobuf";
import { ModelProtoSchema, NodeProtoSchema, TensorProto_DataType, TensorProtoSchema, type ModelProto, type NodeProto, type TensorProto } from "onnx-buf";
import { UserError } from "../core/errors.js";
import { dequantizeWeights } from "../numeric/index.js";
import type { CalibrationCache } from "../precision/int8.js";
import { hostToTensorProto, tensorProtoToHost } from "../onnx/tensor.js";
import { prepareModel } from "../onnx/model.js";
import { isTypedGraph, liftTypedModel } from "../precision/typed.js";
import { bf16ToF32, f16ToF32, FP8E4M3FN_MAX, fp8ToF32 } from "../numeric/index.js";

export interface QdqScales {
  /** The model without Q/DQ. */
  proto: ModelProto;
  /** Tensor -> scale, as a cache (algorithm "QDQ"). */
  cache: CalibrationCache;
  /** Weights whose Q/DQ was folded. */
  weights: number;
  /**
   * "fp8" when the zero points are float8e4m3fn (scaled fp8 Q/DQ, `convert --fp8`): the cache then
   * holds amax = 448·scale (exact, in `amax`, so the fp8 emulation's amax/448 is the scale itself)
   * as an int8-style scale amax/127, else "int8".
   */
  qtype: "int8" | "fp8";
}

function values(t: TensorProto): number[] {
  const h = tensorProtoToHost(t);
  if (h.dtype === "float8e4m3fn") return Array.from(fp8ToF32(h.data as Uint8Array, "fp8e4m3fn"));
  if (h.dtype === "float16") return Array.from(f16ToF32(h.data as Uint16Array));
  if (h.dtype === "bfloat16") return Array.from(bf16ToF32(h.data as Uint16Array));
  if (h.dtype === "int64" || h.dtype === "uint64") return Array.from(h.data as BigInt64Array, Number);
  return Array.from(h.data as ArrayLike<number>);
}

const FLOAT_TYPES = new Set<number>([TensorProto_DataType.FLOAT, TensorProto_DataType.FLOAT16, TensorProto_DataType.BFLOAT16, TensorProto_DataType.DOUBLE]);

function isFloatCast(n: NodeProto | undefined): n is NodeProto {
  return n?.opType === "Cast" && FLOAT_TYPES.has(Number(n.attribute.find((a) => a.name === "to")?.i ?? 0n));
}

/** Ops whose outputs are never float: a Cast from them converts, it does not change a float's precision. */
const NON_FLOAT_PRODUCERS = new Set(["Shape", "Size", "ArgMax", "ArgMin", "NonZero", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf", "TopK"]);

/**
 * The tensor `x` is a float Cast (chain) of: follows Casts to a float type back through their
 * inputs while those may be float (not a non-float initializer, a Cast to a non-float type or
 * the output of an op that never writes floats).
 */
function castSource(x: string, producer: ReadonlyMap<string, NodeProto>, inits?: ReadonlyMap<string, TensorProto>): string {
  const mayBeFloat = (t: string): boolean => {
    const i = inits?.get(t);
    if (i) return FLOAT_TYPES.has(i.dataType);
    const p = producer.get(t);
    if (!p) return true;
    if (p.opType === "Cast") return isFloatCast(p);
    return !(NON_FLOAT_PRODUCERS.has(p.opType) && p.output[0] === t);
  };
  let t = x;
  for (let p = producer.get(t); isFloatCast(p) && p.input[0] && mayBeFloat(p.input[0]); p = producer.get(t)) t = p.input[0];
  return t;
}

export function hasQdq(proto: ModelProto): boolean {
  return proto.graph?.node.some((n) => n.opType === "QuantizeLinear" || n.opType === "DequantizeLinear") ?? false;
}

/** Scales and the Q/DQ-free model of an explicitly quantized model (top-level graph). */
export function qdqScales(model: ModelProto, file: string): QdqScales {
  const proto = clone(ModelProtoSchema, model);
  const g = proto.graph!;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const producer = new Map<string, NodeProto>();
  for (const n of g.node) for (const o of n.output) if (o) producer.set(o, n);
  const scalar = (name: string | undefined, node: NodeProto, what: string): number[] => {
    const t = name ? inits.get(name) : undefined;
    if (!t) throw new UserError(`${file}: node '${node.name}' (${node.opType}): its ${what} '${name ?? ""}' is not an initializer; only constant scales can be read`);
    return values(t);
  };
  const rename = new Map<string, string>();
  const drop = new Set<NodeProto>();
  const scales = new Map<string, number>();
  const amaxes = new Map<string, number>();
  const types = new Set<"int8" | "fp8">();
  const typeOf = (zp: string | undefined): "int8" | "fp8" => (zp && inits.get(zp)?.dataType === TensorProto_DataType.FLOAT8E4M3FN ? "fp8" : "int8");
  const newInits: TensorProto[] = [];
  let weights = 0;
  for (const dq of g.node) {
    if (dq.opType !== "DequantizeLinear") continue;
    const src = dq.input[0] ?? "";
    const q = producer.get(src);
    const out = dq.output[0]!;
    if (q?.opType === "QuantizeLinear") {
      const x = q.input[0] ?? "";
      const zp = q.input[2] ? scalar(q.input[2], q, "zero point") : [0];
      if (zp.some((z) => z !== 0)) throw new UserError(`${file}: node '${q.name}': zero point ${zp.find((z) => z !== 0)} is not 0; TensorRT's explicit quantization is symmetric`);
      if (inits.has(x)) {
        // weight Q/DQ: the float weight itself, under the DequantizeLinear's output name
        const w = clone(TensorProtoSchema, inits.get(x)!);
        w.name = out;
        newInits.push(w);
        weights++;
      } else {
        const s = scalar(q.input[1], q, "scale");
        if (s.length !== 1) throw new UserError(`${file}: node '${q.name}': activation '${x}' has ${s.length} scales; only per-tensor activation scales can be checked`);
        const ty = typeOf(q.input[2]);
        types.add(ty);
        // fp8: amax = 448·s, exact in a double (s is a float32), so amax/448 gives s back; and as a cache scale amax/127
        const amax = ty === "fp8" ? s[0]! * FP8E4M3FN_MAX : undefined;
        const cs = amax === undefined ? s[0]! : Math.fround(amax / 127);
        // a strongly typed model (convert --int8 --fp16, AutoCast, by hand) quantizes an fp16 tensor `t` through a Cast to float32: the scale is t's
        const t = castSource(x, producer, inits);
        const prev = scales.get(t);
        if (prev !== undefined && prev !== cs) throw new UserError(`${file}: activation '${t}' is quantized with two scales (${prev} and ${cs}); give it one`);
        scales.set(t, cs);
        if (amax !== undefined) amaxes.set(t, amax);
        rename.set(out, x);
      }
      drop.add(q).add(dq);
    } else if (inits.has(src)) {
      // an int8 weight: dequantized ((q - zp) * scale, per channel along `axis`)
      const w = tensorProtoToHost(inits.get(src)!);
      const s = scalar(dq.input[1], dq, "scale");
      const zp = dq.input[2] ? scalar(dq.input[2], dq, "zero point") : [0];
      const axisAttr = dq.attribute.find((a) => a.name === "axis");
      const axis = Number(axisAttr?.i ?? 1n);
      const dims = w.dims;
      const ax = axis < 0 ? axis + dims.length : axis;
      const inner = dims.slice(ax + 1).reduce((p, d) => p * d, 1);
      const ch = s.length === 1 ? 1 : dims[ax]!;
      const qv = w.dtype === "float8e4m3fn" ? fp8ToF32(w.data as Uint8Array, "fp8e4m3fn") : (w.data as ArrayLike<number>);
      const f = dequantizeWeights(qv, s, zp, ch, inner);
      newInits.push(hostToTensorProto({ name: out, dtype: "float32", dims: [...dims], data: f }));
      drop.add(dq);
      weights++;
    } else {
      throw new UserError(`${file}: node '${dq.name}' (DequantizeLinear) reads '${src}', which is neither a QuantizeLinear output nor an initializer; this Q/DQ layout cannot be checked`);
    }
  }
  const strayQ = g.node.find((n) => n.opType === "QuantizeLinear" && !drop.has(n));
  if (strayQ) throw new UserError(`${file}: node '${strayQ.name}' (QuantizeLinear) has no DequantizeLinear after it; this Q/DQ layout cannot be checked`);
  if (scales.size === 0) throw new UserError(`${file}: no activation is quantized (no QuantizeLinear of a computed tensor); there are no activation scales to check`);
  const kept = g.node.filter((n) => !drop.has(n));
  for (const n of kept) n.input = n.input.map((i) => rename.get(i) ?? i);
  // a graph output that was a DequantizeLinear output keeps its name through an Identity
  const extra = g.output
    .filter((o) => rename.has(o.name))
    .map((o) => create(NodeProtoSchema, { opType: "Identity", name: `${o.name}__identity`, input: [rename.get(o.name)!], output: [o.name] }));
  g.node = [...kept, ...extra];
  g.initializer = [...g.initializer, ...newInits];
  if (types.size > 1) throw new UserError(`${file}: the model mixes int8 and float8e4m3fn QuantizeLinear nodes; calib check reads one quantized type`);
  const qtype = types.has("fp8") ? "fp8" : "int8";
  untype(proto, file, scales);
  return { proto, cache: { version: "QDQ", algorithm: "QDQ", scales, source: "qdq", ...(qtype === "fp8" ? { amax: amaxes } : {}) }, weights, qtype };
}

/** A weight input of a Q/DQ model's node: the scales (and axis) of the DequantizeLinear that feeds it. */
export interface QdqWeightInput {
  /** The node reading the dequantized weight, and which input. */
  node: string;
  input: number;
  /** Per-channel scales (length > 1, along `axis`), or one per-tensor scale (`axis` null). */
  scale: Float32Array;
  axis: number | null;
  /** The DequantizeLinear node. */
  dequantize: string;
  /**
   * int8 weights: -128 when the weight can reach it (a QuantizeLinear of a float weight, ONNX's
   * range [-128,127]; or stored int8 values that hold -128), else -127 (symmetric).
   */
  qmin: -128 | -127;
}

/**
 * The weight scales of an explicitly quantized model (top-level graph): for every node input
 * that is a DequantizeLinear of a constant (an int8/fp8 initializer, or QuantizeLinear of a
 * float initializer), through float Casts, its scales and axis. Zero points must be 0
 * (TensorRT's quantization is symmetric).
 */
export function qdqWeightScales(model: ModelProto, file: string): QdqWeightInput[] {
  const g = model.graph!;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const producer = new Map<string, NodeProto>();
  for (const n of g.node) for (const o of n.output) if (o) producer.set(o, n);
  const out: QdqWeightInput[] = [];
  for (const n of g.node) {
    if (n.opType === "QuantizeLinear" || n.opType === "DequantizeLinear") continue;
    n.input.forEach((t, k) => {
      const p = producer.get(castSource(t, producer, inits));
      if (p?.opType !== "DequantizeLinear") return;
      const src = p.input[0] ?? "";
      const q = producer.get(src);
      // the node that holds the scales: the DequantizeLinear of a constant, or the QuantizeLinear of a float constant
      const holder = inits.has(src) ? p : q?.opType === "QuantizeLinear" && inits.has(q.input[0] ?? "") ? q : null;
      if (!holder) return;
      const sInit = inits.get(holder.input[1] ?? "");
      if (!sInit) throw new UserError(`${file}: node '${holder.name}' (${holder.opType}): its scale '${holder.input[1] ?? ""}' is not an initializer; only constant scales can be read`);
      const zp = holder.input[2] && inits.has(holder.input[2]) ? values(inits.get(holder.input[2])!) : [0];
      if (zp.some((z) => z !== 0)) throw new UserError(`${file}: node '${holder.name}': weight zero point ${zp.find((z) => z !== 0)} is not 0; TensorRT's explicit quantization is symmetric`);
      const scale = Float32Array.from(values(sInit));
      const perTensor = sInit.dims.length === 0 || (scale.length === 1 && sInit.dims.length <= 1);
      const axisAttr = holder.attribute.find((a) => a.name === "axis");
      const stored = holder === p ? tensorProtoToHost(inits.get(src)!) : null;
      const reaches128 = holder !== p || (stored?.dtype === "int8" && (stored.data as Int8Array).includes(-128));
      out.push({ node: n.name, input: k, scale, axis: perTensor ? null : Number(axisAttr?.i ?? 1n), dequantize: p.name, qmin: reaches128 ? -128 : -127 });
    });
  }
  return out;
}

/**
 * A strongly typed model without its Q/DQ made the fp32 model its scales are for, in place:
 * lifted to fp32 (precision/typed.ts: fp16/bf16 initializers widened, Casts to fp16/bf16 made
 * Casts to float), graph inputs/outputs float, and every Cast between float types removed, as
 * is an Identity reading such a Cast (convert's `<layer>::<fb>_output<k>` rounding point). A
 * removed node's output name is kept when it is a graph output or has a scale and its input has
 * none (a Cast), or always for such an Identity (its output is the original tensor name); else
 * its input name is kept. So `calib check` sees the original tensors, not the Casts' (item 3 of
 * brief h11b; docs/int8.md "calib check of a Q/DQ model").
 */
function untype(proto: ModelProto, file: string, scales: ReadonlyMap<string, number>): void {
  const g = proto.graph!;
  if (!isTypedGraph(g)) return;
  const m = prepareModel(proto, file);
  liftTypedModel(m);
  const declared = m.typed!.declared;
  for (const v of [...g.input, ...g.output]) if (v.type?.value.case === "tensorType" && FLOAT_TYPES.has(v.type.value.value.elemType)) v.type.value.value.elemType = TensorProto_DataType.FLOAT;
  const ins = new Set(g.input.map((v) => v.name)), outs = new Set(g.output.map((v) => v.name)), inits = new Set(g.initializer.map((t) => t.name));
  const alias = new Map<string, string>();
  const resolve = (t: string): string => {
    let r = t;
    while (alias.has(r)) r = alias.get(r)!;
    return r;
  };
  const castOutputs = new Set<string>();
  const drop = new Set<NodeProto>();
  for (const n of g.node) {
    const isCast = isFloatCast(n) && FLOAT_TYPES.has(declared.get(n.input[0] ?? "") ?? 0);
    const isRounder = n.opType === "Identity" && castOutputs.has(n.input[0] ?? "");
    if (!isCast && !isRounder) continue;
    const a = resolve(n.input[0]!), b = n.output[0]!;
    const fixedA = ins.has(a) || inits.has(a) || outs.has(a);
    const keepB = !fixedA && (isCast ? outs.has(b) && !scales.has(a) : !scales.has(a) || scales.has(b));
    if (!keepB && outs.has(b)) continue; // a graph output keeps its name: the node stays
    if (keepB) alias.set(a, b);
    else alias.set(b, a);
    if (isCast) castOutputs.add(b);
    drop.add(n);
  }
  if (drop.size === 0) return;
  g.node = g.node.filter((n) => !drop.has(n));
  for (const n of g.node) {
    n.input = n.input.map((t) => (t === "" ? t : resolve(t)));
    n.output = n.output.map((t) => (t === "" ? t : resolve(t)));
  }
  const live = new Set(g.node.flatMap((n) => n.output));
  g.valueInfo = g.valueInfo.filter((v) => live.has(v.name));
}
