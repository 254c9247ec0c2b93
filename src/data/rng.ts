/**
 * Seeded pseudo-random numbers for generated model inputs.
 *
 * Exact algorithm (also in docs/inputs.md, so other tools can reproduce the streams):
 *
 * 1. Key: `h = murmur3_x86_32(utf8(inputName), seed)` — standard MurmurHash3 x86 32-bit with
 *    the user's `--seed` (an unsigned 32-bit integer) as the hash seed.
 * 2. State: four successive outputs of splitmix32 started at `h`:
 *      `x = (x + 0x9E3779B9) mod 2^32; z = x; z = (z ^ z>>>16) * 0x85EBCA6B; z = (z ^ z>>>13) * 0xC2B2AE35; out = z ^ z>>>16`
 *    (multiplications mod 2^32). These become xoshiro128** state words s0, s1, s2, s3 in order.
 *    (fmix32 is a bijection and the four Weyl values are distinct, so the state is never all-zero.)
 * 3. Generator: xoshiro128** 1.1 (Blackman & Vigna), 32-bit outputs:
 *      `result = rotl(s1 * 5, 7) * 9; t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11)`.
 *
 * Each input has its own stream keyed by (seed, name), so one input's values do not depend on
 * the number or order of the other inputs. Only 32-bit integer arithmetic (Math.imul, >>>) is
 * used, so the streams are identical on every platform.
 */

const utf8 = new TextEncoder();

/** MurmurHash3 x86 32-bit of `key` with `seed` (both treated as unsigned 32-bit). */
export function murmur3_32(key: Uint8Array, seed: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed >>> 0;
  const len = key.length;
  const nblocks = len >>> 2;
  for (let i = 0; i < nblocks; i++) {
    const j = i * 4;
    let k = key[j]! | (key[j + 1]! << 8) | (key[j + 2]! << 16) | (key[j + 3]! << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = nblocks * 4;
  let k1 = 0;
  switch (len & 3) {
    case 3:
      k1 ^= key[tail + 2]! << 16;
    // falls through
    case 2:
      k1 ^= key[tail + 1]! << 8;
    // falls through
    case 1:
      k1 ^= key[tail]!;
      k1 = Math.imul(k1, c1);
      k1 = (k1 << 15) | (k1 >>> 17);
      k1 = Math.imul(k1, c2);
      h ^= k1;
  }
  h ^= len;
  return fmix32(h);
}

/** MurmurHash3's 32-bit finalizer (a bijection on uint32). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** splitmix32: a Weyl sequence (step 0x9E3779B9) passed through fmix32. */
export class SplitMix32 {
  private x: number;
  constructor(seed: number) {
    this.x = seed >>> 0;
  }
  next(): number {
    this.x = (this.x + 0x9e3779b9) >>> 0;
    return fmix32(this.x);
  }
}

const TWO_32 = 4294967296;
const TWO_64 = 1n << 64n;

/** xoshiro128** 1.1 with 32-bit outputs and helpers for uniform floats and integers. */
export class Xoshiro128ss {
  /**
   * The state words s0..s3. An Int32Array, not four fields: the words use all 32 bits, and V8
   * keeps a field outside its 31-bit small integers as a boxed number, allocated on every
   * update (measured: ~30 ms of a 1x3x640x640 input's 1.2M draws). Same bits either way.
   */
  private readonly s = new Int32Array(4);

  constructor(s0: number, s1: number, s2: number, s3: number) {
    if ((s0 | s1 | s2 | s3) === 0) throw new Error("xoshiro128**: all-zero state");
    this.s[0] = s0;
    this.s[1] = s1;
    this.s[2] = s2;
    this.s[3] = s3;
  }

  /** The four state words, unsigned (for tests / debugging). */
  state(): [number, number, number, number] {
    return [this.s[0]! >>> 0, this.s[1]! >>> 0, this.s[2]! >>> 0, this.s[3]! >>> 0];
  }

  /** Next uniform unsigned 32-bit integer. */
  nextU32(): number {
    const s = this.s;
    const s0 = s[0]!, s1 = s[1]!;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    const s2 = s[2]! ^ s0;
    const s3 = s[3]! ^ s1;
    s[1] = s1 ^ s2;
    s[0] = s0 ^ s3;
    s[2] = s2 ^ t;
    s[3] = (s3 << 11) | (s3 >>> 21);
    return result;
  }

  /**
   * Uniform double in [0, 1) with 53 random bits from two draws a, b:
   * `((a >>> 5) * 2^26 + (b >>> 6)) / 2^53`.
   */
  nextFloat53(): number {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /**
   * Uniform integer in [lo, hi] (inclusive; both safe integers, lo <= hi). Spans up to 2^32 use
   * one draw per attempt: `limit = floor(2^32 / span) * span`, reject draws >= limit, return
   * `lo + x % span`. Wider spans use {@link uniformBigInt}.
   */
  uniformInt(lo: number, hi: number): number {
    const span = hi - lo + 1;
    if (span <= TWO_32) {
      const limit = Math.floor(TWO_32 / span) * span;
      let x = this.nextU32();
      while (x >= limit) x = this.nextU32();
      return lo + (x % span);
    }
    return Number(this.uniformBigInt(BigInt(lo), BigInt(hi)));
  }

  /**
   * Uniform bigint in [lo, hi] (inclusive, span <= 2^64). Each attempt draws a, b and forms the
   * 64-bit `x = a * 2^32 + b`; with `span = hi - lo + 1` and `limit = floor(2^64 / span) * span`,
   * draws >= limit are rejected; the result is `lo + x % span`.
   */
  uniformBigInt(lo: bigint, hi: bigint): bigint {
    const span = hi - lo + 1n;
    if (span <= 0n || span > TWO_64) throw new Error(`uniformBigInt: bad span [${lo}, ${hi}]`);
    const limit = (TWO_64 / span) * span;
    for (;;) {
      const a = BigInt(this.nextU32());
      const b = BigInt(this.nextU32());
      const x = (a << 32n) | b;
      if (x < limit) return lo + (x % span);
    }
  }
}

/** The generator for input `name` under `seed` (independent of all other inputs). */
export function rngFor(seed: number, name: string): Xoshiro128ss {
  const h = murmur3_32(utf8.encode(name), seed >>> 0);
  const sm = new SplitMix32(h);
  return new Xoshiro128ss(sm.next(), sm.next(), sm.next(), sm.next());
}
