/**
 * External data confinement. ONNX's own loader (onnx/checker.cc resolve_external_data_location,
 * external_data_helper) accepts a tensor's `location` only when it is a relative path that stays
 * inside the model's directory: absolute paths and `..` escapes are rejected, the target must be
 * a regular file, and (since onnx 1.17) a symlink may not lead outside the directory. trt-debug
 * applies the same rule, and also rejects URIs (`file://...`), which ONNX never defined.
 * `allowOutside` (CLI: --allow-external-data-outside) lifts the rule for users who need it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { opt, UserError, userError } from "../core/errors.js";

/**
 * Initializers of models loaded with allowOutside: their later reads (tensor decoding during
 * rewrites) accept the location too. Scoped to those TensorProto objects, so another model
 * loaded without the option in the same process is still confined.
 */
const approvedOutside = new WeakSet<object>();

/** Mark an initializer of a model loaded with allowOutside. */
export function approveOutside(t: object): void {
  approvedOutside.add(t);
}

/** Whether `t` belongs to a model loaded with allowOutside. */
export function isApprovedOutside(t: object): boolean {
  return approvedOutside.has(t);
}

/**
 * Tensors whose data trt-debug itself wrote to a temporary data file (onnx/external-weights.ts:
 * weights lifted or folded at load, rewritten copies): their location is relative to that
 * file's folder, not to the model's, and needs no confinement check (trt-debug chose it).
 */
const tempFolders = new WeakMap<object, string>();

/** Record that `t`'s external-data location is relative to `folder` (a temporary file trt-debug wrote). */
export function setTempFolder(t: object, folder: string): void {
  tempFolders.set(t, folder);
}

/** The folder of a tensor trt-debug wrote to a temporary data file, else undefined. */
export function tempFolder(t: object): string | undefined {
  return tempFolders.get(t);
}

function escapeReason(loc: string): string | null {
  if (loc === "") return "is empty";
  if (loc.includes("\0")) return "contains a NUL byte";
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(loc) || /^file:/i.test(loc)) return "is a URI, not a relative path";
  if (path.isAbsolute(loc) || path.win32.isAbsolute(loc) || /^[a-zA-Z]:/.test(loc)) return "is an absolute path";
  const norm = path.posix.normalize(loc.replace(/\\/g, "/"));
  if (norm === ".." || norm.startsWith("../")) return "points outside the model's folder ('..')";
  return null;
}

function within(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== "" && rel !== ".." && !rel.startsWith(".." + path.sep) && !path.isAbsolute(rel);
}

/**
 * Resolve an initializer's external-data `location` against `baseDir` and enforce the rule.
 * Returns the absolute path to open. A missing file is left to the caller's open/stat.
 */
export function resolveExternalLocation(
  loc: string,
  baseDir: string,
  where: { label: string; tensor: string },
  allowOutside = false,
): string {
  const file = path.resolve(baseDir, loc);
  if (allowOutside) return file;
  const fix = ["keep the data file inside the model's folder and use a relative location (or pass ", opt("allowExternalDataOutside"), " if you trust this model)"];
  const bad = escapeReason(loc);
  if (bad) {
    throw userError`${where.label}: initializer '${where.tensor}' has external data location '${loc.slice(0, 200)}' that ${bad}; ${fix}`;
  }
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    return file; // missing: reported by the caller
  }
  let realBase: string;
  try {
    realBase = fs.realpathSync(baseDir);
  } catch {
    realBase = path.resolve(baseDir);
  }
  if (!within(realBase, real)) {
    throw userError`${where.label}: initializer '${where.tensor}' has external data location '${loc.slice(0, 200)}' that resolves outside the model's folder (via a symlink, to ${real}); ${fix}`;
  }
  return file;
}
