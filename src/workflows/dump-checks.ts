/**
 * Checks of dumps when they are read (docs/file-formats.md):
 * - the stored statistics columns of a row must match the values they summarise (rows that
 *   keep statistics only, with every value column null, are not checked);
 * - two dumps compared must come from the same inputs (schema metadata `inputs_fingerprint`).
 */
import { opt, UserError, userError } from "../core/errors.js";
import type { HostTensor } from "../core/host-tensor.js";
import { inputsHash } from "../search/checkpoint.js";
import { fmt } from "../compare/tolerance.js";
import { statsOf } from "../io/rows.js";
import { valuesToHostTensor, type DumpRow, type DumpStats } from "../io/dump.js";

/** Schema metadata describing the inputs a dump was made from. */
export function inputsMetadata(inputs: readonly HostTensor[], seed: string | null): Record<string, string> {
  return { inputs_fingerprint: inputsHash(inputs), ...(seed !== null ? { seed } : {}) };
}

const COUNTS = [
  ["numel", "numel"],
  ["nanCount", "nan_count"],
  ["posInfCount", "pos_inf_count"],
  ["negInfCount", "neg_inf_count"],
] as const;

/**
 * Throws a UserError naming `file` and the row when a stored statistic disagrees with the
 * row's values: counts and min/max exactly, mean/std within 1e-5 of the tensor's magnitude
 * (sums may be taken in another order by another numeric backend).
 */
export function verifyRowStats(file: string, index: number, row: DumpRow): void {
  // A statistics-only row (no value column) has nothing to check against.
  if (row.values === null && row.valuesF64 === null && row.intValues === null && row.strValues === null) return;
  const actual = statsOf(valuesToHostTensor(row));
  const stored = row.stats;
  const bad = (col: string, s: number | null, a: number | null) =>
    new UserError(`${file}: row ${index} (tensor '${row.tensor}'): stored ${col} ${s === null ? "null" : fmt(s)} does not match its values (${a === null ? "null" : fmt(a)}); the file was modified or corrupted — write it again with \`trt-debug run --save-outputs\``);
  for (const [k, col] of COUNTS) if (stored[k] !== actual[k]) throw bad(col, stored[k], actual[k]);
  const scale = Math.max(Math.abs(actual.min ?? 0), Math.abs(actual.max ?? 0));
  const exact: (keyof DumpStats)[] = ["min", "max"];
  for (const k of exact) if (stored[k] !== actual[k]) throw bad(k, stored[k], actual[k]);
  for (const k of ["mean", "std"] as const) {
    const s = stored[k], a = actual[k];
    if ((s === null) !== (a === null) || (s !== null && a !== null && !(Math.abs(s - a) <= 1e-5 * scale + 1e-30))) throw bad(k, s, a);
  }
}

/**
 * Refuses two dumps made from different inputs (unless `allow`); warns when either has no
 * fingerprint (written by an older trt-debug).
 */
export function checkSameInputs(refFile: string, ref: Record<string, string>, candFile: string, cand: Record<string, string>, allow: boolean, warn: (m: string) => void): void {
  const r = ref.inputs_fingerprint, c = cand.inputs_fingerprint;
  if (r === undefined || c === undefined) {
    warn(`${r === undefined ? refFile : candFile} records no inputs fingerprint (written by an older trt-debug): cannot check that both dumps come from the same inputs`);
    return;
  }
  if (r === c || allow) return;
  const seeds = ref.seed !== undefined || cand.seed !== undefined ? `, seed ${cand.seed ?? "none (loaded inputs)"} vs ${ref.seed ?? "none (loaded inputs)"}` : "";
  throw userError`${candFile}: made from different inputs than ${refFile} (inputs fingerprint ${c.slice(0, 12)}… vs ${r.slice(0, 12)}…${seeds}); make both with the same ${opt("seed")}/${opt("loadInputs")}, or pass ${opt("allowDifferentInputs")}`;
}
