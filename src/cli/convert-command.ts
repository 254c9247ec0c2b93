/**
 * `trt-debug convert MODEL --fp16|--bf16 [--precision-plan P | --layer-precisions ...] -o OUT.onnx`
 * (docs/cli.md "convert"). Exit codes: 0 written; 2 user error.
 */
import type { Argv } from "yargs";
import { UserError } from "../core/errors.js";
import { convertModel } from "../workflows/convert.js";
import { parseFusionMode } from "../onnx/layer-model.js";
import { FUSION_OPTION } from "./options.js";
import { parseLayerPrecisions } from "../precision/plan.js";
import { writeJson, type Cli } from "./shell.js";

type Raw = Record<string, unknown>;

function list(v: unknown): string[] | undefined {
  return v === undefined ? undefined : (Array.isArray(v) ? v : [v]).map(String);
}

async function handler(cli: Cli, a: Raw): Promise<void> {
  if (a.int8 || a.fp8) throw new UserError(`--${a.int8 ? "int8" : "fp8"}: convert writes fp16/bf16 strongly typed models only; Q/DQ (int8/fp8) conversion is not supported yet`);
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
  if (!a.quiet) cli.io.out(`converted ${r.converted}/${r.layers} layers to ${a.fp16 ? "fp16" : "bf16"}: ${r.casts} Casts, ${r.duplicated_initializers.length} duplicated weights; wrote ${r.output}${r.data ? ` (+ ${r.data})` : ""}`);
  writeJson(a.json as string | undefined, r);
}

export function registerConvert(y: Argv, cli: Cli): void {
  y.command(
    "convert <model>",
    "Write a strongly typed mixed-precision ONNX model (TensorRT 11): fp16/bf16 tensors and weights, Casts at precision boundaries",
    (b) =>
      b
        .positional("model", { type: "string", describe: "FP32 ONNX model" })
        .option("fp16", { type: "boolean", describe: "Layers the plan does not name run in fp16" })
        .option("bf16", { type: "boolean", describe: "Layers the plan does not name run in bf16" })
        .option("int8", { type: "boolean", hidden: true })
        .option("fp8", { type: "boolean", hidden: true })
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
