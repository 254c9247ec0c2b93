/** Tolerance parsing and the verdicts: default relative one and Polygraphy's. */
import { describe, expect, it } from "vitest";
import { compareTensor } from "../src/compare/layer-compare.js";
import { defaultCompareOptions, parseNonNegative, type CompareOptions } from "../src/compare/tolerance.js";
import { parsePerTensor } from "../src/cli/value-flags.js";
import { roundTo } from "../src/numeric/index.js";
import { UserError } from "../src/core/errors.js";
import type { HostTensor } from "../src/core/host-tensor.js";

const t = (name: string, v: Float32Array): HostTensor => ({ name, dtype: "float32", dims: [v.length], data: v });
const info = { order: 0, layer: "L", opType: "MatMul", precision: "fp16" as const, isGraphOutput: true };

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

describe("tolerance parsing", () => {
  it("takes VALUE or NAME:VALUE split at the last colon", () => {
    const p = parsePerTensor("--atol", ["1e-3", "scope:sub:out:0.5", "x:2"], parseNonNegative, "a number");
    expect(p.global).toBe(1e-3);
    expect(p.byTensor.get("scope:sub:out")).toBe(0.5);
    expect(p.byTensor.get("x")).toBe(2);
  });
  it("rejects malformed values with the flag's name", () => {
    expect(() => parsePerTensor("--atol", ["-1"], parseNonNegative, "a number")).toThrow(UserError);
    expect(() => parsePerTensor("--rtol", ["x:abc"], parseNonNegative, "a number")).toThrow(/--rtol/);
    expect(() => parsePerTensor("--atol", ["1e-3x"], parseNonNegative, "a number")).toThrow(/'1e-3x'/);
  });
});

describe("default relative verdict", () => {
  const o = defaultCompareOptions();
  it("passes fp16 rounding noise, including cancellation on near-zero elements of a large MatMul", () => {
    const r = rng(7);
    const n = 1 << 16;
    const ref = new Float32Array(n).map(() => r() * 10);
    for (let i = 0; i < 50; i++) ref[i * 997] = 1e-6 * r(); // near-zero outputs after cancellation
    const cand = roundTo(ref, "fp16");
    for (let i = 0; i < 50; i++) cand[i * 997] = 3e-3 * r(); // huge relative error on those few
    const l = compareTensor(info, t("y", ref), t("y", cand), o)!;
    expect(l.metrics.maxRel).toBeGreaterThan(100);
    expect(l.verdict.passed).toBe(true);
  });
  it("fails a tensor flushed to zero by underflow (rel L2 = 1, every absolute error tiny)", () => {
    const ref = new Float32Array(1000).map((_, i) => 1e-9 * (1 + (i % 7))); // all below 2^-25
    const l = compareTensor(info, t("y", ref), t("y", roundTo(ref, "fp16")), o)!;
    expect(l.metrics.maxAbs).toBeLessThan(1e-7);
    expect(l.metrics.relL2).toBe(1);
    expect(l.verdict.passed).toBe(false);
    expect(l.evidence.join(" ")).toMatch(/underflow/);
  });
  it("fails new NaN/Inf and names overflow", () => {
    const ref = Float32Array.from([1, 2, 70000, 3]);
    const l = compareTensor(info, t("y", ref), t("y", roundTo(ref, "fp16")), o)!;
    expect(l.verdict.passed).toBe(false);
    expect(l.verdict.reason).toMatch(/new NaN\/Inf/);
    expect(l.metrics.maxAbs).toBe(Infinity);
  });
  it("does not fail NaN the reference has too", () => {
    const ref = Float32Array.from([NaN, 2, 3, 4]);
    const l = compareTensor(info, t("y", ref), t("y", Float32Array.from([NaN, 2, 3, 4])), o)!;
    expect(l.verdict.passed).toBe(true);
  });
  it("uses the precision's threshold and --max-rel-l2", () => {
    const ref = new Float32Array(100).fill(1);
    const cand = new Float32Array(100).fill(1.02); // rel L2 0.02
    expect(compareTensor(info, t("y", ref), t("y", cand), o)!.verdict.passed).toBe(false); // fp16: 1e-2
    expect(compareTensor({ ...info, precision: "bf16" }, t("y", ref), t("y", cand), o)!.verdict.passed).toBe(true); // bf16: 5e-2
    expect(compareTensor(info, t("y", ref), t("y", cand), { ...o, maxRelL2: 0.03 })!.verdict.passed).toBe(true);
  });
});

describe("Polygraphy verdicts", () => {
  const poly = (patch: Partial<CompareOptions>): CompareOptions => ({ ...defaultCompareOptions(), polygraphy: true, ...patch });
  const ref = Float32Array.from([1, 2, 100, 1000]);
  const cand = Float32Array.from([1.01, 2, 100.5, 1000]); // abs [0.01,0,0.5,0] rel [0.01,0,0.005,0]
  it("elemwise fails only where an element exceeds both atol and rtol", () => {
    const at = (atol: number, rtol: number) =>
      compareTensor(info, t("y", ref), t("y", cand), poly({ atol: { global: atol, byTensor: new Map() }, rtol: { global: rtol, byTensor: new Map() } }))!.verdict.passed;
    expect(at(0.6, 0)).toBe(true); // every abs <= 0.6
    expect(at(0, 0.011)).toBe(true); // every rel <= 0.011
    expect(at(0.02, 0.006)).toBe(true); // elem 0 passes by atol, elem 2 by rtol
    expect(at(0.005, 0.006)).toBe(false); // elem 0 exceeds both
    expect(at(1e-5, 1e-5)).toBe(false);
  });
  it("per-tensor values override the global one", () => {
    const o = poly({ atol: { global: 1e-5, byTensor: new Map([["y", 1]]) } });
    expect(compareTensor(info, t("y", ref), t("y", cand), o)!.verdict.passed).toBe(true);
    expect(compareTensor(info, t("z", ref), t("z", cand), o)!.verdict.passed).toBe(false);
  });
  it("max/mean statistics and the minimum tolerance that would have passed", () => {
    const o = poly({ checkErrorStat: { global: "mean", byTensor: new Map() }, atol: { global: 0.2, byTensor: new Map() } });
    const l = compareTensor(info, t("y", ref), t("y", cand), o)!;
    expect(l.verdict.passed).toBe(true); // mean abs 0.1275 <= 0.2
    expect(l.verdict.minTolerance.abs).toBeCloseTo(0.1275, 6);
    const m = compareTensor(info, t("y", ref), t("y", cand), { ...o, checkErrorStat: { global: "max", byTensor: new Map() } })!;
    expect(m.verdict.passed).toBe(false); // max abs 0.5 > 0.2 and max rel 0.01 > 1e-5
    expect(m.verdict.minTolerance.abs).toBeCloseTo(0.5, 6);
    expect(m.verdict.minTolerance.rel).toBeCloseTo(0.01, 6);
  });
  it("same-signed infinities compare equal only when asked", () => {
    const r = Float32Array.from([Infinity, 1]);
    expect(compareTensor(info, t("y", r), t("y", Float32Array.from(r)), poly({}))!.verdict.passed).toBe(false);
    expect(compareTensor(info, t("y", r), t("y", Float32Array.from(r)), poly({ infinitiesCompareEqual: true }))!.verdict.passed).toBe(true);
  });
});
