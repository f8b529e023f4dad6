#!/usr/bin/env bash
# The torch engine on the GPU machine (the device command's body; see bench/gpu/README.md, "torch engine"):
#   1. builds the torch bridge against the machine's own PyTorch (packages/core/native/build.mjs; the carried
#      node_modules/node-addon-api and node-api-headers give it the N-API headers),
#   2. for each batch size: torchvision's Faster R-CNN (bench/gpu/torch_frcnn.py: it writes the shared weights,
#      the CPU reference outputs, its timings and a short training run) and then fedcxr's, on the same card
#      (bench/gpu/frcnn-webgpu.ts bundled, with --backend torch): correctness, inference, backbone and full
#      training steps, and the same short training run.
# Results under $OUT: build.json, torch-b<B>.json, fedcxr-b<B>.json and the logs.
# Here, on the CPU first:  DEVICE=cpu SIZE=128 BATCHES=2 INFER_N=1 TRAIN_N=1 RUN_STEPS=2 PYTHON=<venv>/bin/python OUT=/tmp/o bash bench/gpu/torch-engine.sh
set -u
OUT=${OUT:-/tmp/gpu-torch-out}
WORK=${WORK:-/tmp/gpu-torch}
SIZE=${SIZE:-512}
BATCHES=${BATCHES:-2 4}
INFER_N=${INFER_N:-20}
TRAIN_N=${TRAIN_N:-10}
RUN_STEPS=${RUN_STEPS:-20}
RUN_LR=${RUN_LR:-0.001}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; uname -a; nproc; "$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.cuda.is_available())'; } | tee "$OUT/machine.txt"
start=$(date +%s)
REFERENCE_VENV= PATH="$(dirname "$(command -v "$PY")"):$PATH" node packages/core/native/build.mjs --json --force >"$OUT/build.json" 2>"$OUT/build.log"
echo "build exit $? in $(( $(date +%s) - start )) s"; cat "$OUT/build.json"; tail -c 2000 "$OUT/build.log"
export FEDCXR_TORCH_ADDON=$PWD/packages/core/native/build/fedcxr_torch.node
for B in $BATCHES; do
  timeout "${TORCH_TIMEOUT:-150}" "$PY" bench/gpu/torch_frcnn.py --work "$WORK" --out "$OUT/torch-b$B.json" --size "$SIZE" \
    --batch "$B" --infer-n "$INFER_N" --train-n "$TRAIN_N" --device "$DEVICE" --run-steps "$RUN_STEPS" --run-lr "$RUN_LR" >"$OUT/torch-b$B.log" 2>&1
  echo "torch batch $B exit $?"; tail -c 1500 "$OUT/torch-b$B.log"
  timeout "${NODE_TIMEOUT:-150}" node .cache/gpu-bench/frcnn-torch.mjs --backend torch --device "$DEVICE" --work "$WORK" \
    --out "$OUT/fedcxr-b$B.json" --size "$SIZE" --batch "$B" --infer-n "$INFER_N" --train-n "$TRAIN_N" \
    --phase-seconds "${PHASE_SECONDS:-30}" --run-steps "$RUN_STEPS" --run-lr "$RUN_LR" >"$OUT/fedcxr-b$B.log" 2>&1
  echo "fedcxr batch $B exit $?"; tail -c 3000 "$OUT/fedcxr-b$B.log"
done
