/**
 * Plain-text tables for the terminal and for files (docs/cli.md, "Tables"): aligned columns,
 * at most `width` characters a line (120 unless the terminal is wider), long names shortened
 * in the middle with an ellipsis, inf/-inf/nan for non-finite numbers.
 */
import type { LayerComparison } from "../compare/layer-compare.js";
import { fmt } from "../compare/tolerance.js";
import { fixed } from "../core/number-text.js";

/** Default line width of tables: the terminal's when stdout is a TTY wider than 120, else 120. */
export function tableWidth(): number {
  const c = process.stdout.isTTY ? process.stdout.columns : undefined;
  return c && c > 120 ? c : 120;
}

const SEP = "  ";
/** Narrowest a shrinkable (left-aligned) column gets before a table is allowed to overflow. */
const MIN_SHRUNK = 8;

/**
 * Column widths: each column's widest cell; when the line is wider than `width`, the widest
 * left-aligned (name) columns shrink first, down to MIN_SHRUNK characters. Columns listed in
 * `keep` (a verdict) never shrink.
 */
export function fitWidths(header: string[], rows: string[][], align: ("l" | "r")[], width: number, keep: readonly number[] = []): number[] {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const total = () => w.reduce((a, b) => a + b, 0) + SEP.length * (w.length - 1);
  // Shrink the widest text column one character at a time, so the excess is shared between
  // text columns (a long op type must not squeeze layer names to a few characters); on a tie
  // the later column gives first (the layer name comes before the op type).
  while (total() > width) {
    let k = -1;
    for (let i = 0; i < w.length; i++) if ((align[i] ?? "l") === "l" && !keep.includes(i) && w[i]! > MIN_SHRUNK && (k < 0 || w[i]! >= w[k]!)) k = i;
    if (k < 0) break;
    w[k]!--;
  }
  return w;
}

/** One line of cells padded to `widths` (cells too long are shortened in the middle). */
export function formatLine(cells: string[], widths: number[], align: ("l" | "r")[]): string {
  return cells
    .map((c, i) => {
      const n = widths[i] ?? c.length;
      const s = middleTrunc(c, n);
      return (align[i] ?? "l") === "r" ? s.padStart(n) : s.padEnd(n);
    })
    .join(SEP)
    .trimEnd();
}

export function table(header: string[], rows: string[][], align: ("l" | "r")[] = [], width = tableWidth(), keep: readonly number[] = []): string {
  const w = fitWidths(header, rows, align, width, keep);
  return [formatLine(header, w, align), formatLine(w.map((n) => "-".repeat(n)), w, align), ...rows.map((r) => formatLine(r, w, align))].join("\n");
}

export const COMPARE_HEADER = ["#", "layer", "op", "prec", "max abs", "mean abs", "max rel", "rel L2", "cosine", "SQNR dB", "nan+inf r|c", "verdict"];
export const COMPARE_ALIGN: ("l" | "r")[] = ["r", "l", "l", "l", "r", "r", "r", "r", "r", "r", "r", "l"];

/** Verdict cell of a compare row. */
function verdictCell(l: LayerComparison): string {
  if (l.degenerate && l.degenerate.kind !== "nonfinite") return "degenerate (output)";
  return (l.verdict.passed ? "ok" : "FAIL") + (l.isGraphOutput ? " (output)" : "");
}

export function compareRow(l: LayerComparison): string[] {
  const m = l.metrics;
  return [
    String(l.order),
    l.layer,
    l.opType,
    l.precision,
    fmt(m.maxAbs),
    fmt(m.meanAbs),
    fmt(m.maxRel),
    fmt(m.relL2),
    fixed(m.cosine, 6),
    fixed(m.sqnrDb, 1),
    `${m.refNan + m.refInf}|${m.candNan + m.candInf}`,
    verdictCell(l),
  ];
}

/**
 * Which compare rows a table shows (`--show`):
 * - `context` (default): failing rows, plus the 3 rows before and after the first failing one;
 * - `failing`: failing rows only; `all`: every row; `none`: no table;
 * - a number N: the N worst rows (failing first, then by rel L2, highest first), in execution order.
 */
export type ShowSpec = { kind: "all" | "failing" | "context" | "none" } | { kind: "worst"; n: number };

export const CONTEXT_ROWS = 3;

export function selectRows(rows: readonly LayerComparison[], show: ShowSpec): LayerComparison[] {
  switch (show.kind) {
    case "all":
      return [...rows];
    case "none":
      return [];
    case "failing":
      return rows.filter((r) => !r.verdict.passed);
    case "context": {
      const first = rows.findIndex((r) => !r.verdict.passed);
      return rows.filter((r, i) => !r.verdict.passed || (first >= 0 && Math.abs(i - first) <= CONTEXT_ROWS));
    }
    case "worst": {
      const key = (r: LayerComparison) => (Number.isNaN(r.metrics.relL2) ? Infinity : r.metrics.relL2);
      const idx = rows.map((_, i) => i);
      idx.sort((a, b) => Number(rows[a]!.verdict.passed) - Number(rows[b]!.verdict.passed) || key(rows[b]!) - key(rows[a]!) || a - b);
      return idx
        .slice(0, show.n)
        .sort((a, b) => a - b)
        .map((i) => rows[i]!);
    }
  }
}

/**
 * The compare table for the rows `show` selects ("" when none). Extra columns appear only when
 * needed: "tensor" when a layer has several compared tensors (an If/Loop/Split with several
 * outputs would otherwise show identical-looking rows), "iter" with several input sets (each
 * row is its tensor's worst set).
 */
export function compareTable(rows: readonly LayerComparison[], show: ShowSpec, width = tableWidth()): string {
  const sel = selectRows(rows, show);
  if (!sel.length) return "";
  const layers = new Set(rows.map((r) => r.layer));
  const withTensor = layers.size < rows.length;
  const withIter = sel.some((r) => r.iteration !== undefined);
  const header = [...COMPARE_HEADER];
  const align = [...COMPARE_ALIGN];
  const last = header.length - 1;
  if (withIter) {
    header.splice(last, 0, "iter");
    align.splice(last, 0, "r");
  }
  if (withTensor) {
    header.splice(2, 0, "tensor");
    align.splice(2, 0, "l");
  }
  const cells = sel.map((r) => {
    const c = compareRow(r);
    if (withIter) c.splice(last, 0, r.iteration === undefined ? "" : String(r.iteration));
    if (withTensor) c.splice(2, 0, r.tensor);
    return c;
  });
  // The verdict column is never shortened ("degen…tput)" would hide what the row says).
  return table(header, cells, align, width, [header.length - 1]);
}

/** `s` shortened to `n` characters by an ellipsis in the middle. */
export function middleTrunc(s: string, n: number): string {
  if (s.length <= n) return s;
  if (n <= 1) return s.slice(0, n);
  const keep = n - 1;
  const head = Math.ceil(keep / 2);
  return s.slice(0, head) + "…" + s.slice(s.length - (keep - head));
}

export function trunc(s: string, n: number): string {
  return s.length <= n ? s : "…" + s.slice(s.length - n + 1);
}
