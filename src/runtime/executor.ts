/**
 * Segmented execution on onnxruntime-node.
 *
 * The layers (in execution order) are cut into segments of at most `segmentLayers` layers.
 * Each segment becomes its own small ONNX model whose inputs are the tensors it reads from
 * earlier segments (or the graph inputs) and whose outputs are the tensors it captures plus
 * the ones later segments need. Running segment after segment computes the same values as
 * the whole model, but at any moment only one segment's outputs and the live boundary
 * tensors are held: memory does not grow with the number of layers. A run can also start
 * at a later segment from cached boundary tensors (bisection reuses unchanged prefixes).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { GraphProtoSchema, ModelProtoSchema, TensorProto_DataType, ValueInfoProtoSchema, type NodeProto, type OperatorSetIdProto, type TensorProto } from "onnx-buf";
import { optionError, precisionRef, UserError, userError, type OptionRef } from "../core/errors.js";
import type { Precision } from "../core/host-tensor.js";
import type { LoadedModel } from "../onnx/model.js";
import { tensorValueInfo, type TypeMap } from "../onnx/infer.js";
import { dtypeToOnnx } from "../core/dtype.js";
import { floatPolicy, rewriteLayers, WeightCache, type TransformPolicy } from "../precision/rewrite.js";
import type { OrtWorker } from "../onnx/ort-worker.js";
import { createSession, fetchable, runSession, type OptimizationLevel, type OrtTensor, type Session } from "../onnx/ort-session.js";
import { markUpgradeVerified, rememberedFeeds, rememberFeeds, upgradeSegment, upgradeTargetOf, upgradeVerified, type UpgradedSegment } from "./upgrade.js";
import { phaseEnd, phaseStart } from "../core/phase-profile.js";
import { estimateTensorBytes, plannedTensorBytes } from "./size-estimate.js";

export { estimateTensorBytes };

export interface Segment {
  id: number;
  /** Execution indices [start, end). */
  start: number;
  end: number;
  /** Non-initializer tensors read from outside the segment. */
  inputs: string[];
  /** Tensors produced here and read by later segments or by the graph outputs. */
  liveOut: string[];
}

/**
 * Layers per segment. Measured on the 20M-parameter bench model (2 cores): 8 layers ran
 * `run --mark-all` in 2.4 s at 330 MB peak RSS, 24 layers in 3.0 s at 450 MB, one segment
 * in 10+ s at 1.5 GB (onnxruntime holding every output at once is what mark-all costs).
 */
export const DEFAULT_SEGMENT_LAYERS = 8;

/**
 * Bytes of activations one segment may hold when neither `segmentLayers` nor `segmentMemory`
 * is given: its layers' outputs (onnxruntime returns every captured one at once) plus the
 * tensors it reads from earlier segments. A model whose activations fit runs as one session;
 * larger ones are cut where the running sum would pass this. 16 MiB: on the 16-core host the
 * detector-like net ran `run --mark-all --save-outputs` in 0.84 s at 219 MB peak RSS with 16M,
 * 0.87 s / 296 MB with 64M, 0.91 s / 402 MB as one session: time flat, memory not; with sizes
 * of unknown shapes estimated (size-estimate.ts: 12 segments instead of 26) 16M ran it in
 * 777 ms / 221 MB and compare in 936 ms against 845 ms and 1015 ms for 8-layer segments
 * (docs/performance.md).
 */
export const DEFAULT_SEGMENT_MEMORY = 16 * 2 ** 20;

/** How a model is cut into segments: at most `layers` layers and at most `bytes` of activations each. */
export interface SegmentLimits {
  layers?: number;
  bytes?: number;
}

export interface ExecutorOptions {
  segmentLayers?: number;
  /** Bytes of activations per segment (see DEFAULT_SEGMENT_MEMORY); with neither limit set, that default. */
  segmentMemory?: number;
  optimizationLevel?: OptimizationLevel;
  intraOpThreads?: number;
  policy?: TransformPolicy;
  /**
   * Keep segment sessions for later runs (default true: bisection and lockstep comparison reuse
   * them). One-shot runs set false so each segment's session, and the weights it holds, are
   * released as soon as the segment has run: peak memory is one segment's, not the model's.
   */
  keepSessions?: boolean;
  /**
   * Create, run and release every segment's session in this worker thread instead of on the
   * JavaScript thread (compare's candidate side, concurrent with its reference: workflows/compare.ts).
   * Sessions are never kept then (as with keepSessions false).
   */
  worker?: OrtWorker;
}

export interface SegmentResult {
  segment: Segment;
  /** Captured tensors of this segment's layers, in layer order (tensor name -> value). */
  captured: Map<string, OrtTensor>;
}

/** Counts what a run costs, for reports and benchmarks. */
export interface ExecutionStats {
  /** Layers executed, summed over all runs. */
  layersExecuted: number;
  segmentsExecuted: number;
  sessionsBuilt: number;
  /** Bytes of the largest serialised segment model (external weights are not part of it). */
  largestSegmentModel?: number;
}

/**
 * Cut the layers into segments of about `segmentLayers` layers (a number), or under
 * {@link SegmentLimits}: at most `layers` layers and `bytes` of activations each (the bytes of
 * the segment's layer outputs plus its inputs from earlier segments, from the inferred shapes;
 * a tensor of unknown size is estimated from its layer's inputs (runtime/size-estimate.ts), else
 * counts as the model's largest known activation, or as `bytes / DEFAULT_SEGMENT_LAYERS` when
 * no size is known). A segment always has at least one layer. A cut is only
 * placed where every tensor crossing it can be handed through JavaScript (a tensor of a type
 * onnxruntime cannot return, such as a sequence or bfloat16, keeps its producer and consumers
 * together).
 */
export function planSegments(model: LoadedModel, types: TypeMap, limits: number | SegmentLimits): Segment[] {
  const { layers, initializers, outputs } = model.graph;
  const n = layers.length;
  const lim = typeof limits === "number" ? { layers: limits } : limits;
  const size = lim.layers === undefined ? n : Math.max(1, Math.floor(lim.layers));
  const budget = lim.bytes;
  let unknownBytes: number | undefined;
  let planned: Map<string, number> | undefined;

  const graphOut = new Set(outputs.map((o) => o.name));
  const lastUse = lastUses(model);
  // blocked[c] > 0: no cut between layer c-1 and layer c
  const blocked = new Int32Array(n + 2);
  for (const [t, p] of model.graph.producer) {
    const u = lastUse.get(t);
    const ty = types.get(t);
    if (u === undefined || u <= p || (ty && fetchable(ty.dtype))) continue;
    blocked[p + 1]! += 1;
    blocked[u + 1]! -= 1;
  }
  for (let c = 1; c <= n; c++) blocked[c]! += blocked[c - 1]!;
  const segs: Segment[] = [];
  let start = 0;
  do {
    let end = Math.min(n, start + size);
    if (budget !== undefined) end = budgetEnd(model, types, start, end, budget, (planned ??= plannedTensorBytes(model, types)), (unknownBytes ??= unknownTensorBytes(model, types, budget)));
    while (end < n && blocked[end]! > 0) end++;
    const produced = new Set<string>();
    const inputs: string[] = [];
    const seenIn = new Set<string>();
    for (let i = start; i < end; i++) {
      const l = layers[i]!;
      for (const t of [...l.inputs, ...l.implicitInputs]) {
        if (t === "" || produced.has(t) || initializers.has(t) || seenIn.has(t)) continue;
        seenIn.add(t);
        inputs.push(t);
      }
      for (const o of l.outputs) if (o !== "") produced.add(o);
    }
    const liveOut = [...produced].filter((t) => {
      const ty = types.get(t);
      return (ty ? fetchable(ty.dtype) : false) && (graphOut.has(t) || (lastUse.get(t) ?? -1) >= end);
    });
    segs.push({ id: segs.length, start, end, inputs, liveOut });
    start = end;
  } while (start < n);
  return segs;
}

/**
 * The end of a segment starting at `start`: as many layers (at least one, at most up to `end`)
 * as keep the segment's activations within `budget`: its layers' outputs plus the tensors it
 * reads from earlier layers (graph inputs included). A tensor of unknown size counts as its
 * `planned` estimate, else `unknown` bytes.
 */
function budgetEnd(model: LoadedModel, types: TypeMap, start: number, end: number, budget: number, planned: Map<string, number>, unknown: number): number {
  const { layers, initializers } = model.graph;
  const size = (t: string) => estimateTensorBytes(types, t) || planned.get(t) || unknown;
  const seen = new Set<string>();
  let sum = 0;
  let e = start;
  while (e < end) {
    const l = layers[e]!;
    let add = 0;
    const fresh: string[] = [];
    for (const t of [...l.inputs, ...l.implicitInputs, ...l.outputs]) {
      if (t === "" || seen.has(t) || initializers.has(t)) continue;
      fresh.push(t);
      add += size(t);
    }
    if (e > start && sum + add > budget) break;
    for (const t of fresh) seen.add(t);
    sum += add;
    e++;
  }
  return e;
}

/** What a layer output of unknown size is assumed to take: the largest known one, else budget / DEFAULT_SEGMENT_LAYERS. */
function unknownTensorBytes(model: LoadedModel, types: TypeMap, budget: number): number {
  let max = 0;
  for (const l of model.graph.layers) for (const o of l.outputs) if (o !== "") max = Math.max(max, estimateTensorBytes(types, o));
  return max > 0 ? max : budget / DEFAULT_SEGMENT_LAYERS;
}


/** Last execution index that reads each tensor. */
export function lastUses(model: LoadedModel): Map<string, number> {
  const lastUse = new Map<string, number>();
  for (const l of model.graph.layers) for (const t of [...l.inputs, ...l.implicitInputs]) if (t !== "") lastUse.set(t, l.index);
  return lastUse;
}

/** Serialize a segment model: `nodes` and `initializers` reading `inputs` (typed from `types`), returning `fetches`. */
export function segmentModelBytes(
  model: LoadedModel,
  types: TypeMap,
  name: string,
  nodes: NodeProto[],
  initializers: TensorProto[],
  inputNames: readonly string[],
  fetches: readonly string[],
  opsetImport: OperatorSetIdProto[] = model.proto.opsetImport,
): Uint8Array {
  const inputs = inputNames.map((t) => {
    const ty = types.get(t);
    if (!ty) throw new UserError(`${model.path}: cannot determine the type of tensor '${t}'`);
    return tensorValueInfo(t, dtypeToOnnx(ty.dtype));
  });
  const g = create(GraphProtoSchema, {
    name: `${model.proto.graph?.name ?? "graph"}::${name}`,
    node: nodes,
    initializer: initializers,
    input: inputs,
    output: [...fetches, ...reluBeforeFp8Quantize(nodes, initializers, fetches)].map((f) => create(ValueInfoProtoSchema, { name: f })),
  });
  const m = create(ModelProtoSchema, {
    irVersion: model.proto.irVersion,
    opsetImport,
    functions: model.proto.functions,
    graph: g,
  });
  return toBinary(ModelProtoSchema, m);
}

/**
 * Outputs of Relu nodes read by a QuantizeLinear with a float8 zero point. onnxruntime's
 * ReluQuantFusion (basic optimization level and up) drops a Relu before a QuantizeLinear whose
 * zero point is the minimum of its type, and it checks that only for int8/uint8 zero points:
 * before a float8 QuantizeLinear it drops the Relu, so negative values reach the fp8 Q. The rule
 * leaves a node whose output is a graph output alone, so these tensors are made segment outputs
 * too (never fetched; docs/int8.md "FP8").
 */
export function reluBeforeFp8Quantize(nodes: readonly NodeProto[], initializers: readonly TensorProto[], fetches: readonly string[]): string[] {
  const fp8 = new Set([TensorProto_DataType.FLOAT8E4M3FN, TensorProto_DataType.FLOAT8E4M3FNUZ, TensorProto_DataType.FLOAT8E5M2, TensorProto_DataType.FLOAT8E5M2FNUZ] as number[]);
  const fp8Inits = new Set(initializers.filter((t) => fp8.has(t.dataType)).map((t) => t.name));
  if (fp8Inits.size === 0) return [];
  const quantized = new Set(nodes.filter((n) => n.opType === "QuantizeLinear" && fp8Inits.has(n.input[2] ?? "")).map((n) => n.input[0]!));
  const have = new Set(fetches);
  return nodes.filter((n) => n.opType === "Relu" && (!n.domain || n.domain === "ai.onnx") && quantized.has(n.output[0] ?? "") && !have.has(n.output[0]!)).map((n) => n.output[0]!);
}

/** The segment limits an executor's options ask for: explicit ones, else DEFAULT_SEGMENT_MEMORY. */
export function segmentLimits(o: { segmentLayers?: number; segmentMemory?: number }): SegmentLimits {
  if (o.segmentLayers === undefined && o.segmentMemory === undefined) return { bytes: DEFAULT_SEGMENT_MEMORY };
  return { layers: o.segmentLayers, bytes: o.segmentMemory };
}

/** The one check of the segment memory option. */
export function checkSegmentMemory(n: number | undefined): void {
  if (n !== undefined && !(Number.isFinite(n) && n > 0)) throw optionError("segmentMemory", `must be a positive size such as 16M or 1G (got ${n})`);
}

/** The one check of the segment size option (run, compare, bisect, calib build/check). */
export function checkSegmentLayers(n: number | undefined): void {
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw optionError("segmentLayers", `must be a positive integer (got ${n})`);
}

export class Executor {
  readonly segments: Segment[];
  readonly stats: ExecutionStats = { layersExecuted: 0, segmentsExecuted: 0, sessionsBuilt: 0 };
  private readonly weights: WeightCache;
  private readonly sessions = new Map<string, Session>();
  /** The emulation policy every run of this executor uses (one per model and calibration cache). */
  readonly policy: TransformPolicy;
  private readonly producersOf = new Map<number, number[]>();
  private readonly lastUse: Map<string, number>;
  /** Max sessions kept; older ones are released (bisection builds many variants). */
  maxCachedSessions = 256;
  /** Upgrade every segment to opset 13, needed or not (the upgrade's self-check, runtime/upgrade.ts). */
  forceUpgrade = false;

  /** The opset-upgrade self-check (runtime/upgrade.ts UpgradeHost). */
  upgradeSelfCheck(precision: OptionRef | string): Promise<void> {
    return upgradeSelfCheck(this, precision);
  }
  /**
   * Max estimated bytes of the sessions kept (their serialized model, weights included, plus the
   * tensors their layers write, which onnxruntime's arena keeps); least recently used go first.
   */
  maxCachedSessionBytes = Infinity;
  private readonly sessionBytes = new Map<string, number>();
  private cachedBytes = 0;

  constructor(
    readonly model: LoadedModel,
    readonly types: TypeMap,
    readonly options: ExecutorOptions = {},
  ) {
    this.segments = planSegments(model, types, segmentLimits(options));
    this.weights = new WeightCache(model, "auto");
    this.policy = options.policy ?? floatPolicy;
    this.lastUse = lastUses(model);
  }

  /**
   * The key that identifies a segment's rewritten graph: its layers' precisions plus the
   * producers' of its inputs (the rewrite skips an input transform its producer already
   * applied) and, when the policy reads other layers' precisions (INT8: whether every consumer
   * of an output runs in int8, possibly in a later segment), the policy's context of each of
   * those layers. Without the context, a session built for one assignment would be served to
   * another that differs only in a consumer outside the segment.
   */
  sessionKey(seg: Segment, precisions: readonly Precision[]): string {
    const own = precisions.slice(seg.start, seg.end).join(",");
    const prod = seg.inputs.map((t) => {
      const p = this.model.graph.producer.get(t);
      return p === undefined ? "-" : precisions[p];
    });
    const key = `${seg.id}|${own}|${prod.join(",")}`;
    if (!this.policy.context) return key;
    const layers = this.model.graph.layers;
    const ctx: string[] = [];
    for (let i = seg.start; i < seg.end; i++) ctx.push(this.policy.context(layers[i]!, precisions));
    for (const p of this.inputProducers(seg)) ctx.push(`${p}:${this.policy.context(layers[p]!, precisions)}`);
    return `${key}|${ctx.join(";")}`;
  }

  /** Distinct producers (execution indices) of a segment's inputs, ascending. */
  private inputProducers(seg: Segment): number[] {
    let hit = this.producersOf.get(seg.id);
    if (!hit) {
      const set = new Set<number>();
      for (const t of seg.inputs) {
        const p = this.model.graph.producer.get(t);
        if (p !== undefined) set.add(p);
      }
      hit = [...set].sort((a, b) => a - b);
      this.producersOf.set(seg.id, hit);
    }
    return hit;
  }

  private async session(seg: Segment, precisions: readonly Precision[], fetches: string[]): Promise<Session> {
    const key = `${this.sessionKey(seg, precisions)}|${fetches.join("\u0000")}${this.forceUpgrade ? "|u" : ""}`;
    const hit = this.sessions.get(key);
    if (hit) {
      this.sessions.delete(key);
      this.sessions.set(key, hit);
      return hit;
    }
    const { bytes, folder, cost } = await this.segmentModel(seg, precisions, fetches);
    const t0 = phaseStart();
    const s = await createSession(bytes, `${this.model.path} (layers ${seg.start}-${seg.end - 1})`, {
      optimizationLevel: this.options.optimizationLevel ?? "all",
      intraOpThreads: this.options.intraOpThreads,
      externalDataFolder: folder,
    });
    phaseEnd("session create", t0);
    this.stats.sessionsBuilt++;
    if (this.options.keepSessions === false) this.weights.clear();
    this.sessions.set(key, s);
    this.sessionBytes.set(key, cost);
    this.cachedBytes += cost;
    while (this.sessions.size > 1 && (this.sessions.size > this.maxCachedSessions || this.cachedBytes > this.maxCachedSessionBytes)) {
      const [k, old] = this.sessions.entries().next().value as [string, Session];
      this.forget(k);
      await old.release();
    }
    return s;
  }

  /** A segment's model under `precisions`, serialised with `fetches` as its outputs, and the external-weights folder it reads. */
  private async segmentModel(seg: Segment, precisions: readonly Precision[], fetches: string[]): Promise<{ bytes: Uint8Array; folder: string | undefined; cost: number }> {
    const idx: number[] = [];
    for (let i = seg.start; i < seg.end; i++) idx.push(i);
    let t0 = phaseStart();
    const rw = rewriteLayers(this.model, this.types, precisions, idx, this.policy, this.weights);
    phaseEnd("segment graph rewrite", t0);
    // Old-opset models: segments whose emulation needs newer ops run upgraded to opset 13.
    const up: UpgradedSegment | null = await upgradeSegment(this, rw);
    // Models with external data: initializers by external-data reference (onnx/external-weights.ts), not embedded.
    const placed = this.weights.place(up?.initializers ?? rw.initializers);
    t0 = phaseStart();
    const bytes = segmentModelBytes(this.model, this.types, `segment${seg.id}`, up?.nodes ?? rw.nodes, placed.initializers, seg.inputs, fetches, up?.opsetImport);
    phaseEnd("segment serialize", t0);
    this.stats.largestSegmentModel = Math.max(this.stats.largestSegmentModel ?? 0, bytes.length);
    let cost = bytes.length + placed.externalBytes;
    for (const i of idx) for (const t of this.model.graph.layers[i]!.outputs) if (t) cost += estimateTensorBytes(this.types, t);
    return { bytes, folder: placed.folder, cost };
  }

  /** One segment in the options' worker thread: its session created, run and released there (onnx/ort-worker.ts). */
  private async runInWorker(worker: OrtWorker, seg: Segment, precisions: readonly Precision[], feeds: Record<string, OrtTensor>, fetches: string[], label: string): Promise<Record<string, OrtTensor>> {
    const { bytes, folder } = await this.segmentModel(seg, precisions, fetches);
    const t0 = phaseStart();
    try {
      return fetches.length ? await worker.createAndRun(bytes, { optimizationLevel: this.options.optimizationLevel ?? "all", intraOpThreads: this.options.intraOpThreads, externalDataFolder: folder }, feeds, fetches, label) : {};
    } finally {
      phaseEnd("  candidate segments in the worker thread (create + run + release, overlapping the reference)", t0);
      this.stats.sessionsBuilt++;
      this.weights.clear();
    }
  }

  /**
   * Run the model under `precisions` (one per layer). Yields each segment's captured tensors.
   * `capture(layerIndex)` says whose outputs to capture (outputs of non-fetchable types such as
   * bfloat16 or int4 are never captured). `live` holds the graph inputs and, when resuming at
   * `fromSegment`, the boundary tensors that segment needs; it is updated in place.
   */
  async *run(
    precisions: readonly Precision[],
    live: Map<string, OrtTensor>,
    capture: (layerIndex: number) => boolean,
    opts: { fromSegment?: number; toSegment?: number; onSegmentDone?: (seg: Segment, live: Map<string, OrtTensor>) => void } = {},
  ): AsyncGenerator<SegmentResult> {
    const layers = this.model.graph.layers;
    const graphOut = new Set(this.model.graph.outputs.map((o) => o.name));
    const lastUse = this.lastUse;
    const from = opts.fromSegment ?? 0;
    if (from === 0) rememberFeeds(this.model, live);
    const to = opts.toSegment ?? this.segments.length;
    for (let si = from; si < to; si++) {
      const seg = this.segments[si]!;
      const fetchSet = new Set<string>(seg.liveOut);
      const capturedNames: string[] = [];
      for (let i = seg.start; i < seg.end; i++) {
        if (!capture(i)) continue;
        for (const o of layers[i]!.outputs) {
          if (o === "" || !fetchable(this.types.get(o)?.dtype ?? "complex64")) continue;
          capturedNames.push(o);
          fetchSet.add(o);
        }
      }
      const fetches = [...fetchSet].filter((t) => this.types.has(t) || seg.liveOut.includes(t));
      const feeds: Record<string, OrtTensor> = {};
      for (const t of seg.inputs) {
        const v = live.get(t);
        if (!v) throw new UserError(`${this.model.path}: no value for tensor '${t}' (missing model input?)`);
        feeds[t] = v;
      }
      const label = `${this.model.path} (layers ${seg.start}-${seg.end - 1})`;
      let out: Record<string, OrtTensor>;
      if (this.options.worker) out = await this.runInWorker(this.options.worker, seg, precisions, feeds, fetches, label);
      else {
        const sess = await this.session(seg, precisions, fetches);
        let t0 = phaseStart();
        out = fetches.length ? await runSession(sess, feeds, fetches, label) : {};
        phaseEnd("session run (outputs copied to JS)", t0);
        t0 = phaseStart();
        if (this.options.keepSessions === false) await this.dropSession(sess);
        phaseEnd("session release", t0);
      }
      this.stats.layersExecuted += seg.end - seg.start;
      this.stats.segmentsExecuted++;
      // drop tensors no later segment reads
      for (const t of seg.inputs) if ((lastUse.get(t) ?? -1) < seg.end && !graphOut.has(t)) live.delete(t);
      for (const t of seg.liveOut) if (out[t]) live.set(t, out[t]!);
      opts.onSegmentDone?.(seg, live);
      const captured = new Map<string, OrtTensor>();
      for (const c of capturedNames) if (out[c]) captured.set(c, out[c]!);
      yield { segment: seg, captured };
    }
  }

  private forget(key: string): void {
    this.sessions.delete(key);
    this.cachedBytes -= this.sessionBytes.get(key) ?? 0;
    this.sessionBytes.delete(key);
  }

  private async dropSession(s: Session): Promise<void> {
    for (const [k, v] of this.sessions) {
      if (v === s) this.forget(k);
    }
    await s.release();
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await s.release();
    this.sessions.clear();
    this.sessionBytes.clear();
    this.cachedBytes = 0;
    this.weights.release();
  }
}

function sameBits(a: OrtTensor, b: OrtTensor): boolean {
  const x = a.data as ArrayBufferView, y = b.data as ArrayBufferView;
  if (!ArrayBuffer.isView(x) || !ArrayBuffer.isView(y)) return JSON.stringify(a.data) === JSON.stringify(b.data);
  return a.dims.join(",") === b.dims.join(",") && Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)) === 0;
}

/** fp32 as is vs fp32 upgraded, every layer, on the first run's inputs: bit-identical or a UserError. */
async function upgradeSelfCheck(exec: Executor, precision: OptionRef | string): Promise<void> {
  const m = exec.model;
  if (upgradeVerified(m)) return;
  const feeds = rememberedFeeds(m);
  if (!feeds) throw new Error(`opset upgrade self-check of ${m.path}: no run of the whole model has started yet`);
  const opts = { ...exec.options, policy: floatPolicy, keepSessions: false };
  const plain = new Executor(m, exec.types, opts);
  const upgraded = new Executor(m, exec.types, opts);
  upgraded.forceUpgrade = true;
  const fp32: Precision[] = m.graph.layers.map(() => "fp32");
  try {
    const a = plain.run(fp32, new Map(feeds), () => true);
    const b = upgraded.run(fp32, new Map(feeds), () => true);
    for (;;) {
      const x = await a.next();
      const y = await b.next();
      if (x.done || y.done) break;
      for (const [t, v] of x.value.captured) {
        const w = y.value.captured.get(t);
        if (w && sameBits(v, w)) continue;
        const l = m.graph.layers[m.graph.producer.get(t)!]!;
        throw userError`${m.path}: ${precision} needs opset ${upgradeTargetOf(m)}, but after trt-debug's upgrade from opset ${m.opset} layer '${l.name}' (${l.opType}) no longer gives the fp32 result bit for bit (tensor '${t}'); re-export at opset >= ${upgradeTargetOf(m)} or use ${precisionRef("fp16")}`;
      }
    }
  } finally {
    await plain.release();
    await upgraded.release();
  }
  markUpgradeVerified(m);
}
