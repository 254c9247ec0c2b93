/**
 * Shared pieces of the deterministic model generators: a seeded PRNG (no Math.random), the
 * metadata every generator returns, and small layer helpers over GraphBuilder.
 */
import type { ModelProto } from "onnx-buf";
import type { GraphBuilder } from "../../test/support/graph-builder.js";
import type { DType } from "../../src/core/host-tensor.js";

/** fp16 facts the plants are built around. */
export const FP16_MAX = 65504;
/** Smallest fp16 subnormal; |x| < 2^-25 rounds to 0, |x| < 2^-24 is not representable. */
export const FP16_MIN_SUBNORMAL = 2 ** -24;
/** ln(65504): exp of anything above this overflows fp16. */
export const FP16_EXP_LIMIT = Math.log(FP16_MAX); // 11.0898...

/** A graph input and the value range its facts were checked for (uniform, Polygraphy's default [0,1]). */
export interface InputSpec {
  name: string;
  dtype: DType;
  dims: number[];
  /** The facts hold for inputs drawn uniformly from this range. */
  valueRange: [number, number];
}

/** What a generator promises about its model; written to golden/<name>.expected.json. */
export interface ModelFacts {
  /** File stem, e.g. "layernorm_overflow". */
  name: string;
  description: string;
  inputs: InputSpec[];
  outputs: string[];
  nodeCount: number;
  /**
   * Name of the first node (in the model's node order, which is topological) whose output
   * is wrong when every layer runs in fp16 per docs PRECISION.md (non-finite where fp32 is
   * finite, or relative L2 error ~1); null when fp16 is fine everywhere.
   */
  firstFailingFp16?: string | null;
  /** Output tensor of firstFailingFp16. */
  failingTensor?: string;
  /** How it fails: "overflow" (±inf), "nan", "underflow" (flushed to 0). */
  mechanism?: "overflow" | "nan" | "underflow";
  /**
   * The smallest set of nodes that must run in fp32 (everything else fp16) for the graph
   * outputs to match fp32 to fp16 accuracy (relative L2 well below 1e-2).
   */
  minimalPinSet?: string[];
  /** Generator-specific facts (documented on each generator). */
  [extra: string]: unknown;
}

export interface GeneratedModel<F extends ModelFacts = ModelFacts> {
  model: ModelProto;
  facts: F;
}

// ---------------------------------------------------------------------------------------
// PRNG

/** Seeded PRNG (sfc32 seeded through splitmix32); same seed, same numbers, on any host. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  constructor(seed: number | string) {
    let s = typeof seed === "number" ? seed >>> 0 : hashString(seed);
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = this.next();
    while (u <= 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** n normals with standard deviation `std` (and mean `mean`). */
  normals(n: number, std: number, mean = 0): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /**
   * `count` conv filters of `fanIn` weights each: normals, every filter rescaled to squared norm 2
   * (He init without the fan-in lottery: activations keep their scale through Conv + ReLU).
   */
  heFilters(count: number, fanIn: number): Float32Array {
    const w = this.normals(count * fanIn, 1);
    for (let c = 0; c < count; c++) {
      let ss = 0;
      for (let j = 0; j < fanIn; j++) ss += w[c * fanIn + j]! ** 2;
      const f = Math.SQRT2 / Math.sqrt(ss);
      for (let j = 0; j < fanIn; j++) w[c * fanIn + j]! *= f;
    }
    return w;
  }

  /** n uniforms in [lo, hi). */
  uniforms(n: number, lo: number, hi: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(lo, hi);
    return out;
  }
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

// ---------------------------------------------------------------------------------------
// Layer helpers (every node gets a name `${prefix}/${op}`)

/** MatMul by a [k, n] weight with N(0, std) entries (default He: sqrt(2/k)), then Add bias. */
export function linear(
  b: GraphBuilder,
  rng: Rng,
  x: string,
  prefix: string,
  k: number,
  n: number,
  opts: { std?: number; biasStd?: number; bias?: Float32Array | null } = {},
): string {
  const w = b.initializer(`${prefix}/weight`, "float32", [k, n], rng.normals(k * n, opts.std ?? Math.sqrt(2 / k)));
  const y = b.node("MatMul", [x, w], { name: `${prefix}/matmul` });
  if (opts.bias === null) return y;
  const bias = opts.bias ?? rng.normals(n, opts.biasStd ?? 0.05);
  const bn = b.initializer(`${prefix}/bias`, "float32", [n], bias);
  return b.node("Add", [y, bn], { name: `${prefix}/add` });
}

/** linear + Relu. */
export function linearRelu(
  b: GraphBuilder,
  rng: Rng,
  x: string,
  prefix: string,
  k: number,
  n: number,
  opts: { std?: number; biasStd?: number } = {},
): string {
  return b.node("Relu", [linear(b, rng, x, prefix, k, n, opts)], { name: `${prefix}/relu` });
}

/** Scalar float32 initializer (shared by name if it exists already). */
export function scalar(b: GraphBuilder, name: string, value: number): string {
  if (b.has(name)) return name;
  return b.initializer(name, "float32", [], [value]);
}

/**
 * Decomposed LayerNorm over the last axis (opset 17 ReduceMean with `axes` attribute):
 * ReduceMean → Sub → Pow(·,2) → ReduceMean → Add(eps) → Sqrt → Div [→ Mul(gamma) → Add(beta)].
 * `square: "mul"` uses Mul(d, d) instead of Pow. Node names: `${p}/mean`, `${p}/sub`,
 * `${p}/pow` (or `${p}/sq`), `${p}/var`, `${p}/add_eps`, `${p}/sqrt`, `${p}/div`,
 * `${p}/mul_gamma`, `${p}/add_beta`.
 */
export function decomposedLayerNorm(
  b: GraphBuilder,
  x: string,
  p: string,
  n: number,
  opts: { affine?: { gamma: Float32Array; beta: Float32Array }; square?: "pow" | "mul"; eps?: number } = {},
): string {
  const mean = b.node("ReduceMean", [x], { name: `${p}/mean`, attrs: { axes: [-1], keepdims: 1 } });
  const d = b.node("Sub", [x, mean], { name: `${p}/sub` });
  const sq =
    opts.square === "mul"
      ? b.node("Mul", [d, d], { name: `${p}/sq` })
      : b.node("Pow", [d, scalar(b, "const/two", 2)], { name: `${p}/pow` });
  const v = b.node("ReduceMean", [sq], { name: `${p}/var`, attrs: { axes: [-1], keepdims: 1 } });
  const ve = b.node("Add", [v, scalar(b, `const/eps`, opts.eps ?? 1e-5)], { name: `${p}/add_eps` });
  const sd = b.node("Sqrt", [ve], { name: `${p}/sqrt` });
  const y = b.node("Div", [d, sd], { name: `${p}/div` });
  if (!opts.affine) return y;
  const g = b.initializer(`${p}/gamma`, "float32", [n], opts.affine.gamma);
  const be = b.initializer(`${p}/beta`, "float32", [n], opts.affine.beta);
  const yg = b.node("Mul", [y, g], { name: `${p}/mul_gamma` });
  return b.node("Add", [yg, be], { name: `${p}/add_beta` });
}

/** Number of nodes in a model's main graph. */
export function nodeCount(m: ModelProto): number {
  return m.graph?.node.length ?? 0;
}

/** Number of parameters (elements of all initializers of the main graph). */
export function paramCount(m: ModelProto): number {
  let n = 0;
  for (const t of m.graph?.initializer ?? []) {
    let e = 1;
    for (const d of t.dims) e *= Number(d);
    n += e;
  }
  return n;
}
