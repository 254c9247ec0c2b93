/**
 * Opset upgrade of graph nodes from the default-domain opset 9..12 to 13, and (scaled fp8 needs
 * QuantizeLinear-19) from 9..18 to 19: the adapters to 13 below, then adaptNodeTo19.
 *
 * Emulating bf16 needs Cast to bfloat16 (Cast-13), int8 needs QuantizeLinear/DequantizeLinear
 * (opset 10) and a Clip with bound inputs (opset 11), and a model has exactly one version of
 * the default domain. So when the rewritten nodes of a segment need a newer opset than the
 * model's, the executor upgrades the whole segment to opset 13 with the adapters below (the
 * model file and its layers are untouched: layer names, tensor names and captures stay the
 * same; adapters only add constant inputs or, for Softmax-like ops on a non-last axis, helper
 * nodes whose outputs are internal to the layer).
 *
 * Adapters (what changed between opset 9 and 13, as onnx/onnx's version converter knows it):
 *  - Slice-1 (opset < 10): starts/ends/axes attributes -> int64 inputs;
 *  - TopK-1 (< 10): k attribute -> int64 input;
 *  - Upsample-9 and Resize-10 -> Resize-13 with coordinate_transformation_mode "asymmetric" and,
 *    for nearest, the rounding onnxruntime's pre-11 kernel uses (floor when upsampling, ceil when
 *    downsampling; the scales must be constants and all on one side of 1);
 *  - Clip-6 (< 11): min/max attributes -> inputs (the attribute defaults ±FLT_MAX kept);
 *  - Pad-2 (< 11): pads/value attributes -> inputs;
 *  - Scatter -> ScatterElements (same semantics);
 *  - Dropout (< 12): the ratio attribute dropped (inference ignores it);
 *  - Softmax/LogSoftmax/Hardmax (< 13): coerced-to-2D semantics at `axis` (default 1); the
 *    same op on the last axis, or Flatten(axis) -> op(axis=-1) -> Reshape(Shape(x)) otherwise;
 *  - Squeeze/Unsqueeze/ReduceSum/Split (< 13): axes/split attributes -> int64 inputs;
 *  - every other op of the default domain that exists at opset 13 with the semantics of its
 *    9..12 version is kept (COMPATIBLE); other domains are never touched.
 * Nodes inside If/Loop/Scan bodies are upgraded too. An op without an adapter is a blocker,
 * reported before any work as one line (see upgradeBlocker). The upgraded graph is checked to
 * give bit-identical fp32 outputs to the original on the run's inputs (runtime/executor.ts).
 */
import { create } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  NodeProtoSchema,
  type AttributeProto,
  type GraphProto,
  type NodeProto,
  type TensorProto,
} from "onnx-buf";
import type { DType } from "../core/host-tensor.js";
import type { TensorType, TypeMap } from "./infer.js";
import type { LoadedModel } from "./model.js";
import { typesOfBody } from "./body-types.js";
import { constantTensor } from "./tensor.js";
import { tensorProtoToHost } from "./tensor.js";

/** The opset segments are upgraded to. */
export const UPGRADE_TARGET = 13;
/** The opset segments needing scaled fp8 (QuantizeLinear-19 with a float8e4m3fn zero point, Cast to float8) are upgraded to. */
export const FP8_UPGRADE_TARGET = 19;
/** The oldest opset the adapters cover. */
export const UPGRADE_MIN = 9;

/** The opset a segment needing ops of opset `need` is upgraded to: 13, or 19 for fp8. */
export function upgradeTargetFor(need: number): number {
  return need > UPGRADE_TARGET ? FP8_UPGRADE_TARGET : UPGRADE_TARGET;
}

/** Whether a model of opset `from` can be upgraded to run ops of opset `need`. */
export function canUpgrade(from: number, need: number): boolean {
  return from >= UPGRADE_MIN && need <= FP8_UPGRADE_TARGET && from < upgradeTargetFor(need);
}

/** Reduce ops whose `axes` attribute became an input at opset 18 (ReduceSum's did at 13). */
const REDUCE_18 = new Set(["ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare"]);

/**
 * A node of opset 13..18 (after the adapters to 13) as opset 19 has it, or why not. Between 13
 * and 19 (onnx/onnx's Changelog) the ops trt-debug adapts to 13 changed only as follows; every
 * other change added types, optional inputs or attributes whose defaults keep the old semantics
 * (Reshape allowzero, Shape start/end, Pad axes, Resize antialias, Scatter reduction, Cast
 * saturate (float8 only), AveragePool dilations, RNN layout, ...):
 *  - Reduce{L1,L2,LogSum,LogSumExp,Max,Mean,Min,Prod,SumSquare} (< 18): `axes` attribute -> int64 input;
 *  - Split (< 18) without a `split` input: `num_outputs` = its number of outputs (required at 18);
 *  - RoiAlign (< 16): `coordinate_transformation_mode` "output_half_pixel" (the old behaviour; 16's default is half_pixel);
 *  - BatchNormalization with training outputs (< 14: mean/var outputs changed meaning): a blocker.
 */
function adaptNodeTo19(n: NodeProto, scope: UpgradeScope): NodeProto[] | string {
  if (!isDefaultDomain(n)) return [n];
  const from = Math.max(scope.from, UPGRADE_TARGET);
  const op = n.opType;
  if (REDUCE_18.has(op) && from < 18) {
    const a = attrOf(n, "axes");
    if (!a) return [n];
    return [withNode(n, { input: [n.input[0]!, intsInput(n, scope, "axes", a)], attribute: without(n, "axes") })];
  }
  if (op === "Split" && from < 18) {
    if ((n.input[1] ?? "") !== "" || attrOf(n, "num_outputs")) return [n];
    return [withNode(n, { attribute: [...n.attribute, iAttr("num_outputs", n.output.length)] })];
  }
  if (op === "RoiAlign" && from < 16) {
    if (attrOf(n, "coordinate_transformation_mode")) return [n];
    return [withNode(n, { attribute: [...n.attribute, sAttr("coordinate_transformation_mode", "output_half_pixel")] })];
  }
  if (op === "BatchNormalization" && from < 14 && n.output.filter((o) => o !== "").length > 1) return "its training-mode outputs (mean, var) changed meaning at opset 14";
  return [n];
}

/** Default-domain ops whose opset-13 version computes what their 9..12 versions do. */
const COMPATIBLE = new Set([
  "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh", "AveragePool",
  "BatchNormalization", "BitShift", "Cast", "Ceil", "Celu", "Compress", "Concat", "ConcatFromSequence", "Constant",
  "ConstantOfShape", "Conv", "ConvInteger", "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace",
  "DequantizeLinear", "Det", "Div", "DynamicQuantizeLinear", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand",
  "EyeLike", "Flatten", "Floor", "GRU", "Gather", "GatherElements", "GatherND", "Gemm", "GlobalAveragePool",
  "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "HardSigmoid", "Identity", "If",
  "InstanceNormalization", "IsInf", "IsNaN", "LRN", "LSTM", "LeakyRelu", "Less", "LessOrEqual", "Log", "Loop",
  "LpNormalization", "LpPool", "MatMul", "MatMulInteger", "Max", "MaxPool", "MaxRoiPool", "MaxUnpool", "Mean",
  "MeanVarianceNormalization", "Min", "Mod", "Mul", "Multinomial", "Neg", "NonMaxSuppression", "NonZero", "Not",
  "OneHot", "Or", "PRelu", "Pow", "QLinearConv", "QLinearMatMul", "QuantizeLinear", "RNN", "RandomNormal",
  "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Range", "Reciprocal", "ReduceL1", "ReduceL2",
  "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare",
  "Relu", "Reshape", "ReverseSequence", "RoiAlign", "Round", "Scan", "ScatterElements", "ScatterND", "Selu",
  "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength", "Shape",
  "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Softplus", "Softsign", "SpaceToDepth", "SplitToSequence",
  "Sqrt", "StringNormalizer", "Sub", "Sum", "Tan", "Tanh", "TfIdfVectorizer", "ThresholdedRelu", "Tile",
  "Transpose", "Unique", "Where", "Xor", "NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss",
]);

/** What an upgrade needs to know about the graph around a node. */
export interface UpgradeScope {
  /** The model's default-domain opset. */
  from: number;
  /** Types of the tensors in scope (for ranks and element types). */
  types: TypeMap;

  /** The constant value of a tensor (initializer or Constant node output), if it is one. */
  constOf(t: string): TensorProto | undefined;
  /** Adds an initializer to the graph the node lives in. */
  addInit(t: TensorProto): void;
}

export interface UpgradeBlocker {
  node: string;
  opType: string;
  reason: string;
}

export type UpgradeResult = { nodes: NodeProto[]; blocker: null } | { nodes: null; blocker: UpgradeBlocker };

/** proto2 fields: an unset domain reads as undefined. */
const isDefaultDomain = (n: NodeProto): boolean => !n.domain || n.domain === "ai.onnx";
const attrOf = (n: NodeProto, name: string): AttributeProto | undefined => n.attribute.find((a) => a.name === name);
const without = (n: NodeProto, ...names: string[]): AttributeProto[] => n.attribute.filter((a) => !names.includes(a.name));
const strAttr = (n: NodeProto, name: string, def: string): string => {
  const a = attrOf(n, name);
  return a ? new TextDecoder().decode(a.s) : def;
};
const sAttr = (name: string, v: string) => create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.STRING, s: new TextEncoder().encode(v) });
const iAttr = (name: string, v: number) => create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(v) });
const FLT_MAX = 3.4028234663852886e38;

function withNode(n: NodeProto, patch: Partial<Pick<NodeProto, "opType" | "input" | "output" | "attribute" | "name">>): NodeProto {
  return create(NodeProtoSchema, { ...n, input: [...n.input], output: [...n.output], ...patch });
}

/** A constant input made from an attribute (named after the node's first output: unique). */
function constInput(n: NodeProto, scope: UpgradeScope, what: string, dtype: DType, dims: number[], data: readonly number[] | readonly bigint[]): string {
  const name = `${n.output[0]}::${what}`;
  scope.addInit(constantTensor(name, dtype, dims, data));
  return name;
}

function intsInput(n: NodeProto, scope: UpgradeScope, what: string, a: AttributeProto): string {
  return constInput(n, scope, what, "int64", [a.ints.length], a.ints);
}

/** `types.get(t)`, else the type of the tensor `t` was derived from by the rewrite (`t` minus `::...` suffixes). */
export function derivedType(types: TypeMap, t: string): TensorType | undefined {
  for (let name = t; ; ) {
    const ty = types.get(name);
    if (ty) return ty;
    const k = name.lastIndexOf("::");
    if (k <= 0) return undefined;
    name = name.slice(0, k);
  }
}

/** Replacement nodes for one node (bodies already upgraded), or why there is no upgrade path. */
function adaptNode(n: NodeProto, scope: UpgradeScope): NodeProto[] | string {
  if (!isDefaultDomain(n)) return [n];
  const from = scope.from;
  const op = n.opType;
  if (COMPATIBLE.has(op)) return [n];
  switch (op) {
    case "Slice": {
      const starts = attrOf(n, "starts");
      if (!starts) return [n];
      const ends = attrOf(n, "ends");
      if (!ends) return "Slice without ends";
      const axes = attrOf(n, "axes");
      const input = [n.input[0]!, intsInput(n, scope, "starts", starts), intsInput(n, scope, "ends", ends)];
      if (axes) input.push(intsInput(n, scope, "axes", axes));
      return [withNode(n, { input, attribute: without(n, "starts", "ends", "axes") })];
    }
    case "TopK": {
      const k = attrOf(n, "k");
      if (!k) return [n];
      return [withNode(n, { input: [n.input[0]!, constInput(n, scope, "k", "int64", [1], [k.i])], attribute: without(n, "k") })];
    }
    case "Upsample":
    case "Resize": {
      if (op === "Resize" && (from >= 11 || n.input.length > 2)) return [n];
      const mode = strAttr(n, "mode", "nearest");
      const attrs = [sAttr("mode", mode), sAttr("coordinate_transformation_mode", "asymmetric")];
      if (mode === "nearest") {
        // onnxruntime's pre-11 kernel rounds coordinates down when upsampling and up when downsampling.
        const c = n.input[1] ? scope.constOf(n.input[1]) : undefined;
        if (!c) return "its scales are not a constant, so the pre-opset-11 nearest rounding cannot be chosen";
        const s = Array.from(tensorProtoToHost(c).data as Float32Array);
        const down = s.some((v) => v < 1), up = s.some((v) => v > 1);
        if (down && up) return "it upsamples some axes and downsamples others (nearest rounding differs per axis)";
        attrs.push(sAttr("nearest_mode", down ? "ceil" : "floor"));
      } else if (mode !== "linear") return `mode '${mode}'`;
      return [withNode(n, { opType: "Resize", input: [n.input[0]!, "", n.input[1]!], attribute: attrs })];
    }
    case "Clip": {
      if (n.input.length > 1 || from >= 11) return [n];
      const dt = derivedType(scope.types, n.input[0]!)?.dtype;
      if (dt !== "float32" && dt !== "float64") return `Clip on ${dt ?? "an untyped tensor"}`;
      const lo = attrOf(n, "min")?.f ?? -FLT_MAX, hi = attrOf(n, "max")?.f ?? FLT_MAX;
      return [withNode(n, { input: [n.input[0]!, constInput(n, scope, "min", dt, [], [lo]), constInput(n, scope, "max", dt, [], [hi])], attribute: without(n, "min", "max") })];
    }
    case "Pad": {
      const pads = attrOf(n, "pads");
      if (!pads || from >= 11) return [n];
      const mode = strAttr(n, "mode", "constant");
      const input = [n.input[0]!, intsInput(n, scope, "pads", pads)];
      if (mode === "constant") {
        const dt = derivedType(scope.types, n.input[0]!)?.dtype;
        if (!dt || dt === "float16" || dt === "bfloat16" || dt === "string" || dt === "bool" || dt.startsWith("float8")) return `Pad value for ${dt ?? "an untyped tensor"}`;
        const v = attrOf(n, "value")?.f ?? 0;
        input.push(constInput(n, scope, "value", dt, [], dt === "int64" || dt === "uint64" ? [BigInt(Math.trunc(v))] : [v]));
      }
      return [withNode(n, { input, attribute: without(n, "pads", "value") })];
    }
    case "Scatter":
      return [withNode(n, { opType: "ScatterElements" })];
    case "Dropout": {
      if (from >= 12) return [n];
      if (from < 10 && n.output[1]) return "its mask output changes type (float before opset 10, bool after)";
      return [withNode(n, { attribute: without(n, "ratio") })];
    }
    case "Softmax":
    case "LogSoftmax":
    case "Hardmax": {
      if (from >= 13) return [n];
      const x = n.input[0]!;
      const rank = derivedType(scope.types, x)?.shape?.length;
      if (rank === undefined) return "the rank of its input is unknown (axis semantics changed at opset 13)";
      const ax0 = Number(attrOf(n, "axis")?.i ?? 1n);
      const axis = ax0 < 0 ? ax0 + rank : ax0;
      if (axis === rank - 1) return [withNode(n, { attribute: [...without(n, "axis"), iAttr("axis", axis)] })];
      const y = n.output[0]!;
      const flat = `${y}::flat`, soft = `${y}::2d`, shape = `${y}::shape`;
      return [
        create(NodeProtoSchema, { name: `${n.name}::flatten`, opType: "Flatten", input: [x], output: [flat], attribute: [iAttr("axis", axis)] }),
        withNode(n, { input: [flat], output: [soft], attribute: [...without(n, "axis"), iAttr("axis", -1)] }),
        create(NodeProtoSchema, { name: `${n.name}::shape`, opType: "Shape", input: [x], output: [shape] }),
        create(NodeProtoSchema, { name: `${n.name}::reshape`, opType: "Reshape", input: [soft, shape], output: [y] }),
      ];
    }
    case "Squeeze":
    case "Unsqueeze":
    case "ReduceSum":
    case "Split": {
      const key = op === "Split" ? "split" : "axes";
      const a = attrOf(n, key);
      if (!a || from >= 13) return [n];
      return [withNode(n, { input: [n.input[0]!, intsInput(n, scope, key, a)], attribute: without(n, key) })];
    }
  }
  return "trt-debug knows no opset-13 equivalent of it";
}

/** The Constant node outputs of a node list, by tensor name. */
function constantsOf(nodes: readonly NodeProto[]): Map<string, TensorProto> {
  const m = new Map<string, TensorProto>();
  for (const n of nodes) {
    const v = n.opType === "Constant" ? attrOf(n, "value")?.t : undefined;
    if (v && n.output[0]) m.set(n.output[0], v);
  }
  return m;
}

/** Upgrade a list of nodes (and, recursively, their bodies) to opset 13, or to `target` 19 (fp8). */
export function upgradeNodes(nodes: readonly NodeProto[], scope: UpgradeScope, target: number = UPGRADE_TARGET): UpgradeResult {
  const out: NodeProto[] = [];
  for (const n of nodes) {
    let node = n;
    if (n.attribute.some((a) => a.g || a.graphs.length)) {
      let blocker: UpgradeBlocker | null = null;
      const body = (g: GraphProto): GraphProto => {
        if (blocker) return g;
        const inits = [...g.initializer];
        const own = new Map(g.initializer.map((t) => [t.name, t]));
        const consts = constantsOf(g.node);
        const r = upgradeNodes(g.node, {
          from: scope.from,
          types: new Map([...scope.types, ...(typesOfBody(g) ?? [])]),
          constOf: (t) => own.get(t) ?? consts.get(t) ?? scope.constOf(t),
          addInit: (t) => inits.push(t),
        }, target);
        if (r.blocker) {
          blocker = r.blocker;
          return g;
        }
        return create(GraphProtoSchema, { ...g, node: r.nodes, initializer: inits });
      };
      const attribute = n.attribute.map((a) => (a.g || a.graphs.length ? create(AttributeProtoSchema, { ...a, ...(a.g ? { g: body(a.g) } : {}), graphs: a.graphs.map(body) }) : a));
      if (blocker) return { nodes: null, blocker };
      node = withNode(n, { attribute });
    }
    const r = scope.from < UPGRADE_TARGET ? adaptNode(node, scope) : [node];
    if (typeof r === "string") return { nodes: null, blocker: { node: n.name || n.output[0] || n.opType, opType: n.opType, reason: r } };
    if (target <= UPGRADE_TARGET) {
      out.push(...r);
      continue;
    }
    for (const x of r) {
      const r19 = adaptNodeTo19(x, scope);
      if (typeof r19 === "string") return { nodes: null, blocker: { node: n.name || n.output[0] || n.opType, opType: n.opType, reason: r19 } };
      out.push(...r19);
    }
  }
  return { nodes: out, blocker: null };
}

/** The scope of the model's top-level graph (initializers and Constant nodes as constants). */
export function modelScope(m: LoadedModel, types: TypeMap, addInit: (t: TensorProto) => void): UpgradeScope {
  const consts = constantsOf(m.proto.graph?.node ?? []);
  return { from: m.opset, types, constOf: (t) => m.graph.initializers.get(t) ?? consts.get(t), addInit };
}

const blockers = new WeakMap<LoadedModel, Map<number, UpgradeBlocker | null>>();

/** The first node of the model (bodies included) with no upgrade path to opset 13 (or `target` 19), or null. */
export function upgradeBlocker(m: LoadedModel, types: TypeMap, target: number = UPGRADE_TARGET): UpgradeBlocker | null {
  let byTarget = blockers.get(m);
  if (!byTarget) blockers.set(m, (byTarget = new Map()));
  let b = byTarget.get(target);
  if (b === undefined) {
    b = upgradeNodes(m.proto.graph?.node ?? [], modelScope(m, types, () => undefined), target).blocker;
    byTarget.set(target, b);
  }
  return b;
}

/** ONNX float8 element types (FLOAT8E4M3FN .. FLOAT8E5M2FNUZ): Casts to them and Q/DQ with such zero points need opset 19. */
const isFloat8 = (t: number | undefined): boolean => t !== undefined && t >= 17 && t <= 20;

/**
 * The opset the given (rewritten) nodes need at least, bodies included: bf16 Casts 13, Q/DQ 10
 * (per axis 13), Clip with bound inputs 11, Casts to float8 and Q/DQ with a float8 zero point
 * (an initializer in `inits`) 19.
 */
export function requiredOpset(nodes: readonly NodeProto[], inits?: ReadonlyMap<string, TensorProto>): number {
  let need = 0;
  for (const n of nodes) {
    if (isDefaultDomain(n)) {
      if (n.opType === "Cast" && Number(attrOf(n, "to")?.i ?? 0n) === 16) need = Math.max(need, 13);
      else if (n.opType === "Cast" && isFloat8(Number(attrOf(n, "to")?.i ?? 0n))) need = Math.max(need, 19);
      else if ((n.opType === "QuantizeLinear" || n.opType === "DequantizeLinear") && isFloat8(inits?.get(n.input[2] ?? "")?.dataType)) need = Math.max(need, 19);
      else if (n.opType === "QuantizeLinear" || n.opType === "DequantizeLinear") need = Math.max(need, attrOf(n, "axis") ? 13 : 10);
      else if (n.opType === "Clip" && n.input.length > 1) need = Math.max(need, 11);
    }
    for (const a of n.attribute) for (const g of [a.g, ...a.graphs]) if (g) need = Math.max(need, requiredOpset(g.node, inits));
  }
  return need;
}
