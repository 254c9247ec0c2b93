/** Test helper: every captured tensor of an Arrow dump, as its bytes in hex (bit-for-bit comparisons). */
import { openDump, valuesToHostTensor } from "../../src/io/dump.js";

export async function dumpBits(file: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const d = await openDump(file, "dump");
  try {
    for await (const r of d.rows()) {
      const t = valuesToHostTensor(r).data as Float32Array;
      out.set(r.tensor, Buffer.from(t.buffer, t.byteOffset, t.byteLength).toString("hex"));
    }
  } finally {
    await d.close();
  }
  return out;
}
