/**
 * Fuzzing trt-debug's file readers through the CLI.
 *
 *   npm run fuzz -- --count 10000 --seed 1 [--jobs 2] [--timeout 20000] [--out DIR] [--kinds onnx,dump,cache,plan]
 *
 * Mutates the golden models (golden/*.onnx) and Arrow dumps, calibration caches and plans it
 * makes itself from them (truncation, bit flips, byte edits, and structured protobuf edits:
 * dims, types, names, attributes, huge/negative dims, dangling names, cycles, bad external
 * data), runs the CLI on each, and tallies exit codes, signals, stack traces and hangs. A case
 * fails on exit 3 (a bug), death by a signal, a stack trace or "internal error" on stderr, or a
 * hang (no answer within --timeout). Exit status: 0 when no case failed, 1 otherwise.
 *
 * Cases run in-process (the CLI's runCli with captured output) inside a pool of worker
 * processes; a worker that hangs or dies is killed/replaced and the case recorded, so a hang
 * or a crash never stops the run. Needs the TypeScript build (dist/): `npm run fuzz` builds it.
 * Not part of the shipped package.
 */
import { fork, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, StringStringEntryProtoSchema, TensorProto_DataLocation, type ModelProto } from "onnx-buf";
import { fixtureRandom } from "../test/support/random.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");

// ---------------------------------------------------------------------------------------------
// Deterministic PRNG (test/support/random.ts, shared with the tests)

type Rng = () => number;
const int = (r: Rng, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)]!;

// ---------------------------------------------------------------------------------------------
// Byte-level mutations

function mutateBytes(r: Rng, src: Uint8Array): { bytes: Uint8Array; how: string } {
  const b = new Uint8Array(src);
  const op = int(r, 6);
  if (op === 0 || b.length < 4) {
    const n = int(r, b.length);
    return { bytes: b.subarray(0, n), how: `truncate to ${n} bytes` };
  }
  if (op === 1) {
    const k = 1 + int(r, 8);
    for (let i = 0; i < k; i++) b[int(r, b.length)]! ^= 1 << int(r, 8);
    return { bytes: b, how: `${k} bit flips` };
  }
  if (op === 2) {
    const k = 1 + int(r, 4);
    for (let i = 0; i < k; i++) b[int(r, b.length)] = pick(r, [0, 0xff, 0x7f, 0x80, 0x01]);
    return { bytes: b, how: `${k} bytes set to boundary values` };
  }
  if (op === 3) {
    const at = int(r, b.length), n = 1 + int(r, 64);
    const out = new Uint8Array(b.length + n);
    out.set(b.subarray(0, at));
    for (let i = 0; i < n; i++) out[at + i] = int(r, 256);
    out.set(b.subarray(at), at + n);
    return { bytes: out, how: `${n} random bytes inserted at ${at}` };
  }
  if (op === 4) {
    const at = int(r, b.length), n = 1 + int(r, Math.min(256, b.length - at));
    const out = new Uint8Array(b.length - n);
    out.set(b.subarray(0, at));
    out.set(b.subarray(at + n), at);
    return { bytes: out, how: `${n} bytes deleted at ${at}` };
  }
  // 4-byte little-endian integer at a random place set to a huge/negative value
  const at = int(r, b.length - 4);
  new DataView(b.buffer, b.byteOffset).setInt32(at, pick(r, [-1, 0x7fffffff, -0x80000000, 0x10000000]), true);
  return { bytes: b, how: `int32 at ${at} set to a boundary value` };
}

// ---------------------------------------------------------------------------------------------
// Structured ONNX mutations (decode with onnx-buf, edit, re-encode)

const HUGE_DIMS = [-1n, -7n, 0n, 1n << 31n, 1n << 40n, (1n << 62n) + 1n, -(1n << 63n), 4096n];

function mutateModel(r: Rng, m: ModelProto, dataDir: string): string {
  const g = m.graph!;
  const op = int(r, 16);
  const node = g.node.length ? pick(r, g.node) : undefined;
  const init = g.initializer.length ? pick(r, g.initializer) : undefined;
  switch (op) {
    case 0: {
      const vi = pick(r, [...g.input, ...g.output]);
      const dims = vi?.type?.value.case === "tensorType" ? vi.type.value.value.shape?.dim : undefined;
      if (!vi || !dims?.length) return "no-op";
      const d = pick(r, dims);
      const v = pick(r, HUGE_DIMS);
      d.value = { case: "dimValue", value: v };
      return `value_info '${vi.name}' dim set to ${v}`;
    }
    case 1: {
      if (!init || !init.dims.length) return "no-op";
      const k = int(r, init.dims.length);
      const v = pick(r, HUGE_DIMS);
      init.dims[k] = v;
      return `initializer '${init.name}' dims[${k}] = ${v}`;
    }
    case 2: {
      if (!init) return "no-op";
      const t = pick(r, [0, 2, 3, 7, 8, 9, 10, 11, 13, 16, 17, 21, 22, 23, 99, -1]);
      init.dataType = t;
      return `initializer '${init.name}' data_type = ${t}`;
    }
    case 3: {
      if (!node || !node.input.length) return "no-op";
      const k = int(r, node.input.length);
      node.input[k] = "dangling_" + int(r, 1000);
      return `node '${node.name}' input ${k} renamed to a dangling name`;
    }
    case 4: {
      if (g.node.length < 2) return "no-op";
      const first = g.node[0]!, last = g.node[g.node.length - 1]!;
      if (!first.input.length || !last.output.length) return "no-op";
      first.input[0] = last.output[0]!;
      return `cycle: first node reads the last node's output`;
    }
    case 5: {
      if (!node || !node.attribute.length) return "no-op";
      const a = pick(r, node.attribute);
      a.i = pick(r, [-1n, 0n, 1n << 40n, -(1n << 62n), 3n]);
      a.f = pick(r, [NaN, Infinity, -1e38, 0]);
      if (a.ints.length) a.ints[int(r, a.ints.length)] = pick(r, [-1n, 0n, 1n << 40n, 99n]);
      a.type = pick(r, [a.type, 0, 1, 2, 7, 99]) as typeof a.type;
      return `node '${node.name}' attribute '${a.name}' edited`;
    }
    case 6: {
      if (!node) return "no-op";
      const t = pick(r, ["NoSuchOp", "Conv", "Loop", "If", "Reshape", "", "Gemm", "Cast"]);
      node.opType = t;
      return `node '${node.name}' op_type = '${t}'`;
    }
    case 7: {
      if (!init) return "no-op";
      // data.bin (4096 bytes) and link.bin (a symlink to /etc/hostname) exist next to the cases.
      const loc = pick(r, ["/etc/passwd", "../../../../etc/passwd", "file:///etc/passwd", "", "missing.bin", "data.bin", "/dev/zero", "sub/../../x", "link.bin", "data.bin"]);
      init.dataLocation = TensorProto_DataLocation.EXTERNAL;
      init.rawData = new Uint8Array(0);
      init.floatData = [];
      const entries: [string, string][] = [["location", loc]];
      if (r() < 0.5) entries.push(["offset", pick(r, ["0", "-5", "1e30", "abc", "4"])]);
      if (r() < 0.5) entries.push(["length", pick(r, ["0", "16", "99999999999", "-1"])]);
      init.externalData = entries.map(([key, value]) => create(StringStringEntryProtoSchema, { key, value }));
      return `initializer '${init.name}' external data location '${loc}' (${entries.map((e) => e.join("=")).join(", ")})`;
    }
    case 8: {
      m.irVersion = pick(r, [0n, 1n, 2n, 3n, 13n, -1n, 1n << 40n]);
      return `ir_version = ${m.irVersion}`;
    }
    case 9: {
      const o = m.opsetImport[0];
      if (!o) return "no-op";
      o.version = pick(r, [0n, 1n, 6n, 26n, -1n, 1n << 40n]);
      return `opset = ${o.version}`;
    }
    case 10: {
      if (!node) return "no-op";
      g.node.splice(g.node.indexOf(node), 1);
      return `node '${node.name}' removed`;
    }
    case 11: {
      if (!init) return "no-op";
      const raw = init.rawData;
      init.rawData = raw.subarray(0, int(r, raw.length + 1));
      return `initializer '${init.name}' raw_data truncated to ${init.rawData.length} bytes`;
    }
    case 12: {
      if (!node || !node.output.length) return "no-op";
      const other = pick(r, g.node);
      if (other.output.length) node.output[0] = other.output[0]!;
      return `node '${node.name}' output 0 duplicates node '${other.name}''s`;
    }
    case 13: {
      const vi = pick(r, g.input);
      if (!vi?.type) return "no-op";
      if (vi.type.value.case === "tensorType") vi.type.value.value.elemType = pick(r, [0, 2, 8, 9, 10, 11, 16, 99]);
      return `input '${vi.name}' elem_type edited`;
    }
    case 14: {
      if (g.output.length) g.output[0]!.name = pick(r, ["", "nope", g.output[0]!.name + "_x"]);
      return `graph output renamed`;
    }
    default: {
      if (!init) return "no-op";
      init.dims = [];
      for (let k = 0, n = 1 + int(r, 4); k < n; k++) init.dims.push(pick(r, HUGE_DIMS));
      return `initializer '${init.name}' dims = [${init.dims.join(",")}]`;
    }
  }
  void dataDir;
}

// ---------------------------------------------------------------------------------------------
// Cases

export interface FuzzCase {
  id: number;
  kind: "onnx" | "dump" | "cache" | "plan";
  how: string;
  argv: string[];
  /** Mutated file written for this case. */
  file: string;
}

interface Seeds {
  models: { path: string; bytes: Uint8Array }[];
  dumps: { ref: string; cand: string };
  cache: { model: string; file: string };
  plan: { model: string; file: string };
}

/** Half the time a structured edit, else a byte-level mutation of the text. */
function mutateText(r: Rng, text: string, label: string, structured: () => { out: string; how: string }): { out: Uint8Array | string; how: string } {
  if (r() < 0.5) return structured();
  const mb = mutateBytes(r, new TextEncoder().encode(text));
  return { out: mb.bytes, how: `${label}: ${mb.how}` };
}

function writeCase(dir: string, id: number, ext: string, bytes: Uint8Array | string): string {
  const f = path.join(dir, `case-${id}.${ext}`);
  fs.writeFileSync(f, bytes);
  return f;
}

function makeCase(r: Rng, id: number, seeds: Seeds, dir: string, kinds: readonly FuzzCase["kind"][]): FuzzCase {
  const kind = pick(r, kinds);
  if (kind === "onnx") {
    const src = pick(r, seeds.models);
    let bytes: Uint8Array, how: string;
    if (r() < 0.55) {
      const m = fromBinary(ModelProtoSchema, src.bytes);
      const k = 1 + int(r, 2);
      const hows: string[] = [];
      for (let i = 0; i < k; i++) hows.push(mutateModel(r, m, dir));
      bytes = toBinary(ModelProtoSchema, m);
      how = `${path.basename(src.path)}: ${hows.join("; ")}`;
    } else {
      const mb = mutateBytes(r, src.bytes);
      bytes = mb.bytes;
      how = `${path.basename(src.path)}: ${mb.how}`;
    }
    const file = writeCase(dir, id, "onnx", bytes);
    const argv = pick(r, [
      ["run", file, "--fp16", "--quiet"],
      ["run", file, "--fp32", "--mark-all", "--quiet"],
      ["compare", file, "--fp16", "--quiet"],
      ["inspect", file, "--quiet"],
      ["validate", file, "--bf16", "--quiet"],
    ]);
    return { id, kind, how, argv, file };
  }
  if (kind === "dump") {
    const which = r() < 0.5 ? "ref" : "cand";
    const src = fs.readFileSync(seeds.dumps[which]);
    const mb = mutateBytes(r, src);
    const file = writeCase(dir, id, "arrow", mb.bytes);
    const other = which === "ref" ? seeds.dumps.cand : seeds.dumps.ref;
    const argv = r() < 0.7 ? (which === "ref" ? ["compare", file, other, "--quiet"] : ["compare", other, file, "--quiet"]) : ["validate", file, "--quiet"];
    return { id, kind, how: `${which} dump: ${mb.how}`, argv, file };
  }
  if (kind === "cache") {
    const text = fs.readFileSync(seeds.cache.file, "utf8");
    const { out, how } = mutateText(r, text, "cache", () => {
      const lines = text.split("\n");
      const k = int(r, lines.length);
      const edits = [
        (l: string) => l.replace(/: [0-9a-f]+$/, ": " + pick(r, ["zzzz", "ffffffff", "7f800000", "7fc00000", "00000000", "80000000", "", "1"])),
        (l: string) => l.replace(/^[^:]*/, pick(r, ["", "nope", ":", "a:b"])),
        () => pick(r, ["TRT-8601-EntropyCalibration2", "garbage", ":", "x: 1: 2", "\u0000\u0001", "{"]),
        () => "",
      ];
      lines[k] = pick(r, edits)(lines[k] ?? "");
      return { out: lines.join("\n"), how: `cache line ${k} edited` };
    });
    const file = writeCase(dir, id, "cache", out);
    return { id, kind, how, argv: ["run", seeds.cache.model, "--int8", "--calibration-cache", file, "--quiet"], file };
  }
  const text = fs.readFileSync(seeds.plan.file, "utf8");
  const { out, how } = mutateText(r, text, "plan", () => {
    const j = JSON.parse(text) as Record<string, unknown>;
    const edits: [string, () => void][] = [
      ["default = 'fp8'", () => (j.default = "fp8")],
      ["layers = {}", () => (j.layers = {})],
      ["layers[0] = null", () => ((j.layers as unknown[])[0] = null)],
      ["layers[0].pattern = 7", () => ((j.layers as Record<string, unknown>[])[0]!.pattern = 7)],
      ["layers[0].pattern = 'nope'", () => ((j.layers as Record<string, unknown>[])[0]!.pattern = "nope")],
      ["layers[0].pattern = '[' ", () => ((j.layers as Record<string, unknown>[])[0]!.pattern = "[")],
      ["format = 'x'", () => (j.format = "x")],
      ["root = []", () => Object.keys(j).forEach((k) => delete j[k])],
      ["default missing", () => delete j.default],
    ];
    const [name, f] = pick(r, edits);
    f();
    return { out: JSON.stringify(j), how: `plan: ${name}` };
  });
  const file = writeCase(dir, id, "json", out);
  return { id, kind, how, argv: ["run", seeds.plan.model, "--fp16", "--precision-plan", file, "--quiet"], file };
}

// ---------------------------------------------------------------------------------------------
// Worker: runs cases in-process

interface Result {
  id: number;
  code: number | null;
  signal: string | null;
  stderr: string;
  hang: boolean;
  ms: number;
}

async function workerMain(): Promise<void> {
  const mainJs = pathToFileURL(path.join(ROOT, "dist", "cli", "main.js")).href;
  const { runCli } = (await import(mainJs)) as { runCli: (argv: string[], io: { out(s: string): void; err(s: string): void; isTTY: boolean }) => Promise<number> };
  process.on("message", async (msg: { id: number; argv: string[] }) => {
    const err: string[] = [];
    const t0 = Date.now();
    let code: number;
    try {
      code = await runCli(msg.argv, { out: () => undefined, err: (s) => err.push(s), isTTY: false });
    } catch (e) {
      code = 3;
      err.push(`trt-debug: internal error (please report): ${(e as Error)?.stack ?? String(e)}`);
    }
    process.send!({ id: msg.id, code, signal: null, stderr: err.join("\n").slice(0, 4000), hang: false, ms: Date.now() - t0 } satisfies Result);
  });
  process.on("disconnect", () => process.exit(0)); // the driver is gone
  process.send!({ ready: true });
}

class Worker {
  child!: ChildProcess;
  ready!: Promise<void>;
  constructor(private readonly heapMb: number) {
    this.spawn();
  }
  spawn(): void {
    this.child = fork(fileURLToPath(import.meta.url), ["--worker"], {
      execArgv: ["--import", "tsx", `--max-old-space-size=${this.heapMb}`],
      env: { ...process.env, TRT_DEBUG_QUIET_NUMERIC: "1" },
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    this.child.stderr!.resume();
    this.ready = new Promise((res, rej) => {
      this.child.once("message", () => res());
      this.child.once("exit", (c, s) => rej(new Error(`fuzz worker exited during start (${c ?? s})`)));
    });
  }
  async run(c: FuzzCase, timeoutMs: number): Promise<Result> {
    await this.ready;
    const child = this.child;
    const t0 = Date.now();
    return new Promise<Result>((resolve) => {
      let done = false;
      const finish = (r: Result, respawn: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        child.removeListener("message", onMsg);
        child.removeListener("exit", onExit);
        if (respawn) {
          child.kill("SIGKILL");
          this.spawn();
        }
        resolve(r);
      };
      const onMsg = (m: Result) => m.id === c.id && finish(m, false);
      const onExit = (code: number | null, signal: string | null) =>
        finish({ id: c.id, code, signal, stderr: `worker died (${signal ?? `exit ${code}`})`, hang: false, ms: Date.now() - t0 }, true);
      const timer = setTimeout(() => finish({ id: c.id, code: null, signal: null, stderr: "", hang: true, ms: Date.now() - t0 }, true), timeoutMs);
      child.on("message", onMsg);
      child.once("exit", onExit);
      child.send({ id: c.id, argv: c.argv });
    });
  }
  stop(): void {
    this.child.kill("SIGKILL");
  }
}

// ---------------------------------------------------------------------------------------------
// Driver

export interface FuzzOptions {
  count: number;
  seed: number;
  jobs?: number;
  timeoutMs?: number;
  /** Folder for the seeds and failing cases (default: a new temp folder). */
  out?: string;
  kinds?: FuzzCase["kind"][];
  log?: (s: string) => void;
}

export interface FuzzFailure {
  case: FuzzCase;
  result: Result;
  why: string;
  repro: string;
}

export interface FuzzReport {
  count: number;
  seconds: number;
  exitCodes: Record<string, number>;
  signals: number;
  traces: number;
  hangs: number;
  failures: FuzzFailure[];
  byKind: Record<string, number>;
  out: string;
}

function failureReason(r: Result): string | null {
  if (r.hang) return "hang";
  if (r.signal) return `signal ${r.signal}`;
  if (r.code === 3) return "exit 3";
  if (r.code === null || r.code < 0 || r.code > 2) return `exit ${r.code}`;
  if (/internal error/.test(r.stderr) || /\n\s+at /.test(r.stderr)) return "stack trace";
  return null;
}

async function makeSeeds(dir: string, log: (s: string) => void): Promise<Seeds> {
  const { runCli } = (await import(pathToFileURL(path.join(ROOT, "dist", "cli", "main.js")).href)) as {
    runCli: (argv: string[], io: { out(s: string): void; err(s: string): void; isTTY: boolean }) => Promise<number>;
  };
  const golden = path.join(ROOT, "golden");
  const models = fs
    .readdirSync(golden)
    .filter((f) => f.endsWith(".onnx"))
    .sort()
    .map((f) => ({ path: path.join(golden, f), bytes: new Uint8Array(fs.readFileSync(path.join(golden, f))) }));
  const small = path.join(golden, "underflow.onnx");
  const quiet = { out: () => undefined, err: (s: string) => log(s), isTTY: false };
  const must = async (argv: string[]) => {
    const c = await runCli(argv, quiet);
    if (c !== 0 && c !== 1) throw new Error(`fuzz seed command failed (exit ${c}): trt-debug ${argv.join(" ")}`);
  };
  const dumps = path.join(dir, "seed-dumps");
  await must(["run", small, "--fp32", "--fp16", "--mark-all", "--save-outputs", dumps, "--quiet"]);
  const cache = path.join(dir, "seed.cache");
  await must(["calib", "build", small, "-o", cache, "--calib-batches", "2", "--quiet"]);
  const plan = path.join(dir, "seed-plan.json");
  const { loadModel } = (await import(pathToFileURL(path.join(ROOT, "dist", "onnx", "model.js")).href)) as typeof import("../src/onnx/model.js");
  const layers = loadModel(small).graph.layers;
  fs.writeFileSync(
    plan,
    JSON.stringify({ format: "trt-debug/precision-plan@1", default: "fp16", layers: layers.slice(0, 3).map((l) => ({ pattern: l.name, precision: "fp32" })) }, null, 2) + "\n",
  );
  return { models, dumps: { ref: path.join(dumps, "fp32.arrow"), cand: path.join(dumps, "fp16.arrow") }, cache: { model: small, file: cache }, plan: { model: small, file: plan } };
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const log = o.log ?? ((s: string) => process.stderr.write(s + "\n"));
  const out = o.out ?? fs.mkdtempSync(path.join(os.tmpdir(), "trt-debug-fuzz-"));
  fs.mkdirSync(out, { recursive: true });
  const casesDir = path.join(out, "cases");
  fs.mkdirSync(casesDir, { recursive: true });
  const seeds = await makeSeeds(out, () => undefined);
  fs.writeFileSync(path.join(casesDir, "data.bin"), new Uint8Array(4096).map((_, i) => (i * 37) & 0xff));
  fs.rmSync(path.join(casesDir, "link.bin"), { force: true });
  fs.symlinkSync("/etc/hostname", path.join(casesDir, "link.bin"));
  const kinds = o.kinds ?? ["onnx", "onnx", "dump", "cache", "plan"];
  const r = fixtureRandom(o.seed);
  const jobs = Math.max(1, o.jobs ?? 2);
  const timeoutMs = o.timeoutMs ?? 30_000;
  const workers = Array.from({ length: jobs }, () => new Worker(1024));
  const exitCodes: Record<string, number> = {};
  const byKind: Record<string, number> = {};
  const failures: FuzzFailure[] = [];
  let signals = 0, traces = 0, hangs = 0, next = 0, finished = 0;
  const t0 = Date.now();
  const bin = path.relative(process.cwd(), path.join(ROOT, "bin", "trt-debug.js")) || "bin/trt-debug.js";
  const q = (s: string) => (/^[\w./:=@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  try {
    await Promise.all(
      workers.map(async (w) => {
        while (next < o.count) {
          const id = next++;
          const c = makeCase(r, id, seeds, casesDir, kinds);
          const res = await w.run(c, timeoutMs);
          finished++;
          byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
          const key = res.hang ? "hang" : res.signal ? `signal ${res.signal}` : String(res.code);
          exitCodes[key] = (exitCodes[key] ?? 0) + 1;
          const why = failureReason(res);
          if (res.signal) signals++;
          if (res.hang) hangs++;
          if (why === "stack trace" || (why === "exit 3" && /\n\s+at /.test(res.stderr))) traces++;
          if (why) {
            const keep = path.join(out, `failing-${id}${path.extname(c.file)}`);
            fs.copyFileSync(c.file, keep);
            const argv = c.argv.map((a) => (a === c.file ? keep : a));
            failures.push({ case: { ...c, file: keep, argv }, result: res, why, repro: `node ${bin} ${argv.map(q).join(" ")}` });
          } else fs.rmSync(c.file, { force: true });
          if (finished % 500 === 0) log(`fuzz: ${finished}/${o.count} cases, ${failures.length} failing, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
        }
      }),
    );
  } finally {
    for (const w of workers) w.stop();
  }
  return { count: finished, seconds: (Date.now() - t0) / 1000, exitCodes, signals, traces, hangs, failures, byKind, out };
}

export function formatReport(rep: FuzzReport, show = 5): string[] {
  const lines = [
    `fuzz: ${rep.count} cases in ${rep.seconds.toFixed(1)} s (${(rep.count / rep.seconds).toFixed(1)} cases/s); by kind ${JSON.stringify(rep.byKind)}`,
    `exit codes: ${JSON.stringify(rep.exitCodes)}; signals ${rep.signals}; stack traces ${rep.traces}; hangs ${rep.hangs}; failing ${rep.failures.length}`,
  ];
  for (const f of rep.failures.slice(0, show)) {
    lines.push(`FAIL (${f.why}) case ${f.case.id} [${f.case.kind}] ${f.case.how}`);
    lines.push(`  repro: ${f.repro}`);
    const first = f.result.stderr.split("\n").filter(Boolean).slice(0, 3).join(" | ");
    if (first) lines.push(`  stderr: ${first.slice(0, 400)}`);
  }
  if (rep.failures.length) lines.push(`failing cases kept in ${rep.out}`);
  return lines;
}

async function cliMain(argv: string[]): Promise<number> {
  const get = (k: string, d?: string) => {
    const i = argv.indexOf(`--${k}`);
    return i >= 0 ? argv[i + 1] : d;
  };
  const num = (k: string, d: number) => {
    const v = Number(get(k, String(d)));
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${k}: not a number`);
    return v;
  };
  const kinds = get("kinds")?.split(",") as FuzzCase["kind"][] | undefined;
  const rep = await runFuzz({ count: num("count", 200), seed: num("seed", 1), jobs: num("jobs", 2), timeoutMs: num("timeout", 30_000), out: get("out"), kinds });
  for (const l of formatReport(rep, Number(get("show", "5")))) console.log(l);
  if (!rep.failures.length && !get("out")) fs.rmSync(rep.out, { recursive: true, force: true });
  return rep.failures.length ? 1 : 0;
}

if (process.argv[2] === "--worker") {
  void workerMain();
} else if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cliMain(process.argv.slice(2)).then(
    (c) => process.exit(c),
    (e) => {
      console.error(`fuzz: ${(e as Error).stack ?? e}`);
      process.exit(2);
    },
  );
}
