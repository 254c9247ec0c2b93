/**
 * Tensor types of a whole model: the top graph's from onnxruntime (infer.ts typeOutputs), then
 * those inside If/Loop/Scan bodies (body-types.ts). The one entry point for a model's TypeMap.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { GraphProtoSchema, ModelProtoSchema, TensorProto_DataType, ValueInfoProtoSchema, type NodeProto, type TensorProto, type ValueInfoProto } from "onnx-buf";
import { onnxToDType } from "../core/dtype.js";
import type { LoadedModel } from "./model.js";
import { dimOf, tensorValueInfo, typeOutputs, type TypeMap } from "./infer.js";
import { inferBodyTypes } from "./body-types.js";

function initializerInfo(t: TensorProto): ValueInfoProto {
  return tensorValueInfo(t.name, t.dataType, t.dims);
}

/**
 * Element types onnxruntime-node cannot describe as a session input or output ("Unsupported data
 * type"): the float8 family, which fp8 Q/DQ models (QuantizeLinear-19 with a float8 zero point)
 * and fp8 weights carry. Such initializers stay initializers of the typing model, and the
 * outputs of the nodes that make such tensors are typed here instead of by onnxruntime.
 */
const UNDESCRIBABLE = new Set<number>([TensorProto_DataType.FLOAT8E4M3FN, TensorProto_DataType.FLOAT8E4M3FNUZ, TensorProto_DataType.FLOAT8E5M2, TensorProto_DataType.FLOAT8E5M2FNUZ]);

/** The element type of a node's output when it is one onnxruntime-node cannot describe (QuantizeLinear to float8, Cast to float8), else undefined. */
function undescribableOutput(n: NodeProto, elemType: (t: string) => number | undefined): number | undefined {
  let e: number | undefined;
  if (n.opType === "QuantizeLinear" && (!n.domain || n.domain === "ai.onnx")) e = n.input[2] ? elemType(n.input[2]) : undefined;
  else if (n.opType === "Cast" && (!n.domain || n.domain === "ai.onnx")) e = Number(n.attribute.find((a) => a.name === "to")?.i ?? 0);
  return e !== undefined && UNDESCRIBABLE.has(e) ? e : undefined;
}

export async function inferTypes(m: LoadedModel): Promise<TypeMap> {
  const g = m.proto.graph!;
  const declared = new Set(g.input.map((i) => i.name));
  const keptInits = g.initializer.filter((t) => !declared.has(t.name) && UNDESCRIBABLE.has(t.dataType));
  const inputs = [...g.input, ...g.initializer.filter((t) => !declared.has(t.name) && !UNDESCRIBABLE.has(t.dataType)).map(initializerInfo)];
  const elem = new Map<string, number>(g.initializer.map((t) => [t.name, t.dataType]));
  for (const i of g.input) if (i.type?.value.case === "tensorType") elem.set(i.name, i.type.value.value.elemType);
  const outputs: ValueInfoProto[] = [];
  const seen = new Set<string>();
  const fixed: TypeMap = new Map();
  for (const l of m.graph.layers) {
    for (const n of l.nodes) {
      const e = undescribableOutput(n, (t) => elem.get(t));
      if (e === undefined || !n.output[0]) continue;
      elem.set(n.output[0], e);
      fixed.set(n.output[0], { dtype: onnxToDType(e)!, shape: null });
    }
    for (const o of l.outputs) {
      if (o === "" || seen.has(o)) continue;
      seen.add(o);
      if (!fixed.has(o)) outputs.push(create(ValueInfoProtoSchema, { name: o }));
    }
  }
  const typing = create(ModelProtoSchema, {
    irVersion: m.proto.irVersion,
    opsetImport: m.proto.opsetImport,
    functions: m.proto.functions,
    graph: create(GraphProtoSchema, { name: g.name, node: g.node, input: inputs, output: outputs, valueInfo: g.valueInfo, initializer: keptInits }),
  });
  const types: TypeMap = new Map(fixed);
  for (const t of keptInits) types.set(t.name, { dtype: onnxToDType(t.dataType)!, shape: t.dims.map(Number) });
  for (const i of inputs) {
    const tt = i.type?.value.case === "tensorType" ? i.type.value.value : undefined;
    const d = tt ? onnxToDType(tt.elemType) : null;
    if (d) types.set(i.name, { dtype: d, shape: tt?.shape ? tt.shape.dim.map(dimOf) : null });
  }
  if (outputs.length === 0) return types;
  await typeOutputs(toBinary(ModelProtoSchema, typing), m.path, types);
  await inferBodyTypes(m, types);
  return types;
}

