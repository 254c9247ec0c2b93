/** Captured tensors -> dump rows (values + statistics). */
import type { HostTensor, Precision } from "../core/host-tensor.js";
import { tensorStats } from "../numeric/index.js";
import { floatValues } from "../numeric/index.js";
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

/**
 * Lets dump writes proceed in the background (onnxruntime's run blocks the JavaScript thread,
 * but file writes run on libuv's pool, so they overlap the next segment's compute) while
 * bounding the bytes held by writes not yet finished.
 */
export class BoundedWrites {
  private inflight: { p: Promise<void>; bytes: number }[] = [];
  private bytes = 0;
  constructor(private readonly limit = 64 * 1024 * 1024) {}
  async add(p: Promise<void>, bytes: number): Promise<void> {
    p.catch(() => undefined); // observed in drain()/add(); avoid an unhandled-rejection warning meanwhile
    this.inflight.push({ p, bytes });
    this.bytes += bytes;
    while (this.bytes > this.limit && this.inflight.length) {
      const f = this.inflight.shift()!;
      this.bytes -= f.bytes;
      await f.p;
    }
  }
  async drain(): Promise<void> {
    const all = this.inflight;
    this.inflight = [];
    this.bytes = 0;
    for (const f of all) await f.p;
  }
}

export function rowBytes(r: DumpRow): number {
  return (r.values?.byteLength ?? 0) + (r.valuesF64?.byteLength ?? 0) + (r.intValues?.byteLength ?? 0) + 256;
}
