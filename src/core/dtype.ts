/**
 * Element types: trt-debug's names (`DType`), and ONE table (`DTYPES`) of what is known of
 * each (ONNX code, packed bits, host storage, floating or not). Code that needs a per-dtype
 * fact reads the table instead of switching on the name.
 */
import { TensorProto_DataType } from "onnx-buf";
/** Element types trt-debug knows by name (ONNX TensorProto data types). */
export type DType =
  | "float32"
  | "float16"
  | "bfloat16"
  | "float64"
  | "float8e4m3fn"
  | "float8e4m3fnuz"
  | "float8e5m2"
  | "float8e5m2fnuz"
  | "int4"
  | "uint4"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "bool"
  | "string"
  | "complex64"
  | "complex128";

/** A host typed-array constructor (the storage of HostTensor.data). */
export type HostArrayConstructor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Uint16ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Int16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

/** What trt-debug knows of one element type: the one table (no per-dtype switch elsewhere). */
export interface DTypeInfo {
  /** ONNX TensorProto.DataType code. */
  onnx: TensorProto_DataType;
  /** Bits per element in ONNX raw_data (4 for int4/uint4, packed two per byte); NaN for string. */
  bits: number;
  /** Host storage of HostTensor.data (fp16/bf16/fp8 as bit patterns; int4/uint4 unpacked to a byte); null: none (string, complex). */
  host: HostArrayConstructor | null;
  /** A floating type that reduced precision rounds. */
  float: boolean;
  /**
   * The TensorProto field ONNX specifies for its values when they are not in raw_data
   * (int32_data holds every type of 16 bits or less, bit patterns for float16/bfloat16/float8,
   * two int4/uint4 per entry); null: none read here (string, complex).
   */
  protoField: "floatData" | "doubleData" | "int32Data" | "int64Data" | "uint64Data" | null;
  /** How its values are held as plain numbers (dump value columns): float32, float64, integers (BigInt for 64-bit) or strings. */
  widened: "float32" | "float64" | "int" | "string";
  /** [exponent bits, mantissa bits] of a narrow IEEE-style float stored as bits in `host` (float16, bfloat16); else absent. */
  minifloat?: readonly [number, number];
}

const T = TensorProto_DataType;
export const DTYPES: Readonly<Record<DType, Readonly<DTypeInfo>>> = {
  float32: { onnx: T.FLOAT, bits: 32, host: Float32Array, float: true, protoField: "floatData", widened: "float32" },
  float16: { onnx: T.FLOAT16, bits: 16, host: Uint16Array, float: true, protoField: "int32Data", widened: "float32", minifloat: [5, 10] },
  bfloat16: { onnx: T.BFLOAT16, bits: 16, host: Uint16Array, float: true, protoField: "int32Data", widened: "float32", minifloat: [8, 7] },
  float64: { onnx: T.DOUBLE, bits: 64, host: Float64Array, float: true, protoField: "doubleData", widened: "float64" },
  float8e4m3fn: { onnx: T.FLOAT8E4M3FN, bits: 8, host: Uint8Array, float: true, protoField: "int32Data", widened: "float32" },
  float8e4m3fnuz: { onnx: T.FLOAT8E4M3FNUZ, bits: 8, host: Uint8Array, float: true, protoField: "int32Data", widened: "float32" },
  float8e5m2: { onnx: T.FLOAT8E5M2, bits: 8, host: Uint8Array, float: true, protoField: "int32Data", widened: "float32" },
  float8e5m2fnuz: { onnx: T.FLOAT8E5M2FNUZ, bits: 8, host: Uint8Array, float: true, protoField: "int32Data", widened: "float32" },
  int4: { onnx: T.INT4, bits: 4, host: Int8Array, float: false, protoField: "int32Data", widened: "int" },
  uint4: { onnx: T.UINT4, bits: 4, host: Uint8Array, float: false, protoField: "int32Data", widened: "int" },
  int8: { onnx: T.INT8, bits: 8, host: Int8Array, float: false, protoField: "int32Data", widened: "int" },
  uint8: { onnx: T.UINT8, bits: 8, host: Uint8Array, float: false, protoField: "int32Data", widened: "int" },
  int16: { onnx: T.INT16, bits: 16, host: Int16Array, float: false, protoField: "int32Data", widened: "int" },
  uint16: { onnx: T.UINT16, bits: 16, host: Uint16Array, float: false, protoField: "int32Data", widened: "int" },
  int32: { onnx: T.INT32, bits: 32, host: Int32Array, float: false, protoField: "int32Data", widened: "int" },
  uint32: { onnx: T.UINT32, bits: 32, host: Uint32Array, float: false, protoField: "uint64Data", widened: "int" },
  int64: { onnx: T.INT64, bits: 64, host: BigInt64Array, float: false, protoField: "int64Data", widened: "int" },
  uint64: { onnx: T.UINT64, bits: 64, host: BigUint64Array, float: false, protoField: "uint64Data", widened: "int" },
  bool: { onnx: T.BOOL, bits: 8, host: Uint8Array, float: false, protoField: "int32Data", widened: "int" },
  string: { onnx: T.STRING, bits: Number.NaN, host: null, float: false, protoField: null, widened: "string" },
  complex64: { onnx: T.COMPLEX64, bits: 64, host: null, float: false, protoField: null, widened: "float32" },
  complex128: { onnx: T.COMPLEX128, bits: 128, host: null, float: false, protoField: null, widened: "float64" },
};

const TO_ONNX: Readonly<Record<DType, TensorProto_DataType>> = Object.fromEntries(
  (Object.entries(DTYPES) as [DType, DTypeInfo][]).map(([d, i]) => [d, i.onnx]),
) as Record<DType, TensorProto_DataType>;

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
  return DTYPES[d].bits;
}

/** Bytes one element occupies in the host typed array (int4/uint4: 1, unpacked). 0 for string/complex. */
export function hostElementSize(d: DType): number {
  return DTYPES[d].host?.BYTES_PER_ELEMENT ?? 0;
}

/** True for the floating element types that reduced precision rounds. */
export function isFloatDType(d: DType): boolean {
  return DTYPES[d].float;
}

/** Bytes that `n` elements of `d` occupy in ONNX raw_data (int4/uint4: two per byte). */
export function dtypeByteLength(d: DType, n: number): number {
  const bits = dtypeBits(d);
  if (Number.isNaN(bits)) throw new Error(`element type "${d}" has no fixed byte size`);
  return Math.ceil((n * bits) / 8);
}

/** A zeroed host array of `n` elements of `d` (the table's host storage); throws for string/complex. */
export function allocateHost(d: DType, n: number): Float32Array | Float64Array | Uint16Array | Int8Array | Uint8Array | Int16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array {
  const C = DTYPES[d].host;
  if (C === null) throw new Error(`element type "${d}" has no host typed array`);
  return new C(n);
}

/** The host typed array of `d` over `buf` (no copy); throws for string/complex. */
export function hostView(d: DType, buf: ArrayBuffer): ReturnType<typeof allocateHost> {
  const C = DTYPES[d].host;
  if (C === null) throw new Error(`element type "${d}" has no host typed array`);
  return new C(buf);
}
