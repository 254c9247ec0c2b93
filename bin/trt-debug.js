#!/usr/bin/env node
import * as fs from "node:fs";

// The one-file CLI (scripts/bundle-cli.mjs) when it is as new as the compiled modules; else the modules.
const dist = new URL("../dist/cli/", import.meta.url);
let entry = "../dist/cli/main.js";
try {
  if (fs.statSync(new URL("main.bundle.mjs", dist)).mtimeMs >= fs.statSync(new URL("main.js", dist)).mtimeMs) entry = "../dist/cli/main.bundle.mjs";
} catch {
  /* no bundle (or no build): the modules, or the message below */
}
import(entry).then((m) => m.main(process.argv.slice(2))).catch((e) => {
  if (e && e.code === "ERR_MODULE_NOT_FOUND" && String(e.message).includes("dist/cli/main.js")) {
    console.error("trt-debug: the TypeScript build is missing (dist/); run `npm run build` in the package directory");
    process.exit(2);
  }
  throw e;
});
