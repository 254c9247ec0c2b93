/**
 * `compare MODEL --precision-plan plan.json` with no precision flag (what docs/bisect.md says to
 * run with bisect -o's plan): the plan's "default" is the candidate precision; `run` and
 * `validate` label their run by it instead of "fp32" (src/cli/plan-default.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveModel } from "./support/graph-builder.js";
import { oldOpsetNet } from "../scripts/models/old-opset.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

const dir = tmpDir("trtdbg-plandef-");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const model = path.join(dir, "net.onnx");
const plan = (def: string) => {
  const f = path.join(dir, `plan-${def}.json`);
  fs.writeFileSync(f, JSON.stringify({ format: "trt-debug/precision-plan@1", default: def, layers: [{ pattern: "conv2", precision: "fp32" }] }));
  return f;
};

describe("a precision plan's default as the run's precision", () => {
  beforeAll(() => saveModel(oldOpsetNet(13), model));

  it("compare MODEL --precision-plan P equals compare MODEL --fp16 --precision-plan P, row for row", async () => {
    const [j1, j2] = [path.join(dir, "a.json"), path.join(dir, "b.json")];
    const r1 = await cli("compare", model, "--precision-plan", plan("fp16"), "--json", j1, "-q");
    const r2 = await cli("compare", model, "--fp16", "--precision-plan", plan("fp16"), "--json", j2, "-q");
    expect(r1.code, r1.stderr).toBe(r2.code);
    const rows = (f: string) => (JSON.parse(fs.readFileSync(f, "utf8")).layers as { tensor: string; precision: string; metrics: { rel_l2: number } }[]).map((r) => [r.tensor, r.precision, r.metrics.rel_l2]);
    expect(rows(j1)).toEqual(rows(j2));
    expect(rows(j1).find((r) => r[0] === "conv2_out")?.[1]).toBe("fp32");
    expect(rows(j1).some((r) => r[1] === "fp16" && (r[2] as number) > 0)).toBe(true);
  });

  it("run and validate label the run by the plan's default", async () => {
    const r = await cli("run", model, "--precision-plan", plan("bf16"));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^bf16: 1 tensors captured/m);
    const v = await cli("validate", model, "--precision-plan", plan("fp16"));
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain("PASSED: no NaN/Inf in 10 tensors (fp16)");
  });

  it("a plan whose default is fp32 still needs the candidate precision", async () => {
    expectUserError(await cli("compare", model, "--precision-plan", plan("fp32")), "give the candidate precision");
  });
});
