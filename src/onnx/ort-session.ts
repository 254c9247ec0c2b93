/** The one place trt-debug talks to onnxruntime-node. */
import ort from "onnxruntime-node";
import { UserError } from "../core/errors.js";
import { blocking } from "../core/temp-files.js";
import type { DType, HostTensor, TensorData } from "../core/host-tensor.js";

export type OrtTensor = ort.Tensor;
export type Session = ort.InferenceSession;
export type OptimizationLevel = "disabled" | "basic" | "extended" | "all";

ort.env.logLevel = "fatal";

export interface SessionOptions {
  optimizationLevel?: OptimizationLevel;
  /** Threads for one operator (0 = onnxruntime's default: all cores). */
  intraOpThreads?: number;
  /**
   * The folder the model's external-data locations are relative to (models given as bytes
   * have none of their own; onnx/external-weights.ts).
   */
  externalDataFolder?: string;
}

const ORT_TYPES = new Set<string>([
  "float32", "float16", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool", "string",
]);

/** Whether onnxruntime-node can hand a tensor of this dtype back to JavaScript. */
export function fetchable(d: DType): boolean {
  return ORT_TYPES.has(d);
}

export async function createSession(bytes: Uint8Array, label: string, o: SessionOptions = {}): Promise<ort.InferenceSession> {
  try {
    return await blocking(() => ort.InferenceSession.create(bytes, ortSessionOptions(o)));
  } catch (e) {
    throw new UserError(loadFailure(label, e));
  }
}

/** onnxruntime's session options for trt-debug's {@link SessionOptions} (plain data: onnx/ort-worker.ts sends it to its thread). */
export function ortSessionOptions(o: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: o.optimizationLevel ?? "all",
    intraOpNumThreads: o.intraOpThreads ?? 0,
    // No per-session CPU arena: an arena keeps its peak allocation for the session's life, so
    // bisect's cached sessions held ~2.8 GB on PP-OCRv4 det at 640x640 (1.2 GB without;
    // values are unchanged: only where buffers come from differs).
    enableCpuMemArena: false,
    logSeverityLevel: 4, // fatal only: errors reach the user once, as the one-line UserError below
    // Q/DQ nodes (int8 emulation, explicit Q/DQ models) run as written: no fusion into
    // integer kernels (QLinearConv, weight re-quantization), which would change the values.
    extra: { session: { disable_quant_qdq: "1", ...(o.externalDataFolder ? { model_external_initializers_file_folder_path: o.externalDataFolder } : {}) } },
  };
}

/** The one-line message of a failed session creation / run (also for sessions in onnx/ort-worker.ts). */
export function loadFailure(label: string, e: unknown): string {
  return `${label}: onnxruntime cannot load the model: ${oneLine(e)}`;
}
export function runFailure(label: string, e: unknown): string {
  return `${label}: onnxruntime failed while running the model: ${oneLine(e)}`;
}

export async function runSession(
  s: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  fetches: string[],
  label: string,
): Promise<Record<string, ort.Tensor>> {
  try {
    return await blocking(() => s.run(feeds, fetches));
  } catch (e) {
    throw new UserError(runFailure(label, e));
  }
}

export function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  // onnxruntime messages carry ANSI colours and multi-line context; keep the first meaningful line.
  // eslint-disable-next-line no-control-regex
  const clean = m.replace(/\u001b\[[0-9;]*m/g, "").split("\n").map((s) => s.trim()).filter(Boolean);
  return (clean[0] ?? "unknown error").slice(0, 400);
}

export function toOrt(t: HostTensor): ort.Tensor {
  if (!fetchable(t.dtype)) throw new UserError(`input '${t.name}': element type ${t.dtype} cannot be fed from JavaScript`);
  return new ort.Tensor(t.dtype as "float32", t.data as Float32Array, t.dims);
}

export function fromOrt(name: string, t: ort.Tensor): HostTensor {
  return { name, dtype: t.type as DType, dims: [...t.dims], data: t.data as TensorData };
}
