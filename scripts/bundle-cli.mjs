/**
 * `npm run build`, second step: the CLI as one file, dist/cli/main.bundle.cjs (esbuild), so a
 * `trt-debug` process loads one file instead of ~380 (the compiled modules, apache-arrow's 146,
 * yargs and protobuf's): module loading was half of a small model's `run` on the 16-core host
 * (docs/performance.md "Start-up"). bin/trt-debug.js uses the bundle only when it is at least as
 * new as dist/cli/main.js (a later `tsc` alone makes it stale, and the modules are used).
 * onnxruntime-node (native), sharp, pngjs and execa stay outside: the first is a native addon,
 * the others are loaded on demand. The library (dist/index.js) is not bundled.
 *
 * The bundle is CommonJS (a function body for vm.Script, strict mode kept; import.meta.url and
 * import() become parameters) so that bin/load-bundle.js can hand V8 its code cache,
 * dist/cli/main.bundle.cjs.cache. The cache is written here by one warm-up run of the bundled
 * golden model (`run --fp16 --mark-all --save-outputs` into a temporary folder), so it holds the
 * functions a capture compiles too. A failed warm-up leaves no cache (a warning): the bundle then
 * compiles from its text, as a stale or refused cache does.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/** Bundle ROOT/dist/cli/main.js into ROOT/dist/cli/main.bundle.cjs and write its code cache. */
export async function bundleCli(root) {
  const out = path.join(root, "dist/cli/main.bundle.cjs");
  fs.rmSync(`${out}.cache`, { force: true });
  fs.rmSync(path.join(root, "dist/cli/main.bundle.mjs"), { force: true }); // the ES module bundle of before
  await build({
    entryPoints: [path.join(root, "dist/cli/main.js")],
    outfile: out,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    // same folder depth as dist/numeric/native.js and dist/cli/main.js: their import.meta.url paths hold
    define: { "import.meta.url": "__trtImportMetaUrl" },
    supported: { "dynamic-import": true }, // import("sharp") etc. stay calls; renamed below
    external: ["onnxruntime-node", "sharp", "pngjs", "execa"],
    logLevel: "warning",
    legalComments: "none",
  });
  // Dynamic imports (sharp, pngjs, execa, --data-loader scripts) go through __trtImport, a
  // parameter bin/load-bundle.js binds to its own import(): V8 loses vm.Script's import callback
  // for functions restored from the code cache ("A dynamic import callback was not specified").
  const text = fs.readFileSync(out, "utf8");
  const renamed = text.replace(/(?<![\w$.])import\(/g, "__trtImport(");
  if (/(?<![\w$.])import\(/.test(renamed) || !renamed.includes("__trtImport(")) throw new Error("bundle-cli: dynamic imports not renamed");
  fs.writeFileSync(out, renamed);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-codecache-"));
  try {
    const r = spawnSync(process.execPath, [path.join(root, "bin/trt-debug.js"), "run", path.join(root, "golden/layernorm_overflow.onnx"), "--fp16", "--mark-all", "--save-outputs", path.join(tmp, "d")], {
      env: { ...process.env, TRT_DEBUG_WRITE_CODE_CACHE: "1" },
      encoding: "utf8",
    });
    if (r.status !== 0 || !fs.existsSync(`${out}.cache`)) process.emitWarning(`bundle-cli: no code cache written (warm-up exit ${r.status}): ${(r.stderr ?? "").split("\n")[0]}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await bundleCli(path.resolve(path.dirname(fileURLToPath(import.meta.url)), ".."));
}
