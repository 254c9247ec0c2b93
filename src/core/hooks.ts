/**
 * How the library reports to its caller: it never prints or exits; warnings and progress
 * go through these optional callbacks (the CLI prints them; other programs may log them).
 */
import type { MessagePart } from "./errors.js";

/**
 * A warning: its text, options spelled by name, and, when it names options, the same text in
 * parts (core/errors.ts `optionText`) so that the CLI prints them as flags.
 */
export type Warn = (message: string, parts?: readonly MessagePart[]) => void;

export interface Hooks {
  warn?: Warn;
  /** Long work: `done` of `total` units of `phase`. */
  progress?(phase: string, done: number, total: number): void;
}
