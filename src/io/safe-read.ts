/**
 * Reading user-supplied files defensively: every file is opened with O_NONBLOCK (a FIFO never
 * blocks the open), checked with fstat on the opened descriptor (no race with a rename), and
 * refused before any byte is read when it is not a regular file or is larger than any
 * plausible file of its kind. The limits are documented in docs/file-formats.md.
 */
import * as fs from "node:fs";
import { UserError } from "../core/errors.js";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** The kinds of files trt-debug reads, with a human name and the largest size accepted. */
export const FILE_LIMITS = {
  /** A protobuf message cannot exceed 2 GiB; larger weights must use external data. */
  onnx: { what: "ONNX model", max: 2 * GiB, fix: "pass an .onnx ModelProto file (weights over 2 GiB belong in external data)" },
  /** ONNX TensorProto .pb (backend test data): same protobuf limit. */
  tensorpb: { what: "TensorProto .pb file", max: 2 * GiB, fix: "pass a tensor .pb file such as input_0.pb" },
  /** Text or JSON calibration cache: one line per tensor; 64 MiB is ~1M tensors. */
  cache: { what: "calibration cache", max: 64 * MiB, fix: "pass the cache written by `trt-debug calib build` or TensorRT" },
  /** Precision plan JSON. */
  plan: { what: "precision plan", max: 64 * MiB, fix: "pass the plan written by `trt-debug bisect -o`" },
  /** Bisect checkpoint JSON. */
  checkpoint: { what: "bisect checkpoint", max: 256 * MiB, fix: "delete it and run without --resume" },
  /** A `--json` result rendered by `trt-debug report` (an HTML report holds it whole). */
  result: { what: "trt-debug JSON result", max: 256 * MiB, fix: "pass a file written by compare, bisect or calib check with --json FILE" },
  /** Arrow dumps are streamed batch by batch; only the file type is checked. */
  dump: { what: "Arrow dump", max: Number.MAX_SAFE_INTEGER, fix: "write it with `trt-debug run --save-outputs`" },
  /** External data side files: their size is checked against each initializer's offset/length. */
  external: { what: "external data file", max: Number.MAX_SAFE_INTEGER, fix: "keep the model's data file next to it" },
} as const;

export type FileKind = keyof typeof FILE_LIMITS;

function fmtBytes(n: number): string {
  return n >= GiB ? `${(n / GiB).toFixed(n % GiB ? 1 : 0)} GiB` : n >= MiB ? `${(n / MiB).toFixed(n % MiB ? 1 : 0)} MiB` : `${n} bytes`;
}

function an(what: string): string {
  return /^[aeiou]/i.test(what) ? `an ${what}` : `a ${what}`;
}

function describeType(st: fs.Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/** The UserError for a failed open/read of `file`. */
export function openFailure(file: string, kind: FileKind, e: unknown): UserError {
  if (e instanceof UserError) return e;
  const k = FILE_LIMITS[kind];
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code === "ENOENT" || code === "ENOTDIR") return new UserError(`${file}: no such file; ${k.fix}`);
  if (code === "EISDIR") return new UserError(`${file}: is a directory, not ${an(k.what)}; ${k.fix}`);
  if (code === "EACCES" || code === "EPERM") return new UserError(`${file}: permission denied reading the ${k.what}; make it readable`);
  return new UserError(`${file}: cannot read the ${k.what} (${code ?? String((e as Error)?.message ?? e)})`);
}

/** Check an fstat result: a regular file no larger than the kind's limit. Returns its size. */
export function checkStat(file: string, kind: FileKind, st: fs.Stats): number {
  const k = FILE_LIMITS[kind];
  if (!st.isFile()) throw new UserError(`${file}: is ${describeType(st)}, not ${an(k.what)}; ${k.fix}`);
  if (st.size > k.max) {
    throw new UserError(`${file}: ${fmtBytes(st.size)} is larger than any ${k.what} can be (limit ${fmtBytes(k.max)}); ${k.fix}`);
  }
  return st.size;
}

/** Open a regular file without blocking (FIFOs) and check it. The caller closes the fd. */
export function openChecked(file: string, kind: FileKind): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw openFailure(file, kind, e);
  }
  try {
    return { fd, size: checkStat(file, kind, fs.fstatSync(fd)) };
  } catch (e) {
    fs.closeSync(fd);
    throw openFailure(file, kind, e);
  }
}

/** Read a whole file of `kind` after the checks of openChecked. */
export function readFileChecked(file: string, kind: FileKind): Buffer {
  const { fd, size } = openChecked(file, kind);
  try {
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = fs.readSync(fd, buf, off, size - off, off);
      if (n <= 0) break;
      off += n;
    }
    return off === size ? buf : buf.subarray(0, off);
  } catch (e) {
    throw openFailure(file, kind, e);
  } finally {
    fs.closeSync(fd);
  }
}

/** readFileChecked as UTF-8 text. */
export function readTextChecked(file: string, kind: FileKind): string {
  return readFileChecked(file, kind).toString("utf8");
}

