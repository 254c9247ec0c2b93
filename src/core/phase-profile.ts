/**
 * Where a run's time goes, for `npm run bench -- --only overhead` (docs/performance.md). Off by
 * default: `time()` then costs one branch. The bench turns it on with `startPhaseProfile()` and
 * reads the totals with `takePhaseProfile()`; the library never prints them.
 *
 * Phases are wall-clock milliseconds on the JavaScript thread, summed over every occurrence.
 * onnxruntime-node 1.30 creates sessions and runs them synchronously on that thread, so
 * "session create" and "session run" include the native work; file writes run on libuv's pool
 * and overlap the next segment's compute, so "write wait" counts only the time spent blocked
 * on them. A phase whose name starts with two spaces is part of the phase before it (not to
 * be added to the total twice).
 */
export interface PhaseTime {
  phase: string;
  ms: number;
  count: number;
}

let totals: Map<string, PhaseTime> | null = null;

/** Start (or restart) collecting phase times in this process. */
export function startPhaseProfile(): void {
  totals = new Map();
}

/** The phases collected since `startPhaseProfile()`, in first-seen order; collection stops. */
export function takePhaseProfile(): PhaseTime[] {
  const out = totals ? [...totals.values()] : [];
  totals = null;
  return out;
}

/** A start mark for `phaseEnd` (0 when no profile is being collected). */
export function phaseStart(): number {
  return totals ? performance.now() : 0;
}

/** Add the time since `t0` (from `phaseStart`) to `phase`. */
export function phaseEnd(phase: string, t0: number): void {
  if (!totals) return;
  const ms = performance.now() - t0;
  const hit = totals.get(phase);
  if (hit) {
    hit.ms += ms;
    hit.count++;
  } else totals.set(phase, { phase, ms, count: 1 });
}

/** Time a promise-returning step as `phase`. */
export async function timedAsync<T>(phase: string, f: () => Promise<T>): Promise<T> {
  const t0 = phaseStart();
  try {
    return await f();
  } finally {
    phaseEnd(phase, t0);
  }
}

/** Time a synchronous step as `phase`. */
export function timed<T>(phase: string, f: () => T): T {
  const t0 = phaseStart();
  try {
    return f();
  } finally {
    phaseEnd(phase, t0);
  }
}
