/**
 * The strategies: each built-in aggregator over spools, and a new rule added the way a plugin would add one —
 * one object (here, in this file) and one `strategies.register(...)` — run through the real coordinator.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '@fedcxr/core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { rawSite, readAudit, sendUpdate, updateFor } from '../attack-harness.js';
import { coordinatorConfigSchema } from '../config.js';
import { readSpool } from '../spool.js';
import { coordinatorConfig, newCoordinator, tempDir } from '../testing.js';
import { fedavg } from './fedavg.js';
import { fedprox } from './fedprox.js';
import { median } from './median.js';
import { strategies } from './registry.js';
import type { RoundAggregator, Strategy, StrategyUpdate } from './strategy.js';
import { trimmedMean } from './trimmed-mean.js';

const dir = tempDir('fedcxr-strategies-');
afterAll(() => dir.remove());
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function spool(name: string, values: number[], norm = 1): StrategyUpdate {
  const path = join(dir.path, name);
  writeFileSync(path, new Uint8Array(Float32Array.from(values).buffer));
  return { siteId: name, nonce: name, spool: path, numExamples: 10, norm };
}

const ROUND = { round: 1, parameters: 3 };

/** Runs `aggregator` over `updates` with the given bounds; returns Δ and the shares. */
function run(
  aggregator: RoundAggregator,
  updates: StrategyUpdate[],
  bounds: { weights: number[]; clipFactors: number[]; maxSiteShare?: number },
) {
  for (const update of updates) aggregator.add(update);
  const out = new Float32Array(3).fill(Number.NaN);
  const { shares, divisor } = aggregator.finish({ maxSiteShare: 1, ...bounds }, out);
  return { delta: Array.from(out, (v) => v / (divisor ?? 1)), shares };
}

describe('built-in strategies', () => {
  const a = spool('a', [1, 2, 3]);
  const b = spool('b', [3, 2, 1]);
  const c = spool('c', [100, -100, 100]);

  it('are registered by name, and say whether they are linear', () => {
    expect(strategies.list()).toEqual(['fedavg', 'fedprox', 'median', 'trimmed-mean']);
    expect(strategies.describe().map((s) => [s.name, s.linear])).toEqual([
      ['fedavg', true],
      ['fedprox', true],
      ['median', false],
      ['trimmed-mean', false],
    ]);
    expect(() => strategies.get('krum')).toThrow(/unknown aggregation strategy "krum"; registered: fedavg/);
    expect(() => strategies.register(median)).toThrow(/already registered/);
  });

  it('fedavg and fedprox: Σ share·clip·δ with shares from the bounded weights, capped', () => {
    for (const strategy of [fedavg, fedprox] as Strategy<unknown>[]) {
      const weighted = run(strategy.begin({ mu: 0.1 }, ROUND), [a, b], { weights: [30, 10], clipFactors: [1, 0.5] });
      expect(weighted.shares).toEqual([0.75, 0.25]);
      weighted.delta.forEach((v, i) => {
        expect(v).toBeCloseTo(0.75 * [1, 2, 3][i] + 0.25 * 0.5 * [3, 2, 1][i], 6);
      });
      // No site above maxSiteShare: the excess goes to the others.
      const capped = run(strategy.begin({ mu: 0.1 }, ROUND), [a, b, c], {
        weights: [80, 10, 10],
        clipFactors: [1, 1, 1],
        maxSiteShare: 0.5,
      });
      expect(capped.shares.map((s) => Number(s.toFixed(6)))).toEqual([0.5, 0.25, 0.25]);
    }
    expect(fedprox.plan?.({ mu: 0.3 })).toEqual({ mu: 0.3 });
  });

  it('median and trimmed mean: unweighted, clipped, one attacker among three does not move them', () => {
    const m = run(median.begin({}, ROUND), [a, b, c], { weights: [1, 1000, 1], clipFactors: [1, 1, 1] });
    expect(m.shares).toEqual([1 / 3, 1 / 3, 1 / 3]);
    expect(m.delta).toEqual([3, 2, 3]);
    const t = run(trimmedMean.begin({ trimFraction: 0.34 }, ROUND), [a, b, c], {
      weights: [1, 1, 1],
      clipFactors: [1, 1, 0.01],
    });
    // Clipped first (c becomes [1, -1, 1]), then one value trimmed at each end: the middle one.
    expect(t.delta).toEqual([1, 2, 1]);
  });
});

/**
 * A rule that exists only in this test: the coordinate-wise largest (clipped) value. It streams — it folds
 * each update into its running maximum as the update is accepted, keeping nothing else.
 */
const seen: string[] = [];
const coordinateMax: Strategy<{ floor: number }> = {
  name: 'test-coordinate-max',
  description: 'coordinate-wise maximum of the updates (test only)',
  linear: false,
  options: z.strictObject({ floor: z.number().default(Number.NEGATIVE_INFINITY) }),
  begin: ({ floor }, { parameters }) => {
    const max = new Float32Array(parameters).fill(floor);
    return {
      add: (update) => {
        seen.push(update.siteId);
        for (const { offset, values } of readSpool(update.spool, parameters))
          for (let i = 0; i < values.length; i++) max[offset + i] = Math.max(max[offset + i], values[i]);
      },
      finish: (bounds, out) => {
        out.set(max);
        return { shares: bounds.weights.map(() => 1 / bounds.weights.length) };
      },
    };
  },
};

describe('a new aggregation rule is one object and one registration', () => {
  it('runs a round through the real coordinator under its name, η applied once by the coordinator', async () => {
    const unregister = strategies.register(coordinateMax);
    cleanups.push(unregister);
    // Its name and options are valid in a config now; it is not linear, so not with secure aggregation.
    const config = (round: object) =>
      parseConfig(coordinatorConfigSchema, coordinatorConfig(dir.path, ['site-1'], round), 'coordinator.yaml');
    expect(config({ aggregation: 'test-coordinate-max', aggregationOptions: { floor: 0 } }).round).toMatchObject({
      aggregation: 'test-coordinate-max',
      aggregationOptions: { floor: 0 },
    });
    expect(() => config({ aggregation: 'test-coordinate-max', aggregationOptions: { floor: 'x' } })).toThrow(
      /round\.aggregationOptions\.floor: test-coordinate-max: /,
    );
    expect(() => config({ aggregation: 'test-coordinate-max', secureAggregation: true })).toThrow(
      /round\.secureAggregation admits only linear strategies, and round\.aggregation "test-coordinate-max" is not linear/,
    );

    const stateDir = join(dir.path, 'round');
    const coordinator = newCoordinator(stateDir, ['site-1', 'site-2'], {
      aggregation: 'test-coordinate-max',
      serverLearningRate: 0.5,
      clipMultiple: null,
      minSites: 2,
    });
    const url = await coordinator.start();
    cleanups.push(() => coordinator.close());
    const sites = await Promise.all(['site-1', 'site-2'].map((id) => rawSite(url, id)));
    cleanups.push(() => {
      for (const site of sites) site.socket.disconnect();
    });
    const before = [...coordinator.globalModel.values()].flatMap((t) => [...t.data]);
    const round = await coordinator.startRound();
    const closed = coordinator.waitForRound(round);
    const [plan1, plan2] = await Promise.all(sites.map((s) => s.nextPlan()));
    expect(
      await sendUpdate(
        sites[0].socket,
        plan1,
        updateFor(plan1, (i) => (i % 2 ? 0.004 : -0.002)),
      ),
    ).toEqual({
      ok: true,
    });
    expect(seen).toEqual(['site-1']); // folded as it was accepted, before the round closed
    expect(
      await sendUpdate(
        sites[1].socket,
        plan2,
        updateFor(plan2, (i) => (i % 2 ? -0.001 : 0.003)),
      ),
    ).toEqual({
      ok: true,
    });
    const summary = await closed;
    expect(summary).toMatchObject({ outcome: 'aggregated', aggregation: 'test-coordinate-max' });
    expect(seen).toEqual(['site-1', 'site-2']);
    // global += η·Δ with Δ = max: 0.5 · 0.004 on odd coordinates, 0.5 · 0.003 on even ones.
    const after = [...coordinator.globalModel.values()].flatMap((t) => [...t.data]);
    after.forEach((v, i) => {
      expect(v - before[i]).toBeCloseTo(0.5 * (i % 2 ? 0.004 : 0.003), 6);
    });
    expect(readAudit(stateDir).find((e) => e.event === 'round_weights')).toMatchObject({
      round,
      rule: 'test-coordinate-max',
    });
  });
});
