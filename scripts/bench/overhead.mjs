/**
 * The overhead section (`npm run bench -- --only overhead`, and scripts/bench/device.sh on the
 * device machine): trt-debug's commands side by side with a bare onnxruntime-node process on
 * one model, each job a fresh process timed from spawn to exit, peak RSS from /usr/bin/time.
 * Jobs alternate, best of N (default 2). Plain JavaScript over the compiled dist/, so that it
 * runs where only node and the production dependencies are (docs/performance.md).
 *
 *   node scripts/bench/overhead.mjs MODEL [--label NAME] [--reps N] [--polygraphy "CMD ..."]
 *                                         [--sweep] [--no-profile] [--baseline BIN] [--activations BYTES]
 *
 * --polygraphy: the polygraphy launcher (e.g. "python3 poly/bin/polygraphy"); adds
 *   `polygraphy run MODEL --onnxrt --onnx-outputs mark all --save-outputs X.json` and the
 *   speedup / RSS-fraction lines against `trt-debug run --fp32 --mark-all --save-outputs`.
 * The profile lines: one in-process `run --fp32 --mark-all --save-outputs` and one `compare --fp16`
 *   (scripts/bench/profile-child.mjs), onnxruntime's environment created before either.
 * --sweep: also times `run --fp32 --mark-all --save-outputs` under several segment settings,
 *   and profiles the capture with --segment-layers 8 (the cut before --segment-memory).
 * --baseline: another build's bin/trt-debug.js (e.g. the commit before the optimisations): its
 *   run and compare are timed in the same alternation, and its dump is checked byte-identical.
 * --ab-env VAR=VALUE[,VAR=VALUE...]: also times run --save-outputs and compare with those
 *   environment variables set (e.g. TRT_DEBUG_NO_MALLOPT=1: without the addon's malloc tuning),
 *   same alternation, dump checked byte-identical. Repeatable (one variant each).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as crypto from "node:crypto";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const BIN = path.join(ROOT, "bin/trt-debug.js");
const TIME = "/usr/bin/time";

/** One job in a fresh process: wall ms (spawn to exit) and peak RSS in MB (null without /usr/bin/time). */
export function job(cmd, args, opts = {}) {
  const haveTime = fs.existsSync(TIME);
  const t0 = performance.now();
  const r = haveTime
    ? spawnSync(TIME, ["-f", "TRTDBG_MAXRSS_KB=%M", cmd, ...args], { encoding: "utf8", env: { ...process.env, TRT_DEBUG_QUIET_NUMERIC: "1", ...opts.env }, maxBuffer: 1 << 26 })
    : spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, TRT_DEBUG_QUIET_NUMERIC: "1", ...opts.env }, maxBuffer: 1 << 26 });
  const ms = performance.now() - t0;
  const ok = opts.okCodes ?? [0];
  if (r.error || !ok.includes(r.status)) {
    throw new Error(`bench overhead: ${cmd} ${args.join(" ")} failed (exit ${r.status}): ${String(r.stderr).trim().split("\n").slice(-3).join(" | ")}`);
  }
  const m = /TRTDBG_MAXRSS_KB=(\d+)/.exec(String(r.stderr));
  return { ms, rssMB: m ? Number(m[1]) / 1024 : null, stdout: String(r.stdout) };
}

function dirBytes(p) {
  if (!fs.existsSync(p)) return 0;
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const f of fs.readdirSync(p)) n += dirBytes(path.join(p, f));
  return n;
}

function hashFiles(p) {
  const h = crypto.createHash("sha256");
  for (const f of fs.readdirSync(p).sort()) h.update(f).update(fs.readFileSync(path.join(p, f)));
  return h.digest("hex");
}

/** Bytes of every node output of the model (what `--mark-all --fusion none` captures), from the inferred shapes. */
async function activationBytes(model) {
  const { prepareModelFile } = await import("../../dist/runtime/capture-runs.js");
  const { estimateTensorBytes } = await import("../../dist/runtime/executor.js");
  const { plannedTensorBytes } = await import("../../dist/runtime/size-estimate.js");
  const p = await prepareModelFile(model, { fusion: "none" });
  const planned = plannedTensorBytes(p.model, p.types);
  let bytes = 0, unknown = 0, estimated = 0;
  for (const l of p.model.graph.layers) {
    for (const o of l.outputs) {
      if (o === "") continue;
      let b = estimateTensorBytes(p.types, o);
      if (b === 0 && (planned.get(o) ?? 0) > 0) {
        b = planned.get(o);
        estimated++;
      }
      if (b === 0) unknown++;
      bytes += b;
    }
  }
  return { bytes, unknown, estimated };
}

const fmt = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(3));
const line = (name, value, unit, note) => ({ name, value, unit, ...(note ? { note } : {}) });

/**
 * Measure one model. Returns BenchLines ({ name, value, unit, note? }).
 * @param {{ model: string, label?: string, reps?: number, polygraphy?: string[] | null, sweep?: boolean, profile?: boolean, activations?: number | null, baseline?: string | null }} o
 */
export async function measureOverhead(o) {
  const label = o.label ?? path.basename(o.model);
  const reps = o.reps ?? 2;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "trtdbg-overhead-"));
  const node = process.execPath;
  const out = (k) => path.join(tmp, k);
  /** name -> { argv, env?, okCodes?, outPath? } */
  const jobs = {
    bare: { cmd: node, args: [path.join(HERE, "bare-child.mjs"), o.model] },
    save: { cmd: node, args: [BIN, "run", o.model, "--fp32", "--mark-all", "--save-outputs", out("save")], outPath: out("save") },
    nosave: { cmd: node, args: [BIN, "run", o.model, "--fp32", "--mark-all"] },
    compare: { cmd: node, args: [BIN, "compare", o.model, "--fp16"], okCodes: [0, 1] },
    // compare's two sides one after the other vs the candidate in a worker thread (the default
    // picks one of them by cores and size), both writing their dumps for a byte comparison
    "compare threads 1": { cmd: node, args: [BIN, "compare", o.model, "--fp16", "--compare-threads", "1", "--save-outputs", out("ct1")], okCodes: [0, 1], outPath: out("ct1") },
    "compare threads 2": { cmd: node, args: [BIN, "compare", o.model, "--fp16", "--compare-threads", "2", "--save-outputs", out("ct2")], okCodes: [0, 1], outPath: out("ct2") },
  };
  if (o.baseline) {
    jobs["baseline save"] = { cmd: node, args: [o.baseline, "run", o.model, "--fp32", "--mark-all", "--save-outputs", out("bsave")], outPath: out("bsave") };
    jobs["baseline nosave"] = { cmd: node, args: [o.baseline, "run", o.model, "--fp32", "--mark-all"] };
    jobs["baseline compare"] = { cmd: node, args: [o.baseline, "compare", o.model, "--fp16"], okCodes: [0, 1] };
  }
  for (const ab of o.abEnv ?? []) {
    const env = { env: Object.fromEntries(ab.split(",").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])) };
    jobs[`ab save ${ab}`] = { cmd: node, args: [BIN, "run", o.model, "--fp32", "--mark-all", "--save-outputs", out("absave")], outPath: out("absave"), ...env };
    jobs[`ab compare ${ab}`] = { cmd: node, args: [BIN, "compare", o.model, "--fp16"], okCodes: [0, 1], ...env };
  }
  if (o.polygraphy) {
    jobs["polygraphy nomark"] = { cmd: o.polygraphy[0], args: [...o.polygraphy.slice(1), "run", o.model, "--onnxrt"] };
    jobs.polygraphy = { cmd: o.polygraphy[0], args: [...o.polygraphy.slice(1), "run", o.model, "--onnxrt", "--onnx-outputs", "mark", "all", "--save-outputs", out("poly.json")], outPath: out("poly.json") };
  }
  if (o.sweep) {
    for (const s of [["--segment-layers", "8"], ["--segment-memory", "16M"], ["--segment-memory", "32M"], ["--segment-memory", "64M"], ["--segment-memory", "256M"], ["--segment-memory", "4G"]]) {
      jobs[`sweep ${s.join(" ")}`] = { cmd: node, args: [BIN, "run", o.model, "--fp32", "--mark-all", "--save-outputs", out("sweep"), ...s], outPath: out("sweep") };
    }
    for (const s of [["--segment-layers", "8"], ["--segment-memory", "16M"], ["--segment-memory", "4G"]]) {
      jobs[`sweep-compare ${s.join(" ")}`] = { cmd: node, args: [BIN, "compare", o.model, "--fp16", ...s], okCodes: [0, 1] };
    }
  }
  const best = {};
  const written = {};
  const hashes = {};
  try {
    for (let r = 0; r < reps; r++) {
      for (const [k, j] of Object.entries(jobs)) {
        if (j.outPath) fs.rmSync(j.outPath, { recursive: true, force: true });
        const res = job(j.cmd, j.args, j);
        if (j.outPath) written[k] = dirBytes(j.outPath);
        if (k === "save" || k === "baseline save" || k.startsWith("ab save ") || k.startsWith("compare threads ")) hashes[k] = hashFiles(j.outPath);
        if (!best[k] || res.ms < best[k].ms) best[k] = res;
      }
    }
    const profileOf = (extra) => {
      let best = null;
      for (let r = 0; r < reps; r++) {
        fs.rmSync(out("prof"), { recursive: true, force: true });
        const res = job(node, [path.join(HERE, "profile-child.mjs"), o.model, out("prof"), ...extra]);
        const p = JSON.parse(res.stdout.trim().split("\n").pop());
        if (!best || p.ms < best.ms) best = p;
      }
      return best;
    };
    const profiles = [];
    if (o.profile !== false) {
      profiles.push(["profile", profileOf([])]);
      profiles.push(["profile compare --fp16", profileOf(["compare"])]);
      if (o.sweep) profiles.push(["profile with --segment-layers 8", profileOf(["8"])]);
    }
    const act = o.activations != null ? { bytes: o.activations, unknown: 0 } : await activationBytes(o.model);
    const b = best.bare, s = best.save;
    const mb = (x) => (x === null ? "n/a" : `${x.toFixed(0)} MB`);
    const lines = [
      line(`${label}: bare onnxruntime-node process (load + session + 1 run)`, b.ms, "ms", `peak RSS ${mb(b.rssMB)}`),
      line(`${label}: run --fp32 --mark-all --save-outputs`, s.ms, "ms", `peak RSS ${mb(s.rssMB)}, ${(written.save / 1e6).toFixed(1)} MB of Arrow`),
      line(`${label}: run --mark-all --save-outputs / bare (target <= 1.25)`, s.ms / b.ms, "x"),
      line(`${label}: run --fp32 --mark-all without --save-outputs`, best.nosave.ms, "ms", `${(best.nosave.ms / b.ms).toFixed(2)}x bare, peak RSS ${mb(best.nosave.rssMB)}`),
      line(`${label}: compare --fp16`, best.compare.ms, "ms", `peak RSS ${mb(best.compare.rssMB)}`),
      line(`${label}: compare --fp16 / bare (target <= 2.2)`, best.compare.ms / b.ms, "x"),
      line(`${label}: sum of activations`, act.bytes / 1e6, "MB", `every node output${act.estimated ? `; ${act.estimated} of unknown size estimated from their inputs` : ""}${act.unknown ? `; ${act.unknown} of unknown size not counted` : ""}`),
    ];
    const c1 = best["compare threads 1"], c2 = best["compare threads 2"];
    lines.push(line(`${label}: compare --fp16 --save-outputs --compare-threads 1 (one after the other, all cores each)`, c1.ms, "ms", `peak RSS ${mb(c1.rssMB)}`));
    lines.push(line(`${label}: compare --fp16 --save-outputs --compare-threads 2 (candidate in a worker thread, half the cores each)`, c2.ms, "ms", `peak RSS ${mb(c2.rssMB)}`));
    lines.push(line(`${label}: compare --compare-threads 2 / --compare-threads 1`, c2.ms / c1.ms, "x"));
    lines.push(line(`${label}: compare dumps byte-identical, --compare-threads 1 vs 2 (1 = yes)`, hashes["compare threads 1"] === hashes["compare threads 2"] ? 1 : 0, ""));
    if (s.rssMB !== null) {
      lines.push(line(`${label}: peak RSS run --mark-all --save-outputs`, s.rssMB, "MB", `bare ${mb(b.rssMB)}`));
      lines.push(line(`${label}: peak RSS / sum of activations (target < 1)`, s.rssMB / (act.bytes / 1e6), "x"));
    }
    for (const [k, r] of Object.entries(best)) {
      if (k.startsWith("sweep ")) lines.push(line(`${label}: run --fp32 --mark-all --save-outputs ${k.slice(6)}`, r.ms, "ms", `${(r.ms / b.ms).toFixed(2)}x bare, peak RSS ${mb(r.rssMB)}`));
      if (k.startsWith("sweep-compare ")) lines.push(line(`${label}: compare --fp16 ${k.slice(14)}`, r.ms, "ms", `${(r.ms / b.ms).toFixed(2)}x bare, peak RSS ${mb(r.rssMB)}`));
    }
    if (best["baseline save"]) {
      const bs = best["baseline save"];
      lines.push(line(`${label}: baseline run --fp32 --mark-all --save-outputs`, bs.ms, "ms", `${(bs.ms / b.ms).toFixed(2)}x bare, peak RSS ${mb(bs.rssMB)}`));
      lines.push(line(`${label}: baseline run --fp32 --mark-all without --save-outputs`, best["baseline nosave"].ms, "ms", `${(best["baseline nosave"].ms / b.ms).toFixed(2)}x bare`));
      lines.push(line(`${label}: baseline compare --fp16`, best["baseline compare"].ms, "ms", `${(best["baseline compare"].ms / b.ms).toFixed(2)}x bare, peak RSS ${mb(best["baseline compare"].rssMB)}`));
      lines.push(line(`${label}: dump byte-identical to the baseline's (1 = yes)`, hashes.save === hashes["baseline save"] ? 1 : 0, ""));
    }
    for (const ab of o.abEnv ?? []) {
      const as = best[`ab save ${ab}`], ac = best[`ab compare ${ab}`];
      lines.push(line(`${label}: with ${ab} run --fp32 --mark-all --save-outputs`, as.ms, "ms", `${(as.ms / b.ms).toFixed(2)}x bare, peak RSS ${mb(as.rssMB)}`));
      lines.push(line(`${label}: with ${ab} compare --fp16`, ac.ms, "ms", `${(ac.ms / b.ms).toFixed(2)}x bare, peak RSS ${mb(ac.rssMB)}`));
      lines.push(line(`${label}: with ${ab} dump byte-identical (1 = yes)`, hashes.save === hashes[`ab save ${ab}`] ? 1 : 0, ""));
    }
    if (best.polygraphy) {
      const p = best.polygraphy;
      lines.push(line(`${label}: polygraphy run --onnxrt --onnx-outputs mark all --save-outputs`, p.ms, "ms", `peak RSS ${mb(p.rssMB)}, ${(written.polygraphy / 1e6).toFixed(1)} MB of JSON`));
      lines.push(line(`${label}: polygraphy run --onnxrt (no marking: its start-up + 1 run)`, best["polygraphy nomark"].ms, "ms", `peak RSS ${mb(best["polygraphy nomark"].rssMB)}`));
      lines.push(line(`${label}: vs polygraphy: speedup (target >= 10)`, p.ms / s.ms, "x"));
      if (p.rssMB !== null && s.rssMB !== null) lines.push(line(`${label}: vs polygraphy: RSS fraction (target <= 0.125)`, s.rssMB / p.rssMB, "x"));
    }
    for (const [name, profile] of profiles) {
      let sum = 0;
      for (const ph of profile.phases) {
        // phases nested in another (type inference inside the layer model) are not added twice
        if (!ph.phase.startsWith("  ")) sum += ph.ms;
        lines.push(line(`${label}: ${name} ${ph.phase}`, ph.ms, "ms", `${ph.count}x`));
      }
      lines.push(line(`${label}: ${name} other (input generation, plan, stats glue, GC)`, Math.max(0, profile.ms - sum), "ms"));
      if (profile.envMs !== undefined) lines.push(line(`${label}: ${name} onnxruntime environment (first session of the process, before the profile; a bare process pays it too)`, profile.envMs, "ms"));
      lines.push(line(`${label}: ${name} total in-process (runModel / compareModel)`, profile.ms, "ms", "the process adds node start-up and module loading"));
    }
    return lines;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function formatLines(lines) {
  return lines.map((l) => `${l.name}: ${fmt(l.value)} ${l.unit}${l.note ? ` (${l.note})` : ""}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const o = { model: "", polygraphy: null, sweep: false, profile: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--label") o.label = argv[++i];
    else if (a === "--reps") o.reps = Number(argv[++i]);
    else if (a === "--polygraphy") o.polygraphy = argv[++i].split(" ").filter(Boolean);
    else if (a === "--sweep") o.sweep = true;
    else if (a === "--no-profile") o.profile = false;
    else if (a === "--baseline") o.baseline = argv[++i];
    else if (a === "--activations") o.activations = Number(argv[++i]);
    else if (a === "--ab-env") (o.abEnv ??= []).push(argv[++i]);
    else o.model = a;
  }
  if (!o.model) {
    console.error("usage: node scripts/bench/overhead.mjs MODEL [--label NAME] [--reps N] [--polygraphy CMD] [--sweep] [--no-profile]");
    process.exit(2);
  }
  for (const l of formatLines(await measureOverhead(o))) console.log(l);
}
