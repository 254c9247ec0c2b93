// The one-file CLI (scripts/bundle-cli.mjs, `npm run build`): bin/trt-debug.js runs it when it is
// as new as dist/cli/main.js, else the compiled modules; both give the same dump, byte for byte.
// bin/load-bundle.js hands V8 the bundle's code cache only when the cache was made for its text.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { GOLDEN, ROOT, tmpDir } from "./helpers.js";

// A private copy of the package (bin/, dist/, package.json; node_modules and native/ linked), so
// that swapping its bundle cannot disturb other test files running the real CLI meanwhile.
const pkg = tmpDir("trtdbg-bundle-pkg-");
const BUNDLE = path.join(pkg, "dist/cli/main.bundle.cjs");
const CACHE = `${BUNDLE}.cache`;
const MAIN = path.join(pkg, "dist/cli/main.js");
const dir = tmpDir("trtdbg-bundle-");
const model = path.join(GOLDEN, "layernorm_overflow.onnx");

const sha = (f: string) => crypto.createHash("sha256").update(fs.readFileSync(f)).digest("hex");
const trt = (...args: string[]) => execa("node", [path.join(pkg, "bin/trt-debug.js"), ...args], { reject: false, env: { TRT_DEBUG_QUIET_NUMERIC: "1" } });

describe("bin/trt-debug.js and the bundled CLI", () => {
  beforeAll(async () => {
    for (const d of ["bin", "dist"]) fs.cpSync(path.join(ROOT, d), path.join(pkg, d), { recursive: true, filter: (f) => !f.endsWith(".map") && !f.endsWith(".d.ts") });
    fs.copyFileSync(path.join(ROOT, "package.json"), path.join(pkg, "package.json"));
    for (const d of ["node_modules", "native"]) fs.symlinkSync(path.join(ROOT, d), path.join(pkg, d));
    // Building it is `npm run build`'s second step (scripts/bundle-cli.mjs); the same build here, into the copy.
    const { bundleCli } = (await import(path.join(ROOT, "scripts/bundle-cli.mjs"))) as { bundleCli(root: string): Promise<void> };
    await bundleCli(pkg);
  });

  it("the bundle and the modules write byte-identical dumps; a stale bundle is not used", async () => {
    expect(fs.statSync(BUNDLE).mtimeMs).toBeGreaterThanOrEqual(fs.statSync(MAIN).mtimeMs);
    const a = await trt("run", model, "--fp16", "--mark-all", "--save-outputs", path.join(dir, "bundle"));
    expect(a.exitCode, String(a.stderr)).toBe(0);
    // Make the bundle older than the modules: bin must fall back to them. A bundle that throws
    // on load proves it was not loaded.
    const saved = fs.readFileSync(BUNDLE);
    try {
      fs.writeFileSync(BUNDLE, 'throw new Error("stale bundle loaded");\n');
      const old = fs.statSync(MAIN).mtimeMs / 1000 - 60;
      fs.utimesSync(BUNDLE, old, old);
      const b = await trt("run", model, "--fp16", "--mark-all", "--save-outputs", path.join(dir, "modules"));
      expect(b.exitCode, String(b.stderr)).toBe(0);
      expect(b.stdout).toBe(a.stdout.split(path.join(dir, "bundle")).join(path.join(dir, "modules")));
    } finally {
      fs.writeFileSync(BUNDLE, saved);
    }
    expect(sha(path.join(dir, "bundle", "fp16.arrow"))).toBe(sha(path.join(dir, "modules", "fp16.arrow")));
    // and a fresh bundle is the one loaded: the throwing stand-in, made fresh, fails the run
    const saved2 = fs.readFileSync(BUNDLE);
    try {
      fs.writeFileSync(BUNDLE, 'throw new Error("fresh bundle loaded");\n');
      const c = await trt("--version");
      expect(c.exitCode).not.toBe(0);
      expect(String(c.stderr)).toContain("fresh bundle loaded");
    } finally {
      fs.writeFileSync(BUNDLE, saved2);
    }
  });
});

describe("the bundle's V8 code cache (bin/load-bundle.js)", () => {
  type Loaded = { exports: { main?: unknown }; cache: string };
  const load = async (file: string): Promise<Loaded> => ((await import(path.join(ROOT, "bin/load-bundle.js"))) as { loadBundle(f: string): Loaded }).loadBundle(file);
  // beside the built one in the private package (its node_modules resolve from there)
  const bundle = path.join(pkg, "dist/cli/copy.bundle.cjs");

  it("the build writes a cache that V8 takes; another text, a damaged cache or none still loads, without it", async () => {
    const src = BUNDLE;
    fs.copyFileSync(src, bundle);
    fs.copyFileSync(`${src}.cache`, `${bundle}.cache`);
    const used = await load(bundle);
    expect(used.cache).toBe("used");
    expect(typeof used.exports.main).toBe("function");
    // one byte of the text changed (same length: V8's own check would accept the cache)
    const text = fs.readFileSync(src, "utf8");
    fs.writeFileSync(bundle, text.replace('"use strict";', "'use strict';"));
    expect(fs.statSync(bundle).size).toBe(fs.statSync(src).size);
    const stale = await load(bundle);
    expect(stale.cache).toBe("stale");
    expect(typeof stale.exports.main).toBe("function");
    // right header, damaged data: V8 refuses it and compiles
    fs.copyFileSync(src, bundle);
    const c = fs.readFileSync(`${src}.cache`);
    const nl = c.indexOf(10) + 1;
    c.fill(7, nl + 16, nl + 4096);
    fs.writeFileSync(`${bundle}.cache`, c);
    const bad = await load(bundle);
    expect(bad.cache).toBe("rejected");
    expect(typeof bad.exports.main).toBe("function");
    fs.rmSync(`${bundle}.cache`);
    expect((await load(bundle)).cache).toBe("none");
  });

  it("a bundle run with a stale cache writes the same dump", async () => {
    fs.writeFileSync(CACHE, Buffer.concat([Buffer.from("trt-debug-code-cache 0000 v0 x64\n"), Buffer.alloc(64)]));
    const r = await trt("run", model, "--fp16", "--mark-all", "--save-outputs", path.join(dir, "stale-cache"));
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(sha(path.join(dir, "stale-cache", "fp16.arrow"))).toBe(sha(path.join(dir, "bundle", "fp16.arrow")));
  });
});
