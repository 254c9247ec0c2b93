/**
 * Per-layer dump files and inputs files: Arrow IPC *file* format, one row per tensor, one
 * record batch per write, streamed to disk as produced under a temporary name and renamed
 * when complete. Schema and field meanings: docs/file-formats.md.
 *
 * This module is the door to the format: the schema and file types (dump-schema.ts), the
 * encoder (dump-encoder.ts), the writer (dump-writer.ts), the reader (dump-reader.ts), and
 * the conversions between rows and host tensors below.
 */
import type { HostTensor } from "../core/host-tensor.js";
import { UserError } from "../core/errors.js";
import { type DumpRow } from "./dump-schema.js";
import { hostTensorToValues as tensorToValueColumns, valuesToHostTensor as valueColumnsToTensor } from "./dump-values.js";

export { DUMP_FORMAT, INPUTS_FORMAT, type DumpRow, type DumpStats, type DumpKind, type DumpMeta, type DumpReader } from "./dump-schema.js";
export { DumpWriter, abortOpenDumpsSync } from "./dump-writer.js";
export { openDump } from "./dump-reader.js";
import { firstLine } from "./dump-reader.js";

// ---------------------------------------------------------------------------------------
// Values <-> tensors
// ---------------------------------------------------------------------------------------

/**
 * Converts a HostTensor into the value columns of a DumpRow (the caller fills in the rest,
 * stats included). float32/float64/int64/uint64 data is used without copying: leave it
 * unmodified until the write that uses it has resolved.
 */
export function hostTensorToValues(
  t: HostTensor,
): Pick<DumpRow, "values" | "valuesF64" | "intValues" | "strValues"> {
  return tensorToValueColumns(t);
}

/** The row's values as a tensor of its own dtype (see dump-values.ts for representations). */
export function valuesToHostTensor(row: DumpRow): HostTensor {
  return valueColumnsToTensor(row);
}

/** valuesToHostTensor for a row read from `file`: a row that cannot become a tensor is a UserError. */
export function rowTensor(row: DumpRow, file: string): HostTensor {
  try {
    return valueColumnsToTensor(row);
  } catch (e) {
    throw new UserError(`${file}: ${firstLine(e)}; write the dump again with \`trt-debug run --save-outputs\``);
  }
}
