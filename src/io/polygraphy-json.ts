/**
 * Polygraphy's JSON encoding of NumPy arrays and torch tensors (polygraphy/json/serde.py), as written by
 * `polygraphy run --save-inputs` / `--save-outputs`:
 *
 *   {"array": "<base64 of a .npy file>", "polygraphy_class": "ndarray"}
 *
 * Older Polygraphy versions mark the type with `"__polygraphy_encoded_ndarray":
 * "polygraphy_serialized_json_type"` instead of `polygraphy_class`, and the oldest store the
 * .npy (or an .npz holding one array) as a latin-1 string rather than base64; both are read.
 * `--save-inputs` writes a JSON list with one `{input_name: ARRAY}` object per iteration.
 */
import { UserError } from "../core/errors.js";
import { decodeNpy, encodeNpy, isNpy, type NpyArray } from "./npy.js";
import { decodeNpz } from "./npz.js";
import { decodeTorchTensor } from "./torch-tensor.js";
import type { DType, TensorData } from "../core/host-tensor.js";

const TYPE_MARKER = "polygraphy_class";
const LEGACY_KEY = "__polygraphy_encoded_ndarray";
const LEGACY_MARKER = "polygraphy_serialized_json_type";

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function isEncodedArray(v: unknown): v is { array: string } {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return typeof o.array === "string" && (o[TYPE_MARKER] === "ndarray" || o[LEGACY_KEY] === LEGACY_MARKER);
}

/** A torch tensor as Polygraphy encodes it: `{"tensor": "<base64 of torch.save>", "polygraphy_class": "Tensor"}`. */
function isEncodedTorchTensor(v: unknown): v is { tensor: string } {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return typeof o.tensor === "string" && (o[TYPE_MARKER] === "Tensor" || o.__polygraphy_encoded_Tensor === LEGACY_MARKER);
}

/** Decode one Polygraphy-encoded array object (NumPy array or torch tensor, e.g. bfloat16). `where` names it in errors. */
export function decodePolygraphyArray(v: unknown, where: string): NpyArray {
  if (isEncodedTorchTensor(v)) {
    const text = v.tensor.replace(/\s+/g, "");
    if (!B64_RE.test(text) || text.length % 4 !== 0) throw new UserError(`${where}: "tensor" is not base64 (Polygraphy writes torch.save bytes in base64); pass a file written by polygraphy run --save-outputs`);
    return decodeTorchTensor(new Uint8Array(Buffer.from(text, "base64")), where);
  }
  if (!isEncodedArray(v)) {
    throw new UserError(`${where}: not a Polygraphy-encoded array (expected {"array": "<base64 .npy>", "polygraphy_class": "ndarray"}); pass a file written by polygraphy run --save-inputs`);
  }
  const text = v.array.replace(/\s+/g, "");
  let bytes: Uint8Array;
  if (B64_RE.test(text) && text.length % 4 === 0) {
    bytes = new Uint8Array(Buffer.from(text, "base64"));
  } else {
    // Oldest form: the file's bytes as a latin-1 string.
    bytes = new Uint8Array(Buffer.from(v.array, "latin1"));
    if (!isNpy(bytes) && !(bytes[0] === 0x50 && bytes[1] === 0x4b)) {
      throw new UserError(`${where}: "array" is neither base64 nor a latin-1 .npy string (bad base64); pass a file written by polygraphy run --save-inputs`);
    }
  }
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) {
    // Oldest Polygraphy: an .npz holding one array.
    const arrays = decodeNpz(bytes, where);
    return arrays.values().next().value!;
  }
  if (!isNpy(bytes)) throw new UserError(`${where}: "array" does not decode to a .npy file (bad base64 or not numpy.save output); pass a file written by polygraphy run --save-inputs`);
  return decodeNpy(bytes, where);
}

/** Encode an array as Polygraphy does (current form). */
export function encodePolygraphyArray(a: { dtype: DType; dims: readonly number[]; data: TensorData }): { array: string; polygraphy_class: "ndarray" } {
  return { array: Buffer.from(encodeNpy(a)).toString("base64"), polygraphy_class: "ndarray" };
}

/**
 * The iterations of a Polygraphy inputs file, checked to be a list of objects but not yet
 * decoded (decode each with {@link decodePolygraphyIteration}, so only one is held decoded).
 */
export function parsePolygraphyInputs(text: string, where: string): Record<string, unknown>[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${where}: not valid JSON (${(e as Error).message}); pass a file written by polygraphy run --save-inputs`);
  }
  if (!Array.isArray(v)) {
    throw new UserError(`${where}: a Polygraphy inputs file is a JSON list of {input_name: array} objects (one per iteration), got ${v === null ? "null" : typeof v}; pass a file written by polygraphy run --save-inputs`);
  }
  if (v.length === 0) throw new UserError(`${where}: the list of iterations is empty; pass a file with at least one iteration`);
  v.forEach((it, k) => {
    if (typeof it !== "object" || it === null || Array.isArray(it)) {
      throw new UserError(`${where}: iteration ${k} is not a {input_name: array} object; pass a file written by polygraphy run --save-inputs`);
    }
  });
  return v as Record<string, unknown>[];
}

/** Iteration `k` (from {@link parsePolygraphyInputs}): input name → array. */
export function decodePolygraphyIteration(it: Record<string, unknown>, k: number, where: string): Map<string, NpyArray> {
  const m = new Map<string, NpyArray>();
  for (const [name, arr] of Object.entries(it)) m.set(name, decodePolygraphyArray(arr, `${where}: iteration ${k}, input '${name}'`));
  return m;
}

/** A Polygraphy inputs file: one map (input name → array) per iteration. */
export function decodePolygraphyInputs(text: string, where: string): Map<string, NpyArray>[] {
  return parsePolygraphyInputs(text, where).map((it, k) => decodePolygraphyIteration(it, k, where));
}
