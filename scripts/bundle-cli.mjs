/**
 * `npm run build`, second step: the CLI as one ES module, dist/cli/main.bundle.mjs (esbuild), so
 * a `trt-debug` process loads one file instead of ~380 (the compiled modules, apache-arrow's
 * 146, yargs and protobuf's): module loading was half of a small model's `run` on the 16-core
 * host (docs/performance.md "Start-up"). bin/trt-debug.js uses the bundle only when it is at
 * least as new as dist/cli/main.js (a later `tsc` alone makes it stale, and the modules are
 * used). onnxruntime-node (native), sharp, pngjs and execa stay outside: the first is a native
 * addon, the others are loaded on demand. The library (dist/index.js) is not bundled.
 */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/** Bundle ROOT/dist/cli/main.js into ROOT/dist/cli/main.bundle.mjs. */
export async function bundleCli(root) {
  await build({
    entryPoints: [path.join(root, "dist/cli/main.js")],
    outfile: path.join(root, "dist/cli/main.bundle.mjs"),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // same folder depth as dist/numeric/native.js and dist/cli/main.js: their import.meta.url paths hold
    external: ["onnxruntime-node", "sharp", "pngjs", "execa"],
    logLevel: "warning",
    legalComments: "none",
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await bundleCli(path.resolve(path.dirname(fileURLToPath(import.meta.url)), ".."));
}
