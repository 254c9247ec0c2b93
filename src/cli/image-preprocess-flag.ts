/**
 * `--image-preprocess [NAME:]key=value,...` (docs/inputs.md, "Images") parsed into the library's
 * typed `imagePreprocess` option (data/image.ts ImagePreprocessOptions).
 */
import { UserError } from "../core/errors.js";
import type { ImagePreprocessOptions, ImagePreprocessSettings } from "../data/image.js";

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

/** One spec string (without the `NAME:` prefix) as settings over `base` (later keys win). */
export function parsePreprocessSpec(spec: string, raw: string, base: ImagePreprocessSettings = {}): ImagePreprocessSettings {
  const o: ImagePreprocessSettings = { ...base };
  for (const kv of splitTopLevel(spec)) {
    const eq = kv.indexOf("=");
    if (eq < 0) throw new UserError(`${FLAG} '${raw}': '${kv}' is not key=value; e.g. ${FLAG} size=224x224,resize=crop,mean=[0.485,0.456,0.406],std=[0.229,0.224,0.225]`);
    const key = kv.slice(0, eq).trim().toLowerCase();
    const val = kv.slice(eq + 1).trim();
    switch (key) {
      case "size": {
        const m = /^(\d+)\s*x\s*(\d+)$/i.exec(val);
        if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UserError(`${FLAG} '${raw}': size=${val}: expected WIDTHxHEIGHT, e.g. size=640x480`);
        o.size = { width: Number(m[1]), height: Number(m[2]) };
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
      case "std": {
        const std = parseList(val, key, raw);
        if (std.some((x) => x === 0)) throw new UserError(`${FLAG} '${raw}': std has a zero; give non-zero values`);
        o.std = std;
        break;
      }
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
 * `--image-preprocess` values: `SPEC` (every image input) or `NAME:SPEC` (one input; NAME is
 * everything before the last colon that precedes the first `=`). Undefined when none are given.
 */
export function parseImagePreprocess(values: readonly string[] | undefined): ImagePreprocessOptions | undefined {
  if (!values?.length) return undefined;
  let global: ImagePreprocessSettings = {};
  const named: [string, string, string][] = [];
  for (const raw of values) {
    const eq = raw.indexOf("=");
    const head = eq < 0 ? raw : raw.slice(0, eq);
    const colon = head.lastIndexOf(":");
    if (colon < 0) global = parsePreprocessSpec(raw, raw, global);
    else named.push([raw.slice(0, colon).trim(), raw.slice(colon + 1), raw]);
  }
  const perInput = new Map<string, ImagePreprocessSettings>();
  for (const [name, spec, raw] of named) perInput.set(name, parsePreprocessSpec(spec, raw, perInput.get(name)));
  return perInput.size ? { ...global, perInput: Object.fromEntries(perInput) } : global;
}
