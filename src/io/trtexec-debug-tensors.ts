/**
 * The `tensor_summary.json` trtexec writes with `--saveAllDebugTensors=summary,...`
 * (TensorRT samples/common/debugTensorWriter.cpp, DebugTensorWriter::writeSummaryHeader /
 * writeSummary):
 *
 *   {"metadata": {"title": "Tensor Summary Report", "time_generated": ..., "engine_name": ...,
 *                 "command_line": ...},
 *    "tensors": [{"name": "conv1_out", "shape": [1, 8], "type": "FLOAT",
 *                 "statistics": {"min": ..., "max": ..., "avg": ..., "elements": "..."},
 *                 "files": {"numpy": "0000_conv1_out.npy", "raw": "0000_conv1_out.raw", ...}}, ...]}
 *
 * `type` is TensorRT's DataType name (FLOAT, HALF, BF16, INT8, INT32, INT64, UINT8, BOOL, FP8,
 * FP4, INT4, E8M0). Files are written in trtexec's working folder, the summary's folder. The
 * numpy file of a BF16/FP8/FP4 tensor holds float32 (`..._to_float.npy`), of an INT4 tensor
 * int8; a raw file holds the tensor's own bytes. Each entry is read from its numpy file (checked
 * against the summary's shape and type), else its raw file (FLOAT, HALF, BF16, INT8, INT32,
 * INT64, UINT8, BOOL; BF16 to float32 exactly); entries with neither are skipped.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../core/errors.js";
import { bf16ToF32, normalizeBools } from "../numeric/index.js";
import { hostView } from "../core/dtype.js";
import type { DType, TensorData } from "../core/host-tensor.js";
import { decodeNpy } from "./npy.js";

export const TENSOR_SUMMARY = "tensor_summary.json";
const FIX = "pass the folder trtexec --saveAllDebugTensors=summary,numpy wrote (or remove the file to read the .npy files alone)";

/** One tensor of a debug-tensor folder. */
export interface DebugTensor {
  name: string;
  dtype: DType;
  dims: number[];
  data: TensorData;
}

/** TensorRT type → dtype of its numpy file, and how its raw bytes read. */
const TYPES: Record<string, { npy: DType; raw?: { size: number; dtype: DType; bf16?: boolean } }> = {
  FLOAT: { npy: "float32", raw: { size: 4, dtype: "float32" } },
  HALF: { npy: "float16", raw: { size: 2, dtype: "float16" } },
  BF16: { npy: "float32", raw: { size: 2, dtype: "float32", bf16: true } },
  FP8: { npy: "float32" },
  FP4: { npy: "float32" },
  INT4: { npy: "int8" },
  INT8: { npy: "int8", raw: { size: 1, dtype: "int8" } },
  INT32: { npy: "int32", raw: { size: 4, dtype: "int32" } },
  INT64: { npy: "int64", raw: { size: 8, dtype: "int64" } },
  UINT8: { npy: "uint8", raw: { size: 1, dtype: "uint8" } },
  BOOL: { npy: "bool", raw: { size: 1, dtype: "bool" } },
  E8M0: { npy: "float32" },
};

interface Entry {
  name: string;
  shape: number[];
  type: string;
  numpy?: string;
  raw?: string;
}

/** The entries of `dir/tensor_summary.json`, or null when the folder has none. */
export function readTensorSummary(dir: string): Entry[] | null {
  const file = path.join(dir, TENSOR_SUMMARY);
  if (!fs.existsSync(file)) return null;
  let v: unknown;
  try {
    v = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message}); ${FIX}`);
  }
  const tensors = (v as { tensors?: unknown })?.tensors;
  if (typeof v !== "object" || v === null || !Array.isArray(tensors)) throw new UserError(`${file}: not a trtexec tensor summary (no "tensors" list); ${FIX}`);
  return tensors.map((t, k) => {
    const o = t as Record<string, unknown>;
    const files = (o?.files ?? {}) as Record<string, unknown>;
    const ok =
      typeof o === "object" && o !== null && typeof o.name === "string" && Array.isArray(o.shape) && o.shape.every((d) => Number.isInteger(d) && (d as number) >= 0) && typeof o.type === "string" && typeof files === "object" && files !== null;
    if (!ok) throw new UserError(`${file}: tensors[${k}] lacks a string "name", a "shape" list of sizes or a string "type"; ${FIX}`);
    if (!(String(o.type) in TYPES)) throw new UserError(`${file}: tensor '${o.name as string}' has unknown type '${String(o.type)}' (known: ${Object.keys(TYPES).join(", ")}); ${FIX}`);
    return {
      name: o.name as string,
      shape: o.shape as number[],
      type: o.type as string,
      numpy: typeof files.numpy === "string" ? files.numpy : undefined,
      raw: typeof files.raw === "string" ? files.raw : undefined,
    };
  });
}

function readFile(dir: string, name: string, where: string): Uint8Array {
  const p = path.resolve(dir, name);
  try {
    return new Uint8Array(fs.readFileSync(p));
  } catch (e) {
    throw new UserError(`${where}: its file ${p} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)}); ${FIX}`);
  }
}

function decodeRaw(bytes: Uint8Array, r: { size: number; dtype: DType; bf16?: boolean }, n: number, where: string): TensorData {
  if (bytes.length !== n * r.size) throw new UserError(`${where}: the raw file holds ${bytes.length} bytes, the summary's shape and type need ${n * r.size}; ${FIX}`);
  const buf = bytes.slice().buffer;
  if (r.bf16) return bf16ToF32(new Uint16Array(buf));
  const data = hostView(r.dtype, buf);
  if (r.dtype === "bool") normalizeBools(data as Uint8Array);
  return data;
}

/**
 * The tensors of a debug-tensor folder as its tensor_summary.json lists them (names, shapes),
 * read from each entry's numpy file (else raw file), in summary order. Throws when a file
 * disagrees with the summary or when no entry has a file.
 */
export function* readSummaryTensors(dir: string, entries: readonly Entry[]): Generator<DebugTensor> {
  const file = path.join(dir, TENSOR_SUMMARY);
  let yielded = 0;
  for (const e of entries) {
    const where = `${file}: tensor '${e.name}'`;
    const t = TYPES[e.type]!;
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (e.numpy !== undefined) {
      const a = decodeNpy(readFile(dir, e.numpy, where), path.resolve(dir, e.numpy));
      if (a.dtype !== t.npy || a.dims.length !== e.shape.length || a.dims.some((d, i) => d !== e.shape[i])) {
        throw new UserError(`${where}: its numpy file ${e.numpy} holds ${a.dtype} (${a.dims.join("x")}), the summary says ${e.type} (${e.shape.join("x")}) (numpy ${t.npy}); ${FIX}`);
      }
      yielded++;
      yield { name: e.name, dtype: a.dtype, dims: a.dims, data: a.data };
    } else if (e.raw !== undefined && t.raw) {
      const data = decodeRaw(readFile(dir, e.raw, where), t.raw, n, where);
      yielded++;
      yield { name: e.name, dtype: t.raw.dtype, dims: [...e.shape], data };
    }
  }
  if (yielded === 0) throw new UserError(`${file}: no tensor has a readable numpy or raw file; run trtexec with --saveAllDebugTensors=summary,numpy`);
}
