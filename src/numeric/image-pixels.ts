/**
 * The element loop of an image input (docs/inputs.md, "Images", steps 2-6): RGBA pixels
 * resampled, channel-selected, normalized and stored in the input's element type. The geometry
 * (sizes, offsets, layout) is decided by the caller (data/image.ts). No native twin: it runs
 * once per loaded image. Exported through ./index.ts.
 */
import type { DType, TensorData } from "../core/host-tensor.js";
import { f64ToMiniFloatBits, roundHalfEven } from "./minifloat.js";

/** Decoded image: 8-bit RGBA, row-major. */
export interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Where and how the pixels of one image go into a W×H×C tensor. */
export interface PixelPlan {
  /** Tensor width, height, channels (1 or 3) and layout. */
  w: number;
  h: number;
  c: number;
  layout: "nchw" | "nhwc";
  /** The resized image (nw×nh) placed at (left, top) of the W×H tensor; negative offsets crop. */
  nw: number;
  nh: number;
  left: number;
  top: number;
  interp: "bilinear" | "nearest";
  /** RGBA channel of each tensor channel; -1 = luma (299R + 587G + 114B) / 1000. */
  src: readonly number[];
  scale: number;
  /** One per tensor channel. */
  mean: readonly number[];
  std: readonly number[];
  /** Value (0..255 units) outside the placed image. */
  pad: number;
}

/** Sample channel values of `img` resized to nw×nh: a function (x, y, ch) → float. */
function resampler(img: Rgba, nw: number, nh: number, interp: PixelPlan["interp"]): (x: number, y: number, ch: number) => number {
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

/** How a float64 pixel value is stored, by element type: as is, as float16/bfloat16 bits, or rounded half-to-even and clamped. */
const PIXEL_STORES: Partial<Record<DType, { make: (n: number) => TensorData; put: (v: number) => number }>> = {
  float32: { make: (n) => new Float32Array(n), put: (v) => v },
  float64: { make: (n) => new Float64Array(n), put: (v) => v },
  float16: { make: (n) => new Uint16Array(n), put: (v) => f64ToMiniFloatBits(v, 5, 10) },
  bfloat16: { make: (n) => new Uint16Array(n), put: (v) => f64ToMiniFloatBits(v, 8, 7) },
  uint8: { make: (n) => new Uint8Array(n), put: clampTo(0, 255) },
  int8: { make: (n) => new Int8Array(n), put: clampTo(-128, 127) },
  uint16: { make: (n) => new Uint16Array(n), put: clampTo(0, 65535) },
  int16: { make: (n) => new Int16Array(n), put: clampTo(-32768, 32767) },
  int32: { make: (n) => new Int32Array(n), put: clampTo(-2147483648, 2147483647) },
};

function clampTo(lo: number, hi: number): (v: number) => number {
  return (v) => Math.min(Math.max(roundHalfEven(v), lo), hi);
}

/** True for the element types an image can be stored in. */
export function isPixelDType(d: DType): boolean {
  return PIXEL_STORES[d] !== undefined;
}

/** The tensor data of `img` under `p`, in element type `dtype` (isPixelDType), `(v·scale − mean[k]) / std[k]` per element. */
export function pixelsToTensor(img: Rgba, dtype: DType, p: PixelPlan): TensorData {
  const store = PIXEL_STORES[dtype];
  if (!store) throw new Error(`pixelsToTensor: ${dtype} is not an image element type`);
  const { w, h, c } = p;
  const sample = resampler(img, p.nw, p.nh, p.interp);
  const data = store.make(c * h * w);
  const out = data as { [i: number]: number };
  for (let y = 0; y < h; y++) {
    const ry = y - p.top;
    for (let x = 0; x < w; x++) {
      const rx = x - p.left;
      const inside = rx >= 0 && rx < p.nw && ry >= 0 && ry < p.nh;
      for (let k = 0; k < c; k++) {
        let v: number;
        if (!inside) v = p.pad;
        else if (p.src[k] === -1) v = (299 * sample(rx, ry, 0) + 587 * sample(rx, ry, 1) + 114 * sample(rx, ry, 2)) / 1000;
        else v = sample(rx, ry, p.src[k]!);
        const i = p.layout === "nchw" ? (k * h + y) * w + x : (y * w + x) * c + k;
        out[i] = store.put((v * p.scale - p.mean[k]!) / p.std[k]!);
      }
    }
  }
  return data;
}
