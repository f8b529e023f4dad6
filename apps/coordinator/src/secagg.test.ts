/**
 * Secure aggregation through the real protocol: sites publish X25519 keys, mask their fixed-point updates
 * pairwise, the coordinator only ever holds masked bytes and their modular sum; a site that drops out after
 * the key exchange is recovered from the survivors' revealed seeds. The result equals plain FedAvg of the
 * surviving sites (computed here from the same deterministic local training) to fixed-point precision.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NamedTensors } from '@fedcxr/core';
import { type LocalTrainer, subtractTensors } from '@fedcxr/federated';
import { afterEach, describe, expect, it } from 'vitest';
import { makeSiteData, newAgent, newCoordinator, tempDir, trainerFor } from './testing.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function plainFedAvg(
  global: NamedTensors,
  trainers: LocalTrainer[],
  seed: number,
  round: number,
): Promise<Float32Array> {
  const flat = Float32Array.from([...global.values()].flatMap((t) => [...t.data]));
  const sum = new Float32Array(flat.length);
  let total = 0;
  for (const trainer of trainers) {
    const result = await trainer.train(global, { round, epochs: 1, mu: 0, seed, learningRate: 0.2, batchSize: 16 });
    const delta = Float32Array.from([...subtractTensors(result.weights!, global).values()].flatMap((t) => [...t.data]));
    for (let i = 0; i < sum.length; i++) sum[i] += result.numExamples * delta[i];
    total += result.numExamples;
  }
  return flat.map((v, i) => v + sum[i] / total);
}

describe('secure aggregation over the protocol', () => {
  it('aggregates masked updates exactly, and recovers when a keyed site drops out', async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    const data = makeSiteData(3, 60);
    const ids = data.sites.map((s) => s.id);
    const coordinator = newCoordinator(dir.path, ids, {
      secureAggregation: true,
      secaggScale: 4096,
      minSites: 2,
      timeoutMs: 2500,
    });
    const url = await coordinator.start();
    cleanups.push(() => coordinator.close());
    let dropSite3 = false;
    const agents = data.sites.map((site) => {
      const inner = trainerFor(site);
      return newAgent(url, site, {
        trainer: {
          // site-3 publishes its key, then dies during training in round 2.
          train: (g, p, s) => (site.id === 'site-3' && dropSite3 ? new Promise(() => {}) : inner.train(g, p, s)),
          evaluate: (g) => inner.evaluate(g),
        },
      });
    });
    for (const a of agents) await a.start();
    cleanups.push(async () => {
      for (const a of agents) await a.stop();
    });

    const initial = coordinator.globalModel;
    const seed1 = 1; // round seed = config seed (0) · 1_000_003 + round
    const expected1 = await plainFedAvg(
      initial,
      data.sites.map((s) => trainerFor(s)),
      seed1,
      1,
    );
    const r1 = await coordinator.runRound();
    expect(r1.outcome).toBe('aggregated');
    const got1 = Float32Array.from([...coordinator.globalModel.values()].flatMap((t) => [...t.data]));
    for (let i = 0; i < got1.length; i++) expect(Math.abs(got1[i] - expected1[i])).toBeLessThan(2e-3);

    dropSite3 = true;
    const before2 = coordinator.globalModel;
    const expected2 = await plainFedAvg(
      before2,
      data.sites.slice(0, 2).map((s) => trainerFor(s)),
      2,
      2,
    );
    const r2 = await coordinator.runRound();
    expect(r2.outcome).toBe('aggregated');
    expect(r2.sites.sort()).toEqual(['site-1', 'site-2']);
    const got2 = Float32Array.from([...coordinator.globalModel.values()].flatMap((t) => [...t.data]));
    for (let i = 0; i < got2.length; i++) expect(Math.abs(got2[i] - expected2[i])).toBeLessThan(2e-3);

    const audit = readFileSync(join(dir.path, 'audit.jsonl'), 'utf8');
    expect(audit).toMatch(/"event":"secagg_recovered","round":2,"dropped":\["site-3"\]/);
  });
});
