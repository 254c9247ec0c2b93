/**
 * fp8 emulation on models below opset 19 (brief h11b item 5): the segments are upgraded to
 * opset 19 (onnx/opset-upgrade.ts: the 13 adapters, then Reduce* axes -> input, Split
 * num_outputs, RoiAlign's old coordinate mode), guarded by the fp32 self-check; the numbers are
 * those of the same model exported at opset 19.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { Rng } from "../scripts/models/common.js";
import { upgradeNodes } from "../src/onnx/opset-upgrade.js";
import { loadModel } from "../src/onnx/model.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

let dir: string;
const f = (n: string) => path.join(dir, n);

const rng = new Rng("fp8-opset-upgrade");
const W = Float32Array.from({ length: 16 * 16 }, () => rng.uniform(-0.5, 0.5));

/** x -> mm -> Split (2 halves) -> add -> ReduceMean over axis 1 (keepdims) -> mul by the halves' sum: y. The opset-18 forms (axes input, num_outputs) at opset >= 18. */
function net(opset: number) {
  const b = new GraphBuilder("n");
  const x = b.input("x", "float32", [1, 16]);
  const h = b.node("MatMul", [x, b.initializer("w", "float32", [16, 16], W)], { name: "mm" });
  const [s0, s1] = b.nodeN("Split", [h], 2, { name: "sp", attrs: { axis: 1, ...(opset >= 18 ? { num_outputs: 2 } : {}) } });
  const a = b.node("Add", [s0!, s1!], { name: "add" });
  const r = opset >= 18
    ? b.node("ReduceMean", [a, b.initializer("axes", "int64", [1], BigInt64Array.of(1n))], { name: "rm", attrs: { keepdims: 1 } })
    : b.node("ReduceMean", [a], { name: "rm", attrs: { axes: [1], keepdims: 1 } });
  b.output(b.node("Mul", [a, r], { name: "mul", outputs: ["y"] }), "float32", [1, 8]);
  return b.model({ opset });
}

beforeAll(async () => {
  dir = tmpDir("trtdbg-fp8-upgrade-");
  for (const o of [13, 17, 19]) saveModel(net(o), f(`n${o}.onnx`));
  expect((await cli("calib", "build", f("n19.onnx"), "-o", f("n.cache"), "--calib-batches", "3", "--algo", "minmax", "-q", "--fusion", "none")).code).toBe(0);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("fp8 below opset 19", () => {
  it("upgradeNodes to 19: ReduceMean's axes become an input, Split gets num_outputs", () => {
    const m = net(13);
    const added: string[] = [];
    const r = upgradeNodes(m.graph!.node, { from: 13, types: new Map(), constOf: () => undefined, addInit: (t) => added.push(t.name) }, 19);
    expect(r.blocker).toBeNull();
    const rm = r.nodes!.find((n) => n.name === "rm")!;
    expect(rm.input.length).toBe(2);
    expect(rm.attribute.map((a) => a.name)).toEqual(["keepdims"]);
    expect(added).toEqual([rm.input[1]]);
    expect(r.nodes!.find((n) => n.name === "sp")!.attribute.find((a) => a.name === "num_outputs")!.i).toBe(2n);
  });

  it("upgradeNodes to 19: RoiAlign below 16 keeps its old coordinate mode; BatchNormalization with training outputs is a blocker; to 13 nothing of the 19 adapters applies", () => {
    const b = new GraphBuilder("r");
    const x = b.input("x", "float32", [1, 2, 4, 4]);
    const rois = b.input("rois", "float32", [1, 4]);
    const bi = b.input("bi", "int64", [1]);
    b.node("RoiAlign", [x, rois, bi], { name: "roi" });
    const scope = { from: 10, types: new Map(), constOf: () => undefined, addInit: () => undefined };
    const r = upgradeNodes(b.model({ opset: 10 }).graph!.node, scope, 19);
    const mode = r.nodes![0]!.attribute.find((a) => a.name === "coordinate_transformation_mode")!;
    expect(new TextDecoder().decode(mode.s)).toBe("output_half_pixel");
    expect(upgradeNodes(b.model({ opset: 10 }).graph!.node, scope, 13).nodes![0]!.attribute).toEqual([]);
    const bn = new GraphBuilder("bn");
    const y = bn.input("y", "float32", [1, 2, 4, 4]);
    const p = (n: string) => bn.initializer(n, "float32", [2], Float32Array.of(1, 1));
    bn.nodeN("BatchNormalization", [y, p("s"), p("b"), p("m"), p("v")], 3, { name: "bnorm" });
    const blocked = upgradeNodes(bn.model({ opset: 13 }).graph!.node, { ...scope, from: 13 }, 19);
    expect(blocked.blocker).toEqual({ node: "bnorm", opType: "BatchNormalization", reason: "its training-mode outputs (mean, var) changed meaning at opset 14" });
  });

  it("compare --fp8 on opset 13 and 17 models runs (upgraded to 19, self-check passed) and gives the opset-19 model's numbers exactly", async () => {
    const metrics = async (o: number) => {
      const r = await cli("compare", f(`n${o}.onnx`), "--fp8", "--calibration-cache", f("n.cache"), "--fusion", "none", "--json", f(`c${o}.json`), "-q");
      expect(r.code, r.stderr + r.stdout).toBeLessThan(2);
      const j = JSON.parse(fs.readFileSync(f(`c${o}.json`), "utf8"));
      expect(j.int8.type).toBe("fp8");
      return j.layers.map((l: { tensor: string; precision: string; metrics: Record<string, number | null> }) => [l.tensor, l.precision, l.metrics.max_abs, l.metrics.rel_l2]);
    };
    const ref = await metrics(19);
    expect(ref.filter((l: unknown[]) => l[1] === "fp8").length).toBeGreaterThan(0);
    expect(ref.some((l: unknown[]) => (l[2] as number) > 0)).toBe(true);
    expect(await metrics(13)).toEqual(ref);
    expect(await metrics(17)).toEqual(ref);
  });

  it("convert --fp8 of opset 13 and 17 models writes an opset-19 Q/DQ model that computes what the opset-19 model's conversion does", async () => {
    const outMetrics = async (o: number) => {
      const c = await cli("convert", f(`n${o}.onnx`), "--fp8", "--calibration-cache", f("n.cache"), "--fusion", "none", "-o", f(`q${o}.onnx`), "-q");
      expect(c.code, c.stderr + c.stdout).toBe(0);
      expect(loadModel(f(`q${o}.onnx`)).opset).toBe(19);
      const r = await cli("compare", f(`n${o}.onnx`), f(`q${o}.onnx`), "--fusion", "none", "--json", f(`g${o}.json`), "-q");
      expect(r.code, r.stderr + r.stdout).toBeLessThan(2);
      return JSON.parse(fs.readFileSync(f(`g${o}.json`), "utf8")).layers.map((l: { tensor: string; metrics: Record<string, number | null> }) => [l.tensor, l.metrics.max_abs, l.metrics.rel_l2]);
    };
    const ref = await outMetrics(19);
    expect(ref.some((l: unknown[]) => (l[1] as number) > 0)).toBe(true);
    expect(await outMetrics(13)).toEqual(ref);
    expect(await outMetrics(17)).toEqual(ref);
    const g = loadModel(f("q13.onnx")).proto.graph!;
    expect(g.node.find((n) => n.name === "rm")!.input.length).toBe(2);
  });

  it("below opset 9 (no upgrade path) it is still refused with one line", async () => {
    saveModel(net(8), f("n8.onnx"));
    expectUserError(await cli("compare", f("n8.onnx"), "--fp8", "--calibration-cache", f("n.cache"), "-q"), "opset 8");
  });
});
