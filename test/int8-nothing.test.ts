/**
 * `compare --int8` when no layer can run in int8 with the given cache (a cache made for another
 * model): a PASS would verify nothing about int8, so it is a one-line user error (exit 2).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli, expectUserError, GOLDEN, tmpDir } from "./helpers.js";
import { compareModel, defaultCompareOptions } from "../src/index.js";
import { flagText } from "../src/cli/options.js";

describe("compare --int8 with a cache that covers no tensor of the model", () => {
  const dir = tmpDir("trtdbg-int8-none-");
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("is refused (exit 2, one line naming the model and the cache), not PASSED", async () => {
    const cache = path.join(dir, "other.cache");
    fs.writeFileSync(cache, "TRT-8601-EntropyCalibration2\nsome_other_tensor: 3c010204\n");
    const r = await cli("compare", path.join(GOLDEN, "underflow.onnx"), "--int8", "--calibration-cache", cache);
    expectUserError(r, "underflow.onnx", "no layer can run in int8", "other.cache");
    expect(r.stdout).not.toContain("PASSED");
    expect(r.stderr).toContain(`trt-debug: warning: --int8: no layer of ${path.join(GOLDEN, "underflow.onnx")} can run in int8 with ${cache}; see the fallbacks`);
  });

  it("the library's warning names the option; its parts give the CLI the flag", async () => {
    const cache = path.join(dir, "other2.cache");
    fs.writeFileSync(cache, "TRT-8601-EntropyCalibration2\nsome_other_tensor: 3c010204\n");
    const model = path.join(GOLDEN, "underflow.onnx");
    const got: [string, string | undefined][] = [];
    const run = compareModel({ model, candidate: "int8", compare: defaultCompareOptions(), int8: { calibrationCache: cache } }, { warn: (m, parts) => void got.push([m, parts && flagText(parts)]) });
    await expect(run).rejects.toThrow(/no layer can run in int8/);
    expect(got).toContainEqual([`int8: no layer of ${model} can run in int8 with ${cache}; see the fallbacks`, `--int8: no layer of ${model} can run in int8 with ${cache}; see the fallbacks`]);
  });
});
