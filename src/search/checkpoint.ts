/**
 * Bisection checkpoints: the memoized evaluations of a search (candidate precisions hash ->
 * passed, metric), written atomically after every evaluation. `--resume` reloads them and
 * replays the (deterministic) search, serving every evaluation it already has from the memo.
 * A fingerprint of the model file, the inputs and every option that changes an answer ties a
 * checkpoint to its search.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { opt, UserError, userError } from "../core/errors.js";
import { writeFileAtomicSync } from "../core/output-file.js";
import { readFileChecked, readTextChecked } from "../io/safe-read.js";
import type { HostTensor, Precision } from "../core/host-tensor.js";
import type { LayerSensitivity, SensitivityKind } from "./sensitivity.js";

export const CHECKPOINT_FORMAT = "trt-debug/bisect-checkpoint@1";

export interface MemoEntry {
  passed: boolean;
  /** Non-finite metrics are stored as the strings "Infinity", "-Infinity", "NaN" in the file. */
  metric: number | null;
  detail: string;
  pinned_count: number;
}

export interface CheckpointFile {
  format: typeof CHECKPOINT_FORMAT;
  fingerprint: string;
  model: string;
  updated: string;
  /** Candidate key (hash of every layer's precision) -> evaluation, in evaluation order. */
  evaluations: Record<string, unknown>;
}

/** The memo key of a candidate: a hash of every layer's precision. */
export function candidateKey(precisions: readonly Precision[]): string {
  return crypto.createHash("sha256").update(precisions.join(",")).digest("hex").slice(0, 32);
}

/** Hash of the model file's bytes. */
export function fileHash(file: string): string {
  const h = crypto.createHash("sha256");
  h.update(readFileChecked(file, "onnx"));
  return h.digest("hex");
}

export function inputsHash(inputs: readonly HostTensor[]): string {
  const h = crypto.createHash("sha256");
  for (const t of inputs) {
    h.update(`${t.name}|${t.dtype}|${t.dims.join("x")}|`);
    const d = t.data;
    if (Array.isArray(d)) h.update(JSON.stringify(d));
    else h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest("hex");
}

/** Fingerprint of everything that decides the search's answers. */
export function fingerprint(parts: Record<string, unknown>): string {
  const json = JSON.stringify(parts, (_k, v) => (v instanceof Map ? [...v.entries()] : typeof v === "number" && !Number.isFinite(v) ? String(v) : v));
  return crypto.createHash("sha256").update(json).digest("hex");
}

/** `<model stem>.bisect-checkpoint.json` next to the plan (`-o`) or in the current directory. */
export function defaultCheckpointPath(model: string, planOut?: string): string {
  const stem = path.basename(model).replace(/\.onnx$/i, "");
  const dir = planOut ? path.dirname(path.resolve(planOut)) : process.cwd();
  return path.join(dir, `${stem}.bisect-checkpoint.json`);
}

/** Per-layer local sensitivity results, stored as they come (execution index -> result). */
export type SensitivityStore = Map<number, LayerSensitivity>;

/** The memo and the sensitivity results a checkpoint holds. */
export function readCheckpointState(file: string, expectFingerprint: string): { memo: Map<string, MemoEntry>; sensitivity: SensitivityStore } {
  let text: string;
  try {
    text = readTextChecked(file, "checkpoint");
  } catch (e) {
    if ((e as Error).message.includes("no such file")) throw userError`${opt("resume")}: no checkpoint at ${file}; run without ${opt("resume")} first (or give ${opt("checkpoint")} FILE)`;
    throw e;
  }
  let j: CheckpointFile;
  try {
    j = JSON.parse(text) as CheckpointFile;
  } catch (e) {
    throw userError`${file}: not valid JSON (${(e as Error).message}); delete it and run without ${opt("resume")}`;
  }
  if (!j || typeof j !== "object" || j.format !== CHECKPOINT_FORMAT || !j.evaluations || typeof j.evaluations !== "object" || Array.isArray(j.evaluations)) {
    throw new UserError(`${file}: not a bisect checkpoint (expected "format": "${CHECKPOINT_FORMAT}")`);
  }
  if (j.fingerprint !== expectFingerprint) {
    throw userError`${file}: the checkpoint belongs to a different search (model file, inputs or options changed); run without ${opt("resume")} to start over, or give the same model and options`;
  }
  const m = new Map<string, MemoEntry>();
  for (const [k, raw] of Object.entries(j.evaluations)) {
    const v = raw as Record<string, unknown>;
    if (!v || typeof v !== "object" || typeof v.passed !== "boolean") {
      throw userError`${file}: evaluation '${k.slice(0, 40)}' is malformed; delete the checkpoint and run without ${opt("resume")}`;
    }
    m.set(k, { passed: Boolean(v.passed), metric: v.metric === null || v.metric === undefined ? null : Number(v.metric), detail: String(v.detail ?? ""), pinned_count: Number(v.pinned_count ?? 0) });
  }
  const sens: SensitivityStore = new Map();
  const raw = (j as { sensitivity?: unknown }).sensitivity;
  if (raw !== undefined && (typeof raw !== "object" || raw === null || Array.isArray(raw))) throw userError`${file}: "sensitivity" must be an object; delete the file and run without ${opt("resume")}`;
  for (const [k, x] of Object.entries((raw ?? {}) as Record<string, Record<string, unknown>>)) {
    const index = Number(k);
    if (!Number.isInteger(index) || typeof x?.name !== "string" || !Array.isArray(x.evidence)) throw userError`${file}: malformed sensitivity entry '${k}'; delete the file and run without ${opt("resume")}`;
    sens.set(index, { index, name: x.name, opType: String(x.opType), score: Number(x.score), kind: x.kind as SensitivityKind, relL2: Number(x.relL2), evidence: x.evidence.map(String) });
  }
  return { memo: m, sensitivity: sens };
}

/** JSON numbers cannot be Infinity/NaN: those are stored as strings. */
function jsonMetric(x: number | null): number | string | null {
  return x === null ? null : Number.isFinite(x) ? x : String(x);
}

/** Write `text` to `file` atomically (src/core/output-file.ts: unique temp name, then rename). */
export function writeAtomic(file: string, text: string): void {
  writeFileAtomicSync(file, text, { mkdir: true });
}

export function checkpointText(fp: string, model: string, memo: Map<string, MemoEntry>, sensitivity?: SensitivityStore): string {
  const evaluations: Record<string, unknown> = {};
  for (const [k, v] of memo) evaluations[k] = { ...v, metric: jsonMetric(v.metric) };
  const sens: Record<string, unknown> = {};
  for (const [k, v] of sensitivity ?? []) sens[k] = { ...v, score: jsonMetric(v.score), relL2: jsonMetric(v.relL2) };
  const c = { format: CHECKPOINT_FORMAT, fingerprint: fp, model, updated: new Date().toISOString(), evaluations, ...(sensitivity ? { sensitivity: sens } : {}) };
  return JSON.stringify(c, null, 1) + "\n";
}
