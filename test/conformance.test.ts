/**
 * Conformance over the ONNX backend test data (Debian's libonnx-testdata): every model's
 * expected outputs are matched by an FP32 run, or the model is reported unsupported with a
 * clear one-line reason; its FP16 rewrite still loads and runs.
 */
import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { KNOWN_ORT_DIVERGENCES, ONNX_TESTDATA_DIRS, runConformance, type ConformanceSummary } from "./support/conformance.js";

const root = ONNX_TESTDATA_DIRS.find((d) => fs.existsSync(d));

describe("ONNX backend test data conformance", () => {
  if (!root) {
    const msg = "libonnx-testdata is NOT installed: the conformance suite cannot run (apt-get install -y libonnx-testdata)";
    console.error(`\n!!! ${msg} !!!\n`);
    it("has the test data (required under CI=true)", () => {
      if (process.env.CI === "true" || process.env.CI === "1") throw new Error(msg);
    });
    return;
  }

  let s: ConformanceSummary;
  it("runs every model", async () => {
    s = await runConformance(root);
    console.log(`conformance: ${s.total} models: ${JSON.stringify(s.counts)}`);
    expect(s.total).toBeGreaterThan(1000);
  }, 600_000);

  it("matches the expected outputs of every supported model", () => {
    const bad = s.cases.filter((c) => c.status === "mismatch").map((c) => `${c.name}: ${c.detail}`);
    expect(bad).toEqual([]);
    expect(s.counts.pass).toBeGreaterThan(900);
  });

  it("only the documented onnxruntime divergences differ", () => {
    const diverged = s.cases.filter((c) => c.status === "known-divergence").map((c) => c.name).sort();
    expect(diverged.every((n) => n in KNOWN_ORT_DIVERGENCES)).toBe(true);
  });

  it("reports every unsupported model with a one-line reason", () => {
    for (const c of s.cases.filter((c) => c.status === "unsupported")) {
      expect(c.detail.length).toBeGreaterThan(10);
      expect(c.detail).not.toMatch(/\n/);
    }
  });

  it("loads and runs the FP16 rewrite of every model that runs in FP32 (opset >= 6)", () => {
    const bad = s.cases.filter((c) => c.status === "fp16-error").map((c) => `${c.name}: ${c.detail}`);
    expect(bad).toEqual([]);
  });
});
