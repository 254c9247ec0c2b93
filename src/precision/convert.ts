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
import { AttributeProto_AttributeType, AttributeProtoSchema, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, ValueInfoProtoSchema, type NodeProto, TensorProto_DataLocation, TensorProto_DataType, type ModelProto, type TensorProto, type ValueInfoProto } from "onnx-buf";
import { UserError } from "../core/errors.js";
import { dtypeToOnnx } from "../core/dtype.js";
import type { Precision } from "../core/host-tensor.js";
import type { LoadedModel } from "../onnx/model.js";
import { tensorValueInfo, type TypeMap } from "../onnx/infer.js";
import { hostToTensorProto, tensorProtoToHost } from "../onnx/tensor.js";
import { f32ToBf16, f32ToF16, floatValues } from "../numeric/index.js";
import { NEVER_ROUNDED_INPUTS } from "./transforms.js";

export type TypedPrecision = "fp32" | "fp16" | "bf16";
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
  /** Control-flow layers the assignment put in fp16/bf16, written in fp32 (bodies are not converted). */
  forcedFp32: string[];
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

/** Write the layers of `m` (layer model applied) in `precisions` as a strongly typed model. */
export function convertToTyped(m: LoadedModel, types: TypeMap, requested: readonly TypedPrecision[], opts: ConvertOptions = {}): ConvertedModel {
  if (m.typed) throw new UserError(`${m.path}: already strongly typed (it declares float16/bfloat16 tensors); convert its FP32 original`);
  const g = m.proto.graph!;
  const layers = m.graph.layers;
  // Control-flow layers (If/Loop/Scan) are written in fp32 with their bodies unchanged; every
  // outer tensor a body reads keeps its name in fp32.
  const hasBody = (l: (typeof layers)[number]) => l.nodes.some((n) => n.attribute.some((a) => a.g || a.graphs.length));
  const forcedFp32 = layers.filter((l) => hasBody(l) && requested[l.index] !== "fp32").map((l) => l.name);
  const precisions = requested.map((p, i): TypedPrecision => (hasBody(layers[i]!) ? "fp32" : p));
  const bodyReads = new Set(layers.flatMap((l) => l.implicitInputs));
  const need = precisions.includes("bf16") || opts.ioPrecision === "bf16" ? 13 : 6;
  if (m.opset >= 0 && m.opset < need) throw new UserError(`${m.path}: a strongly typed model needs Cast to fp16/bf16 (opset >= ${need}), the model has opset ${m.opset}; convert it with onnx.version_converter`);
  const ioP: TypedPrecision = opts.io === "reduced" ? (opts.ioPrecision ?? "fp16") : "fp32";
  const isF32 = (t: string) => t !== "" && types.get(t)?.dtype === "float32";
  const inits = m.graph.initializers;
  const graphOut = new Set(g.output.map((o) => o.name));
  for (const t of bodyReads) {
    if (ioP !== "fp32" && (graphOut.has(t) || g.input.some((i) => i.name === t))) {
      throw new UserError(`${m.path}: --io-types reduced: graph input/output '${t}' is read inside an If/Loop/Scan body, which stays fp32; keep --io-types fp32`);
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
      if (P !== "fp32") {
        for (const a of n.attribute) {
          if (n.opType === "Cast" && a.name === "to" && Number(a.i) === TensorProto_DataType.FLOAT) a.i = BigInt(ELEM[P]);
          if (a.name === "dtype" && Number(a.i) === TensorProto_DataType.FLOAT) a.i = BigInt(ELEM[P]);
          if (n.opType === "ConstantOfShape" && a.name === "value" && a.t && a.t.dataType === TensorProto_DataType.FLOAT) a.t = reducedTensor(a.t, m, P, a.t.name);
        }
      }
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
  const src = m.proto;
  const proto = create(ModelProtoSchema, {
    irVersion: src.irVersion,
    opsetImport: src.opsetImport,
    producerName: src.producerName,
    producerVersion: src.producerVersion,
    domain: src.domain,
    modelVersion: src.modelVersion,
    docString: src.docString,
    metadataProps: src.metadataProps,
    functions: src.functions,
    graph: create(GraphProtoSchema, {
      name: g.name,
      docString: g.docString,
      node: nodes,
      initializer: newInits,
      input: g.input.map((v) => (inits.has(v.name) ? v : retype(v))),
      output: g.output.map(retype),
      valueInfo: [...vi.values()],
    }),
  });
  const converted = precisions.filter((p) => p !== "fp32").length;
  return { proto, converted, layers: layers.length, casts, duplicated, precisions, forcedFp32 };
}
