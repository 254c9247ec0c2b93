/**
 * `convert --bf16` / `convert --int8` of opset 9-12 models (real exports such as PP-OCR's are
 * opset 9 and 11): the model is upgraded to opset 13 as the emulation does, instead of refusing
 * (src/workflows/export-opset.ts; docs/cli.md "convert").
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveModel } from "./support/graph-builder.js";
import { oldOpsetNet } from "../scripts/models/old-opset.js";
import { loadModel } from "../src/onnx/model.js";
import { dumpBits } from "./support/dump-bits.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

const dir = tmpDir("trtdbg-convold-");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const m = (o: number, tag = "") => path.join(dir, `net${o}${tag}.onnx`);
const cache = path.join(dir, "net9.cache");

/** Every tensor of the one Arrow dump under `folder`, as hex of its float32 bits. */
async function folderBits(folder: string): Promise<Map<string, string>> {
  const files = fs.readdirSync(folder).filter((f) => f.endsWith(".arrow"));
  expect(files).toHaveLength(1);
  return dumpBits(path.join(folder, files[0]!));
}

/** Run a written model as it is (typed or Q/DQ) and dump every layer. */
async function runAsIs(file: string, tag: string): Promise<Map<string, string>> {
  const out = path.join(dir, `dump-${tag}`);
  const r = await cli("run", file, "--mark-all", "--save-outputs", out, "-q");
  expect(r.code, r.stderr).toBe(0);
  return folderBits(out);
}

describe("convert of an opset 9/11 model", () => {
  beforeAll(async () => {
    for (const o of [9, 11, 13] as const) saveModel(oldOpsetNet(o), m(o));
    saveModel(oldOpsetNet(9, { dynamicScales: true }), m(9, "dyn"));
    saveModel(oldOpsetNet(9, { softmaxAxis1: true }), m(9, "ax1"));
    const r = await cli("calib", "build", m(9), "-o", cache, "--calib-batches", "3", "-q");
    expect(r.code, r.stderr).toBe(0);
  });

  it("--bf16 writes an opset 13 model whose every tensor equals the opset 13 original's conversion bit for bit", async () => {
    const dumps: Map<string, string>[] = [];
    for (const o of [9, 11, 13]) {
      const out = path.join(dir, `bf16-${o}.onnx`);
      const json = path.join(dir, `bf16-${o}.json`);
      const r = await cli("convert", m(o), "--bf16", "-o", out, "--json", json);
      expect(r.code, r.stderr).toBe(0);
      const res = JSON.parse(fs.readFileSync(json, "utf8"));
      expect(res.upgraded_from_opset).toBe(o === 13 ? null : o);
      if (o !== 13) expect(r.stdout).toContain(`net${o}.onnx has opset ${o}; the model is written at opset 13`);
      else expect(r.stdout).not.toContain("written at opset 13");
      expect(loadModel(out).opset).toBe(13);
      dumps.push(await runAsIs(out, `bf16-${o}`));
    }
    expect(dumps[2]!.size).toBeGreaterThanOrEqual(10);
    expect([...dumps[0]!.keys()].sort()).toEqual([...dumps[2]!.keys()].sort());
    for (const [t, v] of dumps[2]!) {
      expect(dumps[0]!.get(t), `opset 9 ${t}`).toBe(v);
      expect(dumps[1]!.get(t), `opset 11 ${t}`).toBe(v);
    }
  });

  it("compare REFERENCE(opset 9) CANDIDATE(converted) gives the emulation's rows (compare --bf16) exactly", async () => {
    const out = path.join(dir, "bf16-9.onnx");
    const [j1, j2] = [path.join(dir, "cmp-graphs.json"), path.join(dir, "cmp-emu.json")];
    expect((await cli("compare", m(9), out, "--json", j1, "-q")).code).toBeLessThan(2);
    expect((await cli("compare", m(9), "--bf16", "--json", j2, "-q")).code).toBeLessThan(2);
    const rows = (f: string) => new Map((JSON.parse(fs.readFileSync(f, "utf8")).layers as { tensor: string; metrics: { rel_l2: number } }[]).map((r) => [r.tensor, r.metrics.rel_l2]));
    const [a, b] = [rows(j1), rows(j2)];
    expect(a.size).toBe(b.size);
    for (const [t, v] of b) expect(a.get(t), t).toBe(v);
    expect([...b.values()].some((v) => v > 0)).toBe(true); // bf16 rounding really happened
  });

  it("--int8 writes an opset 13 Q/DQ model equal to the opset 13 original's bit for bit", async () => {
    const dumps: Map<string, string>[] = [];
    for (const o of [9, 13]) {
      const out = path.join(dir, `int8-${o}.onnx`);
      const r = await cli("convert", m(o), "--int8", "--calibration-cache", cache, "-o", out);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/converted [1-9]\d*\/10 layers to int8 \(Q\/DQ\)/);
      expect(loadModel(out).opset).toBe(13);
      expect(loadModel(out).proto.graph!.node.some((n) => n.opType === "DequantizeLinear")).toBe(true);
      dumps.push(await runAsIs(out, `int8-${o}`));
    }
    expect([...dumps[0]!.keys()].sort()).toEqual([...dumps[1]!.keys()].sort());
    for (const [t, v] of dumps[1]!) expect(dumps[0]!.get(t), t).toBe(v);
  });

  it("bisect --bf16 --save-onnx on an opset 9 model writes the plan at opset 13 (it used to fail after the search)", async () => {
    const out = path.join(dir, "bisect-bf16.onnx");
    const r = await cli("bisect", m(9), "--bf16", "--max-rel-l2", "0.001", "--save-onnx", out, "--no-checkpoint");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*bisect-bf16\.onnx: strongly typed, [1-9]\d* layer\(s\) in fp32, re-verified as typed/);
    expect(loadModel(out).opset).toBe(13);
  });

  it("Softmax on a non-last axis: the adapter's helper tensors are listed as candidate-only, the rest compares", async () => {
    const out = path.join(dir, "ax1-bf16.onnx");
    expect((await cli("convert", m(9, "ax1"), "--bf16", "-o", out, "-q")).code).toBe(0);
    const r = await cli("compare", m(9, "ax1"), out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/unmatched, candidate only \(2\): y::flat, y::2d/);
  });

  it("a node without an upgrade path: one line naming it, nothing written", async () => {
    const out = path.join(dir, "never.onnx");
    expectUserError(await cli("convert", m(9, "dyn"), "--bf16", "-o", out), "net9dyn.onnx: bf16 Casts need opset 13 but the model has opset 9 and node 'up' (Upsample) has no upgrade path", "re-export the model at opset >= 13");
    expect(fs.existsSync(out)).toBe(false);
    expect((await cli("convert", m(9, "dyn"), "--fp16", "-o", out, "-q")).code).toBe(0); // fp16 Casts exist at opset 9: no upgrade
    expect(loadModel(out).opset).toBe(9);
  });
});
