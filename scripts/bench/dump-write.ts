/**
 * Dump writer throughput: `mb` rows of 1 MiB float32 tensors through DumpWriter versus one
 * fs.writeFileSync of the same bytes, in a fresh temporary directory. Measured twice: up to the
 * last write (bytes handed to the OS: the writer's own cost), and up to a durable file (the
 * writer is opened durable, so its close fsyncs and renames; the baseline gets an fsync too).
 * Ratios above 1 mean the dump writer is faster than the baseline.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DumpWriter } from "../../src/io/dump.js";
import type { DumpRow } from "../../src/io/dump.js";

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
}

const ROW_FLOATS = 262144; // 1 MiB of float32

export async function benchDumpWrite(mb: number): Promise<BenchResult[]> {
  const rows = Math.max(1, Math.floor(mb));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trt-debug-bench-dump-"));
  try {
    // A few distinct source tensors, as a run hands over fresh outputs (contents don't matter
    // for throughput; values are deterministic).
    const sources = Array.from({ length: 4 }, (_, k) => {
      const a = new Float32Array(ROW_FLOATS);
      for (let i = 0; i < a.length; i++) a[i] = Math.sin(i * 0.001 + k);
      return a;
    });
    const row = (i: number): DumpRow => ({
      order: i,
      layer: `layer_${i}`,
      opType: "Conv",
      tensor: `layer_${i}_output_0`,
      dtype: "float32",
      precision: "fp16",
      dims: [1, 64, 64, 64],
      values: sources[i % sources.length],
      valuesF64: null,
      intValues: null,
      strValues: null,
      stats: { numel: ROW_FLOATS, min: -1, max: 1, mean: 0, std: 0.7, nanCount: 0, posInfCount: 0, negInfCount: 0 },
    });

    const totalMiB = (rows * ROW_FLOATS * 4) / (1 << 20);
    const secs = (t: bigint): number => Number(process.hrtime.bigint() - t) / 1e9;

    // DumpWriter: time to the last write (bytes handed to the OS) and to a durable close.
    const dumpPath = path.join(dir, "bench.arrow");
    const t0 = process.hrtime.bigint();
    const w = await DumpWriter.open(dumpPath, { kind: "dump", model: "bench", precision: "fp16", extra: {} }, { durable: true });
    for (let i = 0; i < rows; i++) await w.write(row(i));
    const dumpWriteS = secs(t0);
    await w.close(); // footer, fsync, rename
    const dumpDurableS = secs(t0);
    fs.rmSync(dumpPath);

    // Baseline: the same bytes in one buffer, one writeFileSync, then fsync.
    const all = new Uint8Array(rows * ROW_FLOATS * 4);
    for (let i = 0; i < rows; i++) {
      const s = sources[i % sources.length];
      all.set(new Uint8Array(s.buffer, s.byteOffset, s.byteLength), i * ROW_FLOATS * 4);
    }
    const rawPath = path.join(dir, "raw.bin");
    const t1 = process.hrtime.bigint();
    fs.writeFileSync(rawPath, all);
    const rawWriteS = secs(t1);
    const fd = fs.openSync(rawPath, "r+");
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const rawDurableS = secs(t1);

    const r = (name: string, value: number, unit: string): BenchResult => ({ name, value, unit });
    return [
      r(`dump_write_${rows}x1MiB_f32`, totalMiB / dumpWriteS, "MiB/s"),
      r(`writeFileSync_${rows}MiB`, totalMiB / rawWriteS, "MiB/s"),
      r("dump_write_vs_writeFileSync", rawWriteS / dumpWriteS, "ratio"),
      r(`dump_write_fsync_${rows}x1MiB_f32`, totalMiB / dumpDurableS, "MiB/s"),
      r(`writeFileSync_fsync_${rows}MiB`, totalMiB / rawDurableS, "MiB/s"),
      r("dump_write_fsync_vs_writeFileSync_fsync", rawDurableS / dumpDurableS, "ratio"),
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
