/**
 * `trt-debug convert MODEL --fp16|--bf16 [--precision-plan P | --layer-precisions ...] -o OUT.onnx`
 * (docs/cli.md "convert"). Exit codes: 0 written; 2 user error.
 */
import type { Argv } from "yargs";
import { UserError } from "../core/errors.js";
import { convertModel } from "../workflows/convert.js";
import { convertInt8Model } from "../workflows/convert-int8.js";
import { parseInt8Range } from "../precision/int8.js";
import { int8ReportLines } from "../calibration/int8-run.js";
import { CALIB_ALGOS, parseCalibAlgo } from "../calibration/algorithms.js";
import { parseCalibBatches } from "../calibration/calib-data.js";
import { parsePercentile } from "../calibration/build.js";
import { parseFusionMode } from "../onnx/layer-model.js";
import { FUSION_OPTION, inputArgs, inputOptions } from "./options.js";
import { parseLayerPrecisions } from "../precision/plan.js";
import { writeJson, type Cli } from "./shell.js";

type Raw = Record<string, unknown>;

function list(v: unknown): string[] | undefined {
  return v === undefined ? undefined : (Array.isArray(v) ? v : [v]).map(String);
}

function upgradeNote(cli: Cli, r: { model: string; output: string; upgraded_from_opset: number | null }): void {
  if (r.upgraded_from_opset !== null) cli.io.out(`note: ${r.model} has opset ${r.upgraded_from_opset}; the model is written at opset 13 (its old-opset nodes upgraded as the emulation does: docs/precision.md "Old opsets"); check it with trt-debug compare ${r.model} ${r.output}`);
}

/** The input flags (calib build's): they only feed convert's own calibration (--calib-data/--calib-batches). */
const INPUT_FLAGS = ["seed", "val-range", "input-shapes", "load-inputs", "image-preprocess", "data-loader-script", "save-inputs", "format"];

async function handler(cli: Cli, a: Raw): Promise<void> {
  const calibrates = (a.int8 || a.fp8) && (a["calib-data"] !== undefined || a["calib-batches"] !== undefined);
  const inputFlag = INPUT_FLAGS.find((k) => a[k] !== undefined);
  if (inputFlag && !calibrates) throw new UserError(`--${inputFlag}: only when convert --int8/--fp8 calibrates (--calib-data or --calib-batches); the conversion itself runs no model`);
  if (a["save-inputs"] !== undefined) throw new UserError("--save-inputs: not available for convert (the calibration data are already files or seeded)");
  if (a.fp8 && a.int8) throw new UserError("--int8 and --fp8: give one quantized type");
  if (a.fp8 && a["int8-range"] !== undefined) throw new UserError("--int8-range: only with --int8 (fp8 Q/DQ saturates at ±448)");
  if (a.int8 || a.fp8) return int8Handler(cli, a);
  if (a.fp16 && a.bf16) throw new UserError("--fp16 and --bf16: give one reduced precision");
  if (!a.fp16 && !a.bf16) throw new UserError("convert: give --fp16 or --bf16 (the precision of every layer the plan does not name)");
  if (a["precision-plan"] !== undefined && a["layer-precisions"] !== undefined) throw new UserError("--precision-plan and --layer-precisions: give one of them");
  const io = (a["io-types"] ?? "fp32") as string;
  if (io !== "fp32" && io !== "reduced") throw new UserError(`--io-types ${io}: expected fp32 or reduced`);
  const h = cli.hooks(a);
  const r = await convertModel({
    model: String(a.model),
    output: String(a.output),
    precision: a.fp16 ? "fp16" : "bf16",
    precisionPlan: a["precision-plan"] as string | undefined,
    layerPrecisions: parseLayerPrecisions(list(a["layer-precisions"]) ?? []),
    ioTypes: io,
    fusion: a.fusion === undefined ? undefined : parseFusionMode(a.fusion),
    allowExternalDataOutside: Boolean(a["allow-external-data-outside"]),
  }, h).finally(() => h.done());
  if (!a.quiet) upgradeNote(cli, r);
  if (!a.quiet) cli.io.out(`converted ${r.converted}/${r.layers} layers to ${a.fp16 ? "fp16" : "bf16"}: ${r.casts} Casts, ${r.duplicated_initializers.length} duplicated weights; wrote ${r.output}${r.data ? ` (+ ${r.data})` : ""}`);
  writeJson(a.json as string | undefined, r);
}

async function int8Handler(cli: Cli, a: Raw): Promise<void> {
  const q = a.fp8 ? "fp8" : "int8";
  if (a.fp16 && a.bf16) throw new UserError(`--fp16 and --bf16: give one precision for the layers not in ${q}`);
  const calibrate = a["calib-data"] !== undefined || a["calib-batches"] !== undefined;
  if (!calibrate && (a.algo !== undefined || a.percentile !== undefined)) throw new UserError(`--${a.algo !== undefined ? "algo" : "percentile"}: only when convert --${q} calibrates (--calib-data or --calib-batches)`);
  if (a["precision-plan"] !== undefined && a["layer-precisions"] !== undefined) throw new UserError("--precision-plan and --layer-precisions: give one of them");
  if (a["io-types"] !== undefined && a["io-types"] !== "fp32") throw new UserError(`--io-types ${String(a["io-types"])}: a Q/DQ model keeps fp32 inputs and outputs`);
  const h = cli.hooks(a);
  const r = await convertInt8Model({
    model: String(a.model),
    output: String(a.output),
    int8: { calibrationCache: a["calibration-cache"] as string | undefined, range: a["int8-range"] === undefined ? undefined : parseInt8Range(a["int8-range"]), qtype: q, fallback: a.fp16 ? "fp16" : a.bf16 ? "bf16" : "fp32" },
    calibrate: calibrate
      ? {
          calibData: a["calib-data"] as string | undefined,
          calibBatches: a["calib-batches"] === undefined ? undefined : parseCalibBatches(a["calib-batches"]),
          algo: parseCalibAlgo(String(a.algo ?? "entropy"), "--algo"),
          percentile: a.percentile === undefined ? undefined : parsePercentile(a.percentile),
          inputs: inputArgs(a),
        }
      : undefined,
    precisionPlan: a["precision-plan"] as string | undefined,
    layerPrecisions: parseLayerPrecisions(list(a["layer-precisions"]) ?? []),
    fusion: a.fusion === undefined ? undefined : parseFusionMode(a.fusion),
    allowExternalDataOutside: Boolean(a["allow-external-data-outside"]),
  }, h).finally(() => h.done());
  if (!a.quiet) {
    if (r.calibration) cli.io.out(`calibrated ${r.calibration.tensors.length} tensors with ${r.calibration.algo} on ${r.calibration.batches} batch${r.calibration.batches === 1 ? "" : "es"} (data: ${r.calibration.data}); wrote ${r.calibration.cache} and ${r.calibration.sidecar}`);
    for (const line of int8ReportLines(r.int8, 10, h)) cli.io.out(line);
    upgradeNote(cli, r);
    const typed = r.fallback === "fp32" ? "" : `, ${r.precisions.filter((x) => x.precision === r.fallback).length} layer(s) in ${r.fallback} (strongly typed, ${r.casts} Casts)`;
    cli.io.out(`converted ${r.int8_layers}/${r.layers} layers to ${q === "fp8" ? "fp8 e4m3fn" : "int8"} (Q/DQ): ${r.activation_qdq} activation Q/DQ pairs, ${r.int8_weights.length} ${q} per-channel weights${typed}; wrote ${r.output}${r.data ? ` (+ ${r.data})` : ""}`);
  }
  writeJson(a.json as string | undefined, r);
}

export function registerConvert(y: Argv, cli: Cli): void {
  y.command(
    "convert <model>",
    "Write a strongly typed ONNX model (TensorRT 11): fp16/bf16 tensors and weights with Casts at precision boundaries, or --int8/--fp8 Q/DQ (explicit quantization)",
    (b) =>
      inputOptions(b)
        .positional("model", { type: "string", describe: "FP32 ONNX model" })
        .option("fp16", { type: "boolean", describe: "Layers the plan does not name run in fp16" })
        .option("bf16", { type: "boolean", describe: "Layers the plan does not name run in bf16" })
        .option("int8", { type: "boolean", describe: "Write an explicitly quantized (Q/DQ) model: int8 layers from --calibration-cache, the layers the plan names in fp32 without Q/DQ; with --fp16/--bf16 the layers not in int8 are written strongly typed in it (docs/int8.md)" })
        .option("calibration-cache", { type: "string", describe: "With --int8/--fp8: the activation ranges (TensorRT cache or trt-debug JSON sidecar; calib build -o)" })
        .option("int8-range", { type: "string", describe: "With --int8: activation clamp 128 = [-128,127] (default) or 127 = [-127,127]" })
        .option("calib-data", { type: "string", describe: "With --int8/--fp8: calibrate on these data first, as calib build --calib-data (writes OUT.onnx.cache and OUT.onnx.cache.json)" })
        .option("calib-batches", { type: "number", describe: "With --int8/--fp8 and no --calib-data: calibrate on this many seeded random batches (as calib build)" })
        .option("algo", { type: "string", describe: `With --calib-data/--calib-batches: ${CALIB_ALGOS.join("|")} (default entropy)` })
        .option("percentile", { type: "number", describe: "For --algo percentile (default 99.99)" })
        .option("fp8", { type: "boolean", describe: "Write a scaled FP8 (float8e4m3fn) Q/DQ model as --int8 does (scale = amax/448, per output channel for weights; opset >= 19, opset 9-18 models upgraded): TensorRT's explicit FP8 (docs/int8.md \"FP8\")" })
        .option("precision-plan", { type: "string", describe: "Precision plan JSON (bisect -o) naming layers kept in fp32" })
        .option("layer-precisions", { type: "string", array: true, describe: "Per-layer overrides PATTERN:fp32|fp16|bf16 (exact names or globs)" })
        .option("io-types", { type: "string", describe: "Graph inputs/outputs: fp32 (default) or reduced (the --fp16/--bf16 type)" })
        .option("output", { alias: "o", type: "string", demandOption: true, describe: "The strongly typed model to write (.onnx; weights as external data OUT.onnx.data next to it when the model had external data or exceeds 1.5 GiB)" })
        .option("fusion", FUSION_OPTION)
        .option("allow-external-data-outside", { type: "boolean", describe: "Accept external data outside the model's folder" })
        .option("json", { type: "string", describe: "Write the result as JSON (- for stdout)" })
        .option("quiet", { alias: "q", type: "boolean", describe: "No summary line" }),
    (a) => handler(cli, a as Raw),
  );
}
