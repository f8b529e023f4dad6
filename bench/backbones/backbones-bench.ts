/**
 * Backbone benchmark: eval forward of each registered backbone and a training step (forward + gradients of
 * every trainable variable for Σ_levels mean(map²)) on the tfjs engine, beside PyTorch (the reference venv's
 * torch, same threads, same backbones built from torchvision parts, same input) run in the same invocation.
 * Times are the best of --reps; the ratio is time_torch / time_tfjs (1 = as fast as PyTorch).
 *
 *   node bench/engine/run.mjs bench/backbones/backbones-bench.ts [--backend wasm] [--size 512x512]
 *     [--train-size 256x256] [--archs resnet18_fpn,resnet50_fpn] [--reps 3] [--threads 2] [--json]
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BackendName, initEngine } from '../../packages/core/src/engine/index.js';
import { backbones } from '../../packages/core/src/model.js';
import { tf } from '../../packages/core/src/tf.js';
import '../../packages/models-frcnn/src/backbones/index.js';
import { syntheticImages } from '../../packages/models-frcnn/src/backbones/testing.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const size = (text: string) => text.split('x').map(Number) as [number, number];
const backend = flag('backend', 'wasm') as BackendName;
const [height, width] = size(flag('size', '512x512'));
const [trainHeight, trainWidth] = size(flag('train-size', '256x256'));
const archs = flag('archs', 'resnet18_fpn,resnet50_fpn,resnet101_fpn,swin_t_fpn').split(',');
const trainArchs = flag('train-archs', 'resnet18_fpn,swin_t_fpn').split(',');
const reps = Number(flag('reps', '3'));
const threads = Number(flag('threads', '2'));
const json = args.includes('--json');

function bestMs(run: () => void): number {
  run();
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const started = performance.now();
    run();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

function torchTimes(): {
  torch: string;
  threads: number;
  results: Record<string, { forward_ms: number; train_step_ms?: number }>;
} {
  const venv = spawnSync('bash', [path.join(repoRoot, '../shared/tools/python-reference-env.sh')], {
    encoding: 'utf8',
  });
  const python = process.env.FEDCXR_PYTHON ?? `${venv.stdout.trim()}/bin/python`;
  const request = {
    archs,
    train_archs: trainArchs,
    batch: 1,
    height,
    width,
    train_height: trainHeight,
    train_width: trainWidth,
    reps,
    threads,
  };
  const run = spawnSync(python, [path.join(repoRoot, 'bench/backbones/torch_reference.py'), JSON.stringify(request)], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (run.status !== 0) throw new Error(`PyTorch reference failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

// PyTorch first: the wasm engine's worker threads must not exist while it runs.
const torch = torchTimes();
const info = await initEngine({ backend, threads });
const rows: Record<string, unknown>[] = [];
for (const arch of archs) {
  const backbone = backbones.build(arch, { randomInit: false });
  const images = syntheticImages(1, height, width);
  const forwardMs = bestMs(() => {
    const maps = backbone.apply(images, false);
    for (const map of maps.values()) {
      map.dataSync();
      map.dispose();
    }
  });
  images.dispose();
  let trainMs: number | undefined;
  if (trainArchs.includes(arch)) {
    const trainImages = syntheticImages(1, trainHeight, trainWidth);
    const trainable = [...backbone.variables().values()].filter((v) => v.trainable);
    trainMs = bestMs(() => {
      const { value, grads } = tf.variableGrads(() => {
        const maps = backbone.apply(trainImages, true);
        return tf.addN([...maps.values()].map((m) => tf.mean(tf.square(m)))) as tf.Scalar;
      }, trainable);
      value.dataSync();
      tf.dispose([value, ...Object.values(grads)]);
    });
    trainImages.dispose();
  }
  backbone.dispose?.();
  const ref = torch.results[arch];
  rows.push({
    arch,
    forward: {
      size: `${height}x${width}`,
      tfjs_ms: forwardMs,
      torch_ms: ref.forward_ms,
      ratio: ref.forward_ms / forwardMs,
    },
    ...(trainMs !== undefined && ref.train_step_ms !== undefined
      ? {
          train_step: {
            size: `${trainHeight}x${trainWidth}`,
            tfjs_ms: trainMs,
            torch_ms: ref.train_step_ms,
            ratio: ref.train_step_ms / trainMs,
          },
        }
      : {}),
  });
}
if (json) {
  process.stdout.write(`${JSON.stringify({ backend: info.backend, threads, torch: torch.torch, rows }, null, 2)}\n`);
} else {
  console.log(
    `tfjs ${info.backend} (${threads} threads) vs torch ${torch.torch} (${torch.threads} threads), batch 1, best of ${reps}`,
  );
  for (const row of rows as {
    arch: string;
    forward: Record<string, number | string>;
    train_step?: Record<string, number | string>;
  }[]) {
    for (const [kind, r] of [
      ['forward', row.forward],
      ['train step', row.train_step],
    ] as const) {
      if (!r) continue;
      console.log(
        `${row.arch.padEnd(14)} ${kind.padEnd(10)} ${String(r.size).padEnd(8)} tfjs ${Number(r.tfjs_ms).toFixed(0).padStart(7)} ms  torch ${Number(r.torch_ms).toFixed(0).padStart(6)} ms  ratio ${Number(r.ratio).toFixed(2)}`,
      );
    }
  }
}
