// The layer rule of docs/architecture.md, enforced: no import cycle in src/, no import
// upward (or sideways within a layer) across the documented layers, core/ a leaf.
import { describe, expect, it } from "vitest";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { cycles, importGraph, importsOf, layerViolations, LAYERS, type Graph } from "./support/import-graph.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const g = importGraph(root);

describe("src/ architecture", () => {
  it("reads the whole tree", () => {
    expect(g.size).toBeGreaterThan(60);
    expect(g.has("src/index.ts")).toBe(true);
    expect(g.get("src/cli/main.ts")).toContain("src/cli/shell.ts");
  });

  it("has no import cycle", () => {
    expect(cycles(g)).toEqual([]);
  });

  it("imports only downward across the layers", () => {
    expect(layerViolations(g)).toEqual([]);
  });

  it("core/ imports nothing else in src/", () => {
    const out = [...g].filter(([f]) => f.startsWith("src/core/")).flatMap(([f, d]) => d.filter((t) => !t.startsWith("src/core/")).map((t) => `${f} -> ${t}`));
    expect(out).toEqual([]);
  });

  it("every folder of src/ is in a layer", () => {
    const units = new Set([...g.keys()].map((f) => f.split("/")[1]!));
    expect([...units].filter((u) => !LAYERS.some((l) => l.includes(u)))).toEqual([]);
  });

  it("the checker catches an upward import, a same-layer import and a cycle", () => {
    const fake: Graph = new Map([
      ["src/core/errors.ts", ["src/numeric/index.ts"]],
      ["src/numeric/index.ts", ["src/core/errors.ts"]],
      ["src/search/a.ts", ["src/report/table.ts"]],
      ["src/report/table.ts", []],
    ]);
    expect(cycles(fake)).toEqual([["src/core/errors.ts", "src/numeric/index.ts"]]);
    const v = layerViolations(fake);
    expect(v).toHaveLength(2);
    expect(v[0]).toMatch(/^src\/core\/errors\.ts -> src\/numeric\/index\.ts .*upward/);
    expect(v[1]).toMatch(/^src\/search\/a\.ts -> src\/report\/table\.ts .*same layer/);
  });

  it("parses every import form", () => {
    const text = [
      'import { a } from "../core/errors.js";',
      'import type { B } from "./b.js";',
      'export { c } from "../numeric/index.js";',
      'import "./side.js";',
      'const m = await import("../io/npy.js");',
      'let t: import("./layer-model.js").X;',
      'import x from "onnx-buf";',
    ].join("\n");
    expect(importsOf("src/onnx/model.ts", text)).toEqual(["src/core/errors.ts", "src/io/npy.ts", "src/numeric/index.ts", "src/onnx/b.ts", "src/onnx/layer-model.ts", "src/onnx/side.ts"]);
  });
});
