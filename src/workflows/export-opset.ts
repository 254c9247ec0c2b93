/**
 * Old-opset models given to `convert` (and `bisect --save-onnx`): a bf16 model needs Cast-13 and
 * an int8 Q/DQ model per-channel DequantizeLinear-13, so a model of opset 9..12 is upgraded to
 * opset 13 with the adapters the emulation uses (onnx/opset-upgrade.ts; docs/precision.md "Old
 * opsets") and the written model declares opset 13. Layer and tensor names stay the same, so
 * `compare REFERENCE.onnx OUT.onnx` checks the upgraded model against the original.
 */
import { create } from "@bufbuild/protobuf";
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type TensorProto } from "onnx-buf";
import { UserError } from "../core/errors.js";
import { prepareModel, type LoadOptions } from "../onnx/model.js";
import type { FusionMode } from "../onnx/model.js";
import { canUpgrade, modelScope, upgradeBlocker, upgradeNodes, UPGRADE_TARGET } from "../onnx/opset-upgrade.js";
import { prepareLoadedModel, type PreparedModel } from "../runtime/capture-runs.js";

export interface ExportModel {
  prepared: PreparedModel;
  /** The model's opset when it was upgraded to 13 for the export, else null. */
  upgradedFrom: number | null;
}

/**
 * `p` unchanged when its opset is at least `need` (or no upgrade can reach it: the exporter's own
 * error says so); otherwise `p` upgraded to opset 13. `what` names the output for the error of a
 * node without an upgrade path ("bf16 Casts", "per-channel DequantizeLinear").
 */
export async function upgradeForExport(p: PreparedModel, need: number, what: string, opts: LoadOptions & { fusion?: FusionMode } = {}): Promise<ExportModel> {
  const m = p.model;
  if (m.opset < 0 || m.opset >= need || m.typed || !canUpgrade(m.opset, need)) return { prepared: p, upgradedFrom: null };
  const b = upgradeBlocker(m, p.types);
  if (b) throw new UserError(`${m.path}: ${what} need opset ${need} but the model has opset ${m.opset} and node '${b.node}' (${b.opType}) has no upgrade path in trt-debug (${b.reason}); re-export the model at opset >= ${UPGRADE_TARGET}`);
  const g = m.proto.graph!;
  const extra: TensorProto[] = [];
  const r = upgradeNodes(g.node, modelScope(m, p.types, (t) => extra.push(t)));
  if (r.blocker) throw new UserError(`${m.path}: node '${r.blocker.node}' (${r.blocker.opType}) has no upgrade path to opset ${UPGRADE_TARGET} (${r.blocker.reason}); re-export the model at opset >= ${UPGRADE_TARGET}`);
  const proto = create(ModelProtoSchema, {
    ...m.proto,
    graph: create(GraphProtoSchema, { ...g, node: r.nodes, initializer: [...g.initializer, ...extra] }),
    opsetImport: m.proto.opsetImport.map((o) => (o.domain === "" || o.domain === "ai.onnx" ? create(OperatorSetIdProtoSchema, { domain: o.domain, version: BigInt(UPGRADE_TARGET) }) : o)),
  });
  const loaded = prepareModel(proto, m.path, { allowExternalDataOutside: opts.allowExternalDataOutside });
  return { prepared: await prepareLoadedModel(loaded, { fusion: opts.fusion }), upgradedFrom: m.opset };
}
