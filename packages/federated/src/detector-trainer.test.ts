/**
 * DetectorTrainer runs core's epoch engine with `cxr train`'s recipe: one site training round after round
 * (no aggregation) is exactly `cxr train` for the same epochs. Warm-up in epochs: `schedule.warmupEpochs: 1`
 * is exactly a warm-up of one epoch of the site's own steps (ceil(n / batch)), continues across rounds (round 2
 * starts at the full rate), and differs from the step-counted default — so a site with half the data warms up
 * over the same epochs as a centralized run. A site keeps its momentum between rounds by default, and not with
 * `momentumAcrossRounds: false`. The old flat field names still work, mapped into the recipe.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  datasetFromCoco,
  FedcxrError,
  type NamedTensors,
  parseTrainConfig,
  synthesizeShapes,
  TinyGridDetector,
  tf,
  trainDetector,
} from '@fedcxr/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DetectorTrainer, type DetectorTrainerOptions, federatedWeights } from './detector-trainer.js';

const classes = ['square', 'disc'];
const detector = () => new TinyGridDetector({ numClasses: 2, classes, seed: 3, inputSize: 32 });
// 10 images, batch 4: 3 steps an epoch.
const data = () => {
  const set = synthesizeShapes({ count: 10, negatives: 2, size: 32, seed: 5 });
  return datasetFromCoco(set.coco, async (_image, index) => set.images[index]);
};

let root: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'fedcxr-detector-trainer-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function trainer(options: DetectorTrainerOptions): DetectorTrainer {
  return new DetectorTrainer(detector(), data(), undefined, {
    batchSize: 4,
    optimizer: { lr: 0.05 },
    augmentation: null,
    ...options,
  });
}

const flat = (weights: NamedTensors) => Float32Array.from([...weights.values()].flatMap((t) => [...t.data]));

async function trainRound(site: DetectorTrainer, round: number, from: NamedTensors, epochs = 1): Promise<Float32Array> {
  const result = await site.train(from, { round, epochs, mu: 0, seed: 7 });
  const weights = result.weights;
  if (!weights) throw new Error('the detector trainer returns weights');
  return flat(weights);
}

const trainOnce = (options: DetectorTrainerOptions, round: number, from: NamedTensors) =>
  trainRound(trainer(options), round, from);

describe('DetectorTrainer runs the epoch engine of cxr train', () => {
  it('two rounds of one site (no aggregation) end with exactly the weights of cxr train over the same epochs', async () => {
    const recipe: DetectorTrainerOptions = {
      epochs: 4,
      batchSize: 4,
      optimizer: { lr: 0.05 },
      // Warm-up over the first epoch and a decay at epoch 3: both counted across rounds.
      schedule: { warmupEpochs: 1, milestones: [3] },
      sampler: { repeatFactorThreshold: 0.5 },
    };
    const centralized = detector();
    await trainDetector({
      config: parseTrainConfig({ ...recipe, seed: 7, data: { train: 'in-memory' }, engine: { backend: 'cpu' } }),
      detector: centralized,
      train: data(),
      runDir: join(root, 'centralized'),
    });
    // The default augmentation (the seed's rotation and jitter) draws from the same streams in both.
    const site = new DetectorTrainer(detector(), data(), undefined, recipe);
    const round1 = (await site.train(federatedWeights(detector()), { round: 1, epochs: 2, mu: 0, seed: 7 })).weights;
    if (!round1) throw new Error('the detector trainer returns weights');
    const round2 = await trainRound(site, 2, round1, 2);
    expect(round2).toEqual(flat(federatedWeights(centralized)));
    expect(round2).not.toEqual(flat(round1));
    site.dispose();
    centralized.dispose();
  });

  it('reads the old flat field names into the recipe (same weights), and refuses a field given both ways', async () => {
    const initial = federatedWeights(detector());
    const site = (options: DetectorTrainerOptions) =>
      new DetectorTrainer(detector(), data(), undefined, { batchSize: 4, augmentation: null, ...options });
    const legacy = await trainRound(
      site({ learningRate: 0.05, warmupSteps: 2, lrMilestones: [1], lrGamma: 0.5, clipGradNorm: 10 }),
      1,
      initial,
    );
    const current = await trainRound(
      site({ optimizer: { lr: 0.05, clipGradNorm: 10 }, schedule: { warmupSteps: 2, milestones: [1], gamma: 0.5 } }),
      1,
      initial,
    );
    expect(legacy).toEqual(current);
    expect(() => site({ learningRate: 0.01, optimizer: { lr: 0.02 } })).toThrow(
      /learningRate: also given as optimizer\.lr/,
    );
    expect(() => trainer({ schedule: { milestones: [0] } })).toThrow(FedcxrError);
    expect(() => trainer({ schedule: { milestones: [0] } })).toThrow(/schedule\.milestones\.0: /);
  });
});

describe('DetectorTrainer warm-up', () => {
  it('warmupEpochs: 1 warms up over exactly one epoch of the site’s steps, and not over the step default', async () => {
    const initial = federatedWeights(detector());
    const byEpochs = await trainOnce({ schedule: { warmupEpochs: 1, warmupSteps: 50 } }, 1, initial);
    const bySteps = await trainOnce({ schedule: { warmupSteps: 3 } }, 1, initial);
    const byDefault = await trainOnce({ schedule: { warmupSteps: 50 } }, 1, initial);
    expect(byEpochs).toEqual(bySteps);
    const diff = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0);
    expect(diff(byEpochs, byDefault)).toBeGreaterThan(1e-3);
  });

  it('round 2 of a one-epoch warm-up trains at the full rate (the warm-up continues across rounds)', async () => {
    const initial = federatedWeights(detector());
    const warmedUp = await trainOnce({ schedule: { warmupEpochs: 1 } }, 2, initial);
    const noWarmup = await trainOnce({ schedule: { warmupSteps: 0 } }, 2, initial);
    const stillWarming = await trainOnce({ schedule: { warmupEpochs: 2 } }, 2, initial);
    expect(warmedUp).toEqual(noWarmup);
    expect(stillWarming).not.toEqual(noWarmup);
  });
});

describe('DetectorTrainer momentum across rounds', () => {
  const initial = federatedWeights(detector());

  it('by default (momentumAcrossRounds), round 2 continues round 1’s momentum (and differs from a fresh start)', async () => {
    const site = trainer({ schedule: { warmupSteps: 0 } }); // momentumAcrossRounds is on by default
    await trainRound(site, 1, initial);
    const global = federatedWeights(detector());
    // Round 2 starts from a "global" model (here the initial one again): only the kept momentum differs.
    const continued = await trainRound(site, 2, global);
    const fresh = await trainOnce({ momentumAcrossRounds: true, schedule: { warmupSteps: 0 } }, 2, global);
    expect(continued).not.toEqual(fresh);
  });

  it('with momentumAcrossRounds: false, a trainer that trained a round before is exactly a fresh one (nothing carries over)', async () => {
    const site = trainer({ momentumAcrossRounds: false, schedule: { warmupSteps: 0 } });
    await trainRound(site, 1, initial);
    const second = await trainRound(site, 2, initial);
    const fresh = await trainOnce({ momentumAcrossRounds: false, schedule: { warmupSteps: 0 } }, 2, initial);
    expect(second).toEqual(fresh);
  });
});
