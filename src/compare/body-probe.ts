/**
 * Evidence from inside a failing control-flow layer.
 *
 * An If/Loop/Scan node is one layer: `compare` sees only its outputs. When such a layer fails,
 * the probe re-runs the model (up to that layer) with the layer's body intermediates exposed,
 * reference and candidate in lockstep, and names the first body node whose output fails the
 * verdict, e.g. "inside then_branch: body_scale (Mul) first fails: 16 new Inf".
 *
 * Exposing intermediates: each floating (float32/float16/float64) output of a top-level body
 * node becomes an extra body output. For If, the other branch gets an empty tensor of the same
 * type in that position (both branches must have the same outputs); the empty one is skipped.
 * For Loop and Scan the extra outputs are scan outputs, stacked over the iterations. The probe
 * model is built from the loaded model (initializers shared, not copied); the extra node
 * outputs have no consumers, so layer order, names and precisions are unchanged.
 *
 * Two graphs (`compare REFERENCE.onnx CANDIDATE.onnx`, probeBodiesTwoModels): each model's
 * layer is probed in its own model, and body tensors are paired by body and tensor name (a
 * converter keeps a body's node and tensor names; those it renames are not compared).
 */
import { create } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  type GraphProto,
  type NodeProto,
} from "onnx-buf";
import type { DType, HostTensor, Precision } from "../core/host-tensor.js";
import { prepareModel, type Layer } from "../onnx/model.js";
import { tensorValueInfo } from "../onnx/infer.js";
import { inferTypes } from "../onnx/model-types.js";
import { typesOfBody } from "../onnx/body-types.js";
import { dtypeToOnnx } from "../core/dtype.js";
import { hostToTensorProto } from "../onnx/tensor.js";
import { allocateHost } from "../core/dtype.js";
import { Executor, type ExecutorOptions } from "../runtime/executor.js";
import { makeFeeds, type PreparedModel } from "../runtime/capture-runs.js";
import { fromOrt } from "../onnx/ort-session.js";
import { compareTensor } from "./layer-compare.js";
import type { CompareOptions } from "./tolerance.js";

/** The element types of body tensors that are probed. */
const PROBED: ReadonlySet<DType> = new Set<DType>(["float32", "float16", "float64"]);

interface Probe {
  /** Extra output of the layer's node. */
  output: string;
  body: string;
  /** The body tensor it exposes. */
  tensor: string;
  node: NodeProto;
}

/** Float intermediates of a body (node outputs that are not already body outputs). */
function intermediates(g: GraphProto): { name: string; dtype: DType; node: NodeProto }[] {
  const types = typesOfBody(g);
  if (!types) return [];
  const outs = new Set(g.output.map((o) => o.name));
  const res: { name: string; dtype: DType; node: NodeProto }[] = [];
  for (const n of g.node) {
    for (const o of n.output) {
      const d = types.get(o)?.dtype;
      if (o === "" || outs.has(o) || !d || !PROBED.has(d)) continue;
      res.push({ name: o, dtype: d, node: n });
    }
  }
  return res;
}

/** The layer's node with its body intermediates exposed, and what each extra output is. */
function probeNode(layer: Layer): { node: NodeProto; probes: Probe[] } | null {
  const n = layer.node;
  const probes: Probe[] = [];
  const outName = (body: string, t: string) => `${layer.name}::probe/${body}/${t}`;
  if (n.opType === "If") {
    const then = n.attribute.find((a) => a.name === "then_branch")?.g;
    const els = n.attribute.find((a) => a.name === "else_branch")?.g;
    if (!then || !els) return null;
    const ti = intermediates(then), ei = intermediates(els);
    if (ti.length + ei.length === 0) return null;
    const dummy = (d: DType, k: number, side: string) => {
      const name = `${layer.name}::probe/empty_${side}_${k}`;
      return { name, node: create(NodeProtoSchema, { opType: "Constant", output: [name], attribute: [create(AttributeProtoSchema, { name: "value", type: AttributeProto_AttributeType.TENSOR, t: hostToTensorProto({ name, dtype: d, dims: [0], data: allocateHost(d, 0) }) })] }) };
    };
    const extend = (g: GraphProto, own: boolean, side: string): GraphProto => {
      const nodes = [...g.node];
      const output = [...g.output];
      [...ti.map((x) => ({ ...x, mine: own })), ...ei.map((x) => ({ ...x, mine: !own }))].forEach((x, k) => {
        if (x.mine) output.push(tensorValueInfo(x.name, dtypeToOnnx(x.dtype)));
        else {
          const dm = dummy(x.dtype, k, side);
          nodes.push(dm.node);
          output.push(tensorValueInfo(dm.name, dtypeToOnnx(x.dtype)));
        }
      });
      return create(GraphProtoSchema, { ...g, node: nodes, output });
    };
    for (const x of ti) probes.push({ output: outName("then_branch", x.name), body: "then_branch", tensor: x.name, node: x.node });
    for (const x of ei) probes.push({ output: outName("else_branch", x.name), body: "else_branch", tensor: x.name, node: x.node });
    const attribute = n.attribute.map((a) =>
      a.name === "then_branch" ? create(AttributeProtoSchema, { ...a, g: extend(then, true, "t") }) : a.name === "else_branch" ? create(AttributeProtoSchema, { ...a, g: extend(els, false, "e") }) : a,
    );
    return { node: create(NodeProtoSchema, { ...n, output: [...n.output, ...probes.map((p) => p.output)], attribute }), probes };
  }
  if (n.opType === "Loop" || n.opType === "Scan") {
    const body = n.attribute.find((a) => a.name === "body")?.g;
    if (!body) return null;
    const xs = intermediates(body);
    if (xs.length === 0) return null;
    for (const x of xs) probes.push({ output: outName("body", x.name), body: "body", tensor: x.name, node: x.node });
    const g = create(GraphProtoSchema, { ...body, output: [...body.output, ...xs.map((x) => tensorValueInfo(x.name, dtypeToOnnx(x.dtype)))] });
    const attribute = n.attribute.map((a) => {
      if (a.name === "body") return create(AttributeProtoSchema, { ...a, g });
      if (a.name === "scan_output_axes" || a.name === "scan_output_directions") return create(AttributeProtoSchema, { ...a, ints: [...a.ints, ...xs.map(() => 0n)] });
      return a;
    });
    return { node: create(NodeProtoSchema, { ...n, output: [...n.output, ...probes.map((p) => p.output)], attribute }), probes };
  }
  return null;
}

/** `p` with `layer`'s body intermediates exposed, its executor, and the segment to run up to; null when the body cannot be probed. */
async function probeModel(p: PreparedModel, layer: Layer, exec: ExecutorOptions): Promise<{ e: Executor; probes: Probe[]; toSegment: number } | null> {
  const pn = probeNode(layer);
  if (!pn) return null;
  const g = p.model.proto.graph!;
  const proto = create(ModelProtoSchema, { ...p.model.proto, graph: create(GraphProtoSchema, { ...g, node: g.node.map((n) => (n === layer.node ? pn.node : n)) }) });
  const model = prepareModel(proto, p.model.path);
  const types = await inferTypes(model);
  const e = new Executor(model, types, { ...exec, keepSessions: false });
  // Runs go up to the segment holding the layer, capturing only the layer.
  const toSegment = e.segments.findIndex((s) => s.start <= layer.index && layer.index < s.end) + 1;
  return { e, probes: pn.probes, toSegment };
}

type Failure = { probe: Probe; reason: string; order: number };

/** The evidence line for the first failing body node (in body order), or none. */
function firstFailure(failures: Failure[]): string[] {
  if (failures.length === 0) return [];
  failures.sort((a, b) => a.order - b.order);
  const f = failures[0]!;
  const name = f.probe.node.name || f.probe.node.output[0];
  return [`inside ${f.probe.body}: ${name} (${f.probe.node.opType}) is the first body node that fails: ${f.reason}`];
}

/** Compare one probed body tensor; a failure is pushed to `failures`. */
function compareProbe(layer: Layer, precision: Precision, o: CompareOptions & { verdictPrecision: Precision }, pr: Probe, order: number, ref: HostTensor, cand: HostTensor, failures: Failure[]): void {
  const l = compareTensor({ order: layer.index, layer: layer.name, opType: layer.opType, precision, verdictPrecision: o.verdictPrecision, isGraphOutput: false }, ref, cand, o);
  if (l && !l.verdict.passed) failures.push({ probe: pr, reason: [l.verdict.reason, ...l.evidence].join("; "), order });
}

/**
 * Evidence lines for a failing control-flow layer: the first body node whose output fails
 * (in body order), or an empty list when no body intermediate fails or the body cannot be
 * probed. `ref`/`cand` are the per-layer precisions of the two runs.
 */
export async function probeBodies(
  p: PreparedModel,
  layer: Layer,
  ref: readonly Precision[],
  cand: readonly Precision[],
  inputs: HostTensor[],
  o: CompareOptions & { verdictPrecision: Precision },
  exec: ExecutorOptions,
): Promise<string[]> {
  const pm = await probeModel(p, layer, exec);
  if (!pm) return [];
  const { e, toSegment } = pm;
  const probed = new Map(pm.probes.map((x) => [x.output, x]));
  const failures: Failure[] = [];
  const order = new Map(pm.probes.map((x, i) => [x.output, i]));
  const capture = (i: number) => i === layer.index;
  try {
    const a = e.run(ref, makeFeeds(inputs), capture, { toSegment });
    const b = e.run(cand, makeFeeds(inputs), capture, { toSegment });
    for (;;) {
      const x = await a.next();
      const y = await b.next();
      if (x.done || y.done) break;
      for (const [t, cv] of y.value.captured) {
        const pr = probed.get(t);
        const rv = x.value.captured.get(t);
        if (!pr || !rv || cv.dims.includes(0)) continue;
        compareProbe(layer, cand[layer.index]!, o, pr, order.get(t)!, fromOrt(t, rv), fromOrt(t, cv), failures);
      }
    }
  } finally {
    await e.release();
  }
  return firstFailure(failures);
}

/** One side of a two-graph probe: the model, its failing layer, its per-layer precisions and its inputs. */
export interface ProbeSide {
  p: PreparedModel;
  layer: Layer;
  precisions: readonly Precision[];
  inputs: HostTensor[];
}

/** The probed body tensors of one side, keyed `body/tensor`. */
async function probeValues(s: ProbeSide, exec: ExecutorOptions): Promise<{ probes: Probe[]; values: Map<string, HostTensor> } | null> {
  const pm = await probeModel(s.p, s.layer, exec);
  if (!pm) return null;
  const byOutput = new Map(pm.probes.map((x) => [x.output, x]));
  const values = new Map<string, HostTensor>();
  try {
    for await (const seg of pm.e.run(s.precisions, makeFeeds(s.inputs), (i) => i === s.layer.index, { toSegment: pm.toSegment })) {
      for (const [t, v] of seg.captured) {
        const pr = byOutput.get(t);
        if (pr && !v.dims.includes(0)) values.set(`${pr.body}/${pr.tensor}`, fromOrt(t, v));
      }
    }
  } finally {
    await pm.e.release();
  }
  return { probes: pm.probes, values };
}

/**
 * probeBodies for two graphs (`compare REFERENCE.onnx CANDIDATE.onnx`): the reference's and the
 * candidate's control-flow layer each probed in its own model, their body tensors paired by
 * body and tensor name (tensors of one side only, or of other shapes, are not compared).
 */
export async function probeBodiesTwoModels(ref: ProbeSide, cand: ProbeSide, o: CompareOptions & { verdictPrecision: Precision }, exec: ExecutorOptions): Promise<string[]> {
  if (ref.layer.opType !== cand.layer.opType) return [];
  const r = await probeValues(ref, exec);
  if (!r) return [];
  const c = await probeValues(cand, exec);
  if (!c) return [];
  const failures: Failure[] = [];
  c.probes.forEach((pr, k) => {
    const key = `${pr.body}/${pr.tensor}`;
    const rv = r.values.get(key);
    const cv = c.values.get(key);
    if (!rv || !cv || rv.dims.join(",") !== cv.dims.join(",")) return;
    compareProbe(cand.layer, cand.precisions[cand.layer.index]!, o, pr, k, { ...rv, name: key }, { ...cv, name: key }, failures);
  });
  return firstFailure(failures);
}
