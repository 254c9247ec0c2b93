/**
 * FP16/BF16 emulation by graph rewriting (PRECISION.md): inputs, weights and outputs of every
 * reduced-precision layer are rounded; overflow becomes inf; non-float tensors are untouched;
 * the rounding survives every onnxruntime optimization level; segmentation changes nothing.
 */
import { describe, expect, it } from "vitest";
import { GraphBuilder } from "./support/graph-builder.js";
import { prepareModel } from "../src/onnx/model.js";
import { inferTypes } from "../src/onnx/model-types.js";
import { Executor } from "../src/runtime/executor.js";
import { runCaptured } from "../src/runtime/capture-runs.js";
import { roundTo } from "../src/numeric/index.js";
import type { HostTensor, Precision } from "../src/core/host-tensor.js";
import type { OptimizationLevel } from "../src/onnx/ort-session.js";

async function setup(build: (b: GraphBuilder) => void, opts: { segmentLayers?: number; optimizationLevel?: OptimizationLevel } = {}) {
  const b = new GraphBuilder("t");
  build(b);
  const model = prepareModel(b.model({ opset: 17 }), "mem.onnx");
  const types = await inferTypes(model);
  const exec = new Executor(model, types, opts);
  return { model, types, exec };
}

async function runAll(exec: Executor, precisions: Precision[], inputs: HostTensor[]): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for await (const c of runCaptured(exec, precisions, inputs, () => true)) out.set(c.tensor.name, c.tensor);
  return out;
}

const f32 = (name: string, dims: number[], v: number[]): HostTensor => ({ name, dtype: "float32", dims, data: Float32Array.from(v) });

describe("fp16 emulation", () => {
  const mulRelu = (b: GraphBuilder) => {
    const x = b.input("x", "float32", [1, 4]);
    const w = b.initializer("w", "float32", [1, 4], Float32Array.from([300, 1.0001, 1e-8, 3.14159]));
    const y = b.node("Mul", [x, w], { name: "mul", outputs: ["y"] });
    const z = b.node("Relu", [y], { name: "relu", outputs: ["z"] });
    b.output(z, "float32");
  };
  const x = f32("x", [1, 4], [300, 1, 1, 1]);

  for (const lvl of ["disabled", "basic", "extended", "all"] as const) {
    it(`rounds weights, inputs and outputs and overflows to inf at optimization level ${lvl}`, async () => {
      const { exec } = await setup(mulRelu, { optimizationLevel: lvl });
      const ref = await runAll(exec, ["fp32", "fp32"], [x]);
      const h = await runAll(exec, ["fp16", "fp16"], [x]);
      const y32 = ref.get("y")!.data as Float32Array;
      expect(y32[0]).toBe(90000);
      const y16 = h.get("y")!.data as Float32Array;
      expect(y16[0]).toBe(Infinity); // 90000 > 65504
      expect(y16[1]).toBe(1); // weight 1.0001 rounds to 1 in fp16
      expect(y16[2]).toBe(0); // 1e-8 flushes to zero
      expect(y16[3]).toBe(roundTo(Float32Array.from([3.14159]), "fp16")[0]); // 3.140625
      expect(y16[3]).toBe(3.140625);
      await exec.release();
    });
  }

  it("pinning a producer to fp32 does not stop its fp16 consumer from overflowing at its input", async () => {
    const { exec } = await setup((b) => {
      const x = b.input("x", "float32", [1, 2]);
      const w = b.initializer("w", "float32", [2, 2], Float32Array.from([1000, 0, 0, 1]));
      const y = b.node("MatMul", [x, w], { name: "mm", outputs: ["y"] });
      const s = b.initializer("s", "float32", [], Float32Array.from([1e-3]));
      const z = b.node("Mul", [y, s], { name: "scale", outputs: ["z"] });
      b.output(z, "float32");
    });
    const xin = f32("x", [1, 2], [100, 2]);
    const both = await runAll(exec, ["fp32", "fp16"], [xin]);
    expect((both.get("y")!.data as Float32Array)[0]).toBe(100000);
    expect((both.get("z")!.data as Float32Array)[0]).toBe(Infinity);
    const pinned = await runAll(exec, ["fp32", "fp32"], [xin]);
    expect((pinned.get("z")!.data as Float32Array)[0]).toBeCloseTo(100, 3);
    await exec.release();
  });

  it("leaves integer tensors (shapes, indices) untouched", async () => {
    const { exec } = await setup((b) => {
      const x = b.input("x", "float32", [2, 3]);
      const sh = b.node("Shape", [x], { name: "shape", outputs: ["sh"] });
      const big = b.initializer("big", "int64", [1], BigInt64Array.from([70001n]));
      const sum = b.node("Add", [sh, big], { name: "add_int", outputs: ["shp"] });
      const y = b.node("Relu", [x], { name: "relu", outputs: ["y"] });
      b.output(sum, "int64");
      b.output(y, "float32");
    });
    const out = await runAll(exec, ["fp16", "fp16", "fp16"], [f32("x", [2, 3], [1, 2, 3, 4, 5, 70000])]);
    expect([...(out.get("shp")!.data as BigInt64Array)]).toEqual([70003n, 70004n]);
    expect((out.get("y")!.data as Float32Array)[5]).toBe(Infinity);
    await exec.release();
  });

  it("bf16 rounding matches the numeric core bit for bit", async () => {
    const { exec } = await setup(mulRelu);
    const vals = [1.00390625, 1.01171875, 3.3e38, -2.5e-40];
    const xin = f32("x", [1, 4], vals);
    const out = await runAll(exec, ["bf16", "fp32"], [xin]);
    const w = Float32Array.from([300, 1.0001, 1e-8, 3.14159]);
    const bx = roundTo(Float32Array.from(vals), "bf16");
    const bw = roundTo(w, "bf16");
    const prod = new Float32Array(4);
    for (let i = 0; i < 4; i++) prod[i] = Math.fround(bx[i]! * bw[i]!);
    expect([...(out.get("y")!.data as Float32Array)]).toEqual([...roundTo(prod, "bf16")]);
    await exec.release();
  });

  it("segmentation does not change any value", async () => {
    const chain = (b: GraphBuilder) => {
      let t = b.input("x", "float32", [1, 8]);
      for (let i = 0; i < 9; i++) {
        const w = b.initializer(`w${i}`, "float32", [8, 8], Float32Array.from({ length: 64 }, (_, k) => Math.sin(k * 7 + i) * 0.7));
        t = b.node("MatMul", [t, w], { name: `mm${i}`, outputs: [`h${i}`] });
        t = b.node(i % 2 ? "Tanh" : "Sigmoid", [t], { name: `act${i}`, outputs: [`a${i}`] });
      }
      b.output(t, "float32");
    };
    const xin = f32("x", [1, 8], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]);
    const results: Map<string, HostTensor>[] = [];
    for (const seg of [1, 3, 100]) {
      const { exec, model } = await setup(chain, { segmentLayers: seg });
      expect(exec.segments.length).toBe(Math.ceil(model.graph.layers.length / seg));
      const prec = model.graph.layers.map((_, i) => (i % 3 ? "fp16" : "fp32") as Precision);
      results.push(await runAll(exec, prec, [xin]));
      await exec.release();
    }
    for (const [name, t] of results[0]!) {
      expect([...(results[1]!.get(name)!.data as Float32Array)]).toEqual([...(t.data as Float32Array)]);
      expect([...(results[2]!.get(name)!.data as Float32Array)]).toEqual([...(t.data as Float32Array)]);
    }
    expect(results[0]!.size).toBe(18);
  });
});
