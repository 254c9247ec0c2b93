/**
 * Loading an ONNX model: decoding, validation, stable layer names, execution order.
 *
 * Every user-caused problem (missing file, not ONNX, truncated protobuf, unsupported IR or
 * opset, missing external data) becomes a one-line UserError naming the file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import {
  ModelProtoSchema,
  TensorProto_DataLocation,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "onnx-buf";
import { UserError } from "../core/errors.js";
import type { Precision } from "../core/host-tensor.js";
import { readFileChecked } from "../io/safe-read.js";
import { approveOutside, resolveExternalLocation } from "./external-data.js";

/** IR versions and default-domain opsets this build (onnxruntime-node 1.30) accepts. */
export const SUPPORTED_IR = { min: 3, max: 12 } as const;
/** onnxruntime only guarantees opset >= 7 but runs most older models; we accept them. */
export const SUPPORTED_OPSET = { min: 1, max: 25 } as const;

/**
 * One layer, in execution order: one top-level ONNX node, or (fusion "trt", see
 * onnx/layer-model.ts) a fused group of nodes that TensorRT runs as one kernel.
 */
export interface Layer {
  /** Position in execution order (0-based). */
  index: number;
  /** Layer name: the node's name, or the generated name for unnamed/duplicate nodes. */
  name: string;
  opType: string;
  domain: string;
  /** Explicit inputs ("" marks an omitted optional input). */
  inputs: string[];
  outputs: string[];
  /** Outer-scope tensors referenced from subgraphs (If/Loop/Scan bodies). */
  implicitInputs: string[];
  /** The primary node (the Conv/MatMul of a fused group; the only node otherwise). */
  node: NodeProto;
  /**
   * Every node of the layer in execution order (`[node]` for an unfused layer). For a fused
   * group, `inputs` are the group's external inputs (the primary node's inputs first) and
   * `outputs` its last node's outputs; tensors inside the group are not layer outputs.
   */
  nodes: NodeProto[];
  /**
   * The ONNX node names this layer stands for, in execution order: its nodes' names plus a
   * BatchNormalization folded into its weights (right after the primary node). Plans and
   * `--layer-precisions` select the layer by any of them; exporters list them all.
   */
  nodeNames: string[];
}

export interface GraphView {
  layers: Layer[];
  /** tensor name -> index of the producing layer */
  producer: Map<string, number>;
  /** tensor name -> indices of consuming layers (explicit and implicit) */
  consumers: Map<string, number[]>;
  initializers: Map<string, TensorProto>;
  /** Graph inputs that are not initializers, in declaration order. */
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
}

export interface LoadedModel {
  path: string;
  /** Directory external data locations are relative to. */
  baseDir: string;
  proto: ModelProto;
  graph: GraphView;
  opset: number;
  irVersion: number;
  /** What TensorRT's layer model changed (set by onnx/layer-model.ts applyLayerModel). */
  layerModel?: LayerModelSummary;
  /**
   * Set for a strongly typed model (one that declares FLOAT16/BFLOAT16 tensors), which was
   * lifted to fp32 at load (precision/typed.ts): each tensor's declared element type (ONNX
   * TensorProto.DataType number) before lifting, and (once the layer model is applied) each
   * layer's precision as declared.
   */
  typed?: { declared: Map<string, number>; precisions?: Precision[] };
}

/** Read and decode an ONNX file. Throws UserError for every user-caused problem. */
export interface LoadOptions {
  /** Accept external data outside the model's folder (absolute, `..`, symlinks out). Off by default. */
  allowExternalDataOutside?: boolean;
}

export function loadModel(modelPath: string, opts: LoadOptions = {}): LoadedModel {
  const bytes = readFileChecked(modelPath, "onnx");
  const proto = decodeModel(bytes, modelPath);
  return prepareModel(proto, modelPath, opts);
}

export function decodeModel(bytes: Uint8Array, label: string): ModelProto {
  if (bytes.length === 0) throw new UserError(`${label}: empty file; not an ONNX model`);
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes);
  } catch (e) {
    const msg = String((e as Error).message ?? e);
    if (/premature|EOF|out of range|truncat/i.test(msg)) {
      throw new UserError(`${label}: truncated or corrupt ONNX file (${msg}); re-export or re-download the model`);
    }
    throw new UserError(`${label}: not an ONNX model (protobuf decode failed: ${msg})`);
  }
  if (!proto.graph || Number(proto.irVersion) === 0 || (proto.graph.node.length === 0 && proto.graph.output.length === 0)) {
    throw new UserError(`${label}: not an ONNX model (no graph or IR version found); pass an .onnx ModelProto file`);
  }
  return proto;
}

/** Validate versions, name nodes, resolve the execution order. Mutates node names in `proto`. */
export function prepareModel(proto: ModelProto, modelPath: string, opts: LoadOptions = {}): LoadedModel {
  const label = modelPath;
  const ir = Number(proto.irVersion);
  if (ir < SUPPORTED_IR.min || ir > SUPPORTED_IR.max) {
    throw new UserError(
      `${label}: unsupported ONNX IR version ${ir} (supported ${SUPPORTED_IR.min}-${SUPPORTED_IR.max}); convert the model with onnx.version_converter or re-export it`,
    );
  }
  let opset = -1;
  for (const o of proto.opsetImport) {
    if (o.domain === "" || o.domain === "ai.onnx") opset = Number(o.version);
  }
  if (opset === -1) opset = ir >= 3 ? -1 : 1;
  if (opset !== -1 && (opset < SUPPORTED_OPSET.min || opset > SUPPORTED_OPSET.max)) {
    throw new UserError(
      `${label}: unsupported opset ${opset} for domain ai.onnx (supported ${SUPPORTED_OPSET.min}-${SUPPORTED_OPSET.max}); convert the model with onnx.version_converter`,
    );
  }
  const graph = proto.graph as GraphProto;
  const baseDir = path.dirname(path.resolve(modelPath));
  checkExternalData(graph, baseDir, label, Boolean(opts.allowExternalDataOutside));
  assignLayerNames(graph);
  const view = buildGraphView(graph, label);
  return { path: modelPath, baseDir, proto, graph: view, opset, irVersion: ir };
}

/** Every external-data initializer's location must be confined (see external-data.ts), its file must exist and be long enough. */
function checkExternalData(graph: GraphProto, baseDir: string, label: string, allowOutside: boolean): void {
  for (const t of allInitializers(graph)) {
    if (t.dataLocation !== TensorProto_DataLocation.EXTERNAL) continue;
    const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
    const loc = kv.get("location");
    if (!loc) throw new UserError(`${label}: initializer '${t.name}' has external data without a location; re-export the model`);
    const file = resolveExternalLocation(loc, baseDir, { label, tensor: t.name }, allowOutside);
    if (allowOutside) approveOutside(t);
    let size: number;
    try {
      const st = fs.statSync(file);
      if (!st.isFile()) {
        throw new UserError(`${label}: external data location '${loc}' for initializer '${t.name}' is not a regular file; keep the data file next to the model`);
      }
      size = st.size;
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(
        `${label}: external data file '${loc}' for initializer '${t.name}' not found (looked in ${baseDir}); keep the data file next to the model`,
      );
    }
    const num = (key: string): number | undefined => {
      const v = kv.get(key);
      if (v === undefined) return undefined;
      const x = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
      if (!Number.isSafeInteger(x)) throw new UserError(`${label}: initializer '${t.name}' has external data ${key} '${v.slice(0, 40)}', not a non-negative integer; re-export the model`);
      return x;
    };
    const offset = num("offset") ?? 0;
    const length = num("length") ?? size - offset;
    if (length < 0 || offset + length > size) {
      throw new UserError(
        `${label}: external data file '${loc}' is too short for initializer '${t.name}' (needs ${offset + Math.max(length, 0)} bytes, has ${size}); the data file is truncated or belongs to another model`,
      );
    }
  }
}

/** Initializers of a graph and of its subgraphs (If/Loop/Scan bodies). */
function* allInitializers(g: GraphProto): Generator<TensorProto> {
  yield* g.initializer;
  for (const n of g.node) for (const a of n.attribute) for (const sg of [a.g, ...a.graphs]) if (sg) yield* allInitializers(sg);
}

/**
 * Stable layer names, as TensorRT's ONNX parser gives them. A named node keeps its name. An
 * unnamed node (name "") is named `node_of_<first output>` (onnx-tensorrt's getNodeName); one
 * without outputs, at position i of the file's node list, `<OpType>_<i>`. A name already taken
 * (a duplicate) gets the suffix `__<k>` with the smallest k >= 2 that makes it unique. Nodes are
 * visited in file order, named ones first, so adding unnamed nodes never renames a named one.
 */
export function assignLayerNames(graph: GraphProto): void {
  const taken = new Set<string>();
  const unique = (base: string): string => {
    if (!taken.has(base)) return base;
    for (let k = 2; ; k++) {
      const cand = `${base}__${k}`;
      if (!taken.has(cand)) return cand;
    }
  };
  for (const n of graph.node) {
    if (n.name !== "") n.name = unique(n.name), taken.add(n.name);
  }
  graph.node.forEach((n, i) => {
    if (n.name === "") {
      const out0 = n.output[0] ?? "";
      n.name = unique(out0 !== "" ? `node_of_${out0}` : `${n.opType}_${i}`);
      taken.add(n.name);
    }
  });
}

/** Tensors a node's subgraphs (If/Loop/Scan bodies) read from the enclosing graph. */
export function subgraphOuterRefs(node: NodeProto): string[] {
  const refs = new Set<string>();
  const visit = (g: GraphProto, enclosing: ReadonlySet<string>) => {
    const defined = new Set<string>(enclosing);
    for (const i of g.input) defined.add(i.name);
    for (const t of g.initializer) defined.add(t.name);
    for (const n of g.node) {
      for (const inp of n.input) if (inp !== "" && !defined.has(inp)) refs.add(inp);
      for (const a of n.attribute) for (const sg of [a.g, ...a.graphs]) if (sg) visit(sg, defined);
      for (const o of n.output) defined.add(o);
    }
  };
  for (const a of node.attribute) for (const sg of [a.g, ...a.graphs]) if (sg) visit(sg, new Set());
  return [...refs];
}

/** Topological order (Kahn, ties broken by file order), producers and consumers. */
export function buildGraphView(graph: GraphProto, label: string): GraphView {
  const initializers = new Map<string, TensorProto>();
  for (const t of graph.initializer) initializers.set(t.name, t);
  const available = new Set<string>([""]);
  for (const i of graph.input) available.add(i.name);
  for (const t of initializers.keys()) available.add(t);
  const nodes = graph.node;
  const producedBy = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.output) {
      if (o === "") continue;
      if (producedBy.has(o)) {
        throw new UserError(`${label}: tensor '${o}' is produced by two nodes ('${nodes[producedBy.get(o)!]!.name}' and '${n.name}'); the model is invalid`);
      }
      producedBy.set(o, i);
    }
  });
  const implicit = nodes.map((n) => (n.attribute.some((a) => a.g || a.graphs.length) ? subgraphOuterRefs(n) : []));
  const deps: number[][] = nodes.map(() => []);
  const indeg = new Array<number>(nodes.length).fill(0);
  nodes.forEach((n, i) => {
    const seen = new Set<number>();
    for (const t of [...n.input, ...implicit[i]!]) {
      if (available.has(t)) continue;
      const p = producedBy.get(t);
      if (p === undefined) {
        throw new UserError(`${label}: node '${n.name}' reads tensor '${t}', which no node, input or initializer provides; the model is invalid`);
      }
      if (!seen.has(p)) {
        seen.add(p);
        deps[p]!.push(i);
        indeg[i]!++;
      }
    }
  });
  // Kahn with a min-heap on file position keeps the file order when it is already valid.
  const heap: number[] = [];
  const push = (v: number) => {
    heap.push(v);
    let c = heap.length - 1;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (heap[p]! <= heap[c]!) break;
      [heap[p], heap[c]] = [heap[c]!, heap[p]!];
      c = p;
    }
  };
  const pop = (): number => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      let c = 0;
      for (;;) {
        const l = 2 * c + 1, r = l + 1;
        let m = c;
        if (l < heap.length && heap[l]! < heap[m]!) m = l;
        if (r < heap.length && heap[r]! < heap[m]!) m = r;
        if (m === c) break;
        [heap[m], heap[c]] = [heap[c]!, heap[m]!];
        c = m;
      }
    }
    return top;
  };
  indeg.forEach((d, i) => d === 0 && push(i));
  const order: number[] = [];
  while (heap.length) {
    const i = pop();
    order.push(i);
    for (const j of deps[i]!) if (--indeg[j]! === 0) push(j);
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.find((_, i) => indeg[i]! > 0)!;
    throw new UserError(`${label}: the graph has a cycle (at node '${stuck.name}'); the model is invalid`);
  }
  const layers: Layer[] = order.map((fi, index) => {
    const n = nodes[fi]!;
    return { index, name: n.name, opType: n.opType, domain: n.domain ?? "", inputs: [...n.input], outputs: [...n.output], implicitInputs: implicit[fi]!, node: n, nodes: [n], nodeNames: [n.name] };
  });
  const { producer, consumers } = layerEdges(layers);
  const inputs = graph.input.filter((i) => !initializers.has(i.name));
  return { layers, producer, consumers, initializers, inputs, outputs: [...graph.output] };
}

/** The ONNX node names a layer stands for (Layer.nodeNames; [name] for layers built without it). */
export function layerMemberNames(l: Layer): string[] {
  return l.nodeNames ?? [l.name];
}

/** tensor -> producing layer, tensor -> consuming layers (explicit and implicit inputs). */
export function layerEdges(layers: readonly Layer[]): Pick<GraphView, "producer" | "consumers"> {
  const producer = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  for (const l of layers) {
    for (const o of l.outputs) if (o !== "") producer.set(o, l.index);
    for (const t of new Set([...l.inputs, ...l.implicitInputs])) {
      if (t === "") continue;
      let c = consumers.get(t);
      if (!c) consumers.set(t, (c = []));
      c.push(l.index);
    }
  }
  return { producer, consumers };
}

/** Layer fusion (layer-model.ts): "trt" (TensorRT's fused groups) or "none" (one layer per node). */
export type FusionMode = "trt" | "none";

/** A BatchNormalization folded by the layer model (layer-model.ts). */
export interface BatchNormFold {
  /** The BatchNormalization node. */
  bn: string;
  /** The node whose weights absorbed it, or null when it stays a scale layer. */
  into: string | null;
}

/** What applying TensorRT's layer model did (layer-model.ts applyLayerModel). */
export interface LayerModelSummary {
  fusion: FusionMode;
  /** Constant nodes turned into initializers. */
  constantNodes: number;
  /** Other nodes of constant subgraphs evaluated once and turned into initializers. */
  foldedNodes: number;
  /** Initializers created by constant folding. */
  foldedTensors: number;
  batchNorms: BatchNormFold[];
  /** Fused groups (layers of more than one node): layer name and member node names. */
  groups: { name: string; nodes: string[] }[];
}
