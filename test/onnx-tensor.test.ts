import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { TensorProtoSchema, TensorProto_DataLocation, TensorProto_DataType, type TensorProto } from "onnx-buf";
import { UserError } from "../src/core/errors.js";
import { userError } from "./helpers.js";
import { hostTensorByteLength, hostToTensorProto, readTensorPb, tensorProtoToHost } from "../src/onnx/tensor.js";
import type { DType, HostTensor, TensorData } from "../src/core/host-tensor.js";

import { ONNX_TESTDATA as TESTDATA, SKIP_TESTDATA } from "./testdata.js";

function bytesOf(d: TensorData): Uint8Array {
  if (Array.isArray(d)) throw new Error("strings");
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "trt-debug-tensor-"));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(SKIP_TESTDATA)("libonnx-testdata", () => {
  it("decodes every input_*.pb / output_*.pb of every test", () => {
    const testDirs = new Set<string>();
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) {
          if (e.name.startsWith("test_data_set_")) testDirs.add(d);
          walk(p);
        } else if (/^(input|output)_\d+\.pb$/.test(e.name)) files.push(p);
      }
    };
    walk(TESTDATA);
    expect(testDirs.size).toBeGreaterThan(1000);

    let decoded = 0;
    const dtypes = new Map<DType, number>();
    const unexpected: string[] = [];
    const nonTensor: string[] = [];
    for (const f of files) {
      try {
        const t = readTensorPb(f);
        decoded++;
        dtypes.set(t.dtype, (dtypes.get(t.dtype) ?? 0) + 1);
        const n = t.dims.reduce((a, b) => a * b, 1);
        if (t.data.length !== n) unexpected.push(`${f}: ${t.data.length} values for dims [${t.dims}]`);
      } catch (e) {
        const msg = (e as Error).message;
        // The only files we do not decode: sequence / optional values (not tensors).
        if (e instanceof UserError && /holds an ONNX sequence\/optional value/.test(msg) && /(seq|opt)/.test(f)) {
          nonTensor.push(f);
        } else {
          unexpected.push(`${f}: ${msg}`);
        }
      }
    }
    expect(unexpected).toEqual([]);
    expect(decoded).toBeGreaterThan(1000);
    expect(decoded + nonTensor.length).toBe(files.length);
    expect(nonTensor.length).toBeLessThan(100);
    // The data covers these element types.
    for (const d of ["float32", "float16", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool", "string"] as DType[]) {
      expect(dtypes.get(d), d).toBeGreaterThan(0);
    }
  });

  it("decodes values correctly (test_abs, test_add, strings)", () => {
    const dir = `${TESTDATA}/node/test_abs/test_data_set_0`;
    const x = readTensorPb(`${dir}/input_0.pb`);
    const y = readTensorPb(`${dir}/output_0.pb`);
    expect(x.dtype).toBe("float32");
    expect(x.name).toBe("x");
    expect(x.dims).toEqual([3, 4, 5]);
    expect(Array.from(y.data as Float32Array)).toEqual(Array.from(x.data as Float32Array, Math.abs));

    const add = `${TESTDATA}/node/test_add/test_data_set_0`;
    const [a, b, c] = ["input_0", "input_1", "output_0"].map((f) => readTensorPb(`${add}/${f}.pb`)) as [HostTensor, HostTensor, HostTensor];
    const sum = (a.data as Float32Array).map((v, i) => Math.fround(v + (b.data as Float32Array)[i]!));
    expect(Array.from(c.data as Float32Array)).toEqual(Array.from(sum));

    const s = readTensorPb(`${TESTDATA}/node/test_cast_FLOAT_to_STRING/test_data_set_0/output_0.pb`);
    expect(s.dtype).toBe("string");
    expect(Array.isArray(s.data)).toBe(true);
    expect((s.data as string[]).every((v) => typeof v === "string" && v.length > 0)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------

function sample(dtype: DType, n: number): TensorData {
  let seed = 12345;
  const rnd = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed;
  };
  const fillBytes = (a: Exclude<TensorData, string[]>): Exclude<TensorData, string[]> => {
    const b = bytesOf(a);
    for (let i = 0; i < b.length; i++) b[i] = rnd() >>> 24;
    return a;
  };
  switch (dtype) {
    case "float32":
      return fillBytes(new Float32Array(n)); // arbitrary bit patterns incl. NaN payloads
    case "float64":
      return fillBytes(new Float64Array(n));
    case "float16":
    case "bfloat16":
    case "uint16":
      return fillBytes(new Uint16Array(n));
    case "int16":
      return fillBytes(new Int16Array(n));
    case "int32":
      return fillBytes(new Int32Array(n));
    case "uint32":
      return fillBytes(new Uint32Array(n));
    case "int64":
      return fillBytes(new BigInt64Array(n));
    case "uint64":
      return fillBytes(new BigUint64Array(n));
    case "int8":
      return fillBytes(new Int8Array(n));
    case "int4":
      return Int8Array.from({ length: n }, () => ((rnd() >>> 28) << 28) >> 28);
    case "uint4":
      return Uint8Array.from({ length: n }, () => rnd() >>> 28);
    case "bool":
      return Uint8Array.from({ length: n }, () => rnd() >>> 31);
    default:
      return fillBytes(new Uint8Array(n)); // uint8, float8*
  }
}

const NUMERIC: DType[] = [
  "float32", "float16", "bfloat16", "float64", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz",
  "int4", "uint4", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool",
];

describe("round trip host -> proto -> bytes -> proto -> host", () => {
  for (const dtype of NUMERIC) {
    it(`${dtype} is bit-exact (odd sizes, scalar, empty)`, () => {
      for (const dims of [[2, 3, 5], [7], [], [0, 4]]) {
        const n = dims.reduce((a, b) => a * b, 1);
        const h: HostTensor = { name: `t_${dtype}`, dtype, dims, data: sample(dtype, n) };
        const bin = toBinary(TensorProtoSchema, hostToTensorProto(h));
        const back = tensorProtoToHost(fromBinary(TensorProtoSchema, bin));
        expect(back.name).toBe(h.name);
        expect(back.dtype).toBe(dtype);
        expect(back.dims).toEqual(dims);
        expect(back.data.constructor).toBe(h.data.constructor);
        expect(Buffer.from(bytesOf(back.data)).equals(Buffer.from(bytesOf(h.data)))).toBe(true);
        if (dtype === "int4" || dtype === "uint4") {
          expect(fromBinary(TensorProtoSchema, bin).rawData.length).toBe(Math.ceil(n / 2));
        }
      }
    });
  }

  it("string round trip (UTF-8)", () => {
    const h: HostTensor = { name: "s", dtype: "string", dims: [2, 2], data: ["", "abc", "héllo ✓", "日本語"] };
    const back = tensorProtoToHost(fromBinary(TensorProtoSchema, toBinary(TensorProtoSchema, hostToTensorProto(h))));
    expect(back).toEqual(h);
    expect(hostTensorByteLength(h)).toBe(0 + 3 + 10 + 9); // é: 2 bytes, ✓ and each CJK char: 3
  });

  it("hostTensorByteLength", () => {
    expect(hostTensorByteLength({ name: "a", dtype: "float32", dims: [2, 3], data: new Float32Array(6) })).toBe(24);
    expect(hostTensorByteLength({ name: "a", dtype: "int64", dims: [3], data: new BigInt64Array(3) })).toBe(24);
    expect(hostTensorByteLength({ name: "a", dtype: "float16", dims: [3], data: new Uint16Array(3) })).toBe(6);
    expect(hostTensorByteLength({ name: "a", dtype: "int4", dims: [3], data: new Int8Array(3) })).toBe(3);
  });

  it("complex tensors are refused", () => {
    const e = userError(() => hostToTensorProto({ name: "c", dtype: "complex64", dims: [1], data: new Float32Array(2) }));
    expect(e.message).toMatch(/complex64/);
  });
});

describe("typed fields and raw_data", () => {
  const T = TensorProto_DataType;
  const mk = (init: Partial<TensorProto>): TensorProto => fromBinary(TensorProtoSchema, toBinary(TensorProtoSchema, create(TensorProtoSchema, init)));

  it("float_data, double_data, int64_data, uint64_data", () => {
    expect(tensorProtoToHost(mk({ dims: [3n], dataType: T.FLOAT, floatData: [1.5, -2, 0.1] })).data).toEqual(
      Float32Array.from([1.5, -2, 0.1]),
    );
    expect(tensorProtoToHost(mk({ dims: [2n], dataType: T.DOUBLE, doubleData: [0.1, -1e300] })).data).toEqual(
      Float64Array.from([0.1, -1e300]),
    );
    expect(tensorProtoToHost(mk({ dims: [2n], dataType: T.INT64, int64Data: [-(2n ** 63n), 2n ** 62n] })).data).toEqual(
      BigInt64Array.from([-(2n ** 63n), 2n ** 62n]),
    );
    expect(tensorProtoToHost(mk({ dims: [2n], dataType: T.UINT64, uint64Data: [2n ** 64n - 1n, 5n] })).data).toEqual(
      BigUint64Array.from([2n ** 64n - 1n, 5n]),
    );
    expect(tensorProtoToHost(mk({ dims: [2n], dataType: T.UINT32, uint64Data: [4294967295n, 7n] })).data).toEqual(
      Uint32Array.from([4294967295, 7]),
    );
  });

  it("int32_data carries int8/int16/uint8/uint16/bool/float16/bfloat16/float8/int4", () => {
    const h = (dataType: number, int32Data: number[], dims = [BigInt(int32Data.length)]): HostTensor =>
      tensorProtoToHost(mk({ dims, dataType, int32Data }));
    expect(h(T.INT8, [-128, 127, -1]).data).toEqual(Int8Array.from([-128, 127, -1]));
    expect(h(T.INT16, [-32768, 32767]).data).toEqual(Int16Array.from([-32768, 32767]));
    expect(h(T.UINT8, [0, 255]).data).toEqual(Uint8Array.from([0, 255]));
    expect(h(T.UINT16, [65535, 1]).data).toEqual(Uint16Array.from([65535, 1]));
    expect(h(T.BOOL, [1, 0, 1]).data).toEqual(Uint8Array.from([1, 0, 1]));
    const f16 = h(T.FLOAT16, [0x3c00, 0xfc00, 0x7e01]);
    expect(f16.dtype).toBe("float16");
    expect(f16.data).toEqual(Uint16Array.from([0x3c00, 0xfc00, 0x7e01]));
    expect(h(T.BFLOAT16, [0x3f80, 0xff80]).data).toEqual(Uint16Array.from([0x3f80, 0xff80]));
    expect(h(T.FLOAT8E4M3FN, [0x7e, 0x38]).data).toEqual(Uint8Array.from([0x7e, 0x38]));
    // int4: two elements per int32, first in the low nibble; 5 elements -> 3 values.
    const i4 = h(T.INT4, [0x7f, 0x81, 0x0e], [5n]);
    expect(i4.dtype).toBe("int4");
    expect(i4.data).toEqual(Int8Array.from([-1, 7, 1, -8, -2]));
    const u4 = h(T.UINT4, [0x7f, 0x81, 0x0e], [5n]);
    expect(u4.data).toEqual(Uint8Array.from([15, 7, 1, 8, 14]));
  });

  it("int4/uint4 raw_data nibbles", () => {
    const i4 = tensorProtoToHost(mk({ dims: [3n], dataType: T.INT4, rawData: Uint8Array.from([0x8f, 0x07]) }));
    expect(i4.data).toEqual(Int8Array.from([-1, -8, 7]));
  });

  it("string_data is decoded as UTF-8", () => {
    const enc = new TextEncoder();
    const t = tensorProtoToHost(mk({ dims: [2n], dataType: T.STRING, stringData: [enc.encode("a"), enc.encode("ü✓")] }));
    expect(t.data).toEqual(["a", "ü✓"]);
  });

  it("unaligned raw_data is copied into an aligned array", () => {
    const values = Float64Array.from([1.25, -3, Math.PI]);
    let unaligned = 0;
    for (let len = 0; len < 8; len++) {
      const bin = toBinary(
        TensorProtoSchema,
        create(TensorProtoSchema, { name: "x".repeat(len), dims: [3n], dataType: T.DOUBLE, rawData: new Uint8Array(values.buffer.slice(0)) }),
      );
      const p = fromBinary(TensorProtoSchema, bin);
      if (p.rawData.byteOffset % 8 !== 0) unaligned++;
      const h = tensorProtoToHost(p);
      expect(h.data).toEqual(values);
      expect((h.data as Float64Array).byteOffset % 8).toBe(0);
    }
    expect(unaligned).toBeGreaterThan(0);
  });

  it("length mismatches, missing data and unsupported types are UserErrors", () => {
    expect(userError(() => tensorProtoToHost(mk({ name: "w", dims: [3n], dataType: T.FLOAT, rawData: new Uint8Array(8) }), { fileName: "m.onnx" })).message).toMatch(
      /m\.onnx: tensor 'w': raw_data has 8 bytes, but float32 dims \[3\] need 12/,
    );
    expect(userError(() => tensorProtoToHost(mk({ name: "w", dims: [3n], dataType: T.FLOAT, floatData: [1] }))).message).toMatch(/float_data has 1 values/);
    expect(userError(() => tensorProtoToHost(mk({ name: "w", dims: [3n], dataType: T.FLOAT }))).message).toMatch(/no data/);
    expect(userError(() => tensorProtoToHost(mk({ name: "w", dims: [1n], dataType: T.FLOAT, int64Data: [1n] }))).message).toMatch(/not in raw_data or the field/);
    expect(userError(() => tensorProtoToHost(mk({ name: "c", dims: [1n], dataType: T.COMPLEX64, floatData: [1, 2] }))).message).toMatch(
      /tensor 'c' has unsupported element type COMPLEX64/,
    );
    expect(userError(() => tensorProtoToHost(mk({ name: "f4", dims: [2n], dataType: T.FLOAT4E2M1, rawData: new Uint8Array(1) }))).message).toMatch(
      /unsupported element type FLOAT4E2M1/,
    );
    expect(userError(() => tensorProtoToHost(mk({ name: "s", dims: [1n], dataType: T.STRING, rawData: new Uint8Array(1) }))).message).toMatch(/string_data/);
    expect(userError(() => tensorProtoToHost(mk({ name: "n", dims: [-1n], dataType: T.FLOAT }))).message).toMatch(/invalid dimension -1/);
  });
});

describe("external data", () => {
  const T = TensorProto_DataType;
  const ext = (name: string, entries: Record<string, string>, dims: bigint[] = [4n], dataType: number = T.FLOAT): TensorProto =>
    create(TensorProtoSchema, {
      name,
      dims,
      dataType,
      dataLocation: TensorProto_DataLocation.EXTERNAL,
      externalData: Object.entries(entries).map(([key, value]) => ({ key, value })),
    });

  let dir: string;
  const a = Float32Array.from([1, 2, 3, 4]);
  const b = BigInt64Array.from([-1n, 2n ** 40n]);
  beforeAll(() => {
    dir = path.join(tmp, "ext");
    fs.mkdirSync(path.join(dir, "sub"), { recursive: true });
    // [3 bytes junk][a: 16 bytes @3][pad to 4096][b: 16 bytes @4096][tail junk]
    const buf = Buffer.alloc(4096 + 16 + 5, 0xee);
    Buffer.from(a.buffer).copy(buf, 3);
    Buffer.from(b.buffer).copy(buf, 4096);
    fs.writeFileSync(path.join(dir, "sub", "weights.bin"), buf);
    fs.writeFileSync(path.join(dir, "exact.bin"), Buffer.from(a.buffer));
  });

  it("reads data at offsets (positional reads)", () => {
    const ta = tensorProtoToHost(ext("a", { location: "sub/weights.bin", offset: "3", length: "16" }), { baseDir: dir });
    expect(ta.data).toEqual(a);
    const tb = tensorProtoToHost(ext("b", { location: "sub/weights.bin", offset: "4096", length: "16" }, [2n], T.INT64), { baseDir: dir });
    expect(tb.data).toEqual(b);
    // No length: the rest of the file.
    expect(tensorProtoToHost(ext("a", { location: "exact.bin" }), { baseDir: dir }).data).toEqual(a);
  });

  it("readTensorPb resolves locations relative to the .pb file", () => {
    const pb = path.join(dir, "t.pb");
    fs.writeFileSync(pb, toBinary(TensorProtoSchema, ext("a", { location: "sub/weights.bin", offset: "3", length: "16" })));
    expect(readTensorPb(pb).data).toEqual(a);
  });

  it("missing file names the tensor, the path and the model file", () => {
    const e = userError(() =>
      tensorProtoToHost(ext("w1", { location: "nope.bin" }), { baseDir: dir, fileName: "model.onnx" }),
    );
    expect(e.message).toContain("'w1'");
    expect(e.message).toContain(path.join(dir, "nope.bin"));
    expect(e.message).toContain("model.onnx");
  });

  it("offset/length outside the file, wrong length, bad numbers", () => {
    expect(userError(() => tensorProtoToHost(ext("w", { location: "exact.bin", offset: "8", length: "16" }), { baseDir: dir })).message).toMatch(
      /outside .*exact\.bin \(16 bytes\)/,
    );
    expect(userError(() => tensorProtoToHost(ext("w", { location: "exact.bin", offset: "100" }), { baseDir: dir })).message).toMatch(/outside/);
    expect(userError(() => tensorProtoToHost(ext("w", { location: "exact.bin", length: "8" }), { baseDir: dir })).message).toMatch(/need 16/);
    expect(userError(() => tensorProtoToHost(ext("w", { location: "exact.bin", offset: "-4" }), { baseDir: dir })).message).toMatch(/offset '-4'/);
    expect(userError(() => tensorProtoToHost(ext("w", { offset: "0" }), { baseDir: dir })).message).toMatch(/without a 'location'/);
  });
});

describe("readTensorPb errors", () => {
  it("missing file, directory, garbage, empty, not a tensor", () => {
    expect(userError(() => readTensorPb(path.join(tmp, "missing.pb"))).message).toMatch(/missing\.pb: no such file/);
    expect(userError(() => readTensorPb(tmp)).message).toMatch(/is a directory/);
    const garbage = path.join(tmp, "garbage.pb");
    fs.writeFileSync(garbage, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(userError(() => readTensorPb(garbage)).message).toMatch(/garbage\.pb: not an ONNX TensorProto/);
    const empty = path.join(tmp, "empty.pb");
    fs.writeFileSync(empty, "");
    expect(userError(() => readTensorPb(empty)).message).toMatch(/empty\.pb: not an ONNX TensorProto \(no data_type\)/);
  });

  it.skipIf(SKIP_TESTDATA)("truncated tensor, sequence value (libonnx-testdata)", () => {
    const truncated = path.join(tmp, "trunc.pb");
    const full = fs.readFileSync(`${TESTDATA}/node/test_abs/test_data_set_0/input_0.pb`);
    fs.writeFileSync(truncated, full.subarray(0, full.length - 10));
    expect(userError(() => readTensorPb(truncated)).message).toMatch(/trunc\.pb/);
    const seq = `${TESTDATA}/node/test_sequence_insert_at_back/test_data_set_0/input_0.pb`;
    expect(userError(() => readTensorPb(seq)).message).toMatch(/holds an ONNX sequence\/optional value/);
  });
});
