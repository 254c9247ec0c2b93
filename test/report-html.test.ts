// The HTML report (docs/report.md), opened in headless Chromium (Debian's `chromium`, driven by
// puppeteer-core): no console error, no network request, the chart's points equal the rows,
// the first failing layer marked, the tables filter; one screenshot per kind under the test's
// temp folder. Without chromium the browser checks are skipped LOUDLY (failing under CI=true).
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { cli, expectUserError, GOLDEN, tmpDir } from "./helpers.js";
import { IN_CI } from "./testdata.js";
import { renderReport, REPORT_FORMATS, reportKind } from "../src/report/html.js";
import { BISECT_FORMAT } from "../src/workflows/bisect.js";
import { CALIB_CHECK_FORMAT } from "../src/calibration/check.js";
import { UserError } from "../src/core/errors.js";
import type { HostTensor } from "../src/core/host-tensor.js";
import { LayerSampler } from "../src/report/html-samples.js";
import { samplePair } from "../src/numeric/index.js";
import { compareTensor } from "../src/compare/layer-compare.js";
import { defaultCompareOptions } from "../src/compare/tolerance.js";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
const SKIP_BROWSER = !HAVE_CHROMIUM && !IN_CI;
if (!HAVE_CHROMIUM) {
  console.error(`\n!!! chromium is NOT installed (${CHROMIUM} missing): the HTML report browser tests are ${IN_CI ? "FAILING (CI=true)" : "SKIPPED"}; apt-get install -y chromium (or set CHROMIUM_PATH) !!!\n`);
}

const UNDERFLOW = path.join(GOLDEN, "underflow.onnx");
const LAYERNORM = path.join(GOLDEN, "layernorm_overflow.onnx");
const MATMUL = path.join(GOLDEN, "matmul_consumer.onnx");
const golden = (name: string) => JSON.parse(fs.readFileSync(path.join(GOLDEN, `${name}.expected.json`), "utf8")) as { firstFailingFp16: string; failingTensor: string; minimalPinSet: string[] };

const dir = tmpDir("trtdbg-report-");
const out = (f: string) => path.join(dir, f);
const readJson = (f: string) => JSON.parse(fs.readFileSync(f, "utf8")) as Record<string, unknown>;
const island = (html: string) => JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]!) as { kind: string; result: Record<string, unknown>; samples: unknown[] | null };

interface Opened {
  page: Page;
  errors: string[];
  requests: string[];
}

let browser: Browser | null = null;

/** Opens a report: every request other than the page itself and data: URLs is recorded and blocked; console errors recorded. */
async function open(file: string): Promise<Opened> {
  const page = await browser!.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const errors: string[] = [];
  const requests: string[] = [];
  const self = pathToFileURL(file).href;
  page.on("console", (m) => void (m.type() === "error" && errors.push(m.text())));
  page.on("pageerror", (e) => void errors.push(String(e)));
  await page.setRequestInterception(true);
  page.on("request", (r) => {
    const u = r.url();
    if (u === self || u.startsWith("data:")) void r.continue();
    else {
      requests.push(u);
      void r.abort();
    }
  });
  await page.goto(self, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready='1']", { timeout: 5000 });
  return { page, errors, requests };
}

/** Rows of a table left visible after typing `text` into its (cleared) filter. */
async function filterRows(page: Page, table: string, text: string): Promise<number> {
  const input = `input.filter[data-table='${table}']`;
  await page.$eval(input, (e) => {
    (e as HTMLInputElement).value = "";
    e.dispatchEvent(new Event("input"));
  });
  await page.type(input, text);
  return page.$$eval(`#${table} tbody tr`, (trs) => trs.filter((t) => (t as HTMLElement).style.display !== "none").length);
}

/** No console error and no request while the page was open; closes it. */
async function closeClean(o: Opened): Promise<void> {
  expect(o.errors).toEqual([]);
  expect(o.requests).toEqual([]);
  await o.page.close();
}

const chartPoints = (page: Page, id: string) => page.evaluate((k) => (window as unknown as { trtReport: { charts: Record<string, { data: unknown[][] }> } }).trtReport.charts[k]!.data[0]!.length, id);

describe("LayerSampler: a bounded sample of the worst tensors", () => {
  const t = (name: string, data: number[]): HostTensor => ({ name, dtype: "float32", dims: [data.length], data: Float32Array.from(data) });
  const row = (order: number, name: string, ref: HostTensor, cand: HostTensor, iteration?: number) => {
    const l = compareTensor({ order, layer: name, opType: "Mul", precision: "fp16", isGraphOutput: false }, ref, cand, defaultCompareOptions())!;
    if (iteration !== undefined) l.iteration = iteration;
    return l;
  };

  it("samplePair: evenly spaced positions, exact values, every element when fewer", () => {
    const r = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const c = r.map((x) => -x);
    expect(samplePair(r, c, 4)).toEqual({ index: [0, 2, 5, 7], ref: [0, 2, 5, 7], cand: [-0, -2, -5, -7] });
    expect(samplePair(r, c, 50).index).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("keeps the `layers` worst (failing first, then larger rel L2), `points` elements each, a tensor once (its worst set)", () => {
    const s = new LayerSampler({ layers: 2, points: 3 });
    const ref = Array.from({ length: 8 }, (_, i) => i + 1);
    const scaled = (f: number) => ref.map((x) => x * f);
    const rows = [
      ["a", 1.001], // rel L2 1e-3: passes fp16
      ["b", 1.5], // 0.5: fails
      ["c", 1.2], // 0.2: fails
      ["d", 1.0001],
    ] as const;
    rows.forEach(([n, f], i) => {
      const rt = t(n, ref), ct = t(n, scaled(f));
      s.offer(row(i, n, rt, ct), rt, ct);
    });
    expect(s.samples().map((x) => x.tensor)).toEqual(["b", "c"]);
    expect(s.samples()[0]!.index).toEqual([0, 2, 5]);
    expect(s.samples()[0]!.ref).toEqual([1, 3, 6]);
    expect(s.samples()[0]!.cand).toEqual([1.5, 4.5, 9]);
    // c again, from another input set and worse than b: replaces its own entry, moves first
    const rt = t("c", ref), ct = t("c", scaled(3));
    s.offer(row(2, "c", rt, ct, 1), rt, ct);
    expect(s.samples().map((x) => [x.tensor, x.iteration])).toEqual([["c", 1], ["b", null]]);
    // NaN in the candidate: the worst, the NaN kept as null
    const nt = t("n", ref), nc = t("n", [NaN, ...ref.slice(1)]);
    s.offer(row(9, "n", nt, nc), nt, nc);
    expect(s.samples()[0]!.tensor).toBe("n");
    expect(s.samples()[0]!.cand[0]).toBeNull();
    expect(s.samples()).toHaveLength(2);
  });
});

describe("HTML report: files and errors (no browser)", () => {
  it("REPORT_FORMATS spells the result formats of bisect and calib check", () => {
    expect(REPORT_FORMATS.bisect).toBe(BISECT_FORMAT);
    expect(REPORT_FORMATS["calib-check"]).toBe(CALIB_CHECK_FORMAT);
  });

  it("unknown or malformed results: one-line user errors (library and `report`)", async () => {
    expect(() => reportKind([1, 2])).toThrow(UserError);
    expect(() => renderReport({ format: "trt-debug/compare@1", layers: [{ order: 0 }] }, { source: "x.json" })).toThrow(/x\.json: not a complete compare result: layers\[0\] has no 'layer'/);
    fs.writeFileSync(out("run.json"), JSON.stringify({ format: "trt-debug/run@1", runs: [] }));
    fs.writeFileSync(out("bad.json"), "{ not json");
    fs.writeFileSync(out("nolayers.json"), JSON.stringify({ format: "trt-debug/compare@1", passed: true }));
    expectUserError(await cli("report", out("run.json"), "-o", out("x.html")), "run.json", "format 'trt-debug/run@1' has no HTML report");
    expectUserError(await cli("report", out("bad.json"), "-o", out("x.html")), "bad.json", "not valid JSON");
    expectUserError(await cli("report", out("nolayers.json"), "-o", out("x.html")), "nolayers.json", "'layers' is missing");
    expectUserError(await cli("report", out("missing.json"), "-o", out("x.html")), "missing.json");
    expectUserError(await cli("report", out("run.json")), "-o FILE.html");
    expectUserError(await cli("report", out("run.json"), "-o", out("run.json")), "the same file as the result");
    expect(readJson(out("run.json")).format).toBe("trt-debug/run@1");
    expect(fs.existsSync(out("x.html"))).toBe(false);
  });

  it("--report's path is checked before any work", async () => {
    const r = await cli("compare", UNDERFLOW, "--fp16", "--report", "/proc/report.html");
    expectUserError(r, "--report /proc/report.html");
    expect(r.stdout).toBe("");
  });
});

describe.skipIf(SKIP_BROWSER)("HTML report in headless Chromium", () => {
  beforeAll(async () => {
    if (!HAVE_CHROMIUM) throw new Error(`chromium missing at ${CHROMIUM} (CI=true): apt-get install -y chromium`);
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it("compare (live, with samples): chart points = layers, first failing layer marked, the table filters", async () => {
    const g = golden("underflow");
    const r = await cli("compare", UNDERFLOW, "--fp16", "-q", "--report", out("compare.html"), "--json", out("compare.json"));
    expect(r.code).toBe(1);
    const json = readJson(out("compare.json")) as { layers: { layer: string; op_type: string; passed: boolean }[]; first_failing_layer: string };
    expect(json.first_failing_layer).toBe(g.firstFailingFp16);
    const html = fs.readFileSync(out("compare.html"), "utf8");
    // data embedded once, no external reference
    expect(html.split('id="report-data"')).toHaveLength(2);
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
    const data = island(html);
    expect(data.result.layers).toEqual(json.layers);
    expect(data.samples!.length).toBe(Math.min(5, json.layers.length));

    const opened = await open(out("compare.html"));
    const { page } = opened;
    expect(await chartPoints(page, "error-chart")).toBe(json.layers.length);
    expect(await page.$eval("#error-chart", (e) => e.getAttribute("data-points"))).toBe(String(json.layers.length));
    const ffIdx = json.layers.findIndex((l) => l.layer === g.firstFailingFp16);
    expect(await page.$eval("#error-chart", (e) => e.getAttribute("data-first-failing"))).toBe(String(ffIdx));
    expect(await page.$eval("#first-failing", (e) => e.getAttribute("data-layer"))).toBe(g.firstFailingFp16);
    expect(await page.$eval("#layers-table tr.first-failing-row", (e) => e.children[1]!.textContent)).toBe(g.firstFailingFp16);
    // hover: the layer's name and op
    const box = (await (await page.$("#error-chart .u-over"))!.boundingBox())!;
    await page.mouse.move(box.x + (box.width * ffIdx) / (json.layers.length - 1), box.y + box.height / 2);
    expect(await page.$eval("#error-chart .tooltip", (e) => e.textContent)).toContain(`${g.firstFailingFp16} (${json.layers[ffIdx]!.op_type})`);
    // worst layers: the first failing tensor is among them, with its histogram and scatter
    expect(await page.$$eval("[id^=sample-hist-]", (e) => e.length)).toBe(data.samples!.length);
    expect(await page.$eval("#worst", (e) => e.textContent)).toContain(g.failingTensor);
    // filter by op type: exactly the rows of that op
    const op = json.layers[ffIdx]!.op_type;
    const byOp = json.layers.filter((l) => `${l.layer} ${l.op_type}`.toLowerCase().includes(op.toLowerCase())).length;
    expect(await filterRows(page, "layers-table", op)).toBe(byOp);
    expect(await filterRows(page, "layers-table", "no-such-layer-name")).toBe(0);
    expect(await page.$eval("#layers-table", (e) => e.getAttribute("data-visible-rows"))).toBe("0");
    // sort by rel L2 (descending on the second click): a failing row first
    await page.$$eval("#layers-table th", (ths) => (ths[5] as HTMLElement).click());
    await page.$$eval("#layers-table th", (ths) => (ths[5] as HTMLElement).click());
    expect(await filterRows(page, "layers-table", "")).toBe(json.layers.length);
    expect(await page.$eval("#layers-table tbody tr", (e) => e.children[10]!.textContent)).toBe("FAIL");
    await page.screenshot({ path: out("compare.png"), fullPage: true });
    await closeClean(opened);
  });

  it("compare A.arrow B.arrow --report: the dump form, with samples", async () => {
    const g = golden("underflow");
    expect((await cli("compare", UNDERFLOW, "--fp16", "-q", "--save-outputs", out("dumps"))).code).toBe(1);
    const r = await cli("compare", out("dumps/fp32.arrow"), out("dumps/fp16.arrow"), "-q", "--report", out("compare-dumps.html"));
    expect(r.code).toBe(1);
    const data = island(fs.readFileSync(out("compare-dumps.html"), "utf8"));
    expect(data.result.first_failing_layer).toBe(g.firstFailingFp16);
    expect((data.samples as { tensor: string }[]).map((s) => s.tensor)).toContain(g.failingTensor);
    const opened = await open(out("compare-dumps.html"));
    const { page } = opened;
    expect(await chartPoints(page, "error-chart")).toBe((data.result.layers as unknown[]).length);
    await closeClean(opened);
  });

  it("compare REFERENCE.onnx CANDIDATE.onnx --report: the two-model form, with samples", async () => {
    const g = golden("underflow");
    expect((await cli("convert", UNDERFLOW, "--fp16", "-q", "-o", out("typed.onnx"))).code).toBe(0);
    expect((await cli("compare", UNDERFLOW, out("typed.onnx"), "-q", "--report", out("compare-graphs.html"))).code).toBe(1);
    const data = island(fs.readFileSync(out("compare-graphs.html"), "utf8"));
    expect(data.result.first_failing_layer).toBe(g.firstFailingFp16);
    expect((data.samples as { tensor: string }[]).map((s) => s.tensor)).toContain(g.failingTensor);
    const opened = await open(out("compare-graphs.html"));
    expect(await opened.page.$eval("#first-failing", (e) => e.getAttribute("data-layer"))).toBe(g.firstFailingFp16);
    await closeClean(opened);
  });

  it("report RESULT.json: the saved compare renders, and says the samples need a live run", async () => {
    const r = await cli("report", out("compare.json"), "-o", out("compare-saved.html"));
    expect(r.code).toBe(0);
    const opened = await open(out("compare-saved.html"));
    const { page } = opened;
    const n = (readJson(out("compare.json")).layers as unknown[]).length;
    expect(await chartPoints(page, "error-chart")).toBe(n);
    expect(await page.$eval("#no-samples", (e) => e.textContent)).toMatch(/saved --json result.*live run/);
    expect(await page.$$eval("[id^=sample-hist-]", (e) => e.length)).toBe(0);
    await closeClean(opened);
  });

  it("bisect: trajectory points = iterations, the plan's iteration marked, pinned layers and copyable configs", async () => {
    const g = golden("layernorm_overflow");
    const r = await cli("bisect", LAYERNORM, "--fp16", "-q", "--no-checkpoint", "--fusion", "none", "--report", out("bisect.html"), "--json", out("bisect.json"));
    expect(r.code).toBe(0);
    const json = readJson(out("bisect.json")) as { iterations: { iteration: number; passed: boolean; size: number }[]; pinned_layers: string[]; trtexec_flags: string };
    expect([...json.pinned_layers].sort()).toEqual([...g.minimalPinSet].sort());
    const opened = await open(out("bisect.html"));
    const { page } = opened;
    expect(await chartPoints(page, "trajectory-chart")).toBe(json.iterations.length);
    const plan = [...json.iterations].reverse().find((i) => i.passed && i.size === json.pinned_layers.length)!;
    expect(await page.$eval("#trajectory-chart", (e) => e.getAttribute("data-plan-iteration"))).toBe(String(plan.iteration));
    expect(await page.$eval("#iterations-table tr.plan-row", (e) => e.children[0]!.textContent)).toBe(String(plan.iteration));
    expect(await page.$$eval("#pinned-table tbody tr", (trs) => trs.map((t) => t.children[1]!.textContent).sort())).toEqual([...g.minimalPinSet].sort());
    expect(await page.$eval("#config-trtexec", (e) => e.textContent)).toBe(json.trtexec_flags);
    expect(await page.$$eval("#configs button.copy", (b) => b.length)).toBeGreaterThanOrEqual(3);
    const failing = json.iterations.filter((i) => !i.passed).length;
    expect(await filterRows(page, "iterations-table", "fail")).toBeGreaterThanOrEqual(failing);
    expect(await filterRows(page, "iterations-table", g.minimalPinSet[0]!)).toBeGreaterThan(0);
    await page.screenshot({ path: out("bisect.png"), fullPage: true });
    await closeClean(opened);
  });

  it("calib check: histogram points = bins with each calibrator's amax, harmful tensors flagged, the table filters", async () => {
    const cache = out("mm.cache");
    expect((await cli("calib", "build", MATMUL, "-o", cache, "--calib-batches", "2", "-q")).code).toBe(0);
    const r = await cli("calib", "check", MATMUL, "--calibration-cache", cache, "--calib-batches", "2", "-q", "--report", out("calib.html"), "--json", out("calib.json"));
    const json = readJson(out("calib.json")) as { passed: boolean; harmful_tensors: string[]; tensors: { tensor: string; histogram: { counts: number[]; bin_width: number } | null; flags: { code: string }[] }[] };
    expect(r.code).toBe(json.passed ? 0 : 1);
    const observed = json.tensors.filter((t) => t.histogram);
    expect(observed.length).toBeGreaterThan(0);
    for (const t of observed) expect(t.histogram!.counts.length).toBeLessThanOrEqual(256);
    const opened = await open(out("calib.html"));
    const { page } = opened;
    // the first histogram drawn is a flagged tensor when there is one, with its bins as points
    const first = await page.$eval("#hist-0-card", (e) => e.getAttribute("data-tensor"));
    const t0 = json.tensors.find((t) => t.tensor === first)!;
    expect(await chartPoints(page, "hist-0")).toBe(t0.histogram!.counts.length);
    if (json.harmful_tensors.length) expect(json.harmful_tensors).toContain(first);
    // legend: the cache's amax and every calibrator's
    const legend = await page.$eval("#hist-0-card .legend-list", (e) => e.textContent);
    for (const a of ["cache amax", "entropy", "minmax", "percentile", "mse"]) expect(legend).toContain(a);
    expect(await page.$$eval("#tensors-table tbody tr.failed", (trs) => trs.length)).toBe(json.harmful_tensors.length);
    // filter by a flag code: the rows carrying it
    const clipping = json.tensors.filter((t) => t.flags.some((f) => f.code === "clipping")).length;
    expect(await filterRows(page, "tensors-table", "clipping")).toBe(clipping);
    // click a row: its histogram is drawn
    await filterRows(page, "tensors-table", observed[observed.length - 1]!.tensor);
    await page.$$eval("#tensors-table tbody tr", (trs) => (trs.find((t) => (t as HTMLElement).style.display !== "none") as HTMLElement).click());
    expect(await page.$eval("#hist-selected-card", (e) => e.getAttribute("data-tensor"))).toBe(observed[observed.length - 1]!.tensor);
    expect(await chartPoints(page, "hist-selected")).toBe(observed[observed.length - 1]!.histogram!.counts.length);
    await page.screenshot({ path: out("calib-check.png"), fullPage: true });
    await closeClean(opened);
  });

  it("Q/DQ model: calib check's cache row names the Q nodes; compare REF QDQ's notes count the weight Q/DQ", async () => {
    const q = out("mm.qdq.onnx");
    expect((await cli("convert", MATMUL, "--int8", "--calib-batches", "2", "-o", q, "-q")).code).toBe(0);
    const r = await cli("calib", "check", q, "--calib-batches", "2", "-q", "--report", out("calib-qdq.html"), "--json", out("calib-qdq.json"));
    expect(r.code).toBe((readJson(out("calib-qdq.json")) as { passed: boolean }).passed ? 0 : 1);
    const tensors = (readJson(out("calib-qdq.json")) as { cache: { tensors: number } }).cache.tensors;
    const kvText = (page: Page, key: string) => page.$$eval("dl.kv dt", (dts, k) => dts.find((d) => d.textContent === k)?.nextElementSibling?.textContent ?? null, key);
    let opened = await open(out("calib-qdq.html"));
    expect(await kvText(opened.page, "cache")).toBe(`${q} (${tensors} tensors, scales read from the Q/DQ model's QuantizeLinear nodes)`);
    await closeClean(opened);
    const c = await cli("compare", MATMUL, q, "-q", "--report", out("compare-qdq.html"), "--json", out("compare-qdq.json"));
    const cj = readJson(out("compare-qdq.json")) as { passed: boolean; weight_tensors: { candidate: string[] }; unmatched: { candidate: string[] } };
    expect(c.code).toBe(cj.passed ? 0 : 1);
    expect(cj.weight_tensors.candidate.length).toBeGreaterThan(0);
    expect(cj.unmatched.candidate).toEqual([]);
    opened = await open(out("compare-qdq.html"));
    const notes = await opened.page.$$eval("#notes p.note", (ps) => ps.map((p) => p.textContent));
    expect(notes).toContain(`${cj.weight_tensors.candidate.length} weight Q/DQ tensor${cj.weight_tensors.candidate.length === 1 ? "" : "s"} not compared: weights (computed from initializers only; TensorRT folds them into the layers reading them; every name in the JSON's weight_tensors)`);
    await closeClean(opened);
  });

  it("a 2000-layer compare: a few MB, every layer a point", async () => {
    // The compare JSON of a 2000-layer model, built from the real rows of the underflow run
    // (renamed per layer): what the page embeds and draws, at that size.
    const real = readJson(out("compare.json")) as { layers: Record<string, unknown>[] } & Record<string, unknown>;
    const layers = Array.from({ length: 2000 }, (_, i) => {
      const l = real.layers[i % real.layers.length]!;
      return { ...l, order: i, layer: `block${Math.floor(i / 10)}/layer${i}`, tensor: `block${Math.floor(i / 10)}/layer${i}_output_0`, nodes: [`block${Math.floor(i / 10)}/layer${i}`] };
    });
    const firstFail = layers.find((l) => !l.passed)!;
    const big = { ...real, layers, first_failing_layer: firstFail.layer, first_failing_tensor: firstFail.tensor };
    // and the live compare's samples at their bound: 5 tensors x 2000 points
    const sampler = new LayerSampler();
    for (let k = 0; k < 6; k++) {
      const ref: HostTensor = { name: `t${k}`, dtype: "float32", dims: [10000], data: Float32Array.from({ length: 10000 }, (_, i) => Math.sin(i * 0.37 + k)) };
      const cand: HostTensor = { ...ref, data: (ref.data as Float32Array).map((x, i) => x * (1 + 0.01 * k) + 1e-3 * Math.cos(i)) };
      sampler.offer(compareTensor({ order: k, layer: `t${k}`, opType: "MatMul", precision: "fp16", isGraphOutput: false }, ref, cand, defaultCompareOptions())!, ref, cand);
    }
    expect(sampler.samples().map((x) => x.index.length)).toEqual([2000, 2000, 2000, 2000, 2000]);
    const html = renderReport(big, { samples: sampler.samples() });
    expect(html.length).toBeLessThan(4 * 1024 * 1024);
    fs.writeFileSync(out("compare-2000.html"), html);
    const opened = await open(out("compare-2000.html"));
    const { page } = opened;
    expect(await chartPoints(page, "error-chart")).toBe(2000);
    expect(await chartPoints(page, "sample-scatter-0")).toBe(2000);
    expect(await page.$eval("#error-chart", (e) => e.getAttribute("data-first-failing"))).toBe(String(firstFail.order));
    expect(await filterRows(page, "layers-table", "block199/")).toBe(10);
    await closeClean(opened);
    console.log(`report size: 2000-layer compare ${(html.length / 1024 / 1024).toFixed(2)} MB; screenshots in ${dir}`);
  });
});
