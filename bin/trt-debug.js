#!/usr/bin/env node
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";

// The one-file CLI (scripts/bundle-cli.mjs; bin/load-bundle.js runs it with V8's code cache) when it
// is as new as the compiled modules; else the modules.
const dist = new URL("../dist/cli/", import.meta.url);
let bundle = false;
try {
  bundle = fs.statSync(new URL("main.bundle.cjs", dist)).mtimeMs >= fs.statSync(new URL("main.js", dist)).mtimeMs;
} catch {
  /* no bundle (or no build): the modules, or the message below */
}
const load = bundle
  ? import("./load-bundle.js").then(({ loadBundle }) => loadBundle(fileURLToPath(new URL("main.bundle.cjs", dist)), { writeCache: process.env.TRT_DEBUG_WRITE_CODE_CACHE === "1" }).exports)
  : import("../dist/cli/main.js");
load.then((m) => m.main(process.argv.slice(2))).catch((e) => {
  if (e && e.code === "ERR_MODULE_NOT_FOUND" && String(e.message).includes("dist/cli/main.js")) {
    console.error("trt-debug: the TypeScript build is missing (dist/); run `npm run build` in the package directory");
    process.exit(2);
  }
  throw e;
});
