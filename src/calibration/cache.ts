/**
 * TensorRT calibration caches (text) and trt-debug's JSON sidecar.
 *
 * TensorRT text format (docs/int8.md, "Cache formats"):
 *
 *     TRT-8601-EntropyCalibration2
 *     input: 3c010204
 *     (Unnamed ITensor* 38): 3c3604b4
 *
 * Line 1 is `TRT-<version>-<Algorithm>`; each further line is `<tensor name>: <8 hex digits>`,
 * the big-endian IEEE-754 float32 bit pattern of the scale s (amax = 127·s). Names may hold
 * spaces, colons and parentheses, so a line is split at its LAST `": "`.
 *
 * JSON sidecar (`"format": "trt-debug/calibration@1"`): the same content plus amax, readable
 * without decoding hex. See docs/calibration.md.
 */
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { writeFileAtomic } from "../core/output-file.js";
import { opt, UserError, userError } from "../core/errors.js";
import type { CalibrationCache } from "../precision/int8.js";

export type { CalibrationCache };
import { readTextChecked } from "../io/safe-read.js";

/** TensorRT version written into new caches unless overridden (TensorRT 8.6.1). */
export const DEFAULT_TRT_VERSION = "8601";

/** `format` value of the JSON sidecar. */
export const CALIBRATION_JSON_FORMAT = "trt-debug/calibration@1";

/** A calibration cache in memory. `scales` are float32 values (held exactly as numbers). */

/** What the writers need. */
export interface CalibrationCacheContent {
  version: string;
  algorithm: string;
  scales: Map<string, number>;
  /**
   * Optional exact amax per tensor for the JSON sidecar (defaults to 127·scale). Must agree
   * with 127·scale to 1e-6 relative. The TensorRT text format stores only the scale.
   */
  amax?: Map<string, number>;
}

const VERSION_RE = /^[0-9]+$/;
const ALGORITHM_RE = /^[A-Za-z0-9_]+$/;
const HEX_RE = /^[0-9a-fA-F]{8}$/;
const HEADER_RE = /^TRT-([0-9]+)-([A-Za-z0-9_]+)$/;

const dv = new DataView(new ArrayBuffer(4));

/** The float32 nearest to `s`, as 8 lowercase hex digits of its big-endian bit pattern. */
export function scaleToHex(s: number): string {
  dv.setFloat32(0, s, false);
  return dv.getUint32(0, false).toString(16).padStart(8, "0");
}

/** The float32 whose big-endian bit pattern is the 8 hex digits `h` (either case). */
export function hexToScale(h: string): number {
  if (!HEX_RE.test(h)) throw new UserError(`${JSON.stringify(h)} is not 8 hex digits (a float32 bit pattern)`);
  dv.setUint32(0, Number.parseInt(h, 16), false);
  return dv.getFloat32(0, false);
}

/** The scale for an amax, rounded to float32 as the cache stores it: fround(amax / 127). */
export function amaxToScale(amax: number): number {
  return Math.fround(amax / 127);
}

/** The amax a cache scale stands for: 127·s. */
export function scaleToAmax(s: number): number {
  return 127 * s;
}

function q(s: string): string {
  return JSON.stringify(s);
}

function validScale(s: number): boolean {
  return Number.isFinite(s) && s >= 0;
}

/** amax and a float32 scale describe the same range (float32 rounding of amax/127 is ~6e-8). */
function amaxAgrees(amax: number, s: number): boolean {
  const expect = scaleToAmax(s);
  return Math.abs(expect - amax) <= 1e-6 * Math.max(Math.abs(expect), Math.abs(amax)) + 1e-44;
}

/**
 * Parse a calibration cache, TensorRT text or JSON sidecar (chosen by content: JSON starts
 * with `{`). Any TensorRT version and algorithm is accepted and reported. Throws UserError
 * `file:line: problem; fix` on anything malformed.
 */
export function parseCalibrationCache(text: string, fileName: string): CalibrationCache {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (body.trimStart().startsWith("{")) return parseJson(body, fileName);
  return parseText(body, fileName);
}

function parseText(body: string, fileName: string): CalibrationCache {
  const lines = body.split(/\r?\n/);
  let headerIdx = 0;
  while (headerIdx < lines.length && lines[headerIdx]!.trim() === "") headerIdx++;
  if (headerIdx === lines.length) {
    throw new UserError(
      `${fileName}:1: empty calibration cache; expected a header like TRT-8601-EntropyCalibration2 followed by "<tensor>: <8 hex digits>" lines`,
    );
  }
  const header = lines[headerIdx]!.trim();
  const m = HEADER_RE.exec(header);
  if (!m) {
    throw new UserError(
      `${fileName}:${headerIdx + 1}: bad calibration cache header ${q(header.slice(0, 80))}; expected TRT-<version digits>-<Algorithm>, e.g. TRT-8601-EntropyCalibration2`,
    );
  }
  const scales = new Map<string, number>();
  const firstLine = new Map<string, number>();
  for (let k = headerIdx + 1; k < lines.length; k++) {
    const raw = lines[k]!;
    const lineNo = k + 1;
    if (raw.trim() === "") continue;
    const line = raw.replace(/[ \t]+$/, "");
    const at = line.lastIndexOf(": ");
    if (at < 0) {
      throw new UserError(
        `${fileName}:${lineNo}: missing ": " in ${q(line.slice(0, 80))}; each line after the header must be "<tensor name>: <8 hex digits>"`,
      );
    }
    const name = line.slice(0, at);
    const hex = line.slice(at + 2);
    if (name === "") throw new UserError(`${fileName}:${lineNo}: empty tensor name before ": "; each line must be "<tensor name>: <8 hex digits>"`);
    if (!HEX_RE.test(hex)) {
      throw new UserError(
        `${fileName}:${lineNo}: bad scale ${q(hex.slice(0, 40))} for tensor ${q(name)}; expected exactly 8 hex digits (a big-endian float32 bit pattern, e.g. 3c010204)`,
      );
    }
    const prev = firstLine.get(name);
    if (prev !== undefined) {
      throw new UserError(`${fileName}:${lineNo}: duplicate tensor ${q(name)} (first on line ${prev}); keep one line per tensor`);
    }
    const s = hexToScale(hex);
    if (!validScale(s)) {
      throw new UserError(
        `${fileName}:${lineNo}: scale ${hex} of tensor ${q(name)} is ${s}; a calibration scale must be a finite float32 >= 0`,
      );
    }
    firstLine.set(name, lineNo);
    scales.set(name, s);
  }
  return { version: m[1]!, algorithm: m[2]!, scales, source: "tensorrt" };
}

/** 1-based line of character offset `pos` in `text`. */
function lineOf(text: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function parseJson(body: string, fileName: string): CalibrationCache {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const pos = /position (\d+)/.exec(msg);
    const where = pos ? `${fileName}:${lineOf(body, Number(pos[1]))}` : fileName;
    throw new UserError(`${where}: invalid JSON in calibration file (${msg.split("\n")[0]}); fix the JSON or regenerate the file`);
  }
  const bad = (what: string): never => {
    throw new UserError(`${fileName}: ${what}; expected {"format":"${CALIBRATION_JSON_FORMAT}","algorithm":...,"trt_version":...,"tensors":{"<name>":{"amax":...,"scale":...}}}`);
  };
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return bad("the JSON is not an object");
  const o = doc as Record<string, unknown>;
  if (o.format !== CALIBRATION_JSON_FORMAT) {
    return bad(`"format" is ${JSON.stringify(o.format) ?? "missing"}, not "${CALIBRATION_JSON_FORMAT}"`);
  }
  const algorithm = o.algorithm;
  if (typeof algorithm !== "string" || !ALGORITHM_RE.test(algorithm)) return bad(`"algorithm" must be a name like "EntropyCalibration2"`);
  const version = typeof o.trt_version === "number" ? String(o.trt_version) : o.trt_version;
  if (typeof version !== "string" || !VERSION_RE.test(version)) return bad(`"trt_version" must be TensorRT version digits like "8601"`);
  const tensors = o.tensors;
  if (typeof tensors !== "object" || tensors === null || Array.isArray(tensors)) return bad(`"tensors" must be an object`);
  const scales = new Map<string, number>();
  const amaxes = new Map<string, number>();
  for (const [name, entry] of Object.entries(tensors as Record<string, unknown>)) {
    if (typeof entry !== "object" || entry === null) return bad(`tensor ${q(name)} must be an object with "scale" and/or "amax"`);
    const e = entry as Record<string, unknown>;
    const { scale, amax } = e;
    let s: number;
    if (scale !== undefined) {
      if (typeof scale !== "number" || !validScale(scale)) return bad(`tensor ${q(name)}: "scale" must be a finite number >= 0`);
      s = Math.fround(scale);
      if (amax !== undefined) {
        if (typeof amax !== "number" || !validScale(amax)) return bad(`tensor ${q(name)}: "amax" must be a finite number >= 0`);
        if (!amaxAgrees(amax, s)) {
          return bad(`tensor ${q(name)}: "amax" ${amax} disagrees with 127·"scale" = ${scaleToAmax(s)} (remove one of them)`);
        }
        amaxes.set(name, amax);
      }
    } else if (amax !== undefined) {
      if (typeof amax !== "number" || !validScale(amax)) return bad(`tensor ${q(name)}: "amax" must be a finite number >= 0`);
      s = amaxToScale(amax);
      amaxes.set(name, amax);
    } else {
      return bad(`tensor ${q(name)} has neither "scale" nor "amax"`);
    }
    if (!amaxes.has(name)) amaxes.set(name, scaleToAmax(s));
    scales.set(name, s);
  }
  return { version, algorithm, scales, source: "json", amax: amaxes };
}

function checkContent(c: CalibrationCacheContent): void {
  if (!VERSION_RE.test(c.version)) {
    throw new UserError(`TensorRT version ${q(c.version)} must be digits like 8601 (8.6.1) or 100300 (10.3.0)`);
  }
  if (!ALGORITHM_RE.test(c.algorithm)) {
    throw new UserError(`calibration algorithm name ${q(c.algorithm)} must be letters, digits or _ (e.g. EntropyCalibration2)`);
  }
  for (const [name, s] of c.scales) {
    if (name === "" || /[\r\n]/.test(name)) {
      throw new UserError(`tensor name ${q(name)} cannot be written to a calibration cache (empty or containing a line break); rename the tensor`);
    }
    if (!validScale(s)) throw new UserError(`scale of tensor ${q(name)} is ${s}; a calibration scale must be finite and >= 0`);
    const a = c.amax?.get(name);
    if (a !== undefined && !(validScale(a) && amaxAgrees(a, Math.fround(s)))) {
      throw new UserError(`amax ${a} of tensor ${q(name)} does not match its scale ${s} (amax must be 127·scale)`);
    }
  }
}

/**
 * TensorRT text cache: header, then one `name: hex` line per tensor in the map's insertion
 * order, lowercase hex, `\n` line ends and a trailing newline. Scales are rounded to float32.
 */
export function formatCalibrationCache(c: CalibrationCacheContent): string {
  checkContent(c);
  const out: string[] = [`TRT-${c.version}-${c.algorithm}`];
  for (const [name, s] of c.scales) out.push(`${name}: ${scaleToHex(s)}`);
  return out.join("\n") + "\n";
}

/**
 * JSON sidecar text (`trt-debug/calibration@1`): per tensor the float32 scale (exact) and the
 * amax (`c.amax` if given, else 127·scale); tensors in the map's insertion order, one per line; trailing newline.
 */
export function calibrationJson(c: CalibrationCacheContent): string {
  checkContent(c);
  // Written by hand so tensors keep the map's order (JSON.stringify would move integer-like
  // names such as "12" to the front).
  const entries: string[] = [];
  for (const [name, s] of c.scales) {
    const f = Math.fround(s);
    const a = c.amax?.get(name) ?? scaleToAmax(f);
    entries.push(`    ${JSON.stringify(name)}: { "amax": ${JSON.stringify(a)}, "scale": ${JSON.stringify(f)} }`);
  }
  return (
    "{\n" +
    `  "format": ${JSON.stringify(CALIBRATION_JSON_FORMAT)},\n` +
    `  "algorithm": ${JSON.stringify(c.algorithm)},\n` +
    `  "trt_version": ${JSON.stringify(c.version)},\n` +
    (entries.length === 0 ? `  "tensors": {}\n` : `  "tensors": {\n${entries.join(",\n")}\n  }\n`) +
    "}\n"
  );
}

/** Build cache content from amax values (scale = fround(amax / 127); amax kept for JSON). */
export function cacheFromAmax(
  amax: Map<string, number> | Iterable<[string, number]>,
  algorithm: string,
  version: string = DEFAULT_TRT_VERSION,
): CalibrationCacheContent {
  const scales = new Map<string, number>();
  const amaxes = new Map<string, number>();
  for (const [name, a] of amax) {
    scales.set(name, amaxToScale(a));
    amaxes.set(name, a);
  }
  return { version, algorithm, scales, amax: amaxes };
}

/** Read and parse a cache file (text or JSON). A missing or unreadable file is a UserError. */
export async function readCalibrationCache(path: string): Promise<CalibrationCache> {
  let text: string;
  try {
    text = readTextChecked(path, "cache");
  } catch (e) {
    if ((e as Error).message.includes("no such file")) throw userError`${path}: calibration cache not found; check the path given to ${opt("calibrationCache")}`;
    throw e;
  }
  return parseCalibrationCache(text, path);
}

/**
 * A TensorRT text cache with the exact amax of its JSON sidecar `<path>.json` (what `calib build`
 * writes next to it), when that file exists and holds the same tensors with the same scales;
 * otherwise the cache as it is (`sidecar` null). The fp8 scales (amax/448) use it.
 */
export function withSidecarAmax(cache: CalibrationCache, path: string): { cache: CalibrationCache; sidecar: string | null } {
  const file = `${path}.json`;
  if (cache.source !== "tensorrt" || !existsSync(file)) return { cache, sidecar: null };
  let side: CalibrationCache;
  try {
    side = parseCalibrationCache(readTextChecked(file, "cache"), file);
  } catch {
    return { cache, sidecar: null };
  }
  if (side.source !== "json" || !side.amax || side.scales.size !== cache.scales.size) return { cache, sidecar: null };
  for (const [t, s] of cache.scales) if (side.scales.get(t) !== s) return { cache, sidecar: null };
  return { cache: { ...cache, amax: side.amax }, sidecar: file };
}

/**
 * Write a cache as TensorRT text (`format: "tensorrt"`) or JSON sidecar, via a temporary
 * file renamed into place so readers never see a partial file.
 */
export async function writeCalibrationCache(
  path: string,
  c: CalibrationCacheContent,
  format: "tensorrt" | "json" = "tensorrt",
): Promise<void> {
  const text = format === "json" ? calibrationJson(c) : formatCalibrationCache(c);
  await writeFileAtomic(path, text);
}
