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
  /**
   * How texts a result keeps (warnings, notes, advice, the reason a search stopped) spell the
   * options they name: by default by their names (`valRange`, `loadInputs`); the CLI passes its
   * flag spelling (cli/options.ts flagText), so its printed lines and --json files name flags.
   */
  spell?: Spell;
}

/** A text in parts (core/errors.ts `optionText`) as one string, each option spelled the caller's way. */
export type Spell = (parts: readonly MessagePart[]) => string;

/** `text` as the caller spells options (`hooks.spell`), else with their names. */
export function spelled(hooks: Pick<Hooks, "spell"> | undefined, text: { message: string; parts: readonly MessagePart[] }): string {
  return hooks?.spell ? hooks.spell(text.parts) : text.message;
}
