/**
 * Model inputs: shape resolution, seeded random generation and loading from files.
 *
 * Generation follows docs/inputs.md exactly (per-input xoshiro128** stream from src/data/rng.ts,
 * one or more draws per element in row-major order). Loading accepts ONNX backend test data
 * (a directory of input_*.pb, or .pb files) and Arrow inputs files written by --save-inputs.
 * Every user-caused problem is a one-line UserError naming the flag or file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as os from "node:os";
import { aboutOption, opt, optionError, optionText, UserError, userError } from "../core/errors.js";
import type { Warn } from "../core/hooks.js";
import { hostElementSize, readTensorPb } from "../onnx/tensor.js";
import { openChecked } from "../io/safe-read.js";
import type { DType, HostTensor } from "../core/host-tensor.js";
import { numel } from "../core/host-tensor.js";
import { valRangeFor, type ValRange, type ValRanges } from "./input-args.js";
import { rngFor } from "./rng.js";
import { fillUniformFloats, fillUniformInts } from "../numeric/index.js";

/** A model input as declared: dims are numbers (fixed), strings (dim_param) or null (unknown). */
export interface InputSpec {
  name: string;
  dtype: DType;
  dims: (number | string | null)[];
}

export interface InputOptions {
  seed: number;
  valRanges: ValRanges;
  /** --input-shapes: concrete shapes for inputs with dynamic dimensions. */
  inputShapes: Map<string, number[]>;
}

/** `[N,3,?,224]`: dim_params by name, unknown dims as `?`. */
export function formatDims(dims: readonly (number | string | null)[]): string {
  return `[${dims.map((d) => (d === null || (typeof d === "number" && d < 0) ? "?" : String(d))).join(",")}]`;
}

function isFixed(d: number | string | null): d is number {
  return typeof d === "number" && d >= 0;
}

export function listNames(specs: readonly InputSpec[]): string {
  return specs.length === 0 ? "(none)" : specs.map((s) => s.name).join(", ");
}

/** True when `dims` has the model's rank and agrees with every fixed dimension. */
export function shapeMatches(model: readonly (number | string | null)[], dims: readonly number[]): boolean {
  if (model.length !== dims.length) return false;
  return model.every((d, i) => !isFixed(d) || d === dims[i]);
}

/**
 * Concrete shapes for every input. Fixed dims are kept; dynamic dims (dim_param or unknown)
 * come from --input-shapes, else become 1 with one warning per input naming the dims.
 */
export function resolveInputShapes(
  specs: InputSpec[],
  o: InputOptions,
  warn: Warn,
): Map<string, number[]> {
  const known = new Set(specs.map((s) => s.name));
  for (const name of o.inputShapes.keys()) {
    if (!known.has(name)) {
      throw optionError("inputShapes", `the model has no input '${name}'; model inputs: ${listNames(specs)}`);
    }
  }
  const out = new Map<string, number[]>();
  for (const s of specs) {
    const given = o.inputShapes.get(s.name);
    if (given) {
      if (!shapeMatches(s.dims, given)) {
        const why =
          given.length !== s.dims.length
            ? `rank ${given.length} but the model declares rank ${s.dims.length}`
            : `a fixed dimension differs`;
        throw new UserError(
          `inputShapes ${s.name}:[${given.join(",")}]: ${why} (model shape ${formatDims(s.dims)}); give a shape matching ${formatDims(s.dims)}`,
          "inputShapes",
        );
      }
      out.set(s.name, [...given]);
      continue;
    }
    const dyn: string[] = [];
    const dims = s.dims.map((d, i) => {
      if (isFixed(d)) return d;
      dyn.push(typeof d === "string" && d !== "" ? `'${d}' (axis ${i})` : `axis ${i}`);
      return 1;
    });
    if (dyn.length > 0) {
      const w = optionText`input '${s.name}' ${formatDims(s.dims)}: dynamic dimension${dyn.length > 1 ? "s" : ""} ${dyn.join(", ")} set to 1; set ${dyn.length > 1 ? "them" : "it"} with ${opt("inputShapes")} ${s.name}:[${dims.join(",")}]`;
      warn(w.message, w.parts);
    }
    out.set(s.name, dims);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Random generation
// ---------------------------------------------------------------------------------------

/** Value range of the integer (and bool) element types. */
export const INT_RANGES: Partial<Record<DType, readonly [bigint, bigint]>> = {
  bool: [0n, 1n],
  int4: [-8n, 7n],
  uint4: [0n, 15n],
  int8: [-128n, 127n],
  uint8: [0n, 255n],
  int16: [-32768n, 32767n],
  uint16: [0n, 65535n],
  int32: [-2147483648n, 2147483647n],
  uint32: [0n, 4294967295n],
  int64: [-(1n << 63n), (1n << 63n) - 1n],
  uint64: [0n, (1n << 64n) - 1n],
};

/** Largest finite value of the float types generation supports. */
const FLOAT_MAX: Partial<Record<DType, number>> = {
  float16: 65504,
  bfloat16: 3.3895313892515355e38,
  float32: 3.4028234663852886e38,
  float64: Number.MAX_VALUE,
};

const fmtRange = (r: { lo: number | bigint; hi: number | bigint }): string => `[${r.lo},${r.hi}]`;

/**
 * Seeded random data for every input (shapes from {@link resolveInputShapes}). Inputs are
 * independent: input `x` gets the same values whatever the other inputs are.
 */
export function generateInputs(specs: InputSpec[], o: InputOptions, warn: Warn): HostTensor[] {
  for (const s of specs) checkGeneratable(s);
  const shapes = resolveInputShapes(specs, o, warn);
  return specs.map((s) => {
    const dims = shapes.get(s.name)!;
    return generateOne(s, dims, valRangeFor(o.valRanges, s.name), o.seed, warn);
  });
}

function checkGeneratable(s: InputSpec): void {
  if (s.dtype === "string") {
    throw userError`input '${s.name}' is a string tensor: random values cannot be generated; provide data with ${opt("loadInputs")}`;
  }
  if (!(s.dtype in INT_RANGES) && !(s.dtype in FLOAT_MAX)) {
    throw userError`input '${s.name}' has type ${s.dtype}: random values are generated only for float16/bfloat16/float32/float64/integer/bool inputs; provide data with ${opt("loadInputs")}`;
  }
}

/**
 * Generated inputs are allocated from validated dims only: the element count must be a safe
 * integer and the bytes must fit a quarter of the machine's memory (at most 16 GiB).
 */
export function checkInputSize(s: InputSpec, dims: readonly number[], n: number): void {
  const bytes = n * Math.max(1, hostElementSize(s.dtype) || 8);
  const limit = Math.min(os.totalmem() / 4, 16 * 1024 ** 3);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0) || !Number.isSafeInteger(n) || bytes > limit) {
    throw userError`input '${s.name}': shape [${dims.join(",")}] (${n.toExponential(3)} elements) is too large to generate (limit ${(limit / 1024 ** 3).toFixed(1)} GiB); fix the model's input shape or give a smaller one with ${opt("inputShapes")}`;
  }
}

/** Random values of one input. Exported for tests; see docs/inputs.md for the exact recipe. */
export function generateOne(
  s: InputSpec,
  dims: number[],
  range: ValRange,
  seed: number,
  warn: Warn,
): HostTensor {
  checkGeneratable(s);
  const n = numel(dims);
  checkInputSize(s, dims, n);
  const rng = rngFor(seed, s.name);
  const intRange = INT_RANGES[s.dtype];
  if (intRange) {
    const [lo, hi] = integerRange(s, range, intRange, warn);
    return { name: s.name, dtype: s.dtype, dims: [...dims], data: fillUniformInts(s.dtype, rng, lo, hi, n) };
  }
  const max = FLOAT_MAX[s.dtype]!;
  let { lo, hi } = range;
  if (lo < -max || hi > max) {
    const c = { lo: Math.min(Math.max(lo, -max), max), hi: Math.max(Math.min(hi, max), -max) };
    const w = optionText`input '${s.name}' (${s.dtype}): ${opt("valRange")} ${fmtRange(range)} clipped to the finite ${s.dtype} range ${fmtRange(c)}`;
    warn(w.message, w.parts);
    ({ lo, hi } = c);
  }
  if (!Number.isFinite(hi - lo)) {
    throw new UserError(`valRange ${fmtRange(range)} for input '${s.name}' is too wide (hi - lo overflows float64); narrow it`, "valRange");
  }
  return { name: s.name, dtype: s.dtype, dims: [...dims], data: fillUniformFloats(s.dtype, rng, lo, hi, n) };
}

/** [ceil(lo), floor(hi)] intersected with the dtype's range (warning when clipped). */
function integerRange(
  s: InputSpec,
  range: ValRange,
  [tmin, tmax]: readonly [bigint, bigint],
  warn: Warn,
): [bigint, bigint] {
  const lo = BigInt(Math.ceil(range.lo));
  const hi = BigInt(Math.floor(range.hi));
  if (lo > hi) {
    throw userError`${opt("valRange")} ${fmtRange(range)} for input '${s.name}' (${s.dtype}) contains no integer; give a range containing integers, e.g. ${opt("valRange")} ${s.name}:[0,1]`;
  }
  const clo = lo < tmin ? tmin : lo > tmax ? tmax : lo;
  const chi = hi > tmax ? tmax : hi < tmin ? tmin : hi;
  if (hi < tmin || lo > tmax) {
    throw userError`${opt("valRange")} ${fmtRange(range)} for input '${s.name}' is outside the ${s.dtype} range [${tmin},${tmax}]; give a range inside it, e.g. ${opt("valRange")} ${s.name}:[${tmin},${tmax}]`;
  }
  if (clo !== lo || chi !== hi) {
    const w = optionText`input '${s.name}' (${s.dtype}): ${opt("valRange")} ${fmtRange(range)} clipped to [${clo},${chi}]`;
    warn(w.message, w.parts);
  }
  return [clo, chi];
}

export { f64ToMiniFloatBits, miniFloatBitsToF64, roundHalfEven } from "../numeric/minifloat.js";

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

interface Loaded {
  tensor: HostTensor;
  file: string;
  /** Position among the .pb tensors (input_K.pb / K-th .pb file); undefined for Arrow rows (named). */
  position?: number;
}

const INPUT_PB_RE = /^input_(\d+)\.pb$/;

/** input_*.pb in `dir` by number; a model directory without them falls back to its test_data_set_0. */
function inputPbFiles(dir: string, option: string): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (e) {
    throw new UserError(`${option} ${dir}: cannot read directory (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const pbs = entries
    .map((f) => ({ f, m: INPUT_PB_RE.exec(f) }))
    .filter((x) => x.m)
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]))
    .map((x) => path.join(dir, x.f));
  if (pbs.length > 0) return pbs;
  const ds0 = path.join(dir, "test_data_set_0");
  if (entries.includes("test_data_set_0") && fs.statSync(ds0).isDirectory()) return inputPbFiles(ds0, option);
  throw userError`${opt(option)} ${dir}: no input_*.pb files in the directory; pass a directory of ONNX test data (input_0.pb, ...), .pb files, or an Arrow file written by ${opt("saveInputs")}`;
}

export function isArrowFile(file: string): boolean {
  const ext = path.extname(file).toLowerCase();
  if (ext === ".arrow" || ext === ".arrows" || ext === ".feather" || ext === ".ipc") return true;
  if (ext === ".pb") return false;
  // Sniff: Arrow IPC file magic "ARROW1", or an IPC stream's continuation marker 0xFFFFFFFF.
  const head = Buffer.alloc(6);
  // Non-blocking open and a regular-file check: a FIFO or device is refused, never read.
  const { fd } = openChecked(file, "dump");
  try {
    const n = fs.readSync(fd, head, 0, 6, 0);
    if (n === 6 && head.toString("latin1") === "ARROW1") return true;
    return n >= 4 && head.readUInt32LE(0) === 0xffffffff;
  } finally {
    fs.closeSync(fd);
  }
}

async function readArrowInputs(file: string, option: string): Promise<Loaded[]> {
  // Loaded on demand: apache-arrow is only needed for this format.
  const { openDump, valuesToHostTensor } = await import("../io/dump.js");
  const reader = await openDump(file, "inputs");
  try {
    const out: Loaded[] = [];
    for await (const row of reader.rows()) {
      let tensor: HostTensor;
      try {
        tensor = valuesToHostTensor(row);
      } catch (e) {
        throw userError`${opt(option)} ${file}: ${(e as Error).message.split("\n")[0]}; pass a file written by ${opt("saveInputs")}`;
      }
      out.push({ tensor, file });
    }
    return out;
  } finally {
    await reader.close();
  }
}

async function loadPath(p: string, next: { position: number }, option: string): Promise<Loaded[]> {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new UserError(`${option} ${p}: no such file or directory; check the path`);
  }
  if (st.isDirectory()) {
    return inputPbFiles(p, option).map((f) => ({ tensor: readTensorPb(f), file: f, position: next.position++ }));
  }
  if (isArrowFile(p)) return readArrowInputs(p, option);
  return [{ tensor: readTensorPb(p), file: p, position: next.position++ }];
}

/**
 * Load inputs from a directory of ONNX test data (input_*.pb; a model test directory falls back to
 * test_data_set_0), one or more TensorProto `.pb` files, or an Arrow inputs file (--save-inputs).
 *
 * A `.pb` tensor whose name matches a model input is that input; otherwise the K-th `.pb`
 * (input_K.pb, or the K-th file given) is the K-th model input. Arrow rows are matched by name.
 * Returns one tensor per spec, in spec order, named as the spec. Errors are about `option`
 * (the option that gave the paths: loadInputs, or calibData for calibration batches).
 */
export async function loadInputs(p: string | string[], specs: InputSpec[], option = "loadInputs"): Promise<HostTensor[]> {
  try {
    return await loadNamed(typeof p === "string" ? [p] : p, specs, option);
  } catch (e) {
    throw aboutOption(e, option);
  }
}

async function loadNamed(paths: string[], specs: InputSpec[], option: string): Promise<HostTensor[]> {
  if (paths.length === 0) throw new UserError(`${option}: no path given; pass a directory, .pb files or an Arrow inputs file`);
  const named = `${option} ${paths.join(" ")}`;
  const next = { position: 0 };
  const loaded: Loaded[] = [];
  for (const one of paths) loaded.push(...(await loadPath(one, next, option)));

  const byName = new Map(specs.map((s) => [s.name, s]));
  const assigned = new Map<string, Loaded>();
  for (const l of loaded) {
    let spec = byName.get(l.tensor.name);
    if (!spec) {
      if (l.position === undefined) {
        throw new UserError(`${option} ${l.file}: unknown input '${l.tensor.name}'; model inputs: ${listNames(specs)}`);
      }
      spec = specs[l.position];
      if (!spec) {
        const what = l.tensor.name ? `tensor '${l.tensor.name}' matches no model input` : "unnamed tensor";
        throw new UserError(
          `${option} ${l.file}: ${what} and position ${l.position} is past the model's ${specs.length} input(s); model inputs: ${listNames(specs)}`,
        );
      }
    }
    const prev = assigned.get(spec.name);
    if (prev) {
      throw new UserError(`${option}: input '${spec.name}' is given twice (${prev.file} and ${l.file}); pass it once`);
    }
    assigned.set(spec.name, l);
  }

  const missing = specs.filter((s) => !assigned.has(s.name)).map((s) => `'${s.name}'`);
  if (missing.length > 0) {
    throw new UserError(`${named}: missing input${missing.length > 1 ? "s" : ""} ${missing.join(", ")}; model inputs: ${listNames(specs)}`);
  }

  return specs.map((s) => {
    const l = assigned.get(s.name)!;
    const t = l.tensor;
    if (t.dtype !== s.dtype) {
      throw new UserError(`${option} ${l.file}: input '${s.name}': got ${t.dtype}, model expects ${s.dtype}; save it as ${s.dtype}`);
    }
    if (!shapeMatches(s.dims, t.dims)) {
      throw new UserError(
        `${option} ${l.file}: input '${s.name}': got shape [${t.dims.join(",")}], model expects ${formatDims(s.dims)}`,
      );
    }
    return t.name === s.name ? t : { ...t, name: s.name };
  });
}
