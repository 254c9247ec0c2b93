/**
 * `convert --int8 --fp16|--bf16` (and `--fp8 --fp16|--bf16`): the Q/DQ model whose layers that do
 * not run quantized are written strongly typed in the reduced type, what TensorRT builds with
 * `--int8 --fp16` (≤ 10.x) and the TensorRT 11 model of the same assignment (docs/int8.md
 * "convert --int8 --fp16").
 *
 * Two steps, each an existing writer:
 *  1. the Q/DQ model (precision/qdq-export.ts) with every non-quantized layer in fp32 and the
 *     quantized layers' unquantized outputs left unrounded; where the emulation rounds such an
 *     output to the fallback type (`--int8 --fp16`: an int8 layer's output is emitted in fp16
 *     unless all its consumers quantize it) an Identity `<layer>::<fb>_output<k>` is inserted
 *     after it (the quantized layer's result is renamed `<tensor>::<q>_out`);
 *  2. that model written strongly typed (precision/convert.ts): the reduced layers and those
 *     Identities in fp16/bf16, the quantized layers and the Q/DQ nodes in fp32, Casts at the
 *     boundaries. Every value is the emulation's: a reduced layer rounds its inputs and output as
 *     the emulation does; an int8 layer's output is rounded once, by the Identity's Cast.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { NodeProtoSchema, type ModelProto, type NodeProto } from "onnx-buf";
import { isFloatDType, type Precision } from "../core/host-tensor.js";
import { registerTemp, unregisterTemp } from "../core/temp-files.js";
import type { LoadedModel } from "../onnx/model.js";
import type { TypeMap } from "../onnx/infer.js";
import { saveModel } from "../onnx/model-file.js";
import type { FusionMode } from "../onnx/layer-model.js";
import { prepareModelFile } from "../runtime/capture-runs.js";
import { exportQdq, type QdqExport } from "../precision/qdq-export.js";
import { convertToTyped, type TypedPrecision } from "../precision/convert.js";
import type { TransformPolicy } from "../precision/rewrite.js";

export interface TypedQdqExport extends QdqExport {
  /** Cast nodes of the typed model. */
  casts: number;
}

/**
 * `precisions`: the emulation's resolved assignment (quantized layers `q`, the others fp32 or
 * `fb`); `emulation`: its policy (fallback `fb`), `exportPolicy`: the same cache and range with
 * fallback fp32 (what exportQdq writes).
 */
export async function exportTypedQdq(
  m: LoadedModel,
  types: TypeMap,
  precisions: readonly Precision[],
  q: "int8" | "fp8",
  fb: "fp16" | "bf16",
  emulation: TransformPolicy,
  exportPolicy: TransformPolicy,
  o: { fusion?: FusionMode; allowExternalDataOutside?: boolean; tmpDir: string },
): Promise<TypedQdqExport> {
  const layers = m.graph.layers;
  const mapped = precisions.map((p) => (p === q ? q : "fp32"));
  const r = exportQdq(m, types, mapped, exportPolicy, q);
  const g = r.proto.graph!;
  // 1. quantized layers' outputs the emulation rounds to `fb`: an Identity in `fb` after them
  const rounders = new Set<string>();
  const producer = new Map<string, NodeProto>();
  for (const n of g.node) for (const o of n.output) if (o) producer.set(o, n);
  const after = new Map<NodeProto, NodeProto[]>();
  for (const l of layers) {
    if (precisions[l.index] !== q) continue;
    l.outputs.forEach((t, k) => {
      if (t === "" || !isFloatDType(types.get(t)?.dtype ?? "int64")) return;
      const tr = emulation.output(l, k, t, q, precisions);
      if (tr.kind !== "round") return;
      const n = producer.get(t);
      if (!n) throw new Error(`convert: tensor '${t}' of layer '${l.name}' has no producer in the Q/DQ model`);
      const raw = `${t}::${q}_out`;
      n.output = n.output.map((x) => (x === t ? raw : x));
      const name = `${l.name}::${fb}_output${k}`;
      rounders.add(name);
      after.set(n, [...(after.get(n) ?? []), create(NodeProtoSchema, { name, opType: "Identity", input: [raw], output: [t] })]);
    });
  }
  g.node = g.node.flatMap((n) => [n, ...(after.get(n) ?? [])]);
  // 2. the Q/DQ model loaded as trt-debug sees it, written strongly typed
  const tmp = path.join(o.tmpDir, "qdq.onnx");
  registerTemp(tmp);
  try {
    saveModel(r.proto, tmp);
    const p1 = await prepareModelFile(tmp, { fusion: o.fusion, allowExternalDataOutside: o.allowExternalDataOutside });
    const orig = new Map(layers.map((l) => [l.name, precisions[l.index]!]));
    const ps: TypedPrecision[] = p1.model.graph.layers.map((l) => {
      if (rounders.has(l.name)) return fb;
      const p = orig.get(l.name);
      return p === "fp16" || p === "bf16" ? p : "fp32";
    });
    const t = convertToTyped(p1.model, p1.types, ps, { io: "fp32" });
    return { ...r, proto: t.proto as ModelProto, casts: t.casts };
  } finally {
    fs.rmSync(tmp, { force: true });
    unregisterTemp(tmp);
  }
}
