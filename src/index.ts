/**
 * trt-debug as a library: every workflow the CLI offers, without printing or exiting.
 * This file is the package's only entry point (package.json "exports"); everything else
 * under src/ is internal and may change. Each workflow takes one options object and optional
 * hooks (warnings, progress) and returns a result object; user mistakes throw UserError.
 *
 * @example
 *   import { compareModel, bisectModel } from "trt-debug";
 *   const s = await compareModel({ model: "model.onnx", candidate: "fp16", compare: defaultCompareOptions() });
 *   if (!s.passed) console.log(s.first_failing_layer);
 *   const b = await bisectModel({ model: "model.onnx", precision: "fp16", mode: "bisect", criterion: { kind: "compare", compare: defaultCompareOptions() } });
 *   console.log(b.pinned.map((l) => l.name));
 *
 * Workflows (CLI command → function):
 *   run              runModel          dumps of every captured layer, per precision
 *   validate         validateModel     NaN/Inf in every layer of a model run
 *                    validateDump      ... or of an Arrow dump
 *   compare          compareModel      FP32 reference vs a candidate precision, layer by layer
 *                    compareDumps      ... or two dumps
 *   bisect           bisectModel       the layers that must stay in higher precision
 *   calib build      calibBuild        a TensorRT INT8 calibration cache from data
 *   calib check      calibCheck        a calibration cache checked against the data
 *   inspect          inspectModel      layers, op types and tensors under TensorRT's layer model
 *   report           renderReport      a compare/bisect/calib check result as one HTML file (docs/report.md)
 */

// Workflows and their options/results.
export { runModel, type RunArgs, type RunResult, type PrecisionRunResult, type NonFiniteRecord } from "./workflows/run.js";
export { validateModel, validateDump, type ValidateResult } from "./workflows/validate.js";
export { compareModel, compareDumps, type CompareArgs, type CompareHooks } from "./workflows/compare.js";
export { compareTensorFiles, type CompareFilesOptions } from "./workflows/compare-files.js";
export { compareExternal, type CompareExternalArgs, type CompareExternalHooks } from "./workflows/compare-external.js";
export { runToRunResults } from "./workflows/run-polygraphy.js";
export {
  bisectModel,
  type BisectArgs,
  type BisectHooks,
  type BisectResult,
  type BisectMode,
  type Criterion,
  type Direction,
  type IterationRecord,
  type PinnedLayer,
} from "./workflows/bisect.js";
export { calibBuild, type CalibBuildArgs, type CalibBuildResult, type CalibBuildTensor } from "./calibration/build.js";
export { calibCheck, type CalibCheckArgs, type CalibCheckResult, type CheckThresholds, type TensorCheck, type LayerCheck } from "./calibration/check.js";
export type { CalibDataArgs } from "./calibration/calib-data.js";
export { inspectModel, type InspectArgs, type InspectResult, type InspectedLayer } from "./workflows/inspect.js";
export { convertModel, type ConvertArgs, type ConvertResult } from "./workflows/convert.js";
export { compareGraphs, type CompareGraphsArgs, type CompareGraphsResult } from "./workflows/compare-graphs.js";
export { calibCheckQdq } from "./workflows/calib-qdq.js";
export type { ModelArgs } from "./workflows/model-inputs.js";
export type { InputArgs } from "./data/input-args.js";
export type { ImagePreprocessOptions, ImagePreprocessSettings } from "./data/input-args.js";
export type { Hooks } from "./core/hooks.js";
export { renderReport, readReportResult, reportKind, REPORT_FORMATS, type ReportKind, type ReportOptions } from "./report/html.js";
export { LayerSampler, type LayerSample } from "./report/html-samples.js";
export type { Spell, Warn } from "./core/hooks.js";

// Values the options and results use.
export { UserError } from "./core/errors.js";
export type { MessagePart, OptionRef } from "./core/errors.js";
export { PRECISIONS, type DType, type HostTensor, type Precision } from "./core/host-tensor.js";
export type { FusionMode, LayerModelSummary } from "./onnx/model.js";
export type { OptimizationLevel } from "./onnx/ort-session.js";
export type { Int8RunArgs, Int8Report } from "./calibration/int8-run.js";
export type { CalibAlgo } from "./calibration/algorithms.js";
export { defaultCompareOptions, type CompareOptions, type Verdict } from "./compare/tolerance.js";
export { COMPARE_FORMAT, type CompareSummary, type LayerComparison } from "./compare/layer-compare.js";
export type { IterationsSummary, IterationVerdict } from "./compare/iterations.js";

// The files trt-debug reads and writes (docs/file-formats.md).
export { openDump, type DumpRow, type DumpMeta, type DumpReader } from "./io/dump.js";
export { PLAN_FORMAT, readPlan, parsePlanJson, planToJson, type PrecisionPlan, type PlanEntry } from "./precision/plan.js";
export { readCalibrationCache, type CalibrationCache } from "./calibration/cache.js";
export { decodeNpy, encodeNpy, type NpyArray } from "./io/npy.js";
export { decodeNpz } from "./io/npz.js";
export { decodePolygraphyArray, encodePolygraphyArray, decodePolygraphyInputs } from "./io/polygraphy-json.js";
export { readRunResults, RunResultsWriter, type RunResultsTensor } from "./io/polygraphy-results.js";
export { readLayerInfo, parseLayerInfo, type TrtEngineInfo, type TrtLayerInfo } from "./io/trt-layer-info.js";
export { readTrtexecOutput } from "./io/trtexec-output.js";
export { FILE_LIMITS } from "./io/safe-read.js";

// Where a run's time goes (the bench's profile breakdown, docs/performance.md).
export { startPhaseProfile, takePhaseProfile, type PhaseTime } from "./core/phase-profile.js";
