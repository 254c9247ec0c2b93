/**
 * text_recognizer: a CRNN-style text-line recognizer (the shape of PP-OCR's rec models), for the
 * capture-cost bench (docs/performance.md) beside db_detector.
 *
 *   x[1,3,48,320] → stem Conv 3×3 s2 + BN + ReLU → 4 stages of (depthwise 3×3 + BN + ReLU,
 *   pointwise 1×1 + BN + ReLU) blocks, the first of each stage with stride (2,1) (stage 1:
 *   (2,2)) so height shrinks 48 → 1.5 while width stays W/4 → AveragePool over the height →
 *   Squeeze → Transpose [1, W/4, C] → MatMul + Add (C → 128) + ReLU → MatMul + Add (128 → classes)
 *   → Softmax → y[1, W/4, classes].
 *
 * BatchNormalization nodes read initializers (opset 13). Weights: He init with every filter
 * rescaled to squared norm 2; BN: gamma U(0.7, 1.3), beta N(0, 0.05), mean N(0, 0.05), var
 * U(0.8, 1.25) times the conv output's expected second moment (tracked through the graph), so
 * activations stay O(1). Nothing is planted: fp16 is fine everywhere.
 */
import { GraphBuilder } from "../../test/support/graph-builder.js";
import { type GeneratedModel, type ModelFacts, Rng, paramCount } from "./common.js";

export interface TextRecognizerOptions {
  height?: number;
  width?: number;
  /** Output classes (character set + CTC blank). */
  classes?: number;
  seed?: number;
}

export interface TextRecognizerFacts extends ModelFacts {
  params: number;
}

const STAGES: readonly { c: number; blocks: number; stride: [number, number] }[] = [
  { c: 32, blocks: 2, stride: [2, 2] },
  { c: 64, blocks: 2, stride: [2, 1] },
  { c: 128, blocks: 3, stride: [2, 1] },
  { c: 256, blocks: 2, stride: [2, 1] },
];

export function textRecognizer(o: TextRecognizerOptions = {}): GeneratedModel<TextRecognizerFacts> {
  const H = o.height ?? 48;
  const W = o.width ?? 320;
  const K = o.classes ?? 6625;
  if (W % 4 !== 0) throw new Error(`text_recognizer: width ${W} is not a multiple of 4`);
  const rng = new Rng(`text_recognizer/${o.seed ?? 1}`);
  const b = new GraphBuilder("text_recognizer");
  const x = b.input("x", "float32", [1, 3, H, W]);
  let power = (4.7 * 4.7) / 12 + 0.25 * 0.25;

  const convBn = (h: string, p: string, cin: number, cout: number, k: number, stride: [number, number], group = 1): string => {
    const fanIn = (cin / group) * k * k;
    const w = rng.heFilters(cout, fanIn);
    const wn = b.initializer(`${p}/conv/weight`, "float32", [cout, cin / group, k, k], w);
    const pad = (k - 1) >> 1;
    const y = b.node("Conv", [h, wn], { name: `${p}/conv`, attrs: { kernel_shape: [k, k], pads: [pad, pad, pad, pad], strides: stride, group } });
    const init = (n: string, v: Float32Array) => b.initializer(`${p}/bn/${n}`, "float32", [cout], v);
    const varV = rng.uniforms(cout, 0.8, 1.25).map((v) => v * 2 * power);
    const bn = b.node("BatchNormalization", [y, init("scale", rng.uniforms(cout, 0.7, 1.3)), init("bias", rng.normals(cout, 0.05)), init("mean", rng.normals(cout, 0.05)), init("var", varV)], {
      name: `${p}/bn`,
      attrs: { epsilon: 1e-5 },
    });
    power = 0.5;
    return b.node("Relu", [bn], { name: `${p}/relu` });
  };

  let h = convBn(x, "stem", 3, 16, 3, [2, 2]);
  let cin = 16;
  for (const [s, st] of STAGES.entries()) {
    for (let i = 0; i < st.blocks; i++) {
      const p = `s${s + 1}/b${i}`;
      const d = convBn(h, `${p}/dw`, cin, cin, 3, i === 0 ? st.stride : [1, 1], cin);
      h = convBn(d, `${p}/pw`, cin, st.c, 1, [1, 1]);
      cin = st.c;
    }
  }
  // height 48 → 24 (stem) → 12 → 6 → 3 → 2: pool it away
  let hh = H;
  for (const st of [[2, 2], ...STAGES.map((s) => s.stride)]) hh = Math.floor((hh + 2 - 3) / st[0]!) + 1;
  const pooled = b.node("AveragePool", [h], { name: "neck/pool", attrs: { kernel_shape: [hh, 1], strides: [1, 1] } });
  const axes = b.initializer("neck/axes", "int64", [1], [2n]);
  const sq = b.node("Squeeze", [pooled, axes], { name: "neck/squeeze" });
  const seq = b.node("Transpose", [sq], { name: "neck/transpose", attrs: { perm: [0, 2, 1] } });
  const fc = (h: string, p: string, n: number, m: number): string => {
    const w = b.initializer(`${p}/weight`, "float32", [n, m], rng.normals(n * m, Math.sqrt(2 / n)));
    const bias = b.initializer(`${p}/bias`, "float32", [m], rng.normals(m, 0.05));
    return b.node("Add", [b.node("MatMul", [h, w], { name: `${p}/matmul` }), bias], { name: `${p}/add` });
  };
  const f1 = b.node("Relu", [fc(seq, "head/fc1", cin, 128)], { name: "head/relu" });
  const logits = fc(f1, "head/fc2", 128, K);
  const y = b.node("Softmax", [logits], { name: "head/softmax", attrs: { axis: -1 } });
  b.output(y, "float32", [1, W / 4, K]);
  const model = b.model({ opset: 13 });
  return {
    model,
    facts: {
      name: "text_recognizer",
      description: `CRNN-style text recognizer, BN initializers, opset 13, [1,3,${H},${W}] -> [1,${W / 4},${K}]`,
      inputs: [{ name: "x", dtype: "float32", dims: [1, 3, H, W], valueRange: [-2.1, 2.6] }],
      outputs: [y],
      nodeCount: model.graph!.node.length,
      firstFailingFp16: null,
      params: paramCount(model),
    },
  };
}
