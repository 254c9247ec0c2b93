/**
 * `bisect --save-onnx OUT.onnx`: the final plan written as a strongly typed model (TensorRT 11)
 * through convert, loaded back and re-verified as typed (every layer's declared precision is
 * the plan's) before it is moved into place. Also the TensorRT 11 / ModelOpt AutoCast commands
 * that go with it (docs/tensorrt-versions.md).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { opt, precisionRef, UserError, userError } from "../core/errors.js";
import { checkOutputPath } from "../core/output-file.js";
import { registerTemp, unregisterTemp } from "../core/temp-files.js";
import type { Precision } from "../core/host-tensor.js";
import { planToJson, type PrecisionPlan } from "../precision/plan.js";
import { prepareModelFile } from "../runtime/capture-runs.js";
import { convertModel, type ConvertResult } from "./convert.js";
import type { ModelArgs } from "./model-inputs.js";

export interface SaveTypedArgs extends Pick<ModelArgs, "model" | "fusion" | "allowExternalDataOutside"> {
  /** The bisect's candidate precision: every layer the plan does not name. */
  precision: Precision;
  plan: PrecisionPlan;
  output: string;
}

export interface SaveTypedResult {
  output: string;
  data: string | null;
  /** Layers written in fp32 (the plan's pins and its fp32 entries). */
  fp32_layers: string[];
  /** ONNX node names of those layers (every node of a fused group), for AutoCast's --nodes_to_exclude. */
  fp32_nodes: string[];
  converted: number;
  layers: number;
}

/** The precisions saveTypedPlan can write (bisect --save-onnx; a refusal names the option). */
export function checkSaveTyped(precision: Precision, pin: Precision): "fp16" | "bf16" {
  if (precision !== "fp16" && precision !== "bf16") throw userError`${SAVE_ONNX}: strongly typed models are written for ${precisionRef("fp16")}/${precisionRef("bf16")} searches only (an ${precisionRef("int8")} search writes a Q/DQ model); drop ${SAVE_ONNX} or search with ${precisionRef("fp16")}`;
  if (pin !== "fp32") throw userError`${SAVE_ONNX}: pinned layers are written in fp32; drop ${opt("pinPrecision")} ${pin}`;
  return precision;
}

/** bisect's save-onnx option (its CLI flag --save-onnx), for messages. */
export const SAVE_ONNX = opt("saveOnnx");

/** Write the plan as a typed model, load it back, check each layer's declared precision, then move it to `output`. */
export async function saveTypedPlan(a: SaveTypedArgs): Promise<SaveTypedResult> {
  const reduced = checkSaveTyped(a.precision, "fp32");
  checkOutputPath("saveOnnx", a.output, "file", { createParents: true });
  fs.mkdirSync(path.dirname(path.resolve(a.output)), { recursive: true });
  const dir = fs.mkdtempSync(path.join(path.dirname(path.resolve(a.output)), ".trt-debug-save-"));
  const planFile = path.join(dir, "plan.json");
  const tmp = path.join(dir, path.basename(a.output));
  const temps = [planFile, tmp, `${tmp}.data`]; // a signal removes these (the empty folder may stay)
  temps.forEach(registerTemp);
  try {
    fs.writeFileSync(planFile, planToJson(a.plan));
    const r: ConvertResult = await convertModel({ model: a.model, output: tmp, precision: reduced, precisionPlan: planFile, fusion: a.fusion, allowExternalDataOutside: a.allowExternalDataOutside });
    const written = new Map(r.precisions.map((p) => [p.layer, p.precision]));
    // re-verify as typed: the file's declared types give back the plan, layer for layer
    const src = await prepareModelFile(a.model, a);
    const back = await prepareModelFile(tmp, { fusion: a.fusion });
    if (!back.model.typed) throw new Error(`saveTypedPlan: ${a.output}: the converted model is not strongly typed`);
    const declared = new Map(back.model.graph.layers.map((l, i) => [l.name, back.model.typed?.precisions?.[i]]));
    const fp32: string[] = [];
    const nodes: string[] = [];
    src.model.graph.layers.forEach((l) => {
      const w = written.get(l.name);
      const hasFloat = l.outputs.some((t) => t !== "" && ["float32", "float16", "bfloat16"].includes(src.types.get(t)?.dtype ?? ""));
      if (!hasFloat || w === undefined) return;
      const d = declared.get(l.name);
      if (d !== w) throw new Error(`saveTypedPlan: layer '${l.name}' was written in ${w} but the typed model declares ${d ?? "no such layer"}`);
      if (w === "fp32") {
        fp32.push(l.name);
        nodes.push(...l.nodes.map((n) => n.name).filter((n) => n !== ""));
      }
    });
    fs.renameSync(tmp, a.output);
    let data: string | null = null;
    if (r.data) {
      data = path.join(path.dirname(a.output), path.basename(r.data));
      fs.renameSync(r.data, data);
    }
    return { output: a.output, data, fp32_layers: fp32, fp32_nodes: nodes, converted: r.converted, layers: r.layers };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    temps.forEach(unregisterTemp);
  }
}

/** Python-regex escape of a node name, anchored (AutoCast matches --nodes_to_exclude with re.match). */
function nodeRegex(name: string): string {
  return "^" + name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "$";
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** TensorRT 11.x: build the strongly typed model as is (precision lives in the ONNX). */
export function trtexecTypedCommand(output: string): string {
  return `trtexec --onnx=${shellQuote(output)}`;
}

/** ModelOpt AutoCast: the same assignment from the fp32 model (pinned nodes excluded by anchored regex). */
export function autocastCommand(model: string, output: string, precision: "fp16" | "bf16", fp32Nodes: readonly string[]): string {
  const ex = fp32Nodes.length ? ` --nodes_to_exclude ${fp32Nodes.map((n) => shellQuote(nodeRegex(n))).join(" ")}` : "";
  return `python -m modelopt.onnx.autocast --onnx_path ${shellQuote(model)} --output_path ${shellQuote(output)} --low_precision_type ${precision}${ex}`;
}
