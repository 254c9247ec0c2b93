/**
 * The profile breakdown of the overhead section: `run --fp32 --mark-all --save-outputs OUTDIR`
 * through the public API with the phase profile on (src/core/phase-profile.ts), in a fresh
 * process. Prints one JSON line: { ms, phases: [{ phase, ms, count }] }.
 * Usage: node scripts/bench/profile-child.mjs MODEL OUTDIR [SEGMENT_LAYERS]
 */
import { runModel, startPhaseProfile, takePhaseProfile } from "../../dist/index.js";

const [model, outDir, segmentLayers] = process.argv.slice(2);
startPhaseProfile();
const t0 = performance.now();
await runModel({ model, precisions: ["fp32"], capture: { kind: "all" }, saveOutputs: outDir, segmentLayers: segmentLayers ? Number(segmentLayers) : undefined });
const ms = performance.now() - t0;
process.stdout.write(JSON.stringify({ ms, phases: takePhaseProfile() }) + "\n");
