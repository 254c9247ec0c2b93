/**
 * The dump writer's lifecycle: open under a unique temporary name (registered for signal
 * cleanup), write record batches as produced with a bound on bytes in flight, close (footer,
 * fsync, rename into place) or abort (remove). Encoding is dump-encoder.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Schema } from "apache-arrow";
import { FileBlock } from "apache-arrow/ipc/metadata/file";
import { registerTemp, unregisterTemp } from "../core/temp-files.js";
import { assertReplaceable, tempPathFor } from "../core/output-file.js";
import { validateRow } from "./dump-values.js";
import { dumpSchema, FORMAT_OF, RESERVED_META_KEYS, type DumpMeta, type DumpRow } from "./dump-schema.js";
import { BatchEncoder, fileHeader, fileTrailer, type Chunk } from "./dump-encoder.js";
import { phaseEnd, phaseStart } from "../core/phase-profile.js";

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

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
    const d = this.detach();
    if (!d) return;
    const fh = d.fh;
    // Let an in-flight write finish before closing its handle (it fails harmlessly otherwise).
    await this.tail.catch(() => undefined);
    if (fh) await fh.close().catch(() => undefined);
    await fs.promises.rm(this.tempPath, { force: true }).catch(() => undefined);
  }

  /** Synchronous part of abortOpenDumpsSync: unlink now, close the handle later. */
  abortSync(): void {
    const d = this.detach();
    if (!d) return;
    const fh = d.fh;
    try {
      fs.rmSync(this.tempPath, { force: true });
    } catch {
      /* best effort: the process is usually exiting */
    }
    if (fh) void fh.close().catch(() => undefined);
  }

  /** Marks the writer aborted and forgets its temp file; the handle to close, or undefined once finished. */
  private detach(): { fh: fs.promises.FileHandle | null } | undefined {
    if (this.state === "closed" || this.state === "aborted") return undefined;
    this.state = "aborted";
    openWriters.delete(this);
    unregisterTemp(this.tempPath);
    const fh = this.fh;
    this.fh = null;
    return { fh };
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
          const t0 = phaseStart();
          m = enc.encode(it.rows);
          phaseEnd("arrow encode", t0);
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
