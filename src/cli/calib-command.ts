/**
 * `trt-debug calib build` and `trt-debug calib check` (docs/int8.md).
 * Exit codes: 0 success / no harmful flag; 1 (check) a tensor flagged harmful; 2 user error.
 */
import type { Argv } from "yargs";
import { UserError } from "../core/errors.js";
import type { Precision } from "../core/host-tensor.js";
import { writeJson, type Cli } from "./shell.js";
import { REPORT_OPTIONS, writeReport } from "./report-command.js";
import { executionOptions, inputArgs, inputOptions, outputOptions } from "./options.js";
import { table } from "../report/table.js";
import type { OptimizationLevel } from "../onnx/ort-session.js";
import { CALIB_ALGOS, CACHE_ALGORITHM_NAMES, parseCalibAlgo, type CalibAlgo } from "../calibration/algorithms.js";
import { parseInt8Range } from "../precision/int8.js";
import { describeCache } from "../calibration/int8-run.js";
import { calibBuild, parsePercentile, type CalibBuildResult } from "../calibration/build.js";
import { calibCheckQdq, isQdqModel } from "../workflows/calib-qdq.js";
import { calibCheck, DEFAULT_THRESHOLDS, fmtNum, type CalibCheckResult } from "../calibration/check.js";
import { parseCalibBatches, type CalibDataArgs } from "../calibration/calib-data.js";
import { parseFusionMode } from "../onnx/layer-model.js";

type Raw = Record<string, unknown>;

function dataOptions<T>(y: Argv<T>) {
  const d = inputOptions(y)
    .option("calib-data", { type: "string", describe: "Calibration data: a folder of images (--image-preprocess) or of .npy/.npz files, a Polygraphy inputs JSON, a directory (test_data_set_*/input_*.pb, sub-directories of input_*.pb, or input_*.pb = one batch) or an inputs Arrow file (--save-inputs; k-th row of an input = batch k)", group: "Calibration data:" })
    .option("calib-batches", { type: "number", describe: "Random calibration batches when no --calib-data is given (default 8; batch k uses seed + k)", group: "Calibration data:" });
  return executionOptions(d);
}

function dataArgs(a: Raw): CalibDataArgs & { segmentLayers?: number; optimization?: OptimizationLevel } {
  if (a["save-inputs"] !== undefined) throw new UserError("--save-inputs: not available for calib (the calibration data are already files or seeded)");
  if (a["segment-memory"] !== undefined) throw new UserError("--segment-memory: not available for calib (its segments are cut by --segment-layers, or at 16M of activations by default)");
  const seg = a["segment-layers"] as number | undefined;
  return {
    calibData: a["calib-data"] as string | undefined,
    calibBatches: a["calib-batches"] === undefined ? undefined : parseCalibBatches(a["calib-batches"]),
    inputs: inputArgs(a),
    allowExternalDataOutside: Boolean(a["allow-external-data-outside"]),
    segmentLayers: seg,
    optimization: a["ort-optimization"] as OptimizationLevel | undefined,
    fusion: a.fusion === undefined ? undefined : parseFusionMode(a.fusion),
  };
}

function num(flag: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UserError(`${flag} ${String(v)}: expected a number`);
  return n;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? "-" : `${(100 * x).toPrecision(3)}%`);
const db = (x: number | null | undefined) => (x === null || x === undefined ? "-" : x >= Number.MAX_VALUE ? "inf" : x <= -Number.MAX_VALUE ? "-inf" : x.toFixed(1));

export function printBuild(cli: Cli, r: CalibBuildResult, quiet: boolean): void {
  const o = (s: string) => cli.io.out(s);
  o(`calibrated ${r.tensors.length} tensors of ${r.model} with ${r.algo}${r.percentile !== null ? ` (p = ${r.percentile})` : ""} on ${r.batches} batch${r.batches === 1 ? "" : "es"} in ${r.seconds.toFixed(1)} s (data: ${r.data})`);
  if (!quiet) {
    o(table(["tensor", "max |x|", "amax", "scale", "amax/max"], r.tensors.map((t) => [t.tensor, fmtNum(t.max), fmtNum(t.amax), t.scale.toExponential(6), t.max > 0 ? (t.amax / t.max).toFixed(3) : "-"]), ["l", "r", "r", "r", "r"]));
  }
  if (r.unobservable.length) o(`not in the cache (values cannot be observed): ${r.unobservable.join(", ")}`);
  o(`wrote ${r.cache} (TRT-${r.trt_version}-${r.algorithm}) and ${r.sidecar}`);
}

export function printCheck(cli: Cli, r: CalibCheckResult, quiet: boolean, top: number): void {
  const o = (s: string) => cli.io.out(s);
  o(`calib check ${r.model}`);
  o(`  cache: ${describeCache(r.cache)}${r.expected_algo ? ` (expected ${CACHE_ALGORITHM_NAMES[r.expected_algo]}${r.algorithm_mismatch ? ": MISMATCH" : ""})` : ""}`);
  o(`  data: ${r.data}; statistics over ${r.batches} batch${r.batches === 1 ? "" : "es"}, layer errors over ${r.check_batches}`);
  const qt = r.int8.type ?? "int8";
  o(`  ${qt}: ${r.int8.int8_layers} of ${r.int8.layers} layers in ${qt} (activations ${r.int8.activation_range}), the rest in ${r.int8.fallback_precision}`);
  if (!quiet) {
    o("");
    o(
      table(
        ["tensor", "cache amax", "max |x|", "p99.9", "p99.99", "clipped", "zero", "SQNR dB", "bulk dB", "flags"],
        r.tensors.map((t) => [
          t.tensor,
          fmtNum(t.cache_amax),
          fmtNum(t.observed?.max ?? null),
          fmtNum(t.observed?.p99_9 ?? null),
          fmtNum(t.observed?.p99_99 ?? null),
          pct(t.quality?.clipped_fraction),
          pct(t.quality?.zero_fraction),
          db(t.quality?.sqnr_db),
          db(t.quality?.bulk_sqnr_db),
          t.flags.map((f) => (f.severity === "harmful" ? f.code.toUpperCase() : f.code)).join(",") || "-",
        ]),
        ["l", "r", "r", "r", "r", "r", "r", "r", "r", "l"],
      ),
    );
    o("");
    // The calibrator alternatives in a second table, so that both fit the line width.
    o(
      table(
        ["tensor", "entropy", "minmax", "percentile", "mse"],
        r.tensors.map((t) => {
          const c = (al: CalibAlgo) => (t.calibrators ? `${fmtNum(t.calibrators[al].amax)} (${db(t.calibrators[al].bulk_sqnr_db)})` : "-");
          return [t.tensor, c("entropy"), c("minmax"), c("percentile"), c("mse")];
        }),
        ["l", "r", "r", "r", "r"],
      ),
    );
    o("  (calibrator columns: the amax each algorithm would choose on this data, with its bulk SQNR in dB; bulk = the 99.9% smallest |x|; FLAGS in capitals are harmful)");
    o("");
    o(
      table(
        ["#", "layer", "op", "precision", "local rel L2", "local SQNR dB", "end-to-end rel L2", "end-to-end SQNR dB"],
        r.layers.map((l) => [String(l.index), l.layer, l.op_type, l.precision, fmtNum(l.local?.rel_l2 ?? (l.precision === "fp32" ? 0 : null)), db(l.local?.sqnr_db ?? (l.precision === "fp32" ? Infinity : null)), fmtNum(l.end_to_end?.rel_l2 ?? null), db(l.end_to_end?.sqnr_db)]),
        ["r", "l", "l", "l", "r", "r", "r", "r"],
      ),
    );
    for (const l of r.layers) if (l.fallback_reason) o(`  fallback ${l.layer} (${l.op_type}) -> ${l.precision}: ${l.fallback_reason}`);
  }
  for (const out of r.outputs) {
    o(`output ${out.tensor}: end to end rel L2 ${fmtNum(out.rel_l2)}, SQNR ${db(out.sqnr_db)} dB (${out.passed ? "within" : "EXCEEDS"} the int8 threshold ${out.threshold})`);
  }
  if (r.unknown_in_cache.length) o(`stale cache entries (no such tensor in the model): ${r.unknown_in_cache.length} (${r.unknown_in_cache.slice(0, 5).join(", ")}${r.unknown_in_cache.length > 5 ? ", ..." : ""})`);
  if (r.missing_from_cache.length) o(`model tensors missing from the cache: ${r.missing_from_cache.length} (${r.missing_from_cache.slice(0, 5).join(", ")}${r.missing_from_cache.length > 5 ? ", ..." : ""})`);
  if (r.algorithm_mismatch) o(`algorithm: the cache was made by ${r.cache.algorithm}, --algo asked for ${r.expected_algo ? CACHE_ALGORITHM_NAMES[r.expected_algo] : "?"}`);
  o("");
  if (r.worst.length === 0) o("worst tensors: none flagged");
  else {
    o(`worst tensors (${r.worst.length} flagged${r.worst.length > top ? `, top ${top} shown` : ""}):`);
    for (const w of r.worst.slice(0, top)) {
      o(`  ${w.rank}. ${w.tensor} [${w.flags.join(", ")}]${w.harmful ? " HARMFUL" : ""}`);
      o(`     ${w.summary}`);
      o(`     suggestion: ${w.suggestion}`);
    }
  }
  o(
    r.passed
      ? `PASSED: no tensor flagged harmful (thresholds: clipped <= ${r.thresholds.maxClipFraction}, bulk SQNR >= ${r.thresholds.minSqnrDb} dB, amax <= ${r.thresholds.maxRangeRatio}x p99.9)`
      : `FAILED: ${r.harmful_tensors.length} tensor${r.harmful_tensors.length === 1 ? "" : "s"} flagged harmful: ${r.harmful_tensors.join(", ")}`,
  );
}

export function registerCalib(y: Argv, cli: Cli): void {
  y.command("calib", "INT8 calibration: build a TensorRT calibration cache, or check one against the data", (c) =>
    c
      .command(
        "build <model>",
        "Calibrate every floating activation and write a TensorRT cache plus a JSON sidecar (<cache>.json)",
        (b) =>
          outputOptions(dataOptions(b.positional("model", { type: "string", describe: "ONNX model" })))
            .option("algo", { type: "string", default: "entropy", describe: `Calibration algorithm: ${CALIB_ALGOS.join("|")} (entropy = TensorRT's EntropyCalibration2)`, group: "Calibration:" })
            .option("percentile", { type: "number", describe: "Percentile for --algo percentile (default 99.99)", group: "Calibration:" })
            .option("output", { alias: "o", type: "string", describe: "The TensorRT cache to write (the sidecar goes to FILE.json)", group: "Calibration:" })
            .option("trt-version", { type: "string", describe: "TensorRT version digits in the header (default 8601 = 8.6.1; use your TensorRT's, e.g. 100300)", group: "Calibration:" }),
        async (a) => {
          if (!a.output) throw new UserError("calib build: give the cache to write with -o FILE.cache");
          const h = cli.hooks(a);
          const r = await calibBuild(
            {
              ...dataArgs(a),
              model: a.model as string,
              algo: parseCalibAlgo(String(a.algo), "--algo"),
              percentile: a.percentile === undefined ? undefined : parsePercentile(a.percentile),
              output: a.output,
              trtVersion: a["trt-version"] as string | undefined,
            },
            h,
          ).finally(() => h.done());
          printBuild(cli, r, Boolean(a.quiet));
          writeJson(a.json, r);
        },
      )
      .command(
        "check <model>",
        "Check a calibration cache against the data: per-tensor ranges, per-layer INT8 errors, flags and suggestions (exit 1 when a tensor is flagged harmful)",
        (b) =>
          outputOptions(dataOptions(b.positional("model", { type: "string", describe: "ONNX model" })))
            .option("calibration-cache", { type: "string", describe: "The cache to check: TensorRT text cache (any version) or trt-debug JSON sidecar", group: "Calibration:" })
            .option("algo", { type: "string", describe: `The algorithm the cache should have been made with (${CALIB_ALGOS.join("|")}); flagged when the header disagrees`, group: "Calibration:" })
            .option("percentile", { type: "number", describe: "Percentile of the percentile calibrator shown as an alternative (default 99.99)", group: "Calibration:" })
            .option("max-clip-fraction", { type: "number", describe: `Harmful 'clipping' when more than this fraction of a tensor's values is clipped (default ${DEFAULT_THRESHOLDS.maxClipFraction})`, group: "Thresholds:" })
            .option("min-sqnr", { type: "number", describe: `Harmful 'low-sqnr' when the SQNR of the bulk (values up to the 99.9th percentile of |x|) is below this, in dB (default ${DEFAULT_THRESHOLDS.minSqnrDb})`, group: "Thresholds:" })
            .option("max-range-ratio", { type: "number", describe: `Harmful 'wasted-range' when amax exceeds this multiple of the 99.9th percentile of |x| (default ${DEFAULT_THRESHOLDS.maxRangeRatio})`, group: "Thresholds:" })
            .option("check-batches", { type: "number", describe: "Batches used for the per-layer INT8 errors (default 1)", group: "Calibration:" })
            .option("fp16", { type: "boolean", describe: "Layers that cannot run in int8 fall back to fp16 (as --int8 --fp16)", group: "Calibration:" })
            .option("int8-range", { type: "string", describe: "INT8 activation clamp: 128 = [-128,127] (default) or 127 = [-127,127]", group: "Calibration:" })
            .option("top", { type: "number", default: 10, describe: "Worst tensors to print", group: "Output:" })
            .options(REPORT_OPTIONS),
        async (a) => {
          // An explicitly quantized model is checked with the scales of its Q nodes (no cache).
          const qdq = !a["calibration-cache"] && isQdqModel(a.model as string, Boolean(a["allow-external-data-outside"]));
          if (!a["calibration-cache"] && !qdq) throw new UserError("calib check: give the cache to check with --calibration-cache FILE (or a Q/DQ model, whose scales are checked)");
          const h = cli.hooks(a);
          const run = (args: Omit<Parameters<typeof calibCheck>[0], "calibrationCache">) =>
            qdq ? calibCheckQdq(args, h) : calibCheck({ ...args, calibrationCache: String(a["calibration-cache"]) }, h);
          const r = await run(
            {
              ...dataArgs(a),
              model: a.model as string,
              algo: a.algo === undefined ? undefined : parseCalibAlgo(String(a.algo), "--algo"),
              percentile: a.percentile === undefined ? undefined : parsePercentile(a.percentile),
              thresholds: { maxClipFraction: num("--max-clip-fraction", a["max-clip-fraction"]), minSqnrDb: num("--min-sqnr", a["min-sqnr"]), maxRangeRatio: num("--max-range-ratio", a["max-range-ratio"]) },
              checkBatches: num("--check-batches", a["check-batches"]),
              fallback: (a.fp16 ? "fp16" : "fp32") as Precision,
              range: a["int8-range"] === undefined ? undefined : parseInt8Range(a["int8-range"]),
            },
          ).finally(() => h.done());
          const top = num("--top", a.top) ?? 10;
          printCheck(cli, r, Boolean(a.quiet), Math.max(0, Math.floor(top)));
          writeJson(a.json, r);
          writeReport(a.report, r);
          if (!r.passed) cli.exitCode = 1;
        },
      )
      .demandCommand(1, "give a calib command: build or check"),
  );
}
