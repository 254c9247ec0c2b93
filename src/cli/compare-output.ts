/**
 * What `trt-debug compare` prints (docs/cli.md): the table of the rows --show selects, one
 * line per graph output, degenerate references, the first failing layer, notes, and the
 * verdict LAST. Exit codes: 0 passed, 1 failed, 2 degenerate reference (no verdict).
 */
import { UserError } from "../core/errors.js";
import type { CompareSummary, LayerComparison } from "../compare/layer-compare.js";
import { fmt } from "../compare/tolerance.js";
import { worseRow } from "../compare/iterations.js";
import { compareTable, tableWidth, type ShowSpec } from "../report/table.js";
import { fixed } from "../core/number-text.js";

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

/**
 * With several input sets every layer has a row per set: keep each tensor's worst (failing
 * first, then the larger rel L2), by the JSON result's rule (compare/iterations.ts worseRow).
 */
function worstPerTensor(rows: readonly LayerComparison[]): readonly LayerComparison[] {
  if (!rows.some((r) => r.iteration !== undefined)) return rows;
  const worst = new Map<string, LayerComparison>();
  const key = (r: LayerComparison) => ({ passed: r.verdict.passed, relL2: r.metrics.relL2 });
  for (const r of rows) {
    const p = worst.get(r.tensor);
    if (!p || worseRow(key(r), key(p))) worst.set(r.tensor, r);
  }
  return [...worst.values()].sort((a, b) => a.order - b.order);
}

export function compareLines(s: CompareSummary, allRows: readonly LayerComparison[], show: ShowSpec, quiet: boolean, width = tableWidth()): string[] {
  const out: string[] = [];
  const it = (s as { first_failing_iteration?: number | null }).first_failing_iteration;
  const rows = worstPerTensor(allRows);
  const t = compareTable(rows, show, width);
  if (t) {
    const hidden = rows.length - t.split("\n").length + 2;
    out.push(t);
    if (hidden > 0 && show.kind !== "none") out.push(`(${hidden} of ${rows.length} rows not shown; --show all lists every row)`);
    out.push("");
  }
  // Graph outputs: one verdict line per output and input set (the table keeps only each tensor's worst set).
  for (const r of allRows.filter((x) => x.isGraphOutput)) {
    if (r.degenerate && r.degenerate.kind !== "nonfinite") continue;
    const m = r.metrics;
    out.push(`${r.iteration === undefined ? "" : `iteration ${r.iteration}: `}output ${r.tensor}: ${r.verdict.passed ? "PASS" : "FAIL"} (${r.verdict.reason}); max abs ${fmt(m.maxAbs)}, max rel ${fmt(m.maxRel)}, cosine ${fixed(m.cosine, 6)}, SQNR ${fixed(m.sqnrDb, 1)} dB`);
    out.push(`  minimum tolerance that would have passed: abs ${fmt(r.verdict.minTolerance.abs)} OR rel ${fmt(r.verdict.minTolerance.rel)} (${r.verdict.minTolerance.stat === "rel-l2" ? "max" : r.verdict.minTolerance.stat}); rel L2 ${fmt(r.verdict.minTolerance.relL2)}`);
  }
  for (const d of s.degenerate_outputs) out.push(d.message);
  const first = allRows.find((r) => r.layer === s.first_failing_layer && r.tensor === s.first_failing_tensor && !r.verdict.passed && (it == null || r.iteration === it));
  if (s.verdict !== "degenerate") {
    if (s.first_failing_layer) {
      out.push(`first failing layer: ${s.first_failing_layer} (${first?.opType ?? "?"}, tensor ${s.first_failing_tensor}${first?.iteration === undefined ? "" : `, iteration ${first.iteration}`}): ${first?.verdict.reason ?? ""}${first?.evidence.length ? "; " + first.evidence.join("; ") : ""}`);
    } else out.push("first failing layer: none");
  }
  if (!quiet) for (const n of s.notes) out.push(`note: ${n}`);
  out.push(
    s.verdict === "passed"
      ? "PASSED"
      : s.verdict === "degenerate"
        ? `NO VERDICT: ${s.degenerate_outputs.length} reference output${s.degenerate_outputs.length === 1 ? " is" : "s are"} degenerate under these inputs (exit 2); see above`
        : `FAILED: the graph outputs differ beyond tolerance${it == null ? "" : ` (first in iteration ${it})`}`,
  );
  return out;
}
