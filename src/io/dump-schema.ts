/**
 * The Arrow schema of trt-debug dump files (per-layer outputs) and inputs files, and the
 * low-level helpers that turn rows into Arrow column data without copying tensor values.
 * docs/file-formats.md documents every field; keep the two in step.
 */
import type { DType } from "../core/host-tensor.js";
import { DataType, Field, Float32, Float64, Int32, Int64, List, Schema, Type, Utf8 } from "apache-arrow";

/** Schema metadata `format` value of per-layer output dumps. */
export const DUMP_FORMAT = "trt-debug/dump@1";
/** Schema metadata `format` value of input files. */
export const INPUTS_FORMAT = "trt-debug/inputs@1";
/** Schema metadata keys the writer owns; callers' extra keys must not use them. */
export const RESERVED_META_KEYS: readonly string[] = ["format", "model", "precision"];

/** Column names, in schema order. */
export const COL = {
  order: "order",
  layer: "layer",
  opType: "op_type",
  tensor: "tensor",
  dtype: "dtype",
  precision: "precision",
  shape: "shape",
  values: "values",
  valuesF64: "values_f64",
  intValues: "int_values",
  strValues: "str_values",
  numel: "numel",
  min: "min",
  max: "max",
  mean: "mean",
  std: "std",
  nanCount: "nan_count",
  infCount: "inf_count",
  posInfCount: "pos_inf_count",
  negInfCount: "neg_inf_count",
} as const;

// List children are named "item" and nullable, as pyarrow and polars name them by default.
const listOf = (t: DataType): List => new List(new Field("item", t, true));

export const T_INT32 = new Int32();
export const T_INT64 = new Int64();
export const T_F32 = new Float32();
export const T_F64 = new Float64();
export const T_UTF8 = new Utf8();
export const T_SHAPE = listOf(new Int64());
export const T_VALUES = listOf(new Float32());
export const T_VALUES_F64 = listOf(new Float64());
export const T_INT_VALUES = listOf(new Int64());
export const T_STR_VALUES = listOf(new Utf8());

/** Fields in column order: [name, type, nullable]. */
const FIELD_SPECS: ReadonlyArray<readonly [string, DataType, boolean]> = [
  [COL.order, T_INT32, false],
  [COL.layer, T_UTF8, false],
  [COL.opType, T_UTF8, false],
  [COL.tensor, T_UTF8, false],
  [COL.dtype, T_UTF8, false],
  [COL.precision, T_UTF8, false],
  [COL.shape, T_SHAPE, false],
  [COL.values, T_VALUES, true],
  [COL.valuesF64, T_VALUES_F64, true],
  [COL.intValues, T_INT_VALUES, true],
  [COL.strValues, T_STR_VALUES, true],
  [COL.numel, T_INT64, false],
  [COL.min, T_F64, true],
  [COL.max, T_F64, true],
  [COL.mean, T_F64, true],
  [COL.std, T_F64, true],
  [COL.nanCount, T_INT64, false],
  [COL.infCount, T_INT64, false],
  [COL.posInfCount, T_INT64, false],
  [COL.negInfCount, T_INT64, false],
];

export function dumpFields(): Field[] {
  return FIELD_SPECS.map(([name, type, nullable]) => new Field(name, type, nullable));
}

/** The schema of a dump/inputs file with the given (already ordered) metadata. */
export function dumpSchema(metadata: Map<string, string>): Schema {
  return new Schema(dumpFields(), metadata);
}

/**
 * Checks that a schema read from a file has every column with the expected type.
 * Returns a description of the first mismatch, or null when it matches.
 * Extra columns are allowed (a later @1 writer may add columns; readers ignore them).
 */
export function schemaMismatch(schema: Schema): string | null {
  for (const [name, type] of FIELD_SPECS) {
    const f = schema.fields.find((x) => x.name === name);
    if (!f) return `column "${name}" is missing`;
    if (!sameType(f.type as DataType, type)) {
      return `column "${name}" has type ${String(f.type)}, expected ${String(type)}`;
    }
  }
  return null;
}

function sameType(a: DataType, b: DataType): boolean {
  if (a.typeId !== b.typeId) return false;
  if (a.typeId === Type.List) {
    // A corrupt schema can have a List without a child field.
    const ca = (a as List).children?.[0]?.type as DataType | undefined;
    const cb = (b as List).children?.[0]?.type as DataType | undefined;
    return ca !== undefined && cb !== undefined && sameType(ca, cb);
  }
  if (a.typeId === Type.Int) {
    const ia = a as Int32 | Int64;
    const ib = b as Int32 | Int64;
    return ia.bitWidth === ib.bitWidth && ia.isSigned === ib.isSigned;
  }
  if (a.typeId === Type.Float) {
    return (a as Float32).precision === (b as Float32).precision;
  }
  return true;
}

export interface DumpStats {
  numel: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  nanCount: number;
  posInfCount: number;
  negInfCount: number;
}

/** One row of a dump: one tensor (docs/file-formats.md). */
export interface DumpRow {
  order: number;
  layer: string;
  opType: string;
  tensor: string;
  dtype: DType;
  precision: string;
  dims: number[];
  values: Float32Array | null;
  valuesF64: Float64Array | null;
  intValues: BigInt64Array | null;
  strValues: string[] | null;
  stats: DumpStats;
}

/** What a file holds: per-layer outputs of a run, or a run's inputs. */
export type DumpKind = "dump" | "inputs";

export interface DumpMeta {
  kind: DumpKind;
  model: string;
  precision: string;
  extra: Record<string, string>;
}

export interface DumpReader {
  meta: DumpMeta;
  numRows: number;
  rows(): AsyncGenerator<DumpRow>;
  close(): Promise<void>;
}

export const FORMAT_OF: Record<DumpKind, string> = { dump: DUMP_FORMAT, inputs: INPUTS_FORMAT };
export const HOW_TO_WRITE = "pass a dump written by `trt-debug run --save-outputs`";
