#!/usr/bin/env node
// Builds the optional native numeric addon (native/ -> native/build/Release/trt_debug_native.node).
//
// Runs as the package's `install` script. It must never fail the install: without the addon
// trt-debug uses its TypeScript kernels (slower, same results). On failure it prints one line
// and exits 0; the full compiler output is kept in native/build/build-native.log.
//
// Environment: TRT_DEBUG_SKIP_NATIVE=1 skips the build; TRT_DEBUG_NATIVE_VERBOSE=1 shows the
// compiler output; TRT_DEBUG_NATIVE_STRICT=1 exits 1 on failure (CI jobs that need the addon).
"use strict";

const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const nativeDir = path.join(root, "native");
const logFile = path.join(nativeDir, "build", "build-native.log"); // native/build/ is git-ignored
const verbose = process.env.TRT_DEBUG_NATIVE_VERBOSE === "1";
const strict = process.env.TRT_DEBUG_NATIVE_STRICT === "1";

function notice(msg) {
  process.stderr.write(`trt-debug: ${msg}\n`);
}

function giveUp(reason) {
  notice(`native numeric addon not built (${reason}); using the TypeScript kernels. Log: ${path.relative(process.cwd(), logFile) || logFile}`);
  process.exit(strict ? 1 : 0);
}

function findNodeGyp() {
  const candidates = [];
  // npm exports the path of its bundled node-gyp to lifecycle scripts
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  try {
    candidates.push(require.resolve("node-gyp/bin/node-gyp.js", { paths: [root] }));
  } catch {
    /* not a dependency */
  }
  const prefix = path.resolve(path.dirname(process.execPath), "..");
  candidates.push(
    path.join(prefix, "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
    path.join(path.dirname(process.execPath), "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  );
  if (process.env.npm_execpath) {
    candidates.push(path.join(path.dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  }
  return candidates.find((c) => c && fs.existsSync(c));
}

function main() {
  if (process.env.TRT_DEBUG_SKIP_NATIVE === "1") {
    notice("TRT_DEBUG_SKIP_NATIVE=1: native numeric addon not built");
    return;
  }
  if (!fs.existsSync(path.join(nativeDir, "binding.gyp"))) giveUp("native/binding.gyp missing");
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) giveUp("node-gyp not found");

  const args = [nodeGyp, "rebuild", "--release"];
  // Build against the headers of the running node when npm did not say where they are, so
  // that node-gyp does not try to download them (offline machines).
  if (!process.env.npm_config_nodedir) {
    const prefix = path.resolve(path.dirname(process.execPath), "..");
    if (fs.existsSync(path.join(prefix, "include", "node", "node_api.h"))) args.push(`--nodedir=${prefix}`);
  }
  const res = spawnSync(process.execPath, args, {
    cwd: nativeDir,
    encoding: "utf8",
    stdio: verbose ? "inherit" : "pipe",
    env: process.env,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (!verbose) {
    try {
      fs.mkdirSync(path.dirname(logFile), { recursive: true });
      fs.writeFileSync(logFile, `$ node ${args.join(" ")}\n${res.stdout ?? ""}${res.stderr ?? ""}`);
    } catch {
      /* read-only tree: no log */
    }
  }
  if (res.error) giveUp(res.error.message);
  if (res.status !== 0) giveUp(`node-gyp exited with ${res.status ?? res.signal}`);
  const out = path.join(nativeDir, "build", "Release", "trt_debug_native.node");
  if (!fs.existsSync(out)) giveUp("build produced no trt_debug_native.node");
  // smoke test: the addon loads and reports its kernels
  try {
    const addon = require(out);
    const info = addon.info();
    notice(`native numeric addon built (${info.simd}, ${info.threads} threads)`);
  } catch (e) {
    giveUp(`built addon does not load: ${e && e.message ? e.message.split("\n")[0] : e}`);
  }
}

try {
  main();
} catch (e) {
  giveUp(e && e.message ? e.message.split("\n")[0] : String(e));
}
