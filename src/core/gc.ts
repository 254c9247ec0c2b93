/**
 * A full garbage collection on request, for the one place that drops large buffers
 * onnxruntime-node handed to JavaScript right before much more memory is needed: constant
 * folding at load of a model with external weights (onnx/layer-model.ts), whose folded
 * tensors (e.g. an 805 MB transposed weight) are written to a temporary file and then only
 * garbage. V8 frees an ArrayBuffer's memory when a collection finds it unreachable; with little
 * JavaScript allocation afterwards that happened after the next segment session had loaded
 * its 3.2 GB of weights in some runs and not in others (peak RSS 4.85 GB or 4.05 GB for the
 * same command; 4.05 GB every time with this collection).
 *
 * Uses `gc` when node runs with --expose-gc, else enables it once (v8.setFlagsFromString and a
 * fresh vm context, the usual way to reach it from a running process).
 */
import * as v8 from "node:v8";
import * as vm from "node:vm";

let gc: (() => void) | null | undefined;

/** Run a full garbage collection; a no-op where the runtime offers none. */
export function collectGarbage(): void {
  if (gc === undefined) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === "function") gc = g;
    else {
      try {
        v8.setFlagsFromString("--expose-gc");
        const f: unknown = vm.runInNewContext("gc");
        gc = typeof f === "function" ? (f as () => void) : null;
      } catch {
        gc = null;
      }
    }
  }
  gc?.();
}
