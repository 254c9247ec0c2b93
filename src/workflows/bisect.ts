/**
 * Precision bisection: find, by name, the layers that must run in a higher precision for the
 * graph outputs to pass, and say why each one is needed. The candidate is fp16/bf16, or int8
 * (every eligible layer in int8, the others in the fallback precision; one int8 policy for the
 * model and cache serves every candidate, see precision/int8.ts).
 *
 * Cost model (counted in layers executed, reported as full-model-execution equivalents):
 * one FP32 reference run and one local sensitivity pass (each layer alone in the candidate
 * precision on the reference's inputs), both with one-layer segments (~2 executions); then
 * every evaluated candidate starts at the first segment whose prefix of precisions differs
 * from a run already made (cached boundary tensors), so candidates that only pin late layers
 * cost only the tail of the model; repeated candidates are served from the memo; the final
 * plan is re-run from scratch (1 execution).
 */
import { releaseModelWeights } from "../onnx/external-weights.js";
import { performance } from "node:perf_hooks";
import * as fs from "node:fs";
import { opt, optionError, optionText, precisionRef, UserError, userError, type MessagePart } from "../core/errors.js";
import { degenerateText } from "../compare/degenerate.js";
import { floatValues } from "../numeric/index.js";
import { isFloatDType, type Precision } from "../core/host-tensor.js";
import { runnerGraphOutputs } from "./compare-external.js";
import { toOrt } from "../onnx/ort-session.js";
import { fusionNote, precisionsFor, resolveInputs, withFallback, type ModelArgs } from "./model-inputs.js";
import { spelled, type Hooks } from "../core/hooks.js";
import { assertOpsetSupports } from "../runtime/upgrade.js";
import { DEFAULT_SEGMENT_LAYERS, Executor, checkSegmentLayers } from "../runtime/executor.js";
import { prepareModelFile, type PreparedModel } from "../runtime/capture-runs.js";
import { layerMemberNames } from "../onnx/model.js";
import { checkJudgeableOutputs } from "../compare/graph-outputs.js";
import type { TransformPolicy } from "../precision/rewrite.js";
import type { PlanEntry, PrecisionPlan } from "../precision/plan.js";
import { int8ReportLines, loadInt8, resolveInt8Run, type Int8Report, type PreparedInt8 } from "../calibration/int8-run.js";
import { bisectSearch, linearSearch, minimalSearch, type BisectMode, type Direction, type Oracle, type Phase, type TrialInfo } from "../search/strategies.js";
import { describeCriterion, judgeOutputs, metricName, PrefixRunner, runExternalCheck, type Criterion, type Judgement } from "../search/evaluate.js";
import type { LayerSensitivity } from "../search/sensitivity.js";
import { twinSensitivity } from "../search/twins.js";
import { candidateKey, checkpointText, fileHash, fingerprint, inputsHash, readCheckpointState, writeAtomic, type MemoEntry } from "../search/checkpoint.js";
import { expandFusedEntries, planEntries, planFor, polygraphyArgs, trtexecFlags, trtexecUnsafeNames } from "../search/export.js";

export type { BisectMode, Direction } from "../search/strategies.js";
export type { Criterion } from "../search/evaluate.js";

export const BISECT_FORMAT = "trt-debug/bisect@1";
/** Default --memory-budget: 2 GiB. */
export const DEFAULT_MEMORY_BUDGET = 2 * 2 ** 30;
/** Default --max-pinned: an answer pinning more than half the searchable layers is a stop. */
export const DEFAULT_MAX_PINNED_FRACTION = 0.5;

export interface BisectArgs extends ModelArgs {
  /**
   * The candidate (reduced) precision: every layer the starting plan does not name runs in it.
   * int8 (settings in `int8`: calibration cache, fallback, clamp range): every eligible layer in
   * int8, the others in the fallback precision, as resolveInt8 decides.
   */
  precision: Precision;
  /** What pinned layers run in (default fp32; fp32 or fp16 from the command line). */
  pinPrecision?: Precision;
  mode?: BisectMode;
  /** For bisect/linear: forward pins the first k layers, reverse the last k. */
  direction?: Direction;
  criterion: Criterion;
  /**
   * External runner (docs/interop.md): each candidate plan is run by this command
   * (placeholders {model} {inputs} {outputs} {plan}) and its graph outputs judged by
   * `criterion` (compare or metric) against trt-debug's FP32 reference.
   */
  runnerCmd?: string;
  /** Seconds before runnerCmd is killed (default 600). */
  runnerTimeout?: number;
  /** Checkpoint file (memoized evaluations); none when undefined. */
  checkpoint?: string;
  resume?: boolean;
  /** Max cached segment boundaries (LRU by count; default: bounded by the memory budget only). */
  boundaryCache?: number;
  /**
   * Bytes the search may hold in caches (boundary tensors, segment sessions, one sensitivity
   * group's tensors); default DEFAULT_MEMORY_BUDGET (2 GiB). See docs/bisect.md.
   */
  memoryBudget?: number;
  /**
   * Stop (found false, `stopped` says why) when the answer would pin more than this fraction of
   * the searchable layers: that is the FP32 model, not a plan. Default 0.5 for --mode minimal;
   * for bisect/linear (whose "first/last k" answers cover layers that are fine on their own),
   * by default they stop only when every searchable layer would be pinned.
   */
  maxPinnedFraction?: number;
  /** Leave the checkpoint in place on success (the CLI removes it after writing its outputs). */
  keepCheckpoint?: boolean;
  /** Emulation policy (default: the float policy, or the model's int8 policy when a layer asks for int8). */
  policy?: TransformPolicy;
}

export interface IterationRecord {
  /** 1-based. */
  iteration: number;
  phase: Phase;
  k: number | null;
  /** Number of layers the search pins in this candidate. */
  size: number;
  /** Their names (null when more than 32; see `selection`). */
  pinned: string[] | null;
  /** "none", "first 12", "last 3", "top 4 by sensitivity", "top 3 minus ln1/var". */
  selection: string;
  passed: boolean;
  metric: number | null;
  detail: string;
  /** Served from the memo (an earlier identical candidate, or the checkpoint on --resume). */
  cached: boolean;
  /** Layers this evaluation executed (0 when cached or external). */
  layers_executed: number;
}

export interface PinnedLayer {
  name: string;
  op_type: string;
  /** The layer's ONNX nodes (several for a fused group: all of them go into the trtexec flags). */
  nodes: string[];
  order: number;
  precision: Precision;
  /** Local sensitivity score (1e6 new NaN/Inf, 1e3 flush to zero, else local rel L2 / threshold). */
  score: number | null;
  kind: string;
  /** Local relative L2 error of the layer alone in the candidate precision on fp32 inputs. */
  local_rel_l2: number | null;
  evidence: string[];
  /** What the graph outputs do when this layer alone is unpinned (from the reduce phase), if known. */
  unpinned: { passed: boolean; metric: number | null; detail: string } | null;
}

export interface BisectResult {
  format: typeof BISECT_FORMAT;
  model: string;
  mode: BisectMode;
  direction: Direction | null;
  precision: Precision;
  pin_precision: Precision;
  criterion: string;
  metric_name: string | null;
  total_layers: number;
  searchable_layers: number;
  /** True when a plan passed the search and the final verification. */
  found: boolean;
  /** Why the search stopped without a plan although pinning enough passes (the answer would pin most of the model); null otherwise. */
  stopped: string | null;
  /** Layers the search pinned (names, execution order). */
  pinned_layers: string[];
  pinned: PinnedLayer[];
  /** For bisect/linear: the k found ("first/last k layers"). */
  k: number | null;
  /** Every layer not in the candidate precision (starting plan overrides and pins). */
  plan_entries: PlanEntry[];
  plan: PrecisionPlan | null;
  trtexec_flags: string | null;
  polygraphy_args: string | null;
  iterations: IterationRecord[];
  evaluations: number;
  cached_evaluations: number;
  /** Full-model-execution equivalents: layers executed / total layers. */
  model_executions: number;
  executions: { reference_and_sensitivity: number; search: number; final_verification: number };
  /** The local sensitivity pass: layers scored by this run, layers taken from the checkpoint, sessions it built. */
  sensitivity_pass: { evaluated: number; from_checkpoint: number; sessions_built: number; groups: number };
  /** Sessions built by the whole run, and per model layer. */
  sessions_built: number;
  sessions_per_layer: number;
  memory_budget: number;
  wall_seconds: number;
  final_verification: { passed: boolean; metric: number | null; detail: string } | null;
  /** Layers that fail on their own (local sensitivity score >= 1), highest first. */
  sensitive_layers: { name: string; op_type: string; score: number; kind: string; evidence: string[] }[];
  checkpoint: string | null;
  resumed: boolean;
  /** `--save-onnx`: the strongly typed model of the plan (set by the caller through saveTypedPlan, workflows/save-typed.ts). */
  saved_onnx?: { output: string; data: string | null; fp32_layers: string[]; fp32_nodes: string[]; trtexec: string; autocast: string };
  /** `--int8 --save-onnx`: the Q/DQ model of the plan (set by the caller through saveInt8Plan, workflows/save-int8.ts). */
  saved_qdq?: { output: string; int8_layers: string[]; fp32_layers: string[]; reduced_layers?: string[]; compare: { passed: boolean; detail: string } | null; trtexec: string };
  notes: string[];
  /** int8 searches (present only then): cache read, layers in int8, every fallback with its reason. */
  int8?: Int8Report;
}

export interface BisectHooks extends Hooks {
  /** After every evaluation (one line per iteration). */
  onIteration?(it: IterationRecord): void;
  /** Phase messages ("reference + sensitivity: 2 layers fail on their own"). */
  onPhase?(message: string): void;
  /** runnerCmd: one line of the runner's stdout or stderr, as it comes. */
  onRunnerLine?(line: string, stream: "stdout" | "stderr"): void;
}

/** Whether a layer reads or writes any floating tensor (only those can be affected by precision). */
function hasFloat(p: PreparedModel, i: number): boolean {
  const l = p.model.graph.layers[i]!;
  for (const t of [...l.inputs, ...l.outputs]) {
    if (t === "") continue;
    const ty = p.types.get(t);
    if (ty && isFloatDType(ty.dtype)) return true;
  }
  return false;
}

export async function bisectModel(a: BisectArgs, hooks: BisectHooks = {}): Promise<BisectResult> {
  const t0 = performance.now();
  const r = await runBisect(a, hooks);
  r.wall_seconds = (performance.now() - t0) / 1000;
  return r;
}

async function runBisect(a: BisectArgs, hooks: BisectHooks): Promise<BisectResult> {
  const mode = a.mode ?? "minimal";
  const dir = a.direction ?? "forward";
  const pin = a.pinPrecision ?? "fp32";
  if (pin === a.precision) throw new UserError(`pinPrecision ${pin}: pinned layers must run in a precision other than the candidate ${a.precision}`, "pinPrecision");
  if (pin === "int8" || (pin === "fp8" && a.int8?.qtype === "fp8")) throw new UserError(`pinPrecision ${pin}: pinned layers run in a floating precision (fp32 or fp16)`, "pinPrecision");
  checkSegmentLayers(a.segmentLayers);
  if (a.segmentMemory !== undefined) throw userError`${opt("segmentMemory")}: bisect cuts its segments by layer count (${opt("segmentLayers")}, default ${DEFAULT_SEGMENT_LAYERS}) and caches them under ${opt("memoryBudget")}; leave ${opt("segmentMemory")} out`;
  if (a.boundaryCache !== undefined && (!Number.isInteger(a.boundaryCache) || a.boundaryCache < 0)) {
    throw new UserError(`boundaryCache: must be a non-negative integer (got ${a.boundaryCache})`, "boundaryCache");
  }
  const budget = a.memoryBudget ?? DEFAULT_MEMORY_BUDGET;
  if (!(budget > 0) || !Number.isFinite(budget)) throw new UserError(`memoryBudget: must be a positive size such as 2G or 512M (got ${a.memoryBudget})`, "memoryBudget");
  const maxFrac = a.maxPinnedFraction ?? DEFAULT_MAX_PINNED_FRACTION;
  if (!(maxFrac > 0 && maxFrac <= 1)) throw new UserError(`maxPinnedFraction: must be a fraction in (0, 1] (got ${a.maxPinnedFraction})`, "maxPinnedFraction");
  if (a.criterion.kind === "metric" && !Number.isFinite(a.criterion.threshold)) throw optionError("criterion.threshold", "must be a number");
  if (a.criterion.kind === "check" && a.criterion.command.length === 0) throw optionError("criterion.command", "give the command to run (exit 0 = pass)");
  if (a.runnerCmd !== undefined && a.criterion.kind === "check") throw userError`${opt("runnerCmd")}: not with ${opt("criterion.command")} (the runner's outputs are judged by the compare criterion; ${opt("criterion.command")} judges by exit status)`;

  const p = await prepareModelFile(a.model, a);
  checkJudgeableOutputs(p.model.path, p.model.graph);
  assertOpsetSupports(p.model, p.types, withFallback(precisionsFor(p, a.precision, a), a), a.int8?.range);
  const inputs = await resolveInputs(p, a.inputs, hooks);
  const layers = p.model.graph.layers;
  const n = layers.length;
  // What the user asked for (candidate default, starting plan, overrides): the exported plans
  // are written against it. With int8 in it, `base` is what runs: int8 where eligible, the
  // fallback precision elsewhere (resolveInt8); pinned layers change both the same way.
  const requested = precisionsFor(p, a.precision, a);
  let base = requested;
  let i8: PreparedInt8 | null = null;
  let policy = a.policy;
  // int8, or scaled fp8 (`--fp8`, a fp8 Q/DQ --candidate): the quantized layers' precision
  if (requested.includes(a.int8?.qtype ?? "int8")) {
    const ctx = await loadInt8(p.model, p.types, a.int8);
    if (ctx.policy.data.mode === "explicit") {
      throw userError`bisect ${precisionRef("int8")}: ${a.model} is explicitly quantized (QuantizeLinear/DequantizeLinear nodes): its Q/DQ nodes decide what runs in int8 and pinning layers cannot change them; remove the Q/DQ pairs around a layer to keep it out of int8, or bisect the model without Q/DQ with a calibration cache`;
    }
    i8 = resolveInt8Run(ctx, p.model, p.types, requested, (msg, parts) => hooks.warn?.(msg, parts));
    base = i8.resolution.precisions;
    policy = ctx.policy;
    for (const line of int8ReportLines(i8.report, 8, hooks)) hooks.onPhase?.(line);
  }
  const cands: number[] = [];
  for (let i = 0; i < n; i++) if (base[i] !== pin && hasFloat(p, i)) cands.push(i);
  const searchable = new Set(cands);

  const fp = fingerprint({
    tool: BISECT_FORMAT,
    model: fileHash(a.model),
    inputs: inputsHash(inputs),
    precision: a.precision,
    pin,
    mode,
    dir: mode === "minimal" ? null : dir,
    base: base.join(","),
    criterion: a.criterion,
    ...(a.runnerCmd !== undefined ? { runnerCmd: a.runnerCmd } : {}),
    int8: i8 ? { cache: a.int8?.calibrationCache ? fileHash(a.int8.calibrationCache) : null, fallback: i8.resolution.fallback, range: i8.resolution.range, requested: requested.join(",") } : undefined,
  });
  const state = a.resume ? readCheckpointState(requireCheckpoint(a), fp) : { memo: new Map<string, MemoEntry>(), sensitivity: new Map<number, LayerSensitivity>() };
  const memo = state.memo;
  const sensStore = state.sensitivity;
  const resumedFrom = memo.size + sensStore.size;
  if (!a.resume && a.checkpoint && fs.existsSync(a.checkpoint)) {
    const w = optionText`${a.checkpoint}: an earlier checkpoint exists; starting over (use ${opt("resume")} to continue it)`;
    hooks.warn?.(w.message, w.parts);
  }

  const execOpts = { optimizationLevel: a.optimization, policy };
  const sensExec = new Executor(p.model, p.types, { ...execOpts, segmentLayers: 1 });
  const evalExec = (a.segmentLayers ?? DEFAULT_SEGMENT_LAYERS) === 1 ? sensExec : new Executor(p.model, p.types, { ...execOpts, segmentLayers: a.segmentLayers ?? DEFAULT_SEGMENT_LAYERS });
  // Memory budget: half for boundary tensors, a quarter for cached sessions, an eighth for one
  // sensitivity group's tensors (the rest is the working set of one run).
  for (const e of new Set([sensExec, evalExec])) {
    e.maxCachedSessions = Math.max(e.maxCachedSessions, 4 * e.segments.length + 64);
    e.maxCachedSessionBytes = budget / 4;
  }
  const executed = () => sensExec.stats.layersExecuted + (evalExec !== sensExec ? evalExec.stats.layersExecuted : 0);
  const sessions = () => sensExec.stats.sessionsBuilt + (evalExec !== sensExec ? evalExec.stats.sessionsBuilt : 0);
  const runner = new PrefixRunner(evalExec, inputs, a.boundaryCache ?? Infinity, base, budget / 2);
  const persist = () => {
    if (a.checkpoint) writeAtomic(a.checkpoint, checkpointText(fp, a.model, memo, sensStore));
  };

  try {
    // ---- reference + local sensitivity -------------------------------------------------
    const evalStarts = new Set(evalExec.segments.map((s) => s.start));
    const refHash = runner.hashes(layers.map(() => "fp32" as Precision));
    const known = new Map(sensStore);
    const ref = await twinSensitivity(sensExec, inputs, {
      precision: a.precision,
      candidate: base,
      searchable,
      maxRelL2: a.criterion.kind === "check" ? undefined : a.criterion.compare.maxRelL2,
      known,
      groupBytes: budget / 8,
      boundaries: evalStarts,
      onBoundary: (b, live) => {
        if (evalStarts.has(b)) runner.record(b, refHash[b]!, live);
      },
      onScored: (scored) => {
        for (const sc of scored) sensStore.set(sc.index, sc);
        persist();
      },
      progress: (d, t) => hooks.progress?.("reference + sensitivity", d, t),
    });
    // A degenerate reference output (a sigmoid map ~1e-9 under random inputs) would make the
    // search chase noise: stop here with compare's one line (docs/precision.md "Degenerate references").
    if (a.criterion.kind !== "check" && !a.criterion.compare.allowDegenerate) {
      for (const [name, t] of ref.outputs) {
        const v = floatValues(t);
        const d = v ? degenerateText(name, v, a.precision) : null;
        if (d && d.kind !== "nonfinite") throw userError`${d.parts}; bisect would search on noise, so it stops before searching`;
      }
    }
    const refExec = executed();
    const sens = (i: number): LayerSensitivity | undefined => ref.sensitivity.get(i);
    const scores = cands.map((i) => sens(i)?.score ?? 0);
    const order = cands.map((_, k) => k).sort((x, y) => scores[y]! - scores[x]! || x - y);
    const flagged = scores.filter((s) => s >= 1).length;
    // boundaries next to the layers the search will try first are kept longest
    for (const k of order.slice(0, Math.max(8, 2 * flagged))) runner.hotLayers.add(cands[k]!);
    const sensitive = order
      .filter((k) => scores[k]! >= 1)
      .map((k) => {
        const s = sens(cands[k]!)!;
        return { name: s.name, op_type: s.opType, score: s.score, kind: s.kind, evidence: s.evidence };
      });
    hooks.onPhase?.(
      `reference + local sensitivity (${fmtExec(refExec / n)} model executions): ${flagged} of ${cands.length} searchable layers fail on their own${
        flagged ? ": " + sensitive.slice(0, 8).map((s) => `${s.name} (${s.kind})`).join(", ") + (flagged > 8 ? ", ..." : "") : ""
      }`,
    );

    // ---- the oracle ----------------------------------------------------------------------
    const graphOutProducer = (t: string) => {
      const i = p.model.graph.producer.get(t);
      const l = i === undefined ? undefined : layers[i];
      return { index: l?.index ?? -1, name: l?.name ?? t, opType: l?.opType ?? "" };
    };
    /** The assignment that runs and the one the plans name (they differ by the int8 fallbacks). */
    const withPins = (pos: readonly number[]) => {
      const run = [...base], asked = [...requested];
      for (const q of pos) run[cands[q]!] = asked[cands[q]!] = pin;
      return { run, asked };
    };
    const judge = async (cand: { run: Precision[]; asked: Precision[] }, fresh: boolean): Promise<Judgement & { layers: number }> => {
      const before = executed();
      const precisions = cand.run;
      if (a.runnerCmd !== undefined && a.criterion.kind !== "check") {
        const plan = planFor(layers, cand.asked, a.precision, { tool: "trt-debug bisect", candidate: true, model: a.model });
        const got = await runnerGraphOutputs({ runnerCmd: a.runnerCmd, runnerTimeout: a.runnerTimeout, model: a.model, plan, inputs, outputs: [...ref.outputs.keys()] }, hooks);
        const live = new Map([...got].map(([k, t]) => [k, toOrt(t)] as const));
        return { ...judgeOutputs(a.criterion, ref.outputs, live, () => a.precision, graphOutProducer), layers: 0 };
      }
      if (a.criterion.kind === "check") {
        const entries = planEntries(layers, cand.asked, a.precision);
        const plan = planFor(layers, cand.asked, a.precision, { tool: "trt-debug bisect", candidate: true, model: a.model });
        const j = await runExternalCheck(a.criterion.command, plan, {
          TRT_DEBUG_TRTEXEC_FLAGS: trtexecFlags(expandFusedEntries(layers, entries)),
          TRT_DEBUG_POLYGRAPHY_ARGS: polygraphyArgs(expandFusedEntries(layers, entries)),
          TRT_DEBUG_MODEL: a.model,
        });
        return { ...j, layers: 0 };
      }
      const live = await runner.run(precisions, fresh);
      // Outputs are judged at the candidate precision whatever layer produced them: an output
      // computed in fp32 from fp16 inputs carries fp16 error, not fp32 error.
      const j = judgeOutputs(a.criterion, ref.outputs, live, () => a.precision, graphOutProducer);
      return { ...j, layers: executed() - before };
    };
    const iterations: IterationRecord[] = [];
    const dropResults = new Map<number, Judgement>();
    let baseline = null as Judgement | null;
    const oracle: Oracle = async (pos, info: TrialInfo) => {
      const cand = withPins(pos);
      const key = candidateKey(cand.run);
      const hit = memo.get(key);
      let j: Judgement, cached: boolean, used = 0;
      if (hit) {
        j = { passed: hit.passed, metric: hit.metric, detail: hit.detail };
        cached = true;
      } else {
        const r = await judge(cand, false);
        j = { passed: r.passed, metric: r.metric, detail: r.detail };
        used = r.layers;
        cached = false;
        memo.set(key, { passed: j.passed, metric: j.metric, detail: j.detail, pinned_count: pos.length });
        persist();
      }
      if (info.phase === "baseline") baseline = j;
      if (info.phase === "reduce" && info.dropping !== undefined) dropResults.set(info.dropping, j);
      const names = pos.map((q) => layers[cands[q]!]!.name);
      const rec: IterationRecord = {
        iteration: iterations.length + 1,
        phase: info.phase,
        k: info.k ?? null,
        size: pos.length,
        pinned: names.length <= 32 ? names : null,
        selection: selection(info, pos.length, dir, mode, info.dropping !== undefined ? layers[cands[info.dropping]!]!.name : undefined),
        passed: j.passed,
        metric: j.metric,
        detail: j.detail,
        cached,
        layers_executed: used,
      };
      iterations.push(rec);
      hooks.onIteration?.(rec);
      return { passed: j.passed };
    };

    // ---- criteria sanity: once the baseline (nothing pinned) fails, and before the search
    // proper, the all-pinned plan must pass, or no plan can ---------------------------------
    const m = cands.length;
    let sane = false;
    const checked: Oracle = async (pos, info) => {
      if (!sane && info.phase !== "baseline" && m > 0) {
        sane = true;
        const all = await oracle(cands.map((_, q) => q), { phase: "sanity", k: m });
        if (!all.passed) {
          const last = iterations[iterations.length - 1]!;
          throw userError`${criterionRef(a.criterion)}: the criterion fails even with all ${m} searchable layers in ${pin} (${last.detail}); bisect cannot find a plan: loosen the criterion, or check the inputs (${opt("loadInputs")} / ${opt("valRange")}) and the reference`;
        }
      }
      return oracle(pos, info);
    };

    // ---- search --------------------------------------------------------------------------
    // --mode bisect/linear answer "the first/last k", which covers layers that are fine on their
    // own: without an explicit --max-pinned they stop only when every searchable layer would be pinned
    const prefixDefault = mode !== "minimal" && a.maxPinnedFraction === undefined;
    const maxPinned = prefixDefault ? m - 1 : Math.floor(maxFrac * m);
    const outcome =
      mode === "minimal" ? await minimalSearch(order, scores, flagged, checked, { maxPinned }) : mode === "bisect" ? await bisectSearch(m, dir, checked) : await linearSearch(m, dir, checked, { maxPinned });
    const searchExec = executed() - refExec;
    let stopped: string | null = null;
    if (outcome.stopped || (outcome.found && outcome.pinned.length > maxPinned)) {
      const k = outcome.pinned.length;
      const why = prefixDefault ? ["all of them; ", opt("mode"), ` ${mode} stops only then unless `, opt("maxPinnedFraction"), " is given"] : ["more than ", opt("maxPinnedFraction"), ` ${maxFrac}`];
      // an If/Loop/Scan is one layer: its body cannot be split, which (not the criterion) may be why all of it is pinned
      const cf = outcome.pinned.map((q) => layers[cands[q]!]!).filter((l) => l.opType === "If" || l.opType === "Loop" || l.opType === "Scan");
      const cfNote = cf.length ? `; ${cf.map((l) => `${l.name} (${l.opType})`).join(", ")} ${cf.length === 1 ? "is a control-flow layer, pinned" : "are control-flow layers, pinned"} with ${cf.length === 1 ? "its" : "their"} whole body (compare names the first failing node inside a body); otherwise` : "";
      stopped = spelled(hooks, optionText`this is FP32, not a plan: ${outcome.stopped && k < m ? "more than " : ""}${k} of ${m} searchable layers (${((100 * k) / m).toFixed(0)}%) would be pinned in ${pin} (${why})${cfNote}${cf.length ? " " : "; "}your criterion or inputs are too strict: ${describeCriterion(a.criterion, a.precision).parts}; use realistic inputs (${opt("loadInputs")}) or a looser criterion`);
      outcome.found = false;
      hooks.onPhase?.(`stopped: ${stopped}`);
    }

    // ---- final verification (always re-run, never from the memo) --------------------------
    let final: BisectResult["final_verification"] = null;
    const finalP = withPins(outcome.pinned);
    if (outcome.found) {
      runner.clear();
      const r = await judge(finalP, true);
      final = { passed: r.passed, metric: r.metric, detail: r.detail };
      hooks.onPhase?.(`final verification of ${outcome.pinned.length} pinned layer(s): ${r.passed ? "PASSED" : "FAILED"} (${r.detail})`);
    }
    const verifyExec = executed() - refExec - searchExec;
    const found = outcome.found && final !== null && final.passed;

    const pinnedIdx = outcome.pinned.map((q) => cands[q]!);
    const pinned: PinnedLayer[] = outcome.pinned.map((q) => {
      const i = cands[q]!;
      const s = sens(i);
      const drop = dropResults.get(q) ?? (outcome.pinned.length === 1 ? baseline : null);
      return {
        name: layers[i]!.name,
        op_type: layers[i]!.opType,
        nodes: layerMemberNames(layers[i]!),
        order: i,
        precision: pin,
        score: s?.score ?? null,
        kind: s?.kind ?? "ok",
        local_rel_l2: s?.relL2 ?? null,
        evidence: s?.evidence ?? [],
        unpinned: drop && !drop.passed ? { passed: drop.passed, metric: drop.metric, detail: drop.detail } : null,
      };
    });
    const entries = planEntries(layers, outcome.found ? finalP.asked : requested, a.precision);
    const notes: string[] = [];
    if (mode !== "minimal") notes.push(`k counts the ${m} searchable layers in execution order (layers with floating tensors not already in ${pin}); trt-debug names them, Polygraphy only counts`);
    const unsafe = trtexecUnsafeNames(expandFusedEntries(layers, entries));
    if (unsafe.length) notes.push(`trtexec splits --layerPrecisions at commas; these names cannot be given to it: ${unsafe.join(", ")}`);
    notes.push(fusionNote(a.precision, a.fusion, hooks));
    if (i8) {
      notes.push(...i8.report.notes);
      if (i8.resolution.fallbacks.length) {
        const k = i8.resolution.fallbacks.length;
        const one = k === 1;
        notes.push(
          spelled(hooks, optionText`int8: ${k} layer${one ? "" : "s"} that cannot run in int8 run${one ? "s" : ""} in ${i8.resolution.fallback}${pin === i8.resolution.fallback ? " (the pin precision: not searchable)" : ""}; ${one ? "it is not a plan entry" : "they are not plan entries"}: reloading the plan with ${precisionRef("int8")} ${opt("int8.calibrationCache")} falls ${one ? "it" : "them"} back again`),
        );
      }
    }
    if (found && a.checkpoint && !a.keepCheckpoint) fs.rmSync(a.checkpoint, { force: true });

    const meta = { tool: "trt-debug bisect", model: a.model, mode, ...(mode === "minimal" ? {} : { direction: dir }), precision: a.precision, pin_precision: pin, pinned: pinnedIdx.map((i) => layers[i]!.name) };
    return {
      format: BISECT_FORMAT,
      model: a.model,
      mode,
      direction: mode === "minimal" ? null : dir,
      precision: a.precision,
      pin_precision: pin,
      criterion: spelled(hooks, describeCriterion(a.criterion, a.precision)),
      metric_name: metricName(a.criterion),
      total_layers: n,
      searchable_layers: m,
      found,
      stopped,
      pinned_layers: pinnedIdx.map((i) => layers[i]!.name),
      pinned,
      k: outcome.k ?? null,
      plan_entries: entries,
      plan: found ? planFor(layers, finalP.asked, a.precision, meta) : null,
      trtexec_flags: found ? trtexecFlags(expandFusedEntries(layers, entries)) : null,
      polygraphy_args: found ? polygraphyArgs(expandFusedEntries(layers, entries)) : null,
      iterations,
      evaluations: iterations.filter((i) => !i.cached).length,
      cached_evaluations: iterations.filter((i) => i.cached).length,
      model_executions: executed() / n,
      executions: { reference_and_sensitivity: refExec / n, search: searchExec / n, final_verification: verifyExec / n },
      sensitivity_pass: { evaluated: ref.stats.twinLayers + ref.stats.fallbackLayers, from_checkpoint: ref.stats.knownLayers, sessions_built: ref.stats.sessionsBuilt, groups: ref.stats.groups },
      sessions_built: sessions(),
      sessions_per_layer: sessions() / n,
      memory_budget: budget,
      wall_seconds: 0,
      final_verification: final,
      sensitive_layers: sensitive,
      checkpoint: a.checkpoint ?? null,
      resumed: Boolean(a.resume) && resumedFrom > 0,
      notes,
      ...(i8 ? { int8: i8.report } : {}),
    };
  } finally {
    // counted in wall_seconds (below): releasing is part of the run
    runner.clear();
    await sensExec.release();
    if (evalExec !== sensExec) await evalExec.release();
    releaseModelWeights(p.model);
  }
}

/** "2G", "512M", "1.5GiB", "300000000" -> bytes (K/M/G/T are powers of 1024). */

/**
 * What a criterion comes from (for one-line refusals), as options: the check command, the
 * metric and its threshold, Polygraphy's tolerances, or the relative L2 bound.
 */
function criterionRef(c: Criterion): MessagePart[] {
  if (c.kind === "check") return [opt("criterion.command")];
  if (c.kind === "metric") return [opt(`criterion.${c.metric}`, `${c.metric} >=`), ` ${c.threshold}`];
  if (c.compare.polygraphy) return [opt("compare.polygraphy", "compare atol/rtol")];
  return c.compare.maxRelL2 !== undefined ? [opt("compare.maxRelL2"), ` ${c.compare.maxRelL2}`] : ["criterion"];
}

function requireCheckpoint(a: BisectArgs): string {
  if (!a.checkpoint) throw userError`${opt("resume")}: needs a checkpoint file (${opt("checkpoint")} FILE, or the default next to -o)`;
  return a.checkpoint;
}

function selection(info: TrialInfo, size: number, dir: Direction, mode: BisectMode, dropping?: string): string {
  if (size === 0) return "none";
  switch (info.phase) {
    case "bisect":
    case "linear":
    case "baseline":
      return `${dir === "forward" ? "first" : "last"} ${info.k ?? size}`;
    case "gallop":
    case "binary":
      return `top ${info.k ?? size} by sensitivity`;
    case "reduce":
      return `${size + 1} minus ${dropping ?? "?"}`;
    case "sanity":
      return "all";
  }
  return mode;
}

export function fmtExec(x: number): string {
  return x >= 10 ? x.toFixed(1) : x.toFixed(2);
}
