// The native addon tunes glibc malloc once at load (native/src/malloc_tune.cc,
// docs/performance.md "malloc"): on by default on glibc, off with TRT_DEBUG_NO_MALLOPT=1 or
// when the user tunes malloc through the environment. Each case is a fresh process (the
// settings are process-wide and made once).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { addonPath } from "../src/numeric/native.js";

function mallocState(extra: Record<string, string>): string {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("MALLOC_") && k !== "GLIBC_TUNABLES" && k !== "TRT_DEBUG_NO_MALLOPT") env[k] = v;
  const r = spawnSync(process.execPath, ["-e", `process.stdout.write(require(${JSON.stringify(addonPath())}).info().malloc)`], { env: { ...env, ...extra }, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

describe("malloc tuning at addon load", () => {
  it("applies on glibc, and stays off when asked or when the environment tunes malloc", () => {
    expect(fs.existsSync(addonPath()), "the native addon is built (npm install)").toBe(true);
    const glibc = process.platform === "linux" && typeof (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime === "string";
    expect(mallocState({})).toBe(glibc ? "glibc" : "off (not glibc)");
    expect(mallocState({ TRT_DEBUG_NO_MALLOPT: "1" })).toBe(glibc ? "off (TRT_DEBUG_NO_MALLOPT)" : "off (not glibc)");
    expect(mallocState({ TRT_DEBUG_NO_MALLOPT: "0" })).toBe(glibc ? "glibc" : "off (not glibc)");
    if (glibc) {
      expect(mallocState({ MALLOC_ARENA_MAX: "2" })).toBe("off (malloc tuned by the environment)");
      expect(mallocState({ GLIBC_TUNABLES: "glibc.malloc.trim_threshold=1000000" })).toBe("off (malloc tuned by the environment)");
    }
  });
});
