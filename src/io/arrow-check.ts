/**
 * Bounds checks of Arrow IPC flatbuffers read from a file, done by hand before apache-arrow
 * decodes them. apache-arrow trusts vector lengths: a corrupt length of a schema's field list,
 * a field's children or a record batch's nodes makes its decoder loop for minutes and exhaust
 * memory. Every offset here is checked against the buffer, every vector length against the
 * bytes it needs and against a limit no trt-debug file comes near.
 *
 * Layouts (format/File.fbs, Schema.fbs, Message.fbs):
 *   Footer { version: short, schema: Schema, dictionaries: [Block], recordBatches: [Block], custom_metadata: [KeyValue] }
 *   Schema { endianness: short, fields: [Field], custom_metadata: [KeyValue], features: [long] }
 *   Field  { name: string, nullable: bool, type_type: ubyte, type: table, dictionary: table, children: [Field], custom_metadata: [KeyValue] }
 *   Message { version: short, header_type: ubyte, header: table, bodyLength: long, custom_metadata }
 *   RecordBatch { length: long, nodes: [FieldNode (16 bytes)], buffers: [Buffer (16 bytes)], compression }
 *   Block = 24 bytes; KeyValue { key: string, value: string }.
 */

/** Far more than any trt-debug dump has (~20 columns, ~30 field nodes, ~70 buffers). */
const LIMITS = { fields: 256, children: 16, depth: 8, metadata: 1024, blocks: 1 << 24, nodes: 256, buffers: 1024 };

class Fb {
  private readonly dv: DataView;
  constructor(private readonly b: Uint8Array) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  need(o: number, n: number): number {
    if (!(Number.isSafeInteger(o) && o >= 0 && n >= 0 && o + n <= this.b.length)) throw new Error("offset outside the flatbuffer");
    return o;
  }
  u8(o: number): number {
    return this.b[this.need(o, 1)]!;
  }
  u32(o: number): number {
    return this.dv.getUint32(this.need(o, 4), true);
  }
  /** An int64 as a number (unsafe values come back unsafe, for the caller to refuse). */
  i64(o: number): number {
    return Number(this.dv.getBigInt64(this.need(o, 8), true));
  }
  /** The root table's position. */
  root(): number {
    return this.u32(0);
  }
  /** Absolute position of field `i` of the table at `pos`, or 0 when absent. */
  field(pos: number, i: number): number {
    const vt = pos - this.dv.getInt32(this.need(pos, 4), true);
    const vtLen = this.dv.getUint16(this.need(vt, 2), true);
    const fo = 4 + 2 * i;
    if (fo + 2 > vtLen) return 0;
    const off = this.dv.getUint16(this.need(vt + fo, 2), true);
    return off ? this.need(pos + off, 1) : 0;
  }
  /** The table an offset field points to. */
  table(fieldPos: number): number {
    return this.need(fieldPos + this.u32(fieldPos), 4);
  }
  /** A vector field: its element start and count, checked against `elemSize` and `max`. */
  vector(fieldPos: number, elemSize: number, max: number, what: string): { start: number; n: number } {
    if (!fieldPos) return { start: 0, n: 0 };
    const vp = fieldPos + this.u32(fieldPos);
    const n = this.u32(vp);
    if (n > max) throw new Error(`${what}: ${n} entries`);
    this.need(vp + 4, n * elemSize);
    return { start: vp + 4, n };
  }
  /** The table at element k of a vector of tables. */
  element(v: { start: number }, k: number): number {
    const p = v.start + 4 * k;
    return this.need(p + this.u32(p), 4);
  }
  string(fieldPos: number, what: string): void {
    if (!fieldPos) return;
    const sp = fieldPos + this.u32(fieldPos);
    this.need(sp + 4, this.u32(sp));
    void what;
  }
}

function checkKeyValues(fb: Fb, fieldPos: number, what: string): void {
  const v = fb.vector(fieldPos, 4, LIMITS.metadata, what);
  for (let k = 0; k < v.n; k++) {
    const kv = fb.element(v, k);
    fb.string(fb.field(kv, 0), what);
    fb.string(fb.field(kv, 1), what);
  }
}

function checkField(fb: Fb, pos: number, depth: number): void {
  if (depth > LIMITS.depth) throw new Error("schema nested too deeply");
  fb.string(fb.field(pos, 0), "field name");
  const t = fb.field(pos, 3);
  if (t) fb.table(t);
  const children = fb.vector(fb.field(pos, 5), 4, LIMITS.children, "field children");
  for (let k = 0; k < children.n; k++) checkField(fb, fb.element(children, k), depth + 1);
  checkKeyValues(fb, fb.field(pos, 6), "field metadata");
}

/** Check an Arrow IPC file footer (the flatbuffer between the last batch and the trailer). */
export function checkFooter(bytes: Uint8Array): void {
  const fb = new Fb(bytes);
  const footer = fb.root();
  fb.need(footer, 4);
  const s = fb.field(footer, 1);
  if (!s) throw new Error("no schema");
  const schema = fb.table(s);
  const fields = fb.vector(fb.field(schema, 1), 4, LIMITS.fields, "schema fields");
  for (let k = 0; k < fields.n; k++) checkField(fb, fb.element(fields, k), 0);
  checkKeyValues(fb, fb.field(schema, 2), "schema metadata");
  fb.vector(fb.field(schema, 3), 8, LIMITS.metadata, "schema features");
  for (const [f, what] of [[2, "dictionary block"], [3, "record batch block"]] as const) {
    const v = fb.vector(fb.field(footer, f), 24, LIMITS.blocks, `${what}s`);
    for (let k = 0; k < v.n; k++) {
      const at = v.start + 24 * k;
      const offset = fb.i64(at), bodyLength = fb.i64(at + 16);
      if (!(Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(bodyLength) && bodyLength >= 0)) {
        throw new Error(`${what} ${k}: offset ${offset}, body length ${bodyLength}`);
      }
    }
  }
  checkKeyValues(fb, fb.field(footer, 4), "footer metadata");
}

/** Row count of a RecordBatch message (the flatbuffer after the continuation/length prefix). */
export function recordBatchRows(bytes: Uint8Array): number {
  const fb = new Fb(bytes);
  const msg = fb.root();
  const ht = fb.field(msg, 1);
  if (!ht || fb.u8(ht) !== 3) throw new Error("not a record batch message"); // MessageHeader.RecordBatch
  const hf = fb.field(msg, 2);
  if (!hf) throw new Error("record batch message without a header");
  const rb = fb.table(hf);
  const lf = fb.field(rb, 0);
  const length = lf ? fb.i64(lf) : 0;
  if (!Number.isSafeInteger(length) || length < 0) throw new Error(`row count ${length}`);
  fb.vector(fb.field(rb, 1), 16, LIMITS.nodes, "field nodes");
  fb.vector(fb.field(rb, 2), 16, LIMITS.buffers, "buffers");
  checkKeyValues(fb, fb.field(msg, 4), "message metadata");
  return length;
}
