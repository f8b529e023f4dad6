#!/usr/bin/env bash
# The device command's body (after `source .gpu/prelude.sh`): torchvision first (it writes the shared weights,
# the CPU reference outputs and its own GPU timings), then fedcxr on tfjs webgpu (Dawn) on the same card.
# Results under $OUT: torch.json, webgpu.json and both logs. See bench/gpu/README.md.
set -u
OUT=${OUT:-/tmp/gpu-bench-out}
WORK=${WORK:-/tmp/gpu-bench}
SIZE=${SIZE:-512}
INFER_N=${INFER_N:-20}
TRAIN_N=${TRAIN_N:-10}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1; uname -a; } | tee "$OUT/machine.txt"
ls /usr/local/nvidia/share/vulkan/icd.d/ 2>&1 | tee -a "$OUT/machine.txt"
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}" | tee -a "$OUT/machine.txt"
PY=${PYTHON:-python3}
timeout "${TORCH_TIMEOUT:-120}" "$PY" bench/gpu/torch_frcnn.py --work "$WORK" --out "$OUT/torch.json" --size "$SIZE" \
  --batch 2 --infer-n "$INFER_N" --train-n "$TRAIN_N" ${TORCH_ARGS:-} >"$OUT/torch.log" 2>&1
echo "torch exit $?"; tail -c 3000 "$OUT/torch.log"
timeout "${NODE_TIMEOUT:-280}" node .cache/gpu-bench/frcnn-webgpu.mjs --work "$WORK" --out "$OUT/webgpu.json" --size "$SIZE" \
  --batch 2 --infer-n "$INFER_N" --train-n "$TRAIN_N" --phase-seconds "${PHASE_SECONDS:-60}" >"$OUT/node.log" 2>&1
echo "node exit $?"; tail -c 6000 "$OUT/node.log"
