/**
 * Element loops of storage layouts and small-file decoding, with no native twin (they run once
 * per loaded file or folded weight, never per compared tensor): Fortran-to-C reordering (.npy),
 * numbers into typed arrays (constant TensorProtos, trtexec output JSON), Arrow validity
 * bitmaps, per-channel weight arithmetic (BatchNormalization folding, Q/DQ weight dequantizing).
 * Exported through ./index.ts.
 */
import type { TensorData } from "../core/host-tensor.js";

/**
 * `src` (Fortran order: first axis fastest) in C order (last axis fastest); `make(n)` allocates
 * the output. Rank < 2 is the same in both orders and returned as is.
 */
export function fortranToC<T extends TensorData>(src: T, dims: readonly number[], make: (n: number) => T): T {
  const rank = dims.length;
  if (rank < 2) return src;
  const n = dims.reduce((a, d) => a * d, 1);
  const out = make(n);
  // Fortran strides: stride[0] = 1, stride[i] = stride[i-1] * dims[i-1].
  const fstride = new Array<number>(rank);
  fstride[0] = 1;
  for (let i = 1; i < rank; i++) fstride[i] = fstride[i - 1]! * dims[i - 1]!;
  const idx = new Array<number>(rank).fill(0);
  let f = 0;
  const o = out as unknown as { [i: number]: unknown };
  const s = src as unknown as { [i: number]: unknown };
  for (let c = 0; c < n; c++) {
    o[c] = s[f];
    // Increment the C-order multi-index (last axis fastest), keeping the Fortran offset.
    for (let ax = rank - 1; ax >= 0; ax--) {
      idx[ax]!++;
      f += fstride[ax]!;
      if (idx[ax]! < dims[ax]!) break;
      f -= fstride[ax]! * dims[ax]!;
      idx[ax] = 0;
    }
  }
  return out;
}

/** `values` stored into `out` (a typed array of the same length): BigInt for 64-bit integer arrays, else Number. */
export function storeNumbers(out: Exclude<TensorData, string[]>, values: ArrayLike<number | bigint>): void {
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  const o = out as { [i: number]: number | bigint };
  for (let i = 0; i < values.length; i++) o[i] = big ? BigInt(values[i]!) : Number(values[i]!);
}

/**
 * JSON values (numbers, null for NaN) as float32; returns the index of the first value that is
 * neither, or the array.
 */
export function floatsFromJson(values: readonly unknown[]): Float32Array | number {
  const data = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (x === null) data[i] = NaN;
    else if (typeof x === "number") data[i] = x;
    else return i;
  }
  return data;
}

/** Arrow validity bitmap of `n` rows into `b` at `at` (LSB first; `len` = ceil(n/8) bytes cleared first). */
export function packValidity(b: Uint8Array, at: number, n: number, valid: (i: number) => boolean): void {
  b.fill(0, at, at + ((n + 7) >> 3));
  for (let i = 0; i < n; i++) if (valid(i)) b[at + (i >> 3)]! |= 1 << (i & 7);
}

/**
 * TensorRT parser's BatchNormalization fold (onnx-tensorrt onnxOpImporters.cpp): scale =
 * gamma / sqrtf(var + eps), bias = beta - mean * scale, in float32 arithmetic.
 */
export function batchNormScale(gamma: Float32Array, beta: Float32Array, mean: Float32Array, variance: Float32Array, eps: number): { scale: Float32Array; bias: Float32Array } {
  const f = Math.fround;
  const e = f(eps);
  const scale = new Float32Array(gamma.length);
  const bias = new Float32Array(gamma.length);
  for (let c = 0; c < gamma.length; c++) {
    scale[c] = f(gamma[c]! / f(Math.sqrt(f(variance[c]! + e))));
    bias[c] = f(beta[c]! - f(mean[c]! * scale[c]!));
  }
  return { scale, bias };
}

/** `w[i] * scale[channelOf(i)]` into `out` (float32 stores round each product). */
export function scaleByChannel(w: Float32Array, scale: Float32Array, channelOf: (i: number) => number, out: Float32Array = new Float32Array(w.length)): Float32Array {
  for (let i = 0; i < w.length; i++) out[i] = w[i]! * scale[channelOf(i)]!;
  return out;
}

/** Folded bias per channel: `b0[c] * scale[c] + bias[c]` (no b0: `0 + bias[c]`), float32. */
export function foldBias(b0: Float32Array | null, scale: Float32Array, bias: Float32Array): Float32Array {
  const out = new Float32Array(bias.length);
  for (let c = 0; c < bias.length; c++) out[c] = (b0 ? b0[c]! * scale[c]! : 0) + bias[c]!;
  return out;
}

/**
 * DequantizeLinear of an integer weight: `(q - zp[c]) * scale[c]` as float32, channel `c` =
 * floor(i / inner) % channels (one channel: every element uses entry 0). A zero point list
 * shorter than the channels uses its entry 0.
 */
export function dequantizeWeights(q: ArrayLike<number>, scale: ArrayLike<number>, zp: ArrayLike<number>, channels: number, inner: number): Float32Array {
  const f = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) {
    const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
    f[i] = (q[i]! - (zp[c] ?? zp[0]!)) * scale[c]!;
  }
  return f;
}

/**
 * The elements of a strided view (`dims`, `stride` and `offset` in elements of `es` bytes) over
 * `raw`, gathered in row-major order; each element's bytes reversed when `swap` (big-endian
 * storage). Null when an element lies past the end of `raw`.
 */
export function gatherStrided(raw: Uint8Array, es: number, dims: readonly number[], stride: readonly number[], offset: number, swap: boolean): Uint8Array<ArrayBuffer> | null {
  const n = dims.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(n * es);
  const idx = new Array<number>(dims.length).fill(0);
  for (let e = 0; e < n; e++) {
    let src = offset;
    for (let d = 0; d < dims.length; d++) src += idx[d]! * stride[d]!;
    if ((src + 1) * es > raw.length) return null;
    for (let b = 0; b < es; b++) out[e * es + b] = raw[src * es + (swap ? es - 1 - b : b)]!;
    for (let d = dims.length - 1; d >= 0; d--) {
      if (++idx[d]! < dims[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}
