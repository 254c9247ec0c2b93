/**
 * What `trt-debug compare` prints (docs/cli.md): the table of the rows --show selects, one
 * line per graph output, degenerate references, the first failing layer, notes, and the
 * verdict LAST. Exit codes: 0 passed, 1 failed, 2 degenerate reference (no verdict).
 */
import { UserError } from "../errors.js";
import type { CompareSummary, LayerComparison } from "../compare/compare.js";
import { fmt } from "../compare/tolerance.js";
import { compareTable, tableWidth, type ShowSpec } from "../report/table.js";
import { fixed } from "../report/format.js";

export const SHOW_CHOICES = "context|failing|all|none|N";

/** `--show context|failing|all|none|N` (N: the N worst rows). */
export function parseShow(v: unknown, quiet: boolean): ShowSpec {
  if (quiet) return { kind: "none" };
  const s = v === undefined ? "context" : String(v);
  if (s === "context" || s === "failing" || s === "all" || s === "none") return { kind: s };
  if (/^\d+$/.test(s) && Number(s) >= 1) return { kind: "worst", n: Number(s) };
  throw new UserError(`--show ${s}: expected one of ${SHOW_CHOICES} (N = the N worst rows, a positive integer)`);
}

/** Exit code of a compare verdict. */
export function compareExitCode(s: CompareSummary): number {
  return s.verdict === "passed" ? 0 : s.verdict === "degenerate" ? 2 : 1;
}

export function compareLines(s: CompareSummary, rows: readonly LayerComparison[], show: ShowSpec, quiet: boolean, width = tableWidth()): string[] {
  const out: string[] = [];
  const t = compareTable(rows, show, width);
  if (t) {
    const hidden = rows.length - t.split("\n").length + 2;
    out.push(t);
    if (hidden > 0 && show.kind !== "none") out.push(`(${hidden} of ${rows.length} rows not shown; --show all lists every row)`);
    out.push("");
  }
  for (const r of rows.filter((x) => x.isGraphOutput)) {
    if (r.degenerate && r.degenerate.kind !== "nonfinite") continue;
    const m = r.metrics;
    out.push(`output ${r.tensor}: ${r.verdict.passed ? "PASS" : "FAIL"} (${r.verdict.reason}); max abs ${fmt(m.maxAbs)}, max rel ${fmt(m.maxRel)}, cosine ${fixed(m.cosine, 6)}, SQNR ${fixed(m.sqnrDb, 1)} dB`);
    out.push(`  minimum tolerance that would have passed: abs ${fmt(r.verdict.minTolerance.abs)} OR rel ${fmt(r.verdict.minTolerance.rel)} (${r.verdict.minTolerance.stat === "rel-l2" ? "max" : r.verdict.minTolerance.stat}); rel L2 ${fmt(r.verdict.minTolerance.relL2)}`);
  }
  for (const d of s.degenerate_outputs) out.push(d.message);
  const first = rows.find((r) => r.layer === s.first_failing_layer && r.tensor === s.first_failing_tensor);
  if (s.verdict !== "degenerate" || s.first_failing_layer) {
    if (s.first_failing_layer) {
      out.push(`first failing layer: ${s.first_failing_layer} (${first?.opType ?? "?"}, tensor ${s.first_failing_tensor}): ${first?.verdict.reason ?? ""}${first?.evidence.length ? "; " + first.evidence.join("; ") : ""}`);
    } else out.push("first failing layer: none");
  }
  if (!quiet) for (const n of s.notes) out.push(`note: ${n}`);
  out.push(
    s.verdict === "passed"
      ? "PASSED"
      : s.verdict === "degenerate"
        ? `NO VERDICT: ${s.degenerate_outputs.length} reference output${s.degenerate_outputs.length === 1 ? " is" : "s are"} degenerate under these inputs (exit 2); see above`
        : "FAILED: the graph outputs differ beyond tolerance",
  );
  return out;
}
