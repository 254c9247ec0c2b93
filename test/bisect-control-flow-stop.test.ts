/**
 * bisect's "this is FP32, not a plan" stop when the layers it would pin include an If/Loop/Scan
 * (silero_vad: the whole LSTM is one If whose body overflows fp16): the line names the
 * control-flow layer instead of only blaming the criterion.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveModel } from "./support/graph-builder.js";
import { ifOverflow } from "../scripts/models/control-flow.js";
import { cli, tmpDir } from "./helpers.js";

const dir = tmpDir("trtdbg-cfstop-");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, "if_overflow.onnx");

describe("bisect stops on a control-flow layer", () => {
  beforeAll(() => saveModel(ifOverflow().model, file));

  it("names the If whose body is pinned whole", async () => {
    const r = await cli("bisect", file, "--fp16", "--max-pinned", "0.2", "--no-checkpoint");
    expect(r.code, r.stderr).toBe(1);
    const line = r.stdout.split("\n").find((l) => l.startsWith("STOPPED:"))!;
    expect(line).toMatch(/^STOPPED: this is FP32, not a plan: more than 1 of 4 searchable layers \(25%\) would be pinned in fp32 \(more than --max-pinned 0\.2\); vad_if \(If\) is a control-flow layer, pinned with its whole body \(compare names the first failing node inside a body\); otherwise your criterion or inputs are too strict: /);
    // and compare does name the body node
    const c = await cli("compare", file, "--fp16");
    expect(c.stdout).toMatch(/first failing layer: vad_if .*inside then_branch: body_\w+ \(\w+\) is the first body node that fails/);
  });
});
