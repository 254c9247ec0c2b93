/**
 * Precision bisection (library level): planted culprits are found exactly by --mode minimal,
 * Polygraphy's bisect/linear semantics on worked examples, the execution-equivalent budget,
 * prefix reuse, and checkpoint/resume.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelProto } from "onnx-buf";
import { saveModel } from "./support/graph-builder.js";
import { defaultCompareOptions } from "../src/compare/tolerance.js";
import { UserError } from "../src/core/errors.js";
import { bisectModel, type BisectArgs, type BisectResult, type IterationRecord } from "../src/workflows/bisect.js";
import { bisectSearch, linearSearch, minimalSearch, polygraphyBisectTrials, type Oracle, type TrialInfo } from "../src/search/strategies.js";
import { polygraphyArgs, trtexecFlags } from "../src/search/export.js";
import { layernormOverflow } from "../scripts/models/layernorm-overflow.js";
import { expOverflow } from "../scripts/models/exp-overflow.js";
import { underflow } from "../scripts/models/underflow.js";
import { matmulConsumer } from "../scripts/models/matmul-consumer.js";
import { deepMlpWithCulprits } from "../scripts/models/deep-mlp.js";
import { tmpDir } from "./helpers.js";

let dir: string;
const files = new Map<string, string>();
function save(name: string, m: ModelProto): string {
  const f = path.join(dir, `${name}.onnx`);
  saveModel(m, f);
  files.set(name, f);
  return f;
}

const planted = {
  layernorm_overflow: layernormOverflow(),
  exp_overflow: expOverflow(),
  underflow: underflow(),
  matmul_consumer: matmulConsumer(),
  deep_mlp: deepMlpWithCulprits(), // exp overflow at ~60 and underflow at ~140
};
const oneCulprit = deepMlpWithCulprits(200, [{ kind: "exp_overflow", at: 100 }]);

beforeAll(() => {
  dir = tmpDir("trtdbg-bisect-");
  for (const [name, g] of Object.entries(planted)) save(name, g.model);
  save("one_culprit", oneCulprit.model);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function args(model: string, extra: Partial<BisectArgs> = {}): BisectArgs {
  return { model: files.get(model)!, precision: "fp16", criterion: { kind: "compare", compare: defaultCompareOptions() }, ...extra };
}

const sorted = (x: readonly string[]) => [...x].sort();

describe("--mode minimal finds exactly the planted minimal set", () => {
  for (const name of Object.keys(planted) as (keyof typeof planted)[]) {
    it(name, async () => {
      const facts = planted[name].facts;
      const r = await bisectModel(args(name));
      expect(r.found).toBe(true);
      expect(sorted(r.pinned_layers)).toEqual(sorted(facts.minimalPinSet!));
      expect(r.final_verification?.passed).toBe(true);
      // every pinned layer carries evidence from the local sensitivity pass and the reduce phase
      for (const p of r.pinned) {
        expect(p.evidence.length).toBeGreaterThan(0);
        expect(p.unpinned?.passed).toBe(false);
      }
      // 1-minimal: dropping any one pinned layer was tried and failed
      const reduce = r.iterations.filter((i) => i.phase === "reduce");
      expect(reduce.length).toBe(r.pinned.length);
      expect(reduce.every((i) => !i.passed)).toBe(true);
    });
  }

  it("a producer pinned to fp32 still overflows at its fp16 consumer: both are pinned, with the reason", async () => {
    const r = await bisectModel(args("matmul_consumer"));
    const byName = new Map(r.pinned.map((p) => [p.name, p]));
    expect(byName.get("mm_big")!.kind).toBe("overflow");
    expect(byName.get("mm_big")!.evidence.join(" ")).toMatch(/overflow: output mm_big_output_0 reaches \|x\| = .* > fp16 max 65504/);
    expect(byName.get("scale_after")!.kind).toBe("input-overflow");
    expect(byName.get("scale_after")!.evidence.join(" ")).toMatch(/input overflow: reads mm_big_output_0/);
    // pinning mm_big alone (what the reduce phase tried when dropping scale_after) fails with NaN/Inf
    expect(byName.get("scale_after")!.unpinned!.detail).toMatch(/NaN\/Inf/);
  });

  it("underflow evidence names the flush to zero", async () => {
    const r = await bisectModel(args("underflow"));
    const ev = new Map(r.pinned.map((p) => [p.name, p]));
    expect(ev.get("scale_down2")!.kind).toBe("underflow");
    expect(ev.get("scale_up1")!.kind).toBe("input-underflow");
    expect(ev.get("scale_down2")!.evidence[0]).toMatch(/flushed to zero/);
  });

  it("the metric criterion (SQNR) finds the same set", async () => {
    const r = await bisectModel(args("layernorm_overflow", { criterion: { kind: "metric", metric: "sqnr", threshold: 40, compare: defaultCompareOptions() } }));
    expect(sorted(r.pinned_layers)).toEqual(["ln1/pow", "ln1/var"]);
    expect(r.metric_name).toBe("min SQNR dB");
    expect(r.final_verification!.metric!).toBeGreaterThanOrEqual(40);
  });

  it("a model that already passes pins nothing", async () => {
    const f = save("clean", deepMlpWithCulprits(40, [], 3).model);
    const r = await bisectModel({ ...args("clean"), model: f });
    expect(r.found).toBe(true);
    expect(r.pinned_layers).toEqual([]);
    expect(r.iterations.length).toBe(1);
    expect(r.trtexec_flags).toBe("--precisionConstraints=obey");
  });

  it("refuses, before searching, a criterion that even everything pinned fails", async () => {
    const seen: IterationRecord[] = [];
    const p = bisectModel(args("underflow", { criterion: { kind: "metric", metric: "cosine", threshold: 1.5, compare: defaultCompareOptions() } }), { onIteration: (it) => seen.push(it) });
    await expect(p).rejects.toThrow(UserError);
    // underflow: 9 ONNX nodes, 6 layers (pre and head are fused MatMul+Add(+Sigmoid) groups)
    await expect(p).rejects.toThrow(/cosine >= 1.5: the criterion fails even with all 6 searchable layers in fp32/);
    expect(seen.map((i) => i.phase)).toEqual(["baseline", "sanity"]);
  });
});

// The generator's facts (layer counts, culprit positions) count ONNX nodes, and the budget is
// about N layers: these run one layer per node (--fusion none; its MatMul+Add+Relu blocks would
// otherwise be fused groups, 175 layers instead of 205).
describe("execution-equivalent budget", () => {
  it("one planted culprit in a >= 200-layer model costs <= 2*ceil(log2 N) + 4 model executions", async () => {
    const r = await bisectModel(args("one_culprit", { fusion: "none" }));
    const n = r.total_layers;
    expect(n).toBeGreaterThanOrEqual(200);
    expect(sorted(r.pinned_layers)).toEqual(sorted(oneCulprit.facts.minimalPinSet!));
    const budget = 2 * Math.ceil(Math.log2(n)) + 4;
    expect(r.model_executions).toBeLessThanOrEqual(budget);
    // reference + sensitivity is ~2 executions; verification is exactly 1
    expect(r.executions.reference_and_sensitivity).toBeCloseTo(2, 1);
    expect(r.executions.final_verification).toBe(1);
    // prefix reuse: only the all-fp16 baseline runs the whole model; every other candidate
    // starts at the culprit (node ~100 of ~205), so it costs about half an execution
    const evaluated = r.iterations.filter((i) => !i.cached);
    expect(evaluated[0]!.layers_executed).toBe(n);
    for (const it of evaluated.slice(1)) expect(it.layers_executed).toBeLessThan(0.6 * n);
  });

  it("bisect mode reuses the reference prefix (forward) and costs about log2 N candidates", async () => {
    const r = await bisectModel(args("one_culprit", { mode: "bisect", direction: "forward", fusion: "none" }));
    const m = r.searchable_layers;
    const culprit = oneCulprit.facts.culprits[0]!;
    // forward: the first k searchable layers, k = position of c0/div (the last of the pin set) + 1
    expect(r.k).toBe(culprit.firstFailingIndex + 3);
    expect(r.pinned_layers.at(-1)).toBe("c0/div");
    const trials = polygraphyBisectTrials(m, r.k!);
    // baseline, the criterion's sanity check (all pinned), then Polygraphy's trials (its first, k = m, is the sanity candidate, from the memo)
    expect(r.iterations.length).toBe(2 + trials);
    expect(r.iterations[1]!.phase).toBe("sanity");
    expect(r.iterations[2]!.cached).toBe(true);
    expect(trials).toBeLessThanOrEqual(Math.ceil(Math.log2(m + 1)) + 2);
    expect(r.model_executions).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(r.total_layers)) + 4);
  });
});

describe("Polygraphy semantics (pure strategies)", () => {
  /** Oracle for a monotone problem: passes iff every `needed` position is pinned. */
  function oracle(needed: number[], log: { pinned: number[]; info: TrialInfo }[]): Oracle {
    return async (pinned, info) => {
      log.push({ pinned: [...pinned], info });
      return { passed: needed.every((p) => pinned.includes(p)) };
    };
  }

  it("bisect forward on 20 layers whose culprit is layer 12 (0-based) finds k = 13 in 1 + 6 trials", async () => {
    // worked example: k = 20 pass, 10 fail, 15 pass, 12 fail, 14 pass, 13 pass; good - bad = 1
    const log: { pinned: number[]; info: TrialInfo }[] = [];
    const r = await bisectSearch(20, "forward", oracle([12], log));
    expect(r).toEqual({ found: true, pinned: Array.from({ length: 13 }, (_, i) => i), k: 13 });
    expect(log.map((l) => l.info.k)).toEqual([0, 20, 10, 15, 12, 14, 13]);
    expect(polygraphyBisectTrials(20, 13)).toBe(6);
  });

  it("bisect reverse on 20 layers whose culprit is layer 12 finds the last k = 8", async () => {
    const log: { pinned: number[]; info: TrialInfo }[] = [];
    const r = await bisectSearch(20, "reverse", oracle([12], log));
    expect(r.k).toBe(8);
    expect(r.pinned).toEqual([12, 13, 14, 15, 16, 17, 18, 19]);
    // 20 pass, 10 pass, 5 fail, 8 pass, 6 fail, 7 fail -> good 8, bad 7
    expect(log.map((l) => l.info.k)).toEqual([0, 20, 10, 5, 8, 6, 7]);
  });

  it("bisect takes about ceil(log2(N+1)) trials for every answer", () => {
    for (const n of [1, 7, 19, 100, 205, 1000]) {
      for (let ans = 1; ans <= n; ans += Math.max(1, Math.floor(n / 13))) {
        expect(polygraphyBisectTrials(n, ans)).toBeLessThanOrEqual(Math.ceil(Math.log2(n + 1)) + 1);
      }
    }
  });

  it("bisect reports failure when even all layers pinned fail", async () => {
    const r = await bisectSearch(5, "forward", async () => ({ passed: false }));
    expect(r.found).toBe(false);
  });

  it("linear forward: k = 0, 1, 2, ... until the first pass (culprit at 3 -> k = 4, 5 trials)", async () => {
    const log: { pinned: number[]; info: TrialInfo }[] = [];
    const r = await linearSearch(10, "forward", oracle([3], log));
    expect(r.k).toBe(4);
    expect(log.map((l) => l.info.k)).toEqual([0, 1, 2, 3, 4]);
  });

  it("linear reverse pins the last k (culprit at 3 of 10 -> k = 7)", async () => {
    const log: { pinned: number[]; info: TrialInfo }[] = [];
    const r = await linearSearch(10, "reverse", oracle([3], log));
    expect(r.k).toBe(7);
    expect(r.pinned).toEqual([3, 4, 5, 6, 7, 8, 9]);
  });

  it("minimal: top-k binary search then 1-minimal reduction (lowest score first)", async () => {
    // positions 0..9, scores rank 7 > 2 > 5 > 1 ...; needed = {2, 7}; position 5 is flagged but harmless
    const scores = [0.1, 0.5, 1e3, 0.2, 0.01, 2, 0.3, 1e6, 0.05, 0];
    const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
    const log: { pinned: number[]; info: TrialInfo }[] = [];
    const r = await minimalSearch(order, scores, 3, oracle([2, 7], log));
    expect(r).toEqual({ found: true, pinned: [2, 7] });
    // baseline, gallop top-3 (pass), binary top-1 (fail), top-2 (pass), reduce drops 2 then 7 (both fail)
    expect(log.map((l) => `${l.info.phase}:${l.pinned.join("+")}`)).toEqual([
      "baseline:",
      "gallop:2+5+7",
      "binary:7",
      "binary:2+7",
      "reduce:7",
      "reduce:2",
    ]);
  });

  it("minimal gallops when the flagged layers are not enough", async () => {
    const scores = [5, 4, 3, 0.5, 0.4, 0.3, 0.2, 0.1];
    const order = scores.map((_, i) => i);
    const log: { pinned: number[]; info: TrialInfo }[] = [];
    const r = await minimalSearch(order, scores, 3, oracle([0, 6], log));
    expect(r.pinned).toEqual([0, 6]);
    expect(log.filter((l) => l.info.phase === "gallop").map((l) => l.info.k)).toEqual([3, 6, 8]);
  });
});

describe("outputs TensorRT tools accept", () => {
  it("exact trtexec and Polygraphy strings", () => {
    const e = [
      { pattern: "ln1/pow", precision: "fp32" as const },
      { pattern: "ln1/var", precision: "fp32" as const },
    ];
    expect(trtexecFlags(e)).toBe("--layerPrecisions=ln1/pow:fp32,ln1/var:fp32 --layerOutputTypes=ln1/pow:fp32,ln1/var:fp32 --precisionConstraints=obey");
    expect(polygraphyArgs(e)).toBe("--layer-precisions ln1/pow:float32 ln1/var:float32 --precision-constraints obey");
    expect(polygraphyArgs([{ pattern: "a b", precision: "fp16" }])).toBe("--layer-precisions 'a b:float16' --precision-constraints obey");
  });
});

describe("checkpoint and resume", () => {
  function sameSearch(a: BisectResult, b: BisectResult): void {
    expect(b.pinned_layers).toEqual(a.pinned_layers);
    const strip = (i: IterationRecord) => ({ phase: i.phase, k: i.k, size: i.size, pinned: i.pinned, passed: i.passed, detail: i.detail });
    expect(b.iterations.map(strip)).toEqual(a.iterations.map(strip));
  }

  it("a search killed after n evaluations resumes without re-running any of them, with the same result", async () => {
    const full = await bisectModel(args("deep_mlp"));
    const fresh = full.iterations.filter((i) => !i.cached).length;
    expect(fresh).toBeGreaterThan(4);
    const ckpt = path.join(dir, "deep.ckpt.json");
    const n = 3;
    let evaluated = 0;
    await expect(
      bisectModel(args("deep_mlp", { checkpoint: ckpt }), {
        onIteration: (it) => {
          if (!it.cached && ++evaluated === n) throw new Error("killed");
        },
      }),
    ).rejects.toThrow("killed");
    const saved = JSON.parse(fs.readFileSync(ckpt, "utf8")) as { format: string; evaluations: Record<string, unknown> };
    expect(saved.format).toBe("trt-debug/bisect-checkpoint@1");
    expect(Object.keys(saved.evaluations).length).toBe(n);

    const resumed = await bisectModel(args("deep_mlp", { checkpoint: ckpt, resume: true }));
    sameSearch(full, resumed);
    expect(resumed.resumed).toBe(true);
    // the n checkpointed evaluations are served from the memo; nothing else is
    const firstN = full.iterations.filter((i) => !i.cached).slice(0, n).map((i) => i.iteration);
    for (const i of firstN) {
      expect(resumed.iterations[i - 1]!.cached).toBe(true);
      expect(resumed.iterations[i - 1]!.layers_executed).toBe(0);
    }
    expect(resumed.iterations.filter((i) => !i.cached).length).toBe(fresh - n);
    expect(resumed.executions.search).toBeLessThan(full.executions.search);
    // deleted after success
    expect(fs.existsSync(ckpt)).toBe(false);
  });

  it("refuses a checkpoint of a different search", async () => {
    const ckpt = path.join(dir, "ln.ckpt.json");
    await expect(
      bisectModel(args("layernorm_overflow", { checkpoint: ckpt }), {
        onIteration: () => {
          throw new Error("killed");
        },
      }),
    ).rejects.toThrow("killed");
    const other = { ...defaultCompareOptions(), maxRelL2: 0.05 };
    await expect(bisectModel(args("layernorm_overflow", { checkpoint: ckpt, resume: true, criterion: { kind: "compare", compare: other } }))).rejects.toThrow(UserError);
    await expect(bisectModel(args("layernorm_overflow", { checkpoint: ckpt, resume: true, mode: "bisect" }))).rejects.toThrow(/different search/);
    await expect(bisectModel(args("layernorm_overflow", { checkpoint: path.join(dir, "missing.json"), resume: true }))).rejects.toThrow(/no checkpoint/);
  });
});
