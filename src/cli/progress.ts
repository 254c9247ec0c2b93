/** One-line progress on a TTY (stderr), throttled; silent otherwise. */
/** Where progress goes (shell.ts Io satisfies it). */
export interface ProgressIo {
  err: (s: string) => void;
}

export class Progress {
  private last = 0;
  private shown = false;
  private readonly started = Date.now();
  constructor(
    private readonly io: ProgressIo,
    private readonly enabled: boolean,
  ) {}
  update(phase: string, done: number, total: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.started < 1000 || (now - this.last < 100 && done < total)) return;
    this.last = now;
    const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
    process.stderr.write(`\r\x1b[2K${phase}: ${done}/${total} (${pct}%)`);
    this.shown = true;
  }
  clear(): void {
    if (this.shown) process.stderr.write("\r\x1b[2K");
    this.shown = false;
  }
}
