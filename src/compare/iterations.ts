/**
 * Comparison over several input sets (iterations): the verdict fails when any iteration's
 * graph outputs fail; each tensor's row is its worst iteration (docs/inputs.md, "Several
 * input sets").
 */
import { CompareAccumulator, type CompareSummary, type LayerComparisonJson } from "./layer-compare.js";

export interface IterationVerdict {
  iteration: number;
  passed: boolean;
  first_failing_layer: string | null;
  first_failing_tensor: string | null;
}

export interface IterationsSummary extends CompareSummary {
  /** First iteration whose graph outputs fail (null when all pass). */
  first_failing_iteration: number | null;
  iterations: IterationVerdict[];
}

/**
 * Row badness, the one rule for "a tensor's worst input set" (JSON rows here, terminal rows in
 * cli/compare-output.ts): a failing row beats a passing one; then the larger relative L2 error
 * (NaN, null and inf worst).
 */
export function worseRow(a: { passed: boolean; relL2: number | null }, b: { passed: boolean; relL2: number | null }): boolean {
  if (a.passed !== b.passed) return !a.passed;
  const bad = (x: number | null) => (x === null || Number.isNaN(x) ? Infinity : x);
  return bad(a.relL2) > bad(b.relL2);
}

function worse(a: LayerComparisonJson, b: LayerComparisonJson): boolean {
  return worseRow({ passed: a.passed, relL2: a.metrics.rel_l2 }, { passed: b.passed, relL2: b.metrics.rel_l2 });
}

export function mergeIterations(items: { iteration: number; acc: CompareAccumulator }[], reference: string, candidate: string, notes: string[]): IterationsSummary {
  const iterations: IterationVerdict[] = items.map(({ iteration, acc }) => ({
    iteration,
    passed: acc.outputsPassed,
    first_failing_layer: acc.firstFailing?.layer ?? null,
    first_failing_tensor: acc.firstFailing?.tensor ?? null,
  }));
  const failing = iterations.find((v) => !v.passed);
  const withLayer = failing ?? iterations.find((v) => v.first_failing_layer !== null);
  const rows = new Map<string, LayerComparisonJson & { iteration: number }>();
  for (const { iteration, acc } of items) {
    for (const r of acc.rows) {
      const prev = rows.get(r.tensor);
      if (!prev || worse(r, prev)) rows.set(r.tensor, { ...r, iteration });
    }
  }
  // A degenerate reference output in any set (and no failing set) leaves the verdict open, as with one set.
  const degenerate = new Map<string, CompareSummary["degenerate_outputs"][number]>();
  for (const { acc } of items) for (const d of acc.degenerate) if (!degenerate.has(d.tensor)) degenerate.set(d.tensor, d);
  const verdict: CompareSummary["verdict"] = failing ? "failed" : degenerate.size ? "degenerate" : "passed";
  const passed = verdict === "passed";
  return {
    format: "trt-debug/compare@1",
    passed,
    verdict,
    degenerate_outputs: [...degenerate.values()],
    first_failing_layer: withLayer?.first_failing_layer ?? null,
    first_failing_tensor: withLayer?.first_failing_tensor ?? null,
    reference,
    candidate,
    outputs_passed: failing === undefined,
    layers: [...rows.values()].sort((x, y) => x.order - y.order),
    notes,
    first_failing_iteration: failing?.iteration ?? null,
    iterations,
  };
}
