/**
 * `convert --int8` of a model with external data writes its weights as external data too
 * (OUT.onnx.data), as `convert --fp16|--bf16` does; `bisect --int8 --save-onnx` moves the data
 * file next to OUT with the model (docs/cli.md "convert --int8").
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TensorProto_DataLocation } from "onnx-buf";
import { GraphBuilder } from "./support/graph-builder.js";
import { Rng } from "../scripts/models/common.js";
import { saveModel } from "../src/onnx/model-file.js";
import { loadModel } from "../src/onnx/model.js";
import { cli, tmpDir } from "./helpers.js";

const dir = tmpDir("trtdbg-convext-");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const inline = path.join(dir, "net.onnx");
const ext = path.join(dir, "ext", "net.onnx");
const cache = path.join(dir, "net.cache");
const externalInits = (f: string) => loadModel(f).proto.graph!.initializer.filter((t) => t.dataLocation === TensorProto_DataLocation.EXTERNAL).map((t) => t.name);

/** x[1,16,8,8] -> conv (32x16x3x3, pad 1) -> relu -> conv2 (16x32x1x1) -> y: int8 weights of 4608 and 512 bytes. */
function twoConvs() {
  const rng = new Rng("convert_external");
  const b = new GraphBuilder("two_convs");
  const x = b.input("x", "float32", [1, 16, 8, 8]);
  let h = b.node("Conv", [x, b.initializer("conv.w", "float32", [32, 16, 3, 3], rng.uniforms(4608, -0.2, 0.2))], { name: "conv", outputs: ["conv_out"], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } });
  h = b.node("Relu", [h], { name: "relu", outputs: ["relu_out"] });
  h = b.node("Conv", [h, b.initializer("conv2.w", "float32", [16, 32, 1, 1], rng.uniforms(512, -0.5, 0.5))], { name: "conv2", outputs: ["y"] });
  b.output(h, "float32");
  return b.model({ opset: 13 });
}

describe("convert --int8 of an external-data model", () => {
  beforeAll(async () => {
    const m = twoConvs();
    saveModel(m, inline);
    fs.mkdirSync(path.dirname(ext));
    saveModel(m, ext, { externalData: { location: "net.onnx.data", threshold: 16 } });
    expect(externalInits(ext)).toContain("conv.w");
    const r = await cli("calib", "build", inline, "-o", cache, "--calib-batches", "2", "-q");
    expect(r.code, r.stderr).toBe(0);
  });

  it("writes OUT.onnx.data, and the Q/DQ model equals the one converted from the inline model", async () => {
    const outs = [path.join(dir, "q-inline.onnx"), path.join(dir, "out", "q-ext.onnx")];
    const r1 = await cli("convert", inline, "--int8", "--calibration-cache", cache, "-o", outs[0]!, "--json", path.join(dir, "q1.json"));
    const r2 = await cli("convert", ext, "--int8", "--calibration-cache", cache, "-o", outs[1]!, "--json", path.join(dir, "q2.json"));
    expect(r1.code, r1.stderr).toBe(0);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toContain(`wrote ${outs[1]} (+ ${outs[1]}.data)`);
    expect(JSON.parse(fs.readFileSync(path.join(dir, "q2.json"), "utf8")).data).toBe(`${outs[1]}.data`);
    expect(JSON.parse(fs.readFileSync(path.join(dir, "q1.json"), "utf8")).data).toBeNull();
    expect(fs.statSync(`${outs[1]}.data`).size).toBeGreaterThan(0);
    expect(externalInits(outs[1]!).length).toBeGreaterThan(0);
    expect(externalInits(outs[0]!)).toEqual([]);
    const c = await cli("compare", outs[0]!, outs[1]!, "--json", path.join(dir, "qq.json"), "-q");
    expect(c.code, c.stderr).toBe(0);
    const rows = JSON.parse(fs.readFileSync(path.join(dir, "qq.json"), "utf8")).layers as { metrics: { max_abs: number } }[];
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const row of rows) expect(row.metrics.max_abs).toBe(0);
  });

  it("bisect --int8 --save-onnx moves the data file next to OUT", async () => {
    const out = path.join(dir, "saved", "plan-q.onnx");
    const r = await cli("bisect", ext, "--int8", "--calibration-cache", cache, "--save-onnx", out, "--no-checkpoint");
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(`${out}.data`)).toBe(true);
    expect((await cli("run", out, "-q")).code).toBe(0);
  });
});

describe("convert of an external-data model whose tensors are all under 1 KiB", () => {
  it("writes no OUT.onnx.data (not a 0-byte file) and prints no (+ ...)", async () => {
    const rng = new Rng("convert_external_small");
    const b = new GraphBuilder("small_ext");
    const x = b.input("x", "float32", [1, 8]);
    const h = b.node("MatMul", [x, b.initializer("w", "float32", [8, 8], rng.uniforms(64, -0.5, 0.5))], { name: "mm", outputs: ["y"] });
    b.output(h, "float32");
    const src = path.join(dir, "small", "net.onnx");
    fs.mkdirSync(path.dirname(src));
    saveModel(b.model({ opset: 13 }), src, { externalData: { location: "net.onnx.data", threshold: 16 } });
    expect(externalInits(src)).toEqual(["w"]);
    const out = path.join(dir, "small", "half.onnx");
    const r = await cli("convert", src, "--fp16", "-o", out, "--json", path.join(dir, "small", "c.json"));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split("\n").find((l) => l.startsWith("converted "))).toMatch(/; wrote \S+half\.onnx$/);
    expect(r.stdout).not.toContain("(+ ");
    expect(fs.existsSync(`${out}.data`)).toBe(false);
    expect(JSON.parse(fs.readFileSync(path.join(dir, "small", "c.json"), "utf8")).data).toBeNull();
    expect(externalInits(out)).toEqual([]);
    expect((await cli("run", out, "-q")).code).toBe(0);
  });

  it("saveModel with a threshold no tensor reaches writes only the model", () => {
    const m = twoConvs();
    const out = path.join(dir, "small", "inline.onnx");
    const r = saveModel(m, out, { externalData: { location: "inline.onnx.data", threshold: 1 << 20 } });
    expect(r).toEqual({ model: out });
    expect(fs.existsSync(`${out}.data`)).toBe(false);
    expect(externalInits(out)).toEqual([]);
  });
});
