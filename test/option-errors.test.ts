/**
 * User errors name library options; the CLI spells them as flags (core/errors.ts userError,
 * aboutOption; cli/options.ts flagMessage). Library messages carry option names, CLI messages
 * the same bytes as before with flags.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toBinary } from "@bufbuild/protobuf";
import { TensorProtoSchema } from "onnx-buf";
import { aboutOption, opt, OptionRef, UserError, userError } from "../src/core/errors.js";
import { flagMessage, flagText } from "../src/cli/options.js";
import { bisectModel, calibBuild, calibCheck, compareModel, convertModel, defaultCompareOptions, type CalibBuildResult, type CalibCheckResult, type CompareSummary, type MessagePart } from "../src/index.js";
import { convertInt8Model } from "../src/workflows/convert-int8.js";
import { int8ReportLines, type Int8Report } from "../src/calibration/int8-run.js";
import { hostToTensorProto } from "../src/onnx/tensor.js";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { openCalibData } from "../src/calibration/calib-data.js";
import { openInputSets } from "../src/data/sources.js";
import { checkOutputPath } from "../src/core/output-file.js";
import { readCalibrationCache } from "../src/calibration/cache.js";
import type { InputSpec } from "../src/data/inputs.js";
import { cli, expectUserError, tmpDir, userErrorAsync } from "./helpers.js";

const dir = tmpDir("trtdbg-opterr-");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const specs: InputSpec[] = [{ name: "x", dtype: "float32", dims: [2] }];

function thrown(f: () => unknown): UserError {
  try {
    f();
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  throw new Error("no error");
}

describe("userError", () => {
  it("spells options by name in the message and keeps them apart in parts", () => {
    const e = userError`${opt("calibData")} and ${opt("loadInputs")}: give ${3} batches from ${"a.npy"}`;
    expect(e.message).toBe("calibData and loadInputs: give 3 batches from a.npy");
    expect(e.option).toBe("calibData");
    expect(e.parts).toEqual([opt("calibData"), " and ", opt("loadInputs"), ": give 3 batches from a.npy"]);
    expect(e.parts![0]).toBeInstanceOf(OptionRef);
    expect(flagMessage(e)).toBe("--calib-data and --load-inputs: give 3 batches from a.npy");
  });

  it("a text that does not start with an option is about none; an option unknown to the CLI keeps its name", () => {
    const e = userError`f.json: run without ${opt("resume")} or ${opt("noSuchOption")}`;
    expect(e.option).toBeUndefined();
    expect(e.message).toBe("f.json: run without resume or noSuchOption");
    expect(flagMessage(e)).toBe("f.json: run without --resume or noSuchOption");
  });

  it("an interpolated UserError keeps its parts", () => {
    const inner = userError`${opt("loadInputs")} x.npy: bad header`;
    const e = userError`${opt("runnerCmd")}: cannot read its outputs: ${inner}`;
    expect(e.message).toBe("runnerCmd: cannot read its outputs: loadInputs x.npy: bad header");
    expect(flagMessage(e)).toBe("--runner-cmd: cannot read its outputs: --load-inputs x.npy: bad header");
  });

  it("aboutOption marks a message starting with the option, and nothing else", () => {
    const e = aboutOption(new UserError("loadInputs x.npy: bad header"), "loadInputs") as UserError;
    expect(e.option).toBe("loadInputs");
    expect(flagMessage(e)).toBe("--load-inputs x.npy: bad header");
    const other = new UserError("x.npy: bad header");
    expect(aboutOption(other, "loadInputs")).toBe(other);
    const prefix = new UserError("loadInputsX: y");
    expect(aboutOption(prefix, "loadInputs")).toBe(prefix);
  });
});

describe("library errors name options, the CLI flags", () => {
  it("calibration data given twice names both options", () => {
    const e = thrown(() => openCalibData(specs, { calibData: dir, inputs: { loadInputs: ["a.pb"] } }, () => undefined));
    expect(e.message).toBe("calibData and loadInputs: give the calibration data once");
    expect(flagMessage(e)).toBe("--calib-data and --load-inputs: give the calibration data once");
    const b = thrown(() => openCalibData(specs, { calibData: dir, calibBatches: 2 }, () => undefined));
    expect(b.message).toBe("calibBatches: only for random calibration data; calibData decides the batches itself");
    expect(flagMessage(b)).toBe("--calib-batches: only for random calibration data; --calib-data decides the batches itself");
  });

  it("a reader's error under loadInputs / calibData is about that option", async () => {
    const bad = path.join(dir, "bad.npy");
    fs.writeFileSync(bad, "not an npy file at all");
    for (const option of ["loadInputs", "calibData"]) {
      const e = await userErrorAsync(
        (async () => {
          for await (const _ of openInputSets([bad], specs, { option }).iterate()) void _;
        })(),
      );
      expect(e.option).toBe(option);
      expect(e.message.startsWith(`${option} ${bad}: `)).toBe(true);
      expect(flagMessage(e).startsWith(`${option === "loadInputs" ? "--load-inputs" : "--calib-data"} ${bad}: `)).toBe(true);
    }
  });

  it("advice names options too: a missing calibration cache", async () => {
    const missing = path.join(dir, "none.cache");
    const e = await userErrorAsync(readCalibrationCache(missing));
    expect(e.message).toBe(`${missing}: calibration cache not found; check the path given to calibrationCache`);
    expect(e.option).toBeUndefined();
    expect(flagMessage(e)).toBe(`${missing}: calibration cache not found; check the path given to --calibration-cache`);
  });

  it("an unwritable output path names the option", () => {
    const e = thrown(() => checkOutputPath("saveOutputs", "/proc/x", "dir"));
    expect(e.option).toBe("saveOutputs");
    expect(e.message).toMatch(/^saveOutputs \/proc\/x: is under \/proc/);
    expect(flagMessage(e)).toMatch(/^--save-outputs \/proc\/x: is under \/proc/);
  });
});

/**
 * The same texts through the public API (option names) and the CLI (flags, byte for byte as
 * before): errors, warnings and texts kept in results (core/hooks.ts `spell`).
 */
describe("public API names options, the CLI flags (errors, warnings, result texts)", () => {
  const M: Record<string, string> = {};
  const FLAT_FIX = "load real inputs (--load-inputs) or give realistic ranges (--val-range); --allow-degenerate gives the plain verdict";
  const NAMED_FIX = "load real inputs (loadInputs) or give realistic ranges (valRange); allowDegenerate gives the plain verdict";
  beforeAll(() => {
    const save = (name: string, build: (g: GraphBuilder) => void) => {
      const g = new GraphBuilder(name);
      build(g);
      M[name] = path.join(dir, `${name}.onnx`);
      saveModel(g.model({ opset: 17 }), M[name]!);
    };
    // every output value is 0: a degenerate reference
    save("zero", (g) => {
      const x = g.input("x", "float32", [1, 8]);
      g.output(g.node("Mul", [x, g.initializer("z", "float32", [1], [0])], { name: "kill", outputs: ["y"] }), "float32", [1, 8]);
    });
    save("mm", (g) => {
      const x = g.input("x", "float32", [1, 4]);
      const h = g.node("MatMul", [x, g.initializer("w", "float32", [4, 4], [1, 0.5, -0.25, 2, 0, 1, 0.5, -1, 0.25, 0.75, 1, 0, -0.5, 0.25, 0, 1])], { name: "mm", outputs: ["h"] });
      g.output(g.node("Relu", [h], { name: "act", outputs: ["y"] }), "float32", [1, 4]);
    });
    // an If whose branches read the graph input x
    save("ifx", (g) => {
      const x = g.input("x", "float32", [2]);
      const cond = g.input("cond", "bool", []);
      const tb = g.subgraph("then");
      tb.output(tb.node("Relu", [x], { name: "then_relu", outputs: ["tr"] }), "float32");
      const eb = g.subgraph("else");
      eb.output(eb.node("Neg", [x], { name: "else_neg", outputs: ["en"] }), "float32");
      g.output(g.node("If", [cond], { name: "branch", outputs: ["y"], attrs: { then_branch: tb.graph(), else_branch: eb.graph() } }), "float32");
    });
    const pb = path.join(dir, "input_0.pb");
    fs.writeFileSync(pb, toBinary(TensorProtoSchema, hostToTensorProto({ name: "x", dtype: "float32", dims: [1, 4], data: new Float32Array([0.5, 1, 1.5, 2]) })));
    M.pb = pb;
  });

  it("compareModel: the degenerate reference's advice and the fusion note name options; compare --json names flags", async () => {
    const s = await compareModel({ model: M.zero!, candidate: "fp16", fusion: "none", compare: defaultCompareOptions() });
    expect(s.verdict).toBe("degenerate");
    expect(s.degenerate_outputs[0]!.message).toBe(`reference output 'y' is degenerate under these inputs: every value is 0; the verdict would be noise — ${NAMED_FIX}`);
    expect(s.notes.find((n) => n.includes("emulation rounds"))).toMatch(/^fusion "none": emulation rounds at every ONNX node boundary/);
    const json = path.join(dir, "cmp.json");
    const r = await cli("compare", M.zero!, "--fp16", "--fusion", "none", "--json", json, "-q");
    expect(r.code).toBe(2);
    const j = JSON.parse(fs.readFileSync(json, "utf8")) as CompareSummary;
    expect(j.degenerate_outputs[0]!.message).toBe(`reference output 'y' is degenerate under these inputs: every value is 0; the verdict would be noise — ${FLAT_FIX}`);
    expect(j.notes.find((n) => n.includes("emulation rounds"))).toMatch(/^--fusion none: emulation rounds at every ONNX node boundary/);
  });

  it("bisectModel refuses a degenerate reference naming options; bisect names flags", async () => {
    const e = await userErrorAsync(bisectModel({ model: M.zero!, precision: "fp16", mode: "bisect", criterion: { kind: "compare", compare: defaultCompareOptions() } }));
    expect(e.message).toBe(`reference output 'y' is degenerate under these inputs: every value is 0; the verdict would be noise — ${NAMED_FIX}; bisect would search on noise, so it stops before searching`);
    expect(flagMessage(e)).toContain(FLAT_FIX);
    expectUserError(await cli("bisect", M.zero!, "--fp16", "--no-checkpoint", "-q"), `every value is 0; the verdict would be noise — ${FLAT_FIX}; bisect would search`);
  });

  it("calibBuild / calibCheck: the random-data warning, the data description and the --algo mismatch warning kept in the result", async () => {
    const cache = path.join(dir, "mm.cache");
    const warned: { message: string; parts?: readonly MessagePart[] }[] = [];
    const b = await calibBuild({ model: M.mm!, algo: "minmax", output: cache, calibBatches: 2 }, { warn: (message, parts) => warned.push({ message, parts }) });
    const random = warned.find((w) => w.message.startsWith("CALIBRATING ON RANDOM DATA"))!;
    expect(random.message).toMatch(/Pass calibData with a few hundred real input samples .* an Arrow file from saveInputs\)\.$/);
    expect(flagText(random.parts!)).toMatch(/Pass --calib-data with a few hundred real input samples .* an Arrow file from --save-inputs\)\.$/);
    expect(b.random_data).toBe(true);
    expect(warned.some((w) => w.message.startsWith("CALIBRATING ON ONE BATCH"))).toBe(false); // 2 random batches: the random-data warning only
    const single: { message: string; parts?: readonly MessagePart[] }[] = [];
    const one = await calibBuild({ model: M.mm!, algo: "minmax", output: path.join(dir, "pb.cache"), inputs: { loadInputs: [M.pb!] } }, { warn: (message, parts) => single.push({ message, parts }) });
    expect(one.data).toBe(`loadInputs ${M.pb} (1 batch)`);
    expect(single.map((w) => w.message)).toEqual([
      `CALIBRATING ON ONE BATCH: every range comes from a single batch (loadInputs ${M.pb} (1 batch)). Ranges from one sample are not representative of your real data, so the INT8 accuracy they give can be badly wrong. Pass calibData with a few hundred real input samples (a folder of images or .npy files, Polygraphy inputs JSON, test_data_set_*/input_*.pb or an Arrow file from saveInputs).`,
    ]);
    expect(flagText(single[0]!.parts!)).toMatch(/^CALIBRATING ON ONE BATCH: .* Pass --calib-data with a few hundred real input samples .* an Arrow file from --save-inputs\)\.$/);
    const bj = path.join(dir, "build.json");
    const oneCli = await cli("calib", "build", M.mm!, "--load-inputs", M.pb!, "-o", path.join(dir, "pb2.cache"), "--json", bj, "-q");
    expect(oneCli.code).toBe(0);
    expect(oneCli.stderr).toContain(`warning: CALIBRATING ON ONE BATCH: every range comes from a single batch (--load-inputs ${M.pb} (1 batch)). Ranges from one sample are not representative`);
    expect(oneCli.stderr).toContain("Pass --calib-data with a few hundred real input samples");
    expect((JSON.parse(fs.readFileSync(bj, "utf8")) as CalibBuildResult).data).toBe(`--load-inputs ${M.pb} (1 batch)`);

    const c = await calibCheck({ model: M.mm!, calibrationCache: cache, algo: "entropy", calibBatches: 2 });
    const mismatch = `${cache} was made by MinMaxCalibration, not EntropyCalibration2 (algo entropy); rebuild it with \`trt-debug calib build --algo entropy\` or drop algo`;
    expect(c.warnings).toContain(mismatch);
    const cj = path.join(dir, "check.json");
    const r = await cli("calib", "check", M.mm!, "--calibration-cache", cache, "--algo", "entropy", "--calib-batches", "2", "--json", cj, "-q");
    expect(r.stderr).toContain(`warning: ${cache} was made by MinMaxCalibration, not EntropyCalibration2 (--algo entropy); rebuild it with \`trt-debug calib build --algo entropy\` or drop --algo`);
    const w = (JSON.parse(fs.readFileSync(cj, "utf8")) as CalibCheckResult).warnings;
    expect(w).toContain(`${cache} was made by MinMaxCalibration, not EntropyCalibration2 (--algo entropy); rebuild it with \`trt-debug calib build --algo entropy\` or drop --algo`);
    expect(w.find((x) => x.startsWith("CALIBRATING"))).toMatch(/Pass --calib-data with .* from --save-inputs\)\.$/);
  });

  it("int8 report lines (bisect's phases, convert's summary) point at the result, in the CLI at --json", () => {
    const fallbacks = ["a", "b", "c"].map((layer) => ({ layer, op_type: "Sigmoid", precision: "fp32", reason: "no int8 kernel" }));
    const r = { mode: "implicit", type: "int8", cache: null, int8_layers: 2, layers: 5, activation_range: "[-128,127]", weight_range: "[-127,127]", fallbacks, fallback_precision: "fp32" } as unknown as Int8Report;
    expect(int8ReportLines(r, 1).at(-1)).toBe("  ... and 2 more fallbacks (all of them are in the result's int8.fallbacks)");
    expect(int8ReportLines(r, 1, { spell: flagText }).at(-1)).toBe("  ... and 2 more fallbacks (all of them are in --json)");
    expect(int8ReportLines(r).some((l) => l.includes("more fallbacks"))).toBe(false);
  });

  it("convertModel: reduced graph I/O read inside a body names ioTypes; convert names --io-types", async () => {
    const out = path.join(dir, "t.onnx");
    const e = await userErrorAsync(convertModel({ model: M.ifx!, output: out, precision: "fp16", ioTypes: "reduced" }));
    const tail = "graph input/output 'x' is read inside an If/Loop/Scan body, which stays fp32; keep";
    expect(e.message).toBe(`${M.ifx}: ioTypes "reduced": ${tail} ioTypes "fp32"`);
    expectUserError(await cli("convert", M.ifx!, "--fp16", "--io-types", "reduced", "-o", out), `trt-debug: error: ${M.ifx}: --io-types reduced: ${tail} --io-types fp32`);
  });

  it("convert --int8 / --fp8 refusals name convertInt8Model's options; convert names flags", async () => {
    const out = path.join(dir, "q.onnx");
    const both = { model: M.mm!, output: out, int8: { calibrationCache: path.join(dir, "mm.cache") }, calibrate: { calibBatches: 2, algo: "entropy" as const } };
    const e = await userErrorAsync(convertInt8Model(both));
    expect(e.message).toBe("convertInt8Model: give int8.calibrationCache or calibrate.calibData/calibrate.calibBatches, not both");
    expect(flagMessage(e)).toBe("convert --int8: give --calibration-cache or --calib-data/--calib-batches, not both");
    const f = await userErrorAsync(convertInt8Model({ ...both, int8: { ...both.int8, qtype: "fp8" } }));
    expect(f.message).toBe('convertInt8Model with int8.qtype "fp8": give int8.calibrationCache or calibrate.calibData/calibrate.calibBatches, not both');
    expect(flagMessage(f)).toBe("convert --fp8: give --calibration-cache or --calib-data/--calib-batches, not both");
    const plan = await userErrorAsync(convertInt8Model({ model: M.mm!, output: out, int8: { calibrationCache: path.join(dir, "mm.cache") }, layerPrecisions: [{ pattern: "mm", precision: "fp16" }] }));
    expect(plan.message).toBe('convertInt8Model: layer mm is planned in fp16; with int8.qtype "int8" a plan may name fp32 layers only (fp16/bf16 layers: add int8.fallback "fp16" or "bf16")');
    expectUserError(
      await cli("convert", M.mm!, "--int8", "--calibration-cache", path.join(dir, "mm.cache"), "--layer-precisions", "mm:fp16", "-o", out),
      "trt-debug: error: convert --int8: layer mm is planned in fp16; with --int8 a plan may name fp32 layers only (fp16/bf16 layers: add --fp16 or --bf16)",
    );
    const typed = await userErrorAsync(convertInt8Model({ model: M.mm!, output: out, int8: { calibrationCache: path.join(dir, "mm.cache"), fallback: "fp16" }, layerPrecisions: [{ pattern: "mm", precision: "bf16" }] }));
    expect(typed.message).toBe('convertInt8Model: layer mm is planned in bf16; with int8.qtype "int8" int8.fallback "fp16" a plan may name fp32 and fp16 layers only');
    expect(flagMessage(typed)).toBe("convert --int8: layer mm is planned in bf16; with --int8 --fp16 a plan may name fp32 and fp16 layers only");
  });
});
