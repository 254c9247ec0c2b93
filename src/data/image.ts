/**
 * Images (PNG, JPEG) as model inputs, with the preprocessing spec of docs/inputs.md
 * ("Images"). Decoding: pngjs for PNG (lossless: any bit depth / colour type / interlace,
 * 16-bit scaled to 8-bit), sharp (libvips + mozjpeg/libjpeg-turbo) for JPEG, which gives the
 * same pixels as PIL and OpenCV. Geometry (size, resize offsets, layout) is decided here; the
 * element loop (resampling, channel order, normalization, in float64, by the exact recipe in the
 * docs) is numeric/image-pixels.ts.
 */
import { opt, UserError, userError } from "../core/errors.js";
import type { HostTensor } from "../core/host-tensor.js";
import type { ImagePreprocessOptions, ImagePreprocessSettings, Interp, Layout, ResizeMode } from "./input-args.js";
import { formatDims, type InputSpec } from "./inputs.js";
import { isPixelDType, pixelsToTensor, type Rgba } from "../numeric/index.js";

export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg"];

export type { ImagePreprocessOptions, ImagePreprocessSettings, Interp, Layout, ResizeMode };

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

const RESIZE_MODES: readonly ResizeMode[] = ["stretch", "pad", "crop"];
const INTERPS: readonly Interp[] = ["bilinear", "nearest"];
const LAYOUTS: readonly Layout[] = ["auto", "nchw", "nhwc"];
const ORDERS = ["rgb", "bgr"] as const;

/** `s` over `base`, checked; errors name `option` (imagePreprocess or imagePreprocess.perInput.NAME). */
function settle(s: ImagePreprocessSettings, base: ImagePreprocess, option: string): ImagePreprocess {
  const bad = (what: string) => new UserError(`${option}: ${what}`, "imagePreprocess");
  const num = (v: number, key: string) => {
    if (typeof v !== "number" || !Number.isFinite(v)) throw bad(`${key} ${String(v)}: not a finite number`);
    return v;
  };
  const list = (v: number | readonly number[], key: string) => {
    const a = typeof v === "number" ? [v] : [...v];
    if (a.length === 0) throw bad(`${key} is empty; give one number or one per channel`);
    return a.map((x) => num(x, key));
  };
  const pick = <T extends string>(v: T, allowed: readonly T[], key: string): T => {
    if (!allowed.includes(v)) throw bad(`${key} ${JSON.stringify(v)}: expected one of ${allowed.join(", ")}`);
    return v;
  };
  const o: ImagePreprocess = { ...base, mean: [...base.mean], std: [...base.std] };
  if (s.size !== undefined) {
    const { width, height } = s.size;
    if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) throw bad(`size ${width}x${height}: expected positive integers {width, height}`);
    o.size = [width, height];
  }
  if (s.resize !== undefined) o.resize = pick(s.resize, RESIZE_MODES, "resize");
  if (s.interp !== undefined) o.interp = pick(s.interp, INTERPS, "interp");
  if (s.layout !== undefined) o.layout = pick(s.layout, LAYOUTS, "layout");
  if (s.order !== undefined) o.order = pick(s.order, ORDERS, "order");
  if (s.scale !== undefined) o.scale = num(s.scale, "scale");
  if (s.mean !== undefined) o.mean = list(s.mean, "mean");
  if (s.std !== undefined) {
    o.std = list(s.std, "std");
    if (o.std.some((x) => x === 0)) throw bad("std has a zero; give non-zero values");
  }
  if (s.pad !== undefined) o.pad = num(s.pad, "pad");
  return o;
}

/** The `imagePreprocess` option checked, over DEFAULT_PREPROCESS; a per-input entry starts from the settings for every input. */
export function resolveImagePreprocess(o: ImagePreprocessOptions = {}): ImagePreprocessSpecs {
  const global = settle(o, { ...DEFAULT_PREPROCESS }, "imagePreprocess");
  const perInput = new Map<string, ImagePreprocess>();
  for (const [name, s] of Object.entries(o.perInput ?? {})) perInput.set(name, settle(s, global, `imagePreprocess.perInput.${name}`));
  return { global, perInput };
}

export function preprocessFor(s: ImagePreprocessSpecs, name: string): ImagePreprocess {
  return s.perInput.get(name) ?? s.global;
}

export type { Rgba };

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
    throw userError`${where}: input '${spec.name}' ${formatDims(d)} has ${c} channels in ${layout.toUpperCase()} layout; images give 1 (gray) or 3 (RGB/BGR); set layout=nchw or layout=nhwc in ${opt("imagePreprocess")}`;
  }
  let w = fixed(wDim);
  let h = fixed(hDim);
  if (p.size) {
    if ((w !== undefined && w !== p.size[0]) || (h !== undefined && h !== p.size[1])) {
      throw userError`${where}: ${opt("imagePreprocess")} size=${p.size[0]}x${p.size[1]} but input '${spec.name}' ${formatDims(d)} is ${w ?? "?"}x${h ?? "?"} (WxH, ${layout.toUpperCase()}); give size=${w ?? p.size[0]}x${h ?? p.size[1]} or leave size out`;
    }
    [w, h] = p.size;
  }
  w ??= img.width;
  h ??= img.height;
  const spatial = layout === "nchw" ? [c, h, w] : [h, w, c];
  return { layout, dims: off === 1 ? [1, ...spatial] : spatial, c, h, w };
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
  const isFloat = spec.dtype.startsWith("float") || spec.dtype === "bfloat16";
  const scale = p.scale ?? (isFloat ? 1 / 255 : 1);
  const perCh = (v: number[], what: string): number[] => {
    if (v.length === 1) return Array.from({ length: c }, () => v[0]!);
    if (v.length !== c) throw userError`${where}: ${opt("imagePreprocess")} ${what} has ${v.length} values but input '${spec.name}' has ${c} channel${c === 1 ? "" : "s"}; give ${c} value${c === 1 ? "" : "s"} or one`;
    return v;
  };
  const mean = perCh(p.mean, "mean");
  const std = perCh(p.std, "std");
  if (!isPixelDType(spec.dtype)) throw new UserError(`${where}: input '${spec.name}' is ${spec.dtype}; images feed float16/bfloat16/float32/float64 or uint8/int8/uint16/int16/int32 inputs`);
  // Tensor channel k takes source channel src[k] (RGBA index); gray uses the luma formula.
  const src = c === 1 ? [-1] : p.order === "rgb" ? [0, 1, 2] : [2, 1, 0];
  const data = pixelsToTensor(img, spec.dtype, { w, h, c, layout: g.layout, nw, nh, left, top, interp: p.interp, src, scale, mean, std, pad: p.pad });
  return { name: spec.name, dtype: spec.dtype, dims: g.dims, data };
}
