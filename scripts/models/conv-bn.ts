/**
 * conv_bn: a small trained-looking conv net as PaddlePaddle exports it (opset 11, every weight
 * and BatchNormalization parameter a Constant node, unnamed), for TensorRT's layer model
 * (docs/precision.md): constants are weights, BN folds into the convolution, Conv+BN+ReLU is one
 * layer.
 *
 *   x[1,3,8,8] → conv1 (Conv 3→8, bias) → bn1 → relu1
 *     → conv2 (Conv 8→8, no bias) → bn2 → add2 (+ relu1's output: residual) → relu2
 *     [plant "pow": plant/mul (×1e3) → plant/pow (^2: ~1e6 > 65504, overflows fp16) → plant/scale (×1e-6)]
 *     [plant "activation": conv2's weights ×1e5 (the conv2 group's output > 65504) → plant/down (×1e-5)]
 *     → pool (GlobalAveragePool) → bn3 (a standalone BN: scale layer) → flatten (Reshape by a
 *     Constant shape) → fc (Gemm 8→4 with transB, bias) → y[1,4]
 *
 * bn1's running variance of channel 3 is 9.8e7 (> fp16 max: a channel that was huge during
 * training), with a matching mean; as a parameter folded in fp32 it is harmless. The fc weight
 * is itself a constant subgraph (Constant × Constant), folded once by onnxruntime.
 * `constants: "initializers"` stores the same values as initializers instead of Constant nodes.
 */
import { GraphBuilder } from "../../test/support/graph-builder.js";
import { type GeneratedModel, type ModelFacts, Rng } from "./common.js";

export interface ConvBnFacts extends ModelFacts {
  /** Layer names of the fused groups under fusion "trt", with their ONNX node names. */
  fusedGroups: Record<string, string[]>;
  /** Names of the BN parameters (never reported as layers). */
  bnParameters: string[];
  /** The BN running variance above fp16's max. */
  hugeVariance: number;
}

export interface ConvBnOptions {
  constants?: "nodes" | "initializers";
  /**
   * Plant a real fp16 overflow: "pow" = plant/mul (x1e3) → plant/pow (^2, ~1e6) → plant/scale
   * after relu2; "activation" = conv2's weights x1e5, so the conv2 group's output exceeds 65504,
   * followed by plant/down (x1e-5).
   */
  plant?: "pow" | "activation";
  seed?: number;
}

export const HUGE_VARIANCE = 9.8e7;

export function convBn(o: ConvBnOptions = {}): GeneratedModel<ConvBnFacts> {
  const rng = new Rng(`conv_bn/${o.seed ?? 1}`);
  const b = new GraphBuilder("conv_bn");
  const asNodes = (o.constants ?? "nodes") === "nodes";
  const bnParameters: string[] = [];
  const k = (name: string, dims: number[], data: Float32Array | number[]): string =>
    asNodes ? b.constant(name, "float32", dims, data) : b.initializer(name, "float32", dims, data);
  const C = 8;
  const x = b.input("x", "float32", [1, 3, 8, 8]);
  const bn = (name: string, h: string, opts: { hugeChannel?: number } = {}) => {
    const gamma = Float32Array.from({ length: C }, () => 0.8 + 0.4 * rng.next());
    const beta = rng.normals(C, 0.1);
    const mean = rng.normals(C, 0.2);
    const variance = Float32Array.from({ length: C }, () => 0.5 + rng.next());
    if (opts.hugeChannel !== undefined) {
      variance[opts.hugeChannel] = HUGE_VARIANCE;
      mean[opts.hugeChannel] = 1.5e3;
    }
    const names = ["scale", "bias", "mean", "variance"].map((p) => `${name}/${p}`);
    bnParameters.push(...names);
    const ins = [gamma, beta, mean, variance].map((d, i) => k(names[i]!, [C], d));
    return b.node("BatchNormalization", [h, ...ins], { name, attrs: { epsilon: b.f(1e-5), momentum: b.f(0.9) } });
  };
  const w1 = k("conv1/weight", [C, 3, 3, 3], rng.normals(C * 27, Math.sqrt(2 / 27)));
  const b1 = k("conv1/bias", [C], rng.normals(C, 0.05));
  let h = b.node("Conv", [x, w1, b1], { name: "conv1", attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } });
  h = bn("bn1", h, { hugeChannel: 3 });
  const r1 = b.node("Relu", [h], { name: "relu1" });
  const w2 = k("conv2/weight", [C, C, 3, 3], rng.normals(C * C * 9, Math.sqrt(2 / (C * 9)) * (o.plant === "activation" ? 1e5 : 1)));
  h = b.node("Conv", [r1, w2], { name: "conv2", attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } });
  h = bn("bn2", h);
  h = b.node("Add", [h, r1], { name: "add2" });
  h = b.node("Relu", [h], { name: "relu2" });
  if (o.plant === "activation") h = b.node("Mul", [h, k("plant/down", [], [1e-5])], { name: "plant/down" });
  if (o.plant === "pow") {
    h = b.node("Mul", [h, k("plant/factor", [], [1e3])], { name: "plant/mul" });
    h = b.node("Pow", [h, k("plant/exponent", [], [2])], { name: "plant/pow" });
    h = b.node("Mul", [h, k("plant/back", [], [1e-6])], { name: "plant/scale" });
  }
  h = b.node("GlobalAveragePool", [h], { name: "pool" });
  h = bn("bn3", h);
  h = b.node("Reshape", [h, asNodes ? b.constant("flatten/shape", "int64", [2], [1n, BigInt(C)]) : b.initializer("flatten/shape", "int64", [2], [1n, BigInt(C)])], { name: "flatten" });
  // fc weight = raw × per-row gain: a constant subgraph (folded once, like TensorRT's builder)
  const raw = k("fc/weight_raw", [4, C], rng.normals(4 * C, Math.sqrt(1 / C)));
  const gain = k("fc/gain", [4, 1], [1, 0.5, 2, 1]);
  const wfc = b.node("Mul", [raw, gain], { name: "fc/weight_scale" });
  const y = b.node("Gemm", [h, wfc, k("fc/bias", [4], rng.normals(4, 0.05))], { name: "fc", attrs: { transB: 1 } });
  b.output(y, "float32", [1, 4]);
  const model = b.model({ opset: 11, irVersion: 6, docString: "trt-debug fixture: PaddlePaddle-style conv net (Constant-node weights, BatchNormalization)" });
  return {
    model,
    facts: {
      name: o.plant ? `conv_bn_${o.plant}` : "conv_bn",
      description: "Small conv net, opset 11, BN parameters as Constant nodes, one BN running variance of 9.8e7.",
      inputs: [{ name: "x", dtype: "float32", dims: [1, 3, 8, 8], valueRange: [0, 1] }],
      outputs: [y],
      nodeCount: model.graph!.node.length,
      firstFailingFp16: o.plant === "pow" ? "plant/pow" : o.plant === "activation" ? "conv2" : null,
      fusedGroups: { conv1: ["conv1", "bn1", "relu1"], conv2: ["conv2", "bn2", "add2", "relu2"], bn3: ["bn3"] },
      bnParameters,
      hugeVariance: HUGE_VARIANCE,
    },
  };
}

/**
 * epilogue_once: y = Relu(MatMul(x, W) + bias) with integer data, so every fp32 value is exact
 * and the only rounding is to fp16: a fused group rounds acc + bias once, per-node rounding
 * rounds acc first (values above 2048 are not all representable in fp16).
 */
export function epilogueOnce(): GeneratedModel & { w: Float32Array; bias: Float32Array; k: number; n: number } {
  const rng = new Rng("epilogue_once");
  const K = 4, N = 16;
  const b = new GraphBuilder("epilogue_once");
  const x = b.input("x", "float32", [1, K]);
  const w = Float32Array.from({ length: K * N }, () => 256 + rng.int(256));
  const bias = Float32Array.from({ length: N }, () => 1 + rng.int(7));
  const mm = b.node("MatMul", [x, b.initializer("fc/weight", "float32", [K, N], w)], { name: "fc/matmul" });
  const add = b.node("Add", [mm, b.initializer("fc/bias", "float32", [N], bias)], { name: "fc/add" });
  const y = b.node("Relu", [add], { name: "fc/relu" });
  b.output(y, "float32", [1, N]);
  const model = b.model({ opset: 17 });
  return {
    model,
    w,
    bias,
    k: K,
    n: N,
    facts: {
      name: "epilogue_once",
      description: "MatMul + bias + Relu on integers: fused rounding (once) and per-node rounding differ.",
      inputs: [{ name: "x", dtype: "float32", dims: [1, K], valueRange: [1, 8] }],
      outputs: [y],
      nodeCount: 3,
    },
  };
}
