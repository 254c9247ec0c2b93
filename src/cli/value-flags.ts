/**
 * Parsers of flag values that the CLI alone calls, with the flag's spelling in their errors:
 * byte sizes (--segment-memory, --memory-budget) and per-tensor values (--atol, --rtol,
 * --check-error-stat, --error-quantile: VALUE or NAME:VALUE). The library takes the parsed
 * values (numbers, PerTensor maps).
 */
import { UserError } from "../core/errors.js";
import type { PerTensor } from "../compare/tolerance.js";

export function parseByteSize(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new UserError(`${flag}: expected a size such as 2G, 512M or a number of bytes (got '${text}')`);
  const x = Number(m[1]) * 1024 ** "_kmgt".indexOf((m[2] || "_").toLowerCase());
  if (!(x > 0)) throw new UserError(`${flag}: must be positive (got '${text}')`);
  return Math.floor(x);
}

export function parsePerTensor<T>(flag: string, values: readonly string[], parse: (s: string) => T | undefined, expect: string): PerTensor<T> {
  const out: PerTensor<T> = { byTensor: new Map() };
  for (const raw of values) {
    const v = String(raw).trim();
    const direct = parse(v);
    if (direct !== undefined) {
      out.global = direct;
      continue;
    }
    const i = v.lastIndexOf(":");
    const val = i > 0 ? parse(v.slice(i + 1).trim()) : undefined;
    if (i <= 0 || val === undefined) {
      throw new UserError(`${flag}: '${v}' is not ${expect} or NAME:${expect}`);
    }
    out.byTensor.set(v.slice(0, i), val);
  }
  return out;
}
