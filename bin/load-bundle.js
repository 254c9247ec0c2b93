// Loads the one-file CLI (dist/cli/main.bundle.cjs, scripts/bundle-cli.mjs) with V8's code cache.
//
// Node 20 keeps no compiled code between processes for ES modules (no NODE_COMPILE_CACHE), and
// compiling the 1.7 MB bundle plus the functions a command calls was ~40 ms of CPU in every
// process. The bundle is therefore built as a CommonJS function body and run through
// vm.Script, which takes V8's cached data: dist/cli/main.bundle.cjs.cache, written at build
// time by a warm-up run (TRT_DEBUG_WRITE_CODE_CACHE=1, see scripts/bundle-cli.mjs), so it
// holds the functions a capture uses as well as the top level.
//
// The cache file starts with a header line "trt-debug-code-cache <sha256 of the bundle's text>
// <node version> <arch>\n". A cache whose header does not match the bundle beside it is not
// handed to V8 ("stale": V8's own check covers only the source's length and its version and
// flags); one V8 refuses ("rejected") costs nothing but the compile it would have saved. Either
// way the bundle runs, compiled from its text.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as vm from "node:vm";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const MAGIC = "trt-debug-code-cache";

function header(source) {
  return `${MAGIC} ${crypto.createHash("sha256").update(source).digest("hex")} ${process.version} ${process.arch}\n`;
}

/** The V8 cached data in CACHEFILE if its header names SOURCE and this node; else why not. */
function readCache(cacheFile, source) {
  let buf;
  try {
    buf = fs.readFileSync(cacheFile);
  } catch {
    return { state: "none" };
  }
  const want = Buffer.from(header(source));
  if (buf.length <= want.length || !buf.subarray(0, want.length).equals(want)) return { state: "stale" };
  return { state: "used", data: buf.subarray(want.length) };
}

/**
 * Run the CommonJS bundle FILE and return its exports and what became of its code cache:
 * "used", "rejected" (V8 refused it), "stale" (made for other text or another node), "none".
 * With `writeCache`, the cache is (re)written when the process exits (build time only).
 */
export function loadBundle(file, { writeCache = false } = {}) {
  const source = fs.readFileSync(file, "utf8");
  const cacheFile = `${file}.cache`;
  const cached = readCache(cacheFile, source);
  // The bundle was ES modules: keep strict mode. import.meta.url and import() are parameters
  // (scripts/bundle-cli.mjs): a function restored from V8's code cache has no vm import callback.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname, __trtImportMetaUrl, __trtImport) {"use strict";${source}\n})`, {
    filename: file,
    cachedData: cached.data,
  });
  const state = cached.data && script.cachedDataRejected ? "rejected" : cached.state;
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file), pathToFileURL(file).href, (specifier) => import(specifier));
  if (writeCache) {
    process.once("exit", () => {
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, Buffer.concat([Buffer.from(header(source)), script.createCachedData()]));
      fs.renameSync(tmp, cacheFile);
    });
  }
  return { exports: module.exports, cache: state };
}
