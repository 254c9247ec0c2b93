/**
 * What a rewrite does to one tensor (Transform) and the fixed rules behind the choice: which
 * float format each precision rounds to, which inputs are never rounded, which ops are exact.
 * Shared by rewrite.ts (layers) and subgraph.ts (If/Loop/Scan bodies); imports nothing of them.
 */
import { TensorProto_DataType, type NodeProto, type TensorProto } from "onnx-buf";
import type { Precision } from "../core/host-tensor.js";
import type { FloatFormat } from "../numeric/index.js";

export type Transform =
  | { kind: "none" }
  | { kind: "round"; format: FloatFormat }
  | {
      kind: "qdq";
      /** per-tensor scale (activations) */
      scale: number;
      qmin: number;
      qmax: number;
      /** Quantized type: int8 (default) or scaled fp8 (e4m3fn(x/scale)·scale, saturating at ±448; qmin/qmax unused). */
      type?: "fp8e4m3fn";
    }
  | {
      /** per-output-channel symmetric weight quantization, applied to an initializer */
      kind: "qdq-weight";
      axis: number;
      qmin: number;
      qmax: number;
      /** Quantized type: int8 (default) or scaled fp8 (per-channel scale amax/448). */
      type?: "fp8e4m3fn";
      /**
       * Given per-channel scales (a Q/DQ candidate's weight DequantizeLinear, `bisect REF
       * --candidate QDQ.onnx`) instead of max|w_c|/qmax; `scalesKey` names them in transform keys.
       */
      scales?: Float32Array;
      scalesKey?: string;
    };

export function transformKey(t: Transform): string {
  switch (t.kind) {
    case "none":
      return "none";
    case "round":
      return t.format;
    case "qdq":
      return t.type ? `q8${t.scale}` : `q${t.scale}[${t.qmin},${t.qmax}]`;
    case "qdq-weight":
      return (t.type ? `qw8${t.axis}` : `qw${t.axis}[${t.qmin},${t.qmax}]`) + (t.scalesKey !== undefined ? `@${t.scalesKey}` : "");
  }
}

export const PRECISION_FORMAT: Partial<Record<Precision, FloatFormat>> = { fp16: "fp16", bf16: "bf16", fp8: "fp8e4m3fn" };

export const FORMAT_ONNX: Record<FloatFormat, number> = {
  fp16: TensorProto_DataType.FLOAT16,
  bf16: TensorProto_DataType.BFLOAT16,
  fp8e4m3fn: TensorProto_DataType.FLOAT8E4M3FN,
  fp8e5m2: TensorProto_DataType.FLOAT8E5M2,
};

/** Inputs that carry shapes or coordinates, never rounded (op type -> input indices). */
export const NEVER_ROUNDED_INPUTS: Record<string, number[]> = {
  Resize: [1, 2],
  Upsample: [1],
  Range: [0, 1, 2],
};

/**
 * Ops whose floating outputs are selections, sign changes or maxima of their floating inputs:
 * when every floating input is already rounded to a format, the outputs are exactly
 * representable in it, so rounding them again would change nothing. The rewriter records the
 * rounding (consumers rely on it) without emitting Cast nodes for it.
 */
export const EXACT_OPS = new Set([
  "Relu", "MaxPool", "GlobalMaxPool", "ReduceMax", "ReduceMin", "Max", "Min", "Abs", "Neg", "Sign",
  "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather",
  "GatherElements", "GatherND", "Identity", "Tile", "Expand", "DepthToSpace", "SpaceToDepth", "Where", "Clip",
]);

/**
 * Whether a node is an exact op whose output needs no rounding when its floating inputs are
 * rounded. Clip before opset 11 holds its bounds in attributes, which no rounding reaches, so
 * its output is rounded like any op's: rounding is monotonic, so that equals Clip-11's result
 * with its bound inputs rounded (the same values at every opset).
 */
export function isExactNode(n: NodeProto): boolean {
  return EXACT_OPS.has(n.opType) && !(n.opType === "Clip" && n.attribute.some((a) => a.name === "min" || a.name === "max"));
}

/** Rewritten initializers by transform (rewrite.ts WeightCache implements it). */
export interface WeightSource {
  get(name: string, t: Transform): { name: string; proto: TensorProto } | null;
}
