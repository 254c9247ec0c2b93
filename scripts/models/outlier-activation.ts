/**
 * outlier_activation: a small conv net for INT8 calibration checks, where one activation has
 * a heavy outlier tail.
 *
 *   x[1,3,32,32] → conv1 (3→16, 3×3) → relu1 → conv2 (16→16, 3×3) → outlier (Mul by a fixed
 *   mask: 16 of the 16384 positions, ~0.1 %, ×100, the rest ×1) → conv3 (16→16, 3×3) → relu3
 *   → pool (GlobalAveragePool) → flatten → fc (Gemm 16→10) → y[1,10]
 *
 * On tensor `outlier_output_0` max|x| is set by the outliers (~50× the 99.9th percentile of
 * |x|): minmax calibration puts amax there and leaves the bulk with a handful of int8 levels,
 * while entropy calibration (EntropyCalibration2, at most max/16 from its 128-bin minimum)
 * clips the outliers and keeps resolution for the bulk.
 */
import { GraphBuilder } from "../../test/support/graph-builder.js";
import { type GeneratedModel, type ModelFacts, Rng } from "./common.js";

export interface OutlierFacts extends ModelFacts {
  /** The tensor with the outlier tail. */
  outlierTensor: string;
  /** Fraction of its elements that are outliers, and their factor. */
  outlierFraction: number;
  outlierFactor: number;
  /** Flat indices (NCHW) of the outliers. */
  outlierPositions: number[];
  /** A tensor of the same net without outliers (conv2's output, the Mul's input). */
  cleanTensor: string;
}

export function outlierActivation(seed = 1): GeneratedModel<OutlierFacts> {
  const rng = new Rng(`outlier_activation/${seed}`);
  const C = 16;
  const S = 32;
  const b = new GraphBuilder("outlier_activation");
  const x = b.input("x", "float32", [1, 3, S, S]);
  const conv = (inp: string, name: string, cin: number, cout: number): string => {
    const w = b.initializer(`${name}/weight`, "float32", [cout, cin, 3, 3], rng.normals(cout * cin * 9, Math.sqrt(2 / (cin * 9))));
    const bias = b.initializer(`${name}/bias`, "float32", [cout], rng.normals(cout, 0.05));
    return b.node("Conv", [inp, w, bias], { name, attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } });
  };
  let h = conv(x, "conv1", 3, C);
  h = b.node("Relu", [h], { name: "relu1" });
  const clean = conv(h, "conv2", C, C);
  const n = C * S * S;
  const count = Math.round(n * 0.001);
  const mask = new Float32Array(n).fill(1);
  const positions: number[] = [];
  while (positions.length < count) {
    const p = rng.int(n);
    if (mask[p] === 1) {
      mask[p] = 100;
      positions.push(p);
    }
  }
  positions.sort((a, c) => a - c);
  const m = b.initializer("outlier/mask", "float32", [1, C, S, S], mask);
  const out = b.node("Mul", [clean, m], { name: "outlier" });
  h = conv(out, "conv3", C, C);
  h = b.node("Relu", [h], { name: "relu3" });
  h = b.node("GlobalAveragePool", [h], { name: "pool" });
  h = b.node("Flatten", [h], { name: "flatten", attrs: { axis: 1 } });
  const fw = b.initializer("fc/weight", "float32", [10, C], rng.normals(10 * C, Math.sqrt(1 / C)));
  const fb = b.initializer("fc/bias", "float32", [10], rng.normals(10, 0.05));
  const y = b.node("Gemm", [h, fw, fb], { name: "fc", attrs: { transB: 1 } });
  b.output(y, "float32", [1, 10]);
  const model = b.model({ opset: 17, irVersion: 8 });
  return {
    model,
    facts: {
      name: "outlier_activation",
      description: `Conv net whose tensor ${out} has ${count} of ${n} values (~0.1%) multiplied by 100: minmax calibration spends the int8 range on them, entropy calibration clips them.`,
      inputs: [{ name: "x", dtype: "float32", dims: [1, 3, S, S], valueRange: [0, 1] }],
      outputs: [y],
      nodeCount: model.graph!.node.length,
      firstFailingFp16: null,
      outlierTensor: out,
      outlierFraction: count / n,
      outlierFactor: 100,
      outlierPositions: positions,
      cleanTensor: clean,
    },
  };
}
