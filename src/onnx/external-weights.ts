/**
 * Segment models of large models reference their weights instead of embedding them
 * (docs/performance.md "Models past 2 GB").
 *
 * A protobuf message cannot exceed 2 GB, and a segment model that embeds its weights holds
 * them twice in memory (JavaScript's copy and onnxruntime's). For a model whose external data
 * exceeds a threshold, segment models are serialised with external-data entries instead, and
 * onnxruntime is pointed at the folder that holds the files
 * (`session.model_external_initializers_file_folder_path`, for models loaded from bytes):
 *
 * - a segment that reads only the model's own external weights references the model's data
 *   files where they are (the folder is the model's folder, the locations are the model's);
 * - weights trt-debug rewrites (fp16/bf16/fp8 pre-rounded, int8 fake-quantized) are written
 *   once, per model and emulation policy, to a temporary data file in os.tmpdir(), and every
 *   segment and run of that policy references them there. A segment that reads both kinds
 *   uses the temporary folder; the model's data files it reads are hard-linked into it.
 *
 * onnxruntime 1.30 resolves a location against that one folder and refuses absolute paths,
 * `..` and symlinks that lead out of it ("External data path escapes model directory"; it
 * canonicalises the path), so a symlink to the model's data file cannot be used; a hard link
 * can. Where a hard link is impossible (another file system) or the model's data lies outside
 * its folder (--allow-external-data-outside), the tensor's bytes are copied into the
 * temporary file once instead. Every temporary file is registered in core/temp-files.ts
 * (removed on exit and on SIGINT/SIGTERM) and removed by `release()`.
 */
import { clearField, create } from "@bufbuild/protobuf";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { StringStringEntryProtoSchema, TensorProto_DataLocation, TensorProto_DataType, TensorProtoSchema, type GraphProto, type TensorProto } from "onnx-buf";
import { UserError } from "../core/errors.js";
import { registerTemp, unregisterTemp } from "../core/temp-files.js";
import { resolveExternalLocation, setTempFolder, tempFolder } from "./external-data.js";
import type { LoadedModel } from "./model.js";
import { externalSpan, readExternalChunks, tensorProtoToHost, type TensorDecodeOptions } from "./tensor.js";
import { bf16ToF32, f16ToF32 } from "../numeric/index.js";
import type { HostTensor } from "../core/host-tensor.js";
import { dtypeToOnnx } from "../core/dtype.js";

/** Environment variable: external-data bytes above which segments reference their weights (tests lower it). */
export const EXTERNAL_WEIGHTS_ENV = "TRT_DEBUG_EXTERNAL_WEIGHTS_ABOVE";
/**
 * Default threshold: every model with external data uses external segment weights. Measured
 * (2 cores, scripts/bench/bigmodel.ts shapes): on 50 MB of external weights `compare --fp16`
 * took 0.3 s at 211 MB peak RSS instead of 0.8 s at 405 MB embedded, and the dumps are
 * byte-identical, so there is no size below which embedding wins.
 */
export const DEFAULT_EXTERNAL_WEIGHTS_ABOVE = 0;
/** Models whose embedded initializers exceed this also write their rewritten weights to the temporary file. */
const EMBEDDED_WEIGHTS_ABOVE = 2 ** 30;
/** Offsets of tensors in the temporary file are multiples of this (onnxruntime can map them). */
const ALIGN = 4096;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Bytes copied at a time (copies of the model's tensors into the temporary file). */
const COPY_CHUNK = 16 * 2 ** 20;

function* allInitializers(g: GraphProto): Generator<TensorProto> {
  yield* g.initializer;
  for (const n of g.node) for (const a of n.attribute) for (const sg of [a.g, ...a.graphs]) if (sg) yield* allInitializers(sg);
}

function entry(t: TensorProto, key: string): string | undefined {
  return t.externalData.find((e) => e.key === key)?.value;
}

/** Bytes of one initializer's data: its external `length` entry, else its raw_data (typed fields count 0). */
export function initializerBytes(t: TensorProto): number {
  if (t.dataLocation !== TensorProto_DataLocation.EXTERNAL) return t.rawData.byteLength;
  const len = Number(entry(t, "length") ?? NaN);
  return Number.isFinite(len) ? len : 0;
}

/** Bytes of the model's initializers held in external data (their `length` entries, else their files' sizes). */
export function externalDataBytes(model: LoadedModel): number {
  let n = 0;
  if (!model.proto.graph) return 0;
  for (const t of allInitializers(model.proto.graph)) {
    if (t.dataLocation !== TensorProto_DataLocation.EXTERNAL) continue;
    const len = Number(entry(t, "length") ?? NaN);
    n += Number.isFinite(len) ? len : externalSpan(t, decodeOptions(model)).length;
  }
  return n;
}

/** The threshold in force (environment variable or the default). */
export function externalWeightsThreshold(): number {
  const v = process.env[EXTERNAL_WEIGHTS_ENV];
  if (v === undefined || v === "") return DEFAULT_EXTERNAL_WEIGHTS_ABOVE;
  const x = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(x)) throw new Error(`${EXTERNAL_WEIGHTS_ENV} must be a non-negative integer number of bytes (got '${v}')`);
  return x;
}

/** Bytes of the model's initializers held in the protobuf itself (raw_data). */
function embeddedBytes(model: LoadedModel): number {
  let n = 0;
  if (model.proto.graph) for (const t of allInitializers(model.proto.graph)) n += t.rawData.byteLength;
  return n;
}

/**
 * Whether the segments of `model` reference their weights: external data above the threshold,
 * or (its rewritten copies would bring a segment near protobuf's 2 GB) more than 1 GiB embedded.
 */
export function usesExternalSegmentWeights(model: LoadedModel): boolean {
  const threshold = externalWeightsThreshold();
  const ext = externalDataBytes(model);
  return (ext > 0 && ext > threshold) || embeddedBytes(model) > Math.max(threshold, EMBEDDED_WEIGHTS_ABOVE);
}

/** What a store needs of its model: where its external data is relative to, and its name for messages. */
type ModelPlace = Pick<LoadedModel, "path" | "baseDir">;

function decodeOptions(model: ModelPlace): TensorDecodeOptions {
  return { baseDir: model.baseDir, fileName: model.path };
}

function externalProto(name: string, src: { dims: readonly number[] | readonly bigint[]; dataType: number }, location: string, offset: number, length: number): TensorProto {
  const t = create(TensorProtoSchema, {
    name,
    dims: src.dims.map((d) => BigInt(d)),
    dataType: src.dataType,
    dataLocation: TensorProto_DataLocation.EXTERNAL,
  });
  t.externalData = ([["location", location], ["offset", String(offset)], ["length", String(length)]] as const).map(([key, value]) =>
    create(StringStringEntryProtoSchema, { key, value }),
  );
  return t;
}

let fileCounter = 0;

/** A failed write of the temporary data file (full disk, no permission): the user's to fix. */
function tempError(file: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (!code) return e as Error;
  return new UserError(`${file}: cannot write the temporary file of rewritten weights (${code}); free space in the temporary folder or point TMPDIR at a larger one`);
}

/** How a segment's initializers reach onnxruntime. */
export interface PlacedInitializers {
  initializers: TensorProto[];
  /** The folder onnxruntime resolves external-data locations against (absent: nothing external). */
  folder?: string;
  /** Bytes the segment reads from external data files. */
  externalBytes: number;
}

/**
 * The temporary data file of one model and emulation policy, and the placement of a segment's
 * initializers (see the module comment). Nothing is created before the first write.
 */
export class ExternalWeightStore {
  private readonly dir = os.tmpdir();
  private stem: string | null = null;
  private fd: number | null = null;
  /** The temporary data file's name (in `dir`), once created. */
  private dataName = "";
  private size = 0;
  private readonly files: string[] = [];
  /** Rewritten or copied tensors, by key. */
  private readonly written = new Map<string, TensorProto>();
  /** Whether a model tensor's external data lies inside the model's folder (onnxruntime's rule). */
  private readonly inside = new WeakMap<TensorProto, boolean>();
  /** Resolved model data file -> its hard link's name in the folder (null: linking failed, copy). */
  private readonly links = new Map<string, string | null>();

  constructor(private readonly model: ModelPlace) {}

  private name(suffix: string): string {
    if (!this.stem) this.stem = `trt-debug-${process.pid}-${Date.now().toString(36)}-${fileCounter++}`;
    return `${this.stem}${suffix}`;
  }

  private dataFd(): number {
    if (this.fd !== null) return this.fd;
    this.dataName = this.name(".weights");
    const file = path.join(this.dir, this.dataName);
    registerTemp(file);
    this.files.push(file);
    try {
      this.fd = fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_RDWR, 0o600);
    } catch (e) {
      unregisterTemp(file);
      this.files.pop();
      throw tempError(file, e);
    }
    this.size = 0;
    return this.fd;
  }

  private writeAll(fd: number, bytes: Uint8Array, at: number): void {
    let done = 0;
    try {
      while (done < bytes.byteLength) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done, at + done);
    } catch (e) {
      throw tempError(path.join(this.dir, this.dataName), e);
    }
  }

  /** The tensor stored under `key`, if written before. */
  lookup(key: string): TensorProto | undefined {
    return this.written.get(key);
  }

  /**
   * Write a float32 tensor named `key` whose `elements` values `fill` produces in order, one
   * piece at a time (`emit` may be called any number of times; pieces are copied at once).
   * Returns its proto, which references the temporary file.
   */
  writeFloat32(key: string, dims: readonly number[], elements: number, fill: (emit: (piece: Float32Array) => void) => void): TensorProto {
    return this.writeTensor(key, dims, TensorProto_DataType.FLOAT, elements * 4, (emit) => fill((piece) => emit(new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength))));
  }

  /**
   * Write a tensor named `key` of ONNX type `dataType` whose `byteLength` little-endian bytes
   * `fill` produces in order, one piece at a time. Returns its proto (referencing the file).
   */
  writeTensor(key: string, dims: readonly number[], dataType: number, byteLength: number, fill: (emit: (bytes: Uint8Array) => void) => void): TensorProto {
    const fd = this.dataFd();
    const start = Math.ceil(this.size / ALIGN) * ALIGN;
    let at = start;
    fill((bytes) => {
      this.writeAll(fd, bytes, at);
      at += bytes.byteLength;
    });
    if (at - start !== byteLength) throw new Error(`external weights: '${key}' wrote ${at - start} bytes, expected ${byteLength}`);
    this.size = at;
    const proto = externalProto(key, { dims, dataType }, this.dataName, start, at - start);
    this.written.set(key, proto);
    setTempFolder(proto, this.dir);
    return proto;
  }

  /**
   * Write host tensor `h` (a numeric type of whole bytes per element) under `key`; its proto
   * is named `h.name`. Null for a type whose host layout is not its ONNX raw bytes (strings,
   * 4-bit types, a big-endian host): the caller embeds those.
   */
  writeHost(key: string, h: HostTensor): TensorProto | null {
    const data = h.data;
    if (!LITTLE_ENDIAN || h.dtype === "string" || h.dtype === "int4" || h.dtype === "uint4" || !ArrayBuffer.isView(data)) return null;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const p = this.writeTensor(key, h.dims, dtypeToOnnx(h.dtype), bytes.byteLength, (emit) => emit(bytes));
    p.name = h.name;
    return p;
  }

  /** Whether `t` references a file in this store's folder (written or linked by trt-debug). */
  private own(t: TensorProto): boolean {
    return tempFolder(t) === this.dir;
  }

  /**
   * Whether onnxruntime accepts `t`'s location from the model's folder: relative, no `..`
   * and no symlink out (trt-debug's own confinement rule, which --allow-external-data-outside
   * lifts for trt-debug but not for onnxruntime).
   */
  private confined(t: TensorProto): boolean {
    let ok = this.inside.get(t);
    if (ok === undefined && tempFolder(t) !== undefined) ok = false; // a temporary file of another folder: copied
    if (ok === undefined) {
      try {
        resolveExternalLocation(entry(t, "location") ?? "", this.model.baseDir, { label: this.model.path, tensor: t.name });
        ok = true;
      } catch {
        ok = false;
      }
      this.inside.set(t, ok);
    }
    return ok;
  }

  /** The model's external tensor `t` as seen from this store's folder: a hard link to its file, or a copy of its bytes. */
  private fromFolder(t: TensorProto): TensorProto {
    const copyKey = `${t.name}::copy`;
    const copied = this.written.get(copyKey);
    if (copied) return copied;
    const span = externalSpan(t, decodeOptions(this.model));
    const real = fs.realpathSync(span.file);
    let link = this.links.get(real);
    if (link === undefined && this.confined(t)) {
      const name = this.name(`-src${this.links.size}.data`);
      const file = path.join(this.dir, name);
      registerTemp(file);
      try {
        fs.linkSync(real, file);
        this.files.push(file);
        link = name;
      } catch {
        unregisterTemp(file);
        link = null;
      }
      this.links.set(real, link);
    }
    if (link) {
      const p = externalProto(t.name, t, link, span.offset, span.length);
      setTempFolder(p, this.dir);
      return p;
    }
    // No hard link possible: copy the bytes once.
    const fd = this.dataFd();
    const start = Math.ceil(this.size / ALIGN) * ALIGN;
    const src = fs.openSync(span.file, "r");
    try {
      const buf = new Uint8Array(Math.min(COPY_CHUNK, Math.max(1, span.length)));
      for (let done = 0; done < span.length; ) {
        const r = fs.readSync(src, buf, 0, Math.min(buf.byteLength, span.length - done), span.offset + done);
        if (r <= 0) throw new Error(`external weights: unexpected end of ${span.file}`);
        this.writeAll(fd, buf.subarray(0, r), start + done);
        done += r;
      }
    } finally {
      fs.closeSync(src);
    }
    this.size = start + span.length;
    const p = externalProto(t.name, t, this.dataName, start, span.length);
    this.written.set(copyKey, p);
    setTempFolder(p, this.dir);
    return p;
  }

  /**
   * How a segment with these initializers is handed to onnxruntime: unchanged with the
   * model's folder when it reads only the model's own (confined) external data, else with
   * this store's folder and the model's tensors linked or copied into it.
   */
  place(initializers: readonly TensorProto[]): PlacedInitializers {
    const external = initializers.filter((t) => t.dataLocation === TensorProto_DataLocation.EXTERNAL);
    const bytes = (t: TensorProto) => Number(entry(t, "length") ?? 0);
    let externalBytes = 0;
    for (const t of external) externalBytes += bytes(t);
    if (external.length === 0) return { initializers: [...initializers], externalBytes: 0 };
    if (external.every((t) => !this.own(t) && this.confined(t))) {
      return { initializers: [...initializers], folder: this.model.baseDir, externalBytes };
    }
    const out = initializers.map((t) => (t.dataLocation !== TensorProto_DataLocation.EXTERNAL || this.own(t) ? t : this.fromFolder(t)));
    return { initializers: out, folder: this.dir, externalBytes };
  }

  /** Close and remove the temporary files (the store can be used again afterwards). */
  release(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    for (const f of this.files) {
      fs.rmSync(f, { force: true });
      unregisterTemp(f);
    }
    this.files.length = 0;
    this.written.clear();
    this.links.clear();
    this.stem = null;
    this.dataName = "";
    this.size = 0;
  }
}

// ---------------------------------------------------------------------------------------
// Weights made at load: strongly typed weights lifted to fp32, constants folded.

/** The load-time store of each model (keyed by its ModelProto: LoadedModel objects are copied by spreading). */
const loadStores = new WeakMap<object, ExternalWeightStore>();
/** A model nobody releases (a library caller's prepared model) loses its file when it is collected, not only at exit. */
const unreleased = new FinalizationRegistry<ExternalWeightStore>((s) => s.release());

/**
 * The temporary data file of weights trt-debug makes while loading `model` (fp16/bf16
 * weights lifted to fp32, folded constants), created on first use. It lives as long as the
 * model: removed by releaseModelWeights, else (like every temporary file) on exit.
 */
export function modelWeightStore(model: LoadedModel): ExternalWeightStore {
  let s = loadStores.get(model.proto);
  if (!s) {
    s = new ExternalWeightStore({ path: model.path, baseDir: model.baseDir }); // not the model: the registry must not keep it alive
    loadStores.set(model.proto, s);
    unreleased.register(model.proto, s, s);
  }
  return s;
}

/** Remove the temporary data file of weights made at load (lifted or folded); the model's weights that live there cannot be read afterwards. */
export function releaseModelWeights(model: LoadedModel): void {
  const s = loadStores.get(model.proto);
  if (!s) return;
  s.release();
  unreleased.unregister(s);
  loadStores.delete(model.proto);
}

/** Elements widened at a time when a weight is lifted to float32 (16 MiB of float32 output). */
const LIFT_CHUNK_ELEMENTS = 4 * 2 ** 20;

/** Embedded fp16/bf16 initializers at least this large are lifted into the file too (smaller ones stay in the protobuf). */
const LIFT_EMBEDDED_MIN_BYTES = 4096;

/**
 * Lift the fp16/bf16 initializer `t` of `model` to float32 in place, streaming: its data
 * (external data, or raw_data of 4 KiB or more) is widened one piece at a time (exactly: every
 * fp16/bf16 value is a float32) into the model's load-time temporary file, and `t` then
 * references it there (its raw_data dropped). Returns false (nothing done) for a tensor that is
 * not fp16/bf16, or is embedded and small, or holds its values in int32_data.
 */
export function liftToFloat32File(model: LoadedModel, t: TensorProto): boolean {
  const half = t.dataType === TensorProto_DataType.FLOAT16;
  if (!half && t.dataType !== TensorProto_DataType.BFLOAT16) return false;
  const external = t.dataLocation === TensorProto_DataLocation.EXTERNAL;
  if (!external && t.rawData.byteLength < LIFT_EMBEDDED_MIN_BYTES) return false;
  const dims = t.dims.map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const out = new Float32Array(Math.min(LIFT_CHUNK_ELEMENTS, Math.max(1, n)));
  const widen = (bits: Uint16Array) => (half ? f16ToF32(bits, out.subarray(0, bits.length)) : bf16ToF32(bits, out.subarray(0, bits.length)));
  const store = modelWeightStore(model);
  const proto = store.writeFloat32(`${t.name}::lifted`, dims, n, (emit) => {
    if (external) {
      readExternalChunks(t, decodeOptions(model), LIFT_CHUNK_ELEMENTS, (piece) => emit(widen(piece as Uint16Array)));
      return;
    }
    const bits = tensorProtoToHost(t, decodeOptions(model)).data as Uint16Array; // checks raw_data against dims
    for (let at = 0; at < bits.length; at += LIFT_CHUNK_ELEMENTS) emit(widen(bits.subarray(at, at + LIFT_CHUNK_ELEMENTS)));
  });
  t.dataType = TensorProto_DataType.FLOAT;
  t.externalData = proto.externalData;
  t.dataLocation = TensorProto_DataLocation.EXTERNAL;
  clearField(t, TensorProtoSchema.field.rawData);
  setTempFolder(t, tempFolder(proto)!);
  return true;
}
