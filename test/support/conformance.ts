/**
 * Conformance against the ONNX backend test data (Debian's libonnx-testdata): every model is
 * run in FP32 and its expected outputs must match, or the model must be reported unsupported
 * with a clear one-line reason; its FP16 rewrite must still load and run.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../../src/core/errors.js";
import type { HostTensor, Precision } from "../../src/core/host-tensor.js";
import { isFloatDType } from "../../src/core/host-tensor.js";
import { prepareModelFile, runCaptured } from "../../src/runtime/capture-runs.js";
import { Executor } from "../../src/runtime/executor.js";
import { loadInputs } from "../../src/data/inputs.js";
import { readTensorPb } from "../../src/onnx/tensor.js";
import { diffMetrics, elemwiseCheck } from "../../src/numeric/index.js";
import { floatValues } from "../../src/numeric/index.js";

/** Where the ONNX backend test data is looked for (TRT_DEBUG_ONNX_TESTDATA overrides it). */
export const ONNX_TESTDATA_DIRS = process.env.TRT_DEBUG_ONNX_TESTDATA ? [process.env.TRT_DEBUG_ONNX_TESTDATA] : ["/usr/share/libonnx-testdata/data"];

export type CaseStatus = "pass" | "mismatch" | "known-divergence" | "unsupported" | "fp16-error";

/** Operators whose outputs are random: expected outputs cannot be reproduced. */
export const NONDETERMINISTIC_OPS = new Set(["Bernoulli", "RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial"]);

/**
 * Cases where onnxruntime 1.30 itself (not trt-debug) disagrees with the reference outputs of
 * the ONNX test data, with the reason. Anything else that mismatches is a trt-debug bug.
 */
export const KNOWN_ORT_DIVERGENCES: Record<string, string> = {
  "node/test_training_dropout": "training-mode Dropout draws a random mask",
  "node/test_training_dropout_default": "training-mode Dropout draws a random mask",
  "node/test_training_dropout_default_mask": "training-mode Dropout draws a random mask",
  "node/test_training_dropout_mask": "training-mode Dropout draws a random mask",
  "node/test_cast_FLOAT_to_STRING": "onnxruntime formats floats as strings differently from numpy",
  "node/test_castlike_FLOAT_to_STRING": "onnxruntime formats floats as strings differently from numpy",
  "node/test_castlike_FLOAT_to_STRING_expanded": "onnxruntime formats floats as strings differently from numpy",
  "node/test_cast_STRING_to_FLOAT": "onnxruntime parses one string differently from numpy",
  "node/test_castlike_STRING_to_FLOAT": "onnxruntime parses one string differently from numpy",
  "node/test_castlike_STRING_to_FLOAT_expanded": "onnxruntime parses one string differently from numpy",
  "node/test_dft": "onnxruntime's DFT differs from the reference on 10% of elements",
  "node/test_dft_axis": "onnxruntime's DFT differs from the reference on 10% of elements",
  "node/test_dft_inverse": "onnxruntime's DFT differs from the reference on 10% of elements",
  "node/test_stft": "onnxruntime's STFT differs from the reference",
  "node/test_stft_with_window": "onnxruntime's STFT differs from the reference",
  "node/test_maxunpool_export_with_output_shape": "onnxruntime's MaxUnpool with output_shape differs from the reference",
  "node/test_resize_downsample_scales_cubic_align_corners": "onnxruntime's Resize align_corners downsampling differs from the reference",
  "node/test_resize_downsample_scales_linear_align_corners": "onnxruntime's Resize align_corners downsampling differs from the reference",
};

export interface CaseResult {
  name: string;
  status: CaseStatus;
  /** One line: why unsupported, what mismatched, or what the FP16 rewrite hit. */
  detail: string;
  fp16: "ok" | "error" | "skipped";
}

/** Test case directories (those with model.onnx and test_data_set_0) under the test data root. */
export function findCases(root: string): string[] {
  const out: string[] = [];
  for (const group of fs.readdirSync(root).sort()) {
    const g = path.join(root, group);
    if (!fs.statSync(g).isDirectory()) continue;
    for (const t of fs.readdirSync(g).sort()) {
      const d = path.join(g, t);
      if (fs.existsSync(path.join(d, "model.onnx")) && fs.existsSync(path.join(d, "test_data_set_0"))) out.push(d);
    }
  }
  return out;
}

/** ONNX backend test default tolerances. */
const RTOL = 1e-3;
const ATOL = 1e-7;

function sameTensor(expected: HostTensor, got: HostTensor): string | null {
  if (expected.dims.join(",") !== got.dims.join(",")) return `shape [${got.dims}] != expected [${expected.dims}]`;
  if (isFloatDType(expected.dtype)) {
    const e = floatValues(expected), g = floatValues(got);
    if (!e || !g) return `dtype ${got.dtype} != expected ${expected.dtype}`;
    // As numpy's assert_allclose: NaN equals NaN, same-signed infinities are equal.
    const el = elemwiseCheck(e, g, { atol: ATOL, rtol: RTOL, infinitiesCompareEqual: true });
    const m = diffMetrics(e, g, { infinitiesCompareEqual: true });
    const finiteFails = el.failCount - el.nonFiniteMismatch;
    // The candidate's non-finite positions lie where the reference's are (newNonFinite 0), the
    // counts of each class agree, and the only non-finite "mismatches" are NaN against NaN.
    const nanSame = m.newNonFinite === 0 && m.candNan === m.refNan && m.candInf === m.refInf && el.nonFiniteMismatch === m.candNan;
    if (finiteFails) return `${finiteFails} of ${e.length} elements differ beyond rtol ${RTOL}/atol ${ATOL}`;
    return nanSame ? null : `NaN/Inf positions differ (expected ${m.refNan} NaN/${m.refInf} Inf, got ${m.candNan}/${m.candInf})`;
  }
  if (expected.dtype !== got.dtype) return `dtype ${got.dtype} != expected ${expected.dtype}`;
  if (Array.isArray(expected.data)) {
    return JSON.stringify(expected.data) === JSON.stringify(got.data) ? null : "string values differ";
  }
  const a = expected.data as ArrayBufferView, b = got.data as ArrayBufferView;
  const eq = Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  return eq ? null : "values differ";
}

function reason(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!.slice(0, 300);
}

export async function runCase(dir: string): Promise<CaseResult> {
  const name = `${path.basename(path.dirname(dir))}/${path.basename(dir)}`;
  const set = path.join(dir, "test_data_set_0");
  let p;
  try {
    p = await prepareModelFile(path.join(dir, "model.onnx"));
  } catch (e) {
    if (e instanceof UserError) return { name, status: "unsupported", detail: reason(e), fp16: "skipped" };
    throw e;
  }
  const exec = new Executor(p.model, p.types, { optimizationLevel: "basic" });
  try {
    let inputs: HostTensor[];
    try {
      inputs = p.inputs.length ? await loadInputs(set, p.inputs) : [];
    } catch (e) {
      if (e instanceof UserError) return { name, status: "unsupported", detail: reason(e), fp16: "skipped" };
      throw e;
    }
    const expectedFiles = fs.readdirSync(set).filter((f) => /^output_\d+\.pb$/.test(f)).sort((a, b) => Number(a.slice(7, -3)) - Number(b.slice(7, -3)));
    const outputs = p.model.graph.outputs.map((o) => o.name);
    let expected: HostTensor[];
    try {
      expected = expectedFiles.map((f) => readTensorPb(path.join(set, f)));
    } catch (e) {
      if (e instanceof UserError) return { name, status: "unsupported", detail: `expected output: ${reason(e)}`, fp16: "skipped" };
      throw e;
    }
    const run = async (prec: Precision) => {
      const got = new Map<string, HostTensor>();
      const precisions = p.model.graph.layers.map(() => prec);
      const want = new Set(outputs);
      for await (const c of runCaptured(exec, precisions, inputs, (i) => p.model.graph.layers[i]!.outputs.some((o) => want.has(o)))) {
        if (want.has(c.tensor.name)) got.set(c.tensor.name, c.tensor);
      }
      return got;
    };
    let got: Map<string, HostTensor>;
    try {
      got = await run("fp32");
    } catch (e) {
      if (e instanceof UserError) return { name, status: "unsupported", detail: reason(e), fp16: "skipped" };
      throw e;
    }
    let detail = "";
    for (let k = 0; k < expected.length && k < outputs.length; k++) {
      const g = got.get(outputs[k]!);
      if (!g) {
        detail = `output '${outputs[k]}' cannot be fetched from onnxruntime (${p.types.get(outputs[k]!)?.dtype ?? "non-tensor"})`;
        break;
      }
      const d = sameTensor(expected[k]!, g);
      if (d) {
        detail = `output '${outputs[k]}': ${d}`;
        break;
      }
    }
    const unfetchable = detail.includes("cannot be fetched");
    let fp16: CaseResult["fp16"] = "ok";
    let fp16Detail = "";
    try {
      await run("fp16");
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      fp16 = "error";
      fp16Detail = reason(e);
    }
    if (unfetchable) return { name, status: "unsupported", detail, fp16 };
    const randomOp = p.model.graph.layers.find((l) => NONDETERMINISTIC_OPS.has(l.opType));
    if (detail && randomOp) return { name, status: "unsupported", detail: `nondeterministic operator ${randomOp.opType}: expected outputs cannot be reproduced`, fp16 };
    if (detail && KNOWN_ORT_DIVERGENCES[name]) return { name, status: "known-divergence", detail: `${KNOWN_ORT_DIVERGENCES[name]} (${detail})`, fp16 };
    if (detail) return { name, status: "mismatch", detail, fp16 };
    if (fp16 === "error" && p.model.opset >= 6) return { name, status: "fp16-error", detail: fp16Detail, fp16 };
    if (fp16 === "error") return { name, status: "pass", detail: `fp32 matches; fp16 emulation unsupported: ${fp16Detail}`, fp16 };
    return { name, status: "pass", detail: "", fp16 };
  } finally {
    await exec.release();
  }
}

export interface ConformanceSummary {
  total: number;
  counts: Record<CaseStatus, number>;
  cases: CaseResult[];
}

export async function runConformance(root: string, onCase?: (r: CaseResult, i: number, n: number) => void): Promise<ConformanceSummary> {
  const cases = findCases(root);
  const results: CaseResult[] = [];
  for (let i = 0; i < cases.length; i++) {
    const r = await runCase(cases[i]!);
    results.push(r);
    onCase?.(r, i + 1, cases.length);
  }
  const counts: Record<CaseStatus, number> = { pass: 0, mismatch: 0, "known-divergence": 0, unsupported: 0, "fp16-error": 0 };
  for (const r of results) counts[r.status]++;
  return { total: results.length, counts, cases: results };
}
