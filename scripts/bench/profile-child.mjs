/**
 * The profile breakdown of the overhead section: `run --fp32 --mark-all --save-outputs OUTDIR`
 * (or `compare --fp16` with a third argument `compare`) through the public API with the phase
 * profile on (src/core/phase-profile.ts), in a fresh process. Prints one JSON line:
 * { ms, envMs, phases: [{ phase, ms, count }] }.
 * envMs: onnxruntime's environment (thread pools, kernel registry), which the first session of a
 * process creates, measured before the profile with a one-node session so that it is not
 * counted as the first phase that creates a session (the type-inference session). A bare
 * onnxruntime-node process pays it too.
 * Usage: node scripts/bench/profile-child.mjs MODEL OUTDIR [SEGMENT_LAYERS | compare]
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
import { compareModel, defaultCompareOptions, runModel, startPhaseProfile, takePhaseProfile } from "../../dist/index.js";

const [model, outDir, third] = process.argv.slice(2);
const e0 = performance.now();
const golden = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../golden/layernorm_overflow.onnx");
const warm = await ort.InferenceSession.create(fs.readFileSync(golden), { logSeverityLevel: 3 });
await warm.release();
const envMs = performance.now() - e0;
startPhaseProfile();
const t0 = performance.now();
if (third === "compare") await compareModel({ model, candidate: "fp16", compare: defaultCompareOptions() });
else await runModel({ model, precisions: ["fp32"], capture: { kind: "all" }, saveOutputs: outDir, segmentLayers: third ? Number(third) : undefined });
const ms = performance.now() - t0;
process.stdout.write(JSON.stringify({ ms, envMs, phases: takePhaseProfile() }) + "\n");
