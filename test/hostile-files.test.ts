/**
 * Hostile inputs: external data escaping the model's folder, FIFOs/devices/directories and
 * oversized files refused before reading, corrupt dumps/caches/plans/checkpoints as one-line
 * user errors, and SIGTERM ending a long run at once without leaving temp files.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { execa } from "execa";
import { ModelProtoSchema } from "onnx-buf";
import { beforeAll, describe, expect, it } from "vitest";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { BIN, GOLDEN, cli, expectUserError, tmpDir } from "./helpers.js";

const SMALL = path.join(GOLDEN, "underflow.onnx");

/** Run the built CLI with a hard timeout (a hang fails the test instead of stalling it). */
async function proc(argv: string[], timeout = 60_000) {
  const r = await execa("node", [BIN, ...argv], { reject: false, timeout, env: { TRT_DEBUG_QUIET_NUMERIC: "1" } });
  expect(r.timedOut, `trt-debug ${argv.join(" ")} hung`).toBe(false);
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe("external data stays inside the model's folder", () => {
  let dir: string;
  let outside: string;
  const model = (loc: string, name = "m.onnx") => {
    const m = fromBinary(ModelProtoSchema, fs.readFileSync(path.join(dir, "base.onnx")));
    const t = m.graph!.initializer.find((i) => i.name === "w")!;
    t.externalData.find((e) => e.key === "location")!.value = loc;
    const f = path.join(dir, name);
    fs.writeFileSync(f, toBinary(ModelProtoSchema, m));
    return f;
  };

  beforeAll(() => {
    dir = tmpDir("trtdbg-ext-");
    outside = tmpDir("trtdbg-outside-");
    const b = new GraphBuilder("ext");
    const x = b.input("x", "float32", [1, 4]);
    const w = b.initializer("w", "float32", [4, 4], Float32Array.from({ length: 16 }, (_, k) => k / 16));
    b.output(b.node("MatMul", [x, w], { name: "mm" }), "float32");
    saveModel(b.model(), path.join(dir, "base.onnx"), { externalData: { location: "w.bin", threshold: 0 } });
    fs.copyFileSync(path.join(dir, "w.bin"), path.join(outside, "w.bin"));
    fs.symlinkSync(path.join(outside, "w.bin"), path.join(dir, "link.bin"));
  });

  it("loads the data file next to the model", async () => {
    const r = await cli("run", path.join(dir, "base.onnx"), "--quiet");
    expect(r.code).toBe(0);
  });

  for (const [what, loc] of [
    ["an absolute path", "/etc/passwd"],
    ["a '..' escape", "../../../../etc/passwd"],
    ["a file:// URI", "file:///etc/passwd"],
  ] as const) {
    it(`rejects ${what} naming the initializer and the location`, async () => {
      const r = await cli("inspect", model(loc), "--quiet");
      expectUserError(r, "initializer 'w'", `'${loc}'`, "--allow-external-data-outside");
    });
  }

  it("rejects a symlink that leads outside the folder", async () => {
    const r = await cli("run", model("link.bin"), "--quiet");
    expectUserError(r, "initializer 'w'", "'link.bin'", "resolves outside the model's folder");
  });

  it("--allow-external-data-outside lets an absolute location load", async () => {
    const f = model(path.join(outside, "w.bin"), "abs.onnx");
    expectUserError(await cli("run", f, "--quiet"), "is an absolute path");
    const r = await cli("run", f, "--allow-external-data-outside", "--json", path.join(dir, "abs.json"));
    expect(r.code).toBe(0);
    // The data really came from the outside file: y = x W with x = 1 row of the default random inputs.
    const ref = await cli("run", path.join(dir, "base.onnx"), "--json", path.join(dir, "base.json"));
    expect(ref.code).toBe(0);
    const out = (f: string) => (JSON.parse(fs.readFileSync(f, "utf8")) as { runs: { outputs: unknown[] }[] }).runs[0]!.outputs;
    expect(out(path.join(dir, "abs.json"))).toEqual(out(path.join(dir, "base.json")));
    // The fp16 rewrite reads the weights again: still allowed for this model.
    expect((await cli("compare", f, "--fp16", "--allow-external-data-outside", "--quiet")).code).toBeLessThan(2);
    // The approval belongs to that load only: the same model without the flag is refused again.
    expectUserError(await cli("run", f, "--fp16", "--quiet"), "is an absolute path");
  });
});

describe("non-regular and oversized files are refused before reading", () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir("trtdbg-hostile-");
    execFileSync("mkfifo", [path.join(dir, "fifo.onnx"), path.join(dir, "fifo.cache"), path.join(dir, "fifo.in")]);
  });

  it("a FIFO as the model is refused at once (no hang)", async () => {
    expectUserError(await proc(["run", path.join(dir, "fifo.onnx")], 30_000), "fifo.onnx", "FIFO", "not an ONNX model");
  });

  it("a FIFO as the calibration cache is refused at once (no hang)", async () => {
    expectUserError(await proc(["run", SMALL, "--int8", "--calibration-cache", path.join(dir, "fifo.cache")], 30_000), "fifo.cache", "FIFO", "calibration cache");
  });

  it("a FIFO as --load-inputs is refused at once (no hang)", async () => {
    expectUserError(await proc(["run", SMALL, "--load-inputs", path.join(dir, "fifo.in")], 30_000), "fifo.in", "FIFO");
  });

  it("/dev/zero and /dev/urandom are refused without reading", async () => {
    expectUserError(await cli("run", "/dev/zero"), "/dev/zero", "character device");
    expectUserError(await cli("inspect", "/dev/urandom"), "/dev/urandom", "character device");
    expectUserError(await cli("run", SMALL, "--int8", "--calibration-cache", "/dev/zero"), "/dev/zero", "calibration cache");
    expectUserError(await cli("compare", "/dev/zero", "/dev/zero"), "/dev/zero");
  });

  it("a directory is refused", async () => {
    expectUserError(await cli("run", dir), dir, "directory");
    expectUserError(await cli("run", SMALL, "--precision-plan", dir), dir, "directory");
  });

  it("a cache larger than any cache can be is refused by its size", async () => {
    const big = path.join(dir, "big.cache");
    const fd = fs.openSync(big, "w");
    fs.ftruncateSync(fd, 65 * 1024 * 1024); // sparse: no disk used
    fs.closeSync(fd);
    expectUserError(await cli("run", SMALL, "--int8", "--calibration-cache", big), "big.cache", "65 MiB", "limit 64 MiB");
  });
});

describe("corrupt dumps, caches, plans and checkpoints are one-line user errors", () => {
  let dir: string;
  let ref: string;
  let cache: string;
  beforeAll(async () => {
    dir = tmpDir("trtdbg-corrupt-");
    expect((await cli("run", SMALL, "--fp32", "--mark-all", "--save-outputs", path.join(dir, "d"), "--quiet")).code).toBe(0);
    ref = path.join(dir, "d", "fp32.arrow");
    cache = path.join(dir, "c.cache");
    expect((await cli("calib", "build", SMALL, "-o", cache, "--calib-batches", "1", "--quiet")).code).toBe(0);
  });

  const write = (name: string, bytes: Uint8Array | string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, bytes);
    return f;
  };

  it("a truncated dump", async () => {
    const b = fs.readFileSync(ref);
    const f = write("trunc.arrow", b.subarray(0, Math.floor(b.length * 0.6)));
    expectUserError(await cli("compare", ref, f), "trunc.arrow", "truncated");
  });

  it("a dump whose row shapes disagree with its values", async () => {
    const b = new Uint8Array(fs.readFileSync(ref));
    // The shape column of the first record batch: find the int64 dims [1,64] of the first tensor and make it [1,65].
    const dv = new DataView(b.buffer);
    let hit = -1;
    for (let i = 8; i + 16 <= b.length - 16; i += 8) {
      if (dv.getBigInt64(i, true) === 1n && dv.getBigInt64(i + 8, true) === 64n) {
        hit = i;
        break;
      }
    }
    expect(hit).toBeGreaterThan(0);
    dv.setBigInt64(hit + 8, 65n, true);
    const f = write("shape.arrow", b);
    expectUserError(await cli("compare", ref, f), "shape.arrow", "corrupt trt-debug Arrow dump");
  });

  it("a dump with its header magic bit-flipped", async () => {
    const b = new Uint8Array(fs.readFileSync(ref));
    b[0]! ^= 0x04;
    expectUserError(await cli("validate", write("flip.arrow", b)), "flip.arrow", "not an Arrow IPC file");
  });

  it("a truncated and a bit-flipped calibration cache", async () => {
    const text = fs.readFileSync(cache, "utf8");
    const cut = text.indexOf(":", text.indexOf("\n") + 1) + 1;
    expectUserError(await cli("run", SMALL, "--int8", "--calibration-cache", write("t.cache", text.slice(0, cut))), "t.cache:2");
    const b = new TextEncoder().encode(text);
    b[b.indexOf(0x3a)]! ^= 0x01; // the first ':' of the first tensor line becomes ';'
    expectUserError(await cli("run", SMALL, "--int8", "--calibration-cache", write("f.cache", b)), "f.cache");
  });

  it("a truncated and a bit-flipped plan", async () => {
    const plan = JSON.stringify({ format: "trt-debug/precision-plan@1", default: "fp16", layers: [{ pattern: "pre/matmul", precision: "fp32" }] });
    expectUserError(await cli("run", SMALL, "--precision-plan", write("t.json", plan.slice(0, 40))), "t.json");
    const b = new TextEncoder().encode(plan);
    b[plan.indexOf("fp16") + 2]! ^= 0x02; // fp16 -> fp36
    expectUserError(await cli("run", SMALL, "--precision-plan", write("f.json", b)), "f.json", "fp36");
  });

  it("a truncated checkpoint", async () => {
    const cp = write("cp.json", '{"format": "trt-debug/bisect-checkpoint@1", "fingerprint": "ab');
    expectUserError(await cli("bisect", SMALL, "--fp16", "--resume", "--checkpoint", cp), "cp.json", "not valid JSON");
    // also an output path: refused by the output checks before it is read (a system folder)
    expectUserError(await cli("bisect", SMALL, "--fp16", "--resume", "--checkpoint", "/dev/zero"), "/dev/zero", "refusing to write");
  });
});

describe("signals", () => {
  let dir: string;
  let model: string;
  beforeAll(() => {
    dir = tmpDir("trtdbg-sig-");
    const b = new GraphBuilder("slow");
    const x = b.input("x", "float32", [1536, 1536]);
    let t = x;
    // One segment of 120 1536x1536 matmuls (870 GFLOP): one onnxruntime call of 2 s or more.
    for (let i = 0; i < 120; i++) t = b.node("Tanh", [b.node("MatMul", [t, x], { name: `mm${i}` })], { name: `act${i}` });
    b.output(t, "float32");
    model = path.join(dir, "slow.onnx");
    saveModel(b.model(), model);
  });

  it("SIGTERM during a long onnxruntime run ends the process at once and leaves no temp file", async () => {
    const out = path.join(dir, "out");
    const p = execa("node", [BIN, "run", model, "--fp32", "--save-outputs", out, "--segment-layers", "1000", "--quiet"], { reject: false, timeout: 120_000 });
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !(fs.existsSync(out) && fs.readdirSync(out).some((f) => f.includes(".tmp")))) await new Promise((r) => setTimeout(r, 20));
    expect(fs.readdirSync(out).some((f) => f.includes(".tmp"))).toBe(true);
    await new Promise((r) => setTimeout(r, 300)); // inside the onnxruntime run now
    const t0 = Date.now();
    p.kill("SIGTERM");
    const res = await p;
    console.log(`SIGTERM during the run: exited after ${Date.now() - t0} ms`);
    expect(res.timedOut).toBe(false);
    expect(res.exitCode).toBe(143);
    expect(String(res.stderr)).toContain("interrupted (SIGTERM)");
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it("without the native addon, SIGTERM during a run that writes nothing ends the process (default action)", async () => {
    const inputs = path.join(dir, "inputs.arrow");
    const p = execa("node", [BIN, "run", model, "--fp32", "--segment-layers", "1000", "--save-inputs", inputs, "--quiet"], {
      reject: false,
      timeout: 120_000,
      env: { TRT_DEBUG_NO_NATIVE: "1", TRT_DEBUG_QUIET_NUMERIC: "1" },
    });
    // The inputs file is written (and renamed into place) before the run starts.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !fs.existsSync(inputs)) await new Promise((r) => setTimeout(r, 20));
    expect(fs.existsSync(inputs)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    p.kill("SIGTERM");
    const res = await p;
    expect(res.timedOut).toBe(false);
    expect(res.signal === "SIGTERM" || res.exitCode === 143, `exit ${res.exitCode}, signal ${res.signal}, stderr ${String(res.stderr)}`).toBe(true);
  });
});
