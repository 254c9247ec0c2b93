/**
 * Running old-opset models under emulation that needs newer ops (docs/int8.md "Old opsets").
 *
 * bf16 rounding is a Cast to bfloat16 (Cast-13) and int8 emulation uses QuantizeLinear/
 * DequantizeLinear (opset 10) and a Clip with bound inputs (opset 11). When a segment's
 * rewritten nodes need a newer default-domain opset than the model has (9..12), the segment is
 * upgraded to opset 13 (onnx/opset-upgrade.ts) before onnxruntime sees it.
 *
 * Two checks guard it:
 *  - before any work, `assertOpsetSupports` (called by the workflows with the precisions they
 *    are about to run) fails with one line naming the first node without an upgrade path;
 *  - before the first upgraded segment runs, a self-check runs the whole model in fp32 twice,
 *    as is and upgraded, on the run's inputs, and requires every captured tensor to be
 *    bit-identical; otherwise one line names the first layer whose output differs. It runs
 *    once per loaded model.
 */
import { OperatorSetIdProtoSchema, type NodeProto, type TensorProto } from "onnx-buf";
import { create } from "@bufbuild/protobuf";
import { opt, OptionRef, UserError, userError } from "../core/errors.js";
import type { Precision } from "../core/host-tensor.js";
import type { LoadedModel } from "../onnx/model.js";
import type { TypeMap } from "../onnx/infer.js";
import { canUpgrade, modelScope, requiredOpset, upgradeBlocker, upgradeNodes, upgradeTargetFor, UPGRADE_MIN, UPGRADE_TARGET } from "../onnx/opset-upgrade.js";
import type { RewrittenSegment } from "../precision/rewrite.js";
import type { OrtTensor } from "../onnx/ort-session.js";

export interface UpgradedSegment {
  nodes: NodeProto[];
  initializers: TensorProto[];
  opsetImport: LoadedModel["proto"]["opsetImport"];
}

const feedsOf = new WeakMap<LoadedModel, Map<string, OrtTensor>>();
const verified = new WeakSet<LoadedModel>();

/** The graph inputs of the first full run of a model: the self-check runs on them. */
export function rememberFeeds(m: LoadedModel, live: ReadonlyMap<string, OrtTensor>): void {
  if (feedsOf.has(m)) return;
  const names = new Set(m.graph.inputs.map((i) => i.name));
  feedsOf.set(m, new Map([...live].filter(([k]) => names.has(k))));
}

/** The precision whose emulation needs the upgrade (for messages): fp8 needs 19, bf16 Casts 13, Q/DQ and Clip with inputs less. */
function precisionFor(nodes: readonly NodeProto[], need: number): OptionRef | string {
  if (need > UPGRADE_TARGET) return FP8;
  return requiredOpset(nodes.filter((n) => n.opType === "Cast" || n.attribute.some((a) => a.g || a.graphs.length))) >= 13 ? BF16 : INT8;
}

// The precisions as options (the CLI spells them --bf16, --int8, --fp16).
const BF16 = opt("precision.bf16", 'precision "bf16"');
const INT8 = opt("precision.int8", 'precision "int8"');
const FP16 = opt("precision.fp16", 'precision "fp16"');
// fp8 comes from --fp8 (qtype) or from fp8 plan entries: named by what it needs
const FP8 = "fp8 (e4m3fn Q/DQ and Casts)";

/** The opset each model's upgraded segments get: 13, or 19 once a segment needed fp8 (the self-check then runs at 19). */
const targetOf = new WeakMap<LoadedModel, number>();

/** The opset `m`'s segments are upgraded to (13 unless fp8 needed 19). */
export function upgradeTargetOf(m: LoadedModel): number {
  return targetOf.get(m) ?? UPGRADE_TARGET;
}

function noPathError(m: LoadedModel, types: TypeMap, what: OptionRef | string, need: number): UserError | null {
  const target = upgradeTargetFor(need);
  if (!canUpgrade(m.opset, need)) {
    return userError`${m.path}: ${what} needs opset ${need} but the model has opset ${m.opset}, and trt-debug upgrades opset ${UPGRADE_MIN}-${target - 1} models to ${target} only; re-export at opset >= ${Math.max(need, target)} or use ${FP16}`;
  }
  const b = upgradeBlocker(m, types, target);
  if (!b) return null;
  return userError`${m.path}: ${what} needs opset ${need} but node '${b.node}' (${b.opType}, opset ${m.opset}) has no upgrade path in trt-debug (${b.reason}); re-export at opset >= ${target} or use ${FP16}`;
}

/**
 * Fail before any work when running `precisions` would need an opset upgrade the model cannot
 * get. `int8Range` 127 needs Clip with bound inputs (opset 11) besides Q/DQ (opset 10).
 */
export function assertOpsetSupports(m: LoadedModel, types: TypeMap, precisions: readonly Precision[], int8Range: number = 128): void {
  if (m.opset < 0) return;
  const needs: [OptionRef | string, number][] = [];
  if (precisions.includes("bf16")) needs.push([BF16, 13]);
  if (precisions.includes("int8")) needs.push([INT8, int8Range === 127 ? 11 : 10]);
  if (precisions.includes("fp8")) needs.push([FP8, 19]);
  for (const [what, need] of needs) {
    if (need <= m.opset) continue;
    const e = noPathError(m, types, what, need);
    if (e) throw e;
  }
}

/** The segment upgraded to opset 13 when its nodes need it (or the executor forces it), else null. */
/**
 * What upgradeSegment needs of the executor (runtime/executor.ts implements it; the self-check
 * runs whole executors, so it lives there and this file imports nothing back).
 */
export interface UpgradeHost {
  readonly model: LoadedModel;
  readonly types: TypeMap;
  forceUpgrade: boolean;
  /** fp32 as is vs fp32 upgraded, bit for bit, once per model (a UserError otherwise). */
  upgradeSelfCheck(precision: OptionRef | string): Promise<void>;
}

/** The feeds of the model's first whole run (for the self-check), or undefined before it. */
export function rememberedFeeds(m: LoadedModel): Map<string, OrtTensor> | undefined {
  return feedsOf.get(m);
}

/** The self-check of `m` passed (or is not needed again). */
export function upgradeVerified(m: LoadedModel): boolean {
  return verified.has(m);
}

export function markUpgradeVerified(m: LoadedModel): void {
  verified.add(m);
}

export async function upgradeSegment(exec: UpgradeHost, rw: RewrittenSegment): Promise<UpgradedSegment | null> {
  const m = exec.model;
  const need = requiredOpset(rw.nodes, new Map(rw.initializers.map((t) => [t.name, t])));
  if (m.opset < 0 || (!exec.forceUpgrade && need <= m.opset)) return null;
  if (!exec.forceUpgrade) {
    const p = precisionFor(rw.nodes, need);
    const e = noPathError(m, exec.types, p, need);
    if (e) throw e;
    // fp8 raises the model's target to 19 for good (its self-check then runs at 19)
    const t = Math.max(upgradeTargetOf(m), upgradeTargetFor(need));
    if (t !== upgradeTargetOf(m)) {
      targetOf.set(m, t);
      verified.delete(m);
    }
    await exec.upgradeSelfCheck(p);
  }
  const target = upgradeTargetOf(m);
  if (m.opset >= target) return null;
  const extra: TensorProto[] = [];
  const r = upgradeNodes(rw.nodes, modelScope(m, exec.types, (t) => extra.push(t)), target);
  if (r.blocker) throw new UserError(`${m.path}: node '${r.blocker.node}' (${r.blocker.opType}) has no upgrade path to opset ${target} (${r.blocker.reason})`);
  const opsetImport = m.proto.opsetImport.map((o) =>
    o.domain === "" || o.domain === "ai.onnx" ? create(OperatorSetIdProtoSchema, { domain: o.domain, version: BigInt(target) }) : o,
  );
  return { nodes: r.nodes, initializers: [...rw.initializers, ...extra], opsetImport };
}

