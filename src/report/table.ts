/** Plain-text tables for the terminal. */
import type { LayerComparison } from "../compare/compare.js";
import { fmt } from "../compare/tolerance.js";

export function table(header: string[], rows: string[][], align: ("l" | "r")[] = []): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => ((align[i] ?? "l") === "r" ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join("  ").trimEnd();
  return [line(header), line(w.map((n) => "-".repeat(n))), ...rows.map(line)].join("\n");
}

export const COMPARE_HEADER = ["#", "layer", "op", "tensor", "prec", "max abs", "mean abs", "med abs", "max rel", "mean rel", "cosine", "SQNR dB", "NaN/Inf ref|cand", "verdict"];
export const COMPARE_ALIGN: ("l" | "r")[] = ["r", "l", "l", "l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "l"];

export function compareRow(l: LayerComparison): string[] {
  const m = l.metrics;
  return [
    String(l.order),
    trunc(l.layer, 40),
    l.opType,
    trunc(l.tensor, 32),
    l.precision,
    fmt(m.maxAbs),
    fmt(m.meanAbs),
    fmt(m.medianAbs),
    fmt(m.maxRel),
    fmt(m.meanRel),
    Number.isFinite(m.cosine) ? m.cosine.toFixed(6) : String(m.cosine),
    Number.isFinite(m.sqnrDb) ? m.sqnrDb.toFixed(1) : m.sqnrDb > 0 ? "inf" : String(m.sqnrDb),
    `${m.refNan + m.refInf}|${m.candNan + m.candInf}`,
    (l.verdict.passed ? "ok" : "FAIL") + (l.isGraphOutput ? " (output)" : ""),
  ];
}

/** Streaming variant: fixed column widths, one line per layer as it arrives. */
export class StreamingTable {
  private readonly widths = [4, 28, 12, 24, 4, 9, 9, 9, 9, 9, 8, 7, 9, 4];
  headerLines(): string[] {
    return [this.line(COMPARE_HEADER), this.line(this.widths.map((n) => "-".repeat(n)))];
  }
  line(cells: string[]): string {
    return cells
      .map((c, i) => {
        const w = this.widths[i] ?? c.length;
        return (COMPARE_ALIGN[i] ?? "l") === "r" ? c.padStart(w) : c.padEnd(w);
      })
      .join("  ")
      .trimEnd();
  }
}

export function trunc(s: string, n: number): string {
  return s.length <= n ? s : "…" + s.slice(s.length - n + 1);
}
