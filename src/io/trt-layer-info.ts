/**
 * TensorRT engine layer information, as `trtexec --exportLayerInfo=FILE
 * --profilingVerbosity=detailed` writes it (IEngineInspector's JSON):
 *
 *   {"Layers": [{"Name": "conv1 + relu1", "LayerType": "CaskConvolution",
 *                "Inputs": [{"Name": "x", ...}], "Outputs": [{"Name": "r1", ...}],
 *                "Metadata": "[ONNX Layer: conv1]\u001e[ONNX Layer: relu1]", ...}, ...],
 *    "Bindings": ["x", "y"]}                      (TensorRT 10.x)
 *    "I/O Tensors": ["x", "y"]                    (TensorRT 11.x, in place of "Bindings")
 *
 * Layer names of fused layers join their parts with ` + ` (vertical fusion) or ` || `
 * (horizontal fusion); Myelin regions are named `__myl_*` and list their ONNX nodes in
 * Metadata only. Without `detailed` verbosity, `Layers` is a list of names only: refused.
 */
import * as fs from "node:fs";
import { UserError } from "../core/errors.js";

export interface TrtLayerInfo {
  name: string;
  type: string;
  inputs: string[];
  outputs: string[];
  /** ONNX node names the layer implements: from Metadata, else from the name's `+`/`||` parts. */
  onnxNodes: string[];
}

export interface TrtEngineInfo {
  layers: TrtLayerInfo[];
  /** Engine I/O tensor names ("Bindings" in 10.x, "I/O Tensors" in 11.x). */
  ioTensors: string[];
}

const FIX = "export it with trtexec --exportLayerInfo=FILE --profilingVerbosity=detailed";
const MAX_BYTES = 256 * 1024 * 1024;

/** ONNX node names in a Metadata string: `[ONNX Layer: NAME]` entries, separated by \x1e. */
export function metadataNodes(meta: string): string[] {
  const out: string[] = [];
  for (const m of meta.matchAll(/\[ONNX Layer: ([^\]\x1e]*)\]/g)) out.push(m[1]!);
  return out;
}

/** Parts of a fused layer name: `a + b` (vertical), `a || b` (horizontal); Myelin and reformat layers have none. */
export function fusedNameParts(name: string): string[] {
  if (name.startsWith("__myl_") || /^Reformatting CopyNode/.test(name)) return [];
  return name.split(/ \+ | \|\| /).map((s) => s.trim()).filter((s) => s !== "");
}

function tensorNames(v: unknown, where: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new UserError(`${where}: expected a list of tensors; ${FIX}`);
  return v.map((t, i) => {
    if (typeof t === "string") return t;
    if (t && typeof t === "object" && typeof (t as { Name?: unknown }).Name === "string") return (t as { Name: string }).Name;
    throw new UserError(`${where}[${i}]: a tensor without "Name"; ${FIX}`);
  });
}

/** Parses a layer-info JSON text. */
export function parseLayerInfo(text: string, file: string): TrtEngineInfo {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message}); ${FIX}`);
  }
  if (!v || typeof v !== "object" || !Array.isArray((v as { Layers?: unknown }).Layers)) {
    throw new UserError(`${file}: not TensorRT layer information (no "Layers" list); ${FIX}`);
  }
  const o = v as Record<string, unknown>;
  const layers = (o.Layers as unknown[]).map((l, i): TrtLayerInfo => {
    if (typeof l === "string") throw new UserError(`${file}: layer ${i} is a name only ('${l}'): the engine was inspected without detailed verbosity; ${FIX}`);
    if (!l || typeof l !== "object" || typeof (l as { Name?: unknown }).Name !== "string") throw new UserError(`${file}: layer ${i} has no "Name"; ${FIX}`);
    const r = l as Record<string, unknown>;
    const name = r.Name as string;
    const meta = typeof r.Metadata === "string" ? metadataNodes(r.Metadata) : [];
    return {
      name,
      type: typeof r.LayerType === "string" ? r.LayerType : "",
      inputs: tensorNames(r.Inputs, `${file}: layer '${name}' Inputs`),
      outputs: tensorNames(r.Outputs, `${file}: layer '${name}' Outputs`),
      onnxNodes: meta.length ? meta : fusedNameParts(name),
    };
  });
  const io = o.Bindings ?? o["I/O Tensors"];
  return { layers, ioTensors: io === undefined ? [] : tensorNames(io, `${file}: ${o.Bindings !== undefined ? "Bindings" : "I/O Tensors"}`) };
}

/** Reads a layer-info JSON file (at most 256 MiB). */
export function readLayerInfo(file: string): TrtEngineInfo {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new UserError(`${file}: no such file; ${FIX}`);
  }
  if (!st.isFile()) throw new UserError(`${file}: not a regular file; ${FIX}`);
  if (st.size > MAX_BYTES) throw new UserError(`${file}: ${st.size} bytes is over the 256 MiB limit for layer information; ${FIX}`);
  return parseLayerInfo(fs.readFileSync(file, "utf8"), file);
}
