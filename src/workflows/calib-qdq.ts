/**
 * `calib check QDQ.onnx` without --calibration-cache: the scales of an explicitly quantized
 * model's QuantizeLinear nodes checked like a cache, on the model without its Q/DQ
 * (calibration/qdq-scales.ts; docs/int8.md "calib check").
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Hooks } from "../core/hooks.js";
import { registerTemp, unregisterTemp } from "../core/temp-files.js";
import { loadModel } from "../onnx/model.js";
import { saveModel } from "../onnx/model-file.js";
import { calibCheck, type CalibCheckArgs, type CalibCheckResult } from "../calibration/check.js";
import { hasQdq, qdqScales } from "../calibration/qdq-scales.js";
import { explicitlyQuantizedLayers } from "../calibration/int8-run.js";
import { prepareModelFile } from "../runtime/capture-runs.js";

/** True when the model file has QuantizeLinear/DequantizeLinear nodes in its top-level graph. */
export function isQdqModel(file: string, allowExternalDataOutside = false): boolean {
  return hasQdq(loadModel(file, { allowExternalDataOutside }).proto);
}

export async function calibCheckQdq(a: Omit<CalibCheckArgs, "calibrationCache" | "cache">, hooks: Hooks = {}): Promise<CalibCheckResult & { qdq: { activations: number; weights: number; type: "int8" | "fp8" } }> {
  const m = loadModel(a.model);
  // the layers the model quantizes (explicit quantization's rule), checked with explicit placement
  const p = await prepareModelFile(a.model, a);
  const quantizedLayers = await explicitlyQuantizedLayers(p.model, p.types);
  const q = qdqScales(m.proto, a.model);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trt-debug-qdq-"));
  const tmp = path.join(dir, path.basename(a.model));
  registerTemp(tmp);
  try {
    saveModel(q.proto, tmp);
    const r = await calibCheck({ ...a, model: tmp, calibrationCache: a.model, cache: q.cache, qtype: q.qtype, quantizedLayers, label: a.model }, hooks);
    return { ...r, model: a.model, qdq: { activations: q.cache.scales.size, weights: q.weights, type: q.qtype } };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    unregisterTemp(tmp);
  }
}
