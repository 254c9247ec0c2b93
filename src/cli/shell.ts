/**
 * What every command shares: the output streams (Io), JSON output, the output-path
 * middleware and the hooks that print the library's warnings and progress. Command modules
 * import this file and ./options.ts, never the entry point (./main.ts), which registers them.
 */
import { UserError } from "../core/errors.js";
import type { Hooks } from "../core/hooks.js";
import { isStdoutPath, writeFileAtomicSync } from "../core/output-file.js";
import { jsonReplacer } from "../core/number-text.js";
import type { CompareSummary, LayerComparison } from "../compare/layer-compare.js";
import type { ShowSpec } from "../report/table.js";
import { checkCommandOutputs } from "./output-checks.js";
import { checkNumericFlags } from "./flag-checks.js";
import { compareLines } from "./compare-output.js";
import { Progress } from "./progress.js";
import { flagText } from "./options.js";

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  isTTY: boolean;
}

/** Set when stdout's reader went away (`trt-debug ... | head`): further output is dropped. */
let stdoutClosed = false;

/** stdout's reader went away (EPIPE): drop further output. */
export function markStdoutClosed(): void {
  stdoutClosed = true;
}

export const defaultIo: Io = {
  out: (s) => void (stdoutClosed || process.stdout.write(s + "\n")),
  err: (s) => process.stderr.write(s + "\n"),
  isTTY: Boolean(process.stderr.isTTY),
};

/** Write `text` to `file` atomically (src/core/output-file.ts: unique temp name, then rename). */
export function writeFileAtomic(file: string, text: string): void {
  writeFileAtomicSync(file, text, { mkdir: true });
}

/** Where `--json -` writes (the command's stdout, set by checkOutputsMiddleware). */
let jsonStdout: ((s: string) => void) | null = null;

export function writeJson(file: string | undefined, obj: unknown): void {
  if (!file) return;
  const text = JSON.stringify(obj, jsonReplacer, 2);
  if (isStdoutPath(file)) (jsonStdout ?? ((s: string) => void process.stdout.write(s + "\n")))(text);
  else writeFileAtomic(file, text + "\n");
}

export class Cli {
  exitCode = 0;
  constructor(public io: Io = defaultIo) {}

  /**
   * Runs before every command handler: checks every output path (exit 2 before any work) and,
   * for `--json -` (or /dev/stdout), sends the JSON to stdout and the human output to stderr.
   */
  checkOutputsMiddleware(a: Record<string, unknown>): void {
    checkNumericFlags(a);
    checkCommandOutputs(a);
    jsonStdout = null;
    if (typeof a.json === "string" && isStdoutPath(a.json)) {
      jsonStdout = this.io.out;
      this.io = { ...this.io, out: this.io.err };
    }
  }

  hooks(a: Record<string, unknown>): Hooks & { done(): void } {
    const p = new Progress(this.io, !a.quiet && this.io.isTTY);
    return {
      warn: (m, parts) => this.io.err(`trt-debug: warning: ${parts ? flagText(parts) : m}`),
      progress: (phase, done, total) => p.update(phase, done, total),
      spell: flagText,
      done: () => p.clear(),
    };
  }

  /** Table (rows chosen by `show`), outputs, first failing layer, notes, verdict last (./compare-output.ts). */
  printCompare(s: CompareSummary, quiet: boolean, show: ShowSpec, rows: LayerComparison[]): void {
    for (const l of compareLines(s, rows, show, quiet)) this.io.out(l);
  }
}

