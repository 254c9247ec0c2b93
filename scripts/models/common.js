/** fp16 facts the plants are built around. */
export const FP16_MAX = 65504;
/** Smallest fp16 subnormal; |x| < 2^-25 rounds to 0, |x| < 2^-24 is not representable. */
export const FP16_MIN_SUBNORMAL = 2 ** -24;
/** ln(65504): exp of anything above this overflows fp16. */
export const FP16_EXP_LIMIT = Math.log(FP16_MAX); // 11.0898...
// ---------------------------------------------------------------------------------------
// PRNG
/** Seeded PRNG (sfc32 seeded through splitmix32); same seed, same numbers, on any host. */
export class Rng {
    a;
    b;
    c;
    d;
    spare = null;
    constructor(seed) {
        let s = typeof seed === "number" ? seed >>> 0 : hashString(seed);
        const next = () => {
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
        for (let i = 0; i < 12; i++)
            this.u32();
    }
    /** Uniform 32-bit unsigned integer. */
    u32() {
        const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
        this.d = (this.d + 1) >>> 0;
        this.a = this.b ^ (this.b >>> 9);
        this.b = (this.c + (this.c << 3)) >>> 0;
        this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
        this.c = (this.c + t) >>> 0;
        return t;
    }
    /** Uniform in [0, 1). */
    next() {
        return this.u32() / 4294967296;
    }
    /** Uniform in [lo, hi). */
    uniform(lo, hi) {
        return lo + (hi - lo) * this.next();
    }
    /** Uniform integer in [0, n). */
    int(n) {
        return Math.floor(this.next() * n);
    }
    /** Standard normal (Box-Muller). */
    normal() {
        if (this.spare !== null) {
            const s = this.spare;
            this.spare = null;
            return s;
        }
        let u = this.next();
        while (u <= 0)
            u = this.next();
        const v = this.next();
        const r = Math.sqrt(-2 * Math.log(u));
        this.spare = r * Math.sin(2 * Math.PI * v);
        return r * Math.cos(2 * Math.PI * v);
    }
    /** n normals with standard deviation `std` (and mean `mean`). */
    normals(n, std, mean = 0) {
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++)
            out[i] = mean + std * this.normal();
        return out;
    }
    /** n uniforms in [lo, hi). */
    uniforms(n, lo, hi) {
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++)
            out[i] = this.uniform(lo, hi);
        return out;
    }
}
function hashString(s) {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++)
        h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
    return h;
}
// ---------------------------------------------------------------------------------------
// Layer helpers (every node gets a name `${prefix}/${op}`)
/** MatMul by a [k, n] weight with N(0, std) entries (default He: sqrt(2/k)), then Add bias. */
export function linear(b, rng, x, prefix, k, n, opts = {}) {
    const w = b.initializer(`${prefix}/weight`, "float32", [k, n], rng.normals(k * n, opts.std ?? Math.sqrt(2 / k)));
    const y = b.node("MatMul", [x, w], { name: `${prefix}/matmul` });
    if (opts.bias === null)
        return y;
    const bias = opts.bias ?? rng.normals(n, opts.biasStd ?? 0.05);
    const bn = b.initializer(`${prefix}/bias`, "float32", [n], bias);
    return b.node("Add", [y, bn], { name: `${prefix}/add` });
}
/** linear + Relu. */
export function linearRelu(b, rng, x, prefix, k, n, opts = {}) {
    return b.node("Relu", [linear(b, rng, x, prefix, k, n, opts)], { name: `${prefix}/relu` });
}
/** Scalar float32 initializer (shared by name if it exists already). */
export function scalar(b, name, value) {
    if (b.has(name))
        return name;
    return b.initializer(name, "float32", [], [value]);
}
/**
 * Decomposed LayerNorm over the last axis (opset 17 ReduceMean with `axes` attribute):
 * ReduceMean → Sub → Pow(·,2) → ReduceMean → Add(eps) → Sqrt → Div [→ Mul(gamma) → Add(beta)].
 * `square: "mul"` uses Mul(d, d) instead of Pow. Node names: `${p}/mean`, `${p}/sub`,
 * `${p}/pow` (or `${p}/sq`), `${p}/var`, `${p}/add_eps`, `${p}/sqrt`, `${p}/div`,
 * `${p}/mul_gamma`, `${p}/add_beta`.
 */
export function decomposedLayerNorm(b, x, p, n, opts = {}) {
    const mean = b.node("ReduceMean", [x], { name: `${p}/mean`, attrs: { axes: [-1], keepdims: 1 } });
    const d = b.node("Sub", [x, mean], { name: `${p}/sub` });
    const sq = opts.square === "mul"
        ? b.node("Mul", [d, d], { name: `${p}/sq` })
        : b.node("Pow", [d, scalar(b, "const/two", 2)], { name: `${p}/pow` });
    const v = b.node("ReduceMean", [sq], { name: `${p}/var`, attrs: { axes: [-1], keepdims: 1 } });
    const ve = b.node("Add", [v, scalar(b, `const/eps`, opts.eps ?? 1e-5)], { name: `${p}/add_eps` });
    const sd = b.node("Sqrt", [ve], { name: `${p}/sqrt` });
    const y = b.node("Div", [d, sd], { name: `${p}/div` });
    if (!opts.affine)
        return y;
    const g = b.initializer(`${p}/gamma`, "float32", [n], opts.affine.gamma);
    const be = b.initializer(`${p}/beta`, "float32", [n], opts.affine.beta);
    const yg = b.node("Mul", [y, g], { name: `${p}/mul_gamma` });
    return b.node("Add", [yg, be], { name: `${p}/add_beta` });
}
/** Number of nodes in a model's main graph. */
export function nodeCount(m) {
    return m.graph?.node.length ?? 0;
}
/** Number of parameters (elements of all initializers of the main graph). */
export function paramCount(m) {
    let n = 0;
    for (const t of m.graph?.initializer ?? []) {
        let e = 1;
        for (const d of t.dims)
            e *= Number(d);
        n += e;
    }
    return n;
}
//# sourceMappingURL=common.js.map