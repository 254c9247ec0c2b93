/**
 * Per-layer dump files and inputs files: Arrow IPC *file* format, one row per tensor, one
 * record batch per write, streamed to disk as produced under a temporary name and renamed
 * when complete. Schema and field meanings: docs/file-formats.md.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import {
  Data,
  Message,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchReader,
  makeData,
} from "apache-arrow";
import type { Schema, Vector } from "apache-arrow";
import type { DType, HostTensor } from "../types.js";
import { numel as numelOf } from "../types.js";
import { UserError } from "../errors.js";
import {
  COL,
  DUMP_FORMAT,
  INPUTS_FORMAT,
  RESERVED_META_KEYS,
  T_F32,
  T_F64,
  T_INT64,
  T_INT_VALUES,
  T_VALUES,
  T_VALUES_F64,
  dumpSchema,
  float64Column,
  int32Column,
  int64Column,
  numericListColumn,
  schemaMismatch,
  stringListColumn,
  structOf,
  utf8Data,
} from "./dump-schema.js";
import {
  hostTensorToValues as tensorToValueColumns,
  isDType,
  storedLength,
  valueColumnOf,
  valuesToHostTensor as valueColumnsToTensor,
} from "./dump-values.js";

export { DUMP_FORMAT, INPUTS_FORMAT } from "./dump-schema.js";

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

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

type Chunk = Uint8Array;

/**
 * apache-arrow's file writer, with its output taken as it is produced instead of queued:
 * every byte the writer emits passes through `_write`, so after `write(batch)` returns the
 * pending chunks are exactly that batch's bytes (views on the batch's own buffers, no copy).
 */
class ChunkingFileWriter extends RecordBatchFileWriter {
  pending: Chunk[] = [];
  pendingBytes = 0;

  protected override _write(chunk: ArrayBufferView | ArrayBuffer | string): this {
    if (!this._started) return this;
    let b: Uint8Array;
    if (typeof chunk === "string") b = new TextEncoder().encode(chunk);
    else if (chunk instanceof ArrayBuffer) b = new Uint8Array(chunk);
    else b = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (b.byteLength > 0) {
      this.pending.push(b);
      this.pendingBytes += b.byteLength;
      this._position += b.byteLength;
    }
    return this;
  }

  /** False once the writer has finished its file (it does so by itself on a schema change). */
  get started(): boolean {
    return this._started;
  }

  take(): { chunks: Chunk[]; bytes: number } {
    const out = { chunks: this.pending, bytes: this.pendingBytes };
    this.pending = [];
    this.pendingBytes = 0;
    return out;
  }
}

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
    const group = pieces.slice(i, j);
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

const nullable = (x: number | null): number => (x === null ? 0 : x);

/** The record batch holding `rows` (one row per tensor). */
function makeBatch(schema: Schema, rows: readonly DumpRow[]): RecordBatch {
  const n = rows.length;
  const i64 = (f: (r: DumpRow) => number | bigint): Data =>
    int64Column(BigInt64Array.from(rows, (r) => BigInt(f(r))));
  const f64 = (f: (r: DumpRow) => number | null): Data =>
    float64Column(Float64Array.from(rows, (r) => nullable(f(r))), rows.map((r) => f(r) !== null));
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

type WriterState = "open" | "closing" | "closed" | "aborted";

/**
 * Streams rows to an Arrow IPC file. Each `write` appends one record batch and resolves once
 * its bytes are in the file; memory use is one batch, whatever the number of rows. The file is
 * written as `${path}.tmp-${pid}` and renamed to `path` by `close`, so `path` only ever holds
 * complete files.
 */
export class DumpWriter {
  readonly path: string;
  readonly tempPath: string;
  readonly meta: DumpMeta;
  private readonly schema: Schema;
  private readonly writer: ChunkingFileWriter;
  private fh: fs.promises.FileHandle | null;
  private state: WriterState = "open";
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  private rowsWritten = 0;
  private bytesWritten = 0;
  private durable = false;

  private constructor(p: string, meta: DumpMeta, schema: Schema) {
    this.path = p;
    this.tempPath = tempPathFor(p);
    this.meta = meta;
    this.schema = schema;
    this.fh = null;
    this.writer = new ChunkingFileWriter();
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
    const temp = path.resolve(tempPathFor(p));
    for (const o of openWriters) {
      if (path.resolve(o.tempPath) === temp) throw new Error(`${p}: a DumpWriter for this file is already open`);
    }
    const w = new DumpWriter(p, { ...meta, extra: { ...meta.extra } }, schema);
    w.durable = opts.durable ?? process.env.TRT_DEBUG_FSYNC === "1";
    // Registered before the file exists, so that abortOpenDumpsSync during the open still
    // removes it (the check after the open below finishes the job).
    openWriters.add(w);
    try {
      await fs.promises.mkdir(path.dirname(temp), { recursive: true });
      const fh = await fs.promises.open(w.tempPath, "w");
      if (w.state !== "open") {
        await fh.close().catch(() => undefined);
        throw new Error(`${p}: DumpWriter was aborted while opening`);
      }
      w.fh = fh;
      w.writer.reset(undefined, schema); // starts the file: magic + padding
      await w.flush();
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
   * Appends several rows as one record batch (for many small tensors). Values of a group are
   * copied into one buffer per column; single rows are written without copying.
   */
  writeGroup(rows: readonly DumpRow[]): Promise<void> {
    // A bad row is the caller's mistake: reject it before anything is queued or written.
    try {
      for (const r of rows) validateRow(r);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.enqueue(async () => {
      if (rows.length === 0) return;
      const batch = makeBatch(this.schema, rows); // throws before any byte is emitted
      await this.emit(() => {
        this.writer.write(batch);
        // apache-arrow ends the file instead of writing a batch whose schema differs.
        if (!this.writer.started) throw new Error("internal: record batch schema differs from the file's");
      });
      this.rowsWritten += rows.length;
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
      await this.emit(() => this.writer.close()); // the footer
      const fh = this.fh;
      if (!fh || this.state !== "closing") throw new Error(`${this.path}: dump was aborted while closing`);
      if (this.durable) await fh.sync();
      this.fh = null;
      await fh.close();
      if (this.state !== "closing") throw new Error(`${this.path}: dump was aborted while closing`);
      await fs.promises.rename(this.tempPath, this.path);
      this.state = "closed";
      openWriters.delete(this);
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
    const fh = this.fh;
    this.fh = null;
    try {
      this.writer.abort();
    } catch {
      /* already closed */
    }
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
    const fh = this.fh;
    this.fh = null;
    try {
      fs.rmSync(this.tempPath, { force: true });
    } catch {
      /* best effort: the process is usually exiting */
    }
    if (fh) void fh.close().catch(() => undefined);
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.tail.then(async () => {
      if (this.failure !== null) throw this.failure;
      if (this.state !== "open") {
        throw new Error(`${this.path}: DumpWriter is ${this.state === "closing" ? "closed" : this.state}`);
      }
      await op();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Runs a step of the Arrow writer and writes what it emitted; a failure here is final. */
  private async emit(step: () => void): Promise<void> {
    try {
      step();
      await this.flush();
    } catch (e) {
      this.failure = e;
      throw e;
    }
  }

  private async flush(): Promise<void> {
    const { chunks, bytes } = this.writer.take();
    if (bytes === 0) return;
    const fh = this.fh;
    if (!fh || this.state === "aborted") throw new Error(`${this.path}: DumpWriter was aborted`);
    await writeAll(fh, chunks, bytes);
    this.bytesWritten += bytes;
  }
}

function tempPathFor(p: string): string {
  return `${p}.tmp-${process.pid}`;
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
  const mismatch = schemaMismatch(schema);
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
    return v.data[0] as Data;
  };
  const str = (d: Data, i: number): string => {
    const o = d.valueOffsets as Int32Array;
    const j = d.offset + i;
    return decoder.decode((d.values as Uint8Array).subarray(o[j], o[j + 1]));
  };
  const num = (d: Data, i: number): number => Number((d.values as ArrayLike<number | bigint>)[d.offset + i]);
  const optNum = (d: Data, i: number): number | null => (d.getValid(i) ? num(d, i) : null);
  function list<A extends Float32Array | Float64Array | BigInt64Array>(d: Data, i: number): A | null {
    if (!d.getValid(i)) return null;
    const o = d.valueOffsets as Int32Array;
    const j = d.offset + i;
    const child = d.children[0] as Data;
    const vals = child.values as A;
    return vals.subarray(child.offset + o[j], child.offset + o[j + 1]) as A;
  }
  function strList(d: Data, i: number): string[] | null {
    if (!d.getValid(i)) return null;
    const o = d.valueOffsets as Int32Array;
    const j = d.offset + i;
    const child = d.children[0] as Data;
    const out: string[] = [];
    for (let k = o[j]; k < o[j + 1]; k++) out.push(str(child, k));
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
    fh = await fs.promises.open(p, "r");
  } catch (e) {
    throw openError(p, e) ?? e;
  }
  try {
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
      const msg = Message.decode(metaBytes.subarray(skip));
      if (!msg.isRecordBatch()) throw new Error("not a record batch message");
      numRows += msg.header().length;
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
      yield* out;
    }
  }

  return { meta, numRows, rows, close };
}
