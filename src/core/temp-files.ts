/**
 * Temporary files and prompt exit on SIGINT/SIGTERM.
 *
 * Every temporary file trt-debug writes (partial dumps, caches, plans, checkpoints, JSON
 * reports, saved models) is registered here while it exists. The CLI calls
 * `installSignalExit` once: with the native addon, SIGINT/SIGTERM are handled at signal time
 * (native/src/signals.cc): the registered files are unlinked and the process _exits with
 * 128 + the signal number at once, even while onnxruntime blocks the event loop. Without the
 * addon (not built, or TRT_DEBUG_NO_NATIVE=1) a JavaScript listener does the same when the
 * event loop is free, and `blocking()` gives SIGINT/SIGTERM their default action (immediate
 * death) around blocking native calls while no temporary file exists.
 * The library itself never installs handlers or exits.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** The native addon's signal-time cleanup (native/src/signals.cc); loaded by the caller (core imports nothing else in src/). */
export interface SignalAddon {
  installSignalCleanup(): boolean;
  registerTemp(p: string): number;
  unregisterTemp(slot: number): void;
}

/** Absolute temp path -> native slot (-1: JS only). */
const temps = new Map<string, number>();
let nativeSignals: SignalAddon | null = null;
let mode: "none" | "native" | "js" = "none";
let jsHandler: ((sig: NodeJS.Signals) => void) | null = null;
let blockingDepth = 0;

/** Register a temporary file that a signal must remove. */
export function registerTemp(file: string): void {
  const abs = path.resolve(file);
  if (temps.has(abs)) return;
  temps.set(abs, nativeSignals ? nativeSignals.registerTemp(abs) : -1);
}

/** The file was renamed into place or removed. */
export function unregisterTemp(file: string): void {
  const abs = path.resolve(file);
  const slot = temps.get(abs);
  if (slot === undefined) return;
  temps.delete(abs);
  if (slot >= 0) nativeSignals?.unregisterTemp(slot);
}

/** Remove every registered temp file (synchronously; safe in 'exit' handlers). */
export function removeTempsSync(): void {
  for (const f of [...temps.keys()]) {
    try {
      fs.rmSync(f, { force: true });
    } catch {
      // best effort
    }
    unregisterTemp(f);
  }
}

/**
 * Install the CLI's SIGINT/SIGTERM handling (once). `onSignal` runs in the JavaScript mode
 * before the exit (e.g. to abort open dump writers). Returns the mode in use.
 */
export function installSignalExit(onSignal: () => void = () => undefined, loadAddon: () => SignalAddon | null = () => null): "native" | "js" {
  if (mode !== "none") return mode;
  // A temp file left by an error path is removed when the process exits normally, too.
  process.on("exit", removeTempsSync);
  const a = process.env.TRT_DEBUG_NO_NATIVE === "1" ? null : loadAddon();
  if (a && a.installSignalCleanup()) {
    nativeSignals = a;
    // Files registered before the install get native slots too.
    for (const f of [...temps.keys()]) temps.set(f, a.registerTemp(f));
    mode = "native";
    return mode;
  }
  jsHandler = (sig: NodeJS.Signals) => {
    onSignal();
    removeTempsSync();
    process.stderr.write(`\ntrt-debug: interrupted (${sig}); partial outputs removed\n`);
    process.exit(sig === "SIGINT" ? 130 : 143);
  };
  process.on("SIGINT", jsHandler);
  process.on("SIGTERM", jsHandler);
  mode = "js";
  return mode;
}

/**
 * Run a call that blocks the event loop (onnxruntime session creation and runs). In the
 * JavaScript mode with no temp file open, SIGINT/SIGTERM get their default action meanwhile
 * (the process ends at once; nothing to clean up). The native mode needs nothing.
 */
export async function blocking<T>(fn: () => Promise<T>): Promise<T> {
  if (mode !== "js" || !jsHandler || temps.size > 0) return fn();
  if (blockingDepth++ === 0) {
    process.removeListener("SIGINT", jsHandler);
    process.removeListener("SIGTERM", jsHandler);
  }
  try {
    return await fn();
  } finally {
    if (--blockingDepth === 0 && jsHandler) {
      process.on("SIGINT", jsHandler);
      process.on("SIGTERM", jsHandler);
    }
  }
}
