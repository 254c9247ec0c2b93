/**
 * Real inputs on the command line: several input sets through run/validate/compare (a planted
 * fp16 overflow only in the 2nd set), --save-inputs round trip, loader scripts, calib build
 * from a folder of PNGs, and malformed files as one-line errors with exit 2.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PNG } from "pngjs";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { encodeNpy } from "../src/io/npy.js";
import { encodePolygraphyArray } from "../src/io/polygraphy-json.js";
import { readCalibrationCache } from "../src/calibration/cache.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

let dir: string;
let model: string;
let imgModel: string;
let poly: string;

const f32 = (v: number[]) => ({ dtype: "float32" as const, dims: [1, 4], data: Float32Array.from(v) });
const readJson = (f: string) => JSON.parse(fs.readFileSync(f, "utf8")) as Record<string, any>;

beforeAll(() => {
  dir = tmpDir("trtdbg-inputs-cli-");
  // x [1,4] → mul (×1000) → relu → y: x = 100 gives 1e5, beyond float16's 65504.
  const b = new GraphBuilder("m");
  const x = b.input("x", "float32", [1, 4]);
  const w = b.initializer("w", "float32", [1, 4], Float32Array.from([1000, 1000, 1000, 1000]));
  const m = b.node("Mul", [x, w], { name: "mul", outputs: ["m"] });
  const y = b.node("Relu", [m], { name: "relu", outputs: ["y"] });
  b.output(y, "float32");
  model = path.join(dir, "m.onnx");
  saveModel(b.model({ opset: 17 }), model);

  const g = new GraphBuilder("img");
  const img = g.input("img", "float32", [1, 3, 4, 4]);
  const k = g.initializer("k", "float32", [2, 3, 1, 1], Float32Array.from([1, 0.5, 0.25, -1, 2, 1]));
  const c = g.node("Conv", [img, k], { name: "conv", outputs: ["c"] });
  const r = g.node("Relu", [c], { name: "relu", outputs: ["out"] });
  g.output(r, "float32");
  imgModel = path.join(dir, "img.onnx");
  saveModel(g.model({ opset: 17 }), imgModel);

  // Two iterations: the first fine, the second overflows float16 in 'mul'.
  poly = path.join(dir, "inputs.json");
  fs.writeFileSync(poly, JSON.stringify([{ x: encodePolygraphyArray(f32([0.1, 0.2, 0.3, 0.4])) }, { x: encodePolygraphyArray(f32([0.5, 100, 0.25, 1])) }]));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("several input sets", () => {
  it("compare: FAIL naming the layer and the iteration where only the 2nd set overflows fp16", async () => {
    const json = path.join(dir, "cmp.json");
    const r = await cli("compare", model, "--fp16", "--load-inputs", poly, "--json", json);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("iteration 0:");
    expect(r.stdout).toContain("iteration 1:");
    expect(r.stdout).toMatch(/first failing layer: mul \(Mul, tensor m, iteration 1\)/);
    expect(r.stdout).toMatch(/FAILED: the graph outputs differ beyond tolerance \(first in iteration 1\)/);
    const s = readJson(json);
    expect(s.passed).toBe(false);
    expect(s.first_failing_iteration).toBe(1);
    expect(s.first_failing_layer).toBe("mul");
    expect(s.iterations).toEqual([
      { iteration: 0, passed: true, first_failing_layer: null, first_failing_tensor: null },
      { iteration: 1, passed: false, first_failing_layer: "mul", first_failing_tensor: "m" },
    ]);
    const mul = s.layers.find((l: any) => l.tensor === "m");
    expect(mul).toMatchObject({ iteration: 1, passed: false });
    expect(mul.metrics.cand_inf).toBe(1);

    // The first set alone passes.
    const one = path.join(dir, "one.npy");
    fs.writeFileSync(one, encodeNpy(f32([0.1, 0.2, 0.3, 0.4])));
    const ok = await cli("compare", model, "--fp16", "--load-inputs", one, "--json", path.join(dir, "one.json"));
    expect(ok.code).toBe(0);
    const s1 = readJson(path.join(dir, "one.json"));
    expect(s1.first_failing_iteration).toBeUndefined();
    expect(s1.layers.every((l: any) => l.iteration === undefined)).toBe(true);
  });

  it("run and validate run every set; --save-inputs writes all of them and loads back", async () => {
    const saved = path.join(dir, "saved.arrow");
    const out = path.join(dir, "dumps");
    const json = path.join(dir, "run.json");
    const r = await cli("run", model, "--fp16", "--load-inputs", poly, "--save-inputs", saved, "--save-outputs", out, "--json", json, "--validate");
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("fp16 (iteration 0): no NaN/Inf");
    expect(r.stdout).toContain("fp16 (iteration 1): NaN/Inf in");
    const res = readJson(json);
    expect(res.iterations).toBe(2);
    expect(res.runs.map((x: any) => [x.iteration, x.dump])).toEqual([
      [0, path.join(out, "fp16.0.arrow")],
      [1, path.join(out, "fp16.1.arrow")],
    ]);
    expect(fs.existsSync(path.join(out, "fp16.1.arrow"))).toBe(true);
    const v = await cli("validate", model, "--fp16", "--load-inputs", saved, "--json", path.join(dir, "val.json"));
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/FAILED: NaN\/Inf in \d+ of \d+ tensors over 2 input sets; first failing layer: mul \(iteration 1\)/);
    expect(readJson(path.join(dir, "val.json")).first_failing_iteration).toBe(1);
    // The saved sets are the loaded ones, value for value.
    const again = path.join(dir, "again.json");
    expect((await cli("run", model, "--load-inputs", saved, "--json", again, "-q")).code).toBe(0);
    const outs = readJson(again).runs.map((x: any) => x.outputs[0].max);
    expect(outs).toEqual([Math.fround(0.4) * 1000, 100000].map((x) => Math.fround(x)));
  });

  it("a bad later set is a user error and leaves no --save-inputs file (nor its temp file)", async () => {
    const sets = path.join(dir, "sets");
    const saveDir = path.join(dir, "save-fail");
    fs.mkdirSync(sets);
    fs.mkdirSync(saveDir);
    fs.writeFileSync(path.join(sets, "a.npy"), encodeNpy(f32([1, 2, 3, 4])));
    fs.writeFileSync(path.join(sets, "b.npy"), encodeNpy({ dtype: "float32", dims: [1, 3], data: Float32Array.from([1, 2, 3]) }));
    const r = await cli("run", model, "--load-inputs", sets, "--save-inputs", path.join(saveDir, "in.arrow"));
    expectUserError(r, "b.npy: input 'x': got shape [1,3], model expects [1,4]");
    expect(fs.readdirSync(saveDir)).toEqual([]);
  });

  it("--data-loader-script feeds every set", async () => {
    const script = path.join(dir, "loader.mjs");
    fs.writeFileSync(script, `export async function* load() { yield { x: new Float32Array([1, 2, 3, 4]) }; yield { x: new Float32Array([5, 6, 7, 8]) }; }\n`);
    const json = path.join(dir, "dl.json");
    const r = await cli("run", model, "--data-loader-script", script, "--json", json, "-q");
    expect(r.code).toBe(0);
    expect(readJson(json).runs.map((x: any) => [x.iteration, x.outputs[0].min, x.outputs[0].max])).toEqual([
      [0, 1000, 4000],
      [1, 5000, 8000],
    ]);
    expectUserError(await cli("run", model, "--data-loader-script", script, "--load-inputs", poly), "--data-loader-script and --load-inputs");
  });
});

describe("malformed input files: one line, exit 2", () => {
  const npy = () => encodeNpy(f32([1, 2, 3, 4]));
  const cases: [string, () => Uint8Array | string, RegExp][] = [
    ["trunc.npy", () => npy().subarray(0, npy().length - 5), /trunc\.npy: the header says shape \(1, 4\).*truncated/],
    ["magic.npy", () => Uint8Array.from([0x50, ...npy().subarray(1)]), /magic\.npy: not a \.npy file \(bad magic/],
    ["lies.npy", () => {
      const b = Buffer.from(npy());
      b.write("(2, 4)", b.indexOf("(1, 4)"), "latin1");
      return b;
    }, /lies\.npy: the header says shape \(2, 4\) of <f4 \(32 bytes of data\) but the file holds 16 bytes/],
    ["dtype.npy", () => encodeNpy({ dtype: "int8", dims: [1, 4], data: Int8Array.from([1, 2, 3, 4]) }), /dtype\.npy: input 'x': got int8, model expects float32; save it as float32/],
    ["b64.json", () => JSON.stringify([{ x: { array: "!!!", polygraphy_class: "ndarray" } }]), /b64\.json: iteration 0, input 'x': .*bad base64/],
    ["dict.json", () => JSON.stringify({ x: 1 }), /dict\.json: a Polygraphy inputs file is a JSON list/],
  ];
  for (const [name, make, re] of cases) {
    it(name, async () => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, make());
      expectUserError(await cli("run", model, "--load-inputs", f), "--load-inputs", re);
    });
  }
  it("a bad --image-preprocess and an unknown NAME:", async () => {
    const f = path.join(dir, "ok.npy");
    fs.writeFileSync(f, npy());
    expectUserError(await cli("run", model, "--load-inputs", f, "--image-preprocess", "resize=zoom"), "--image-preprocess", "resize=zoom: expected one of stretch, pad, crop");
    expectUserError(await cli("run", model, "--load-inputs", `nope:${f}`), "the model has no input 'nope'; model inputs: x");
  });
});

describe("images and loader scripts for an image model", () => {
  let imgs: string;
  beforeAll(() => {
    imgs = path.join(dir, "pngs");
    fs.mkdirSync(imgs);
    const brightest = [90, 200, 140];
    brightest.forEach((v, k) => {
      const p = new PNG({ width: 4, height: 4 });
      for (let i = 0; i < 16; i++) p.data.set([v, (i * 7) % v, 0, 255], i * 4);
      fs.writeFileSync(path.join(imgs, `im${k}.png`), PNG.sync.write(p));
    });
  });

  it("compare --load-inputs FOLDER of PNGs: one iteration per image", async () => {
    const json = path.join(dir, "imgcmp.json");
    const r = await cli("compare", imgModel, "--fp16", "--load-inputs", imgs, "--json", json, "-q");
    expect(r.code).toBe(0);
    expect(readJson(json).iterations.map((x: any) => x.passed)).toEqual([true, true, true]);
  });

  it("calib build --data-loader-script: one batch per feed", async () => {
    const script = path.join(dir, "calib-loader.mjs");
    fs.writeFileSync(script, `export default function () { return [0.5, 2].map((v) => ({ img: new Float32Array(48).fill(v) })); }\n`);
    const cache = path.join(dir, "dl.cache");
    const r = await cli("calib", "build", imgModel, "-o", cache, "--data-loader-script", script, "--algo", "minmax");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/on 2 batches .*\(data: data loader script/);
    expect(Math.abs((await readCalibrationCache(cache)).scales.get("img")! * 127 - 2)).toBeLessThan(1e-6);
  });

  it("calib build --calib-data FOLDER of PNGs: every image with the same preprocessing (cache written, input amax = brightest pixel / 255)", async () => {
    const cache = path.join(dir, "png.cache");
    const r = await cli("calib", "build", imgModel, "-o", cache, "--calib-data", imgs, "--algo", "minmax");
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/RANDOM/);
    expect(r.stdout).toMatch(/on 3 batches .*\(data: .*pngs\)/);
    const c = await readCalibrationCache(cache);
    const amax = c.scales.get("img")! * 127;
    expect(Math.abs(amax - 200 / 255)).toBeLessThan(1e-6);
  });
});
