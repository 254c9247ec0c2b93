#!/usr/bin/env bash
# The overhead bench on the device machine (16-core host; CPU execution provider), in one call:
# start-up (scripts/bench/startup.mjs), trt-debug vs a bare onnxruntime-node process, its profile
# breakdown (run and compare), a segment-size sweep (SWEEP=1), environment variants (AB=...),
# the worker-thread experiment (TWO_SIDES=1), the bigmodel section (BIG=seconds),
# the baseline build side by side (when carried) and Polygraphy side by side (when carried).
# Runs from the folder scripts/bench/device-carry.sh builds:
#   bash CARRY/device.sh        (prints bench lines; copies them to $OUT/overhead.txt when $OUT is set)
set -uo pipefail
C=$(cd "$(dirname "$0")" && pwd)
W=${WORK:-/tmp/trtdbg-device}
rm -rf "$W" && mkdir -p "$W/bin" "$W/proj" "$W/models"
xz -dc "$C/node.xz" > "$W/bin/node" && chmod +x "$W/bin/node"
export PATH="$W/bin:$PATH"
tar -xJf "$C/project.tar.xz" -C "$W/proj"
BASE=()
if [ -f "$C/baseline.tar.xz" ]; then
  mkdir -p "$W/proj/baseline"
  tar -xJf "$C/baseline.tar.xz" -C "$W/proj/baseline"
  [ -e "$W/proj/baseline/native" ] || ln -s ../native "$W/proj/baseline/native"   # this build's addon unless the baseline carries its own
  ln -s ../node_modules "$W/proj/baseline/node_modules"   # --version reads onnxruntime-node's package.json by path
  BASE=(--baseline "$W/proj/baseline/bin/trt-debug.js")
fi
POLY=()
if [ -d "$C/poly/tools/Polygraphy" ]; then
  export PYTHONPATH="$C/poly/tools/Polygraphy${PYTHONPATH:+:$PYTHONPATH}"
  POLY=(--polygraphy "python3 $C/poly/tools/Polygraphy/bin/polygraphy")
fi
R=${OUT:-$W}/overhead.txt
{
  echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "node $(node --version), $(cd "$W/proj" && node bin/trt-debug.js --version | tr '\n' ' ')"
  (cd "$W/proj" && node --input-type=module -e 'const { loadBundle } = await import("./bin/load-bundle.js"); console.log("CLI bundle code cache:", loadBundle(process.cwd() + "/dist/cli/main.bundle.cjs").cache)') 2>&1
  python3 -c 'import onnxruntime, onnx, numpy; print("python onnxruntime", onnxruntime.__version__, "onnx", onnx.__version__, "numpy", numpy.__version__)' 2>&1 || true
  [ ${#POLY[@]} -gt 0 ] && python3 "$C/poly/tools/Polygraphy/bin/polygraphy" --version 2>&1 | tail -1
} | tee "$R"
cd "$W/proj"
node scripts/bench/gen-models.mjs "$W/models" || exit 3
ACT=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1]))["bench.onnx"].activationBytes)' "$W/models/facts.json")
run() { node scripts/bench/overhead.mjs "$@" 2>&1 | tee -a "$R"; }
node scripts/bench/startup.mjs ${BASE[@]:+--baseline "${BASE[1]}"} 2>&1 | tee -a "$R"
# AB="VAR=V[,VAR=V] ..." adds those environment variants of run and compare (e.g. malloc settings)
ABS=(); for v in ${AB:-}; do ABS+=(--ab-env "$v"); done
# SWEEP=1 adds the segment sweep on the detector (the 16M default came from it)
run "$W/models/db_detector_640.onnx" --label "detector-like conv net + BN 1x3x640x640" ${SWEEP:+--sweep} "${BASE[@]}" "${POLY[@]}" "${ABS[@]}"
run "$W/models/text_recognizer.onnx" --label "recognizer-like conv net + BN 1x3x48x320" "${BASE[@]}" "${POLY[@]}" "${ABS[@]}"
run golden/layernorm_overflow.onnx --label "golden/layernorm_overflow" "${BASE[@]}"
run "$W/models/bench.onnx" --label "conv net 20.7M params" --activations "$ACT" "${BASE[@]}" "${ABS[@]}"
# TWO_SIDES=1: would compare gain from a worker_thread for the candidate side (scripts/bench/two-sides.mjs)
if [ -n "${TWO_SIDES:-}" ]; then
  node scripts/bench/two-sides.mjs "$W/models/db_detector_640.onnx" --label "detector-like conv net + BN 1x3x640x640" 2>&1 | tee -a "$R"
  node scripts/bench/two-sides.mjs "$W/models/text_recognizer.onnx" --label "recognizer-like conv net + BN 1x3x48x320" 2>&1 | tee -a "$R"
  node scripts/bench/two-sides.mjs "$W/models/bench.onnx" --label "conv net 20.7M params" 2>&1 | tee -a "$R"
fi
# BIG=SECONDS: the bigmodel section (a >= 3 GB external-data model written in $TMPDIR, deleted after), time-boxed
if [ -n "${BIG:-}" ]; then
  timeout "$BIG" node scripts/bench/bigmodel-device.mjs 2>&1 | tee -a "$R"
  echo "bigmodel: exit ${PIPESTATUS[0]} (124 = time box of $BIG s reached)" | tee -a "$R"
fi
