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

/** Precision a layer can be asked to run in. */
export type Precision = "fp32" | "fp16" | "bf16" | "fp8" | "int8";

export const PRECISIONS: readonly Precision[] = ["fp32", "fp16", "bf16", "fp8", "int8"];

export type TensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | string[];

/** A tensor held in host memory. float16/bfloat16 data is a Uint16Array of bit patterns. */
export interface HostTensor {
  name: string;
  dtype: DType;
  dims: number[];
  data: TensorData;
}

/** True for the floating element types that reduced precision rounds. */
export function isFloatDType(d: DType): boolean {
  return (
    d === "float32" ||
    d === "float16" ||
    d === "bfloat16" ||
    d === "float64" ||
    d.startsWith("float8")
  );
}

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}
