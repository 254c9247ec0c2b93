/**
 * The Arrow IPC encoder of dump files: record batches of the fixed dump schema, encoded from
 * a flatbuffer template (below), plus the file header and footer. No I/O: dump-writer.ts
 * writes what this produces. Byte-identical to apache-arrow's RecordBatchFileWriter.
 */
import { MetadataVersion } from "apache-arrow";
import type { Schema } from "apache-arrow";
import { FileBlock, Footer } from "apache-arrow/ipc/metadata/file";
import { BufferRegion, FieldNode, Message as ArrowMessage, RecordBatch as RecordBatchHeader } from "apache-arrow/ipc/metadata/message";
import { type DumpRow } from "./dump-schema.js";
import { packValidity } from "../numeric/index.js";

/** A piece of file bytes (the writer writes them in order). */
export type Chunk = Uint8Array;

// ---------------------------------------------------------------------------------------
// Record batch encoding
//
// The schema is fixed, so a record batch is always the same 25 field nodes and 56 buffers (in
// the order apache-arrow's VectorAssembler visits them; see referenceRecordBatch in
// test/support/reference-record-batch.ts). Its message metadata is therefore one flatbuffer layout whose only variable
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
export class BatchEncoder {
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
    packValidity(this.buf, at, n, valid);
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
export function fileHeader(): Uint8Array {
  const b = new Uint8Array(8);
  b.set(ARROW_MAGIC);
  return b;
}

/** End of the file: end-of-stream marker, footer (schema and blocks), its length, magic. */
export function fileTrailer(schema: Schema, blocks: readonly FileBlock[]): Uint8Array {
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
