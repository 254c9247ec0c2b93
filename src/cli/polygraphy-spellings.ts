/**
 * Polygraphy's flag spellings (docs/interop.md): accepted where they mean the same as ours,
 * answered with one line naming our equivalent where they do not. Applied to argv before
 * the parser sees it.
 *
 * | Polygraphy | trt-debug |
 * | --onnx-outputs mark all, --trt-outputs mark all | --mark-all |
 * | --onnx-outputs A B, --trt-outputs A B           | --mark A B |
 * | --save-results FILE                              | --save-outputs FILE (a .json file: RunResults) |
 * | --load-outputs FILE                              | compare REF FILE (error naming it) |
 */
import { UserError } from "../core/errors.js";

const MARK_FLAGS = new Set(["--onnx-outputs", "--trt-outputs"]);

/** argv with Polygraphy's spellings rewritten to trt-debug's; throws for those with no same meaning. */
export function translatePolygraphySpellings(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const [flag, inline] = a.includes("=") && a.startsWith("--") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    if (MARK_FLAGS.has(flag)) {
      const vals: string[] = inline !== undefined ? [inline] : [];
      while (inline === undefined && i + 1 < argv.length && !argv[i + 1]!.startsWith("-")) vals.push(argv[++i]!);
      if (vals.length === 0) throw new UserError(`${flag}: give 'mark all' or tensor names (trt-debug spells these --mark-all and --mark NAME ...)`);
      if (vals.length === 2 && vals[0] === "mark" && vals[1] === "all") out.push("--mark-all");
      else if (vals.includes("mark")) throw new UserError(`${flag} ${vals.join(" ")}: trt-debug takes '${flag} mark all' (= --mark-all) or tensor names (= --mark NAME ...)`);
      else out.push("--mark", ...vals);
      continue;
    }
    if (flag === "--save-results") {
      out.push(inline !== undefined ? `--save-outputs=${inline}` : "--save-outputs");
      continue;
    }
    if (flag === "--load-outputs") {
      const f = inline ?? argv[i + 1] ?? "FILE";
      throw new UserError(`--load-outputs ${f}: trt-debug compares saved outputs as files: \`trt-debug compare REF ${f} --model MODEL.onnx\` (REF: trt-debug run --mark-all --save-outputs ref.json, or an Arrow dump)`);
    }
    out.push(a);
  }
  return out;
}
