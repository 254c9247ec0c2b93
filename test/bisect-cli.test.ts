/**
 * `trt-debug bisect` / `trt-debug debug precision` through the in-process CLI: outputs and
 * their exact strings, the plan round trip through `compare --precision-plan`, --check with
 * {plan}, the default checkpoint location, resume, exit codes.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveModel } from "./support/graph-builder.js";
import { bisectModel } from "../src/workflows/bisect.js";
import { PLAN_FORMAT } from "../src/precision/plan.js";
import { layernormOverflow } from "../scripts/models/layernorm-overflow.js";
import { matmulConsumer } from "../scripts/models/matmul-consumer.js";
import { underflow } from "../scripts/models/underflow.js";
import { cli, expectUserError, tmpDir } from "./helpers.js";

let dir: string;
let mm: string, ln: string, uf: string;
let checkScript: string;
let counter: string;

beforeAll(() => {
  dir = tmpDir("trtdbg-bisect-cli-");
  mm = path.join(dir, "matmul_consumer.onnx");
  ln = path.join(dir, "layernorm_overflow.onnx");
  uf = path.join(dir, "underflow.onnx");
  saveModel(matmulConsumer().model, mm);
  saveModel(layernormOverflow().model, ln);
  saveModel(underflow().model, uf);
  // An external check: passes iff the candidate plan pins both LayerNorm culprits; logs each call.
  counter = path.join(dir, "calls.log");
  checkScript = path.join(dir, "check.mjs");
  fs.writeFileSync(
    checkScript,
    [
      `import fs from "node:fs";`,
      `const file = process.argv[2];`,
      `if (file !== process.env.TRT_DEBUG_PLAN) process.exit(3);`,
      `const plan = JSON.parse(fs.readFileSync(file, "utf8"));`,
      `const names = plan.layers.filter((l) => l.precision === "fp32").map((l) => l.pattern).sort();`,
      `fs.appendFileSync(${JSON.stringify(counter)}, names.join("+") + "\\n");`,
      `process.exit(names.includes("ln1/pow") && names.includes("ln1/var") ? 0 : 1);`,
    ].join("\n"),
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** One entry per check call: the fp32-pinned layers of its plan, joined by "+" ("" for none). */
const calls = (): string[] => (fs.existsSync(counter) ? fs.readFileSync(counter, "utf8").slice(0, -1).split("\n") : []);

describe("bisect outputs", () => {
  it("writes the plan, trtexec flags, Polygraphy args and JSON; the plan passes compare", async () => {
    const out = path.join(dir, "out1");
    const plan = path.join(out, "plan.json");
    const trt = path.join(out, "trtexec.txt");
    const poly = path.join(out, "polygraphy.txt");
    const json = path.join(out, "bisect.json");
    const r = await cli("bisect", mm, "--fp16", "-o", plan, "--trtexec-flags", trt, "--polygraphy-args", poly, "--json", json);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(fs.readFileSync(trt, "utf8")).toBe(
      "--layerPrecisions=mm_big:fp32,scale_after:fp32 --layerOutputTypes=mm_big:fp32,scale_after:fp32 --precisionConstraints=obey\n",
    );
    expect(fs.readFileSync(poly, "utf8")).toBe("--layer-precisions mm_big:float32 scale_after:float32 --precision-constraints obey\n");
    const p = JSON.parse(fs.readFileSync(plan, "utf8"));
    expect(p.format).toBe(PLAN_FORMAT);
    expect(p.default).toBe("fp16");
    expect(p.layers).toEqual([
      { pattern: "mm_big", precision: "fp32" },
      { pattern: "scale_after", precision: "fp32" },
    ]);
    const j = JSON.parse(fs.readFileSync(json, "utf8"));
    expect(j.format).toBe("trt-debug/bisect@1");
    expect(j.pinned_layers).toEqual(["mm_big", "scale_after"]);
    expect(j.final_verification.passed).toBe(true);
    expect(typeof j.model_executions).toBe("number");
    expect(typeof j.wall_seconds).toBe("number");
    expect(j.iterations.length).toBeGreaterThan(1);
    for (const it of j.iterations) expect(Object.keys(it)).toEqual(expect.arrayContaining(["size", "pinned", "passed", "metric"]));
    // the summary names every pinned layer with its op type and evidence
    // 10 layers (the MatMul+Add(+Relu) blocks are fused groups): mm_big is layer 5
    expect(r.stdout).toMatch(/#5 mm_big \(MatMul\): overflow: output mm_big_output_0 reaches/);
    expect(r.stdout).toMatch(/#6 scale_after \(Mul\): input overflow: reads mm_big_output_0/);
    expect(r.stdout).toMatch(/^\[1\] +baseline +0 pinned \(none pinned\) +FAIL/m);
    expect(r.stdout).toMatch(/PASSED: verified plan pins 2 layer\(s\)/);
    // checkpoint next to -o, deleted after success
    expect(fs.existsSync(path.join(out, "matmul_consumer.bisect-checkpoint.json"))).toBe(false);

    // round trip: the plan reloads and passes compare; without it fp16 fails
    const c = await cli("compare", mm, "--fp16", "--precision-plan", plan, "-q");
    expect(c.code, c.stdout + c.stderr).toBe(0);
    const bad = await cli("compare", mm, "--fp16", "-q");
    expect(bad.code).toBe(1);
    // and it can be the starting plan of another bisect: nothing more to pin
    const again = await cli("bisect", mm, "--fp16", "--precision-plan", plan, "--no-checkpoint", "-q");
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/PASSED: verified plan pins 0 layer\(s\)/);
  });

  it("debug precision --mode bisect is Polygraphy's first-k search, with names", async () => {
    // layernorm_overflow has 13 layers (19 nodes; fc1, fc2, proj and head are MatMul+Add(+Relu)
    // fused groups); ln1/var (the last culprit) is layer 6, so forward bisect needs the first
    // k = 7: trials k = 13, 6, 10, 8, 7 after the baseline and the criterion's sanity check (all
    // 13 pinned; Polygraphy's first trial is then the memo)
    const json = path.join(dir, "poly.json");
    const r = await cli("debug", "precision", ln, "--fp16", "--mode", "bisect", "--dir", "forward", "--no-checkpoint", "--json", json);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(fs.readFileSync(json, "utf8"));
    expect(j.k).toBe(7);
    expect(j.iterations.map((i: { k: number }) => i.k)).toEqual([0, 13, 13, 6, 10, 8, 7]);
    expect(j.iterations[1].phase).toBe("sanity");
    expect(j.iterations[2].cached).toBe(true);
    expect(j.pinned_layers.slice(-2)).toEqual(["ln1/pow", "ln1/var"]);
    expect(r.stdout).toMatch(/pinned layers \(7\) -> fp32 \(the first 7 searchable layers\)/);
    // the trtexec line lists every node of the pinned fused groups
    expect(r.stdout).toContain("--layerPrecisions=fc1/matmul:fp32,fc1/add:fp32,fc1/relu:fp32,fc2/matmul:fp32");
    // reverse: the last 8 (ln1/pow is layer 5 of 13)
    const rev = await cli("bisect", ln, "--fp16", "--mode", "bisect", "--dir", "reverse", "--no-checkpoint", "--json", json);
    expect(rev.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(json, "utf8")).k).toBe(8);
  });

  it("--mode linear: k = 0, 1, ... (reverse: the last k layers)", async () => {
    const json = path.join(dir, "lin.json");
    const r = await cli("bisect", ln, "--fp16", "--mode", "linear", "--dir", "reverse", "--no-checkpoint", "--json", json, "-q");
    expect(r.code).toBe(0);
    const j = JSON.parse(fs.readFileSync(json, "utf8"));
    expect(j.k).toBe(8);
    expect(j.iterations.map((i: { k: number }) => i.k)).toEqual([0, 13, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("--precision fp16 pins to fp16 under --bf16 (a precision like any other)", async () => {
    const json = path.join(dir, "bf.json");
    const r = await cli("bisect", uf, "--bf16", "--precision", "float16", "--metric", "cosine", "--threshold", "0.9999", "--no-checkpoint", "--json", json, "-q");
    // bf16 has fp32's range: no underflow, so nothing needs pinning
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(fs.readFileSync(json, "utf8"));
    expect(j.pin_precision).toBe("fp16");
    expect(j.precision).toBe("bf16");
  });

  it("refuses (exit 2, one line) a criterion that fails with every layer pinned; the checkpoint is kept", async () => {
    const out = path.join(dir, "out2");
    const r = await cli("bisect", uf, "--fp16", "--metric", "cosine", "--threshold", "1.5", "-o", path.join(out, "plan.json"));
    // underflow: 9 ONNX nodes, 6 layers (pre and head are fused MatMul+Add(+Sigmoid) groups)
    expectUserError(r, "--cosine 1.5: the criterion fails even with all 6 searchable layers in fp32");
    expect(fs.existsSync(path.join(out, "plan.json"))).toBe(false);
    expect(fs.existsSync(path.join(out, "underflow.bisect-checkpoint.json"))).toBe(true);
  });

  it("user errors exit 2 with one line", async () => {
    expectUserError(await cli("bisect", mm, "--no-checkpoint"), "--fp16");
    expectUserError(await cli("bisect", mm, "--fp16", "--metric", "cosine", "--no-checkpoint"), "--threshold");
    expectUserError(await cli("bisect", mm, "--fp16", "--precision", "int4", "--no-checkpoint"), "--precision");
    expectUserError(await cli("bisect", mm, "--fp16", "--layer-precisions", "nope:fp32", "--no-checkpoint"), "nope");
    expectUserError(await cli("bisect", mm, "--fp16", "--resume", "--checkpoint", path.join(dir, "none.json")), "no checkpoint");
    expectUserError(await cli("bisect", mm, "--fp16", "--check", "/nonexistent/check-cmd", "--no-checkpoint"), "--check");
  });
});

describe("--check and resume", () => {
  it("runs the external check with the plan path as {plan} and in $TRT_DEBUG_PLAN, no shell", async () => {
    fs.rmSync(counter, { force: true });
    const r = await cli("bisect", ln, "--fp16", "--no-checkpoint", "--check", "node", checkScript, "{plan}");
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/PASSED: verified plan pins 2 layer\(s\) \(check exit 0\)/);
    // baseline, sanity (all 13 layers pinned: 19 nodes, fc1/fc2/proj/head are fused groups),
    // top-2, top-1, drop ln1/var (memo), drop ln1/pow, then the final verification
    const c = calls();
    expect(c[1]!.split("+")).toHaveLength(13);
    expect(c[1]!.split("+")).toContain("fc1/matmul");
    expect(c[1]!.split("+")).not.toContain("fc1/relu");
    expect([c[0], ...c.slice(2)]).toEqual(["", "ln1/pow+ln1/var", "ln1/pow", "ln1/var", "ln1/pow+ln1/var"]);
  });

  it("appends the plan path when no argument has {plan}; arguments after -- belong to --check", async () => {
    fs.rmSync(counter, { force: true });
    const r = await cli("bisect", ln, "--fp16", "--no-checkpoint", "-q", "--check", "--", "node", "--no-warnings", checkScript);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(calls().length).toBe(6);
  });

  it("--resume serves every checkpointed evaluation from the memo (a killed search)", async () => {
    const out = path.join(dir, "out3");
    const plan = path.join(out, "plan.json");
    const ckpt = path.join(out, "layernorm_overflow.bisect-checkpoint.json");
    // the first run is killed after 3 evaluations (the check ran three times: baseline, sanity, top-2)
    fs.rmSync(counter, { force: true });
    let n = 0;
    await expect(
      bisectModel(
        { model: ln, precision: "fp16", criterion: { kind: "check", command: ["node", checkScript, "{plan}"] }, checkpoint: ckpt },
        {
          onIteration: (it) => {
            if (!it.cached && ++n === 3) throw new Error("killed");
          },
        },
      ),
    ).rejects.toThrow("killed");
    expect(calls().filter((x) => x.split("+").length < 13)).toEqual(["", "ln1/pow+ln1/var"]);
    expect(calls()).toHaveLength(3);
    expect(fs.existsSync(ckpt)).toBe(true);
    // resume through the CLI (default checkpoint next to -o): only the rest is checked
    fs.rmSync(counter, { force: true });
    const json = path.join(out, "r.json");
    const r = await cli("bisect", ln, "--fp16", "-o", plan, "--resume", "--json", json, "--check", "node", checkScript, "{plan}");
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(calls()).toEqual(["ln1/pow", "ln1/var", "ln1/pow+ln1/var"]);
    const j = JSON.parse(fs.readFileSync(json, "utf8"));
    expect(j.pinned_layers).toEqual(["ln1/pow", "ln1/var"]);
    expect(j.iterations.map((i: { cached: boolean }) => i.cached)).toEqual([true, true, true, false, true, false]);
    expect(r.stdout).toMatch(/\[1\] +baseline .* \[memo\]/);
    expect(fs.existsSync(ckpt)).toBe(false);
  });

  it("--resume with other options is refused", async () => {
    const ckpt = path.join(dir, "x.ckpt.json");
    const first = await cli("bisect", uf, "--fp16", "--metric", "cosine", "--threshold", "1.5", "--checkpoint", ckpt, "-q");
    expect(first.code).toBe(2); // refused after the sanity check; the checkpoint holds baseline and sanity
    expectUserError(await cli("bisect", uf, "--fp16", "--metric", "cosine", "--threshold", "0.9", "--checkpoint", ckpt, "--resume"), "different search");
  });
});
