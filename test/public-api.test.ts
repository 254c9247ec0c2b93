// Every workflow the CLI offers, driven through the public entry point (src/index.ts, which
// package.json "exports" names as the package's only entry): run, validate (model and dump),
// compare (model and dumps), bisect, calib build, calib check, inspect. Planted failures of
// the golden models are found by name; user mistakes are UserErrors naming the option.
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import * as api from "../src/index.js";
import {
  bisectModel,
  calibBuild,
  calibCheck,
  compareDumps,
  compareModel,
  defaultCompareOptions,
  inspectModel,
  openDump,
  readCalibrationCache,
  runModel,
  UserError,
  validateDump,
  validateModel,
} from "../src/index.js";
import { PNG } from "pngjs";
import { saveModel } from "./support/graph-builder.js";
import { smallInt8Model } from "./int8-fixtures.js";
import { GOLDEN, ROOT, tmpDir } from "./helpers.js";

const EXP = path.join(GOLDEN, "exp_overflow.onnx");
const expected = JSON.parse(fs.readFileSync(path.join(GOLDEN, "exp_overflow.expected.json"), "utf8")) as { firstFailingFp16: string; failingTensor: string; nodeCount: number; minimalPinSet: string[] };

describe("public API (src/index.ts)", () => {
  const dir = tmpDir("trtdbg-api-");
  let small = "";
  beforeAll(() => {
    small = path.join(dir, "small_int8.onnx");
    saveModel(smallInt8Model(), small);
  });

  it("exports the workflows and no internals", () => {
    for (const f of ["runModel", "validateModel", "validateDump", "compareModel", "compareDumps", "bisectModel", "calibBuild", "calibCheck", "inspectModel"]) {
      expect(typeof (api as Record<string, unknown>)[f], f).toBe("function");
    }
    for (const internal of ["Executor", "planSegments", "runCaptured", "runPaired", "prepareModelFile", "numeric", "applyLayerModel", "inferTypes"]) {
      expect(internal in api, internal).toBe(false);
    }
  });

  it("inspect: the layers under TensorRT's layer model", async () => {
    const r = await inspectModel({ model: EXP, fusion: "none" });
    expect(r.format).toBe("trt-debug/inspect@1");
    expect(r.layers.map((l) => l.name)).toContain(expected.firstFailingFp16);
    expect(r.layers).toHaveLength(expected.nodeCount);
    expect(r.inputs).toEqual([{ name: "x", dtype: "float32", dims: [1, 8, 32] }]);
  });

  it("run + validate (model and dump): the planted fp16 overflow, by layer", async () => {
    const out = path.join(dir, "run");
    const r = await runModel({ model: EXP, precisions: ["fp16"], capture: { kind: "all" }, saveOutputs: out, fusion: "none" });
    expect(r.runs).toHaveLength(1);
    expect(r.runs[0]!.first_failing_layer).toBe(expected.firstFailingFp16);
    const dump = r.runs[0]!.dump!;
    expect(dump).toBe(path.join(out, "fp16.arrow"));
    const v = await validateModel({ model: EXP, precision: "fp16", fusion: "none" });
    expect(v.passed).toBe(false);
    expect(v.first_failing_layer).toBe(expected.firstFailingFp16);
    const d = await validateDump(dump);
    expect(d.passed).toBe(false);
    expect(d.first_failing_layer).toBe(expected.firstFailingFp16);
    const rd = await openDump(dump);
    try {
      expect(rd.meta.precision).toBe("fp16");
    } finally {
      await rd.close();
    }
    const fp32 = await validateModel({ model: EXP, precision: "fp32", fusion: "none" });
    expect(fp32.passed).toBe(true);
  });

  it("compare (model and two dumps): FAIL at the planted layer", async () => {
    const s = await compareModel({ model: EXP, candidate: "fp16", compare: defaultCompareOptions(), fusion: "none", saveOutputs: path.join(dir, "cmp") });
    expect(s.passed).toBe(false);
    expect(s.first_failing_layer).toBe(expected.firstFailingFp16);
    const t = await compareDumps(path.join(dir, "cmp", "fp32.arrow"), path.join(dir, "cmp", "fp16.arrow"), defaultCompareOptions());
    expect(t.passed).toBe(false);
    expect(t.first_failing_layer).toBe(expected.firstFailingFp16);
  });

  it("renderReport: a live compare with LayerSampler samples, one self-contained HTML page", async () => {
    const sampler = new api.LayerSampler({ layers: 2, points: 10 });
    const s = await compareModel({ model: EXP, candidate: "fp16", compare: defaultCompareOptions(), fusion: "none" }, { onTensors: sampler.offer });
    const samples = sampler.samples();
    expect(samples).toHaveLength(2);
    expect(samples[0]!.passed).toBe(false);
    expect(samples[0]!.index.length).toBeLessThanOrEqual(10);
    const html = api.renderReport(s, { samples });
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    const island = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]!;
    const data = JSON.parse(island) as { kind: string; result: { first_failing_layer: string }; samples: unknown[] };
    expect(data.kind).toBe("compare");
    expect(data.result.first_failing_layer).toBe(expected.firstFailingFp16);
    expect(data.samples).toHaveLength(2);
    expect(api.reportKind(s)).toBe("compare");
    expect(() => api.renderReport({ format: "trt-debug/run@1" })).toThrow(UserError);
  });

  it("bisect: the minimal pin set of the golden model, by name", async () => {
    const b = await bisectModel({ model: EXP, precision: "fp16", mode: "minimal", criterion: { kind: "compare", compare: defaultCompareOptions() }, fusion: "none" });
    expect(b.found).toBe(true);
    expect(b.pinned.map((l) => l.name).sort()).toEqual([...expected.minimalPinSet].sort());
  });

  it("calib build + calib check: a cache written, read back and checked", async () => {
    const cache = path.join(dir, "small.cache");
    const b = await calibBuild({ model: small, algo: "minmax", output: cache, calibBatches: 2, fusion: "none" });
    expect(b.cache).toBe(cache);
    const read = await readCalibrationCache(cache);
    expect(read.scales.size).toBe(b.tensors.length);
    for (const t of b.tensors) expect(read.scales.get(t.tensor)).toBeCloseTo(t.scale, 12);
    const k = await calibCheck({ model: small, calibrationCache: cache, calibBatches: 2, fusion: "none" });
    expect(k.format).toMatch(/^trt-debug\/calib-check@/);
    expect(k.tensors.length).toBe(b.tensors.length);
  });

  it("user errors are UserErrors naming the option (the CLI spells it as the flag)", async () => {
    const err = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (e) {
        return e as UserError;
      }
      throw new Error("expected a UserError");
    };
    const seg = await err(runModel({ model: EXP, precisions: ["fp16"], capture: { kind: "outputs" }, segmentLayers: 0 }));
    expect(seg).toBeInstanceOf(UserError);
    expect(seg.option).toBe("segmentLayers");
    expect(seg.message).toBe("segmentLayers: must be a positive integer (got 0)");
    const vr = await err(runModel({ model: EXP, precisions: ["fp32"], capture: { kind: "outputs" }, inputs: { inputValRanges: { nope: { lo: 0, hi: 1 } } } }));
    expect(vr.option).toBe("inputValRanges");
    expect(vr.message).toMatch(/^inputValRanges: 'nope' is not an input of .*exp_overflow\.onnx; its inputs are: x$/);
    expect((await err(runModel({ model: EXP, precisions: ["fp32"], capture: { kind: "outputs" }, inputs: { seed: -1 } }))).message).toBe("seed: -1: expected an integer from 0 to 4294967295");
    expect((await err(runModel({ model: EXP, precisions: ["fp32"], capture: { kind: "outputs" }, inputs: { valRange: { lo: 2, hi: 1 } } }))).message).toBe("valRange: lo 2 is greater than hi 1");
    expect((await err(calibBuild({ model: small, algo: "minmax", output: path.join(dir, "s.cache"), segmentLayers: 1.5 }))).option).toBe("segmentLayers");
    const mark = await err(runModel({ model: EXP, precisions: ["fp32"], capture: { kind: "marked", patterns: ["nope"] } }));
    expect([mark.option, mark.message.split(":")[0]]).toEqual(["capture", "capture"]);
    const bc = await err(bisectModel({ model: EXP, precision: "fp16", boundaryCache: -1, criterion: { kind: "compare", compare: defaultCompareOptions() } }));
    expect([bc.option, bc.message]).toEqual(["boundaryCache", "boundaryCache: must be a non-negative integer (got -1)"]);
    const clip = await err(calibCheck({ model: small, calibrationCache: path.join(dir, "none.cache"), thresholds: { maxClipFraction: 2 } }));
    expect([clip.option, clip.message]).toEqual(["maxClipFraction", "maxClipFraction 2: expected a fraction in [0, 1]"]);
    await expect(inspectModel({ model: path.join(dir, "missing.onnx") })).rejects.toThrow(UserError);
  });

  it("typed input options generate the same inputs as the CLI's flags", async () => {
    const lib = path.join(dir, "lib-inputs.arrow");
    await runModel({ model: EXP, precisions: ["fp32"], capture: { kind: "outputs" }, inputs: { seed: 7, valRange: { lo: -2, hi: 3 }, inputValRanges: { x: { lo: -1, hi: 0.5 } }, saveInputs: lib } });
    const viaCli = path.join(dir, "cli-inputs.arrow");
    const r = spawnSync(process.execPath, [path.join(ROOT, "bin", "trt-debug.js"), "run", EXP, "--seed", "7", "--val-range", "[-2,3]", "x:[-1,0.5]", "--save-inputs", viaCli, "-q"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(Buffer.compare(fs.readFileSync(lib), fs.readFileSync(viaCli))).toBe(0);
    const rd = await openDump(lib);
    try {
      const rows = [];
      for await (const row of rd.rows()) rows.push(row);
      expect(rows).toHaveLength(1);
      const v = rows[0]!.values!;
      expect(Math.min(...v)).toBeGreaterThanOrEqual(-1);
      expect(Math.max(...v)).toBeLessThanOrEqual(0.5);
    } finally {
      await rd.close();
    }
  });

  it("an image through the typed imagePreprocess option: the exact tensor, the same bytes as --image-preprocess", async () => {
    // exp_overflow's input x is [1,8,32]: a gray CHW image of 32x8. Gray pixels: luma = the value.
    const png = new PNG({ width: 32, height: 8 });
    const px = Array.from({ length: 256 }, (_, i) => (i * 37) % 256);
    px.forEach((v, i) => png.data.set([v, v, v, 255], i * 4));
    const img = path.join(dir, "x.png");
    fs.writeFileSync(img, PNG.sync.write(png));
    const lib = path.join(dir, "img-lib.arrow");
    await runModel({ model: EXP, precisions: ["fp32"], capture: { kind: "outputs" }, inputs: { loadInputs: [img], imagePreprocess: { scale: 1 / 255, mean: 0.5, std: [0.25] }, saveInputs: lib } });
    const rd = await openDump(lib);
    try {
      const rows = [];
      for await (const row of rd.rows()) rows.push(row);
      expect(rows.map((r) => [r.tensor, r.dims])).toEqual([["x", [1, 8, 32]]]);
      expect(Array.from(rows[0]!.values!)).toEqual(px.map((v) => Math.fround((v * (1 / 255) - 0.5) / 0.25)));
    } finally {
      await rd.close();
    }
    const viaCli = path.join(dir, "img-cli.arrow");
    const r = spawnSync(process.execPath, [path.join(ROOT, "bin", "trt-debug.js"), "run", EXP, "--load-inputs", img, "--image-preprocess", "scale=1/255,mean=0.5,std=[0.25]", "--save-inputs", viaCli, "-q"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(Buffer.compare(fs.readFileSync(lib), fs.readFileSync(viaCli))).toBe(0);
    const bad = runModel({ model: EXP, precisions: ["fp32"], capture: { kind: "outputs" }, inputs: { loadInputs: [img], imagePreprocess: { std: 0 } } });
    await expect(bad).rejects.toMatchObject({ option: "imagePreprocess", message: "imagePreprocess: std has a zero; give non-zero values" });
    const missing = runModel({ model: EXP, precisions: ["fp32"], capture: { kind: "outputs" }, inputs: { loadInputs: [path.join(dir, "none.npy")] } });
    await expect(missing).rejects.toMatchObject({ option: "loadInputs", message: `loadInputs ${path.join(dir, "none.npy")}: no such file or directory; check the path (NAME:PATH is split at the last colon)` });
  });

  it("package.json exports only the public entry, and it loads by the package name", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { name: string; exports: Record<string, unknown> };
    expect(Object.keys(pkg.exports).sort()).toEqual([".", "./package.json"]);
    expect(pkg.exports["."]).toEqual({ types: "./dist/index.d.ts", import: "./dist/index.js" });
    // Node resolves the package's own name through "exports" (dist/ is built before the suite).
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", `const m = await import("${pkg.name}"); console.log(Object.keys(m).sort().join(","));`], { cwd: ROOT, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split(",")).toEqual(Object.keys(api).sort());
    const deep = spawnSync(process.execPath, ["--input-type=module", "-e", `await import("${pkg.name}/dist/runtime/executor.js")`], { cwd: ROOT, encoding: "utf8" });
    expect(deep.status).not.toBe(0);
    expect(deep.stderr).toMatch(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
  });
});
