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
import { UserError } from "../errors.js";
import type { Precision } from "../types.js";
import type { LoadedModel } from "../onnx/model.js";
import type { TypeMap } from "../onnx/infer.js";
import { canUpgrade, modelScope, requiredOpset, upgradeBlocker, upgradeNodes, UPGRADE_MIN, UPGRADE_TARGET } from "../onnx/opset-upgrade.js";
import type { RewrittenSegment } from "../precision/rewrite.js";
import { floatPolicy } from "../precision/rewrite.js";
import { Executor } from "./executor.js";
import type { OrtTensor } from "./ort.js";

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

/** The command-line flag whose emulation needs the upgrade (for messages): bf16 Casts need 13, Q/DQ and Clip with inputs less. */
function flagFor(nodes: readonly NodeProto[]): string {
  return requiredOpset(nodes.filter((n) => n.opType === "Cast" || n.attribute.some((a) => a.g || a.graphs.length))) >= 13 ? "--bf16" : "--int8";
}

function noPathMessage(m: LoadedModel, types: TypeMap, flag: string, need: number): string | null {
  if (!canUpgrade(m.opset, need)) {
    return `${m.path}: ${flag} needs opset ${need} but the model has opset ${m.opset}, and trt-debug upgrades opset ${UPGRADE_MIN}-${UPGRADE_TARGET - 1} models to ${UPGRADE_TARGET} only; re-export at opset >= ${Math.max(need, UPGRADE_TARGET)} or use --fp16`;
  }
  const b = upgradeBlocker(m, types);
  if (!b) return null;
  return `${m.path}: ${flag} needs opset ${need} but node '${b.node}' (${b.opType}, opset ${m.opset}) has no upgrade path in trt-debug (${b.reason}); re-export at opset >= ${UPGRADE_TARGET} or use --fp16`;
}

/**
 * Fail before any work when running `precisions` would need an opset upgrade the model cannot
 * get. `int8Range` 127 needs Clip with bound inputs (opset 11) besides Q/DQ (opset 10).
 */
export function assertOpsetSupports(m: LoadedModel, types: TypeMap, precisions: readonly Precision[], int8Range: number = 128): void {
  if (m.opset < 0) return;
  const needs: [string, number][] = [];
  if (precisions.includes("bf16")) needs.push(["--bf16", 13]);
  if (precisions.includes("int8")) needs.push(["--int8", int8Range === 127 ? 11 : 10]);
  if (precisions.includes("fp8")) needs.push(["fp8 (e4m3fn Casts)", 19]);
  for (const [flag, need] of needs) {
    if (need <= m.opset) continue;
    const msg = noPathMessage(m, types, flag, need);
    if (msg) throw new UserError(msg);
  }
}

/** The segment upgraded to opset 13 when its nodes need it (or the executor forces it), else null. */
export async function upgradeSegment(exec: Executor, rw: RewrittenSegment): Promise<UpgradedSegment | null> {
  const m = exec.model;
  const need = requiredOpset(rw.nodes);
  if (m.opset < 0 || (!exec.forceUpgrade && need <= m.opset)) return null;
  if (!exec.forceUpgrade) {
    const msg = noPathMessage(m, exec.types, flagFor(rw.nodes), need);
    if (msg) throw new UserError(msg);
    await selfCheck(exec, flagFor(rw.nodes));
  }
  const extra: TensorProto[] = [];
  const r = upgradeNodes(rw.nodes, modelScope(m, exec.types, (t) => extra.push(t)));
  if (r.blocker) throw new UserError(`${m.path}: node '${r.blocker.node}' (${r.blocker.opType}) has no upgrade path to opset ${UPGRADE_TARGET} (${r.blocker.reason})`);
  const opsetImport = m.proto.opsetImport.map((o) =>
    o.domain === "" || o.domain === "ai.onnx" ? create(OperatorSetIdProtoSchema, { domain: o.domain, version: BigInt(UPGRADE_TARGET) }) : o,
  );
  return { nodes: r.nodes, initializers: [...rw.initializers, ...extra], opsetImport };
}

function sameBits(a: OrtTensor, b: OrtTensor): boolean {
  const x = a.data as ArrayBufferView, y = b.data as ArrayBufferView;
  if (!ArrayBuffer.isView(x) || !ArrayBuffer.isView(y)) return JSON.stringify(a.data) === JSON.stringify(b.data);
  return a.dims.join(",") === b.dims.join(",") && Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)) === 0;
}

/** fp32 as is vs fp32 upgraded, every layer, on the first run's inputs: bit-identical or a UserError. */
async function selfCheck(exec: Executor, flag: string): Promise<void> {
  const m = exec.model;
  if (verified.has(m)) return;
  const feeds = feedsOf.get(m);
  if (!feeds) throw new Error(`opset upgrade self-check of ${m.path}: no run of the whole model has started yet`);
  const opts = { ...exec.options, policy: floatPolicy, keepSessions: false };
  const plain = new Executor(m, exec.types, opts);
  const upgraded = new Executor(m, exec.types, opts);
  upgraded.forceUpgrade = true;
  const fp32: Precision[] = m.graph.layers.map(() => "fp32");
  try {
    const a = plain.run(fp32, new Map(feeds), () => true);
    const b = upgraded.run(fp32, new Map(feeds), () => true);
    for (;;) {
      const x = await a.next();
      const y = await b.next();
      if (x.done || y.done) break;
      for (const [t, v] of x.value.captured) {
        const w = y.value.captured.get(t);
        if (w && sameBits(v, w)) continue;
        const l = m.graph.layers[m.graph.producer.get(t)!]!;
        throw new UserError(
          `${m.path}: ${flag} needs opset ${UPGRADE_TARGET}, but after trt-debug's upgrade from opset ${m.opset} layer '${l.name}' (${l.opType}) no longer gives the fp32 result bit for bit (tensor '${t}'); re-export at opset >= ${UPGRADE_TARGET} or use --fp16`,
        );
      }
    }
  } finally {
    await plain.release();
    await upgraded.release();
  }
  verified.add(m);
}
