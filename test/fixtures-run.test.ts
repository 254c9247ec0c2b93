/** The loader fixtures run end to end in FP16: control flow, sequences/optionals, unnamed nodes, unsorted graphs. */
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { notTopoSorted, optionalAndSequence, unnamedNodes, withIf, withLoop } from "../scripts/models/fixtures.js";
import { saveModel } from "./support/graph-builder.js";
import { cli, tmpDir } from "./helpers.js";
import * as fs from "node:fs";

const cases = { notTopoSorted, optionalAndSequence, unnamedNodes, withIf, withLoop };

describe("loader fixtures run under fp16 with every layer captured", () => {
  for (const [name, make] of Object.entries(cases)) {
    it(name, async () => {
      const dir = tmpDir();
      const f = path.join(dir, `${name}.onnx`);
      saveModel(make().model, f);
      const j = path.join(dir, "r.json");
      const r = await cli("run", f, "--fp32", "--fp16", "--mark-all", "--segment-layers", "1", "--json", j, "--quiet");
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const res = JSON.parse(fs.readFileSync(j, "utf8"));
      expect(res.runs).toHaveLength(2);
      expect(res.runs[0].tensors).toBeGreaterThan(0);
      expect(res.runs[0].outputs.length).toBeGreaterThan(0);
      const c = await cli("compare", f, "--fp16", "--quiet");
      expect([0, 1]).toContain(c.code);
    });
  }
  it("names unnamed nodes as documented", async () => {
    const dir = tmpDir();
    const f = path.join(dir, "u.onnx");
    saveModel(unnamedNodes().model, f);
    const j = path.join(dir, "i.json");
    expect((await cli("inspect", f, "--json", j, "--quiet")).code).toBe(0);
    const names: string[] = JSON.parse(fs.readFileSync(j, "utf8")).layers.map((l: { name: string }) => l.name);
    for (const n of names) expect(n).toMatch(/^([A-Za-z]+_\d+(__\d+)?|[\w/]+)$/);
    expect(new Set(names).size).toBe(names.length);
  });
});
