/**
 * Element types of every tensor, as onnxruntime itself infers them.
 *
 * We build a weightless copy of the graph (initializers become typed graph inputs, so nothing
 * large is copied), mark every node output as an untyped graph output, create a session with
 * optimizations disabled and read its output metadata. No inference is run.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import {
  GraphProtoSchema,
  ModelProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_SequenceSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type TensorShapeProto_Dimension,
  type TypeProto,
  type ValueInfoProto,
} from "onnx-buf";
import type { DType } from "../core/host-tensor.js";
import { dtypeToOnnx, onnxToDType } from "../core/dtype.js";
import type { LoadedModel } from "./model.js";
import { createSession } from "./ort-session.js";

export interface TensorType {
  dtype: DType;
  /** Dimensions as onnxruntime inferred them: number, symbolic name, or null when unknown. */
  shape: (number | string | null)[] | null;
}

export type TypeMap = Map<string, TensorType>;

export function tensorValueInfo(name: string, elemType: number, dims?: readonly (number | bigint | string | null)[]): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: "tensorType",
        value: create(TypeProto_TensorSchema, {
          elemType,
          shape: dims
            ? create(TensorShapeProtoSchema, {
                dim: dims.map((d) =>
                  create(TensorShapeProto_DimensionSchema, {
                    value:
                      typeof d === "string"
                        ? { case: "dimParam", value: d }
                        : d === null
                          ? { case: undefined }
                          : { case: "dimValue", value: BigInt(d) },
                  }),
                ),
              })
            : undefined,
        }),
      },
    }),
  });
}

/** Load a typing model (never run) and add the types onnxruntime infers for its tensor outputs to `types`. */
export async function typeOutputs(bytes: Uint8Array, label: string, types: TypeMap): Promise<void> {
  const session = await createSession(bytes, label, { optimizationLevel: "disabled" });
  try {
    for (const md of session.outputMetadata) {
      if (!md.isTensor) continue;
      types.set(md.name, { dtype: md.type as DType, shape: md.shape.map((d) => (typeof d === "number" && d >= 0 ? d : typeof d === "string" && d !== "" ? d : null)) });
    }
  } finally {
    await session.release();
  }
}

export function dimOf(d: { value: { case: "dimValue"; value: bigint } | { case: "dimParam"; value: string } | { case: undefined; value?: undefined } }): number | string | null {
  if (d.value.case === "dimValue") return Number(d.value.value);
  if (d.value.case === "dimParam") return d.value.value;
  return null;
}

/** One dimension: a size, a symbolic name (dim_param), or null for an unknown dimension. */
export type Dim = number | string | null;

function makeDim(d: Dim): TensorShapeProto_Dimension {
  if (d === null) return create(TensorShapeProto_DimensionSchema, {});
  if (typeof d === "string") return create(TensorShapeProto_DimensionSchema, { value: { case: "dimParam", value: d } });
  if (!Number.isSafeInteger(d) || d < 0) throw new Error(`bad dimension ${d}`);
  return create(TensorShapeProto_DimensionSchema, { value: { case: "dimValue", value: BigInt(d) } });
}

/** A tensor TypeProto; dims omitted = unknown rank, `[]` = scalar. */
export function tensorType(dtype: DType, dims?: readonly Dim[]): TypeProto {
  const tt = create(TypeProto_TensorSchema, { elemType: dtypeToOnnx(dtype) });
  if (dims) tt.shape = create(TensorShapeProtoSchema, { dim: dims.map(makeDim) });
  return create(TypeProtoSchema, { value: { case: "tensorType", value: tt } });
}

/** A sequence TypeProto, e.g. `sequenceType(tensorType("float32"))`. */
export function sequenceType(elem: TypeProto): TypeProto {
  return create(TypeProtoSchema, {
    value: { case: "sequenceType", value: create(TypeProto_SequenceSchema, { elemType: elem }) },
  });
}
