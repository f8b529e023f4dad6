/**
 * fedcxr's Faster R-CNN (ResNet-50-FPN) on tfjs' WebGPU backend in Node (Dawn), beside bench/gpu/torch_frcnn.py
 * on the same card. Loads the weights torch_frcnn.py wrote, then, each phase recorded on its own so a failure
 * in one (a kernel missing on webgpu, say) still leaves the others:
 *   1. correctness: backbone features for torchvision's normalized input (max abs diff per FPN level) and
 *      detections for one image, against torchvision on the CPU (float32);
 *   2. inference: batch 1, images/s after warm-up;
 *   3. one training step: detector.losses → tf.variableGrads → SGD update, batch --batch, after warm-up.
 * Writes the report (JSON) to --out after every phase.
 *
 *   node frcnn-webgpu.mjs --work /tmp/gpu-bench --out webgpu.json [--backend webgpu|torch] [--device cuda]
 *     [--size 512] [--batch 2] [--infer-n 20] [--train-n 10] [--phase-seconds 120] [--run-steps 0 --run-lr 0.01]
 *   4. with --run-steps: a short training run (SGD + momentum from the shared weights), every step's loss.
 * Runs from source too: node --experimental-transform-types --no-warnings --import ./bench/register.mjs bench/gpu/frcnn-webgpu.ts …
 * On the GPU machine it runs bundled (bench/gpu/bundle.sh), see bench/gpu/README.md.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  type Backbone,
  type BackendName,
  type Detection,
  type DetectorImage,
  type DetectorTarget,
  detectors,
  engineInfo,
  type HostTensor,
  initEngine,
  Rng,
  readSafetensors,
  tf,
} from '@fedcxr/core';
import { multiScaleRoiAlign } from '@fedcxr/models-frcnn';

interface Options {
  work: string;
  out: string;
  backend: BackendName;
  size: number;
  batch: number;
  inferN: number;
  trainN: number;
  phaseSeconds: number;
  /** Steps of the short training run (0: none) and its learning rate. */
  runSteps: number;
  runLr: number;
  /** The torch backend's device (auto, cpu, cuda). */
  device: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    work: '/tmp/gpu-bench',
    out: 'webgpu.json',
    backend: 'webgpu',
    size: 512,
    batch: 2,
    inferN: 20,
    trainN: 10,
    phaseSeconds: 120,
    runSteps: 0,
    runLr: 0.01,
    device: 'auto',
  };
  const numeric: Record<string, 'size' | 'batch' | 'inferN' | 'trainN' | 'phaseSeconds'> = {
    '--size': 'size',
    '--batch': 'batch',
    '--infer-n': 'inferN',
    '--train-n': 'trainN',
    '--phase-seconds': 'phaseSeconds',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--work') options.work = value;
    else if (flag === '--out') options.out = value;
    else if (flag === '--backend') options.backend = value as BackendName;
    else if (flag === '--device') options.device = value;
    else if (flag === '--run-lr') options.runLr = Number(value);
    else if (flag === '--run-steps') options.runSteps = Number(value);
    else if (flag in numeric) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got ${value}`);
      options[numeric[flag]] = n;
    } else throw new Error(`unknown flag ${flag}`);
  }
  return options;
}

const report: Record<string, unknown> = { started: new Date().toISOString() };
let outFile = '';
function save(): void {
  writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
}

function log(message: string): void {
  process.stdout.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${message}\n`);
}
const t0 = performance.now();

function errorText(error: unknown): string {
  return error instanceof Error
    ? `${error.name}: ${error.message}\n${(error.stack ?? '').split('\n').slice(1, 8).join('\n')}`
    : String(error);
}

/** Runs a phase, records its result or its error, and saves the report either way. */
async function phase(name: string, body: () => Promise<Record<string, unknown>>): Promise<boolean> {
  log(`${name} …`);
  const start = performance.now();
  try {
    report[name] = { ...(await body()), seconds: (performance.now() - start) / 1000 };
    log(`${name}: ${JSON.stringify(report[name]).slice(0, 600)}`);
    return true;
  } catch (error) {
    report[name] = { error: errorText(error), seconds: (performance.now() - start) / 1000 };
    log(`${name} FAILED: ${errorText(error)}`);
    return false;
  } finally {
    save();
  }
}

/** Warm-up, then up to n timed runs (fewer if the phase's time runs out); median in ms. */
async function timed(fn: () => Promise<void>, warmup: number, n: number, seconds: number) {
  const warmupMs: number[] = [];
  for (let i = 0; i < warmup; i++) {
    const start = performance.now();
    await fn();
    warmupMs.push(performance.now() - start);
  }
  const times: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  while (times.length < n && (times.length === 0 || performance.now() < deadline)) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return {
    median_ms: sorted[Math.floor(sorted.length / 2)],
    mean_ms: times.reduce((a, b) => a + b, 0) / times.length,
    min_ms: sorted[0],
    n: times.length,
    warmup_ms: warmupMs.map(Math.round),
  };
}

function need(tensors: Map<string, HostTensor>, name: string): HostTensor {
  const t = tensors.get(name);
  if (!t) throw new Error(`expected.safetensors lacks ${name}`);
  return t;
}

/** torchvision's NCHW input as the backbone's NHWC tensor. */
function nhwc(input: HostTensor): tf.Tensor4D {
  return tf.tidy(() =>
    tf.transpose(
      tf.tensor4d(input.data as Float32Array, input.shape as [number, number, number, number]),
      [0, 2, 3, 1],
    ),
  ) as tf.Tensor4D;
}

function iou(a: readonly number[], b: readonly number[]): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

/** Detections against torchvision's: same index, and each expected one's best same-label IoU match. */
function compareDetections(found: Detection[], boxes: Float32Array, scores: Float32Array, labels: Int32Array) {
  const expected = Array.from(scores, (score, k) => ({
    box: Array.from(boxes.subarray(k * 4, k * 4 + 4)),
    score,
    label: labels[k],
  }));
  let sameIndex = 0;
  let maxBoxDiff = 0;
  let maxScoreDiff = 0;
  for (let k = 0; k < Math.min(found.length, expected.length); k++) {
    const [f, e] = [found[k], expected[k]];
    const boxDiff = Math.max(...f.box.map((v, c) => Math.abs(v - e.box[c])));
    if (f.label === e.label && boxDiff < 0.5) {
      sameIndex++;
      maxBoxDiff = Math.max(maxBoxDiff, boxDiff);
      maxScoreDiff = Math.max(maxScoreDiff, Math.abs(f.score - e.score));
    }
  }
  let matched = 0;
  let minIou = 1;
  for (const e of expected) {
    const best = Math.max(0, ...found.filter((f) => f.label === e.label).map((f) => iou(f.box, e.box)));
    if (best > 0.9) matched++;
    minIou = Math.min(minIou, best);
  }
  return {
    count: found.length,
    expected_count: expected.length,
    same_index_within_half_px: sameIndex,
    same_index_max_box_diff_px: maxBoxDiff,
    same_index_max_score_diff: maxScoreDiff,
    expected_matched_iou_gt_0_9: matched,
    min_best_iou: minIou,
    top3: found.slice(0, 3),
    expected_top3: expected.slice(0, 3),
  };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  outFile = options.out;
  report.options = options;
  const ok = await phase('engine', async () => {
    const info = await initEngine({ backend: options.backend, device: options.device });
    return {
      backend: info.backend,
      reason: info.reason,
      gpu: info.gpu,
      device: info.device,
      libtorch: info.libtorch,
      tfjs: info.tfjsVersion,
    };
  });
  if (!ok) return;

  const { size } = options;
  let model: ReturnType<typeof detectors.build> | undefined;
  let expected: Map<string, HostTensor> = new Map();
  await phase('load', async () => {
    model = detectors.build('faster_rcnn', {
      backbone: 'resnet50_fpn',
      numClasses: 1,
      minSize: size,
      maxSize: size,
      backboneOptions: { randomInit: false },
    });
    model.setWeights((await readSafetensors(path.join(options.work, 'weights.safetensors'))).tensors);
    expected = (await readSafetensors(path.join(options.work, 'expected.safetensors'))).tensors;
    return { trainable_variables: model.trainableVariables().length };
  });
  if (!model) return;
  const detector = model;

  const pixels = need(expected, 'pixels');
  const image: DetectorImage = {
    pixels: Float32Array.from(pixels.data, (q) => q / 255),
    height: pixels.shape[0],
    width: pixels.shape[1],
    channels: 1,
  };
  const target: DetectorTarget = {
    boxes: Float32Array.from([
      0.1 * size,
      0.15 * size,
      0.55 * size,
      0.6 * size,
      0.4 * size,
      0.3 * size,
      0.95 * size,
      0.9 * size,
    ]),
    labels: Int32Array.from([1, 1]),
  };

  await phase('features', async () => {
    // The backbone alone, on torchvision's own normalized input: isolates the convolutions from the transform.
    const backbone = (detector as unknown as { backbone: Backbone }).backbone;
    const input = need(expected, 'input');
    const levels: Record<string, { max_abs_diff: number; max_abs_ref: number; relative: number }> = {};
    const start = performance.now();
    // tf.tidy keeps what is returned in arrays and objects, not in a Map.
    const outputs = tf.tidy(() => Object.fromEntries(backbone.apply(nhwc(input), false))) as Record<
      string,
      tf.Tensor4D
    >;
    for (const [name, map] of Object.entries(outputs)) {
      const ref = need(expected, `features.${name}`);
      const nchw = tf.transpose(map, [0, 3, 1, 2]);
      const got = (await nchw.data()) as Float32Array;
      nchw.dispose();
      let maxDiff = 0;
      let maxRef = 0;
      for (let i = 0; i < got.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(got[i] - ref.data[i]));
        maxRef = Math.max(maxRef, Math.abs(ref.data[i]));
      }
      levels[name] = { max_abs_diff: maxDiff, max_abs_ref: maxRef, relative: maxDiff / maxRef };
    }
    tf.dispose(Object.values(outputs));
    return { first_run_ms: performance.now() - start, levels };
  });

  await phase('detections', async () => {
    const start = performance.now();
    const [found] = await detector.predict([image]);
    const firstMs = performance.now() - start;
    const boxes = Float32Array.from(need(expected, 'boxes').data);
    const scores = Float32Array.from(need(expected, 'scores').data);
    const labels = Int32Array.from(need(expected, 'labels').data);
    return { first_predict_ms: firstMs, ...compareDetections(found, boxes, scores, labels) };
  });

  await phase('inference', async () => {
    const tensorsBefore = tf.memory().numTensors;
    const t = await timed(
      async () => {
        await detector.predict([image]);
      },
      3,
      options.inferN,
      options.phaseSeconds,
    );
    return { ...t, images_per_s: 1000 / t.median_ms, leaked_tensors: tf.memory().numTensors - tensorsBefore };
  });

  // The backbone alone (what runs on the GPU in both phases above): forward, and forward + backward + SGD.
  const backbone = (detector as unknown as { backbone: Backbone }).backbone;
  const input = need(expected, 'input');
  await phase('backbone_inference', async () => {
    const x = nhwc(input);
    const t = await timed(
      async () => {
        const out = tf.tidy(() => tf.addN([...backbone.apply(x, false).values()].map((m) => tf.sum(m))));
        await out.data();
        out.dispose();
      },
      3,
      options.inferN,
      options.phaseSeconds,
    );
    x.dispose();
    return { ...t, images_per_s: 1000 / t.median_ms };
  });
  await phase('backbone_train_step', async () => {
    const x = tf.tidy(() => tf.concat(Array.from({ length: options.batch }, () => nhwc(input)))) as tf.Tensor4D;
    const variables = [...backbone.variables().values()].filter((v) => v.trainable);
    const optimizer = tf.train.sgd(1e-5);
    const t = await timed(
      async () => {
        const { value, grads } = tf.variableGrads(
          () => tf.addN([...backbone.apply(x, true).values()].map((m) => tf.mean(m))) as tf.Scalar,
          variables,
        );
        optimizer.applyGradients(grads);
        tf.dispose(grads);
        await value.data();
        value.dispose();
      },
      2,
      options.trainN,
      options.phaseSeconds,
    );
    await variables[0].data();
    x.dispose();
    return { ...t, images_per_s: (options.batch * 1000) / t.median_ms, trainable_variables: variables.length };
  });

  // Where a predict's time goes beyond the backbone: downloading the maps RoIAlign reads, and RoIAlign itself,
  // which runs on the host (ops/roi-align.ts) for 1000 proposals, as in inference.
  await phase('predict_breakdown', async () => {
    const x = nhwc(input);
    const names = ['0', '1', '2', '3'];
    const downloadMs: number[] = [];
    const roiAlignMs: number[] = [];
    const rng = new Rng(12345);
    const random = () => rng.next();
    const boxes = new Float32Array(4000);
    for (let i = 0; i < 1000; i++) {
      const [w, h] = [16 + random() * 240, 16 + random() * 240];
      const [x1, y1] = [random() * (size - w), random() * (size - h)];
      boxes.set([x1, y1, x1 + w, y1 + h], i * 4);
    }
    for (let rep = 0; rep < 6; rep++) {
      const maps = backbone.apply(x, false);
      const pooled = names.map((n) => maps.get(n) as tf.Tensor4D);
      const done = tf.tidy(() => tf.sum(maps.get('pool') as tf.Tensor));
      await done.data();
      done.dispose();
      let start = performance.now();
      await Promise.all(pooled.map((m) => m.data()));
      downloadMs.push(performance.now() - start);
      start = performance.now();
      const rois = multiScaleRoiAlign(pooled, [boxes], [[size, size]], { outputSize: 7, samplingRatio: 2 });
      roiAlignMs.push(performance.now() - start);
      rois.dispose();
      tf.dispose([...maps.values()]);
    }
    x.dispose();
    const median = (a: number[]) => [...a.slice(1)].sort((p, q) => p - q)[Math.floor((a.length - 1) / 2)];
    return { download_pooled_maps_ms: median(downloadMs), host_roi_align_1000_ms: median(roiAlignMs) };
  });

  await phase('train_step', async () => {
    const images = Array<DetectorImage>(options.batch).fill(image);
    const targets = Array<DetectorTarget>(options.batch).fill(target);
    const variables = detector.trainableVariables();
    const optimizer = tf.train.sgd(1e-5);
    let lastLoss = Number.NaN;
    const step = async () => {
      const { value, grads } = tf.variableGrads(
        () => tf.addN(Object.values(detector.losses(images, targets))) as tf.Scalar,
        variables,
      );
      optimizer.applyGradients(grads);
      tf.dispose(grads);
      // The loss read waits for this step's work; the update is queued before the next step's reads.
      lastLoss = (await value.data())[0];
      value.dispose();
    };
    const tensorsBefore = tf.memory().numTensors;
    const t = await timed(step, 2, options.trainN, options.phaseSeconds);
    // The last update done, so the time of the final step is not left in the queue.
    await variables[0].data();
    return {
      ...t,
      images_per_s: (options.batch * 1000) / t.median_ms,
      last_loss: lastLoss,
      leaked_tensors: tf.memory().numTensors - tensorsBefore,
    };
  });
  // A short training run from the same weights as torch_frcnn.py's: SGD at --run-lr on the fixed batch, the loss
  // of every step (torchvision's curve from the same start is in torch.json's training_run).
  if (options.runSteps > 0) {
    await phase('training_run', async () => {
      detector.setWeights((await readSafetensors(path.join(options.work, 'weights.safetensors'))).tensors);
      const images = Array<DetectorImage>(options.batch).fill(image);
      const targets = Array<DetectorTarget>(options.batch).fill(target);
      const variables = detector.trainableVariables();
      const optimizer = tf.train.momentum(options.runLr, 0.9);
      const losses: number[] = [];
      const start = performance.now();
      for (let i = 0; i < options.runSteps; i++) {
        const { value, grads } = tf.variableGrads(
          () => tf.addN(Object.values(detector.losses(images, targets))) as tf.Scalar,
          variables,
        );
        optimizer.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
        tf.dispose(grads);
        losses.push((await value.data())[0]);
        value.dispose();
      }
      await variables[0].data();
      const ms = performance.now() - start;
      return { steps: options.runSteps, lr: options.runLr, losses, ms_per_step: ms / options.runSteps };
    });
  }
  report.engine_info = engineInfo()?.reason;
  report.finished = new Date().toISOString();
  save();
}

await main();
