/**
 * Generated models for the INT8 tests and the docs/int8.md example.
 *
 *   npx tsx test/int8-fixtures.ts DIR     writes DIR/clipped_outlier.onnx, DIR/small_int8.onnx and DIR/outlier_tail.onnx
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ModelProto } from "onnx-buf";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { Rng } from "../scripts/models/common.js";
import { loadModel } from "../src/onnx/model.js";
import { saveModel as saveOnnx } from "../src/onnx/model-file.js";
import { hostToTensorProto, tensorProtoToHost } from "../src/onnx/tensor.js";
import type { BisectResult } from "../src/workflows/bisect.js";
import { runCli } from "../src/cli/main.js";

/** The CLI in-process (as helpers.ts `cli`, without importing vitest: this file also runs under tsx). */
async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s), isTTY: false });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

/**
 * clipped_outlier: a conv net where one activation has a heavy outlier tail that the network
 * itself clips right after (ReLU6), so clipping it in int8 costs nothing downstream.
 *
 *   x[1,3,32,32] → conv1 (3→16, 3×3) → relu1 → conv2 (16→16) → outlier (Add of fixed spikes:
 *   16 of the 16384 positions, ~0.1 %, normal with std 100) → relu6 (Clip 0..6) → conv3 (16→16) →
 *   relu3 → pool (GlobalAveragePool) → flatten → fc (Gemm 16→10, transB=1) → y[1,10]
 *
 * On `outlier_output_0` max|x| is ~50× the 99.9th percentile: a minmax range leaves the bulk
 * a handful of int8 levels (`calib check` flags it), entropy clips the spikes (~0.1 % of the
 * values; relu6 saturates nearly all of them anyway) and keeps resolution (not flagged).
 */
export const OUTLIER_TENSOR = "outlier_output_0";

export function clippedOutlierModel(seed = 1): ModelProto {
  const rng = new Rng(`clipped_outlier/${seed}`);
  const C = 16;
  const S = 32;
  const b = new GraphBuilder("clipped_outlier");
  const x = b.input("x", "float32", [1, 3, S, S]);
  const conv = (inp: string, name: string, cin: number, cout: number): string => {
    const w = b.initializer(`${name}/weight`, "float32", [cout, cin, 3, 3], rng.normals(cout * cin * 9, Math.sqrt(2 / (cin * 9))));
    const bias = b.initializer(`${name}/bias`, "float32", [cout], rng.normals(cout, 0.05));
    return b.node("Conv", [inp, w, bias], { name, attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } });
  };
  let h = conv(x, "conv1", 3, C);
  h = b.node("Relu", [h], { name: "relu1" });
  h = conv(h, "conv2", C, C);
  const n = C * S * S;
  const spikes = new Float32Array(n);
  let placed = 0;
  while (placed < Math.round(n * 0.001)) {
    const p = rng.int(n);
    if (spikes[p] === 0) (spikes[p] = rng.normals(1, 100)[0]!), placed++;
  }
  const m = b.initializer("outlier/spikes", "float32", [1, C, S, S], spikes);
  h = b.node("Add", [h, m], { name: "outlier" });
  const lo = b.initializer("relu6/min", "float32", [], Float32Array.of(0));
  const hi = b.initializer("relu6/max", "float32", [], Float32Array.of(6));
  h = b.node("Clip", [h, lo, hi], { name: "relu6" });
  h = conv(h, "conv3", C, C);
  h = b.node("Relu", [h], { name: "relu3" });
  h = b.node("GlobalAveragePool", [h], { name: "pool" });
  h = b.node("Flatten", [h], { name: "flatten", attrs: { axis: 1 } });
  const fw = b.initializer("fc/weight", "float32", [10, C], rng.normals(10 * C, Math.sqrt(1 / C)));
  const fb = b.initializer("fc/bias", "float32", [10], rng.normals(10, 0.05));
  const y = b.node("Gemm", [h, fw, fb], { name: "fc", attrs: { transB: 1 } });
  b.output(y, "float32", [1, 10]);
  return b.model({ opset: 17, irVersion: 8 });
}

/**
 * small_int8: conv + matmul + softmax, for compare --int8 end to end and fallbacks.
 *
 *   x[1,4,8,8] → conv (4→8, 3×3, pad 1) → relu → pool (MaxPool 2×2) → flatten → mm (MatMul
 *   [1,128]×[128,16]) → add (bias) → softmax (not int8-capable) → y[1,16]
 */
export function smallInt8Model(seed = 1): ModelProto {
  const rng = new Rng(`small_int8/${seed}`);
  const b = new GraphBuilder("small_int8");
  const x = b.input("x", "float32", [1, 4, 8, 8]);
  const w = b.initializer("conv/weight", "float32", [8, 4, 3, 3], rng.normals(8 * 4 * 9, Math.sqrt(2 / 36)));
  const cb = b.initializer("conv/bias", "float32", [8], rng.normals(8, 0.05));
  let h = b.node("Conv", [x, w, cb], { name: "conv", attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } });
  h = b.node("Relu", [h], { name: "relu" });
  h = b.node("MaxPool", [h], { name: "pool", attrs: { kernel_shape: [2, 2], strides: [2, 2] } });
  h = b.node("Flatten", [h], { name: "flatten", attrs: { axis: 1 } });
  const mw = b.initializer("mm/weight", "float32", [128, 16], rng.normals(128 * 16, Math.sqrt(1 / 128)));
  h = b.node("MatMul", [h, mw], { name: "mm" });
  const mb = b.initializer("add/bias", "float32", [16], rng.normals(16, 0.1));
  h = b.node("Add", [h, mb], { name: "add" });
  const y = b.node("Softmax", [h], { name: "softmax", attrs: { axis: 1 } });
  b.output(y, "float32", [1, 16]);
  return b.model({ opset: 17, irVersion: 8 });
}

/**
 * outlier_tail: a conv/matmul net where one activation has an outlier tail, for `bisect --int8`
 * (test/bisect-int8.test.ts and the docs/bisect.md example).
 *
 *   x[1,3,16,16] → conv1 (3→8, 3×3, pad 1) → relu1 → conv2 (8→8) → spikes (Add of fixed spikes:
 *   4 of the 2048 positions, normal with std 1000) → relu6 (Clip 0..6) → pool (GlobalAveragePool)
 *   → flatten → mm (MatMul [1,8]×[8,10]) → bias (Add) → scale (Div by 4: not int8-capable) → y[1,10]
 *
 * A minmax range of `spikes_output_0` (amax ≈ the largest spike, ~10³) is hundreds of times
 * its bulk (|x| ≲ 3): every int8 reader of it rounds the bulk to 0, relu6 then passes only the
 * clipped spikes and the output is off by about 100 %. Its only reader is relu6.
 */
export const TAIL_TENSOR = "spikes_output_0";

export function outlierTailModel(seed = 1): ModelProto {
  const rng = new Rng(`outlier_tail/${seed}`);
  const C = 8;
  const S = 16;
  const b = new GraphBuilder("outlier_tail");
  const x = b.input("x", "float32", [1, 3, S, S]);
  const conv = (inp: string, name: string, cin: number, cout: number): string => {
    const w = b.initializer(`${name}/weight`, "float32", [cout, cin, 3, 3], rng.normals(cout * cin * 9, Math.sqrt(2 / (cin * 9))));
    const bias = b.initializer(`${name}/bias`, "float32", [cout], rng.normals(cout, 0.05));
    return b.node("Conv", [inp, w, bias], { name, attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } });
  };
  let h = conv(x, "conv1", 3, C);
  h = b.node("Relu", [h], { name: "relu1" });
  h = conv(h, "conv2", C, C);
  const n = C * S * S;
  const spikes = new Float32Array(n);
  let placed = 0;
  while (placed < 4) {
    const p = rng.int(n);
    if (spikes[p] === 0) (spikes[p] = rng.normals(1, 1000)[0]!), placed++;
  }
  const m = b.initializer("spikes/values", "float32", [1, C, S, S], spikes);
  h = b.node("Add", [h, m], { name: "spikes" });
  const lo = b.initializer("relu6/min", "float32", [], Float32Array.of(0));
  const hi = b.initializer("relu6/max", "float32", [], Float32Array.of(6));
  h = b.node("Clip", [h, lo, hi], { name: "relu6" });
  h = b.node("GlobalAveragePool", [h], { name: "pool" });
  h = b.node("Flatten", [h], { name: "flatten", attrs: { axis: 1 } });
  const mw = b.initializer("mm/weight", "float32", [C, 10], rng.normals(C * 10, Math.sqrt(1 / C)));
  h = b.node("MatMul", [h, mw], { name: "mm" });
  const mb = b.initializer("bias/values", "float32", [10], rng.normals(10, 0.05));
  h = b.node("Add", [h, mb], { name: "bias" });
  const four = b.initializer("scale/divisor", "float32", [], Float32Array.of(4));
  const y = b.node("Div", [h, four], { name: "scale" });
  b.output(y, "float32", [1, 10]);
  return b.model({ opset: 17, irVersion: 8 });
}

/**
 * The small conv net of the Q/DQ conversion tests (convert --int8, --fp8, --int8 --fp16; bisect
 * --candidate QDQ), its weights uniform from the Rng named `seed`:
 *
 *   x[1,3,8,8] -> conv1 (+bias) -> relu1 -> conv2 -> relu2 -> flat -> fc (MatMul) -> y[1,10]
 *
 * With `softmax`, fc writes `fc_output_0` and a Softmax `soft` (not int8-capable) writes y.
 */
export function qdqConvNet(seed: string, o: { opset?: number; softmax?: boolean } = {}): ModelProto {
  const rng = new Rng(seed);
  const r = (n: number, a = 0.5) => Float32Array.from({ length: n }, () => rng.uniform(-a, a));
  const b = new GraphBuilder("cnet");
  const x = b.input("x", "float32", [1, 3, 8, 8]);
  let h = b.node("Conv", [x, b.initializer("w1", "float32", [4, 3, 3, 3], r(108)), b.initializer("b1", "float32", [4], r(4, 0.1))], { name: "conv1", attrs: { pads: [1, 1, 1, 1] } });
  h = b.node("Relu", [h], { name: "relu1" });
  h = b.node("Conv", [h, b.initializer("w2", "float32", [4, 4, 3, 3], r(144))], { name: "conv2", attrs: { pads: [1, 1, 1, 1] } });
  h = b.node("Relu", [h], { name: "relu2" });
  h = b.node("Reshape", [h, b.initializer("shape", "int64", [2], BigInt64Array.of(1n, 256n))], { name: "flat" });
  const w = b.initializer("wfc", "float32", [256, 10], r(2560, 0.1));
  if (o.softmax) {
    h = b.node("MatMul", [h, w], { name: "fc" });
    b.output(b.node("Softmax", [h], { name: "soft", outputs: ["y"], attrs: { axis: -1 } }), "float32", [1, 10]);
  } else b.output(b.node("MatMul", [h, w], { name: "fc", outputs: ["y"] }), "float32", [1, 10]);
  return b.model({ opset: o.opset ?? 13 });
}

/**
 * Quantized layers without weights: a, b [1,64] -> add -> `middle` (Sigmoid `sig`, int8-capable;
 * or Softmax `soft`, not int8-capable) -> mul (by a) -> z.
 */
export function qdqPointwiseNet(middle: "Sigmoid" | "Softmax", opset: number): ModelProto {
  const b = new GraphBuilder("pw");
  const a = b.input("a", "float32", [1, 64]);
  const c = b.input("b", "float32", [1, 64]);
  let h = b.node("Add", [a, c], { name: "add" });
  h = middle === "Sigmoid" ? b.node("Sigmoid", [h], { name: "sig" }) : b.node("Softmax", [h], { name: "soft", attrs: { axis: -1 } });
  b.output(b.node("Mul", [h, a], { name: "mul", outputs: ["z"] }), "float32", [1, 64]);
  return b.model({ opset });
}

/**
 * `compare REF CAND` and `bisect REF --candidate CAND` (both `--fusion none`, JSON into `json(name)`):
 * compare's exit code and graph-output rel L2, bisect's exit code, pinned layers and starting-point metric.
 */
export async function compareAndBisectCandidate(ref: string, cand: string, json: (name: string) => string): Promise<{ compareCode: number; compareRelL2: number; bisectCode: number; bisectOutput: string; pinned: string[]; baseline: { passed: boolean; metric: number } }> {
  const c = await cli("compare", ref, cand, "--fusion", "none", "--json", json("compare.json"), "-q");
  const b = await cli("bisect", ref, "--candidate", cand, "--fusion", "none", "--json", json("bisect.json"), "--no-checkpoint", "-q");
  const cj = JSON.parse(fs.readFileSync(json("compare.json"), "utf8")) as { layers: { is_graph_output: boolean; metrics: { rel_l2: number } }[] };
  const bj = fs.existsSync(json("bisect.json")) ? (JSON.parse(fs.readFileSync(json("bisect.json"), "utf8")) as BisectResult) : null;
  const base = bj?.iterations.find((i) => i.phase === "baseline");
  return { compareCode: c.code, compareRelL2: cj.layers.find((l) => l.is_graph_output)!.metrics.rel_l2, bisectCode: b.code, bisectOutput: b.stderr + b.stdout, pinned: bj?.pinned_layers ?? [], baseline: { passed: base?.passed ?? false, metric: base?.metric ?? NaN } };
}

/** Plant a bad scale: `out` is the Q/DQ model `file` with the scale of the QuantizeLinear reading `tensor` (shared by its DequantizeLinear) multiplied by `k`. */
export function plantQdqScale(file: string, tensor: string, k: number, out: string): void {
  const m = loadModel(file);
  const g = m.proto.graph!;
  const name = g.node.find((n) => n.opType === "QuantizeLinear" && n.input[0] === tensor)!.input[1]!;
  const i = g.initializer.findIndex((t) => t.name === name);
  const s = tensorProtoToHost(g.initializer[i]!).data[0] as number;
  g.initializer[i] = hostToTensorProto({ name, dtype: "float32", dims: [], data: Float32Array.of(s * k) });
  saveOnnx(m.proto, out);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const dir = process.argv[2] ?? ".";
  fs.mkdirSync(dir, { recursive: true });
  saveModel(clippedOutlierModel(), path.join(dir, "clipped_outlier.onnx"));
  saveModel(smallInt8Model(), path.join(dir, "small_int8.onnx"));
  saveModel(outlierTailModel(), path.join(dir, "outlier_tail.onnx"));
  process.stdout.write(`wrote ${path.join(dir, "clipped_outlier.onnx")}, ${path.join(dir, "small_int8.onnx")} and ${path.join(dir, "outlier_tail.onnx")}\n`);
}
