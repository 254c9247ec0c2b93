/**
 * `compare A B` where A or B is not a trt-debug Arrow dump: a Polygraphy RunResults JSON
 * (`polygraphy run --save-outputs`), or a folder of `.npy` files named by tensor or listed in trtexec's tensor_summary.json (trtexec
 * `--saveAllDebugTensors`, or any tool). Tensors are matched by name; `model` (an ONNX file)
 * gives layer names, op types and execution order where the files lack them. docs/interop.md.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { opt, optionText, UserError, userError } from "../core/errors.js";
import { spelled } from "../core/hooks.js";
import { isFloatDType, type HostTensor, type Precision } from "../core/host-tensor.js";
import { openDump, rowTensor } from "../io/dump.js";
import { decodeNpy } from "../io/npy.js";
import { readSummaryTensors, readTensorSummary } from "../io/trtexec-debug-tensors.js";
import { pickRunner, readRunResults, runResultsRunners } from "../io/polygraphy-results.js";
import { CompareAccumulator, compareTensor, type CompareSummary, type LayerComparison } from "../compare/layer-compare.js";
import type { CompareOptions } from "../compare/tolerance.js";
import { prepareModelFile } from "../runtime/capture-runs.js";
import { readLayerInfo } from "../io/trt-layer-info.js";
import { looksLikeTrtexecOutput, readTrtexecOutput } from "../io/trtexec-output.js";
import type { CompareHooks } from "./compare.js";
import { graphOutputsOf } from "./model-inputs.js";

export type TensorFileKind = "arrow" | "polygraphy" | "trtexec-output" | "npy-dir";

/** One tensor of a file, with what the file knows of its layer. */
interface FileTensor {
  name: string;
  iteration: number;
  tensor: HostTensor;
  layer?: string;
  opType?: string;
  order?: number;
}

export interface CompareFilesOptions {
  /** ONNX model giving layer names, op types and order (and the graph outputs). */
  model?: string;
  /** Runner of the candidate file (Polygraphy JSON): name or index; default the last. */
  runner?: string;
  /** Runner of the reference file; default the first. */
  refRunner?: string;
  /** `trtexec --exportLayerInfo` JSON (detailed): maps TensorRT's tensor names to the model's layers. Needs `model`. */
  layerInfo?: string;
  allowExternalDataOutside?: boolean;
}

/** What kind of tensor file `p` is: by type (folder) and extension. */
export function tensorFileKind(p: string): TensorFileKind {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new UserError(`${p}: no such file or folder; pass an Arrow dump, a Polygraphy --save-outputs JSON or a folder of .npy files`);
  }
  if (st.isDirectory()) return "npy-dir";
  // By content: a JSON list is trtexec --exportOutput, a JSON object RunResults; else .json
  // means RunResults (its reader says what is wrong) and anything else an Arrow dump.
  const fd = fs.openSync(p, "r");
  let head: string;
  try {
    const b = Buffer.alloc(256);
    head = b.subarray(0, fs.readSync(fd, b, 0, 256, 0)).toString("latin1");
  } finally {
    fs.closeSync(fd);
  }
  if (looksLikeTrtexecOutput(head)) return "trtexec-output";
  if (head.trimStart().startsWith("{") || /\.json$/i.test(p)) return "polygraphy";
  return "arrow";
}

/** trtexec writes debug tensors with characters illegal in file names replaced; compare names in that form. */
function sanitized(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, "_");
}

async function* tensorsOf(file: string, kind: TensorFileKind, runner: string | undefined, defaultRunner: "first" | "last", info: { runner?: string; precision?: string; outputs?: Set<string> | null }): AsyncGenerator<FileTensor> {
  if (kind === "arrow") {
    const d = await openDump(file, "dump");
    info.precision = d.meta.precision;
    info.outputs = graphOutputsOf(d.meta.extra);
    try {
      for await (const r of d.rows()) yield { name: r.tensor, iteration: 0, tensor: rowTensor(r, file), layer: r.layer, opType: r.opType, order: r.order };
    } finally {
      await d.close();
    }
    return;
  }
  if (kind === "trtexec-output") {
    for (const t of readTrtexecOutput(file)) yield { name: t.name, iteration: 0, tensor: t };
    return;
  }
  if (kind === "npy-dir") {
    const summary = readTensorSummary(file);
    if (summary !== null) {
      for (const t of readSummaryTensors(file, summary)) yield { name: t.name, iteration: 0, tensor: t };
      return;
    }
    const names = fs.readdirSync(file).filter((f) => f.endsWith(".npy")).sort();
    if (names.length === 0) throw new UserError(`${file}: no .npy files in the folder; pass the folder trtexec --saveAllDebugTensors wrote (or one .npy per tensor, named by tensor)`);
    for (const f of names) {
      const a = decodeNpy(new Uint8Array(fs.readFileSync(path.join(file, f))), path.join(file, f));
      const name = f.slice(0, -4);
      yield { name, iteration: 0, tensor: { name, dtype: a.dtype, dims: a.dims, data: a.data } };
    }
    return;
  }
  const runners = await runResultsRunners(file);
  const idx = runner !== undefined ? pickRunner(file, runners, runner) : defaultRunner === "first" ? pickRunner(file, runners, 0) : pickRunner(file, runners, -1);
  info.runner = runners[idx];
  for await (const t of readRunResults(file, (i) => i === idx)) {
    yield { name: t.name, iteration: t.iteration, tensor: { name: t.name, dtype: t.array.dtype, dims: t.array.dims, data: t.array.data } };
  }
}

/**
 * The tensors of iteration 0 of a tensor file (the last runner of a RunResults file) whose
 * names are in `wanted`, by name (for bisect's external runner: the graph outputs).
 */
export async function readFileTensors(file: string, wanted: ReadonlySet<string>): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for await (const t of tensorsOf(file, tensorFileKind(file), undefined, "last", {})) if (t.iteration === 0 && wanted.has(t.name)) out.set(t.name, t.tensor);
  return out;
}

/** The precision a candidate ran in, from its dump or runner name; fp16 (TensorRT's usual) otherwise. */
function candidatePrecision(info: { runner?: string; precision?: string }): { p: Precision; guessed: boolean } {
  const s = `${info.precision ?? ""} ${info.runner ?? ""}`.toLowerCase();
  for (const p of ["int8", "bf16", "fp16", "fp8", "fp32"] as const) if (s.includes(p)) return { p, guessed: false };
  return { p: "fp16", guessed: true };
}

/**
 * Reference vs candidate, each an Arrow dump, a Polygraphy RunResults JSON or a folder of
 * .npy files, tensor by tensor (every iteration when both files have several).
 */
export async function compareTensorFiles(refFile: string, candFile: string, o: CompareOptions, opts: CompareFilesOptions = {}, hooks: CompareHooks = {}, keepRows = true): Promise<CompareSummary> {
  const refKind = tensorFileKind(refFile), candKind = tensorFileKind(candFile);
  const sameFile = path.resolve(refFile) === path.resolve(candFile);
  if (sameFile && refKind !== "polygraphy") throw new UserError(`${refFile}: one file is compared with itself only when it is a Polygraphy RunResults file with two runners; give the reference and the candidate (compare REF CAND)`);
  const layerOf = new Map<string, { layer: string; opType: string; order: number; nodes: string[] }>();
  const bySanitized = new Map<string, string>();
  let modelOutputs: Set<string> | null = null;
  const trtNames = new Map<string, string>();
  let unmappedTrtLayers: string[] = [];
  if (opts.model) {
    const p = await prepareModelFile(opts.model, { allowExternalDataOutside: opts.allowExternalDataOutside });
    for (const l of p.model.graph.layers) {
      const nodes = l.nodeNames;
      for (const t of [...l.outputs, ...l.nodes.flatMap((n) => n.output)]) {
        if (!t || layerOf.has(t)) continue;
        layerOf.set(t, { layer: l.name, opType: l.opType, order: l.index, nodes });
        bySanitized.set(sanitized(t), t);
      }
    }
    modelOutputs = new Set(p.model.graph.outputs.map((v) => v.name));
    if (opts.layerInfo) unmappedTrtLayers = mapTrtNames(readLayerInfo(opts.layerInfo), p.model.graph.layers, layerOf, trtNames);
  } else if (opts.layerInfo) {
    throw userError`${opt("layerInfo")} ${opts.layerInfo}: needs ${opt("model")} MODEL.onnx (the ONNX nodes the layer information names are looked up in the model)`;
  }
  const refInfo: { runner?: string; precision?: string; outputs?: Set<string> | null } = {};
  const candInfo: typeof refInfo = {};
  const refIt = tensorsOf(refFile, refKind, opts.refRunner, "first", refInfo);
  const candIt = tensorsOf(candFile, candKind, opts.runner, "last", candInfo);
  if (refKind === "polygraphy" && sameFile && opts.refRunner === undefined && opts.runner === undefined) {
    const names = await runResultsRunners(refFile);
    if (names.length < 2) throw new UserError(`${refFile}: holds one runner (${names[0] ?? "none"}); compare it with another file, or pass a file with two runners`);
  }
  const acc = new CompareAccumulator(keepRows);
  const unmatched: string[] = [];
  const canonical = (n: string) => (layerOf.has(n) ? n : trtNames.get(n) ?? bySanitized.get(sanitized(n)) ?? n);
  const pendingRef = new Map<string, FileTensor>();
  const pendingCand = new Map<string, FileTensor>();
  let matched = 0, skipped = 0, k = 0;
  // An Arrow dump or a .npy folder is one input set: it pairs with iteration 0 of the other side.
  const refSingle = refKind !== "polygraphy", candSingle = candKind !== "polygraphy";
  let extraIterations = 0;
  const key = (t: FileTensor) => `${t.iteration}\u0000${canonical(t.name)}`;
  const usable = (t: FileTensor, otherSingle: boolean) => !(otherSingle && t.iteration > 0) || (extraIterations++, false);
  const handle = (r: FileTensor, c: FileTensor) => {
    matched++;
    const name = canonical(c.name);
    const rt = r.tensor, ct = c.tensor;
    if (rt.dtype !== ct.dtype && !(isFloatDType(rt.dtype) && isFloatDType(ct.dtype))) {
      throw new UserError(`${candFile}: tensor '${c.name}' is ${ct.dtype} but ${rt.dtype} in ${refFile}; outputs of different models?`);
    }
    if (rt.dims.join(",") !== ct.dims.join(",")) {
      throw new UserError(`${candFile}: tensor '${c.name}' has shape [${ct.dims}] but [${rt.dims}] in ${refFile}; outputs of different models or inputs?`);
    }
    const m = layerOf.get(name);
    const layer = m?.layer ?? c.layer ?? r.layer ?? name;
    const { p: precision } = candidatePrecision(candInfo);
    const outputs = modelOutputs ?? candInfo.outputs ?? refInfo.outputs ?? null;
    const l = compareTensor(
      { order: m?.order ?? c.order ?? r.order ?? k, layer, opType: m?.opType ?? c.opType ?? r.opType ?? "", nodes: m?.nodes ?? [layer], precision, verdictPrecision: precision, isGraphOutput: outputs?.has(name) ?? false },
      { ...rt, name },
      { ...ct, name },
      o,
      hooks,
    );
    if (!l) return void skipped++;
    if (!(refSingle && candSingle)) l.iteration = refSingle ? c.iteration : r.iteration;
    hooks.onTensors?.(l, rt, ct);
    results.push(l);
  };
  // Files list tensors in their own order (a runner's output order, file names): rows are
  // judged in execution order (iteration, then layer order), so the first failing layer is
  // the first in the model. A row is metrics only; the tensors are not kept.
  const results: LayerComparison[] = [];
  let rDone = false, cDone = false;
  try {
    while (!rDone || !cDone) {
      if (!rDone) {
        const n = await refIt.next();
        if (n.done) rDone = true;
        else if (usable(n.value, candSingle)) {
          const kk = key(n.value);
          const c = pendingCand.get(kk);
          if (c) pendingCand.delete(kk), handle(n.value, c);
          else pendingRef.set(kk, n.value);
        }
      }
      if (!cDone) {
        const n = await candIt.next();
        if (n.done) cDone = true;
        else if (usable(n.value, refSingle)) {
          const kk = key(n.value);
          const r = pendingRef.get(kk);
          if (r) pendingRef.delete(kk), handle(r, n.value);
          else pendingCand.set(kk, n.value);
        }
      }
      hooks.progress?.("compare files", ++k, 0);
    }
  } finally {
    await refIt.return(undefined);
    await candIt.return(undefined);
  }
  results.sort((x, y) => (x.iteration ?? 0) - (y.iteration ?? 0) || x.order - y.order);
  for (const l of results) {
    acc.add(l);
    hooks.onLayer?.(l);
  }
  for (const t of pendingCand.values()) unmatched.push(t.name);
  for (const t of pendingRef.values()) unmatched.push(t.name);
  if (matched === 0) throw userError`${candFile}: no tensor names in common with ${refFile}${opts.model ? "" : [" (pass ", opt("model"), " MODEL.onnx to match TensorRT's sanitized names)"]}; compare outputs of the same model`;
  const notes: string[] = [];
  if (refInfo.runner !== undefined) notes.push(`reference: runner '${refInfo.runner}' of ${refFile}`);
  if (candInfo.runner !== undefined) notes.push(`candidate: runner '${candInfo.runner}' of ${candFile}`);
  const cp = candidatePrecision(candInfo);
  if (cp.guessed) notes.push(`the candidate's precision is not named in the file: judged at the fp16 threshold`);
  if (extraIterations) notes.push(`${extraIterations} tensors of iterations after the first are not compared (the other file holds one input set)`);
  if (unmappedTrtLayers.length) notes.push(`${unmappedTrtLayers.length} TensorRT layers of ${opts.layerInfo} name no ONNX node of the model (not mapped): ${unmappedTrtLayers.slice(0, 10).join(", ")}${unmappedTrtLayers.length > 10 ? ", ..." : ""}`);
  if (skipped) notes.push(`${skipped} non-floating tensors are not compared`);
  const uniq = [...new Set(unmatched)];
  if (uniq.length) notes.push(`${uniq.length} tensors in only one file (not compared): ${uniq.slice(0, 10).join(", ")}${uniq.length > 10 ? ", ..." : ""}`);
  const s = acc.summary(refFile, candFile, notes);
  // Several iterations: each row says its input set, and the summary the first failing one.
  const several = results.some((l) => l.iteration !== undefined);
  if (several) {
    if (keepRows) s.layers = s.layers.map((row, i) => ({ ...row, iteration: results[i]!.iteration }));
    Object.assign(s, { first_failing_iteration: acc.firstFailing?.iteration ?? null });
  }
  const outputs = modelOutputs ?? candInfo.outputs ?? refInfo.outputs ?? null;
  if (!outputs || acc.outputsSeen === 0) {
    notes.push(spelled(hooks, optionText`no graph output was compared (pass ${opt("model")} MODEL.onnx to name them): the verdict covers every compared tensor`));
    s.passed = s.outputs_passed = s.first_failing_layer === null && s.degenerate_outputs.length === 0;
    s.verdict = s.first_failing_layer !== null ? "failed" : s.passed ? "passed" : "degenerate";
  }
  return Object.assign(s, { unmatched_tensors: uniq, ...(opts.layerInfo ? { unmapped_trt_layers: unmappedTrtLayers } : {}) });
}

/**
 * TensorRT output tensor names that are not ONNX tensors (Myelin regions, fused layers,
 * reformats) mapped to the model: the ONNX nodes a TensorRT layer implements (Metadata, or
 * its `+`/`||` name parts) → the last model layer holding one of them → its output (by
 * position when the counts agree). Fills `trtNames`; returns the TensorRT layers (with outputs)
 * that name no node of the model.
 */
function mapTrtNames(
  info: ReturnType<typeof readLayerInfo>,
  layers: readonly { index: number; outputs: string[]; nodeNames: string[] }[],
  layerOf: Map<string, unknown>,
  trtNames: Map<string, string>,
): string[] {
  const byNode = new Map<string, (typeof layers)[number]>();
  for (const l of layers) for (const n of l.nodeNames) byNode.set(n, l);
  const unmapped: string[] = [];
  for (const t of info.layers) {
    const hits = t.onnxNodes.map((n) => byNode.get(n)).filter((l): l is (typeof layers)[number] => l !== undefined);
    if (hits.length === 0) {
      if (t.outputs.some((o) => !layerOf.has(o))) unmapped.push(t.name);
      continue;
    }
    const last = hits.reduce((a, b) => (b.index > a.index ? b : a));
    t.outputs.forEach((o, i) => {
      if (layerOf.has(o)) return;
      const target = t.outputs.length === last.outputs.length ? last.outputs[i] : last.outputs.length === 1 ? last.outputs[0] : undefined;
      if (target) trtNames.set(o, target);
    });
  }
  return unmapped;
}
