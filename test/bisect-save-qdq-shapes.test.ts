/**
 * `bisect --int8 --save-onnx` on a model with shape arithmetic (Shape -> Slice -> Concat ->
 * Reshape, as exported detectors and classifiers have): the int64 Slice/Concat are "int8-capable"
 * ops with nothing to quantize, and the save's re-verification used to stop with an internal
 * error (exit 3: "layer 'shape_slice' was written in int8 but the Q/DQ model does not quantize it").
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { Rng } from "../scripts/models/common.js";
import { loadModel } from "../src/onnx/model.js";
import { cli, tmpDir } from "./helpers.js";

const dir = tmpDir("trtdbg-qdqshape-");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const model = path.join(dir, "shapes.onnx");
const cache = path.join(dir, "shapes.cache");

describe("bisect --int8 --save-onnx with shape arithmetic", () => {
  beforeAll(async () => {
    const rng = new Rng("qdq_shapes");
    const b = new GraphBuilder("qdq_shapes");
    const x = b.input("x", "float32", [1, 3, 4, 4]);
    let h = b.node("Conv", [x, b.initializer("conv.w", "float32", [4, 3, 3, 3], rng.uniforms(108, -0.5, 0.5))], { name: "conv", outputs: ["conv_out"], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } });
    h = b.node("Relu", [h], { name: "relu", outputs: ["relu_out"] });
    const shape = b.node("Shape", [h], { name: "shape", outputs: ["shape_out"] });
    const i64 = (name: string, v: number[]) => b.initializer(name, "int64", [v.length], v);
    const head = b.node("Slice", [shape, i64("s.starts", [0]), i64("s.ends", [2]), i64("s.axes", [0])], { name: "shape_slice", outputs: ["head"] });
    const target = b.node("Concat", [head, i64("minus1", [-1])], { name: "shape_concat", outputs: ["target"], attrs: { axis: 0 } });
    h = b.node("Reshape", [h, target], { name: "flat", outputs: ["flat_out"] });
    h = b.node("Softmax", [h], { name: "soft", outputs: ["y"], attrs: { axis: -1 } });
    b.output(h, "float32");
    saveModel(b.model({ opset: 13 }), model);
    const r = await cli("calib", "build", model, "-o", cache, "--calib-batches", "2", "-q");
    expect(r.code, r.stderr).toBe(0);
  });

  it("writes and re-verifies the Q/DQ model (exit 0, not 3)", async () => {
    const out = path.join(dir, "saved.onnx");
    const r = await cli("bisect", model, "--int8", "--calibration-cache", cache, "--save-onnx", out, "--no-checkpoint");
    expect(r.stderr).not.toContain("internal error");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*saved\.onnx: Q\/DQ, [1-9]\d* layer\(s\) in int8/);
    const g = loadModel(out).proto.graph!;
    const slice = g.node.find((n) => n.name === "shape_slice")!;
    expect(slice.input[0]).toBe("shape_out"); // nothing quantized in front of the shape arithmetic
    expect(g.node.some((n) => n.opType === "DequantizeLinear" && n.output.some((o) => g.node.find((c) => c.name === "flat")!.input.includes(o)))).toBe(true);
  });
});
