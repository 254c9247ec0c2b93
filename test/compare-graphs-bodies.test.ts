/**
 * `compare REFERENCE.onnx CANDIDATE.onnx` with a failing If/Loop layer in a strongly typed
 * candidate: the failing body node is named from inside the candidate's body, as
 * `compare MODEL --fp16` does (compare/body-probe.ts probeBodiesTwoModels).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveModel } from "./support/graph-builder.js";
import { compareGraphs } from "../src/workflows/compare-graphs.js";
import { compareModel } from "../src/workflows/compare.js";
import { defaultCompareOptions } from "../src/compare/tolerance.js";
import { ifOverflow, loopAccumulate } from "../scripts/models/control-flow.js";
import { cli, tmpDir } from "./helpers.js";

const dir = tmpDir("trtdbg-cgb-");
const f = (n: string) => path.join(dir, n);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("compare REF CAND: evidence from inside a failing control-flow layer", () => {
  beforeAll(async () => {
    saveModel(ifOverflow().model, f("if.onnx"));
    saveModel(loopAccumulate(6, 10, 1), f("loop.onnx")); // |v| ~ 1e6 after 6 iterations: over 65504 from the 5th
    for (const m of ["if", "loop"]) expect((await cli("convert", f(`${m}.onnx`), "--fp16", "-o", f(`${m}16.onnx`), "-q")).code).toBe(0);
  });

  it("If: the typed candidate's then_branch Mul that overflows is named, as compare MODEL --fp16 names it", async () => {
    const s = await compareGraphs({ reference: f("if.onnx"), candidate: f("if16.onnx"), compare: defaultCompareOptions() });
    expect(s.passed).toBe(false);
    expect(s.first_failing_layer).toBe("vad_if");
    const ev = s.layers.find((l) => l.layer === "vad_if" && !l.passed)!.evidence.join(" | ");
    expect(ev).toMatch(/inside then_branch: body_scale \(Mul\) is the first body node that fails: .*(inf|Inf)/);
    // the same body node as the one-model emulation names
    const one = await compareModel({ model: f("if.onnx"), candidate: "fp16", compare: defaultCompareOptions() });
    const ev1 = one.layers.find((l) => l.layer === "vad_if")!.evidence.join(" | ");
    expect(ev.match(/inside \S+: \S+ \(\w+\)/)![0]).toBe(ev1.match(/inside \S+: \S+ \(\w+\)/)![0]);
    const r = await cli("compare", f("if.onnx"), f("if16.onnx"));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/first failing layer: vad_if .*inside then_branch: body_scale \(Mul\) is the first body node that fails/);
  });

  it("Loop: the body node whose carried value overflows is named", async () => {
    const s = await compareGraphs({ reference: f("loop.onnx"), candidate: f("loop16.onnx"), compare: defaultCompareOptions() });
    expect(s.first_failing_layer).toBe("acc_loop");
    const row = s.layers.find((l) => l.layer === "acc_loop" && !l.passed)!;
    expect(row.evidence.join(" | ")).toMatch(/inside body: acc_mul \(Mul\) is the first body node that fails: .*new NaN\/Inf/);
  });

  it("a passing typed candidate is not probed (no body evidence)", async () => {
    const s = await compareGraphs({ reference: f("loop.onnx"), candidate: f("loop.onnx"), compare: defaultCompareOptions() });
    expect(s.passed).toBe(true);
    expect(s.layers.every((l) => l.evidence.every((e) => !e.startsWith("inside ")))).toBe(true);
  });
});
