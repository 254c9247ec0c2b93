/**
 * How the library reports to its caller: it never prints or exits; warnings and progress
 * go through these optional callbacks (the CLI prints them; other programs may log them).
 */
export interface Hooks {
  warn?(message: string): void;
  /** Long work: `done` of `total` units of `phase`. */
  progress?(phase: string, done: number, total: number): void;
}
