/**
 * `bisect --int8 --calibration-cache C --save-onnx OUT.onnx` (issue 11): the verified plan
 * written as a Q/DQ model through convert --int8. On the outlier-tail fixture (bisect-int8.test.ts:
 * the plan pins relu6; Div `scale` falls back to fp32) the layers without Q/DQ are exactly the
 * pinned one and the fallback, every other layer reads a DequantizeLinear output, and
 * `compare REF OUT` passes the int8 criterion.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveModel } from "./support/graph-builder.js";
import { loadModel } from "../src/onnx/model.js";
import { prepareModelFile } from "../src/runtime/capture-runs.js";
import { calibBuild } from "../src/calibration/build.js";
import type { BisectResult } from "../src/workflows/bisect.js";
import { outlierTailModel } from "./int8-fixtures.js";
import { cli, tmpDir } from "./helpers.js";

let dir: string;
let model: string;
let cache: string;
let r: { code: number; stdout: string; stderr: string };
let out: string;

beforeAll(async () => {
  dir = tmpDir("trtdbg-bisect-qdq-");
  model = path.join(dir, "outlier_tail.onnx");
  saveModel(outlierTailModel(), model);
  cache = (await calibBuild({ model, algo: "minmax", output: path.join(dir, "minmax.cache") })).cache;
  out = path.join(dir, "sub", "tail.qdq.onnx");
  r = await cli("bisect", model, "--int8", "--calibration-cache", cache, "--save-onnx", out, "--json", path.join(dir, "b.json"), "--no-checkpoint");
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("bisect --int8 --save-onnx", () => {
  it("writes the plan as a Q/DQ model: the layers without Q/DQ are exactly the pin and the fp32 fallback", async () => {
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const res = JSON.parse(fs.readFileSync(path.join(dir, "b.json"), "utf8")) as BisectResult;
    expect(res.pinned_layers).toEqual(["relu6"]);
    expect(res.int8!.fallbacks.map((f) => f.layer)).toEqual(["scale"]);
    const q = res.saved_qdq!;
    expect(q.output).toBe(out);
    expect(q.fp32_layers.sort()).toEqual(["relu6", "scale"]);
    expect(q.compare!.passed).toBe(true);
    expect(q.compare!.detail).toMatch(/^passed, scale_output_0: rel L2 \S+ <= 0\.25$/);
    expect(q.trtexec).toBe(`trtexec --onnx=${out}`);
    // independently of the workflow's own check: read the file and find the layers fed by a DequantizeLinear
    const src = await prepareModelFile(model, {});
    const g = loadModel(out).proto.graph!;
    const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n.opType] as const)));
    const noQdq = src.model.graph.layers
      .filter((l) => {
        const inside = new Set(l.nodes.flatMap((n) => n.output));
        const names = new Set(l.nodes.map((n) => n.name));
        return !g.node.filter((n) => names.has(n.name)).some((n) => n.input.some((t) => !inside.has(t) && producer.get(t) === "DequantizeLinear"));
      })
      .map((l) => l.name);
    expect(noQdq.sort()).toEqual(["relu6", "scale"]);
    expect(src.model.graph.layers.length - noQdq.length).toBe(q.int8_layers.length);
    expect(g.node.filter((n) => n.opType === "QuantizeLinear").length).toBeGreaterThan(0);
    expect(r.stdout).toContain(`wrote ${out}: Q/DQ, ${q.int8_layers.length} layer(s) in int8, 2 in fp32 (no Q/DQ), re-verified (compare REF OUT: passed`);
    expect(r.stdout).toContain(`trtexec (TensorRT 11.x): trtexec --onnx=${out}`);
    expect(fs.readdirSync(path.dirname(out))).toEqual(["tail.qdq.onnx"]);
  });

  it("--int8 --fp16: the fallback is written strongly typed in fp16 around the Q/DQ (convert --int8 --fp16), re-verified", async () => {
    const o = path.join(dir, "tail.q16.onnx"), js = path.join(dir, "b16.json");
    const c = await cli("bisect", model, "--int8", "--fp16", "--calibration-cache", cache, "--save-onnx", o, "--json", js, "--no-checkpoint");
    expect(c.code, c.stderr + c.stdout).toBe(0);
    const res = JSON.parse(fs.readFileSync(js, "utf8")) as BisectResult;
    expect(res.int8!.fallbacks.map((f) => [f.layer, f.precision])).toEqual([["scale", "fp16"]]);
    const q = res.saved_qdq!;
    expect(q.reduced_layers).toEqual(["scale"]);
    expect(q.fp32_layers).toEqual(res.pinned_layers);
    expect(q.compare!.passed).toBe(true);
    expect(c.stdout).toContain(`wrote ${o}: Q/DQ, ${q.int8_layers.length} layer(s) in int8, ${q.fp32_layers.length} in fp32 (no Q/DQ), 1 in fp16 (strongly typed, no Q/DQ), re-verified`);
    const g = loadModel(o).proto.graph!;
    expect(g.node.some((n) => n.opType === "Cast" && n.attribute.some((a) => a.name === "to" && Number(a.i) === 10))).toBe(true); // Cast to float16
    expect((await cli("compare", model, o, "-q")).code).toBe(0);
  });

  it("compare REF OUT passes at the int8 threshold, as the bisect's final verification did", async () => {
    const c = await cli("compare", model, out, "--json", path.join(dir, "c.json"));
    expect(c.code, c.stderr + c.stdout).toBe(0);
    const j = JSON.parse(fs.readFileSync(path.join(dir, "c.json"), "utf8")) as { candidate_kind: string; passed: boolean; layers: { is_graph_output: boolean; metrics: { rel_l2: number } }[] };
    expect(j.candidate_kind).toBe("qdq");
    expect(j.passed).toBe(true);
    // the same number as the bisect's final verification, up to float32 summation order (docs/int8.md)
    const res = JSON.parse(fs.readFileSync(path.join(dir, "b.json"), "utf8")) as BisectResult;
    expect(j.layers.find((l) => l.is_graph_output)!.metrics.rel_l2).toBeCloseTo(res.final_verification!.metric!, 5);
  });

  it("with a --metric criterion the model is checked by its Q/DQ layers only (no compare verdict to re-check)", async () => {
    const o = path.join(dir, "cos.qdq.onnx"), js = path.join(dir, "cos.json");
    const c = await cli("bisect", model, "--int8", "--calibration-cache", cache, "--metric", "cosine", "--threshold", "0.99", "--save-onnx", o, "--json", js, "--no-checkpoint", "-q");
    expect(c.code, c.stderr + c.stdout).toBe(0);
    const res = JSON.parse(fs.readFileSync(js, "utf8")) as BisectResult;
    expect(res.saved_qdq!.compare).toBeNull();
    expect(res.saved_qdq!.fp32_layers.sort()).toEqual([...res.pinned_layers, "scale"].sort());
    expect(fs.existsSync(o)).toBe(true);
  });
});
