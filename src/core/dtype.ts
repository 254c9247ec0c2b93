/**
 * Mapping between trt-debug's element-type names (src/types.ts `DType`) and ONNX
 * `TensorProto.DataType` codes, plus element sizes.
 */
import { TensorProto_DataType } from "onnx-buf";
import type { DType } from "./host-tensor.js";

const TO_ONNX: Readonly<Record<DType, TensorProto_DataType>> = {
  float32: TensorProto_DataType.FLOAT,
  float16: TensorProto_DataType.FLOAT16,
  bfloat16: TensorProto_DataType.BFLOAT16,
  float64: TensorProto_DataType.DOUBLE,
  float8e4m3fn: TensorProto_DataType.FLOAT8E4M3FN,
  float8e4m3fnuz: TensorProto_DataType.FLOAT8E4M3FNUZ,
  float8e5m2: TensorProto_DataType.FLOAT8E5M2,
  float8e5m2fnuz: TensorProto_DataType.FLOAT8E5M2FNUZ,
  int4: TensorProto_DataType.INT4,
  uint4: TensorProto_DataType.UINT4,
  int8: TensorProto_DataType.INT8,
  uint8: TensorProto_DataType.UINT8,
  int16: TensorProto_DataType.INT16,
  uint16: TensorProto_DataType.UINT16,
  int32: TensorProto_DataType.INT32,
  uint32: TensorProto_DataType.UINT32,
  int64: TensorProto_DataType.INT64,
  uint64: TensorProto_DataType.UINT64,
  bool: TensorProto_DataType.BOOL,
  string: TensorProto_DataType.STRING,
  complex64: TensorProto_DataType.COMPLEX64,
  complex128: TensorProto_DataType.COMPLEX128,
};

const FROM_ONNX: ReadonlyMap<number, DType> = new Map(
  (Object.entries(TO_ONNX) as [DType, TensorProto_DataType][]).map(([d, t]) => [t, d]),
);

/** All element types trt-debug knows, in a fixed order. */
export const ALL_DTYPES: readonly DType[] = Object.keys(TO_ONNX) as DType[];

/** The ONNX `TensorProto.DataType` code of a trt-debug element type. */
export function dtypeToOnnx(d: DType): TensorProto_DataType {
  const t = TO_ONNX[d];
  if (t === undefined) throw new Error(`unknown element type "${String(d)}"`);
  return t;
}

/**
 * The trt-debug element type of an ONNX `TensorProto.DataType` code, or null for codes
 * trt-debug does not handle (UNDEFINED, FLOAT4E2M1, FLOAT8E8M0, INT2, UINT2, unknown codes).
 */
export function onnxToDType(t: TensorProto_DataType | number): DType | null {
  return FROM_ONNX.get(t) ?? null;
}

/** Bits per element (4 for int4/uint4, 8 for bool). Strings have no fixed size: NaN. */
export function dtypeBits(d: DType): number {
  switch (d) {
    case "int4":
    case "uint4":
      return 4;
    case "int8":
    case "uint8":
    case "bool":
    case "float8e4m3fn":
    case "float8e4m3fnuz":
    case "float8e5m2":
    case "float8e5m2fnuz":
      return 8;
    case "float16":
    case "bfloat16":
    case "int16":
    case "uint16":
      return 16;
    case "float32":
    case "int32":
    case "uint32":
      return 32;
    case "float64":
    case "int64":
    case "uint64":
    case "complex64":
      return 64;
    case "complex128":
      return 128;
    case "string":
      return Number.NaN;
  }
}

/** Bytes that `n` elements of `d` occupy in ONNX raw_data (int4/uint4: two per byte). */
export function dtypeByteLength(d: DType, n: number): number {
  const bits = dtypeBits(d);
  if (Number.isNaN(bits)) throw new Error(`element type "${d}" has no fixed byte size`);
  return Math.ceil((n * bits) / 8);
}
