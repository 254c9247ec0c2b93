import type { DType } from "./dtype.js";

export type { DType };
export { isFloatDType } from "./dtype.js";

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

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}
