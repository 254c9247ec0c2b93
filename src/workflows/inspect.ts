/** `inspect`: the layers as trt-debug and TensorRT name them, their op types and tensors (no run). */
import type { DType } from "../core/host-tensor.js";
import type { FusionMode, LayerModelSummary } from "../onnx/model.js";
import { layerNodeNames } from "../onnx/layer-model.js";
import { prepareModelFile } from "../runtime/capture-runs.js";

export interface InspectArgs {
  model: string;
  /** Layer fusion: "trt" (default) or "none" (docs/precision.md). */
  fusion?: FusionMode;
  /** Accept external data outside the model's folder (docs/security.md). Off by default. */
  allowExternalDataOutside?: boolean;
}

export interface InspectedLayer {
  index: number;
  name: string;
  op_type: string;
  /** The ONNX nodes of the layer (several for a fused group). */
  nodes: string[];
  inputs: string[];
  outputs: { name: string; dtype: DType | "?" }[];
}

/** `trt-debug inspect --json` (docs/file-formats.md). */
export interface InspectResult {
  format: "trt-debug/inspect@1";
  model: string;
  ir_version: number;
  opset: number;
  inputs: { name: string; dtype: DType; dims: (number | string | null)[] }[];
  /** Graph outputs and their dtypes ("?" when unknown). */
  outputs: { name: string; dtype: DType | "?" }[];
  layers: InspectedLayer[];
  layer_model: LayerModelSummary | null;
}

/**
 * Load a model under TensorRT's layer model and describe it.
 * @example const r = await inspectModel({ model: "model.onnx" }); r.layers.map((l) => l.name)
 */
export async function inspectModel(a: InspectArgs): Promise<InspectResult> {
  const p = await prepareModelFile(a.model, { fusion: a.fusion, allowExternalDataOutside: Boolean(a.allowExternalDataOutside) });
  const ty = (t: string): DType | "?" => p.types.get(t)?.dtype ?? "?";
  const layers = p.model.graph.layers.map((l) => ({ index: l.index, name: l.name, op_type: l.opType, nodes: layerNodeNames(l), inputs: l.inputs, outputs: l.outputs.map((o) => ({ name: o, dtype: ty(o) })) }));
  return {
    format: "trt-debug/inspect@1",
    model: p.model.path,
    ir_version: p.model.irVersion,
    opset: p.model.opset,
    inputs: p.inputs,
    outputs: p.model.graph.outputs.map((o) => ({ name: o.name, dtype: ty(o.name) })),
    layers,
    layer_model: p.model.layerModel ?? null,
  };
}
