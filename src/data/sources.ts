/**
 * Input sets (iterations) from real data: .npy / .npz, Polygraphy `--save-inputs` JSON,
 * images (PNG/JPEG, with the imagePreprocess settings), folders of them, inputs Arrow files
 * holding several sets, and `dataLoaderScript` modules (docs/inputs.md).
 *
 * Every source yields input sets one at a time (async generators), so memory holds one set
 * per source, whatever the number of sets. The sets of several sources given together are
 * joined in lockstep: set k takes every source's k-th set; all sources must give the same
 * number of sets. Only the ONNX `.pb` sources keep their old one-set behaviour (loadInputs).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { aboutOption, opt, optionError, UserError, userError } from "../core/errors.js";
import type { DType, HostTensor, TensorData } from "../core/host-tensor.js";
import { numel } from "../core/host-tensor.js";
import { formatDims, INT_RANGES, isArrowFile, listNames, loadInputs, shapeMatches, type InputSpec } from "./inputs.js";
import { convertFloats, copyIntsInRange, type HostFloatType } from "../numeric/index.js";
import { allocate, decodeNpy } from "../io/npy.js";
import { readTensorPb } from "../onnx/tensor.js";
import { decodeNpz } from "../io/npz.js";
import { decodePolygraphyIteration, parsePolygraphyInputs } from "../io/polygraphy-json.js";
import { decodeImage, imageToTensor, isImageFile, preprocessFor, resolveImagePreprocess, type ImagePreprocessOptions, type ImagePreprocessSpecs } from "./image.js";

export interface SourceOptions {
  /** The option the paths came from, named in errors: `loadInputs` or `calibData`. */
  option: string;
  /** How images become tensors (docs/inputs.md, "Images"). */
  imagePreprocess?: ImagePreprocessOptions;
}

export interface InputSets {
  /** What the data is, for reports. */
  description: string;
  /** Number of sets when known before reading (null otherwise). */
  count: number | null;
  /** The sets, one at a time, each one tensor per model input in model input order. */
  iterate(): AsyncGenerator<HostTensor[]>;
}

/** A tensor of a partial set, before it is checked against the model input. */
interface Item {
  tensor: { dtype: DType; dims: number[]; data: TensorData };
  /** Where it came from, for messages (`loadInputs x.npz: array 'y'`). */
  where: string;
}

interface Source {
  label: string;
  count: number | null;
  sets(): AsyncGenerator<Map<string, Item>>;
}

const naturalCompare = (a: string, b: string): number => a.localeCompare(b, "en", { numeric: true });

function readBytes(file: string, option: string): Uint8Array {
  try {
    return new Uint8Array(fs.readFileSync(file));
  } catch (e) {
    throw new UserError(`${option} ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)}); check the path`);
  }
}

const INPUT_PB_RE = /^input_\d+\.pb$/;
const ARRAY_EXT = [".npy", ".npz"];
const hasExt = (f: string, exts: readonly string[]) => exts.includes(path.extname(f).toLowerCase());

/** True for paths the ONNX `.pb` / Arrow loader handles (its old one-set behaviour). */
function isLegacyPath(p: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return false;
  }
  if (st.isDirectory()) {
    const entries = fs.readdirSync(p);
    return entries.some((f) => INPUT_PB_RE.test(f)) || entries.includes("test_data_set_0");
  }
  return !hasExt(p, [...ARRAY_EXT, ".json"]) && !isImageFile(p) && !isArrowFile(p);
}

/** `NAME:PATH` → [NAME, PATH] unless the whole argument is an existing path (split at the last colon). */
function splitNamed(arg: string): [string | undefined, string] {
  if (fs.existsSync(arg)) return [undefined, arg];
  const i = arg.lastIndexOf(":");
  if (i > 0 && fs.existsSync(arg.slice(i + 1))) return [arg.slice(0, i), arg.slice(i + 1)];
  return [undefined, arg];
}

/** The single input a nameless array/image goes to. */
function soleInput(specs: InputSpec[], option: string, file: string, what: string): string {
  if (specs.length === 1) return specs[0]!.name;
  throw new UserError(`${option} ${file}: ${what} without an input name, but the model has ${specs.length} inputs (${listNames(specs)}); write NAME:${file}`);
}

function singleSet(label: string, make: () => Map<string, Item>): Source {
  return {
    label,
    count: 1,
    async *sets() {
      yield make();
    },
  };
}

function npySource(file: string, name: string | undefined, specs: InputSpec[], option: string): Source {
  const input = name ?? soleInput(specs, option, file, "an .npy array");
  return singleSet(file, () => {
    const where = `${option} ${file}`;
    return new Map([[input, { tensor: decodeNpy(readBytes(file, option), where), where }]]);
  });
}

function npzSet(file: string, specs: InputSpec[], option: string): Map<string, Item> {
  const where = `${option} ${file}`;
  const arrays = decodeNpz(readBytes(file, option), where);
  const names = new Set(specs.map((s) => s.name));
  const out = new Map<string, Item>();
  for (const [n, a] of arrays) {
    let input = n;
    if (!names.has(n)) {
      if (arrays.size === 1 && specs.length === 1) input = specs[0]!.name;
      else throw new UserError(`${where}: array '${n}' is not a model input; model inputs: ${listNames(specs)}; save with numpy.savez(file, ${specs[0]?.name ?? "name"}=array, ...)`);
    }
    out.set(input, { tensor: a, where: `${where}: array '${n}'` });
  }
  return out;
}

function polygraphySource(file: string, specs: InputSpec[], option: string): Source {
  const where = `${option} ${file}`;
  // The JSON is one value, parsed when opened; each iteration's arrays are decoded only when
  // its set is handed out.
  const iterations = parsePolygraphyInputs(fs.readFileSync(file, "utf8"), where);
  return {
    label: file,
    count: iterations.length,
    async *sets() {
      for (const [k, it] of iterations.entries()) {
        const arrays = decodePolygraphyIteration(it, k, where);
        yield new Map([...arrays].map(([n, a]) => [n, { tensor: a, where: `${where}: iteration ${k}, input '${n}'` }] as const));
      }
    },
  };
}

function imageSource(files: string[], label: string, name: string | undefined, specs: InputSpec[], option: string, pre: ImagePreprocessSpecs): Source {
  const input = name ?? soleInput(specs, option, label, "images");
  const spec = specs.find((s) => s.name === input);
  if (!spec) throw new UserError(`${option} ${input}:${label}: the model has no input '${input}'; model inputs: ${listNames(specs)}`);
  return {
    label,
    count: files.length,
    async *sets() {
      for (const f of files) {
        const where = `${option} ${f}`;
        const t = imageToTensor(await decodeImage(readBytes(f, option), where), spec, preprocessFor(pre, input), where);
        yield new Map([[input, { tensor: t, where }]]);
      }
    },
  };
}

/** A folder: images (one set each), or .npy/.npz files (one set each), sorted by name. */
function folderSource(dir: string, name: string | undefined, specs: InputSpec[], option: string, pre: ImagePreprocessSpecs): Source {
  const files = fs.readdirSync(dir).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort(naturalCompare);
  const images = files.filter(isImageFile).map((f) => path.join(dir, f));
  const arrays = files.filter((f) => hasExt(f, ARRAY_EXT)).map((f) => path.join(dir, f));
  if (images.length && arrays.length) {
    throw new UserError(`${option} ${dir}: the folder holds both images and .npy/.npz files; keep one kind per folder`);
  }
  if (images.length) return imageSource(images, dir, name, specs, option, pre);
  if (arrays.length) {
    return {
      label: dir,
      count: arrays.length,
      async *sets() {
        for (const f of arrays) {
          if (hasExt(f, [".npz"])) {
            if (name) throw new UserError(`${option} ${name}:${dir}: ${f} is an .npz (a whole input set); give the folder without a name`);
            yield npzSet(f, specs, option);
          } else yield* npySource(f, name, specs, option).sets();
        }
      },
    };
  }
  throw new UserError(
    `${option} ${dir}: no input data in the folder; expected images (.png/.jpg), .npy/.npz files, input_*.pb or test_data_set_*/ directories`,
  );
}

/** An inputs Arrow file: the k-th row of an input name belongs to set k. Holds only incomplete sets. */
export function arrowSets(file: string, specs: InputSpec[], option: string): InputSets {
  return withOption(option, {
    description: `inputs Arrow file ${file}`,
    count: null,
    async *iterate() {
      const { openDump, valuesToHostTensor } = await import("../io/dump.js");
      const reader = await openDump(file, "inputs");
      const byName = new Map(specs.map((s, i) => [s.name, i]));
      const pending = new Map<number, (HostTensor | undefined)[]>();
      const complete = (b: (HostTensor | undefined)[] | undefined): b is HostTensor[] => b !== undefined && b.every((x) => x !== undefined);
      const seen = new Map<string, number>();
      let next = 0;
      try {
        for await (const row of reader.rows()) {
          const idx = byName.get(row.tensor);
          if (idx === undefined) throw new UserError(`${option} ${file}: unknown input '${row.tensor}'; model inputs: ${listNames(specs)}`);
          const k = seen.get(row.tensor) ?? 0;
          seen.set(row.tensor, k + 1);
          let t: HostTensor;
          try {
            t = valuesToHostTensor(row);
          } catch (e) {
            throw userError`${opt(option)} ${file}: ${(e as Error).message.split("\n")[0]}; pass a file written by ${opt("saveInputs")}`;
          }
          const spec = specs[idx]!;
          const set = k === 0 ? "" : ` (set ${k})`;
          if (t.dtype !== spec.dtype) throw new UserError(`${option} ${file}: input '${spec.name}'${set}: got ${t.dtype}, model expects ${spec.dtype}; save it as ${spec.dtype}`);
          if (!shapeMatches(spec.dims, t.dims)) {
            throw new UserError(`${option} ${file}: input '${spec.name}'${set}: got shape [${t.dims.join(",")}], model expects ${formatDims(spec.dims)}`);
          }
          let slot = pending.get(k);
          if (!slot) pending.set(k, (slot = Array.from({ length: specs.length }, () => undefined)));
          slot[idx] = { ...t, name: spec.name };
          for (let b = pending.get(next); complete(b); b = pending.get(next)) {
            pending.delete(next++);
            yield b;
          }
        }
      } finally {
        await reader.close();
      }
      if (pending.size > 0) {
        const first = Math.min(...pending.keys());
        const missing = specs.filter((_, i) => pending.get(first)![i] === undefined).map((s) => `'${s.name}'`);
        throw new UserError(`${option} ${file}: ${first === 0 ? "" : `set ${first}: `}missing input${missing.length > 1 ? "s" : ""} ${missing.join(", ")}; model inputs: ${listNames(specs)}`);
      }
      if (next === 0) throw userError`${opt(option)} ${file}: no input rows; pass an inputs file written by ${opt("saveInputs")}`;
    },
  });
}

function openSource(arg: string, specs: InputSpec[], option: string, pre: ImagePreprocessSpecs): Source {
  const [name, p] = splitNamed(arg);
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new UserError(`${option} ${arg}: no such file or directory; check the path (NAME:PATH is split at the last colon)`);
  }
  if (name !== undefined && !specs.some((s) => s.name === name)) {
    throw new UserError(`${option} ${arg}: the model has no input '${name}'; model inputs: ${listNames(specs)}`);
  }
  if (st.isDirectory()) return folderSource(p, name, specs, option, pre);
  const ext = path.extname(p).toLowerCase();
  if (ext === ".npy") return npySource(p, name, specs, option);
  if (isImageFile(p)) return imageSource([p], p, name, specs, option, pre);
  const nameless = (what: string) => {
    if (name !== undefined) throw new UserError(`${option} ${arg}: ${what} holds whole input sets (arrays by input name); give it without NAME:`);
  };
  if (ext === ".npz") {
    nameless("an .npz");
    return singleSet(p, () => npzSet(p, specs, option));
  }
  if (ext === ".json") {
    nameless("a Polygraphy JSON file");
    return polygraphySource(p, specs, option);
  }
  if (ext === ".pb" && name !== undefined) {
    return singleSet(p, () => new Map([[name, { tensor: readTensorPb(p), where: `${option} ${p}` }]]));
  }
  throw userError`${opt(option)} ${arg}: unknown input file type; pass .npy, .npz, Polygraphy .json, .png/.jpg, a folder of them, .pb/input_*.pb, or an Arrow file from ${opt("saveInputs")}`;
}

// ---------------------------------------------------------------------------------------
// Checking and converting a tensor for its model input
// ---------------------------------------------------------------------------------------

const FLOATS: readonly DType[] = ["float16", "bfloat16", "float32", "float64"];
/**
 * `t`'s values as element type `to`: float → float rounds to nearest even (float64 → float32
 * as Math.fround; to float16/bfloat16 directly from the double); integer/bool → integer/bool
 * when every value fits. Undefined for other pairs; throws when an integer does not fit.
 */
function convert(t: Item["tensor"], to: DType, what: string): TensorData | undefined {
  const n = numel(t.dims);
  if (FLOATS.includes(t.dtype) && FLOATS.includes(to)) {
    return convertFloats(t.data as Float32Array | Float64Array | Uint16Array, t.dtype as HostFloatType, to as HostFloatType, n);
  }
  const range = to === "int4" || to === "uint4" ? undefined : INT_RANGES[to];
  if (range && INT_RANGES[t.dtype]) {
    const src = t.data as unknown as ArrayLike<number | bigint>;
    const out = allocate(to, n) as unknown as { [i: number]: number | bigint };
    const big = to === "int64" || to === "uint64";
    const i = copyIntsInRange(src, out, n, range[0], range[1], big);
    if (i >= 0) throw new UserError(`${what}: value ${BigInt(src[i]!)} at element ${i} does not fit ${to}; save it as ${to}`);
    return out as unknown as TensorData;
  }
  return undefined;
}

/** The model input `spec` from `item`: element type converted per {@link convert}, shape checked. */
function conform(spec: InputSpec, item: Item): HostTensor {
  const what = `${item.where}: input '${spec.name}'`;
  const t = item.tensor;
  let data = t.data;
  if (t.dtype !== spec.dtype) {
    const c = convert(t, spec.dtype, what);
    if (!c) throw new UserError(`${what}: got ${t.dtype}, model expects ${spec.dtype}; save it as ${spec.dtype} (numpy: arr.astype(numpy.${spec.dtype === "bool" ? "bool_" : spec.dtype}))`);
    data = c;
  }
  if (!shapeMatches(spec.dims, t.dims)) {
    throw new UserError(`${what}: got shape [${t.dims.join(",")}], model expects ${formatDims(spec.dims)}; save an array of the model's shape (numpy: arr.reshape(...))`);
  }
  return { name: spec.name, dtype: spec.dtype, dims: [...t.dims], data };
}

/** Join the k-th partial sets of every source into full sets, checked against the model. */
function joinSources(sources: Source[], specs: InputSpec[], option: string): InputSets {
  const counts = sources.map((s) => s.count);
  return {
    description: sources.map((s) => s.label).join(" + "),
    count: counts.every((c) => c !== null) ? Math.max(...(counts as number[])) : null,
    async *iterate() {
      const its = sources.map((s) => s.sets());
      try {
        for (let k = 0; ; k++) {
          const got: IteratorResult<Map<string, Item>>[] = [];
          for (const it of its) got.push(await it.next());
          const ended = got.map((g, i) => (g.done ? i : -1)).filter((i) => i >= 0);
          if (ended.length === got.length) {
            if (k === 0) throw new UserError(`${option}: no input sets; pass some data`);
            return;
          }
          if (ended.length > 0) {
            const short = sources[ended[0]!]!.label;
            const long = sources[got.findIndex((g) => !g.done)]!.label;
            throw new UserError(`${option}: ${short} gives ${k} input set${k === 1 ? "" : "s"} but ${long} gives more; give every input the same number of sets`);
          }
          const set = new Map<string, Item>();
          for (const g of got) {
            for (const [n, item] of g.value as Map<string, Item>) {
              const prev = set.get(n);
              // Every `where` of these sources starts with `option` (the sources put it there).
              if (prev) throw userError`${opt(option)}: input '${n}' is given twice (${opt(option)}${prev.where.slice(option.length)} and ${opt(option)}${item.where.slice(option.length)}); pass it once`;
              set.set(n, item);
            }
          }
          for (const n of set.keys()) {
            if (!specs.some((s) => s.name === n)) throw new UserError(`${set.get(n)!.where}: unknown input '${n}'; model inputs: ${listNames(specs)}`);
          }
          const missing = specs.filter((s) => !set.has(s.name)).map((s) => `'${s.name}'`);
          if (missing.length) {
            throw new UserError(`${option}${k > 0 ? ` (set ${k})` : ""}: missing input${missing.length > 1 ? "s" : ""} ${missing.join(", ")}; model inputs: ${listNames(specs)}`);
          }
          yield specs.map((s) => conform(s, set.get(s.name)!));
        }
      } finally {
        for (const it of its) await it.return(undefined);
      }
    },
  };
}

/**
 * The input sets of `loadInputs` (or `calibData`) paths. Paths the ONNX `.pb` loader
 * handles (TensorProto files, folders of input_*.pb, Arrow files together with them) give one
 * set, as before; one inputs Arrow file alone gives a set per repetition of the input names;
 * everything else goes through the sources above.
 */
export function openInputSets(paths: readonly string[], specs: InputSpec[], o: SourceOptions): InputSets {
  try {
    return withOption(o.option, openSets(paths, specs, o));
  } catch (e) {
    throw aboutOption(e, o.option);
  }
}

/** `sets`, with the errors of its reading about `option` (core/errors.ts aboutOption). */
function withOption(option: string, sets: InputSets): InputSets {
  return {
    ...sets,
    async *iterate() {
      try {
        yield* sets.iterate();
      } catch (e) {
        throw aboutOption(e, option);
      }
    },
  };
}

function openSets(paths: readonly string[], specs: InputSpec[], o: SourceOptions): InputSets {
  if (paths.length === 0) throw new UserError(`${o.option}: no path given; pass a file or folder of input data`);
  const pre = resolveImagePreprocess(o.imagePreprocess);
  for (const n of pre.perInput.keys()) {
    if (!specs.some((s) => s.name === n)) throw optionError("imagePreprocess", `the model has no input '${n}'; model inputs: ${listNames(specs)}`);
  }
  const isArrow = (p: string) => fs.existsSync(p) && fs.statSync(p).isFile() && isArrowFile(p);
  if (paths.length === 1 && isArrow(paths[0]!)) return arrowSets(paths[0]!, specs, o.option);
  if (paths.every((p) => isLegacyPath(p) || isArrow(p))) {
    return {
      description: paths.join(" "),
      count: 1,
      async *iterate() {
        yield await loadInputs([...paths], specs, o.option);
      },
    };
  }
  const legacy = paths.find((p) => isLegacyPath(p) || isArrow(p));
  if (legacy) throw new UserError(`${o.option} ${legacy}: .pb and Arrow inputs cannot be combined with .npy/.npz/JSON/image sources; give one kind`);
  return joinSources(paths.map((p) => openSource(p, specs, o.option, pre)), specs, o.option);
}

/** True when `paths` use a source beyond ONNX .pb files (so several sets are possible). */
export function mayHaveSeveralSets(paths: readonly string[]): boolean {
  return !paths.every(isLegacyPath);
}

// ---------------------------------------------------------------------------------------
// --data-loader-script
// ---------------------------------------------------------------------------------------

const TYPED_DTYPES: [new (...a: never[]) => unknown, DType][] = [
  [Float32Array, "float32"],
  [Float64Array, "float64"],
  [Int8Array, "int8"],
  [Uint8Array, "uint8"],
  [Int16Array, "int16"],
  [Uint16Array, "uint16"],
  [Int32Array, "int32"],
  [Uint32Array, "uint32"],
  [BigInt64Array, "int64"],
  [BigUint64Array, "uint64"],
];

function feedItem(v: unknown, spec: InputSpec, where: string): Item {
  const isTyped = (x: unknown): x is TensorData => ArrayBuffer.isView(x) && !(x instanceof DataView);
  let data: TensorData;
  let dims: number[] | undefined;
  let dtype: DType | undefined;
  if (isTyped(v)) data = v;
  else if (typeof v === "object" && v !== null && isTyped((v as { data?: unknown }).data)) {
    const o = v as { data: TensorData; dims?: unknown; dtype?: unknown };
    data = o.data;
    if (o.dims !== undefined) {
      if (!Array.isArray(o.dims) || !o.dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new UserError(`${where}: input '${spec.name}': dims must be a list of non-negative integers`);
      dims = o.dims as number[];
    }
    if (o.dtype !== undefined) dtype = o.dtype as DType;
  } else {
    throw new UserError(`${where}: input '${spec.name}' is not a typed array or {data, dims, dtype}; yield e.g. {${spec.name}: new Float32Array(...)}`);
  }
  const own = TYPED_DTYPES.find(([C]) => data instanceof C)?.[1];
  // A Uint16Array may hold float16/bfloat16 bits and a Uint8Array bool bytes: the model's type decides.
  dtype ??= own === "uint16" && (spec.dtype === "float16" || spec.dtype === "bfloat16") ? spec.dtype : own === "uint8" && spec.dtype === "bool" ? "bool" : own;
  if (!dtype) throw new UserError(`${where}: input '${spec.name}': unsupported array type; use a typed array`);
  const bitsOk = (dtype === "float16" || dtype === "bfloat16") && own === "uint16";
  if (dtype !== own && !bitsOk && !(dtype === "bool" && own === "uint8")) {
    throw new UserError(`${where}: input '${spec.name}': dtype '${dtype}' does not match its ${data.constructor.name}; use the typed array of that type (float16/bfloat16 bits in a Uint16Array, bool in a Uint8Array)`);
  }
  const n = (data as ArrayLike<unknown>).length;
  if (!dims) {
    if (!spec.dims.every((d) => typeof d === "number" && d >= 0)) {
      throw new UserError(`${where}: input '${spec.name}' ${formatDims(spec.dims)} has dynamic dimensions; yield {data, dims} with the shape`);
    }
    dims = spec.dims as number[];
  }
  if (numel(dims) !== n) throw new UserError(`${where}: input '${spec.name}': got ${n} elements, shape [${dims.join(",")}] needs ${numel(dims)}; yield ${numel(dims)} elements or {data, dims} with the right shape`);
  return { tensor: { dtype, dims, data }, where };
}

/**
 * Input sets from a JS module (`--data-loader-script loader.mjs`): its `load` export, else its
 * default export, is an (async) iterable of feeds or a function returning one (or a promise
 * of one). A feed is `{input_name: TypedArray | {data, dims?, dtype?}}`.
 */
export function openLoaderScript(file: string, specs: InputSpec[]): InputSets {
  const named = `dataLoaderScript ${file}`;
  if (!fs.existsSync(file)) throw new UserError(`${named}: no such file; check the path`, "dataLoaderScript");
  return withOption("dataLoaderScript", {
    description: `data loader script ${file}`,
    count: null,
    async *iterate() {
      let mod: Record<string, unknown>;
      try {
        mod = (await import(pathToFileURL(path.resolve(file)).href)) as Record<string, unknown>;
      } catch (e) {
        throw new UserError(`${named}: cannot load the module (${String((e as Error).message ?? e).split("\n")[0]}); it must be an ES module (.mjs)`);
      }
      let src: unknown = mod.load ?? mod.default;
      if (src === undefined) throw new UserError(`${named}: the module exports neither 'load' nor a default; export an async iterable of feeds (or a function returning one)`);
      if (typeof src === "function") src = await (src as () => unknown)();
      const iterable = src as { [Symbol.asyncIterator]?: unknown; [Symbol.iterator]?: unknown } | null;
      if (!iterable || (typeof iterable[Symbol.asyncIterator] !== "function" && typeof iterable[Symbol.iterator] !== "function")) {
        throw new UserError(`${named}: the loader is not an iterable of feeds; export an async generator function or an array of {input_name: TypedArray}`);
      }
      const byName = new Map(specs.map((s) => [s.name, s]));
      let k = 0;
      for await (const feed of iterable as AsyncIterable<unknown>) {
        const where = `${named}: iteration ${k}`;
        if (typeof feed !== "object" || feed === null) throw new UserError(`${where}: a feed must be an object {input_name: TypedArray}`);
        const set = new Map<string, Item>();
        for (const [n, v] of Object.entries(feed)) {
          const spec = byName.get(n);
          if (!spec) throw new UserError(`${where}: unknown input '${n}'; model inputs: ${listNames(specs)}`);
          set.set(n, feedItem(v, spec, where));
        }
        const missing = specs.filter((s) => !set.has(s.name)).map((s) => `'${s.name}'`);
        if (missing.length) throw new UserError(`${where}: missing input${missing.length > 1 ? "s" : ""} ${missing.join(", ")}; model inputs: ${listNames(specs)}`);
        yield specs.map((s) => conform(s, set.get(s.name)!));
        k++;
      }
      if (k === 0) throw new UserError(`${named}: the loader gave no feeds; yield at least one`);
    },
  });
}
