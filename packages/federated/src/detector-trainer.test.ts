/**
 * DetectorTrainer's warm-up in epochs: `warmupEpochs: 1` is exactly a warm-up of one epoch of the site's own
 * steps (ceil(n / batch)), continues across rounds (round 2 starts at the full rate), and differs from the
 * step-counted default — so a site with half the data warms up over the same epochs as a centralized run.
 * A site keeps its momentum between rounds by default, and not with `momentumAcrossRounds: false`.
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

function trainer(options: DetectorTrainerOptions): DetectorTrainer {
  return new DetectorTrainer(detector(), data(), undefined, {
    batchSize: 4,
    learningRate: 0.05,
    augmentation: null,
    ...options,
  });
}

async function trainRound(site: DetectorTrainer, round: number, from: NamedTensors): Promise<Float32Array> {
  const result = await site.train(from, { round, epochs: 1, mu: 0, seed: 7 });
  const weights = result.weights;
  if (!weights) throw new Error('the detector trainer returns weights');
  return Float32Array.from([...weights.values()].flatMap((t) => [...t.data]));
}

const trainOnce = (options: DetectorTrainerOptions, round: number, from: NamedTensors) =>
  trainRound(trainer(options), round, from);

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

describe('DetectorTrainer momentum across rounds', () => {
  const initial = federatedWeights(detector());

  it('by default (momentumAcrossRounds), round 2 continues round 1’s momentum (and differs from a fresh start)', async () => {
    const site = trainer({ warmupSteps: 0 }); // momentumAcrossRounds is on by default
    await trainRound(site, 1, initial);
    const global = federatedWeights(detector());
    // Round 2 starts from a "global" model (here the initial one again): only the kept momentum differs.
    const continued = await trainRound(site, 2, global);
    const fresh = await trainOnce({ momentumAcrossRounds: true, warmupSteps: 0 }, 2, global);
    expect(continued).not.toEqual(fresh);
  });

  it('with momentumAcrossRounds: false, a trainer that trained a round before is exactly a fresh one (nothing carries over)', async () => {
    const site = trainer({ momentumAcrossRounds: false, warmupSteps: 0 });
    await trainRound(site, 1, initial);
    const second = await trainRound(site, 2, initial);
    const fresh = await trainOnce({ momentumAcrossRounds: false, warmupSteps: 0 }, 2, initial);
    expect(second).toEqual(fresh);
  });
});
