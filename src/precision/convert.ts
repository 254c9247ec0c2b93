/**
 * `convert`: a per-layer precision assignment written as a strongly typed ONNX model
 * (TensorRT 11: precision lives in the graph). docs/precision.md "Strongly typed models".
 *
 * The model written is the model as trt-debug sees it (TensorRT's layer model applied:
 * constants folded, BatchNormalization folded into its Conv/Gemm in fp32), so running it as
 * typed gives exactly the numbers of trt-debug's emulation of the same assignment:
 *
 * * every float tensor has the type of its producer's precision; a reduced layer's float
 *   initializers are stored in fp16/bf16 (a weight also read by a layer of another precision
 *   is duplicated as `<name>__fp16` / `<name>__bf16`, the original keeps its type);
 * * a Cast is inserted exactly where a consumer needs a tensor in another precision:
 *   `<tensor>__to_<precision>` made by the node `<tensor>__cast_to_<precision>`, one per
 *   tensor and precision, right after the tensor exists;
 * * graph inputs and outputs keep float32 (or, with io "reduced", the reduced type): a graph
 *   output computed in another precision is produced as `<output>__<precision>` and cast to
 *   the declared type under its own name;
 * * node and tensor names are kept; value_info is rewritten with every tensor's type.
 */
import { clone, create } from "@bufbuild/protobuf";
import { AttributeProto_AttributeType, AttributeProtoSchema, GraphProtoSchema, type GraphProto, ModelProtoSchema, NodeProtoSchema, ValueInfoProtoSchema, type NodeProto, TensorProto_DataLocation, TensorProto_DataType, type ModelProto, type TensorProto, type ValueInfoProto } from "onnx-buf";
import { opt, UserError, userError } from "../core/errors.js";
import { dtypeToOnnx } from "../core/dtype.js";
import type { Precision } from "../core/host-tensor.js";
import type { LoadedModel } from "../onnx/model.js";
import { tensorValueInfo, type TypeMap } from "../onnx/infer.js";
import { typesOfBody } from "../onnx/body-types.js";
import { hostToTensorProto, tensorProtoToHost } from "../onnx/tensor.js";
import { f32ToBf16, f32ToF16, floatValues } from "../numeric/index.js";
import { NEVER_ROUNDED_INPUTS } from "./transforms.js";

export type TypedPrecision = "fp32" | "fp16" | "bf16";
type ReducedPrecision = Exclude<TypedPrecision, "fp32">;
const ELEM: Record<TypedPrecision, number> = { fp32: TensorProto_DataType.FLOAT, fp16: TensorProto_DataType.FLOAT16, bf16: TensorProto_DataType.BFLOAT16 };

export interface ConvertOptions {
  /** Graph inputs/outputs: "fp32" (default) or "reduced" (the type given by `ioPrecision`). */
  io?: "fp32" | "reduced";
  /** The reduced type of graph inputs/outputs with io "reduced". */
  ioPrecision?: "fp16" | "bf16";
}

export interface ConvertedModel {
  proto: ModelProto;
  /** Layers written in fp16/bf16. */
  converted: number;
  /** All layers. */
  layers: number;
  /** Cast nodes inserted. */
  casts: number;
  /** Initializers duplicated because layers of different precisions read them. */
  duplicated: string[];
  /** The precision each layer was written in. */
  precisions: TypedPrecision[];
}

/** The precisions convert can write; int8/fp8 (Q/DQ) is refused with one line. */
export function checkTypedPrecisions(ps: readonly Precision[], layerNames: readonly string[]): TypedPrecision[] {
  return ps.map((p, i) => {
    if (p === "fp32" || p === "fp16" || p === "bf16") return p;
    throw new UserError(`convert: layer '${layerNames[i]}' is assigned ${p}; convert writes fp32/fp16/bf16 layers only (Q/DQ for int8/fp8 is not supported yet)`);
  });
}

function reducedTensor(t: TensorProto, m: LoadedModel, p: TypedPrecision, name: string): TensorProto {
  const host = tensorProtoToHost(t, { baseDir: m.baseDir, fileName: m.path });
  if (p === "fp32") return hostToTensorProto({ ...host, name });
  const f = floatValues(host)!;
  const data = p === "fp16" ? f32ToF16(f) : f32ToBf16(f);
  return hostToTensorProto({ name, dtype: p === "fp16" ? "float16" : "bfloat16", dims: host.dims, data });
}

const isFloat32Type = (v: ValueInfoProto) => v.type?.value.case === "tensorType" && v.type.value.value.elemType === TensorProto_DataType.FLOAT;

/** A node of a reduced layer: float32-producing attributes take the reduced type; bodies are converted. */
function retypeNode(n: NodeProto, orig: NodeProto, P: ReducedPrecision, m: LoadedModel, types: TypeMap, isOuterF32: (t: string) => boolean, scope: ReadonlySet<string>): void {
  // `orig` is the loaded node `n` was cloned from: its bodies carry onnxruntime's body types.
  n.attribute.forEach((a, i) => {
    const a0 = orig.attribute[i]!;
    if (n.opType === "Cast" && a.name === "to" && Number(a.i) === TensorProto_DataType.FLOAT) a.i = BigInt(ELEM[P]);
    if (a.name === "dtype" && Number(a.i) === TensorProto_DataType.FLOAT) a.i = BigInt(ELEM[P]);
    if ((n.opType === "ConstantOfShape" || n.opType === "Constant") && a.name === "value" && a.t && a.t.dataType === TensorProto_DataType.FLOAT) a.t = reducedTensor(a.t, m, P, a.t.name);
    if (a0.g) a.g = convertBody(a0.g, P, m, types, isOuterF32, scope, `${n.name}/${a.name}`);
    a.graphs = a0.graphs.map((g, k) => convertBody(g, P, m, types, isOuterF32, scope, `${n.name}/${a.name}.${k}`));
  });
}

/**
 * A control-flow body in its layer's reduced precision P (docs/precision.md "Control-flow
 * bodies": every node of a body computes in the layer's precision): float32 initializers,
 * formal inputs, outputs and value_info take P; every float32 outer-scope tensor the body reads
 * is cast to P at the body's start (`<where>/<tensor>__to_<P>`); nested bodies likewise.
 */
function convertBody(body: GraphProto, P: ReducedPrecision, m: LoadedModel, types: TypeMap, isOuterF32: (t: string) => boolean, enclosing: ReadonlySet<string>, where: string): GraphProto {
  const bodyTypes = typesOfBody(body);
  const b = clone(GraphProtoSchema, body);
  const local = new Set<string>([...b.input.map((i) => i.name), ...b.initializer.map((t) => t.name), ...b.node.flatMap((n) => n.output)]);
  const scope = new Set([...enclosing, ...local]);
  b.initializer = b.initializer.map((t) => (t.dataType === TensorProto_DataType.FLOAT ? reducedTensor(t, m, P, t.name) : t));
  for (const v of [...b.input, ...b.output, ...b.valueInfo]) if (isFloat32Type(v) && v.type?.value.case === "tensorType") v.type.value.value.elemType = ELEM[P];
  const head: NodeProto[] = [];
  const castOf = new Map<string, string>();
  b.node.forEach((n, i) => {
    n.input = n.input.map((t) => {
      if (t === "" || scope.has(t) || !isOuterF32(t)) return t;
      let c = castOf.get(t);
      if (!c) {
        c = `${where}/${t}__to_${P}`;
        castOf.set(t, c);
        head.push(create(NodeProtoSchema, { name: `${where}/${t}__cast_to_${P}`, opType: "Cast", input: [t], output: [c], attribute: [create(AttributeProtoSchema, { name: "to", type: AttributeProto_AttributeType.INT, i: BigInt(ELEM[P]) })] }));
      }
      return c;
    });
    retypeNode(n, body.node[i]!, P, m, types, isOuterF32, scope);
  });
  b.node = [...head, ...b.node];
  // value_info of every body tensor onnxruntime typed (float32 ones now P) and of the Casts
  const declared = new Set([...b.input, ...b.output].map((v) => v.name));
  const vi = new Map(b.valueInfo.map((v) => [v.name, v]));
  for (const n of b.node) {
    for (const o of n.output) {
      if (o === "" || declared.has(o) || vi.has(o)) continue;
      const ty = bodyTypes?.get(o) ?? types.get(o);
      if (castOf.has(n.input[0] ?? "") && n.opType === "Cast" && head.includes(n)) vi.set(o, tensorValueInfo(o, ELEM[P]));
      else if (ty) vi.set(o, tensorValueInfo(o, ty.dtype === "float32" ? ELEM[P] : dtypeToOnnx(ty.dtype)));
    }
  }
  b.valueInfo = [...vi.values()];
  return b;
}

/** Write the layers of `m` (layer model applied) in `precisions` as a strongly typed model. */
export function convertToTyped(m: LoadedModel, types: TypeMap, requested: readonly TypedPrecision[], opts: ConvertOptions = {}): ConvertedModel {
  if (m.typed) throw new UserError(`${m.path}: already strongly typed (it declares float16/bfloat16 tensors); convert its FP32 original`);
  const g = m.proto.graph!;
  const layers = m.graph.layers;
  // If/Loop/Scan bodies are converted in their layer's precision (convertBody); every outer
  // tensor a body reads keeps its name in fp32 and is cast inside the body.
  const precisions = [...requested];
  const bodyReads = new Set(layers.flatMap((l) => l.implicitInputs));
  const need = precisions.includes("bf16") || opts.ioPrecision === "bf16" ? 13 : 6;
  if (m.opset >= 0 && m.opset < need) throw new UserError(`${m.path}: a strongly typed model needs Cast to fp16/bf16 (opset >= ${need}), the model has opset ${m.opset}; convert it with onnx.version_converter`);
  const ioP: TypedPrecision = opts.io === "reduced" ? (opts.ioPrecision ?? "fp16") : "fp32";
  const isF32 = (t: string) => t !== "" && types.get(t)?.dtype === "float32";
  const inits = m.graph.initializers;
  const graphOut = new Set(g.output.map((o) => o.name));
  for (const t of bodyReads) {
    if (ioP !== "fp32" && (graphOut.has(t) || g.input.some((i) => i.name === t))) {
      throw userError`${m.path}: ${opt("ioTypes.reduced", 'ioTypes "reduced"')}: graph input/output '${t}' is read inside an If/Loop/Scan body, which stays fp32; keep ${opt("ioTypes.fp32", 'ioTypes "fp32"')}`;
    }
  }

  // Pass 1: which precisions each float initializer is read in.
  const readAs = (l: (typeof layers)[number], n: NodeProto, k: number): TypedPrecision =>
    NEVER_ROUNDED_INPUTS[n.opType]?.includes(k) ? "fp32" : precisions[l.index]!;
  const initUse = new Map<string, Set<TypedPrecision>>();
  for (const t of bodyReads) if (inits.has(t) && isF32(t)) initUse.set(t, new Set(["fp32"]));
  for (const l of layers) {
    for (const n of l.nodes) {
      n.input.forEach((t, k) => {
        if (!inits.has(t) || !isF32(t)) return;
        let s = initUse.get(t);
        if (!s) initUse.set(t, (s = new Set()));
        s.add(readAs(l, n, k));
      });
    }
  }
  const newInits: TensorProto[] = [];
  const initName = new Map<string, string>(); // `${name}|${p}` -> name of that copy
  const duplicated: string[] = [];
  for (const t of g.initializer) {
    const use = initUse.get(t.name);
    if (!use || !isF32(t.name)) {
      newInits.push(t.dataLocation === TensorProto_DataLocation.EXTERNAL ? hostToTensorProto(tensorProtoToHost(t, { baseDir: m.baseDir, fileName: m.path })) : t);
      continue;
    }
    const ps = [...use];
    // One precision: stored in it under its own name; several: the fp32 original (or the first) plus copies.
    const own: TypedPrecision = ps.includes("fp32") ? "fp32" : ps[0]!;
    newInits.push(own === "fp32" && t.dataLocation !== TensorProto_DataLocation.EXTERNAL ? t : reducedTensor(t, m, own, t.name));
    initName.set(`${t.name}|${own}`, t.name);
    for (const p of ps) {
      if (p === own) continue;
      const name = `${t.name}__${p}`;
      newInits.push(reducedTensor(t, m, p, name));
      initName.set(`${t.name}|${p}`, name);
      duplicated.push(name);
    }
  }

  // Pass 2: nodes in execution order, with Casts where a tensor is needed in another precision.
  const avail = new Map<string, Map<TypedPrecision, string>>();
  const nodes: NodeProto[] = [];
  const vi = new Map<string, ValueInfoProto>();
  let casts = 0;
  const setAvail = (t: string, p: TypedPrecision, name: string) => {
    let a = avail.get(t);
    if (!a) avail.set(t, (a = new Map()));
    a.set(p, name);
  };
  // Element type only: onnxruntime infers the shapes (the TypeMap's may be partial).
  const typeInfo = (name: string, p: TypedPrecision) => vi.set(name, tensorValueInfo(name, ELEM[p]));
  const castNode = (src: string, dst: string, nodeName: string, p: TypedPrecision): NodeProto =>
    create(NodeProtoSchema, { name: nodeName, opType: "Cast", input: [src], output: [dst], attribute: [create(AttributeProtoSchema, { name: "to", type: AttributeProto_AttributeType.INT, i: BigInt(ELEM[p]) })] });
  const get = (t: string, p: TypedPrecision): string => {
    const a = avail.get(t);
    if (!a) return t; // produced outside (should not happen for float tensors)
    const have = a.get(p);
    if (have !== undefined) return have;
    const src = [...a.values()][0]!;
    const name = `${t}__to_${p}`;
    nodes.push(castNode(src, name, `${t}__cast_to_${p}`, p));
    casts++;
    typeInfo(name, p);
    setAvail(t, p, name);
    return name;
  };
  for (const i of g.input) if (isF32(i.name) && !inits.has(i.name)) setAvail(i.name, ioP, i.name);
  for (const l of layers) {
    const P = precisions[l.index]!;
    for (const n0 of l.nodes) {
      const n = clone(NodeProtoSchema, n0);
      n.input = n0.input.map((t, k) => {
        if (!isF32(t)) return t;
        const q = readAs(l, n0, k);
        if (inits.has(t)) return initName.get(`${t}|${q}`) ?? t;
        return get(t, q);
      });
      if (P !== "fp32") retypeNode(n, n0, P, m, types, isF32, new Set());
      const after: NodeProto[] = [];
      n.output = n0.output.map((o) => {
        if (!isF32(o)) {
          const ty = types.get(o);
          if (ty && !graphOut.has(o)) vi.set(o, tensorValueInfo(o, dtypeToOnnx(ty.dtype)));
          return o;
        }
        const outP = graphOut.has(o) ? ioP : bodyReads.has(o) ? "fp32" : P;
        if (outP === P) {
          setAvail(o, P, o);
          if (!graphOut.has(o)) typeInfo(o, P);
          return o;
        }
        const inner = `${o}__${P}`;
        setAvail(o, P, inner);
        typeInfo(inner, P);
        after.push(castNode(inner, o, `${o}__cast_to_${outP}`, outP));
        casts++;
        setAvail(o, outP, o);
        return inner;
      });
      nodes.push(n, ...after);
    }
  }

  const retype = (v: ValueInfoProto): ValueInfoProto => {
    if (!isF32(v.name) || v.type?.value.case !== "tensorType") return v;
    const c = clone(ValueInfoProtoSchema, v);
    if (c.type?.value.case === "tensorType") c.type.value.value.elemType = ELEM[ioP];
    return c;
  };
  const proto = modelWithGraph(m.proto, {
    node: nodes,
    initializer: newInits,
    input: g.input.map((v) => (inits.has(v.name) ? v : retype(v))),
    output: g.output.map(retype),
    valueInfo: [...vi.values()],
  });
  const converted = precisions.filter((p) => p !== "fp32").length;
  return { proto, converted, layers: layers.length, casts, duplicated, precisions };
}

/** A copy of `src` (its metadata, opsets, functions, graph name) with a new graph body. */
export function modelWithGraph(src: ModelProto, body: Pick<GraphProto, "node" | "initializer" | "input" | "output"> & Partial<Pick<GraphProto, "valueInfo">>): ModelProto {
  const g = src.graph!;
  return create(ModelProtoSchema, {
    irVersion: src.irVersion,
    opsetImport: src.opsetImport,
    producerName: src.producerName,
    producerVersion: src.producerVersion,
    domain: src.domain,
    modelVersion: src.modelVersion,
    docString: src.docString,
    metadataProps: src.metadataProps,
    functions: src.functions,
    graph: create(GraphProtoSchema, { name: g.name, docString: g.docString, ...body }),
  });
}
