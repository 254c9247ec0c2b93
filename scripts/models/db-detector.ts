/**
 * db_detector: a DB-style text detector (as exported by PaddlePaddle: opset 11, BatchNorm
 * parameters in Constant nodes), for bisection at scale.
 *
 *   x[1,3,S,S] → stem Conv 3×3 s2 → MobileNet-ish inverted residual blocks in 4 stages
 *   (S/4, S/8, S/16, S/32; expand 1×1 → depthwise 3×3 → project 1×1, each Conv + BN, ReLU
 *   after the first two, residual Add when shapes agree) → FPN (lateral 1×1 convs, nearest
 *   Resize ×2 + Add top-down, 3×3 smoothing, Resize to S/4, Concat) → head (Conv 3×3 + BN +
 *   ReLU, ConvTranspose ×2 + BN + ReLU, ConvTranspose ×2, Sigmoid) → y[1,1,S,S].
 *
 * Every BatchNormalization reads its scale, bias, mean and var from four Constant nodes (so a
 * conv unit is 6 or 7 layers). Weights: He init, every filter rescaled to squared norm 2;
 * BN: gamma U(0.7, 1.3), beta N(0, 0.05), mean N(0, 0.05), var = the conv output's expected
 * second moment (tracked through the graph from inputs uniform in [-2.1, 2.6], ImageNet-
 * normalized pixels) times U(0.8, 1.25): plausible running statistics, so activations stay
 * O(1) after every BN and the residual stream grows about linearly.
 *
 * Planted (real fp16 overflow, `plant`): the BatchNormalization of one expand conv of stage 3
 * has its gamma (scale) and beta multiplied by 1e5, so the post-BN activation (an activation,
 * not a parameter) reaches |x| ~ 1e5 > 65504; the following depthwise conv's BN running var is
 * its input's second moment (~1e10) and brings the values back to O(1). TensorRT folds both
 * BNs into their convs in fp32, and each conv + BN + ReLU is one fused layer rounded once at
 * its output: the expand layer's output overflows in fp16, and a pinned expand layer's fp32
 * output would overflow again when cast to fp16 at the depthwise layer's input. The minimal
 * fp16 pin set (facts.minimalPinSet, fused-layer names with the default `--fusion trt`) is the
 * expand layer and the depthwise layer: `<block>/expand/conv`, `<block>/dw/conv`.
 *
 * Sizes (ONNX nodes / trt-debug layers with the default fusion): S = 640, blocks [4, 6, 12, 6]
 * (the default): 677 nodes, 106 layers, 0.38M parameters. Every block is 3 fused layers (the
 * residual Add fuses into the project conv), so blocks [110, 200, 250, 110] give 2000+ layers
 * (the bench runs that at S = 128).
 */
import { GraphBuilder } from "../../test/support/graph-builder.js";
import { type GeneratedModel, type ModelFacts, Rng, paramCount } from "./common.js";

export interface DbDetectorOptions {
  /** Input height = width (a multiple of 32). */
  size?: number;
  /** Inverted residual blocks per stage (4 stages). */
  blocks?: readonly [number, number, number, number];
  /** Plant the fp16 overflow (default true). */
  plant?: boolean;
  seed?: number;
}

export interface DbDetectorFacts extends ModelFacts {
  params: number;
  /** The planted culprit's conv (null without a plant). */
  planted: string | null;
}

const STAGE_CHANNELS = [16, 24, 48, 96];
const FPN = 48;
/** gamma and beta of the planted BN are multiplied by this. */
const PLANT_GAIN = 1e5;

export function dbDetector(o: DbDetectorOptions = {}): GeneratedModel<DbDetectorFacts> {
  const S = o.size ?? 640;
  if (S % 32 !== 0) throw new Error(`db_detector: size ${S} is not a multiple of 32`);
  const blocks = o.blocks ?? [4, 6, 12, 6];
  const plant = o.plant ?? true;
  const rng = new Rng(`db_detector/${o.seed ?? 1}`);
  const b = new GraphBuilder("db_detector");
  const x = b.input("x", "float32", [1, 3, S, S]);
  let planted: string | null = null;
  let plantSet: string[] = [];

  /** Expected second moment of each tensor (for plausible BN running variances). */
  const power = new Map<string, number>([[x, (4.7 * 4.7) / 12 + 0.25 * 0.25]]);
  const pw = (t: string) => power.get(t) ?? 1;
  /** Conv (He init, filters of squared norm 2 * gain²) + BN from Constant nodes (+ ReLU). */
  const convBn = (h: string, p: string, cin: number, cout: number, k: number, stride: number, opts: { group?: number; relu?: boolean; bnGain?: number } = {}): string => {
    const group = opts.group ?? 1;
    const fanIn = (cin / group) * k * k;
    const w = rng.heFilters(cout, fanIn);
    const wn = b.initializer(`${p}/conv/weight`, "float32", [cout, cin / group, k, k], w);
    const pad = (k - 1) >> 1;
    const y = b.node("Conv", [h, wn], { name: `${p}/conv`, attrs: { kernel_shape: [k, k], pads: [pad, pad, pad, pad], strides: [stride, stride], group } });
    const c = (n: string, v: Float32Array) => b.constant(`${p}/bn/${n}`, "float32", [cout], v, `${p}/bn/${n}`);
    const g = opts.bnGain ?? 1;
    const scale = c("scale", rng.uniforms(cout, 0.7, 1.3).map((v) => v * g));
    const bias = c("bias", rng.normals(cout, 0.05).map((v) => v * g));
    const mean = c("mean", rng.normals(cout, 0.05));
    const varV = rng.uniforms(cout, 0.8, 1.25);
    const convPower = 2 * pw(h);
    for (let j = 0; j < cout; j++) varV[j]! *= convPower;
    const v = c("var", varV);
    let out = b.node("BatchNormalization", [y, scale, bias, mean, v], { name: `${p}/bn`, attrs: { epsilon: 1e-5 } });
    power.set(out, g * g);
    if (opts.relu ?? true) {
      out = b.node("Relu", [out], { name: `${p}/relu` });
      power.set(out, 0.5 * g * g);
    }
    return out;
  };

  const resize2 = (h: string, p: string, factor: number): string => {
    const roi = b.constant(`${p}/roi`, "float32", [0], [], `${p}/roi`);
    const scales = b.constant(`${p}/scales`, "float32", [4], [1, 1, factor, factor], `${p}/scales`);
    const r = b.node("Resize", [h, roi, scales], { name: `${p}/resize`, attrs: { mode: "nearest", coordinate_transformation_mode: "asymmetric", nearest_mode: "floor" } });
    power.set(r, pw(h));
    return r;
  };

  let h = convBn(x, "stem", 3, 16, 3, 2);
  let cin = 16;
  const feats: { t: string; c: number }[] = [];
  let plantBlock = plant ? Math.floor(blocks[2] / 2) : -1;
  for (let s = 0; s < 4; s++) {
    const cout = STAGE_CHANNELS[s]!;
    for (let i = 0; i < blocks[s]!; i++) {
      const p = `s${s + 1}/b${i}`;
      const stride = i === 0 ? 2 : 1;
      const mid = 2 * cin;
      const isPlant = s === 2 && i === plantBlock && i > 0;
      const e = convBn(h, `${p}/expand`, cin, mid, 1, 1, isPlant ? { bnGain: PLANT_GAIN } : {});
      if (isPlant) {
        planted = `${p}/expand/conv`;
        plantSet = [`${p}/expand/conv`, `${p}/dw/conv`];
        plantBlock = -1;
      }
      const d = convBn(e, `${p}/dw`, mid, mid, 3, stride, { group: mid });
      const j = convBn(d, `${p}/project`, mid, cout, 1, 1, { relu: false });
      if (stride === 1 && cin === cout) {
        const a = b.node("Add", [h, j], { name: `${p}/add` });
        power.set(a, pw(h) + pw(j));
        h = a;
      } else h = j;
      cin = cout;
    }
    feats.push({ t: h, c: cout });
  }
  // FPN
  const lat = feats.map((f, k) => convBn(f.t, `fpn/lat${k + 2}`, f.c, FPN, 1, 1, { relu: false }));
  const td: string[] = [lat[3]!];
  for (let k = 2; k >= 0; k--) {
    const up = resize2(td[0]!, `fpn/up${k + 2}`, 2);
    const a = b.node("Add", [lat[k]!, up], { name: `fpn/add${k + 2}` });
    power.set(a, pw(lat[k]!) + pw(up));
    td.unshift(a);
  }
  const smooth = td.map((t, k) => convBn(t, `fpn/smooth${k + 2}`, FPN, FPN / 4, 3, 1, { relu: false }));
  const up = smooth.map((t, k) => (k === 0 ? t : resize2(t, `fpn/out${k + 2}`, 2 ** k)));
  const fuse = b.node("Concat", up, { name: "fpn/concat", attrs: { axis: 1 } });
  // head
  const hc = convBn(fuse, "head/conv", FPN, FPN / 4, 3, 1);
  const tw = (h: string, p: string, cin: number, cout: number): string => {
    const w = rng.normals(cin * cout * 4, Math.sqrt(2 / cin));
    const wn = b.initializer(`${p}/weight`, "float32", [cin, cout, 2, 2], w);
    const bn = b.initializer(`${p}/bias`, "float32", [cout], rng.normals(cout, 0.05));
    return b.node("ConvTranspose", [h, wn, bn], { name: p, attrs: { kernel_shape: [2, 2], strides: [2, 2] } });
  };
  const t1 = tw(hc, "head/deconv1", FPN / 4, FPN / 4);
  const c = (n: string, v: Float32Array) => b.constant(`head/bn2/${n}`, "float32", [FPN / 4], v, `head/bn2/${n}`);
  const bn2 = b.node(
    "BatchNormalization",
    [t1, c("scale", rng.uniforms(FPN / 4, 0.7, 1.3)), c("bias", rng.normals(FPN / 4, 0.05)), c("mean", rng.normals(FPN / 4, 0.05)), c("var", rng.uniforms(FPN / 4, 0.8, 1.25))],
    { name: "head/bn2", attrs: { epsilon: 1e-5 } },
  );
  const r2 = b.node("Relu", [bn2], { name: "head/relu2" });
  const t2 = tw(r2, "head/deconv2", FPN / 4, 1);
  const y = b.node("Sigmoid", [t2], { name: "head/sigmoid" });
  b.output(y, "float32", [1, 1, S, S]);
  const model = b.model({ opset: 11, irVersion: 6 });
  return {
    model,
    facts: {
      name: "db_detector",
      description: `DB-style text detector, ${blocks.join("/")} blocks, BN in Constant nodes, opset 11, [1,3,${S},${S}]`,
      inputs: [{ name: "x", dtype: "float32", dims: [1, 3, S, S], valueRange: [-2.1, 2.6] }],
      outputs: [y],
      nodeCount: model.graph!.node.length,
      firstFailingFp16: planted,
      minimalPinSet: plant ? plantSet : [],
      params: paramCount(model),
      planted,
    },
  };
}
