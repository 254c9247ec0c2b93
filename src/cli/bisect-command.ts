/**
 * `trt-debug bisect MODEL --fp16|--bf16|--int8` (also `trt-debug debug precision MODEL ...`):
 * find the layers that must stay in higher precision, by name, and write configs TensorRT
 * tools accept. Exit 0: a verified plan was found; 1: nothing passes, or the answer would pin
 * most of the model (STOPPED); 2: user error (including a criterion the all-pinned plan fails).
 */
import * as fs from "node:fs";
import type { Argv } from "yargs";
import { UserError } from "../core/errors.js";
import type { Precision } from "../core/host-tensor.js";
import { Cli, writeFileAtomic, writeJson } from "./shell.js";
import { REPORT_OPTIONS, writeReport } from "./report-command.js";
import { metricCriterion, metricOptions, compareArgs, compareOptions, inputOptions, int8Options, modelArgs, outputOptions, precisionOptions, selectedPrecisions } from "./options.js";
import { parseByteSize } from "./value-flags.js";
import { bisectModel, fmtExec, type BisectMode, type BisectResult, type Criterion, type Direction, type IterationRecord } from "../workflows/bisect.js";
import { defaultCheckpointPath } from "../search/checkpoint.js";
import { checkOutputPath } from "../core/output-file.js";
import { metricName as criterionMetricName } from "../search/evaluate.js";
import { parsePrecision, planToJson } from "../precision/plan.js";
import { fmt, type CompareOptions } from "../compare/tolerance.js";
import { candidateStart, type CandidateStart } from "../workflows/bisect-candidate.js";
import { parseFusionMode } from "../onnx/layer-model.js";
import { autocastCommand, checkSaveTyped, saveTypedPlan, trtexecTypedCommand } from "../workflows/save-typed.js";
import { checkSaveInt8, saveInt8Plan } from "../workflows/save-int8.js";

type Raw = Record<string, unknown>;

function bisectOptions<T>(y: Argv<T>) {
  return metricOptions(outputOptions(compareOptions(inputOptions(int8Options(precisionOptions(y.positional("model", { type: "string", describe: "ONNX model" })))))), "Search:")
    .option("mode", { type: "string", choices: ["minimal", "bisect", "linear"], default: "minimal", describe: "minimal: smallest set of layers, by name; bisect/linear: Polygraphy's first/last-k search", group: "Search:" })
    .option("dir", { alias: "direction", type: "string", choices: ["forward", "reverse"], default: "forward", describe: "bisect/linear: pin the first (forward) or last (reverse) k layers", group: "Search:" })
    .option("precision", { alias: "p", type: "string", default: "fp32", describe: "What pinned layers run in: fp32|fp16 (also float32|float16); fp16 is useful with --int8", group: "Search:" })
    .option("check", { type: "string", array: true, describe: "External pass/fail command (exit 0 = pass), run without a shell; {plan} is replaced by the candidate plan's path (else appended); also in $TRT_DEBUG_PLAN", group: "Search:" })
    .option("output", { alias: "o", type: "string", describe: "Write the precision plan (trt-debug/precision-plan@1; reload with --precision-plan)", group: "Output:" })
    .option("trtexec-flags", { type: "string", describe: "Write the trtexec flags (one line) to this file", group: "Output:" })
    .option("polygraphy-args", { type: "string", describe: "Write the Polygraphy arguments (one line) to this file", group: "Output:" })
    .option("candidate", { type: "string", describe: "A strongly typed candidate model (e.g. AutoCast's or convert's output), or an int8 Q/DQ model: start from its own per-layer types / quantization instead of --fp16/--bf16/--int8", group: "Search:" })
    .option("save-onnx", { type: "string", describe: "Write the final plan as a strongly typed ONNX model (TensorRT 11; --fp16/--bf16 searches) or, with --int8, a Q/DQ model; re-verified before it is written", group: "Output:" })
    .option("checkpoint", { type: "string", describe: "Checkpoint file (default <model>.bisect-checkpoint.json next to -o, else in the current directory; --no-checkpoint: none)", group: "Search:" })
    .option("resume", { type: "boolean", describe: "Continue from the checkpoint: evaluations it holds are not re-run", group: "Search:" })
    .option("boundary-cache", { type: "number", describe: "Segment boundaries kept for prefix reuse (LRU by count; default: as many as --memory-budget allows)", group: "Execution:" })
    .option("memory-budget", { type: "string", describe: "Bytes the search may hold in caches (boundary tensors, sessions, one sensitivity group), e.g. 2G, 512M (default 2G)", group: "Execution:" })
    .option("runner-cmd", { type: "string", describe: "External runner per candidate plan: placeholders {model} {inputs} {outputs} {plan}; its graph outputs are judged by the criterion (docs/interop.md)", group: "Search:" })
    .option("runner-timeout", { type: "number", describe: "Seconds before --runner-cmd is killed (default 600)", group: "Search:" })
    .option("max-pinned", { type: "number", describe: "Stop without a plan when the answer would pin more than this fraction of the searchable layers (default 0.5 for --mode minimal; bisect/linear: only when all would be)", group: "Search:" })
    .options(REPORT_OPTIONS);
}

/** --runner-timeout: a positive number of seconds, or undefined. */
function runnerTimeoutOf(a: Raw): number | undefined {
  const t = a["runner-timeout"];
  if (t === undefined) return undefined;
  if (!(typeof t === "number" && Number.isFinite(t) && t > 0)) throw new UserError(`--runner-timeout ${String(t)}: expected a positive number of seconds`);
  return t;
}

/**
 * The --check command: the values after --check, then everything after `--` (so arguments
 * that start with a dash can be passed: `--check -- ./check.sh --strict {plan}`).
 */
function checkCommand(a: Raw): string[] | undefined {
  const pos = Array.isArray(a._) ? (a._ as unknown[]).map(String) : [];
  const skip = pos[0] === "bisect" ? 1 : pos[0] === "debug" && pos[1] === "precision" ? 2 : 0;
  const rest = pos.slice(skip);
  if (a.check === undefined) {
    if (rest.length) throw new UserError(`unexpected arguments '${rest.join(" ")}': arguments after -- belong to --check`);
    return undefined;
  }
  const v = Array.isArray(a.check) ? a.check.map(String) : [String(a.check)];
  return [...v, ...rest].filter((s) => s !== "");
}

function criterionOf(a: Raw): Criterion {
  const compare = compareArgs(a);
  const check = checkCommand(a);
  if (check !== undefined) {
    if (a.metric !== undefined) throw new UserError("--check and --metric: give one pass criterion");
    if (!check.length) throw new UserError("--check: give the command to run, e.g. --check ./check.sh {plan}");
    return { kind: "check", command: check };
  }
  return metricCriterion(a, compare) ?? { kind: "compare", compare };
}

function fmtMetric(name: string | null, x: number | null): string {
  if (name === null || x === null) return "";
  if (name.includes("cosine")) return Number.isNaN(x) ? "cosine nan (NaN/Inf mismatch)" : `cosine ${x.toFixed(6)}`;
  if (name.includes("SQNR")) return `SQNR ${Number.isFinite(x) ? x.toFixed(1) : x > 0 ? "inf" : "-inf"} dB`;
  return `${name.replace(/^max /, "")} ${Number.isFinite(x) ? fmt(x) : Number.isNaN(x) ? "nan" : "inf"}`;
}

export function iterationLine(it: IterationRecord, metricName: string | null): string {
  const who = it.size === 0 ? "none pinned" : it.pinned && it.size <= 3 ? it.pinned.join(", ") : it.selection;
  const m = fmtMetric(metricName, it.metric);
  return `${`[${it.iteration}]`.padEnd(4)} ${it.phase.padEnd(8)} ${String(it.size).padStart(4)} pinned (${who})  ${it.passed ? "PASS" : "FAIL"}${m ? "  " + m : ""}${it.passed ? "" : `  (${it.detail})`}${it.cached ? "  [memo]" : ""}`;
}

export function printBisect(cli: Cli, r: BisectResult, quiet: boolean): void {
  const o = (s: string) => cli.io.out(s);
  if (r.stopped) {
    o(`STOPPED: ${r.stopped}`);
    return;
  }
  if (quiet) {
    if (r.found) o(`PASSED: verified plan pins ${r.pinned.length} layer(s)${r.pinned.length ? ": " + r.pinned_layers.join(", ") : ""}`);
    else o(r.final_verification && !r.final_verification.passed ? "FAILED: the plan found did not pass when re-run" : "FAILED: no plan passes");
    return;
  }
  if (r.found) {
    const where = r.k !== null && r.mode !== "minimal" ? ` (the ${r.direction === "reverse" ? "last" : "first"} ${r.k} searchable layers)` : "";
    o(`pinned layers (${r.pinned.length}) -> ${r.pin_precision}${where}:`);
    for (const p of r.pinned) {
      const ev = [...p.evidence];
      if (p.unpinned) ev.push(`unpinning it alone: ${p.unpinned.detail}`);
      if (!ev.length && p.local_rel_l2 !== null) ev.push(`fine on its own (local rel L2 ${fmt(p.local_rel_l2)})`);
      o(`  #${p.order} ${p.name} (${p.op_type})${ev.length ? ": " + ev.join("; ") : ""}`);
    }
    if (!r.pinned.length) o("  none: the model passes with every searchable layer in " + r.precision);
  }
  const x = r.executions;
  o(
    `cost: ${fmtExec(r.model_executions)} full-model executions (reference + sensitivity ${fmtExec(x.reference_and_sensitivity)}, search ${fmtExec(x.search)}, verification ${fmtExec(x.final_verification)}); ${r.evaluations} evaluations${r.cached_evaluations ? ` + ${r.cached_evaluations} from memo` : ""}; ${r.wall_seconds.toFixed(2)} s`,
  );
  for (const n of r.notes) o(`note: ${n}`); // before the verdict: the verdict is the last line
  if (r.found) {
    if (r.plan_entries.length <= 16) {
      o(`trtexec (TensorRT <= 10.x): ${r.trtexec_flags}`);
      o(`polygraphy (TensorRT <= 10.x): ${r.polygraphy_args}`);
    } else o(`trtexec / polygraphy (TensorRT <= 10.x): ${r.plan_entries.length} layers; write them with --trtexec-flags FILE / --polygraphy-args FILE`);
    if (!r.saved_onnx && !r.saved_qdq) o(`TensorRT 11.x (strongly typed only): write the plan as a ${r.precision === "int8" || r.precision === "fp8" ? "Q/DQ" : "typed"} model with --save-onnx OUT.onnx`);
    if (r.saved_qdq) {
      const q = r.saved_qdq;
      const red = q.reduced_layers?.length ? `, ${q.reduced_layers.length} in ${r.int8?.fallback_precision ?? "fp16"} (strongly typed, no Q/DQ)` : "";
      o(`wrote ${q.output}: Q/DQ, ${q.int8_layers.length} layer(s) in ${r.precision === "fp8" ? "fp8" : "int8"}, ${q.fp32_layers.length} in fp32 (no Q/DQ)${red}, re-verified${q.compare ? ` (compare REF OUT: ${q.compare.detail})` : ""}`);
      o(`trtexec (TensorRT 11.x): ${q.trtexec}`);
    }
    if (r.saved_onnx) {
      o(`wrote ${r.saved_onnx.output}${r.saved_onnx.data ? ` (+ ${r.saved_onnx.data})` : ""}: strongly typed, ${r.saved_onnx.fp32_layers.length} layer(s) in fp32, re-verified as typed`);
      o(`trtexec (TensorRT 11.x): ${r.saved_onnx.trtexec}`);
      o(`modelopt autocast (same plan from the fp32 model): ${r.saved_onnx.autocast}`);
    }
    o(`PASSED: verified plan pins ${r.pinned.length} layer(s)${r.final_verification ? ` (${fmtMetric(r.metric_name, r.final_verification.metric) || r.final_verification.detail})` : ""}`);
  } else if (r.final_verification && !r.final_verification.passed) {
    o(`FAILED: the plan the search found did not pass when re-run (${r.final_verification.detail}); the check may be nondeterministic`);
  } else {
    o(`FAILED: no plan passes, even with every searchable layer in ${r.pin_precision}; check the criterion (--max-rel-l2, --threshold) or the model`);
  }
}

async function handler(cli: Cli, a: Raw): Promise<void> {
  const model = String(a.model);
  // With --int8 (--fp8), --fp16/--bf16 name the fallback of layers that cannot run in int8 (as in compare).
  const ps = selectedPrecisions(a).filter((p) => p !== "fp32" && !((a.int8 || a.fp8) && (p === "fp16" || p === "bf16")));
  let start: CandidateStart | undefined;
  if (a.candidate !== undefined) {
    if (ps.length) throw new UserError(`--candidate and --${ps[0]}: the candidate model gives the precisions; drop --${ps[0]}`);
    if (a["precision-plan"] !== undefined || a["layer-precisions"] !== undefined) throw new UserError("--candidate and --precision-plan/--layer-precisions: the candidate's own types are the starting plan; give one");
    start = await candidateStart(model, String(a.candidate), { fusion: a.fusion === undefined ? undefined : parseFusionMode(a.fusion), allowExternalDataOutside: Boolean(a["allow-external-data-outside"]) });
    ps.push(start.precision);
  }
  if (ps.length !== 1) throw new UserError(`bisect ${model}: give the candidate precision, one of --fp16, --bf16 or --int8 (with --calibration-cache)`);
  const candidate = ps[0] as Precision;
  // quantized searches: --int8, --fp8 (scaled e4m3fn), or a Q/DQ --candidate
  const quant = candidate === "int8" || candidate === "fp8";
  const lp = a["layer-precisions"];
  const mayAskInt8 = (Array.isArray(lp) ? lp.length > 0 : lp !== undefined) || a["precision-plan"] !== undefined;
  if (!quant && a["calibration-cache"] !== undefined && !mayAskInt8) throw new UserError("--calibration-cache: give --int8 too (the cache is for int8 searches)");
  if (start?.qdq && a["calibration-cache"] !== undefined) throw new UserError(`--calibration-cache and a Q/DQ --candidate: the candidate's QuantizeLinear scales are the ranges; drop --calibration-cache`);
  const pin = parsePrecision(String(a.precision ?? "fp32"), "--precision");
  const saveOnnx = a["save-onnx"] === undefined ? undefined : String(a["save-onnx"]);
  if (saveOnnx !== undefined) {
    if (quant) checkSaveInt8(pin, start?.qdq ? start.qdq.fallback : selectedPrecisions(a).find((p) => p === "fp16" || p === "bf16"));
    else checkSaveTyped(candidate, pin);
    checkOutputPath("--save-onnx", saveOnnx, "file", { createParents: true });
  }
  const margs = modelArgs(model, a);
  if (start) margs.layerPrecisions = start.layerPrecisions;
  // a Q/DQ candidate: its scales, explicit placement (Q/DQ on the int8 layers' inputs only), pins in fp32
  if (start?.qdq) margs.int8 = { ...margs.int8, calibrationCache: String(a.candidate), cache: start.qdq.cache, placement: "inputs", fallback: start.qdq.fallback, ...(start.precision === "fp8" ? { qtype: "fp8" as const } : {}) };
  if (pin !== "fp32" && pin !== "fp16") throw new UserError(`--precision: pinned layers run in fp32 or fp16 (got ${String(a.precision)})`);
  const criterion = criterionOf(a);
  const output = a.output as string | undefined;
  const checkpoint = a.checkpoint === false ? undefined : typeof a.checkpoint === "string" ? a.checkpoint : defaultCheckpointPath(model, output);
  if (a.resume && !checkpoint) throw new UserError("--resume and --no-checkpoint: resuming needs a checkpoint");
  // The default checkpoint path is checked like every explicit output path (before any work).
  if (checkpoint && a.checkpoint === undefined) checkOutputPath("--checkpoint", checkpoint, "file", { createParents: true });
  const quiet = Boolean(a.quiet);
  const h = cli.hooks(a);
  const mode = a.mode as BisectMode;
  const metricName = criterionMetricName(criterion);
  if (!quiet) {
    const dirText = mode === "minimal" ? "" : `, ${a.dir as string}`;
    const fb = quant ? ` (fallback ${margs.int8?.fallback ?? "fp32"})` : "";
    cli.io.out(`bisect ${model}: candidate ${start ? `${String(a.candidate)} (${candidate}, ${start.layerPrecisions.length} layer(s) not in ${candidate} to start with)` : candidate}${fb}, pinned layers in ${pin}, mode ${mode}${dirText}`);
    if (start?.missing.length) cli.io.err(`warning: --candidate: ${start.missing.length} layer(s) of ${model} are not in the candidate and start in ${candidate}: ${start.missing.slice(0, 8).join(", ")}${start.missing.length > 8 ? ", ..." : ""}`);
  }
  const r = await bisectModel(
    {
      ...margs,
      precision: candidate,
      pinPrecision: pin,
      mode,
      direction: a.dir as Direction,
      criterion,
      checkpoint,
      resume: Boolean(a.resume),
      boundaryCache: a["boundary-cache"] as number | undefined,
      memoryBudget: a["memory-budget"] === undefined ? undefined : parseByteSize(String(a["memory-budget"]), "--memory-budget"),
      maxPinnedFraction: a["max-pinned"] as number | undefined,
      keepCheckpoint: true,
      ...(a["runner-cmd"] !== undefined ? { runnerCmd: String(a["runner-cmd"]), runnerTimeout: runnerTimeoutOf(a) } : {}),
    },
    {
      ...h,
      onRunnerLine: (line: string) => {
        h.done();
        cli.io.err(`runner: ${line}`);
      },
      onPhase: (msg) => {
        h.done();
        if (!quiet) cli.io.out(msg);
      },
      onIteration: (it) => {
        h.done();
        if (!quiet) cli.io.out(iterationLine(it, metricName));
      },
    },
  ).finally(() => h.done());
  if (r.found && r.plan && saveOnnx !== undefined && quant) {
    const q = await saveInt8Plan({ ...margs, int8: margs.int8 ?? {}, plan: r.plan, criterion, output: saveOnnx });
    r.saved_qdq = { ...q, trtexec: trtexecTypedCommand(q.output) };
  } else if (r.found && r.plan && saveOnnx !== undefined) {
    const s = await saveTypedPlan({ model, precision: candidate, plan: r.plan, output: saveOnnx, fusion: margs.fusion, allowExternalDataOutside: margs.allowExternalDataOutside });
    r.saved_onnx = { output: s.output, data: s.data, fp32_layers: s.fp32_layers, fp32_nodes: s.fp32_nodes, trtexec: trtexecTypedCommand(s.output), autocast: autocastCommand(model, s.output, candidate as "fp16" | "bf16", s.fp32_nodes) };
  }
  printBisect(cli, r, quiet);
  // tests: die between the search and the outputs (the checkpoint must survive)
  if (process.env.TRT_DEBUG_TEST_KILL_BEFORE_OUTPUTS === "1") process.kill(process.pid, "SIGKILL");
  if (r.found && r.plan) {
    if (output) writeFileAtomic(output, planToJson(r.plan));
    if (a["trtexec-flags"]) writeFileAtomic(String(a["trtexec-flags"]), r.trtexec_flags + "\n");
    if (a["polygraphy-args"]) writeFileAtomic(String(a["polygraphy-args"]), r.polygraphy_args + "\n");
  }
  writeJson(a.json as string | undefined, r);
  writeReport(a.report, r);
  // only now that every output is written: a crash before this point leaves the checkpoint to --resume
  if (r.found && checkpoint) fs.rmSync(checkpoint, { force: true });
  if (!r.found) cli.exitCode = 1;
}

export function registerBisect(y: Argv, cli: Cli): void {
  const describe = "Find, by name, the layers that must stay in higher precision (--mode minimal|bisect|linear) and write a precision plan, trtexec flags and Polygraphy args";
  y.command("bisect <model>", describe, (b) => bisectOptions(b), (a) => handler(cli, a as Raw));
  y.command("debug", "Polygraphy-style debugging tools: debug precision MODEL (= bisect)", (b) =>
    b
      .command("precision <model>", describe, (c) => bisectOptions(c), (a) => handler(cli, a as Raw))
      .demandCommand(1, "give a debug tool: precision"),
  );
}
