/**
 * `npm run bench`: every benchmark section in turn, printed as plain lines. Speed targets are
 * ratios measured in one run (never timed assertions in tests).
 *
 *   npm run bench [-- --size-mb 64] [-- --only numeric] [-- --kernels f32ToF16,diffMetrics]
 *   npm run bench -- --only overhead   (trt-debug vs a bare onnxruntime-node process, profile)
 *
 * To add a section: append { name, run, format? } to SECTIONS.
 */
import { benchNumeric, formatNumeric } from "./numeric.js";
import { benchOverhead, benchRun } from "./run-overhead.js";
import { benchDumpWrite } from "./dump-write.js";
import { benchBisect } from "./bisect-search.js";
import { benchCalib } from "./calibration.js";
import { benchInterop } from "./interop.js";
import { benchBigModel } from "./bigmodel.js";
import type { BenchLine } from "./bench-line.js";

interface Section {
  name: string;
  run(args: BenchArgs): Promise<BenchLine[]>;
  /** Optional custom rendering; default: one `name: value unit (note)` line per BenchLine. */
  format?(lines: readonly BenchLine[]): string[];
}

interface BenchArgs {
  sizeMB?: number;
  /** numeric: only kernels whose name starts with one of these */
  kernels?: string[];
  /** bigmodel: the generated model's shape (default 16384 x 12288, four MatMuls: 3.2 GB) */
  bigK?: number;
  bigN?: number;
  bigMatmuls?: number;
}

const SECTIONS: Section[] = [
  { name: "numeric", run: (a) => benchNumeric({ sizeMB: a.sizeMB, kernels: a.kernels }), format: formatNumeric },
  { name: "run", run: () => benchRun() },
  { name: "dump", run: async () => (await benchDumpWrite(256)).map((r) => ({ ...r, name: `dump ${r.name}` })) },
  { name: "bisect", run: () => benchBisect() },
  { name: "calib", run: () => benchCalib() },
  { name: "interop", run: () => benchInterop() },
  { name: "bigmodel", run: (a) => benchBigModel({ k: a.bigK, n: a.bigN, matmuls: a.bigMatmuls }) },
  { name: "overhead", run: () => benchOverhead() },
];

function defaultFormat(lines: readonly BenchLine[]): string[] {
  return lines.map((l) => `${l.name}: ${Number.isInteger(l.value) ? l.value : l.value.toFixed(3)} ${l.unit}${l.note ? ` (${l.note})` : ""}`);
}

function parseArgs(argv: string[]): { args: BenchArgs; only?: string[] } {
  const args: BenchArgs = {};
  let only: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--size-mb") args.sizeMB = Number(argv[++i]);
    else if (a === "--only") only = argv[++i]!.split(",");
    else if (a === "--kernels") args.kernels = argv[++i]!.split(",");
    else if (a === "--big-k") args.bigK = Number(argv[++i]);
    else if (a === "--big-n") args.bigN = Number(argv[++i]);
    else if (a === "--big-matmuls") args.bigMatmuls = Number(argv[++i]);
  }
  return { args, only };
}

async function main(): Promise<void> {
  const { args, only } = parseArgs(process.argv.slice(2));
  for (const s of SECTIONS) {
    if (only && !only.includes(s.name)) continue;
    const lines = await s.run(args);
    for (const l of (s.format ?? defaultFormat)(lines)) console.log(l);
  }
}

await main();
