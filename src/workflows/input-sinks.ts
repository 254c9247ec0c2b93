/**
 * Where `--save-inputs` writes the input sets (docs/inputs.md, docs/interop.md):
 * - an Arrow inputs file (default; `trt-debug/inputs@1`);
 * - FILE.json: Polygraphy's `--load-inputs` format, a JSON list with one {input_name: array}
 *   object per set (arrays as base64 .npy, the encoding of io/polygraphy-json.ts);
 * - DIR with format "trtexec": one raw little-endian file per input (`<name>.bin`, the
 *   name with characters outside A-Za-z0-9_.- replaced by `_`) and `DIR/loadInputs.txt` holding
 *   the exact `--loadInputs=` flag for trtexec. trtexec runs one set: a second set is an error.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { opt, UserError, userError } from "../core/errors.js";
import type { HostTensor } from "../core/host-tensor.js";
import { DumpWriter } from "../io/dump.js";
import { toDumpRow } from "../io/rows.js";
import { encodePolygraphyArray } from "../io/polygraphy-json.js";

export type InputsFormat = "arrow" | "polygraphy" | "trtexec";

export interface InputsSink {
  write(set: readonly HostTensor[]): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

/** The format of `--save-inputs FILE`: given, else by extension (.json = Polygraphy). */
export function inputsFormatOf(file: string, format?: InputsFormat): InputsFormat {
  return format ?? (/\.json$/i.test(file) ? "polygraphy" : "arrow");
}

/** The trtexec flag that loads the files of `trtexecFiles`. */
export function trtexecLoadInputsFlag(files: readonly { name: string; file: string }[]): string {
  return `--loadInputs=${files.map((f) => `'${f.name}':${f.file}`).join(",")}`;
}

export async function openInputsSink(file: string, format: InputsFormat, meta: { model: string; extra: Record<string, string> }): Promise<InputsSink> {
  if (format === "arrow") {
    const w = await DumpWriter.open(file, { kind: "inputs", model: path.basename(meta.model), precision: "", extra: meta.extra });
    let order = 0;
    return {
      write: async (set) => {
        for (const t of set) await w.write(toDumpRow(order++, "", "", t, ""));
      },
      close: () => w.close(),
      abort: () => w.abort(),
    };
  }
  if (format === "polygraphy") {
    await fs.promises.mkdir(path.dirname(path.resolve(file)), { recursive: true });
    const fd = await fs.promises.open(file, "w");
    let first = true;
    return {
      write: async (set) => {
        await fd.write(first ? "[" : ", ");
        first = false;
        await fd.write("{");
        for (const [k, t] of set.entries()) await fd.write(`${k ? ", " : ""}${JSON.stringify(t.name)}: ${JSON.stringify(encodePolygraphyArray(t))}`);
        await fd.write("}");
      },
      close: async () => {
        await fd.write(first ? "[]\n" : "]\n");
        await fd.close();
      },
      abort: async () => {
        await fd.close().catch(() => undefined);
        await fs.promises.rm(file, { force: true });
      },
    };
  }
  await fs.promises.mkdir(file, { recursive: true });
  const written: string[] = [];
  let sets = 0;
  return {
    write: async (set) => {
      if (++sets > 1) throw userError`${opt("saveInputs")} ${file} ${opt("saveInputsFormat.trtexec", 'saveInputsFormat "trtexec"')}: trtexec runs one input set, and ${sets} were given; pass one set (one ${opt("loadInputs")} file or none)`;
      const files: { name: string; file: string }[] = [];
      for (const t of set) {
        if (Array.isArray(t.data)) throw userError`${opt("saveInputs")} ${file} ${opt("saveInputsFormat.trtexec", 'saveInputsFormat "trtexec"')}: input '${t.name}' is a string tensor; trtexec loads numeric inputs only`;
        const f = path.join(file, `${t.name.replace(/[^A-Za-z0-9_.-]/g, "_")}.bin`);
        const d = t.data as ArrayBufferView;
        await fs.promises.writeFile(f, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
        written.push(f);
        files.push({ name: t.name, file: f });
      }
      const flagFile = path.join(file, "loadInputs.txt");
      await fs.promises.writeFile(flagFile, trtexecLoadInputsFlag(files) + "\n");
      written.push(flagFile);
    },
    close: async () => undefined,
    abort: async () => {
      for (const f of written) await fs.promises.rm(f, { force: true });
    },
  };
}
