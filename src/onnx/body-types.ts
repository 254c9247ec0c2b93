/**
 * Element types of the tensors inside control-flow bodies (If/Loop/Scan subgraphs).
 *
 * inferTypes types the top-level graph only. Emulating reduced precision inside a body needs
 * to know which body tensors are floating, so each body is typed the same way, by onnxruntime
 * itself: a weightless copy of the body becomes a top-level graph whose inputs are the body's
 * formal inputs (types filled in from the enclosing node where the body leaves them out), its
 * initializers and the outer-scope tensors it reads, and whose outputs are every body node's
 * outputs. Nested bodies are typed with the enclosing body's types in scope.
 *
 * Results are kept per body GraphProto (a WeakMap: the same proto object the layer's node
 * holds), so the sync rewrite can look them up. A body onnxruntime cannot type on its own is
 * recorded with the reason, and its nodes then run in fp32, reported as such (never silently).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { GraphProtoSchema, ModelProtoSchema, ValueInfoProtoSchema, TensorProto_DataType, type GraphProto, type NodeProto, type ValueInfoProto } from "onnx-buf";
import type { DType } from "../core/host-tensor.js";
import { dtypeToOnnx, onnxToDType } from "../core/dtype.js";
import { subgraphOuterRefs, type LoadedModel } from "./model.js";
import { tensorValueInfo, typeOutputs, type TypeMap, sequenceType, tensorType } from "./infer.js";
import { oneLine } from "./ort-session.js";

const bodyTypes = new WeakMap<GraphProto, TypeMap>();
const bodyErrors = new WeakMap<GraphProto, string>();

/** The types of a body's tensors (formal inputs, initializers, node outputs), when known. */
export function typesOfBody(g: GraphProto): TypeMap | undefined {
  return bodyTypes.get(g);
}

/**
 * Record the types of a body derived from a typed one (the precision rewrite's copy): the same
 * tensors, plus names derived from them (`<tensor>::raw`, ...; see opset-upgrade.ts derivedType).
 */
export function deriveBodyTypes(derived: GraphProto, from: GraphProto): void {
  const t = bodyTypes.get(from);
  if (t) bodyTypes.set(derived, t);
}

/** Why a body could not be typed (its nodes then stay fp32), or undefined. */
export function bodyTypeError(g: GraphProto): string | undefined {
  return bodyErrors.get(g);
}

/** The subgraphs of a node, with the attribute names they hang off (then_branch, body, ...). */
export function nodeBodies(n: NodeProto): { attr: string; graph: GraphProto }[] {
  const out: { attr: string; graph: GraphProto }[] = [];
  for (const a of n.attribute) {
    if (a.g) out.push({ attr: a.name, graph: a.g });
    a.graphs.forEach((g, i) => out.push({ attr: `${a.name}[${i}]`, graph: g }));
  }
  return out;
}

function elemTypeOf(vi: ValueInfoProto): number {
  return vi.type?.value.case === "tensorType" ? vi.type.value.value.elemType : 0;
}

/**
 * Types the formal inputs of a body where the body leaves them out: Loop (iteration count,
 * condition, carried values from the node's inputs 2..), Scan (state variables, then one
 * slice of each scan input). Returns the element type code (0 = unknown).
 */
function formalType(node: NodeProto, k: number, outer: TypeMap): number {
  const of = (t: string | undefined) => {
    const ty = t ? outer.get(t) : undefined;
    return ty ? dtypeToOnnx(ty.dtype) : 0;
  };
  if (node.opType === "Loop") {
    if (k === 0) return TensorProto_DataType.INT64;
    if (k === 1) return TensorProto_DataType.BOOL;
    return of(node.input[k]);
  }
  if (node.opType === "Scan") return of(node.input[k]);
  return 0;
}

/** Producers of the tensors in scope (to type outer-scope sequences, which TypeMaps do not hold). */
type Producers = ReadonlyMap<string, NodeProto>;

const producersOf = (nodes: readonly NodeProto[], outer?: Producers): Map<string, NodeProto> => {
  const m = new Map(outer ?? []);
  for (const n of nodes) for (const o of n.output) if (o !== "") m.set(o, n);
  return m;
};

/**
 * The element type of a sequence from the node that makes it (SequenceConstruct,
 * SequenceEmpty, SplitToSequence, SequenceInsert/Erase of a known sequence); 0 when unknown.
 */
function sequenceElemType(t: string, outer: TypeMap, producers: Producers, depth = 0): number {
  const n = producers.get(t);
  if (!n || depth > 64) return 0;
  const tensor = (x: string | undefined) => {
    const ty = x ? outer.get(x) : undefined;
    return ty ? dtypeToOnnx(ty.dtype) : 0;
  };
  switch (n.opType) {
    case "SequenceConstruct":
    case "SplitToSequence":
      return tensor(n.input[0]);
    case "SequenceEmpty": {
      const a = n.attribute.find((x) => x.name === "dtype");
      return a ? Number(a.i) : TensorProto_DataType.FLOAT;
    }
    case "SequenceInsert":
    case "SequenceErase":
      return sequenceElemType(n.input[0]!, outer, producers, depth + 1);
  }
  return 0;
}

/** Type every body of the model (recursively); failures are recorded, never thrown. */
export async function inferBodyTypes(m: LoadedModel, types: TypeMap): Promise<void> {
  const producers = producersOf(m.proto.graph?.node ?? []);
  for (const l of m.graph.layers) {
    if (!l.node.attribute.some((a) => a.g || a.graphs.length)) continue;
    await typeNodeBodies(m, l.node, types, producers);
  }
}

async function typeNodeBodies(m: LoadedModel, node: NodeProto, outer: TypeMap, producers: Producers): Promise<void> {
  for (const { attr, graph } of nodeBodies(node)) {
    if (bodyTypes.has(graph) || bodyErrors.has(graph)) continue;
    try {
      const t = await typeBody(m, node, graph, outer, producers);
      bodyTypes.set(graph, t);
      const scope: TypeMap = new Map([...outer, ...t]);
      const inner = producersOf(graph.node, producers);
      for (const n of graph.node) if (n.attribute.some((a) => a.g || a.graphs.length)) await typeNodeBodies(m, n, scope, inner);
    } catch (e) {
      bodyErrors.set(graph, `onnxruntime cannot type the ${attr} of '${node.name}' on its own (${oneLine(e)})`);
    }
  }
}

async function typeBody(m: LoadedModel, node: NodeProto, g: GraphProto, outer: TypeMap, producers: Producers): Promise<TypeMap> {
  const types: TypeMap = new Map();
  const inputs: ValueInfoProto[] = [];
  const declare = (name: string, elemType: number, dims?: readonly (number | bigint | string | null)[]) => {
    const d = onnxToDType(elemType);
    if (!d) return;
    types.set(name, { dtype: d as DType, shape: dims ? dims.map((x) => (typeof x === "bigint" ? Number(x) : x)) : null });
    inputs.push(tensorValueInfo(name, elemType, dims));
  };
  const declared = new Set<string>();
  g.input.forEach((vi, k) => {
    declared.add(vi.name);
    if (vi.type && vi.type.value.case !== "tensorType") return inputs.push(vi), undefined; // sequences etc.: as declared
    const et = elemTypeOf(vi) || formalType(node, k, outer);
    // an untyped Loop-carried sequence: typed from the node that makes the initial value
    const seq = !et && node.opType === "Loop" && node.input[k] ? sequenceElemType(node.input[k]!, outer, producers) : 0;
    if (seq) return inputs.push(create(ValueInfoProtoSchema, { name: vi.name, type: sequenceType(tensorType(onnxToDType(seq)!)) })), undefined;
    if (!et) throw new Error(`formal input '${vi.name}' has no type`);
    const tt = vi.type?.value.case === "tensorType" ? vi.type.value.value : undefined;
    declare(vi.name, et, tt?.shape ? tt.shape.dim.map((d) => (d.value.case === "dimValue" ? d.value.value : d.value.case === "dimParam" ? d.value.value : null)) : undefined);
  });
  for (const t of g.initializer) {
    declared.add(t.name);
    declare(t.name, t.dataType, t.dims);
  }
  // The refs of all the node's bodies: declaring a sibling's extra refs is harmless.
  for (const r of subgraphOuterRefs(node)) {
    if (declared.has(r)) continue;
    declared.add(r);
    const ty = outer.get(r);
    if (ty) {
      declare(r, dtypeToOnnx(ty.dtype), ty.shape ?? undefined);
      continue;
    }
    const elem = sequenceElemType(r, outer, producers);
    if (!elem) throw new Error(`outer-scope value '${r}' has no known type`);
    inputs.push(create(ValueInfoProtoSchema, { name: r, type: sequenceType(tensorType(onnxToDType(elem)!)) }));
  }
  const outputs: ValueInfoProto[] = [];
  const seen = new Set<string>();
  for (const n of g.node) {
    for (const o of n.output) {
      if (o === "" || seen.has(o) || declared.has(o)) continue;
      seen.add(o);
      outputs.push(create(ValueInfoProtoSchema, { name: o }));
    }
  }
  if (outputs.length === 0) return types;
  const typing = create(ModelProtoSchema, {
    irVersion: m.proto.irVersion,
    opsetImport: m.proto.opsetImport,
    functions: m.proto.functions,
    graph: create(GraphProtoSchema, { name: `${g.name}::typing`, node: g.node, input: inputs, output: outputs, valueInfo: g.valueInfo }),
  });
  await typeOutputs(toBinary(ModelProtoSchema, typing), `${m.path} (${node.name} body)`, types);
  return types;
}
