/**
 * A deliberately small, independent fp16 emulation used to verify the generators' planted
 * facts (not the product's rewriter): each node not pinned to fp32 rounds every floating
 * input and output through Cast(float→float16→float), exactly as docs PRECISION.md states;
 * pinned nodes are left alone. Only for the generators' own graphs: a tensor counts as
 * floating unless it is a non-float initializer (the generators use no Shape-like ops).
 */
import { create } from "@bufbuild/protobuf";
import ort from "onnxruntime-node";
import { GraphProtoSchema, NodeProtoSchema, TensorProto_DataType, type ModelProto, type NodeProto } from "onnx-buf";
import { makeAttribute, makeModel, makeValueInfo, modelBytes } from "../../test/support/graph-builder.js";

const FLOAT16 = TensorProto_DataType.FLOAT16;
const FLOAT = TensorProto_DataType.FLOAT;

function cast(input: string, output: string, to: number): NodeProto {
  return create(NodeProtoSchema, { opType: "Cast", input: [input], output: [output], attribute: [makeAttribute("to", to)] });
}

/** The model with every node outside `pinned` emulated in fp16 (names of tensors unchanged). */
export function emulateFp16(model: ModelProto, pinned: ReadonlySet<string> = new Set()): ModelProto {
  const g = model.graph!;
  const nonFloat = new Set(g.initializer.filter((t) => t.dataType !== FLOAT).map((t) => t.name));
  const nodes: NodeProto[] = [];
  let k = 0;
  const round = (src: string, dst: string): void => {
    nodes.push(cast(src, `${dst}__f16`, FLOAT16), cast(`${dst}__f16`, dst, FLOAT));
  };
  for (const n of g.node) {
    if (pinned.has(n.name)) {
      nodes.push(n);
      continue;
    }
    const inputs = n.input.map((i) => {
      if (i === "" || nonFloat.has(i)) return i;
      const r = `${i}__in${k++}`;
      round(i, r);
      return r;
    });
    const outputs = n.output.map((o) => (o === "" ? o : `${o}__raw`));
    nodes.push(create(NodeProtoSchema, { ...n, input: inputs, output: outputs }));
    n.output.forEach((o) => o !== "" && round(`${o}__raw`, o));
  }
  const graph = create(GraphProtoSchema, { ...g, node: nodes });
  return makeModel(graph, {
    opset: Number(model.opsetImport.find((o) => o.domain === "")!.version),
    irVersion: Number(model.irVersion),
  });
}

/** The model with `tensors` added as (untyped) graph outputs. */
export function exposeTensors(model: ModelProto, tensors: readonly string[]): ModelProto {
  const g = model.graph!;
  const have = new Set(g.output.map((o) => o.name));
  const extra = tensors.filter((t) => !have.has(t)).map((t) => makeValueInfo(t));
  const graph = create(GraphProtoSchema, { ...g, output: [...g.output, ...extra] });
  return makeModel(graph, {
    opset: Number(model.opsetImport.find((o) => o.domain === "")!.version),
    irVersion: Number(model.irVersion),
  });
}

/** Run `model` on CPU (graph optimizations off) and return the named float outputs. */
export async function runModel(
  model: ModelProto,
  feeds: Record<string, { dims: number[]; data: Float32Array }>,
  fetch?: readonly string[],
): Promise<Map<string, Float32Array>> {
  const sess = await ort.InferenceSession.create(modelBytes(model), { graphOptimizationLevel: "disabled" });
  try {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = new ort.Tensor("float32", v.data, v.dims);
    const res = fetch ? await sess.run(f, [...fetch]) : await sess.run(f);
    const out = new Map<string, Float32Array>();
    for (const [k, v] of Object.entries(res)) if (v.type === "float32") out.set(k, v.data as Float32Array);
    return out;
  } finally {
    await sess.release();
  }
}

/** Relative L2 error ‖r − c‖/‖r‖; Infinity when c has NaN/Inf where r is finite. */
export function relL2(r: Float32Array, c: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < r.length; i++) {
    const a = r[i]!;
    const b = c[i]!;
    if (Number.isFinite(a) && !Number.isFinite(b)) return Infinity;
    num += (a - b) * (a - b);
    den += a * a;
  }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return Math.sqrt(num / den);
}

export interface LayerError {
  node: string;
  tensor: string;
  relL2: number;
}

/**
 * Per-node error of the fp16-emulated model (with `pinned` in fp32) against fp32, on the
 * given inputs, in node order (first output of each node), plus the graph outputs' errors.
 */
export async function fp16LayerErrors(
  model: ModelProto,
  feeds: Record<string, { dims: number[]; data: Float32Array }>,
  pinned: ReadonlySet<string> = new Set(),
): Promise<{ layers: LayerError[]; outputs: Map<string, number> }> {
  const g = model.graph!;
  const tensors = g.node.map((n) => n.output[0]!).filter((t) => t !== "");
  const ref = await runModel(exposeTensors(model, tensors), feeds);
  const emu = await runModel(exposeTensors(emulateFp16(model, pinned), tensors), feeds);
  const layers = g.node.map((n) => ({
    node: n.name,
    tensor: n.output[0]!,
    relL2: relL2(ref.get(n.output[0]!)!, emu.get(n.output[0]!)!),
  }));
  const outputs = new Map(g.output.map((o) => [o.name, relL2(ref.get(o.name)!, emu.get(o.name)!)]));
  return { layers, outputs };
}
