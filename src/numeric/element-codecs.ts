/**
 * Element loops with no native twin (storage layouts, dtype conversions of loaded inputs and
 * one int8 range count): int64 widening and low words, checked integer copies, float conversions
 * between host float types, byte order,
 * bool bytes, 4-bit packing as ONNX stores int4/uint4 (two per byte, first element in the low
 * nibble) and the two float8 FNUZ formats decoded through a 256-entry table (ONNX: no infinities, no negative zero, 0x80 is
 * the only NaN; exponent bias 8 / 16). Precision modes never produce FNUZ values; they only
 * appear in dumps of models that already use them. Exported through ./index.ts.
 */
import { endianness } from "node:os";
import { f64ToMiniFloatBits, miniFloatBitsToF64 } from "./minifloat.js";

const LITTLE_ENDIAN = endianness() === "LE";

/** Unpack `n` 4-bit elements; signed (int4) values are sign-extended. */
export function unpackNibbles(packed: ArrayLike<number>, n: number, signed: boolean): Int8Array | Uint8Array {
  const out = signed ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const nib = ((packed[i >> 1]! & 0xff) >> ((i & 1) * 4)) & 0x0f;
    out[i] = signed && nib >= 8 ? nib - 16 : nib;
  }
  return out;
}

/** Pack 4-bit elements two per byte (low nibble first). */
export function packNibbles(data: ArrayLike<number>): Uint8Array<ArrayBuffer> {
  const n = data.length;
  const out = new Uint8Array(Math.ceil(n / 2));
  for (let i = 0; i < n; i++) {
    const nib = data[i]! & 0x0f;
    out[i >> 1]! |= i & 1 ? nib << 4 : nib;
  }
  return out;
}

export type FnuzFormat = "fp8e4m3fnuz" | "fp8e5m2fnuz";

const FNUZ_TABLES = new Map<FnuzFormat, Float32Array>();

function fnuzTable(format: FnuzFormat): Float32Array {
  let lut = FNUZ_TABLES.get(format);
  if (lut) return lut;
  const [expBits, manBits, bias] = format === "fp8e4m3fnuz" ? [4, 3, 8] : [5, 2, 16];
  lut = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const e = (b >> manBits) & ((1 << expBits) - 1);
    const m = b & ((1 << manBits) - 1);
    lut[b] =
      b === 0x80 ? NaN
      : e === 0 ? sign * m * 2 ** (1 - bias - manBits)
      : sign * (1 + m / (1 << manBits)) * 2 ** (e - bias);
  }
  FNUZ_TABLES.set(format, lut);
  return lut;
}

/** float8 FNUZ bit patterns to float32. */
export function fnuzToF32(bits: Uint8Array, format: FnuzFormat): Float32Array {
  const lut = fnuzTable(format);
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = lut[bits[i]!]!;
  return out;
}

/**
 * float32 values that came from an FNUZ format back to its bit patterns (NaN -> 0x80, -0 -> 0).
 * `bad` is the index of the first value with no bit pattern, or -1.
 */
export function f32ToFnuz(values: Float32Array, format: FnuzFormat): { bits: Uint8Array; bad: number } {
  const words = new Uint32Array(fnuzTable(format).buffer);
  const index = new Map<number, number>();
  for (let b = 0; b < 256; b++) if (b !== 0x80) index.set(words[b]!, b);
  const vb = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const bits = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i]!)) {
      bits[i] = 0x80;
      continue;
    }
    const b = index.get(vb[i]!) ?? (values[i] === 0 ? 0 : undefined);
    if (b === undefined) return { bits, bad: i };
    bits[i] = b;
  }
  return { bits, bad: -1 };
}

/** What per-tensor int8 quantization with `scale` and `qmax` does to finite values `v`. */
export interface Int8RangeCounts {
  /** Finite nonzero values. */
  nonzero: number;
  /** Nonzero values that quantize to 0 (|x| <= scale / 2). */
  toZero: number;
  /** Values beyond the range (|x| > (qmax + 1/2) * scale). */
  clipped: number;
  /** Largest finite |x|. */
  max: number;
}

export function int8RangeCounts(v: Float32Array, scale: number, qmax: number): Int8RangeCounts {
  let nonzero = 0, toZero = 0, clipped = 0, max = 0;
  for (let j = 0; j < v.length; j++) {
    const a = Math.abs(v[j]!);
    if (!(a <= Infinity)) continue;
    if (a > max) max = a;
    if (a > 0) {
      nonzero++;
      if (a <= 0.5 * scale) toZero++;
    }
    if (a > (qmax + 0.5) * scale) clipped++;
  }
  return { nonzero, toZero, clipped, max };
}

/** Reverse the byte order of each `size`-byte element of `b` in place (big-endian hosts). */
export function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i + size <= b.length; i += size) {
    for (let j = 0, k = size - 1; j < k; j++, k--) {
      const x = b[i + j]!;
      b[i + j] = b[i + k]!;
      b[i + k] = x;
    }
  }
}

/** Bool bytes as 0/1 in place (any nonzero byte is true). */
export function normalizeBools(bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i] ? 1 : 0;
}

/** Sign- or zero-extends small integers into a BigInt64Array (fast path through int32 words). */
export function widenToI64(
  src: Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array,
  signed: boolean,
): BigInt64Array {
  const n = src.length;
  const out = new BigInt64Array(n);
  if (LITTLE_ENDIAN) {
    const w = new Int32Array(out.buffer);
    if (signed) {
      for (let i = 0; i < n; i++) {
        const v = src[i];
        w[2 * i] = v;
        w[2 * i + 1] = v >> 31;
      }
    } else {
      for (let i = 0; i < n; i++) w[2 * i] = src[i] | 0;
    }
  } else {
    for (let i = 0; i < n; i++) out[i] = BigInt(src[i]);
  }
  return out;
}

/** Low 32 bits of each int64, as int32 (callers store them into narrower arrays, which wrap). */
export function lowWords(src: BigInt64Array): Int32Array {
  const n = src.length;
  const out = new Int32Array(n);
  if (LITTLE_ENDIAN) {
    const w = new Int32Array(src.buffer, src.byteOffset, 2 * n);
    for (let i = 0; i < n; i++) out[i] = w[2 * i];
  } else {
    for (let i = 0; i < n; i++) out[i] = Number(BigInt.asIntN(32, src[i]));
  }
  return out;
}

/** 0/1 bytes, 1 where `src` is nonzero (a new array; bool tensors from any integer storage). */
export function boolBytes(src: Uint8Array | BigInt64Array): Uint8Array {
  const b = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) b[i] = src[i] ? 1 : 0;
  return b;
}

/** A float element type, as stored on the host (float16/bfloat16 as bits in a Uint16Array). */
export type HostFloatType = "float16" | "bfloat16" | "float32" | "float64";

/**
 * The first `n` values of `src` (element type `from`) as element type `to`: rounded to nearest
 * even from the double (float64 -> float32 as Math.fround).
 */
export function convertFloats(
  src: Float32Array | Float64Array | Uint16Array,
  from: HostFloatType,
  to: HostFloatType,
  n: number,
): Float32Array | Float64Array | Uint16Array {
  const get: (i: number) => number =
    from === "float16" ? (i) => miniFloatBitsToF64(src[i]!, 5, 10) : from === "bfloat16" ? (i) => miniFloatBitsToF64(src[i]!, 8, 7) : (i) => src[i]!;
  if (to === "float32") return Float32Array.from({ length: n }, (_, i) => get(i));
  if (to === "float64") return Float64Array.from({ length: n }, (_, i) => get(i));
  const [e, m] = to === "float16" ? [5, 10] : [8, 7];
  return Uint16Array.from({ length: n }, (_, i) => f64ToMiniFloatBits(get(i), e, m));
}

/**
 * Copies the first `n` integers of `src` into `out` (as bigint when `big`, else as number),
 * stopping at the first value outside [lo, hi]. Returns that element's index, or -1 when all fit.
 */
export function copyIntsInRange(
  src: ArrayLike<number | bigint>,
  out: { [i: number]: number | bigint },
  n: number,
  lo: bigint,
  hi: bigint,
  big: boolean,
): number {
  for (let i = 0; i < n; i++) {
    const v = BigInt(src[i]!);
    if (v < lo || v > hi) return i;
    out[i] = big ? v : Number(v);
  }
  return -1;
}
