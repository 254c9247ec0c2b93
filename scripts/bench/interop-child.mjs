/**
 * One measured comparison of a Polygraphy RunResults file in a fresh process (peak RSS is
 * this job's alone). Usage: node scripts/bench/interop-child.mjs FILE.json (after `npm run build`)
 * Compares the file's first runner with its last, as `trt-debug compare FILE.json` does.
 * Prints one JSON line: { ms, maxRssMB, rows }.
 */
import { compareTensorFiles } from "../../dist/workflows/compare-files.js";
import { defaultCompareOptions } from "../../dist/compare/tolerance.js";

const [file] = process.argv.slice(2);
const t0 = performance.now();
const s = await compareTensorFiles(file, file, defaultCompareOptions(), {}, {}, false);
const ms = performance.now() - t0;
process.stdout.write(JSON.stringify({ ms, maxRssMB: process.resourceUsage().maxRSS / 1024, verdict: s.verdict }) + "\n");
