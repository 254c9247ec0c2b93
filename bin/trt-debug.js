#!/usr/bin/env node
import("../dist/cli/main.js").then((m) => m.main(process.argv.slice(2))).catch((e) => {
  if (e && e.code === "ERR_MODULE_NOT_FOUND" && String(e.message).includes("dist/cli/main.js")) {
    console.error("trt-debug: the TypeScript build is missing (dist/); run `npm run build` in the package directory");
    process.exit(2);
  }
  throw e;
});
