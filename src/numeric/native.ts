/**
 * Loads the native addon (native/build/Release/trt_debug_native.node, built by
 * scripts/build-native.cjs at install time) and adapts it to the `Kernels` contract.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { KernelInfo, Kernels } from "./kernels.js";
import type { SignalAddon } from "../core/temp-files.js";

/** ABI version the TypeScript side expects from the addon (native/src/addon.cc `abiVersion`). */
const ABI_VERSION = 1;

/** The package root: this file is src/numeric/native.ts (dev) or dist/numeric/native.js. */
export function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
}

export function addonPath(): string {
  return path.join(packageRoot(), "native", "build", "Release", "trt_debug_native.node");
}

/** What the addon exports beyond the kernels (tests and benchmarks use these). */
export interface NativeAddon extends Kernels {
  abiVersion: number;
  info(): KernelInfo & { cpuSimd: string; parallelThreshold: number };
  /** Switch kernel builds: "best" (default), "scalar", "avx2+f16c". Returns the one in use. */
  setSimd(level: "best" | "scalar" | "avx2+f16c"): string;
  /** Threads for large inputs; n <= 0 restores the default. Returns the count in use. */
  setThreads(n: number): number;
}

export type NativeLoad = { ok: true; addon: NativeAddon } | { ok: false; reason: string };

let cached: NativeLoad | undefined;

/** Loads the addon once per module instance; never throws. */
export function loadNative(): NativeLoad {
  if (cached) return cached;
  const file = addonPath();
  try {
    if (!existsSync(file)) {
      cached = { ok: false, reason: `native addon not built (${path.relative(packageRoot(), file)} missing)` };
      return cached;
    }
    const req = createRequire(import.meta.url);
    const addon = req(file) as NativeAddon;
    if (addon.abiVersion !== ABI_VERSION) {
      cached = { ok: false, reason: `native addon is stale (abi ${String(addon.abiVersion)}, expected ${ABI_VERSION}); rebuild with npm install` };
      return cached;
    }
    cached = { ok: true, addon };
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    cached = { ok: false, reason: `native addon failed to load: ${msg}` };
  }
  return cached;
}

/** The addon's signal-time temp-file cleanup, for core/temp-files.ts `installSignalExit` (null without the addon). */
export function signalAddon(): SignalAddon | null {
  const n = loadNative();
  if (!n.ok) return null;
  const a = n.addon as unknown as Partial<SignalAddon>;
  return typeof a.installSignalCleanup === "function" && typeof a.registerTemp === "function" ? (a as SignalAddon) : null;
}
