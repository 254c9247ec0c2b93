/**
 * TensorRT's view of an ONNX graph (docs/precision.md "TensorRT's layer model").
 *
 * TensorRT's ONNX parser turns Constant nodes and initializers into weights, the builder folds
 * constant subgraphs, BatchNormalization becomes a per-channel scale computed on the host in
 * fp32 and the scale is fused into the convolution before it; Conv/MatMul epilogues (bias,
 * residual sum, activation) run inside the producer's kernel. trt-debug applies the same steps
 * to the model it prepares, right after loading:
 *
 *  1. foldConstants: Constant nodes and pure-constant subgraphs become initializers (evaluated
 *     once by onnxruntime on the CPU in fp32);
 *  2. foldBatchNorms: a BatchNormalization with constant parameters becomes a folded scale
 *     (scale = gamma/sqrt(var+eps), bias = beta - mean*scale, fp32 as the parser computes it),
 *     merged into the weights of a preceding Conv/ConvTranspose/Gemm when that producer's output
 *     feeds only the BN, else kept as a BatchNormalization node with mean 0, var 1, eps 0;
 *  3. fuseLayers (fusion "trt"): FUSION_PATTERNS group nodes into one layer whose epilogue runs
 *     in fp32 and is rounded once, at the group's output.
 */
import { clone, create, toBinary } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType,
  TensorProtoSchema,
  ValueInfoProtoSchema,
  type GraphProto,
  type NodeProto,
  type TensorProto,
} from "onnx-buf";
import { UserError } from "../core/errors.js";
import { batchNormScale, foldBias, scaleByChannel } from "../numeric/index.js";
import { collectGarbage } from "../core/gc.js";
import type { DType, HostTensor } from "../core/host-tensor.js";
import { hostToTensorProto, tensorProtoToHost } from "./tensor.js";
import { buildGraphView, layerEdges, layerMemberNames, type BatchNormFold, type FusionMode, type GraphView, type Layer, type LayerModelSummary, type LoadedModel } from "./model.js";

export type { BatchNormFold, FusionMode, LayerModelSummary };
import { tensorValueInfo, type TypeMap } from "./infer.js";
import { createSession, fetchable, fromOrt, runSession } from "./ort-session.js";
import { initializerBytes, modelWeightStore, usesExternalSegmentWeights } from "./external-weights.js";

export function parseFusionMode(v: unknown, option = "fusion"): FusionMode {
  const s = String(v ?? "trt").trim().toLowerCase();
  if (s === "trt" || s === "none") return s;
  throw new UserError(`${option} ${JSON.stringify(String(v))}: use trt (group layers as TensorRT fuses them, the default) or none (one layer per ONNX node)`, option);
}

/** An epilogue stage a fusion pattern accepts after its primary node, in this order. */
export type EpilogueStage = "bias" | "residual" | "activation";

/**
 * THE table of fusions trt-debug applies (fusion "trt"); docs/precision.md "Fusions" lists the
 * same rows with their sources. A group is the primary node followed by at most one node of each
 * stage, in the order given; every tensor inside the group has exactly one consumer and is no
 * graph output. The group computes in fp32 and rounds once at its output.
 */
export const FUSION_PATTERNS: readonly { primary: readonly string[]; epilogue: readonly EpilogueStage[]; source: string }[] = [
  {
    primary: ["Conv", "ConvTranspose"],
    epilogue: ["bias", "residual", "activation"],
    source: "TensorRT Layer Fusion Catalog: Convolution and ReLU/Clip/GELU Activation, Convolution and ElementWise Operation (sum, no broadcasting), Convolution and Scale",
  },
  {
    primary: ["Gemm", "MatMul"],
    epilogue: ["bias", "activation"],
    source: "TensorRT Layer Fusion Catalog: FullyConnected/MatMul + bias + activation (Myelin/cuBLASLt epilogues)",
  },
  {
    primary: ["BatchNormalization"],
    epilogue: ["activation"],
    source: "TensorRT Layer Fusion Catalog: Scale and Activation",
  },
];

/** Activations fused as an epilogue stage (inputs besides the first must be constants, e.g. Clip's bounds). */
export const FUSED_ACTIVATIONS: ReadonlySet<string> = new Set(["Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip"]);

/**
 * Ops never folded even with constant inputs: random ops, control flow and sequences, and
 * Q/DQ (explicitly quantized weights stay quantize/dequantize nodes: TensorRT builds int8
 * kernels from them, and trt-debug's explicit int8 mode requires weights to come from a
 * DequantizeLinear).
 */
/** Operators whose output is not a function of their inputs: never constant. */
export const RANDOM_OPS: ReadonlySet<string> = new Set(["RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"]);

const NOT_FOLDABLE = new Set([
  "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
  ...RANDOM_OPS,
  "If", "Loop", "Scan", "SequenceConstruct", "SequenceEmpty", "SequenceInsert", "SequenceAt", "SequenceErase",
  "SequenceLength", "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalGetElement", "OptionalHasElement",
]);

const isDefaultDomain = (d: string) => d === "" || d === "ai.onnx";

// ---------------------------------------------------------------------------------------
// 1. constants

function consumersOf(graph: GraphProto, view: GraphView): Map<string, number> {
  const n = new Map<string, number>();
  for (const l of view.layers) for (const t of new Set([...l.inputs, ...l.implicitInputs])) if (t !== "") n.set(t, (n.get(t) ?? 0) + 1);
  for (const o of graph.output) n.set(o.name, (n.get(o.name) ?? 0) + 1);
  return n;
}

function embeddedInitializer(m: LoadedModel, t: TensorProto): TensorProto {
  if (t.dataLocation !== TensorProto_DataLocation.EXTERNAL) return t;
  return hostToTensorProto(tensorProtoToHost(t, { baseDir: m.baseDir, fileName: m.path }));
}

/**
 * Constant nodes and pure-constant subgraphs of the top-level graph become initializers.
 * A Constant with a `value` tensor is converted directly; everything else foldable is
 * evaluated once by onnxruntime (CPU, fp32, as TensorRT's builder folds constants). Nodes
 * producing graph outputs stay (so constant graph outputs keep working). When onnxruntime
 * cannot evaluate the subgraph, those nodes stay as they are. For a model with external
 * weights, see foldExternal (`o.foldBatchBytes`: its per-session budget).
 */
export async function foldConstants(m: LoadedModel, o: { foldBatchBytes?: number } = {}): Promise<{ constantNodes: number; foldedNodes: number; foldedTensors: number }> {
  const graph = m.proto.graph!;
  const view = m.graph;
  const graphOut = new Set(graph.output.map((o) => o.name));
  const isConst = new Set<string>(view.initializers.keys());
  const folded: Layer[] = [];
  const foldedSet = new Set<NodeProto>();
  for (const l of view.layers) {
    const n = l.node;
    if (!isDefaultDomain(n.domain) || NOT_FOLDABLE.has(n.opType) || l.implicitInputs.length) continue;
    if (n.attribute.some((a) => a.g || a.graphs.length)) continue;
    if (n.output.some((o) => graphOut.has(o))) continue;
    if (!n.input.every((t) => t === "" || isConst.has(t))) continue;
    folded.push(l);
    foldedSet.add(n);
    for (const o of n.output) if (o !== "") isConst.add(o);
  }
  if (folded.length === 0) return { constantNodes: 0, foldedNodes: 0, foldedTensors: 0 };
  // tensors the remaining graph reads
  const needed = new Set<string>();
  for (const l of view.layers) {
    if (foldedSet.has(l.node)) continue;
    for (const t of [...l.inputs, ...l.implicitInputs]) if (t !== "") needed.add(t);
  }
  // Constants with a `value` tensor become initializers directly (they disappear even when
  // onnxruntime cannot evaluate the rest); other folded outputs the graph reads go through onnxruntime.
  const direct = new Map<string, TensorProto>();
  const directNodes = new Set<NodeProto>();
  const viaOrt: string[] = [];
  for (const l of folded) {
    const value = l.opType === "Constant" ? l.node.attribute.find((a) => a.name === "value" && a.t) : undefined;
    if (value?.t && l.outputs.length === 1) {
      // clone, not spread: proto2 messages keep unset fields on the prototype
      const t = clone(TensorProtoSchema, value.t);
      t.name = l.outputs[0]!;
      direct.set(t.name, t);
      directNodes.add(l.node);
      continue;
    }
    for (const o of l.outputs) if (o !== "" && needed.has(o)) viaOrt.push(o);
  }
  const evaluated = new Map<string, TensorProto>();
  let ortOk = true;
  if (viaOrt.length) {
    try {
      if (usesExternalSegmentWeights(m)) {
        await foldExternal(m, folded, viaOrt, evaluated, o.foldBatchBytes ?? FOLD_BATCH_BYTES);
        collectGarbage(); // the folded tensors onnxruntime returned are on disk now: free them before the segments load their weights
      } else {
        const inits = new Map<string, TensorProto>();
        for (const l of folded) for (const t of l.inputs) if (t !== "" && view.initializers.has(t)) inits.set(t, embeddedInitializer(m, view.initializers.get(t)!));
        const out = await evaluateFolded(m, folded.map((l) => l.node), [...inits.values()], viaOrt);
        for (const name of viaOrt) evaluated.set(name, hostToTensorProto(out.get(name)!));
      }
    } catch {
      ortOk = false;
    }
  }
  const removed = ortOk ? foldedSet : directNodes;
  const newInits = [...direct.values(), ...(ortOk ? evaluated.values() : [])];
  graph.node = graph.node.filter((n) => !removed.has(n));
  graph.initializer.push(...newInits);
  dropUnusedInitializers(graph);
  let constantNodes = 0;
  for (const n of removed) if (n.opType === "Constant") constantNodes++;
  const kept = new Set(graph.initializer.map((t) => t.name));
  return { constantNodes, foldedNodes: removed.size - constantNodes, foldedTensors: newInits.filter((t) => kept.has(t.name)).length };
}

/**
 * Evaluate the constant nodes `nodes` (reading `initializers`, external ones relative to
 * `folder`) with onnxruntime; returns `outputs` as host tensors. Throws when onnxruntime
 * cannot (the caller keeps the nodes).
 */
async function evaluateFolded(m: LoadedModel, nodes: NodeProto[], initializers: TensorProto[], outputs: string[], folder?: string): Promise<Map<string, HostTensor>> {
  const model = create(ModelProtoSchema, {
    irVersion: m.proto.irVersion,
    opsetImport: m.proto.opsetImport,
    graph: create(GraphProtoSchema, {
      name: "trt-debug::constant-folding",
      node: nodes,
      initializer: initializers,
      // IR < 4 wants every initializer declared as a graph input
      input: m.irVersion < 4 ? initializers.map((t) => tensorValueInfo(t.name, t.dataType, t.dims)) : [],
      output: outputs.map((name) => create(ValueInfoProtoSchema, { name })),
    }),
  });
  const s = await createSession(toBinary(ModelProtoSchema, model), `${m.path} (constant folding)`, { optimizationLevel: "disabled", externalDataFolder: folder });
  const res = new Map<string, HostTensor>();
  try {
    const out = await runSession(s, {}, outputs, `${m.path} (constant folding)`);
    for (const name of outputs) {
      const t = out[name];
      if (!t || !fetchable(t.type as DType)) throw new Error(`cannot fetch ${name}`);
      res.set(name, fromOrt(name, t) as HostTensor);
    }
  } finally {
    await s.release();
  }
  return res;
}

/** External weights a folding batch reads at most (one batch always takes at least one output). */
const FOLD_BATCH_BYTES = 256 * 2 ** 20;
/** Folded tensors at least this large go to the temporary data file of a model with external weights. */
const FOLD_EXTERNAL_MIN_BYTES = 4096;

/**
 * Constant folding of a model whose segments reference external weights
 * (onnx/external-weights.ts): the folding sessions reference the weights they read (no
 * weight passes through JavaScript on the way in), outputs are evaluated in batches reading at
 * most `batchBytes` of external weights (FOLD_BATCH_BYTES; tests lower it), and each folded
 * tensor of 4 KiB or more is written to the model's load-time temporary data file and
 * referenced there, not embedded.
 */
async function foldExternal(m: LoadedModel, folded: Layer[], viaOrt: string[], evaluated: Map<string, TensorProto>, batchBytes: number): Promise<void> {
  const inits = m.graph.initializers;
  const producer = new Map<string, Layer>();
  for (const l of folded) for (const o of l.outputs) if (o !== "") producer.set(o, l);
  const order = new Map(folded.map((l, i) => [l, i]));
  const need = (name: string): { layers: Set<Layer>; weights: Set<string> } => {
    const layers = new Set<Layer>();
    const weights = new Set<string>();
    const stack = [name];
    while (stack.length) {
      const t = stack.pop()!;
      const l = producer.get(t);
      if (l) {
        if (layers.has(l)) continue;
        layers.add(l);
        for (const i of l.inputs) if (i !== "") stack.push(i);
      } else if (inits.has(t)) weights.add(t);
    }
    return { layers, weights };
  };
  const store = modelWeightStore(m);
  const run = async (outputs: string[], layers: Set<Layer>, weights: Set<string>) => {
    const nodes = [...layers].sort((a, b) => order.get(a)! - order.get(b)!).map((l) => l.node);
    const placed = store.place([...weights].map((w) => inits.get(w)!));
    const out = await evaluateFolded(m, nodes, placed.initializers, outputs, placed.folder);
    for (const name of outputs) {
      const h = out.get(name)!;
      out.delete(name);
      const bytes = ArrayBuffer.isView(h.data) ? h.data.byteLength : 0;
      evaluated.set(name, (bytes >= FOLD_EXTERNAL_MIN_BYTES ? store.writeHost(`${name}::folded`, h) : null) ?? hostToTensorProto(h));
    }
  };
  let batch: string[] = [];
  let layers = new Set<Layer>();
  let weights = new Set<string>();
  let bytes = 0;
  for (const name of viaOrt) {
    const n = need(name);
    let b = 0;
    for (const w of n.weights) if (!weights.has(w)) b += initializerBytes(inits.get(w)!);
    if (batch.length && bytes + b > batchBytes) {
      await run(batch, layers, weights);
      (batch = []), (layers = new Set()), (weights = new Set()), (bytes = 0);
      b = 0;
      for (const w of n.weights) b += initializerBytes(inits.get(w)!);
    }
    batch.push(name);
    for (const l of n.layers) layers.add(l);
    for (const w of n.weights) weights.add(w);
    bytes += b;
  }
  if (batch.length) await run(batch, layers, weights);
}

/** Remove initializers no node (or subgraph, or graph output) reads, with their graph-input declarations. */
export function dropUnusedInitializers(graph: GraphProto): void {
  const used = new Set<string>(graph.output.map((o) => o.name));
  const visit = (g: GraphProto) => {
    for (const n of g.node) {
      for (const t of n.input) used.add(t);
      for (const a of n.attribute) for (const sg of [a.g, ...a.graphs]) if (sg) visit(sg);
    }
  };
  visit(graph);
  const drop = new Set(graph.initializer.filter((t) => !used.has(t.name)).map((t) => t.name));
  if (drop.size === 0) return;
  graph.initializer = graph.initializer.filter((t) => !drop.has(t.name));
  graph.input = graph.input.filter((i) => !drop.has(i.name));
}

// ---------------------------------------------------------------------------------------
// 2. BatchNormalization

function floatData(m: LoadedModel, t: TensorProto): Float32Array {
  return tensorProtoToHost(t, { baseDir: m.baseDir, fileName: m.path }).data as Float32Array;
}

function attrF(n: NodeProto, name: string, def: number): number {
  const a = n.attribute.find((x) => x.name === name);
  return a ? a.f : def;
}
function attrI(n: NodeProto, name: string, def: number): number {
  const a = n.attribute.find((x) => x.name === name);
  return a ? Number(a.i) : def;
}
function setAttrF(n: NodeProto, name: string, v: number): void {
  n.attribute = n.attribute.filter((a) => a.name !== name);
  n.attribute.push(create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOAT, f: v }));
}

function floatInit(name: string, dims: number[], data: Float32Array): TensorProto {
  return hostToTensorProto({ name, dtype: "float32", dims, data });
}

/**
 * Fold every BatchNormalization whose parameters are float32 initializers. `fuse` allows merging
 * into a preceding Conv/ConvTranspose/Gemm (TensorRT's Convolution+Scale fusion); without it
 * (fusion "none") every BN becomes a standalone scale layer.
 */
export function foldBatchNorms(m: LoadedModel, fuse: boolean): BatchNormFold[] {
  const graph = m.proto.graph!;
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const graphOut = new Set(graph.output.map((o) => o.name));
  const view = buildGraphView(graph, m.path);
  const uses = consumersOf(graph, view);
  const producerNode = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) if (o !== "") producerNode.set(o, n);
  const isF32 = (t: string) => inits.get(t)?.dataType === TensorProto_DataType.FLOAT;
  const folds: BatchNormFold[] = [];
  const removed = new Set<NodeProto>();
  for (const bn of [...graph.node]) {
    if (bn.opType !== "BatchNormalization" || !isDefaultDomain(bn.domain)) continue;
    if (bn.output.filter((o) => o !== "").length !== 1 || bn.input.length < 5) continue;
    if (attrI(bn, "training_mode", 0) !== 0 || attrI(bn, "spatial", 1) !== 1) continue;
    if (![1, 2, 3, 4].every((k) => isF32(bn.input[k]!))) continue;
    const [g, b, mu, v] = [1, 2, 3, 4].map((k) => floatData(m, inits.get(bn.input[k]!)!)) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const C = g.length;
    if (![b, mu, v].every((a) => a.length === C)) continue;
    const { scale, bias } = batchNormScale(g, b, mu, v, attrF(bn, "epsilon", 1e-5));
    const x = bn.input[0]!;
    const p = producerNode.get(x);
    const into = fuse && p && !graphOut.has(x) && uses.get(x) === 1 ? foldInto(m, p, inits, scale, bias, C) : null;
    if (into) {
      p!.output[0] = bn.output.find((o) => o !== "")!;
      graph.initializer.push(...into);
      removed.add(bn);
      folds.push({ bn: bn.name, into: p!.name });
      continue;
    }
    // A model written by trt-debug (convert) already holds `<bn>::folded_*`: refolding it takes new names.
    let base = `${bn.name}::folded`;
    for (let k = 2; inits.has(`${base}_scale`) || inits.has(`${base}_bias`) || inits.has(`${base}_mean`) || inits.has(`${base}_var`); k++) base = `${bn.name}::folded${k}`;
    graph.initializer.push(
      floatInit(`${base}_scale`, [C], scale),
      floatInit(`${base}_bias`, [C], bias),
      floatInit(`${base}_mean`, [C], new Float32Array(C)),
      floatInit(`${base}_var`, [C], new Float32Array(C).fill(1)),
    );
    bn.input.splice(1, 4, `${base}_scale`, `${base}_bias`, `${base}_mean`, `${base}_var`);
    setAttrF(bn, "epsilon", 0);
    folds.push({ bn: bn.name, into: null });
  }
  if (removed.size) graph.node = graph.node.filter((n) => !removed.has(n));
  if (folds.length) dropUnusedInitializers(graph);
  return folds;
}

/**
 * W' = W·scale per output channel, b' = b·scale + bias (float64, stored as float32) for a
 * Conv/ConvTranspose/Gemm with float32 constant weights; rewires `p`'s inputs to the new
 * initializers and returns them, or null when `p` cannot absorb the scale.
 */
function foldInto(m: LoadedModel, p: NodeProto, inits: Map<string, TensorProto>, scale: Float32Array, bias: Float32Array, C: number): TensorProto[] | null {
  if (!isDefaultDomain(p.domain) || p.output.filter((o) => o !== "").length !== 1) return null;
  const wT = inits.get(p.input[1] ?? "");
  if (!wT || wT.dataType !== TensorProto_DataType.FLOAT) return null;
  const bName = p.input[2] ?? "";
  const bT = bName !== "" ? inits.get(bName) : undefined;
  if (bName !== "" && (!bT || bT.dataType !== TensorProto_DataType.FLOAT)) return null;
  const dims = wT.dims.map(Number);
  const w = floatData(m, wT);
  const w2 = new Float32Array(w.length);
  let channelOf: (i: number) => number;
  if (p.opType === "Conv") {
    if (dims.length < 3 || dims[0] !== C) return null;
    const inner = w.length / C;
    channelOf = (i) => Math.floor(i / inner);
  } else if (p.opType === "ConvTranspose") {
    const group = attrI(p, "group", 1);
    if (dims.length < 3 || dims[1]! * group !== C) return null;
    const spatial = w.length / (dims[0]! * dims[1]!);
    const perGroupIn = dims[0]! / group;
    channelOf = (i) => {
      const ci = Math.floor(i / (dims[1]! * spatial));
      const j = Math.floor(i / spatial) % dims[1]!;
      return Math.floor(ci / perGroupIn) * dims[1]! + j;
    };
  } else if (p.opType === "Gemm") {
    if (dims.length !== 2 || attrF(p, "alpha", 1) === 0) return null;
    const transB = attrI(p, "transB", 0) !== 0;
    const n = transB ? dims[0]! : dims[1]!;
    if (n !== C) return null;
    const beta = bT ? attrF(p, "beta", 1) : 1;
    if (beta !== 1) return null;
    channelOf = transB ? (i) => Math.floor(i / dims[1]!) : (i) => i % dims[1]!;
  } else return null;
  scaleByChannel(w, scale, channelOf, w2);
  let b0: Float32Array | null = null;
  if (bT) {
    const bd = floatData(m, bT);
    if (bd.length === C) b0 = bd;
    else if (bd.length === 1) b0 = new Float32Array(C).fill(bd[0]!);
    else return null;
  }
  const b2 = foldBias(b0, scale, bias);
  const wName = `${p.name}::bn_folded_W`;
  const bNew = `${p.name}::bn_folded_B`;
  p.input[1] = wName;
  if (p.input.length < 3) p.input.push(bNew);
  else p.input[2] = bNew;
  if (p.opType === "Gemm") setAttrF(p, "beta", 1);
  return [floatInit(wName, dims, w2), floatInit(bNew, [C], b2)];
}

// ---------------------------------------------------------------------------------------
// 3. fusion

function knownShape(types: TypeMap, t: string): number[] | null {
  const s = types.get(t)?.shape;
  if (!s || s.some((d) => typeof d !== "number")) return null;
  return s as number[];
}

/** A constant broadcasting along the channel axis only (or a scalar): a bias. */
function isChannelBias(dims: number[], outShape: (number | string | null)[] | null, channelAxis: "1" | "last"): boolean {
  const numel = dims.reduce((a, b) => a * b, 1);
  if (numel === 1) return dims.length <= (outShape?.length ?? dims.length);
  if (!outShape) return false;
  const rank = outShape.length;
  const axis = channelAxis === "1" ? 1 : rank - 1;
  if (dims.length > rank || axis < 0) return false;
  const aligned = [...new Array(rank - dims.length).fill(1), ...dims];
  return aligned.every((d, i) => (i === axis ? d === outShape[i] : d === 1));
}

/**
 * Group the per-node layers of `view` by FUSION_PATTERNS. Returns the groups as lists of
 * execution indices of `view` (primary first, in execution order).
 */
export function findFusions(view: GraphView, types: TypeMap): number[][] {
  const layers = view.layers;
  const graphOut = new Set(view.outputs.map((o) => o.name));
  const inGroup = new Set<number>();
  const groups: number[][] = [];
  const isConst = (t: string) => view.initializers.has(t);
  for (const l of layers) {
    if (inGroup.has(l.index) || !isDefaultDomain(l.domain)) continue;
    const pattern = FUSION_PATTERNS.find((p) => p.primary.includes(l.opType));
    if (!pattern) continue;
    if (l.opType === "BatchNormalization" && !l.inputs.slice(1).every((t) => t !== "" && isConst(t))) continue;
    if (l.outputs.filter((o) => o !== "").length !== 1 || l.outputs[0] === "") continue;
    const members = [l.index];
    let t = l.outputs[0]!;
    let stage = 0;
    const channelAxis = l.opType === "Conv" || l.opType === "ConvTranspose" ? "1" : "last";
    for (;;) {
      if (graphOut.has(t)) break;
      const cons = view.consumers.get(t) ?? [];
      if (cons.length !== 1) break;
      const c = layers[cons[0]!]!;
      if (inGroup.has(c.index) || !isDefaultDomain(c.domain) || c.implicitInputs.length || c.outputs.length !== 1 || c.outputs[0] === "") break;
      if (c.inputs.filter((x) => x === t).length !== 1) break;
      let kind: EpilogueStage | null = null;
      if (c.opType === "Add" && c.inputs.length === 2) {
        const other = c.inputs[0] === t ? c.inputs[1]! : c.inputs[0]!;
        if (isConst(other)) {
          const init = view.initializers.get(other)!;
          if (isChannelBias(init.dims.map(Number), types.get(t)?.shape ?? null, channelAxis)) kind = "bias";
        } else {
          const a = knownShape(types, t), b = knownShape(types, other);
          if (a && b && a.length === b.length && a.every((d, i) => d === b[i])) kind = "residual";
        }
      } else if (FUSED_ACTIVATIONS.has(c.opType) && c.inputs[0] === t && c.inputs.slice(1).every((x) => x === "" || isConst(x))) {
        kind = "activation";
      }
      if (!kind) break;
      const at = pattern.epilogue.indexOf(kind, stage);
      if (at < 0) break;
      stage = at + 1;
      members.push(c.index);
      t = c.outputs[0]!;
      if (kind === "activation") break;
    }
    if (members.length < 2) continue;
    for (const i of members) inGroup.add(i);
    groups.push(members);
  }
  return groups;
}

/** The view with each group of `groups` merged into one layer (placed at its last member's position). */
export function groupLayers(view: GraphView, groups: number[][]): GraphView {
  const groupOf = new Map<number, number[]>();
  for (const g of groups) for (const i of g) groupOf.set(i, g);
  const out: Layer[] = [];
  for (const l of view.layers) {
    const g = groupOf.get(l.index);
    if (!g) {
      out.push({ ...l, index: out.length });
      continue;
    }
    if (l.index !== Math.max(...g)) continue;
    const members = [...g].sort((a, b) => a - b).map((i) => view.layers[i]!);
    const primary = view.layers[g[0]!]!;
    const internal = new Set<string>();
    for (const m of members) if (m !== members[members.length - 1]) for (const o of m.outputs) internal.add(o);
    const inputs = [...primary.inputs];
    for (const m of members) {
      if (m === primary) continue;
      for (const t of m.inputs) if (t !== "" && !internal.has(t) && !inputs.includes(t)) inputs.push(t);
    }
    const last = members[members.length - 1]!;
    out.push({
      index: out.length,
      name: primary.name,
      opType: primary.opType,
      domain: primary.domain,
      inputs,
      outputs: [...last.outputs],
      implicitInputs: [],
      node: primary.node,
      nodes: members.map((x) => x.node),
      nodeNames: members.flatMap((x) => x.nodeNames),
    });
  }
  return { ...view, layers: out, ...layerEdges(out) };
}

// ---------------------------------------------------------------------------------------

/**
 * Apply TensorRT's layer model to a freshly loaded model (mutates `m.proto` and `m.graph`):
 * constants folded, BatchNormalization folded, and with fusion "trt" layers grouped.
 * `typesOf` infers the element types and shapes of the per-node graph (used for fusion checks
 * and returned for the prepared model).
 */
export async function applyLayerModel(m: LoadedModel, fusion: FusionMode, typesOf: (m: LoadedModel) => Promise<TypeMap>): Promise<{ model: LoadedModel; types: TypeMap; summary: LayerModelSummary }> {
  const c = await foldConstants(m);
  const batchNorms = foldBatchNorms(m, fusion === "trt");
  const graph = m.proto.graph!;
  const perNode: LoadedModel = { ...m, graph: buildGraphView(graph, m.path) };
  const types = await typesOf(perNode);
  let view = perNode.graph;
  for (const b of batchNorms) {
    if (!b.into) continue;
    const l = view.layers.find((x) => x.name === b.into);
    if (l) l.nodeNames.splice(1, 0, b.bn);
  }
  const groups: LayerModelSummary["groups"] = [];
  if (fusion === "trt") {
    const found = findFusions(view, types);
    view = groupLayers(view, found);
    for (const l of view.layers) if (l.nodes.length > 1) groups.push({ name: l.name, nodes: [...l.nodeNames] });
  }
  const summary: LayerModelSummary = { fusion, constantNodes: c.constantNodes, foldedNodes: c.foldedNodes, foldedTensors: c.foldedTensors, batchNorms, groups };
  return { model: { ...perNode, graph: view, layerModel: summary }, types, summary };
}

/**
 * Dump metadata (schema `extra` keys) describing the layer model: `fusion` and `fused_layers`
 * (JSON object: layer name -> its ONNX node names, for layers of several nodes).
 */
export function fusionExtra(m: LoadedModel): Record<string, string> {
  const fused: Record<string, string[]> = {};
  for (const l of m.graph.layers) if (layerMemberNames(l).length > 1) fused[l.name] = layerMemberNames(l);
  return { fusion: m.layerModel?.fusion ?? "none", fused_layers: JSON.stringify(fused) };
}

/** `fused_layers` of a dump's metadata (empty when absent or malformed). */
export function fusedLayersOf(extra: Record<string, string>): Map<string, string[]> {
  try {
    const v = JSON.parse(extra.fused_layers ?? "{}") as unknown;
    if (!v || typeof v !== "object" || Array.isArray(v)) return new Map();
    return new Map(Object.entries(v as Record<string, unknown>).filter(([, n]) => Array.isArray(n)).map(([k, n]) => [k, (n as unknown[]).map(String)]));
  } catch {
    return new Map();
  }
}

/** What the layer model did, as lines for `trt-debug inspect`. */
export function describeLayerModel(s: LayerModelSummary | undefined): string[] {
  if (!s) return [];
  const out = [
    `layer model (fusion ${s.fusion}): ${s.constantNodes} Constant node${s.constantNodes === 1 ? "" : "s"} and ${s.foldedNodes} constant-subgraph node${s.foldedNodes === 1 ? "" : "s"} folded into ${s.foldedTensors} weight${s.foldedTensors === 1 ? "" : "s"}; ${s.batchNorms.length} BatchNormalization folded; ${s.groups.length} fused group${s.groups.length === 1 ? "" : "s"}`,
  ];
  for (const b of s.batchNorms) out.push(b.into ? `  BN ${b.bn}: folded into the weights of ${b.into}` : `  BN ${b.bn}: scale layer (folded scale and bias)`);
  for (const g of s.groups) out.push(`  fused ${g.name}: ${g.nodes.join(" + ")}`);
  return out;
}

/** Member node names of a layer (one for an unfused layer). */
export function layerNodeNames(l: Layer): string[] {
  return layerMemberNames(l);
}
