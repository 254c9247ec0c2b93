/**
 * trtexec `--exportOutput=FILE` JSON (sampleReporting's exportJSONOutput): a list with one
 * object per output tensor, values as decimal text, dimensions as "1x3x224x224":
 *
 *   [ { "name" : "prob", "dimensions" : "1x1000", "values" : [ 0.1, 0.2, ... ] } ]
 *
 * trtexec prints non-finite values the way C++ streams do (`inf`, `-inf`, `nan`), which is not
 * JSON; they are read as such. The element type is not recorded: values are read as float32
 * (the text of an fp16 output is exact in float32).
 */
import * as fs from "node:fs";
import { UserError } from "../core/errors.js";
import type { HostTensor } from "../core/host-tensor.js";
import { floatsFromJson } from "../numeric/index.js";

const FIX = "pass the file written by trtexec --exportOutput=FILE";
const MAX_BYTES = 1024 ** 3;

/** True when the text starts like a JSON list (trtexec output), not an object (RunResults). */
export function looksLikeTrtexecOutput(head: string): boolean {
  return head.trimStart().startsWith("[");
}

export function parseTrtexecOutput(text: string, file: string): HostTensor[] {
  // C++ stream spellings of non-finite floats, outside strings: 1e999 parses to Infinity, NaN to null.
  const fixed = text.replace(/([[,]\s*)(-?)(inf(?:inity)?|nan)(?=\s*[,\]])/gi, (_, pre: string, sign: string, w: string) => `${pre}${/^nan$/i.test(w) ? "null" : `${sign}1e999`}`);
  let v: unknown;
  try {
    v = JSON.parse(fixed);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message}); ${FIX}`);
  }
  if (!Array.isArray(v)) throw new UserError(`${file}: not a trtexec output list; ${FIX}`);
  return v.map((o, k) => {
    if (!o || typeof o !== "object" || typeof (o as { name?: unknown }).name !== "string") throw new UserError(`${file}: entry ${k} has no "name"; ${FIX}`);
    const { name, dimensions, values } = o as { name: string; dimensions?: unknown; values?: unknown };
    if (typeof dimensions !== "string" || !/^\d+(x\d+)*$|^$/.test(dimensions)) throw new UserError(`${file}: tensor '${name}': "dimensions" ${JSON.stringify(dimensions)} is not like "1x3x224x224"; ${FIX}`);
    const dims = dimensions === "" ? [] : dimensions.split("x").map(Number);
    if (!Array.isArray(values)) throw new UserError(`${file}: tensor '${name}': no "values" list; ${FIX}`);
    const n = dims.reduce((a, b) => a * b, 1);
    if (values.length !== n) throw new UserError(`${file}: tensor '${name}': ${values.length} values for dimensions ${dimensions} (${n} elements); ${FIX}`);
    const data = floatsFromJson(values);
    if (typeof data === "number") throw new UserError(`${file}: tensor '${name}': value ${data} is not a number; ${FIX}`);
    return { name, dtype: "float32", dims, data };
  });
}

export function readTrtexecOutput(file: string): HostTensor[] {
  const st = fs.statSync(file);
  if (st.size > MAX_BYTES) throw new UserError(`${file}: ${st.size} bytes is over the 1 GiB limit for trtexec output JSON; export fewer outputs, or save them with Polygraphy --save-outputs`);
  return parseTrtexecOutput(fs.readFileSync(file, "utf8"), file);
}
