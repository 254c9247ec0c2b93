/**
 * The search strategies of `bisect`, over an abstract oracle: they only decide which
 * candidates to try, never run anything themselves, and are deterministic given the
 * oracle's answers (so a resumed search replays exactly, served from the memo).
 *
 * A candidate is a set of positions in the list of searchable layers (execution order) that
 * run in the pin precision; every other searchable layer keeps its starting precision.
 *
 * - minimal: rank by local sensitivity, find the smallest k such that the top-k pass
 *   (gallop from the number of locally failing layers, then binary search), then drop pins
 *   one at a time (lowest score first) while the check still passes.
 * - bisect (Polygraphy's BisectMarker): pin the first (forward) / last (reverse) k layers;
 *   k starts at N, then halves towards the last failing k (ceil on failure, floor on success)
 *   until good - bad <= 1.
 * - linear (Polygraphy's LinearMarker): k = 0, 1, 2, ... until the first k that passes.
 */

export type BisectMode = "minimal" | "bisect" | "linear";
export type Direction = "forward" | "reverse";

export type Phase = "sanity" | "baseline" | "gallop" | "binary" | "reduce" | "bisect" | "linear";

export interface TrialInfo {
  phase: Phase;
  /** For the prefix/suffix modes and the ranked phases: the k of "first/last/top k". */
  k?: number;
  /** The position being dropped in the reduce phase. */
  dropping?: number;
}

export interface OracleAnswer {
  passed: boolean;
}

/** Evaluates a candidate (positions into the searchable-layer list, ascending). */
export type Oracle = (pinned: readonly number[], info: TrialInfo) => Promise<OracleAnswer>;

export interface SearchOutcome {
  /** True when a candidate passed (the answer is `pinned`). */
  found: boolean;
  /** Positions (ascending) of the answer; empty when nothing needs pinning. */
  pinned: number[];
  /** For the prefix/suffix modes: the k found (Polygraphy's "first/last k layers"). */
  k?: number;
  /** Stopped early: passing needs more than `maxPinned` layers (`pinned` then holds a failing set of that size or a passing larger one). */
  stopped?: boolean;
}

/** Limits of a search: stop once the answer is known to pin more than `maxPinned` layers. */
export interface SearchLimits {
  maxPinned?: number;
}

/** Positions of the first (forward) or last (reverse) k of m layers. */
export function prefixSet(m: number, k: number, dir: Direction): number[] {
  const out: number[] = [];
  if (dir === "forward") for (let i = 0; i < k; i++) out.push(i);
  else for (let i = m - k; i < m; i++) out.push(i);
  return out;
}

/**
 * Polygraphy's bisect mode, preceded by one baseline trial with nothing pinned (Polygraphy
 * assumes it fails without trying; we try, so a model that already passes says so).
 */
export async function bisectSearch(m: number, dir: Direction, oracle: Oracle): Promise<SearchOutcome> {
  const base = await oracle([], { phase: "baseline", k: 0 });
  if (base.passed) return { found: true, pinned: [], k: 0 };
  if (m === 0) return { found: false, pinned: [] };
  let good = m + 1; // as Polygraphy: pretend pinning everything is good
  let bad = 0;
  let k = m;
  for (;;) {
    const r = await oracle(prefixSet(m, k, dir), { phase: "bisect", k });
    let next: number;
    if (r.passed) {
      good = k;
      next = Math.floor((good + bad) / 2);
    } else {
      bad = k;
      next = Math.ceil((good + bad) / 2);
    }
    if (next === k || good - bad <= 1 || next > m) break;
    k = next;
  }
  if (good > m) return { found: false, pinned: [] };
  return { found: true, pinned: prefixSet(m, good, dir), k: good };
}

/** Polygraphy's linear mode: k = 0, 1, 2, ... (forward: first k layers; reverse: last k). */
export async function linearSearch(m: number, dir: Direction, oracle: Oracle, lim: SearchLimits = {}): Promise<SearchOutcome> {
  for (let k = 0; k <= m; k++) {
    if (lim.maxPinned !== undefined && k > lim.maxPinned) return { found: false, stopped: true, pinned: prefixSet(m, k - 1, dir) };
    const r = await oracle(prefixSet(m, k, dir), { phase: k === 0 ? "baseline" : "linear", k });
    if (r.passed) return { found: true, pinned: prefixSet(m, k, dir), k };
  }
  return { found: false, pinned: [] };
}

/**
 * The number of trials Polygraphy's bisect makes on m layers when the smallest passing k is
 * `answer` (m + 1: nothing passes), excluding our baseline trial. For docs and tests.
 */
export function polygraphyBisectTrials(m: number, answer: number): number {
  let good = m + 1, bad = 0, k = m, n = 0;
  for (;;) {
    n++;
    let next: number;
    if (k >= answer) {
      good = k;
      next = Math.floor((good + bad) / 2);
    } else {
      bad = k;
      next = Math.ceil((good + bad) / 2);
    }
    if (next === k || good - bad <= 1 || next > m) return n;
    k = next;
  }
}

/**
 * Minimal mode. `order` lists the positions by decreasing score (the ranking), `scores` the
 * score of each position, `flagged` how many positions fail on their own (score >= 1).
 * Returns a 1-minimal set under the usual monotonicity assumption (pinning more never hurts):
 * dropping any one of its layers fails.
 */
export async function minimalSearch(order: readonly number[], scores: readonly number[], flagged: number, oracle: Oracle, lim: SearchLimits = {}): Promise<SearchOutcome> {
  const maxPinned = lim.maxPinned ?? order.length;
  const m = order.length;
  const top = (k: number) => [...order.slice(0, k)].sort((a, b) => a - b);
  const base = await oracle([], { phase: "baseline", k: 0 });
  if (base.passed) return { found: true, pinned: [] };
  if (m === 0) return { found: false, pinned: [] };
  // gallop: k0 = the locally failing layers, then doubling until a top-k passes
  let bad = 0;
  let good = -1;
  let k = Math.min(m, Math.max(1, flagged));
  for (;;) {
    const r = await oracle(top(k), { phase: "gallop", k });
    if (r.passed) {
      good = k;
      break;
    }
    bad = k;
    if (k >= m) return { found: false, pinned: [] };
    if (k >= maxPinned) return { found: false, stopped: true, pinned: top(k) };
    k = Math.min(m, 2 * k);
  }
  // most of the model: settle first whether top-maxPinned passes (if not, stop without the binary search)
  if (good > maxPinned && bad < maxPinned && maxPinned > 0) {
    const r = await oracle(top(maxPinned), { phase: "binary", k: maxPinned });
    if (!r.passed) return { found: false, stopped: true, pinned: top(maxPinned) };
    good = maxPinned;
  }
  // binary search for the smallest passing k in (bad, good]
  while (good - bad > 1) {
    const mid = Math.floor((good + bad) / 2);
    const r = await oracle(top(mid), { phase: "binary", k: mid });
    if (r.passed) good = mid;
    else bad = mid;
  }
  if (good > maxPinned) return { found: false, stopped: true, pinned: top(good) };
  // 1-minimal reduction: try dropping each pin, lowest score first (later rank first on ties)
  const rank = new Map(order.map((p, i) => [p, i]));
  let pinned = order.slice(0, good);
  const tryOrder = [...pinned].sort((a, b) => scores[a]! - scores[b]! || rank.get(b)! - rank.get(a)!);
  for (const p of tryOrder) {
    if (pinned.length === 1) break; // nothing pinned is the baseline, known to fail
    const trial = pinned.filter((q) => q !== p);
    const r = await oracle([...trial].sort((a, b) => a - b), { phase: "reduce", dropping: p });
    if (r.passed) pinned = trial;
  }
  return { found: true, pinned: [...pinned].sort((a, b) => a - b) };
}
