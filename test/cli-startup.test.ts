// CLI start-up (src/cli/startup.ts): yargs no longer renders the command's help text when a
// handler starts (it kept it for showHelpOnFail, which the CLI turns off); --help and errors
// are unchanged.
import yargs from "yargs";
import { describe, expect, it } from "vitest";
import { skipHelpCache } from "../src/cli/startup.js";
import { cli, expectUserError, GOLDEN } from "./helpers.js";
import * as path from "node:path";

type Usage = { cacheHelpMessage(): void; hasCachedHelpMessage(): boolean };
const usageOf = (y: unknown) => (y as { getInternalMethods(): { getUsageInstance(): Usage } }).getInternalMethods().getUsageInstance();

describe("skipHelpCache", () => {
  it("a command's handler runs without yargs rendering and keeping the help text", async () => {
    const plain = yargs(["go", "--n", "3"]).command("go", "a command", (b) => b.option("n", { type: "number", describe: "a number" }), () => {}).exitProcess(false);
    await plain.parseAsync();
    expect(usageOf(plain).hasCachedHelpMessage()).toBe(true); // what yargs does by itself (guards this test against a yargs change)
    const y = yargs(["go", "--n", "3"]).command("go", "a command", (b) => b.option("n", { type: "number", describe: "a number" }), () => {}).exitProcess(false);
    skipHelpCache(y);
    const argv = await y.parseAsync();
    expect(argv.n).toBe(3);
    expect(usageOf(y).hasCachedHelpMessage()).toBe(false);
  });

  it("--help still lists a command's options; a bad flag is still one line, exit 2", async () => {
    const h = await cli("run", "--help");
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("--save-outputs");
    expect(h.stdout).toContain("--segment-memory");
    expectUserError(await cli("run", path.join(GOLDEN, "layernorm_overflow.onnx"), "--bogus-flag"), "bogus-flag");
  });
});
