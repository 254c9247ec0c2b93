/**
 * Verdicts that survive real models and readable output: degenerate reference outputs,
 * compare --metric (bisect's judgement), tables (aligned, 120 columns, inf/nan, rows shown,
 * verdict last), `| head` without a stack trace, and no false PASS.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { DumpWriter, openDump, type DumpRow } from "../src/io/dump.js";
import { middleTrunc, table } from "../src/report/table.js";
import { BIN, GOLDEN, cli, expectUserError, tmpDir } from "./helpers.js";

let dir: string;
const M: Record<string, string> = {};

function save(name: string, build: (g: GraphBuilder) => void): void {
  const g = new GraphBuilder(name);
  build(g);
  M[name] = path.join(dir, `${name}.onnx`);
  saveModel(g.model({ opset: 17 }), M[name]!);
}

/** Lines of the compare table (header, dashes, rows) at the top of stdout. */
function tableLines(stdout: string): string[] {
  const lines = stdout.split("\n");
  const end = lines.findIndex((l) => l.trim() === "" || l.startsWith("("));
  return lines.slice(0, end < 0 ? lines.length : end);
}

/** Column ranges from the dashes line; every row must have spaces in the gaps between them. */
function expectAligned(lines: string[]): void {
  const dashes = lines[1]!;
  const gaps: number[] = [];
  for (let i = 1; i < dashes.length; i++) if (dashes[i] === " ") gaps.push(i);
  expect(gaps.length).toBeGreaterThan(5);
  for (const l of lines) for (const g of gaps) if (g < l.length) expect(l[g], `column gap at ${g} in: ${l}`).toBe(" ");
}

beforeAll(() => {
  dir = tmpDir("trtdbg-verdict-");
  // sigmoid of a very negative pre-activation: ~1e-5 everywhere under inputs in [0,1]
  save("sig", (g) => {
    const x = g.input("x", "float32", [1, 64]);
    const pre = g.node("Add", [x, g.initializer("bias", "float32", [1], [-12])], { name: "pre", outputs: ["pre_out"] });
    g.output(g.node("Sigmoid", [pre], { name: "head", outputs: ["prob"] }), "float32", [1, 64]);
  });
  save("zero", (g) => {
    const x = g.input("x", "float32", [1, 8]);
    g.output(g.node("Mul", [x, g.initializer("z", "float32", [1], [0])], { name: "kill", outputs: ["y"] }), "float32", [1, 8]);
  });
  save("nanref", (g) => {
    const x = g.input("x", "float32", [1, 8]);
    const neg = g.node("Sub", [g.initializer("m1", "float32", [1], [-1]), g.node("Abs", [x], { name: "abs" })], { name: "neg" });
    g.output(g.node("Log", [neg], { name: "log", outputs: ["y"] }), "float32", [1, 8]);
  });
  save("noout", (g) => {
    const x = g.input("x", "float32", [1, 4]);
    g.node("Relu", [x], { name: "r", outputs: ["y"] });
  });
  save("dangling", (g) => {
    const x = g.input("x", "float32", [1, 4]);
    g.output(g.node("Relu", [x], { name: "r", outputs: ["y"] }), "float32", [1, 4]);
    g.output("ghost", "float32", [1, 4]);
  });
  // a long chain (large --json output for the pipe test; long names for the table)
  save("chain", (g) => {
    let t = g.input("x", "float32", [1, 16]);
    for (let i = 0; i < 150; i++) t = g.node("Relu", [t], { name: `/model/encoder/layers.${i}/feed_forward/activation_function/Relu` });
    g.output(t, "float32", [1, 16]);
  });
});

describe("degenerate reference outputs", () => {
  it("bisect stops before searching on a degenerate reference output (one line, exit 2); --allow-degenerate searches", async () => {
    const r = await cli("bisect", M.sig!, "--fp16", "--no-checkpoint");
    expectUserError(r, "reference output 'prob' is degenerate", "bisect would search on noise");
    expect(r.stdout).not.toMatch(/PASSED|STOPPED|pinned layers \(/);
    const allowed = await cli("bisect", M.sig!, "--fp16", "--no-checkpoint", "--allow-degenerate", "-q");
    expect(allowed.stderr).not.toContain("degenerate");
    expect([0, 1]).toContain(allowed.code);
  });

  it("sigmoid ~1e-5 under random inputs: one line with the fix, no layer name, exit 2; realistic inputs: the normal verdict", async () => {
    const json = path.join(dir, "sig.json");
    const r = await cli("compare", M.sig!, "--fp16", "--json", json);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/reference output 'prob' is degenerate under these inputs: max \|x\| 1\.\d+e-5 is below fp16's smallest normal 6\.10e-5; .*--load-inputs/);
    expect(r.stdout).not.toContain("first failing layer");
    expect(r.stdout).not.toMatch(/\bhead\b/);
    const lines = r.stdout.trim().split("\n");
    expect(lines[lines.length - 1]).toMatch(/^NO VERDICT: 1 reference output is degenerate/);
    const j = JSON.parse(fs.readFileSync(json, "utf8"));
    expect(j.verdict).toBe("degenerate");
    expect(j.passed).toBe(false);
    expect(j.first_failing_layer).toBe(null);
    expect(j.degenerate_outputs.map((d: { tensor: string; kind: string }) => [d.tensor, d.kind])).toEqual([["prob", "below-resolution"]]);

    const real = await cli("compare", M.sig!, "--fp16", "--val-range", "[10,14]");
    expect(real.code).toBe(0);
    expect(real.stdout).not.toContain("degenerate");
    expect(real.stdout).toMatch(/output prob: PASS/);
    expect(real.stdout.trim().split("\n").pop()).toBe("PASSED");

    const allowed = await cli("compare", M.sig!, "--fp16", "--allow-degenerate", "--show", "all");
    expect([0, 1]).toContain(allowed.code);
    expect(allowed.stdout).not.toContain("degenerate");
    expect(allowed.stdout).toMatch(/output prob: (PASS|FAIL)/);
  });

  it("an all-zero output is degenerate; an all-NaN fp32 reference fails (exit 1)", async () => {
    const z = await cli("compare", M.zero!, "--fp16");
    expect(z.code).toBe(2);
    expect(z.stdout).toContain("reference output 'y' is degenerate under these inputs: every value is 0");
    const n = await cli("compare", M.nanref!, "--fp16", "--allow-degenerate");
    expect(n.code).toBe(1);
    expect(n.stdout).toMatch(/reference output 'y' has no finite value \(8 nan, 0 inf\)/);
    expect(n.stdout.trim().split("\n").pop()).toMatch(/^FAILED/);
  });

  it("real underflow in an intermediate layer still names scale_down2 (golden/underflow)", async () => {
    const json = path.join(dir, "uf.json");
    const r = await cli("compare", path.join(GOLDEN, "underflow.onnx"), "--fp16", "--json", json);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("first failing layer: scale_down2 ");
    const j = JSON.parse(fs.readFileSync(json, "utf8"));
    expect(j.verdict).toBe("failed");
    expect(j.degenerate_outputs).toEqual([]);
  });
});

describe("compare --metric/--threshold", () => {
  it("judges like bisect --metric on the same golden", async () => {
    const model = path.join(GOLDEN, "underflow.onnx");
    const cj = path.join(dir, "m.json");
    const c = await cli("compare", model, "--fp16", "--metric", "cosine", "--threshold", "0.999", "--json", cj, "-q");
    expect(c.code).toBe(1);
    const out = JSON.parse(fs.readFileSync(cj, "utf8")).layers.find((l: { is_graph_output: boolean }) => l.is_graph_output);
    expect(out.reason).toMatch(/^cosine -?0\.\d{6} < 0\.999$/);
    const bj = path.join(dir, "b.json");
    const b = await cli("bisect", model, "--fp16", "--metric", "cosine", "--threshold", "0.999", "--no-checkpoint", "--json", bj, "-q");
    expect(b.code).toBe(0);
    const none = JSON.parse(fs.readFileSync(bj, "utf8")).iterations.find((it: { size: number }) => it.size === 0);
    expect(none.passed).toBe(false);
    expect(none.metric).toBeCloseTo(out.metrics.cosine, 6);
    expect(none.detail).toContain(out.reason);
    // a threshold below the cosine passes
    const lo = await cli("compare", model, "--fp16", "--metric", "cosine", "--threshold", String(out.metrics.cosine - 0.01), "-q");
    expect(lo.code).toBe(0);
    expectUserError(await cli("compare", model, "--fp16", "--metric", "cosine", "--threshold", "-2"), "--threshold -2", "passes anything");
    expectUserError(await cli("compare", model, "--fp16", "--metric", "psnr", "--threshold", "2"), "--metric psnr", "cosine|sqnr");
  });
});

describe("tables", () => {
  it("aligned columns, <= 120 characters, inf/nan, failing rows + neighbourhood by default, verdict last", async () => {
    const r = await cli("compare", path.join(GOLDEN, "exp_overflow.onnx"), "--fp16");
    expect(r.code).toBe(1);
    const t = tableLines(r.stdout);
    expect(t.length).toBeGreaterThan(3);
    expectAligned(t);
    for (const l of t) expect(l.length).toBeLessThanOrEqual(120);
    expect(r.stdout).not.toMatch(/Infinity/);
    expect(t.join("\n")).not.toMatch(/\bNaN\b/);
    expect(t.join("\n")).toMatch(/\binf\b/);
    expect(t.join("\n")).toMatch(/\bnan\b/);
    expect(r.stdout.trim().split("\n").pop()).toMatch(/^FAILED/);

    // One layer per ONNX node (--fusion none: 9 rows), so the neighbourhood leaves a row out.
    const u = await cli("compare", path.join(GOLDEN, "underflow.onnx"), "--fp16", "--fusion", "none");
    const rows = tableLines(u.stdout).slice(2);
    const first = rows.findIndex((l) => /\bFAIL\b/.test(l));
    expect(rows[first]).toMatch(/^\s*4\s+scale_down2\b/);
    // order 0 is more than 3 rows before the first failing one: hidden
    expect(rows.map((l) => Number(l.trim().split(/\s+/)[0]))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(u.stdout).toContain("(1 of 9 rows not shown; --show all lists every row)");
    const worst = await cli("compare", path.join(GOLDEN, "underflow.onnx"), "--fp16", "--fusion", "none", "--show", "2");
    expect(tableLines(worst.stdout).slice(2).length).toBe(2);
    const all = await cli("compare", path.join(GOLDEN, "underflow.onnx"), "--fp16", "--fusion", "none", "--show", "all");
    expect(tableLines(all.stdout).slice(2).length).toBe(9);
    // TensorRT's layer model (the default): pre/matmul+add+sigmoid and head/matmul+add are fused,
    // 6 layers, scale_down2 is #2 and every row is within the neighbourhood.
    const f = await cli("compare", path.join(GOLDEN, "underflow.onnx"), "--fp16");
    expect(f.code).toBe(1);
    const frows = tableLines(f.stdout).slice(2);
    expect(frows[frows.findIndex((l) => /\bFAIL\b/.test(l))]).toMatch(/^\s*2\s+scale_down2\b/);
    expect(frows.map((l) => Number(l.trim().split(/\s+/)[0]))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(f.stdout).not.toContain("rows not shown");
  });

  it("long names shortened in the middle to fit 120 columns; wider terminals get wider name columns", async () => {
    const r = await cli("compare", M.chain!, "--fp16", "--show", "all");
    expect(r.code).toBe(0);
    const t = tableLines(r.stdout);
    expectAligned(t);
    for (const l of t) expect(l.length).toBeLessThanOrEqual(120);
    expect(t[2]).toMatch(/\/model\/enc\S*…\S*Relu/);
    const name = "/model/encoder/layers.0/feed_forward/activation_function/Relu";
    expect(middleTrunc(name, 21)).toBe("/model/enc…ction/Relu");
    const rows = [["1", name, "1.5"]];
    expect(table(["#", "layer", "x"], rows, ["r", "l", "r"], 40).split("\n")[2]).toContain("…");
    expect(table(["#", "layer", "x"], rows, ["r", "l", "r"], 200).split("\n")[2]).toContain(name);
  });

  it("`| head -1` ends quietly: no EPIPE stack trace, trt-debug's own exit code kept", async () => {
    const r = await execa("bash", ["-c", `node ${BIN} compare ${M.chain} --fp16 --show all --json - | head -1; echo "rc=\${PIPESTATUS[0]}" >&2`], { reject: false, env: { TRT_DEBUG_QUIET_NUMERIC: "1" } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe("{");
    expect(r.stderr).not.toMatch(/EPIPE|Error|\n\s+at /);
    expect(r.stderr).toContain("rc=0");
  });
});

describe("no false PASS", () => {
  it("a model with no graph output, or an output no node produces: exit 2, one line", async () => {
    expectUserError(await cli("compare", M.noout!, "--fp16"), "declares no output");
    expectUserError(await cli("validate", M.noout!), "declares no output");
    expectUserError(await cli("compare", M.dangling!, "--fp16"), "'ghost' is produced by no node");
  });

  it("validate of a zero-row dump, and of a dump with a tampered nan_count: exit 2 naming the file and row", async () => {
    const empty = path.join(dir, "empty.arrow");
    const w = await DumpWriter.open(empty, { kind: "dump", model: "m.onnx", precision: "fp16", extra: {} });
    await w.close();
    expectUserError(await cli("validate", empty), empty, "no rows");

    const d = path.join(dir, "dumps");
    expect((await cli("run", path.join(GOLDEN, "underflow.onnx"), "--fp16", "--mark-all", "--save-outputs", d, "-q")).code).toBe(0);
    const src = await openDump(path.join(d, "fp16.arrow"), "dump");
    const rows: DumpRow[] = [];
    for await (const row of src.rows()) rows.push(row);
    await src.close();
    rows[2] = { ...rows[2]!, stats: { ...rows[2]!.stats, nanCount: 5 } };
    const bad = path.join(dir, "tampered.arrow");
    const tw = await DumpWriter.open(bad, src.meta);
    for (const row of rows) await tw.write(row);
    await tw.close();
    expectUserError(await cli("validate", bad), bad, "row 2", "nan_count 5", "(0)");
    expectUserError(await cli("compare", path.join(d, "fp16.arrow"), bad), bad, "row 2", "nan_count");
  });

  it("compare of dumps from different seeds is refused unless --allow-different-inputs; older dumps warn", async () => {
    const model = path.join(GOLDEN, "underflow.onnx");
    const a = path.join(dir, "s1"), b = path.join(dir, "s2");
    expect((await cli("run", model, "--fp32", "--save-outputs", a, "-q")).code).toBe(0);
    expect((await cli("run", model, "--fp16", "--seed", "2", "--save-outputs", b, "-q")).code).toBe(0);
    const fa = path.join(a, "fp32.arrow"), fb = path.join(b, "fp16.arrow");
    const meta = (await openDump(fa, "dump")).meta;
    expect(meta.extra.seed).toBe("1");
    expect(meta.extra.inputs_fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expectUserError(await cli("compare", fa, fb), fb, "different inputs", "seed 2 vs 1", "--allow-different-inputs");
    expect((await cli("compare", fa, fb, "--allow-different-inputs", "-q")).code).not.toBe(2);
    // a dump without the fingerprint (older trt-debug): compared, with a warning
    const old = path.join(dir, "old.arrow");
    const src = await openDump(fb, "dump");
    const { inputs_fingerprint: _f, seed: _s, ...extra } = src.meta.extra;
    const w = await DumpWriter.open(old, { ...src.meta, extra });
    for await (const row of src.rows()) await w.write(row);
    await src.close();
    await w.close();
    const r = await cli("compare", fa, old, "-q");
    expect(r.code).not.toBe(2);
    expect(r.stderr).toContain(`warning: ${old} records no inputs fingerprint`);
  });
});
