/**
 * Calibration data: where the batches come from (docs/int8.md, "Calibration data").
 *
 *  - `--calib-data DIR`: ONNX TensorProto input sets — `test_data_set_*` sub-directories
 *    (each one batch), other sub-directories holding input_*.pb (each one batch, in natural
 *    name order), or a flat directory of input_*.pb (one batch);
 *  - `--calib-data FILE`: an inputs Arrow file as `--save-inputs` writes it; the k-th
 *    occurrence of an input name belongs to batch k;
 *  - `--calib-data` with the real-data sources of `--load-inputs` (src/data/sources.ts): a
 *    folder of images (with --image-preprocess) or of .npy/.npz files, one .npz/.npy, a
 *    Polygraphy inputs JSON (one batch per iteration); `--data-loader-script` likewise;
 *  - neither: seeded random data from the usual input options, `--calib-batches N` batches
 *    (default 8), batch k with seed + k — with a loud warning, random data calibrates badly.
 *    `--load-inputs` without `--calib-data` is one batch of real data.
 *
 * Batches are produced one at a time (an async generator), so memory does not depend on how
 * many there are.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { opt, optionError, optionText, UserError, userError, type MessagePart } from "../core/errors.js";
import { spelled, type Hooks, type Warn } from "../core/hooks.js";
import type { HostTensor } from "../core/host-tensor.js";
import { generationOptions, type InputArgs } from "../data/input-args.js";
import { generateInputs, isArrowFile, loadInputs, resolveInputShapes, type InputSpec } from "../data/inputs.js";
import { arrowSets, mayHaveSeveralSets, openInputSets, openLoaderScript, type InputSets } from "../data/sources.js";

export const DEFAULT_CALIB_BATCHES = 8;

export interface CalibDataArgs {
  /** `--calib-data PATH`: a directory of input sets or an inputs Arrow file. */
  calibData?: string;
  /** `--calib-batches N`: number of random batches (default 8; random data only). */
  calibBatches?: number;
  /** The usual input options (seed, value ranges, shapes; --load-inputs = one real batch). */
  inputs?: InputArgs;
  /** Layer fusion of the prepared model ("trt" default, or "none"; docs/precision.md). */
  fusion?: import("../onnx/layer-model.js").FusionMode;
  /** Accept external data outside the model's folder (docs/security.md). Off by default. */
  allowExternalDataOutside?: boolean;
}

export interface CalibSource {
  kind: "test-data-sets" | "directories" | "flat-directory" | "arrow" | "files" | "data-loader-script" | "load-inputs" | "random";
  /** What the data is, for reports ("3 test_data_set_* directories in data/"). */
  description: string;
  /** Number of batches when known in advance (null for Arrow files until read). */
  batches: number | null;
  /** True for seeded random data. */
  random: boolean;
  /** The batches, one at a time, each one tensor per model input in model input order. */
  iterate(): AsyncGenerator<HostTensor[]>;
}

const TDS_RE = /^test_data_set_(\d+)$/;
const INPUT_PB_RE = /^input_(\d+)\.pb$/;

function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

function hasInputPb(dir: string): boolean {
  try {
    return fs.readdirSync(dir).some((f) => INPUT_PB_RE.test(f));
  } catch {
    return false;
  }
}

function dirSource(dir: string, specs: InputSpec[]): CalibSource {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new UserError(`calibData ${dir}: cannot read the directory (${(e as NodeJS.ErrnoException).code ?? String(e)})`, "calibData");
  }
  const subdirs = entries.filter((e) => e.isDirectory()).map((e) => e.name);
  const tds = subdirs.filter((d) => TDS_RE.test(d)).sort((a, b) => Number(TDS_RE.exec(a)![1]) - Number(TDS_RE.exec(b)![1]));
  const pbs = entries.filter((e) => e.isFile() && INPUT_PB_RE.test(e.name)).map((e) => e.name);
  let kind: CalibSource["kind"];
  let batchDirs: string[];
  if (tds.length > 0) {
    kind = "test-data-sets";
    batchDirs = tds.map((d) => path.join(dir, d));
  } else if (pbs.length > 0) {
    kind = "flat-directory";
    batchDirs = [dir];
  } else {
    kind = "directories";
    batchDirs = subdirs.sort(naturalCompare).map((d) => path.join(dir, d)).filter(hasInputPb);
  }
  if (batchDirs.length === 0) {
    throw userError`${opt("calibData")} ${dir}: no input sets found; expected test_data_set_*/input_*.pb, sub-directories holding input_*.pb, input_*.pb files, or an Arrow file written by ${opt("saveInputs")}`;
  }
  const description =
    kind === "test-data-sets"
      ? `${batchDirs.length} test_data_set_* director${batchDirs.length === 1 ? "y" : "ies"} in ${dir}`
      : kind === "flat-directory"
        ? `input_*.pb files in ${dir} (1 batch)`
        : `${batchDirs.length} input director${batchDirs.length === 1 ? "y" : "ies"} in ${dir}`;
  return {
    kind,
    description,
    batches: batchDirs.length,
    random: false,
    async *iterate() {
      for (const d of batchDirs) yield await loadInputs(d, specs, "calibData");
    },
  };
}

function arrowSource(file: string, specs: InputSpec[]): CalibSource {
  return setsSource("arrow", arrowSets(file, specs, "calibData"));
}

/** Input sets of src/data/sources.ts as calibration batches (read one at a time). */
function setsSource(kind: CalibSource["kind"], sets: InputSets): CalibSource {
  return { kind, description: sets.description, batches: sets.count, random: false, iterate: () => sets.iterate() };
}

/** A directory the ONNX .pb reader handles: input_*.pb, test_data_set_*, or sub-directories of input_*.pb. */
function isPbDirectory(dir: string): boolean {
  const entries = fs.readdirSync(dir, { withFileTypes: true });
  return entries.some((e) => (e.isFile() && INPUT_PB_RE.test(e.name)) || (e.isDirectory() && (TDS_RE.test(e.name) || hasInputPb(path.join(dir, e.name)))));
}

/** Check `calibBatches` (default DEFAULT_CALIB_BATCHES). */
export function parseCalibBatches(v: unknown): number {
  if (v === undefined) return DEFAULT_CALIB_BATCHES;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new UserError(`calibBatches ${String(v)}: expected a positive integer`, "calibBatches");
  return n;
}

/**
 * The calibration batches for a model with inputs `specs`. `warn` receives the random-data
 * warning and shape warnings; the source's description spells options as `hooks.spell` does.
 */
/** The advice the calibration-data warnings end with (random data, a single batch). */
function realDataAdvice(): MessagePart[] {
  return optionText`Pass ${opt("calibData")} with a few hundred real input samples (a folder of images or .npy files, Polygraphy inputs JSON, test_data_set_*/input_*.pb or an Arrow file from ${opt("saveInputs")}).`.parts;
}

/**
 * Warn when real calibration data (not random) gave a single batch: ranges from one sample are
 * not representative (the random-data warning covers random data).
 */
export function warnSingleBatch(source: Pick<CalibSource, "description" | "random">, batches: number, warn: Warn): void {
  if (batches !== 1 || source.random) return;
  const w = optionText`CALIBRATING ON ONE BATCH: every range comes from a single batch (${source.description}). Ranges from one sample are not representative of your real data, so the INT8 accuracy they give can be badly wrong. ${realDataAdvice()}`;
  warn(w.message, w.parts);
}

export function openCalibData(specs: InputSpec[], a: CalibDataArgs, warn: Warn, hooks: Pick<Hooks, "spell"> = {}): CalibSource {
  const inp = a.inputs ?? {};
  if (a.calibData !== undefined) {
    if (inp.loadInputs && inp.loadInputs.length) throw userError`${opt("calibData")} and ${opt("loadInputs")}: give the calibration data once`;
    if (a.calibBatches !== undefined) throw userError`${opt("calibBatches")}: only for random calibration data; ${opt("calibData")} decides the batches itself`;
    let st: fs.Stats;
    try {
      st = fs.statSync(a.calibData);
    } catch {
      throw new UserError(`calibData ${a.calibData}: no such file or directory`, "calibData");
    }
    if (inp.dataLoaderScript) throw userError`${opt("calibData")} and ${opt("dataLoaderScript")}: give the calibration data once`;
    const files = () => setsSource("files", openInputSets([a.calibData!], specs, { option: "calibData", imagePreprocess: inp.imagePreprocess }));
    if (st.isDirectory()) return isPbDirectory(a.calibData) || fs.readdirSync(a.calibData).length === 0 ? dirSource(a.calibData, specs) : files();
    return isArrowFile(a.calibData) ? arrowSource(a.calibData, specs) : files();
  }
  if (inp.dataLoaderScript) {
    if (inp.loadInputs && inp.loadInputs.length) throw userError`${opt("dataLoaderScript")} and ${opt("loadInputs")}: give the calibration data once`;
    if (a.calibBatches !== undefined) throw optionError("calibBatches", "only for random calibration data; the data loader script decides the batches");
    return setsSource("data-loader-script", openLoaderScript(inp.dataLoaderScript, specs));
  }
  if (inp.loadInputs && inp.loadInputs.length) {
    const paths = [...inp.loadInputs];
    if (mayHaveSeveralSets(paths)) return setsSource("load-inputs", openInputSets(paths, specs, { option: "loadInputs", imagePreprocess: inp.imagePreprocess }));
    return {
      kind: "load-inputs",
      description: spelled(hooks, optionText`${opt("loadInputs")} ${paths.join(" ")} (1 batch)`),
      batches: 1,
      random: false,
      async *iterate() {
        yield await loadInputs(paths, specs);
      },
    };
  }
  const n = parseCalibBatches(a.calibBatches);
  const { seed, valRanges, inputShapes } = generationOptions(inp);
  const names = new Set(specs.map((s) => s.name));
  for (const nm of valRanges.perInput.keys()) {
    if (!names.has(nm)) throw optionError("inputValRanges", `'${nm}' is not an input of the model; its inputs are: ${[...names].join(", ")}`);
  }
  resolveInputShapes(specs, { seed, valRanges, inputShapes }, warn);
  const ranges = specs.map((s) => {
    const r = valRanges.perInput.get(s.name) ?? valRanges.global;
    return r ? `${s.name}:[${r.lo},${r.hi}]` : `${s.name}:[0,1]`;
  });
  const w = optionText`CALIBRATING ON RANDOM DATA: ${n} batch${n === 1 ? "" : "es"} of seeded uniform noise (seeds ${seed}..${(seed + n - 1) >>> 0}, ${ranges.join(" ")}). Random inputs do not look like your real data, so the ranges, and the INT8 accuracy they give, can be badly wrong. ${realDataAdvice()}`;
  warn(w.message, w.parts);
  return {
    kind: "random",
    description: `random, seed${n === 1 ? ` ${seed}` : `s ${seed}..${(seed + n - 1) >>> 0}`}`,
    batches: n,
    random: true,
    async *iterate() {
      for (let k = 0; k < n; k++) {
        // Shape warnings were given once above.
        yield generateInputs(specs, { seed: (seed + k) >>> 0, valRanges, inputShapes }, () => undefined);
      }
    },
  };
}
