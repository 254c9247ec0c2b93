/**
 * `run --save-outputs FILE.json`: the run's captured tensors written as a Polygraphy
 * RunResults file (one runner `trt-debug-<precision>` per precision, one iteration per input
 * set), which `polygraphy run --load-outputs FILE.json` and `trt-debug compare` read.
 * The run writes its Arrow dumps to a temp folder first; they are converted, then removed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Hooks } from "../core/hooks.js";
import { openDump, rowTensor } from "../io/dump.js";
import { RunResultsWriter } from "../io/polygraphy-results.js";
import { checkOutputPath } from "../core/output-file.js";
import { runModel, type RunArgs, type RunResult } from "./run.js";

/** Runs `a` and writes its captured tensors to `file` as Polygraphy RunResults. */
export async function runToRunResults(a: Omit<RunArgs, "saveOutputs">, file: string, hooks: Hooks = {}): Promise<RunResult> {
  checkOutputPath("saveOutputs", file, "file", { createParents: true });
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), "trt-debug-run-"));
  try {
    const res = await runModel({ ...a, saveOutputs: tmp }, hooks);
    const w = await RunResultsWriter.open(file);
    try {
      // Runs come iteration by iteration; a runner holds every iteration of one precision.
      for (const precision of [...new Set(res.runs.map((r) => r.precision))]) {
        await w.begin(`trt-debug-${precision}`);
        for (const r of res.runs.filter((x) => x.precision === precision)) {
        await w.iteration();
        const d = await openDump(r.dump!, "dump");
        try {
          for await (const row of d.rows()) await w.tensor(row.tensor, rowTensor(row, r.dump!));
        } finally {
          await d.close();
        }
        }
      }
      await w.close();
    } catch (e) {
      await w.abort();
      await fs.promises.rm(file, { force: true });
      throw e;
    }
    for (const r of res.runs) r.dump = file;
    return res;
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}
