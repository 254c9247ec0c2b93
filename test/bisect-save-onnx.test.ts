/**
 * `bisect --save-onnx OUT.onnx` (issue 11, deliverable 5): the verified plan written as a
 * strongly typed model whose fp32 layers are exactly the plan's, that passes `compare OUT`, with
 * the TensorRT 11 trtexec and ModelOpt AutoCast commands; refusals before any search.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveModel } from "./support/graph-builder.js";
import { prepareModelFile } from "../src/runtime/capture-runs.js";
import { matmulConsumer } from "../scripts/models/matmul-consumer.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

let dir: string;
let mm: string;

beforeAll(() => {
  dir = tmpDir("trtdbg-bisect-save-");
  mm = path.join(dir, "matmul_consumer.onnx");
  saveModel(matmulConsumer().model, mm);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("bisect --save-onnx", () => {
  it("writes the plan as a typed model: fp32 layers = the plan, compare passes, commands printed", async () => {
    const out = path.join(dir, "out", "mm.typed.onnx");
    const json = path.join(dir, "out", "r.json");
    const r = await cli("bisect", mm, "--fp16", "--no-checkpoint", "--save-onnx", out, "--json", json);
    expect(r.code).toBe(0);
    const j = JSON.parse(fs.readFileSync(json, "utf8"));
    expect(j.pinned_layers).toEqual(["mm_big", "scale_after"]);
    expect(j.saved_onnx.fp32_layers).toEqual(["mm_big", "scale_after"]);
    // the file itself: strongly typed, its fp32 float layers are exactly the plan's
    const p = await prepareModelFile(out);
    expect(p.model.typed).toBeTruthy();
    const declared = new Map(p.model.graph.layers.map((l, i) => [l.name, p.model.typed!.precisions![i]]));
    const src = await prepareModelFile(mm);
    for (const l of src.model.graph.layers) expect([l.name, declared.get(l.name)]).toEqual([l.name, ["mm_big", "scale_after"].includes(l.name) ? "fp32" : "fp16"]);
    expect(fs.readdirSync(path.dirname(out)).sort()).toEqual(["mm.typed.onnx", "r.json"]); // no temp folder left
    expect(r.stdout).toContain(`wrote ${out}: strongly typed, 2 layer(s) in fp32, re-verified as typed`);
    expect(r.stdout).toContain(`trtexec (TensorRT 11.x): trtexec --onnx=${out}`);
    expect(r.stdout).toContain(`modelopt autocast (same plan from the fp32 model): python -m modelopt.onnx.autocast --onnx_path ${mm} --output_path ${out} --low_precision_type fp16 --nodes_to_exclude '^mm_big$' '^scale_after$'`);
    expect(r.stdout).toContain("trtexec (TensorRT <= 10.x): --layerPrecisions=mm_big:fp32,scale_after:fp32");
    // the typed model passes compare (the typed run against its fp32 lift)
    const c = await cli("compare", out);
    expect(c.code).toBe(0);
  });

  it("without --save-onnx, the TensorRT 11 line points to it", async () => {
    const r = await cli("bisect", mm, "--fp16", "--no-checkpoint");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("TensorRT 11.x (strongly typed only): write the plan as a typed model with --save-onnx OUT.onnx");
  });

  it("refuses fp16 pins, and int8 searches whose pins are neither fp32 nor the fallback type, before searching", async () => {
    expectUserError(await cli("bisect", mm, "--fp16", "--precision", "fp16", "--no-checkpoint", "--save-onnx", path.join(dir, "x.onnx")), "--save-onnx");
    expectUserError(await cli("bisect", mm, "--int8", "--bf16", "--precision", "fp16", "--no-checkpoint", "--save-onnx", path.join(dir, "y.onnx")), "--save-onnx", "fp32 or bf16", "drop --precision fp16");
    expectUserError(await cli("bisect", mm, "--int8", "--precision", "fp16", "--no-checkpoint", "--save-onnx", path.join(dir, "y.onnx")), "--save-onnx", "drop --precision fp16");
    expect(fs.existsSync(path.join(dir, "x.onnx"))).toBe(false);
  });
});
