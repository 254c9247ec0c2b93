import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { expect } from "vitest";
import { UserError } from "../src/core/errors.js";
import type { ModelProto } from "onnx-buf";
import { runCli } from "../src/cli/main.js";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";

export const ROOT = path.resolve(__dirname, "..");
export const GOLDEN = path.join(ROOT, "golden");
export const BIN = path.join(ROOT, "bin", "trt-debug.js");

export function tmpDir(prefix = "trtdbg-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI in-process with captured output. */
export async function cli(...argv: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s), isTTY: false });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

/** Run the built CLI as a real process (needs `npm run build`). */
export async function cliProcess(...argv: string[]): Promise<CliResult> {
  const r = await execa("node", [BIN, ...argv], { reject: false, env: { TRT_DEBUG_QUIET_NUMERIC: "1" } });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A user error: exit 2, exactly one line on stderr, no stack trace. */
export function expectUserError(r: CliResult, ...fragments: (string | RegExp)[]): void {
  if (r.code !== 2) throw new Error(`expected exit 2, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "" && !l.includes("warning:"));
  if (lines.length !== 1) throw new Error(`expected one error line, got:\n${r.stderr}`);
  if (/\n\s+at /.test(r.stderr)) throw new Error(`stack trace in user error:\n${r.stderr}`);
  for (const f of fragments) {
    const ok = typeof f === "string" ? lines[0]!.includes(f) : f.test(lines[0]!);
    if (!ok) throw new Error(`error line does not mention ${String(f)}: ${lines[0]}`);
  }
}

/** Runs `fn`, asserting it throws a one-line UserError, and returns it. */
export function userError(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).not.toContain("\n");
    return e as UserError;
  }
  throw new Error("expected a UserError");
}

/** Awaits `p`, asserting it rejects with a one-line UserError, and returns it. */
export async function userErrorAsync(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).not.toContain("\n");
    return e as UserError;
  }
  throw new Error("expected a UserError");
}

/** Generated models saved as files under one temporary folder, looked up by name. */
export class ModelFiles {
  dir = "";
  private readonly files = new Map<string, string>();
  open(prefix: string): void {
    this.dir = tmpDir(prefix);
  }
  save(name: string, m: ModelProto): string {
    const f = path.join(this.dir, `${name}.onnx`);
    saveModel(m, f);
    this.files.set(name, f);
    return f;
  }
  get(name: string): string {
    const f = this.files.get(name);
    if (!f) throw new Error(`no saved model '${name}'`);
    return f;
  }
  close(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A chain of `layers` 512x512 MatMul + Tanh on a 256x512 input, saved to `file`: slow enough (seconds) for a signal to land mid-run. */
export function saveSlowMatMulChain(file: string, layers: number): void {
  const b = new GraphBuilder("big");
  let t = b.input("x", "float32", [256, 512]);
  for (let i = 0; i < layers; i++) {
    const w = b.initializer(`w${i}`, "float32", [512, 512], Float32Array.from({ length: 512 * 512 }, (_, k) => (((k * 2654435761 + i) % 1000) / 1000 - 0.5) / 16));
    t = b.node("MatMul", [t, w], { name: `mm${i}` });
    t = b.node("Tanh", [t], { name: `act${i}` });
  }
  b.output(t, "float32");
  saveModel(b.model(), file);
}

/** Wait until `out` holds a temporary dump file (the process is writing), then send SIGINT and return how the process ended. */
export async function interruptWhileWriting(p: ReturnType<typeof execa>, out: string): Promise<{ exitCode?: number }> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !(fs.existsSync(out) && fs.readdirSync(out).some((f) => f.includes(".tmp")))) await new Promise((r) => setTimeout(r, 20));
  expect(fs.readdirSync(out).some((f) => f.includes(".tmp"))).toBe(true);
  await new Promise((r) => setTimeout(r, 200));
  p.kill("SIGINT");
  return await p;
}
