/**
 * Faster R-CNN benchmark: eval forward (predict) and one training step (losses, gradients, SGD update) of the
 * TypeScript detector on each tfjs backend asked for, beside torchvision's same model (FrozenBatchNorm2d
 * ResNet + FPN, 3 trainable layers, same input size and batch) run in the same invocation with the reference
 * venv's PyTorch. Times are the best of --reps after one warm-up; ratio = time_torch / time_tfjs
 * (1 = as fast as PyTorch).
 *
 *   node --experimental-transform-types --no-warnings --import ./bench/register.mjs \
 *     bench/models/frcnn-bench.ts [--backbone resnet18_fpn] [--size 256] [--batch 1]
 *     [--reps 2] [--threads 2] [--backends wasm,cpu] [--no-train] [--profile] [--json]
 *
 * --profile: one more training step per backend with every kernel of that backend timed: the time in each
 * stage of the detector, forward and backward (backbone + FPN, RPN head, RPN loss, proposal selection, RoI
 * sampling, RoIAlign, box head, box head loss, optimizer update), the time in each
 * kernel (top ones), and the rest of the step, which is the host's work (anchors, proposal selection and NMS,
 * matching and sampling, RoIAlign's sample plan, tfjs' tape). Kernels return synchronously on the CPU
 * backends (wasm, cpu, torch on the CPU), so their times are real; on a GPU they are launch times only.
 * Each row also reports the process's peak resident memory so far (maxRSS, backends run in the order given).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BackendName, type DetectorImage, type DetectorTarget, detectors, initEngine, tf } from '@fedcxr/core';
import '@fedcxr/models-frcnn';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Options {
  backbone: string;
  size: number;
  batch: number;
  reps: number;
  threads: number;
  backends: BackendName[];
  train: boolean;
  profile: boolean;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    backbone: 'resnet18_fpn',
    size: 256,
    batch: 1,
    reps: 2,
    threads: 2,
    backends: ['wasm'],
    train: true,
    profile: false,
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--json') options.json = true;
    else if (flag === '--no-train') options.train = false;
    else if (flag === '--profile') options.profile = true;
    else if (flag === '--backbone') {
      options.backbone = value;
      i++;
    } else if (flag === '--backends') {
      options.backends = value.split(',') as BackendName[];
      i++;
    } else if (['--size', '--batch', '--reps', '--threads'].includes(flag)) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got ${value}`);
      options[flag.slice(2) as 'size' | 'batch' | 'reps' | 'threads'] = n;
      i++;
    } else throw new Error(`unknown flag ${flag}`);
  }
  return options;
}

/** The same synthetic image and box as bench/models/torch_reference.py. */
function batch(size: number, count: number): { images: DetectorImage[]; targets: DetectorTarget[] } {
  const pixels = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const yy = -1 + (2 * y) / (size - 1);
      const xx = -1 + (2 * x) / (size - 1);
      pixels[y * size + x] = 0.5 + 0.4 * Math.sin(3 * xx + 2 * yy) * Math.cos(4 * yy);
    }
  }
  const image: DetectorImage = { pixels, height: size, width: size, channels: 1 };
  const target: DetectorTarget = {
    boxes: Float32Array.from([0.2 * size, 0.25 * size, 0.6 * size, 0.7 * size]),
    labels: Int32Array.from([1]),
  };
  return { images: Array(count).fill(image), targets: Array(count).fill(target) };
}

/**
 * Runs `body` with every kernel of `backend` timed; restores the kernels after. Times are exclusive: a kernel
 * built from other kernels (wasm's training kernels) is charged only for its own work.
 */
interface KernelTimes {
  /** Exclusive time per kernel name. */
  byKernel: Map<string, number>;
  /** Exclusive kernel time per stage of the detector and pass ("RPN head, backward", …). */
  byStage: Map<string, number>;
}

/** "<stage>, forward", or the optimizer's update (after the backward pass). */
function forwardStage(stack: string): string {
  const stage = stageFromStack(stack);
  return stage === 'optimizer update' ? stage : `${stage}, forward`;
}

/** Stage a forward kernel belongs to, from the model's frames on its call stack (innermost decides). */
function stageFromStack(stack: string): string {
  const frames = stack
    .split('\n')
    .slice(1)
    .map((line) => {
      const match = /at (?:(\S+) \()?.*?([\w.-]+\.[tj]s):\d+:\d+\)?$/.exec(line.trim());
      return match ? { fn: match[1] ?? '', file: match[2] } : { fn: '', file: '' };
    });
  for (let i = 0; i < frames.length; i++) {
    const { fn, file } = frames[i];
    if (/applyGradients|optimizer/i.test(fn) || /optimizer/.test(file)) return 'optimizer update';
    if (file === 'roi-align.ts') return 'RoIAlign';
    if (file === 'rpn.ts') {
      if (/selectProposals|propose/.test(fn)) return 'proposal selection';
      if (/anchor/i.test(fn)) return 'anchors';
      if (/loss|target|binaryCross/i.test(fn)) return 'RPN loss';
      return 'RPN head';
    }
    if (file === 'roi-heads.ts') return /selectTrainingSamples/.test(fn) ? 'RoI sampling' : 'box head';
    if (file === 'losses.ts') {
      const outer = frames.slice(i + 1).find((f) => f.file === 'rpn.ts' || f.file === 'faster-rcnn.ts');
      return outer?.file === 'rpn.ts' ? 'RPN loss' : 'box head loss';
    }
    if (['resnet.ts', 'fpn.ts', 'fpn-backbone.ts', 'swin.ts', 'params.ts'].includes(file)) return 'backbone + FPN';
    if (file === 'transform.ts') return 'transform (resize, normalize)';
  }
  return 'other';
}

/**
 * Runs `body` with every kernel of `backend` timed; restores the kernels after. Times are exclusive: a kernel
 * built from other kernels (wasm's training kernels) is charged only for its own work. Each kernel is also
 * charged to a stage: forward kernels by the model frames on their call stack; backward ones by the stage
 * of the forward kernel whose gradient they compute (the tape's gradient functions are wrapped by
 * `annotateTape`, which the loss function calls once the forward pass is recorded).
 */
async function withKernelTimes(
  backend: string,
  body: (annotateTape: () => void) => Promise<void>,
): Promise<KernelTimes> {
  const byKernel = new Map<string, number>();
  const byStage = new Map<string, number>();
  const childTime: number[] = [];
  const stages: string[] = [];
  const stageOfOutput = new Map<object, string>();
  let backwardStage: string | undefined;
  const originals = tf.getKernelsForBackend(backend);
  for (const kernel of originals) {
    tf.unregisterKernel(kernel.kernelName, backend);
    tf.registerKernel({
      ...kernel,
      kernelFunc: (args) => {
        const stage =
          stages.at(-1) ??
          (backwardStage !== undefined ? `${backwardStage}, backward` : forwardStage(new Error().stack ?? ''));
        stages.push(stage);
        const start = performance.now();
        childTime.push(0);
        let result: ReturnType<typeof kernel.kernelFunc> | undefined;
        try {
          result = kernel.kernelFunc(args);
          return result;
        } finally {
          const total = performance.now() - start;
          const children = childTime.pop() ?? 0;
          stages.pop();
          if (childTime.length > 0) childTime[childTime.length - 1] += total;
          else if (result && backwardStage === undefined) {
            // The first producer of a buffer owns it (Reshape and friends hand the same buffer on).
            for (const info of Array.isArray(result) ? result : [result]) {
              if (!stageOfOutput.has(info.dataId)) stageOfOutput.set(info.dataId, stage);
            }
          }
          byKernel.set(kernel.kernelName, (byKernel.get(kernel.kernelName) ?? 0) + total - children);
          byStage.set(stage, (byStage.get(stage) ?? 0) + total - children);
        }
      },
    });
  }
  // Stacks deep enough to reach the model's frames under tfjs' engine frames.
  const stackLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 80;
  const annotateTape = () => {
    const tape = (tf.engine() as unknown as { state: { activeTape?: TapeNode[] } }).state.activeTape ?? [];
    for (const node of tape) {
      const stage = stageOfOutput.get(node.outputs[0]?.dataId)?.replace(/, forward$/, '') ?? 'other';
      const gradient = node.gradient;
      if (!gradient) continue;
      node.gradient = (dys: unknown) => {
        const previous = backwardStage;
        backwardStage = stage;
        try {
          return gradient(dys);
        } finally {
          backwardStage = previous;
        }
      };
    }
  };
  try {
    await body(annotateTape);
  } finally {
    Error.stackTraceLimit = stackLimit;
    for (const kernel of originals) {
      tf.unregisterKernel(kernel.kernelName, backend);
      tf.registerKernel(kernel);
    }
  }
  return { byKernel, byStage };
}

/** The part of a tfjs tape node used here. */
interface TapeNode {
  outputs: { dataId: object }[];
  gradient?: (dys: unknown) => unknown;
}

/** The wasm heap's size: it only grows, so this is its peak (wasm32 caps it at 4096 MB). */
function wasmHeapMb(): number | null {
  const backend = tf.engine().findBackend('wasm') as unknown as
    | { wasm?: { wasmMemory?: { buffer: ArrayBufferLike }; asm?: { memory?: { buffer: ArrayBufferLike } } } }
    | undefined;
  const memory = backend?.wasm?.wasmMemory ?? backend?.wasm?.asm?.memory;
  return memory ? Math.round(memory.buffer.byteLength / 2 ** 20) : null;
}

async function bestMs(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn();
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    await fn();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

function torchReference(options: Options): { forward_ms: number; train_ms: number } | { error: string } {
  let python = path.join(repoRoot, '.cache/reference-venv/bin/python');
  if (!existsSync(python)) {
    const venv = spawnSync('bash', [path.join(repoRoot, '../shared/tools/python-reference-env.sh')], {
      encoding: 'utf8',
    });
    if (venv.status !== 0) return { error: `reference venv setup failed: ${venv.stderr.trim().split('\n').pop()}` };
    python = path.join(venv.stdout.trim().split('\n').pop() ?? '', 'bin/python');
  }
  const args = JSON.stringify({
    backbone: options.backbone,
    size: options.size,
    batch: options.batch,
    reps: options.reps,
    threads: options.threads,
  });
  const run = spawnSync(python, [path.join(repoRoot, 'bench/models/torch_reference.py'), args], { encoding: 'utf8' });
  if (run.status !== 0) return { error: `PyTorch reference failed: ${run.stderr.trim().split('\n').pop()}` };
  return JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}');
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const torch = torchReference(options);
  const { images, targets } = batch(options.size, options.batch);
  const rows: Record<string, unknown>[] = [];
  for (const backend of options.backends) {
    try {
      await initEngine({ backend, threads: options.threads });
    } catch (error) {
      rows.push({ backend, error: (error as Error).message });
      continue;
    }
    const model = detectors.build('faster_rcnn', {
      backbone: options.backbone,
      numClasses: 2,
      minSize: options.size,
      maxSize: options.size,
      backboneOptions: { trainableLayers: 3 },
    });
    const forwardMs = await bestMs(async () => {
      await model.predict(images);
    }, options.reps);
    let trainMs: number | null = null;
    let profile: Record<string, unknown> | undefined;
    if (options.train) {
      const optimizer = tf.train.momentum(1e-4, 0.9);
      const step = async (annotateTape?: () => void) => {
        const cost = optimizer.minimize(
          () => {
            const loss = tf.addN(Object.values(model.losses(images, targets))) as tf.Scalar;
            annotateTape?.();
            return loss;
          },
          true,
          model.trainableVariables(),
        );
        await cost?.data();
        cost?.dispose();
      };
      trainMs = await bestMs(() => step(), options.reps);
      if (options.profile) {
        let wall = 0;
        const times = await withKernelTimes(backend, async (annotateTape) => {
          const start = performance.now();
          await step(annotateTape);
          wall = performance.now() - start;
        });
        const inKernels = [...times.byKernel.values()].reduce((a, b) => a + b, 0);
        const ranked = (map: Map<string, number>, count: number) =>
          Object.fromEntries(
            [...map]
              .sort((a, b) => b[1] - a[1])
              .slice(0, count)
              .map(([name, ms]) => [name, Math.round(ms)]),
          );
        profile = {
          step_ms: Math.round(wall),
          kernels_ms: Math.round(inKernels),
          host_ms: Math.round(wall - inKernels),
          stages_ms: ranked(times.byStage, 30),
          top_kernels_ms: ranked(times.byKernel, 12),
        };
      }
      optimizer.dispose();
    }
    model.dispose();
    const ratio = (ref: number | undefined, ms: number | null) =>
      ref !== undefined && ms !== null ? Number((ref / ms).toFixed(3)) : null;
    rows.push({
      backend,
      forward_ms: Math.round(forwardMs),
      train_ms: trainMs === null ? null : Math.round(trainMs),
      forward_ratio_vs_torch: 'error' in torch ? null : ratio(torch.forward_ms, forwardMs),
      train_ratio_vs_torch: 'error' in torch ? null : ratio(torch.train_ms, trainMs),
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      ...(backend === 'wasm' ? { wasm_heap_mb: wasmHeapMb() } : {}),
      ...(profile ? { profile } : {}),
    });
  }
  const report = { ...options, torch, tfjs: rows };
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const head = `Faster R-CNN ${options.backbone}, ${options.batch}×${options.size}², ${options.threads} threads, best of ${options.reps}`;
  const lines = [head];
  if ('error' in torch) lines.push(`PyTorch: ${torch.error}`);
  else lines.push(`PyTorch  forward ${torch.forward_ms.toFixed(0)} ms   train step ${torch.train_ms.toFixed(0)} ms`);
  for (const row of rows) {
    if ('error' in row) lines.push(`${row.backend}: ${row.error}`);
    else {
      lines.push(
        `tfjs ${row.backend}  forward ${row.forward_ms} ms (×${row.forward_ratio_vs_torch} of PyTorch)   train step ${row.train_ms ?? '-'} ms (×${row.train_ratio_vs_torch ?? '-'})   peak RSS so far ${row.peak_rss_mb} MB${row.wasm_heap_mb ? `, wasm heap ${row.wasm_heap_mb} MB` : ''}`,
      );
      const p = row.profile as
        | {
            step_ms: number;
            kernels_ms: number;
            host_ms: number;
            stages_ms: Record<string, number>;
            top_kernels_ms: Record<string, number>;
          }
        | undefined;
      if (p) {
        lines.push(
          `  profiled step ${p.step_ms} ms: kernels ${p.kernels_ms} ms, host ${p.host_ms} ms (anchors, proposal selection and NMS, matching, sampling, RoIAlign's plan, reads, tfjs' tape)`,
        );
        lines.push('  kernel time by stage:');
        for (const [name, ms] of Object.entries(p.stages_ms)) lines.push(`    ${name.padEnd(36)} ${ms} ms`);
        lines.push('  by kernel:');
        for (const [name, ms] of Object.entries(p.top_kernels_ms)) lines.push(`    ${name.padEnd(28)} ${ms} ms`);
      }
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
