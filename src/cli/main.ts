/**
 * trt-debug command line: parse, call the library, print, exit.
 * Exit codes: 0 success, 1 accuracy failure (NaN/Inf, failed comparison), 2 user error.
 */
import yargs, { type Argv } from "yargs";
import * as fs from "node:fs";
import { UserError } from "../core/errors.js";
import { abortOpenDumpsSync } from "../io/dump.js";
import { choicesMessage } from "./flag-checks.js";
import { flagMessage } from "./options.js";
import { numericBackend } from "../numeric/index.js";
import { signalAddon } from "../numeric/native.js";
import { installSignalExit } from "../core/temp-files.js";
import { registerModelCommands } from "./model-commands.js";
import { registerBisect } from "./bisect-command.js";
import { registerCalib } from "./calib-command.js";
import { registerConvert } from "./convert-command.js";
import { registerReport } from "./report-command.js";
import { Cli, defaultIo, markStdoutClosed, writeFileAtomic, writeJson, type Io } from "./shell.js";
import { translatePolygraphySpellings } from "./polygraphy-spellings.js";
import { skipHelpCache } from "./startup.js";

export { Cli, writeFileAtomic, writeJson, type Io };

export const VERSION = "0.1.0";

function fail(msg: string | undefined, err: Error | undefined): never {
  if (err && !(err instanceof UserError) && !(err as { name?: string }).name?.startsWith("YError")) throw err;
  if (err instanceof UserError && err.option !== undefined) throw err; // keeps its option (flagMessage)
  const text = msg ?? err?.message;
  throw new UserError(text ? choicesMessage(text) ?? text.split("\n")[0]! : "invalid arguments; see trt-debug --help");
}

export function buildParser(cli: Cli, argv: string[]): Argv {
  const y = yargs(argv)
    .scriptName("trt-debug")
    .usage("$0 <command> [options]\n\nPrecision debugging for ONNX models deployed with reduced precision (TensorRT FP16/BF16/INT8).")
    .version(false)
    .option("version", { type: "boolean", describe: "Print the version, the numeric backend and onnxruntime's version" })
    .option("allow-external-data-outside", { type: "boolean", describe: "Let a model's external data files lie outside its folder (absolute paths, '..', symlinks out); off by default, see docs/security.md" })
    .strict()
    .recommendCommands()
    .help()
    .wrap(Math.min(120, process.stdout.columns || 100))
    .fail(fail)
    .exitProcess(false)
    .middleware((a) => cli.checkOutputsMiddleware(a));
  skipHelpCache(y);

  y.command(
    "doctor",
    "Show which numeric backend (native addon or TypeScript fallback) and onnxruntime are in use",
    (b) => b,
    async () => {
      for (const l of await versionLines()) cli.io.out(l);
    },
  );

  // Commands are registered here, by the entry point; a command module never imports this file.
  registerModelCommands(y, cli);
  registerBisect(y, cli);
  registerCalib(y, cli);
  registerConvert(y, cli);
  registerReport(y, cli);
  return y.demandCommand(1, "give a command; see trt-debug --help");
}

export async function versionLines(): Promise<string[]> {
  const nb = numericBackend();
  const ortPkg = JSON.parse(fs.readFileSync(new URL("../../node_modules/onnxruntime-node/package.json", import.meta.url), "utf8")) as { version: string };
  return [
    `trt-debug ${VERSION}`,
    `numeric backend: ${nb.backend}${nb.backend === "native" ? ` (simd ${nb.simd}, ${nb.threads} threads)` : ` (${nb.reason ?? "TRT_DEBUG_NO_NATIVE=1"})`}`,
    `onnxruntime-node ${ortPkg.version} (CPU execution provider)`,
    `node ${process.version}`,
  ];
}

/** yargs reads a lone `-` as a positional: `--json -` becomes `--json=-`. */
function joinStdoutDash(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--json" && argv[i + 1] === "-") out.push(`--json=${argv[++i]}`);
    else out.push(argv[i]!);
  }
  return out;
}

/** Entry point; returns the exit code (the bin script exits with it). */
export async function runCli(argv: string[], io: Io = defaultIo): Promise<number> {
  const cli = new Cli(io);
  argv = joinStdoutDash(argv);
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
    for (const l of await versionLines()) io.out(l);
    return 0;
  }
  try {
    argv = translatePolygraphySpellings(argv);
    let helpShown = false;
    const parser = buildParser(cli, argv);
    parser.showHelpOnFail(false);
    await parser.parseAsync(argv, {}, (err, _argv, output) => {
      if (output && !err) {
        io.out(output);
        helpShown = true;
      }
      if (err) throw err;
    });
    if (helpShown) return 0;
    return cli.exitCode;
  } catch (e) {
    if (e instanceof UserError) {
      io.err(`trt-debug: error: ${flagMessage(e)}`);
      return 2;
    }
    const yargsErr = (e as { name?: string }).name === "YError";
    if (yargsErr) {
      io.err(`trt-debug: error: ${(e as Error).message.split("\n")[0]}`);
      return 2;
    }
    throw e;
  }
}

export async function main(argv: string[]): Promise<void> {
  // `trt-debug ... | head`: the reader went away. Drop further output quietly (no stack trace);
  // the command finishes and its exit code is still the verdict.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") markStdoutClosed();
    else throw e;
  });
  // SIGINT/SIGTERM end the process at once in every phase, removing temp files (core/temp-files.ts).
  installSignalExit(() => abortOpenDumpsSync(), signalAddon);
  try {
    const code = await runCli(argv);
    process.exitCode = code;
  } catch (e) {
    abortOpenDumpsSync();
    process.stderr.write(`trt-debug: internal error (please report): ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 3;
  }
}
