/**
 * The local sensitivity pass without one session per layer ("twin" sessions).
 *
 * The layers are cut into groups of consecutive one-layer segments (bounded by a layer count
 * and by the bytes the group's session returns). One session per group holds the group's
 * layers in FP32 (the reference) and, next to each searchable layer, its "twin": the same
 * layer rewritten exactly as the per-layer pass rewrites it (that layer alone in the
 * candidate precision, every other layer in fp32), reading the reference's fp32 tensors and
 * writing renamed outputs (`<tensor>@twin<index>`). One run of that session gives the
 * reference outputs of every layer of the group and, for each searchable layer, what it
 * computes alone in the candidate precision on the reference's inputs: the same numbers the
 * per-layer pass gets from two sessions per layer (every reference tensor is a fetched output,
 * so onnxruntime fuses nothing across layers, as in one-layer sessions). Scoring is shared
 * with that pass (scoreLayer).
 *
 * Layers whose twin cannot be built by renaming (subgraphs, outer-scope inputs, a segment
 * that cannot be cut at one layer) fall back to the per-layer run on the one-layer executor.
 */
import { create } from "@bufbuild/protobuf";
import { NodeProtoSchema, type NodeProto, type TensorProto } from "onnx-buf";
import type { HostTensor, Precision } from "../core/host-tensor.js";
import type { Layer } from "../onnx/model.js";
import { estimateTensorBytes, lastUses, segmentModelBytes, type Executor, type Segment } from "../runtime/executor.js";
import { createSession, fetchable, fromOrt, runSession, toOrt, type OrtTensor } from "../onnx/ort-session.js";
import { makeFeeds } from "../runtime/capture-runs.js";
import { rememberFeeds, upgradeSegment } from "../runtime/upgrade.js";
import { tensorProtoToHost } from "../onnx/tensor.js";
import { initializerBytes } from "../onnx/external-weights.js";
import { rewriteLayers, WeightCache } from "../precision/rewrite.js";
import { DEFAULT_MAX_REL_L2 } from "../compare/tolerance.js";
import { FORMAT_RANGE, int8InputEvidence, scoreLayer, type LayerSensitivity, type ReferenceResult, type SensitivityOptions } from "./sensitivity.js";

export interface TwinOptions extends SensitivityOptions {
  /** Results already known (from a checkpoint): not evaluated again. */
  known?: ReadonlyMap<number, LayerSensitivity>;
  /** After every group, with the layers it scored (checkpointing). */
  onScored?: (scored: LayerSensitivity[]) => void;
  /** Boundaries for which onBoundary is called (default every one). */
  boundaries?: ReadonlySet<number>;
  /** Max layers per twin session (default 32). */
  groupLayers?: number;
  /** Max estimated bytes of the tensors one twin session returns (default 256 MiB). */
  groupBytes?: number;
}

export interface TwinStats {
  /** Sessions built by the pass (twin groups plus per-layer fallbacks). */
  sessionsBuilt: number;
  groups: number;
  /** Layers scored by a twin / by the per-layer fallback / taken from `known`. */
  twinLayers: number;
  fallbackLayers: number;
  knownLayers: number;
}

export const DEFAULT_GROUP_LAYERS = 32;
export const DEFAULT_GROUP_BYTES = 256 * 2 ** 20;

function hasSubgraph(nodes: readonly NodeProto[]): boolean {
  return nodes.some((nd) => nd.attribute.some((a) => a.g !== undefined || a.graphs.length > 0));
}

/**
 * Run the fp32 reference on `exec` (one-layer segments) and score every searchable layer with
 * one session per group of layers. Same result as referenceAndSensitivity (the per-layer pass).
 */
export async function twinSensitivity(exec: Executor, inputs: HostTensor[], o: TwinOptions): Promise<ReferenceResult & { stats: TwinStats }> {
  const m = exec.model;
  const layers = m.graph.layers;
  const n = layers.length;
  const segs = exec.segments;
  const ref: Precision[] = layers.map(() => "fp32");
  const trial = [...ref];
  const graphOut = new Set(m.graph.outputs.map((t) => t.name));
  const lastUse = lastUses(m);
  const thr = o.maxRelL2 ?? DEFAULT_MAX_REL_L2[o.precision];
  // Segments of external-data models reference their weights (onnx/external-weights.ts), as the executor's do.
  const weights = new WeightCache(m, "auto");
  const stats: TwinStats = { sessionsBuilt: 0, groups: 0, twinLayers: 0, fallbackLayers: 0, knownLayers: 0 };
  const sensitivity = new Map<number, LayerSensitivity>();
  const maxLayers = Math.max(1, o.groupLayers ?? DEFAULT_GROUP_LAYERS);
  const maxBytes = o.groupBytes ?? DEFAULT_GROUP_BYTES;
  const wanted = (i: number) => o.searchable.has(i) && !o.referenceOnly;
  rememberFeeds(m, makeFeeds(inputs));
  const todo = (i: number) => wanted(i) && !o.known?.has(i);
  const twinnable = (seg: Segment) => {
    if (seg.end - seg.start !== 1) return false;
    const l = layers[seg.start]!;
    if (l.implicitInputs.length || hasSubgraph([l.node])) return false;
    return l.outputs.every((t) => t === "" || fetchable(exec.types.get(t)?.dtype ?? "complex64"));
  };
  // Models with external weights: a group's session also holds its layers' weights (twice for a twin), so they count too.
  const weightBytes = (i: number) => (weights.external ? layers[i]!.inputs.reduce((s, t) => s + (m.graph.initializers.has(t) ? initializerBytes(m.graph.initializers.get(t)!) : 0), 0) : 0);
  const layerBytes = (i: number) => (layers[i]!.outputs.reduce((s, t) => s + (t ? estimateTensorBytes(exec.types, t) : 0), 0) + weightBytes(i)) * (todo(i) ? 2 : 1);

  // Constant layers' values reach their consumers as fed inputs (as in one-layer sessions):
  // in-graph, onnxruntime would fold them into their consumers and round the last bits differently.
  const types = new Map(exec.types);
  const constFeed = new Map<string, OrtTensor>();
  for (const l of layers) {
    const v = l.opType === "Constant" && l.domain === "" ? l.node.attribute.find((x) => x.name === "value")?.t : undefined;
    const t = l.outputs[0];
    if (!v || !t || !types.has(t) || !fetchable(types.get(t)!.dtype)) continue;
    constFeed.set(t, toOrt(tensorProtoToHost(v)));
    types.set(`${t}@feed`, types.get(t)!);
  }

  let live = makeFeeds(inputs);
  o.onBoundary?.(0, new Map(live));
  let g0 = 0;
  try {
  while (g0 < segs.length) {
    // ---- the group: consecutive one-layer segments within the layer and byte bounds
    let g1 = g0 + 1;
    let bytes = 0;
    for (let i = segs[g0]!.start; i < segs[g0]!.end; i++) bytes += layerBytes(i);
    while (g1 < segs.length && segs[g1]!.end - segs[g0]!.start <= maxLayers) {
      let b = 0;
      for (let i = segs[g1]!.start; i < segs[g1]!.end; i++) b += layerBytes(i);
      if (bytes + b > maxBytes) break;
      bytes += b;
      g1++;
    }
    const s = segs[g0]!.start, e = segs[g1 - 1]!.end;
    const idx: number[] = [];
    for (let i = s; i < e; i++) idx.push(i);
    const groupInputs: string[] = [];
    const seenIn = new Set<string>();
    for (let si = g0; si < g1; si++) {
      for (const t of segs[si]!.inputs) {
        const p = m.graph.producer.get(t);
        if ((p !== undefined && p >= s) || seenIn.has(t)) continue;
        seenIn.add(t);
        groupInputs.push(t);
      }
    }
    // ---- reference nodes plus one twin per searchable layer
    const rw = rewriteLayers(m, exec.types, ref, idx, exec.policy, weights);
    const nodes: NodeProto[] = [...rw.nodes];
    const inits = new Map<string, TensorProto>(rw.initializers.map((t) => [t.name, t]));
    const fetchSet = new Set<string>();
    for (const i of idx) for (const t of layers[i]!.outputs) if (t !== "" && fetchable(exec.types.get(t)?.dtype ?? "complex64") && exec.types.has(t)) fetchSet.add(t);
    for (let si = g0; si < g1; si++) for (const t of segs[si]!.liveOut) fetchSet.add(t);
    const twins: number[] = [];
    const fallbacks: Segment[] = [];
    for (let si = g0; si < g1; si++) {
      const seg = segs[si]!;
      if (![...Array(seg.end - seg.start).keys()].some((k) => todo(seg.start + k))) continue;
      if (!twinnable(seg)) {
        fallbacks.push(seg);
        continue;
      }
      const i = seg.start;
      const layer = layers[i]!;
      trial[i] = o.candidate?.[i] ?? o.precision;
      const tw = rewriteLayers(m, exec.types, trial, [i], exec.policy, weights);
      trial[i] = "fp32";
      if (hasSubgraph(tw.nodes)) {
        // (a layer of several nodes, one with a subgraph): renaming cannot reach inside
        fallbacks.push(seg);
        continue;
      }
      const produced = new Set<string>();
      for (const nd of tw.nodes) for (const t of nd.output) if (t !== "") produced.add(t);
      const rename = (t: string) => (produced.has(t) ? `${t}@twin${i}` : t);
      for (const nd of tw.nodes) {
        nodes.push(create(NodeProtoSchema, { ...nd, name: `${nd.name}@twin${i}`, input: nd.input.map(rename), output: nd.output.map(rename) }));
      }
      for (const t of tw.initializers) if (!inits.has(t.name)) inits.set(t.name, t);
      for (const t of layer.outputs) if (t !== "" && fetchSet.has(t)) fetchSet.add(`${t}@twin${i}`);
      twins.push(i);
    }
    const fetches = [...fetchSet];
    const fed: string[] = [];
    for (const nd of nodes) {
      nd.input = nd.input.map((t) => {
        if (!constFeed.has(t)) return t;
        const f = `${t}@feed`;
        if (!fed.includes(f)) fed.push(f);
        return f;
      });
    }
    const feeds: Record<string, OrtTensor> = {};
    for (const f of fed) feeds[f] = constFeed.get(f.slice(0, -"@feed".length))!;
    for (const t of groupInputs) {
      const v = live.get(t);
      if (!v) throw new Error(`sensitivity: no value for tensor '${t}' at layer ${s}`);
      feeds[t] = v;
    }
    const label = `${m.path} (layers ${s}-${e - 1}, sensitivity)`;
    // Old-opset models: a group whose emulation needs newer ops runs upgraded, as the executor's segments do.
    const up = await upgradeSegment(exec, { nodes, initializers: [...inits.values()] });
    const placed = weights.place(up?.initializers ?? [...inits.values()]);
    const modelBytes = segmentModelBytes(m, types, `sensitivity${s}`, up?.nodes ?? nodes, placed.initializers, [...groupInputs, ...fed], fetches, up?.opsetImport);
    const sess = await createSession(modelBytes, label, {
      optimizationLevel: exec.options.optimizationLevel ?? "all",
      intraOpThreads: exec.options.intraOpThreads,
      externalDataFolder: placed.folder,
    });
    stats.sessionsBuilt++;
    exec.stats.sessionsBuilt++;
    let out: Record<string, OrtTensor>;
    try {
      out = await runSession(sess, feeds, fetches, label);
    } finally {
      await sess.release();
    }
    stats.groups++;
    exec.stats.layersExecuted += e - s + twins.length;
    exec.stats.segmentsExecuted++;
    // every tensor of the group's reference (what the layers read and wrote)
    const all = new Map<string, OrtTensor>();
    for (const [k, v] of Object.entries(feeds)) if (!k.endsWith("@feed")) all.set(k, v);
    for (const [k, v] of Object.entries(out)) if (!k.includes("@twin")) all.set(k, v);
    const liveAt = (b: number): Map<string, OrtTensor> => {
      const r = new Map<string, OrtTensor>();
      for (const [t, v] of live) {
        const u = lastUse.get(t);
        if (u === undefined || u >= b || graphOut.has(t)) r.set(t, v);
      }
      for (let j = s; j < b; j++) {
        for (const t of layers[j]!.outputs) {
          const v = out[t];
          if (t !== "" && v && (graphOut.has(t) || (lastUse.get(t) ?? -1) >= b)) r.set(t, v);
        }
      }
      return r;
    };
    // ---- score
    const scored: LayerSensitivity[] = [];
    for (const i of twins) {
      const layer = layers[i]!;
      const tp = o.candidate?.[i] ?? o.precision;
      const refOut = new Map<string, OrtTensor>(), local = new Map<string, OrtTensor>();
      for (const t of layer.outputs) {
        const r = out[t], c = out[`${t}@twin${i}`];
        if (r) refOut.set(t, r);
        if (c) local.set(t, c);
      }
      scored.push(score(exec, layer, refOut, local, all, thr, tp, trial));
      stats.twinLayers++;
    }
    const builtBefore = exec.stats.sessionsBuilt;
    for (const seg of fallbacks) {
      const start = liveAt(seg.start);
      for (let i = seg.start; i < seg.end; i++) {
        if (!todo(i)) continue;
        const tp = o.candidate?.[i] ?? o.precision;
        trial[i] = tp;
        const local = new Map<string, OrtTensor>();
        for await (const c of exec.run(trial, new Map(start), (li) => li === i, { fromSegment: seg.id, toSegment: seg.id + 1 })) {
          for (const [k, v] of c.captured) local.set(k, v);
        }
        trial[i] = "fp32";
        const refOut = new Map<string, OrtTensor>();
        for (const t of layers[i]!.outputs) if (out[t]) refOut.set(t, out[t]!);
        scored.push(score(exec, layers[i]!, refOut, local, start, thr, tp, trial));
        stats.fallbackLayers++;
      }
    }
    stats.sessionsBuilt += exec.stats.sessionsBuilt - builtBefore;
    for (const sc of scored) sensitivity.set(sc.index, sc);
    for (const i of idx) {
      const k = o.known?.get(i);
      if (k && wanted(i)) {
        sensitivity.set(i, k);
        stats.knownLayers++;
      }
    }
    if (scored.length) o.onScored?.(scored);
    for (let si = g0; si < g1; si++) {
      const b = segs[si]!.end;
      if (b < n && (!o.boundaries || o.boundaries.has(b)) && o.onBoundary) o.onBoundary(b, liveAt(b));
    }
    live = liveAt(e);
    o.progress?.(e, n);
    g0 = g1;
  }
  } finally {
    weights.release(); // the temporary data file of rewritten weights, if any
  }
  const outputs = new Map<string, HostTensor>();
  for (const t of m.graph.outputs) {
    const v = live.get(t.name);
    if (v) outputs.set(t.name, fromOrt(t.name, v));
  }
  return { outputs, sensitivity, stats };
}

function score(
  exec: Executor,
  layer: Layer,
  refOut: Map<string, OrtTensor>,
  local: Map<string, OrtTensor>,
  inputs: Map<string, OrtTensor>,
  thr: number,
  tp: Precision,
  trial: Precision[],
): LayerSensitivity {
  const s = scoreLayer(layer, refOut, local, inputs, thr, tp, FORMAT_RANGE[tp]);
  if (tp === "int8" && s.score >= 1) {
    trial[layer.index] = tp;
    s.evidence.push(...int8InputEvidence(exec, layer, trial, inputs));
    trial[layer.index] = "fp32";
  }
  return s;
}
