import { readFileSync } from 'node:fs';
import { evaluateTabular } from '@fedcxr/federated';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyAuditLog } from './audit.js';
import { MODEL, makeSiteData, newAgent, newCoordinator, tempDir, trainerFor } from './testing.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function federation(sites: number, round: Parameters<typeof newCoordinator>[2] = {}) {
  const dir = tempDir();
  const data = makeSiteData(sites);
  const coordinator = newCoordinator(
    dir.path,
    data.sites.map((s) => s.id),
    round,
  );
  const url = await coordinator.start();
  const agents = data.sites.map((site) => newAgent(url, site, process.env.FED_DEBUG ? { log: console.log } : {}));
  if (process.env.FED_DEBUG) for (const a of agents) a.on('round-error', (e) => console.log('ERR', e));
  await Promise.all(agents.map((a) => a.start()));
  cleanups.push(
    dir.remove,
    () => coordinator.close(),
    async () => {
      for (const a of agents) await a.stop();
    },
  );
  return { dir, data, coordinator, agents, url };
}

describe('coordinator + site agents (FedAvg on a real tfjs model)', () => {
  it('runs rounds, aggregates, checkpoints, audits, and the global model learns', async () => {
    const { coordinator, data, dir } = await federation(3);
    const before = evaluateTabular(MODEL, coordinator.globalModel, data.test).metrics.accuracy;
    const hashes = [coordinator.modelHash];
    for (let r = 0; r < 3; r++) {
      const summary = await coordinator.runRound();
      expect(summary.outcome).toBe('aggregated');
      expect(summary.sites.sort()).toEqual(['site-1', 'site-2', 'site-3']);
      expect(summary.numExamples).toBe(data.sites.reduce((n, s) => n + s.train.y.length, 0));
      expect(summary.train.loss).toBeGreaterThan(0);
      hashes.push(coordinator.modelHash);
    }
    expect(new Set(hashes).size).toBe(4);
    const after = evaluateTabular(MODEL, coordinator.globalModel, data.test).metrics.accuracy;
    expect(after).toBeGreaterThan(before + 0.2);
    expect(after).toBeGreaterThan(0.8);
    const evaluation = await coordinator.evaluate(10_000);
    expect(evaluation.sites.length).toBe(3);
    expect(evaluation.metrics.accuracy).toBeGreaterThan(0.8);
    const entries = verifyAuditLog(`${dir.path}/audit.jsonl`);
    expect(entries).toBeGreaterThan(10);
  });

  it('a server learning rate η scales the aggregated step: η = 2 moves the model twice as far as FedAvg', async () => {
    const steps: Float32Array[] = [];
    for (const serverLearningRate of [1, 2]) {
      const { coordinator } = await federation(2, { serverLearningRate, seed: 5 });
      const before = [...coordinator.globalModel.values()].map((t) => Float32Array.from(t.data));
      expect((await coordinator.runRound()).outcome).toBe('aggregated');
      const after = [...coordinator.globalModel.values()].map((t) => t.data);
      steps.push(Float32Array.from(before.flatMap((b, k) => Array.from(b, (v, i) => after[k][i] - v))));
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    }
    // Same initial model, same data, same plan seed: identical site updates, so only η differs.
    const [plain, doubled] = steps;
    expect(Math.max(...plain.map(Math.abs))).toBeGreaterThan(1e-3);
    for (let i = 0; i < plain.length; i++) expect(doubled[i]).toBeCloseTo(2 * plain[i], 5);
  });

  it('runs FedProx (μ reaches every local trainer) with coordinate-wise median aggregation', async () => {
    const dir = tempDir();
    const data = makeSiteData(3);
    const coordinator = newCoordinator(
      dir.path,
      data.sites.map((s) => s.id),
      { mu: 0.5, aggregation: 'median' },
    );
    const url = await coordinator.start();
    const seen: number[] = [];
    const agents = data.sites.map((site) => {
      const inner = trainerFor(site);
      return newAgent(url, site, {
        trainer: {
          train: (global, plan, signal) => {
            seen.push(plan.mu);
            return inner.train(global, plan, signal);
          },
          evaluate: (global) => inner.evaluate(global),
        },
      });
    });
    await Promise.all(agents.map((a) => a.start()));
    cleanups.push(
      dir.remove,
      () => coordinator.close(),
      async () => {
        for (const a of agents) await a.stop();
      },
    );
    const before = evaluateTabular(MODEL, coordinator.globalModel, data.test).metrics.accuracy;
    for (let r = 0; r < 2; r++) expect((await coordinator.runRound()).aggregation).toBe('median');
    expect(seen).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
    expect(evaluateTabular(MODEL, coordinator.globalModel, data.test).metrics.accuracy).toBeGreaterThan(before + 0.2);
  });

  it('applies DP at the sites: every update arrives clipped to the norm C (noise 0) or noised around it', async () => {
    const norms = async (noiseMultiplier: number) => {
      const dir = tempDir();
      const data = makeSiteData(2);
      const coordinator = newCoordinator(
        dir.path,
        data.sites.map((s) => s.id),
        { dp: { clipNorm: 0.05, noiseMultiplier } },
      );
      const url = await coordinator.start();
      const agents = data.sites.map((site) => newAgent(url, site));
      await Promise.all(agents.map((a) => a.start()));
      cleanups.push(
        dir.remove,
        () => coordinator.close(),
        async () => {
          for (const a of agents) await a.stop();
        },
      );
      await coordinator.runRound();
      return readFileSync(`${dir.path}/audit.jsonl`, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"update_accepted"'))
        .map((l) => (JSON.parse(l) as { norm: number }).norm);
    };
    const clipped = await norms(0);
    expect(clipped).toHaveLength(2);
    for (const n of clipped) expect(n).toBeCloseTo(0.05, 5); // local deltas here are far larger than 0.05
    // 27 parameters, noise std z·C = 0.05 each: the norm grows to about sqrt(0.05² + 27·0.05²) ≈ 0.26.
    const noised = await norms(1);
    for (const n of noised) expect(n).toBeGreaterThan(0.12);
  });
});
