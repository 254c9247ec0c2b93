/**
 * Output paths are checked before any work and written atomically (src/io/output-path.ts):
 * devices, symlinks, folders/files mixed up, unwritable folders and system paths are refused
 * with one line (exit 2) and never touched; `--json -` writes JSON to stdout.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { runModel } from "../src/workflows/run.js";
import { UserError } from "../src/core/errors.js";
import { tempPathFor, writeFileAtomicSync } from "../src/core/output-file.js";
import { BIN, GOLDEN, cli, expectUserError, tmpDir } from "./helpers.js";

const MODEL = path.join(GOLDEN, "underflow.onnx");
let dir: string;

beforeAll(() => {
  dir = tmpDir("trtdbg-outpaths-");
});

describe("output paths", () => {
  it("--json /dev/full: refused, the device left alone", async () => {
    const before = fs.statSync("/dev/full");
    expectUserError(await cli("compare", MODEL, "--fp16", "--json", "/dev/full"), "--json /dev/full");
    const after = fs.statSync("/dev/full");
    expect(after.isCharacterDevice()).toBe(true);
    expect(after.rdev).toBe(before.rdev);
    expectUserError(await cli("run", MODEL, "--json", "/proc/x/y"), "--json /proc/x/y", "/proc");
    const fifo = path.join(dir, "fifo");
    await execa("mkfifo", [fifo]);
    expectUserError(await cli("compare", MODEL, "--fp16", "--json", fifo), fifo, "a FIFO");
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
  });

  it("--json - prints parseable JSON to stdout, the human output to stderr", async () => {
    const r = await cli("compare", MODEL, "--fp16", "--json", "-");
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.format).toBe("trt-debug/compare@1");
    expect(j.first_failing_layer).toBe("scale_down2");
    expect(r.stderr).toContain("first failing layer: scale_down2");
    expect(r.stderr.trim().split("\n").pop()).toMatch(/^FAILED/);
  });

  it("a symlink output is refused and not replaced", async () => {
    const target = path.join(dir, "target.json");
    fs.writeFileSync(target, "keep");
    const link = path.join(dir, "link.json");
    fs.symlinkSync(target, link);
    expectUserError(await cli("run", MODEL, "--json", link), link, "symbolic link");
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(target, "utf8")).toBe("keep");
    // the writer refuses it too (library use)
    expect(() => writeFileAtomicSync(link, "x")).toThrow(UserError);
    expect(fs.readFileSync(target, "utf8")).toBe("keep");
  });

  it("run --save-outputs EXISTING_FILE and --json FOLDER: exit 2, one line", async () => {
    const file = path.join(dir, "a-file");
    fs.writeFileSync(file, "x");
    expectUserError(await cli("run", MODEL, "--save-outputs", file), "--save-outputs", "not a folder");
    expectUserError(await cli("compare", MODEL, "--fp16", "--json", dir), "--json", "is a folder");
    // missing folders are created, except for the calibration cache (its writer does not)
    expectUserError(await cli("calib", "build", MODEL, "-o", path.join(dir, "no", "such", "c.cache")), "does not exist");
    const nested = path.join(dir, "new", "deeper", "r.json");
    expect((await cli("inspect", MODEL, "-q", "--json", nested)).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(nested, "utf8")).format).toBe("trt-debug/inspect@1");
    expectUserError(await cli("run", MODEL, "--json", path.join(file, "r.json")), "a-file");
    expectUserError(await cli("bisect", MODEL, "--fp16", "-o", path.join(dir, "same.json"), "--json", path.join(dir, "same.json")), "same file");
  });

  it("an unwritable folder: exit 2, one line", async () => {
    const ro = path.join(dir, "ro");
    fs.mkdirSync(ro, { mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    const args = [BIN, "run", MODEL, "--json", path.join(ro, "r.json")];
    // root may write anywhere: run the CLI as nobody then
    const root = process.getuid?.() === 0;
    if (!root) fs.chmodSync(ro, 0o555);
    const r = await execa(root ? "setpriv" : "node", root ? ["--reuid=65534", "--regid=65534", "--clear-groups", "node", ...args] : args, { reject: false, env: { TRT_DEBUG_QUIET_NUMERIC: "1" } });
    expectUserError({ code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }, "not writable");
    expect(fs.readdirSync(ro)).toEqual([]);
  });

  it("checked before any work: the output error comes first, no progress reported", async () => {
    const file = path.join(dir, "plain");
    fs.writeFileSync(file, "x");
    expectUserError(await cli("run", path.join(dir, "missing.onnx"), "--save-outputs", file), "--save-outputs");
    expectUserError(await cli("calib", "build", path.join(dir, "missing.onnx"), "-o", "/sys/x.cache"), "--output /sys/x.cache");
    let progress = 0;
    await expect(runModel({ model: MODEL, precisions: ["fp32"], capture: { kind: "all" }, saveOutputs: file }, { progress: () => void progress++ })).rejects.toThrow(/saveOutputs .*not a folder/);
    expect(progress).toBe(0);
  });

  it("unique temporary names; a failed write leaves nothing under either name", () => {
    const f = path.join(dir, "x.json");
    const a = tempPathFor(f), b = tempPathFor(f);
    expect(a).not.toBe(b);
    expect(a.startsWith(`${f}.tmp-${process.pid}-`)).toBe(true);
    expect(() => writeFileAtomicSync(path.join(dir, "nope", "x.json"), "{}")).toThrow(/cannot write/);
    expect(fs.existsSync(path.join(dir, "nope"))).toBe(false);
    writeFileAtomicSync(f, "{}");
    expect(fs.readFileSync(f, "utf8")).toBe("{}");
    expect(fs.readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("calib check with an empty cache: exit 2, one line", async () => {
    const cache = path.join(dir, "empty.cache");
    fs.writeFileSync(cache, "TRT-8601-EntropyCalibration2\n");
    expectUserError(await cli("calib", "check", MODEL, "--calibration-cache", cache, "--calib-batches", "1"), cache, "no entries");
  });

  it("fixed-choice and numeric flags: one line naming the flag", async () => {
    expectUserError(await cli("bisect", MODEL, "--fp16", "--mode", "fast"), "--mode fast", "minimal|bisect|linear");
    expectUserError(await cli("compare", MODEL, "--fp16", "--segment-layers", "0"), "--segment-layers 0", "positive integer");
    expectUserError(await cli("bisect", MODEL, "--fp16", "--boundary-cache", "-1"), "--boundary-cache -1");
    expectUserError(await cli("compare", MODEL, "--fp16", "--max-rel-l2", "-0.5"), "--max-rel-l2");
    expectUserError(await cli("compare", MODEL, "--fp16", "--atol", "-1"), "--atol");
    expectUserError(await cli("compare", MODEL, "--fp16", "--show", "-2"), "--show -2");
    expectUserError(await cli("calib", "check", MODEL, "--calibration-cache", "x.cache", "--top", "-3"), "--top -3");
  });
});
