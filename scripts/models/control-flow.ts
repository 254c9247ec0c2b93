/**
 * Control-flow models for body emulation (docs/precision.md "Control-flow bodies").
 *
 * ifOverflow: all the compute sits inside an `If` (as in exported voice-activity LSTMs).
 *
 *   x[1,16] → gate (ReduceSum, Greater > -1e9: always true) → vad_if (If):
 *     then: body_mm1 (MatMul, weights in [20,30]: ~200) → body_scale (Mul 1000: ~2e5, over
 *           fp16's 65504) → body_mm2 (MatMul by 1e-3 weights: ~600) → body_out
 *     else: else_mm (MatMul)
 *   → post (Relu) → y[1,16]
 *
 * In fp32 every value is finite. Under fp16 with the body emulated, body_scale overflows and
 * vad_if's output is ±inf; with only the If's inputs and outputs rounded (the body in fp32) the
 * output is a finite ~600 and fp16 looks fine.
 *
 * ifSmall: an If whose then-branch computes Add(Mul(x, w), b) on 4 values, for value checks.
 * loopAccumulate: a Loop running `trips` iterations of v ← v·c + d on a float carried value.
 */
import { GraphBuilder } from "../../test/support/graph-builder.js";
import type { ModelProto } from "onnx-buf";
import { Rng } from "./common.js";

export interface IfOverflowModel {
  model: ModelProto;
  ifLayer: string;
  /** Body nodes of the then-branch. */
  bodyNodes: string[];
}

export function ifOverflow(seed = 1, opset = 17): IfOverflowModel {
  const rng = new Rng(`if_overflow/${seed}`);
  const N = 16;
  const b = new GraphBuilder("if_overflow");
  const x = b.input("x", "float32", [1, N]);
  const s = b.node("ReduceSum", [x], { name: "gate_sum", attrs: { keepdims: 0 } });
  const cond = b.node("Greater", [s, b.initializer("gate_lo", "float32", [], [-1e9])], { name: "gate" });
  const w1 = b.initializer("body_w1", "float32", [N, N], rng.uniforms(N * N, 20, 30));
  const w2 = b.initializer("body_w2", "float32", [N, N], rng.uniforms(N * N, 0.5e-3, 1.5e-3));
  const then = b.subgraph("then");
  const h1 = then.node("MatMul", [x, w1], { name: "body_mm1" });
  const h2 = then.node("Mul", [h1, then.initializer("body_k", "float32", [], [1000])], { name: "body_scale" });
  const h3 = then.node("MatMul", [h2, w2], { name: "body_mm2" });
  then.output(h3, "float32", [1, N]);
  const els = b.subgraph("else");
  const e = els.node("MatMul", [x, b.initializer("else_w", "float32", [N, N], rng.uniforms(N * N, -1, 1))], { name: "else_mm" });
  els.output(e, "float32", [1, N]);
  const y0 = b.node("If", [cond], { name: "vad_if", outputs: ["vad_if_out"], attrs: { then_branch: then.graph(), else_branch: els.graph() } });
  const y = b.node("Relu", [y0], { name: "post", outputs: ["y"] });
  b.output(y, "float32", [1, N]);
  return { model: b.model({ opset, irVersion: 8 }), ifLayer: "vad_if", bodyNodes: ["body_mm1", "body_scale", "body_mm2"] };
}

/** Then: Add(Mul(x, w), bias) with w, bias body initializers; else: Identity of x. cond input. */
export function ifSmall(w: readonly number[], bias: readonly number[], opset = 17): ModelProto {
  const b = new GraphBuilder("if_small");
  const x = b.input("x", "float32", [4]);
  const cond = b.input("cond", "bool", []);
  const then = b.subgraph("then");
  const m = then.node("Mul", [x, then.initializer("w", "float32", [4], w)], { name: "t_mul" });
  const a = then.node("Add", [m, then.initializer("bias", "float32", [4], bias)], { name: "t_add" });
  then.output(a, "float32", [4]);
  const els = b.subgraph("else");
  els.output(els.node("Identity", [x], { name: "e_id" }), "float32", [4]);
  b.node("If", [cond], { name: "small_if", outputs: ["y"], attrs: { then_branch: then.graph(), else_branch: els.graph() } });
  b.output("y", "float32", [4]);
  return b.model({ opset, irVersion: 8 });
}

/** v_0 = x; `trips` times v ← v·c + d (c, d outer-scope initializers); y = v. */
export function loopAccumulate(trips: number, c: number, d: number, n = 8, opset = 17): ModelProto {
  const b = new GraphBuilder("loop_acc");
  const x = b.input("x", "float32", [n]);
  const M = b.initializer("trips", "int64", [], [trips]);
  const cond = b.initializer("cond_true", "bool", [], [true]);
  const cc = b.initializer("loop_c", "float32", [], [c]);
  const dd = b.initializer("loop_d", "float32", [], [d]);
  const body = b.subgraph("body");
  body.input("iter", "int64", []);
  const cin = body.input("cond_in", "bool", []);
  const vin = body.input("v_in", "float32", [n]);
  const mul = body.node("Mul", [vin, cc], { name: "acc_mul" });
  const add = body.node("Add", [mul, dd], { name: "acc_add", outputs: ["v_out"] });
  const cout = body.node("Identity", [cin], { name: "cond_pass", outputs: ["cond_out"] });
  body.output(cout, "bool", []);
  body.output(add, "float32", [n]);
  b.nodeN("Loop", [M, cond, x], ["y"], { name: "acc_loop", attrs: { body: body.graph() } });
  b.output("y", "float32", [n]);
  return b.model({ opset, irVersion: 8 });
}

/** Nested bodies: an If (on input `cond`) whose then-branch runs loopAccumulate's Loop; else Identity. */
export function ifAroundLoop(trips: number, c: number, d: number, n = 8, opset = 17): ModelProto {
  const b = new GraphBuilder("if_loop");
  const x = b.input("x", "float32", [n]);
  const cond = b.input("cond", "bool", []);
  const M = b.initializer("trips", "int64", [], [trips]);
  const always = b.initializer("cond_true", "bool", [], [true]);
  const cc = b.initializer("loop_c", "float32", [], [c]);
  const dd = b.initializer("loop_d", "float32", [], [d]);
  const then = b.subgraph("then");
  const body = then.subgraph("body");
  body.input("iter", "int64", []);
  const cin = body.input("cond_in", "bool", []);
  const vin = body.input("v_in", "float32", [n]);
  const add = body.node("Add", [body.node("Mul", [vin, cc], { name: "acc_mul" }), dd], { name: "acc_add", outputs: ["v_out"] });
  body.output(body.node("Identity", [cin], { name: "cond_pass", outputs: ["cond_out"] }), "bool", []);
  body.output(add, "float32", [n]);
  then.nodeN("Loop", [M, always, x], ["loop_y"], { name: "inner_loop", attrs: { body: body.graph() } });
  then.output("loop_y", "float32", [n]);
  const els = b.subgraph("else");
  els.output(els.node("Identity", [x], { name: "e_id" }), "float32", [n]);
  b.node("If", [cond], { name: "outer_if", outputs: ["y"], attrs: { then_branch: then.graph(), else_branch: els.graph() } });
  b.output("y", "float32", [n]);
  return b.model({ opset, irVersion: 8 });
}

/** A Scan over the rows of x[T,n]: state s ← s + x_t (s_0 = s0 input), scan output s after each step. */
export function scanCumsum(T: number, n: number, opset = 17): ModelProto {
  const b = new GraphBuilder("scan_cumsum");
  const s0 = b.input("s0", "float32", [n]);
  const x = b.input("x", "float32", [T, n]);
  const body = b.subgraph("body");
  const sin = body.input("s_in", "float32", [n]);
  const xt = body.input("x_t", "float32", [n]);
  const s = body.node("Add", [sin, xt], { name: "cum_add", outputs: ["s_out"] });
  const sc = body.node("Identity", [s], { name: "cum_copy", outputs: ["s_scan"] });
  body.output(s, "float32", [n]);
  body.output(sc, "float32", [n]);
  b.nodeN("Scan", [s0, x], ["s_final", "s_all"], { name: "cumsum", attrs: { body: body.graph(), num_scan_inputs: 1 } });
  b.output("s_final", "float32", [n]);
  b.output("s_all", "float32", [T, n]);
  return b.model({ opset, irVersion: 8 });
}

/** An If (on input `cond`) whose then-branch is Softmax(x, last axis) -> Clip [0, 0.5], in the form of `opset` (Clip bounds as attributes before 11). */
export function ifSoftmaxClip(opset: 9 | 13): ModelProto {
  const b = new GraphBuilder("if_softmax");
  const x = b.input("x", "float32", [2, 5]);
  const cond = b.input("cond", "bool", []);
  const then = b.subgraph("then");
  const sm = then.node("Softmax", [x], { name: "t_softmax", attrs: { axis: opset < 13 ? 1 : -1 } });
  const cl = opset < 11
    ? then.node("Clip", [sm], { name: "t_clip", attrs: { min: then.f(0), max: then.f(0.5) } })
    : then.node("Clip", [sm, then.initializer("t_lo", "float32", [], [0]), then.initializer("t_hi", "float32", [], [0.5])], { name: "t_clip" });
  then.output(cl, "float32", [2, 5]);
  const els = b.subgraph("else");
  els.output(els.node("Identity", [x], { name: "e_id" }), "float32", [2, 5]);
  b.node("If", [cond], { name: "sm_if", outputs: ["y"], attrs: { then_branch: then.graph(), else_branch: els.graph() } });
  b.output("y", "float32", [2, 5]);
  return b.model({ opset, irVersion: opset < 13 ? 5 : 7 });
}

/**
 * A Loop whose body reads an outer-scope *sequence* (SequenceConstruct of x and double = x+x)
 * with SequenceAt: 2 iterations of v ← v + seq[i], v_0 = x. The body's outer sequence is typed
 * from SequenceConstruct. With `viaIdentity` the sequence passes through an Identity first:
 * trt-debug does not follow it, the body cannot be typed on its own, so it runs in fp32 and
 * the run must say so.
 */
export function loopOverSequence(viaIdentity = false, n = 4, opset = 17): ModelProto {
  const b = new GraphBuilder("loop_seq");
  const x = b.input("x", "float32", [n]);
  const x2 = b.node("Add", [x, x], { name: "double" });
  let seq = b.node("SequenceConstruct", [x, x2], { name: "make_seq", outputs: ["seq"] });
  if (viaIdentity) seq = b.node("Identity", [seq], { name: "seq_copy", outputs: ["seq2"] });
  const M = b.initializer("trips", "int64", [], [2]);
  const cond = b.initializer("cond_true", "bool", [], [true]);
  const body = b.subgraph("body");
  const it = body.input("iter", "int64", []);
  const cin = body.input("cond_in", "bool", []);
  const vin = body.input("v_in", "float32", [n]);
  const t = body.node("SequenceAt", [seq, it], { name: "pick" });
  body.output(body.node("Identity", [cin], { name: "cond_pass", outputs: ["cond_out"] }), "bool", []);
  body.output(body.node("Add", [vin, t], { name: "acc", outputs: ["v_out"] }), "float32", [n]);
  b.nodeN("Loop", [M, cond, x], ["y"], { name: "seq_loop", attrs: { body: body.graph() } });
  b.output("y", "float32", [n]);
  return b.model({ opset, irVersion: 8 });
}
