/**
 * matmul_consumer: a MatMul whose fp32 output (~1e5) exceeds fp16's range, followed by a
 * consumer that scales it back (Mul 1e-3) and ordinary layers.
 *
 *   x[1,8,128] → pre1..pre4 (MatMul, Add, Relu) → pre/sigmoid → mm_big (MatMul by weights
 *     in [1000,1500]: outputs ~1e5) → scale_after (Mul 1e-3: ~100) → post1, post2
 *     (MatMul, Add, Relu) → head (MatMul, Add) → y[1,8,16]
 *
 * Under fp16, mm_big overflows. Pinning mm_big alone to fp32 is not enough: scale_after,
 * running in fp16, rounds its input to fp16 first (inf). Minimal pin set: {mm_big,
 * scale_after}. The other 21 layers are fine in fp16.
 */
import { GraphBuilder } from "../../test/support/graph-builder.js";
import { type GeneratedModel, type ModelFacts, Rng, linear, linearRelu } from "./common.js";

export interface MatmulConsumerFacts extends ModelFacts {
  /** Pin sets that are NOT enough (each must still fail). */
  insufficientPinSets: string[][];
}

export function matmulConsumer(seed = 1): GeneratedModel<MatmulConsumerFacts> {
  const rng = new Rng(`matmul_consumer/${seed}`);
  const K = 128;
  const N = 64;
  const b = new GraphBuilder("matmul_consumer");
  const x = b.input("x", "float32", [1, 8, K]);
  let h = x;
  for (let i = 1; i <= 4; i++) h = linearRelu(b, rng, h, `pre${i}`, K, K);
  h = b.node("Sigmoid", [h], { name: "pre/sigmoid" });
  const wBig = b.initializer("mm_big/weight", "float32", [K, N], rng.uniforms(K * N, 1000, 1500));
  h = b.node("MatMul", [h, wBig], { name: "mm_big" });
  h = b.node("Mul", [h, b.initializer("scale_after/factor", "float32", [], [1e-3])], { name: "scale_after" });
  h = linearRelu(b, rng, h, "post1", N, N);
  h = linearRelu(b, rng, h, "post2", N, N);
  const y = linear(b, rng, h, "head", N, 16, { std: Math.sqrt(1 / N) });
  b.output(y, "float32", [1, 8, 16]);
  const model = b.model({ opset: 17, irVersion: 8, docString: "trt-debug golden: fp16 overflow whose fix needs the consumer pinned too" });
  return {
    model,
    facts: {
      name: "matmul_consumer",
      description:
        "A MatMul with fp32 outputs ~1e5 (> 65504) followed by Mul(1e-3) and ordinary layers. In fp16 mm_big overflows; pinning mm_big alone is not enough because scale_after rounds its input to fp16, so the minimal pin set is {mm_big, scale_after}.",
      inputs: [{ name: "x", dtype: "float32", dims: [1, 8, K], valueRange: [0, 1] }],
      outputs: [y],
      nodeCount: model.graph!.node.length,
      firstFailingFp16: "mm_big",
      failingTensor: "mm_big_output_0",
      mechanism: "overflow",
      minimalPinSet: ["mm_big", "scale_after"],
      insufficientPinSets: [["mm_big"], ["scale_after"]],
    },
  };
}
