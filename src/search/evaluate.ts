/**
 * Evaluating one candidate precision assignment: the pass criteria (compare verdict on the
 * graph outputs, a metric threshold, or an external command) and, for local runs, the cache
 * of live boundary tensors that lets a candidate start at the first segment whose prefix
 * differs from one already run.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { opt, optionError, optionText, UserError, type MessagePart } from "../core/errors.js";
import type { HostTensor, Precision } from "../core/host-tensor.js";
import type { Executor } from "../runtime/executor.js";
import { fromOrt, type OrtTensor } from "../onnx/ort-session.js";
import { makeFeeds } from "../runtime/capture-runs.js";
import { compareTensor } from "../compare/layer-compare.js";
import { floatValues } from "../numeric/index.js";
import { DEFAULT_MAX_REL_L2, fmt, judgeMetric, type CompareOptions } from "../compare/tolerance.js";
import { diffMetrics } from "../numeric/index.js";
import { planToJson, type PrecisionPlan } from "../precision/plan.js";

/** How a candidate is judged. */
export type Criterion =
  /** The compare verdict (default relative verdict, or Polygraphy's checks) on every graph output. */
  | { kind: "compare"; compare: CompareOptions }
  /** cosine similarity >= threshold, or SQNR (dB) >= threshold, on every graph output; new NaN/Inf fail. */
  | { kind: "metric"; metric: "cosine" | "sqnr"; threshold: number; compare: CompareOptions }
  /** An external command: exit status 0 = pass. */
  | { kind: "check"; command: string[] };

export interface Judgement {
  passed: boolean;
  /** The criterion's number (worst over the graph outputs); null for an external check. */
  metric: number | null;
  /** Short human-readable reason. */
  detail: string;
}

/** Name of the number a criterion reports. */
export function metricName(c: Criterion): string | null {
  if (c.kind === "check") return null;
  if (c.kind === "metric") return c.metric === "cosine" ? "min cosine" : "min SQNR dB";
  if (!c.compare.polygraphy) return "max rel L2";
  return "max abs error";
}

/** One line describing the criterion (for the summary and the JSON), in parts: it may name options (core/errors.ts optionText). */
export function describeCriterion(c: Criterion, precision: Precision): { message: string; parts: MessagePart[] } {
  if (c.kind === "check") return optionText`external check: ${c.command.join(" ")} (exit 0 = pass)`;
  if (c.kind === "metric") return optionText`${c.metric === "cosine" ? "cosine similarity" : "SQNR (dB)"} >= ${c.threshold} on every graph output, no new NaN/Inf`;
  if (c.compare.polygraphy) return optionText`Polygraphy tolerances (${opt("compare.polygraphyTolerances", "compare.atol/rtol/checkErrorStat")}) on every graph output`;
  return optionText`compare's default verdict on every graph output (no new NaN/Inf, rel L2 <= ${fmt(c.compare.maxRelL2 ?? DEFAULT_MAX_REL_L2[precision])} for ${precision} outputs)`;
}

/** Judge the candidate's graph outputs against the reference's. */
export function judgeOutputs(
  c: Exclude<Criterion, { kind: "check" }>,
  ref: Map<string, HostTensor>,
  cand: Map<string, OrtTensor>,
  outputPrecision: (tensor: string) => Precision,
  producer: (tensor: string) => { index: number; name: string; opType: string },
): Judgement {
  let passed = true;
  let worst: number | null = null;
  let detail = "";
  let worstDetail = "";
  const higherIsBetter = c.kind === "metric";
  const better = (a: number, b: number) => (higherIsBetter ? a > b : a < b) || (Number.isNaN(b) && !Number.isNaN(a));
  for (const [name, r] of ref) {
    const ct = cand.get(name);
    if (!ct) throw new Error(`graph output '${name}' missing from the candidate run`);
    const cv = fromOrt(name, ct);
    if (c.kind === "compare") {
      const p = producer(name);
      const l = compareTensor({ order: p.index, layer: p.name, opType: p.opType, precision: outputPrecision(name), isGraphOutput: true }, r, cv, c.compare);
      if (!l) continue;
      const v = c.compare.polygraphy ? l.verdict.minTolerance.abs : l.metrics.newNonFinite > 0 ? Infinity : l.metrics.relL2;
      const d = `${name}: ${l.verdict.reason}`;
      if (!l.verdict.passed) {
        if (passed) detail = d;
        passed = false;
      }
      if (worst === null || !better(v, worst)) {
        worst = v;
        worstDetail = d;
      }
    } else {
      const rv = floatValues(r), cvv = floatValues(cv);
      if (!rv || !cvv) continue;
      const m = diffMetrics(rv, cvv, { infinitiesCompareEqual: c.compare.infinitiesCompareEqual });
      const j = judgeMetric(m, c);
      const v = j.value;
      const ok = j.passed;
      const d = `${name}: ${j.reason}`;
      if (!ok) {
        if (passed) detail = d;
        passed = false;
      }
      if (worst === null || !better(v, worst)) {
        worst = v;
        worstDetail = d;
      }
    }
  }
  return { passed, metric: worst, detail: passed ? worstDetail || "no floating graph outputs" : detail };
}

/**
 * Run an external check on a candidate plan: the plan is written to a temporary file whose
 * path replaces `{plan}` in the arguments (or is appended as the last argument when no
 * argument contains `{plan}`) and is also in $TRT_DEBUG_PLAN. No shell is involved.
 */
export async function runExternalCheck(command: readonly string[], plan: PrecisionPlan, extraEnv: Record<string, string>): Promise<Judgement> {
  if (!command.length) throw optionError("criterion.command", "give the command to run (exit 0 = pass)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trt-debug-check-"));
  const file = path.join(dir, "candidate-plan.json");
  try {
    fs.writeFileSync(file, planToJson(plan));
    const has = command.some((a) => a.includes("{plan}"));
    const args = command.slice(1).map((a) => a.split("{plan}").join(file));
    const cmd = command[0]!.split("{plan}").join(file);
    if (!has) args.push(file);
    // Loaded on demand: execa and its dependencies are ~140 modules every command would load otherwise (docs/performance.md).
    const { execa } = await import("execa");
    const r = await execa(cmd, args, { reject: false, stdin: "ignore", env: { ...extraEnv, TRT_DEBUG_PLAN: file }, all: true, stripFinalNewline: true });
    if (r.exitCode === undefined && !r.signal) {
      throw optionError("criterion.command", `cannot run '${cmd}': ${(r as { code?: string }).code ?? String(r.shortMessage ?? r.message).split("\n")[0]}`);
    }
    const last = String(r.all ?? "").trim().split("\n").pop()?.trim() ?? "";
    const tail = last ? `: ${last.slice(0, 160)}` : "";
    if (r.signal) return { passed: false, metric: null, detail: `check killed by ${r.signal}${tail}` };
    return r.exitCode === 0 ? { passed: true, metric: null, detail: `check exit 0${tail}` } : { passed: false, metric: null, detail: `check exit ${r.exitCode}${tail}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// Local evaluation with prefix reuse
// ---------------------------------------------------------------------------------------

const CODE: Record<Precision, number> = { fp32: 1, fp16: 2, bf16: 3, fp8: 4, int8: 5 };

/**
 * Hashes of every prefix of a precision vector: h[b] identifies precisions[0..b) (and
 * contexts[0..b) when given: what the emulation policy read beyond each layer's own precision,
 * e.g. whether an int8 layer quantizes its output, which depends on consumers after b). Two
 * 32-bit FNV-1a lanes with different seeds (a collision needs both to collide). An empty
 * context leaves the hash as without one.
 */
export function prefixHashes(precisions: readonly Precision[], contexts?: readonly string[]): string[] {
  const out: string[] = new Array(precisions.length + 1);
  let a = 0x811c9dc5, b = 0x1b873593;
  const mix = (c: number) => {
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ (c + 0x9e), 0x5bd1e995) >>> 0;
    b = (b ^ (b >>> 15)) >>> 0;
  };
  out[0] = "0";
  for (let i = 0; i < precisions.length; i++) {
    mix(CODE[precisions[i]!]);
    const ctx = contexts?.[i];
    if (ctx) {
      mix(0x100 | ctx.length);
      for (let k = 0; k < ctx.length; k++) mix(0x200 + ctx.charCodeAt(k));
    }
    out[i + 1] = a.toString(36) + "." + b.toString(36);
  }
  return out;
}

/**
 * Least-recently-used map bounded by entry count and by the summed size of its entries
 * (`sizeOf`, e.g. bytes), with two tiers: "hot" entries (likely to be reused) are evicted only
 * when no ordinary entry is left. A hit promotes an entry to hot.
 */
export class LruMap<K, V> {
  private readonly hot = new Map<K, V>();
  private readonly cold = new Map<K, V>();
  private readonly sizes = new Map<K, number>();
  /** Summed size of the entries held. */
  total = 0;
  constructor(
    readonly capacity: number,
    readonly maxTotal = Infinity,
    readonly sizeOf: (v: V) => number = () => 0,
  ) {}
  get size(): number {
    return this.hot.size + this.cold.size;
  }
  get(k: K): V | undefined {
    const v = this.hot.get(k) ?? this.cold.get(k);
    if (v !== undefined) {
      this.hot.delete(k);
      this.cold.delete(k);
      this.hot.set(k, v);
      this.evict();
    }
    return v;
  }
  has(k: K): boolean {
    return this.hot.has(k) || this.cold.has(k);
  }
  set(k: K, v: V, hot = false): void {
    if (this.capacity <= 0) return;
    const size = this.sizeOf(v);
    if (size > this.maxTotal) return;
    const wasHot = this.hot.has(k);
    this.remove(k);
    (hot || wasHot ? this.hot : this.cold).set(k, v);
    this.sizes.set(k, size);
    this.total += size;
    this.evict();
  }
  private remove(k: K): void {
    this.hot.delete(k);
    this.cold.delete(k);
    this.total -= this.sizes.get(k) ?? 0;
    this.sizes.delete(k);
  }
  private evict(): void {
    while (this.size > this.capacity || this.total > this.maxTotal) {
      const m = this.cold.size ? this.cold : this.hot;
      this.remove(m.keys().next().value as K);
    }
  }
  clear(): void {
    this.hot.clear();
    this.cold.clear();
    this.sizes.clear();
    this.total = 0;
  }
}

/** Bytes held by a map of live tensors. */
export function liveBytes(live: Map<string, OrtTensor>): number {
  let n = 0;
  for (const t of live.values()) {
    const d = t.data as { byteLength?: number; length?: number };
    n += d.byteLength ?? 8 * (d.length ?? 0);
  }
  return n;
}

/**
 * Runs candidates on an executor, reusing the live tensors at segment starts from earlier
 * runs whose precisions agree on every layer before that segment. The cache is keyed by
 * (layer index of the boundary, hash of the precisions before it and of the policy's context
 * of those layers: an int8 layer quantizes its output or not depending on consumers that may
 * lie after the boundary, and the boundary holds that output), so boundaries recorded
 * by a run on another executor with compatible cuts (the one-layer reference run) are
 * reused too. Every segment start of every run is recorded; the count bound evicts the least
 * recently used, ordinary boundaries first: the "hot" ones (every ~sqrt(S)-th segment start,
 * and the starts next to layers the search is likely to change) go last, so a long run
 * cannot flush the boundaries the next candidates need.
 */
export class PrefixRunner {
  readonly boundaries: LruMap<string, Map<string, OrtTensor>>;
  private readonly stride: number;
  private readonly segAt: Map<number, number>;
  /** Layers skipped thanks to the cache, summed (for reports). */
  layersSkipped = 0;
  /** Boundaries next to these layers (execution indices) are kept hot. */
  hotLayers = new Set<number>();
  constructor(
    readonly exec: Executor,
    readonly inputs: HostTensor[],
    capacity: number,
    /** The starting precisions: a boundary next to a layer that differs from them is hot. */
    readonly base?: readonly Precision[],
    /** Max bytes of the boundary tensors kept (each boundary counts all the tensors it holds). */
    maxBytes = Infinity,
  ) {
    this.boundaries = new LruMap(capacity, maxBytes, liveBytes);
    this.stride = Math.max(1, Math.ceil(Math.sqrt(exec.segments.length)));
    this.segAt = new Map(exec.segments.map((sg, i) => [sg.start, i]));
  }

  private isHot(layerStart: number, segIndex: number, precisions?: readonly Precision[]): boolean {
    if (segIndex % this.stride === 0 || this.hotLayers.has(layerStart) || this.hotLayers.has(layerStart - 1)) return true;
    if (!precisions || !this.base) return false;
    return precisions[layerStart] !== this.base[layerStart] || precisions[layerStart - 1] !== this.base[layerStart - 1];
  }

  /** Drop every cached boundary. */
  clear(): void {
    this.boundaries.clear();
  }

  /** Record the live tensors at a boundary (a copy is kept). */
  record(layerStart: number, hash: string, live: Map<string, OrtTensor>, precisions?: readonly Precision[]): void {
    if (layerStart <= 0 || layerStart >= this.exec.model.graph.layers.length) return;
    const key = `${layerStart}|${hash}`;
    if (this.boundaries.has(key)) return;
    this.boundaries.set(key, new Map(live), this.isHot(layerStart, this.segAt.get(layerStart) ?? 1, precisions));
  }

  /** The boundary hashes of an assignment: h[b] identifies the live tensors at layer b (see prefixHashes). */
  hashes(precisions: readonly Precision[]): string[] {
    const policy = this.exec.policy;
    if (!policy.context) return prefixHashes(precisions);
    const layers = this.exec.model.graph.layers;
    return prefixHashes(precisions, layers.map((l) => policy.context!(l, precisions)));
  }

  /** Run under `precisions` and return the final live map (holding the graph outputs). `fresh`: ignore the cache. */
  async run(precisions: readonly Precision[], fresh = false): Promise<Map<string, OrtTensor>> {
    const segs = this.exec.segments;
    const h = this.hashes(precisions);
    let from = 0;
    let live: Map<string, OrtTensor> | undefined;
    if (!fresh) {
      for (let s = segs.length - 1; s >= 1; s--) {
        const hit = this.boundaries.get(`${segs[s]!.start}|${h[segs[s]!.start]!}`);
        if (hit) {
          from = s;
          live = new Map(hit);
          break;
        }
      }
    }
    live ??= makeFeeds(this.inputs);
    this.layersSkipped += segs[from]!.start;
    const gen = this.exec.run(precisions, live, () => false, {
      fromSegment: from,
      onSegmentDone: (seg, l) => {
        if (fresh || seg.end >= this.exec.model.graph.layers.length) return;
        const key = `${seg.end}|${h[seg.end]!}`;
        if (!this.boundaries.has(key)) this.boundaries.set(key, new Map(l), this.isHot(seg.end, seg.id + 1, precisions));
      },
    });
    for await (const _ of gen) {
      // outputs are read from the live map
    }
    return live;
  }
}
