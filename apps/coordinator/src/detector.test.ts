/**
 * The detector seam for real: two sites federate a core Detector (tiny_grid, the engine's small real
 * detector) through the coordinator with FedProx, on synthetic shape images; the loss falls round after
 * round and the sites report COCO metrics of the global model.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { datasetFromCoco, encodeGreyPng, parseConfig, synthesizeShapes, TinyGridDetector, tf } from '@fedcxr/core';
import { DetectorTrainer, federatedWeights, SiteAgent, siteAgentFromConfig, siteConfigSchema } from '@fedcxr/federated';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from './coordinator.js';
import { coordinatorConfig, siteToken, tempDir } from './testing.js';

const dir = tempDir('fedcxr-det-');
beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => dir.remove());

function siteData(seed: number) {
  const set = synthesizeShapes({ count: 8, negatives: 2, size: 32, seed });
  return datasetFromCoco(set.coco, async (_image, index) => set.images[index]);
}

describe('federated detector (DetectorTrainer on tiny_grid)', () => {
  it('runs FedProx rounds: the training loss falls and sites report COCO metrics', async () => {
    const classes = ['square', 'disc'];
    const initial = federatedWeights(new TinyGridDetector({ numClasses: 2, classes, seed: 3, inputSize: 32 }));
    const coordinator = new Coordinator(
      coordinatorConfig(dir.path, ['site-1', 'site-2'], {
        mu: 0.001,
        learningRate: 0.01,
        batchSize: 4,
        epochs: 3,
        timeoutMs: 120_000,
      }),
      { initialModel: initial },
    );
    const url = await coordinator.start();
    const agents = [1, 2].map(
      (i) =>
        new SiteAgent({
          url,
          siteId: `site-${i}`,
          token: siteToken(`site-${i}`),
          trainer: new DetectorTrainer(
            new TinyGridDetector({ numClasses: 2, classes, seed: 3, inputSize: 32 }),
            siteData(i),
            siteData(i + 10),
          ),
          log: process.env.FED_DEBUG ? console.log : undefined,
        }),
    );
    try {
      for (const agent of agents) await agent.start();
      // The initial (untrained) global model, evaluated by the sites before any round.
      const untrained = await coordinator.evaluate(60_000);
      const rounds = [];
      for (let r = 0; r < 3; r++) rounds.push(await coordinator.runRound());
      expect(rounds.map((r) => r.outcome)).toEqual(['aggregated', 'aggregated', 'aggregated']);
      expect(rounds[2].train.loss).toBeLessThan(rounds[0].train.loss);
      expect(rounds[0].validation).toHaveProperty('ap50');
      const evaluation = await coordinator.evaluate(60_000);
      expect(evaluation.sites.sort()).toEqual(['site-1', 'site-2']);
      // The federated model detects the shapes: AP50 0.139 here against the untrained model's 0.009.
      expect(evaluation.metrics.ap50).toBeGreaterThan(0.05);
      expect(evaluation.metrics.ap50).toBeGreaterThan(untrained.metrics.ap50 + 0.05);
      console.log(
        `federated tiny_grid: train loss ${rounds.map((r) => r.train.loss.toFixed(3)).join(' → ')}, global AP50 ${untrained.metrics.ap50.toFixed(3)} untrained → ${evaluation.metrics.ap50.toFixed(3)}`,
      );
    } finally {
      for (const agent of agents) await agent.stop();
      await coordinator.close();
    }
  });

  it('builds the detector trainer from a site.yaml-style config (COCO files + PNGs on disk) and federates it', async () => {
    const siteDir = join(dir.path, 'site-files');
    mkdirSync(siteDir, { recursive: true });
    for (const [name, seed] of [
      ['train', 21],
      ['val', 22],
    ] as const) {
      const set = synthesizeShapes({ count: 6, negatives: 1, size: 32, seed });
      set.images.forEach((image, i) => {
        const data = Uint8Array.from(image.pixels, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
        writeFileSync(
          join(siteDir, set.coco.images[i].file_name),
          encodeGreyPng({ width: image.width, height: image.height, channels: 1, bitDepth: 8, data }),
        );
      });
      writeFileSync(join(siteDir, `${name}.json`), JSON.stringify(set.coco));
    }
    const configPath = join(siteDir, 'site.json');
    const config = parseConfig(siteConfigSchema, {
      siteId: 'site-1',
      token: siteToken('site-1'),
      coordinator: 'http://127.0.0.1:1',
      trainer: {
        kind: 'detector',
        detector: 'tiny_grid',
        train: 'train.json',
        learningRate: 0.01,
        batchSize: 4,
        options: { inputSize: 32, seed: 3 },
      },
    });
    const initial = federatedWeights(
      new TinyGridDetector({ numClasses: 2, classes: ['square', 'disc'], seed: 3, inputSize: 32 }),
    );
    const coordinator = new Coordinator(
      coordinatorConfig(join(dir.path, 'state-config'), ['site-1'], { epochs: 2, timeoutMs: 120_000 }),
      {
        initialModel: initial,
      },
    );
    const url = await coordinator.start();
    const agent = await siteAgentFromConfig({ ...config, coordinator: url }, configPath);
    try {
      await agent.start();
      const first = await coordinator.runRound();
      const second = await coordinator.runRound();
      expect([first.outcome, second.outcome]).toEqual(['aggregated', 'aggregated']);
      expect(second.train.loss).toBeLessThan(first.train.loss);
    } finally {
      await agent.stop();
      await coordinator.close();
    }
  });
});
