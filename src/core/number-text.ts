/** Number formatting for tables and messages: non-finite values print as inf, -inf and nan. */

/** "inf", "-inf" or "nan" for a non-finite number, else null. */
export function nonFiniteText(x: number): string | null {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  return null;
}

/** `x.toFixed(digits)`, with inf/-inf/nan for non-finite values. */
export function fixed(x: number, digits: number): string {
  return nonFiniteText(x) ?? x.toFixed(digits);
}

/** `String(x)` for numbers (inf/-inf/nan for non-finite), "-" for null/undefined. */
export function numText(x: number | null | undefined): string {
  if (x === null || x === undefined) return "-";
  return nonFiniteText(x) ?? String(x);
}

/** JSON.stringify replacer of the CLI's --json output (bigint -> number). */
export function jsonReplacer(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? Number(v) : v;
}
