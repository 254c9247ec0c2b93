/**
 * `convert --int8 --calib-data IMAGES --image-preprocess ...` calibrates as `calib build` does
 * with the same flags (convert had no input flags: "Unknown arguments: image-preprocess");
 * input flags without convert's own calibration are refused in one line.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PNG } from "pngjs";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { Rng } from "../scripts/models/common.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

const dir = tmpDir("trtdbg-convcal-");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const model = path.join(dir, "net.onnx");
const images = path.join(dir, "imgs");
const PRE = "size=8x8,mean=[0.5,0.5,0.5],std=[0.25,0.25,0.25]";
const cacheBody = (f: string) => fs.readFileSync(f, "utf8").split("\n").slice(1).join("\n"); // after the header line

describe("convert --int8 --calib-data with input flags", () => {
  beforeAll(() => {
    const rng = new Rng("convert_calib_inputs");
    const b = new GraphBuilder("img_net");
    const x = b.input("x", "float32", [1, 3, 8, 8]);
    let h = b.node("Conv", [x, b.initializer("conv.w", "float32", [4, 3, 3, 3], rng.uniforms(108, -0.5, 0.5))], { name: "conv", outputs: ["conv_out"], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } });
    h = b.node("Relu", [h], { name: "relu", outputs: ["relu_out"] });
    h = b.node("Conv", [h, b.initializer("conv2.w", "float32", [2, 4, 1, 1], rng.uniforms(8, -1, 1))], { name: "conv2", outputs: ["y"] });
    b.output(h, "float32");
    saveModel(b.model({ opset: 13 }), model);
    fs.mkdirSync(images);
    for (const name of ["a.png", "b.png"]) {
      const p = new PNG({ width: 16, height: 16 });
      for (let i = 0; i < 16 * 16; i++) p.data.set([Math.floor(rng.uniforms(1, 0, 255)[0]!), Math.floor(rng.uniforms(1, 0, 255)[0]!), Math.floor(rng.uniforms(1, 0, 255)[0]!), 255], i * 4);
      fs.writeFileSync(path.join(images, name), PNG.sync.write(p));
    }
  });

  it("the cache convert writes equals calib build's with the same --image-preprocess, and differs without it", async () => {
    const out = path.join(dir, "q.onnx");
    const r = await cli("convert", model, "--int8", "--calib-data", images, "--image-preprocess", PRE, "-o", out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/calibrated \d+ tensors with entropy on 2 batches/);
    const ref = path.join(dir, "ref.cache");
    expect((await cli("calib", "build", model, "--calib-data", images, "--image-preprocess", PRE, "-o", ref, "-q")).code).toBe(0);
    const plain = path.join(dir, "plain.cache");
    expect((await cli("calib", "build", model, "--calib-data", images, "-o", plain, "-q")).code).toBe(0);
    expect(cacheBody(`${out}.cache`)).toBe(cacheBody(ref));
    expect(cacheBody(ref)).not.toBe(cacheBody(plain));
  });

  it("input flags without convert's calibration: one line, exit 2", async () => {
    const out = path.join(dir, "never.onnx");
    expectUserError(await cli("convert", model, "--fp16", "--image-preprocess", PRE, "-o", out), "--image-preprocess: only when convert --int8/--fp8 calibrates");
    expectUserError(await cli("convert", model, "--int8", "--calibration-cache", path.join(dir, "ref.cache"), "--val-range", "[0,2]", "-o", out), "--val-range: only when convert --int8/--fp8 calibrates");
    expectUserError(await cli("convert", model, "--int8", "--calib-batches", "2", "--save-inputs", path.join(dir, "s.arrow"), "-o", out), "--save-inputs: not available for convert");
    expect(fs.existsSync(out)).toBe(false);
  });
});
