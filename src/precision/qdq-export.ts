/**
 * `convert --int8`: an FP32 model and the int8 emulation's decisions (precision/int8.ts, a
 * calibration cache) written as an explicitly quantized (Q/DQ) ONNX model (docs/int8.md
 * "convert --int8").
 *
 * The graph is the emulation's own rewrite (rewrite.ts rewriteLayers over every layer), so its
 * numbers are the emulation's: activation QuantizeLinear/DequantizeLinear pairs with the cache's
 * per-tensor scales (zero point 0) on the inputs of int8 layers (an int8 producer whose
 * consumers all run in int8 carries the pair on its output instead: the same tensor edge, so
 * its consumers read it once), and no Q/DQ on layers that run in fp32 (pinned or fallbacks).
 * One change: a per-channel weight is stored as an int8 initializer with its per-channel scales
 * feeding a DequantizeLinear (axis = the output-channel axis) instead of the emulation's
 * fake-quantized float copy. DequantizeLinear computes q·s in float32, the value the emulation
 * stores, so the numbers are bit-identical.
 */
import { create } from "@bufbuild/protobuf";
import { AttributeProto_AttributeType, AttributeProtoSchema, NodeProtoSchema, OperatorSetIdProtoSchema, TensorProto_DataType, type ModelProto, type NodeProto, type TensorProto } from "onnx-buf";
import { opt, optionText, UserError, type OptionRef } from "../core/errors.js";
import type { Precision } from "../core/host-tensor.js";
import type { LoadedModel } from "../onnx/model.js";
import type { TypeMap } from "../onnx/infer.js";
import { hostToTensorProto, tensorProtoToHost } from "../onnx/tensor.js";
import { FP8E4M3FN_MAX, quantizeFp8, quantizeInt8 } from "../numeric/index.js";
import { modelWithGraph } from "./convert.js";
import { canUpgrade, modelScope, upgradeNodes } from "../onnx/opset-upgrade.js";
import { rewriteLayers, transformKey, weightChannelScales, WeightCache, type TransformPolicy } from "./rewrite.js";

/** Per-axis DequantizeLinear (the `axis` attribute) needs opset 13. */
export const QDQ_EXPORT_OPSET = 13;

export interface QdqExport {
  proto: ModelProto;
  /** Activation QuantizeLinear nodes written. */
  activationQdq: number;
  /** Weights stored as int8 initializers with per-channel scales. */
  int8Weights: { tensor: string; axis: number; channels: number }[];
}

/**
 * The Q/DQ export as its messages name it: the library's `convertInt8Model` (with `int8.qtype
 * "fp8"`), the CLI's `convert --int8` / `convert --fp8` (cli/options.ts OPTION_FLAGS).
 */
export function convertRef(quantized: "int8" | "fp8"): OptionRef {
  return opt(`convert.${quantized}`, quantized === "fp8" ? 'convertInt8Model with int8.qtype "fp8"' : "convertInt8Model");
}

/** A UserError of the Q/DQ export naming options (core/errors.ts optionText); `convertRef` is a workflow, not the option it is about. */
export function convertError(text: TemplateStringsArray, ...values: unknown[]): UserError {
  const { message, parts } = optionText(text, ...values);
  return new UserError(message, undefined, parts);
}

/** Scaled fp8 Q/DQ (float8e4m3fn zero points) needs QuantizeLinear/DequantizeLinear-19. */
export const FP8_QDQ_EXPORT_OPSET = 19;

/**
 * The model under `precisions` (resolved: `quantized` ("int8", or "fp8" for scaled e4m3fn) only
 * where the layer really runs quantized; the others fp32) with `policy` (the model's Int8Policy,
 * of the same quantized type), as a Q/DQ model.
 */
export function exportQdq(m: LoadedModel, types: TypeMap, precisions: readonly Precision[], policy: TransformPolicy, quantized: "int8" | "fp8" = "int8"): QdqExport {
  const need = quantized === "fp8" ? FP8_QDQ_EXPORT_OPSET : QDQ_EXPORT_OPSET;
  // fp8 below opset 19: the graph is written upgraded to 19 (onnx/opset-upgrade.ts; the caller checks the upgrade first)
  const upgradeTo19 = quantized === "fp8" && m.opset >= 0 && m.opset < need && canUpgrade(m.opset, need);
  if (m.opset >= 0 && m.opset < need && !upgradeTo19) {
    throw convertError`${m.path}: ${convertRef(quantized)} writes ${quantized === "fp8" ? "float8e4m3fn QuantizeLinear/DequantizeLinear" : "per-channel DequantizeLinear"} (opset >= ${need}); the model has opset ${m.opset}: convert it with onnx.version_converter first`;
  }
  const other = precisions.find((p) => p !== quantized && p !== "fp32");
  if (other) throw new Error(`exportQdq: layers must run in ${quantized} or fp32 (got ${other})`);
  const layers = m.graph.layers;
  const idx = layers.map((l) => l.index);
  const rw = rewriteLayers(m, types, precisions, idx, policy, new WeightCache(m));

  // Per-channel weights: the fake-quantized float copy `<w>::<key>` becomes int8 + scales + DequantizeLinear.
  const weightDq = new Map<string, { src: string; axis: number; fp8: boolean; scales?: Float32Array; qmin: number }>();
  for (const l of layers) {
    l.inputs.forEach((t, k) => {
      if (m.graph.initializers.get(t)?.dataType !== TensorProto_DataType.FLOAT) return; // as rewriteLayers: float constants only
      const tr = policy.input(l, k, t, precisions[l.index]!, precisions);
      if (tr.kind === "qdq-weight") weightDq.set(`${t}::${transformKey(tr)}`, { src: t, axis: tr.axis, fp8: tr.type === "fp8e4m3fn", scales: tr.scales, qmin: tr.qmin });
    });
  }
  const inits: TensorProto[] = [];
  const dqNodes: NodeProto[] = [];
  const int8Weights: QdqExport["int8Weights"] = [];
  for (const init of rw.initializers) {
    const w = weightDq.get(init.name);
    if (!w) {
      inits.push(init);
      continue;
    }
    const host = tensorProtoToHost(m.graph.initializers.get(w.src)!, { baseDir: m.baseDir, fileName: m.path });
    const data = host.data as Float32Array;
    const scale = w.scales ?? weightChannelScales(data, host.dims, w.axis, w.fp8 ? FP8E4M3FN_MAX : 127);
    const qName = `${w.src}::${w.fp8 ? "fp8" : "int8"}`, sName = `${w.src}::scale`, zName = `${w.src}::zp`;
    // fp8: e4m3fn(w / s_c) bit patterns; DequantizeLinear gives e4m3fn·s_c in float32, the emulation's values
    inits.push(
      w.fp8
        ? hostToTensorProto({ name: qName, dtype: "float8e4m3fn", dims: host.dims, data: quantizeFp8(data, { scale, axis: w.axis, dims: host.dims }) })
        : hostToTensorProto({ name: qName, dtype: "int8", dims: host.dims, data: quantizeInt8(data, { scale, axis: w.axis, dims: host.dims, qmin: w.qmin, qmax: 127 }) }),
      hostToTensorProto({ name: sName, dtype: "float32", dims: [scale.length], data: scale }),
      w.fp8
        ? hostToTensorProto({ name: zName, dtype: "float8e4m3fn", dims: [scale.length], data: new Uint8Array(scale.length) })
        : hostToTensorProto({ name: zName, dtype: "int8", dims: [scale.length], data: new Int8Array(scale.length) }),
    );
    dqNodes.push(
      create(NodeProtoSchema, {
        name: `${w.src}::dequantize`,
        opType: "DequantizeLinear",
        input: [qName, sName, zName],
        output: [init.name],
        attribute: [create(AttributeProtoSchema, { name: "axis", type: AttributeProto_AttributeType.INT, i: BigInt(w.axis) })],
      }),
    );
    int8Weights.push({ tensor: w.src, axis: w.axis, channels: scale.length });
  }
  // The emulation keeps a quantized output's name on the DequantizeLinear (`<t>::raw` -> Q -> DQ -> `<t>`);
  // a Q/DQ model names the producer's tensor `<t>` (what calib check and TensorRT read the scale of) and the DQ's `<t>::dq`.
  const rename = new Map<string, string>();
  for (const n of rw.nodes) {
    for (const o of n.output) {
      if (!o.endsWith("::raw")) continue;
      const t = o.slice(0, -"::raw".length);
      rename.set(o, t);
      rename.set(t, `${t}::dq`);
    }
  }
  for (const n of rw.nodes) {
    n.input = n.input.map((t) => rename.get(t) ?? t);
    n.output = n.output.map((t) => rename.get(t) ?? t);
  }
  // Transform nodes carry a process-wide counter (`...#<n>::scale`): number them per model instead,
  // so the same model, cache and plan give the same file.
  const seq = new Map<string, string>();
  const stable = (name: string) => !name.includes("::in_") ? name : name.replace(/#(\d+)(?=::[a-z_]+$)/, (_, n: string) => {
    let k = seq.get(n);
    if (k === undefined) seq.set(n, (k = `#${seq.size}`));
    return k;
  });
  for (const n of rw.nodes) {
    n.name = stable(n.name);
    n.input = n.input.map(stable);
  }
  for (const t of inits) t.name = stable(t.name);
  const g = m.proto.graph!;
  let nodes = [...dqNodes, ...rw.nodes];
  if (upgradeTo19) {
    const up = upgradeNodes(nodes, modelScope(m, types, (t) => inits.push(t)), FP8_QDQ_EXPORT_OPSET);
    if (up.blocker) throw new UserError(`${m.path}: convert --fp8 needs opset ${need}, but node '${up.blocker.node}' (${up.blocker.opType}, opset ${m.opset}) has no upgrade path in trt-debug (${up.blocker.reason}); re-export the model at opset >= ${need}`);
    nodes = up.nodes;
  }
  const proto = modelWithGraph(m.proto, { node: nodes, initializer: inits, input: g.input, output: g.output });
  if (upgradeTo19) proto.opsetImport = proto.opsetImport.map((o) => (o.domain === "" || o.domain === "ai.onnx" ? create(OperatorSetIdProtoSchema, { domain: o.domain, version: BigInt(need) }) : o));
  const activationQdq = rw.nodes.filter((n) => n.opType === "QuantizeLinear").length;
  return { proto, activationQdq, int8Weights };
}
