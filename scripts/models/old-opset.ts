/**
 * old_opset_net: one small conv net written in the forms of opset 9, 11 and 13 (attributes that
 * became inputs, Upsample vs Resize), with the same layer and tensor names in every form, so
 * dumps of the three can be compared tensor by tensor.
 *
 *   x[1,3,8,8] → conv (Conv 3x3, pad 1) → relu → pad (constant 0.5, H/W by 1) → slice (H/W 1..9)
 *   → clip [0,0.7] (0.7 is not a bf16 value) → up (Upsample / Resize nearest ×2) → conv2 (Conv 1x1) → unsq (Unsqueeze 0)
 *   → sq (Squeeze 0) → rsum (ReduceSum axis 3) → soft (Softmax on the last axis) → y[1,4,16]
 *
 * `softmaxAxis1` makes the Softmax run over axis 1 of the 3-D result (coerced to 2-D before
 * opset 13): one node only before 13, it exercises the Flatten/Reshape adapter.
 * `dynamicScales` computes Upsample's scales from x's shape (Shape, Cast, Div: not a constant
 * subgraph, so constant folding keeps them computed; no upgrade path for nearest, whose pre-11
 * rounding depends on the scales).
 */
import type { ModelProto } from "onnx-buf";
import { GraphBuilder } from "../../test/support/graph-builder.js";
import { Rng } from "./common.js";

export function oldOpsetNet(opset: 9 | 11 | 13, o: { softmaxAxis1?: boolean; dynamicScales?: boolean } = {}): ModelProto {
  const rng = new Rng("old_opset_net");
  const b = new GraphBuilder("old_opset_net");
  const x = b.input("x", "float32", [1, 3, 8, 8]);
  const w1 = b.initializer("conv.w", "float32", [4, 3, 3, 3], rng.uniforms(108, -0.5, 0.5));
  const b1 = b.initializer("conv.b", "float32", [4], rng.uniforms(4, -0.1, 0.1));
  let h = b.node("Conv", [x, w1, b1], { name: "conv", outputs: ["conv_out"], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } });
  h = b.node("Relu", [h], { name: "relu", outputs: ["relu_out"] });
  const i64 = (name: string, v: number[]) => b.initializer(name, "int64", [v.length], v);
  const pads = [0, 0, 1, 1, 0, 0, 1, 1];
  h = opset < 11
    ? b.node("Pad", [h], { name: "pad", outputs: ["pad_out"], attrs: { pads, value: b.f(0.5) } })
    : b.node("Pad", [h, i64("pad.pads", pads), b.initializer("pad.value", "float32", [], [0.5])], { name: "pad", outputs: ["pad_out"] });
  h = opset < 10
    ? b.node("Slice", [h], { name: "slice", outputs: ["slice_out"], attrs: { starts: [1, 1], ends: [9, 9], axes: [2, 3] } })
    : b.node("Slice", [h, i64("slice.starts", [1, 1]), i64("slice.ends", [9, 9]), i64("slice.axes", [2, 3])], { name: "slice", outputs: ["slice_out"] });
  h = opset < 11
    ? b.node("Clip", [h], { name: "clip", outputs: ["clip_out"], attrs: { min: b.f(0), max: b.f(0.7) } })
    : b.node("Clip", [h, b.initializer("clip.min", "float32", [], [0]), b.initializer("clip.max", "float32", [], [0.7])], { name: "clip", outputs: ["clip_out"] });
  let scales = b.initializer("up.scales", "float32", [4], [1, 1, 2, 2]);
  if (o.dynamicScales) {
    // Computed from x's shape ([1,3,8,8] / [1,3,4,4]): not a constant subgraph, so constant folding leaves it computed.
    const shape = b.node("Shape", [x], { name: "scales_shape", outputs: ["scales_shape"] });
    const shapeF = b.node("Cast", [shape], { name: "scales_cast", outputs: ["scales_f"], attrs: { to: 1 } });
    scales = b.node("Div", [shapeF, b.initializer("scales.div", "float32", [4], [1, 3, 4, 4])], { name: "scales_div", outputs: ["scales_dyn"] });
  }
  if (opset < 10) h = b.node("Upsample", [h, scales], { name: "up", outputs: ["up_out"], attrs: { mode: "nearest" } });
  else {
    const roi = opset < 13 ? b.initializer("up.roi", "float32", [0], []) : "";
    h = b.node("Resize", [h, roi, scales], { name: "up", outputs: ["up_out"], attrs: { mode: "nearest", coordinate_transformation_mode: "asymmetric", nearest_mode: "floor" } });
  }
  const w2 = b.initializer("conv2.w", "float32", [4, 4, 1, 1], rng.uniforms(16, -1, 1));
  h = b.node("Conv", [h, w2], { name: "conv2", outputs: ["conv2_out"] });
  h = opset < 13
    ? b.node("Unsqueeze", [h], { name: "unsq", outputs: ["unsq_out"], attrs: { axes: [0] } })
    : b.node("Unsqueeze", [h, i64("unsq.axes", [0])], { name: "unsq", outputs: ["unsq_out"] });
  h = opset < 13
    ? b.node("Squeeze", [h], { name: "sq", outputs: ["sq_out"], attrs: { axes: [0] } })
    : b.node("Squeeze", [h, i64("sq.axes", [0])], { name: "sq", outputs: ["sq_out"] });
  h = opset < 13
    ? b.node("ReduceSum", [h], { name: "rsum", outputs: ["rsum_out"], attrs: { axes: [3], keepdims: 0 } })
    : b.node("ReduceSum", [h, i64("rsum.axes", [3])], { name: "rsum", outputs: ["rsum_out"], attrs: { keepdims: 0 } });
  h = b.node("Softmax", [h], { name: "soft", outputs: ["y"], attrs: { axis: o.softmaxAxis1 ? 1 : 2 } });
  b.output(h, "float32");
  return b.model({ opset, irVersion: opset < 13 ? 5 : 7 });
}
