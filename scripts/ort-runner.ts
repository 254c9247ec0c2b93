/**
 * A small external runner for `trt-debug compare MODEL --runner-cmd` (docs/interop.md), on
 * onnxruntime-node: it stands where `polygraphy run --trt` or trtexec would, so the runner
 * protocol is tested end to end without a GPU.
 *
 *   npx tsx scripts/ort-runner.ts MODEL INPUTS.json OUTPUTS.json
 *
 * Reads the inputs (Polygraphy --load-inputs JSON), marks every node output of the main
 * graph as a graph output ("mark all"), runs each input set in FP32 and writes a Polygraphy
 * RunResults file with one runner, `onnxruntime-node`, one iteration per set.
 */
import * as fs from "node:fs";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, ValueInfoProtoSchema } from "onnx-buf";
import * as ort from "onnxruntime-node";
import { decodePolygraphyInputs } from "../src/io/polygraphy-json.js";
import { RunResultsWriter } from "../src/io/polygraphy-results.js";
import type { DType } from "../src/core/host-tensor.js";

const ORT_TYPES: Record<string, DType> = { float32: "float32", float16: "float16", float64: "float64", int8: "int8", int16: "int16", int32: "int32", int64: "int64", uint8: "uint8", uint16: "uint16", uint32: "uint32", uint64: "uint64", bool: "bool" };

async function main(): Promise<void> {
  const [modelFile, inputsFile, outputsFile] = process.argv.slice(2);
  if (!modelFile || !inputsFile || !outputsFile) {
    process.stderr.write("usage: ort-runner MODEL INPUTS.json OUTPUTS.json\n");
    process.exit(2);
  }
  const model = fromBinary(ModelProtoSchema, new Uint8Array(fs.readFileSync(modelFile)));
  const g = model.graph!;
  const declared = new Set(g.output.map((o) => o.name));
  for (const n of g.node) for (const o of n.output) if (o && !declared.has(o)) (g.output.push(create(ValueInfoProtoSchema, { name: o })), declared.add(o));
  const session = await ort.InferenceSession.create(toBinary(ModelProtoSchema, model), { graphOptimizationLevel: "disabled" });
  const sets = decodePolygraphyInputs(fs.readFileSync(inputsFile, "utf8"), inputsFile);
  const w = await RunResultsWriter.open(outputsFile);
  await w.begin("onnxruntime-node");
  for (const set of sets) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, a] of set) feeds[name] = new ort.Tensor(a.dtype === "bool" ? "bool" : (a.dtype as ort.Tensor.Type), a.data as ort.Tensor.DataType, a.dims);
    const out = await session.run(feeds);
    await w.iteration();
    for (const name of session.outputNames) {
      const t = out[name]!;
      const dtype = ORT_TYPES[t.type];
      if (!dtype) continue;
      await w.tensor(name, { dtype, dims: [...t.dims], data: t.data as Float32Array });
    }
    process.stdout.write(`ran set with ${session.outputNames.length} outputs\n`);
  }
  await w.close();
}

main().catch((e: unknown) => {
  process.stderr.write(`ort-runner: ${(e as Error).message}\n`);
  process.exit(1);
});
