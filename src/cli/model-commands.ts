/**
 * The commands that run one model (or compare dumps): run, validate, compare, inspect. Each
 * parses its flags (groups from ./options.ts), calls the workflow, prints, sets the exit code.
 * Registered by ./main.ts; this module never imports it.
 */
import type { Argv } from "yargs";
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../core/errors.js";
import type { Precision } from "../core/host-tensor.js";
import { runModel } from "../workflows/run.js";
import { validateDump, validateModel } from "../workflows/validate.js";
import { compareDumps, compareModel } from "../workflows/compare.js";
import { compareGraphs } from "../workflows/compare-graphs.js";
import { isArrowFile } from "../data/inputs.js";
import { typedFilePrecision } from "../precision/typed.js";
import { planDefault } from "./plan-default.js";
import { inspectModel } from "../workflows/inspect.js";
import { fmt } from "../compare/tolerance.js";
import { compareTensorFiles, tensorFileKind } from "../workflows/compare-files.js";
import { runToRunResults } from "../workflows/run-polygraphy.js";
import { compareExternal } from "../workflows/compare-external.js";
import { metricCriterion, metricOptions, compareArgs, compareOptions, FUSION_OPTION, inputOptions, int8Options, modelArgs, outputOptions, precisionOptions, runPrecisions, selectedPrecisions } from "./options.js";
import { int8ReportLines } from "../calibration/int8-run.js";
import { table, trunc } from "../report/table.js";
import { compareExitCode, parseShow, SHOW_CHOICES } from "./compare-output.js";
import type { CompareSummary, LayerComparison } from "../compare/layer-compare.js";
import { describeLayerModel, parseFusionMode } from "../onnx/layer-model.js";
import { writeJson, type Cli } from "./shell.js";
import { REPORT_OPTIONS, reportSampler, writeReport } from "./report-command.js";

/** An output statistic in the run summary: 3 significant digits, inf/nan as such, "-" when absent (the exact values are in --json). */
const statText = (x: number | null | undefined): string => (x === null || x === undefined ? "-" : fmt(x));

export function registerModelCommands(y: Argv, cli: Cli): void {
  y.command(
    "run <model>",
    "Run a model in FP32/FP16/BF16 and dump every layer's outputs to Arrow",
    (b) =>
      outputOptions(inputOptions(int8Options(precisionOptions(b.positional("model", { type: "string", describe: "ONNX model" })))))
        .option("mark-all", { type: "boolean", describe: "Capture every layer's outputs (streamed; memory stays bounded)" })
        .option("mark", { type: "string", array: true, describe: "Capture these layers/tensors (names or globs)" })
        .option("save-outputs", { type: "string", describe: "Directory for the Arrow dumps (<precision>.arrow), or FILE.json: Polygraphy RunResults (docs/interop.md)" })
        .option("validate", { type: "boolean", describe: "Fail (exit 1) when any captured tensor has NaN/Inf" })
        .conflicts("mark-all", "mark"),
    async (a) => {
      const precisions = runPrecisions(a);
      const h = cli.hooks(a);
      const runArgs = {
        ...modelArgs(a.model as string, a),
        // A strongly typed model runs as typed; its label is its reduced type (docs/precision.md).
        precisions: precisions.length ? precisions : ([planDefault(a) ?? typedFilePrecision(a.model as string, { allowExternalDataOutside: Boolean(a["allow-external-data-outside"]) }) ?? "fp32"] as Precision[]),
        capture: a["mark-all"] ? ({ kind: "all" } as const) : a.mark?.length ? ({ kind: "marked", patterns: a.mark.map(String) } as const) : ({ kind: "outputs" } as const),
      };
      const toJson = typeof a["save-outputs"] === "string" && /\.json$/i.test(a["save-outputs"]);
      const res = await (toJson ? runToRunResults(runArgs, a["save-outputs"] as string, h) : runModel({ ...runArgs, saveOutputs: a["save-outputs"] }, h)).finally(() => h.done());
      for (const r of res.runs) {
        if (r.int8) for (const l of int8ReportLines(r.int8)) cli.io.out(l);
        const tag = r.iteration === undefined ? r.precision : `${r.precision} (iteration ${r.iteration})`;
        cli.io.out(`${tag}: ${r.tensors} tensors captured${r.dump ? `, written to ${r.dump}` : ""}`);
        if (!a.quiet) {
          cli.io.out(
            table(
              ["output", "dtype", "shape", "min", "max", "mean", "NaN", "Inf"],
              r.outputs.map((o) => [o.tensor, o.dtype, `[${o.shape.join(",")}]`, statText(o.min), statText(o.max), statText(o.mean), String(o.nan_count), String(o.inf_count)]),
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
      if (a.format === "trtexec" && typeof a["save-inputs"] === "string") cli.io.out(`trtexec: ${fs.readFileSync(path.join(a["save-inputs"], "loadInputs.txt"), "utf8").trim()}`);
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
      const res = await (isDump ? validateDump(src, h) : validateModel({ ...modelArgs(src, a), precision: ps[0] ?? planDefault(a) ?? typedFilePrecision(src, { allowExternalDataOutside: Boolean(a["allow-external-data-outside"]) }) ?? "fp32" }, h)).finally(() => h.done());
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
        .option("compare-threads", { type: "number", describe: "MODEL --fp16 etc.: 2 runs the candidate in a worker thread at the same time as the reference (half the cores each), 1 one after the other (default: 2 with 4+ cores and 2 MB+ of activations)", group: "Execution:" })
        .option("allow-different-inputs", { type: "boolean", describe: "Compare two dumps even when their inputs fingerprints differ" })
        .option("model", { type: "string", describe: "With A B files: the ONNX model, for layer names, op types, order and graph outputs (docs/interop.md)" })
        .option("runner", { type: "string", describe: "Polygraphy RunResults candidate: runner name or index (default the last)" })
        .option("candidate-outputs", { type: "string", describe: "With a model: outputs made outside trt-debug on the --load-inputs inputs (RunResults .json, .npy folder, Arrow dump), compared with trt-debug's FP32 run" })
        .option("runner-cmd", { type: "string", describe: "With a model: external runner command; placeholders {model} {inputs} {outputs} {plan} (docs/interop.md)" })
        .option("runner-timeout", { type: "number", describe: "Seconds before --runner-cmd is killed (default 600)" })
        .option("layer-info", { type: "string", describe: "trtexec --exportLayerInfo JSON (--profilingVerbosity=detailed): maps TensorRT tensor names to the model's layers (with --model)" })
        .option("ref-runner", { type: "string", describe: "Polygraphy RunResults reference: runner name or index (default the first)" })
        .option("show", { type: "string", describe: `Which rows the table lists: ${SHOW_CHOICES} (default context: failing rows and 3 rows either side of the first failing one; N: the N worst rows)` })
        .options(REPORT_OPTIONS),
    async (a) => {
      const show = parseShow(a.show, Boolean(a.quiet));
      const o = compareArgs(a);
      const metric = metricCriterion(a, o);
      if (metric) o.metric = metric;
      const h = cli.hooks(a);
      const rows: LayerComparison[] = [];
      const onLayer = (l: LayerComparison) => void rows.push(l);
      const sampler = reportSampler(a);
      const onTensors = sampler?.offer;
      let s: CompareSummary;
      if (a["runner-cmd"] !== undefined || a["candidate-outputs"] !== undefined) {
        if (a.b) throw new UserError(`compare ${a.a} ${a.b}: --runner-cmd/--candidate-outputs take a model (compare MODEL --runner-cmd CMD)`);
        const t = a["runner-timeout"];
        if (t !== undefined && !(Number.isFinite(t) && (t as number) > 0)) throw new UserError(`--runner-timeout ${String(t)}: expected a positive number of seconds`);
        const ps = runPrecisions(a).filter((p) => p !== "fp32");
        if (ps.length > 1) throw new UserError(`compare ${a.a}: give at most one candidate precision for the runner's plan (got ${ps.map((p) => "--" + p).join(" ")})`);
        s = await compareExternal(
          { ...modelArgs(a.a as string, a), ...(ps[0] ? { candidate: ps[0] as Precision } : {}), compare: o, candidateOutputs: a["candidate-outputs"] as string | undefined, runnerCmd: a["runner-cmd"] as string | undefined, runnerTimeout: t as number | undefined, runner: a.runner as string | undefined, layerInfo: a["layer-info"] as string | undefined, keepRows: Boolean(a.json || a.report) },
          { ...h, onLayer, onTensors, onRunnerLine: (line) => cli.io.err(`runner: ${line}`) },
        ).finally(() => h.done());
        cli.printCompare(s, Boolean(a.quiet), show, rows);
        writeJson(a.json, s);
        writeReport(a.report, s, sampler?.samples());
        cli.exitCode = compareExitCode(s);
        return;
      }
      const external = (f: unknown) => typeof f === "string" && tensorFileKind(f) !== "arrow";
      if ((a.b && (external(a.a) || external(a.b))) || (!a.b && typeof a.a === "string" && /\.json$/i.test(a.a))) {
        if (selectedPrecisions(a).length) throw new UserError(`compare: precision flags apply to a model, not to output files`);
        s = await compareTensorFiles(a.a as string, (a.b ?? a.a) as string, o, { model: a.model as string | undefined, runner: a.runner as string | undefined, refRunner: a["ref-runner"] as string | undefined, layerInfo: a["layer-info"] as string | undefined, allowExternalDataOutside: Boolean(a["allow-external-data-outside"]) }, { ...h, onLayer, onTensors }, Boolean(a.json || a.report)).finally(() => h.done());
      } else if (a.b && !isArrowFile(a.a as string) && !isArrowFile(a.b as string)) {
        // Two ONNX models: REFERENCE (fp32) and CANDIDATE as it is (workflows/compare-graphs.ts).
        if (selectedPrecisions(a).length) throw new UserError(`compare ${a.a} ${a.b}: precision flags apply to one model; the candidate model carries its own precisions`);
        s = await compareGraphs({ ...modelArgs(a.a as string, a), reference: a.a as string, candidate: a.b as string, compare: o, keepRows: Boolean(a.json || a.report) }, { ...h, onLayer, onTensors }).finally(() => h.done());
      } else if (a.b) {
        if (selectedPrecisions(a).length) throw new UserError(`compare: precision flags apply to a model, not to two dumps`);
        s = await compareDumps(a.a as string, a.b as string, o, { ...h, onLayer, onTensors }, Boolean(a.json || a.report), { allowDifferentInputs: Boolean(a["allow-different-inputs"]) }).finally(() => h.done());
      } else {
        const ps = runPrecisions(a).filter((p) => p !== "fp32");
        if (typeof a["save-outputs"] === "string" && /\.json$/i.test(a["save-outputs"])) throw new UserError(`--save-outputs ${a["save-outputs"]}: compare writes Arrow dumps to a folder; for Polygraphy RunResults use trt-debug run --mark-all --save-outputs FILE.json`);
        // A strongly typed model is its own candidate (docs/precision.md "Strongly typed models").
        if (ps.length === 0) {
          const typed = planDefault(a) ?? typedFilePrecision(a.a as string, { allowExternalDataOutside: Boolean(a["allow-external-data-outside"]) });
          if (typed && typed !== "fp32") ps.push(typed);
        }
        if (ps.length !== 1) throw new UserError(`compare ${a.a}: give the candidate precision, one of --fp16, --bf16 or --int8 (the reference is fp32)`);
        s = await compareModel({ ...modelArgs(a.a as string, a), candidate: ps[0] as Precision, compare: o, saveOutputs: a["save-outputs"], keepRows: Boolean(a.json || a.report), compareThreads: a["compare-threads"] }, { ...h, onLayer, onTensors }).finally(() => h.done());
      }
      if ("int8" in s && s.int8) for (const l of int8ReportLines(s.int8 as Parameters<typeof int8ReportLines>[0])) cli.io.out(l);
      cli.printCompare(s, Boolean(a.quiet), show, rows);
      writeJson(a.json, s);
      writeReport(a.report, s, sampler?.samples());
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
}
