/**
 * HostTensor <-> dump value columns.
 *
 * Which column holds a tensor's values (docs/file-formats.md, "Value columns"):
 *   values      List<Float32>  float32, float16, bfloat16, float8*: exact (each of these
 *                              converts to float32 without rounding); complex64 interleaved re,im
 *   values_f64  List<Float64>  float64; complex128 interleaved re,im
 *   int_values  List<Int64>    int4..int64, uint4..uint32 (value), uint64 (same 64 bits read as
 *                              signed), bool (0/1)
 *   str_values  List<Utf8>     string
 */
import type { DType, HostTensor, TensorData } from "../core/host-tensor.js";
import { numel } from "../core/host-tensor.js";
import { DTYPES, type DTypeInfo } from "../core/dtype.js";
import type { DumpRow } from "./dump-schema.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, f32ToFnuz, f32ToFp8, fnuzToF32, fp8ToF32, boolBytes, lowWords, unpackNibbles, widenToI64 } from "../numeric/index.js";

export interface ValueColumns {
  values: Float32Array | null;
  valuesF64: Float64Array | null;
  intValues: BigInt64Array | null;
  strValues: string[] | null;
}

/** Which value column a dtype's values live in. */
export type ValueColumn = "values" | "valuesF64" | "intValues" | "strValues";

const ALL_DTYPES: readonly DType[] = [
  "float32", "float16", "bfloat16", "float64",
  "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz",
  "int4", "uint4", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
  "bool", "string", "complex64", "complex128",
];
const DTYPE_SET: ReadonlySet<string> = new Set(ALL_DTYPES);

export function isDType(s: string): s is DType {
  return DTYPE_SET.has(s);
}

/** The value column of each way values are held (core/dtype.ts `widened`). */
const VALUE_COLUMN: Readonly<Record<DTypeInfo["widened"], ValueColumn>> = { float32: "values", float64: "valuesF64", int: "intValues", string: "strValues" };

export function valueColumnOf(dtype: DType): ValueColumn {
  return VALUE_COLUMN[DTYPES[dtype].widened];
}

/** Number of stored values for a tensor of `dims`: complex types store 2 per element. */
export function storedLength(dtype: DType, dims: readonly number[]): number {
  const n = numel(dims);
  return dtype === "complex64" || dtype === "complex128" ? 2 * n : n;
}

function describe(data: TensorData): string {
  return Array.isArray(data) ? "string[]" : data.constructor.name;
}

function bad(t: { name: string; dtype: DType }, data: TensorData, want: string): TypeError {
  return new TypeError(`tensor "${t.name}" (${t.dtype}): data is ${describe(data)}, expected ${want}`);
}

/** int4/uint4 data: one element per entry, or two per byte (low nibble first, as ONNX packs). */
function int4Values(t: HostTensor, signed: boolean): Int8Array | Uint8Array {
  const n = numel(t.dims);
  const d = t.data;
  if (!(d instanceof Int8Array || d instanceof Uint8Array)) throw bad(t, d, "Int8Array or Uint8Array");
  if (d.length === n) return d;
  if (d.length !== Math.ceil(n / 2)) {
    throw new RangeError(`tensor "${t.name}" (${t.dtype}): ${d.length} bytes for ${n} elements`);
  }
  return unpackNibbles(d, n, signed);
}

/** The src/numeric name of a float8 dtype it converts (the FNUZ variants it does not). */
function numericFp8(dtype: DType): "fp8e4m3fn" | "fp8e5m2" | null {
  return dtype === "float8e4m3fn" ? "fp8e4m3fn" : dtype === "float8e5m2" ? "fp8e5m2" : null;
}

function float8ToF32(t: HostTensor): Float32Array {
  const d = t.data;
  if (!(d instanceof Uint8Array)) throw bad(t, d, "Uint8Array of float8 bit patterns");
  const fmt = numericFp8(t.dtype);
  if (fmt) return fp8ToF32(d, fmt);
  return fnuzToF32(d, t.dtype === "float8e4m3fnuz" ? "fp8e4m3fnuz" : "fp8e5m2fnuz");
}

function f32ToFloat8(values: Float32Array, dtype: DType, name: string): Uint8Array {
  const fmt = numericFp8(dtype);
  // Not saturating: a stored inf of float8e5m2 must come back as inf.
  if (fmt) return f32ToFp8(values, fmt, false);
  // FNUZ: values came from this format, so each one is exactly in the table.
  const { bits, bad } = f32ToFnuz(values, dtype === "float8e4m3fnuz" ? "fp8e4m3fnuz" : "fp8e5m2fnuz");
  if (bad >= 0) throw new RangeError(`tensor "${name}" (${dtype}): value ${values[bad]} is not representable`);
  return bits;
}

/**
 * The value columns for a tensor. float32, float64, int64 and uint64 data is used as is
 * (no copy; do not modify it until the write that uses it has resolved); other types are
 * converted into new arrays.
 */
export function hostTensorToValues(t: HostTensor): ValueColumns {
  const out: ValueColumns = { values: null, valuesF64: null, intValues: null, strValues: null };
  const d = t.data;
  switch (t.dtype) {
    case "float32":
    case "complex64":
      if (!(d instanceof Float32Array)) throw bad(t, d, "Float32Array");
      out.values = d;
      break;
    case "float16":
      if (!(d instanceof Uint16Array)) throw bad(t, d, "Uint16Array of float16 bit patterns");
      out.values = f16ToF32(d);
      break;
    case "bfloat16":
      if (!(d instanceof Uint16Array)) throw bad(t, d, "Uint16Array of bfloat16 bit patterns");
      out.values = bf16ToF32(d);
      break;
    case "float8e4m3fn":
    case "float8e4m3fnuz":
    case "float8e5m2":
    case "float8e5m2fnuz":
      out.values = float8ToF32(t);
      break;
    case "float64":
    case "complex128":
      if (!(d instanceof Float64Array)) throw bad(t, d, "Float64Array");
      out.valuesF64 = d;
      break;
    case "int64":
      if (!(d instanceof BigInt64Array)) throw bad(t, d, "BigInt64Array");
      out.intValues = d;
      break;
    case "uint64":
      if (!(d instanceof BigUint64Array)) throw bad(t, d, "BigUint64Array");
      out.intValues = new BigInt64Array(d.buffer, d.byteOffset, d.length);
      break;
    case "int4":
      out.intValues = widenToI64(int4Values(t, true), true);
      break;
    case "uint4":
      out.intValues = widenToI64(int4Values(t, false), false);
      break;
    case "int8":
      if (!(d instanceof Int8Array)) throw bad(t, d, "Int8Array");
      out.intValues = widenToI64(d, true);
      break;
    case "uint8":
      if (!(d instanceof Uint8Array)) throw bad(t, d, "Uint8Array");
      out.intValues = widenToI64(d, false);
      break;
    case "int16":
      if (!(d instanceof Int16Array)) throw bad(t, d, "Int16Array");
      out.intValues = widenToI64(d, true);
      break;
    case "uint16":
      if (!(d instanceof Uint16Array)) throw bad(t, d, "Uint16Array");
      out.intValues = widenToI64(d, false);
      break;
    case "int32":
      if (!(d instanceof Int32Array)) throw bad(t, d, "Int32Array");
      out.intValues = widenToI64(d, true);
      break;
    case "uint32":
      if (!(d instanceof Uint32Array)) throw bad(t, d, "Uint32Array");
      out.intValues = widenToI64(d, false);
      break;
    case "bool": {
      if (!(d instanceof Uint8Array)) throw bad(t, d, "Uint8Array");
      out.intValues = widenToI64(boolBytes(d), false);
      break;
    }
    case "string":
      if (!Array.isArray(d)) throw bad(t, d, "string[]");
      out.strValues = d;
      break;
  }
  const want = storedLength(t.dtype, t.dims);
  const col = valueColumnOf(t.dtype);
  const got = out[col]?.length ?? 0;
  if (got !== want) {
    throw new RangeError(
      `tensor "${t.name}" (${t.dtype}) has ${got} values but shape [${t.dims.join(",")}] needs ${want}`,
    );
  }
  return out;
}

/** What a value row needs to become a tensor again. */
export interface ValuesRow extends ValueColumns {
  tensor: string;
  dtype: DType;
  dims: number[];
}

/**
 * The tensor back in its own dtype: float16/bfloat16 as Uint16Array bit patterns, float8 as
 * Uint8Array bit patterns, int4/uint4 unpacked one element per Int8Array/Uint8Array entry,
 * bool as Uint8Array 0/1, uint64 as BigUint64Array. Every non-NaN float16/bfloat16/float8
 * bit pattern comes back exactly; a NaN comes back as a quiet NaN of the same sign.
 * Throws when the row has no values (a stats-only row).
 */
export function valuesToHostTensor(row: ValuesRow): HostTensor {
  const { dtype, dims, tensor: name } = row;
  const col = valueColumnOf(dtype);
  const src = row[col];
  if (src === null) {
    throw new Error(`tensor "${name}" (${dtype}) has no stored values (the dump holds its statistics only)`);
  }
  const want = storedLength(dtype, dims);
  if (src.length !== want) {
    throw new RangeError(`tensor "${name}" (${dtype}) has ${src.length} values but shape [${dims.join(",")}] needs ${want}`);
  }
  const mk = (data: TensorData): HostTensor => ({ name, dtype, dims: [...dims], data });
  switch (dtype) {
    case "float32":
    case "complex64":
      return mk(row.values as Float32Array);
    case "float16":
      return mk(f32ToF16(row.values as Float32Array));
    case "bfloat16":
      return mk(f32ToBf16(row.values as Float32Array));
    case "float8e4m3fn":
    case "float8e4m3fnuz":
    case "float8e5m2":
    case "float8e5m2fnuz":
      return mk(f32ToFloat8(row.values as Float32Array, dtype, name));
    case "float64":
    case "complex128":
      return mk(row.valuesF64 as Float64Array);
    case "string":
      return mk(row.strValues as string[]);
    case "int64":
      return mk(row.intValues as BigInt64Array);
    case "uint64": {
      const v = row.intValues as BigInt64Array;
      return mk(new BigUint64Array(v.buffer, v.byteOffset, v.length));
    }
    case "int8":
    case "int4":
      return mk(Int8Array.from(lowWords(row.intValues as BigInt64Array)));
    case "uint8":
    case "uint4":
      return mk(Uint8Array.from(lowWords(row.intValues as BigInt64Array)));
    case "bool": {
      return mk(boolBytes(row.intValues as BigInt64Array));
    }
    case "int16":
      return mk(Int16Array.from(lowWords(row.intValues as BigInt64Array)));
    case "uint16":
      return mk(Uint16Array.from(lowWords(row.intValues as BigInt64Array)));
    case "int32":
      return mk(lowWords(row.intValues as BigInt64Array));
    case "uint32": {
      const w = lowWords(row.intValues as BigInt64Array);
      return mk(new Uint32Array(w.buffer, w.byteOffset, w.length));
    }
  }
}

/** Throw (a bug, not a user error) unless `row` is consistent: int32 order, known dtype, counts, the one value column at its length. */
export function validateRow(row: DumpRow): void {
  const where = `dump row ${row.order} (tensor "${row.tensor}")`;
  if (!Number.isInteger(row.order) || row.order < -0x80000000 || row.order > 0x7fffffff) {
    throw new RangeError(`${where}: order must be an int32`);
  }
  if (!isDType(row.dtype)) throw new TypeError(`${where}: unknown dtype "${String(row.dtype)}"`);
  for (const d of row.dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`${where}: bad dimension ${d} in [${row.dims.join(",")}]`);
  }
  const n = numel(row.dims);
  const st = row.stats;
  for (const k of ["numel", "nanCount", "posInfCount", "negInfCount"] as const) {
    if (!Number.isSafeInteger(st[k]) || st[k] < 0) throw new RangeError(`${where}: stats.${k} must be a count, not ${st[k]}`);
  }
  for (const k of ["min", "max", "mean", "std"] as const) {
    if (st[k] !== null && typeof st[k] !== "number") throw new TypeError(`${where}: stats.${k} must be a number or null`);
  }
  if (row.stats.numel !== n) {
    throw new RangeError(`${where}: stats.numel is ${row.stats.numel} but shape [${row.dims.join(",")}] has ${n}`);
  }
  const col = valueColumnOf(row.dtype);
  const cols = ["values", "valuesF64", "intValues", "strValues"] as const;
  for (const c of cols) {
    const v = row[c];
    if (v === null) continue;
    if (c !== col) throw new TypeError(`${where}: ${row.dtype} values belong in "${col}", not "${c}"`);
    const want = storedLength(row.dtype, row.dims);
    if (v.length !== want) {
      throw new RangeError(`${where}: ${v.length} values for shape [${row.dims.join(",")}] (${want} expected)`);
    }
  }
}
