/**
 * trt-debug as a library: everything the CLI does, without printing or exiting.
 */
export * from "./workflows/model.js";
export { UserError } from "./core/errors.js";
export type { DType, HostTensor, Precision } from "./core/host-tensor.js";
export { loadModel, type Layer, type LoadedModel, type GraphView, type LoadOptions } from "./onnx/model.js";
export { FILE_LIMITS } from "./io/safe-read.js";
export { type TypeMap } from "./onnx/infer.js";
export { inferTypes } from "./onnx/model-types.js";
export { applyLayerModel, FUSION_PATTERNS, FUSED_ACTIVATIONS, parseFusionMode, type FusionMode, type LayerModelSummary, type BatchNormFold } from "./onnx/layer-model.js";
export { Executor, planSegments, type Segment } from "./runtime/executor.js";
export { prepareModelFile, runCaptured, runPaired, assignPrecisions, type PreparedModel, type Captured } from "./runtime/run.js";
export { compareTensor, CompareAccumulator, COMPARE_FORMAT, type LayerComparison, type CompareSummary } from "./compare/compare.js";
export { defaultCompareOptions, judge, DEFAULT_MAX_REL_L2, type CompareOptions, type Verdict } from "./compare/tolerance.js";
export { PLAN_FORMAT, makePlan, readPlan, parsePlanJson, planToJson, resolvePlan, type PrecisionPlan, type PlanEntry } from "./precision/plan.js";
export { DumpWriter, openDump, type DumpRow, type DumpMeta } from "./io/dump.js";
export * as numeric from "./numeric/index.js";
export { decodeNpy, encodeNpy, type NpyArray } from "./io/npy.js";
export { decodeNpz } from "./io/npz.js";
export { decodePolygraphyArray, encodePolygraphyArray, decodePolygraphyInputs } from "./io/polygraphy-json.js";
export { openInputSets, openLoaderScript, type InputSets } from "./data/sources.js";
export { parseImagePreprocess, imageToTensor, decodeImage, type ImagePreprocess } from "./data/image.js";
export type { IterationsSummary, IterationVerdict } from "./compare/iterations.js";
