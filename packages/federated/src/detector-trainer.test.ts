/**
 * DetectorTrainer's warm-up in epochs: `warmupEpochs: 1` is exactly a warm-up of one epoch of the site's own
 * steps (ceil(n / batch)), continues across rounds (round 2 starts at the full rate), and differs from the
 * step-counted default — so a site with half the data warms up over the same epochs as a centralized run.
 */
import { datasetFromCoco, type NamedTensors, synthesizeShapes, TinyGridDetector, tf } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { DetectorTrainer, type DetectorTrainerOptions, federatedWeights } from './detector-trainer.js';

const classes = ['square', 'disc'];
const detector = () => new TinyGridDetector({ numClasses: 2, classes, seed: 3, inputSize: 32 });
// 10 images, batch 4: 3 steps an epoch.
const data = () => {
  const set = synthesizeShapes({ count: 10, negatives: 2, size: 32, seed: 5 });
  return datasetFromCoco(set.coco, async (_image, index) => set.images[index]);
};

beforeAll(async () => {
  await tf.setBackend('cpu');
});

async function trainOnce(options: DetectorTrainerOptions, round: number, from: NamedTensors): Promise<Float32Array> {
  const trainer = new DetectorTrainer(detector(), data(), undefined, {
    batchSize: 4,
    learningRate: 0.05,
    augmentation: null,
    ...options,
  });
  const result = await trainer.train(from, { round, epochs: 1, mu: 0, seed: 7 });
  const weights = result.weights;
  if (!weights) throw new Error('the detector trainer returns weights');
  return Float32Array.from([...weights.values()].flatMap((t) => [...t.data]));
}

describe('DetectorTrainer warm-up', () => {
  it('warmupEpochs: 1 warms up over exactly one epoch of the site’s steps, and not over the step default', async () => {
    const initial = federatedWeights(detector());
    const byEpochs = await trainOnce({ warmupEpochs: 1, warmupSteps: 50 }, 1, initial);
    const bySteps = await trainOnce({ warmupSteps: 3 }, 1, initial);
    const byDefault = await trainOnce({ warmupSteps: 50 }, 1, initial);
    expect(byEpochs).toEqual(bySteps);
    const diff = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0);
    expect(diff(byEpochs, byDefault)).toBeGreaterThan(1e-3);
  });

  it('round 2 of a one-epoch warm-up trains at the full rate (the warm-up continues across rounds)', async () => {
    const initial = federatedWeights(detector());
    const warmedUp = await trainOnce({ warmupEpochs: 1 }, 2, initial);
    const noWarmup = await trainOnce({ warmupSteps: 0 }, 2, initial);
    const stillWarming = await trainOnce({ warmupEpochs: 2 }, 2, initial);
    expect(warmedUp).toEqual(noWarmup);
    expect(stillWarming).not.toEqual(noWarmup);
  });
});
