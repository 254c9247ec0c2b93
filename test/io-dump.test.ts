import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RecordBatchFileWriter, tableFromArrays, tableFromIPC, tableToIPC } from "apache-arrow";
import { dumpSchema } from "../src/io/dump-schema.js";
import { referenceRecordBatch } from "./support/reference-record-batch.js";
import {
  DumpWriter,
  abortOpenDumpsSync,
  hostTensorToValues,
  openDump,
  valuesToHostTensor,
} from "../src/io/dump.js";
import type { DumpMeta, DumpRow, DumpStats } from "../src/io/dump.js";
import { UserError } from "../src/core/errors.js";
import type { DType, HostTensor } from "../src/core/host-tensor.js";
import { numel } from "../src/core/host-tensor.js";

// --- helpers --------------------------------------------------------------------------

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "trt-debug-io-dump-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const META: DumpMeta = { kind: "dump", model: "m.onnx", precision: "fp16", extra: { seed: "7", tool: "trt-debug 0.1.0" } };

/** Reference statistics (test oracle, written independently of src/numeric). */
function statsOf(vals: ArrayLike<number> | null, n: number): DumpStats {
  const s: DumpStats = { numel: n, min: null, max: null, mean: null, std: null, nanCount: 0, posInfCount: 0, negInfCount: 0 };
  if (!vals) return s;
  let sum = 0;
  let cnt = 0;
  let mn = Infinity;
  let mx = -Infinity;
  for (let i = 0; i < vals.length; i++) {
    const v = vals[i];
    if (Number.isNaN(v)) s.nanCount++;
    else if (v === Infinity) s.posInfCount++;
    else if (v === -Infinity) s.negInfCount++;
    else {
      sum += v;
      cnt++;
      mn = Math.min(mn, v);
      mx = Math.max(mx, v);
    }
  }
  if (cnt > 0) {
    const mean = sum / cnt;
    let sq = 0;
    for (let i = 0; i < vals.length; i++) if (Number.isFinite(vals[i])) sq += (vals[i] - mean) ** 2;
    Object.assign(s, { min: mn, max: mx, mean, std: Math.sqrt(sq / cnt) });
  }
  return s;
}

function rowOf(t: HostTensor, order: number, extra: Partial<DumpRow> = {}): DumpRow {
  const v = hostTensorToValues(t);
  const n = numel(t.dims);
  const floats = v.values ?? v.valuesF64;
  return {
    order,
    layer: `layer_${order}`,
    opType: "Conv",
    tensor: t.name,
    dtype: t.dtype,
    precision: "fp16",
    dims: t.dims,
    ...v,
    stats: statsOf(floats, n),
    ...extra,
  };
}

async function writeDump(p: string, rows: DumpRow[], meta: DumpMeta = META): Promise<void> {
  const w = await DumpWriter.open(p, meta);
  for (const r of rows) await w.write(r);
  await w.close();
}

async function readAll(p: string): Promise<{ meta: DumpMeta; numRows: number; rows: DumpRow[] }> {
  const r = await openDump(p);
  const rows: DumpRow[] = [];
  for await (const row of r.rows()) rows.push(row);
  await r.close();
  return { meta: r.meta, numRows: r.numRows, rows };
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Asserts the reading of `p` fails with a one-line UserError whose message matches. */
async function expectUserError(p: string, re: RegExp): Promise<UserError> {
  let err: unknown = null;
  try {
    const r = await openDump(p);
    for await (const _ of r.rows()) void _;
    await r.close();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UserError);
  const msg = (err as UserError).message;
  expect(msg).not.toContain("\n");
  expect(msg).toContain(p);
  expect(msg).toMatch(re);
  return err as UserError;
}

function getGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

// --- round trips ----------------------------------------------------------------------

function f32(...xs: number[]): Float32Array {
  return Float32Array.from(xs);
}

const F16_BITS = [0x0000, 0x8000, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x7e00, 0x3555];
const BF16_BITS = [0x0000, 0x8000, 0x3f80, 0xbf80, 0x7f7f, 0xff7f, 0x0001, 0x007f, 0x0080, 0x7f80, 0xff80, 0x7fc0, 0x3eab];

const TENSORS: HostTensor[] = [
  { name: "f32", dtype: "float32", dims: [2, 4], data: f32(1.5, -0, 0, NaN, Infinity, -Infinity, 1e-45, 3.4028234663852886e38) },
  { name: "f32_nan_payloads", dtype: "float32", dims: [3], data: new Float32Array(Uint32Array.from([0x7f800001, 0xffc00123, 0x7fbfffff]).buffer) },
  { name: "f16", dtype: "float16", dims: [F16_BITS.length], data: Uint16Array.from(F16_BITS) },
  { name: "bf16", dtype: "bfloat16", dims: [BF16_BITS.length], data: Uint16Array.from(BF16_BITS) },
  { name: "f64", dtype: "float64", dims: [5], data: Float64Array.from([1e300, -0, NaN, -Infinity, 5e-324]) },
  { name: "f64_nan_payload", dtype: "float64", dims: [1], data: new Float64Array(BigUint64Array.of(0x7ff0000000000001n).buffer) },
  { name: "i8", dtype: "int8", dims: [4], data: Int8Array.from([-128, 127, 0, -1]) },
  { name: "u8", dtype: "uint8", dims: [3], data: Uint8Array.from([0, 255, 128]) },
  { name: "i16", dtype: "int16", dims: [3], data: Int16Array.from([-32768, 32767, -2]) },
  { name: "u16", dtype: "uint16", dims: [3], data: Uint16Array.from([0, 65535, 32768]) },
  { name: "i32", dtype: "int32", dims: [3], data: Int32Array.from([-2147483648, 2147483647, -3]) },
  { name: "u32", dtype: "uint32", dims: [3], data: Uint32Array.from([0, 4294967295, 2147483648]) },
  { name: "i64", dtype: "int64", dims: [4], data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 0n, -(2n ** 53n) - 1n]) },
  { name: "u64", dtype: "uint64", dims: [3], data: BigUint64Array.from([2n ** 64n - 1n, 2n ** 63n, 12345678901234567890n]) },
  { name: "b", dtype: "bool", dims: [2, 2], data: Uint8Array.from([1, 0, 0, 1]) },
  { name: "s", dtype: "string", dims: [5], data: ["", "héllo", "a\u0000b", "🙂", "x".repeat(1000)] },
  { name: "c64", dtype: "complex64", dims: [2], data: f32(1, -2, NaN, 0.5) },
  { name: "c128", dtype: "complex128", dims: [1], data: Float64Array.from([1 / 3, -1e-310]) },
  { name: "empty", dtype: "float32", dims: [2, 0, 3], data: new Float32Array(0) },
  { name: "empty_s", dtype: "string", dims: [0], data: [] },
  { name: "empty_i64", dtype: "int64", dims: [0, 5], data: new BigInt64Array(0) },
  { name: "scalar", dtype: "float32", dims: [], data: f32(-3.25) },
  { name: "scalar_i64", dtype: "int64", dims: [], data: BigInt64Array.of(42n) },
  { name: "scalar_s", dtype: "string", dims: [], data: ["only"] },
];

function expectSameTensor(got: HostTensor, want: HostTensor): void {
  expect(got.name).toBe(want.name);
  expect(got.dtype).toBe(want.dtype);
  expect(got.dims).toEqual(want.dims);
  if (Array.isArray(want.data)) {
    expect(got.data).toEqual(want.data);
    return;
  }
  expect(Array.isArray(got.data)).toBe(false);
  const g = got.data as Exclude<HostTensor["data"], string[]>;
  expect(g.constructor).toBe(want.data.constructor);
  expect(g.length).toBe(want.data.length);
  expect(Array.from(bytesOf(g))).toEqual(Array.from(bytesOf(want.data)));
}

describe("round trip", () => {
  it("every dtype comes back bit-exact in its own representation", async () => {
    const p = path.join(dir, "all.arrow");
    const rows = TENSORS.map((t, i) => rowOf(t, i));
    await writeDump(p, rows);
    const { rows: back, numRows } = await readAll(p);
    expect(numRows).toBe(TENSORS.length);
    expect(back.length).toBe(TENSORS.length);
    for (let i = 0; i < TENSORS.length; i++) {
      const r = back[i];
      expect(r.order).toBe(i);
      expect(r.layer).toBe(`layer_${i}`);
      expect(r.opType).toBe("Conv");
      expect(r.precision).toBe("fp16");
      expect(r.dims).toEqual(TENSORS[i].dims);
      expect(r.stats).toEqual(rows[i].stats);
      expectSameTensor(valuesToHostTensor(r), TENSORS[i]);
    }
  });

  it("puts each dtype's values in its documented column", async () => {
    const p = path.join(dir, "cols.arrow");
    await writeDump(p, TENSORS.map((t, i) => rowOf(t, i)));
    const { rows } = await readAll(p);
    const by = new Map(rows.map((r) => [r.tensor, r]));
    const only = (name: string, col: "values" | "valuesF64" | "intValues" | "strValues"): void => {
      const r = by.get(name)!;
      for (const c of ["values", "valuesF64", "intValues", "strValues"] as const) {
        if (c === col) expect(r[c]).not.toBeNull();
        else expect(r[c]).toBeNull();
      }
    };
    for (const n of ["f32", "f32_nan_payloads", "f16", "bf16", "c64", "empty", "scalar"]) only(n, "values");
    for (const n of ["f64", "f64_nan_payload", "c128"]) only(n, "valuesF64");
    for (const n of ["i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "b", "empty_i64", "scalar_i64"]) only(n, "intValues");
    for (const n of ["s", "empty_s", "scalar_s"]) only(n, "strValues");
    // float32 bits, fp16 as exact float32, uint64 as the signed bit pattern, bool as 0/1
    expect(Array.from(new Uint32Array(by.get("f32")!.values!.slice().buffer))).toEqual(
      Array.from(new Uint32Array((TENSORS[0].data as Float32Array).slice().buffer)),
    );
    const f16 = Array.from(by.get("f16")!.values!);
    expect(f16.slice(0, 6)).toEqual([0, -0, 1, -1, 65504, -65504]);
    expect(f16[6]).toBe(2 ** -24);
    expect(f16[10]).toBe(Infinity);
    expect(f16[11]).toBe(-Infinity);
    expect(f16[12]).toBeNaN();
    expect(Array.from(by.get("u64")!.intValues!)).toEqual([-1n, -(2n ** 63n), 12345678901234567890n - 2n ** 64n]);
    expect(Array.from(by.get("b")!.intValues!)).toEqual([1n, 0n, 0n, 1n]);
    expect(Array.from(by.get("u32")!.intValues!)).toEqual([0n, 4294967295n, 2147483648n]);
    expect(Array.from(by.get("i8")!.intValues!)).toEqual([-128n, 127n, 0n, -1n]);
  });

  it("float16 and bfloat16: all 65536 bit patterns round-trip (NaNs stay NaN)", async () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const p = path.join(dir, "half.arrow");
    await writeDump(p, [
      rowOf({ name: "h", dtype: "float16", dims: [256, 256], data: all }, 0),
      rowOf({ name: "b", dtype: "bfloat16", dims: [65536], data: all }, 1),
    ]);
    const { rows } = await readAll(p);
    for (const r of rows) {
      const back = valuesToHostTensor(r).data as Uint16Array;
      expect(back).toBeInstanceOf(Uint16Array);
      let nans = 0;
      for (let b = 0; b < 65536; b++) {
        if (Number.isNaN(r.values![b])) {
          nans++;
          expect(Number.isNaN(r.values![back[b]] ?? NaN)).toBe(true);
          expect(back[b] & 0x8000).toBe(b & 0x8000); // sign kept
        } else if (back[b] !== b) {
          expect.fail(`${r.dtype} bits 0x${b.toString(16)} came back as 0x${back[b].toString(16)}`);
        }
      }
      expect(nans).toBe(r.dtype === "float16" ? 2 * 1023 : 2 * 127);
    }
  });

  it("normalizes bool to 0/1 and unpacks int4/uint4", () => {
    const b = hostTensorToValues({ name: "b", dtype: "bool", dims: [3], data: Uint8Array.from([2, 0, 255]) });
    expect(Array.from(b.intValues!)).toEqual([1n, 0n, 1n]);
    // ONNX packs int4 two per byte, low nibble first: 0xF7 = [7, -1], 0x08 = [-8, (pad)]
    const i4 = hostTensorToValues({ name: "i4", dtype: "int4", dims: [3], data: Uint8Array.from([0xf7, 0x08]) });
    expect(Array.from(i4.intValues!)).toEqual([7n, -1n, -8n]);
    const u4 = hostTensorToValues({ name: "u4", dtype: "uint4", dims: [3], data: Uint8Array.from([0xf7, 0x08]) });
    expect(Array.from(u4.intValues!)).toEqual([7n, 15n, 8n]);
    const back = valuesToHostTensor({ ...rowOf({ name: "i4", dtype: "int4", dims: [3], data: Uint8Array.from([0xf7, 0x08]) }, 0) });
    expect(back.data).toEqual(Int8Array.from([7, -1, -8]));
  });

  it("float8 types: every non-NaN bit pattern round-trips, NaN patterns decode to NaN", async () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const types: DType[] = ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"];
    const p = path.join(dir, "f8.arrow");
    await writeDump(p, types.map((dtype, i) => rowOf({ name: dtype, dtype, dims: [256], data: all }, i)));
    const { rows } = await readAll(p);
    // spot values from the ONNX float8 definitions
    const v = (t: number, bits: number): number => rows[t].values![bits];
    expect(v(0, 0x7e)).toBe(448); // e4m3fn max
    expect(v(0, 0x7f)).toBeNaN();
    expect(v(0, 0x01)).toBe(2 ** -9);
    expect(v(1, 0x80)).toBeNaN(); // fnuz: 0x80 is the only NaN
    expect(v(1, 0x7f)).toBe(240);
    expect(v(2, 0x7c)).toBe(Infinity);
    expect(v(2, 0x7b)).toBe(57344);
    expect(v(3, 0x7f)).toBe(57344);
    for (let t = 0; t < types.length; t++) {
      const back = valuesToHostTensor(rows[t]).data as Uint8Array;
      expect(back).toBeInstanceOf(Uint8Array);
      for (let b = 0; b < 256; b++) {
        if (Number.isNaN(rows[t].values![b])) expect(Number.isNaN(rows[t].values![back[b]])).toBe(true);
        else expect(back[b]).toBe(b);
      }
    }
  });

  it("round-trips metadata, the inputs kind and null statistics", async () => {
    const p = path.join(dir, "inputs.arrow");
    const meta: DumpMeta = { kind: "inputs", model: "/models/x.onnx", precision: "fp32", extra: { seed: "123", "tool.version": "0.1.0", empty: "" } };
    const t: HostTensor = { name: "input", dtype: "float32", dims: [3], data: f32(NaN, Infinity, NaN) };
    const row = rowOf(t, 0, { layer: "", opType: "", precision: "" });
    expect(row.stats.min).toBeNull();
    await writeDump(p, [row], meta);
    const { meta: m, rows } = await readAll(p);
    expect(m).toEqual(meta);
    expect(rows[0].layer).toBe("");
    expect(rows[0].opType).toBe("");
    expect(rows[0].stats).toEqual({ numel: 3, min: null, max: null, mean: null, std: null, nanCount: 2, posInfCount: 1, negInfCount: 0 });
    // the file's own schema metadata, as any Arrow reader sees it
    const table = tableFromIPC(fs.readFileSync(p));
    expect(table.schema.metadata.get("format")).toBe("trt-debug/inputs@1");
    expect(table.getChild("inf_count")!.get(0)).toBe(1n);
  });

  it("rejects reserved extra keys and bad rows without breaking the writer", async () => {
    await expect(DumpWriter.open(path.join(dir, "x.arrow"), { ...META, extra: { format: "x" } })).rejects.toThrow(/reserved/);
    const p = path.join(dir, "ok.arrow");
    const w = await DumpWriter.open(p, META);
    const good = rowOf({ name: "a", dtype: "float32", dims: [2], data: f32(1, 2) }, 0);
    await expect(w.write({ ...good, dims: [3] })).rejects.toThrow(/values|numel/);
    await expect(w.write({ ...good, intValues: new BigInt64Array(2) })).rejects.toThrow(/belong/);
    await w.write(good);
    await w.close();
    const { rows } = await readAll(p);
    expect(rows.length).toBe(1);
    expect(Array.from(rows[0].values!)).toEqual([1, 2]);
  });

  it("writeGroup puts several rows in one record batch", async () => {
    const p = path.join(dir, "group.arrow");
    const w = await DumpWriter.open(p, META);
    const group = [
      rowOf({ name: "a", dtype: "float32", dims: [2], data: f32(1, 2) }, 0),
      rowOf({ name: "b", dtype: "int32", dims: [1], data: Int32Array.of(-5) }, 1),
      rowOf({ name: "c", dtype: "float32", dims: [3], data: f32(3, 4, 5) }, 2),
      { ...rowOf({ name: "d", dtype: "float32", dims: [2], data: f32(6, 7) }, 3), values: null },
    ];
    await w.writeGroup(group);
    await w.write(rowOf({ name: "e", dtype: "string", dims: [1], data: ["z"] }, 4));
    await w.close();
    const table = tableFromIPC(fs.readFileSync(p));
    expect(table.batches.length).toBe(2);
    expect(table.batches[0].numRows).toBe(4);
    const { rows, numRows } = await readAll(p);
    expect(numRows).toBe(5);
    expect(rows.map((r) => r.tensor)).toEqual(["a", "b", "c", "d", "e"]);
    expect(Array.from(rows[0].values!)).toEqual([1, 2]);
    expect(Array.from(rows[1].intValues!)).toEqual([-5n]);
    expect(Array.from(rows[2].values!)).toEqual([3, 4, 5]);
    expect(rows[3].values).toBeNull(); // stats-only row
    expect(() => valuesToHostTensor(rows[3])).toThrow(/no stored values/);
    expect(rows[4].strValues).toEqual(["z"]);
  });

  it("is deterministic: the same rows give byte-identical files", async () => {
    const rows = TENSORS.map((t, i) => rowOf(t, i));
    const a = path.join(dir, "a.arrow");
    const b = path.join(dir, "b.arrow");
    await writeDump(a, rows, { ...META, extra: { z: "1", a: "2" } });
    await writeDump(b, rows, { ...META, extra: { a: "2", z: "1" } });
    expect(fs.readFileSync(a).equals(fs.readFileSync(b))).toBe(true);
  });
});

describe("readable without trt-debug", () => {
  it("apache-arrow's generic tableFromIPC reads every column", async () => {
    const p = path.join(dir, "generic.arrow");
    const rows = TENSORS.map((t, i) => rowOf(t, i));
    await writeDump(p, rows);
    const table = tableFromIPC(fs.readFileSync(p));
    expect(table.numRows).toBe(TENSORS.length);
    expect(table.batches.length).toBe(TENSORS.length); // one record batch per tensor
    expect(table.schema.fields.map((f) => f.name)).toEqual([
      "order", "layer", "op_type", "tensor", "dtype", "precision", "shape",
      "values", "values_f64", "int_values", "str_values",
      "numel", "min", "max", "mean", "std", "nan_count", "inf_count", "pos_inf_count", "neg_inf_count",
    ]);
    expect(Object.fromEntries(table.schema.metadata)).toEqual({
      format: "trt-debug/dump@1", model: "m.onnx", precision: "fp16", seed: "7", tool: "trt-debug 0.1.0",
    });
    const first = table.get(0)!.toJSON();
    expect(first.tensor).toBe("f32");
    expect(first.dtype).toBe("float32");
    expect(Array.from(first.shape as Iterable<bigint>)).toEqual([2n, 4n]);
    expect(Array.from(first.values as Iterable<number>).slice(0, 3)).toEqual([1.5, -0, 0]);
    expect(first.values_f64).toBeNull();
    expect(first.inf_count).toBe(2n);
    expect(first.nan_count).toBe(1n);
    const s = table.get(TENSORS.findIndex((t) => t.name === "s"))!.toJSON();
    expect(Array.from(s.str_values as Iterable<string>)).toEqual(TENSORS.find((t) => t.name === "s")!.data);
    expect(table.getChild("min")!.get(TENSORS.findIndex((t) => t.name === "empty"))).toBeNull();
  });
});

// --- streaming and bounded memory -------------------------------------------------------

describe("streaming", () => {
  it("writes 200 rows of 1 MB with memory bounded well under the total, and reads them back batch by batch", async () => {
    const gc = getGc();
    const p = path.join(dir, "big.arrow");
    const N = 200;
    const n = 262144; // 1 MiB of float32 per row
    const mkRow = (i: number): DumpRow => {
      const data = new Float32Array(n); // a fresh buffer per row, as a real run produces
      data.fill(i);
      data[0] = -i;
      return {
        order: i, layer: `layer_${i}`, opType: "MatMul", tensor: `t${i}`, dtype: "float32", precision: "fp16",
        dims: [512, 512], values: data, valuesF64: null, intValues: null, strValues: null,
        stats: { numel: n, min: -i, max: i, mean: i, std: 0, nanCount: 0, posInfCount: 0, negInfCount: 0 },
      };
    };
    gc();
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const w = await DumpWriter.open(p, META);
    for (let i = 0; i < N; i++) {
      await w.write(mkRow(i));
      // written to the file, not buffered: the temp file already holds this row
      if (i % 20 === 0) {
        expect(fs.statSync(w.tempPath).size).toBeGreaterThanOrEqual((i + 1) * n * 4);
        gc();
        peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
      }
    }
    await w.close();
    gc();
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
    const total = N * n * 4;
    expect(fs.statSync(p).size).toBeGreaterThan(total);
    expect(peak).toBeLessThan(total / 8); // < 25 MB retained for 200 MB written

    gc();
    const rbase = process.memoryUsage().arrayBuffers;
    let rpeak = 0;
    const r = await openDump(p);
    expect(r.numRows).toBe(N);
    let i = 0;
    for await (const row of r.rows()) {
      expect(row.tensor).toBe(`t${i}`);
      expect(row.dims).toEqual([512, 512]);
      expect(row.values!.length).toBe(n);
      expect(row.values![0]).toBe(-i);
      expect(row.values![n - 1]).toBe(i);
      if (i % 20 === 0) {
        gc();
        rpeak = Math.max(rpeak, process.memoryUsage().arrayBuffers - rbase);
      }
      i++;
    }
    await r.close();
    expect(i).toBe(N);
    expect(rpeak).toBeLessThan(total / 8);
  });
});

// --- temporary name, close, abort -------------------------------------------------------

describe("temporary file", () => {
  it("writes under the temporary name and renames on close; creates parent directories", async () => {
    const p = path.join(dir, "nested", "deeper", "d.arrow");
    const w = await DumpWriter.open(p, META);
    expect(w.path).toBe(p);
    expect(w.tempPath.startsWith(`${p}.tmp-${process.pid}-`)).toBe(true);
    expect(fs.existsSync(w.tempPath)).toBe(true);
    await w.write(rowOf(TENSORS[0], 0));
    expect(fs.existsSync(p)).toBe(false);
    expect(fs.existsSync(w.tempPath)).toBe(true);
    await w.close();
    expect(fs.existsSync(p)).toBe(true);
    expect(fs.existsSync(w.tempPath)).toBe(false);
    expect((await readAll(p)).rows.length).toBe(1);
    await expect(w.write(rowOf(TENSORS[0], 1))).rejects.toThrow(/closed/);
    await w.close(); // no-op after close
    await w.abort(); // no-op after close
    expect(fs.existsSync(p)).toBe(true);
  });

  it("an empty dump (no rows) is a valid file", async () => {
    const p = path.join(dir, "empty.arrow");
    await writeDump(p, []);
    const { rows, numRows, meta } = await readAll(p);
    expect(rows).toEqual([]);
    expect(numRows).toBe(0);
    expect(meta.kind).toBe("dump");
    expect(tableFromIPC(fs.readFileSync(p)).numRows).toBe(0);
  });

  it("abort removes the temporary file and leaves no final file; never throws", async () => {
    const p = path.join(dir, "ab.arrow");
    const w = await DumpWriter.open(p, META);
    await w.write(rowOf(TENSORS[0], 0));
    await w.abort();
    expect(fs.existsSync(w.tempPath)).toBe(false);
    expect(fs.existsSync(p)).toBe(false);
    await expect(w.abort()).resolves.toBeUndefined();
    await expect(w.write(rowOf(TENSORS[0], 1))).rejects.toThrow(/aborted/);
    await expect(w.close()).rejects.toThrow(/aborted/);
    expect(fs.existsSync(p)).toBe(false);
  });

  it("abort while a write is in flight still removes everything", async () => {
    const p = path.join(dir, "inflight.arrow");
    const w = await DumpWriter.open(p, META);
    const big = new Float32Array(1 << 22);
    const writing = w.write({ ...rowOf(TENSORS[0], 0), dims: [big.length], values: big, stats: statsOf(big, big.length) });
    const aborting = w.abort();
    await writing.catch(() => undefined);
    await aborting;
    expect(fs.existsSync(w.tempPath)).toBe(false);
    expect(fs.existsSync(p)).toBe(false);
  });

  it("abortOpenDumpsSync removes the temporary files of every open writer, and only those", async () => {
    const done = path.join(dir, "done.arrow");
    await writeDump(done, [rowOf(TENSORS[0], 0)]);
    const w1 = await DumpWriter.open(path.join(dir, "one.arrow"), META);
    const w2 = await DumpWriter.open(path.join(dir, "sub", "two.arrow"), { ...META, kind: "inputs" });
    await w1.write(rowOf(TENSORS[1], 0));
    expect(fs.existsSync(w1.tempPath) && fs.existsSync(w2.tempPath)).toBe(true);
    abortOpenDumpsSync(); // synchronous: gone right away
    expect(fs.existsSync(w1.tempPath)).toBe(false);
    expect(fs.existsSync(w2.tempPath)).toBe(false);
    expect(fs.existsSync(w1.path)).toBe(false);
    expect(fs.existsSync(done)).toBe(true);
    await expect(w1.write(rowOf(TENSORS[0], 1))).rejects.toThrow(/aborted/);
    await expect(w2.close()).rejects.toThrow(/aborted/);
    await w1.abort();
    expect(fs.readdirSync(dir).sort()).toEqual(["done.arrow", "sub"]);
    expect(fs.readdirSync(path.join(dir, "sub"))).toEqual([]);
  });

  it("abortOpenDumpsSync during DumpWriter.open leaves no file behind", async () => {
    const p = path.join(dir, "opening", "o.arrow");
    const opening = DumpWriter.open(p, META);
    abortOpenDumpsSync();
    await expect(opening).rejects.toThrow(/aborted/);
    expect(fs.readdirSync(path.join(dir, "opening"))).toEqual([]);
  });
});

// --- malformed files ---------------------------------------------------------------------

describe("malformed files give one-line UserErrors", () => {
  it("missing file", async () => {
    const p = path.join(dir, "nope.arrow");
    await expectUserError(p, /no such file; pass a dump written by `trt-debug run --save-outputs`/);
  });

  it("a directory", async () => {
    await expectUserError(dir, /is a directory/);
  });

  it("empty file", async () => {
    const p = path.join(dir, "empty.arrow");
    fs.writeFileSync(p, "");
    await expectUserError(p, /not a complete trt-debug Arrow dump/);
  });

  it("random bytes", async () => {
    const p = path.join(dir, "random.arrow");
    const b = Buffer.alloc(4096);
    for (let i = 0; i < b.length; i++) b[i] = (i * 2654435761) >>> 24;
    fs.writeFileSync(p, b);
    await expectUserError(p, /not a complete trt-debug Arrow dump \(not an Arrow IPC file\)/);
  });

  it("random bytes behind a valid magic (head and tail)", async () => {
    const p = path.join(dir, "fake.arrow");
    const b = Buffer.alloc(4096, 0x5a);
    b.write("ARROW1", 0);
    b.write("ARROW1", b.length - 6);
    fs.writeFileSync(p, b);
    await expectUserError(p, /not a complete trt-debug Arrow dump/);
  });

  it("truncated real dumps, at many points", async () => {
    const full = path.join(dir, "full.arrow");
    await writeDump(full, TENSORS.map((t, i) => rowOf(t, i)));
    const bytes = fs.readFileSync(full);
    const cuts = [1, 6, 8, 100, Math.floor(bytes.length / 2), bytes.length - 11, bytes.length - 6, bytes.length - 1];
    for (const cut of cuts) {
      const p = path.join(dir, `trunc-${cut}.arrow`);
      fs.writeFileSync(p, bytes.subarray(0, cut));
      await expectUserError(p, /not a complete trt-debug Arrow dump/);
    }
  });

  it("a killed writer's temporary file is not a complete dump", async () => {
    const p = path.join(dir, "killed.arrow");
    const w = await DumpWriter.open(p, META);
    await w.write(rowOf(TENSORS[0], 0));
    const copy = path.join(dir, "killed-copy.arrow");
    fs.copyFileSync(w.tempPath, copy);
    await w.abort();
    await expectUserError(copy, /not a complete trt-debug Arrow dump \(truncated: no footer\)/);
  });

  it("an Arrow stream (not file) format", async () => {
    const p = path.join(dir, "stream.arrow");
    fs.writeFileSync(p, tableToIPC(tableFromArrays({ a: Float32Array.of(1) }), "stream"));
    await expectUserError(p, /Arrow IPC stream, not an Arrow IPC file/);
  });

  it("an Arrow file with another format key, or none", async () => {
    const other = path.join(dir, "other.arrow");
    const t = tableFromArrays({ a: Float32Array.of(1) });
    t.schema.metadata.set("format", "someone-else/v3");
    fs.writeFileSync(other, tableToIPC(t, "file"));
    const err = await expectUserError(other, /format "someone-else\/v3" is not "trt-debug\/dump@1"/);
    expect(err.exitCode).toBe(2);

    const none = path.join(dir, "none.arrow");
    fs.writeFileSync(none, tableToIPC(tableFromArrays({ a: Float32Array.of(1) }), "file"));
    await expectUserError(none, /without a trt-debug format key/);
  });

  it("a newer trt-debug format version asks for an upgrade", async () => {
    const p = path.join(dir, "future.arrow");
    await writeDump(p, [rowOf(TENSORS[0], 0)]);
    const table = tableFromIPC(fs.readFileSync(p));
    table.schema.metadata.set("format", "trt-debug/dump@2");
    fs.writeFileSync(p, tableToIPC(table, "file"));
    await expectUserError(p, /newer trt-debug; upgrade/);
  });

  it("the right format key with missing columns", async () => {
    const p = path.join(dir, "cols.arrow");
    const t = tableFromArrays({ order: Float32Array.of(1) });
    t.schema.metadata.set("format", "trt-debug/dump@1");
    fs.writeFileSync(p, tableToIPC(t, "file"));
    await expectUserError(p, /column "order" has type|column ".*" is missing/);
  });

  it("openDump with an expected kind rejects the other kind", async () => {
    const p = path.join(dir, "in.arrow");
    await writeDump(p, [rowOf(TENSORS[0], 0)], { ...META, kind: "inputs" });
    await expect(openDump(p, "dump")).rejects.toThrow(/is an inputs file/);
    const r = await openDump(p, "inputs");
    expect(r.meta.kind).toBe("inputs");
    await r.close();
  });
});

// --- the direct IPC encoder against apache-arrow's writer ---------------------------------

/** The file apache-arrow's RecordBatchFileWriter writes for these record batches (one per group). */
function referenceFile(meta: DumpMeta, groups: DumpRow[][]): Uint8Array {
  const md = new Map<string, string>([
    ["format", meta.kind === "dump" ? "trt-debug/dump@1" : "trt-debug/inputs@1"],
    ["model", meta.model],
    ["precision", meta.precision],
  ]);
  for (const k of Object.keys(meta.extra).sort()) md.set(k, meta.extra[k]);
  const schema = dumpSchema(md);
  const w = new RecordBatchFileWriter();
  w.reset(undefined, schema);
  for (const g of groups) w.write(referenceRecordBatch(schema, g));
  w.close();
  return w.toUint8Array(true);
}

function expectSameBytes(got: Uint8Array, want: Uint8Array): void {
  expect(got.byteLength).toBe(want.byteLength);
  let first = -1;
  for (let i = 0; i < got.byteLength && first < 0; i++) if (got[i] !== want[i]) first = i;
  expect(first).toBe(-1);
}

function mediumRow(i: number, floats: number): DumpRow {
  const v = Float32Array.from({ length: floats }, (_, k) => k * 0.25 - i);
  return rowOf({ name: `m${i}`, dtype: "float32", dims: [floats], data: v }, i);
}

describe("IPC encoding", () => {
  it("single rows: byte-identical to apache-arrow's RecordBatchFileWriter", async () => {
    const rows = [...TENSORS.map((t, i) => rowOf(t, i)), mediumRow(99, 262144), mediumRow(100, 16385)];
    const p = path.join(dir, "singles.arrow");
    await writeDump(p, rows);
    expectSameBytes(fs.readFileSync(p), referenceFile(META, rows.map((r) => [r])));
  });

  it("groups with nulls, strings and values large enough to grow buffers: byte-identical", async () => {
    const strRow = (i: number): DumpRow =>
      rowOf({ name: `s${i}`, dtype: "string", dims: [300], data: Array.from({ length: 300 }, (_, k) => (k % 7 ? `v${k}` : `é🙂${"x".repeat(k)}`)) }, i);
    const groups: DumpRow[][] = [
      TENSORS.map((t, i) => rowOf(t, i)),
      // copied (< 64 KiB) and referenced (>= 64 KiB) values mixed in one batch, several MB
      Array.from({ length: 60 }, (_, i) => mediumRow(i, i % 3 === 0 ? 30000 : 10000 + i)),
      Array.from({ length: 40 }, (_, i) => strRow(i)),
      Array.from({ length: 9 }, (_, i) => ({ ...mediumRow(i, 3), values: null, stats: { ...statsOf(null, 3), min: i % 2 ? null : -1 } })),
      [rowOf({ name: "lone", dtype: "string", dims: [2], data: ["\ud800x", "a"] }, 0)],
    ];
    const p = path.join(dir, "groups.arrow");
    const w = await DumpWriter.open(p, META);
    for (const g of groups) await w.writeGroup(g);
    await w.close();
    // A lone surrogate is written as U+FFFD, as TextEncoder (and apache-arrow) write it.
    expectSameBytes(fs.readFileSync(p), referenceFile(META, groups));
    const { rows } = await readAll(p);
    expect(rows.length).toBe(groups.reduce((s, g) => s + g.length, 0));
    expect(rows[rows.length - 1].strValues).toEqual(["\ufffdx", "a"]);
  });

  it("writes issued without waiting are written together, one record batch each, in call order", async () => {
    const rows = [
      ...Array.from({ length: 300 }, (_, i) => rowOf(TENSORS[i % TENSORS.length], i)),
      mediumRow(300, 262144),
      mediumRow(301, 5),
    ];
    const p = path.join(dir, "concurrent.arrow");
    const w = await DumpWriter.open(p, META);
    const settled: number[] = [];
    const writes = rows.map((r, i) => w.write(r).then(() => settled.push(i)));
    writes.push(w.writeGroup([]).then(() => settled.push(-1)));
    await Promise.all(writes);
    expect(settled.slice(0, rows.length)).toEqual(rows.map((_, i) => i)); // resolved in order
    expect(w.numRows).toBe(rows.length);
    expect(fs.statSync(w.tempPath).size).toBe(w.bytes); // all of it in the file, nothing held back
    await w.close();
    expectSameBytes(fs.readFileSync(p), referenceFile(META, rows.map((r) => [r])));
    expect(tableFromIPC(fs.readFileSync(p)).batches.length).toBe(rows.length);
  });

  it("a write issued after close() is rejected; those before it are in the file", async () => {
    const p = path.join(dir, "order.arrow");
    const w = await DumpWriter.open(p, META);
    const a = w.write(rowOf(TENSORS[0], 0));
    const b = w.write(rowOf(TENSORS[1], 1));
    const closing = w.close();
    const late = w.write(rowOf(TENSORS[2], 2));
    await expect(a).resolves.toBeUndefined();
    await expect(b).resolves.toBeUndefined();
    await expect(closing).resolves.toBeUndefined();
    await expect(late).rejects.toThrow(/closed/);
    const { rows } = await readAll(p);
    expect(rows.map((r) => r.tensor)).toEqual([TENSORS[0].name, TENSORS[1].name]);
  });

  it("queued writes behind an abort are rejected and leave nothing", async () => {
    const p = path.join(dir, "queued-abort.arrow");
    const w = await DumpWriter.open(p, META);
    const writes = Array.from({ length: 20 }, (_, i) => w.write(rowOf(TENSORS[i % TENSORS.length], i)));
    const aborting = w.abort();
    const results = await Promise.allSettled(writes);
    await aborting;
    for (const r of results) if (r.status === "rejected") expect(String(r.reason)).toMatch(/aborted/);
    expect(fs.existsSync(w.tempPath)).toBe(false);
    expect(fs.existsSync(p)).toBe(false);
  });
});
