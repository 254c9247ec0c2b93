/**
 * underflow: values ~0.5 scaled down twice by 1e-4 (to ~5e-9, below fp16's smallest
 * subnormal 2^-24 ≈ 5.96e-8, so fp16 flushes them to 0) and scaled back up twice by 1e4.
 *
 *   x[1,64] → pre (MatMul, Add, Sigmoid) → scale_down1 (Mul 1e-4: ~5e-5, fp16 subnormal, fine)
 *     → scale_down2 (Mul 1e-4: ~5e-9, flushed to 0 in fp16) → scale_up1 (Mul 1e4)
 *     → scale_up2 (Mul 1e4) → head (MatMul, Add) → y[1,16]
 *
 * First failing layer in fp16: scale_down2 (relative L2 error 1: every value is 0). Pin set:
 * {scale_down2, scale_up1}: scale_up1 must read the ~5e-9 values in fp32 too; its output
 * (~5e-5) is an fp16 subnormal again, which scale_up2 reads with ~1e-3 relative error.
 */
import { GraphBuilder } from "../../test/support/graph-builder.js";
import { type GeneratedModel, type ModelFacts, Rng, linear } from "./common.js";

export interface UnderflowFacts extends ModelFacts {
  /** Output of scale_down1: fp16 subnormal, still represented (relative error ~1e-3). */
  subnormalTensor: string;
}

export function underflow(seed = 1): GeneratedModel<UnderflowFacts> {
  const rng = new Rng(`underflow/${seed}`);
  const N = 64;
  const b = new GraphBuilder("underflow");
  const x = b.input("x", "float32", [1, N]);
  const pre = linear(b, rng, x, "pre", N, N, { std: 0.5 / Math.sqrt(N), biasStd: 0.1 });
  let h = b.node("Sigmoid", [pre], { name: "pre/sigmoid" });
  const steps: [string, number][] = [
    ["scale_down1", 1e-4],
    ["scale_down2", 1e-4],
    ["scale_up1", 1e4],
    ["scale_up2", 1e4],
  ];
  for (const [name, f] of steps) {
    const c = b.initializer(`${name}/factor`, "float32", [], [f]);
    h = b.node("Mul", [h, c], { name });
  }
  const y = linear(b, rng, h, "head", N, 16);
  b.output(y, "float32", [1, 16]);
  const model = b.model({ opset: 17, irVersion: 8, docString: "trt-debug golden: fp16 underflow (flush to zero)" });
  return {
    model,
    facts: {
      name: "underflow",
      description:
        "Values ~0.5 (sigmoid) scaled by 1e-4 (fp16 subnormal, fine), again by 1e-4 (~5e-9 < 2^-24: flushed to 0 in fp16), then back up by 1e4 twice. The second scale-down is the first failing fp16 layer.",
      inputs: [{ name: "x", dtype: "float32", dims: [1, N], valueRange: [0, 1] }],
      outputs: [y],
      nodeCount: model.graph!.node.length,
      firstFailingFp16: "scale_down2",
      failingTensor: "scale_down2_output_0",
      mechanism: "underflow",
      minimalPinSet: ["scale_down2", "scale_up1"],
      subnormalTensor: "scale_down1_output_0",
    },
  };
}
