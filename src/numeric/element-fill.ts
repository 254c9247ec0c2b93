/**
 * Random tensor fills (generated model inputs): the element loops behind data/inputs.ts,
 * drawing from any generator with the {@link UniformSource} methods (data/rng.ts's
 * Xoshiro128ss). Exported through ./index.ts.
 */
import type { DType, HostTensor } from "../core/host-tensor.js";
import { allocateHost, DTYPES } from "../core/dtype.js";
import { f64ToMiniFloatBits, miniFloatBitsToF64 } from "./minifloat.js";

/** The draws the fills use (data/rng.ts Xoshiro128ss). */
export interface UniformSource {
  /** Uniform integer in [lo, hi]. */
  uniformInt(lo: number, hi: number): number;
  /** Uniform integer in [lo, hi] (any 64-bit span). */
  uniformBigInt(lo: bigint, hi: bigint): bigint;
  /** Uniform double in [0, 1) with 53 random bits. */
  nextFloat53(): number;
}

/** `n` integers of type `d`, uniform in [lo, hi] (inclusive); lo/hi must fit `d`. */
export function fillUniformInts(d: DType, rng: UniformSource, lo: bigint, hi: bigint, n: number): HostTensor["data"] {
  if (d === "int64" || d === "uint64") {
    const out = d === "int64" ? new BigInt64Array(n) : new BigUint64Array(n);
    const span = hi - lo + 1n;
    if (span <= 1n << 32n) {
      const s = Number(span) - 1;
      for (let i = 0; i < n; i++) out[i] = lo + BigInt(rng.uniformInt(0, s));
    } else {
      for (let i = 0; i < n; i++) out[i] = rng.uniformBigInt(lo, hi);
    }
    return out;
  }
  const out = allocateHost(d, n) as Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;
  const l = Number(lo);
  const h = Number(hi);
  for (let i = 0; i < n; i++) out[i] = rng.uniformInt(l, h);
  return out;
}

const MAX_FLOAT_TRIES = 64;

/**
 * `n` floats of type `d` (float16/bfloat16/float32/float64), uniform in [lo, hi): each draw
 * `lo + (hi-lo) * u` is rounded to `d` and redrawn (up to 64 times) while the rounded value
 * reaches `hi`; after 64 misses the element is `lo` rounded. `lo === hi` fills with `lo`.
 */
export function fillUniformFloats(d: DType, rng: UniformSource, lo: number, hi: number, n: number): HostTensor["data"] {
  const width = hi - lo;
  // Round a double to the target type; returns [stored value, value it represents].
  const info = DTYPES[d];
  const mf = info.minifloat;
  if (!info.float || (mf === undefined && info.host !== Float32Array && info.host !== Float64Array)) throw new Error(`fillFloats: ${d}`);
  const out = allocateHost(d, n) as Float32Array | Float64Array | Uint16Array;
  const round: (v: number) => [number, number] = mf
    ? (v) => {
        const b = f64ToMiniFloatBits(v, mf[0], mf[1]);
        return [b, miniFloatBitsToF64(b, mf[0], mf[1])];
      }
    : info.host === Float32Array
      ? (v) => {
          const f = Math.fround(v);
          return [f, f];
        }
      : (v) => [v, v];
  const atLo = round(lo)[0];
  if (width === 0) {
    out.fill(atLo);
    return out;
  }
  if (!mf) {
    // float32 / float64: the stored value is the value (no [stored, value] pair per draw)
    const f32 = info.host === Float32Array;
    for (let i = 0; i < n; i++) {
      let stored = atLo;
      for (let t = 0; t < MAX_FLOAT_TRIES; t++) {
        const v = f32 ? Math.fround(lo + width * rng.nextFloat53()) : lo + width * rng.nextFloat53();
        if (v < hi) {
          stored = v;
          break;
        }
      }
      out[i] = stored;
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    let stored = atLo;
    for (let t = 0; t < MAX_FLOAT_TRIES; t++) {
      const [s, v] = round(lo + width * rng.nextFloat53());
      if (v < hi) {
        stored = s;
        break;
      }
    }
    out[i] = stored;
  }
  return out;
}
