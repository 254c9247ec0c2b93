/**
 * User errors name library options; the CLI spells them as flags (core/errors.ts userError,
 * aboutOption; cli/options.ts flagMessage). Library messages carry option names, CLI messages
 * the same bytes as before with flags.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { aboutOption, opt, OptionRef, UserError, userError } from "../src/core/errors.js";
import { flagMessage } from "../src/cli/options.js";
import { openCalibData } from "../src/calibration/calib-data.js";
import { openInputSets } from "../src/data/sources.js";
import { checkOutputPath } from "../src/core/output-file.js";
import { readCalibrationCache } from "../src/calibration/cache.js";
import type { InputSpec } from "../src/data/inputs.js";
import { tmpDir, userErrorAsync } from "./helpers.js";

const dir = tmpDir("trtdbg-opterr-");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const specs: InputSpec[] = [{ name: "x", dtype: "float32", dims: [2] }];

function thrown(f: () => unknown): UserError {
  try {
    f();
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  throw new Error("no error");
}

describe("userError", () => {
  it("spells options by name in the message and keeps them apart in parts", () => {
    const e = userError`${opt("calibData")} and ${opt("loadInputs")}: give ${3} batches from ${"a.npy"}`;
    expect(e.message).toBe("calibData and loadInputs: give 3 batches from a.npy");
    expect(e.option).toBe("calibData");
    expect(e.parts).toEqual([opt("calibData"), " and ", opt("loadInputs"), ": give 3 batches from a.npy"]);
    expect(e.parts![0]).toBeInstanceOf(OptionRef);
    expect(flagMessage(e)).toBe("--calib-data and --load-inputs: give 3 batches from a.npy");
  });

  it("a text that does not start with an option is about none; an option unknown to the CLI keeps its name", () => {
    const e = userError`f.json: run without ${opt("resume")} or ${opt("noSuchOption")}`;
    expect(e.option).toBeUndefined();
    expect(e.message).toBe("f.json: run without resume or noSuchOption");
    expect(flagMessage(e)).toBe("f.json: run without --resume or noSuchOption");
  });

  it("an interpolated UserError keeps its parts", () => {
    const inner = userError`${opt("loadInputs")} x.npy: bad header`;
    const e = userError`${opt("runnerCmd")}: cannot read its outputs: ${inner}`;
    expect(e.message).toBe("runnerCmd: cannot read its outputs: loadInputs x.npy: bad header");
    expect(flagMessage(e)).toBe("--runner-cmd: cannot read its outputs: --load-inputs x.npy: bad header");
  });

  it("aboutOption marks a message starting with the option, and nothing else", () => {
    const e = aboutOption(new UserError("loadInputs x.npy: bad header"), "loadInputs") as UserError;
    expect(e.option).toBe("loadInputs");
    expect(flagMessage(e)).toBe("--load-inputs x.npy: bad header");
    const other = new UserError("x.npy: bad header");
    expect(aboutOption(other, "loadInputs")).toBe(other);
    const prefix = new UserError("loadInputsX: y");
    expect(aboutOption(prefix, "loadInputs")).toBe(prefix);
  });
});

describe("library errors name options, the CLI flags", () => {
  it("calibration data given twice names both options", () => {
    const e = thrown(() => openCalibData(specs, { calibData: dir, inputs: { loadInputs: ["a.pb"] } }, () => undefined));
    expect(e.message).toBe("calibData and loadInputs: give the calibration data once");
    expect(flagMessage(e)).toBe("--calib-data and --load-inputs: give the calibration data once");
    const b = thrown(() => openCalibData(specs, { calibData: dir, calibBatches: 2 }, () => undefined));
    expect(b.message).toBe("calibBatches: only for random calibration data; calibData decides the batches itself");
    expect(flagMessage(b)).toBe("--calib-batches: only for random calibration data; --calib-data decides the batches itself");
  });

  it("a reader's error under loadInputs / calibData is about that option", async () => {
    const bad = path.join(dir, "bad.npy");
    fs.writeFileSync(bad, "not an npy file at all");
    for (const option of ["loadInputs", "calibData"]) {
      const e = await userErrorAsync(
        (async () => {
          for await (const _ of openInputSets([bad], specs, { option }).iterate()) void _;
        })(),
      );
      expect(e.option).toBe(option);
      expect(e.message.startsWith(`${option} ${bad}: `)).toBe(true);
      expect(flagMessage(e).startsWith(`${option === "loadInputs" ? "--load-inputs" : "--calib-data"} ${bad}: `)).toBe(true);
    }
  });

  it("advice names options too: a missing calibration cache", async () => {
    const missing = path.join(dir, "none.cache");
    const e = await userErrorAsync(readCalibrationCache(missing));
    expect(e.message).toBe(`${missing}: calibration cache not found; check the path given to calibrationCache`);
    expect(e.option).toBeUndefined();
    expect(flagMessage(e)).toBe(`${missing}: calibration cache not found; check the path given to --calibration-cache`);
  });

  it("an unwritable output path names the option", () => {
    const e = thrown(() => checkOutputPath("saveOutputs", "/proc/x", "dir"));
    expect(e.option).toBe("saveOutputs");
    expect(e.message).toMatch(/^saveOutputs \/proc\/x: is under \/proc/);
    expect(flagMessage(e)).toMatch(/^--save-outputs \/proc\/x: is under \/proc/);
  });
});
