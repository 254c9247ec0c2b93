/**
 * The HTML report on the command line (docs/report.md): `--report FILE.html` on compare,
 * bisect and calib check (`reportOption`, `writeReport`), and `trt-debug report RESULT.json
 * -o FILE.html`, which renders a saved `--json` result. The page itself is report/html.ts.
 * Exit codes of `report`: 0 written, 2 user error (unreadable, malformed or unknown result).
 */
import * as path from "node:path";
import type { Argv } from "yargs";
import { UserError } from "../core/errors.js";
import { readReportResult, renderReport } from "../report/html.js";
import { LayerSampler, type LayerSample } from "../report/html-samples.js";
import { writeFileAtomic, type Cli } from "./shell.js";

/** `--report FILE.html` (compare, bisect, calib check: `.options(REPORT_OPTIONS)`). Its path is checked before any work (./output-checks.ts). */
export const REPORT_OPTIONS = {
  report: { type: "string", describe: "Also write a self-contained HTML report (charts, sortable tables; opens offline) to this file (docs/report.md)", group: "Output:" },
} as const;

/** A sampler for compare's worst-layer charts, only when a report is asked for. */
export function reportSampler(a: Record<string, unknown>): LayerSampler | null {
  return typeof a.report === "string" ? new LayerSampler() : null;
}

/** Writes the report when `--report` was given (atomically, folders created as for --json). */
export function writeReport(file: unknown, result: unknown, samples?: LayerSample[]): void {
  if (typeof file !== "string") return;
  writeFileAtomic(file, renderReport(result, samples ? { samples } : {}));
}

export function registerReport(y: Argv, cli: Cli): void {
  y.command(
    "report <result>",
    "Render a saved --json result (compare, bisect, calib check) as a self-contained HTML report",
    (b) =>
      b
        .positional("result", { type: "string", describe: "A JSON result written with --json FILE" })
        .option("output", { alias: "o", type: "string", describe: "The HTML file to write", group: "Output:" }),
    (a) => {
      if (typeof a.output !== "string") throw new UserError(`report ${String(a.result)}: give the HTML file to write with -o FILE.html`);
      const file = String(a.result);
      if (path.resolve(file) === path.resolve(a.output)) throw new UserError(`-o ${a.output}: the same file as the result to render; give the report its own path (FILE.html)`);
      const html = renderReport(readReportResult(file), { source: file });
      writeFileAtomic(a.output, html);
      cli.io.out(`report written to ${a.output}`);
    },
  );
}
