/**
 * Shared pieces of the deterministic model generators: a seeded PRNG (no Math.random), the
 * metadata every generator returns, and small layer helpers over GraphBuilder.
 */
import type { ModelProto } from "onnx-buf";
import type { GraphBuilder } from "../../src/onnx/builder.js";
import type { DType } from "../../src/types.js";
/** fp16 facts the plants are built around. */
export declare const FP16_MAX = 65504;
/** Smallest fp16 subnormal; |x| < 2^-25 rounds to 0, |x| < 2^-24 is not representable. */
export declare const FP16_MIN_SUBNORMAL: number;
/** ln(65504): exp of anything above this overflows fp16. */
export declare const FP16_EXP_LIMIT: number;
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
/** Seeded PRNG (sfc32 seeded through splitmix32); same seed, same numbers, on any host. */
export declare class Rng {
    private a;
    private b;
    private c;
    private d;
    private spare;
    constructor(seed: number | string);
    /** Uniform 32-bit unsigned integer. */
    u32(): number;
    /** Uniform in [0, 1). */
    next(): number;
    /** Uniform in [lo, hi). */
    uniform(lo: number, hi: number): number;
    /** Uniform integer in [0, n). */
    int(n: number): number;
    /** Standard normal (Box-Muller). */
    normal(): number;
    /** n normals with standard deviation `std` (and mean `mean`). */
    normals(n: number, std: number, mean?: number): Float32Array;
    /** n uniforms in [lo, hi). */
    uniforms(n: number, lo: number, hi: number): Float32Array;
}
/** MatMul by a [k, n] weight with N(0, std) entries (default He: sqrt(2/k)), then Add bias. */
export declare function linear(b: GraphBuilder, rng: Rng, x: string, prefix: string, k: number, n: number, opts?: {
    std?: number;
    biasStd?: number;
    bias?: Float32Array | null;
}): string;
/** linear + Relu. */
export declare function linearRelu(b: GraphBuilder, rng: Rng, x: string, prefix: string, k: number, n: number, opts?: {
    std?: number;
    biasStd?: number;
}): string;
/** Scalar float32 initializer (shared by name if it exists already). */
export declare function scalar(b: GraphBuilder, name: string, value: number): string;
/**
 * Decomposed LayerNorm over the last axis (opset 17 ReduceMean with `axes` attribute):
 * ReduceMean → Sub → Pow(·,2) → ReduceMean → Add(eps) → Sqrt → Div [→ Mul(gamma) → Add(beta)].
 * `square: "mul"` uses Mul(d, d) instead of Pow. Node names: `${p}/mean`, `${p}/sub`,
 * `${p}/pow` (or `${p}/sq`), `${p}/var`, `${p}/add_eps`, `${p}/sqrt`, `${p}/div`,
 * `${p}/mul_gamma`, `${p}/add_beta`.
 */
export declare function decomposedLayerNorm(b: GraphBuilder, x: string, p: string, n: number, opts?: {
    affine?: {
        gamma: Float32Array;
        beta: Float32Array;
    };
    square?: "pow" | "mul";
    eps?: number;
}): string;
/** Number of nodes in a model's main graph. */
export declare function nodeCount(m: ModelProto): number;
/** Number of parameters (elements of all initializers of the main graph). */
export declare function paramCount(m: ModelProto): number;
