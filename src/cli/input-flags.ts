/**
 * Parsing of the input-data flags into the library's typed InputArgs (data/input-args.ts),
 * with Polygraphy's spellings:
 *
 *   --val-range [lo,hi]            range for every input not named elsewhere (default [0,1])
 *   --val-range name:[lo,hi] ...   per-input range (several allowed)
 *   --input-shapes name:[d0,d1] .. shapes for inputs with dynamic dimensions (name:d0xd1 also accepted)
 *   --seed N                       seed for generated inputs (default 1)
 *
 * `name:...` entries are split at the LAST colon, so input names may contain colons. Every
 * parse failure is a one-line UserError naming the flag and the bad value.
 */
import { UserError } from "../core/errors.js";
import type { ValRange, ValRanges } from "../data/input-args.js";

export type { ValRange, ValRanges };


/** A flag given zero, one or several times (yargs gives string | string[] | undefined). */
export type FlagValues = string | number | readonly (string | number)[] | undefined;

function asList(v: FlagValues): string[] {
  if (v === undefined) return [];
  if (Array.isArray(v)) return v.map((x) => String(x));
  return [String(v as string | number)];
}

/** Split `name:value` at the last colon; undefined when there is no colon. */
export function splitAtLastColon(s: string): { name: string; value: string } | undefined {
  const i = s.lastIndexOf(":");
  if (i < 0) return undefined;
  return { name: s.slice(0, i).trim(), value: s.slice(i + 1).trim() };
}

/** A decimal or scientific-notation number (`-1`, `.5`, `1e-3`, `+2.5E+4`); no hex, no inf/nan. */
const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseNumber(s: string): number | undefined {
  const t = s.trim();
  if (!NUMBER_RE.test(t)) return undefined;
  const x = Number(t);
  return Number.isFinite(x) ? x : undefined;
}

function parseRange(text: string, whole: string): ValRange {
  const bad = (why: string): never => {
    throw new UserError(`--val-range '${whole}': ${why}; expected [lo,hi] or name:[lo,hi], e.g. --val-range [0,1] input:[-1,1]`);
  };
  const m = /^\[(.*)\]$/s.exec(text.trim());
  if (!m) bad(`'${text}' is not a [lo,hi] range`);
  const parts = m![1]!.split(",");
  if (parts.length !== 2) bad(`'${text}' must have exactly two numbers`);
  const lo = parseNumber(parts[0]!);
  const hi = parseNumber(parts[1]!);
  if (lo === undefined) bad(`'${parts[0]!.trim()}' is not a finite number`);
  if (hi === undefined) bad(`'${parts[1]!.trim()}' is not a finite number`);
  if (lo! > hi!) bad(`lo ${lo} is greater than hi ${hi}`);
  return { lo: lo!, hi: hi! };
}

/**
 * Parse `--val-range` values. `[lo,hi]` sets the global range, `name:[lo,hi]` one input's range.
 * Spaces around names and numbers are ignored. A later entry for the same name (or a later
 * global range) replaces an earlier one.
 */
export function parseValRanges(values: FlagValues): ValRanges {
  const out: ValRanges = { perInput: new Map() };
  for (const raw of asList(values)) {
    const s = raw.trim();
    if (s === "") throw new UserError(`--val-range: empty value; expected [lo,hi] or name:[lo,hi]`);
    if (s.startsWith("[")) {
      out.global = parseRange(s, raw);
      continue;
    }
    const nv = splitAtLastColon(s);
    if (!nv) {
      throw new UserError(`--val-range '${raw}': expected [lo,hi] or name:[lo,hi], e.g. --val-range [0,1] input:[-1,1]`);
    }
    if (nv.name === "") throw new UserError(`--val-range '${raw}': empty input name before ':'; use [lo,hi] for all inputs`);
    out.perInput.set(nv.name, parseRange(nv.value, raw));
  }
  return out;
}


function parseDims(text: string, raw: string): number[] {
  const bad = (why: string): never => {
    throw new UserError(
      `--input-shapes '${raw}': ${why}; expected name:[d0,d1,...] with non-negative integers, e.g. --input-shapes input:[1,3,224,224]`,
    );
  };
  const t = text.trim();
  let parts: string[];
  const m = /^\[(.*)\]$/s.exec(t);
  if (m) {
    const inner = m[1]!.trim();
    parts = inner === "" ? [] : inner.split(",");
  } else if (/^\d+(\s*x\s*\d+)*$/.test(t)) {
    parts = t.split("x");
  } else {
    return bad(`'${text}' is not a shape`);
  }
  return parts.map((p) => {
    const s = p.trim();
    if (!/^\d+$/.test(s)) bad(`dimension '${s}' is not a non-negative integer`);
    const d = Number(s);
    if (!Number.isSafeInteger(d)) bad(`dimension '${s}' is too large`);
    return d;
  });
}

/**
 * Parse `--input-shapes` values: `name:[d0,d1,...]` (`name:[]` is a scalar), or `name:d0xd1x...`.
 * Split at the last colon. A later entry for the same name replaces an earlier one.
 */
export function parseInputShapes(values: FlagValues): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const raw of asList(values)) {
    const s = raw.trim();
    const nv = splitAtLastColon(s);
    if (!nv) {
      throw new UserError(`--input-shapes '${raw}': expected name:[d0,d1,...], e.g. --input-shapes input:[1,3,224,224]`);
    }
    if (nv.name === "") throw new UserError(`--input-shapes '${raw}': empty input name before ':'`);
    out.set(nv.name, parseDims(nv.value, raw));
  }
  return out;
}

/** Parse `--seed`: an integer in [0, 2^32 - 1]; undefined gives DEFAULT_SEED (1). */
export function parseSeed(value: string | number | undefined): number {
  if (value === undefined) return 1;
  const s = String(value).trim();
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n > 0xffffffff) {
    throw new UserError(`--seed '${value}': expected an integer from 0 to 4294967295`);
  }
  return n;
}
