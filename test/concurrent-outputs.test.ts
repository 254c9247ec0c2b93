/**
 * Two runs writing into the same output folder at the same time (docs/file-formats.md: unique
 * temporary names, then an atomic rename): both succeed, and every file left is a complete,
 * valid result of one of them — never a mix, never a truncated file, no temp files left.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { BIN, GOLDEN, ROOT, tmpDir } from "./helpers.js";
import { openDump } from "../src/io/dump.js";

describe("two concurrent runs into one output folder", () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir("trtdbg-concurrent-");
    if (!fs.existsSync(path.join(ROOT, "dist", "cli", "main.js"))) throw new Error("dist/ is missing: run `npx tsc -p tsconfig.json` first (npm test does)");
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("both produce valid files (dumps and JSON), each entirely one run's", async () => {
    const out = path.join(dir, "out");
    const json = path.join(dir, "result.json");
    const model = path.join(GOLDEN, "matmul_consumer.onnx");
    const run = (seed: string) =>
      execa("node", [BIN, "run", model, "--fp16", "--mark-all", "--seed", seed, "--save-outputs", out, "--json", json], { reject: false, env: { TRT_DEBUG_QUIET_NUMERIC: "1" } });
    const [a, b] = await Promise.all([run("1"), run("2")]);
    expect(a.exitCode, String(a.stderr)).not.toBe(3);
    expect(b.exitCode, String(b.stderr)).not.toBe(3);
    expect([0, 1]).toContain(a.exitCode);
    expect([0, 1]).toContain(b.exitCode);
    // no temp files left behind
    expect(fs.readdirSync(out).filter((f) => f.includes(".tmp"))).toEqual([]);
    expect(fs.readdirSync(dir).filter((f) => f.includes(".tmp"))).toEqual([]);
    // the JSON is one whole result
    const j = JSON.parse(fs.readFileSync(json, "utf8")) as { format: string; runs: { tensors: number }[] };
    expect(j.format).toMatch(/^trt-debug\/run@/);
    // the dump opens, its statistics match its values (checked when read) and it is one seed's
    const d = await openDump(path.join(out, "fp16.arrow"), "dump");
    try {
      let rows = 0;
      for await (const _ of d.rows()) rows++;
      expect(rows).toBe(j.runs[0]!.tensors);
      expect(["1", "2"]).toContain(d.meta.extra.seed);
    } finally {
      await d.close();
    }
  });
});
