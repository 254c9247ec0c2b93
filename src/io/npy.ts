/**
 * NumPy `.npy` codec (format versions 1.0, 2.0 and 3.0; docs/inputs.md, ".npy and .npz").
 *
 * decodeNpy reads every simple dtype NumPy writes for numeric arrays: float16/32/64,
 * int8/16/32/64, uint8/16/32/64 and bool, little ('<'), big ('>'), native ('=') or
 * not-applicable ('|') byte order. Fortran-ordered arrays are transposed to C (row-major)
 * order. Data comes back as trt-debug host data (float16 as bit patterns in a Uint16Array,
 * bool as bytes 0/1, 64-bit integers as BigInt64Array / BigUint64Array).
 *
 * encodeNpy writes a version 1.0 file (2.0 when the header does not fit in 65535 bytes),
 * little-endian, C order, header padded so the data starts at a multiple of 64 bytes as
 * NumPy does. Every problem is a one-line UserError that starts with `where`.
 */
import { allocateHost } from "../core/dtype.js";
import { UserError } from "../core/errors.js";
import type { DType, TensorData } from "../core/host-tensor.js";
import { numel } from "../core/host-tensor.js";
import { fortranToC, normalizeBools, swapBytes } from "../numeric/index.js";

export interface NpyArray {
  dtype: DType;
  dims: number[];
  data: TensorData;
  /** The header's descr, e.g. `<f4` (for messages). */
  descr: string;
  /** True when the file was Fortran-ordered (the data returned is C order). */
  fortranOrder: boolean;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** NumPy kind+size → DType. */
const BY_CODE: Record<string, DType> = {
  f2: "float16",
  f4: "float32",
  f8: "float64",
  i1: "int8",
  i2: "int16",
  i4: "int32",
  i8: "int64",
  u1: "uint8",
  u2: "uint16",
  u4: "uint32",
  u8: "uint64",
  b1: "bool",
};

const CODE_OF: Partial<Record<DType, string>> = Object.fromEntries(Object.entries(BY_CODE).map(([c, d]) => [d, c]));

/** Element size in bytes of the dtypes .npy carries. */
function itemSize(d: DType): number {
  return Number(CODE_OF[d]!.slice(1));
}

/** True when `bytes` starts with the .npy magic. */
export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= 6 && MAGIC.every((b, i) => bytes[i] === b);
}

/** A zeroed host array of `n` elements of numeric type `d` (float16 as bits, bool as bytes). */
export function allocate(d: DType, n: number): TensorData {
  return allocateHost(d, n);
}

/** Parse the Python-literal header dict: descr, fortran_order, shape. */
function parseHeader(text: string, where: string): { descr: string; fortran: boolean; shape: number[] } {
  const bad = (why: string): never => {
    throw new UserError(`${where}: not a valid .npy file (${why}); save the array with numpy.save`);
  };
  const t = text.trim();
  if (!t.startsWith("{") || !t.endsWith("}")) bad("header is not a dict");
  const descr = /['"]descr['"]\s*:\s*(['"])([^'"]*)\1/.exec(t);
  if (!descr) {
    if (/['"]descr['"]\s*:\s*\[/.test(t)) {
      throw new UserError(`${where}: structured (record) arrays are not supported; save a plain numeric array`);
    }
    bad("no 'descr' in the header");
  }
  const fo = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(t);
  if (!fo) bad("no 'fortran_order' in the header");
  const sh = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(t);
  if (!sh) bad("no 'shape' in the header");
  const parts = sh![1]!.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const shape = parts.map((p) => {
    const s = p.replace(/L$/, "");
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) bad(`shape entry '${p}' is not a non-negative integer`);
    return Number(s);
  });
  return { descr: descr![2]!, fortran: fo![1] === "True", shape };
}


/** Decode a whole .npy file. `where` names it in errors (e.g. `--load-inputs x.npy`). */
export function decodeNpy(bytes: Uint8Array, where: string): NpyArray {
  if (!isNpy(bytes)) {
    throw new UserError(`${where}: not a .npy file (bad magic: the file must start with \\x93NUMPY); save the array with numpy.save`);
  }
  if (bytes.length < 10) throw new UserError(`${where}: truncated .npy file (${bytes.length} bytes, shorter than its header); the file is incomplete`);
  const major = bytes[6]!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new UserError(`${where}: truncated .npy file (${bytes.length} bytes, shorter than its header); the file is incomplete`);
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else {
    throw new UserError(`${where}: .npy format version ${major}.${bytes[7]} is not supported (versions 1.0, 2.0, 3.0 are); save it with numpy.save`);
  }
  if (start + headerLen > bytes.length) {
    throw new UserError(`${where}: truncated .npy file (header of ${headerLen} bytes, file has ${bytes.length - start}); the file is incomplete`);
  }
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(start, start + headerLen));
  const h = parseHeader(header, where);
  const m = /^([<>=|])([a-zA-Z])(\d+)$/.exec(h.descr);
  const dtype = m ? BY_CODE[`${m[2]}${m[3]}`] : undefined;
  if (!m || !dtype) {
    throw new UserError(
      `${where}: numpy dtype '${h.descr}' is not supported; use float16/float32/float64, int8..int64, uint8..uint64 or bool (e.g. arr.astype(numpy.float32))`,
    );
  }
  const bigEndian = m[1] === ">";
  const n = numel(h.shape);
  const size = itemSize(dtype);
  const dataStart = start + headerLen;
  const need = n * size;
  const have = bytes.length - dataStart;
  if (have !== need) {
    throw new UserError(
      `${where}: the header says shape (${h.shape.join(", ")}) of ${h.descr} (${need} bytes of data) but the file holds ${have} bytes after the header; the file is ${have < need ? "truncated" : "corrupt (extra bytes)"}`,
    );
  }
  let data = allocate(dtype, n);
  const raw = bytes.subarray(dataStart, dataStart + need);
  const dst = new Uint8Array((data as Exclude<TensorData, string[]>).buffer);
  dst.set(raw);
  if (bigEndian && size > 1) swapBytes(dst.subarray(0, need), size);
  if (dtype === "bool") normalizeBools((data as Uint8Array).subarray(0, n));
  if (h.fortran) data = fortranToC(data, h.shape, (k) => allocate(dtype, k));
  return { dtype, dims: h.shape, data, descr: h.descr, fortranOrder: h.fortran };
}

/** Encode a C-order array as a .npy file (little-endian). */
export function encodeNpy(a: { dtype: DType; dims: readonly number[]; data: TensorData }): Uint8Array {
  const code = CODE_OF[a.dtype];
  if (!code || Array.isArray(a.data)) throw new UserError(`.npy: element type ${a.dtype} cannot be written as .npy`);
  const descr = a.dtype === "bool" || a.dtype === "int8" || a.dtype === "uint8" ? `|${code}` : `<${code}`;
  const shape = a.dims.length === 1 ? `(${a.dims[0]},)` : `(${a.dims.join(", ")})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const n = numel(a.dims);
  const d = a.data as Exclude<TensorData, string[]>;
  if (d.length !== n) throw new Error(`encodeNpy: ${d.length} elements for dims [${a.dims.join(",")}]`);
  let pre = 10;
  let major = 1;
  if (dict.length + 1 + pre > 0xffff) {
    major = 2;
    pre = 12;
  }
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict + " ".repeat(total - pre - dict.length - 1) + "\n";
  const out = new Uint8Array(total + d.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, dict.length, true);
  else dv.setUint32(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) out[pre + i] = dict.charCodeAt(i);
  out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), total);
  return out;
}
