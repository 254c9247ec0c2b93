/**
 * `convert --int8`: an FP32 model, a calibration cache and a precision plan written as an
 * explicitly quantized (Q/DQ) ONNX model whose numbers are the int8 emulation's
 * (precision/qdq-export.ts; docs/int8.md "convert --int8").
 */
import * as path from "node:path";
import { opt, UserError } from "../core/errors.js";
import { checkOutputPath } from "../core/output-file.js";
import type { Hooks } from "../core/hooks.js";
import { prepareModelFile } from "../runtime/capture-runs.js";
import { prepareInt8, type Int8Report, type Int8RunArgs } from "../calibration/int8-run.js";
import { calibBuild, type CalibBuildArgs, type CalibBuildResult } from "../calibration/build.js";
import * as fs from "node:fs";
import { convertError, convertRef, exportQdq, FP8_QDQ_EXPORT_OPSET, type QdqExport } from "../precision/qdq-export.js";
import type { Precision } from "../core/host-tensor.js";
import type { TransformPolicy } from "../precision/rewrite.js";
import { assertOpsetSupports } from "../runtime/upgrade.js";
import { Executor } from "../runtime/executor.js";
import { makeFeeds, type PreparedModel } from "../runtime/capture-runs.js";
import { resolveInputs } from "./model-inputs.js";
import { makeInt8Policy } from "../precision/int8.js";
import { exportTypedQdq } from "./qdq-typed.js";
import { precisionsFor, type ModelArgs } from "./model-inputs.js";
import { upgradeForExport } from "./export-opset.js";
import { saveConverted } from "./convert.js";
import { QDQ_EXPORT_OPSET } from "../precision/qdq-export.js";

export interface ConvertInt8Args extends Pick<ModelArgs, "model" | "layerPrecisions" | "precisionPlan" | "fusion" | "allowExternalDataOutside"> {
  /** `--calibration-cache FILE` and `--int8-range`; the fallback is fp32. `qtype: "fp8"`: `convert --fp8`, scaled e4m3fn Q/DQ. */
  int8: Pick<Int8RunArgs, "calibrationCache" | "range" | "qtype" | "cache" | "placement"> & {
    /** `--int8 --fp16|--bf16`: layers not quantized are written strongly typed in fp16/bf16 (workflows/qdq-typed.ts); default fp32. */
    fallback?: "fp32" | "fp16" | "bf16";
  };
  /** The Q/DQ model to write. */
  output: string;
  /**
   * Calibrate first instead of reading a cache (`--calib-data`/`--calib-batches`, `--algo`):
   * `calib build` writes `OUT.onnx.cache` and its sidecar `OUT.onnx.cache.json`, then they are used.
   */
  calibrate?: Pick<CalibBuildArgs, "calibData" | "calibBatches" | "algo" | "percentile" | "inputs">;
}

export interface ConvertInt8Result {
  format: "trt-debug/convert-int8@1";
  model: string;
  output: string;
  /** External data file written next to the output (the model had external data, or weights over 1.5 GiB), or null. */
  data: string | null;
  /** What the Q/DQ quantize to: int8, or fp8 (float8e4m3fn, scale = amax/448). */
  type: "int8" | "fp8";
  /** Layers quantized (with Q/DQ: int8, or fp8 with type fp8) and in fp32 (none: pinned or fallbacks). */
  int8_layers: number;
  layers: number;
  /** The cache written by the calibration (`calibrate`), or null. */
  calibration: CalibBuildResult | null;
  /** Activation QuantizeLinear/DequantizeLinear pairs. */
  activation_qdq: number;
  /** Weights stored as int8 (float8e4m3fn with type fp8) with per-channel scales (DequantizeLinear axis). */
  int8_weights: { tensor: string; axis: number; channels: number }[];
  precisions: { layer: string; precision: "int8" | "fp8" | "fp32" | "fp16" | "bf16" }[];
  /** What the layers not quantized are written in: fp32, or fp16/bf16 (a strongly typed Q/DQ model). */
  fallback: "fp32" | "fp16" | "bf16";
  /** Cast nodes of the strongly typed model (0 with fallback fp32). */
  casts: number;
  int8: Int8Report;
  /** The model's opset when it was upgraded to 13 for per-channel DequantizeLinear (opset 9-12 models), else null. */
  upgraded_from_opset: number | null;
}

export async function convertInt8Model(a: ConvertInt8Args, hooks: Hooks = {}): Promise<ConvertInt8Result> {
  checkOutputPath("output", a.output, "file", { createParents: true });
  if (path.resolve(a.output) === path.resolve(a.model)) throw new UserError(`output ${a.output}: the same file as the model; write the converted model elsewhere`);
  const q = a.int8.qtype ?? "int8";
  const cmd = convertRef(q), cache = opt("int8.calibrationCache"), data = opt("calibData", "calibrate.calibData");
  if (a.calibrate && a.int8.calibrationCache) throw convertError`${cmd}: give ${cache} or ${data}/${opt("calibBatches", "calibrate.calibBatches")}, not both`;
  if (!a.int8.calibrationCache && !a.calibrate) throw convertError`${cmd}: give ${cache} FILE (make one with \`trt-debug calib build ${a.model} -o model.cache\`) or ${data} DATA`;
  const q8 = q === "int8";
  const { prepared: p, upgradedFrom } = await upgradeForExport(await prepareModelFile(a.model, a), q8 ? QDQ_EXPORT_OPSET : 0, "per-channel DequantizeLinear", a);
  let calibration: CalibBuildResult | null = null;
  let cacheFile = a.int8.calibrationCache;
  if (a.calibrate) {
    calibration = await calibBuild({ ...a.calibrate, model: a.model, output: `${a.output}.cache`, fusion: a.fusion, allowExternalDataOutside: a.allowExternalDataOutside }, hooks);
    cacheFile = calibration.cache;
  }
  const m = p.model;
  const fb = a.int8.fallback ?? "fp32";
  const requested = precisionsFor(p, q, a);
  const bad = requested.findIndex((x) => x !== q && x !== "fp32" && x !== fb);
  const fallback = (p: "fp16" | "bf16", text = `int8.fallback "${p}"`) => opt(`int8.fallback.${p}`, text);
  const withTypes = fb === "fp32" ? [opt(`qtype.${q}`, `int8.qtype "${q}"`)] : [opt(`qtype.${q}`, `int8.qtype "${q}"`), " ", fallback(fb)];
  const may = fb === "fp32" ? ["fp32 layers only (fp16/bf16 layers: add ", fallback("fp16"), " or ", fallback("bf16", '"bf16"'), ")"] : [`fp32 and ${fb} layers only`];
  if (bad >= 0) throw convertError`${cmd}: layer ${m.graph.layers[bad]!.name} is planned in ${requested[bad]}; with ${withTypes} a plan may name ${may}`;
  const i8 = await prepareInt8(m, p.types, requested, { ...a.int8, calibrationCache: cacheFile, fallback: fb }, (msg, parts) => hooks.warn?.(msg, parts));
  if (i8.resolution.mode === "explicit") throw convertError`${a.model}: already has QuantizeLinear/DequantizeLinear nodes; ${cmd} needs an FP32 model`;
  const precisions = i8.resolution.precisions;
  // fp8 below opset 19: the model is written upgraded to 19, after the emulation's checks of that upgrade
  if (q === "fp8" && m.opset >= 0 && m.opset < FP8_QDQ_EXPORT_OPSET) await checkFp8Upgrade(p, precisions, i8.resolution.policy);
  let r: QdqExport & { casts?: number };
  if (fb === "fp32") r = exportQdq(m, p.types, precisions, i8.resolution.policy, q);
  else {
    const exportPolicy = makeInt8Policy(m, p.types, { cache: i8.cache, fallback: "fp32", range: i8.resolution.range, qtype: q, placement: a.int8.placement });
    const dir = fs.mkdtempSync(path.join(path.dirname(path.resolve(a.output)), ".trt-debug-convert-"));
    try {
      r = await exportTypedQdq(m, p.types, precisions, q, fb, i8.resolution.policy, exportPolicy, { fusion: a.fusion, allowExternalDataOutside: a.allowExternalDataOutside, tmpDir: dir });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const saved = saveConverted(r.proto, a.output, m.proto);
  return {
    format: "trt-debug/convert-int8@1",
    type: q,
    model: a.model,
    output: a.output,
    data: saved.data ?? null,
    calibration,
    int8_layers: i8.resolution.int8Layers,
    layers: m.graph.layers.length,
    activation_qdq: r.activationQdq,
    int8_weights: r.int8Weights,
    precisions: m.graph.layers.map((l, i) => ({ layer: l.name, precision: precisions[i] === q ? q : precisions[i] === "fp16" || precisions[i] === "bf16" ? precisions[i] : "fp32" })),
    fallback: fb,
    casts: r.casts ?? 0,
    int8: i8.report,
    upgraded_from_opset: upgradedFrom,
  };
}

/**
 * `convert --fp8` of a model below opset 19: the checks the fp8 emulation makes before running it
 * upgraded (runtime/upgrade.ts): every node has an upgrade path to 19 (one line otherwise), and
 * one run of the emulation on seeded random inputs, whose first upgraded segment runs the fp32
 * self-check (the model as is and upgraded, bit for bit, every layer).
 */
async function checkFp8Upgrade(p: PreparedModel, precisions: readonly Precision[], policy: TransformPolicy): Promise<void> {
  assertOpsetSupports(p.model, p.types, precisions);
  const inputs = await resolveInputs(p, {});
  const exec = new Executor(p.model, p.types, { policy, keepSessions: false });
  try {
    for await (const _ of exec.run(precisions, makeFeeds(inputs), () => false)) void _;
  } finally {
    await exec.release();
  }
}
