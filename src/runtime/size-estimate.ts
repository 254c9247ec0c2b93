/**
 * Sizes of activations for the segment planner (runtime/executor.ts planSegments). The
 * inferred shapes give most; a tensor onnxruntime's inference leaves open (the typing model
 * reads initializers as inputs, so a Resize's scales, and everything after it, are unknown) is
 * estimated from its layer's inputs instead of counting as the model's largest activation,
 * which put every such layer of the detector-like net's FPN head in a segment of its own
 * (17 one-layer segments; docs/performance.md). Estimates only move cuts, never values.
 */
import type { NodeProto, TensorProto } from "onnx-buf";
import type { LoadedModel } from "../onnx/model.js";
import type { TypeMap } from "../onnx/infer.js";
import { tensorProtoToHost } from "../onnx/tensor.js";

const DTYPE_BYTES: Record<string, number> = { float64: 8, int64: 8, uint64: 8, float32: 4, int32: 4, uint32: 4, float16: 2, bfloat16: 2, int16: 2, uint16: 2 };

/** Bytes of a tensor from its inferred type (0 when its shape is not fully known). */
export function estimateTensorBytes(types: TypeMap, t: string): number {
  const ty = types.get(t);
  if (!ty?.shape) return 0;
  let n = DTYPE_BYTES[ty.dtype] ?? 1;
  for (const d of ty.shape) {
    if (typeof d !== "number") return 0;
    n *= d;
  }
  return n;
}

/** Values of a small constant initializer (at most 16 elements, stored in the model), else null. */
function smallConstant(init: TensorProto | undefined): number[] | null {
  if (!init || init.externalData.length > 0) return null;
  let n = 1;
  for (const d of init.dims) n *= Number(d);
  if (n === 0 || n > 16) return null;
  try {
    const h = tensorProtoToHost(init);
    if (typeof h.data[0] === "string") return null;
    return Array.from(h.data as ArrayLike<number | bigint>, Number);
  } catch {
    return null;
  }
}

/**
 * A Conv's output from its input's bytes: channels from the weight's dims (Conv [Cout, Cin/g,
 * ...], ConvTranspose [Cin, Cout/g, ...]), spatial size divided (Conv) or multiplied
 * (ConvTranspose) by the strides; 0 when the weight's dims are not there.
 */
function convBytes(n: NodeProto, inBytes: number, w: TensorProto | undefined): number {
  if (!w || w.dims.length < 3) return 0;
  const attr = (name: string) => n.attribute.find((a) => a.name === name);
  const group = Number(attr("group")?.i ?? 1) || 1;
  const strides = (attr("strides")?.ints ?? []).map(Number).reduce((a, b) => a * b, 1) || 1;
  const d0 = Number(w.dims[0]), d1 = Number(w.dims[1]);
  if (!(d0 > 0 && d1 > 0)) return 0;
  return n.opType === "Conv" ? (inBytes * d0) / (d1 * group) / strides : (inBytes * d1 * group * strides) / d0;
}

/**
 * Planned bytes of every layer output and graph input: the inferred size when known, else an
 * estimate from the layer's (estimated) activation inputs: a Resize/Upsample scales its input
 * by its constant scales (or takes its constant sizes), a Conv/ConvTranspose scales it by its
 * weight's channels and its strides, a Concat sums its inputs, any other layer takes its
 * largest input. 0 where nothing is known (the planner's fallback applies).
 */
export function plannedTensorBytes(model: LoadedModel, types: TypeMap): Map<string, number> {
  const { layers, initializers } = model.graph;
  const sizes = new Map<string, number>();
  const sizeOf = (t: string): number => {
    let b = sizes.get(t);
    if (b === undefined) sizes.set(t, (b = estimateTensorBytes(types, t)));
    return b;
  };
  for (const l of layers) {
    let unknown = false;
    for (const o of l.outputs) if (o !== "" && sizeOf(o) === 0) unknown = true;
    if (!unknown) continue;
    const acts = l.inputs.filter((t) => t !== "" && !initializers.has(t));
    const inSizes = acts.map(sizeOf);
    let est = 0;
    const head = l.nodes[0]!;
    const op = head.domain === "" || head.domain === "ai.onnx" ? head.opType : "";
    if (op === "Resize" || op === "Upsample") {
      const x = head.input[0] ?? "";
      const xb = x ? sizeOf(x) : 0;
      const sizesIn = op === "Resize" ? smallConstant(initializers.get(head.input[3] ?? "")) : null;
      const scales = smallConstant(initializers.get(head.input[op === "Resize" ? 2 : 1] ?? ""));
      if (sizesIn && sizesIn.length > 0) {
        const ty = types.get(l.outputs[0] ?? "") ?? types.get(x);
        est = sizesIn.reduce((a, b) => a * b, 1) * (DTYPE_BYTES[ty?.dtype ?? "float32"] ?? 4);
      } else if (scales && scales.length > 0 && xb > 0) {
        est = xb * scales.reduce((a, b) => a * b, 1);
      }
    } else if ((op === "Conv" || op === "ConvTranspose") && head.input[0] && sizeOf(head.input[0]) > 0) {
      est = convBytes(head, sizeOf(head.input[0]), initializers.get(head.input[1] ?? ""));
    } else if (op === "Concat") {
      if (inSizes.every((b) => b > 0)) est = inSizes.reduce((a, b) => a + b, 0);
    } else {
      est = Math.max(0, ...inSizes);
    }
    for (const o of l.outputs) if (o !== "" && sizeOf(o) === 0 && est > 0) sizes.set(o, Math.round(est));
  }
  return sizes;
}
