/** Precision plans: exact names, globs, precedence, unmatched patterns, file round trip. */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { makePlan, parseLayerPrecisions, parsePlanJson, planToJson, readPlan, resolvePlan } from "../src/precision/plan.js";
import { UserError } from "../src/core/errors.js";
import type { Layer } from "../src/onnx/model.js";
import { tmpDir } from "./helpers.js";

const layers = ["enc/ln/pow", "enc/ln/mean", "enc/fc", "dec/ln/pow", "head"].map((name, index) => ({ name, index }) as Layer);

describe("precision plans", () => {
  it("resolves exact names over globs, the last glob wins, the rest take the default", () => {
    const plan = makePlan("fp16", parseLayerPrecisions(["*/ln/*:fp32", "enc/*:bf16", "enc/ln/pow:fp16", "head:float32"]));
    expect(resolvePlan(plan, layers)).toEqual(["fp16", "bf16", "bf16", "fp32", "fp32"]);
  });
  it("supports ? and character classes", () => {
    const plan = makePlan("fp16", parseLayerPrecisions(["[de][ne][cc]/ln/p?w:fp32"]));
    expect(resolvePlan(plan, layers)).toEqual(["fp32", "fp16", "fp16", "fp32", "fp16"]);
  });
  it("a pattern that matches nothing is an error, not silently ignored", () => {
    expect(() => resolvePlan(makePlan("fp16", parseLayerPrecisions(["enc/ln/POW:fp32"])), layers)).toThrow(/no layer is named 'enc\/ln\/POW'/);
    expect(() => resolvePlan(makePlan("fp16", parseLayerPrecisions(["nothing*:fp32"])), layers)).toThrow(/matches no layer/);
  });
  it("parses PATTERN:PREC at the last colon and rejects bad values", () => {
    expect(parseLayerPrecisions(["a:b:fp32"])).toEqual([{ pattern: "a:b", precision: "fp32" }]);
    expect(() => parseLayerPrecisions(["fp32"])).toThrow(UserError);
    expect(() => parseLayerPrecisions(["x:int4"])).toThrow(/unknown precision 'int4'/);
  });
  it("round trips through its JSON file and rejects malformed files", () => {
    const dir = tmpDir();
    const plan = makePlan("fp16", [{ pattern: "enc/fc", precision: "fp32" }], { tool: "test" });
    const f = path.join(dir, "plan.json");
    fs.writeFileSync(f, planToJson(plan));
    expect(readPlan(f)).toEqual(plan);
    expect(() => parsePlanJson("{", "p.json")).toThrow(/p.json: not valid JSON/);
    expect(() => parsePlanJson('{"format":"x"}', "p.json")).toThrow(/not a trt-debug precision plan/);
    expect(() => parsePlanJson('{"format":"trt-debug/precision-plan@1","default":"fp16","layers":[{"pattern":1}]}', "p.json")).toThrow(/layers\[0\]/);
    expect(() => readPlan(path.join(dir, "none.json"))).toThrow(/no such file/);
  });
});
