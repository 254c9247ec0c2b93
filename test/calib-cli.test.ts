/**
 * `trt-debug calib build|check` and `run|validate|compare --int8 --calibration-cache` on the
 * command line: outputs, JSON, exit codes (0 ok, 1 harmful flags / failed comparison, 2 user
 * error with one `file:line` line).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveModel } from "./support/graph-builder.js";
import { readCalibrationCache, amaxToScale } from "../src/calibration/cache.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";
import { ONNX_TESTDATA } from "./testdata.js";
import { clippedOutlierModel, OUTLIER_TENSOR, smallInt8Model } from "./int8-fixtures.js";

let dir: string;
let outlier: string;
let small: string;
let smallCache: string;

beforeAll(async () => {
  dir = tmpDir("trtdbg-calib-cli-");
  outlier = path.join(dir, "clipped_outlier.onnx");
  small = path.join(dir, "small_int8.onnx");
  saveModel(clippedOutlierModel(), outlier);
  saveModel(smallInt8Model(), small);
  smallCache = path.join(dir, "small.cache");
  // The small-model tests below assert per-node int8 behaviour (conv and relu, mm and add in
  // different precisions, one range per node output): they run one layer per ONNX node
  // (--fusion none). int8 on fused groups: test/layer-model.test.ts and the outlier tests here.
  const r = await cli("calib", "build", small, "-o", smallCache, "--calib-batches", "4", "-q", "--fusion", "none");
  expect(r.code).toBe(0);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, "utf8")) as Record<string, any>;

describe("calib build", () => {
  it("writes a TensorRT cache and its JSON sidecar that read back bit for bit, with a loud random-data warning", async () => {
    const out = path.join(dir, "b.cache");
    const json = path.join(dir, "b.json");
    const r = await cli("calib", "build", outlier, "--algo", "minmax", "-o", out, "--trt-version", "100300", "--calib-batches", "3", "--json", json);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: CALIBRATING ON RANDOM DATA: 3 batches/);
    expect(r.stdout).toContain(`wrote ${out} (TRT-100300-MinMaxCalibration) and ${out}.json`);
    expect(r.stdout).toContain(OUTLIER_TENSOR);
    const text = fs.readFileSync(out, "utf8");
    expect(text.split("\n")[0]).toBe("TRT-100300-MinMaxCalibration");
    const res = readJson(json);
    expect(res.format).toBe("trt-debug/calib-build@1");
    const c = await readCalibrationCache(out);
    const side = await readCalibrationCache(`${out}.json`);
    expect(c.version).toBe("100300");
    for (const t of res.tensors as { tensor: string; amax: number; max: number }[]) {
      expect(Object.is(c.scales.get(t.tensor), amaxToScale(t.amax))).toBe(true);
      expect(Object.is(side.scales.get(t.tensor), c.scales.get(t.tensor))).toBe(true);
      expect(t.amax).toBe(t.max); // minmax
    }
  });

  it("takes --calib-data (an inputs Arrow file; no random-data warning) and names bad data directories", async () => {
    const data = path.join(dir, "data");
    const save = path.join(dir, "in.arrow");
    expect((await cli("run", small, "--save-inputs", save, "-q")).code).toBe(0);
    // an inputs Arrow file is calibration data too
    const r = await cli("calib", "build", small, "-o", path.join(dir, "d.cache"), "--calib-data", save, "--algo", "percentile", "--percentile", "99.9");
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/RANDOM/);
    expect(r.stdout).toMatch(/with percentile \(p = 99.9\) on 1 batch in .* s \(data: inputs Arrow file/);
    fs.mkdirSync(path.join(data, "test_data_set_0"), { recursive: true });
    const bad = await cli("calib", "build", small, "-o", path.join(dir, "e.cache"), "--calib-data", data);
    expectUserError(bad, "--calib-data", "test_data_set_0: no input_*.pb files");
    expectUserError(await cli("calib", "build", small, "-o", path.join(dir, "e.cache"), "--calib-data", path.join(dir, "none")), "--calib-data", "no such file or directory");
  });

  it("user errors: unknown algorithm, missing -o, --percentile without percentile", async () => {
    expectUserError(await cli("calib", "build", small, "-o", path.join(dir, "x.cache"), "--algo", "kl"), "--algo", "entropy, minmax, percentile, mse");
    expectUserError(await cli("calib", "build", small), "-o FILE.cache");
    expectUserError(await cli("calib", "build", small, "-o", path.join(dir, "x.cache"), "--percentile", "99"), "--percentile");
  });
});

describe("calib check", () => {
  it("flags the outlier tensor for a minmax cache (exit 1, named in the JSON) and not for an entropy cache (exit 0)", async () => {
    for (const algo of ["minmax", "entropy"]) {
      const cache = path.join(dir, `co-${algo}.cache`);
      expect((await cli("calib", "build", outlier, "--algo", algo, "-o", cache, "--calib-batches", "4", "-q")).code).toBe(0);
      const json = path.join(dir, `check-${algo}.json`);
      const r = await cli("calib", "check", outlier, "--calibration-cache", cache, "--calib-batches", "4", "--algo", "entropy", "--json", json);
      const res = readJson(json);
      expect(res.format).toBe("trt-debug/calib-check@1");
      if (algo === "minmax") {
        expect(r.code).toBe(1);
        expect(res.flagged.map((f: { tensor: string }) => f.tensor)).toEqual([OUTLIER_TENSOR]);
        expect(res.harmful_tensors).toEqual([OUTLIER_TENSOR]);
        expect(res.algorithm_mismatch).toBe(true);
        expect(r.stdout).toContain(`FAILED: 1 tensor flagged harmful: ${OUTLIER_TENSOR}`);
        expect(r.stdout).toMatch(new RegExp(`1\\. ${OUTLIER_TENSOR} \\[wasted-range`));
        expect(r.stdout).toMatch(/suggestion: recalibrate with --algo (entropy|percentile|mse)/);
        expect(r.stderr).toContain("was made by MinMaxCalibration, not EntropyCalibration2");
      } else {
        expect(r.code).toBe(0);
        expect(res.flagged).toEqual([]);
        expect(res.algorithm_mismatch).toBe(false);
        expect(r.stdout).toContain("PASSED: no tensor flagged harmful");
      }
      const t = res.tensors.find((x: { tensor: string }) => x.tensor === OUTLIER_TENSOR);
      expect(Object.keys(t.calibrators).sort()).toEqual(["entropy", "minmax", "mse", "percentile"]);
      expect(t.observed.max).toBeGreaterThan(50 * t.observed.p99_9);
      // 8 layers: conv1 (conv1+relu1) and conv3 (conv3+relu3) are fused groups
      expect(res.layers).toHaveLength(8);
      expect(res.layers[0]).toMatchObject({ layer: "conv1", precision: "int8" });
      expect(res.layers[0].local.rel_l2).toBeGreaterThan(0);
      expect(res.layers[7].end_to_end.rel_l2).toBeGreaterThan(0);
    }
  });

  it("thresholds are settable: a huge --max-range-ratio and low --min-sqnr let the minmax cache pass", async () => {
    const r = await cli("calib", "check", outlier, "--calibration-cache", path.join(dir, "co-minmax.cache"), "--calib-batches", "4", "--max-range-ratio", "1000", "--min-sqnr", "0", "-q");
    expect(r.code).toBe(0);
  });

  it("reports tensors missing from the cache (with the fallbacks) and stale entries", async () => {
    const full = fs.readFileSync(smallCache, "utf8").split("\n");
    const edited = full.filter((l) => !l.startsWith("mm_output_0:")).concat(["old/layer_output: 3c010204", ""]).join("\n").replace(/\n\n+/g, "\n");
    const f = path.join(dir, "edited.cache");
    fs.writeFileSync(f, edited);
    const json = path.join(dir, "edited.json");
    const r = await cli("calib", "check", small, "--calibration-cache", f, "--calib-batches", "2", "--json", json, "--fusion", "none");
    expect(r.code).toBe(0); // missing/stale are warnings: the layers fall back, accuracy is not at risk
    const res = readJson(json);
    expect(res.missing_from_cache).toEqual(["mm_output_0"]);
    expect(res.unknown_in_cache).toEqual(["old/layer_output"]);
    expect(res.flagged).toContainEqual({ tensor: "mm_output_0", flags: ["missing"], harmful: false });
    expect(r.stdout).toContain("fallback mm (MatMul) -> fp32: output 0 'mm_output_0' has no range in the calibration cache");
    expect(r.stderr).toContain("stale cache");
  });
});

describe("malformed caches: one file:line error, exit 2", () => {
  const cases: [string, string, RegExp][] = [
    ["bad-header.cache", "TRT8601-Entropy\nx: 3c010204\n", /bad-header\.cache:1: bad calibration cache header/],
    ["bad-hex.cache", "TRT-8601-EntropyCalibration2\nx: 3c010204\nconv_output_0: 3c01020\n", /bad-hex\.cache:3: bad scale/],
    ["no-colon.cache", "TRT-8601-EntropyCalibration2\n\nx 3c010204\n", /no-colon\.cache:3: missing ": "/],
    ["dup.cache", "TRT-8601-EntropyCalibration2\nx: 3c010204\nx: 3c010204\n", /dup\.cache:3: duplicate tensor "x" \(first on line 2\)/],
    ["neg.cache", "TRT-8601-EntropyCalibration2\nx: bc010204\n", /neg\.cache:2: scale bc010204/],
    ["broken.json", '{\n  "format": "trt-debug/calibration@1",\n  "tensors": {\n    "x": { "amax": 1,, }\n', /broken\.json:4: invalid JSON/],
  ];
  for (const [name, text, re] of cases) {
    it(name, async () => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, text);
      expectUserError(await cli("run", small, "--int8", "--calibration-cache", f), re);
      expectUserError(await cli("compare", small, "--int8", "--calibration-cache", f), re);
      expectUserError(await cli("calib", "check", small, "--calibration-cache", f, "--calib-batches", "1"), re);
    });
  }
  it("a missing cache file", async () => {
    expectUserError(await cli("run", small, "--int8", "--calibration-cache", path.join(dir, "nope.cache")), "nope.cache: calibration cache not found");
  });
});

describe("run/validate/compare --int8", () => {
  it("compare --int8 --calibration-cache: FP32 vs INT8 layer by layer, the cache read and each fallback printed and in --json", async () => {
    const json = path.join(dir, "cmp.json");
    const r = await cli("compare", small, "--int8", "--calibration-cache", smallCache, "--json", json, "--fusion", "none");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`int8: read ${smallCache}: TensorRT calibration cache, TensorRT 8.6.1 (8601), algorithm EntropyCalibration2, 8 tensors`);
    expect(r.stdout).toContain("int8: 6 of 7 layers in int8 (activations [-128,127], weights per channel [-127,127]), 1 fallback to fp32");
    expect(r.stdout).toContain("fallback softmax (Softmax) -> fp32: op Softmax is not int8-capable");
    expect(r.stdout).toMatch(/output softmax_output_0: PASS/);
    const res = readJson(json);
    expect(res.int8.fallbacks).toEqual([expect.objectContaining({ layer: "softmax", precision: "fp32", code: "op-not-int8", reason: "op Softmax is not int8-capable" })]);
    expect(res.layers.find((l: { layer: string }) => l.layer === "conv").precision).toBe("int8");
  });

  it("--int8 --fp16: fallbacks run in fp16; --layer-precisions moves layers; --int8-range 127", async () => {
    const json = path.join(dir, "cmp16.json");
    const r = await cli("compare", small, "--int8", "--fp16", "--calibration-cache", `${smallCache}.json`, "--layer-precisions", "mm:fp32", "conv:fp16", "--int8-range", "127", "--json", json, "--fusion", "none");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("trt-debug JSON sidecar");
    const res = readJson(json);
    const prec = Object.fromEntries(res.layers.map((l: { layer: string; precision: string }) => [l.layer, l.precision]));
    expect(prec).toMatchObject({ conv: "fp16", relu: "int8", mm: "fp32", add: "int8", softmax: "fp16" });
    expect(res.int8.fallbacks.map((f: { layer: string }) => f.layer)).toEqual(["softmax"]);
    expect(res.int8.activation_range).toBe("[-127,127]");
  });

  it("an fp16 run can ask for int8 on some layers with --layer-precisions PATTERN:int8", async () => {
    const json = path.join(dir, "mixed.json");
    const r = await cli("compare", small, "--fp16", "--layer-precisions", "conv:int8", "softmax:int8", "--calibration-cache", smallCache, "--json", json, "--fusion", "none");
    expect(r.code).toBe(0);
    const res = readJson(json);
    const prec = Object.fromEntries(res.layers.map((l: { layer: string; precision: string }) => [l.layer, l.precision]));
    expect(prec).toMatchObject({ conv: "int8", relu: "fp16", mm: "fp16", softmax: "fp16" });
    expect(res.int8.fallbacks).toEqual([expect.objectContaining({ layer: "softmax", precision: "fp16", code: "op-not-int8" })]);
  });

  it("run and validate accept --int8", async () => {
    const r = await cli("run", small, "--int8", "--calibration-cache", smallCache, "--fp32", "--mark-all", "--fusion", "none");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("fp32: 7 tensors captured");
    expect(r.stdout).toContain("int8: 7 tensors captured");
    const v = await cli("validate", small, "--int8", "--calibration-cache", smallCache, "--fusion", "none");
    expect(v.code).toBe(0);
    expect(v.stdout).toContain("PASSED: no NaN/Inf in 7 tensors (int8)");
  });

  it("user errors: --int8 without a cache, a cache without --int8, a bad --int8-range", async () => {
    expectUserError(await cli("run", small, "--int8"), "--calibration-cache FILE", "calib build");
    expectUserError(await cli("run", small, "--calibration-cache", smallCache), "give --int8 too");
    expectUserError(await cli("compare", small, "--int8", "--calibration-cache", smallCache, "--int8-range", "126"), "--int8-range");
  });

  const qdq = path.join(ONNX_TESTDATA, "node", "test_quantizelinear");
  it.skipIf(!fs.existsSync(qdq) && process.env.CI !== "true")("an explicit Q/DQ model runs with --int8 and no cache", async () => {
    const r = await cli("run", path.join(qdq, "model.onnx"), "--int8", "--load-inputs", path.join(qdq, "test_data_set_0"));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("explicit quantization");
  });
});
