/**
 * trt-debug command line: parse, call the library, print, exit.
 * Exit codes: 0 success, 1 accuracy failure (NaN/Inf, failed comparison), 2 user error.
 */
import * as fs from "node:fs";
import yargs, { type Argv } from "yargs";
import { UserError } from "../core/errors.js";
import type { Precision } from "../core/host-tensor.js";
import { runModel } from "../workflows/run.js";
import { validateDump, validateModel } from "../workflows/validate.js";
import { compareDumps, compareModel } from "../workflows/compare.js";
import { compareGraphs } from "../workflows/compare-graphs.js";
import { isArrowFile } from "../data/inputs.js";
import { inspectModel } from "../workflows/inspect.js";
import { abortOpenDumpsSync } from "../io/dump.js";
import { isStdoutPath, writeFileAtomicSync } from "../core/output-file.js";
import { checkCommandOutputs } from "./output-checks.js";
import { checkNumericFlags, choicesMessage } from "./flag-checks.js";
import { jsonReplacer, numText } from "../core/number-text.js";
import { flagMessage, metricCriterion, metricOptions, compareArgs, compareOptions, FUSION_OPTION, inputOptions, int8Options, modelArgs, outputOptions, precisionOptions, runPrecisions, selectedPrecisions } from "./options.js";
import { int8ReportLines } from "../calibration/int8-run.js";
import { table, trunc, type ShowSpec } from "../report/table.js";
import { compareExitCode, compareLines, parseShow, SHOW_CHOICES } from "./compare-output.js";
import type { CompareSummary, LayerComparison } from "../compare/compare.js";
import { numericBackend } from "../numeric/index.js";
import { signalAddon } from "../numeric/native.js";
import { describeLayerModel, parseFusionMode } from "../onnx/layer-model.js";
import { Progress } from "./progress.js";
import { installSignalExit } from "../core/temp-files.js";
import { registerBisect } from "./bisect-command.js";
import { registerCalib } from "./calib-command.js";
import { registerConvert } from "./convert-command.js";
import { typedFilePrecision } from "../precision/typed.js";
import { Cli, defaultIo, markStdoutClosed, writeFileAtomic, writeJson, type Io } from "./shell.js";

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
          // A strongly typed model runs as typed; its label is its reduced type (docs/precision.md).
          precisions: precisions.length ? precisions : [typedFilePrecision(a.model as string, { allowExternalDataOutside: Boolean(a["allow-external-data-outside"]) }) ?? "fp32"],
          capture: a["mark-all"] ? { kind: "all" } : a.mark?.length ? { kind: "marked", patterns: a.mark.map(String) } : { kind: "outputs" },
          saveOutputs: a["save-outputs"],
        },
        h,
      ).finally(() => h.done());
      for (const r of res.runs) {
        if (r.int8) for (const l of int8ReportLines(r.int8)) cli.io.out(l);
        const tag = r.iteration === undefined ? r.precision : `${r.precision} (iteration ${r.iteration})`;
        cli.io.out(`${tag}: ${r.tensors} tensors captured${r.dump ? `, written to ${r.dump}` : ""}`);
        if (!a.quiet) {
          cli.io.out(
            table(
              ["output", "dtype", "shape", "min", "max", "mean", "NaN", "Inf"],
              r.outputs.map((o) => [o.tensor, o.dtype, `[${o.shape.join(",")}]`, numText(o.min), numText(o.max), numText(o.mean), String(o.nan_count), String(o.inf_count)]),
              ["l", "l", "l", "r", "r", "r", "r", "r"],
            ),
          );
        }
        if (a.validate) {
          if (r.nonfinite.length) {
            cli.io.out(`${tag}: NaN/Inf in ${r.nonfinite.length} tensors; first at layer ${r.first_failing_layer}`);
            if (!a.quiet) cli.io.out(table(["#", "layer", "op", "tensor", "NaN", "Inf"], r.nonfinite.slice(0, 20).map((n) => [String(n.order), n.layer, n.op_type, n.tensor, String(n.nan_count), String(n.inf_count)]), ["r", "l", "l", "l", "r", "r"]));
          } else cli.io.out(`${tag}: no NaN/Inf in the captured tensors`);
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
      const res = await (isDump ? validateDump(src, h) : validateModel({ ...modelArgs(src, a), precision: ps[0] ?? typedFilePrecision(src, { allowExternalDataOutside: Boolean(a["allow-external-data-outside"]) }) ?? "fp32" }, h)).finally(() => h.done());
      if ("int8" in res && res.int8) for (const l of int8ReportLines(res.int8)) cli.io.out(l);
      if (!a.quiet && res.nonfinite.length) {
        const several = res.nonfinite.some((n) => n.iteration !== undefined);
        const head = several ? ["iteration", "#", "layer", "op", "tensor", "NaN", "Inf"] : ["#", "layer", "op", "tensor", "NaN", "Inf"];
        const align = several ? (["r", "r", "l", "l", "l", "r", "r"] as const) : (["r", "l", "l", "l", "r", "r"] as const);
        cli.io.out(table(head, res.nonfinite.slice(0, 50).map((n) => [...(several ? [String(n.iteration ?? "")] : []), String(n.order), n.layer, n.op_type, n.tensor, String(n.nan_count), String(n.inf_count)]), [...align]));
        if (res.nonfinite.length > 50) cli.io.out(`(${res.nonfinite.length - 50} more in --json)`);
      }
      const sets = "iterations" in res && res.iterations ? ` over ${res.iterations} input sets` : "";
      cli.io.out(
        res.passed
          ? `PASSED: no NaN/Inf in ${res.tensors_checked} tensors (${res.precision || "dump"})${sets}`
          : `FAILED: NaN/Inf in ${res.nonfinite.length} of ${res.tensors_checked} tensors${sets}; first failing layer: ${res.first_failing_layer}${"first_failing_iteration" in res && res.first_failing_iteration != null ? ` (iteration ${res.first_failing_iteration})` : ""}`,
      );
      writeJson(a.json, res);
      if (!res.passed) cli.exitCode = 1;
    },
  );

  y.command(
    "compare <a> [b]",
    "Layer-by-layer comparison: MODEL --fp16|--bf16 (FP32 reference vs candidate), A.arrow B.arrow, or REFERENCE.onnx CANDIDATE.onnx",
    (b) =>
      metricOptions(outputOptions(compareOptions(inputOptions(int8Options(precisionOptions(b.positional("a", { type: "string", describe: "ONNX model, or the reference dump" }).positional("b", { type: "string", describe: "candidate dump (when A is a dump) or candidate model (when A is a model)" })))))), "Comparison:")
        .option("save-outputs", { type: "string", describe: "Also write both runs' dumps to this directory" })
        .option("allow-different-inputs", { type: "boolean", describe: "Compare two dumps even when their inputs fingerprints differ" })
        .option("show", { type: "string", describe: `Which rows the table lists: ${SHOW_CHOICES} (default context: failing rows and 3 rows either side of the first failing one; N: the N worst rows)` }),
    async (a) => {
      const show = parseShow(a.show, Boolean(a.quiet));
      const o = compareArgs(a);
      const metric = metricCriterion(a, o);
      if (metric) o.metric = metric;
      const h = cli.hooks(a);
      const rows: LayerComparison[] = [];
      const onLayer = (l: LayerComparison) => void rows.push(l);
      let s: CompareSummary;
      if (a.b && !isArrowFile(a.a as string) && !isArrowFile(a.b as string)) {
        // Two ONNX models: REFERENCE (fp32) and CANDIDATE as it is (workflows/compare-graphs.ts).
        if (selectedPrecisions(a).length) throw new UserError(`compare ${a.a} ${a.b}: precision flags apply to one model; the candidate model carries its own precisions`);
        s = await compareGraphs({ ...modelArgs(a.a as string, a), reference: a.a as string, candidate: a.b as string, compare: o, keepRows: Boolean(a.json) }, { ...h, onLayer }).finally(() => h.done());
      } else if (a.b) {
        if (selectedPrecisions(a).length) throw new UserError(`compare: precision flags apply to a model, not to two dumps`);
        s = await compareDumps(a.a as string, a.b as string, o, { ...h, onLayer }, Boolean(a.json), { allowDifferentInputs: Boolean(a["allow-different-inputs"]) }).finally(() => h.done());
      } else {
        const ps = runPrecisions(a).filter((p) => p !== "fp32");
        // A strongly typed model is its own candidate (docs/precision.md "Strongly typed models").
        if (ps.length === 0) {
          const typed = typedFilePrecision(a.a as string, { allowExternalDataOutside: Boolean(a["allow-external-data-outside"]) });
          if (typed) ps.push(typed);
        }
        if (ps.length !== 1) throw new UserError(`compare ${a.a}: give the candidate precision, one of --fp16, --bf16 or --int8 (the reference is fp32)`);
        s = await compareModel({ ...modelArgs(a.a as string, a), candidate: ps[0] as Precision, compare: o, saveOutputs: a["save-outputs"], keepRows: Boolean(a.json) }, { ...h, onLayer }).finally(() => h.done());
      }
      if ("int8" in s && s.int8) for (const l of int8ReportLines(s.int8 as Parameters<typeof int8ReportLines>[0])) cli.io.out(l);
      cli.printCompare(s, Boolean(a.quiet), show, rows);
      writeJson(a.json, s);
      cli.exitCode = compareExitCode(s);
    },
  );

  y.command(
    "inspect <model>",
    "List the layers (names as trt-debug and TensorRT use them), op types and tensors",
    (b) => outputOptions(b.positional("model", { type: "string" })).option("fusion", FUSION_OPTION),
    async (a) => {
      const r = await inspectModel({ model: a.model as string, fusion: a.fusion === undefined ? undefined : parseFusionMode(a.fusion), allowExternalDataOutside: Boolean(a["allow-external-data-outside"]) });
      if (!a.quiet) {
        cli.io.out(`${r.model}: IR ${r.ir_version}, opset ${r.opset}, ${r.layers.length} layers`);
        for (const i of r.inputs) cli.io.out(`input  ${i.name}: ${i.dtype} [${i.dims.map((d) => d ?? "?").join(",")}]`);
        for (const o of r.outputs) cli.io.out(`output ${o.name}: ${o.dtype}`);
        cli.io.out(table(["#", "layer", "op", "inputs", "outputs"], r.layers.map((l) => [String(l.index), l.name, l.op_type, trunc(l.inputs.join(", "), 50), l.outputs.map((o) => `${o.name}:${o.dtype}`).join(", ")]), ["r"]));
        for (const line of describeLayerModel(r.layer_model ?? undefined)) cli.io.out(line);
      }
      // The JSON keeps its documented fields (outputs are in the table only).
      const { outputs: _outputs, ...json } = r;
      writeJson(a.json, json);
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

  // Commands are registered here, by the entry point; a command module never imports this file.
  registerBisect(y, cli);
  registerCalib(y, cli);
  registerConvert(y, cli);
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
