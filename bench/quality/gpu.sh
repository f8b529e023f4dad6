#!/usr/bin/env bash
# bench/quality's `gpu` configuration as one device command (bench/quality/README.md): ResNet-50-FPN at 512 px on
# every RSNA training image, torchvision on CUDA (the machine's PyTorch) and fedcxr on the torch engine (the
# bridge built here against that PyTorch), same split, recipe and initial weights; both best checkpoints scored
# on the test split. Results under $OUT/quality (results.json, report.html, every history and prediction).
# Here, on the CPU first:
#   DEVICE_TEST=1 EPOCHS=1 CONFIG=smoke PYTHON=<reference venv>/bin/python OUT=/tmp/o bash bench/quality/gpu.sh
set -u
OUT=${OUT:-/tmp/quality-gpu-out}
PY=${PYTHON:-python3}
CONFIG=${CONFIG:-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; nproc; "$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.cuda.is_available())'; } | tee "$OUT/machine.txt"
if [ -z "${DEVICE_TEST:-}" ] || [ ! -f packages/core/native/build/fedcxr_torch.node ]; then
  REFERENCE_VENV= PATH="$(dirname "$(command -v "$PY")"):$PATH" node packages/core/native/build.mjs --json --force >"$OUT/build.json" 2>"$OUT/build.log"
  echo "bridge build exit $?"; cat "$OUT/build.json"
fi
export FEDCXR_TORCH_ADDON=$PWD/packages/core/native/build/fedcxr_torch.node
ARGS=(--config "$CONFIG" --seeds "${SEEDS:-0}" --python "$PY" --backend torch --eval-engine tfjs
  --cxr "node .cache/quality-gpu/cxr.mjs" --data .cache/quality-gpu/rsna-${SIZE:-512} --out "$OUT/quality" --publish "$OUT/publish"
  --train-timeout-s "${TRAIN_TIMEOUT_S:-300}" --no-train-report)
[ -n "${EPOCHS:-}" ] && ARGS+=(--epochs "$EPOCHS")
node .cache/quality-gpu/quality.mjs "${ARGS[@]}" >"$OUT/summary.json" 2>"$OUT/quality.log"
echo "quality exit $?"; cat "$OUT/summary.json"; tail -c 3000 "$OUT/quality.log"
