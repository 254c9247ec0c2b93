/**
 * A strongly typed Q/DQ model NOT written by `convert` (issue 11, brief h11b items 3 and 4): an
 * int8 MLP whose Relu runs in fp16 between Casts named as AutoCast or a hand-written model would
 * name them (`c_half`, `r_float`, not convert's `T__to_fp32`), built below with the graph
 * builder. The QuantizeLinear reading the Cast `r_float` of the fp16 tensor `r` gives r's scale
 * (the Casts are followed structurally), so `bisect REF --candidate` finds the layer reading a
 * planted over-clipping scale of `r` by name, and `calib check` flags `r`, with the Casts'
 * tensors not reported missing from the scales.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { readCalibrationCache } from "../src/calibration/cache.js";
import type { BisectResult } from "../src/workflows/bisect.js";
import { Rng } from "../scripts/models/common.js";
import { compareAndBisectCandidate } from "./int8-fixtures.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

let dir: string;
const f = (n: string) => path.join(dir, n);

const rng = new Rng("qdq-typed-handwritten");
const W1 = Float32Array.from({ length: 16 * 16 }, () => rng.uniform(-0.5, 0.5));
const W2 = Float32Array.from({ length: 16 * 8 }, () => rng.uniform(-0.5, 0.5));

function reference() {
  const b = new GraphBuilder("mlp");
  const x = b.input("x", "float32", [1, 16]);
  const c = b.node("MatMul", [x, b.initializer("w1", "float32", [16, 16], W1)], { name: "mm1", outputs: ["c"] });
  const r = b.node("Relu", [c], { name: "relu", outputs: ["r"] });
  b.output(b.node("MatMul", [r, b.initializer("w2", "float32", [16, 8], W2)], { name: "fc", outputs: ["y"] }), "float32", [1, 8]);
  return b.model({ opset: 13 });
}

/** ONNX QuantizeLinear's rounding: the float32 quotient, to nearest even. */
const rne = (v: number) => (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v));

/** Per-column (axis 1) symmetric int8 weights: s_c = max|w_c|/127, q = rne(float32(w/s_c)), as QuantizeLinear computes them. */
function quantizeColumns(w: Float32Array, cols: number): { q: Int8Array; s: Float32Array } {
  const s = new Float32Array(cols);
  for (let i = 0; i < w.length; i++) s[i % cols] = Math.max(s[i % cols]!, Math.abs(w[i]!));
  for (let c = 0; c < cols; c++) s[c] = Math.fround(s[c]! / 127);
  return { q: Int8Array.from(w, (v, i) => rne(Math.fround(v / s[i % cols]!))), s };
}

/**
 * The typed Q/DQ model: x and r quantized with scales sx, sr; Relu in fp16 between Casts.
 * `w2`: fc's weight as QuantizeLinear(float w2) with one per-tensor scale (and zero point) instead of int8 per column.
 */
function candidate(sx: number, sr: number, w2?: { scale: number; zp?: number }) {
  const b = new GraphBuilder("mlp");
  const zp = (n: string, len?: number) => (len === undefined ? b.initializer(n, "int8", [], Int8Array.of(0)) : b.initializer(n, "int8", [len], new Int8Array(len)));
  const qdq = (t: string, s: number, n: string) => {
    const sc = b.initializer(`${n}_s`, "float32", [], Float32Array.of(s));
    const z = zp(`${n}_z`);
    return b.node("DequantizeLinear", [b.node("QuantizeLinear", [t, sc, z], { name: `${n}_q`, outputs: [`${n}_q8`] }), sc, z], { name: `${n}_dq`, outputs: [`${n}_deq`] });
  };
  const wdq = (n: string, w: Float32Array, rows: number, cols: number) => {
    const { q, s } = quantizeColumns(w, cols);
    const qi = b.initializer(`${n}_int8`, "int8", [rows, cols], q);
    return b.node("DequantizeLinear", [qi, b.initializer(`${n}_scale`, "float32", [cols], s), zp(`${n}_zero`, cols)], { name: `${n}_dequant`, outputs: [`${n}_w`], attrs: { axis: 1 } });
  };
  const x = b.input("x", "float32", [1, 16]);
  const c = b.node("MatMul", [qdq(x, sx, "xq"), wdq("w1", W1, 16, 16)], { name: "mm1", outputs: ["c"] });
  const ch = b.node("Cast", [c], { name: "c_half", outputs: ["c16"], attrs: { to: 10 } });
  const r = b.node("Relu", [ch], { name: "relu", outputs: ["r"] });
  const rf = b.node("Cast", [r], { name: "r_float", outputs: ["r32"], attrs: { to: 1 } });
  const w2dq = w2
    ? (() => {
        const sc = b.initializer("w2_s", "float32", [], Float32Array.of(w2.scale));
        const z = b.initializer("w2_z", "int8", [], Int8Array.of(w2.zp ?? 0));
        return b.node("DequantizeLinear", [b.node("QuantizeLinear", [b.initializer("w2", "float32", [16, 8], W2), sc, z], { name: "w2_q" }), sc, z], { name: "w2_dq", outputs: ["w2_w"] });
      })()
    : wdq("w2", W2, 16, 8);
  b.output(b.node("MatMul", [qdq(rf, sr, "rq"), w2dq], { name: "fc", outputs: ["y"] }), "float32", [1, 8]);
  return b.model({ opset: 13 });
}

beforeAll(async () => {
  dir = tmpDir("trtdbg-qdq-typed-hand-");
  saveModel(reference(), f("ref.onnx"));
  expect((await cli("calib", "build", f("ref.onnx"), "-o", f("ref.cache"), "--calib-batches", "4", "--algo", "minmax", "-q", "--fusion", "none")).code).toBe(0);
  const c = await readCalibrationCache(f("ref.cache"));
  saveModel(candidate(c.scales.get("x")!, c.scales.get("r")!), f("good.onnx"));
  // planted: r quantized with 1/64 of its range (most of its values clip)
  saveModel(candidate(c.scales.get("x")!, Math.fround(c.scales.get("r")! / 64)), f("bad.onnx"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("a hand-written strongly typed Q/DQ model (Casts not named by convert)", () => {
  it("compare REF CAND: the good candidate passes, the planted one fails", async () => {
    expect((await cli("compare", f("ref.onnx"), f("good.onnx"), "--fusion", "none", "-q")).code).toBe(0);
    expect((await cli("compare", f("ref.onnx"), f("bad.onnx"), "--fusion", "none", "-q")).code).toBe(1);
  });

  it("bisect REF --candidate: r's scale comes through the Cast r_float; fc (reading r) is found by name, relu starts in fp16", async () => {
    const b = await cli("bisect", f("ref.onnx"), "--candidate", f("bad.onnx"), "--fusion", "none", "--json", f("b.json"), "--no-checkpoint");
    expect(b.code, b.stderr + b.stdout).toBe(0);
    expect(b.stdout).toContain(`candidate ${f("bad.onnx")} (int8, 1 layer(s) not in int8 to start with)`);
    const res = JSON.parse(fs.readFileSync(f("b.json"), "utf8")) as BisectResult;
    expect(res.pinned_layers).toEqual(["fc"]);
    expect(res.int8!.int8_layers).toBe(2);
    expect(res.int8!.fallbacks).toEqual([]);
    // the starting point computes the candidate: fc's output y stays fp32 as declared (not the fp16 fallback); metric = compare REF CAND's
    const r = await compareAndBisectCandidate(f("ref.onnx"), f("bad.onnx"), (n) => f(`r-${n}`));
    expect(r.compareCode).toBe(1);
    expect(r.baseline.metric).toBeCloseTo(r.compareRelL2, 5);
  });

  it("bisect REF --candidate with a per-tensor weight Q/DQ (QuantizeLinear of the float weight): its planted too-small scale is read and fc is found", async () => {
    const c = await readCalibrationCache(f("ref.cache"));
    const amax = W2.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    saveModel(candidate(c.scales.get("x")!, c.scales.get("r")!, { scale: Math.fround(amax / 127 / 16) }), f("badw.onnx"));
    saveModel(candidate(c.scales.get("x")!, c.scales.get("r")!, { scale: Math.fround(amax / 127) }), f("goodw.onnx"));
    expect((await cli("compare", f("ref.onnx"), f("goodw.onnx"), "--fusion", "none", "-q")).code).toBe(0);
    const r = await compareAndBisectCandidate(f("ref.onnx"), f("badw.onnx"), (n) => f(`w-${n}`));
    expect(r.compareCode).toBe(1);
    expect(r.bisectCode, r.bisectOutput).toBe(0);
    expect(r.pinned).toEqual(["fc"]);
    expect(r.baseline.metric).toBeCloseTo(r.compareRelL2, 5);
  });

  it("bisect REF --candidate refuses a weight zero point other than 0 with one line", async () => {
    const c = await readCalibrationCache(f("ref.cache"));
    saveModel(candidate(c.scales.get("x")!, c.scales.get("r")!, { scale: 0.01, zp: 3 }), f("zp.onnx"));
    expectUserError(await cli("bisect", f("ref.onnx"), "--candidate", f("zp.onnx"), "--no-checkpoint"), "w2_q", "zero point 3 is not 0");
  });

  it("calib check CAND: checks the fp32 model the scales are for (Casts removed) and flags r's planted scale", async () => {
    const r = await cli("calib", "check", f("bad.onnx"), "--calib-batches", "2", "--fusion", "none", "--json", f("cc.json"), "-q");
    expect(r.code, r.stderr + r.stdout).toBe(1);
    const j = JSON.parse(fs.readFileSync(f("cc.json"), "utf8"));
    const rows: { tensor: string; in_cache: boolean; cache_scale: number | null; flags: { code: string; severity: string }[] }[] = j.tensors;
    // the reference's tensors only: no Cast output (c16, r32) is checked or reported missing
    expect(rows.map((t) => t.tensor).sort()).toEqual(["c", "r", "x", "y"]);
    expect(j.missing_from_cache).toEqual(["c", "y"]);
    expect(j.unknown_in_cache).toEqual([]);
    const c = await readCalibrationCache(f("ref.cache"));
    expect(rows.find((t) => t.tensor === "r")!.cache_scale).toBe(Math.fround(c.scales.get("r")! / 64));
    expect(rows.find((t) => t.tensor === "r")!.flags.filter((x) => x.severity === "harmful").map((x) => x.code)).toContain("clipping");
    expect(rows.find((t) => t.tensor === "x")!.flags).toEqual([]);
    // the layers the model quantizes (explicit placement: their activation inputs come from a DequantizeLinear)
    expect(j.layers.map((l: { layer: string; precision: string }) => `${l.layer}:${l.precision}`)).toEqual(["mm1:int8", "relu:fp32", "fc:int8"]);
    expect(j.harmful_tensors).toEqual(["r"]);
    // suggestions name the Q/DQ model itself, not a temporary copy
    const y = j.worst.find((w: { tensor: string }) => w.tensor === "y");
    expect(y.suggestion).toBe(`not quantized in ${f("bad.onnx")}: add a QuantizeLinear/DequantizeLinear of it if a layer reading it should run quantized`);
  });
});
