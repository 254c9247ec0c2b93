/**
 * The HTML report (docs/report.md): one self-contained file for a compare, bisect or calib
 * check result. The result is embedded ONCE as JSON (the page's data island); the page's
 * script (./html-client.ts) and uPlot (the charting library, inlined from the `uplot`
 * package) draw everything from it when the file is opened. No network: scripts and styles
 * are inline and a Content-Security-Policy forbids every fetch.
 *
 * `renderReport(result)` takes a live result object or a parsed `--json` file; the kind comes
 * from its `format` field. Live compares may add tensor samples (./html-samples.ts).
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";
import { UserError } from "../core/errors.js";
import { jsonReplacer } from "../core/number-text.js";
import { readTextChecked } from "../io/safe-read.js";
import { COMPARE_FORMAT } from "../compare/layer-compare.js";
import { REPORT_CLIENT_JS, REPORT_CSS } from "./html-client.js";
import type { LayerSample } from "./html-samples.js";

/**
 * The result formats a report renders. Bisect's and calib check's constants live above or
 * beside this layer (workflows/bisect.ts BISECT_FORMAT, calibration/check.ts
 * CALIB_CHECK_FORMAT); test/report-html.test.ts checks these spellings against them.
 */
export const REPORT_FORMATS = {
  compare: COMPARE_FORMAT,
  bisect: "trt-debug/bisect@1",
  "calib-check": "trt-debug/calib-check@1",
} as const;

export type ReportKind = keyof typeof REPORT_FORMATS;

export interface ReportOptions {
  /** Compare only: tensor samples of the worst layers (LayerSampler.samples()). */
  samples?: LayerSample[];
  /** Where the result came from, for error messages (a file name); default "result". */
  source?: string;
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === "object" && x !== null && !Array.isArray(x);

/** The array field `key` of `o`, each element an object with the given fields; else a one-line UserError. */
function checkRows(src: string, what: string, o: Obj, key: string, fields: readonly string[]): void {
  const v = o[key];
  if (!Array.isArray(v)) throw new UserError(`${src}: not a complete ${what} result: '${key}' is ${v === undefined ? "missing" : "not a list"}; write it again with --json FILE`);
  v.forEach((row, i) => {
    if (!isObj(row)) throw new UserError(`${src}: not a complete ${what} result: ${key}[${i}] is not an object; write it again with --json FILE`);
    for (const f of fields) if (!(f in row)) throw new UserError(`${src}: not a complete ${what} result: ${key}[${i}] has no '${f}'; write it again with --json FILE`);
  });
}

/** The report kind of a result (its `format` field); a one-line UserError for anything else. */
export function reportKind(result: unknown, source = "result"): ReportKind {
  const kinds = Object.entries(REPORT_FORMATS);
  const known = kinds.map(([, f]) => f).join(", ");
  if (!isObj(result)) throw new UserError(`${source}: not a trt-debug result (expected a JSON object with a "format" field: ${known})`);
  const f = result.format;
  const hit = kinds.find(([, v]) => v === f);
  if (!hit) {
    throw new UserError(
      typeof f === "string"
        ? `${source}: format '${f}' has no HTML report (reports exist for ${known}); write the result with compare, bisect or calib check --json FILE`
        : `${source}: not a trt-debug result (no "format" field; reports exist for ${known})`,
    );
  }
  const kind = hit[0] as ReportKind;
  if (kind === "compare") {
    checkRows(source, "compare", result, "layers", ["order", "layer", "op_type", "tensor", "passed", "reason", "metrics"]);
    (result.layers as Obj[]).forEach((l, i) => {
      if (!isObj(l.metrics)) throw new UserError(`${source}: not a complete compare result: layers[${i}].metrics is not an object; write it again with --json FILE`);
    });
  } else if (kind === "bisect") {
    checkRows(source, "bisect", result, "iterations", ["iteration", "phase", "size", "passed", "metric", "detail"]);
    checkRows(source, "bisect", result, "pinned", ["name", "op_type", "order", "evidence"]);
  } else {
    checkRows(source, "calib check", result, "tensors", ["tensor", "flags", "calibrators", "quality"]);
  }
  return kind;
}

/** Reads a saved `--json` result (size-checked, JSON parsed); one-line UserErrors for unreadable or malformed files. */
export function readReportResult(file: string): unknown {
  const text = readTextChecked(file, "result");
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message.split("\n")[0]}); pass a file written with --json FILE`);
  }
}

let uplotCache: { js: string; css: string } | null = null;

/** uPlot's minified build and stylesheet, read from the installed `uplot` package. */
function uplotAssets(): { js: string; css: string } {
  if (!uplotCache) {
    const req = createRequire(import.meta.url);
    uplotCache = {
      js: fs.readFileSync(req.resolve("uplot/dist/uPlot.iife.min.js"), "utf8"),
      css: fs.readFileSync(req.resolve("uplot/dist/uPlot.min.css"), "utf8"),
    };
  }
  return uplotCache;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** JSON safe inside a <script> element: `<` (and the line separators JS strings once rejected) escaped. */
const scriptJson = (x: unknown): string =>
  JSON.stringify(x, jsonReplacer)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");

/** Inline script text can't hold "</script": the library's code never does, but check (a new uPlot version could). */
function inlineScript(code: string): string {
  if (/<\/script/i.test(code)) throw new Error("inline script contains </script");
  return code;
}

function titleOf(kind: ReportKind, r: Obj): string {
  const s = (x: unknown) => (typeof x === "string" ? x : "?");
  if (kind === "compare") return `trt-debug compare: ${s(r.reference)} vs ${s(r.candidate)}`;
  if (kind === "bisect") return `trt-debug bisect: ${s(r.model)} (${s(r.precision)})`;
  return `trt-debug calib check: ${s(r.model)}`;
}

/**
 * The report as one HTML document (a string). `result` is a compare, bisect or calib check
 * result, live or parsed from its `--json` file; throws a one-line UserError for anything else.
 */
export function renderReport(result: unknown, opts: ReportOptions = {}): string {
  const source = opts.source ?? "result";
  const kind = reportKind(result, source);
  // Live and saved results render alike: the page gets what --json would have written.
  const data = { kind, result: JSON.parse(JSON.stringify(result, jsonReplacer)) as unknown, samples: kind === "compare" ? (opts.samples ?? null) : null };
  const u = uplotAssets();
  const title = escapeHtml(titleOf(kind, result as Obj));
  return [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    // No network when opened: nothing may be fetched, inline code and data: images only.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${title}</title>`,
    `<style>${u.css}\n${REPORT_CSS}</style>`,
    "</head>",
    `<body data-kind="${kind}"><header><h1>${title}</h1></header><main id="app"></main>`,
    `<script type="application/json" id="report-data">${scriptJson(data)}</script>`,
    `<script>${inlineScript(u.js)}</script>`,
    `<script>${inlineScript(REPORT_CLIENT_JS)}</script>`,
    "</body></html>",
    "",
  ].join("\n");
}
