#!/usr/bin/env bash
# Prepares bench/quality's `gpu` configuration for one device call (the GPU machine has no node_modules and no
# ../shared/data; what it needs travels in carried folders, 64 MiB in all):
#   .cache/quality-gpu/rsna-512/   RSNA imported at 512 px as JPEG (quality 85, JPEG_QUALITY) and split by patient
#                                  (70/15/15, seed 0) — the same split the CPU configuration uses at 256 px;
#   .cache/quality-gpu/cxr.mjs     the CLI in one file (onnxruntime-node stubbed: predictions run with
#                                  `--eval-engine tfjs`, on the torch engine);
#   .cache/quality-gpu/quality.mjs the orchestrator in one file.
# Then test the device command here on the CPU (bench/quality/README.md), and run it on the GPU machine.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
DIR=.cache/quality-gpu
SIZE=${SIZE:-512}
mkdir -p "$DIR"
# The repo's Node 24 (the `node` devDependency); the system's may be older.
NODE=${NODE:-$([ -x node_modules/.bin/node ] && echo node_modules/.bin/node || echo node)}
cxr() { "$NODE" --experimental-transform-types --no-warnings --import ./bench/register.mjs packages/cli/src/cli.ts "$@"; }
if [ ! -f "$DIR/rsna-$SIZE/test.json" ]; then
  cxr dataset import --format rsna ../shared/data/rsna-pneumonia --out "$DIR/rsna-$SIZE" --size "$SIZE" --image-format jpeg --jpeg-quality "${JPEG_QUALITY:-85}" --quiet
  cxr dataset split "$DIR/rsna-$SIZE/annotations.json" --val 0.15 --test 0.15 --seed 0 --quiet
fi
bundle() {
  npx esbuild "$1" --bundle --platform=node --format=esm --target=node24 \
    --alias:@fedcxr/base=./packages/base/src/index.ts --alias:@fedcxr/core=./packages/core/src/index.ts \
    --alias:@fedcxr/dicom=./packages/dicom/src/index.ts \
    --alias:@fedcxr/models-frcnn=./packages/models-frcnn/src/index.ts \
    --alias:@fedcxr/federated=./packages/federated/src/index.ts --alias:@fedcxr/coordinator=./apps/coordinator/src/index.ts \
    --alias:onnxruntime-node=./bench/gpu/onnxruntime-stub.ts \
    --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    --minify --ignore-annotations --log-level=warning --outfile="$2"
}
bundle packages/cli/src/cli.ts "$DIR/cxr.mjs"
bundle bench/quality/quality.ts "$DIR/quality.mjs"
du -sh "$DIR" "$DIR"/*
