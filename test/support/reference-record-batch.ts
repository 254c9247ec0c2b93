/**
 * The specification of a dump record batch, assembled by apache-arrow (test-only oracle):
 * io/dump-encoder.ts encodes the same batch directly into IPC bytes and must produce exactly
 * what apache-arrow's RecordBatchFileWriter writes for referenceRecordBatch's batch
 * (test/io-dump.test.ts compares them byte for byte). Not shipped: it lives under test/.
 */
import { Data, DataType, Float64, Int32, Int64, List, RecordBatch, Schema, Struct, Utf8, makeData } from "apache-arrow";
import { T_F32, T_F64, T_INT32, T_INT64, T_INT_VALUES, T_STR_VALUES, T_UTF8, T_VALUES, T_VALUES_F64, type DumpRow } from "../../src/io/dump-schema.js";

/** The struct type of one record batch of `schema`. */
function structOf(schema: Schema): Struct {
  return new Struct(schema.fields);
}

// ---------------------------------------------------------------------------------------
// Column data builders (zero-copy where the input already is the right typed array)
// ---------------------------------------------------------------------------------------

const encoder = new TextEncoder();

export function int32Column(v: Int32Array): Data<Int32> {
  return makeData({ type: T_INT32, length: v.length, nullCount: 0, data: v });
}

export function int64Column(v: BigInt64Array): Data<Int64> {
  return makeData({ type: T_INT64, length: v.length, nullCount: 0, data: v });
}

/** Float64 column; `valid[i] === false` marks a null. */
export function float64Column(v: Float64Array, valid: boolean[]): Data<Float64> {
  const { bitmap, nullCount } = validityBitmap(valid);
  return makeData({
    type: T_F64,
    length: v.length,
    nullCount,
    ...(bitmap ? { nullBitmap: bitmap } : {}),
    data: v,
  });
}

/** Utf8 data of non-null strings (used for plain columns and as a list child). */
export function utf8Data(strings: readonly string[]): Data<Utf8> {
  const n = strings.length;
  const offsets = new Int32Array(n + 1);
  // Encode once into pieces, then join: strings are usually short names.
  const parts: Uint8Array[] = new Array<Uint8Array>(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const b = encoder.encode(strings[i]);
    parts[i] = b;
    total += b.byteLength;
    if (total > 0x7fffffff) throw new RangeError("utf8 column exceeds 2 GiB (Arrow Utf8 offsets are int32)");
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  for (let i = 0; i < n; i++) bytes.set(parts[i], offsets[i]);
  return makeData({ type: T_UTF8, length: n, nullCount: 0, valueOffsets: offsets, data: bytes });
}

/** Packs a validity bitmap (LSB first); null bitmap omitted when everything is valid. */
export function validityBitmap(valid: readonly boolean[]): { bitmap: Uint8Array | null; nullCount: number } {
  let nullCount = 0;
  for (const v of valid) if (!v) nullCount++;
  if (nullCount === 0) return { bitmap: null, nullCount: 0 };
  const bitmap = new Uint8Array((valid.length + 7) >> 3);
  for (let i = 0; i < valid.length; i++) if (valid[i]) bitmap[i >> 3] |= 1 << (i & 7);
  return { bitmap, nullCount };
}

type NumericArray = Float32Array | Float64Array | BigInt64Array;
type NumericCtor<A extends NumericArray> = { new (n: number): A };

/**
 * A List<child> column over per-row typed arrays (null entries are null lists).
 * One non-empty entry is used as the child buffer as is (no copy): the common case of one
 * tensor per record batch. Several are concatenated.
 */
export function numericListColumn<A extends NumericArray>(
  listType: List,
  childType: DataType,
  Ctor: NumericCtor<A>,
  rows: ReadonlyArray<A | null>,
): Data<List> {
  const n = rows.length;
  const offsets = new Int32Array(n + 1);
  let total = 0;
  let nonEmpty = 0;
  let only: A | null = null;
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    if (r && r.length > 0) {
      nonEmpty++;
      only = r;
    }
    total += r ? r.length : 0;
    if (total > 0x7fffffff) {
      throw new RangeError("tensor has more than 2^31-1 elements: too large for one Arrow List entry");
    }
    offsets[i + 1] = total;
  }
  let child: A;
  if (nonEmpty === 1 && only) {
    child = only;
  } else {
    child = new Ctor(total);
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      if (r && r.length > 0) (child as unknown as { set(a: A, o: number): void }).set(r, offsets[i]);
    }
  }
  const childData = makeData({ type: childType, length: total, nullCount: 0, data: child } as {
    type: Float32;
    length: number;
    nullCount: number;
    data: Float32Array;
  }) as Data;
  const { bitmap, nullCount } = validityBitmap(rows.map((r) => r !== null));
  return makeData({
    type: listType,
    length: n,
    nullCount,
    ...(bitmap ? { nullBitmap: bitmap } : {}),
    valueOffsets: offsets,
    child: childData,
  });
}

/** List<Utf8> column of per-row string arrays (null entries are null lists). */
export function stringListColumn(rows: ReadonlyArray<readonly string[] | null>): Data<List> {
  const n = rows.length;
  const offsets = new Int32Array(n + 1);
  const all: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    if (r) for (const s of r) all.push(s);
    offsets[i + 1] = all.length;
  }
  const { bitmap, nullCount } = validityBitmap(rows.map((r) => r !== null));
  return makeData({
    type: T_STR_VALUES,
    length: n,
    nullCount,
    ...(bitmap ? { nullBitmap: bitmap } : {}),
    valueOffsets: offsets,
    child: utf8Data(all),
  });
}

// ---------------------------------------------------------------------------------------
// Reference record batch
// ---------------------------------------------------------------------------------------

/** What a record batch needs of a row: a DumpRow (dump.ts). */
export type BatchRow = DumpRow;

const orZero = (x: number | null): number => (x === null ? 0 : x);

/**
 * The record batch holding `rows` (one row per tensor), assembled by apache-arrow. DumpWriter
 * (dump.ts) does not use it: it encodes the same batch directly into IPC bytes, and must produce
 * exactly what apache-arrow's RecordBatchFileWriter writes for this batch (the tests compare the
 * two byte for byte). This is the specification of that layout.
 */
export function referenceRecordBatch(schema: Schema, rows: readonly BatchRow[]): RecordBatch {
  const n = rows.length;
  const i64 = (f: (r: BatchRow) => number | bigint): Data =>
    int64Column(BigInt64Array.from(rows, (r) => BigInt(f(r))));
  const f64 = (f: (r: BatchRow) => number | null): Data =>
    float64Column(Float64Array.from(rows, (r) => orZero(f(r))), rows.map((r) => f(r) !== null));
  const shapeChild = rows.map((r) => BigInt64Array.from(r.dims, (d) => BigInt(d)));
  const children: Data[] = [
    int32Column(Int32Array.from(rows, (r) => r.order)),
    utf8Data(rows.map((r) => r.layer)),
    utf8Data(rows.map((r) => r.opType)),
    utf8Data(rows.map((r) => r.tensor)),
    utf8Data(rows.map((r) => r.dtype)),
    utf8Data(rows.map((r) => r.precision)),
    numericListColumn(T_INT_VALUES, T_INT64, BigInt64Array, shapeChild),
    numericListColumn(T_VALUES, T_F32, Float32Array, rows.map((r) => r.values)),
    numericListColumn(T_VALUES_F64, T_F64, Float64Array, rows.map((r) => r.valuesF64)),
    numericListColumn(T_INT_VALUES, T_INT64, BigInt64Array, rows.map((r) => r.intValues)),
    stringListColumn(rows.map((r) => r.strValues)),
    i64((r) => r.stats.numel),
    f64((r) => r.stats.min),
    f64((r) => r.stats.max),
    f64((r) => r.stats.mean),
    f64((r) => r.stats.std),
    i64((r) => r.stats.nanCount),
    i64((r) => r.stats.posInfCount + r.stats.negInfCount),
    i64((r) => r.stats.posInfCount),
    i64((r) => r.stats.negInfCount),
  ];
  const struct = makeData({ type: structOf(schema), length: n, nullCount: 0, children });
  return new RecordBatch(schema, struct);
}

