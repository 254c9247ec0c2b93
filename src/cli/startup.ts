/**
 * Start-up costs of a CLI process that are not the command's work (docs/performance.md "Start-up").
 */
import type { Argv } from "yargs";

/**
 * yargs renders the whole help text of the command being run (every option, wrapped with
 * string-width's Unicode segmentation) as soon as the command's handler has started, only to
 * keep it for `showHelpOnFail`, which this CLI turns off. That rendering cost ~45 ms of CPU per
 * process on the 2-core machine. `--help` is unaffected: it renders when asked (yargs 18
 * `usage.help()` renders whenever nothing is cached). Guarded: if yargs' internals change
 * shape, nothing is patched.
 */
export function skipHelpCache(y: Argv): void {
  const internal = (y as unknown as { getInternalMethods?: () => { getUsageInstance?: () => unknown } }).getInternalMethods?.();
  const usage = internal?.getUsageInstance?.() as { cacheHelpMessage?: () => void } | undefined;
  if (usage && typeof usage.cacheHelpMessage === "function") usage.cacheHelpMessage = () => {};
}
