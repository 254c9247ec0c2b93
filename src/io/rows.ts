/** Captured tensors -> dump rows (values + statistics). */
import type { HostTensor, Precision } from "../types.js";
import { tensorStats } from "../numeric/index.js";
import { floatValues } from "../compare/compare.js";
import { hostTensorToValues, type DumpRow, type DumpStats } from "./dump.js";

export function statsOf(t: HostTensor): DumpStats {
  const v = floatValues(t);
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (!v) return { numel: n, min: null, max: null, mean: null, std: null, nanCount: 0, posInfCount: 0, negInfCount: 0 };
  const s = tensorStats(v);
  const fin = (x: number) => (Number.isFinite(x) ? x : null);
  return { numel: s.numel, min: fin(s.min), max: fin(s.max), mean: fin(s.mean), std: fin(s.std), nanCount: s.nanCount, posInfCount: s.posInfCount, negInfCount: s.negInfCount };
}

export function toDumpRow(order: number, layer: string, opType: string, t: HostTensor, precision: Precision | "", stats?: DumpStats): DumpRow {
  return {
    order,
    layer,
    opType,
    tensor: t.name,
    dtype: t.dtype,
    precision,
    dims: t.dims,
    ...hostTensorToValues(t),
    stats: stats ?? statsOf(t),
  };
}
