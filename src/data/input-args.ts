/** Where a run's input tensors come from: the options every model workflow shares (docs/inputs.md). */
import { optionError } from "../core/errors.js";

export interface InputArgs {
  /** Seed of generated inputs: an integer in [0, 2^32 - 1] (default 1). */
  seed?: number;
  /** Value range of generated inputs, for every input without its own (default [0, 1]). */
  valRange?: ValRange;
  /** Value ranges of generated inputs by input name. */
  inputValRanges?: Readonly<Record<string, ValRange>>;
  /** Shapes of inputs with dynamic dimensions, by input name (`[]`: a scalar). */
  inputShapes?: Readonly<Record<string, readonly number[]>>;
  loadInputs?: readonly string[];
  saveInputs?: string;
  /** Format of saveInputs: "arrow" (default), "polygraphy" (default for .json), "trtexec" (a folder of raw files; docs/interop.md). */
  saveInputsFormat?: "arrow" | "polygraphy" | "trtexec";
  /** How images given to loadInputs become tensors (docs/inputs.md, "Images"). */
  imagePreprocess?: ImagePreprocessOptions;
  /** --data-loader-script: a JS module yielding input sets. */
  dataLoaderScript?: string;
}

export type ResizeMode = "stretch" | "pad" | "crop";
export type Interp = "bilinear" | "nearest";
export type Layout = "auto" | "nchw" | "nhwc";

/** One input's image settings as a library caller gives them; every field optional (DEFAULT_PREPROCESS). */
export interface ImagePreprocessSettings {
  /** Target size; default the model input's H×W (or the image's own size when dynamic). */
  size?: { width: number; height: number };
  resize?: ResizeMode;
  interp?: Interp;
  layout?: Layout;
  /** Channel order of the tensor. */
  order?: "rgb" | "bgr";
  /** Multiplier applied to 0..255 pixel values; default 1/255 for float inputs, 1 for integer inputs. */
  scale?: number;
  /** Per-channel (tensor channel order) or one value for all channels. */
  mean?: number | readonly number[];
  std?: number | readonly number[];
  /** Pixel value (0..255 units, before scale) of the `pad` border. */
  pad?: number;
}

/**
 * The `imagePreprocess` option (docs/inputs.md, "Images"): settings for every image input, and
 * per input name settings over them.
 */
export interface ImagePreprocessOptions extends ImagePreprocessSettings {
  perInput?: Readonly<Record<string, ImagePreprocessSettings>>;
}

/** A closed range of generated values. */
export interface ValRange {
  lo: number;
  hi: number;
}

export interface ValRanges {
  /** Range for inputs without a per-input entry; undefined = DEFAULT_VAL_RANGE. */
  global?: ValRange;
  /** Per-input ranges by input name. */
  perInput: Map<string, ValRange>;
}

export const DEFAULT_VAL_RANGE: Readonly<ValRange> = Object.freeze({ lo: 0, hi: 1 });
export const DEFAULT_SEED = 1;

/** The range that applies to input `name`. */
export function valRangeFor(r: ValRanges, name: string): ValRange {
  return r.perInput.get(name) ?? r.global ?? DEFAULT_VAL_RANGE;
}

/** What input generation needs (data/inputs.ts), from typed InputArgs, checked; errors name the option. */
export interface GenerationOptions {
  seed: number;
  valRanges: ValRanges;
  inputShapes: Map<string, number[]>;
}

function checkedRange(option: string, r: ValRange): ValRange {
  if (!Number.isFinite(r.lo) || !Number.isFinite(r.hi)) throw optionError(option, `[${r.lo},${r.hi}] must be two finite numbers`);
  if (r.lo > r.hi) throw optionError(option, `lo ${r.lo} is greater than hi ${r.hi}`);
  return { lo: r.lo, hi: r.hi };
}

/** Seed, ranges and shapes of `a` checked (a UserError naming the option otherwise), defaults applied. */
export function generationOptions(a: InputArgs = {}): GenerationOptions {
  const seed = a.seed ?? DEFAULT_SEED;
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) throw optionError("seed", `${seed}: expected an integer from 0 to 4294967295`);
  const valRanges: ValRanges = { perInput: new Map() };
  if (a.valRange) valRanges.global = checkedRange("valRange", a.valRange);
  for (const [name, r] of Object.entries(a.inputValRanges ?? {})) valRanges.perInput.set(name, checkedRange("inputValRanges", r));
  const inputShapes = new Map<string, number[]>();
  for (const [name, dims] of Object.entries(a.inputShapes ?? {})) {
    if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw optionError("inputShapes", `${name}: [${dims.join(",")}] must be non-negative integers`);
    inputShapes.set(name, [...dims]);
  }
  return { seed, valRanges, inputShapes };
}
