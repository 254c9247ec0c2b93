/**
 * Reduced precision inside control-flow bodies (If/Loop/Scan subgraphs).
 *
 * A control-flow node is one layer; its explicit inputs and outputs get the layer's transforms
 * in rewrite.ts. This module rewrites its bodies so the computation inside them is emulated in
 * the layer's float format too, with the layer rules applied to every body node:
 *
 *  - every floating input of a body node is rounded (a Cast pair), unless its producer in the
 *    same body already rounded it; that covers the body's formal inputs (Loop-carried values,
 *    Scan slices) and the outer-scope values the body reads;
 *  - floating initializers (the body's own, and top-level ones the body reads) are replaced by
 *    pre-rounded copies (`<name>::<format>`);
 *  - every floating output of a body node is rounded (the raw result is renamed
 *    `<tensor>::raw`, so body outputs keep their names), except for the exact ops rewrite.ts
 *    names when all their floating inputs are rounded;
 *  - inputs that carry coordinates (Resize's roi/scales, ...) are not rounded;
 *  - nested bodies are rewritten the same way, recursively.
 *
 * Loop-carried values are body outputs, so they are rounded at the end of every iteration (as
 * TensorRT's loop layers keep them in the loop's precision). Only floating tensors are touched:
 * integer, bool and sequence values pass through.
 *
 * What is not emulated is reported, never silent: a body onnxruntime could not type on its own
 * runs in fp32, and the bodies of layers asked for int8 run in the layer's fallback precision
 * (no calibration ranges exist for body tensors). `describeBodies` lists every body with what
 * it ran in and why, for warnings and the JSON results.
 */
import { create } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  NodeProtoSchema,
  TensorProto_DataType,
  type GraphProto,
  type NodeProto,
  type TensorProto,
} from "onnx-buf";
import { isFloatDType, type DType, type Precision } from "../core/host-tensor.js";
import type { Layer, LoadedModel } from "../onnx/model.js";
import type { TypeMap } from "../onnx/infer.js";
import { bodyTypeError, deriveBodyTypes, nodeBodies, typesOfBody } from "../onnx/body-types.js";
import { dtypeToOnnx } from "../core/dtype.js";
import { hostToTensorProto, tensorProtoToHost } from "../onnx/tensor.js";
import { roundTo, type FloatFormat } from "../numeric/index.js";
import { isExactNode, NEVER_ROUNDED_INPUTS, PRECISION_FORMAT, type WeightSource } from "./transforms.js";

const FORMAT_DTYPE: Record<FloatFormat, DType> = { fp16: "float16", bf16: "bfloat16", fp8e4m3fn: "float8e4m3fn", fp8e5m2: "float8e5m2" };

/** What rewriteBodies needs from the segment being built. */
export interface BodyRewriteEnv {
  model: LoadedModel;
  /** Types of the top-level graph. */
  types: TypeMap;
  weights: WeightSource;
  /** Adds a (pre-rounded) top-level initializer to the segment. */
  addInitializer(t: TensorProto): void;
}

export function hasBodies(n: NodeProto): boolean {
  return n.attribute.some((a) => a.g || a.graphs.length > 0);
}

/**
 * Replace the bodies of `node` (a copy of `layer`'s node; its attribute list is replaced, never
 * mutated) with bodies emulating `format`. No-op without a format (fp32, int8) or bodies.
 */
export function rewriteBodies(layer: Layer, node: NodeProto, format: FloatFormat | undefined, env: BodyRewriteEnv): void {
  if (!format || !hasBodies(node)) return;
  node.attribute = rewriteAttributes(node, format, env.types, layer.name, env);
}

function rewriteAttributes(node: NodeProto, format: FloatFormat, scope: TypeMap, tag: string, env: BodyRewriteEnv): NodeProto["attribute"] {
  return node.attribute.map((a) => {
    if (!a.g && a.graphs.length === 0) return a;
    const at = `${tag}/${a.name}`;
    return create(AttributeProtoSchema, {
      ...a,
      ...(a.g ? { g: rewriteGraph(a.g, format, scope, at, env) } : {}),
      graphs: a.graphs.map((g, i) => rewriteGraph(g, format, scope, `${at}[${i}]`, env)),
    });
  });
}

function attrInt(name: string, v: number) {
  return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(v) });
}

function roundPair(src: string, dtype: DType, f: FloatFormat, dst: string, base: string): NodeProto[] {
  const mid = `${dst}::${f}`;
  return [
    create(NodeProtoSchema, { name: `${base}::to_${f}`, opType: "Cast", input: [src], output: [mid], attribute: [attrInt("to", dtypeToOnnx(FORMAT_DTYPE[f]))] }),
    create(NodeProtoSchema, { name: `${base}::from_${f}`, opType: "Cast", input: [mid], output: [dst], attribute: [attrInt("to", dtypeToOnnx(dtype))] }),
  ];
}

/** One body rewritten under `format`; `scope` types the enclosing graphs' tensors; `tag` names the body uniquely. */
function rewriteGraph(g: GraphProto, format: FloatFormat, scope: TypeMap, tag: string, env: BodyRewriteEnv): GraphProto {
  const own = typesOfBody(g);
  if (!own) return g; // not typed: runs in fp32 (describeBodies reports it)
  const types: TypeMap = new Map([...scope, ...own]);
  const floatType = (t: string): DType | null => {
    const ty = types.get(t);
    return ty && isFloatDType(ty.dtype) ? ty.dtype : null;
  };
  const bodyInits = new Map(g.initializer.map((t) => [t.name, t]));
  const initializers: TensorProto[] = [...g.initializer];
  const rounded = new Set<string>(); // body tensors whose producer rounded them to `format`
  const memo = new Map<string, string>(); // tensor -> its rounded name in this body
  const nodes: NodeProto[] = [];
  const roundedInput = (t: string, dtype: DType): string => {
    const hit = memo.get(t);
    if (hit) return hit;
    let name: string | undefined;
    const own = bodyInits.get(t);
    if (own && own.dataType === TensorProto_DataType.FLOAT) {
      name = `${t}::${format}`;
      const host = tensorProtoToHost(own, { baseDir: env.model.baseDir, fileName: env.model.path });
      const data = host.data as Float32Array;
      initializers.push(hostToTensorProto({ name, dtype: "float32", dims: host.dims, data: roundTo(data, format, new Float32Array(data.length)) }));
    } else if (!own && env.model.graph.initializers.has(t)) {
      const w = env.weights.get(t, { kind: "round", format });
      if (w) {
        env.addInitializer(w.proto);
        name = w.name;
      }
    }
    if (!name) {
      name = `${t}::in_${format}@${tag}`;
      nodes.push(...roundPair(t, dtype, format, name, name));
    }
    memo.set(t, name);
    return name;
  };
  for (const n of g.node) {
    const copy = create(NodeProtoSchema, { ...n, input: [...n.input], output: [...n.output] });
    if (hasBodies(n)) copy.attribute = rewriteAttributes(n, format, types, `${tag}/${n.name || n.opType}`, env);
    let floatInputs = 0;
    let allRounded = true;
    n.input.forEach((t, k) => {
      if (t === "") return;
      const d = floatType(t);
      if (!d) return;
      floatInputs++;
      if (NEVER_ROUNDED_INPUTS[n.opType]?.includes(k)) {
        allRounded = false;
        return;
      }
      if (!rounded.has(t)) copy.input[k] = roundedInput(t, d);
    });
    const exact = isExactNode(n) && !hasBodies(n) && floatInputs > 0 && allRounded;
    const post: NodeProto[] = [];
    n.output.forEach((t, k) => {
      if (t === "") return;
      const d = floatType(t);
      if (!d) return;
      rounded.add(t);
      if (exact) return;
      const raw = `${t}::raw`;
      copy.output[k] = raw;
      post.push(...roundPair(raw, d, format, t, `${t}@${tag}`));
    });
    nodes.push(copy, ...post);
  }
  const out = create(GraphProtoSchema, { ...g, node: nodes, initializer: initializers });
  deriveBodyTypes(out, g); // the opset upgrade of old models reads ranks and dtypes inside bodies
  return out;
}

// ---------------------------------------------------------------------------------------
// reporting

/** One control-flow body of a run: what it ran in, and why when that is not what was asked. */
export interface SubgraphNote {
  /** The control-flow layer (the row its outputs appear under). */
  layer: string;
  op_type: string;
  /** The body: its attribute (`then_branch`, `body`), nested ones as `then_branch/Loop_2/body`. */
  body: string;
  /** Nodes in the body, nested bodies included. */
  nodes: number;
  /** The layer's requested precision. */
  requested: Precision;
  /** What the body's nodes ran in. */
  ran_in: Precision;
  /** A one-line explanation when `ran_in` differs from `requested` or part of the body stayed fp32; null otherwise. */
  note: string | null;
}

function countNodes(g: GraphProto): number {
  let n = 0;
  for (const x of g.node) {
    n++;
    for (const b of nodeBodies(x)) n += countNodes(b.graph);
  }
  return n;
}

/**
 * Every control-flow body of the model under the final per-layer precisions (`ran`, e.g. after
 * int8 resolution) and the requested ones. Bodies whose nodes do not run in the requested
 * precision carry a note saying which part and why.
 */
export function describeBodies(m: LoadedModel, ran: readonly Precision[], requested: readonly Precision[] = ran): SubgraphNote[] {
  const out: SubgraphNote[] = [];
  for (const l of m.graph.layers) {
    if (!hasBodies(l.node)) continue;
    const req = requested[l.index]!;
    const p = ran[l.index]!;
    const effective: Precision = PRECISION_FORMAT[p] ? p : "fp32";
    const visit = (node: NodeProto, prefix: string, inherited: string | null) => {
      for (const { attr, graph } of nodeBodies(node)) {
        const body = prefix ? `${prefix}/${attr}` : attr;
        const nodes = countNodes(graph);
        const typeErr = effective !== "fp32" ? bodyTypeError(graph) : undefined;
        const bodyRan: Precision = typeErr || inherited ? "fp32" : effective;
        let note: string | null = null;
        const what = `${l.name} ${body} (${nodes} node${nodes === 1 ? "" : "s"})`;
        if (inherited) note = `${what} ran in fp32, not ${req}: ${inherited}`;
        else if (typeErr) note = `${what} ran in fp32, not ${req}: ${typeErr}`;
        else if (bodyRan !== req) {
          note = req === "int8"
            ? `${what} ran in ${bodyRan}, not int8: trt-debug has no calibration ranges for tensors inside control-flow bodies, so ${l.opType} layers fall back to ${bodyRan} with their bodies`
            : `${what} ran in ${bodyRan}, not ${req}: the layer ran in ${p}`;
        }
        out.push({ layer: l.name, op_type: l.opType, body, nodes, requested: req, ran_in: bodyRan, note });
        for (const n of graph.node) if (hasBodies(n)) visit(n, `${body}/${n.name || n.opType}`, inherited ?? (typeErr ? `its enclosing body ${body} could not be typed` : null));
      }
    };
    visit(l.node, "", null);
  }
  return out;
}

/** The notes worth a warning (bodies not run as requested). */
export function bodyWarnings(notes: readonly SubgraphNote[]): string[] {
  return notes.filter((n) => n.note !== null).map((n) => n.note!);
}

/**
 * describeBodies for a run, with a warning per body not run as requested; undefined when the
 * model has no control-flow bodies (so results of other models keep their shape).
 */
export function reportBodies(m: LoadedModel, ran: readonly Precision[], requested: readonly Precision[], warn: (msg: string) => void): SubgraphNote[] | undefined {
  const notes = describeBodies(m, ran, requested);
  if (notes.length === 0) return undefined;
  for (const w of bodyWarnings(notes)) warn(w);
  return notes;
}
