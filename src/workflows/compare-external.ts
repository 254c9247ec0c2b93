/**
 * `compare MODEL` against outputs made outside trt-debug (docs/interop.md):
 * - `candidateOutputs`: a file of item 1's formats (Polygraphy RunResults JSON, a folder of
 *   .npy files, an Arrow dump) made on the inputs given by `inputs.loadInputs`;
 * - `runnerCmd`: an external runner. trt-debug writes the inputs (Polygraphy --load-inputs
 *   JSON) and the candidate's precision plan to a temp folder, runs the command (placeholders
 *   {model} {inputs} {outputs} {plan}, each replaced by a shell-quoted absolute path) through
 *   execa with a timeout, streams its output lines to `hooks.onRunnerLine`, and reads
 *   {outputs} back (RunResults JSON, .npy folder or Arrow dump).
 * The reference is trt-debug's own FP32 run of every layer on the same inputs; the two are
 * compared per layer by compareTensorFiles.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { opt, optionError, optionText, UserError, userError } from "../core/errors.js";
import { spelled } from "../core/hooks.js";
import type { Precision } from "../core/host-tensor.js";
import type { CompareSummary } from "../compare/layer-compare.js";
import type { CompareOptions } from "../compare/tolerance.js";
import { makePlan, planToJson } from "../precision/plan.js";
import { compareTensorFiles, readFileTensors } from "./compare-files.js";
import type { HostTensor } from "../core/host-tensor.js";
import type { PrecisionPlan } from "../precision/plan.js";
import { saveInputs } from "./model-inputs.js";
import { openInputsSink } from "./input-sinks.js";
import { decodePolygraphyInputs } from "../io/polygraphy-json.js";
import type { CompareHooks } from "./compare.js";
import { loadPlan, type ModelArgs } from "./model-inputs.js";
import { runToRunResults } from "./run-polygraphy.js";

export interface CompareExternalArgs extends ModelArgs {
  /** Candidate precision handed to the runner in {plan} (default fp16). */
  candidate?: Precision;
  compare: CompareOptions;
  /** Outputs made outside trt-debug on the same inputs. */
  candidateOutputs?: string;
  /** External runner command line (placeholders {model} {inputs} {outputs} {plan}). */
  runnerCmd?: string;
  /** Seconds before the runner is killed (default 600). */
  runnerTimeout?: number;
  /** Candidate file's runner (RunResults). */
  runner?: string;
  layerInfo?: string;
  keepRows?: boolean;
}

export interface CompareExternalHooks extends CompareHooks {
  /** One line of the external runner's stdout or stderr, as it comes. */
  onRunnerLine?(line: string, stream: "stdout" | "stderr"): void;
}

/** POSIX shell quoting of one word. */
function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `cmd` with {model} {inputs} {outputs} {plan} replaced; unknown {names} are refused. */
export function expandRunnerCmd(cmd: string, values: Record<"model" | "inputs" | "outputs" | "plan", string> & { trtexec_inputs?: string }): string {
  const known = new Set(["model", "inputs", "outputs", "plan", "trtexec_inputs"]);
  const unknown = [...cmd.matchAll(/\{([A-Za-z_]+)\}/g)].map((m) => m[1]!).filter((k) => !known.has(k));
  if (unknown.length) throw optionError("runnerCmd", `unknown placeholder {${unknown[0]}}; the placeholders are {model} {inputs} {outputs} {plan} {trtexec_inputs}`);
  if (!cmd.includes("{outputs}")) throw optionError("runnerCmd", "the command must write its outputs to {outputs} (a RunResults .json, a folder of .npy files or an Arrow dump); add {outputs} to it");
  return cmd.replace(/\{(model|inputs|outputs|plan|trtexec_inputs)\}/g, (_, k: keyof typeof values) => shellQuote(values[k] ?? ""));
}

/**
 * {trtexec_inputs}: the inputs (a Polygraphy inputs JSON of one set) written as raw files in
 * `dir` (input-sinks "trtexec" format); returns the `--loadInputs=...` flag. Only when CMD uses it.
 */
async function trtexecInputs(cmd: string, inputsJson: string, dir: string): Promise<string | undefined> {
  if (!cmd.includes("{trtexec_inputs}")) return undefined;
  const sets = decodePolygraphyInputs(await fs.promises.readFile(inputsJson, "utf8"), inputsJson);
  if (sets.length !== 1) throw optionError("runnerCmd", `{trtexec_inputs} takes one input set (trtexec runs one), and ${sets.length} were given; pass one set`);
  const sink = await openInputsSink(dir, "trtexec", { model: "", extra: {} });
  await sink.write([...sets[0]!].map(([name, a]) => ({ name, dtype: a.dtype, dims: a.dims, data: a.data })));
  await sink.close();
  return (await fs.promises.readFile(path.join(dir, "loadInputs.txt"), "utf8")).trim();
}

const TAIL = 5;

/** Runs the external runner; a failure is one UserError line naming the command, its exit and its last stderr lines. */
export async function runRunner(cmd: string, shown: string, timeoutS: number, hooks: CompareExternalHooks): Promise<void> {
  const tail: string[] = [];
  // Its own process group (detached), so a timeout kills the shell and everything it started
  // (a child left holding the pipes would keep them open).
  const { execa } = await import("execa"); // on demand: ~140 modules (docs/performance.md)
  const sub = execa(cmd, { shell: true, reject: false, detached: true, stdin: "ignore", all: false, buffer: false, stdout: "pipe", stderr: "pipe" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      if (sub.pid !== undefined) process.kill(-sub.pid, "SIGKILL");
    } catch {
      sub.kill("SIGKILL");
    }
  }, timeoutS * 1000);
  const pump = async (stream: NodeJS.ReadableStream | null | undefined, name: "stdout" | "stderr") => {
    if (!stream) return;
    let buf = "";
    for await (const chunk of stream) {
      buf += String(chunk);
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        if (name === "stderr" && line.trim()) (tail.push(line.trim()), tail.length > TAIL && tail.shift());
        hooks.onRunnerLine?.(line, name);
      }
    }
    if (buf) {
      if (name === "stderr" && buf.trim()) (tail.push(buf.trim()), tail.length > TAIL && tail.shift());
      hooks.onRunnerLine?.(buf, name);
    }
  };
  const [r] = await Promise.all([sub, pump(sub.stdout, "stdout"), pump(sub.stderr, "stderr")]).finally(() => clearTimeout(timer));
  const last = tail.length ? `; last stderr: ${tail.join(" | ")}` : "; no stderr";
  if (timedOut) throw userError`${opt("runnerCmd")} "${shown}": timed out after ${timeoutS} s and was killed${last}; raise ${opt("runnerTimeout")} or check the command`;
  if (r.exitCode !== 0) throw new UserError(`runnerCmd "${shown}": exited with ${r.exitCode === undefined ? `signal ${r.signal ?? "?"}` : `code ${r.exitCode}`}${last}`, "runnerCmd");
}

function nothingWritten(cmd: string): UserError {
  return new UserError(`runnerCmd "${cmd}": exited 0 but wrote nothing to {outputs}; write a RunResults .json, a folder of .npy files or an Arrow dump there`, "runnerCmd");
}

function unreadable(cmd: string, e: UserError): UserError {
  return userError`${opt("runnerCmd")} "${cmd}": its outputs cannot be read: ${e}`;
}

/** FP32 reference of every layer vs outputs made outside trt-debug (a file, or an external runner's). */
export async function compareExternal(a: CompareExternalArgs, hooks: CompareExternalHooks = {}): Promise<CompareSummary> {
  if (!a.candidateOutputs === !a.runnerCmd) throw userError`compare ${a.model}: give one of ${opt("candidateOutputs")} FILE and ${opt("runnerCmd")} CMD`;
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), "trt-debug-ext-"));
  try {
    const model = path.resolve(a.model);
    const inputsFile = path.join(tmp, "inputs.json");
    const ref = path.join(tmp, "reference.json");
    const inputs = { ...(a.inputs ?? {}) };
    if (a.runnerCmd) {
      if (inputs.saveInputs) throw userError`${opt("saveInputs")}: not with ${opt("runnerCmd")} (the runner's inputs are written to its temp folder as {inputs})`;
      Object.assign(inputs, { saveInputs: inputsFile, saveInputsFormat: "polygraphy" as const });
    } else if (!inputs.loadInputs?.length) {
      throw userError`${opt("candidateOutputs")} ${a.candidateOutputs}: give the inputs the file was made with (${opt("loadInputs")} FILE); generated inputs cannot match another tool's run`;
    }
    await runToRunResults({ ...a, model, inputs, precisions: ["fp32"], capture: { kind: "all" } }, ref, hooks);
    let cand = a.candidateOutputs ? path.resolve(a.candidateOutputs) : "";
    if (a.runnerCmd) {
      const planFile = path.join(tmp, "plan.json");
      const plan = loadPlan(a) ?? makePlan(a.candidate ?? "fp16", [...(a.layerPrecisions ?? [])], { tool: "trt-debug compare --runner-cmd" });
      await fs.promises.writeFile(planFile, planToJson(plan));
      cand = path.join(tmp, "outputs.json");
      const trt = await trtexecInputs(a.runnerCmd, inputsFile, path.join(tmp, "trtexec-inputs"));
      const cmd = expandRunnerCmd(a.runnerCmd, { model, inputs: inputsFile, outputs: cand, plan: planFile, ...(trt ? { trtexec_inputs: trt } : {}) });
      await runRunner(cmd, a.runnerCmd, a.runnerTimeout ?? 600, hooks);
      if (!fs.existsSync(cand)) throw nothingWritten(a.runnerCmd);
    }
    try {
      const s = await compareTensorFiles(ref, cand, a.compare, { model, runner: a.runner, refRunner: "0", layerInfo: a.layerInfo, allowExternalDataOutside: a.allowExternalDataOutside }, hooks, a.keepRows ?? true);
      s.reference = `${a.model} fp32`;
      s.candidate = a.runnerCmd ? spelled(hooks, optionText`${opt("runnerCmd")} "${a.runnerCmd}"`) : a.candidateOutputs!;
      s.notes = s.notes.filter((n) => !n.startsWith("reference: runner"));
      return s;
    } catch (e) {
      if (a.runnerCmd && e instanceof UserError) throw unreadable(a.runnerCmd, e);
      throw e;
    }
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}

/**
 * bisect --runner-cmd: one candidate plan through the external runner; returns the graph
 * outputs it wrote (every name in `outputs` must be there).
 */
export async function runnerGraphOutputs(o: { runnerCmd: string; runnerTimeout?: number; model: string; plan: PrecisionPlan; inputs: HostTensor[]; outputs: readonly string[] }, hooks: CompareExternalHooks = {}): Promise<Map<string, HostTensor>> {
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), "trt-debug-runner-"));
  try {
    const inputsFile = path.join(tmp, "inputs.json"), planFile = path.join(tmp, "plan.json"), out = path.join(tmp, "outputs.json");
    await saveInputs(inputsFile, o.model, o.inputs, {}, "polygraphy");
    await fs.promises.writeFile(planFile, planToJson(o.plan));
    const trt = await trtexecInputs(o.runnerCmd, inputsFile, path.join(tmp, "trtexec-inputs"));
    await runRunner(expandRunnerCmd(o.runnerCmd, { model: path.resolve(o.model), inputs: inputsFile, outputs: out, plan: planFile, ...(trt ? { trtexec_inputs: trt } : {}) }), o.runnerCmd, o.runnerTimeout ?? 600, hooks);
    if (!fs.existsSync(out)) throw nothingWritten(o.runnerCmd);
    let got: Map<string, HostTensor>;
    try {
      got = await readFileTensors(out, new Set(o.outputs));
    } catch (e) {
      if (e instanceof UserError) throw unreadable(o.runnerCmd, e);
      throw e;
    }
    const missing = o.outputs.filter((n) => !got.has(n));
    if (missing.length) throw new UserError(`runnerCmd "${o.runnerCmd}": its outputs lack the graph output${missing.length > 1 ? "s" : ""} ${missing.map((m) => `'${m}'`).join(", ")}; the runner must write every graph output under its ONNX name`, "runnerCmd");
    return got;
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}
