/**
 * deep_mlp: a ≥ nLayers-node residual MLP with fp16 culprits planted at chosen node
 * positions, for bisect tests and benchmarks. Tensors are small ([1,32]): it runs in
 * milliseconds.
 *
 * Layout: a residual stream s; block i = blk<i>/matmul → blk<i>/add → blk<i>/relu →
 * blk<i>/residual (s + branch); after every third block a decomposed LayerNorm norm<j>
 * (ReduceMean, Sub, Mul, ReduceMean, Add eps, Sqrt, Div, Mul γ, Add β with β ≈ 1 so no mean is
 * near 0). Without culprits every layer is fine in fp16 (relative L2 error a few 1e-3 at most).
 *
 * Culprit kinds (each starts with its own normalization c<k>/norm, so its input is bounded
 * whatever the graph input):
 * - "exp_overflow": c<k>/shift (Add 12 to every feature; the normalized input's largest
 *   feature is ≥ 0.5, so the largest exp input is > 12 > ln 65504) → c<k>/exp → c<k>/sum →
 *   c<k>/div (softmax without max subtraction) → c<k>/rescale (×32, back to O(1)). First
 *   failing node c<k>/exp; pin set {exp, sum, div} (sum alone in fp16 gives inf, so 0 probs).
 * - "underflow": c<k>/sigmoid → c<k>/down1 (×1e-4) → c<k>/down2 (×1e-4: < 1e-8, flushed to 0
 *   in fp16) → c<k>/up1 (×1e4) → c<k>/up2 (×1e4). First failing c<k>/down2; pin set
 *   {down2, up1}.
 * The model's minimal pin set is the union of the culprits' pin sets.
 */
import { GraphBuilder } from "../../test/support/graph-builder.js";
import { type GeneratedModel, type ModelFacts, Rng, decomposedLayerNorm, linear, linearRelu, scalar } from "./common.js";

export type DeepCulpritKind = "exp_overflow" | "underflow";

export interface DeepPlant {
  kind: DeepCulpritKind;
  /** Approximate node index: the culprit starts at the first block boundary at or after it. */
  at: number;
}

export interface DeepCulpritFacts {
  kind: DeepCulpritKind;
  /** All nodes of the culprit structure, in order. */
  nodes: string[];
  /** Its first node that fails in fp16, and that node's index in the graph's node list. */
  firstFailing: string;
  firstFailingIndex: number;
  /** What must be pinned to fp32 to fix this culprit. */
  pinSet: string[];
}

export interface DeepMlpFacts extends ModelFacts {
  culprits: DeepCulpritFacts[];
}

export const DEFAULT_DEEP_PLANTS: readonly DeepPlant[] = [
  { kind: "exp_overflow", at: 60 },
  { kind: "underflow", at: 140 },
];

export function deepMlpWithCulprits(
  nLayers = 200,
  planted: readonly DeepPlant[] = DEFAULT_DEEP_PLANTS,
  seed = 1,
): GeneratedModel<DeepMlpFacts> {
  const rng = new Rng(`deep_mlp/${seed}`);
  const H = 32;
  const b = new GraphBuilder("deep_mlp");
  const x = b.input("x", "float32", [1, H]);
  const count = (): number => b.nodeList.length;
  const plants = [...planted].sort((p, q) => p.at - q.at);
  const culprits: DeepCulpritFacts[] = [];
  let h = x;
  let block = 0;
  let nNorm = 0;

  const norm = (x: string, p: string): string =>
    decomposedLayerNorm(b, x, p, H, {
      square: "mul",
      affine: { gamma: rng.normals(H, 0.1, 1.5), beta: rng.uniforms(H, 0.5, 1.5) },
    });

  const addCulprit = (kind: DeepCulpritKind): void => {
    const p = `c${culprits.length}`;
    const start = count();
    const hn = norm(h, `${p}/norm`);
    let firstFailing: string;
    let pinSet: string[];
    if (kind === "exp_overflow") {
      const s = b.node("Add", [hn, scalar(b, "const/exp_shift", 12)], { name: `${p}/shift` });
      const e = b.node("Exp", [s], { name: `${p}/exp` });
      const axes = b.has("const/axes_last") ? "const/axes_last" : b.initializer("const/axes_last", "int64", [1], [-1]);
      const sum = b.node("ReduceSum", [e, axes], { name: `${p}/sum`, attrs: { keepdims: 1 } });
      const prob = b.node("Div", [e, sum], { name: `${p}/div` });
      h = b.node("Mul", [prob, scalar(b, "const/width", H)], { name: `${p}/rescale` });
      firstFailing = `${p}/exp`;
      pinSet = [`${p}/exp`, `${p}/sum`, `${p}/div`];
    } else {
      h = b.node("Sigmoid", [hn], { name: `${p}/sigmoid` });
      for (const [n, f] of [
        ["down1", 1e-4],
        ["down2", 1e-4],
        ["up1", 1e4],
        ["up2", 1e4],
      ] as const) {
        h = b.node("Mul", [h, scalar(b, `const/${f === 1e-4 ? "down" : "up"}_factor`, f)], { name: `${p}/${n}` });
      }
      firstFailing = `${p}/down2`;
      pinSet = [`${p}/down2`, `${p}/up1`];
    }
    const nodes = b.nodeList.slice(start).map((n) => n.name);
    culprits.push({ kind, nodes, firstFailing, firstFailingIndex: start + nodes.indexOf(firstFailing), pinSet });
  };

  while (count() < nLayers || culprits.length < plants.length) {
    const next = plants[culprits.length];
    if (next && count() >= next.at) {
      addCulprit(next.kind);
      continue;
    }
    if (count() >= nLayers && next) {
      addCulprit(next.kind);
      continue;
    }
    const branch = linearRelu(b, rng, h, `blk${block}`, H, H, { std: 0.5 * Math.sqrt(2 / H) });
    h = b.node("Add", [h, branch], { name: `blk${block}/residual` });
    block++;
    if (block % 3 === 0) h = norm(h, `norm${nNorm++}`);
  }
  const y = linear(b, rng, h, "head", H, 10, { std: Math.sqrt(1 / H) });
  b.output(y, "float32", [1, 10]);
  const model = b.model({ opset: 17, irVersion: 8 });
  const pins = culprits.flatMap((c) => c.pinSet);
  return {
    model,
    facts: {
      name: "deep_mlp",
      description: `${count()}-node residual MLP with ${culprits.length} planted fp16 culprit(s): ${culprits.map((c) => `${c.kind} at node ${c.firstFailingIndex} (${c.firstFailing})`).join(", ")}.`,
      inputs: [{ name: "x", dtype: "float32", dims: [1, H], valueRange: [0, 1] }],
      outputs: [y],
      nodeCount: count(),
      firstFailingFp16: culprits[0]?.firstFailing ?? null,
      failingTensor: culprits[0] ? `${culprits[0].firstFailing}_output_0` : undefined,
      mechanism: culprits[0] ? (culprits[0].kind === "underflow" ? "underflow" : "overflow") : undefined,
      minimalPinSet: pins,
      culprits,
    },
  };
}
