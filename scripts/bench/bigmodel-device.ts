/**
 * The bigmodel section (bigmodel.ts) as a stand-alone script, for scripts/bench/device.sh:
 * device-carry.sh bundles it with esbuild into scripts/bench/bigmodel-device.mjs (the device has
 * no TypeScript tooling). Prints the section's lines.
 *   node scripts/bench/bigmodel-device.mjs [K N MATMULS]
 */
import { benchBigModel } from "./bigmodel.js";

const [k, n, matmuls] = process.argv.slice(2).map(Number);
const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(3));
for (const l of await benchBigModel({ k: k || undefined, n: n || undefined, matmuls: matmuls || undefined })) {
  console.log(`${l.name}: ${fmt(l.value)} ${l.unit}${l.note ? ` (${l.note})` : ""}`);
}
