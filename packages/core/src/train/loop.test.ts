import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FedcxrError } from '@fedcxr/base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { parseTrainConfig, type TrainConfigInput } from './config.js';
import { datasetFromCoco } from './dataset.js';
import { type EpochRecord, trainDetector } from './loop.js';
import { synthesizeShapes } from './synthetic.js';
import { TinyGridDetector } from './tiny-detector.js';

let root: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'fedcxr-train-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function dataset(count: number, negatives: number, seed: number) {
  const set = synthesizeShapes({ count, negatives, size: 64, seed });
  return datasetFromCoco(set.coco, async (_image, index) => set.images[index]);
}

function config(extra: Partial<TrainConfigInput>) {
  return parseTrainConfig({ data: { train: 'in-memory' }, engine: { backend: 'cpu' }, ...extra });
}

const weightsOf = (detector: TinyGridDetector) =>
  [...detector.getWeights()].map(([name, t]) => [name, Array.from(t.data)] as const);

describe('trainDetector', () => {
  it('really learns: overfits a few synthetic images to AP50 ≥ 0.9, keeping best and last', async () => {
    const data = dataset(8, 2, 1);
    const detector = new TinyGridDetector({ numClasses: 2, classes: ['square', 'disc'], seed: 3 });
    const runDir = join(root, 'overfit');
    const cfg = config({
      epochs: 20,
      batchSize: 4,
      model: { detector: 'tiny_grid', backbone: 'tiny' },
      optimizer: { lr: 0.005 },
      schedule: { warmupSteps: 10, type: 'cosine' },
      augmentation: { rotationDegrees: 0, brightness: 0, contrast: 0 },
      validation: { everyEpochs: 5 },
    });
    const started = performance.now();
    const run = await trainDetector({ config: cfg, detector, train: data, val: data, runDir });
    const seconds = (performance.now() - started) / 1000;
    const validated = run.history.filter((r) => r.val);
    const first = validated[0].val as Record<string, number>;
    const last = validated[validated.length - 1].val as Record<string, number>;
    console.log(
      `tiny_grid overfit: ${run.stepsDone} steps in ${seconds.toFixed(1)} s; AP50 ${first.AP50.toFixed(3)} → ${last.AP50.toFixed(3)}, val loss ${first.loss.toFixed(3)} → ${last.loss.toFixed(3)}`,
    );
    expect(last.AP50).toBeGreaterThanOrEqual(0.9);
    expect(last.loss).toBeLessThan(first.loss);
    expect(run.history[run.history.length - 1].train.loss).toBeLessThan(run.history[0].train.loss / 2);
    // Log: one JSON line per epoch; checkpoints: best names the epoch with the highest AP.
    const log = (await readFile(join(runDir, 'log.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as EpochRecord);
    expect(log.map((r) => r.epoch)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const bestAp = Math.max(...validated.map((r) => (r.val as Record<string, number>).AP));
    expect(run.best?.value).toBe(bestAp);
    const bestPointer = JSON.parse(await readFile(join(runDir, 'checkpoints', 'best.json'), 'utf8')) as { tag: string };
    const card = JSON.parse(await readFile(join(runDir, 'checkpoints', bestPointer.tag, 'model.json'), 'utf8'));
    expect(card).toMatchObject({
      format: 'fedcxr-model',
      architecture: 'tiny_grid',
      classes: ['__background__', 'square', 'disc'],
    });
    // The config's default normalization, a typed preset (formerly the free string 'seed-log').
    expect(card.preprocessing.normalization).toBe('seed');
    // No importer record in this synthetic set's info: the preset comes from the config, full size.
    expect(card.preprocessing.dicom).toEqual({ preset: 'seed', size: null, letterbox: false });
    expect(card.metrics.AP).toBe(bestAp);
    detector.dispose();
  });

  it('resumes a run stopped mid-epoch to exactly the weights of an uninterrupted run', async () => {
    const data = dataset(6, 3, 2);
    const cfg = config({
      epochs: 3,
      batchSize: 2,
      seed: 9,
      optimizer: { lr: 0.02 },
      schedule: { warmupSteps: 3, type: 'step', milestones: [3] },
      sampler: { repeatFactorThreshold: 0.6, negativesRatio: 0.5 },
      checkpoint: { everySteps: 2 },
    });
    const uninterrupted = new TinyGridDetector({ numClasses: 2, seed: 5 });
    await trainDetector({ config: cfg, detector: uninterrupted, train: data, val: data, runDir: join(root, 'a') });
    const expected = weightsOf(uninterrupted);

    const controller = new AbortController();
    const killed = new TinyGridDetector({ numClasses: 2, seed: 5 });
    let stepsSeen = 0;
    let caught: unknown;
    try {
      await trainDetector({
        config: cfg,
        detector: killed,
        train: data,
        val: data,
        runDir: join(root, 'b'),
        onEvent: (event) => {
          if (event.type === 'step' && ++stepsSeen === 5) controller.abort(); // inside epoch 2
        },
        signal: controller.signal,
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FedcxrError);
    expect((caught as FedcxrError).code).toBe('aborted');
    // A new process: a differently initialized model, everything restored from the checkpoint.
    const resumed = new TinyGridDetector({ numClasses: 2, seed: 77 });
    const run = await trainDetector({
      config: cfg,
      detector: resumed,
      train: data,
      val: data,
      runDir: join(root, 'b'),
      resume: true,
    });
    expect(weightsOf(resumed)).toEqual(expected);
    expect(run.history.map((r) => r.epoch)).toEqual([1, 2, 3]);
    const logA = await readFile(join(root, 'a', 'log.jsonl'), 'utf8');
    const logB = await readFile(join(root, 'b', 'log.jsonl'), 'utf8');
    const strip = (text: string) =>
      text
        .trim()
        .split('\n')
        .map((l) => ({ ...JSON.parse(l), seconds: 0 }));
    expect(strip(logB)).toEqual(strip(logA));
    // steps.jsonl: one line per optimizer step; the resumed run kept the lines before its checkpoint and redid
    // the rest, step for step the uninterrupted run's.
    const stepsOf = async (dir: string) =>
      (await readFile(join(root, dir, 'steps.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { globalStep: number; epoch: number; lr: number; losses: { loss: number } });
    const stepsA = await stepsOf('a');
    expect(stepsA.map((r) => r.globalStep)).toEqual(Array.from({ length: stepsA.length }, (_, i) => i));
    expect(new Set(stepsA.map((r) => r.epoch))).toEqual(new Set([1, 2, 3]));
    expect(stepsA.every((r) => Number.isFinite(r.losses.loss) && r.lr > 0)).toBe(true);
    expect(await stepsOf('b')).toEqual(stepsA);
    // And a different seed gives a different run (the seed is really used).
    const other = new TinyGridDetector({ numClasses: 2, seed: 5 });
    await trainDetector({ config: { ...cfg, seed: 10 }, detector: other, train: data, runDir: join(root, 'c') });
    expect(weightsOf(other)).not.toEqual(expected);
    for (const d of [uninterrupted, killed, resumed, other]) d.dispose();
  });

  it('clips the global gradient norm as torch.nn.utils.clip_grad_norm_ does', async () => {
    const detector = new TinyGridDetector({ numClasses: 2, seed: 1 });
    const before = weightsOf(detector);
    const cfg = config({
      epochs: 1,
      batchSize: 4,
      optimizer: { lr: 1, weightDecay: 0, clipGradNorm: 1e-3 },
      schedule: { warmupSteps: 0, type: 'constant' },
      augmentation: { rotationDegrees: 0, brightness: 0, contrast: 0 },
    });
    const tensorsBefore = tf.memory().numTensors;
    const run = await trainDetector({
      config: cfg,
      detector,
      train: dataset(4, 0, 1),
      val: dataset(2, 1, 2),
      runDir: join(root, 'clip'),
    });
    expect(tf.memory().numTensors).toBe(tensorsBefore); // no tensor leaks from steps, validation or the optimizer
    expect(run.history[0].train.grad_norm).toBeGreaterThan(1e-3);
    // First Nesterov step: Δw = −lr·(g + μ·g) = −1.9·g_clipped, and ‖g_clipped‖ = 1e-3 (to 1e-6 relative).
    const after = weightsOf(detector);
    let squared = 0;
    before.forEach(([, values], i) => {
      values.forEach((v, k) => {
        squared += (after[i][1][k] - v) ** 2;
      });
    });
    expect(Math.sqrt(squared)).toBeCloseTo(1.9e-3, 6);
    detector.dispose();
  });

  it('refuses to resume without a checkpoint, naming the run folder', async () => {
    const detector = new TinyGridDetector({ numClasses: 2 });
    await expect(
      trainDetector({
        config: config({}),
        detector,
        train: dataset(2, 0, 1),
        runDir: join(root, 'empty'),
        resume: true,
      }),
    ).rejects.toThrow(/empty: nothing to resume/);
    detector.dispose();
  });
});
