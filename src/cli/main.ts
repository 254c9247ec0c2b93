/**
 * trt-debug command line: parse, call the library, print, exit.
 * Exit codes: 0 success, 1 accuracy failure (NaN/Inf, failed comparison), 2 user error.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import yargs, { type Argv } from "yargs";
import { UserError } from "../errors.js";
import type { Precision } from "../types.js";
import { compareDumps, compareModel, runModel, validateDump, validateModel, type Hooks } from "../api.js";
import { abortOpenDumpsSync } from "../io/dump.js";
import { compareArgs, compareOptions, inputOptions, int8Options, modelArgs, outputOptions, precisionOptions, runPrecisions, selectedPrecisions } from "./options.js";
import { int8ReportLines } from "../precision/int8-run.js";
import { COMPARE_ALIGN, COMPARE_HEADER, compareRow, table, trunc } from "../report/table.js";
import { fmt } from "../compare/tolerance.js";
import type { CompareSummary, LayerComparison } from "../compare/compare.js";
import { numericBackend } from "../numeric/index.js";
import { prepareModelFile } from "../runtime/run.js";
import { Progress } from "./progress.js";
import { installSignalExit, registerTemp, unregisterTemp } from "../runtime/cleanup.js";
import { registerExtraCommands } from "./extra.js";

export const VERSION = "0.1.0";

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  isTTY: boolean;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(s + "\n"),
  err: (s) => process.stderr.write(s + "\n"),
  isTTY: Boolean(process.stderr.isTTY),
};

/** Write `text` to `file` atomically (temp name, then rename). */
export function writeFileAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  registerTemp(tmp);
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
    unregisterTemp(tmp);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    unregisterTemp(tmp);
    throw new UserError(`${file}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

export function writeJson(file: string | undefined, obj: unknown): void {
  if (file) writeFileAtomic(file, JSON.stringify(obj, (_k, v) => (typeof v === "bigint" ? Number(v) : v), 2) + "\n");
}

export class Cli {
  exitCode = 0;
  constructor(readonly io: Io = defaultIo) {}

  hooks(a: Record<string, unknown>): Hooks & { done(): void } {
    const p = new Progress(this.io, !a.quiet && this.io.isTTY);
    return {
      warn: (m) => this.io.err(`trt-debug: warning: ${m}`),
      progress: (phase, done, total) => p.update(phase, done, total),
      done: () => p.clear(),
    };
  }

  printCompare(s: CompareSummary, quiet: boolean, streamed: boolean, rows: LayerComparison[]): void {
    const o = this.io.out;
    if (!quiet && !streamed && rows.length) o(table(COMPARE_HEADER, rows.map(compareRow), COMPARE_ALIGN));
    if (!quiet) o("");
    const outs = rows.filter((r) => r.isGraphOutput);
    for (const r of outs) {
      const m = r.metrics;
      o(`output ${r.tensor}: ${r.verdict.passed ? "PASS" : "FAIL"} (${r.verdict.reason}); max abs ${fmt(m.maxAbs)}, max rel ${fmt(m.maxRel)}, cosine ${m.cosine.toFixed(6)}, SQNR ${Number.isFinite(m.sqnrDb) ? m.sqnrDb.toFixed(1) : "inf"} dB`);
      o(`  minimum tolerance that would have passed: abs ${fmt(r.verdict.minTolerance.abs)} OR rel ${fmt(r.verdict.minTolerance.rel)} (${r.verdict.minTolerance.stat === "rel-l2" ? "max" : r.verdict.minTolerance.stat}); rel L2 ${fmt(r.verdict.minTolerance.relL2)}`);
    }
    const first = rows.find((r) => !r.verdict.passed);
    if (s.first_failing_layer) {
      o(`first failing layer: ${s.first_failing_layer} (${first?.opType ?? "?"}, tensor ${s.first_failing_tensor}): ${first?.verdict.reason ?? ""}${first?.evidence.length ? "; " + first.evidence.join("; ") : ""}`);
    } else o("first failing layer: none");
    o(s.passed ? "PASSED" : "FAILED: the graph outputs differ beyond tolerance");
    if (!quiet) for (const n of s.notes) o(`note: ${n}`);
  }
}

function fail(msg: string | undefined, err: Error | undefined): never {
  if (err && !(err instanceof UserError) && !(err as { name?: string }).name?.startsWith("YError")) throw err;
  throw new UserError(msg ? msg.split("\n")[0]! : err?.message ?? "invalid arguments; see trt-debug --help");
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
    .exitProcess(false);

  y.command(
    "run <model>",
    "Run a model in FP32/FP16/BF16 and dump every layer's outputs to Arrow",
    (b) =>
      outputOptions(inputOptions(int8Options(precisionOptions(b.positional("model", { type: "string", describe: "ONNX model" })))))
        .option("mark-all", { type: "boolean", describe: "Capture every layer's outputs (streamed; memory stays bounded)" })
        .option("mark", { type: "string", array: true, describe: "Capture these layers/tensors (names or globs)" })
        .option("save-outputs", { type: "string", describe: "Directory for the Arrow dumps (<precision>.arrow)" })
        .option("validate", { type: "boolean", describe: "Fail (exit 1) when any captured tensor has NaN/Inf" })
        .conflicts("mark-all", "mark"),
    async (a) => {
      const precisions = runPrecisions(a);
      const h = cli.hooks(a);
      const res = await runModel(
        {
          ...modelArgs(a.model as string, a),
          precisions: precisions.length ? precisions : ["fp32"],
          capture: a["mark-all"] ? { kind: "all" } : a.mark?.length ? { kind: "marked", patterns: a.mark.map(String) } : { kind: "outputs" },
          saveOutputs: a["save-outputs"],
        },
        h,
      ).finally(() => h.done());
      for (const r of res.runs) {
        if (r.int8) for (const l of int8ReportLines(r.int8)) cli.io.out(l);
        cli.io.out(`${r.precision}: ${r.tensors} tensors captured${r.dump ? `, written to ${r.dump}` : ""}`);
        if (!a.quiet) {
          cli.io.out(
            table(
              ["output", "dtype", "shape", "min", "max", "mean", "NaN", "Inf"],
              r.outputs.map((o) => [o.tensor, o.dtype, `[${o.shape.join(",")}]`, String(o.min ?? "-"), String(o.max ?? "-"), String(o.mean ?? "-"), String(o.nan_count), String(o.inf_count)]),
              ["l", "l", "l", "r", "r", "r", "r", "r"],
            ),
          );
        }
        if (a.validate) {
          if (r.nonfinite.length) {
            cli.io.out(`${r.precision}: NaN/Inf in ${r.nonfinite.length} tensors; first at layer ${r.first_failing_layer}`);
            for (const n of r.nonfinite.slice(0, a.quiet ? 0 : 20)) cli.io.out(`  #${n.order} ${n.layer} (${n.op_type}) ${n.tensor}: ${n.nan_count} NaN, ${n.inf_count} Inf`);
          } else cli.io.out(`${r.precision}: no NaN/Inf in the captured tensors`);
        }
      }
      writeJson(a.json, res);
      if (a.validate && !res.passed) cli.exitCode = 1;
    },
  );

  y.command(
    "validate <source>",
    "Check every layer's outputs for NaN/Inf (a model, run in the given precision, or an Arrow dump)",
    (b) => outputOptions(inputOptions(int8Options(precisionOptions(b.positional("source", { type: "string", describe: "ONNX model or Arrow dump" }))))),
    async (a) => {
      const h = cli.hooks(a);
      const src = a.source as string;
      const isDump = src.endsWith(".arrow") || src.endsWith(".feather");
      const ps = runPrecisions(a);
      if (isDump && ps.length) throw new UserError(`--${ps[0]}: a dump was already run in its precision; pass a model to run it in ${ps[0]}`);
      if (ps.length > 1) throw new UserError(`validate: give one of --fp32/--fp16/--bf16/--int8 (got ${ps.map((p) => "--" + p).join(" ")})`);
      const res = await (isDump ? validateDump(src, h) : validateModel({ ...modelArgs(src, a), precision: ps[0] ?? "fp32" }, h)).finally(() => h.done());
      if ("int8" in res && res.int8) for (const l of int8ReportLines(res.int8)) cli.io.out(l);
      if (!a.quiet) for (const n of res.nonfinite.slice(0, 50)) cli.io.out(`#${n.order} ${n.layer} (${n.op_type}) ${n.tensor}: ${n.nan_count} NaN, ${n.inf_count} Inf`);
      cli.io.out(
        res.passed
          ? `PASSED: no NaN/Inf in ${res.tensors_checked} tensors (${res.precision || "dump"})`
          : `FAILED: NaN/Inf in ${res.nonfinite.length} of ${res.tensors_checked} tensors; first failing layer: ${res.first_failing_layer}`,
      );
      writeJson(a.json, res);
      if (!res.passed) cli.exitCode = 1;
    },
  );

  y.command(
    "compare <a> [b]",
    "Layer-by-layer comparison: MODEL --fp16|--bf16 (FP32 reference vs candidate) or A.arrow B.arrow",
    (b) =>
      outputOptions(compareOptions(inputOptions(int8Options(precisionOptions(b.positional("a", { type: "string", describe: "ONNX model, or the reference dump" }).positional("b", { type: "string", describe: "candidate dump (when A is a dump)" }))))))
        .option("save-outputs", { type: "string", describe: "Also write both runs' dumps to this directory" })
        .option("show", { type: "string", choices: ["all", "failing", "none"], default: "all", describe: "Which layers the table lists" }),
    async (a) => {
      const h = cli.hooks(a);
      const o = compareArgs(a);
      const rows: LayerComparison[] = [];
      const show = a.quiet ? "none" : (a.show as string);
      let headerShown = false;
      const onLayer = (l: LayerComparison) => {
        rows.push(l);
        if (show === "none" || (show === "failing" && l.verdict.passed)) return;
        if (!headerShown) {
          h.done();
          cli.io.out(table(COMPARE_HEADER, [], COMPARE_ALIGN).split("\n").slice(0, 2).join("\n"));
          headerShown = true;
        }
        h.done();
        cli.io.out(compareRow(l).join("  "));
      };
      let s: CompareSummary;
      if (a.b) {
        if (selectedPrecisions(a).length) throw new UserError(`compare: precision flags apply to a model, not to two dumps`);
        s = await compareDumps(a.a as string, a.b as string, o, { ...h, onLayer }, Boolean(a.json)).finally(() => h.done());
      } else {
        const ps = runPrecisions(a).filter((p) => p !== "fp32");
        if (ps.length !== 1) throw new UserError(`compare ${a.a}: give the candidate precision, one of --fp16, --bf16 or --int8 (the reference is fp32)`);
        s = await compareModel({ ...modelArgs(a.a as string, a), candidate: ps[0] as Precision, compare: o, saveOutputs: a["save-outputs"], keepRows: Boolean(a.json) }, { ...h, onLayer }).finally(() => h.done());
      }
      if ("int8" in s && s.int8) for (const l of int8ReportLines(s.int8 as Parameters<typeof int8ReportLines>[0])) cli.io.out(l);
      cli.printCompare(s, Boolean(a.quiet), true, rows);
      writeJson(a.json, s);
      if (!s.passed) cli.exitCode = 1;
    },
  );

  y.command(
    "inspect <model>",
    "List the layers (names as trt-debug and TensorRT use them), op types and tensors",
    (b) => outputOptions(b.positional("model", { type: "string" })),
    async (a) => {
      const p = await prepareModelFile(a.model as string, { allowExternalDataOutside: Boolean(a["allow-external-data-outside"]) });
      const ty = (t: string) => p.types.get(t)?.dtype ?? "?";
      const layers = p.model.graph.layers.map((l) => ({ index: l.index, name: l.name, op_type: l.opType, inputs: l.inputs, outputs: l.outputs.map((o) => ({ name: o, dtype: ty(o) })) }));
      if (!a.quiet) {
        cli.io.out(`${p.model.path}: IR ${p.model.irVersion}, opset ${p.model.opset}, ${layers.length} layers`);
        for (const i of p.inputs) cli.io.out(`input  ${i.name}: ${i.dtype} [${i.dims.map((d) => d ?? "?").join(",")}]`);
        for (const o of p.model.graph.outputs) cli.io.out(`output ${o.name}: ${ty(o.name)}`);
        cli.io.out(table(["#", "layer", "op", "inputs", "outputs"], layers.map((l) => [String(l.index), l.name, l.op_type, trunc(l.inputs.join(", "), 50), l.outputs.map((o) => `${o.name}:${o.dtype}`).join(", ")]), ["r"]));
      }
      writeJson(a.json, { format: "trt-debug/inspect@1", model: p.model.path, ir_version: p.model.irVersion, opset: p.model.opset, inputs: p.inputs, layers });
    },
  );

  y.command(
    "doctor",
    "Show which numeric backend (native addon or TypeScript fallback) and onnxruntime are in use",
    (b) => b,
    async () => {
      for (const l of await versionLines()) cli.io.out(l);
    },
  );

  registerExtraCommands(y, cli);
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

/** Entry point; returns the exit code (the bin script exits with it). */
export async function runCli(argv: string[], io: Io = defaultIo): Promise<number> {
  const cli = new Cli(io);
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
    for (const l of await versionLines()) io.out(l);
    return 0;
  }
  try {
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
      io.err(`trt-debug: error: ${e.message}`);
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
  // SIGINT/SIGTERM end the process at once in every phase, removing temp files (cleanup.ts).
  installSignalExit(() => abortOpenDumpsSync());
  try {
    const code = await runCli(argv);
    process.exitCode = code;
  } catch (e) {
    abortOpenDumpsSync();
    process.stderr.write(`trt-debug: internal error (please report): ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 3;
  }
}
