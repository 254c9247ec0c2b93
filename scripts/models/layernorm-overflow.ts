/**
 * layernorm_overflow: a decomposed LayerNorm whose squared deviations overflow fp16.
 *
 *   x[1,8,64] → fc1 (MatMul, Add, Relu) → fc2 (MatMul, Add, Relu) → proj (MatMul, Add)
 *     → ln1: ReduceMean → Sub → Pow(·,2) → ReduceMean → Add(eps) → Sqrt → Div → Mul(γ) → Add(β)
 *     → head (MatMul, Add) → y[1,8,16]
 *
 * proj's outputs are large (hundreds, up to ~1500: a common offset of 300, two "outlier
 * features" offset by a further +900 and -700, the rest spread by ~±300), so (x − mean)²
 * reaches ~10⁶ > 65504: ln1/pow is the first layer that goes to inf in fp16. The variance itself (mean of the squares, ~3·10⁴) fits in
 * fp16, so pinning {ln1/pow, ln1/var} to fp32 is enough; pinning ln1/pow alone is not,
 * because ln1/var rounds its input to fp16 (docs PRECISION.md).
 */
import { GraphBuilder } from "../../test/support/graph-builder.js";
import { type GeneratedModel, type ModelFacts, Rng, decomposedLayerNorm, linear, linearRelu } from "./common.js";

export interface LayernormOverflowFacts extends ModelFacts {
  /** Input of ln1 (proj output): large but finite in fp16. */
  lnInputTensor: string;
  /** ln1/var output: must stay below 65504 for the 2-node pin set to hold. */
  varianceTensor: string;
}

export function layernormOverflow(seed = 1): GeneratedModel<LayernormOverflowFacts> {
  const rng = new Rng(`layernorm_overflow/${seed}`);
  const H = 64;
  const b = new GraphBuilder("layernorm_overflow");
  const x = b.input("x", "float32", [1, 8, H]);
  let h = linearRelu(b, rng, x, "fc1", H, H);
  h = linearRelu(b, rng, h, "fc2", H, H);
  // Common offset 300 (keeps the mean away from 0, so ln1/mean has no cancellation error),
  // bulk spread ~100, two outlier features.
  const bias = rng.normals(H, 60, 300);
  bias[7] = 300 + 900;
  bias[40] = 300 - 700;
  h = linear(b, rng, h, "proj", H, H, { std: 18, bias });
  const gamma = rng.normals(H, 0.1, 1);
  const beta = rng.normals(H, 0.1);
  h = decomposedLayerNorm(b, h, "ln1", H, { affine: { gamma, beta } });
  const y = linear(b, rng, h, "head", H, 16, { std: Math.sqrt(1 / H) });
  b.output(y, "float32", [1, 8, 16]);
  const model = b.model({ opset: 17, irVersion: 8, docString: "trt-debug golden: fp16 overflow in a decomposed LayerNorm" });
  return {
    model,
    facts: {
      name: "layernorm_overflow",
      description:
        "Decomposed LayerNorm fed by a MatMul with large outputs (hundreds, up to ~1500: offset 300, two outlier features a further +900/-700 away): (x-mean)^2 reaches ~1e6 > 65504, so ln1/pow overflows to inf in fp16; the variance (~3e4-4e4) still fits in fp16, so pinning ln1/pow and ln1/var is enough.",
      inputs: [{ name: "x", dtype: "float32", dims: [1, 8, H], valueRange: [0, 1] }],
      outputs: [y],
      nodeCount: model.graph!.node.length,
      firstFailingFp16: "ln1/pow",
      failingTensor: "ln1/pow_output_0",
      mechanism: "overflow",
      minimalPinSet: ["ln1/pow", "ln1/var"],
      lnInputTensor: "proj/add_output_0",
      varianceTensor: "ln1/var_output_0",
    },
  };
}
