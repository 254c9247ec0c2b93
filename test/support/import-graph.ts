/**
 * The import graph of src/ and the layer rule of docs/architecture.md, checked by
 * test/architecture.test.ts (no dependency: a regex over each file's import specifiers).
 *
 * Layers, lowest first. A module may import modules of its own folder and of folders of a
 * LOWER layer only; folders of the same layer do not import each other. Root files of src/
 * (only index.ts, the public API) sit with cli/ at the top.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export const LAYERS: readonly (readonly string[])[] = [
  ["core"],
  ["numeric"],
  ["io"],
  ["onnx"],
  ["data", "precision"],
  ["runtime"],
  ["compare"],
  ["calibration", "search", "report"],
  ["workflows"],
  ["cli", "index.ts"],
];

/** Folder (or root file) → layer index; undefined for a folder the rule does not know. */
export function layerOf(unit: string): number | undefined {
  const i = LAYERS.findIndex((l) => l.includes(unit));
  return i < 0 ? undefined : i;
}

/** `src/a/b.ts` → `a`; `src/index.ts` → `index.ts`. */
export function unitOf(file: string): string {
  return file.split("/")[1]!;
}

/** Every .ts file under `dir` (relative paths with "/"), sorted. */
export function sourceFiles(root: string, dir = "src"): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(path.join(root, d), { withFileTypes: true })) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (p.endsWith(".ts")) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g;

/** Relative imports of `text` (static, re-exports, dynamic and `import("...").T` types) resolved to src paths. */
export function importsOf(file: string, text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(SPECIFIER)) {
    out.add(path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!)).replace(/\.js$/, ".ts"));
  }
  return [...out].sort();
}

export type Graph = Map<string, string[]>;

export function importGraph(root: string): Graph {
  const g: Graph = new Map();
  for (const f of sourceFiles(root)) g.set(f, importsOf(f, fs.readFileSync(path.join(root, f), "utf8")));
  return g;
}

/** Strongly connected components of more than one file (or a file importing itself): the cycles. */
export function cycles(g: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (g.get(v) ?? []).includes(v)) out.push(c.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** Imports that break the layer rule, as "from -> to (why)" lines; also unresolved imports and unknown folders. */
export function layerViolations(g: Graph): string[] {
  const bad: string[] = [];
  for (const [from, deps] of g) {
    const a = unitOf(from);
    const la = layerOf(a);
    if (la === undefined) {
      bad.push(`${from}: folder '${a}' is in no layer of docs/architecture.md`);
      continue;
    }
    for (const to of deps) {
      if (!g.has(to)) {
        bad.push(`${from} -> ${to} (no such file in src/)`);
        continue;
      }
      const b = unitOf(to);
      if (a === b) continue;
      const lb = layerOf(b);
      if (lb === undefined) continue; // reported for its own files
      if (lb >= la) bad.push(`${from} -> ${to} (${a} is layer ${la}, ${b} is layer ${lb}: ${lb === la ? "same layer" : "upward"})`);
    }
  }
  return bad.sort();
}
