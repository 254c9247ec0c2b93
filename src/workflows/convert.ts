/**
 * `convert`: an FP32 model and a precision assignment (--fp16/--bf16, a plan, overrides) written
 * as a strongly typed ONNX model (precision/convert.ts; docs/cli.md "convert").
 */
import { releaseModelWeights } from "../onnx/external-weights.js";
import * as path from "node:path";
import { TensorProto_DataLocation, type ModelProto } from "onnx-buf";
import { UserError } from "../core/errors.js";
import { checkOutputPath } from "../core/output-file.js";
import type { Hooks } from "../core/hooks.js";
import { saveModel } from "../onnx/model-file.js";
import { prepareModelFile } from "../runtime/capture-runs.js";
import { checkTypedPrecisions, convertToTyped, type TypedPrecision } from "../precision/convert.js";
import { precisionsFor, type ModelArgs } from "./model-inputs.js";
import { upgradeForExport } from "./export-opset.js";

export interface ConvertArgs extends Pick<ModelArgs, "model" | "layerPrecisions" | "precisionPlan" | "fusion" | "allowExternalDataOutside"> {
  /** Precision of every layer the plan and overrides do not name. */
  precision: "fp16" | "bf16";
  /** The strongly typed model to write. */
  output: string;
  /** Graph inputs/outputs: "fp32" (default) or "reduced" (the `precision` type). */
  ioTypes?: "fp32" | "reduced";
}

export interface ConvertResult {
  format: "trt-debug/convert@1";
  model: string;
  output: string;
  /** External data file written next to the output, or null. */
  data: string | null;
  converted: number;
  layers: number;
  casts: number;
  duplicated_initializers: string[];
  precisions: { layer: string; precision: TypedPrecision }[];
  /** The model's opset when it was upgraded to 13 for bf16 Casts (opset 9-12 models), else null. */
  upgraded_from_opset: number | null;
}

/** Models above this many bytes of initializers are written with external data (protobuf's 2 GB limit). */
const EXTERNAL_ABOVE = 1.5 * 2 ** 30;

/**
 * Write a converted model: weights as external data `OUT.onnx.data` when the source model had
 * external data or the weights exceed EXTERNAL_ABOVE (convert and convert --int8/--fp8).
 */
export function saveConverted(proto: ModelProto, output: string, source: ModelProto): { model: string; data?: string } {
  const external = source.graph!.initializer.some((t) => t.dataLocation === TensorProto_DataLocation.EXTERNAL);
  const bytes = proto.graph!.initializer.reduce((s, t) => s + t.rawData.byteLength, 0);
  return saveModel(proto, output, external || bytes > EXTERNAL_ABOVE ? { externalData: { location: `${path.basename(output)}.data` } } : {});
}

export async function convertModel(a: ConvertArgs, _hooks: Hooks = {}): Promise<ConvertResult> {
  checkOutputPath("output", a.output, "file", { createParents: true });
  if (path.resolve(a.output) === path.resolve(a.model)) throw new UserError(`output ${a.output}: the same file as the model; write the converted model elsewhere`);
  const p0 = await prepareModelFile(a.model, a);
  const bf16 = a.precision === "bf16" || precisionsFor(p0, a.precision, a).includes("bf16");
  const { prepared: p, upgradedFrom } = await upgradeForExport(p0, bf16 ? 13 : 6, "bf16 Casts", a);
  const m = p.model;
  const precisions = checkTypedPrecisions(precisionsFor(p, a.precision, a), m.graph.layers.map((l) => l.name));
  const r = convertToTyped(m, p.types, precisions, { io: a.ioTypes ?? "fp32", ioPrecision: a.precision });
  const saved = saveConverted(r.proto, a.output, m.proto);
  releaseModelWeights(m); // weights lifted or folded at load: saved, no longer needed
  if (p0.model !== m) releaseModelWeights(p0.model);
  return {
    format: "trt-debug/convert@1",
    model: a.model,
    output: a.output,
    data: saved.data ?? null,
    converted: r.converted,
    layers: r.layers,
    casts: r.casts,
    duplicated_initializers: r.duplicated,
    precisions: m.graph.layers.map((l, i) => ({ layer: l.name, precision: r.precisions[i]! })),
    upgraded_from_opset: upgradedFrom,
  };
}
