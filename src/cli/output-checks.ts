/**
 * Every output path a command line names is checked before any work starts (src/core/output-file.ts):
 * a bad path is one line and exit 2, never a stack trace after minutes of work.
 */
import * as path from "node:path";
import { UserError } from "../core/errors.js";
import { checkOutputPath, isStdoutPath, type OutputKind } from "../core/output-file.js";

type Raw = Record<string, unknown>;

/** Output flags and what they name. `-o/--output` of calib build also writes FILE.json. */
const OUTPUT_FLAGS: readonly { flag: string; kind: OutputKind; stdout?: boolean }[] = [
  { flag: "json", kind: "file", stdout: true },
  { flag: "save-outputs", kind: "dir" },
  { flag: "save-inputs", kind: "file" },
  { flag: "output", kind: "file" },
  { flag: "trtexec-flags", kind: "file" },
  { flag: "polygraphy-args", kind: "file" },
  { flag: "checkpoint", kind: "file" },
  { flag: "report", kind: "file" },
];

/** Throws a one-line UserError for the first output path that cannot be written. */
export function checkCommandOutputs(a: Raw): void {
  const cmd = Array.isArray(a._) ? (a._ as unknown[]).map(String) : [];
  const seen = new Map<string, string>();
  for (const { flag, kind: declared, stdout } of OUTPUT_FLAGS) {
    const v = a[flag];
    // Interop forms (docs/interop.md): run --save-outputs FILE.json, --save-inputs DIR --format trtexec.
    const kind: OutputKind = flag === "save-outputs" && typeof v === "string" && /\.json$/i.test(v) ? "file" : flag === "save-inputs" && a.format === "trtexec" ? "dir" : declared;
    if (v === undefined || v === false || v === true) continue;
    const p = String(v);
    if (stdout && isStdoutPath(p)) continue;
    // Every CLI writer creates missing folders, except the calibration cache writer.
    const calibOut = flag === "output" && cmd[0] === "calib";
    checkOutputPath(`--${flag}`, p, kind, { createParents: !calibOut });
    if (calibOut) checkOutputPath(`--${flag}`, `${p}.json`, "file");
    if (kind === "file") {
      const abs = path.resolve(p);
      const other = seen.get(abs);
      if (other) throw new UserError(`--${flag} ${p}: the same file as --${other}; give each output its own path`);
      seen.set(abs, flag);
    }
  }
}
