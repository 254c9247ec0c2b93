/**
 * bench: a compute-heavy conv stack for `npm run bench` (memory and speed reports).
 *
 *   x[1,C,S,S] → (conv<i> Conv 3×3 pad 1, C→C channels, bias → relu<i>) × nConvs → y[1,C,S,S]
 *
 * Defaults: C = 128, S = 64, 140 convs: 20.66M parameters, 280 nodes, 84.6 G multiply-adds,
 * each activation 2.1 MB (587 MB summed over all node outputs); one onnxruntime-node CPU
 * inference takes ~1.1 s on a 2-core machine. Weights are Gaussian with every filter rescaled
 * to squared norm GAIN (He init, 2, plus a little for the energy zero padding loses), so the
 * activations stay O(1) (RMS 0.3 to 1.2 over the stack, inputs uniform [0,1]): finite and
 * normal in fp16.
 */
import { GraphBuilder } from "../../test/support/graph-builder.js";
import { type GeneratedModel, type ModelFacts, Rng, paramCount } from "./common.js";

/** Squared filter norm: He init (2), slightly raised for the energy zero padding loses (tuned). */
const GAIN = 2.05;

export interface BenchOptions {
  channels?: number;
  size?: number;
  convs?: number;
  seed?: number;
}

export interface BenchFacts extends ModelFacts {
  params: number;
  /** Sum over every node output of its byte size (float32), for the memory report. */
  activationBytes: number;
  /** Bytes of the largest single activation. */
  maxActivationBytes: number;
  /** Multiply-accumulates of one inference. */
  macs: number;
}

export function benchModel(opts: BenchOptions = {}): GeneratedModel<BenchFacts> {
  const C = opts.channels ?? 128;
  const S = opts.size ?? 64;
  const L = opts.convs ?? 140;
  const rng = new Rng(`bench/${opts.seed ?? 1}`);
  const b = new GraphBuilder("bench");
  let h = b.input("x", "float32", [1, C, S, S]);
  const fanIn = C * 9;
  // Every filter gets squared norm GAIN (He: 2 = fanIn · 2/fanIn); see GAIN.
  const norm = Math.sqrt(GAIN);
  for (let i = 0; i < L; i++) {
    const w = rng.normals(C * fanIn, 1);
    for (let o = 0; o < C; o++) {
      let ss = 0;
      for (let j = 0; j < fanIn; j++) ss += w[o * fanIn + j]! ** 2;
      const f = norm / Math.sqrt(ss);
      for (let j = 0; j < fanIn; j++) w[o * fanIn + j]! *= f;
    }
    const wn = b.initializer(`conv${i}/weight`, "float32", [C, C, 3, 3], w);
    const bn = b.initializer(`conv${i}/bias`, "float32", [C], rng.normals(C, 0.01));
    h = b.node("Conv", [h, wn, bn], {
      name: `conv${i}`,
      attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] },
    });
    h = b.node("Relu", [h], { name: `relu${i}` });
  }
  b.output(h, "float32", [1, C, S, S]);
  const model = b.model({ opset: 17, irVersion: 8 });
  const act = C * S * S * 4;
  const nodes = model.graph!.node.length;
  return {
    model,
    facts: {
      name: "bench",
      description: `${L} × (Conv 3x3 ${C}→${C} + Relu) on [1,${C},${S},${S}]`,
      inputs: [{ name: "x", dtype: "float32", dims: [1, C, S, S], valueRange: [0, 1] }],
      outputs: [h],
      nodeCount: nodes,
      firstFailingFp16: null,
      params: paramCount(model),
      activationBytes: nodes * act,
      maxActivationBytes: act,
      macs: L * C * fanIn * S * S,
    },
  };
}
