/**
 * Images (PNG, JPEG) as model inputs, with the preprocessing spec of docs/inputs.md
 * ("Images"). Decoding: pngjs for PNG (lossless: any bit depth / colour type / interlace,
 * 16-bit scaled to 8-bit), sharp (libvips + mozjpeg/libjpeg-turbo) for JPEG, which gives the
 * same pixels as PIL and OpenCV. Resizing, layout, channel order and normalization are done
 * here, in float64, by the exact recipe in the docs.
 */
import { UserError } from "../core/errors.js";
import type { DType, HostTensor, TensorData } from "../core/host-tensor.js";
import { f64ToMiniFloatBits, formatDims, roundHalfEven, type InputSpec } from "./inputs.js";

export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg"];

export type ResizeMode = "stretch" | "pad" | "crop";
export type Interp = "bilinear" | "nearest";
export type Layout = "auto" | "nchw" | "nhwc";

export interface ImagePreprocess {
  /** Target width × height; undefined = the model input's H×W (or the image's own size when dynamic). */
  size?: [number, number];
  resize: ResizeMode;
  interp: Interp;
  layout: Layout;
  order: "rgb" | "bgr";
  /** Multiplier applied to 0..255 pixel values; undefined = 1/255 for float inputs, 1 for integer inputs. */
  scale?: number;
  /** Per-channel (tensor channel order) or one value for all channels. */
  mean: number[];
  std: number[];
  /** Pixel value (0..255 units, before scale) of the `pad` border. */
  pad: number;
}

export const DEFAULT_PREPROCESS: Readonly<ImagePreprocess> = Object.freeze({
  resize: "stretch",
  interp: "bilinear",
  layout: "auto",
  order: "rgb",
  mean: [0],
  std: [1],
  pad: 0,
});

export interface ImagePreprocessSpecs {
  global: ImagePreprocess;
  perInput: Map<string, ImagePreprocess>;
}

const FLAG = "--image-preprocess";

function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "[") depth++;
    if (ch === "]") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== "");
}

function parseNum(s: string, key: string, raw: string): number {
  const t = s.trim();
  const frac = /^([^/]+)\/([^/]+)$/.exec(t);
  const v = frac ? Number(frac[1]) / Number(frac[2]) : t === "" ? NaN : Number(t);
  if (!Number.isFinite(v)) throw new UserError(`${FLAG} '${raw}': ${key}=${s}: not a finite number (a decimal or a fraction like 1/255)`);
  return v;
}

function parseList(s: string, key: string, raw: string): number[] {
  const t = s.trim();
  const m = /^\[(.*)\]$/.exec(t);
  const parts = m ? m[1]!.split(",") : [t];
  const v = parts.map((p) => parseNum(p, key, raw));
  if (v.length === 0) throw new UserError(`${FLAG} '${raw}': ${key} is empty; give one number or [c0,c1,c2]`);
  return v;
}

function choice<T extends string>(v: string, allowed: readonly T[], key: string, raw: string): T {
  const x = v.trim().toLowerCase();
  if (!(allowed as readonly string[]).includes(x)) throw new UserError(`${FLAG} '${raw}': ${key}=${v}: expected one of ${allowed.join(", ")}`);
  return x as T;
}

/** Parse one spec string (without the `NAME:` prefix) over `base`. */
export function parsePreprocessSpec(spec: string, raw: string, base: ImagePreprocess = { ...DEFAULT_PREPROCESS }): ImagePreprocess {
  const o: ImagePreprocess = { ...base, mean: [...base.mean], std: [...base.std] };
  for (const kv of splitTopLevel(spec)) {
    const eq = kv.indexOf("=");
    if (eq < 0) throw new UserError(`${FLAG} '${raw}': '${kv}' is not key=value; e.g. ${FLAG} size=224x224,resize=crop,mean=[0.485,0.456,0.406],std=[0.229,0.224,0.225]`);
    const key = kv.slice(0, eq).trim().toLowerCase();
    const val = kv.slice(eq + 1).trim();
    switch (key) {
      case "size": {
        const m = /^(\d+)\s*x\s*(\d+)$/i.exec(val);
        if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UserError(`${FLAG} '${raw}': size=${val}: expected WIDTHxHEIGHT, e.g. size=640x480`);
        o.size = [Number(m[1]), Number(m[2])];
        break;
      }
      case "resize":
        o.resize = choice(val, ["stretch", "pad", "crop"] as const, key, raw);
        break;
      case "interp":
        o.interp = choice(val, ["bilinear", "nearest"] as const, key, raw);
        break;
      case "layout":
        o.layout = choice(val, ["auto", "nchw", "nhwc"] as const, key, raw);
        break;
      case "order":
        o.order = choice(val, ["rgb", "bgr"] as const, key, raw);
        break;
      case "scale":
        o.scale = parseNum(val, key, raw);
        break;
      case "mean":
        o.mean = parseList(val, key, raw);
        break;
      case "std":
        o.std = parseList(val, key, raw);
        if (o.std.some((x) => x === 0)) throw new UserError(`${FLAG} '${raw}': std has a zero; give non-zero values`);
        break;
      case "pad":
        o.pad = parseNum(val, key, raw);
        break;
      default:
        throw new UserError(`${FLAG} '${raw}': unknown key '${key}'; keys: size, resize, interp, layout, order, scale, mean, std, pad`);
    }
  }
  return o;
}

/**
 * Parse `--image-preprocess` values: `SPEC` (every image input) or `NAME:SPEC` (one input;
 * NAME is everything before the last colon that precedes the first `=`). A per-input spec
 * starts from the global one.
 */
export function parseImagePreprocess(values: readonly string[] | undefined): ImagePreprocessSpecs {
  let global: ImagePreprocess = { ...DEFAULT_PREPROCESS };
  const named: [string, string, string][] = [];
  for (const raw of values ?? []) {
    const eq = raw.indexOf("=");
    const head = eq < 0 ? raw : raw.slice(0, eq);
    const colon = head.lastIndexOf(":");
    if (colon < 0) global = parsePreprocessSpec(raw, raw, global);
    else named.push([raw.slice(0, colon).trim(), raw.slice(colon + 1), raw]);
  }
  const perInput = new Map<string, ImagePreprocess>();
  for (const [name, spec, raw] of named) perInput.set(name, parsePreprocessSpec(spec, raw, perInput.get(name) ?? global));
  return { global, perInput };
}

export function preprocessFor(s: ImagePreprocessSpecs, name: string): ImagePreprocess {
  return s.perInput.get(name) ?? s.global;
}

/** Decoded image: 8-bit RGBA, row-major. */
export interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

export function isImageFile(file: string): boolean {
  const f = file.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => f.endsWith(e));
}

/** Decode a PNG or JPEG (by magic bytes) to RGBA. */
export async function decodeImage(bytes: Uint8Array, where: string): Promise<Rgba> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    if (buf.length >= 8 && buf.readUInt32BE(0) === 0x89504e47) {
      // Loaded on demand like sharp: pngjs costs ~50 ms of start-up to every command otherwise (docs/performance.md).
      const { PNG } = await import("pngjs");
      const png = PNG.sync.read(buf);
      return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    }
    if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) {
      // Loaded on demand: the native module is only needed for JPEG. No EXIF rotation (as PIL's Image.open).
      const sharp = (await import("sharp")).default;
      const { data, info } = await sharp(buf, { failOn: "error" }).toColourspace("srgb").ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== 4 || data.length !== info.width * info.height * 4) throw new Error(`decoded to ${info.channels} channels, ${data.length} bytes`);
      return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    }
  } catch (e) {
    throw new UserError(`${where}: cannot decode the image (${String((e as Error).message ?? e).split("\n")[0]}); pass a valid PNG or JPEG file`);
  }
  throw new UserError(`${where}: not a PNG or JPEG file (unknown magic bytes); pass a .png or .jpg image`);
}

interface Geometry {
  layout: "nchw" | "nhwc";
  /** Output dims (rank 3 or 4). */
  dims: number[];
  c: number;
  h: number;
  w: number;
}

const fixed = (d: number | string | null | undefined): number | undefined => (typeof d === "number" && d >= 0 ? d : undefined);

/** Layout, channel count and output size of an image input. */
function geometry(spec: InputSpec, p: ImagePreprocess, img: Rgba, where: string): Geometry {
  const d = spec.dims;
  if (d.length !== 4 && d.length !== 3) {
    throw new UserError(`${where}: input '${spec.name}' has shape ${formatDims(d)}; images feed rank-4 (NCHW/NHWC) or rank-3 (CHW/HWC) inputs; give an .npy instead`);
  }
  const off = d.length === 4 ? 1 : 0;
  if (off === 1) {
    const n = fixed(d[0]);
    if (n !== undefined && n !== 1) {
      throw new UserError(`${where}: input '${spec.name}' ${formatDims(d)} has batch ${n}; one image fills batch 1 only; save the batch as .npy instead`);
    }
  }
  const first = fixed(d[off]);
  const last = fixed(d[d.length - 1]);
  const isCh = (x: number | undefined) => x === 1 || x === 3;
  const layout = p.layout !== "auto" ? p.layout : isCh(first) ? "nchw" : isCh(last) ? "nhwc" : "nchw";
  const cDim = layout === "nchw" ? d[off] : d[d.length - 1];
  const hDim = layout === "nchw" ? d[off + 1] : d[off];
  const wDim = layout === "nchw" ? d[off + 2] : d[off + 1];
  const c = fixed(cDim) ?? 3;
  if (c !== 1 && c !== 3) {
    throw new UserError(`${where}: input '${spec.name}' ${formatDims(d)} has ${c} channels in ${layout.toUpperCase()} layout; images give 1 (gray) or 3 (RGB/BGR); set layout=nchw or layout=nhwc in --image-preprocess`);
  }
  let w = fixed(wDim);
  let h = fixed(hDim);
  if (p.size) {
    if ((w !== undefined && w !== p.size[0]) || (h !== undefined && h !== p.size[1])) {
      throw new UserError(`${where}: --image-preprocess size=${p.size[0]}x${p.size[1]} but input '${spec.name}' ${formatDims(d)} is ${w ?? "?"}x${h ?? "?"} (WxH, ${layout.toUpperCase()}); give size=${w ?? p.size[0]}x${h ?? p.size[1]} or leave size out`);
    }
    [w, h] = p.size;
  }
  w ??= img.width;
  h ??= img.height;
  const spatial = layout === "nchw" ? [c, h, w] : [h, w, c];
  return { layout, dims: off === 1 ? [1, ...spatial] : spatial, c, h, w };
}

/** Sample channel values of `img` resized to nw×nh: a function (x, y, ch) → float. */
function resampler(img: Rgba, nw: number, nh: number, interp: Interp): (x: number, y: number, ch: number) => number {
  const { width: sw, height: sh, data } = img;
  const at = (x: number, y: number, ch: number) => data[(y * sw + x) * 4 + ch]!;
  if (interp === "nearest") {
    const xs = Array.from({ length: nw }, (_, x) => Math.min(Math.floor((x * sw) / nw), sw - 1));
    const ys = Array.from({ length: nh }, (_, y) => Math.min(Math.floor((y * sh) / nh), sh - 1));
    return (x, y, ch) => at(xs[x]!, ys[y]!, ch);
  }
  const coord = (o: number, n: number, s: number): [number, number, number] => {
    const src = Math.min(Math.max(((o + 0.5) * s) / n - 0.5, 0), s - 1);
    const i0 = Math.floor(src);
    return [i0, Math.min(i0 + 1, s - 1), src - i0];
  };
  const cx = Array.from({ length: nw }, (_, x) => coord(x, nw, sw));
  const cy = Array.from({ length: nh }, (_, y) => coord(y, nh, sh));
  return (x, y, ch) => {
    const [x0, x1, fx] = cx[x]!;
    const [y0, y1, fy] = cy[y]!;
    const top = at(x0, y0, ch) * (1 - fx) + at(x1, y0, ch) * fx;
    const bot = at(x0, y1, ch) * (1 - fx) + at(x1, y1, ch) * fx;
    return top * (1 - fy) + bot * fy;
  };
}

const INT_LIMITS: Partial<Record<DType, [number, number]>> = { uint8: [0, 255], int8: [-128, 127], uint16: [0, 65535], int16: [-32768, 32767], int32: [-2147483648, 2147483647] };

function storage(dtype: DType, n: number, where: string, name: string): { data: TensorData; put: (i: number, v: number) => void } {
  switch (dtype) {
    case "float32": {
      const a = new Float32Array(n);
      return { data: a, put: (i, v) => (a[i] = v) };
    }
    case "float64": {
      const a = new Float64Array(n);
      return { data: a, put: (i, v) => (a[i] = v) };
    }
    case "float16":
    case "bfloat16": {
      const a = new Uint16Array(n);
      const [e, m] = dtype === "float16" ? [5, 10] : [8, 7];
      return { data: a, put: (i, v) => (a[i] = f64ToMiniFloatBits(v, e, m)) };
    }
    default: {
      const lim = INT_LIMITS[dtype];
      if (!lim) throw new UserError(`${where}: input '${name}' is ${dtype}; images feed float16/bfloat16/float32/float64 or uint8/int8/uint16/int16/int32 inputs`);
      const a = dtype === "uint8" ? new Uint8Array(n) : dtype === "int8" ? new Int8Array(n) : dtype === "uint16" ? new Uint16Array(n) : dtype === "int16" ? new Int16Array(n) : new Int32Array(n);
      return { data: a, put: (i, v) => (a[i] = Math.min(Math.max(roundHalfEven(v), lim[0]), lim[1])) };
    }
  }
}

/** One image as the tensor of input `spec` (docs/inputs.md, "Images", exact recipe). */
export function imageToTensor(img: Rgba, spec: InputSpec, p: ImagePreprocess, where: string): HostTensor {
  const g = geometry(spec, p, img, where);
  const { w, h, c } = g;
  // Resized region (nw×nh) placed at (left, top) of the w×h output; negative offsets crop.
  let nw = w, nh = h, left = 0, top = 0;
  if (p.resize !== "stretch") {
    const r = p.resize === "pad" ? Math.min(w / img.width, h / img.height) : Math.max(w / img.width, h / img.height);
    nw = Math.max(1, Math.round(img.width * r));
    nh = Math.max(1, Math.round(img.height * r));
    left = Math.floor((w - nw) / 2);
    top = Math.floor((h - nh) / 2);
  }
  const sample = resampler(img, nw, nh, p.interp);
  const isFloat = spec.dtype.startsWith("float") || spec.dtype === "bfloat16";
  const scale = p.scale ?? (isFloat ? 1 / 255 : 1);
  const perCh = (v: number[], what: string): number[] => {
    if (v.length === 1) return Array.from({ length: c }, () => v[0]!);
    if (v.length !== c) throw new UserError(`${where}: --image-preprocess ${what} has ${v.length} values but input '${spec.name}' has ${c} channel${c === 1 ? "" : "s"}; give ${c} value${c === 1 ? "" : "s"} or one`);
    return v;
  };
  const mean = perCh(p.mean, "mean");
  const std = perCh(p.std, "std");
  const n = c * h * w;
  const out = storage(spec.dtype, n, where, spec.name);
  // Tensor channel k takes source channel src[k] (RGBA index); gray uses the luma formula.
  const src = c === 1 ? [-1] : p.order === "rgb" ? [0, 1, 2] : [2, 1, 0];
  for (let y = 0; y < h; y++) {
    const ry = y - top;
    for (let x = 0; x < w; x++) {
      const rx = x - left;
      const inside = rx >= 0 && rx < nw && ry >= 0 && ry < nh;
      for (let k = 0; k < c; k++) {
        let v: number;
        if (!inside) v = p.pad;
        else if (src[k] === -1) v = (299 * sample(rx, ry, 0) + 587 * sample(rx, ry, 1) + 114 * sample(rx, ry, 2)) / 1000;
        else v = sample(rx, ry, src[k]!);
        const i = g.layout === "nchw" ? (k * h + y) * w + x : (y * w + x) * c + k;
        out.put(i, (v * scale - mean[k]!) / std[k]!);
      }
    }
  }
  return { name: spec.name, dtype: spec.dtype, dims: g.dims, data: out.data };
}
