/**
 * Numeric core throughput: for each kernel, GB/s of the native addon (all cores) and of the
 * TypeScript fallback, both as a fraction of this machine's memcpy bandwidth measured in the
 * same run (TypedArray.set of the same size), and the TypeScript/native slowdown.
 *
 * GB/s counts bytes read plus bytes written (memcpy of S bytes moves 2S), best of N runs on
 * preallocated outputs, after a warm-up run. Targets (docs/numeric.md): conversions and
 * metrics >= 0.5 of memcpy natively; TypeScript within 6x of native. The native kernels are
 * also timed on one thread ("native 1 thread"), which separates the cost of JavaScript from
 * the thread count of the machine.
 */
import { performance } from "node:perf_hooks";
import { nativeAddon, nativeImpl, nativeUnavailableReason, tsImpl, type NumericImpl } from "../../src/numeric/index.js";
import type { BenchLine } from "./bench-line.js";

interface Kernel {
  name: string;
  /** bytes read + written per element */
  bytesPerElement: number;
  run(impl: NumericImpl): void;
}

function bestOf(reps: number, fn: () => void): number {
  fn(); // warm-up: JIT, page faults, thread pool start
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    const dt = performance.now() - t0;
    if (dt < best) best = dt;
  }
  return best / 1000;
}

/** Deterministic activations-like data: mostly N(0,1)-ish, some large, few tiny. */
function makeData(n: number): Float32Array {
  const x = new Float32Array(n);
  let s = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 4294967296;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const v = s / 4294967296;
    x[i] = (u + v - 1) * (i % 64 === 0 ? 300 : 3);
  }
  return x;
}

export async function benchNumeric(opts: { sizeMB?: number; reps?: number; kernels?: readonly string[] } = {}): Promise<BenchLine[]> {
  const sizeMB = opts.sizeMB ?? 64;
  const reps = opts.reps ?? 5;
  const n = Math.max(1024, Math.floor((sizeMB * 1024 * 1024) / 4));
  const x = makeData(n);
  const native = nativeImpl();

  // buffers shared by all kernels
  const u16 = tsImpl.f32ToF16(x);
  const u8 = tsImpl.f32ToFp8(x, "fp8e4m3fn");
  const f32 = new Float32Array(n);
  const i8 = new Int8Array(n);
  const u16o = new Uint16Array(n);
  const u8o = new Uint8Array(n);
  const cand = tsImpl.roundTo(x, "fp16");
  const scale = tsImpl.absMax(x) / 127;
  const q = tsImpl.quantizeInt8(x, { scale });
  const channels = 64;
  const dimsPc = [channels, n / channels];
  const scalesPc = Float32Array.from({ length: channels }, (_, c) => scale * (1 + c / channels));
  const hist = new Float64Array(2048);

  const kernels: Kernel[] = [
    { name: "f32ToF16", bytesPerElement: 6, run: (m) => m.f32ToF16(x, u16o) },
    { name: "f16ToF32", bytesPerElement: 6, run: (m) => m.f16ToF32(u16, f32) },
    { name: "f32ToBf16", bytesPerElement: 6, run: (m) => m.f32ToBf16(x, u16o) },
    { name: "bf16ToF32", bytesPerElement: 6, run: (m) => m.bf16ToF32(u16, f32) },
    { name: "f32ToFp8 e4m3fn", bytesPerElement: 5, run: (m) => m.f32ToFp8(x, "fp8e4m3fn", true, u8o) },
    { name: "fp8ToF32 e4m3fn", bytesPerElement: 5, run: (m) => m.fp8ToF32(u8, "fp8e4m3fn", f32) },
    { name: "roundTo fp16", bytesPerElement: 8, run: (m) => m.roundTo(x, "fp16", f32) },
    { name: "roundTo bf16", bytesPerElement: 8, run: (m) => m.roundTo(x, "bf16", f32) },
    { name: "roundTo fp8e4m3fn", bytesPerElement: 8, run: (m) => m.roundTo(x, "fp8e4m3fn", f32) },
    { name: "quantizeInt8", bytesPerElement: 5, run: (m) => m.quantizeInt8(x, { scale }, i8) },
    { name: "dequantizeInt8", bytesPerElement: 5, run: (m) => m.dequantizeInt8(q, { scale }, f32) },
    { name: "fakeQuantInt8", bytesPerElement: 8, run: (m) => m.fakeQuantInt8(x, { scale }, f32) },
    {
      name: "fakeQuantInt8 per-channel",
      bytesPerElement: 8,
      run: (m) => m.fakeQuantInt8(x, { scale: scalesPc, dims: dimsPc, axis: 0, qmin: -127, qmax: 127 }, f32),
    },
    { name: "absMax", bytesPerElement: 4, run: (m) => void m.absMax(x) },
    { name: "perChannelAbsMax", bytesPerElement: 4, run: (m) => void m.perChannelAbsMax(x, dimsPc, 0) },
    { name: "tensorStats", bytesPerElement: 4, run: (m) => void m.tensorStats(x) },
    { name: "diffMetrics", bytesPerElement: 8, run: (m) => void m.diffMetrics(x, cand) },
    { name: "absHistogram", bytesPerElement: 4, run: (m) => void m.absHistogram(x, hist, 0.01) },
  ];

  // memcpy bandwidth: TypedArray.set of the same size (n float32), bytes read + written
  const copyDst = new Float32Array(n);
  const memcpyGBs = (2 * 4 * n) / bestOf(reps * 2, () => copyDst.set(x)) / 1e9;

  const lines: BenchLine[] = [
    { name: "numeric memcpy", value: memcpyGBs, unit: "GB/s", note: `TypedArray.set of ${sizeMB} MiB, read+write` },
  ];
  if (native) {
    const i = native.info();
    lines.push({ name: "numeric native backend", value: i.threads, unit: "threads", note: i.simd });
  } else {
    lines.push({ name: "numeric native backend", value: 0, unit: "threads", note: `unavailable: ${nativeUnavailableReason()}` });
  }
  for (const k of kernels) {
    if (opts.kernels && !opts.kernels.some((p) => k.name.startsWith(p))) continue;
    const bytes = k.bytesPerElement * n;
    const tsGBs = bytes / bestOf(Math.max(2, Math.ceil(reps / 2)), () => k.run(tsImpl)) / 1e9;
    if (native) {
      const natGBs = bytes / bestOf(reps, () => k.run(native)) / 1e9;
      const addon = nativeAddon()!;
      addon.setThreads(1);
      const nat1GBs = bytes / bestOf(reps, () => k.run(native)) / 1e9;
      addon.setThreads(0);
      lines.push({ name: `numeric ${k.name} native`, value: natGBs, unit: "GB/s", note: `${(natGBs / memcpyGBs).toFixed(2)} of memcpy` });
      lines.push({ name: `numeric ${k.name} native 1 thread`, value: nat1GBs, unit: "GB/s", note: `${(nat1GBs / memcpyGBs).toFixed(2)} of memcpy` });
      lines.push({ name: `numeric ${k.name} ts`, value: tsGBs, unit: "GB/s", note: `${(tsGBs / memcpyGBs).toFixed(2)} of memcpy` });
      lines.push({ name: `numeric ${k.name} ts/native`, value: natGBs / tsGBs, unit: "x", note: "slowdown of the TypeScript fallback" });
    } else {
      lines.push({ name: `numeric ${k.name} ts`, value: tsGBs, unit: "GB/s", note: `${(tsGBs / memcpyGBs).toFixed(2)} of memcpy` });
    }
  }
  return lines;
}

/** Formats benchNumeric's lines as one line per kernel. */
export function formatNumeric(lines: readonly BenchLine[]): string[] {
  const out: string[] = [];
  const by = new Map(lines.map((l) => [l.name, l]));
  const memcpy = by.get("numeric memcpy");
  const backend = by.get("numeric native backend");
  if (memcpy) out.push(`numeric memcpy: ${memcpy.value.toFixed(1)} GB/s (${memcpy.note})`);
  if (backend) out.push(`numeric native: ${backend.value > 0 ? `${backend.note}, ${backend.value} threads` : backend.note}`);
  const kernels = [...new Set(lines.filter((l) => / ts$/.test(l.name)).map((l) => l.name.slice("numeric ".length, -" ts".length)))];
  for (const k of kernels) {
    const nat = by.get(`numeric ${k} native`);
    const ts = by.get(`numeric ${k} ts`)!;
    const ratio = by.get(`numeric ${k} ts/native`);
    const nat1 = by.get(`numeric ${k} native 1 thread`);
    const parts: string[] = [];
    if (nat) parts.push(`native ${nat.value.toFixed(1)} GB/s (${nat.note})`);
    parts.push(`ts ${ts.value.toFixed(1)} GB/s (${ts.note})`);
    if (ratio) parts.push(`ts/native ${ratio.value.toFixed(1)}x`);
    if (nat1) parts.push(`[native 1 thread ${nat1.value.toFixed(1)} GB/s, ts/native-1-thread ${(nat1.value / ts.value).toFixed(1)}x]`);
    out.push(`numeric ${k}: ${parts.join(", ")}`);
  }
  return out;
}
