#!/usr/bin/env bash
# Bundles bench/gpu/frcnn-webgpu.ts (and fedcxr's sources it imports) into one ESM file for the GPU machine,
# which has no node_modules: .cache/gpu-bench/frcnn-webgpu.mjs. Dawn (`webgpu`) stays external: the device
# command's `source .gpu/prelude.sh` unpacks it into node_modules/webgpu (see bench/gpu/README.md).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
mkdir -p .cache/gpu-bench
bundle() {
  npx esbuild bench/gpu/frcnn-webgpu.ts --bundle --platform=node --format=esm --target=node24 \
    --alias:@fedcxr/base=./packages/base/src/index.ts --alias:@fedcxr/core=./packages/core/src/index.ts \
    --alias:@fedcxr/models-frcnn=./packages/models-frcnn/src/index.ts \
    --alias:onnxruntime-node=./bench/gpu/onnxruntime-stub.ts --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    --ignore-annotations --log-level=warning --outfile="$1"
  ls -la "$1"
}
bundle .cache/gpu-bench/frcnn-webgpu.mjs
# The same program for the torch engine (torch-engine.sh, `--backend torch`): no Dawn needed; the bridge is
# loaded from $FEDCXR_TORCH_ADDON at run time.
bundle .cache/gpu-bench/frcnn-torch.mjs
