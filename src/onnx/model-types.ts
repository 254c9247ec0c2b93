/**
 * Tensor types of a whole model: the top graph's from onnxruntime (infer.ts typeOutputs), then
 * those inside If/Loop/Scan bodies (body-types.ts). The one entry point for a model's TypeMap.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { GraphProtoSchema, ModelProtoSchema, ValueInfoProtoSchema, type TensorProto, type ValueInfoProto } from "onnx-buf";
import { onnxToDType } from "../core/dtype.js";
import type { LoadedModel } from "./model.js";
import { dimOf, tensorValueInfo, typeOutputs, type TypeMap } from "./infer.js";
import { inferBodyTypes } from "./body-types.js";

function initializerInfo(t: TensorProto): ValueInfoProto {
  return tensorValueInfo(t.name, t.dataType, t.dims);
}

export async function inferTypes(m: LoadedModel): Promise<TypeMap> {
  const g = m.proto.graph!;
  const declared = new Set(g.input.map((i) => i.name));
  const inputs = [...g.input, ...g.initializer.filter((t) => !declared.has(t.name)).map(initializerInfo)];
  const outputs: ValueInfoProto[] = [];
  const seen = new Set<string>();
  for (const l of m.graph.layers) {
    for (const o of l.outputs) {
      if (o === "" || seen.has(o)) continue;
      seen.add(o);
      outputs.push(create(ValueInfoProtoSchema, { name: o }));
    }
  }
  const typing = create(ModelProtoSchema, {
    irVersion: m.proto.irVersion,
    opsetImport: m.proto.opsetImport,
    functions: m.proto.functions,
    graph: create(GraphProtoSchema, { name: g.name, node: g.node, input: inputs, output: outputs, valueInfo: g.valueInfo }),
  });
  const types: TypeMap = new Map();
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

