/**
 * Scalar IEEE-style binary formats of any width (float16: 5/10, bfloat16: 8/7) from and to a
 * double, rounded directly from the double (used for generated and converted inputs).
 */

/** Round to nearest, ties to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const r = x - f;
  if (r > 0.5) return f + 1;
  if (r < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Bits of the IEEE-style binary format with `expBits`/`mantBits` (float16: 5/10, bfloat16: 8/7)
 * nearest to `v` (round half to even, overflow to infinity), rounded directly from the double.
 */
export function f64ToMiniFloatBits(v: number, expBits: number, mantBits: number): number {
  const bias = (1 << (expBits - 1)) - 1;
  const expMask = (1 << expBits) - 1;
  const signBit = 1 << (expBits + mantBits);
  if (Number.isNaN(v)) return (expMask << mantBits) | (1 << (mantBits - 1));
  const sign = v < 0 || Object.is(v, -0) ? signBit : 0;
  const a = Math.abs(v);
  if (a === Infinity) return sign | (expMask << mantBits);
  const emin = 1 - bias;
  if (a < 2 ** emin) return sign | roundHalfEven(a * 2 ** (mantBits - emin)); // subnormal (may round up to the smallest normal)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let f = roundHalfEven((a / 2 ** e - 1) * 2 ** mantBits);
  if (f === 2 ** mantBits) {
    f = 0;
    e++;
  }
  if (e > bias) return sign | (expMask << mantBits);
  return sign | ((e + bias) << mantBits) | f;
}

/** The value of IEEE-style `bits` (inverse of {@link f64ToMiniFloatBits}). */
export function miniFloatBitsToF64(bits: number, expBits: number, mantBits: number): number {
  const bias = (1 << (expBits - 1)) - 1;
  const expMask = (1 << expBits) - 1;
  const sign = (bits >> (expBits + mantBits)) & 1 ? -1 : 1;
  const e = (bits >> mantBits) & expMask;
  const m = bits & ((1 << mantBits) - 1);
  if (e === expMask) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** (1 - bias - mantBits);
  return sign * (1 + m / 2 ** mantBits) * 2 ** (e - bias);
}
