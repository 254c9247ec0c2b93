/**
 * `bisect --int8 --save-onnx OUT.onnx`: the final plan written as an explicitly quantized (Q/DQ)
 * model through `convert --int8` (convertInt8Model: the emulation's own rewrite; the plan's fp32
 * pins and the int8 fallbacks get no Q/DQ), loaded back and re-verified before it is moved into
 * place: the layers that read a DequantizeLinear output are exactly the plan's int8 layers, and
 * with a compare criterion `compare MODEL OUT` passes it (docs/bisect.md, docs/int8.md).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { opt, precisionRef, UserError, userError } from "../core/errors.js";
import { SAVE_ONNX } from "./save-typed.js";
import { checkOutputPath } from "../core/output-file.js";
import { registerTemp, unregisterTemp } from "../core/temp-files.js";
import { loadModel } from "../onnx/model.js";
import { planToJson, type PrecisionPlan } from "../precision/plan.js";
import { prepareModelFile } from "../runtime/capture-runs.js";
import type { Int8RunArgs } from "../calibration/int8-run.js";
import type { Criterion } from "../search/evaluate.js";
import { convertInt8Model } from "./convert-int8.js";
import { compareGraphs } from "./compare-graphs.js";
import type { ModelArgs } from "./model-inputs.js";

export interface SaveInt8Args extends Pick<ModelArgs, "model" | "inputs" | "fusion" | "allowExternalDataOutside" | "segmentLayers" | "optimization"> {
  int8: Int8RunArgs;
  plan: PrecisionPlan;
  /** The bisect's criterion: a compare criterion is re-checked on the written model. */
  criterion: Criterion;
  output: string;
}

export interface SaveInt8Result {
  output: string;
  /** Layers with Q/DQ (int8, or fp8 with --fp8) and without (the plan's fp32 pins and the int8 fallbacks). */
  int8_layers: string[];
  fp32_layers: string[];
  /** `--int8 --fp16|--bf16`: layers written strongly typed in that type (fallbacks, fp16 pins). */
  reduced_layers: string[];
  /** `compare MODEL OUT` under the bisect's compare options; null with --threshold/--check criteria. */
  compare: { passed: boolean; detail: string } | null;
}

/**
 * Refusals before the search: the Q/DQ model keeps every non-int8 layer in fp32, or with
 * `--fp16`/`--bf16` (the fallback) writes them strongly typed in that type (convert --int8 --fp16).
 */
export function checkSaveInt8(pin: string, fallback: string | undefined): void {
  const fb = fallback ?? "fp32";
  if (pin !== "fp32" && pin !== fb) {
    if (fb !== "fp32") throw userError`${SAVE_ONNX}: pinned layers are written in fp32 or ${fb}; drop ${opt("pinPrecision")} ${pin}`;
    throw userError`${SAVE_ONNX}: pinned layers are written in fp32; drop ${opt("pinPrecision")} ${pin} (or add ${precisionRef(pin)}: the layers not in int8 are then written in ${pin})`;
  }
}

function fallbackOf(p: string | undefined): "fp32" | "fp16" | "bf16" {
  return p === "fp16" || p === "bf16" ? p : "fp32";
}

/** Layers (by name) with a float input read from a DequantizeLinear output outside the layer. */
function layersWithQdq(file: string, layers: readonly { name: string; nodes: readonly { name: string }[] }[]): Set<string> {
  const g = loadModel(file).proto.graph!;
  const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const byName = new Map(g.node.map((n) => [n.name, n]));
  const out = new Set<string>();
  for (const l of layers) {
    const nodes = l.nodes.map((n) => byName.get(n.name)).filter((n) => n !== undefined);
    const inside = new Set(nodes.flatMap((n) => n.output));
    if (nodes.some((n) => n.input.some((t) => t !== "" && !inside.has(t) && producer.get(t)?.opType === "DequantizeLinear"))) out.add(l.name);
  }
  return out;
}

export async function saveInt8Plan(a: SaveInt8Args): Promise<SaveInt8Result> {
  checkOutputPath("saveOnnx", a.output, "file", { createParents: true });
  const q = a.int8.qtype ?? "int8";
  fs.mkdirSync(path.dirname(path.resolve(a.output)), { recursive: true });
  const dir = fs.mkdtempSync(path.join(path.dirname(path.resolve(a.output)), ".trt-debug-save-"));
  const planFile = path.join(dir, "plan.json");
  const tmp = path.join(dir, path.basename(a.output));
  const temps = [planFile, tmp, `${tmp}.data`]; // a signal removes these
  temps.forEach(registerTemp);
  try {
    fs.writeFileSync(planFile, planToJson(a.plan));
    const r = await convertInt8Model({ model: a.model, output: tmp, precisionPlan: planFile, int8: { calibrationCache: a.int8.calibrationCache, range: a.int8.range, cache: a.int8.cache, placement: a.int8.placement, qtype: a.int8.qtype, fallback: fallbackOf(a.int8.fallback) }, fusion: a.fusion, allowExternalDataOutside: a.allowExternalDataOutside });
    // re-verify: the layers with Q/DQ in the file are exactly the ones the conversion put in int8
    const src = await prepareModelFile(a.model, a);
    const withQdq = layersWithQdq(tmp, src.model.graph.layers);
    const written = new Map(r.precisions.map((p) => [p.layer, p.precision]));
    const isFloat = (t: string) => t !== "" && ["float32", "float16", "bfloat16"].includes(src.types.get(t)?.dtype ?? "");
    for (const l of src.model.graph.layers) {
      const w = written.get(l.name);
      // shape arithmetic (a Slice/Concat of int64 shapes) is "int8-capable" but has nothing to quantize
      if (![...l.inputs, ...l.outputs].some(isFloat)) continue;
      if ((w === q) !== withQdq.has(l.name)) throw new Error(`saveInt8Plan: layer '${l.name}' was written in ${w ?? "no precision"} but the Q/DQ model ${withQdq.has(l.name) ? "quantizes" : "does not quantize"} it`);
    }
    for (const e of a.plan.layers) {
      for (const l of src.model.graph.layers) if (e.pattern === l.name && written.get(l.name) !== e.precision) throw new Error(`saveInt8Plan: the plan pins '${l.name}' to ${e.precision} but it was written in ${written.get(l.name)}`);
    }
    let compare: SaveInt8Result["compare"] = null;
    if (a.criterion.kind === "compare") {
      const outs: string[] = [];
      const c = await compareGraphs(
        { reference: a.model, candidate: tmp, compare: a.criterion.compare, inputs: a.inputs, fusion: a.fusion, allowExternalDataOutside: a.allowExternalDataOutside, segmentLayers: a.segmentLayers, optimization: a.optimization, keepRows: false },
        { onLayer: (l) => void (l.isGraphOutput && outs.push(`${l.tensor}: ${l.verdict.reason}`)) },
      );
      const detail = `${c.verdict}, ${outs.join("; ")}`;
      compare = { passed: c.outputs_passed, detail };
      if (!c.outputs_passed) throw new Error(`saveInt8Plan: the Q/DQ model of the verified plan fails compare ${a.model} ${a.output} (${detail})`);
    }
    fs.renameSync(tmp, a.output);
    if (r.data) fs.renameSync(r.data, path.join(path.dirname(a.output), path.basename(r.data)));
    return {
      output: a.output,
      int8_layers: r.precisions.filter((p) => p.precision === q).map((p) => p.layer),
      fp32_layers: r.precisions.filter((p) => p.precision === "fp32").map((p) => p.layer),
      reduced_layers: r.precisions.filter((p) => p.precision === "fp16" || p.precision === "bf16").map((p) => p.layer),
      compare,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    temps.forEach(unregisterTemp);
  }
}
