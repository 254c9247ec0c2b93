/** End to end on the bundled golden models: the planted first failing layer is named. */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { BIN, GOLDEN, cli, cliProcess, interruptWhileWriting, saveSlowMatMulChain, tmpDir } from "./helpers.js";
import { openDump } from "../src/io/dump.js";

interface Expected {
  name: string;
  firstFailingFp16: string;
  failingTensor: string;
  mechanism: string;
}

const goldens = fs
  .readdirSync(GOLDEN)
  .filter((f) => f.endsWith(".expected.json"))
  .map((f) => JSON.parse(fs.readFileSync(path.join(GOLDEN, f), "utf8")) as Expected);

describe("golden models", () => {
  it("has the four planted examples", () => {
    expect(goldens.map((g) => g.name).sort()).toEqual(["exp_overflow", "layernorm_overflow", "matmul_consumer", "underflow"]);
  });

  for (const g of goldens) {
    const model = path.join(GOLDEN, `${g.name}.onnx`);
    it(`compare --fp16 names ${g.firstFailingFp16} in ${g.name}`, async () => {
      const dir = tmpDir();
      const json = path.join(dir, "r.json");
      const r = await cli("compare", model, "--fp16", "--json", json);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`first failing layer: ${g.firstFailingFp16} `);
      expect(r.stdout).toMatch(new RegExp(g.mechanism === "underflow" ? "underflow" : "overflow|Inf"));
      const j = JSON.parse(fs.readFileSync(json, "utf8"));
      expect(j.format).toBe("trt-debug/compare@1");
      expect(j.passed).toBe(false);
      expect(j.first_failing_layer).toBe(g.firstFailingFp16);
      expect(j.first_failing_tensor).toBe(g.failingTensor);
      const first = j.layers.find((l: { passed: boolean }) => !l.passed);
      expect(first.layer).toBe(g.firstFailingFp16);
      for (const k of ["layer", "op_type", "tensor", "metrics", "passed", "reason"]) expect(first).toHaveProperty(k);
      // every layer before the culprit passes
      for (const l of j.layers) if (l.order < first.order) expect(l.passed).toBe(true);
      // FP32 against itself passes
      const same = await cli("compare", model, "--fp16", "--layer-precisions", "*:fp32", "--quiet");
      expect(same.code).toBe(0);
      expect(same.stdout).toContain("first failing layer: none");
    });

    it(`run --mark-all dumps, validate and compare the dumps for ${g.name}`, async () => {
      const dir = tmpDir();
      const r = await cli("run", model, "--fp32", "--fp16", "--mark-all", "--save-outputs", dir, "--quiet");
      expect(r.code).toBe(0);
      const files = fs.readdirSync(dir).sort();
      expect(files).toEqual(["fp16.arrow", "fp32.arrow"]);
      const d = await openDump(path.join(dir, "fp16.arrow"));
      let rows = 0, lastOrder = -1;
      for await (const row of d.rows()) {
        rows++;
        expect(row.order).toBeGreaterThanOrEqual(lastOrder);
        lastOrder = row.order;
        expect(row.precision).toBe("fp16");
      }
      await d.close();
      expect(rows).toBeGreaterThan(5);
      const v = await cli("validate", path.join(dir, "fp16.arrow"), "--json", path.join(dir, "v.json"));
      const vj = JSON.parse(fs.readFileSync(path.join(dir, "v.json"), "utf8"));
      if (g.mechanism === "underflow") {
        expect(v.code).toBe(0);
        expect(vj.first_failing_layer).toBeNull();
      } else {
        expect(v.code).toBe(1);
        expect(vj.first_failing_layer).toBe(g.firstFailingFp16);
      }
      const vm = await cli("validate", model, "--fp16", "--quiet");
      expect(vm.code).toBe(v.code);
      const c = await cli("compare", path.join(dir, "fp32.arrow"), path.join(dir, "fp16.arrow"), "--json", path.join(dir, "c.json"));
      expect(c.code).toBe(1);
      expect(JSON.parse(fs.readFileSync(path.join(dir, "c.json"), "utf8")).first_failing_layer).toBe(g.firstFailingFp16);
    });
  }

  it("Polygraphy-style tolerances: elemwise passes with generous atol, fails with the default", async () => {
    const model = path.join(GOLDEN, "underflow.onnx");
    const pass = await cli("compare", model, "--fp16", "--layer-precisions", "scale_*:fp32", "--atol", "1e-2", "--rtol", "1e-2", "--quiet");
    expect(pass.code).toBe(0);
    const fail = await cli("compare", model, "--fp16", "--layer-precisions", "scale_*:fp32", "--check-error-stat", "max", "--quiet");
    expect(fail.code).toBe(1);
    expect(fail.stdout).toMatch(/minimum tolerance that would have passed: abs [0-9.e-]+ OR rel/);
  });
});

describe("as a real process", () => {
  it("exit codes: 0 pass, 1 accuracy failure, 2 user error without a stack trace", async () => {
    const model = path.join(GOLDEN, "exp_overflow.onnx");
    expect((await cliProcess("compare", model, "--bf16", "--quiet")).code).toBe(0);
    expect((await cliProcess("compare", model, "--fp16", "--quiet")).code).toBe(1);
    const bad = await cliProcess("compare", "missing.onnx", "--fp16");
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).not.toMatch(/\bat .*\.js/);
    const v = await cliProcess("--version");
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/numeric backend: (native|typescript)/);
  });

  it("a run killed with SIGINT leaves no file under the final name and no temp file", async () => {
    const dir = tmpDir();
    const model = path.join(dir, "big.onnx");
    saveSlowMatMulChain(model, 120);
    const out = path.join(dir, "out");
    const p = execa("node", [BIN, "run", model, "--fp16", "--mark-all", "--save-outputs", out, "--segment-layers", "4"], { reject: false });
    const res = await interruptWhileWriting(p, out);
    expect(res.exitCode).toBe(130);
    expect(fs.readdirSync(out)).toEqual([]);
  });
});
