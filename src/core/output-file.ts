/**
 * The one place that checks output paths and writes files atomically (docs/file-formats.md,
 * "Output files").
 *
 * Checks (before any work, so a bad path costs nothing):
 * - a path under /proc, /sys or /dev is refused (except `-` / `/dev/stdout` where a command
 *   allows stdout: `--json`);
 * - an existing path that is a symbolic link, a device, a FIFO or a socket is refused and
 *   never replaced; a folder where a file is expected (and the reverse) is refused;
 * - the nearest existing folder above the path must be writable; the writer creates the
 *   missing folders below it (`createParents`, what the CLI's writers do), or, without
 *   `createParents`, the parent folder itself must exist (writers that do not create folders).
 *
 * Writes go to a unique temporary name in the same folder (`NAME.tmp-PID-RANDOM`: two runs
 * writing into one folder never share a temporary file) and are renamed over the final name
 * when complete, so the final name only ever holds a complete file — after a crash, Ctrl-C or
 * a full disk it holds the previous file or nothing.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { aboutOption, UserError } from "./errors.js";
import { registerTemp, unregisterTemp } from "./temp-files.js";

export type OutputKind = "file" | "dir";

/** `-` and /dev/stdout name standard output (only where a command accepts it, e.g. `--json`). */
export function isStdoutPath(p: string): boolean {
  return p === "-" || p === "/dev/stdout";
}

const SYSTEM_ROOTS = ["/proc", "/sys", "/dev"];

function kindOf(st: fs.Stats): string {
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isDirectory()) return "a folder";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  return "a regular file";
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ENOTDIR") throw Object.assign(new Error("notdir"), { code });
    throw e;
  }
}

/**
 * Checks that `p` can be written as a `kind` (file or folder) given by the option `option`
 * (the CLI passes a flag); throws a one-line UserError about that option otherwise. Nothing is
 * created.
 */
export function checkOutputPath(option: string, p: string, kind: OutputKind = "file", opts: { createParents?: boolean } = {}): void {
  try {
    checkPath(option, p, kind, opts);
  } catch (e) {
    throw aboutOption(e, option);
  }
}

function checkPath(name: string, p: string, kind: OutputKind, opts: { createParents?: boolean }): void {
  const where = `${name} ${p}`;
  if (p.trim() === "") throw new UserError(`${name}: give a path`);
  const abs = path.resolve(p);
  for (const root of SYSTEM_ROOTS) {
    if (abs === root || abs.startsWith(root + "/")) {
      throw new UserError(`${where}: is under ${root}, a system folder; refusing to write there — give a path to a regular ${kind === "dir" ? "folder" : "file"}`);
    }
  }
  let st: fs.Stats | null;
  try {
    st = lstatOrNull(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR") throw new UserError(`${where}: a part of the path is a file, not a folder`);
    throw new UserError(`${where}: cannot check the path (${code ?? String(e)})`);
  }
  if (st) {
    if (st.isSymbolicLink()) throw new UserError(`${where}: is a symbolic link; refusing to replace it — give the real path or remove the link`);
    if (kind === "file" && !st.isFile()) {
      throw new UserError(`${where}: is ${kindOf(st)}, not a regular file; refusing to replace it — give a file path`);
    }
    if (kind === "dir" && !st.isDirectory()) {
      throw new UserError(`${where}: is ${kindOf(st)}, not a folder — give a folder path (the files are written inside it)`);
    }
    const dir = kind === "dir" ? abs : path.dirname(abs);
    assertWritableDir(where, dir);
    return;
  }
  if (!opts.createParents) {
    // The parent folder must exist and be writable (a `dir` output itself is created).
    const parent = path.dirname(abs);
    let pst: fs.Stats;
    try {
      pst = fs.statSync(parent);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOTDIR") throw new UserError(`${where}: a part of the path is a file, not a folder`);
      if (code === "ENOENT") throw new UserError(`${where}: the folder ${parent} does not exist — create it first`);
      throw new UserError(`${where}: cannot check ${parent} (${code ?? String(e)})`);
    }
    if (!pst.isDirectory()) throw new UserError(`${where}: ${parent} is ${kindOf(pst)}, not a folder`);
    assertWritableDir(where, parent);
    return;
  }
  // The nearest existing ancestor must be a writable folder; the writer creates the folders below it.
  let anc = path.dirname(abs);
  for (;;) {
    let ast: fs.Stats | null;
    try {
      ast = fs.statSync(anc);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOTDIR") throw new UserError(`${where}: a part of the path is a file, not a folder`);
      if (code !== "ENOENT") throw new UserError(`${where}: cannot check ${anc} (${code ?? String(e)})`);
      ast = null;
    }
    if (ast) {
      if (!ast.isDirectory()) throw new UserError(`${where}: ${anc} is ${kindOf(ast)}, not a folder`);
      assertWritableDir(where, anc);
      return;
    }
    const up = path.dirname(anc);
    if (up === anc) throw new UserError(`${where}: no existing folder above it`);
    anc = up;
  }
}

function assertWritableDir(where: string, dir: string): void {
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    throw new UserError(`${where}: the folder ${dir} is not writable — choose another path or fix its permissions`);
  }
}

/** A unique temporary name next to `file` (pid + random, so concurrent writers never collide). */
export function tempPathFor(file: string): string {
  return `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString("hex")}`;
}

/** Refuses to replace anything but a regular file (checked again at write time). */
export function assertReplaceable(file: string): void {
  let st: fs.Stats | null = null;
  try {
    st = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!st.isFile()) throw new UserError(`${file}: is ${kindOf(st)}, not a regular file; refusing to replace it — give a file path`);
}

function writeError(file: string, e: unknown): UserError {
  if (e instanceof UserError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  return new UserError(`${file}: cannot write (${code ?? (e as Error).message ?? String(e)}); check that its folder exists and is writable and the disk is not full`);
}

export interface AtomicWriteOptions {
  /** fsync the file before the rename (default false). */
  fsync?: boolean;
  /** Create missing parent folders (default false: a missing folder is an error). */
  mkdir?: boolean;
}

/** Writes `data` to `file` atomically (unique temp name in the same folder, then rename). */
export function writeFileAtomicSync(file: string, data: string | Uint8Array | readonly Uint8Array[], opts: AtomicWriteOptions = {}): void {
  const tmp = tempPathFor(file);
  registerTemp(tmp);
  try {
    assertReplaceable(file);
    if (opts.mkdir) fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const fd = fs.openSync(tmp, "wx");
    try {
      const chunks = typeof data === "string" ? [Buffer.from(data, "utf8")] : data instanceof Uint8Array ? [data] : data;
      for (const c of chunks) {
        let off = 0;
        while (off < c.byteLength) off += fs.writeSync(fd, c, off, c.byteLength - off);
      }
      if (opts.fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw writeError(file, e);
  } finally {
    unregisterTemp(tmp);
  }
}

/** Async variant of writeFileAtomicSync. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempPathFor(file);
  // A signal removes it (./temp-files.ts), whatever phase the write is in.
  registerTemp(tmp);
  try {
    assertReplaceable(file);
    if (opts.mkdir) await fs.promises.mkdir(path.dirname(path.resolve(file)), { recursive: true });
    const fh = await fs.promises.open(tmp, "wx");
    try {
      await fh.writeFile(data);
      if (opts.fsync) await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw writeError(file, e);
  } finally {
    unregisterTemp(tmp);
  }
}
