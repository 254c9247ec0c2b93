/**
 * Flag value checks every command shares (docs/cli.md): fixed-choice flags name the flag and
 * the choices; numeric flags are range-checked before any work (one line, exit 2).
 */
import { UserError } from "../core/errors.js";

type Raw = Record<string, unknown>;
type Rule = "positive-int" | "nonneg-int" | "nonneg" | "finite";

/** Numeric flags and their ranges (flags checked elsewhere with more context are not listed). */
const NUMERIC_FLAGS: Readonly<Record<string, Rule>> = {
  "segment-layers": "positive-int",
  "boundary-cache": "nonneg-int",
  "calib-batches": "positive-int",
  "check-batches": "nonneg-int",
  top: "nonneg-int",
  threshold: "finite",
  "max-rel-l2": "nonneg",
  "min-sqnr": "finite",
  "max-clip-fraction": "nonneg",
  "max-range-ratio": "nonneg",
  percentile: "nonneg",
};

const EXPECT: Record<Rule, string> = {
  "positive-int": "a positive integer",
  "nonneg-int": "a non-negative integer",
  nonneg: "a non-negative number",
  finite: "a finite number",
};

function ok(rule: Rule, n: number): boolean {
  switch (rule) {
    case "positive-int":
      return Number.isInteger(n) && n >= 1;
    case "nonneg-int":
      return Number.isInteger(n) && n >= 0;
    case "nonneg":
      return Number.isFinite(n) && n >= 0;
    case "finite":
      return Number.isFinite(n);
  }
}

/** Throws a one-line UserError for the first numeric flag out of its range. */
export function checkNumericFlags(a: Raw): void {
  for (const [flag, rule] of Object.entries(NUMERIC_FLAGS)) {
    const v = a[flag];
    if (v === undefined) continue;
    if (Array.isArray(v)) throw new UserError(`--${flag}: give it once`);
    const n = typeof v === "number" ? v : Number(v);
    if (!ok(rule, n)) throw new UserError(`--${flag} ${Number.isNaN(n) && typeof v === "number" ? "(not a number)" : String(v)}: expected ${EXPECT[rule]}`);
  }
}

/**
 * yargs' "Invalid values:\n  Argument: mode, Given: "x", Choices: "a", "b"" as one line naming
 * the flag and the choices; null for other messages.
 */
export function choicesMessage(msg: string): string | null {
  const m = /Argument: ([\w-]+), Given: (.*?), Choices: (.*)$/m.exec(msg);
  if (!m) return null;
  const choices = m[3]!.split(/,\s*/).map((c) => c.replace(/^"|"$/g, ""));
  return `--${m[1]} ${m[2]!.replace(/^"|"$/g, "")}: expected one of ${choices.join("|")}`;
}
