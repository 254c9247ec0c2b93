/**
 * The dump reader: open a dump or inputs file, check it is a complete Arrow IPC file of the
 * dump schema (footer, blocks, metadata) before reading, then stream its rows batch by batch.
 */
import * as fs from "node:fs";
import { Data, RecordBatch, RecordBatchReader } from "apache-arrow";
import type { Schema, Vector } from "apache-arrow";
import { checkStat } from "./safe-read.js";
import { checkFooter, recordBatchRows } from "./arrow-check.js";
import { UserError } from "../core/errors.js";
import { isDType, validateRow } from "./dump-values.js";
import { COL, DUMP_FORMAT, HOW_TO_WRITE, INPUTS_FORMAT, RESERVED_META_KEYS, schemaMismatch, type DumpKind, type DumpMeta, type DumpReader, type DumpRow } from "./dump-schema.js";

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

export function firstLine(e: unknown): string {
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
