/**
 * big_external: a chain of large MatMuls whose weights live in an external data file, for
 * the "models past 2 GB" work (docs/performance.md): x[1,K] -> mm0 (K x N) -> relu0 ->
 * mm1 (N x K) -> relu1 -> ... -> mm<m-1> (no relu after the last). The bench writes one of
 * >= 3 GB (four 16384 x 12288 float32 weights, 805 MB each); tests write a few MB.
 *
 * The data file is written streaming, one piece of at most 16 MiB at a time: the weights are
 * never held in memory. Values are a deterministic hash of (seed, weight, element), uniform
 * in [-1, 1) / sqrt(rows), so activations stay O(1) through the chain. Each weight starts at
 * a multiple of 4096 bytes (as onnx's Python writer aligns large tensors).
 *
 * Variants: `weightType` "float16"/"bfloat16" writes a strongly typed model (weights stored in
 * that type, x cast to it before mm0 and the result cast back to float, as `convert --fp16`
 * writes one); `transposed` stores each weight transposed (cols x rows) and reads it through a
 * Transpose node, a constant subgraph folded at load (as exported models often have).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { StringStringEntryProtoSchema, TensorProto_DataLocation, TensorProto_DataType, TensorProtoSchema } from "onnx-buf";
import { GraphBuilder, modelBytes } from "../../test/support/graph-builder.js";
import { f32ToBf16, f32ToF16 } from "../../src/numeric/index.js";

export interface BigExternalOptions {
  /** Number of MatMul layers (default 4). */
  matmuls?: number;
  /** Input width and the odd weights' rows (default 16384). */
  k?: number;
  /** The even weights' columns (default 12288). */
  n?: number;
  seed?: number;
  /** File stem (default "big_external"): writes <stem>.onnx and <stem>.onnx.data. */
  stem?: string;
  /** Element type of the stored weights (default float32; float16/bfloat16: a strongly typed model). */
  weightType?: "float32" | "float16" | "bfloat16";
  /** Store each weight transposed and read it through a Transpose node (folded at load). */
  transposed?: boolean;
}

export interface BigExternalFacts {
  model: string;
  data: string;
  /** Bytes of weights in the data file. */
  weightBytes: number;
  /** Bytes of the weights as float32 (weightBytes, or twice it for float16/bfloat16 weights). */
  weightBytesFloat32: number;
  /** Bytes of the largest single weight. */
  largestWeightBytes: number;
  /** Bytes of every activation of one run (input, each MatMul and Relu output). */
  activationBytes: number;
  /** Bytes of the largest layer's activations (its input plus its output). */
  largestLayerActivationBytes: number;
  layers: string[];
}

const PIECE = 4 * 2 ** 20; // elements per write (16 MiB)

/** Fill `out` with weight `w`'s values for elements [first, first + out.length). */
function fillWeights(out: Float32Array, seed: number, w: number, first: number, rows: number): void {
  const scale = 1 / Math.sqrt(rows) / 2 ** 31;
  let h0 = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(w + 1, 0xc2b2ae35);
  h0 >>>= 0;
  for (let i = 0; i < out.length; i++) {
    let z = (h0 + Math.imul(first + i, 0x9e3779b9)) | 0;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    out[i] = z * scale; // z is a signed 32-bit integer: [-1, 1) / sqrt(rows)
  }
}

/** Write `<dir>/<stem>.onnx` and its data file; returns paths and sizes. */
export function writeBigExternalModel(dir: string, o: BigExternalOptions = {}): BigExternalFacts {
  const m = o.matmuls ?? 4, K = o.k ?? 16384, N = o.n ?? 12288, seed = o.seed ?? 1;
  const stem = o.stem ?? "big_external";
  const modelFile = path.join(dir, `${stem}.onnx`);
  const dataName = `${stem}.onnx.data`;
  const dataFile = path.join(dir, dataName);
  const wt = o.weightType ?? "float32";
  const wType = { float32: TensorProto_DataType.FLOAT, float16: TensorProto_DataType.FLOAT16, bfloat16: TensorProto_DataType.BFLOAT16 }[wt];
  const elemBytes = wt === "float32" ? 4 : 2;
  const b = new GraphBuilder(stem);
  let x = b.input("x", "float32", [1, K]);
  if (wt !== "float32") x = b.node("Cast", [x], { name: "cast_in", outputs: ["x_typed"], attrs: { to: wType } });
  let offset = 0;
  let weightBytes = 0, largest = 0, act = K * 4, largestAct = 0;
  const layers: string[] = [];
  const fd = fs.openSync(dataFile, "w");
  try {
    const buf = new Float32Array(PIECE);
    const half = new Uint16Array(PIECE);
    for (let w = 0; w < m; w++) {
      const [rows, cols] = w % 2 === 0 ? [K, N] : [N, K];
      const n = rows * cols;
      offset = Math.ceil(offset / 4096) * 4096;
      const start = offset;
      for (let first = 0; first < n; first += PIECE) {
        const len = Math.min(PIECE, n - first);
        const piece = buf.subarray(0, len);
        fillWeights(piece, seed, w, first, rows);
        const bits = wt === "float16" ? f32ToF16(piece, half.subarray(0, len)) : wt === "bfloat16" ? f32ToBf16(piece, half.subarray(0, len)) : null;
        const bytes = bits ? new Uint8Array(bits.buffer, 0, len * 2) : new Uint8Array(piece.buffer, 0, len * 4);
        let done = 0;
        while (done < bytes.byteLength) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done, offset + done);
        offset += bytes.byteLength;
      }
      const name = o.transposed ? `w${w}_t` : `w${w}`;
      const dims = o.transposed ? [cols, rows] : [rows, cols];
      const t = create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: wType, dataLocation: TensorProto_DataLocation.EXTERNAL });
      t.externalData = ([["location", dataName], ["offset", String(start)], ["length", String(n * elemBytes)]] as const).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value }));
      b.addInitializer(t);
      weightBytes += n * elemBytes;
      largest = Math.max(largest, n * elemBytes);
      const wIn = o.transposed ? b.node("Transpose", [name], { name: `tr${w}`, outputs: [`w${w}`] }) : name;
      const y = b.node("MatMul", [x, wIn], { name: `mm${w}`, outputs: [`mm${w}_out`] });
      layers.push(`mm${w}`);
      largestAct = Math.max(largestAct, rows * 4 + cols * 4);
      act += cols * 4;
      x = y;
      if (w < m - 1) {
        x = b.node("Relu", [y], { name: `relu${w}`, outputs: [`relu${w}_out`] });
        layers.push(`relu${w}`);
        act += cols * 4;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  if (wt !== "float32") x = b.node("Cast", [x], { name: "cast_out", outputs: ["y"], attrs: { to: TensorProto_DataType.FLOAT } });
  b.output(x, "float32");
  fs.writeFileSync(modelFile, modelBytes(b.model({ opset: 17 })));
  return { model: modelFile, data: dataFile, weightBytes, weightBytesFloat32: (weightBytes / elemBytes) * 4, largestWeightBytes: largest, activationBytes: act, largestLayerActivationBytes: largestAct, layers };
}
