/**
 * Writing a ModelProto to disk: inline, or with its large initializers moved to an external
 * data file next to it (location/offset/length entries, page-aligned large tensors, as onnx's
 * Python writer does). Files are written under temporary names and renamed when complete
 * (core/output-file.ts). Used by `convert` and by the tests' graph builder.
 */
import { clearField, clone, create, toBinary } from "@bufbuild/protobuf";
import * as fs from "node:fs";
import * as path from "node:path";
import { ModelProtoSchema, StringStringEntryProtoSchema, TensorProto_DataLocation, TensorProtoSchema, type GraphProto, type ModelProto, type TensorProto } from "onnx-buf";
import { writeFileAtomicSync } from "../core/output-file.js";

/** The serialized model (ModelProto wire format). */
export function modelBytes(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}

export interface ExternalDataOptions {
  /** Side file name, relative to the model's directory (no "..", not absolute). */
  location: string;
  /** Initializers with at least this many raw_data bytes go to the side file (default 1024). */
  threshold?: number;
  /**
   * Tensors of at least this many bytes start at an offset that is a multiple of 4096 so
   * they can be memory-mapped (what onnx's Python writer does; default 1 MiB).
   */
  alignThreshold?: number;
}

export interface SaveOptions {
  externalData?: ExternalDataOptions;
}

const PAGE = 4096;

/** Every initializer of a graph and of its subgraphs (If/Loop/Scan bodies), recursively. */
function* allInitializers(g: GraphProto): Generator<TensorProto> {
  yield* g.initializer;
  for (const n of g.node) {
    for (const a of n.attribute) {
      if (a.g) yield* allInitializers(a.g);
      for (const sg of a.graphs) yield* allInitializers(sg);
    }
  }
}

function writeAtomic(file: string, chunks: readonly Uint8Array[]): void {
  writeFileAtomicSync(file, chunks, { fsync: true });
}

/**
 * Write `model` to `file`. With `externalData`, every initializer (subgraphs included) held
 * in raw_data of at least `threshold` bytes is moved to the side file `location` (next to
 * the model) with location/offset/length entries and data_location EXTERNAL; the caller's
 * model is not modified. Tensors kept in typed fields (float_data, ...) and Constant-node
 * tensors stay inline. When no initializer reaches `threshold`, no side file is written (and
 * `data` is absent from the result). Files are written under temporary names and renamed when
 * complete. Returns the paths written.
 */
export function saveModel(model: ModelProto, file: string, options: SaveOptions = {}): { model: string; data?: string } {
  const ext = options.externalData;
  if (!ext) {
    writeAtomic(file, [modelBytes(model)]);
    return { model: file };
  }
  const loc = ext.location;
  if (loc === "" || path.isAbsolute(loc) || loc.split(/[\\/]/).includes("..")) {
    throw new Error(`external data location "${loc}" must be a relative path inside the model's directory`);
  }
  const threshold = ext.threshold ?? 1024;
  const alignThreshold = ext.alignThreshold ?? 1 << 20;
  const m = clone(ModelProtoSchema, model);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  if (m.graph) {
    for (const t of allInitializers(m.graph)) {
      if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) {
        throw new Error(`initializer "${t.name}" already refers to external data; load it before saving`);
      }
      const raw = t.rawData;
      if (raw.byteLength === 0 || raw.byteLength < threshold) continue;
      if (raw.byteLength >= alignThreshold && offset % PAGE !== 0) {
        const pad = PAGE - (offset % PAGE);
        chunks.push(new Uint8Array(pad));
        offset += pad;
      }
      chunks.push(raw);
      const entries: [string, string][] = [
        ["location", loc],
        ["offset", String(offset)],
        ["length", String(raw.byteLength)],
      ];
      t.externalData = entries.map(([key, value]) => create(StringStringEntryProtoSchema, { key, value }));
      t.dataLocation = TensorProto_DataLocation.EXTERNAL;
      clearField(t, TensorProtoSchema.field.rawData);
      offset += raw.byteLength;
    }
  }
  if (chunks.length === 0) {
    // No tensor reached the threshold: the model references no side file, so none is written.
    writeAtomic(file, [modelBytes(m)]);
    return { model: file };
  }
  const dataFile = path.join(path.dirname(file), loc);
  fs.mkdirSync(path.dirname(dataFile), { recursive: true });
  writeAtomic(dataFile, chunks);
  writeAtomic(file, [modelBytes(m)]);
  return { model: file, data: dataFile };
}
