/**
 * TensorProto <-> HostTensor conversion.
 *
 * Decoding handles every storage form the ONNX spec allows for the element types trt-debug
 * knows: `raw_data` (fixed-width little-endian), the typed repeated fields (`float_data`,
 * `int32_data`, `int64_data`, `uint64_data`, `double_data`, `string_data`) and external data
 * (`data_location: EXTERNAL` with `location`/`offset`/`length` relative to the model's directory).
 *
 * Host layout (see src/types.ts): float16/bfloat16 are Uint16Array bit patterns, float8 types
 * are Uint8Array bit patterns, int4/uint4 are unpacked to one element per byte (Int8Array /
 * Uint8Array, dtype stays int4/uint4), bool is a Uint8Array of 0/1, int64 BigInt64Array,
 * uint64 BigUint64Array, string string[].
 *
 * Every problem caused by the file (wrong length, missing external file, unsupported type)
 * is a one-line UserError naming the tensor and the file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { create, fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import {
  TensorProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType,
  type TensorProto,
} from "onnx-buf";
import { UserError } from "../core/errors.js";
import { readFileChecked } from "../io/safe-read.js";
import { isApprovedOutside, resolveExternalLocation, tempFolder } from "./external-data.js";
import type { DType, HostTensor, TensorData } from "../core/host-tensor.js";
import { normalizeBools, packNibbles, storeNumbers, swapBytes, unpackNibbles } from "../numeric/index.js";
import { allocateHost, DTYPES, dtypeToOnnx, hostElementSize, onnxToDType } from "../core/dtype.js";

export { hostElementSize };

export interface TensorDecodeOptions {
  /** Directory external-data `location`s are relative to (default: the directory of `fileName`, else the cwd). */
  baseDir?: string;
  /** File the tensor came from (model or .pb), used in error messages. */
  fileName?: string;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8Decoder = new TextDecoder("utf-8");
const utf8Encoder = new TextEncoder();


/**
 * Bytes of the host representation: the typed array's byteLength (int4/uint4 count one byte per
 * element, as held on the host), or for strings the total UTF-8 length of all elements.
 */
export function hostTensorByteLength(h: HostTensor): number {
  if (Array.isArray(h.data)) {
    let n = 0;
    for (const s of h.data) n += utf8Encoder.encode(s).length;
    return n;
  }
  return (h.data as Exclude<TensorData, string[]>).byteLength;
}

/** Bytes the elements occupy in `raw_data` (int4/uint4 packed two per byte). */
function rawByteLength(d: DType, n: number): number {
  if (d === "int4" || d === "uint4") return Math.ceil(n / 2);
  return n * hostElementSize(d);
}

function label(t: TensorProto, opts: TensorDecodeOptions): string {
  const name = t.name ? `tensor '${t.name}'` : "unnamed tensor";
  return opts.fileName ? `${opts.fileName}: ${name}` : name;
}

function dimsOf(t: TensorProto, opts: TensorDecodeOptions): number[] {
  return t.dims.map((d) => {
    const n = Number(d);
    if (d < 0n || !Number.isSafeInteger(n)) {
      throw new UserError(`${label(t, opts)} has invalid dimension ${d} in dims [${t.dims.join(",")}]; the file is corrupt`);
    }
    return n;
  });
}

/** A typed array of dtype `d` and `n` elements viewing (or copying, when unaligned / big-endian host) `bytes`. */
function fromLittleEndianBytes(d: DType, bytes: Uint8Array, n: number): Exclude<TensorData, string[]> {
  const size = hostElementSize(d);
  let buf = bytes;
  if (size > 1 && (bytes.byteOffset % size !== 0 || !LITTLE_ENDIAN_HOST)) {
    buf = new Uint8Array(bytes.byteLength);
    buf.set(bytes);
    if (!LITTLE_ENDIAN_HOST) swapBytes(buf, size);
  }
  const { buffer, byteOffset } = buf;
  const info = DTYPES[d];
  if (info.host === null) throw new Error(`fromLittleEndianBytes: no host layout for ${d}`);
  if (info.bits === 4) return unpackNibbles(bytes, n, d === "int4");
  return new info.host(buffer as ArrayBuffer, byteOffset, n);
}

function typeName(t: number): string {
  return TensorProto_DataType[t] ?? `data_type ${t}`;
}

/**
 * Decode a TensorProto to a HostTensor. `opts.baseDir` is the directory external data is
 * relative to; `opts.fileName` names the source file in error messages.
 */
export function tensorProtoToHost(t: TensorProto, opts: TensorDecodeOptions = {}): HostTensor {
  const dtype = onnxToDType(t.dataType as TensorProto_DataType);
  if (dtype === null || dtype === "complex64" || dtype === "complex128") {
    throw new UserError(
      `${label(t, opts)} has unsupported element type ${typeName(t.dataType)}; trt-debug handles float/int/bool/string tensors only`,
    );
  }
  const dims = dimsOf(t, opts);
  let n = 1;
  for (const d of dims) n *= d;
  if (!Number.isSafeInteger(n)) throw new UserError(`${label(t, opts)} has too many elements (dims [${dims.join(",")}])`);
  const name = t.name;

  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) {
    if (dtype === "string") throw new UserError(`${label(t, opts)}: string tensors cannot use external data; the file is invalid`);
    const bytes = readExternal(t, opts, rawByteLength(dtype, n));
    return { name, dtype, dims, data: fromLittleEndianBytes(dtype, bytes, n) };
  }

  if (dtype === "string") {
    if (t.rawData.length > 0) {
      throw new UserError(`${label(t, opts)}: string tensor stored in raw_data; ONNX requires string_data`);
    }
    checkCount(t, opts, "string_data", t.stringData.length, n);
    return { name, dtype, dims, data: t.stringData.map((b) => utf8Decoder.decode(b)) };
  }

  if (t.rawData.length === 0 && n > 0 && !hasTypedData(t)) {
    throw new UserError(`${label(t, opts)} has dims [${dims.join(",")}] but no data; the file is truncated or corrupt`);
  }
  if (t.rawData.length > 0 || !hasTypedData(t)) {
    const want = rawByteLength(dtype, n);
    if (t.rawData.length !== want) {
      throw new UserError(
        `${label(t, opts)}: raw_data has ${t.rawData.length} bytes, but ${dtype} dims [${dims.join(",")}] need ${want}; the file is truncated or corrupt`,
      );
    }
    return { name, dtype, dims, data: fromLittleEndianBytes(dtype, t.rawData, n) };
  }

  return { name, dtype, dims, data: fromTypedFields(t, opts, dtype, n) };
}

function hasTypedData(t: TensorProto): boolean {
  return (
    t.floatData.length > 0 ||
    t.int32Data.length > 0 ||
    t.int64Data.length > 0 ||
    t.uint64Data.length > 0 ||
    t.doubleData.length > 0 ||
    t.stringData.length > 0
  );
}

function checkCount(t: TensorProto, opts: TensorDecodeOptions, field: string, got: number, want: number): void {
  if (got !== want) {
    throw new UserError(
      `${label(t, opts)}: ${field} has ${got} values, but dims [${t.dims.join(",")}] need ${want}; the file is truncated or corrupt`,
    );
  }
}

function fromTypedFields(t: TensorProto, opts: TensorDecodeOptions, d: DType, n: number): Exclude<TensorData, string[]> {
  const wrongField = (): never => {
    throw new UserError(
      `${label(t, opts)}: ${d} data is not in raw_data or the field ONNX specifies for it; the file is invalid`,
    );
  };
  // The field is the dtype table's (core/dtype.ts protoField); the cases below are the
  // conversions that are not a plain typed-array copy of it.
  const field = DTYPES[d].protoField;
  if (field === null) throw new Error(`fromTypedFields: unhandled ${d}`);
  const src: readonly (number | bigint)[] = t[field];
  if (src.length === 0) wrongField();
  const packed = DTYPES[d].bits === 4;
  checkCount(t, opts, field.replace(/Data$/, "_data"), src.length, packed ? Math.ceil(n / 2) : n);
  if (packed) return unpackNibbles(src as readonly number[], n, d === "int4");
  if (d === "bool") return Uint8Array.from(src as readonly number[], (v) => (v !== 0 ? 1 : 0));
  if (d === "uint64") return BigUint64Array.from(src as readonly bigint[], (v) => BigInt.asUintN(64, v));
  if (d === "uint32") return Uint32Array.from(src as readonly bigint[], (v) => Number(BigInt.asUintN(32, v)));
  // int32_data into int16/int8/uint16/uint8 arrays is modular: the low bits (the bit pattern of float16/bfloat16/float8).
  return (DTYPES[d].host as { from(a: ArrayLike<number | bigint>): Exclude<TensorData, string[]> }).from(src);
}

/** Where the external bytes of `t` lie: the resolved file, offset and length (checked against the file and `want`). */
export interface ExternalSpan {
  file: string;
  offset: number;
  length: number;
}

/**
 * Open the external data of `t` and check its location, offset and length (`want` bytes).
 * Returns the open descriptor (the caller closes it) and the span.
 */
function openExternal(t: TensorProto, opts: TensorDecodeOptions, want: number): ExternalSpan & { fd: number } {
  const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
  const where = opts.fileName ?? "the model";
  const loc = kv.get("location");
  if (!loc) throw new UserError(`${label(t, opts)} has external data without a 'location' entry; the file is invalid`);
  const temp = tempFolder(t);
  const baseDir = temp ?? opts.baseDir ?? (opts.fileName ? path.dirname(path.resolve(opts.fileName)) : process.cwd());
  const file = resolveExternalLocation(loc, baseDir, { label: where, tensor: t.name }, temp !== undefined || isApprovedOutside(t));
  const parseNum = (key: string): number | undefined => {
    const v = kv.get(key);
    if (v === undefined) return undefined;
    const x = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(x)) {
      throw new UserError(`${label(t, opts)}: external data ${key} '${v}' is not a non-negative integer; the file is invalid`);
    }
    return x;
  };
  const offset = parseNum("offset") ?? 0;
  const lengthEntry = parseNum("length");

  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      throw new UserError(
        `external data for tensor '${t.name}' not found: ${file} (location '${loc}' in ${where}); keep the data file next to the model`,
      );
    }
    throw new UserError(`external data for tensor '${t.name}': cannot read ${file} (${code ?? String(e)}), referenced by ${where}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      throw new UserError(`external data for tensor '${t.name}': ${file} is not a regular file (location '${loc}' in ${where})`);
    }
    const size = st.size;
    const length = lengthEntry ?? size - offset;
    if (offset > size || length < 0 || offset + length > size) {
      throw new UserError(
        `external data for tensor '${t.name}': offset ${offset} + length ${lengthEntry ?? "(rest)"} is outside ${file} (${size} bytes), referenced by ${where}; the data file is truncated or belongs to another model`,
      );
    }
    if (length !== want) {
      throw new UserError(
        `external data for tensor '${t.name}': ${length} bytes at offset ${offset} in ${file}, but its dtype and dims need ${want} (${where})`,
      );
    }
    return { fd, file, offset, length };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** Read `length` bytes at `offset` of an open file into `out` (from `at`), or a UserError naming the tensor. */
function readSpan(fd: number, out: Uint8Array, at: number, length: number, offset: number, what: { tensor: string; file: string; where: string }): void {
  let done = 0;
  while (done < length) {
    const r = fs.readSync(fd, out, at + done, length - done, offset + done);
    if (r <= 0) throw new UserError(`external data for tensor '${what.tensor}': unexpected end of ${what.file} (${what.where})`);
    done += r;
  }
}

/** Read exactly the external bytes of `t` (positional read of `length` bytes at `offset`). */
function readExternal(t: TensorProto, opts: TensorDecodeOptions, want: number): Uint8Array {
  const { fd, file, offset, length } = openExternal(t, opts, want);
  try {
    const out = new Uint8Array(length);
    readSpan(fd, out, 0, length, offset, { tensor: t.name, file, where: opts.fileName ?? "the model" });
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** The element count and byte length a numeric TensorProto's dims and type need. */
function tensorSize(t: TensorProto, opts: TensorDecodeOptions): { dtype: DType; dims: number[]; n: number; bytes: number } {
  const dtype = onnxToDType(t.dataType as TensorProto_DataType);
  if (dtype === null || dtype === "string" || dtype === "complex64" || dtype === "complex128") {
    throw new UserError(`${label(t, opts)} has element type ${typeName(t.dataType)}, which cannot be read in pieces`);
  }
  const dims = dimsOf(t, opts);
  let n = 1;
  for (const d of dims) n *= d;
  return { dtype, dims, n, bytes: rawByteLength(dtype, n) };
}

/**
 * The checked span of an external-data tensor (file, offset, length), for readers that do not
 * want the whole tensor in memory: `readExternalChunks` or a copy of the bytes.
 */
export function externalSpan(t: TensorProto, opts: TensorDecodeOptions = {}): ExternalSpan {
  const { fd, file, offset, length } = openExternal(t, opts, tensorSize(t, opts).bytes);
  fs.closeSync(fd);
  return { file, offset, length };
}

/**
 * Visit the external data of a float32 tensor `t` in pieces of at most `chunkElements`
 * elements (in order, as little-endian-decoded Float32Arrays valid during the call only), so
 * a transform of a tensor larger than memory allows needs one piece at a time.
 */
export function readExternalFloat32Chunks(t: TensorProto, opts: TensorDecodeOptions, chunkElements: number, visit: (piece: Float32Array) => void): void {
  readExternalChunks(t, opts, chunkElements, (piece, dtype) => {
    if (dtype !== "float32") throw new Error(`readExternalFloat32Chunks: tensor '${t.name}' is ${dtype}`);
    visit(piece as Float32Array);
  });
}

/**
 * Visit the external data of tensor `t` (a numeric type of at least 8 bits per element) in
 * pieces of at most `chunkElements` elements, in order, each decoded to its host layout
 * (float16/bfloat16: Uint16Array bit patterns) and valid during the call only.
 */
export function readExternalChunks(t: TensorProto, opts: TensorDecodeOptions, chunkElements: number, visit: (piece: Exclude<TensorData, string[]>, dtype: DType) => void): void {
  const sz = tensorSize(t, opts);
  const size = sz.n > 0 ? sz.bytes / sz.n : 1;
  if (!Number.isInteger(size)) throw new Error(`readExternalChunks: tensor '${t.name}' is ${sz.dtype} (sub-byte elements)`);
  const { fd, file, offset, length } = openExternal(t, opts, sz.bytes);
  try {
    const step = Math.max(1, Math.floor(chunkElements)) * size;
    const buf = new Uint8Array(Math.min(step, length));
    for (let at = 0; at < length; at += step) {
      const len = Math.min(step, length - at);
      readSpan(fd, buf, 0, len, offset + at, { tensor: t.name, file, where: opts.fileName ?? "the model" });
      visit(fromLittleEndianBytes(sz.dtype, buf.subarray(0, len), len / size), sz.dtype);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Encode a HostTensor as a TensorProto: raw_data (little-endian) for numeric types, string_data for strings. */
export function hostToTensorProto(h: HostTensor): TensorProto {
  if (h.dtype === "complex64" || h.dtype === "complex128") {
    throw new UserError(`tensor '${h.name}': ${h.dtype} tensors are not supported`);
  }
  const t = create(TensorProtoSchema, {
    name: h.name,
    dims: h.dims.map((d) => BigInt(d)),
    dataType: dtypeToOnnx(h.dtype),
  });
  if (h.dtype === "string") {
    t.stringData = (h.data as string[]).map((s) => utf8Encoder.encode(s) as Uint8Array<ArrayBuffer>);
    return t;
  }
  const data = h.data as Exclude<TensorData, string[]>;
  if (h.dtype === "int4" || h.dtype === "uint4") {
    t.rawData = packNibbles(data as ArrayLike<number>);
    return t;
  }
  const bytes = new Uint8Array(data.byteLength);
  bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (!LITTLE_ENDIAN_HOST) swapBytes(bytes, hostElementSize(h.dtype));
  if (h.dtype === "bool") normalizeBools(bytes);
  t.rawData = bytes;
  return t;
}

/**
 * Read an ONNX TensorProto `.pb` file (the ONNX backend test-data format: input_0.pb,
 * output_0.pb, ...). External data is resolved relative to the file's directory.
 */
export function readTensorPb(file: string): HostTensor {
  const bytes = readFileChecked(file, "tensorpb");
  let t: TensorProto;
  try {
    t = fromBinary(TensorProtoSchema, bytes);
  } catch (e) {
    const msg = String((e as Error).message ?? e).split("\n")[0];
    throw new UserError(`${file}: not an ONNX TensorProto (protobuf decode failed: ${msg}); pass a tensor .pb file`);
  }
  const notTensor = (): UserError | undefined => {
    const kind = sniffNonTensorValue(bytes);
    return kind
      ? new UserError(
          `${file}: holds an ONNX ${kind} value (SequenceProto/OptionalProto), not a TensorProto; trt-debug handles tensor values only`,
        )
      : undefined;
  };
  if (t.dataType === TensorProto_DataType.UNDEFINED) {
    throw (
      notTensor() ??
      new UserError(`${file}: not an ONNX TensorProto (no data_type); pass a tensor .pb file such as input_0.pb`)
    );
  }
  try {
    return tensorProtoToHost(t, { baseDir: path.dirname(path.resolve(file)), fileName: file });
  } catch (e) {
    if (e instanceof UserError) throw notTensor() ?? e;
    throw e;
  }
}

/**
 * Recognise the other ONNX value messages of onnx-data.proto (SequenceProto, OptionalProto),
 * which share field numbers with TensorProto: field 1 is their `name` (a string; TensorProto's
 * `dims`), field 2 their `elem_type` (0 undefined, 1 tensor, 2 sparse tensor, 3 sequence, 4 map,
 * 5 optional; TensorProto's `data_type`) and their elements sit in field elem_type + 2.
 * Only consulted after the bytes failed as a TensorProto. Returns "sequence/optional" or undefined.
 */
function sniffNonTensorValue(bytes: Uint8Array): string | undefined {
  let nameLike = false;
  let elemType = 0;
  const others = new Set<number>();
  try {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const [no, wt] = r.tag();
      if (no === 1) {
        if (wt !== WireType.LengthDelimited) return undefined;
        const b = r.bytes();
        nameLike = b.length > 0 && b.every((c) => c >= 0x20 && c < 0x7f);
        if (!nameLike) return undefined;
      } else if (no === 2 && wt === WireType.Varint) {
        elemType = r.int32();
      } else {
        if (wt !== WireType.LengthDelimited) return undefined;
        others.add(no);
        r.skip(wt, no);
      }
    }
  } catch {
    return undefined;
  }
  if (!nameLike || elemType < 0 || elemType > 5) return undefined;
  if (others.size === 0) return "sequence/optional"; // empty sequence / optional
  return others.size === 1 && others.has(elemType + 2) ? "sequence/optional" : undefined;
}

/**
 * A constant TensorProto (raw_data, little-endian) of numbers, for the initializers and
 * Constant nodes trt-debug adds to graphs: integer and bool types, float32 and float64.
 */
export function constantTensor(name: string, dtype: DType, dims: readonly number[], values: ArrayLike<number | bigint>): TensorProto {
  const info = DTYPES[dtype];
  if (info.host === null || (info.float && dtype !== "float32" && dtype !== "float64") || info.bits === 4) {
    throw new Error(`constantTensor "${name}": ${dtype} constants are not made from numbers`);
  }
  const data = allocateHost(dtype, values.length);
  storeNumbers(data as Exclude<TensorData, string[]>, values);
  return hostToTensorProto({ name, dtype, dims: [...dims], data });
}
