/**
 * With no precision flag, the `"default"` of `--precision-plan FILE` is the run's precision:
 * `compare MODEL --precision-plan plan.json` (what bisect -o's docs tell users to run), `run` and
 * `validate` label and judge the run by it (docs/precision.md "Precision plans and overrides").
 */
import type { Precision } from "../core/host-tensor.js";
import { readPlan } from "../precision/plan.js";

export function planDefault(a: Record<string, unknown>): Precision | undefined {
  const f = a["precision-plan"];
  return typeof f === "string" ? readPlan(f).default : undefined;
}
