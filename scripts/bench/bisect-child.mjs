/**
 * One `bisect` CLI run in a fresh process, for the bench (peak RSS belongs to that run alone).
 * Usage: node scripts/bench/bisect-child.mjs <bisect CLI arguments...> (after `npm run build`;
 * plain JavaScript over the compiled CLI, dist/cli/main.js)
 * Prints one JSON line: { code, ms, maxRssMB }.
 */
import { runCli } from "../../dist/cli/main.js";

const t0 = performance.now();
const code = await runCli(["bisect", ...process.argv.slice(2)], { out: () => {}, err: (s) => process.stderr.write(s + "\n"), isTTY: false });
const ms = performance.now() - t0;
process.stdout.write(JSON.stringify({ code, ms, maxRssMB: process.resourceUsage().maxRSS / 1024 }) + "\n");
process.exit(0);
