/** Argument groups shared by the subcommands (Polygraphy-compatible spellings). */
import type { Argv } from "yargs";
import type { Criterion } from "../workflows/bisect.js";
import { parseByteSize, parsePerTensor } from "./value-flags.js";
import { UserError, type MessagePart } from "../core/errors.js";
import type { Precision } from "../core/host-tensor.js";
import type { InputArgs } from "../data/input-args.js";
import { parseInputShapes, parseSeed, parseValRanges } from "./input-flags.js";
import { parseLayerPrecisions } from "../precision/plan.js";
import type { ModelArgs } from "../workflows/model-inputs.js";
import {
  defaultCompareOptions,
  ERROR_STATS,
  parseNonNegative,
  type CompareOptions,
  type ErrorStat,
} from "../compare/tolerance.js";
import type { OptimizationLevel } from "../onnx/ort-session.js";
import type { Int8RunArgs } from "../calibration/int8-run.js";
import { parseInt8Range } from "../precision/int8.js";
import { parseImagePreprocess } from "./image-preprocess-flag.js";
import { parseFusionMode } from "../onnx/layer-model.js";

export function inputOptions<T>(y: Argv<T>) {
  return y
    .option("seed", { type: "string", describe: "Seed of the random input generator (default 1)", group: "Inputs:" })
    .option("val-range", { type: "string", array: true, describe: "Range of random inputs: [lo,hi] or NAME:[lo,hi] (several allowed; default [0,1])", group: "Inputs:" })
    .option("input-shapes", { type: "string", array: true, describe: "Shapes for dynamic inputs: NAME:[d0,d1,...] (several allowed)", group: "Inputs:" })
    .option("load-inputs", { type: "string", array: true, describe: "Inputs from .npy/.npz (NAME:file.npy per input), Polygraphy --save-inputs JSON, PNG/JPEG images or folders of them, an Arrow file (--save-inputs), a directory of input_*.pb, or .pb files; several sets = several iterations", group: "Inputs:" })
    .option("image-preprocess", { type: "string", array: true, describe: "How images become tensors: [NAME:]key=value,... (size=WxH, resize=stretch|pad|crop, interp=bilinear|nearest, layout=auto|nchw|nhwc, order=rgb|bgr, scale=1/255, mean=[..], std=[..], pad=N)", group: "Inputs:" })
    .option("data-loader-script", { type: "string", describe: "A JS module (.mjs) whose `load` or default export yields feeds {input_name: TypedArray | {data, dims, dtype}}", group: "Inputs:" })
    .option("save-inputs", { type: "string", describe: "Write the inputs used (every set) to this Arrow file; FILE.json: Polygraphy --load-inputs format; DIR with --format trtexec: raw files + the --loadInputs flag", group: "Inputs:" })
    .option("format", { type: "string", choices: ["arrow", "polygraphy", "trtexec"], describe: "Format of --save-inputs (default: polygraphy for .json, else arrow)", group: "Inputs:" });
}

export function precisionOptions<T>(y: Argv<T>) {
  const p = y
    .option("fp32", { type: "boolean", describe: "FP32 (the reference)", group: "Precision:" })
    .option("fp16", { type: "boolean", describe: "Emulate TensorRT FP16", group: "Precision:" })
    .option("bf16", { type: "boolean", describe: "Emulate BF16", group: "Precision:" })
    .option("layer-precisions", { type: "string", array: true, describe: "Per-layer overrides PATTERN:fp32|fp16|bf16 (exact names or globs; several allowed)", group: "Precision:" })
    .option("precision-plan", { type: "string", describe: "A precision plan JSON (trt-debug/precision-plan@1, e.g. from bisect -o)", group: "Precision:" });
  return executionOptions(p);
}

/** How a model executes: segment size, onnxruntime optimization level, layer fusion (every command that runs a model). */
export function executionOptions<T>(y: Argv<T>) {
  return y
    .option("segment-layers", { type: "number", describe: "Layers per execution segment (memory vs. session overhead; default: cut by --segment-memory)", group: "Execution:" })
    .option("segment-memory", { type: "string", describe: "Bytes of activations per execution segment, e.g. 16M, 1G (default 16M: a model whose activations fit runs as one onnxruntime session)", group: "Execution:" })
    .option("ort-optimization", { type: "string", choices: ["disabled", "basic", "extended", "all"], describe: "onnxruntime graph optimization level (default all; emulation casts survive every level)", group: "Execution:" })
    .option("fusion", FUSION_OPTION);
}

/** `--fusion trt|none` (run, validate, compare, bisect, calib, inspect). */
export const FUSION_OPTION = {
  type: "string",
  describe: "Layer fusion (trt|none): trt = TensorRT's fused groups (Conv/MatMul + bias + BN + activation + residual) round once at the group's output (default); none = one layer per ONNX node. Constants fold into weights either way",
  group: "Execution:",
} as const;

/** `--int8` and its settings (run, validate, compare, bisect). */
export function int8Options<T>(y: Argv<T>) {
  return y
    .option("int8", { type: "boolean", describe: "Emulate TensorRT INT8 (implicit: needs --calibration-cache; explicit Q/DQ models: none); with --fp16/--bf16, layers that cannot run in int8 fall back to it, else to fp32", group: "Precision:" })
    .option("calibration-cache", { type: "string", describe: "Calibration cache for --int8: TensorRT text cache (any version) or trt-debug JSON sidecar", group: "Precision:" })
    .option("int8-range", { type: "string", describe: "INT8 activation clamp: 128 = [-128,127] (TensorRT, default) or 127 = [-127,127]; weights are always [-127,127]", group: "Precision:" })
    .option("fp8", { type: "boolean", describe: "Emulate TensorRT's explicit FP8: as --int8 with scaled e4m3fn Q/DQ (scale = amax/448 from --calibration-cache, weights per output channel; opset >= 19, opset 9-18 models upgraded)", group: "Precision:" });
}

/** The int8 settings of the command line (undefined without --int8 and --calibration-cache). */
export function int8Args(a: Raw): Int8RunArgs | undefined {
  if (!a.int8 && !a.fp8 && a["calibration-cache"] === undefined && a["int8-range"] === undefined) return undefined;
  if (a.int8 && a.fp8) throw new UserError("--int8 and --fp8: give one quantized type");
  if (a.fp8 && a["int8-range"] !== undefined) throw new UserError("--int8-range: only with --int8 (fp8 Q/DQ saturates at ±448)");
  if (a.fp16 && a.bf16 && (a.int8 || a.fp8)) throw new UserError(`--${a.fp8 ? "fp8" : "int8"} with both --fp16 and --bf16: give one fallback precision`);
  return {
    calibrationCache: a["calibration-cache"] as string | undefined,
    fallback: a.fp16 ? "fp16" : a.bf16 ? "bf16" : "fp32",
    range: a["int8-range"] === undefined ? undefined : parseInt8Range(a["int8-range"]),
    ...(a.fp8 ? { qtype: "fp8" as const } : {}),
  };
}

/**
 * The runs a command line asks for. With --int8, --fp16/--bf16 name the fallback precision of
 * the int8 run (as trtexec --int8 --fp16), not runs of their own.
 */
export function runPrecisions(a: Raw): Precision[] {
  const ps = selectedPrecisions(a);
  if (!ps.includes("int8") && !ps.includes("fp8")) {
    // A plan or --layer-precisions may ask for int8 on some layers; otherwise the cache is unused.
    const mayAskInt8 = list(a["layer-precisions"]).length > 0 || a["precision-plan"] !== undefined;
    if (a["calibration-cache"] !== undefined && !mayAskInt8) throw new UserError("--calibration-cache: give --int8 too (the cache is for int8 runs)");
    return ps;
  }
  return ps.filter((p) => p !== "fp16" && p !== "bf16");
}

export function compareOptions<T>(y: Argv<T>) {
  return y
    .option("atol", { type: "string", array: true, describe: "Absolute tolerance (Polygraphy semantics): VALUE or TENSOR:VALUE", group: "Comparison:" })
    .option("rtol", { type: "string", array: true, describe: "Relative tolerance (Polygraphy semantics): VALUE or TENSOR:VALUE", group: "Comparison:" })
    .option("check-error-stat", { type: "string", array: true, describe: "elemwise|max|mean|median|quantile, or TENSOR:STAT (Polygraphy semantics)", group: "Comparison:" })
    .option("error-quantile", { type: "string", array: true, describe: "Quantile for --check-error-stat quantile (default 0.99): VALUE or TENSOR:VALUE", group: "Comparison:" })
    .option("infinities-compare-equal", { type: "boolean", describe: "Same-signed infinities at the same position compare equal", group: "Comparison:" })
    .option("allow-degenerate", { type: "boolean", describe: "Judge graph outputs whose reference is degenerate (all ~0, below the precision's resolution, constant) instead of stopping with exit 2", group: "Comparison:" })
    .option("max-rel-l2", { type: "number", describe: "Default verdict: fail when relative L2 error exceeds this (default per precision: fp16 1e-2, bf16 5e-2, int8 0.25)", group: "Comparison:" });
}

export function outputOptions<T>(y: Argv<T>) {
  return y
    .option("json", { type: "string", describe: "Write the result as JSON to this file", group: "Output:" })
    .option("quiet", { alias: "q", type: "boolean", describe: "Print only the verdict", group: "Output:" });
}

type Raw = Record<string, unknown>;

const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

type GenerationArgs = Pick<InputArgs, "seed" | "valRange" | "inputValRanges" | "inputShapes">;

/**
 * --seed, --val-range and --input-shapes as typed InputArgs. Parsed when read: as before the
 * typed options, a bad value is reported only when inputs are generated (not with --load-inputs).
 */
function inputGeneration(a: Raw): GenerationArgs {
  const out: GenerationArgs = {};
  const lazy = <K extends keyof GenerationArgs>(key: K, get: () => GenerationArgs[K]) => {
    let v: GenerationArgs[K] | null = null;
    Object.defineProperty(out, key, { enumerable: true, get: () => (v ??= get()) });
  };
  if (a.seed !== undefined) lazy("seed", () => parseSeed(a.seed as string | number));
  const ranges = list(a["val-range"]);
  if (ranges.length) {
    lazy("valRange", () => parseValRanges(ranges).global);
    lazy("inputValRanges", () => Object.fromEntries(parseValRanges(ranges).perInput));
  }
  const shapes = list(a["input-shapes"]);
  if (shapes.length) lazy("inputShapes", () => Object.fromEntries(parseInputShapes(shapes)));
  return out;
}

export function inputArgs(a: Raw): InputArgs {
  return withImagePreprocess(inputArgsOf(a), list(a["image-preprocess"]));
}

/** `--image-preprocess`, parsed when the library first reads it (as the generation options). */
function withImagePreprocess(o: InputArgs, values: string[]): InputArgs {
  if (values.length) {
    let v: InputArgs["imagePreprocess"] | null = null;
    Object.defineProperty(o, "imagePreprocess", { enumerable: true, get: () => (v ??= parseImagePreprocess(values)) });
  }
  return o;
}

function inputArgsOf(a: Raw): InputArgs {
  if (a.format !== undefined && a["save-inputs"] === undefined) throw new UserError(`--format ${String(a.format)}: applies to --save-inputs; add --save-inputs FILE (or DIR for trtexec)`);
  // Object.assign, not a spread: the spread would read (parse) the lazy generation options now.
  return Object.assign(inputGeneration(a), {
    loadInputs: list(a["load-inputs"]),
    saveInputs: a["save-inputs"] as string | undefined,
    ...(a.format !== undefined ? { saveInputsFormat: a.format as "arrow" | "polygraphy" | "trtexec" } : {}),
    dataLoaderScript: a["data-loader-script"] as string | undefined,
  });
}

export function modelArgs(model: string, a: Raw): ModelArgs {
  return {
    model,
    inputs: inputArgs(a),
    layerPrecisions: parseLayerPrecisions(list(a["layer-precisions"])),
    precisionPlan: a["precision-plan"] as string | undefined,
    segmentLayers: a["segment-layers"] as number | undefined,
    segmentMemory: a["segment-memory"] === undefined ? undefined : parseByteSize(String(a["segment-memory"]), "--segment-memory"),
    optimization: a["ort-optimization"] as OptimizationLevel | undefined,
    int8: int8Args(a),
    fusion: a.fusion === undefined ? undefined : parseFusionMode(a.fusion),
    allowExternalDataOutside: Boolean(a["allow-external-data-outside"]),
  };
}

/** The precisions named by --fp32/--fp16/--bf16 (and --int8 where supported), in that order. */
export function selectedPrecisions(a: Raw): Precision[] {
  const out: Precision[] = [];
  for (const p of ["fp32", "fp16", "bf16", "int8", "fp8"] as const) if (a[p]) out.push(p);
  return out;
}

export function compareArgs(a: Raw): CompareOptions {
  const o = defaultCompareOptions();
  const given = (k: string) => list(a[k]).length > 0;
  o.polygraphy = given("atol") || given("rtol") || given("check-error-stat");
  o.atol = parsePerTensor("--atol", list(a.atol), parseNonNegative, "a non-negative number");
  o.rtol = parsePerTensor("--rtol", list(a.rtol), parseNonNegative, "a non-negative number");
  o.checkErrorStat = parsePerTensor<ErrorStat>(
    "--check-error-stat",
    list(a["check-error-stat"]),
    (s) => ((ERROR_STATS as readonly string[]).includes(s) ? (s as ErrorStat) : undefined),
    ERROR_STATS.join("|"),
  );
  o.errorQuantile = parsePerTensor("--error-quantile", list(a["error-quantile"]), (s) => {
    const v = parseNonNegative(s);
    return v !== undefined && v <= 1 ? v : undefined;
  }, "a number in [0,1]");
  o.infinitiesCompareEqual = Boolean(a["infinities-compare-equal"]);
  o.allowDegenerate = Boolean(a["allow-degenerate"]);
  if (a["max-rel-l2"] !== undefined) {
    const v = Number(a["max-rel-l2"]);
    if (!Number.isFinite(v) || v < 0) throw new UserError(`--max-rel-l2: must be a non-negative number (got ${String(a["max-rel-l2"])})`);
    o.maxRelL2 = v;
  }
  return o;
}

/** `--metric cosine|sqnr --threshold X` (bisect and compare): the metric criterion, or null without --metric. */
export function metricCriterion(a: Raw, compare: CompareOptions): Extract<Criterion, { kind: "metric" }> | null {
  if (a.metric !== undefined) {
    if (a.threshold === undefined || !Number.isFinite(Number(a.threshold))) throw new UserError(`--metric ${String(a.metric)}: give --threshold X (e.g. ${a.metric === "cosine" ? "0.999" : "40"})`);
    const threshold = Number(a.threshold);
    // Below -1 every candidate would pass (a false PASS); above 1 none can (allowed: a search that must fail).
    if (a.metric === "cosine" && !(threshold >= -1)) throw new UserError(`--threshold ${threshold}: a cosine threshold below -1 passes anything; give one in [-1, 1] (e.g. 0.999)`);
    return { kind: "metric", metric: a.metric as "cosine" | "sqnr", threshold, compare };
  }
  if (a.threshold !== undefined) throw new UserError("--threshold: give --metric cosine|sqnr too");
  return null;
}

/** The --metric and --threshold options (bisect and compare). */
export function metricOptions<T>(y: Argv<T>, group: string) {
  return y
    .option("metric", { type: "string", choices: ["cosine", "sqnr"], describe: "Pass when this metric of every graph output is >= --threshold (instead of compare's verdict)", group })
    .option("threshold", { type: "number", describe: "Threshold of --metric (cosine e.g. 0.999, SQNR in dB e.g. 40)", group });
}

/**
 * Library option -> CLI flag, for UserErrors about an option (core/errors.ts `option`): the
 * CLI prints `--flag: ...` where the library says `option: ...`.
 */
export const OPTION_FLAGS: Readonly<Record<string, string>> = {
  seed: "--seed",
  valRange: "--val-range",
  inputValRanges: "--val-range",
  inputShapes: "--input-shapes",
  segmentLayers: "--segment-layers",
  segmentMemory: "--segment-memory",
  capture: "--mark",
  layerPrecisions: "--layer-precisions",
  qtype: "--fp8",
  boundaryCache: "--boundary-cache",
  memoryBudget: "--memory-budget",
  maxPinnedFraction: "--max-pinned",
  maxClipFraction: "--max-clip-fraction",
  minSqnrDb: "--min-sqnr",
  maxRangeRatio: "--max-range-ratio",
  checkBatches: "--check-batches",
  percentile: "--percentile",
  trtVersion: "--trt-version",
  loadInputs: "--load-inputs",
  saveInputs: "--save-inputs",
  saveOutputs: "--save-outputs",
  compareThreads: "--compare-threads",
  dataLoaderScript: "--data-loader-script",
  imagePreprocess: "--image-preprocess",
  calibData: "--calib-data",
  calibBatches: "--calib-batches",
  checkpoint: "--checkpoint",
  resume: "--resume",
  "criterion.command": "--check",
  "criterion.threshold": "--threshold",
  runnerCmd: "--runner-cmd",
  pinPrecision: "--precision",
  int8: "--int8",
  "int8.calibrationCache": "--calibration-cache",
  calibrationCache: "--calibration-cache",
  "int8.range": "--int8-range",
  fusion: "--fusion",
  algo: "--algo",
  runner: "--runner",
  precisionPlan: "--precision-plan",
  candidate: "--candidate",
  "precision.fp16": "--fp16",
  "precision.bf16": "--bf16",
  "precision.int8": "--int8",
  "saveInputsFormat.trtexec": "--format trtexec",
  model: "--model",
  layerInfo: "--layer-info",
  runnerTimeout: "--runner-timeout",
  candidateOutputs: "--candidate-outputs",
  saveOnnx: "--save-onnx",
  allowDifferentInputs: "--allow-different-inputs",
  allowExternalDataOutside: "--allow-external-data-outside",
  "calibBuild.output": "-o",
  // bisect's criteria, in its refusals (workflows/bisect.ts criterionRef)
  "criterion.cosine": "--cosine",
  "criterion.sqnr": "--sqnr",
  "compare.polygraphy": "--atol/--rtol",
  "compare.maxRelL2": "--max-rel-l2",
  // convertInt8Model's messages (precision/qdq-export.ts convertRef, workflows/convert-int8.ts)
  "convert.int8": "convert --int8",
  "convert.fp8": "convert --fp8",
  "qtype.int8": "--int8",
  "qtype.fp8": "--fp8",
  "int8.fallback.fp16": "--fp16",
  "int8.fallback.bf16": "--bf16",
  "ioTypes.reduced": "--io-types reduced",
  "ioTypes.fp32": "--io-types fp32",
  // result texts (core/hooks.ts spell): advice, notes, bisect's stop
  allowDegenerate: "--allow-degenerate",
  mode: "--mode",
  "fusion.none": "--fusion none",
  "compare.polygraphyTolerances": "--atol/--rtol/--check-error-stat",
  // not an option: where the CLI writes the whole result (calibration/int8-run.ts int8ReportLines)
  json: "--json",
};

/** Message parts (core/errors.ts `optionText`) joined with each option spelled as its flag. */
export function flagText(parts: readonly MessagePart[]): string {
  return parts.map((p) => (typeof p === "string" ? p : (OPTION_FLAGS[p.name] ?? p.name))).join("");
}

/**
 * The message of a UserError as the CLI prints it: every option it names (core/errors.ts
 * `userError` parts) spelled as its flag, else its leading option's name.
 */
export function flagMessage(e: UserError): string {
  if (e.parts) return flagText(e.parts);
  const flag = e.option === undefined ? undefined : OPTION_FLAGS[e.option];
  const rest = flag ? e.message.slice(e.option!.length) : "";
  return flag && e.message.startsWith(e.option!) && (rest.startsWith(":") || rest.startsWith(" ")) ? flag + rest : e.message;
}
