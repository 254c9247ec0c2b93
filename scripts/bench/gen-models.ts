/**
 * Writes the overhead section's generated models into a folder, for scripts/bench/device.sh
 * (bundled there with esbuild, since the device has no TypeScript tooling):
 *   db_detector_640.onnx  detector-like conv net with BatchNorm, 1x3x640x640 (no plant)
 *   text_recognizer.onnx  recognizer-like conv net with BatchNorm, 1x3x48x320
 *   bench.onnx            the 20M-parameter conv stack (scripts/models/bench.ts)
 *   facts.json            { "bench.onnx": { activationBytes } }
 * Usage: tsx scripts/bench/gen-models.ts DIR
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { dbDetector } from "../models/db-detector.js";
import { textRecognizer } from "../models/text-recognizer.js";
import { benchModel } from "../models/bench.js";
import { saveModel } from "../../test/support/graph-builder.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: gen-models DIR");
fs.mkdirSync(dir, { recursive: true });
saveModel(dbDetector({ size: 640, plant: false }).model, path.join(dir, "db_detector_640.onnx"));
saveModel(textRecognizer().model, path.join(dir, "text_recognizer.onnx"));
const b = benchModel();
saveModel(b.model, path.join(dir, "bench.onnx"));
fs.writeFileSync(path.join(dir, "facts.json"), JSON.stringify({ "bench.onnx": { activationBytes: b.facts.activationBytes, params: b.facts.params } }) + "\n");
