/**
 * `compare REFERENCE.onnx CANDIDATE.onnx` (issue 11, deliverable 3): two different graphs run
 * on the same inputs, every tensor matched by name (docs/cli.md "compare REFERENCE.onnx
 * CANDIDATE.onnx"). The reference runs in fp32; the candidate as it is (a strongly typed model
 * as typed, a Q/DQ model's QuantizeLinear/DequantizeLinear by onnxruntime, the rest in fp32).
 *
 * Matching: a candidate tensor with the reference's name is that tensor; otherwise it is
 * followed back through Cast/CastLike/QuantizeLinear/DequantizeLinear to a matched name (an
 * alias: a converter's Cast or Q/DQ of a reference tensor), or forward through a single such
 * consumer (a renamed output: `y__fp16` computed by the layer, then cast to `y`). For each
 * reference tensor the row compared is the one a computing layer produced (not a Cast or Q/DQ),
 * else the first alias. Tensors computed from initializers only (a weight's DequantizeLinear, a
 * Cast of a constant) are weights, not layers (TensorRT folds them into the layer reading them):
 * counted as `weight_tensors`, not compared. Everything else is listed as unmatched, never
 * dropped silently. A failing If/Loop/Scan layer of the candidate is probed inside its body
 * against the reference's layer that computes the compared tensor (compare/body-probe.ts).
 */
import { releaseModelWeights } from "../onnx/external-weights.js";
import { UserError } from "../core/errors.js";
import type { HostTensor, Precision } from "../core/host-tensor.js";
import { isFloatDType } from "../core/host-tensor.js";
import type { Hooks } from "../core/hooks.js";
import type { NodeProto } from "onnx-buf";
import { f32ToBf16, f32ToF16 } from "../numeric/index.js";
import { formatDims, shapeMatches } from "../data/inputs.js";
import { Executor } from "../runtime/executor.js";
import { prepareModelFile, runCaptured, type Captured, type PreparedModel } from "../runtime/capture-runs.js";
import { CompareAccumulator, compareTensor, type CompareSummary, type LayerComparison } from "../compare/layer-compare.js";
import type { CompareOptions } from "../compare/tolerance.js";
import { layerNodeNames, RANDOM_OPS } from "../onnx/layer-model.js";
import type { GraphView, Layer } from "../onnx/model.js";
import { typedReducedPrecisions, typedVerdictPrecision } from "../precision/typed.js";
import { checkJudgeableOutputs } from "../compare/graph-outputs.js";
import { probeBodiesTwoModels } from "../compare/body-probe.js";
import { hasBodies } from "../precision/subgraph.js";
import { executorOptions, resolveInputs, type ModelArgs } from "./model-inputs.js";

export interface CompareGraphsArgs extends Omit<ModelArgs, "model" | "layerPrecisions" | "precisionPlan" | "int8"> {
  reference: string;
  candidate: string;
  compare: CompareOptions;
  keepRows?: boolean;
}

export interface CompareGraphsResult extends CompareSummary {
  /** Tensors compared under another name: candidate tensor -> reference tensor. */
  renamed: { candidate: string; reference: string; via: string }[];
  /** Float tensors with no counterpart: reference only / candidate only. */
  unmatched: { reference: string[]; candidate: string[] };
  /** The candidate's kind: strongly typed (fp16/bf16), Q/DQ, or plain fp32. */
  candidate_kind: "typed" | "qdq" | "fp32";
  /** Unmatched float tensors computed from initializers only (weight Q/DQ, constant Casts): weights, not compared. */
  weight_tensors: { reference: string[]; candidate: string[] };
}

const PASS_THROUGH = new Set(["Cast", "CastLike", "QuantizeLinear", "DequantizeLinear"]);

/**
 * The tensors of `g` computed from initializers only (a weight's DequantizeLinear, a Cast of a
 * constant, a Constant node's output): weights, which TensorRT folds into the layers reading
 * them. Layers are in execution order, so one pass settles every tensor.
 */
export function weightOnlyTensors(g: GraphView): Map<string, string> {
  const constant = new Set<string>(g.initializers.keys());
  const out = new Map<string, string>(); // tensor -> the op computing it
  for (const l of g.layers) {
    for (const n of l.nodes) {
      if (RANDOM_OPS.has(n.opType) || n.attribute.some((x) => x.g || x.graphs.length)) continue;
      if (!n.input.every((i) => i === "" || constant.has(i))) continue;
      for (const o of n.output) {
        if (o === "") continue;
        constant.add(o);
        out.set(o, n.opType);
      }
    }
  }
  return out;
}

function precisionsOf(p: PreparedModel): Precision[] {
  return p.model.typed?.precisions ? [...p.model.typed.precisions] : p.model.graph.layers.map(() => "fp32");
}

/** The candidate's inputs from the reference's, by name; float32 values rounded to a reduced input type. */
function candidateInputs(ref: HostTensor[], cand: PreparedModel, refFile: string, candFile: string): HostTensor[] {
  const byName = new Map(ref.map((t) => [t.name, t]));
  return cand.inputs.map((s) => {
    const t = byName.get(s.name);
    if (!t) throw new UserError(`${candFile}: input '${s.name}' is not an input of ${refFile}; the two models must take the same inputs by name`);
    if (!shapeMatches(s.dims, t.dims)) throw new UserError(`${candFile}: input '${s.name}' has shape [${formatDims(s.dims)}] but the reference's is [${t.dims}] (${refFile}); the two models must take the same inputs`);
    if (t.dtype === s.dtype) return t;
    if (t.dtype === "float32" && (s.dtype === "float16" || s.dtype === "bfloat16")) {
      const d = s.dtype === "float16" ? f32ToF16(t.data as Float32Array) : f32ToBf16(t.data as Float32Array);
      return { name: t.name, dtype: s.dtype, dims: t.dims, data: d };
    }
    throw new UserError(`${candFile}: input '${s.name}' is ${s.dtype} but ${t.dtype} in ${refFile}; only a float32 input may become float16/bfloat16`);
  });
}

async function captureAll(p: PreparedModel, a: CompareGraphsArgs, inputs: HostTensor[], precisions: Precision[]): Promise<Captured[]> {
  const exec = new Executor(p.model, p.types, executorOptions({ ...a, model: a.reference }));
  const out: Captured[] = [];
  try {
    for await (const c of runCaptured(exec, precisions, inputs, () => true)) out.push(c);
  } finally {
    await exec.release();
  }
  return out;
}

export async function compareGraphs(a: CompareGraphsArgs, hooks: Hooks & { onLayer?(l: LayerComparison): void; onTensors?(l: LayerComparison, ref: HostTensor, cand: HostTensor): void } = {}): Promise<CompareGraphsResult> {
  const ref = await prepareModelFile(a.reference, a);
  const cand = await prepareModelFile(a.candidate, a);
  try {
    return await compareModels(ref, cand, a, hooks);
  } finally {
    releaseModelWeights(ref.model); // after the body probes, which may run the models again
    releaseModelWeights(cand.model);
  }
}

async function compareModels(ref: PreparedModel, cand: PreparedModel, a: CompareGraphsArgs, hooks: Hooks & { onLayer?(l: LayerComparison): void; onTensors?(l: LayerComparison, ref: HostTensor, cand: HostTensor): void }): Promise<CompareGraphsResult> {
  if (ref.model.typed) throw new UserError(`${a.reference}: the reference is strongly typed; give the fp32 model as REFERENCE and the typed one as CANDIDATE`);
  checkJudgeableOutputs(ref.model.path, ref.model.graph);
  const refInputs = await resolveInputs(ref, a.inputs, hooks);
  const candIn = candidateInputs(refInputs, cand, a.reference, a.candidate);
  // The reference's float tensors are held; the candidate is streamed (compared as it runs).
  const refByName = new Map((await captureAll(ref, a, refInputs, ref.model.graph.layers.map(() => "fp32"))).filter((c) => isFloatDType(c.tensor.dtype)).map((c) => [c.tensor.name, c]));
  const refOutputs = new Set(ref.model.graph.outputs.map((o) => o.name));
  // the candidate's graph: producer and consumers of every tensor
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const l of cand.model.graph.layers) {
    for (const n of l.nodes) {
      for (const o of n.output) if (o) producer.set(o, n);
      for (const i of n.input) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
    }
  }
  const refInputNames = new Set(refInputs.map((t) => t.name));
  const back = (t: string, via: string[]): string | null => {
    if (refByName.has(t) || refInputNames.has(t)) return t;
    const n = producer.get(t);
    if (!n || !PASS_THROUGH.has(n.opType) || via.length > 16) return null;
    via.push(n.opType);
    return back(n.input[0] ?? "", via);
  };
  const forward = (t: string, via: string[]): string | null => {
    const cs = consumers.get(t) ?? [];
    if (cs.length !== 1 || !PASS_THROUGH.has(cs[0]!.opType) || via.length > 16) return null;
    via.push(cs[0]!.opType);
    const o = cs[0]!.output[0] ?? "";
    return refByName.has(o) ? o : forward(o, via);
  };

  const hasQdq = cand.model.graph.layers.some((l) => l.nodes.some((n) => n.opType === "QuantizeLinear" || n.opType === "DequantizeLinear"));
  const kind: CompareGraphsResult["candidate_kind"] = cand.model.typed ? "typed" : hasQdq ? "qdq" : "fp32";
  const fallback: Precision = typedReducedPrecisions(cand.model)[0] ?? (hasQdq ? "int8" : "fp32");
  const renamed: CompareGraphsResult["renamed"] = [];
  const done = new Map<string, LayerComparison | null>(); // reference tensor -> its row (null: nothing to compare)
  const probeTargets = new Map<Layer, { l: LayerComparison; refName: string; verdictPrecision: Precision }>(); // failing control-flow layers of the candidate
  const compareRow = (refName: string, cap: Captured, via: string): void => {
    const r = refByName.get(refName)!;
    if (r.tensor.dims.join(",") !== cap.tensor.dims.join(",")) {
      throw new UserError(`${a.candidate}: tensor '${cap.tensor.name}' has shape [${cap.tensor.dims}] but '${refName}' is [${r.tensor.dims}] in ${a.reference}`);
    }
    // a typed candidate with Q/DQ (convert --int8 --fp16) carries the int8 error too: int8 threshold
    const verdictPrecision = hasQdq ? "int8" : typedVerdictPrecision(cand.model, cap.tensor.name, fallback);
    const l = compareTensor(
      {
        order: cap.layer.index,
        layer: cap.layer.name,
        opType: cap.layer.opType,
        nodes: layerNodeNames(cap.layer),
        precision: cap.precision,
        verdictPrecision,
        isGraphOutput: refOutputs.has(refName),
      },
      r.tensor,
      cap.tensor,
      a.compare,
      hooks,
    );
    if (l) hooks.onTensors?.(l, r.tensor, cap.tensor);
    if (l && !l.verdict.passed && hasBodies(cap.layer.node) && !probeTargets.has(cap.layer)) probeTargets.set(cap.layer, { l, refName, verdictPrecision });
    done.set(refName, l);
  };

  // choose one candidate tensor per reference tensor: a computed one is final and compared at
  // once (both tensors then dropped); an alias (Cast/Q/DQ output) waits, as a computed tensor may
  // still come
  const chosen = new Map<string, { cap: Captured; primary: boolean; via: string }>();
  const candOnly: string[] = [];
  const candWeights = weightOnlyTensors(cand.model.graph);
  const weightTensors: CompareGraphsResult["weight_tensors"] = { reference: [], candidate: [] };
  const inputCasts: string[] = [];
  const exec = new Executor(cand.model, cand.types, executorOptions({ ...a, model: a.reference }));
  try {
    for await (const c of runCaptured(exec, precisionsOf(cand), candIn, () => true)) {
      if (!isFloatDType(c.tensor.dtype)) continue;
      const name = c.tensor.name;
      const computed = !c.layer.nodes.every((n) => PASS_THROUGH.has(n.opType));
      let target: string | null = refByName.has(name) ? name : null;
      let via = "";
      if (target === null) {
        const vb: string[] = [];
        const vf: string[] = [];
        target = back(name, vb);
        if (target !== null) via = `${vb.join(" <- ")} of ${target}`;
        else if ((target = forward(name, vf)) !== null) via = `${vf.join(" -> ")} to ${target}`;
      }
      if (target === null) {
        (candWeights.has(name) ? weightTensors.candidate : candOnly).push(name);
        continue;
      }
      if (refInputNames.has(target)) {
        inputCasts.push(name); // a Cast/Q/DQ of a graph input: the input itself is given, not computed
        continue;
      }
      const prev = chosen.get(target);
      if (!prev || (computed && !prev.primary)) {
        chosen.set(target, { cap: c, primary: computed, via });
        if (computed) {
          compareRow(target, c, via);
          chosen.set(target, { cap: { ...c, tensor: { ...c.tensor, data: new Float32Array(0) } }, primary: true, via });
          refByName.get(target)!.tensor = { ...refByName.get(target)!.tensor, data: new Float32Array(0) };
        }
      }
    }
  } finally {
    await exec.release();
  }
  const refWeights = weightOnlyTensors(ref.model.graph);
  const refOnly: string[] = [];
  for (const n of refByName.keys()) if (!chosen.has(n)) (refWeights.has(n) ? weightTensors.reference : refOnly).push(n);
  const missingOut = [...refOutputs].filter((o) => refByName.has(o) && !chosen.has(o));
  if (missingOut.length) throw new UserError(`${a.candidate}: graph output '${missingOut[0]}' of ${a.reference} has no counterpart (no tensor of that name, nor a Cast/Q/DQ of one); the models must share output names`);

  const acc = new CompareAccumulator(a.keepRows ?? true);
  const rows = [...chosen.entries()].sort((x, y) => x[1].cap.layer.index - y[1].cap.layer.index);
  for (const [refName, { cap, via }] of rows) if (!done.has(refName)) compareRow(refName, cap, via);
  // Failing If/Loop/Scan layers of the candidate (the first few): evidence from inside their bodies,
  // against the reference layer computing the same tensor
  for (const [layer, t] of [...probeTargets].slice(0, 3)) {
    const ri = ref.model.graph.producer.get(t.refName);
    if (ri === undefined) continue;
    const refLayer = ref.model.graph.layers[ri]!;
    const refSide = { p: ref, layer: refLayer, precisions: ref.model.graph.layers.map((): Precision => "fp32"), inputs: refInputs };
    const candSide = { p: cand, layer, precisions: precisionsOf(cand), inputs: candIn };
    t.l.evidence.push(...(await probeBodiesTwoModels(refSide, candSide, { ...a.compare, verdictPrecision: t.verdictPrecision }, executorOptions({ ...a, model: a.reference }))));
  }
  for (const [refName, { cap, via }] of rows) {
    if (via) renamed.push({ candidate: cap.tensor.name, reference: refName, via });
    const l = done.get(refName);
    if (!l) continue;
    acc.add(l);
    hooks.onLayer?.(l);
  }
  const list = (xs: string[]) => (xs.length <= 8 ? xs.join(", ") : `${xs.slice(0, 8).join(", ")}, ... (${xs.length - 8} more; all in the JSON)`);
  const notes: string[] = [];
  notes.push(`two graphs: ${rows.length} tensors matched by name (${renamed.length} through Cast/Q/DQ), reference in fp32, candidate ${kind === "typed" ? `as typed${hasQdq ? " with its Q/DQ (judged at the int8 threshold)" : ""}` : kind === "qdq" ? "with its Q/DQ (judged at the int8 threshold)" : "in fp32"}; rows name the candidate's layers`);
  if (inputCasts.length) notes.push(`not compared (casts or Q/DQ of graph inputs): ${list(inputCasts)}`);
  const nWeights = weightTensors.reference.length + weightTensors.candidate.length;
  if (nWeights) {
    const ops = [...weightTensors.reference.map((t) => refWeights.get(t)), ...weightTensors.candidate.map((t) => candWeights.get(t))];
    const what = ops.every((o) => o === "QuantizeLinear" || o === "DequantizeLinear") ? "weight Q/DQ tensor" : "weight tensor";
    notes.push(`${nWeights} ${what}${nWeights === 1 ? "" : "s"} not compared: weights (computed from initializers only; TensorRT folds them into the layers reading them; every name in the JSON's weight_tensors)`);
  }
  if (refOnly.length) notes.push(`unmatched, reference only (${refOnly.length}): ${list(refOnly)}`);
  if (candOnly.length) notes.push(`unmatched, candidate only (${candOnly.length}): ${list(candOnly)}`);
  const s = acc.summary(`${a.reference} fp32`, `${a.candidate}`, notes);
  return { ...s, renamed, unmatched: { reference: refOnly, candidate: candOnly }, candidate_kind: kind, weight_tensors: weightTensors };
}
