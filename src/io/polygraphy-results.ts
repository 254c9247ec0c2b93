/**
 * Polygraphy's RunResults JSON (polygraphy/comparator/struct.py), as written by
 * `polygraphy run --save-outputs` / `--save-results` and read by `--load-outputs`:
 *
 *   {"lst": [["runner", [ITERATION, ...]], ...], "polygraphy_class": "RunResults"}
 *   ITERATION = {"outputs": {"tensor": {"values": ARRAY, "polygraphy_class": "LazyArray"}, ...},
 *                "runtime": 0.01, "runner_name": "runner", "polygraphy_class": "IterationResult"}
 *
 * ARRAY is the ndarray encoding of ./polygraphy-json.ts. Older files wrap arrays in
 * "LazyNumpyArray", mark classes with `"__polygraphy_encoded_<Class>"` keys, or store the
 * ndarray directly under the tensor name; all are read.
 *
 * The reader streams (@streamparser/json): it emits one tensor at a time, so memory is bounded
 * by the largest tensor (its base64 text and its decoded array), not by the file.
 */
import * as fs from "node:fs";
import { JSONParser } from "@streamparser/json";
import { UserError } from "../core/errors.js";
import { decodePolygraphyArray, encodePolygraphyArray } from "./polygraphy-json.js";
import type { NpyArray } from "./npy.js";
import type { DType, TensorData } from "../core/host-tensor.js";

const FIX = "pass a file written by polygraphy run --save-outputs (or trt-debug run --save-outputs FILE.json)";

/** One tensor of one iteration of one runner. */
export interface RunResultsTensor {
  runner: string;
  runnerIndex: number;
  iteration: number;
  name: string;
  array: NpyArray;
}

/** Unwraps LazyArray / LazyNumpyArray (current and legacy markers) around an ndarray. */
function unwrapLazy(v: unknown): unknown {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return v;
  const o = v as Record<string, unknown>;
  const cls = o.polygraphy_class;
  const legacy = o.__polygraphy_encoded_LazyArray !== undefined || o.__polygraphy_encoded_LazyNumpyArray !== undefined;
  if ((cls === "LazyArray" || cls === "LazyNumpyArray" || legacy) && "values" in o) return o.values;
  return v;
}

/**
 * Streams the tensors of a RunResults file in file order. `want(runnerIndex, runnerName)`
 * selects the runners whose tensors are decoded (others are skipped after parsing).
 * Returns the runner names seen through `runners` once the generator finishes.
 */
export async function* readRunResults(file: string, want: (index: number, name: string) => boolean = () => true, runners: string[] = []): AsyncGenerator<RunResultsTensor> {
  let stream: fs.ReadStream;
  try {
    const st = await fs.promises.stat(file);
    if (!st.isFile()) throw new UserError(`${file}: not a regular file; ${FIX}`);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)}); ${FIX}`);
  }
  // Only leaves are selected: selecting an ancestor (even "$") would make the parser keep
  // everything under it, i.e. the whole file.
  const parser = new JSONParser({ paths: ["$.lst.*.0", "$.lst.*.1.*.outputs.*"], keepStack: false });
  const queue: RunResultsTensor[] = [];
  let sawRoot = false;
  let failure: UserError | null = null;
  parser.onValue = ({ value, key, stack }) => {
    if (failure) return;
    try {
      sawRoot = true;
      const runnerIndex = Number(stack[2]!.key);
      if (stack.length === 3) {
        if (typeof value !== "string") throw new UserError(`${file}: lst[${runnerIndex}][0] is not a runner name; ${FIX}`);
        runners[runnerIndex] = value;
        return;
      }
      const iteration = Number(stack[4]!.key);
      const runner = runners[runnerIndex] ?? String(runnerIndex);
      if (!want(runnerIndex, runner)) return;
      const name = String(key);
      const array = decodePolygraphyArray(unwrapLazy(value), `${file}: runner '${runner}', iteration ${iteration}, tensor '${name}'`);
      queue.push({ runner, runnerIndex, iteration, name, array });
    } catch (e) {
      failure = e instanceof UserError ? e : new UserError(`${file}: ${(e as Error).message}; ${FIX}`);
    }
  };
  parser.onError = (e) => {
    failure ??= new UserError(`${file}: not valid JSON (${e.message}); ${FIX}`);
  };
  stream = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream) {
      if (!failure) {
        try {
          parser.write(chunk as Buffer);
        } catch (e) {
          failure ??= new UserError(`${file}: not valid JSON (${(e as Error).message}); ${FIX}`);
        }
      }
      if (failure) throw failure;
      while (queue.length) yield queue.shift()!;
    }
    if (!parser.isEnded) {
      try {
        parser.end();
      } catch (e) {
        failure ??= new UserError(`${file}: not valid JSON (${(e as Error).message}); ${FIX}`);
      }
    }
    if (failure) throw failure;
    while (queue.length) yield queue.shift()!;
    if (!sawRoot) throw new UserError(`${file}: not a Polygraphy RunResults file (no "lst" list of [runner, iterations] pairs); ${FIX}`);
  } finally {
    stream.destroy();
  }
}

/** Resolves a runner `NAME|INDEX` (the `runner` option) against the runner names of a file (index may be negative). */
export function pickRunner(file: string, names: readonly string[], spec: string | number, option = "runner"): number {
  if (names.length === 0) throw new UserError(`${file}: holds no runners; ${FIX}`);
  const s = String(spec);
  const byName = names.indexOf(s);
  if (byName >= 0) return byName;
  if (/^-?\d+$/.test(s)) {
    const i = Number(s) < 0 ? names.length + Number(s) : Number(s);
    if (i >= 0 && i < names.length) return i;
  }
  throw new UserError(`${option} ${s}: ${file} has no such runner; its runners: ${names.map((n, i) => `${i}:${n}`).join(", ")}`, option);
}

/** The runner names of a RunResults file, in order (one streaming pass; tensors are not decoded). */
export async function runResultsRunners(file: string): Promise<string[]> {
  const names: string[] = [];
  for await (const _ of readRunResults(file, () => false, names)) void _;
  return names;
}

/**
 * Writes a RunResults file one tensor at a time: `begin(runner)`, then `iteration()` and
 * `tensor()` calls, then `close()`. The output is what Polygraphy's encoder writes, so
 * `polygraphy run --load-outputs FILE` reads it.
 */
export class RunResultsWriter {
  private state: "start" | "runner" | "iteration" = "start";
  private firstRunner = true;
  private firstIteration = true;
  private firstTensor = true;
  private runner = "";
  private constructor(private readonly fd: fs.promises.FileHandle) {}

  static async open(file: string): Promise<RunResultsWriter> {
    const fd = await fs.promises.open(file, "w");
    const w = new RunResultsWriter(fd);
    await w.put('{"lst": [');
    return w;
  }

  private put(s: string): Promise<unknown> {
    return this.fd.write(s);
  }

  private async endIteration(): Promise<void> {
    if (this.state === "iteration") await this.put(`}, "runtime": 0.0, "runner_name": ${JSON.stringify(this.runner)}, "polygraphy_class": "IterationResult"}`);
    this.state = "runner";
  }

  private async endRunner(): Promise<void> {
    await this.endIteration();
    await this.put("]]");
  }

  async begin(runner: string): Promise<void> {
    if (this.state !== "start") await this.endRunner();
    await this.put(`${this.firstRunner ? "" : ", "}[${JSON.stringify(runner)}, [`);
    this.firstRunner = false;
    this.firstIteration = true;
    this.runner = runner;
    this.state = "runner";
  }

  async iteration(): Promise<void> {
    if (this.state === "start") throw new Error("RunResultsWriter: iteration() before begin()");
    await this.endIteration();
    await this.put(`${this.firstIteration ? "" : ", "}{"outputs": {`);
    this.firstIteration = false;
    this.firstTensor = true;
    this.state = "iteration";
  }

  async tensor(name: string, a: { dtype: DType; dims: readonly number[]; data: TensorData }): Promise<void> {
    if (this.state !== "iteration") throw new Error("RunResultsWriter: tensor() outside an iteration");
    const enc = JSON.stringify({ values: encodePolygraphyArray(a), polygraphy_class: "LazyArray" });
    await this.put(`${this.firstTensor ? "" : ", "}${JSON.stringify(name)}: ${enc}`);
    this.firstTensor = false;
  }

  async close(): Promise<void> {
    if (this.state !== "start") await this.endRunner();
    await this.put('], "polygraphy_class": "RunResults"}\n');
    await this.fd.close();
  }

  async abort(): Promise<void> {
    await this.fd.close().catch(() => undefined);
  }
}
