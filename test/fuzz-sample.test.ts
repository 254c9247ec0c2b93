/**
 * A small fixed-seed sample of the fuzzer (scripts/fuzz.ts; `npm run fuzz -- --count N` runs
 * more): mutated models, dumps, caches and plans through the CLI. Every case must end with
 * exit 0, 1 or 2, no signal, no stack trace and no hang.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { formatReport, runFuzz } from "../scripts/fuzz.js";
import { ROOT } from "./helpers.js";

describe("fuzz sample", () => {
  it("250 mutated files (seed 1): no exit 3, signal, stack trace or hang", async () => {
    if (!fs.existsSync(path.join(ROOT, "dist", "cli", "main.js"))) throw new Error("dist/ missing: run `npm run build` first (npm test does)");
    const rep = await runFuzz({ count: 250, seed: 1, jobs: 2, timeoutMs: 60_000, log: () => undefined });
    const lines = formatReport(rep, 20);
    console.log(lines.join("\n"));
    expect(rep.count).toBe(250);
    // Every kind of file was exercised, and the mutations were not all harmless.
    expect(Object.keys(rep.byKind).sort()).toEqual(["cache", "dump", "onnx", "plan"]);
    expect(rep.exitCodes["2"] ?? 0).toBeGreaterThan(80);
    expect(rep.failures.map((f) => `${f.why}: ${f.case.how}: ${f.repro}`)).toEqual([]);
    if (!rep.failures.length) fs.rmSync(rep.out, { recursive: true, force: true });
  }, 300_000);
});
