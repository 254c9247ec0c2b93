#!/usr/bin/env bash
# Builds the folder scripts/bench/device.sh runs from on the device machine (no node, no
# network there; docs/performance.md "On the 16-core device host", /work/shared/docs/DEVICE.md):
#   node.xz            this machine's node binary
#   project.tar.xz     production install: package.json, node_modules (onnxruntime-node's
#                      linux/x64 binaries only), dist/, bin/, native/build/Release/*.node,
#                      golden/layernorm_overflow.onnx, scripts/bench/*.mjs and the model
#                      generator and bigmodel bundles (scripts/bench/gen-models.ts,
#                      bigmodel-device.ts through esbuild)
#   baseline.tar.xz    (optional) dist/ and bin/ of another build, e.g. the commit before the
#                      optimisations, timed side by side (BASELINE=folder holding dist/ and bin/,
#                      and its native/build/Release addon when built)
#   poly/              Polygraphy's source (POLYGRAPHY_GIT=path/to/TensorRT git dir)
#   device.sh          a copy of scripts/bench/device.sh
# Usage: scripts/bench/device-carry.sh CARRY_DIR   (after `npm run build`)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CARRY=${1:?usage: device-carry.sh CARRY_DIR}
mkdir -p "$CARRY"
CARRY=$(cd "$CARRY" && pwd)
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

[ -f "$ROOT/dist/index.js" ] || { echo "device-carry: run npm run build first" >&2; exit 2; }
[ -f "$CARRY/node.xz" ] || xz -T2 -6 -c "$(command -v node)" > "$CARRY/node.xz"

P=$SCRATCH/proj
mkdir -p "$P/native/build/Release" "$P/scripts/bench" "$P/golden"
cp "$ROOT/package.json" "$ROOT/package-lock.json" "$P/"
[ -f "$ROOT/.npmrc" ] && cp "$ROOT/.npmrc" "$P/"
(cd "$P" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
for d in "$P"/node_modules/onnxruntime-node/bin/napi-v*/; do
  for plat in "$d"*/; do
    case "$plat" in */linux/) ;; *) rm -rf "$plat" ;; esac
  done
  for arch in "$d"linux/*/; do
    case "$arch" in */x64/) ;; *) rm -rf "$arch" ;; esac
  done
done
cp -r "$ROOT/dist" "$ROOT/bin" "$P/"
cp "$ROOT"/native/build/Release/*.node "$P/native/build/Release/"
cp "$ROOT/golden/layernorm_overflow.onnx" "$P/golden/"
cp "$ROOT"/scripts/bench/*.mjs "$P/scripts/bench/"
(cd "$ROOT" && npx esbuild scripts/bench/gen-models.ts --bundle --platform=node --format=esm \
  --outfile="$P/scripts/bench/gen-models.mjs" --external:onnxruntime-node --external:sharp --log-level=warning)
(cd "$ROOT" && npx esbuild scripts/bench/bigmodel-device.ts --bundle --platform=node --format=esm \
  --outfile="$P/scripts/bench/bigmodel-device.mjs" --external:onnxruntime-node --external:sharp --external:execa --log-level=warning)
tar -C "$P" -cf - . | xz -T2 -6 > "$CARRY/project.tar.xz"

if [ -n "${BASELINE:-}" ]; then
  # the baseline's own native addon when it has one (else device.sh links this build's)
  NB=(); [ -d "$BASELINE/native/build/Release" ] && NB=(native/build/Release/trt_debug_native.node)
  tar -C "$BASELINE" -cf - dist bin "${NB[@]}" | xz -T2 -6 > "$CARRY/baseline.tar.xz"
fi
if [ -n "${POLYGRAPHY_GIT:-}" ] && [ ! -d "$CARRY/poly" ]; then
  mkdir -p "$CARRY/poly"
  git --git-dir="$POLYGRAPHY_GIT" archive HEAD tools/Polygraphy/polygraphy tools/Polygraphy/bin | tar x -C "$CARRY/poly"
fi
cp "$ROOT/scripts/bench/device.sh" "$CARRY/device.sh"
du -sh "$CARRY"
