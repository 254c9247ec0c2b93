/**
 * Per-layer dump files and inputs files: Arrow IPC *file* format, one row per tensor, one
 * record batch per write, streamed to disk as produced under a temporary name and renamed
 * when complete. Schema and field meanings: docs/file-formats.md.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Data, MetadataVersion, RecordBatch, RecordBatchReader } from "apache-arrow";
import type { Schema, Vector } from "apache-arrow";
import { FileBlock, Footer } from "apache-arrow/ipc/metadata/file";
import {
  BufferRegion,
  FieldNode,
  Message as ArrowMessage,
  RecordBatch as RecordBatchHeader,
} from "apache-arrow/ipc/metadata/message";
import type { DType, HostTensor } from "../core/host-tensor.js";
import { numel as numelOf } from "../core/host-tensor.js";
import { checkStat } from "./safe-read.js";
import { checkFooter, recordBatchRows } from "./arrow-check.js";
import { registerTemp, unregisterTemp } from "../core/temp-files.js";
import { UserError } from "../core/errors.js";
import { assertReplaceable, tempPathFor } from "../core/output-file.js";
import { type DumpRow, type DumpStats, COL, DUMP_FORMAT, INPUTS_FORMAT, RESERVED_META_KEYS, dumpSchema, schemaMismatch } from "./dump-schema.js";
import {
  hostTensorToValues as tensorToValueColumns,
  isDType,
  storedLength,
  valueColumnOf,
  valuesToHostTensor as valueColumnsToTensor,
} from "./dump-values.js";

export { DUMP_FORMAT, INPUTS_FORMAT } from "./dump-schema.js";
export type { DumpRow, DumpStats } from "./dump-schema.js";



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

const FORMAT_OF: Record<DumpKind, string> = { dump: DUMP_FORMAT, inputs: INPUTS_FORMAT };
const HOW_TO_WRITE = "pass a dump written by `trt-debug run --save-outputs`";

// ---------------------------------------------------------------------------------------
// Values <-> tensors
// ---------------------------------------------------------------------------------------

/**
 * Converts a HostTensor into the value columns of a DumpRow (the caller fills in the rest,
 * stats included). float32/float64/int64/uint64 data is used without copying: leave it
 * unmodified until the write that uses it has resolved.
 */
export function hostTensorToValues(
  t: HostTensor,
): Pick<DumpRow, "values" | "valuesF64" | "intValues" | "strValues"> {
  return tensorToValueColumns(t);
}

/** The row's values as a tensor of its own dtype (see dump-values.ts for representations). */
export function valuesToHostTensor(row: DumpRow): HostTensor {
  return valueColumnsToTensor(row);
}

/** valuesToHostTensor for a row read from `file`: a row that cannot become a tensor is a UserError. */
export function rowTensor(row: DumpRow, file: string): HostTensor {
  try {
    return valueColumnsToTensor(row);
  } catch (e) {
    throw new UserError(`${file}: ${firstLine(e)}; write the dump again with \`trt-debug run --save-outputs\``);
  }
}

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

type Chunk = Uint8Array;

/** Writers opened and not yet closed or aborted, for abortOpenDumpsSync. */
const openWriters = new Set<DumpWriter>();

/** Largest piece handed to one write call (stays well under Node's 2 GiB per-call limit). */
const MAX_PIECE = 1 << 30;

async function writeAll(fh: fs.promises.FileHandle, chunks: Chunk[], bytes: number): Promise<void> {
  // Split huge chunks; then write in groups (writev) and finish any short write.
  const pieces: Chunk[] = [];
  for (const c of chunks) {
    if (c.byteLength <= MAX_PIECE) pieces.push(c);
    else for (let o = 0; o < c.byteLength; o += MAX_PIECE) pieces.push(c.subarray(o, o + MAX_PIECE));
  }
  let i = 0;
  let left = bytes;
  while (i < pieces.length) {
    // Group up to 1024 buffers (IOV_MAX) and at most MAX_PIECE bytes per writev.
    let j = i;
    let groupBytes = 0;
    while (j < pieces.length && j - i < 1024 && groupBytes + pieces[j].byteLength <= MAX_PIECE) {
      groupBytes += pieces[j].byteLength;
      j++;
    }
    if (j === i) {
      groupBytes = pieces[i].byteLength;
      j = i + 1;
    }
    const group = i === 0 && j === pieces.length ? pieces : pieces.slice(i, j);
    let { bytesWritten } = await fh.writev(group);
    while (bytesWritten < groupBytes) {
      // Short write: skip what was written and write the rest.
      let skip = bytesWritten;
      while (group.length > 0 && skip >= group[0].byteLength) {
        skip -= group[0].byteLength;
        group.shift();
      }
      if (skip > 0) group[0] = group[0].subarray(skip);
      const rest = group.reduce((s, c) => s + c.byteLength, 0);
      const r = await fh.writev(group);
      if (r.bytesWritten === 0) throw new Error("write made no progress");
      bytesWritten = groupBytes - rest + r.bytesWritten;
    }
    left -= groupBytes;
    i = j;
  }
  if (left !== 0) throw new Error(`internal: ${left} bytes not written`);
}

function orderedMetadata(meta: DumpMeta): Map<string, string> {
  const m = new Map<string, string>([
    ["format", FORMAT_OF[meta.kind]],
    ["model", meta.model],
    ["precision", meta.precision],
  ]);
  // Sorted so that the same inputs give byte-identical files.
  for (const key of Object.keys(meta.extra).sort()) {
    if (RESERVED_META_KEYS.includes(key)) {
      throw new Error(`DumpMeta.extra must not set the reserved key "${key}"`);
    }
    const v = meta.extra[key];
    if (typeof v !== "string") throw new TypeError(`DumpMeta.extra["${key}"] must be a string`);
    m.set(key, v);
  }
  return m;
}

function validateRow(row: DumpRow): void {
  const where = `dump row ${row.order} (tensor "${row.tensor}")`;
  if (!Number.isInteger(row.order) || row.order < -0x80000000 || row.order > 0x7fffffff) {
    throw new RangeError(`${where}: order must be an int32`);
  }
  if (!isDType(row.dtype)) throw new TypeError(`${where}: unknown dtype "${String(row.dtype)}"`);
  for (const d of row.dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`${where}: bad dimension ${d} in [${row.dims.join(",")}]`);
  }
  const n = numelOf(row.dims);
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

// ---------------------------------------------------------------------------------------
// Record batch encoding
//
// The schema is fixed, so a record batch is always the same 25 field nodes and 56 buffers (in
// the order apache-arrow's VectorAssembler visits them; see referenceRecordBatch in
// dump-schema.ts). Its message metadata is therefore one flatbuffer layout whose only variable
// parts are the int64 lengths and offsets: it is encoded once by apache-arrow with sentinel
// values, and each batch copies that template and patches the numbers in. The body is written
// straight from the rows: small buffers into one scratch buffer, large tensor values as views
// on the caller's arrays (no copy), all of it in one writev. The bytes are exactly those of
// apache-arrow's RecordBatchFileWriter (test/io-dump.test.ts compares them).
// ---------------------------------------------------------------------------------------

const N_NODES = 25;
const N_BUFFERS = 56;
/** Slots of the metadata template: 0 batch length, 1 body length, then nodes, then buffers. */
const SLOT_NODE = 2;
const SLOT_BUFFER = SLOT_NODE + 2 * N_NODES;
const N_SLOTS = SLOT_BUFFER + 2 * N_BUFFERS;

interface MessageTemplate {
  /** Continuation marker, metadata length, flatbuffer Message and padding to 8 bytes. */
  bytes: Uint8Array;
  /** Byte position of each int64 slot in `bytes`. */
  slotAt: Int32Array;
}

let template: MessageTemplate | null = null;

function messageTemplate(): MessageTemplate {
  if (template) return template;
  // Sentinels: distinct values whose 8 little-endian bytes cannot appear elsewhere by chance
  // (checked: each must occur exactly once).
  const sentinel = (k: number): number => 0x1357b * TWO32 + 0x9bdf0000 + k;
  const nodes = Array.from({ length: N_NODES }, (_, i) => new FieldNode(sentinel(SLOT_NODE + 2 * i), sentinel(SLOT_NODE + 2 * i + 1)));
  const buffers = Array.from(
    { length: N_BUFFERS },
    (_, i) => new BufferRegion(sentinel(SLOT_BUFFER + 2 * i), sentinel(SLOT_BUFFER + 2 * i + 1)),
  );
  // As apache-arrow's writer builds it: no compression, no variadic buffers, no batch metadata.
  const header = new RecordBatchHeader(sentinel(0), nodes, buffers, null, [], new Map());
  const fb = ArrowMessage.encode(ArrowMessage.from(header, sentinel(1)));
  const size = (8 + fb.byteLength + 7) & ~7;
  const bytes = new Uint8Array(size);
  const dv = new DataView(bytes.buffer);
  dv.setInt32(0, -1, true);
  dv.setInt32(4, size - 8, true);
  bytes.set(fb, 8);
  const slotAt = new Int32Array(N_SLOTS).fill(-1);
  for (let at = 8; at + 8 <= 8 + fb.byteLength; at++) {
    if (dv.getUint16(at + 2, true) !== 0x9bdf || dv.getUint32(at + 4, true) !== 0x1357b) continue;
    const k = dv.getUint16(at, true);
    if (k >= N_SLOTS || slotAt[k] !== -1) throw new Error("internal: record batch metadata template is ambiguous");
    slotAt[k] = at;
  }
  if (slotAt.includes(-1)) throw new Error("internal: record batch metadata template lacks a slot");
  template = { bytes, slotAt };
  return template;
}

/** Typed arrays at least this large are written from their own memory instead of copied. */
const EXTERNAL_MIN = 64 * 1024;
/** Bytes of encoded batches after which the writer writes them out before encoding more. */
const FLUSH_BYTES = 8 << 20;
/** Scratch bytes after which the writer writes them out before encoding more. */
const FLUSH_SCRATCH = 1 << 20;
/** Scratch buffers larger than this are dropped after a write (a rare huge string row). */
const SCRATCH_KEEP = 4 << 20;
const INT32_MAX = 0x7fffffff;
const TWO32 = 4294967296;

const encoder = new TextEncoder();
const f64Cell = new Float64Array(1);
const f64Words = new Uint32Array(f64Cell.buffer);

function asBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Scratch pieces [start, end) are views on the scratch buffer once a write takes them. */
type Piece = Uint8Array | { start: number; end: number };

/**
 * Encodes record batches (message + body) into pieces for one writev. Pieces refer to the
 * scratch buffer and to the rows' own value arrays, so a `take`n write must complete before
 * the next `encode`.
 */
class BatchEncoder {
  private readonly template = messageTemplate();
  private readonly slotAt = this.template.slotAt;
  private buf: Uint8Array = new Uint8Array(64 * 1024);
  private dv: DataView = new DataView(this.buf.buffer);
  private pos = 0;
  private segStart = 0;
  private pieces: Piece[] = [];
  /** Bytes encoded since the last take (scratch and external). */
  bytes = 0;
  // Per batch:
  private metaAt = 0;
  private bodyOff = 0;
  private nodeIx = 0;
  private bufIx = 0;

  /** True once enough is encoded that it should be written before more is encoded. */
  get full(): boolean {
    return this.bytes >= FLUSH_BYTES || this.pos >= FLUSH_SCRATCH || this.pieces.length >= 512;
  }

  /**
   * Appends the record batch of `rows` (at least one); returns its metadata and body lengths.
   * On error nothing of the batch remains.
   */
  encode(rows: readonly DumpRow[]): { metaLength: number; bodyLength: number } {
    const saved = { pos: this.pos, segStart: this.segStart, pieces: this.pieces.length, bytes: this.bytes };
    try {
      return this.encodeBatch(rows);
    } catch (e) {
      this.pos = saved.pos;
      this.segStart = saved.segStart;
      this.pieces.length = saved.pieces;
      this.bytes = saved.bytes;
      throw e;
    }
  }

  /** The pieces for writev, and their total; resets the encoder. */
  take(): { chunks: Chunk[]; bytes: number } {
    this.closeSegment();
    const buf = this.buf;
    const chunks = this.pieces.map((p) => (p instanceof Uint8Array ? p : buf.subarray(p.start, p.end)));
    const out = { chunks, bytes: this.bytes };
    this.pieces = [];
    this.pos = 0;
    this.segStart = 0;
    this.bytes = 0;
    if (buf.byteLength > SCRATCH_KEEP) this.setBuffer(new Uint8Array(64 * 1024));
    return out;
  }

  private setBuffer(b: Uint8Array): void {
    this.buf = b;
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  private ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.byteLength) return;
    const b = new Uint8Array(Math.max(need, 2 * this.buf.byteLength));
    b.set(this.buf.subarray(0, this.pos));
    this.setBuffer(b);
  }

  /** Reserves n scratch bytes (contents to be written by the caller); returns their position. */
  private reserve(n: number): number {
    this.ensure(n);
    const at = this.pos;
    this.pos += n;
    this.bytes += n;
    return at;
  }

  private closeSegment(): void {
    if (this.pos > this.segStart) this.pieces.push({ start: this.segStart, end: this.pos });
    this.segStart = this.pos;
  }

  private putBytes(b: Uint8Array): void {
    if (b.byteLength >= EXTERNAL_MIN) {
      this.closeSegment();
      this.pieces.push(b);
      this.bytes += b.byteLength;
    } else if (b.byteLength > 0) {
      const at = this.reserve(b.byteLength); // may replace this.buf: reserve first
      this.buf.set(b, at);
    }
  }

  /** Zero padding after a buffer of `len` bytes, up to a multiple of 8. */
  private pad(len: number): void {
    const n = ((len + 7) & ~7) - len;
    if (n > 0) {
      const at = this.reserve(n); // may replace this.buf: reserve first
      this.buf.fill(0, at, at + n);
    }
  }

  private setI64(at: number, v: number): void {
    // v is a non-negative integer (a count, length or offset): two 32-bit words.
    this.dv.setUint32(at, v % TWO32, true);
    this.dv.setUint32(at + 4, Math.floor(v / TWO32), true);
  }

  private slot(k: number, v: number): void {
    this.setI64(this.metaAt + this.slotAt[k], v);
  }

  private node(length: number, nullCount: number): void {
    this.slot(SLOT_NODE + 2 * this.nodeIx, length);
    this.slot(SLOT_NODE + 2 * this.nodeIx + 1, nullCount);
    this.nodeIx++;
  }

  /** Declares the next body buffer: `len` bytes, stored padded to 8. */
  private region(len: number): void {
    const padded = (len + 7) & ~7;
    this.slot(SLOT_BUFFER + 2 * this.bufIx, this.bodyOff);
    this.slot(SLOT_BUFFER + 2 * this.bufIx + 1, padded);
    this.bufIx++;
    this.bodyOff += padded;
  }

  /** Validity buffer: empty when there are no nulls, else the packed bitmap. */
  private validity(n: number, nulls: number, valid: (i: number) => boolean): void {
    if (nulls === 0) {
      this.region(0);
      return;
    }
    const len = (n + 7) >> 3;
    this.region(len);
    const at = this.reserve(len);
    const b = this.buf;
    b.fill(0, at, at + len);
    for (let i = 0; i < n; i++) if (valid(i)) b[at + (i >> 3)] |= 1 << (i & 7);
    this.pad(len);
  }

  /** An int32 offsets buffer of n + 1 entries; returns its position (entries written later). */
  private offsets(n: number): number {
    const len = 4 * (n + 1);
    this.region(len);
    const at = this.reserve(len);
    this.pad(len);
    this.dv.setInt32(at, 0, true);
    return at;
  }

  /** UTF-8 bytes of s into the scratch buffer; returns their number. */
  private putString(s: string): number {
    const n = s.length;
    this.ensure(3 * n);
    const b = this.buf;
    const start = this.pos;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[start + i] = c;
    }
    let len = i;
    if (i < n) {
      // Not ASCII: as TextEncoder.encode writes it (lone surrogates become U+FFFD).
      len = i + encoder.encodeInto(s.slice(i), b.subarray(start + i)).written;
    }
    this.pos += len;
    this.bytes += len;
    return len;
  }

  /** A Utf8 column (no nulls) of `count` strings. */
  private utf8(count: number, get: (i: number) => string): void {
    this.node(count, 0);
    this.region(0);
    const off = this.offsets(count);
    // The data buffer comes next; its length is known once the strings are encoded.
    const ix = this.bufIx++;
    let total = 0;
    for (let i = 0; i < count; i++) {
      total += this.putString(get(i));
      if (total > INT32_MAX) throw new RangeError("utf8 column exceeds 2 GiB (Arrow Utf8 offsets are int32)");
      this.dv.setInt32(off + 4 * (i + 1), total, true);
    }
    const padded = (total + 7) & ~7;
    this.slot(SLOT_BUFFER + 2 * ix, this.bodyOff);
    this.slot(SLOT_BUFFER + 2 * ix + 1, padded);
    this.bodyOff += padded;
    this.pad(total);
  }

  /** A nullable List<Float32|Float64|Int64> column over per-row arrays (null: null list). */
  private numericList(rows: readonly DumpRow[], get: (r: DumpRow) => Float32Array | Float64Array | BigInt64Array | null): void {
    const n = rows.length;
    let nulls = 0;
    let total = 0;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const a = get(rows[i]);
      if (a === null) nulls++;
      else {
        total += a.length;
        bytes += a.byteLength;
      }
    }
    if (total > INT32_MAX) throw new RangeError("tensor has more than 2^31-1 elements: too large for one Arrow List entry");
    this.node(n, nulls);
    this.validity(n, nulls, (i) => get(rows[i]) !== null);
    const off = this.offsets(n);
    let k = 0;
    for (let i = 0; i < n; i++) {
      k += get(rows[i])?.length ?? 0;
      this.dv.setInt32(off + 4 * (i + 1), k, true);
    }
    this.node(total, 0);
    this.region(0);
    this.region(bytes);
    for (let i = 0; i < n; i++) {
      const a = get(rows[i]);
      if (a !== null && a.length > 0) this.putBytes(asBytes(a));
    }
    this.pad(bytes);
  }

  /** An Int64 column (no nulls) of non-negative integers. */
  private int64(rows: readonly DumpRow[], get: (r: DumpRow) => number): void {
    const n = rows.length;
    this.node(n, 0);
    this.region(0);
    this.region(8 * n);
    const at = this.reserve(8 * n);
    for (let i = 0; i < n; i++) this.setI64(at + 8 * i, get(rows[i]));
  }

  /** A nullable Float64 column (nulls stored as 0). */
  private float64(rows: readonly DumpRow[], get: (r: DumpRow) => number | null): void {
    const n = rows.length;
    let nulls = 0;
    for (let i = 0; i < n; i++) if (get(rows[i]) === null) nulls++;
    this.node(n, nulls);
    this.validity(n, nulls, (i) => get(rows[i]) !== null);
    this.region(8 * n);
    const at = this.reserve(8 * n);
    for (let i = 0; i < n; i++) {
      f64Cell[0] = get(rows[i]) ?? 0; // stored as Float64Array stores it (NaN bits included)
      this.dv.setUint32(at + 8 * i, f64Words[0], true);
      this.dv.setUint32(at + 8 * i + 4, f64Words[1], true);
    }
  }

  private encodeBatch(rows: readonly DumpRow[]): { metaLength: number; bodyLength: number } {
    const t = this.template;
    const n = rows.length;
    this.metaAt = this.reserve(t.bytes.byteLength);
    this.buf.set(t.bytes, this.metaAt);
    const bodyStart = this.bytes;
    this.bodyOff = 0;
    this.nodeIx = 0;
    this.bufIx = 0;

    // order: Int32
    this.node(n, 0);
    this.region(0);
    this.region(4 * n);
    const at = this.reserve(4 * n);
    for (let i = 0; i < n; i++) this.dv.setInt32(at + 4 * i, rows[i].order, true);
    this.pad(4 * n);
    // layer, op_type, tensor, dtype, precision: Utf8
    this.utf8(n, (i) => rows[i].layer);
    this.utf8(n, (i) => rows[i].opType);
    this.utf8(n, (i) => rows[i].tensor);
    this.utf8(n, (i) => rows[i].dtype);
    this.utf8(n, (i) => rows[i].precision);
    // shape: List<Int64>, no nulls
    let dims = 0;
    for (const r of rows) dims += r.dims.length;
    this.node(n, 0);
    this.region(0);
    const off = this.offsets(n);
    for (let i = 0, k = 0; i < n; i++) {
      k += rows[i].dims.length;
      this.dv.setInt32(off + 4 * (i + 1), k, true);
    }
    this.node(dims, 0);
    this.region(0);
    this.region(8 * dims);
    let d = this.reserve(8 * dims);
    for (const r of rows) for (const x of r.dims) (this.setI64(d, x), (d += 8));
    // values, values_f64, int_values: nullable lists
    this.numericList(rows, (r) => r.values);
    this.numericList(rows, (r) => r.valuesF64);
    this.numericList(rows, (r) => r.intValues);
    // str_values: nullable List<Utf8>
    let strNulls = 0;
    let strs = 0;
    for (const r of rows) {
      if (r.strValues === null) strNulls++;
      else strs += r.strValues.length;
    }
    if (strs > INT32_MAX) throw new RangeError("string tensor has more than 2^31-1 elements");
    this.node(n, strNulls);
    this.validity(n, strNulls, (i) => rows[i].strValues !== null);
    const soff = this.offsets(n);
    for (let i = 0, k = 0; i < n; i++) {
      k += rows[i].strValues?.length ?? 0;
      this.dv.setInt32(soff + 4 * (i + 1), k, true);
    }
    let ri = 0;
    let si = 0;
    this.utf8(strs, () => {
      for (;;) {
        const s = rows[ri].strValues;
        if (s !== null && si < s.length) return s[si++];
        ri++;
        si = 0;
      }
    });
    // statistics
    this.int64(rows, (r) => r.stats.numel);
    this.float64(rows, (r) => r.stats.min);
    this.float64(rows, (r) => r.stats.max);
    this.float64(rows, (r) => r.stats.mean);
    this.float64(rows, (r) => r.stats.std);
    this.int64(rows, (r) => r.stats.nanCount);
    this.int64(rows, (r) => r.stats.posInfCount + r.stats.negInfCount);
    this.int64(rows, (r) => r.stats.posInfCount);
    this.int64(rows, (r) => r.stats.negInfCount);

    if (this.nodeIx !== N_NODES || this.bufIx !== N_BUFFERS || this.bytes - bodyStart !== this.bodyOff) {
      throw new Error("internal: record batch layout does not match its metadata");
    }
    this.slot(0, n);
    this.slot(1, this.bodyOff);
    return { metaLength: t.bytes.byteLength, bodyLength: this.bodyOff };
  }
}

const ARROW_MAGIC = Uint8Array.of(0x41, 0x52, 0x52, 0x4f, 0x57, 0x31); // "ARROW1"

/** Start of an Arrow IPC file as apache-arrow writes it: magic and padding to 8 bytes. */
function fileHeader(): Uint8Array {
  const b = new Uint8Array(8);
  b.set(ARROW_MAGIC);
  return b;
}

/** End of the file: end-of-stream marker, footer (schema and blocks), its length, magic. */
function fileTrailer(schema: Schema, blocks: readonly FileBlock[]): Uint8Array {
  const footer = Footer.encode(new Footer(schema, MetadataVersion.V5, blocks as FileBlock[], []));
  const b = new Uint8Array(8 + footer.byteLength + 4 + 6);
  const dv = new DataView(b.buffer);
  dv.setInt32(0, -1, true);
  dv.setInt32(4, 0, true);
  b.set(footer, 8);
  dv.setInt32(8 + footer.byteLength, footer.byteLength, true);
  b.set(ARROW_MAGIC, 8 + footer.byteLength + 4);
  return b;
}

/** A write waiting in the queue: its rows (one record batch) and its promise's settlers. */
interface PendingWrite {
  rows: readonly DumpRow[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

type WriterState = "open" | "closing" | "closed" | "aborted";

/**
 * Streams rows to an Arrow IPC file. Each `write` appends one record batch and resolves once
 * its bytes are in the file; memory use is one batch, whatever the number of rows. The file is
 * written under a unique temporary name (`${path}.tmp-${pid}-${random}`, src/core/output-file.ts) and renamed to `path` by `close`, so `path` only ever holds
 * complete files. Writes issued without waiting for the previous ones are written together
 * (one writev for many small batches), still one record batch each and in call order.
 */
export class DumpWriter {
  readonly path: string;
  readonly tempPath: string;
  readonly meta: DumpMeta;
  private readonly schema: Schema;
  private readonly encoder = new BatchEncoder();
  private readonly blocks: FileBlock[] = [];
  private fh: fs.promises.FileHandle | null;
  private state: WriterState = "open";
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  /** Writes queued behind the last queued operation, not yet started: later writes join it. */
  private joinable: PendingWrite[] | null = null;
  private rowsWritten = 0;
  private bytesWritten = 0;
  private durable = false;

  private constructor(p: string, meta: DumpMeta, schema: Schema) {
    this.path = p;
    this.tempPath = tempPathFor(p);
    this.meta = meta;
    this.schema = schema;
    this.fh = null;
  }

  /**
   * Creates parent directories and the temporary file, and writes the file header.
   * `durable`: fsync the file and its directory before/after the rename, so the dump survives a
   * power loss too. Off by default: a killed or failing run never leaves a partial file under
   * the final name either way (the rename is the commit), and syncing hundreds of megabytes of
   * activations to disk would dominate a run's time.
   */
  static async open(p: string, meta: DumpMeta, opts: { durable?: boolean } = {}): Promise<DumpWriter> {
    if (meta.kind !== "dump" && meta.kind !== "inputs") {
      throw new TypeError(`DumpMeta.kind must be "dump" or "inputs", not "${String(meta.kind)}"`);
    }
    const schema = dumpSchema(orderedMetadata(meta));
    const target = path.resolve(p);
    for (const o of openWriters) {
      if (path.resolve(o.path) === target) throw new Error(`${p}: a DumpWriter for this file is already open`);
    }
    assertReplaceable(p);
    const w = new DumpWriter(p, { ...meta, extra: { ...meta.extra } }, schema);
    w.durable = opts.durable ?? process.env.TRT_DEBUG_FSYNC === "1";
    // Registered before the file exists, so that abortOpenDumpsSync during the open still
    // removes it (the check after the open below finishes the job).
    openWriters.add(w);
    registerTemp(w.tempPath);
    try {
      await fs.promises.mkdir(path.dirname(target), { recursive: true });
      const fh = await fs.promises.open(w.tempPath, "w");
      if (w.state !== "open") {
        await fh.close().catch(() => undefined);
        throw new Error(`${p}: DumpWriter was aborted while opening`);
      }
      w.fh = fh;
      await w.writeOut([fileHeader()], 8);
    } catch (e) {
      await w.abort();
      await fs.promises.rm(w.tempPath, { force: true }).catch(() => undefined);
      throw e;
    }
    return w;
  }

  /** Number of rows written so far. */
  get numRows(): number {
    return this.rowsWritten;
  }

  /** Bytes in the temporary file so far. */
  get bytes(): number {
    return this.bytesWritten;
  }

  /** Appends one row as one record batch; resolves when its bytes are written to the file. */
  write(row: DumpRow): Promise<void> {
    return this.writeGroup([row]);
  }

  /**
   * Appends several rows as one record batch (for many small tensors); resolves when its bytes
   * are written to the file. Values of 64 KiB or more are written from the rows' own arrays
   * (leave them unmodified until then); smaller ones are copied.
   */
  writeGroup(rows: readonly DumpRow[]): Promise<void> {
    // A bad row is the caller's mistake: reject it before anything is queued or written.
    try {
      for (const r of rows) validateRow(r);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      const item: PendingWrite = { rows, resolve, reject };
      if (this.joinable) {
        this.joinable.push(item);
        return;
      }
      const items = [item];
      const run = this.enqueue(
        () => this.writeItems(items),
        () => {
          if (this.joinable === items) this.joinable = null;
        },
      );
      this.joinable = items;
      // Whatever did not get written fails with the reason (settled writes ignore this).
      run.catch((e: unknown) => {
        for (const it of items) it.reject(e);
      });
    });
  }

  /**
   * Writes the footer, fsyncs, closes and renames the file to its final name. Closing a closed
   * writer does nothing; if closing fails, the temporary file is removed and the error thrown.
   */
  close(): Promise<void> {
    if (this.state === "closed") return Promise.resolve();
    const run = this.enqueue(async () => {
      this.state = "closing";
      const trailer = fileTrailer(this.schema, this.blocks);
      await this.writeOut([trailer], trailer.byteLength);
      const fh = this.fh;
      if (!fh || this.state !== "closing") throw new Error(`${this.path}: dump was aborted while closing`);
      if (this.durable) await fh.sync();
      this.fh = null;
      await fh.close();
      if (this.state !== "closing") throw new Error(`${this.path}: dump was aborted while closing`);
      await fs.promises.rename(this.tempPath, this.path);
      this.state = "closed";
      openWriters.delete(this);
      unregisterTemp(this.tempPath);
      if (this.durable) await syncDir(path.dirname(path.resolve(this.path)));
    });
    // A close that fails leaves nothing behind: neither the final name nor the temporary file.
    return run.catch(async (e: unknown) => {
      if (this.state === "closed") return; // a close queued behind one that succeeded
      await this.abort();
      throw e;
    });
  }

  /** Closes and deletes the temporary file. Never throws; does nothing once closed. */
  async abort(): Promise<void> {
    if (this.state === "closed" || this.state === "aborted") return;
    this.state = "aborted";
    openWriters.delete(this);
    unregisterTemp(this.tempPath);
    const fh = this.fh;
    this.fh = null;
    // Let an in-flight write finish before closing its handle (it fails harmlessly otherwise).
    await this.tail.catch(() => undefined);
    if (fh) await fh.close().catch(() => undefined);
    await fs.promises.rm(this.tempPath, { force: true }).catch(() => undefined);
  }

  /** Synchronous part of abortOpenDumpsSync: unlink now, close the handle later. */
  abortSync(): void {
    if (this.state === "closed" || this.state === "aborted") return;
    this.state = "aborted";
    openWriters.delete(this);
    unregisterTemp(this.tempPath);
    const fh = this.fh;
    this.fh = null;
    try {
      fs.rmSync(this.tempPath, { force: true });
    } catch {
      /* best effort: the process is usually exiting */
    }
    if (fh) void fh.close().catch(() => undefined);
  }

  /**
   * Queues an operation behind the previous ones. `onStart` runs when its turn comes, before
   * the state checks. Any newly queued operation ends the joinable write group.
   */
  private enqueue(op: () => Promise<void>, onStart?: () => void): Promise<void> {
    this.joinable = null;
    const run = this.tail.then(async () => {
      onStart?.();
      if (this.failure !== null) throw this.failure;
      if (this.state !== "open") {
        throw new Error(`${this.path}: DumpWriter is ${this.state === "closing" ? "closed" : this.state}`);
      }
      await op();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Encodes and writes queued writes, one record batch each, as few writev calls as memory
   * allows; each write resolves once its bytes are in the file. A row that cannot be encoded
   * fails its own write only; a failed file write is final.
   */
  private async writeItems(items: readonly PendingWrite[]): Promise<void> {
    const enc = this.encoder;
    let encoded: PendingWrite[] = [];
    let rows = 0;
    const flush = async (): Promise<void> => {
      const { chunks, bytes } = enc.take();
      await this.writeOut(chunks, bytes);
      this.rowsWritten += rows;
      for (const it of encoded) it.resolve();
      encoded = [];
      rows = 0;
    };
    for (const it of items) {
      if (it.rows.length > 0) {
        const offset = this.bytesWritten + enc.bytes;
        let m: { metaLength: number; bodyLength: number };
        try {
          m = enc.encode(it.rows);
        } catch (e) {
          it.reject(e);
          continue;
        }
        this.blocks.push(new FileBlock(m.metaLength, m.bodyLength, offset));
        rows += it.rows.length;
      }
      encoded.push(it);
      if (enc.full) await flush();
    }
    await flush();
  }

  /** Writes bytes at the end of the file; a failure here is final. */
  private async writeOut(chunks: Chunk[], bytes: number): Promise<void> {
    try {
      if (bytes === 0) return;
      const fh = this.fh;
      if (!fh || this.state === "aborted") throw new Error(`${this.path}: DumpWriter was aborted`);
      await writeAll(fh, chunks, bytes);
      this.bytesWritten += bytes;
    } catch (e) {
      this.failure = e;
      throw e;
    }
  }
}


async function syncDir(dir: string): Promise<void> {
  // Makes the rename durable; not supported everywhere (Windows), so best effort.
  let h: fs.promises.FileHandle | null = null;
  try {
    h = await fs.promises.open(dir, "r");
    await h.sync();
  } catch {
    /* ignore */
  } finally {
    await h?.close().catch(() => undefined);
  }
}

/**
 * Abort every DumpWriter not yet closed (the CLI calls this on SIGINT/SIGTERM or a crash).
 * Synchronous: unlinks the temp files with fs.rmSync.
 */
export function abortOpenDumpsSync(): void {
  for (const w of [...openWriters]) w.abortSync();
}

// ---------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------

const MAGIC = "ARROW1";
const decoder = new TextDecoder();

function notComplete(p: string, why: string): UserError {
  return new UserError(
    `${p}: not a complete trt-debug Arrow dump (${why}); a killed run never leaves one under the final name, so write it again with \`trt-debug run --save-outputs\``,
  );
}

function openError(p: string, e: unknown): UserError | null {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code === "ENOENT" || code === "ENOTDIR") return new UserError(`${p}: no such file; ${HOW_TO_WRITE}`);
  if (code === "EISDIR") return new UserError(`${p}: is a directory; ${HOW_TO_WRITE}`);
  if (code === "EACCES" || code === "EPERM") return new UserError(`${p}: permission denied; make it readable or ${HOW_TO_WRITE}`);
  return null;
}

async function readExactly(fh: fs.promises.FileHandle, pos: number, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const { bytesRead } = await fh.read(buf, off, n - off, pos + off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return off === n ? buf : buf.subarray(0, off);
}

function firstLine(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.split("\n")[0].slice(0, 200);
}

function metaFromSchema(p: string, schema: Schema): DumpMeta {
  const md = schema.metadata;
  const format = md.get("format");
  let kind: DumpKind;
  if (format === DUMP_FORMAT) kind = "dump";
  else if (format === INPUTS_FORMAT) kind = "inputs";
  else if (format === undefined) {
    throw new UserError(
      `${p}: Arrow file without a trt-debug format key (expected "${DUMP_FORMAT}" or "${INPUTS_FORMAT}"); ${HOW_TO_WRITE}`,
    );
  } else if (/^trt-debug\/(dump|inputs)@\d+$/.test(format)) {
    throw new UserError(`${p}: format "${format}" is from a newer trt-debug; upgrade trt-debug to read it`);
  } else {
    throw new UserError(
      `${p}: format "${format.slice(0, 100)}" is not "${DUMP_FORMAT}" or "${INPUTS_FORMAT}"; ${HOW_TO_WRITE}`,
    );
  }
  let mismatch: string | null;
  try {
    mismatch = schemaMismatch(schema);
  } catch (e) {
    mismatch = `corrupt schema (${firstLine(e)})`;
  }
  if (mismatch) throw new UserError(`${p}: ${mismatch} (not a valid ${format} file); ${HOW_TO_WRITE}`);
  const extra: Record<string, string> = {};
  for (const [k, v] of md) if (!RESERVED_META_KEYS.includes(k)) extra[k] = v;
  return { kind, model: md.get("model") ?? "", precision: md.get("precision") ?? "", extra };
}

/** Column accessors for one record batch read from a file. */
function batchRows(batch: RecordBatch): DumpRow[] {
  const col = (name: string): Data => {
    const v = batch.getChild(name) as Vector | null;
    if (!v || v.data.length !== 1) {
      // One chunk per column is what a record batch read from IPC has.
      throw new Error(`column ${name}: unexpected layout`);
    }
    const d = v.data[0] as Data;
    if (d.length < batch.numRows) throw new Error(`column ${name}: ${d.length} entries for ${batch.numRows} rows`);
    return d;
  };
  // Offsets come from the file: check them before they size anything (a corrupt offset must
  // not make a loop of 2^31 steps or a huge allocation).
  const span = (d: Data, i: number, limit: number): [number, number] => {
    const o = d.valueOffsets as Int32Array | undefined;
    const j = d.offset + i;
    if (!o || j + 1 >= o.length) throw new Error(`row ${i}: offsets missing`);
    const a = o[j]!, b = o[j + 1]!;
    if (!(a >= 0 && a <= b && b <= limit)) throw new Error(`row ${i}: offsets ${a}..${b} outside 0..${limit}`);
    return [a, b];
  };
  const str = (d: Data, i: number): string => {
    const vals = d.values as Uint8Array;
    const [a, b] = span(d, i, vals.length);
    return decoder.decode(vals.subarray(a, b));
  };
  const num = (d: Data, i: number): number => Number((d.values as ArrayLike<number | bigint>)[d.offset + i]);
  const optNum = (d: Data, i: number): number | null => (d.getValid(i) ? num(d, i) : null);
  function list<A extends Float32Array | Float64Array | BigInt64Array>(d: Data, i: number): A | null {
    if (!d.getValid(i)) return null;
    const child = d.children[0] as Data;
    const vals = child.values as A;
    const [a, b] = span(d, i, vals.length - child.offset);
    return vals.subarray(child.offset + a, child.offset + b) as A;
  }
  function strList(d: Data, i: number): string[] | null {
    if (!d.getValid(i)) return null;
    const child = d.children[0] as Data;
    const [a, b] = span(d, i, child.length);
    const out: string[] = [];
    for (let k = a; k < b; k++) out.push(str(child, k));
    return out;
  }
  const c = {
    order: col(COL.order),
    layer: col(COL.layer),
    opType: col(COL.opType),
    tensor: col(COL.tensor),
    dtype: col(COL.dtype),
    precision: col(COL.precision),
    shape: col(COL.shape),
    values: col(COL.values),
    valuesF64: col(COL.valuesF64),
    intValues: col(COL.intValues),
    strValues: col(COL.strValues),
    numel: col(COL.numel),
    min: col(COL.min),
    max: col(COL.max),
    mean: col(COL.mean),
    std: col(COL.std),
    nanCount: col(COL.nanCount),
    posInf: col(COL.posInfCount),
    negInf: col(COL.negInfCount),
  };
  const rows: DumpRow[] = [];
  for (let i = 0; i < batch.numRows; i++) {
    const dtype = str(c.dtype, i);
    if (!isDType(dtype)) throw new Error(`row ${i}: unknown dtype "${dtype.slice(0, 50)}"`);
    const shape = list<BigInt64Array>(c.shape, i);
    rows.push({
      order: num(c.order, i),
      layer: str(c.layer, i),
      opType: str(c.opType, i),
      tensor: str(c.tensor, i),
      dtype,
      precision: str(c.precision, i),
      dims: shape ? Array.from(shape, (d) => Number(d)) : [],
      values: list<Float32Array>(c.values, i),
      valuesF64: list<Float64Array>(c.valuesF64, i),
      intValues: list<BigInt64Array>(c.intValues, i),
      strValues: strList(c.strValues, i),
      stats: {
        numel: num(c.numel, i),
        min: optNum(c.min, i),
        max: optNum(c.max, i),
        mean: optNum(c.mean, i),
        std: optNum(c.std, i),
        nanCount: num(c.nanCount, i),
        posInfCount: num(c.posInf, i),
        negInfCount: num(c.negInf, i),
      },
    });
  }
  return rows;
}

/**
 * Opens a dump or inputs file for streaming: the footer is read now, each record batch when
 * `rows()` reaches it, so memory is bounded by one batch. Problems with the file itself
 * (missing, not Arrow, truncated, another format) are UserErrors with a one-line message.
 * With `expect`, a file of the other kind is a UserError too.
 */
export async function openDump(p: string, expect?: DumpKind): Promise<DumpReader> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw openError(p, e) ?? e;
  }
  try {
    const st = await fh.stat();
    if (!st.isDirectory()) checkStat(p, "dump", st);
    return await openOnHandle(p, fh, expect);
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

async function openOnHandle(p: string, fh: fs.promises.FileHandle, expect?: DumpKind): Promise<DumpReader> {
  let size: number;
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error("dir"), { code: "EISDIR" });
    size = st.size;
  } catch (e) {
    throw openError(p, e) ?? e;
  }
  if (size === 0) throw notComplete(p, "empty file");
  // Arrow IPC file: "ARROW1" + 2 padding bytes ... footer, int32 footer length, "ARROW1".
  const head = await readExactly(fh, 0, Math.min(8, size));
  const headMagic = decoder.decode(head.subarray(0, 6)) === MAGIC;
  if (!headMagic) {
    const stream = head.length >= 4 && new DataView(head.buffer, head.byteOffset).getInt32(0, true) === -1;
    throw notComplete(p, stream ? "an Arrow IPC stream, not an Arrow IPC file" : "not an Arrow IPC file");
  }
  if (size < 8 + 6 + 4 + 6) throw notComplete(p, "truncated: no footer");
  const tail = await readExactly(fh, size - 10, 10);
  if (decoder.decode(tail.subarray(4, 10)) !== MAGIC) throw notComplete(p, "truncated: no footer");
  const footerLen = new DataView(tail.buffer, tail.byteOffset).getInt32(0, true);
  if (footerLen <= 0 || footerLen > size - 8 - 10) throw notComplete(p, "corrupt footer length");
  // Check the footer's flatbuffer (schema fields, children, metadata, block vectors) before
  // apache-arrow decodes it: a corrupt vector length would make its decoder loop for minutes.
  try {
    checkFooter(await readExactly(fh, size - 10 - footerLen, footerLen));
  } catch (e) {
    throw notComplete(p, `corrupt footer: ${firstLine(e)}`);
  }

  let reader: RecordBatchReader;
  try {
    reader = await RecordBatchReader.from(fh);
    await reader.open({ autoDestroy: false });
  } catch (e) {
    throw notComplete(p, `unreadable footer: ${firstLine(e)}`);
  }
  const footer = reader.footer;
  if (!reader.isFile() || !footer) throw notComplete(p, "not an Arrow IPC file");
  const meta = metaFromSchema(p, reader.schema);
  if (expect && meta.kind !== expect) {
    throw new UserError(
      expect === "dump"
        ? `${p}: is an inputs file (${INPUTS_FORMAT}), not a per-layer dump; ${HOW_TO_WRITE}`
        : `${p}: is a per-layer dump (${DUMP_FORMAT}), not an inputs file; pass a file of inputs`,
    );
  }

  // Row count: sum of the record batch headers' lengths (metadata only; bodies stay on disk).
  const bodyEnd = size - 10 - footerLen;
  const nBatches = footer.numRecordBatches;
  let numRows = 0;
  for (let i = 0; i < nBatches; i++) {
    const block = footer.getRecordBatch(i);
    if (!block) throw notComplete(p, `record batch ${i} missing from footer`);
    const end = block.offset + block.metaDataLength + Number(block.bodyLength);
    if (block.offset < 8 || block.metaDataLength < 8 || end > bodyEnd) {
      throw notComplete(p, `record batch ${i} lies outside the file`);
    }
    const metaBytes = await readExactly(fh, block.offset, block.metaDataLength);
    try {
      const dv = new DataView(metaBytes.buffer, metaBytes.byteOffset);
      const skip = dv.getInt32(0, true) === -1 ? 8 : 4;
      // Read the header's counts with bounds checks before apache-arrow decodes it: a corrupt
      // vector length would make its decoder loop for minutes.
      numRows += recordBatchRows(metaBytes.subarray(skip));
    } catch (e) {
      throw notComplete(p, `record batch ${i} header unreadable: ${firstLine(e)}`);
    }
  }

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.resolve(reader.cancel()).catch(() => undefined);
    await fh.close().catch(() => undefined);
  };

  async function* rows(): AsyncGenerator<DumpRow> {
    for (let i = 0; i < nBatches; i++) {
      if (closed) throw new Error(`${p}: DumpReader is closed`);
      let out: DumpRow[];
      try {
        const batch = await (reader as unknown as { readRecordBatch(i: number): Promise<RecordBatch | null> })
          .readRecordBatch(i);
        if (!batch) throw new Error("missing");
        out = batchRows(batch);
      } catch (e) {
        throw notComplete(p, `record batch ${i} unreadable: ${firstLine(e)}`);
      }
      // Rows from the file are checked as the writer checks them (dims, counts, value lengths),
      // so a corrupt file is a one-line user error here, never a RangeError later.
      try {
        for (const row of out) validateRow(row);
      } catch (e) {
        throw new UserError(`${p}: corrupt trt-debug Arrow dump (record batch ${i}, ${firstLine(e)}); ${HOW_TO_WRITE}`);
      }
      yield* out;
    }
  }

  return { meta, numRows, rows, close };
}
