/** Model loading: names, order, subgraphs, external data, and every malformed-input error. */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { GraphBuilder, modelBytes, saveModel } from "./support/graph-builder.js";
import { loadModel, prepareModel } from "../src/onnx/model.js";
import { UserError } from "../src/core/errors.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

function tiny(name = "relu"): GraphBuilder {
  const b = new GraphBuilder("g");
  const x = b.input("x", "float32", [1, 4]);
  b.output(b.node("Relu", [x], { name, outputs: ["y"] }), "float32");
  return b;
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error("expected a UserError");
}

describe("layer names and order", () => {
  it("names unnamed nodes node_of_<first output> (onnx-tensorrt's rule) and de-duplicates names with __k", () => {
    const b = new GraphBuilder("g", { allowDuplicateNodeNames: true });
    const x = b.input("x", "float32", [4]);
    const a = b.node("Relu", [x], { outputs: ["a"] });
    const c = b.node("Relu", [a], { outputs: ["c"] });
    const d = b.node("Neg", [c], { name: "dup", outputs: ["d"] });
    const e = b.node("Neg", [d], { name: "dup", outputs: ["e"] });
    const f = b.node("Abs", [e], { name: "node_of_c", outputs: ["f"] });
    b.output(f, "float32");
    const m = prepareModel(b.model(), "m.onnx");
    expect(m.graph.layers.map((l) => l.name)).toEqual(["node_of_a", "node_of_c__2", "dup", "dup__2", "node_of_c"]);
  });

  it("orders a graph whose nodes are not topologically sorted, keeping file order where valid", () => {
    const b = new GraphBuilder("g");
    const x = b.input("x", "float32", [4]);
    b.node("Neg", ["t2"], { name: "third", outputs: ["t3"] });
    b.node("Relu", [x], { name: "first", outputs: ["t1"] });
    b.node("Abs", ["t1"], { name: "second", outputs: ["t2"] });
    b.node("Exp", [x], { name: "independent", outputs: ["t4"] });
    b.output("t3", "float32");
    b.output("t4", "float32");
    const m = prepareModel(b.model(), "m.onnx");
    expect(m.graph.layers.map((l) => l.name)).toEqual(["first", "second", "third", "independent"]);
  });

  it("keeps If subgraphs intact and records their outer-scope inputs", async () => {
    const b = new GraphBuilder("g");
    const x = b.input("x", "float32", [2]);
    const cond = b.input("cond", "bool", []);
    const sq = b.node("Mul", [x, x], { name: "square", outputs: ["sq"] });
    const tb = b.subgraph("then");
    tb.output(tb.node("Relu", [sq], { name: "then_relu", outputs: ["tr"] }), "float32");
    const eb = b.subgraph("else");
    eb.output(eb.node("Neg", [sq], { name: "else_neg", outputs: ["en"] }), "float32");
    const y = b.node("If", [cond], { name: "branch", outputs: ["y"], attrs: { then_branch: tb.graph(), else_branch: eb.graph() } });
    b.output(y, "float32");
    const m = prepareModel(b.model(), "m.onnx");
    const branch = m.graph.layers.find((l) => l.name === "branch")!;
    expect(branch.implicitInputs).toEqual(["sq"]);
    expect(m.graph.layers.map((l) => l.name)).toEqual(["square", "branch"]);
    const dir = tmpDir();
    const f = path.join(dir, "if.onnx");
    saveModel(b.model(), f);
    const r = await cli("run", f, "--fp16", "--mark-all", "--json", path.join(dir, "r.json"));
    expect(r.code).toBe(0);
    const j = JSON.parse(fs.readFileSync(path.join(dir, "r.json"), "utf8"));
    expect(j.runs[0].tensors).toBe(2);
  });

  it("loads external data and runs it", async () => {
    const dir = tmpDir();
    const b = new GraphBuilder("g");
    const x = b.input("x", "float32", [1, 256]);
    const w = b.initializer("w", "float32", [256, 256], Float32Array.from({ length: 65536 }, (_, i) => ((i % 17) - 8) / 64));
    b.output(b.node("MatMul", [x, w], { name: "mm", outputs: ["y"] }), "float32");
    const f = path.join(dir, "ext.onnx");
    saveModel(b.model(), f, { externalData: { location: "ext.onnx.data", threshold: 1024 } });
    expect(fs.statSync(f).size).toBeLessThan(4096);
    const r = await cli("run", f, "--fp32", "--quiet");
    expect(r.code).toBe(0);
    fs.rmSync(path.join(dir, "ext.onnx.data"));
    expectUserError(await cli("run", f), "ext.onnx.data", "not found");
  });
});

describe("malformed models give one line and exit 2", () => {
  const dir = tmpDir();
  const good = path.join(dir, "good.onnx");
  fs.writeFileSync(good, modelBytes(tiny().model()));

  it("missing file", async () => {
    expectUserError(await cli("run", path.join(dir, "nope.onnx")), "nope.onnx", "no such file");
    expect(errorOf(() => loadModel(path.join(dir, "nope.onnx")))).toMatch(/no such file/);
  });
  it("a directory", async () => {
    expectUserError(await cli("compare", dir, "--fp16"), "is a directory");
  });
  it("not ONNX (text)", async () => {
    const f = path.join(dir, "notes.onnx");
    fs.writeFileSync(f, "this is not a model\n".repeat(20));
    expectUserError(await cli("run", f), "notes.onnx", "not an ONNX model");
  });
  it("empty file", async () => {
    const f = path.join(dir, "empty.onnx");
    fs.writeFileSync(f, "");
    expectUserError(await cli("run", f), "empty.onnx");
  });
  it("truncated protobuf", async () => {
    const bytes = fs.readFileSync(good);
    const f = path.join(dir, "trunc.onnx");
    fs.writeFileSync(f, bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    expectUserError(await cli("run", f), "trunc.onnx", /truncated|not an ONNX/);
  });
  it("unsupported IR version", async () => {
    const f = path.join(dir, "ir.onnx");
    fs.writeFileSync(f, modelBytes(tiny().model({ irVersion: 99 })));
    expectUserError(await cli("run", f), "ir.onnx", "IR version 99");
  });
  it("unsupported opset", async () => {
    const f = path.join(dir, "opset.onnx");
    fs.writeFileSync(f, modelBytes(tiny().model({ opset: 99 })));
    expectUserError(await cli("run", f), "opset.onnx", "opset 99");
  });
  it("unknown input name", async () => {
    expectUserError(await cli("run", good, "--input-shapes", "nope:[1,4]"), "nope");
    expectUserError(await cli("run", good, "--val-range", "nope:[0,1]"), "nope");
  });
  it("wrong shape or dtype of loaded inputs", async () => {
    const other = new GraphBuilder("g");
    const x = other.input("x", "float32", [2, 3]);
    other.output(other.node("Relu", [x], { outputs: ["y"] }), "float32");
    const of = path.join(dir, "other.onnx");
    fs.writeFileSync(of, modelBytes(other.model()));
    const saved = path.join(dir, "in.arrow");
    expect((await cli("run", of, "--save-inputs", saved, "--quiet")).code).toBe(0);
    expectUserError(await cli("run", good, "--load-inputs", saved), "x", /shape|\[2,3\]/);
    const ib = new GraphBuilder("g");
    const xi = ib.input("x", "int64", [2, 3]);
    ib.output(ib.node("Neg", [xi], { outputs: ["y"] }), "int64");
    const intf = path.join(dir, "int.onnx");
    fs.writeFileSync(intf, modelBytes(ib.model()));
    expectUserError(await cli("run", intf, "--load-inputs", saved), "x", /float32|int64/);
  });
  it("bad flags", async () => {
    expectUserError(await cli("run", good, "--val-range", "[3,1]"), "--val-range");
    expectUserError(await cli("compare", good, "--fp16", "--atol", "abc"), "--atol");
    expectUserError(await cli("compare", good, "--fp16", "--check-error-stat", "mode"), "--check-error-stat");
    expectUserError(await cli("compare", good), "--fp16");
    expectUserError(await cli("run", good, "--layer-precisions", "nolayer:fp32"), "nolayer");
    expectUserError(await cli("run", good, "--layer-precisions", "relu:fp99"), "fp99");
    expectUserError(await cli("run", good, "--no-such-flag"), /no-such-flag|Unknown/i);
    expectUserError(await cli("run", good, "--precision-plan", path.join(dir, "missing-plan.json")), "missing-plan.json");
  });
});
