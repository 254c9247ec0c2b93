/**
 * Strongly typed models (TensorRT 11 semantics): a model that declares FLOAT16/BFLOAT16
 * tensors runs "as typed": every node computes in fp32 and each output is rounded to its
 * declared type (docs/precision.md "Strongly typed models").
 *
 * At load the model is lifted to fp32 (liftTypedModel): fp16/bf16 initializers and constants
 * are widened exactly, Casts to fp16/bf16 become Casts to float, value types become float.
 * The declared types are kept on the model; typedPrecisions() turns them into one precision
 * per layer (the declared type of the layer's first float output), so the ordinary emulation
 * (rewrite + executor) computes the typed graph: a reduced layer rounds its inputs (already
 * representable when they come typed) and its outputs; a precision Cast to fp16 is an fp16
 * layer, i.e. a round trip; a Cast back to float is an fp32 layer, an identity.
 */
import { create } from "@bufbuild/protobuf";
import { AttributeProto_AttributeType, AttributeProtoSchema, NodeProtoSchema, TensorProto_DataLocation, TensorProto_DataType, type AttributeProto, type GraphProto, type NodeProto, type TensorProto, type TypeProto } from "onnx-buf";
import type { Precision } from "../core/host-tensor.js";
import { buildGraphView, loadModel, type LoadedModel, type LoadOptions } from "../onnx/model.js";
import type { TypeMap } from "../onnx/infer.js";
import { hostToTensorProto, tensorProtoToHost } from "../onnx/tensor.js";
import { floatValues } from "../numeric/index.js";
import { liftToFloat32File, usesExternalSegmentWeights } from "../onnx/external-weights.js";

const F32 = TensorProto_DataType.FLOAT;
const F16 = TensorProto_DataType.FLOAT16;
const BF16 = TensorProto_DataType.BFLOAT16;
const F64 = TensorProto_DataType.DOUBLE;
const isReduced = (t: number | undefined): boolean => t === F16 || t === BF16;
const isFloatType = (t: number | undefined): boolean => t === F32 || t === F16 || t === BF16 || t === F64;

/** The precision an ONNX element type declares: fp16/bf16, else fp32. */
export function declaredPrecision(elemType: number | undefined): Precision {
  return elemType === F16 ? "fp16" : elemType === BF16 ? "bf16" : "fp32";
}

function elemTypeOf(t: TypeProto | undefined): number | undefined {
  return t?.value.case === "tensorType" ? t.value.value.elemType : undefined;
}

function attrTensorType(a: AttributeProto | undefined): number | undefined {
  return a?.t ? a.t.dataType : undefined;
}

/** Whether the graph (or a body inside it) declares a FLOAT16/BFLOAT16 tensor, Cast or constant. */
export function isTypedGraph(g: GraphProto): boolean {
  if (g.initializer.some((t) => isReduced(t.dataType))) return true;
  if ([...g.input, ...g.output, ...g.valueInfo].some((v) => isReduced(elemTypeOf(v.type)))) return true;
  for (const n of g.node) {
    for (const a of n.attribute) {
      if ((n.opType === "Cast" && a.name === "to" && isReduced(Number(a.i))) || isReduced(attrTensorType(a))) return true;
      if (a.g && isTypedGraph(a.g)) return true;
      if (a.graphs.some(isTypedGraph)) return true;
    }
  }
  return false;
}

/**
 * Declared element type of every top-level tensor: graph inputs and initializers as declared,
 * Cast's `to`, CastLike's target, Constant/ConstantOfShape values, else the type of the node's
 * first float input (ONNX float ops keep their input type), else a declared value_info, else float.
 */
function declaredTypes(m: LoadedModel): Map<string, number> {
  const g = m.proto.graph!;
  const d = new Map<string, number>();
  const vi = new Map<string, number>();
  for (const v of g.valueInfo) {
    const e = elemTypeOf(v.type);
    if (e !== undefined) vi.set(v.name, e);
  }
  for (const v of [...g.input, ...g.output]) {
    const e = elemTypeOf(v.type);
    if (e !== undefined) vi.set(v.name, e);
  }
  for (const v of g.input) if (vi.has(v.name)) d.set(v.name, vi.get(v.name)!);
  for (const t of g.initializer) d.set(t.name, t.dataType);
  for (const l of m.graph.layers) {
    for (const n of l.nodes) {
      const at = (name: string) => n.attribute.find((a) => a.name === name);
      let out: number | undefined;
      if (n.opType === "Cast") out = Number(at("to")?.i ?? F32);
      else if (n.opType === "CastLike") out = d.get(n.input[1] ?? "");
      else if (n.opType === "Constant") out = attrTensorType(at("value")) ?? F32;
      else if (n.opType === "ConstantOfShape") out = attrTensorType(at("value")) ?? F32;
      else out = n.input.map((i) => d.get(i)).find(isFloatType);
      // If/Loop/Scan: each output is declared by its body's output (Loop's body output 0 is the condition).
      const body = n.opType === "If" ? at("then_branch")?.g : n.opType === "Loop" || n.opType === "Scan" ? at("body")?.g : undefined;
      const shift = n.opType === "Loop" ? 1 : 0;
      n.output.forEach((o, k) => {
        if (o === "" || !body) return;
        const e = elemTypeOf(body.output[k + shift]?.type);
        if (e !== undefined && !vi.has(o)) vi.set(o, e);
      });
      for (const o of n.output) {
        if (o === "") continue;
        const v = vi.get(o);
        const t = out ?? v;
        // A declared non-float output (Shape, ArgMax, ...) keeps its declaration.
        d.set(o, v !== undefined && !isFloatType(v) ? v : (t ?? F32));
      }
    }
  }
  return d;
}

/**
 * Widen an fp16/bf16 TensorProto to float32, in place. External data is read and inlined, or,
 * when `stream` (the model's segments reference external weights, onnx/external-weights.ts),
 * it and raw_data of 4 KiB or more are widened piece by piece into the model's load-time
 * temporary data file and referenced there.
 */
function widenTensor(t: TensorProto, m: LoadedModel, stream: boolean): void {
  if (!isReduced(t.dataType)) return;
  if (stream && liftToFloat32File(m, t)) return;
  const host = tensorProtoToHost(t, { baseDir: m.baseDir, fileName: m.path });
  const f = floatValues(host)!;
  const w = hostToTensorProto({ name: t.name, dtype: "float32", dims: host.dims, data: Float32Array.from(f) });
  t.dataType = F32;
  t.rawData = w.rawData;
  t.int32Data = [];
  t.floatData = [];
  t.externalData = [];
  t.dataLocation = TensorProto_DataLocation.DEFAULT;
}

function liftGraph(g: GraphProto, m: LoadedModel, stream: boolean): void {
  for (const t of g.initializer) widenTensor(t, m, stream);
  for (const v of [...g.input, ...g.output, ...g.valueInfo]) {
    if (v.type?.value.case === "tensorType" && isReduced(v.type.value.value.elemType)) v.type.value.value.elemType = F32;
  }
  for (const n of g.node) {
    for (const a of n.attribute) {
      if ((a.name === "to" || a.name === "dtype") && isReduced(Number(a.i))) a.i = BigInt(F32);
      if (a.t) widenTensor(a.t, m, false);
      for (const t of a.tensors) widenTensor(t, m, false);
      if (a.g) liftGraph(a.g, m, false); // bodies: inlined (segments place top-level initializers only)
      for (const sg of a.graphs) liftGraph(sg, m, false);
    }
  }
}

function definesName(g: GraphProto, name: string): boolean {
  return g.input.some((i) => i.name === name) || g.initializer.some((t) => t.name === name) || g.node.some((n) => n.output.includes(name));
}

/** Rename every read of `from` (in bodies too, unless a body defines its own `from`). */
function renameUses(g: GraphProto, from: string, to: string): void {
  for (const n of g.node) {
    n.input = n.input.map((t) => (t === from ? to : t));
    for (const a of n.attribute) for (const sg of [a.g, ...a.graphs]) if (sg && !definesName(sg, from)) renameUses(sg, from, to);
  }
}

function castNode(name: string, input: string, output: string, to: number): NodeProto {
  return create(NodeProtoSchema, { name, opType: "Cast", input: [input], output: [output], attribute: [create(AttributeProtoSchema, { name: "to", type: AttributeProto_AttributeType.INT, i: BigInt(to) })] });
}

/**
 * When `m` is strongly typed, lift it to fp32 in place and record the declared types
 * (`m.typed`); returns whether it was typed. Call right after loading, before the layer model.
 * Graph inputs and outputs keep their declared types: an fp16/bf16 input `x` is read through
 * a Cast `x::lift` (output `x::lifted`), an fp16/bf16 output `y` is computed as `y::lifted`
 * and cast to its type by `y::declare`, so feeds and results are exactly as declared.
 */
export function liftTypedModel(m: LoadedModel): boolean {
  const g = m.proto.graph!;
  if (!isTypedGraph(g)) return false;
  const declared = declaredTypes(m);
  const initNames = new Set(g.initializer.map((t) => t.name));
  const reducedIn = g.input.filter((v) => !initNames.has(v.name) && isReduced(elemTypeOf(v.type)));
  const producers = new Map<string, NodeProto>();
  for (const n of g.node) for (const o of n.output) if (o !== "") producers.set(o, n);
  const reducedOut = g.output.filter((v) => producers.has(v.name) && isReduced(elemTypeOf(v.type)));
  const keep = [...reducedIn, ...reducedOut].map((v) => [v, elemTypeOf(v.type)!] as const);
  liftGraph(g, m, usesExternalSegmentWeights(m));
  for (const [v, e] of keep) if (v.type?.value.case === "tensorType") v.type.value.value.elemType = e;
  const head: NodeProto[] = [];
  for (const v of reducedIn) {
    const lifted = `${v.name}::lifted`;
    renameUses(g, v.name, lifted);
    head.push(castNode(`${v.name}::lift`, v.name, lifted, F32));
    declared.set(lifted, declared.get(v.name)!);
  }
  const tail: NodeProto[] = [];
  for (const v of reducedOut) {
    const lifted = `${v.name}::lifted`;
    const p = producers.get(v.name)!;
    p.output = p.output.map((o) => (o === v.name ? lifted : o));
    renameUses(g, v.name, lifted);
    tail.push(castNode(`${v.name}::declare`, lifted, v.name, elemTypeOf(v.type)!));
    declared.set(lifted, declared.get(v.name)!);
  }
  if (head.length || tail.length) {
    g.node = [...head, ...g.node, ...tail];
    m.graph = buildGraphView(g, m.path);
  }
  m.typed = { declared };
  return true;
}

/**
 * One precision per layer of a lifted typed model: the declared type of the layer's first
 * output that is a float tensor (fp16, bf16, else fp32). Null for a model that is not typed.
 */
export function typedPrecisions(m: LoadedModel, types: TypeMap): Precision[] | null {
  if (!m.typed) return null;
  const d = m.typed.declared;
  return m.graph.layers.map((l) => {
    const o = l.outputs.find((t) => t !== "" && ["float32", "float16", "bfloat16"].includes(types.get(t)?.dtype ?? ""));
    return o === undefined ? "fp32" : declaredPrecision(d.get(o));
  });
}

/** The reduced precisions a typed model declares (for verdict thresholds), coarsest first. */
export function typedReducedPrecisions(m: LoadedModel): Precision[] {
  if (!m.typed) return [];
  const s = new Set([...m.typed.declared.values()]);
  return [...(s.has(BF16) ? (["bf16"] as const) : []), ...(s.has(F16) ? (["fp16"] as const) : [])];
}

/**
 * Verdict precision of a tensor of a typed model: its declared type when fp16/bf16, else (fp32
 * tensors downstream of reduced layers) the coarsest reduced type the model declares.
 * `fallback` for models that are not typed or declare no reduced type.
 */
export function typedVerdictPrecision(m: LoadedModel, tensor: string, fallback: Precision): Precision {
  if (!m.typed) return fallback;
  const own = declaredPrecision(m.typed.declared.get(tensor));
  return own !== "fp32" ? own : (typedReducedPrecisions(m)[0] ?? fallback);
}

/**
 * The reduced precision a model file declares (bf16 when it declares any BFLOAT16 tensor, else
 * fp16), or null when it is not strongly typed. For the CLI: `compare TYPED.onnx` needs no
 * candidate flag. Decodes the file (a second time for the command that then runs it).
 */
export function typedFilePrecision(file: string, opts: LoadOptions = {}): "fp16" | "bf16" | null {
  const m = loadModel(file, opts);
  const g = m.proto.graph!;
  if (!isTypedGraph(g)) return null;
  return [...declaredTypes(m).values()].includes(BF16) ? "bf16" : "fp16";
}

/** compare's note for a strongly typed model. */
export const TYPED_COMPARE_NOTE =
  "strongly typed model: the reference is the same graph computed all in fp32 (declared fp16/bf16 lifted to fp32, weights as stored), the candidate the graph as typed (every node in fp32, each output rounded to its declared type); each tensor is judged at its declared type, fp32 tensors at the model's coarsest reduced type";
